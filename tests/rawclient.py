"""
A WebSocket client on a plain socket, for tests that must send what a
well-behaved client library would not: bad frames, half requests, or data
without ever reading.
"""

from __future__ import annotations

import base64
import os
import socket
import struct

from wsecho.test.support import Frame, clientFrame

ZERO_MASK = b"\x00\x00\x00\x00"
"""
A mask key of zeros: valid on the wire, and it leaves the payload as it is,
so tests can send large frames without masking them in Python.
"""


def encodeFrame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """
    Encode a client frame with the zero mask key.
    """
    return clientFrame(opcode, payload, fin, mask=ZERO_MASK)


class RawWebSocket:
    """
    A client connection driven byte by byte.
    """

    def __init__(self, host: str, port: int, timeout: float = 10) -> None:
        self.socket = socket.create_connection((host, port), timeout=timeout)
        self.buffer = b""
        self.host = f"{host}:{port}"

    def handshake(self, path: str = "/ws", *headers: str) -> bytes:
        """
        Send an opening handshake and return the response head.
        """
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {path} HTTP/1.1",
            f"Host: {self.host}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            *headers,
        ]
        self.socket.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        return self.readHead()

    def readHead(self) -> bytes:
        while b"\r\n\r\n" not in self.buffer:
            self.fill()
        head, _, self.buffer = self.buffer.partition(b"\r\n\r\n")
        return head

    def fill(self) -> None:
        data = self.socket.recv(1 << 20)
        if not data:
            raise ConnectionError("the server closed the connection")
        self.buffer += data

    def take(self, count: int) -> bytes:
        while len(self.buffer) < count:
            self.fill()
        data, self.buffer = self.buffer[:count], self.buffer[count:]
        return data

    def readFrame(self) -> Frame:
        """
        Read one whole frame from the server.
        """
        first, second = self.take(2)
        length = second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self.take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self.take(8))
        return Frame(bool(first & 0x80), first & 0x0F, self.take(length))

    def send(self, data: bytes) -> None:
        self.socket.sendall(data)

    def sendFrame(self, opcode: int, payload: bytes, fin: bool = True) -> None:
        self.socket.sendall(encodeFrame(opcode, payload, fin))

    def readUntilClosed(self) -> Frame | None:
        """
        Read frames until the connection ends, and return the close frame, or
        L{None} when the server dropped the connection without one.
        """
        try:
            while True:
                frame = self.readFrame()
                if frame.opcode == 0x8:
                    return frame
        except (ConnectionError, OSError):
            return None

    def isClosedByServer(self) -> bool:
        """
        Tell whether the server has closed the connection, reading and
        discarding anything it still sent.
        """
        try:
            while self.socket.recv(65536):
                pass
        except TimeoutError:
            return False
        except OSError:
            return True
        return True

    def close(self) -> None:
        self.socket.close()
