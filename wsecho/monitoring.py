"""
The C{/health} and C{/metrics} resources.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from prometheus_client import CollectorRegistry
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from twisted.web.resource import Resource
from twisted.web.server import Request

from wsecho import __version__
from wsecho.echo import EchoServerFactory
from wsecho.responses import respond
from wsecho.stats import Traffic


def currentTraffic(factory: EchoServerFactory) -> Traffic:
    """
    Add the traffic of open connections to that of closed ones.
    """
    total = Traffic()
    total.add(factory.stats.closedTraffic)
    for connection in factory.openConnections:
        total.add(connection.traffic)
    return total


class HealthResource(Resource):
    """
    A small JSON status for load balancer health checks.
    """

    isLeaf = True

    def __init__(self, factory: EchoServerFactory) -> None:
        super().__init__()
        self.factory = factory

    def render_GET(self, request: Request) -> bytes:
        factory = self.factory
        body = {
            "status": "ok",
            "connections": len(factory.openConnections),
            "uptime": round(factory.reactor.seconds() - factory.stats.startedAt, 3),
            "version": __version__,
        }
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", b"no-store")
        return respond(request, json.dumps(body).encode("ascii") + b"\n")

    render_HEAD = render_GET


class EchoCollector:
    """
    A Prometheus collector reading the factory's counters at scrape time, so
    that echoing a message costs no metric updates.
    """

    def __init__(self, factory: EchoServerFactory) -> None:
        self.factory = factory

    def collect(self) -> Iterator[Metric]:
        yield from self.collectTraffic()
        yield from self.collectOutcomes()

    def collectTraffic(self) -> Iterator[Metric]:
        """
        Yield the open connections, and the connections, messages and bytes
        counted since start.
        """
        factory = self.factory
        traffic = currentTraffic(factory)
        yield GaugeMetricFamily(
            "wsecho_connections_open",
            "WebSocket connections open now.",
            value=len(factory.openConnections),
        )
        yield counter(
            "wsecho_connections",
            "WebSocket connections opened.",
            factory.stats.connections,
        )
        yield counter(
            "wsecho_messages_received", "Messages received.", traffic.messagesIn
        )
        yield counter("wsecho_messages_sent", "Messages sent.", traffic.messagesOut)
        yield counter(
            "wsecho_received_bytes", "Message payload bytes received.", traffic.bytesIn
        )
        yield counter(
            "wsecho_sent_bytes", "Message payload bytes sent.", traffic.bytesOut
        )

    def collectOutcomes(self) -> Iterator[Metric]:
        """
        Yield how connections ended or were turned away, by code or reason.
        """
        stats = self.factory.stats
        yield labelledCounter(
            "wsecho_closes",
            "Closed WebSocket connections by close code.",
            "code",
            stats.closeCodes,
        )
        yield labelledCounter(
            "wsecho_handshake_failures",
            "Failed WebSocket opening handshakes by reason.",
            "reason",
            stats.handshakeFailures,
        )
        yield labelledCounter(
            "wsecho_rejected_connections",
            "Connections rejected before the WebSocket handshake by reason.",
            "reason",
            stats.rejections,
        )


def counter(name: str, documentation: str, value: int) -> CounterMetricFamily:
    return CounterMetricFamily(name, documentation, value=value)


def labelledCounter(
    name: str, documentation: str, label: str, counts: dict
) -> CounterMetricFamily:
    family = CounterMetricFamily(name, documentation, labels=[label])
    for key, value in sorted(counts.items()):
        family.add_metric([str(key)], value)
    return family


class MetricsResource(Resource):
    """
    The server's metrics in the Prometheus text format, with the standard
    process and platform metrics.
    """

    isLeaf = True

    def __init__(self, factory: EchoServerFactory) -> None:
        super().__init__()
        self.registry = CollectorRegistry()
        self.registry.register(EchoCollector(factory))
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)

    def render_GET(self, request: Request) -> bytes:
        accept = request.getHeader(b"accept")
        encode, contentType = choose_encoder(accept.decode("latin-1") if accept else "")
        request.setHeader(b"content-type", contentType.encode("ascii"))
        return respond(request, encode(self.registry))

    render_HEAD = render_GET
