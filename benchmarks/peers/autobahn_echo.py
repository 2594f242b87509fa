"""
A WebSocket echo server written the way Autobahn's documentation shows, a
peer of the wsecho benchmark.

Usage: python autobahn_echo.py PORT

It listens on 127.0.0.1:PORT with Twisted's default reactor, accepts any
path, and sends every message back with the type it arrived with. Autobahn's
protocol options keep their defaults. The first line on standard output
states whether Autobahn uses its native (NVX) masking and UTF-8 validation.
"""

import sys

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket import USES_NVX
from twisted.internet import reactor


class EchoProtocol(WebSocketServerProtocol):
    """
    Send each message back to the client that sent it.
    """

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(payload, isBinary)


def main() -> None:
    if len(sys.argv) != 2 or not sys.argv[1].isdigit():
        sys.exit("usage: python autobahn_echo.py PORT")
    port = int(sys.argv[1])

    factory = WebSocketServerFactory(f"ws://127.0.0.1:{port}")
    factory.protocol = EchoProtocol
    reactor.listenTCP(port, factory, interface="127.0.0.1")

    print(f"Autobahn echo server listening on 127.0.0.1:{port}, USES_NVX={USES_NVX}")
    sys.stdout.flush()
    reactor.run()


if __name__ == "__main__":
    main()
