"""
The settings of a wsecho server, and the table of options that set them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wsecho import values


@dataclass(frozen=True)
class Settings:
    """
    Everything that shapes a wsecho server; see L{OPTIONS} for each meaning.
    """

    port: int | str = 8080
    path: str = "/ws"
    prefix: str = "You said: "
    pingInterval: float = 20.0
    pingTimeout: float = 10.0
    handshakeTimeout: float = 10.0
    drainTimeout: float = 5.0
    maxMessageSize: int = 16 << 20
    maxConnections: int = 10000
    allowedOrigins: list[str] = field(default_factory=lambda: ["*"])
    trustForwardedFor: int = 0
    compression: bool = True
    workers: int = 1


@dataclass(frozen=True)
class OptionSpec:
    """
    One command-line option: its name, environment variable, default text,
    the L{Settings} field it sets, and the parser of its text.
    """

    name: str
    variable: str
    default: str
    attribute: str
    parse: Callable[[str, str], Any]
    help: str
    short: str | None = None
    emptyIsValue: bool = False
    """
    Whether an empty environment variable sets the empty value instead of
    counting as unset.
    """


def seconds(name: str, allowZero: bool) -> Callable[[str, str], float]:
    return lambda value, source: values.parseSeconds(value, source, name, allowZero)


OPTIONS = [
    OptionSpec(
        "port",
        "SERVER_PORT",
        "8080",
        "port",
        values.parsePort,
        "TCP port number, or a Twisted server endpoint description such as "
        "tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem:certKey=cert.pem. "
        "A bare number listens on every IPv4 and IPv6 address.",
        short="p",
    ),
    OptionSpec(
        "path",
        "WSECHO_PATH",
        "/ws",
        "path",
        values.parsePath,
        "URL path of the WebSocket endpoint.",
    ),
    OptionSpec(
        "prefix",
        "WSECHO_PREFIX",
        "You said: ",
        "prefix",
        values.parsePrefix,
        "Text put before every echoed text message; '' echoes text unchanged.",
        emptyIsValue=True,
    ),
    OptionSpec(
        "ping-interval",
        "WSECHO_PING_INTERVAL",
        "20",
        "pingInterval",
        seconds("ping interval", allowZero=True),
        "Seconds between pings to each open WebSocket; 0 turns pings off.",
    ),
    OptionSpec(
        "ping-timeout",
        "WSECHO_PING_TIMEOUT",
        "10",
        "pingTimeout",
        seconds("ping timeout", allowZero=True),
        "Seconds to wait for the pong before dropping the connection; 0 waits forever.",
    ),
    OptionSpec(
        "handshake-timeout",
        "WSECHO_HANDSHAKE_TIMEOUT",
        "10",
        "handshakeTimeout",
        seconds("handshake timeout", allowZero=False),
        "Seconds a new connection has to send a complete HTTP request.",
    ),
    OptionSpec(
        "drain-timeout",
        "WSECHO_DRAIN_TIMEOUT",
        "5",
        "drainTimeout",
        seconds("drain timeout", allowZero=True),
        "Seconds to wait on shutdown for WebSockets to finish closing.",
    ),
    OptionSpec(
        "max-message-size",
        "WSECHO_MAX_MESSAGE_SIZE",
        "16MiB",
        "maxMessageSize",
        lambda value, source: values.parseSize(value, source, "message size"),
        "Largest message and frame accepted, in bytes (suffixes K, M, G: "
        "powers of 1024); larger ones are closed with code 1009.",
    ),
    OptionSpec(
        "max-connections",
        "WSECHO_MAX_CONNECTIONS",
        "10000",
        "maxConnections",
        lambda value, source: values.parseCount(value, source, "connection limit", 1),
        "Maximum number of open WebSocket connections; connections past it "
        "get HTTP 503 before the upgrade.",
    ),
    OptionSpec(
        "allowed-origins",
        "WSECHO_ALLOWED_ORIGINS",
        "*",
        "allowedOrigins",
        values.parseOrigins,
        "Comma-separated origin patterns a browser may connect from, * "
        "matching any text; other origins get HTTP 403.",
    ),
    OptionSpec(
        "trust-x-forwarded-for",
        "WSECHO_TRUST_X_FORWARDED_FOR",
        "0",
        "trustForwardedFor",
        lambda value, source: values.parseCount(value, source, "proxy count", 0),
        "Number of proxies in front of the server whose X-Forwarded-For "
        "entries are trusted; the client is the entry that many places from "
        "the right. 0 trusts none.",
    ),
    OptionSpec(
        "compression",
        "WSECHO_COMPRESSION",
        "on",
        "compression",
        lambda value, source: values.parseSwitch(value, source, "compression"),
        "Whether to accept permessage-deflate compression: on or off.",
    ),
    OptionSpec(
        "workers",
        "WSECHO_WORKERS",
        "1",
        "workers",
        values.parseWorkers,
        "Number of worker processes sharing the listening socket, or auto "
        "for one per CPU core; 1 serves from the twistd process itself.",
    ),
]
