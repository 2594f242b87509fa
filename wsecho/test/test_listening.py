"""
Tests for L{wsecho.listening}, in memory: the service around a listener and
the messages of failed binds.
"""

import errno
import socket

from twisted.internet.address import IPv6Address
from twisted.internet.defer import fail, succeed
from twisted.internet.error import CannotListenError
from twisted.internet.protocol import Factory
from twisted.internet.testing import MemoryReactor
from twisted.logger import capturedLogs, formatEvent
from twisted.trial.unittest import SynchronousTestCase

from wsecho import listening
from wsecho.listening import EndpointListener, ListeningService, bindFailure


class FakePort:
    def __init__(self, address):
        self.address = address
        self.stopped = False

    def getHost(self):
        return self.address

    def stopListening(self):
        self.stopped = True
        return succeed(None)


class FakeListener:
    description = "tcp6:8080:interface=\\:\\:"

    def __init__(self, result):
        self.result = result

    def listen(self, reactor, factory):
        return self.result


class ListeningServiceTests(SynchronousTestCase):
    """
    The service listens while running and logs where.
    """

    def test_logsPort(self):
        """
        Starting logs the bound port with the address and endpoint as fields.
        """
        port = FakePort(IPv6Address("TCP", "::", 8080))
        service = ListeningService(FakeListener(port), Factory(), MemoryReactor())
        with capturedLogs() as events:
            service.startService()
        [event] = events
        self.assertEqual(
            formatEvent(event), "Listening for connections on port 8080 ([::]:8080)"
        )
        self.assertEqual(event["port"], 8080)
        self.assertEqual(event["endpoint"], "tcp6:8080:interface=\\:\\:")

    def test_stopListening(self):
        """
        Stopping the service stops listening.
        """
        port = FakePort(IPv6Address("TCP", "::", 8080))
        service = ListeningService(FakeListener(port), Factory(), MemoryReactor())
        with capturedLogs():
            service.startService()
        self.successResultOf(service.stopService())
        self.assertTrue(port.stopped)

    def test_failureStopsReactor(self):
        """
        A listener that fails when the reactor runs logs one line and stops.
        """
        reactor = MemoryReactor()
        reactor.running = True
        error = CannotListenError("", 80, OSError("Permission denied"))
        service = ListeningService(FakeListener(fail(error)), Factory(), reactor)
        with capturedLogs() as events:
            service.startService()
        [event] = events
        self.assertIn("Cannot listen on tcp6:8080:interface=\\:\\:", formatEvent(event))
        self.assertTrue(reactor.hasStopped)

    def test_endpointListener(self):
        """
        An endpoint listener listens through the reactor's endpoint.
        """
        reactor = MemoryReactor()
        listener = EndpointListener("tcp:1234:interface=127.0.0.1")
        self.successResultOf(listener.listen(reactor, Factory()))
        [(port, _, _, interface)] = reactor.tcpServers
        self.assertEqual((port, interface), (1234, "127.0.0.1"))


class BindFailureTests(SynchronousTestCase):
    """
    A failed bind is described in one line with the address.
    """

    def test_inUse(self):
        """
        A port in use is named with the fix.
        """
        error = OSError(errno.EADDRINUSE, "Address already in use")
        self.assertEqual(
            bindFailure("[::]:8080", error),
            "cannot listen on [::]:8080: the port is already in use; "
            "stop the other server or choose another port with --port or "
            "SERVER_PORT",
        )

    def test_otherError(self):
        """
        Any other error is given by its system message.
        """
        error = OSError(errno.EACCES, "Permission denied")
        self.assertEqual(
            bindFailure("0.0.0.0:80", error),
            "cannot listen on 0.0.0.0:80: Permission denied",
        )


class DualStackTests(SynchronousTestCase):
    """
    A bare port listens on IPv6 and IPv4 together, or on IPv4 alone where
    the host has no IPv6.
    """

    def setUp(self):
        self.calls = []

    def fakeBind(self, ipv6Error=None):
        def bindSocket(family, host, port, backlog, dualStack=False):
            self.calls.append((family, host, port, dualStack))
            if family == socket.AF_INET6 and ipv6Error is not None:
                raise ipv6Error
            return f"socket for {host}"

        self.patch(listening, "bindSocket", bindSocket)

    def test_bothFamilies(self):
        """
        One dual-stack IPv6 socket on C{::} serves both families.
        """
        self.fakeBind()
        listener = listening.bindDualStack(8080)
        self.assertEqual(self.calls, [(socket.AF_INET6, "::", 8080, True)])
        self.assertEqual(listener.description, "tcp6:8080:interface=\\:\\:")

    def test_noIPv6(self):
        """
        Without IPv6 the server listens on IPv4 and logs that it did.
        """
        self.fakeBind(OSError(errno.EAFNOSUPPORT, "Address family not supported"))
        with capturedLogs() as events:
            listener = listening.bindDualStack(8080)
        allIPv4 = "0.0.0.0"  # noqa: S104
        self.assertEqual(self.calls[-1], (socket.AF_INET, allIPv4, 8080, False))
        self.assertEqual(listener.description, "tcp:8080")
        [event] = events
        self.assertEqual(
            formatEvent(event),
            "IPv6 is not available on this host (Address family not supported); "
            "listening on IPv4 only",
        )

    def test_portInUse(self):
        """
        A port in use on IPv6 is an error, not a reason to fall back.
        """
        self.fakeBind(OSError(errno.EADDRINUSE, "Address already in use"))
        error = self.assertRaises(listening.BindError, listening.bindDualStack, 8080)
        self.assertIn(
            "cannot listen on [::]:8080: the port is already in use", str(error)
        )
