"""
The WebSocket echo protocol and its factory.
"""

from __future__ import annotations

from autobahn.twisted.websocket import (
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.types import ConnectionRequest
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from wsecho.addresses import formatAddress

log = Logger()

NO_STATUS_RECEIVED = 1005
"""
The close code RFC 6455 reserves for a close frame that carried no code.
"""


class EchoServerProtocol(WebSocketServerProtocol):
    """
    Echo every message back to its sender and log the connection's life.

    A text message comes back as text with the factory's prefix in front of
    it; a binary message comes back unchanged.

    @ivar peer: The client address shown in log lines, C{host:port}.
    @ivar openedAt: When the opening handshake completed, in seconds of the
        factory's reactor, or L{None} before that.
    """

    factory: EchoServerFactory

    peer = "unknown"
    path = ""
    origin: str | None = None
    openedAt: float | None = None
    messagesIn = 0
    messagesOut = 0
    bytesIn = 0
    bytesOut = 0

    def connectionMade(self) -> None:
        super().connectionMade()
        self.peer = formatAddress(self.transport.getPeer())

    def onConnect(self, request: ConnectionRequest) -> None:
        self.path = request.path
        self.origin = request.origin
        return None

    def onOpen(self) -> None:
        self.openedAt = self.factory.reactor.seconds()
        self.factory.openConnections.add(self)
        log.info(
            "Connection from {peer}",
            peer=self.peer,
            path=self.path,
            origin=self.origin,
        )

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.messagesIn += 1
        self.bytesIn += len(payload)
        if not isBinary:
            payload = self.factory.prefix + payload
        self.sendMessage(payload, isBinary)
        self.messagesOut += 1
        self.bytesOut += len(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.openedAt is None:
            return
        self.factory.openConnections.discard(self)
        if code is None:
            code = NO_STATUS_RECEIVED
        fields = dict(
            peer=self.peer,
            code=code,
            reason=reason or "",
            clean=wasClean,
            duration=self.factory.reactor.seconds() - self.openedAt,
            messagesIn=self.messagesIn,
            messagesOut=self.messagesOut,
            bytesIn=self.bytesIn,
            bytesOut=self.bytesOut,
        )
        if reason:
            log.info("{peer} disconnected with status {code} {reason}", **fields)
        else:
            log.info("{peer} disconnected with status {code}", **fields)


class EchoServerFactory(WebSocketServerFactory):
    """
    Build L{EchoServerProtocol} instances and keep track of the open ones.

    @ivar prefix: The UTF-8 bytes put before every echoed text message.
    @ivar openConnections: The protocols whose opening handshake completed
        and which have not closed yet.
    """

    protocol = EchoServerProtocol

    def __init__(
        self, prefix: str = "You said: ", reactor: IReactorTime | None = None
    ) -> None:
        super().__init__(reactor=reactor)
        self.prefix = prefix.encode("utf-8")
        self.openConnections: set[EchoServerProtocol] = set()
        # Send a close frame with the RFC 6455 code before dropping a
        # connection for a protocol error, so that clients see 1002, 1007 or
        # 1009 instead of 1006.  Setting any option resets allowNullOrigin,
        # so it is passed every time.
        self.setProtocolOptions(failByDrop=False, allowNullOrigin=True)
