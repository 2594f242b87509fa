"""
Tests of how the server protects itself and its clients: limits, origins,
timeouts, pings, protocol errors and proxies.
"""

import struct

from twisted.internet.error import ConnectionDone
from twisted.internet.testing import StringTransport
from twisted.logger import LogLevel, capturedLogs, formatEvent

from wsecho.flow import ReadPause
from wsecho.settings import Settings
from wsecho.test.support import (
    BINARY,
    CLOSE,
    CONTINUATION,
    PING,
    PONG,
    TEXT,
    ServerTestCase,
    clientFrame,
    upgradeRequest,
)
from wsecho.test.test_web import splitResponse


def warnings(events):
    return [event for event in events if event["log_level"] >= LogLevel.warn]


class ConnectionLimitTests(ServerTestCase):
    """
    Connections past C{maxConnections} get 503 before the upgrade.
    """

    settings = Settings(maxConnections=2)

    def test_rejectedPastLimit(self):
        """
        The third connection gets 503 with Retry-After; the first two echo.
        """
        first = self.openWebSocket()
        self.openWebSocket()
        third = self.connect()
        third.send(upgradeRequest())
        status, headers, body = splitResponse(third.received())
        self.assertEqual(status, b"HTTP/1.1 503 Service Unavailable")
        self.assertEqual(headers[b"retry-after"], b"5")
        self.assertIn(b"limit of 2 WebSocket connections", body)
        self.assertEqual(self.factory.stats.rejections["max_connections"], 1)
        first.send(clientFrame(TEXT, b"still"))
        [frame] = first.receivedFrames()
        self.assertEqual(frame.payload, b"You said: still")

    def test_roomAfterClose(self):
        """
        A slot freed by a closed connection can be used again.
        """
        first = self.openWebSocket()
        self.openWebSocket()
        first.disconnect(ConnectionDone())
        self.openWebSocket()

    def test_logRateLimited(self):
        """
        Many rejections log one line at once, then one line counting the rest.
        """
        self.openWebSocket()
        self.openWebSocket()
        with capturedLogs() as events:
            for _ in range(5):
                self.connect().send(upgradeRequest())
            self.assertEqual(len(warnings(events)), 1)
            self.clock.advance(10)
        lines = [formatEvent(event) for event in warnings(events)]
        self.assertEqual(
            lines,
            [
                "WebSocket connections rejected at the limit of 2 open connections: 1",
                "WebSocket connections rejected at the limit of 2 open connections: 4",
            ],
        )


class OriginTests(ServerTestCase):
    """
    Browser handshakes from origins outside the list get 403.
    """

    settings = Settings(allowedOrigins=["https://example.com", "https://*.example.org"])

    def handshakeStatus(self, *headers: bytes) -> bytes:
        connection = self.connect()
        response = connection.handshake(b"/ws", *headers)
        return response.split(b"\r\n", 1)[0]

    def test_listedOrigin(self):
        """
        A listed origin and one matching a wildcard are accepted.
        """
        for origin in [b"https://example.com", b"https://app.example.org"]:
            status = self.handshakeStatus(b"Origin: " + origin)
            self.assertTrue(status.startswith(b"HTTP/1.1 101 "), (origin, status))

    def test_otherOrigin(self):
        """
        An origin outside the list gets 403 and is counted.
        """
        for origin in [b"https://evil.com", b"https://example.com.evil.com", b"null"]:
            status = self.handshakeStatus(b"Origin: " + origin)
            self.assertTrue(status.startswith(b"HTTP/1.1 403 "), (origin, status))
        self.assertEqual(self.factory.stats.handshakeFailures["origin"], 3)

    def test_noOrigin(self):
        """
        A client that sends no Origin, as non-browser clients do, is accepted.
        """
        self.assertTrue(self.handshakeStatus().startswith(b"HTTP/1.1 101 "))


class AnyOriginTests(ServerTestCase):
    """
    With the default C{*}, every origin is accepted.
    """

    def test_nullOrigin(self):
        """
        C{Origin: null}, sent by sandboxed pages and local files, is accepted.
        """
        self.openWebSocket(b"Origin: null")


class RequestTimeoutTests(ServerTestCase):
    """
    A client must send a whole request within the handshake timeout.
    """

    settings = Settings(handshakeTimeout=10)

    def test_silentClient(self):
        """
        A connection that sends nothing is dropped after the timeout.
        """
        connection = self.connect()
        self.clock.advance(9.9)
        self.assertFalse(connection.closed)
        with capturedLogs() as events:
            self.clock.advance(0.2)
        self.assertTrue(connection.closed)
        self.assertEqual(self.factory.stats.handshakeFailures["timeout"], 1)
        [event] = warnings(events)
        self.assertIn("within 10 s", formatEvent(event))

    def test_slowHeaders(self):
        """
        A client that trickles its headers a byte at a time is still dropped.
        """
        connection = self.connect()
        request = upgradeRequest()
        for index in range(12):
            connection.send(request[index : index + 1])
            self.clock.advance(1)
        self.assertTrue(connection.closed)

    def test_handshakeInTime(self):
        """
        A WebSocket opened in time is not dropped by the deadline.
        """
        connection = self.openWebSocket()
        self.clock.advance(60)
        self.assertFalse(connection.closed)

    def test_keepAliveIdle(self):
        """
        A keep-alive connection between requests waits the idle timeout, not
        the request deadline.
        """
        connection = self.connect()
        connection.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        connection.received()
        self.clock.advance(60)
        self.assertFalse(connection.closed)
        connection.send(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n")
        self.assertIn(b"200 OK", connection.received())
        self.clock.advance(76)
        self.assertTrue(connection.closed)


class PingTests(ServerTestCase):
    """
    Open WebSockets are pinged, and dropped when no pong comes back.
    """

    settings = Settings(pingInterval=20, pingTimeout=5)

    def test_pingSent(self):
        """
        A ping goes out after the interval.
        """
        connection = self.openWebSocket()
        self.clock.advance(20.5)
        frames = connection.receivedFrames()
        self.assertEqual([frame.opcode for frame in frames], [PING])

    def test_pongKeepsConnection(self):
        """
        A connection that replies to pings stays open.
        """
        connection = self.openWebSocket()
        for _ in range(3):
            self.clock.advance(20.5)
            [ping] = connection.receivedFrames()
            connection.send(clientFrame(PONG, ping.payload))
        self.clock.advance(5.5)
        self.assertFalse(connection.closed)

    def test_noPongDrops(self):
        """
        A connection whose pong does not arrive in time is dropped.
        """
        connection = self.openWebSocket()
        self.clock.advance(20.5)
        self.clock.advance(5.5)
        self.assertTrue(connection.closed)


class NoPingTests(ServerTestCase):
    """
    A ping interval of 0 turns pings off.
    """

    settings = Settings(pingInterval=0)

    def test_noPing(self):
        """
        No ping is sent however long the connection idles.
        """
        connection = self.openWebSocket()
        self.clock.advance(3600)
        self.assertEqual(connection.received(), b"")


def closeCodeOf(frames):
    [frame] = [frame for frame in frames if frame.opcode == CLOSE]
    return frame.closeCode


class MessageSizeTests(ServerTestCase):
    """
    Messages above C{maxMessageSize} are closed with 1009.
    """

    settings = Settings(maxMessageSize=1024)

    def test_frameHeaderTooBig(self):
        """
        A frame header announcing too much gets 1009 at once,
        before any payload arrives.
        """
        connection = self.openWebSocket()
        header = struct.pack("!BBQ", 0x82, 0x80 | 127, 1 << 62) + b"\x00\x00\x00\x00"
        connection.send(header)
        self.assertEqual(closeCodeOf(connection.receivedFrames()), 1009)

    def test_fragmentsTooBig(self):
        """
        Fragments adding up to too much get 1009.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(BINARY, b"x" * 600, fin=False))
        connection.send(clientFrame(CONTINUATION, b"x" * 600, fin=False))
        self.assertEqual(closeCodeOf(connection.receivedFrames()), 1009)

    def test_echoAtLimitWithPrefix(self):
        """
        A fragmented text message at the limit is echoed, though the prefix
        makes the echo longer than the limit.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"z" * 512, fin=False))
        connection.send(clientFrame(CONTINUATION, b"z" * 512))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.payload, b"You said: " + b"z" * 1024)
        self.assertFalse(connection.closed)

    def test_atLimit(self):
        """
        A message of exactly the limit is echoed.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(BINARY, b"y" * 1024))
        [frame] = connection.receivedFrames()
        self.assertEqual(len(frame.payload), 1024)


class ProtocolErrorTests(ServerTestCase):
    """
    Protocol errors close the connection with the code RFC 6455 names, in a
    close frame, and affect no other connection.
    """

    def test_invalidUTF8(self):
        """
        Invalid UTF-8 in a text message is closed with 1007.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(TEXT, b"\xff\xfe"))
        self.assertEqual(closeCodeOf(connection.receivedFrames()), 1007)

    def test_unmaskedFrame(self):
        """
        An unmasked client frame is closed with 1002.
        """
        connection = self.openWebSocket()
        connection.send(b"\x81\x02hi")
        self.assertEqual(closeCodeOf(connection.receivedFrames()), 1002)

    def test_reservedBits(self):
        """
        A frame with reserved bits set is closed with 1002.
        """
        connection = self.openWebSocket()
        frame = bytearray(clientFrame(TEXT, b"x"))
        frame[0] |= 0x40
        connection.send(bytes(frame))
        self.assertEqual(closeCodeOf(connection.receivedFrames()), 1002)

    def test_othersUnaffected(self):
        """
        A healthy connection goes on echoing while another one fails.
        """
        healthy = self.openWebSocket()
        broken = self.openWebSocket()
        broken.send(clientFrame(TEXT, b"\xc3\x28"))
        healthy.send(clientFrame(TEXT, b"fine"))
        [frame] = healthy.receivedFrames()
        self.assertEqual(frame.payload, b"You said: fine")

    def test_errorLoggedOnce(self):
        """
        A protocol error gives one wsecho line at info level or above.
        """
        connection = self.openWebSocket()
        with capturedLogs() as events:
            connection.send(clientFrame(TEXT, b"\xff"))
            connection.disconnect(ConnectionDone())
        lines = [
            formatEvent(event)
            for event in events
            if event["log_level"] >= LogLevel.info
        ]
        self.assertEqual(len(lines), 1, lines)
        self.assertIn("disconnected with status 1007", lines[0])


class ForwardedForTests(ServerTestCase):
    """
    With trusted proxies, the client address comes from X-Forwarded-For.
    """

    settings = Settings(trustForwardedFor=2)

    def openEvent(self, *headers: bytes):
        with capturedLogs() as events:
            self.openWebSocket(*headers)
        [event] = [e for e in events if e.get("log_namespace") == "wsecho.echo"]
        return event

    def test_clientFromHeader(self):
        """
        The entry two from the right is the client.
        """
        event = self.openEvent(b"X-Forwarded-For: 198.51.100.1, 203.0.113.9, 10.0.0.2")
        self.assertEqual(event["peer"], "203.0.113.9")

    def test_tooFewEntries(self):
        """
        With fewer entries than trusted proxies, the TCP peer is shown.
        """
        event = self.openEvent(b"X-Forwarded-For: 203.0.113.9")
        self.assertEqual(event["peer"], "192.0.2.7:50001")

    def test_entriesWithPorts(self):
        """
        An entry with a port, IPv4 or bracketed IPv6, gives the address.
        """
        event = self.openEvent(b"X-Forwarded-For: 203.0.113.9:4711, 10.0.0.2")
        self.assertEqual(event["peer"], "203.0.113.9")
        event = self.openEvent(b"X-Forwarded-For: [2001:db8::7]:4711, 10.0.0.2")
        self.assertEqual(event["peer"], "2001:db8::7")

    def test_notAnAddress(self):
        """
        An entry that is not an IP address is ignored.
        """
        event = self.openEvent(b"X-Forwarded-For: <script>, 10.0.0.2")
        self.assertEqual(event["peer"], "192.0.2.7:50001")


class UntrustedForwardedForTests(ServerTestCase):
    """
    By default X-Forwarded-For is ignored.
    """

    def test_headerIgnored(self):
        """
        The TCP peer is shown whatever the header contains.
        """
        with capturedLogs() as events:
            self.openWebSocket(b"X-Forwarded-For: 203.0.113.9")
        [event] = [e for e in events if e.get("log_namespace") == "wsecho.echo"]
        self.assertEqual(event["peer"], "192.0.2.7:50001")


class BackpressureTests(ServerTestCase):
    """
    A WebSocket's transport pauses reading while its send buffer is full.
    """

    def test_producerRegistered(self):
        """
        The WebSocket registers a streaming producer on its transport.
        """
        connection = self.openWebSocket()
        self.assertIsInstance(connection.transport.producer, ReadPause)
        self.assertTrue(connection.transport.streamingProducer)

    def test_pauseStopsReading(self):
        """
        Pausing the producer pauses the transport, and resuming resumes it.
        """
        transport = StringTransport()
        pause = ReadPause(transport)
        pause.pauseProducing()
        self.assertEqual(transport.producerState, "paused")
        pause.resumeProducing()
        self.assertEqual(transport.producerState, "producing")


class DrainTests(ServerTestCase):
    """
    Stopping the server closes every WebSocket with 1001.
    """

    settings = Settings(drainTimeout=5)

    def setUp(self):
        super().setUp()
        from wsecho.shutdown import DrainService

        self.drain = DrainService(self.factory, self.clock)
        self.drain.startService()

    def test_goingAway(self):
        """
        Each open WebSocket gets a close frame with 1001; the stop completes
        when they have closed, counting them as clean.
        """
        connections = [self.openWebSocket() for _ in range(3)]
        with capturedLogs() as events:
            stopping = self.drain.stopService()
            for connection in connections:
                self.assertEqual(closeCodeOf(connection.receivedFrames()), 1001)
                self.assertNoResult(stopping)
                connection.send(clientFrame(CLOSE, struct.pack("!H", 1001)))
                connection.disconnect(ConnectionDone())
            self.successResultOf(stopping)
        lines = [formatEvent(event) for event in events]
        self.assertIn(
            "3 of 3 WebSocket connections closed cleanly; 0 were dropped", lines
        )

    def test_dropAfterTimeout(self):
        """
        A client that does not reply to the close is dropped after the timeout.
        """
        connection = self.openWebSocket()
        stopping = self.drain.stopService()
        self.clock.advance(5)
        self.assertTrue(connection.closed)
        connection.disconnect(ConnectionDone())
        self.successResultOf(stopping)

    def test_nothingOpen(self):
        """
        With no WebSocket open, stopping completes at once and logs it.
        """
        with capturedLogs() as events:
            self.assertIsNone(self.drain.stopService())
        [event] = events
        self.assertEqual(
            formatEvent(event), "No WebSocket connections are open; nothing to close"
        )


class SameOriginTests(ServerTestCase):
    """
    The server's own page may connect whatever the origin list contains.
    """

    settings = Settings(allowedOrigins=["https://example.com"])

    def test_ownPage(self):
        """
        An origin equal to the request's host is accepted.
        """
        self.openWebSocket(b"Origin: http://localhost:8080")

    def test_otherPort(self):
        """
        The same host on another port is another origin.
        """
        connection = self.connect()
        response = connection.handshake(b"/ws", b"Origin: http://localhost:9999")
        self.assertTrue(response.startswith(b"HTTP/1.1 403 "), response)


class CloseEchoTests(ServerTestCase):
    """
    A client's close frame gets a close frame with its own code and reason.
    """

    def test_reasonEchoed(self):
        """
        The reply carries the client's code and reason.
        """
        connection = self.openWebSocket()
        connection.send(clientFrame(CLOSE, struct.pack("!H", 4001) + b"done here"))
        [frame] = connection.receivedFrames()
        self.assertEqual(frame.closeCode, 4001)
        self.assertEqual(frame.payload[2:], b"done here")


class SubsecondPingTests(ServerTestCase):
    """
    Ping timing is exact below a second.
    """

    settings = Settings(pingInterval=0.3, pingTimeout=0.5)

    def test_timeoutNotEarly(self):
        """
        A 0.5 s ping timeout does not drop the connection before 0.5 s.
        """
        self.clock.advance(0.7)
        connection = self.openWebSocket()
        self.clock.advance(0.31)
        [ping] = connection.receivedFrames()
        self.assertEqual(ping.opcode, PING)
        self.clock.advance(0.45)
        self.assertFalse(connection.closed)
        connection.send(clientFrame(PONG, ping.payload))
        self.clock.advance(0.2)
        self.assertFalse(connection.closed)
        self.clock.advance(0.3)
        self.assertEqual([f.opcode for f in connection.receivedFrames()], [PING])


class CompressionTests(ServerTestCase):
    """
    permessage-deflate is negotiated with what browsers offer, and a
    malformed offer is declined rather than failing the handshake.
    """

    def extensionsOf(self, *headers: bytes) -> bytes | None:
        connection = self.connect()
        response = connection.handshake(b"/ws", *headers)
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "), response)
        for line in response.split(b"\r\n"):
            name, _, value = line.partition(b":")
            if name.lower() == b"sec-websocket-extensions":
                return value.strip()
        return None

    def test_browserOffers(self):
        """
        The offers of Chrome, Firefox and Safari are accepted.
        """
        for offer in [
            b"permessage-deflate; client_max_window_bits",
            b"permessage-deflate",
            b"permessage-deflate; client_max_window_bits=15",
        ]:
            accepted = self.extensionsOf(b"Sec-WebSocket-Extensions: " + offer)
            self.assertIsNotNone(accepted, offer)
            self.assertTrue(accepted.startswith(b"permessage-deflate"), accepted)

    def test_malformedOfferDeclined(self):
        """
        An offer with an invalid parameter is declined; the handshake succeeds.
        """
        for offer in [
            b"permessage-deflate; client_max_window_bits=7",
            b"permessage-deflate; no_such_parameter",
            b"permessage-deflate; server_max_window_bits=banana",
        ]:
            self.assertIsNone(self.extensionsOf(b"Sec-WebSocket-Extensions: " + offer))

    def test_repeatedHeader(self):
        """
        An extension header sent twice is read as one list.
        """
        accepted = self.extensionsOf(
            b"Sec-WebSocket-Extensions: x-unknown",
            b"Sec-WebSocket-Extensions: permessage-deflate",
        )
        self.assertEqual(accepted, b"permessage-deflate")

    def test_compressedEcho(self):
        """
        A compressed message is echoed compressed.
        """
        import zlib

        connection = self.openWebSocket(b"Sec-WebSocket-Extensions: permessage-deflate")
        compressor = zlib.compressobj(wbits=-15)
        payload = compressor.compress(b"squeeze me") + compressor.flush(
            zlib.Z_SYNC_FLUSH
        )
        frame = bytearray(clientFrame(TEXT, payload[:-4]))
        frame[0] |= 0x40
        connection.send(bytes(frame))
        [echo] = connection.receivedFrames()
        self.assertTrue(echo.fin)
        decompressor = zlib.decompressobj(wbits=-15)
        text = decompressor.decompress(echo.payload + b"\x00\x00\xff\xff")
        self.assertEqual(text, b"You said: squeeze me")


class CompressionOffTests(ServerTestCase):
    """
    With compression off, offers are declined.
    """

    settings = Settings(compression=False)

    def test_declined(self):
        """
        A browser's offer gets no extension in the response.
        """
        connection = self.connect()
        response = connection.handshake(
            b"/ws",
            b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits",
        )
        self.assertTrue(response.startswith(b"HTTP/1.1 101 "))
        self.assertNotIn(b"permessage-deflate", response)


class MessageWhileClosingTests(ServerTestCase):
    """
    A message that arrives while the server closes is dropped quietly.
    """

    def test_noEchoNoError(self):
        """
        After the server sent its close frame, a client message gets no echo
        and raises nothing; the close completes cleanly.
        """
        connection = self.openWebSocket()
        closed = connection.protocol.goAway()
        connection.send(clientFrame(TEXT, b"too late", fin=False))
        connection.send(clientFrame(0x0, b"!"))
        connection.send(clientFrame(CLOSE, struct.pack("!H", 1001)))
        frames = connection.receivedFrames()
        self.assertEqual([frame.opcode for frame in frames], [CLOSE])
        connection.disconnect(ConnectionDone())
        self.assertIs(self.successResultOf(closed), True)


class HandshakeFailureLogTests(ServerTestCase):
    """
    Failed handshakes are logged at a bounded rate.
    """

    def test_floodLogsTwoLines(self):
        """
        Fifty bad handshakes give one line at once and one counting the rest.
        """
        with capturedLogs() as events:
            for _ in range(50):
                connection = self.connect()
                connection.send(upgradeRequest().replace(b"13", b"99"))
            self.clock.advance(10)
        lines = [formatEvent(event) for event in warnings(events)]
        self.assertEqual(len(lines), 2, lines)
        self.assertTrue(
            lines[0].startswith("WebSocket handshakes rejected: 1 (the last")
        )
        self.assertTrue(
            lines[1].startswith("WebSocket handshakes rejected: 49 (the last")
        )
        self.assertEqual(sum(self.factory.stats.handshakeFailures.values()), 50)
