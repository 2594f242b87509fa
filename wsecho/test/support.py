"""
In-memory WebSocket clients and frame codecs for the unit tests.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

import txaio
from twisted.internet.address import IPv4Address
from twisted.internet.testing import MemoryReactorClock
from twisted.python.failure import Failure
from twisted.test.iosim import FakeTransport
from twisted.trial.unittest import SynchronousTestCase

from wsecho.echo import EchoServerFactory, quietAutobahn
from wsecho.settings import Settings
from wsecho.web import EchoSite, buildSite

TEXT = 0x1
BINARY = 0x2
CONTINUATION = 0x0
CLOSE = 0x8
PING = 0x9
PONG = 0xA

CLIENT_KEY = base64.b64encode(b"0123456789abcdef")
MASK = b"\x11\x22\x33\x44"


def upgradeRequest(path: bytes = b"/ws", *headers: bytes) -> bytes:
    """
    Build a client's opening handshake request.
    """
    lines = [
        b"GET " + path + b" HTTP/1.1",
        b"Host: localhost:8080",
        b"Upgrade: websocket",
        b"Connection: Upgrade",
        b"Sec-WebSocket-Key: " + CLIENT_KEY,
        b"Sec-WebSocket-Version: 13",
        *headers,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n"


def clientFrame(
    opcode: int, payload: bytes, fin: bool = True, mask: bytes = MASK
) -> bytes:
    """
    Encode a masked frame as a client sends it. A mask of four zero bytes
    leaves the payload as it is, which spares masking large payloads.
    """
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", first, 0x80 | length)
    elif length < 1 << 16:
        header = struct.pack("!BBH", first, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", first, 0x80 | 127, length)
    if mask != b"\x00\x00\x00\x00":
        payload = bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))
    return header + mask + payload


def closeFrame(code: int, reason: bytes = b"") -> bytes:
    """
    Encode a client close frame.
    """
    return clientFrame(CLOSE, struct.pack("!H", code) + reason)


@dataclass
class Frame:
    """
    A frame as the server sent it.
    """

    fin: bool
    opcode: int
    payload: bytes

    @property
    def closeCode(self) -> int | None:
        if len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]


def parseFrames(data: bytes) -> list[Frame]:
    """
    Decode the unmasked frames a server wrote, which must be complete.
    """
    frames = []
    while data:
        first, second = data[0], data[1]
        assert not second & 0x80, "a server frame must not be masked"
        length = second & 0x7F
        offset = 2
        if length == 126:
            (length,) = struct.unpack("!H", data[2:4])
            offset = 4
        elif length == 127:
            (length,) = struct.unpack("!Q", data[2:10])
            offset = 10
        payload = data[offset : offset + length]
        assert len(payload) == length, "incomplete frame"
        frames.append(Frame(bool(first & 0x80), first & 0x0F, payload))
        data = data[offset + length :]
    return frames


class Connection:
    """
    One client connection to a site, over an in-memory transport.
    """

    def __init__(self, site: EchoSite, peer: IPv4Address) -> None:
        self.channel = site.buildProtocol(peer)
        self.transport = FakeTransport(
            self.channel,
            isServer=True,
            hostAddress=IPv4Address("TCP", "127.0.0.1", 8080),
            peerAddress=peer,
        )
        self.channel.makeConnection(self.transport)

    @property
    def protocol(self):
        """
        The protocol that owns the connection now: the HTTP channel, or the
        WebSocket protocol after an upgrade.
        """
        return self.transport.protocol

    def send(self, data: bytes) -> None:
        self.transport.bufferReceived(data)

    def received(self) -> bytes:
        return self.transport.getOutBuffer() or b""

    def receivedFrames(self) -> list[Frame]:
        return parseFrames(self.received())

    def handshake(self, path: bytes = b"/ws", *headers: bytes) -> bytes:
        """
        Send the opening handshake and return the response head.
        """
        self.send(upgradeRequest(path, *headers))
        return self.received()

    def disconnect(self, reason: Exception) -> None:
        self.transport.disconnectReason = reason
        self.transport.reportDisconnect()

    @property
    def closed(self) -> bool:
        return bool(self.transport.disconnecting)

    def fail(self, reason: Exception) -> None:
        self.protocol.connectionLost(Failure(reason))


class ServerTestCase(SynchronousTestCase):
    """
    A test case with an echo site on a memory clock, which also drives
    Autobahn's timers.
    """

    settings = Settings()

    def setUp(self) -> None:
        self.clock = MemoryReactorClock()
        previousLoop = txaio.config.loop
        txaio.config.loop = self.clock
        self.addCleanup(setattr, txaio.config, "loop", previousLoop)
        previousLevel = txaio.get_global_log_level()
        quietAutobahn()
        self.addCleanup(txaio.set_global_log_level, previousLevel)
        self.factory = EchoServerFactory(self.settings, reactor=self.clock)
        self.site = buildSite(self.factory, self.clock)
        self.path = self.settings.path
        self.nextPort = 50000

    def connect(self, host: str = "192.0.2.7") -> Connection:
        self.nextPort += 1
        return Connection(self.site, IPv4Address("TCP", host, self.nextPort))

    def openWebSocket(self, *headers: bytes) -> Connection:
        connection = self.connect()
        response = connection.handshake(self.path.encode(), *headers)
        self.assertTrue(
            response.startswith(b"HTTP/1.1 101 "), f"handshake failed: {response!r}"
        )
        return connection
