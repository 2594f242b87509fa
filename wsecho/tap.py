"""
The C{twistd wsecho} command line: its options and the service they build.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

from twisted.application.service import IService
from twisted.internet import endpoints
from twisted.internet.testing import MemoryReactor
from twisted.python import usage

from wsecho.echo import EchoServerFactory
from wsecho.listening import BindError, ListeningService, bindDescription, bindDualStack
from wsecho.web import buildSite

DEFAULT_PORT = 8080
PORT_VARIABLE = "SERVER_PORT"


def parsePort(value: str, source: str) -> int | str:
    """
    Parse a port number or validate a Twisted server endpoint description.

    @param value: The text from the command line or the environment.
    @param source: Where C{value} came from, for the error message.
    @return: The port number for a bare number, else the description.
    @raise usage.UsageError: C{value} is neither.
    """
    text = value.strip()
    if text.isdigit():
        number = int(text)
        if number > 65535:
            raise usage.UsageError(
                f"invalid port {value!r} from {source}: "
                "a port number must be 0 to 65535"
            )
        return number
    if ":" not in text:
        raise usage.UsageError(
            f"invalid port {value!r} from {source}: expected a port number "
            "or an endpoint description such as tcp:8080"
        )
    try:
        endpoints.serverFromString(MemoryReactor(), text)
    except Exception as error:
        raise usage.UsageError(
            f"invalid endpoint description {value!r} from {source}: {error}"
        ) from None
    return text


def parsePath(value: str) -> str:
    """
    Validate the URL path of the WebSocket.

    @raise usage.UsageError: The path does not start with C{/} or contains a
        character that cannot appear in a URL path.
    """
    if not value.startswith("/"):
        raise usage.UsageError(
            f"invalid path {value!r} from --path: it must start with '/', as in /ws"
        )
    if any(character in value for character in "?# \t\r\n") or "//" in value:
        raise usage.UsageError(
            f"invalid path {value!r} from --path: "
            "use a plain URL path without '?', '#', spaces or empty segments"
        )
    return value


class Options(usage.Options):
    """
    Options of C{twistd wsecho}.

    @ivar environ: The environment that C{SERVER_PORT} is read from.
    """

    optParameters = [
        [
            "port",
            "p",
            None,
            "TCP port number, or a Twisted server endpoint description such as "
            "tcp:8080:interface=127.0.0.1 or ssl:8443:privateKey=key.pem "
            f"[default: ${PORT_VARIABLE}, else {DEFAULT_PORT}]. "
            "A bare number listens on every IPv4 and IPv6 address.",
        ],
        ["path", None, "/ws", "URL path of the WebSocket endpoint."],
        [
            "prefix",
            None,
            "You said: ",
            "Text put before every echoed text message; '' echoes text unchanged.",
        ],
    ]

    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        super().__init__()
        self.environ = os.environ if environ is None else environ

    def parseOptions(self, options: list[str] | None = None) -> None:
        """
        Parse the command line, exiting with one line on a bad value.

        twistd prints its whole usage text before a L{usage.UsageError}; a
        bad value of wsecho is reported in a single line instead.
        """
        try:
            super().parseOptions(options)
        except usage.UsageError as error:
            sys.stderr.write(f"twistd wsecho: {error}\n")
            raise SystemExit(2) from None

    def postOptions(self) -> None:
        self["port"] = self.resolvePort()
        self["path"] = parsePath(self["path"])

    def resolvePort(self) -> int | str:
        """
        Take the port from C{--port}, else C{SERVER_PORT}, else 8080.
        """
        if self["port"] is not None:
            return parsePort(self["port"], "--port")
        fromEnvironment = self.environ.get(PORT_VARIABLE, "")
        if fromEnvironment.strip():
            return parsePort(
                fromEnvironment, f"the {PORT_VARIABLE} environment variable"
            )
        return DEFAULT_PORT


def makeService(options: Options) -> IService:
    """
    Bind the listening socket and build the echo service.

    @raise SystemExit: The port cannot be bound; the message says why.
    """
    factory = EchoServerFactory(prefix=options["prefix"])
    site = buildSite(factory, options["path"])
    port = options["port"]
    try:
        if isinstance(port, int):
            listener = bindDualStack(port)
        else:
            listener = bindDescription(port)
    except BindError as error:
        raise SystemExit(f"twistd wsecho: {error}") from None
    return ListeningService(listener, site)
