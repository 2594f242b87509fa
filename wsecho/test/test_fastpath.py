"""
Tests for L{wsecho.fastpath}: frames it echoes itself, and frames it must
leave to Autobahn.
"""

import struct

from twisted.trial.unittest import SynchronousTestCase

from wsecho.fastpath import frameHeader, parseFrame, unmask
from wsecho.test.support import (
    BINARY,
    CLOSE,
    PING,
    PONG,
    TEXT,
    ServerTestCase,
    clientFrame,
)


class FrameTests(SynchronousTestCase):
    """
    The frame codec of the fast path.
    """

    def test_unmaskBothWays(self):
        """
        Unmasking matches byte-by-byte XOR, below and above the size where
        the native masker takes over.
        """
        mask = b"\x01\x80\xff\x7f"
        for size in [0, 1, 3, 4, 5, 125, 1023, 1024, 70000]:
            payload = bytes(index % 251 for index in range(size))
            expected = bytes(
                byte ^ mask[index % 4] for index, byte in enumerate(payload)
            )
            self.assertEqual(unmask(payload, mask), expected, size)

    def test_headerLengths(self):
        """
        Server frame headers use the shortest length encoding.
        """
        self.assertEqual(frameHeader(TEXT, 125), b"\x81\x7d")
        self.assertEqual(frameHeader(BINARY, 126), b"\x82\x7e\x00\x7e")
        self.assertEqual(
            frameHeader(BINARY, 65536), b"\x82\x7f" + struct.pack("!Q", 65536)
        )

    def test_parseComplete(self):
        """
        A complete masked text frame is found with its bounds.
        """
        frame = clientFrame(TEXT, b"hello")
        self.assertEqual(parseFrame(frame, 0, 100), (2, False, len(frame)))

    def test_parseIncomplete(self):
        """
        A frame whose header arrived but not all its payload gives its size.
        """
        frame = clientFrame(BINARY, b"x" * 300)
        self.assertEqual(parseFrame(frame[:100], 0, 1000), len(frame))

    def test_parseLeavesOthers(self):
        """
        Partial, fragmented, control, unmasked, reserved-bit, non-minimal and
        oversized frames are left to Autobahn.
        """
        whole = clientFrame(BINARY, b"x" * 200)
        nonMinimal = b"\x82\xfe\x00\x05" + b"\x00" * 4 + b"12345"
        reserved = bytearray(clientFrame(TEXT, b"x"))
        reserved[0] |= 0x40
        cases = {
            "short header": whole[:3],
            "fragment": clientFrame(TEXT, b"x", fin=False),
            "ping": clientFrame(PING, b""),
            "close": clientFrame(CLOSE, b"\x03\xe8"),
            "unmasked": b"\x81\x01x",
            "reserved": bytes(reserved),
            "non-minimal": nonMinimal,
            "oversized": whole,
        }
        for name, data in cases.items():
            self.assertIsNone(parseFrame(data, 0, 100), name)


class FastEchoTests(ServerTestCase):
    """
    Mixed traffic keeps its order and meaning through the fast path.
    """

    def test_mixedChunk(self):
        """
        Data frames around a ping in one chunk are echoed in order.
        """
        connection = self.openWebSocket()
        connection.send(
            clientFrame(TEXT, b"one")
            + clientFrame(PING, b"p")
            + clientFrame(BINARY, b"two")
            + clientFrame(TEXT, b"three")
        )
        frames = [
            (frame.opcode, frame.payload) for frame in connection.receivedFrames()
        ]
        self.assertEqual(
            frames,
            [
                (TEXT, b"You said: one"),
                (PONG, b"p"),
                (BINARY, b"two"),
                (TEXT, b"You said: three"),
            ],
        )

    def test_splitFrame(self):
        """
        A frame split across reads is echoed once whole.
        """
        connection = self.openWebSocket()
        frame = clientFrame(TEXT, b"split me")
        for index in range(len(frame)):
            connection.send(frame[index : index + 1])
        [echo] = connection.receivedFrames()
        self.assertEqual(echo.payload, b"You said: split me")

    def test_frameInSeveralReads(self):
        """
        A 64 KiB frame that arrives in three reads is echoed once, whole.
        """
        connection = self.openWebSocket()
        payload = bytes(range(256)) * 256
        frame = clientFrame(BINARY, payload) + clientFrame(TEXT, b"next")
        for cut in [(0, 5000), (5000, 40000), (40000, len(frame))]:
            connection.send(frame[cut[0] : cut[1]])
        frames = connection.receivedFrames()
        self.assertEqual(
            [echo.payload for echo in frames], [payload, b"You said: next"]
        )

    def test_closingWhileFrameIncomplete(self):
        """
        A frame completed after the server started closing is not echoed.
        """
        connection = self.openWebSocket()
        frame = clientFrame(BINARY, b"y" * 1000)
        connection.send(frame[:500])
        connection.protocol.goAway()
        connection.send(frame[500:])
        frames = connection.receivedFrames()
        self.assertEqual([echo.opcode for echo in frames], [CLOSE])

    def test_invalidUTF8AfterGoodFrame(self):
        """
        A good frame is echoed and a following invalid one gets 1007.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"good") + clientFrame(TEXT, b"\xed\xa0\x80"))
        frames = connection.receivedFrames()
        self.assertEqual(frames[0].payload, b"You said: good")
        self.assertEqual(frames[1].opcode, CLOSE)
        self.assertEqual(frames[1].closeCode, 1007)

    def test_afterFragmentedMessage(self):
        """
        Whole frames after a fragmented message are echoed in order.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"a", fin=False))
        connection.send(clientFrame(0x0, b"b") + clientFrame(TEXT, b"c"))
        payloads = [frame.payload for frame in connection.receivedFrames()]
        self.assertEqual(payloads, [b"You said: ab", b"You said: c"])

    def test_dataAfterClose(self):
        """
        Data frames after the client's close frame are not echoed.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(CLOSE, b"\x03\xe8") + clientFrame(TEXT, b"late"))
        frames = connection.receivedFrames()
        self.assertEqual([frame.opcode for frame in frames], [CLOSE])
