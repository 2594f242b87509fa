"""
A fast path for the common case of an echo: unfragmented, uncompressed data
frames, parsed and echoed without Autobahn's general frame machinery.
Anything else goes through Autobahn unchanged.
"""

from __future__ import annotations

from struct import Struct

from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.xormasker import create_xor_masker
from twisted.internet import tcp

OPEN = WebSocketProtocol.STATE_OPEN
TEXT = 0x1
BINARY = 0x2

NATIVE_MASKING_FROM = 1024
"""
Payload size from which Autobahn's native masker beats Python's integer
XOR: measured on CPython 3.11 with Autobahn 26.11, the native masker costs
about 5 microseconds a call whatever the size, the integer XOR about 0.75
at 32 bytes and 175 at 64 KiB.
"""

MAX_FAST_FRAME = 1 << 20
"""
Largest frame, in bytes, that the fast path collects itself when it comes in
several reads. Larger ones are left to Autobahn, which processes them as
they arrive.
"""

MAX_SEND_BUFFERS = 512
"""
Most buffers handed to one C{sendmsg} call; Linux takes at most 1024.
"""

GATHER_FROM = 16 * 1024
"""
Size of the last reply from which replies go to C{sendmsg} as separate
buffers instead of being joined into one, so large payloads are not copied.
"""

SHORT_LENGTH = Struct("!H")
LONG_LENGTH = Struct("!Q")


def unmask(payload: bytes | memoryview, mask: bytes) -> bytes:
    """
    Apply a client's 4-byte masking key to a payload.
    """
    length = len(payload)
    if length >= NATIVE_MASKING_FROM:
        return create_xor_masker(mask, length).process(payload)
    key = (mask * ((length >> 2) + 1))[:length]
    unmasked = int.from_bytes(payload, "little") ^ int.from_bytes(key, "little")
    return unmasked.to_bytes(length, "little")


def frameHeader(opcode: int, length: int) -> bytes:
    """
    Encode the header of an unmasked server frame with FIN set.
    """
    first = 0x80 | opcode
    if length < 126:
        return bytes((first, length))
    if length < 65536:
        return bytes((first, 126)) + SHORT_LENGTH.pack(length)
    return bytes((first, 127)) + LONG_LENGTH.pack(length)


def parseFrame(
    data: bytes, offset: int, limit: int
) -> tuple[int, bool, int] | int | None:
    """
    Find a masked data frame at C{offset} that the fast path may echo: FIN
    set, no reserved bits, text or binary, minimal length encoding, and a
    payload of at most C{limit} bytes.

    @return: For a complete frame, the start of its masking key, whether it
        is binary, and the offset after it. For a frame whose header is here
        but not all its payload, its total size in bytes. L{None} for a frame
        that needs Autobahn, or whose header is incomplete.
    """
    end = len(data)
    if end - offset < 6:
        return None
    first = data[offset]
    second = data[offset + 1]
    opcode = first & 0x0F
    if first & 0xF0 != 0x80 or opcode not in (TEXT, BINARY) or not second & 0x80:
        return None
    length = second & 0x7F
    start = offset + 2
    if length == 126:
        if end - start < 2:
            return None
        (length,) = SHORT_LENGTH.unpack_from(data, start)
        if length < 126:
            return None
        start += 2
    elif length == 127:
        if end - start < 8:
            return None
        (length,) = LONG_LENGTH.unpack_from(data, start)
        if length < 65536:
            return None
        start += 8
    if length > limit:
        return None
    stop = start + 4 + length
    if stop > end:
        return stop - offset
    return start, opcode == BINARY, stop


class FastEchoMixin:
    """
    Echo whole data frames directly when nothing else is in progress, and
    hand every other byte to Autobahn's C{_dataReceived}.

    @ivar partial: The reads of a fast-path frame still incomplete, or
        L{None}.
    @ivar partialMissing: How many bytes that frame still lacks.
    """

    partial: list[bytes] | None = None
    partialMissing = 0

    def dataReceived(self, data: bytes) -> None:
        if self.partial is not None:
            self.partial.append(data)
            self.partialMissing -= len(data)
            if self.partialMissing > 0:
                return
            data = b"".join(self.partial)
            self.partial = None
        if (
            self.state != OPEN
            or self.data
            or self.inside_message
            or self.current_frame is not None
            or self._perMessageCompress is not None
        ):
            self._dataReceived(data)
            return
        self.echoFrames(data)

    def fastPathLimit(self) -> int:
        limit = MAX_FAST_FRAME
        if self.maxMessagePayloadSize:
            limit = min(limit, self.maxMessagePayloadSize)
        if self.maxFramePayloadSize:
            limit = min(limit, self.maxFramePayloadSize)
        return limit

    def echoFrames(self, data: bytes) -> None:
        """
        Echo the complete data frames at the start of C{data}; keep a frame
        cut short by the end of the read, and hand anything else to Autobahn.
        """
        replies, offset, frame = self.collectReplies(data)
        if replies:
            self.sendNow(replies)
            if self.autoPingTimeoutCall and self.autoPingRestartOnAnyTraffic:
                # Data from the client proves it is alive, as in Autobahn.
                self._cancelAutoPingTimeoutCall()
        if offset == len(data):
            return

        rest = data[offset:]
        if isinstance(frame, int):
            self.partial = [rest]
            self.partialMissing = frame - len(rest)
        else:
            self._dataReceived(rest)

    def collectReplies(
        self, data: bytes
    ) -> tuple[list[bytes], int, tuple[int, bool, int] | int | None]:
        """
        Build the replies to the complete data frames at the start of C{data}.

        @return: The replies' headers and payloads, the offset after the last
            frame echoed, and what L{parseFrame} found there.
        """
        view = None
        offset = 0
        limit = self.fastPathLimit()
        replies: list[bytes] = []
        frame = None
        while offset < len(data):
            frame = parseFrame(data, offset, limit)
            if not isinstance(frame, tuple):
                break
            start, isBinary, stop = frame
            if stop - start > NATIVE_MASKING_FROM:
                # A view spares copying a large payload before unmasking it.
                view = view or memoryview(data)
                masked = view[start + 4 : stop]
            else:
                masked = data[start + 4 : stop]
            payload = self.echoPayload(masked, data[start : start + 4], isBinary)
            if payload is None:
                # Invalid UTF-8: Autobahn fails the connection with 1007.
                return replies, offset, None
            replies.append(frameHeader(BINARY if isBinary else TEXT, len(payload)))
            replies.append(payload)
            offset = stop
        return replies, offset, frame

    def echoPayload(
        self, masked: bytes | memoryview, mask: bytes, isBinary: bool
    ) -> bytes | None:
        """
        Unmask a payload, count it, and return its echo, or L{None} for text
        that is not valid UTF-8.
        """
        payload = unmask(masked, mask)
        received = len(payload)
        if not isBinary:
            try:
                payload.decode("utf-8")
            except UnicodeDecodeError:
                return None
            payload = self.factory.prefix + payload
        traffic = self.traffic
        traffic.messagesIn += 1
        traffic.bytesIn += received
        traffic.messagesOut += 1
        traffic.bytesOut += len(payload)
        return payload

    def sendNow(self, chunks: list[bytes]) -> None:
        """
        Send replies straight to the socket when nothing is queued before
        them, else queue them on the transport.

        Twisted's transport only queues a write and sends it on the next
        turn of the reactor, at the cost of two C{epoll_ctl} calls a message.
        Sending at once is done only on a plain TCP connection, never through
        TLS, and only when its send queue is empty, so the bytes keep their
        order. What the socket does not take is queued as usual.
        """
        transport = self.transport
        if (
            type(transport) is not tcp.Server
            # NOTE: _tempDataBuffer is Twisted's private queue of writes not
            # yet moved to dataBuffer (Twisted 26.10); both must be empty.
            or transport.dataBuffer
            or getattr(transport, "_tempDataBuffer", True)
            or transport.disconnecting
        ):
            transport.writeSequence(chunks)
            return
        if len(chunks) > MAX_SEND_BUFFERS or len(chunks[-1]) < GATHER_FROM:
            # Joining a few small buffers costs less than gathering them.
            chunks = [b"".join(chunks)]
        try:
            sent = transport.socket.sendmsg(chunks)
        except BlockingIOError:
            sent = 0
        except OSError:
            # Let the transport meet the error on its own write.
            sent = 0
        total = sum(len(chunk) for chunk in chunks)
        if sent < total:
            transport.write(b"".join(chunks)[sent:])
