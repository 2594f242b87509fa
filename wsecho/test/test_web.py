"""
Tests for L{wsecho.web}: plain HTTP responses and the hand-over to WebSocket.
"""

from wsecho.settings import Settings
from wsecho.test.support import TEXT, ServerTestCase, clientFrame, upgradeRequest


def plainRequest(path: bytes, *headers: bytes, method: bytes = b"GET") -> bytes:
    lines = [method + b" " + path + b" HTTP/1.1", b"Host: echo.example:8080", *headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def splitResponse(response: bytes) -> tuple[bytes, dict[bytes, bytes], bytes]:
    head, _, body = response.partition(b"\r\n\r\n")
    statusLine, *headerLines = head.split(b"\r\n")
    headers = {}
    for line in headerLines:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    return statusLine, headers, body


class PlainHTTPTests(ServerTestCase):
    """
    Requests without a WebSocket upgrade get plain HTTP responses.
    """

    def request(self, path: bytes, *headers: bytes, method: bytes = b"GET"):
        connection = self.connect()
        connection.send(plainRequest(path, *headers, method=method))
        return splitResponse(connection.received())

    def test_upgradeRequired(self):
        """
        A GET on the WebSocket path without an upgrade gets 426 naming the URL.
        """
        status, headers, body = self.request(b"/ws")
        self.assertEqual(status, b"HTTP/1.1 426 Upgrade Required")
        self.assertEqual(headers[b"upgrade"], b"websocket")
        self.assertEqual(headers[b"content-type"], b"text/plain; charset=utf-8")
        self.assertIn(b"ws://echo.example:8080/ws", body)

    def test_connectionUpgradeWithoutUpgrade(self):
        """
        C{Connection: upgrade} with no C{Upgrade} header is plain HTTP.
        """
        status, _, body = self.request(b"/ws", b"Connection: upgrade")
        self.assertEqual(status, b"HTTP/1.1 426 Upgrade Required")
        self.assertIn(b"ws://echo.example:8080/ws", body)

    def test_rootWithConnectionUpgrade(self):
        """
        The page at C{/} returns 200 to a proxy that adds C{Connection: upgrade}.
        """
        status, headers, body = self.request(b"/", b"Connection: upgrade")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(headers[b"content-type"], b"text/html; charset=utf-8")
        self.assertIn(b"<html", body)

    def test_headUpgradeRequired(self):
        """
        A HEAD on the WebSocket path gets 426 without a body.
        """
        status, _, body = self.request(b"/ws", method=b"HEAD")
        self.assertEqual(status, b"HTTP/1.1 426 Upgrade Required")
        self.assertEqual(body, b"")

    def test_unknownPath(self):
        """
        Any other path gets a plain 404.
        """
        status, headers, body = self.request(b"/nothing/here")
        self.assertEqual(status, b"HTTP/1.1 404 Not Found")
        self.assertEqual(headers[b"content-type"], b"text/plain; charset=utf-8")
        self.assertEqual(body, b"Not found: /nothing/here\n")

    def test_belowWebSocketPath(self):
        """
        A path below the WebSocket path is not the WebSocket.
        """
        status, _, _ = self.request(b"/ws/deeper")
        self.assertEqual(status, b"HTTP/1.1 404 Not Found")

    def test_keepAliveAfter426(self):
        """
        The connection stays usable for a WebSocket upgrade after a 426.
        """
        connection = self.connect()
        connection.send(plainRequest(b"/ws"))
        self.assertIn(b" 426 ", connection.received())
        response = connection.handshake()
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "))
        connection.send(clientFrame(TEXT, b"after"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.payload, b"You said: after")

    def test_upgradeHeaderCaseAndList(self):
        """
        The C{Upgrade} header is matched without regard to case or position.
        """
        connection = self.connect()
        response = connection.handshake(b"/ws", b"Upgrade: h2c, WebSocket")
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response)

    def test_badHandshake(self):
        """
        An upgrade request without a key is rejected with 400, not served.
        """
        connection = self.connect()
        request = plainRequest(
            b"/ws",
            b"Upgrade: websocket",
            b"Connection: Upgrade",
            b"Sec-WebSocket-Version: 13",
        )
        connection.send(request)
        status, _, _ = splitResponse(connection.received())
        self.assertEqual(status.split(b" ")[1], b"400")


class NestedPathTests(ServerTestCase):
    """
    The WebSocket can live at a nested path.
    """

    settings = Settings(path="/api/echo")

    def test_nestedPath(self):
        """
        A handshake on the nested path succeeds and echoes.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"deep"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.payload, b"You said: deep")

    def test_parentNotFound(self):
        """
        The folder above the nested path is a 404.
        """
        connection = self.connect()
        connection.send(plainRequest(b"/api"))
        self.assertIn(b" 404 ", connection.received())


class PageTests(ServerTestCase):
    """
    The browser page contains the WebSocket's path.
    """

    settings = Settings(path="/api/echo")

    def test_pathInPage(self):
        """
        The page's websocket-path tag contains the server's path.
        """
        connection = self.connect()
        connection.send(plainRequest(b"/"))
        _, _, body = splitResponse(connection.received())
        self.assertIn(b'<meta name="websocket-path" content="/api/echo">', body)


class RootPathTests(ServerTestCase):
    """
    A WebSocket at C{/} shares the root with the page.
    """

    settings = Settings(path="/")

    def test_plainGetGetsPage(self):
        """
        A plain GET on C{/} gets the page.
        """
        connection = self.connect()
        connection.send(plainRequest(b"/"))
        status, _, body = splitResponse(connection.received())
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertIn(b"<html", body)

    def test_upgradeGetsWebSocket(self):
        """
        An upgrade on C{/} opens the WebSocket.
        """
        self.openWebSocket()


class HandshakeVariantTests(ServerTestCase):
    """
    Handshakes as real clients send them open the WebSocket.
    """

    def test_queryString(self):
        """
        A query string on the WebSocket path, often a token, is accepted.
        """
        connection = self.connect()
        response = connection.handshake(b"/ws?token=abc&room=1")
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response)

    def test_trailingSlash(self):
        """
        The path with a trailing slash is the same WebSocket.
        """
        connection = self.connect()
        self.assertTrue(connection.handshake(b"/ws/").startswith(b"HTTP/1.1 101 "))

    def test_firefoxConnectionHeader(self):
        """
        C{Connection: keep-alive, Upgrade}, as Firefox sends it, is accepted.
        """
        connection = self.connect()
        request = upgradeRequest().replace(
            b"Connection: Upgrade", b"Connection: keep-alive, Upgrade"
        )
        connection.send(request)
        self.assertTrue(connection.received().startswith(b"HTTP/1.1 101 "))

    def test_subprotocolAccepted(self):
        """
        The first subprotocol the client offers is accepted.
        """
        connection = self.connect()
        response = connection.handshake(
            b"/ws", b"Sec-WebSocket-Protocol: chat, superchat"
        )
        self.assertIn(b"Sec-WebSocket-Protocol: chat\r\n", response + b"\r\n")

    def test_noSubprotocol(self):
        """
        A client that offers no subprotocol gets none.
        """
        connection = self.connect()
        self.assertNotIn(b"Sec-WebSocket-Protocol", connection.handshake())


class ProxiedURLTests(ServerTestCase):
    """
    Behind trusted proxies, the 426 body names the URL the client used.
    """

    settings = Settings(trustForwardedFor=2)

    def test_forwardedHTTPS(self):
        """
        C{X-Forwarded-Proto: https} from a load balancer makes the URL wss.
        """
        connection = self.connect()
        connection.send(plainRequest(b"/ws", b"X-Forwarded-Proto: https"))
        _, _, body = splitResponse(connection.received())
        self.assertIn(b"wss://echo.example:8080/ws", body)


class UntrustedProtoTests(ServerTestCase):
    """
    Without trusted proxies, X-Forwarded-Proto is ignored.
    """

    def test_headerIgnored(self):
        """
        The URL stays ws whatever the header contains.
        """
        connection = self.connect()
        connection.send(plainRequest(b"/ws", b"X-Forwarded-Proto: https"))
        _, _, body = splitResponse(connection.received())
        self.assertIn(b"ws://echo.example:8080/ws", body)
