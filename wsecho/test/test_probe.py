"""
Tests for L{wsecho.probe}, run in memory against the real wsecho site and
against small misbehaving WebSocket servers.
"""

from __future__ import annotations

import argparse
import io
import json
import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.error import ConnectionRefusedError, DNSLookupError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport, IOPump, connect
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from wsecho import __version__, probe
from wsecho.probe import (
    EndpointFactory,
    Latency,
    Message,
    Probe,
    ProbeError,
    Report,
    buildMessages,
    parseHealth,
    parseTarget,
)
from wsecho.test.support import ServerTestCase

SERVER_ADDRESS = IPv4Address("TCP", "127.0.0.1", 8080)


@implementer(IStreamClientEndpoint)
class MemoryEndpoint:
    """
    A client endpoint that connects to a server factory over in-memory
    transports.
    """

    def __init__(self, endpoints: MemoryEndpoints) -> None:
        self.endpoints = endpoints

    def connect(self, factory):
        endpoints = self.endpoints
        endpoints.nextPort += 1
        clientAddress = IPv4Address("TCP", "127.0.0.1", endpoints.nextPort)
        server = endpoints.serverFactory.buildProtocol(clientAddress)
        client = factory.buildProtocol(SERVER_ADDRESS)
        serverTransport = FakeTransport(
            server, isServer=True, hostAddress=SERVER_ADDRESS, peerAddress=clientAddress
        )
        clientTransport = FakeTransport(
            client,
            isServer=False,
            hostAddress=clientAddress,
            peerAddress=SERVER_ADDRESS,
        )
        endpoints.clientTransports.append(clientTransport)
        endpoints.pumps.append(
            connect(
                server,
                serverTransport,
                client,
                clientTransport,
                greet=False,
                clock=endpoints.clock,
            )
        )
        return succeed(client)


class MemoryEndpoints(EndpointFactory):
    """
    Connect every probe connection to one server factory in memory.

    @ivar requested: The C{(host, port, secure)} of each endpoint made.
    @ivar result: What C{connect} returns instead of connecting, if set.
    """

    def __init__(self, clock, serverFactory) -> None:
        super().__init__(clock)
        self.clock = clock
        self.serverFactory = serverFactory
        self.requested: list[tuple[str, int, bool]] = []
        self.pumps: list[IOPump] = []
        self.clientTransports: list[FakeTransport] = []
        self.nextPort = 40000
        self.result: Deferred | None = None

    def endpoint(self, host: str, port: int, secure: bool):
        self.requested.append((host, port, secure))
        if self.result is not None:
            return FixedEndpoint(self.result)
        return MemoryEndpoint(self)

    def pumpAll(self) -> None:
        for pump in list(self.pumps):
            pump.pump()


@implementer(IStreamClientEndpoint)
class FixedEndpoint:
    """
    A client endpoint whose C{connect} returns a given L{Deferred}.
    """

    def __init__(self, result: Deferred) -> None:
        self.result = result

    def connect(self, factory):
        return self.result


class ReversingProtocol(WebSocketServerProtocol):
    """
    Send every message back reversed.
    """

    def onMessage(self, payload, isBinary):
        self.sendMessage(payload[::-1], isBinary)


class TextForBinaryProtocol(WebSocketServerProtocol):
    """
    Send every message back as text.
    """

    def onMessage(self, payload, isBinary):
        self.sendMessage(b"You said: " + payload if not isBinary else b"text", False)


class ClosingProtocol(WebSocketServerProtocol):
    """
    Close the connection with status 4000 on the first message.
    """

    def onMessage(self, payload, isBinary):
        self.sendClose(4000, "closing on purpose")


class SilentProtocol(WebSocketServerProtocol):
    """
    Never reply to a message.
    """

    def onMessage(self, payload, isBinary):
        pass


class ProbeTestCase(ServerTestCase):
    """
    Run probes against an in-memory server on the test's clock.
    """

    def makeProbe(self, serverFactory=None, **keywords) -> Probe:
        if serverFactory is None:
            serverFactory = self.site
        self.endpoints = MemoryEndpoints(self.clock, serverFactory)
        keywords.setdefault("messages", buildMessages(6))
        keywords.setdefault("timer", self.clock.seconds)
        target = parseTarget("ws://127.0.0.1:8080/ws")
        return Probe(self.clock, target, self.endpoints, **keywords)

    def webSocketFactory(self, protocol) -> WebSocketServerFactory:
        factory = WebSocketServerFactory("ws://127.0.0.1:8080/ws", reactor=self.clock)
        factory.protocol = protocol
        return factory

    def drive(self, deferred: Deferred, rounds: int = 200) -> None:
        """
        Move bytes between the probe and the server until C{deferred} fires.
        """
        for _ in range(rounds):
            if deferred.called:
                return
            self.endpoints.pumpAll()
            self.clock.advance(0)

    def runProbe(self, probeToRun: Probe, timeout: float = 10) -> Deferred:
        running = probeToRun.run(timeout)
        self.drive(running)
        return running

    def probeFailure(self, probeToRun: Probe, timeout: float = 10) -> str:
        """
        Run a probe that must fail and return its one-line message.
        """
        failure = self.failureResultOf(self.runProbe(probeToRun, timeout), ProbeError)
        message = str(failure.value)
        self.assertNotIn("\n", message)
        return message


class ProbeAgainstServerTests(ProbeTestCase):
    """
    A probe of the real wsecho site passes and reports what it measured.
    """

    def test_passesAndReports(self):
        """
        Every message comes back right, and the report has the health
        fields and one round trip per message.
        """
        report = self.successResultOf(self.runProbe(self.makeProbe()))
        self.assertEqual(report.health.version, __version__)
        self.assertEqual(report.health.connections, 0)
        self.assertEqual(len(report.sent), 6)
        self.assertEqual(len(report.roundTrips), 6)

    def test_healthThenWebSocket(self):
        """
        The probe reads /health over plain HTTP on the same host and port,
        then opens the WebSocket there.
        """
        self.successResultOf(self.runProbe(self.makeProbe()))
        self.assertEqual(
            self.endpoints.requested,
            [("127.0.0.1", 8080, False), ("127.0.0.1", 8080, False)],
        )

    def test_noHealthCheck(self):
        """
        Without a health path, the probe makes one connection only.
        """
        report = self.successResultOf(self.runProbe(self.makeProbe(healthPath=None)))
        self.assertIsNone(report.health)
        self.assertEqual(len(self.endpoints.requested), 1)

    def test_closesNormally(self):
        """
        The probe ends with a closing handshake, which the server logs as
        status 1000.
        """
        self.successResultOf(self.runProbe(self.makeProbe(healthPath=None)))
        [pump] = self.endpoints.pumps
        pump.flush()
        self.assertTrue(pump.clientIO.disconnected)
        self.assertEqual(self.factory.openConnections, set())

    def test_wrongPrefix(self):
        """
        A prefix other than the server's fails on the first text message and
        shows what was expected and what came back.
        """
        message = self.probeFailure(self.makeProbe(prefix="Echo: "))
        self.assertIn("wrong echo of message 1 (text message of", message)
        self.assertIn("expected b'Echo: wsecho probe 1 of 6", message)
        self.assertIn("got b'You said: wsecho probe 1 of 6", message)

    def test_emptyPrefix(self):
        """
        An empty prefix expects text back unchanged.
        """
        message = self.probeFailure(self.makeProbe(prefix=""))
        self.assertIn("expected b'wsecho probe 1 of 6", message)

    def test_handshakeRejected(self):
        """
        A path the server does not serve fails the WebSocket handshake.
        """
        testProbe = self.makeProbe(healthPath=None)
        testProbe.target = parseTarget("ws://127.0.0.1:8080/nowhere")
        message = self.probeFailure(testProbe)
        self.assertIn(
            "WebSocket handshake with ws://127.0.0.1:8080/nowhere failed", message
        )
        self.assertIn("404", message)

    def test_healthNotFound(self):
        """
        A health path the server does not serve fails the probe with the
        HTTP status.
        """
        message = self.probeFailure(self.makeProbe(healthPath="/nowhere"))
        self.assertEqual(
            message,
            "health check failed: http://127.0.0.1:8080/nowhere "
            "responded with HTTP 404",
        )

    def test_healthNotJSON(self):
        """
        A health path that serves HTML fails the probe.
        """
        message = self.probeFailure(self.makeProbe(healthPath="/"))
        self.assertIn("did not return JSON", message)


class ProbeAgainstBrokenServerTests(ProbeTestCase):
    """
    Servers that echo wrongly, close early or stay silent fail the probe with
    a message that names the step.
    """

    def test_binaryChanged(self):
        """
        Binary bytes that come back changed fail the probe.
        """
        messages = [Message(b"\x01\x02\x03", True)]
        testProbe = self.makeProbe(
            self.webSocketFactory(ReversingProtocol), healthPath=None, messages=messages
        )
        message = self.probeFailure(testProbe)
        self.assertEqual(
            message,
            "wrong echo of message 1 (binary message of 3 bytes): "
            "3 bytes came back and they differ",
        )

    def test_typeChanged(self):
        """
        A binary message that comes back as text fails the probe.
        """
        testProbe = self.makeProbe(
            self.webSocketFactory(TextForBinaryProtocol), healthPath=None
        )
        message = self.probeFailure(testProbe)
        self.assertEqual(
            message,
            "wrong echo of message 2 (binary message of 32 bytes): "
            "a text message came back",
        )

    def test_closedBeforeEcho(self):
        """
        A server that closes instead of echoing fails the probe with its
        close status.
        """
        testProbe = self.makeProbe(
            self.webSocketFactory(ClosingProtocol), healthPath=None
        )
        message = self.probeFailure(testProbe)
        self.assertEqual(
            message,
            "the server closed the connection before the echo: "
            "status 4000 closing on purpose",
        )

    def test_silentServerTimesOut(self):
        """
        A server that never echoes fails the probe after the timeout, and
        the probe drops the connection.
        """
        testProbe = self.makeProbe(
            self.webSocketFactory(SilentProtocol), healthPath=None
        )
        running = self.runProbe(testProbe, timeout=3)
        self.assertNoResult(running)
        self.clock.advance(3)
        failure = self.failureResultOf(running, ProbeError)
        self.assertEqual(
            str(failure.value),
            "timed out after 3 s waiting for the echo of message 1 of 6",
        )
        [transport] = self.endpoints.clientTransports
        self.assertTrue(transport.disconnecting)


class ProbeConnectionTests(ProbeTestCase):
    """
    Failures to connect are reported in one line.
    """

    def test_connectionRefused(self):
        """
        A refused connection names the address.
        """
        testProbe = self.makeProbe(healthPath=None)
        self.endpoints.result = fail(ConnectionRefusedError())
        self.assertEqual(
            self.probeFailure(testProbe),
            "connection refused by 127.0.0.1:8080 (ws://127.0.0.1:8080/ws)",
        )

    def test_healthConnectionRefused(self):
        """
        A refused health check connection names the health URL.
        """
        testProbe = self.makeProbe()
        self.endpoints.result = fail(ConnectionRefusedError())
        self.assertEqual(
            self.probeFailure(testProbe),
            "connection refused by 127.0.0.1:8080 (http://127.0.0.1:8080/health)",
        )

    def test_unknownHost(self):
        """
        A host name that does not resolve says so.
        """
        testProbe = self.makeProbe(healthPath=None)
        self.endpoints.result = fail(DNSLookupError("no such host"))
        self.assertEqual(
            self.probeFailure(testProbe),
            "cannot resolve the host of ws://127.0.0.1:8080/ws",
        )

    def test_connectTimesOut(self):
        """
        A connection that never completes fails after the timeout, naming
        the step.
        """
        testProbe = self.makeProbe(healthPath=None)
        self.endpoints.result = Deferred()
        running = testProbe.run(2.5)
        self.clock.advance(2.4)
        self.assertNoResult(running)
        self.clock.advance(0.1)
        failure = self.failureResultOf(running, ProbeError)
        self.assertEqual(
            str(failure.value), "timed out after 2.5 s connecting to 127.0.0.1:8080"
        )


class ParseTargetTests(SynchronousTestCase):
    """
    L{parseTarget} reads WebSocket URLs and the HTTP URLs of the same host.
    """

    def test_table(self):
        """
        Schemes, default ports, paths and IPv6 hosts are read as a browser
        reads them.
        """
        cases = [
            ("ws://example.com/ws", "ws://example.com:80/ws", "example.com", 80, False),
            (
                "wss://example.com/ws",
                "wss://example.com:443/ws",
                "example.com",
                443,
                True,
            ),
            ("http://example.com", "ws://example.com:80/", "example.com", 80, False),
            (
                "https://example.com:8443/a?b=1",
                "wss://example.com:8443/a?b=1",
                "example.com",
                8443,
                True,
            ),
            ("ws://[::1]:8080/ws", "ws://[::1]:8080/ws", "::1", 8080, False),
            ("WS://Example.com/ws", "ws://example.com:80/ws", "example.com", 80, False),
        ]
        for url, expectedURL, host, port, secure in cases:
            target = parseTarget(url)
            self.assertEqual(
                (target.url, target.host, target.port, target.secure),
                (expectedURL, host, port, secure),
                url,
            )

    def test_healthURL(self):
        """
        The health URL uses http or https on the same host and port.
        """
        self.assertEqual(
            parseTarget("wss://[::1]:8443/ws").healthURL("/health"),
            "https://[::1]:8443/health",
        )
        self.assertEqual(
            parseTarget("ws://example.com/ws").healthURL("/health"),
            "http://example.com:80/health",
        )

    def test_invalid(self):
        """
        Another scheme, a missing host and a bad port are rejected with a
        message naming the URL.
        """
        cases = [
            ("ftp://example.com/", "expected ws://HOST[:PORT]/PATH"),
            ("example.com:8080/ws", "expected ws://HOST[:PORT]/PATH"),
            ("ws:///ws", "the host is missing"),
            ("ws://example.com:99999/ws", "the port is not a number"),
        ]
        for url, expected in cases:
            error = self.assertRaises(ProbeError, parseTarget, url)
            self.assertIn(repr(url), str(error))
            self.assertIn(expected, str(error))


class ParseHealthTests(SynchronousTestCase):
    """
    L{parseHealth} accepts wsecho's health document and rejects anything
    else with the reason.
    """

    url = "http://example.com/health"

    def parse(self, document, code=200) -> Exception | probe.Health:
        body = (
            document if isinstance(document, bytes) else json.dumps(document).encode()
        )
        try:
            return parseHealth(self.url, code, body, 0.25)
        except ProbeError as error:
            return error

    def test_ok(self):
        """
        A 200 with status ok and the documented fields passes.
        """
        health = self.parse(
            {"status": "ok", "connections": 3, "uptime": 12.5, "version": "1.2"}
        )
        self.assertEqual(health, probe.Health("1.2", 3, 12.5, 0.25))

    def test_rejected(self):
        """
        Each wrong response fails with its own reason.
        """
        good = {"status": "ok", "connections": 3, "uptime": 12, "version": "1.2"}
        cases = [
            (good, 503, "responded with HTTP 503"),
            (b"<html>", 200, "did not return JSON"),
            ([1, 2], 200, "not a JSON object"),
            (
                {**good, "status": "draining"},
                200,
                "reports status 'draining', not 'ok'",
            ),
            ({**good, "connections": -1}, 200, "'connections' is -1"),
            ({**good, "connections": True}, 200, "'connections' is True"),
            ({**good, "uptime": "long"}, 200, "'uptime' is 'long'"),
            (
                {key: value for key, value in good.items() if key != "version"},
                200,
                "'version' is None",
            ),
        ]
        for document, code, expected in cases:
            result = self.parse(document, code)
            self.assertIsInstance(result, ProbeError, document)
            self.assertIn(expected, str(result))
            self.assertTrue(str(result).startswith("health check failed: "))


class MessageTests(SynchronousTestCase):
    """
    The messages that the probe sends.
    """

    def test_alternate(self):
        """
        Messages alternate between text and binary, starting with text.
        """
        messages = buildMessages(5)
        self.assertEqual(
            [message.isBinary for message in messages],
            [False, True, False, True, False],
        )

    def test_binarySizes(self):
        """
        Binary messages take the sizes in L{probe.BINARY_SIZES} in turn.
        """
        messages = buildMessages(8)
        sizes = [len(message.payload) for message in messages if message.isBinary]
        self.assertEqual(sizes, [32, 4096, 32, 4096])

    def test_textIsUnique(self):
        """
        Every text message is different, and one has characters outside
        ASCII.
        """
        texts = [
            message.payload for message in buildMessages(6) if not message.isBinary
        ]
        self.assertEqual(len(set(texts)), 3)
        self.assertTrue(any(not text.isascii() for text in texts))
        for text in texts:
            text.decode("utf-8")

    def test_expectedEcho(self):
        """
        Text gets the prefix, binary comes back unchanged.
        """
        self.assertEqual(Message(b"hi", False).expectedEcho(b"P: "), b"P: hi")
        self.assertEqual(Message(b"hi", True).expectedEcho(b"P: "), b"hi")


class ReportTests(SynchronousTestCase):
    """
    The lines printed for a successful probe.
    """

    def test_lines(self):
        """
        The report has one line for health, one for the echo and one for the
        latency, in milliseconds.
        """
        report = Report(
            "ws://example.com:80/ws",
            health=probe.Health("1.2", 3, 125.4, 0.0123),
            sent=[Message(b"a", False), Message(b"b", True), Message(b"c", False)],
            roundTrips=[0.002, 0.001, 0.004],
        )
        self.assertEqual(
            report.lines(),
            [
                "health: ok, version 1.2, 3 connections, up 125 s (12.3 ms)",
                "echo: 3 of 3 messages came back right (2 text, 1 binary) "
                "over ws://example.com:80/ws",
                "round trip: min 1.0 ms, median 2.0 ms, max 4.0 ms",
            ],
        )

    def test_medianOfEven(self):
        """
        The median of an even number of samples is the mean of the middle two.
        """
        self.assertEqual(Latency.of([4, 1, 3, 2]), Latency(1, 2.5, 4))


class CommandLineTests(SynchronousTestCase):
    """
    The command line rejects bad values and reports failures in one line.
    """

    def parseFails(self, argv) -> str:
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        error = self.assertRaises(SystemExit, probe.parseArguments, argv)
        self.assertEqual(error.code, 2)
        return stderr.getvalue()

    def test_defaults(self):
        """
        Without options, the probe uses the documented defaults.
        """
        arguments = probe.parseArguments(["ws://example.com/ws"])
        self.assertEqual(arguments.prefix, "You said: ")
        self.assertEqual(arguments.timeout, 10.0)
        self.assertEqual(arguments.count, 6)
        self.assertEqual(arguments.health_path, "/health")
        self.assertFalse(arguments.no_health)

    def test_badTimeout(self):
        """
        A timeout of zero is rejected.
        """
        self.assertIn(
            "expected a number of seconds above 0",
            self.parseFails(["--timeout", "0", "ws://x"]),
        )

    def test_badCount(self):
        """
        A message count of zero is rejected.
        """
        self.assertIn(
            "expected a count of 1 or more", self.parseFails(["--count", "0", "ws://x"])
        )

    def test_failureIsOneLine(self):
        """
        A failed probe writes one line to standard error and returns 1.
        """
        stderr = io.StringIO()
        self.patch(sys, "stderr", stderr)
        arguments = argparse.Namespace(
            url="ftp://example.com/",
            ca_file=None,
            prefix="",
            no_health=True,
            health_path="/health",
            count=1,
            timeout=1.0,
        )
        running = Deferred.fromCoroutine(probe.runFromArguments(None, arguments))
        self.assertEqual(self.successResultOf(running), 1)
        self.assertEqual(
            stderr.getvalue(),
            "wsecho.probe: error: invalid URL 'ftp://example.com/': "
            "expected ws://HOST[:PORT]/PATH or wss://...\n",
        )

    def test_caFileMissing(self):
        """
        A missing --ca-file is reported with its path.
        """
        path = self.mktemp()
        error = self.assertRaises(ProbeError, probe.loadTrustRoot, path)
        self.assertEqual(
            str(error), f"cannot read --ca-file {path}: No such file or directory"
        )

    def test_caFileWithoutCertificate(self):
        """
        A --ca-file without a PEM certificate is rejected.
        """
        path = self.mktemp()
        with open(path, "w") as pemFile:
            pemFile.write("not a certificate\n")
        error = self.assertRaises(ProbeError, probe.loadTrustRoot, path)
        self.assertEqual(str(error), f"--ca-file {path} contains no PEM certificate")


class DescribeConnectionErrorTests(SynchronousTestCase):
    """
    L{probe.describeConnectionError} names the failure in usual words.
    """

    def test_other(self):
        """
        An error without a special case keeps its own text.
        """
        error = Failure(OSError("network is unreachable")).value
        self.assertEqual(
            probe.describeConnectionError(error, "ws://example.com:80/ws"),
            "cannot connect to ws://example.com:80/ws: network is unreachable",
        )

    def test_tlsError(self):
        """
        An OpenSSL error names the host and OpenSSL's reasons.
        """
        from OpenSSL import SSL

        error = SSL.Error([("SSL routines", "", "certificate verify failed")])
        self.assertEqual(
            probe.describeConnectionError(error, "wss://example.com:443/ws"),
            "TLS handshake with example.com:443 failed: certificate verify failed",
        )
