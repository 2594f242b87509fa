"""
Listening sockets: bound while twistd starts, so that a port in use stops
start-up with one clear line, and adopted by the reactor once it runs.
"""

from __future__ import annotations

import errno
import socket
from dataclasses import dataclass

from twisted.application.service import Service
from twisted.internet import endpoints
from twisted.internet.abstract import isIPv6Address
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.interfaces import (
    IListeningPort,
    IOpenSSLServerConnectionCreator,
    IProtocolFactory,
    IReactorCore,
    IReactorSocket,
)
from twisted.internet.testing import MemoryReactor
from twisted.logger import Logger
from twisted.protocols.tls import TLSMemoryBIOFactory
from twisted.python.failure import Failure

from wsecho.addresses import formatAddress

log = Logger()

DEFAULT_BACKLOG = 1024
"""
The listen queue length for bare port numbers; a burst of reconnecting
clients after a deploy overflows Twisted's default of 50.
"""

NO_IPV6_ERRORS = (errno.EAFNOSUPPORT, errno.EADDRNOTAVAIL, errno.EPROTONOSUPPORT)


class BindError(Exception):
    """
    A listening socket could not be created; the message names the address.
    """


@dataclass
class SocketListener:
    """
    A bound and listening socket, waiting to be adopted by the reactor.

    @ivar socket: The listening socket.
    @ivar description: The endpoint description it was bound for.
    @ivar tls: The TLS context for C{ssl:} descriptions, else L{None}.
    """

    socket: socket.socket
    description: str
    tls: IOpenSSLServerConnectionCreator | None = None

    def listen(
        self, reactor: IReactorSocket, factory: IProtocolFactory
    ) -> IListeningPort:
        """
        Start accepting connections on the socket for C{factory}.
        """
        if self.tls is not None:
            factory = TLSMemoryBIOFactory(self.tls, False, factory)
        port = reactor.adoptStreamPort(
            self.socket.fileno(), self.socket.family, factory
        )
        # The reactor works on its own duplicate of the descriptor.
        self.socket.close()
        return port


def bindDualStack(port: int, backlog: int = DEFAULT_BACKLOG) -> SocketListener:
    """
    Listen on every IPv4 and IPv6 address of the host, falling back to IPv4
    alone where the host has no IPv6.

    @raise BindError: The port cannot be bound.
    """
    try:
        sock = bindSocket(socket.AF_INET6, "::", port, backlog, dualStack=True)
    except OSError as error:
        if error.errno not in NO_IPV6_ERRORS:
            raise BindError(bindFailure(f"[::]:{port}", error)) from None
        log.warn(
            "IPv6 is not available on this host ({error}); listening on IPv4 only",
            error=error.strerror,
        )
    else:
        return SocketListener(sock, f"tcp6:{port}:interface=\\:\\:")
    try:
        sock = bindSocket(socket.AF_INET, "0.0.0.0", port, backlog)  # noqa: S104
    except OSError as error:
        raise BindError(bindFailure(f"0.0.0.0:{port}", error)) from None
    return SocketListener(sock, f"tcp:{port}")


def bindDescription(description: str) -> SocketListener | EndpointListener:
    """
    Bind the socket for a Twisted server endpoint description.

    C{tcp:}, C{tcp6:} and C{ssl:} descriptions are bound at once; any other
    endpoint type listens when the service starts.

    @raise BindError: The address cannot be bound.
    """
    recorded = recordListen(description)
    if recorded is None:
        return EndpointListener(description)
    port, backlog, interface, tls = recorded
    family = socket.AF_INET6 if isIPv6Address(interface) else socket.AF_INET
    host = interface or "0.0.0.0"  # noqa: S104
    try:
        sock = bindSocket(family, host, port, backlog)
    except OSError as error:
        address = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
        raise BindError(bindFailure(address, error)) from None
    return SocketListener(sock, description, tls)


def recordListen(
    description: str,
) -> tuple[int, int, str, IOpenSSLServerConnectionCreator | None] | None:
    """
    Find what a C{tcp:}, C{tcp6:} or C{ssl:} description listens on, by
    letting its endpoint listen on a reactor that only records the call.

    @return: The port, backlog, interface and TLS context (L{None} for
        plain TCP), or L{None} for other endpoint types.
    """
    recorder = MemoryReactor()
    endpoints.serverFromString(recorder, description).listen(None)
    if recorder.tcpServers:
        port, _, backlog, interface = recorder.tcpServers[0]
        return port, backlog, interface, None
    if recorder.sslServers:
        port, _, tls, backlog, interface = recorder.sslServers[0]
        return port, backlog, interface, tls
    return None


def bindSocket(
    family: socket.AddressFamily,
    host: str,
    port: int,
    backlog: int,
    dualStack: bool = False,
) -> socket.socket:
    """
    Create, bind and listen on a non-blocking TCP socket.
    """
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if dualStack:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        sock.bind((host, port))
        sock.listen(backlog)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def bindFailure(address: str, error: OSError) -> str:
    """
    Describe a failed bind in one line.
    """
    if error.errno == errno.EADDRINUSE:
        return (
            f"cannot listen on {address}: the port is already in use; "
            "stop the other server or choose another port with --port or "
            "SERVER_PORT"
        )
    return f"cannot listen on {address}: {error.strerror}"


@dataclass
class EndpointListener:
    """
    An endpoint description of a type other than TCP or TLS, which listens
    only once the reactor runs.
    """

    description: str

    def listen(
        self, reactor: IReactorCore, factory: IProtocolFactory
    ) -> Deferred[IListeningPort]:
        """
        Start listening on the endpoint.
        """
        endpoint = endpoints.serverFromString(reactor, self.description)
        return endpoint.listen(factory)


class ListeningService(Service):
    """
    Accept connections for a factory on a listener while running.
    """

    def __init__(
        self,
        listener: SocketListener | EndpointListener,
        factory: IProtocolFactory,
        reactor: IReactorSocket | None = None,
    ) -> None:
        self.listener = listener
        self.factory = factory
        self.reactor = reactor
        self.port: IListeningPort | None = None

    def startService(self) -> None:
        super().startService()
        if self.reactor is None:
            from twisted.internet import reactor

            self.reactor = reactor
        listening = maybeDeferred(self.listener.listen, self.reactor, self.factory)
        listening.addCallbacks(self.listening, self.listenFailed)

    def listening(self, port: IListeningPort) -> None:
        self.port = port
        host = port.getHost()
        log.info(
            "Listening for connections on port {port} ({address})",
            port=getattr(host, "port", None),
            address=formatAddress(host),
            endpoint=self.listener.description,
        )

    def listenFailed(self, failure: Failure) -> None:
        log.critical(
            "Cannot listen on {endpoint}: {error}",
            endpoint=self.listener.description,
            error=failure.getErrorMessage(),
        )
        self.reactor.stop()

    def stopService(self) -> Deferred[None] | None:
        super().stopService()
        if self.port is None:
            return None
        port, self.port = self.port, None
        return maybeDeferred(port.stopListening)
