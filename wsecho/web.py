"""
The HTTP side of wsecho: the site, its resources, and the resource that
hands a WebSocket upgrade request over to the echo protocol.
"""

from __future__ import annotations

from twisted.internet.interfaces import IAddress, IReactorTime
from twisted.logger import Logger
from twisted.protocols.policies import ProtocolWrapper
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from wsecho.addresses import formatAddress
from wsecho.channel import WebSocketChannel
from wsecho.echo import EchoServerFactory
from wsecho.monitoring import HealthResource, MetricsResource
from wsecho.pages import BrowserPage
from wsecho.ratelimit import RateLimitedLog
from wsecho.responses import renderText

log = Logger()

IDLE_TIMEOUT = 75
"""
Seconds an idle keep-alive HTTP connection stays open: longer than the 60 s
that nginx and AWS load balancers keep idle upstream connections, so that
they, not the server, close them, and no request races a close.
"""


def headerTokens(request: Request, name: bytes) -> set[bytes]:
    """
    Collect the comma-separated tokens of a request header, lowercased.
    """
    tokens = set()
    for value in request.requestHeaders.getRawHeaders(name, []):
        for token in value.split(b","):
            tokens.add(token.strip().lower())
    return tokens


def isWebSocketUpgrade(request: Request) -> bool:
    """
    Tell whether a request is a WebSocket upgrade.

    C{Connection: upgrade} alone does not count: nginx proxies such as
    Elastic Beanstalk's send it on every request, plain ones included.
    """
    return b"websocket" in headerTokens(request, b"upgrade")


def webSocketURL(request: Request, trustProxies: bool = False) -> str:
    """
    Build the C{ws://} or C{wss://} URL of the resource a request addressed.

    @param trustProxies: Whether C{X-Forwarded-Proto: https}, set by a load
        balancer that ends TLS, makes the URL C{wss://}.
    """
    secure = request.isSecure()
    if trustProxies:
        forwarded = request.getHeader(b"x-forwarded-proto") or b""
        secure = secure or forwarded.strip().lower() == b"https"
    scheme = "wss" if secure else "ws"
    hostHeader = request.getHeader(b"host")
    if hostHeader:
        authority = hostHeader.decode("ascii", "replace")
    else:
        authority = formatAddress(request.getHost())
    path = request.path.decode("ascii", "replace")
    return f"{scheme}://{authority}{path}"


class NotFound(Resource):
    """
    A plain-text 404 for every method.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        path = request.path.decode("ascii", "replace")
        return renderText(request, 404, f"Not found: {path}\n")


class Folder(Resource):
    """
    A folder of the site: known children, and a plain 404 for anything else.

    @ivar index: The resource for the folder itself, or L{None} for a 404.
    """

    def __init__(self, index: Resource | None = None) -> None:
        super().__init__()
        self.index = index

    def getChild(self, path: bytes, request: Request) -> Resource:
        if path == b"" and self.index is not None:
            return self.index
        return NotFound()

    def render(self, request: Request) -> bytes:
        if self.index is not None:
            return self.index.render(request)
        return NotFound().render(request)


class WebSocketEndpoint(Resource):
    """
    Serve the WebSocket: hand upgrade requests to the factory's protocol,
    turn them away with 503 past the connection limit, and serve anything
    else with the fallback resource, or with C{426 Upgrade Required}.
    """

    isLeaf = True

    def __init__(
        self, factory: EchoServerFactory, fallback: Resource | None = None
    ) -> None:
        super().__init__()
        self.factory = factory
        self.fallback = fallback
        self.limitLog = RateLimitedLog(
            log,
            "WebSocket connections rejected at the limit of {maxConnections} "
            "open connections: {count}",
            factory.reactor,
        )

    def render(self, request: Request) -> bytes | int:
        if request.postpath and request.postpath != [b""]:
            return NotFound().render(request)
        if not isWebSocketUpgrade(request):
            if self.fallback is not None:
                return self.fallback.render(request)
            return self.renderUpgradeRequired(request)
        if self.factory.countConnections >= self.factory.settings.maxConnections:
            return self.renderTooMany(request)
        self.switchProtocol(request)
        return NOT_DONE_YET

    def renderUpgradeRequired(self, request: Request) -> bytes:
        request.setHeader(b"upgrade", b"websocket")
        request.setHeader(b"connection", b"Upgrade")
        url = webSocketURL(request, bool(self.factory.settings.trustForwardedFor))
        text = f"426 Upgrade Required: connect a WebSocket client to {url}\n"
        return renderText(request, 426, text, b"Upgrade Required")

    def renderTooMany(self, request: Request) -> bytes:
        maxConnections = self.factory.settings.maxConnections
        self.factory.stats.rejections["max_connections"] += 1
        self.limitLog.event(maxConnections=maxConnections)
        request.setHeader(b"retry-after", b"5")
        text = (
            "503 Service Unavailable: the server has reached its limit of "
            f"{maxConnections} WebSocket connections; try again later\n"
        )
        return renderText(request, 503, text)

    def switchProtocol(self, request: Request) -> None:
        """
        Take the connection away from HTTP and replay the upgrade request to a
        new WebSocket protocol, which then runs the opening handshake.
        """
        channel = request.channel
        transport = channel.transport
        protocol = self.factory.buildProtocol(transport.getPeer())

        channel.switchProtocol(protocol)
        transport.unregisterProducer()
        if isinstance(transport, ProtocolWrapper):
            transport.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        protocol.makeConnection(transport)
        transport.resumeProducing()

        protocol.dataReceived(self.rebuildRequest(request))
        # The request never finishes; dropping it from the channel lets both
        # be freed now rather than by a later garbage collection.
        channel.requests.remove(request)

    @staticmethod
    def rebuildRequest(request: Request) -> bytes:
        """
        Serialize the request line and headers of a parsed request.
        """
        lines = [request.method + b" " + request.uri + b" " + request.clientproto]
        for name, values in request.requestHeaders.getAllRawHeaders():
            # A header sent several times becomes one comma-separated line,
            # which HTTP defines as equal; Autobahn rejects repeated lines.
            lines.append(name + b": " + b", ".join(values))
        return b"\r\n".join(lines) + b"\r\n\r\n"


class EchoSite(Site):
    """
    The wsecho site: L{WebSocketChannel} connections with a deadline for each
    request, and no access log, so that health checks every few seconds do not
    flood the log.

    @ivar requestTimeout: Seconds a client has to send a whole request.
    """

    protocol = WebSocketChannel
    noisy = False

    def __init__(
        self, root: Resource, factory: EchoServerFactory, reactor: IReactorTime
    ) -> None:
        super().__init__(root, timeout=IDLE_TIMEOUT, reactor=reactor)
        self.factory = factory
        self.requestTimeout = factory.settings.handshakeTimeout
        self.timeoutLog = RateLimitedLog(
            log,
            "Connections dropped for sending no complete request within "
            "{timeout} s: {count} (the last from {peer})",
            reactor,
        )

    def log(self, request: Request) -> None:
        pass

    def requestTimedOut(self, peer: IAddress) -> None:
        """
        Count and log a connection dropped for a late request.
        """
        self.factory.stats.handshakeFailures["timeout"] += 1
        self.timeoutLog.event(
            timeout=f"{self.requestTimeout:g}", peer=formatAddress(peer)
        )

    def stopFactory(self) -> None:
        self.timeoutLog.cancel()
        super().stopFactory()


def buildSite(
    factory: EchoServerFactory, reactor: IReactorTime | None = None
) -> EchoSite:
    """
    Build the site: the WebSocket at the factory's path, the browser page at
    C{/}, C{/health} and C{/metrics}.

    @param factory: The WebSocket factory behind the endpoint.
    @param reactor: The clock for HTTP timeouts; the factory's by default.
    """
    path = factory.settings.path
    page = BrowserPage(path)
    root = Folder(page)
    root.putChild(b"health", HealthResource(factory))
    root.putChild(b"metrics", MetricsResource(factory))
    segments = [segment.encode("utf-8") for segment in path.strip("/").split("/")]
    if segments == [b""]:
        # The WebSocket at the root shares it with the page, which plain
        # requests such as load balancer health checks get.
        root.index = WebSocketEndpoint(factory, fallback=page)
    else:
        endpoint = WebSocketEndpoint(factory)
        parent: Resource = root
        for segment in segments[:-1]:
            child = parent.children.get(segment) or Folder()
            parent.putChild(segment, child)
            parent = child
        parent.putChild(segments[-1], endpoint)
    return EchoSite(root, factory, reactor or factory.reactor)
