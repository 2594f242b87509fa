"""
Tests for L{wsecho.monitoring}: C{/health} and C{/metrics}.
"""

import json

from twisted.internet.error import ConnectionDone

from wsecho.test.support import BINARY, TEXT, ServerTestCase, clientFrame, closeFrame
from wsecho.test.test_web import splitResponse


def get(testCase: ServerTestCase, path: bytes, method: bytes = b"GET"):
    connection = testCase.connect()
    connection.send(method + b" " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    return splitResponse(connection.received())


class HealthTests(ServerTestCase):
    """
    C{/health} reports status, open connections, uptime and version.
    """

    def test_fields(self):
        """
        The JSON body has the four fields with current values.
        """
        self.openWebSocket()
        self.clock.advance(12.5)
        status, headers, body = get(self, b"/health")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(headers[b"content-type"], b"application/json")
        health = json.loads(body)
        self.assertEqual(health["status"], "ok")
        self.assertEqual(health["connections"], 1)
        self.assertEqual(health["uptime"], 12.5)
        self.assertRegex(health["version"], r"^\d+\.\d+")

    def test_head(self):
        """
        HEAD gets 200 with the length of the body but no body.
        """
        status, headers, body = get(self, b"/health", b"HEAD")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(body, b"")
        self.assertGreater(int(headers[b"content-length"]), 0)

    def test_rootHead(self):
        """
        HEAD on the page at C{/} gets 200 without a body.
        """
        status, _, body = get(self, b"/", b"HEAD")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertEqual(body, b"")


def metricValue(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not found in:\n{text}")


class MetricsTests(ServerTestCase):
    """
    C{/metrics} reports the traffic in the Prometheus text format.
    """

    def metrics(self) -> str:
        status, headers, body = get(self, b"/metrics")
        self.assertEqual(status, b"HTTP/1.1 200 OK")
        self.assertTrue(
            headers[b"content-type"].startswith(b"text/plain; version=0.0.4")
        )
        return body.decode()

    def test_traffic(self):
        """
        Connections, messages and bytes are counted, open connections included.
        """
        first = self.openWebSocket()
        first.send(clientFrame(TEXT, b"abc"))
        first.send(closeFrame(1000))
        first.disconnect(ConnectionDone())
        second = self.openWebSocket()
        second.send(clientFrame(BINARY, b"12345"))
        text = self.metrics()
        self.assertEqual(metricValue(text, "wsecho_connections_open"), 1)
        self.assertEqual(metricValue(text, "wsecho_connections_total"), 2)
        self.assertEqual(metricValue(text, "wsecho_messages_received_total"), 2)
        self.assertEqual(metricValue(text, "wsecho_messages_sent_total"), 2)
        self.assertEqual(metricValue(text, "wsecho_received_bytes_total"), 8)
        self.assertEqual(
            metricValue(text, "wsecho_sent_bytes_total"), len(b"You said: abc") + 5
        )

    def test_closeCodes(self):
        """
        Closed connections are counted by close code.
        """
        connection = self.openWebSocket()
        connection.send(closeFrame(4000))
        connection.disconnect(ConnectionDone())
        self.assertEqual(
            metricValue(self.metrics(), 'wsecho_closes_total{code="4000"}'), 1
        )

    def test_handshakeFailures(self):
        """
        Failed handshakes are counted by reason.
        """
        connection = self.connect()
        connection.send(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
            b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n"
        )
        text = self.metrics()
        self.assertEqual(
            metricValue(text, 'wsecho_handshake_failures_total{reason="bad_request"}'),
            1,
        )

    def test_processMetrics(self):
        """
        The standard process metrics are included.
        """
        self.assertIn("process_resident_memory_bytes", self.metrics())

    def test_openMetrics(self):
        """
        A scraper asking for OpenMetrics gets that format.
        """
        connection = self.connect()
        connection.send(
            b"GET /metrics HTTP/1.1\r\nHost: x\r\n"
            b"Accept: application/openmetrics-text; version=1.0.0\r\n\r\n"
        )
        _, headers, body = splitResponse(connection.received())
        self.assertTrue(
            headers[b"content-type"].startswith(b"application/openmetrics-text")
        )
        self.assertTrue(body.endswith(b"# EOF\n"))
