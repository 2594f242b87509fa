"""
Tests for L{wsecho.echo}: the echo of every kind of message and the log
lines of a connection's life.
"""

from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.logger import LogLevel, capturedLogs, formatEvent

from wsecho.settings import Settings
from wsecho.test.support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    TEXT,
    ServerTestCase,
    clientFrame,
    closeFrame,
    upgradeRequest,
)


def infoEvents(events):
    return [event for event in events if event["log_level"] >= LogLevel.info]


def wsechoEvents(events):
    return [
        event
        for event in infoEvents(events)
        if event.get("log_namespace", "").startswith("wsecho")
    ]


class EchoTests(ServerTestCase):
    """
    Messages come back as the protocol promises.
    """

    def test_textGetsPrefix(self):
        """
        A text message comes back as text with the prefix in front.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"Hello, world!"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, TEXT)
        self.assertTrue(frame.fin)
        self.assertEqual(frame.payload, b"You said: Hello, world!")

    def test_textNonASCII(self):
        """
        Text outside ASCII comes back as the same UTF-8.
        """
        connection = self.openWebSocket()
        text = "Grüße, 世界 🎉".encode()
        connection.send(clientFrame(TEXT, text))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.payload, b"You said: " + text)

    def test_binaryUnchanged(self):
        """
        A binary message comes back as binary, byte for byte.
        """
        connection = self.openWebSocket()
        payload = bytes(range(256)) * 3
        connection.send(clientFrame(BINARY, payload))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, BINARY)
        self.assertEqual(frame.payload, payload)

    def test_fragmentedText(self):
        """
        A text message in three fragments comes back as one whole message.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"frag", fin=False))
        connection.send(clientFrame(CONTINUATION, b"men", fin=False))
        self.assertEqual(connection.received(), b"")
        connection.send(clientFrame(CONTINUATION, b"ted"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, TEXT)
        self.assertTrue(frame.fin)
        self.assertEqual(frame.payload, b"You said: fragmented")

    def test_fragmentedBinary(self):
        """
        A fragmented binary message comes back whole and unchanged.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(BINARY, b"\x00\x01", fin=False))
        connection.send(clientFrame(CONTINUATION, b"\x02\xff"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, BINARY)
        self.assertEqual(frame.payload, b"\x00\x01\x02\xff")

    def test_emptyText(self):
        """
        An empty text message comes back as the prefix alone.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b""))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, TEXT)
        self.assertEqual(frame.payload, b"You said: ")

    def test_emptyBinary(self):
        """
        An empty binary message comes back empty.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(BINARY, b""))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, BINARY)
        self.assertEqual(frame.payload, b"")

    def test_largeMessage(self):
        """
        A 1 MiB binary message comes back whole.
        """
        connection = self.openWebSocket()
        payload = bytes(range(256)) * 4096
        connection.send(clientFrame(BINARY, payload))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.payload, payload)

    def test_framesWithHandshake(self):
        """
        Frames sent in the same packet as the upgrade request are echoed.
        """
        connection = self.connect()
        connection.send(
            upgradeRequest()
            + clientFrame(TEXT, b"first")
            + clientFrame(BINARY, b"second")
        )
        response = connection.received()
        head, _, frames = response.partition(b"\r\n\r\n")
        self.assertTrue(head.startswith(b"HTTP/1.1 101 "))
        self.assertEqual(frames.count(b"You said: first"), 1)
        self.assertIn(b"second", frames)

    def test_messagesInOrder(self):
        """
        Several messages in one packet come back in the order sent.
        """
        connection = self.openWebSocket()
        connection.send(b"".join(clientFrame(TEXT, b"%d" % n) for n in range(20)))
        payloads = [frame.payload for frame in connection.receivedFrames()]
        self.assertEqual(payloads, [b"You said: %d" % n for n in range(20)])

    def test_closeEchoed(self):
        """
        A client's close frame gets a close frame with the same code.
        """
        connection = self.openWebSocket()
        connection.send(closeFrame(1000, b"bye"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, CLOSE)
        self.assertEqual(frame.closeCode, 1000)


class EmptyPrefixTests(ServerTestCase):
    """
    An empty prefix makes a pure echo.
    """

    settings = Settings(prefix="")

    def test_textUnchanged(self):
        """
        Text comes back unchanged when the prefix is empty.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"plain"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.opcode, TEXT)
        self.assertEqual(frame.payload, b"plain")


class ConnectionLogTests(ServerTestCase):
    """
    Each connection logs one line when it opens and one when it closes.
    """

    def test_openEvent(self):
        """
        The open line names the peer, with path and origin as fields.
        """
        with capturedLogs() as events:
            self.openWebSocket(b"Origin: https://example.com")
        [event] = wsechoEvents(events)
        self.assertEqual(formatEvent(event), "Connection from 192.0.2.7:50001")
        self.assertEqual(event["peer"], "192.0.2.7:50001")
        self.assertEqual(event["path"], "/ws")
        self.assertEqual(event["origin"], "https://example.com")

    def test_closeEvent(self):
        """
        The close line has the code, reason, cleanliness, duration and
        traffic of the connection.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"abc"))
        connection.send(clientFrame(BINARY, b"12345"))
        self.clock.advance(2.5)
        with capturedLogs() as events:
            connection.send(closeFrame(1000, b"done"))
            connection.disconnect(ConnectionDone())
        [event] = wsechoEvents(events)
        self.assertEqual(
            formatEvent(event), "192.0.2.7:50001 disconnected with status 1000 done"
        )
        self.assertEqual(event["code"], 1000)
        self.assertEqual(event["reason"], "done")
        self.assertIs(event["clean"], True)
        self.assertEqual(event["duration"], 2.5)
        self.assertEqual(event["messagesIn"], 2)
        self.assertEqual(event["messagesOut"], 2)
        self.assertEqual(event["bytesIn"], 8)
        self.assertEqual(event["bytesOut"], len(b"You said: abc") + 5)

    def test_closeWithoutCode(self):
        """
        A close frame without a code is logged as 1005.
        """
        connection = self.openWebSocket()
        with capturedLogs() as events:
            connection.send(clientFrame(CLOSE, b""))
            connection.disconnect(ConnectionDone())
        [event] = wsechoEvents(events)
        self.assertEqual(
            formatEvent(event), "192.0.2.7:50001 disconnected with status 1005"
        )

    def test_vanishedClient(self):
        """
        A client that drops the TCP connection is logged as 1006, unclean.
        """
        connection = self.openWebSocket()
        with capturedLogs() as events:
            connection.disconnect(ConnectionLost())
        [event] = wsechoEvents(events)
        self.assertEqual(event["code"], 1006)
        self.assertIs(event["clean"], False)
        self.assertTrue(
            formatEvent(event).startswith(
                "192.0.2.7:50001 disconnected with status 1006 "
            )
        )

    def test_nothingPerMessage(self):
        """
        Echoing messages logs nothing at info level or above.
        """
        connection = self.openWebSocket()
        with capturedLogs() as events:
            for _ in range(5):
                connection.send(clientFrame(TEXT, b"quiet"))
        self.assertEqual(infoEvents(events), [])

    def test_mappedIPv4Peer(self):
        """
        An IPv4 client of a dual-stack socket is logged by its IPv4 address.
        """
        with capturedLogs() as events:
            connection = self.connect("::ffff:198.51.100.4")
            connection.handshake()
        [event] = wsechoEvents(events)
        self.assertEqual(event["peer"], "198.51.100.4:50001")

    def test_failedHandshakeNotLogged(self):
        """
        A connection whose handshake never completed logs no disconnection.
        """
        connection = self.connect()
        connection.send(upgradeRequest().replace(b"Sec-WebSocket-Version: 13", b""))
        with capturedLogs() as events:
            connection.disconnect(ConnectionDone())
        self.assertEqual(wsechoEvents(events), [])

    def test_openConnectionsTracked(self):
        """
        The factory tracks the connections that are open.
        """
        first = self.openWebSocket()
        self.openWebSocket()
        self.assertEqual(len(self.factory.openConnections), 2)
        first.disconnect(ConnectionLost())
        self.assertEqual(len(self.factory.openConnections), 1)


class IdleMemoryTests(ServerTestCase):
    """
    An open connection keeps nothing of its opening handshake.
    """

    def test_handshakeReleased(self):
        """
        Headers, raw request and response, and the send queue are dropped,
        and the connection still echoes and closes cleanly.
        """
        connection = self.openWebSocket()
        protocol = connection.protocol
        self.assertEqual(protocol.http_headers, {})
        self.assertEqual(protocol.http_request_data, b"")
        self.assertEqual(protocol.http_response_data, "")
        self.assertEqual(protocol.send_queue, ())
        connection.send(clientFrame(TEXT, b"still"))
        connection.send(closeFrame(1000))
        frames = connection.receivedFrames()
        self.assertEqual(frames[0].payload, b"You said: still")
        self.assertEqual(frames[1].opcode, CLOSE)
