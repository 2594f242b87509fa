"""
The WebSocket echo protocol and its factory.
"""

from __future__ import annotations

import txaio
from autobahn.twisted.websocket import (
    WebSocketServerFactory,
    WebSocketServerProtocol,
)
from autobahn.websocket.compress import (
    PERMESSAGE_COMPRESSION_EXTENSION,
    PerMessageDeflateOffer,
    PerMessageDeflateOfferAccept,
)
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.types import ConnectionDeny, ConnectionRequest
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IReactorTime
from twisted.logger import Logger

from wsecho.addresses import formatAddress, forwardedClient
from wsecho.fastpath import FastEchoMixin
from wsecho.flow import applyBackpressure
from wsecho.origins import compileOrigins, isOriginAllowed
from wsecho.ratelimit import RateLimitedLog
from wsecho.settings import Settings
from wsecho.stats import ServerStats, Traffic
from wsecho.timers import ReactorTimer

log = Logger()

NO_STATUS_RECEIVED = 1005
"""
The close code RFC 6455 reserves for a close frame that carried no code.
"""

GOING_AWAY = 1001

CLOSE_HANDSHAKE_TIMEOUT = 2.0
"""
Seconds to wait for the client's reply to a close frame before dropping
the connection. A client that broke the protocol may never send one, and a
graceful stop waits no longer than C{--drain-timeout} in any case.
"""

HANDSHAKE_FAILURE_REASONS = {400: "bad_request", 403: "origin"}


class EchoServerProtocol(FastEchoMixin, WebSocketServerProtocol):
    """
    Echo every message back to its sender and log the connection's life.

    A text message comes back as text with the factory's prefix in front of
    it; a binary message comes back unchanged.

    @ivar peer: The client address shown in log lines: C{host:port} of the
        TCP peer, or the address taken from C{X-Forwarded-For}.
    @ivar openedAt: When the opening handshake completed, in seconds of the
        factory's reactor, or L{None} before that.
    @ivar traffic: Messages and bytes each way.
    """

    factory: EchoServerFactory

    peer = "unknown"
    path = ""
    origin: str | None = None
    openedAt: float | None = None
    closeWaiters: list[Deferred[bool]] | None = None

    def connectionMade(self) -> None:
        super().connectionMade()
        self.peer = formatAddress(self.transport.getPeer())
        self.traffic = Traffic()
        applyBackpressure(self.transport)

    def onConnect(self, request: ConnectionRequest) -> str | None:
        """
        Check the origin, note the client's address and path, and accept the
        first subprotocol the client offers: an echo speaks them all, and
        browsers fail a handshake that selects none of the subprotocols they
        offered.
        """
        factory = self.factory
        if factory.settings.trustForwardedFor:
            forwarded = forwardedClient(
                request.headers.get("x-forwarded-for"),
                factory.settings.trustForwardedFor,
            )
            if forwarded is not None:
                self.peer = forwarded
        self.path = request.path
        self.origin = request.origin or None
        host = request.headers.get("host")
        if not isOriginAllowed(self.origin, factory.allowedOrigins, host):
            raise ConnectionDeny(403, f"origin {self.origin!r} is not allowed")
        if request.protocols:
            return request.protocols[0]
        return None

    def onOpen(self) -> None:
        self.releaseHandshake()
        self.openedAt = self.factory.reactor.seconds()
        self.factory.openConnections.add(self)
        self.factory.stats.connections += 1
        log.info(
            "Connection from {peer}",
            peer=self.peer,
            path=self.path,
            origin=self.origin,
        )

    def releaseHandshake(self) -> None:
        """
        Drop what Autobahn keeps of the opening handshake once it is done,
        about 2 KiB a connection that an idle server would otherwise hold.

        C{send_queue}, an empty deque of 760 bytes, becomes an empty tuple:
        Autobahn only reads its length unless a send uses C{sync=True} or a
        C{chopsize}, which wsecho never does.
        """
        self.http_headers = {}
        self.http_request_data = b""
        self.http_response_data = ""
        self.send_queue = ()

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        traffic = self.traffic
        traffic.messagesIn += 1
        traffic.bytesIn += len(payload)
        if self.state != WebSocketProtocol.STATE_OPEN:
            # A message that arrives after a close frame was sent is not
            # echoed: the connection is closing, and Autobahn would raise.
            return
        if not isBinary:
            payload = self.factory.prefix + payload
        # Autobahn applies the size limit to messages it sends too, but an
        # echo of a message at the limit is longer by the prefix.
        limit, self.maxMessagePayloadSize = self.maxMessagePayloadSize, 0
        try:
            self.sendMessage(payload, isBinary)
        finally:
            self.maxMessagePayloadSize = limit
        traffic.messagesOut += 1
        traffic.bytesOut += len(payload)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self.openedAt is None:
            return
        factory = self.factory
        factory.openConnections.discard(self)
        if self.closedByMe and self.localCloseCode is not None:
            # The server started the closing handshake (a protocol error, a
            # message too big, a shutdown): its code is why the connection
            # ended, even when the client dropped it without replying.
            code = self.localCloseCode
            reason = (self.localCloseReason or b"").decode("utf-8", "replace")
        elif code is None:
            code = NO_STATUS_RECEIVED
        factory.stats.closeCodes[code] += 1
        factory.stats.closedTraffic.add(self.traffic)
        self.logClose(wasClean, code, reason or "")
        waiters, self.closeWaiters = self.closeWaiters or [], None
        for waiter in waiters:
            waiter.callback(wasClean)

    def logClose(self, wasClean: bool, code: int, reason: str) -> None:
        fields = dict(
            peer=self.peer,
            code=code,
            reason=reason,
            clean=wasClean,
            duration=self.factory.reactor.seconds() - self.openedAt,
            messagesIn=self.traffic.messagesIn,
            messagesOut=self.traffic.messagesOut,
            bytesIn=self.traffic.bytesIn,
            bytesOut=self.traffic.bytesOut,
        )
        if reason:
            log.info("{peer} disconnected with status {code} {reason}", **fields)
        else:
            log.info("{peer} disconnected with status {code}", **fields)

    def failHandshake(
        self, reason: str, code: int = 400, responseHeaders: list | None = None
    ) -> None:
        label = HANDSHAKE_FAILURE_REASONS.get(code, f"http_{code}")
        self.factory.stats.handshakeFailures[label] += 1
        self.factory.handshakeLog.event(peer=self.peer, code=code, reason=reason)
        super().failHandshake(reason, code, responseHeaders)

    def _parseExtensionsHeader(
        self, header: str, removeQuotes: bool = True
    ) -> list[tuple[str, dict]]:
        # Autobahn fails the whole handshake with 400 when it cannot parse a
        # compression offer. RFC 7692 lets a server decline any offer, so an
        # offer that is malformed, or made while compression is off, is
        # dropped here and the connection goes on uncompressed.
        try:
            extensions = super()._parseExtensionsHeader(header, removeQuotes)
        except Exception:
            return []
        return [
            (name, parameters)
            for name, parameters in extensions
            if self.isUsableOffer(name, parameters)
        ]

    def isUsableOffer(self, name: str, parameters: dict) -> bool:
        """
        Tell whether an extension offer is one to keep: any extension other
        than compression, which Autobahn ignores, or a well-formed compression
        offer while compression is on.
        """
        if name not in PERMESSAGE_COMPRESSION_EXTENSION:
            return True
        if not self.factory.settings.compression:
            return False
        try:
            PERMESSAGE_COMPRESSION_EXTENSION[name]["Offer"].parse(parameters)
        except Exception:
            return False
        return True

    def goAway(self) -> Deferred[bool]:
        """
        Start the closing handshake with code 1001 (going away).

        Autobahn's public C{sendClose} accepts only 1000 and 3000-4999, so the
        close frame is sent through the lower-level call.

        @return: A L{Deferred} that fires with whether the connection closed
            cleanly, once it has closed.
        """
        closed: Deferred[bool] = Deferred()
        if self.closeWaiters is None:
            self.closeWaiters = []
        self.closeWaiters.append(closed)
        self.sendCloseFrame(
            code=GOING_AWAY, reasonUtf8=b"server shutting down", isReply=False
        )
        return closed


def quietAutobahn() -> None:
    """
    Turn off Autobahn's own log lines below error level.

    Autobahn logs a failed connection several times over at warning level;
    wsecho logs each connection's end once, with the close code and reason.
    """
    txaio.set_global_log_level("error")


def acceptDeflate(offers: list) -> PerMessageDeflateOfferAccept | None:
    """
    Accept the first permessage-deflate offer, as browsers make it.
    """
    for offer in offers:
        if isinstance(offer, PerMessageDeflateOffer):
            return PerMessageDeflateOfferAccept(offer)
    return None


class EchoServerFactory(WebSocketServerFactory):
    """
    Build L{EchoServerProtocol} instances and keep track of the open ones.

    @ivar settings: The server's settings.
    @ivar prefix: The UTF-8 bytes put before every echoed text message.
    @ivar openConnections: The protocols whose opening handshake completed
        and which have not closed yet.
    @ivar stats: Totals since start.
    """

    protocol = EchoServerProtocol

    def __init__(
        self, settings: Settings | None = None, reactor: IReactorTime | None = None
    ) -> None:
        super().__init__(reactor=reactor)
        self.settings = settings = settings or Settings()
        self.prefix = settings.prefix.encode("utf-8")
        self.openConnections: set[EchoServerProtocol] = set()
        self.stats = ServerStats(startedAt=self.reactor.seconds())
        self.allowedOrigins = compileOrigins(settings.allowedOrigins)
        self._batched_timer = ReactorTimer(self.reactor)
        self.handshakeLog = RateLimitedLog(
            log,
            "WebSocket handshakes rejected: {count} (the last from {peer}: "
            "{code} {reason})",
            self.reactor,
        )
        self.setProtocolOptions(
            # Send a close frame with the RFC 6455 code before dropping a
            # connection for a protocol error, so that clients see 1002, 1007
            # or 1009 instead of 1006.
            failByDrop=False,
            # Reply to a client's close frame with the same code and reason.
            echoCloseCodeReason=True,
            # Origins are checked in onConnect, which rejects with 403.
            allowNullOrigin=True,
            maxMessagePayloadSize=settings.maxMessageSize,
            maxFramePayloadSize=settings.maxMessageSize,
            autoPingInterval=settings.pingInterval,
            autoPingTimeout=settings.pingTimeout,
            openHandshakeTimeout=settings.handshakeTimeout,
            closeHandshakeTimeout=CLOSE_HANDSHAKE_TIMEOUT,
            perMessageCompressionAccept=(
                acceptDeflate if settings.compression else lambda offers: None
            ),
        )
