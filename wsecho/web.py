"""
The HTTP side of wsecho: the site, and the resource that hands a WebSocket
upgrade request over to the echo protocol.
"""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerFactory
from twisted.internet.interfaces import IProtocol, IReactorTime
from twisted.protocols.policies import ProtocolWrapper
from twisted.web.http import HTTPChannel
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from wsecho.pages import BrowserPage


def headerTokens(request: Request, name: bytes) -> set[bytes]:
    """
    Collect the comma-separated tokens of a request header, lowercased.

    @param request: The request to read.
    @param name: The header name.
    @return: Every token of every value of that header.
    """
    tokens = set()
    for value in request.requestHeaders.getRawHeaders(name, []):
        for token in value.split(b","):
            tokens.add(token.strip().lower())
    return tokens


def isWebSocketUpgrade(request: Request) -> bool:
    """
    Tell whether a request asks to switch to the WebSocket protocol.

    C{Connection: upgrade} alone does not count: nginx proxies such as
    Elastic Beanstalk's send it on every request, plain ones included.
    """
    return b"websocket" in headerTokens(request, b"upgrade")


def webSocketURL(request: Request) -> str:
    """
    Build the C{ws://} or C{wss://} URL of the resource a request addressed.
    """
    scheme = "wss" if request.isSecure() else "ws"
    host = request.getRequestHostname().decode("ascii", "replace")
    port = request.getHost().port
    hostHeader = request.getHeader(b"host")
    if hostHeader:
        authority = hostHeader.decode("ascii", "replace")
    else:
        authority = f"{host}:{port}"
    path = request.path.decode("ascii", "replace")
    return f"{scheme}://{authority}{path}"


def renderText(
    request: Request, code: int, text: str, message: bytes | None = None
) -> bytes:
    """
    Set a response code and a plain-text body.
    """
    request.setResponseCode(code, message)
    request.setHeader(b"content-type", b"text/plain; charset=utf-8")
    return text.encode("utf-8")


class NotFound(Resource):
    """
    A plain-text 404 for every method.
    """

    isLeaf = True

    def render(self, request: Request) -> bytes:
        path = request.path.decode("ascii", "replace")
        return renderText(request, 404, f"Not found: {path}\n")


class Root(Resource):
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


class WebSocketChannel(HTTPChannel):
    """
    An HTTP channel that can hand its connection over to a WebSocket protocol.

    @ivar upgradedTo: The protocol that now owns the connection, or L{None}
        while the channel still speaks HTTP.
    """

    upgradedTo: IProtocol | None = None

    def rawDataReceived(self, data: bytes) -> None:
        # Bytes that arrived in the same read as the upgrade request (a client
        # may send its first frame without waiting for the 101) still pass
        # through the channel once; they belong to the WebSocket.
        if self.upgradedTo is not None:
            self.upgradedTo.dataReceived(data)
        else:
            super().rawDataReceived(data)


class WebSocketEndpoint(Resource):
    """
    Serve the WebSocket: hand upgrade requests to the factory's protocol and
    answer anything else with C{426 Upgrade Required}.
    """

    isLeaf = True

    def __init__(self, factory: WebSocketServerFactory) -> None:
        super().__init__()
        self.factory = factory

    def render(self, request: Request) -> bytes | int:
        if request.postpath and request.postpath != [b""]:
            return NotFound().render(request)
        if not isWebSocketUpgrade(request):
            return self.renderUpgradeRequired(request)
        self.switchProtocol(request)
        return NOT_DONE_YET

    def renderUpgradeRequired(self, request: Request) -> bytes:
        request.setHeader(b"upgrade", b"websocket")
        request.setHeader(b"connection", b"Upgrade")
        url = webSocketURL(request)
        text = f"426 Upgrade Required: connect a WebSocket client to {url}\n"
        return renderText(request, 426, text, b"Upgrade Required")

    def switchProtocol(self, request: Request) -> None:
        """
        Take the connection away from HTTP and replay the upgrade request to a
        new WebSocket protocol, which then runs the opening handshake.
        """
        channel = request.channel
        transport = channel.transport
        protocol = self.factory.buildProtocol(transport.getPeer())

        channel.upgradedTo = protocol
        channel.transport = None
        transport.unregisterProducer()
        if isinstance(transport, ProtocolWrapper):
            transport.wrappedProtocol = protocol
        else:
            transport.protocol = protocol
        protocol.makeConnection(transport)
        transport.resumeProducing()

        protocol.dataReceived(self.rebuildRequest(request))

    @staticmethod
    def rebuildRequest(request: Request) -> bytes:
        """
        Serialize the request line and headers the way the client sent them.
        """
        lines = [request.method + b" " + request.uri + b" " + request.clientproto]
        for name, values in request.requestHeaders.getAllRawHeaders():
            for value in values:
                lines.append(name + b": " + value)
        return b"\r\n".join(lines) + b"\r\n\r\n"


class EchoSite(Site):
    """
    The wsecho site: L{WebSocketChannel} connections, and no access log, so
    that health checks every few seconds do not flood the log.
    """

    protocol = WebSocketChannel
    noisy = False

    def log(self, request: Request) -> None:
        pass


def buildSite(
    factory: WebSocketServerFactory, path: str, reactor: IReactorTime | None = None
) -> EchoSite:
    """
    Build the site that serves the WebSocket at C{path}.

    @param factory: The WebSocket factory behind the endpoint.
    @param path: The URL path of the WebSocket, starting with C{/}.
    @param reactor: The clock for HTTP timeouts; the global reactor by default.
    """
    root = Root(BrowserPage())
    endpoint = WebSocketEndpoint(factory)
    segments = [segment.encode("utf-8") for segment in path.strip("/").split("/")]
    if segments == [b""]:
        root = endpoint
    else:
        parent: Resource = root
        for segment in segments[:-1]:
            child = Root()
            parent.putChild(segment, child)
            parent = child
        parent.putChild(segments[-1], endpoint)
    return EchoSite(root, reactor=reactor)
