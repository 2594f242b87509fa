"""
Check a running wsecho from the outside: C{python -m wsecho.probe URL}.

The probe reads C{/health} on the same host, opens the WebSocket, sends text
and binary messages one at a time, checks that each comes back as wsecho
echoes it, closes the connection and reports the round-trip latency. It
exits with status 0 when every check passed and 1, with a one-line reason
on standard error, when one failed or the time ran out.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from twisted.internet import defer
from twisted.internet import error as net_error
from twisted.internet.defer import CancelledError, Deferred, fail, succeed
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.internet.protocol import Protocol
from twisted.internet.ssl import (
    Certificate,
    optionsForClientTLS,
    trustRootFromCertificates,
)
from twisted.python.failure import Failure
from twisted.web.client import (
    URI,
    Agent,
    ResponseDone,
    ResponseFailed,
    ResponseNeverReceived,
)
from twisted.web.http import PotentialDataLoss
from twisted.web.http_headers import Headers
from twisted.web.iweb import IAgentEndpointFactory, IResponse
from zope.interface import implementer

from wsecho import __version__

if TYPE_CHECKING:
    from twisted.internet._sslverify import IOpenSSLTrustRoot

DEFAULT_PREFIX = "You said: "
DEFAULT_TIMEOUT = 10.0
DEFAULT_COUNT = 6
DEFAULT_HEALTH_PATH = "/health"
BINARY_SIZES = (32, 4096)
"""
Sizes in bytes of the binary messages, used in turn.
"""

MAX_HEALTH_BODY = 64 * 1024
"""
Largest C{/health} body read, in bytes; the real one is under 200.
"""

NORMAL_CLOSURE = 1000
USER_AGENT = f"wsecho-probe/{__version__}"
CONNECTION_ERRORS = (
    net_error.ConnectError,
    net_error.DNSLookupError,
    net_error.ConnectionLost,
)


class ProbeError(Exception):
    """
    A check failed. The message names the check and the cause in one line.
    """


@dataclass(frozen=True)
class Target:
    """
    The WebSocket to probe.

    @ivar url: The C{ws://} or C{wss://} URL.
    @ivar host: The host name or IP address, without brackets.
    @ivar port: The TCP port.
    @ivar secure: Whether the connection uses TLS.
    """

    url: str
    host: str
    port: int
    secure: bool

    @property
    def authority(self) -> str:
        """
        The host and port as they appear in a URL.
        """
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{host}:{self.port}"

    def healthURL(self, path: str) -> str:
        """
        Build the C{http://} or C{https://} URL of C{path} on the same host.
        """
        scheme = "https" if self.secure else "http"
        return f"{scheme}://{self.authority}{path}"


def parseTarget(url: str) -> Target:
    """
    Parse the URL of the WebSocket.

    C{http://} and C{https://} are accepted for C{ws://} and C{wss://}, so an
    Elastic Beanstalk environment URL can be pasted as it is.

    @raise ProbeError: The URL has another scheme, no host or a bad port.
    """
    schemes = {"ws": "ws", "wss": "wss", "http": "ws", "https": "wss"}
    parts = urlsplit(url)
    scheme = schemes.get(parts.scheme.lower())
    if scheme is None:
        raise ProbeError(
            f"invalid URL {url!r}: expected ws://HOST[:PORT]/PATH or wss://..."
        )
    if not parts.hostname:
        raise ProbeError(f"invalid URL {url!r}: the host is missing")
    try:
        port = parts.port
    except ValueError:
        raise ProbeError(
            f"invalid URL {url!r}: the port is not a number from 0 to 65535"
        ) from None
    secure = scheme == "wss"
    port = port or (443 if secure else 80)
    path = parts.path or "/"
    if parts.query:
        path += "?" + parts.query
    target = Target("", parts.hostname, port, secure)
    return Target(f"{scheme}://{target.authority}{path}", target.host, port, secure)


@dataclass(frozen=True)
class Health:
    """
    The parsed C{/health} response.

    @ivar latency: Seconds from the request to the end of the body.
    """

    version: str
    connections: int
    uptime: float
    latency: float


def parseHealth(url: str, code: int, body: bytes, latency: float) -> Health:
    """
    Check a C{/health} response.

    @raise ProbeError: The response is not a 200 with a JSON object whose
        C{status} is C{"ok"} and which has the documented fields.
    """
    if code != 200:
        raise ProbeError(f"health check failed: {url} responded with HTTP {code}")
    try:
        document = json.loads(body)
    except ValueError:
        raise ProbeError(
            f"health check failed: {url} did not return JSON: {body[:80]!r}"
        ) from None
    if not isinstance(document, dict):
        raise ProbeError(
            f"health check failed: {url} returned {document!r}, not a JSON object"
        )
    status = document.get("status")
    if status != "ok":
        raise ProbeError(
            f"health check failed: {url} reports status {status!r}, not 'ok'"
        )
    connections = document.get("connections")
    uptime = document.get("uptime")
    version = document.get("version")
    if (
        not isinstance(connections, int)
        or isinstance(connections, bool)
        or connections < 0
    ):
        raise ProbeError(
            f"health check failed: 'connections' is {connections!r} in {url}"
        )
    if not isinstance(uptime, int | float) or isinstance(uptime, bool) or uptime < 0:
        raise ProbeError(f"health check failed: 'uptime' is {uptime!r} in {url}")
    if not isinstance(version, str):
        raise ProbeError(f"health check failed: 'version' is {version!r} in {url}")
    return Health(version, connections, float(uptime), latency)


@dataclass(frozen=True)
class Message:
    """
    One message to send, and what must come back.
    """

    payload: bytes
    isBinary: bool

    def expectedEcho(self, prefix: bytes) -> bytes:
        """
        Return the payload that wsecho sends back for this message.
        """
        return self.payload if self.isBinary else prefix + self.payload

    def describe(self) -> str:
        kind = "binary" if self.isBinary else "text"
        return f"{kind} message of {len(self.payload)} bytes"


def buildMessages(
    count: int, randomBytes: Callable[[int], bytes] = os.urandom
) -> list[Message]:
    """
    Build C{count} messages, text and binary in turn.

    Each text message carries a random token, so an echo of another
    message, or of another client's message, cannot pass for it. The second
    text message has characters outside ASCII.
    """
    messages = []
    for index in range(count):
        token = randomBytes(6).hex()
        if index % 2 == 0:
            accents = " (grüße, ✓)" if index % 4 == 2 else ""
            text = f"wsecho probe {index + 1} of {count}, token {token}{accents}"
            messages.append(Message(text.encode("utf-8"), False))
        else:
            size = BINARY_SIZES[(index // 2) % len(BINARY_SIZES)]
            messages.append(Message(randomBytes(size), True))
    return messages


def checkEcho(
    message: Message, number: int, prefix: bytes, payload: bytes, isBinary: bool
) -> None:
    """
    Compare an echo with what wsecho should have sent back.

    @raise ProbeError: The type or the payload differs.
    """
    expected = message.expectedEcho(prefix)
    where = f"wrong echo of message {number} ({message.describe()})"
    if isBinary != message.isBinary:
        kind = "binary" if isBinary else "text"
        raise ProbeError(f"{where}: a {kind} message came back")
    if payload == expected:
        return
    if not message.isBinary:
        raise ProbeError(f"{where}: expected {expected[:60]!r}, got {payload[:60]!r}")
    raise ProbeError(f"{where}: {len(payload)} bytes came back and they differ")


@dataclass(frozen=True)
class Latency:
    """
    Round-trip times in seconds.
    """

    minimum: float
    median: float
    maximum: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Latency:
        return cls(min(samples), statistics.median(samples), max(samples))


@dataclass
class Report:
    """
    The results of a successful probe.
    """

    url: str
    health: Health | None = None
    sent: list[Message] = field(default_factory=list)
    roundTrips: list[float] = field(default_factory=list)

    def lines(self) -> list[str]:
        """
        Describe the result for a person, one check a line.
        """
        lines = []
        if self.health is not None:
            health = self.health
            lines.append(
                f"health: ok, version {health.version}, {health.connections} "
                f"connections, up {health.uptime:.0f} s "
                f"({milliseconds(health.latency)})"
            )
        texts = sum(1 for message in self.sent if not message.isBinary)
        binaries = len(self.sent) - texts
        lines.append(
            f"echo: {len(self.sent)} of {len(self.sent)} messages came back right "
            f"({texts} text, {binaries} binary) over {self.url}"
        )
        latency = Latency.of(self.roundTrips)
        lines.append(
            f"round trip: min {milliseconds(latency.minimum)}, median "
            f"{milliseconds(latency.median)}, max {milliseconds(latency.maximum)}"
        )
        return lines


def milliseconds(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


@dataclass(frozen=True)
class Closing:
    """
    The end of a WebSocket connection, as Autobahn reported it.
    """

    wasClean: bool
    code: int | None
    reason: str | None


class ProbeClientProtocol(WebSocketClientProtocol):
    """
    A WebSocket client that hands each message and the close to the probe
    through Deferreds.

    @ivar opened: Fires when the opening handshake completed, or fails with
        L{ProbeError} when the connection ended before that.
    @ivar closed: Fires with a L{Closing} when the connection ended.
    """

    def __init__(self) -> None:
        super().__init__()
        self.opened: Deferred[None] = Deferred()
        self.closed: Deferred[Closing] = Deferred()
        self.received: list[tuple[bytes, bool]] = []
        self.waiting: Deferred[tuple[bytes, bool]] | None = None
        self.lostReason: Failure | None = None

    def onOpen(self) -> None:
        self.opened.callback(None)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self.waiting is not None:
            waiting, self.waiting = self.waiting, None
            waiting.callback((payload, isBinary))
        else:
            self.received.append((payload, isBinary))

    def connectionLost(self, reason: Failure) -> None:
        self.lostReason = reason
        super().connectionLost(reason)

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        closing = Closing(wasClean, code, reason)
        if not self.opened.called:
            lost = self.lostReason.value if self.lostReason is not None else None
            if isTLSError(lost):
                message = describeConnectionError(lost, self.factory.url)
            else:
                message = (
                    f"WebSocket handshake with {self.factory.url} failed: {reason}"
                )
            self.opened.errback(ProbeError(message))
        if self.waiting is not None:
            waiting, self.waiting = self.waiting, None
            waiting.errback(ProbeError(describeEarlyClose(closing)))
        if not self.closed.called:
            self.closed.callback(closing)

    def nextMessage(self) -> Deferred[tuple[bytes, bool]]:
        """
        Return the next message from the server, as C{(payload, isBinary)}.
        """
        if self.received:
            return succeed(self.received.pop(0))
        if self.closed.called:
            return fail(ProbeError("the connection closed before the echo arrived"))
        self.waiting = Deferred()
        return self.waiting


def describeEarlyClose(closing: Closing) -> str:
    reason = f" {closing.reason}" if closing.reason else ""
    return (
        "the server closed the connection before the echo: "
        f"status {closing.code}{reason}"
    )


class BodyCollector(Protocol):
    """
    Collect a response body of at most C{limit} bytes into C{finished}.
    """

    def __init__(self, finished: Deferred[bytes], url: str, limit: int) -> None:
        self.finished = finished
        self.url = url
        self.limit = limit
        self.chunks: list[bytes] = []
        self.size = 0

    def dataReceived(self, data: bytes) -> None:
        if self.finished.called:
            return
        self.chunks.append(data)
        self.size += len(data)
        if self.size > self.limit:
            self.transport.stopProducing()
            self.finished.errback(
                ProbeError(
                    f"health check failed: {self.url} sent more than {self.limit} bytes"
                )
            )

    def connectionLost(self, reason: Failure) -> None:
        if self.finished.called:
            return
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def readLimitedBody(response: IResponse, url: str, limit: int) -> Deferred[bytes]:
    """
    Read a response body, failing with L{ProbeError} past C{limit} bytes.
    """
    finished: Deferred[bytes] = Deferred()
    response.deliverBody(BodyCollector(finished, url, limit))
    return finished


class EndpointFactory:
    """
    Make the TCP or TLS client endpoints of the probe's connections.

    @ivar trustRoot: The certificate authorities that a TLS server must be
        signed by, or L{None} for the platform's.
    """

    def __init__(
        self, reactor: IReactorTime, trustRoot: IOpenSSLTrustRoot | None = None
    ) -> None:
        self.reactor = reactor
        self.trustRoot = trustRoot

    def endpoint(self, host: str, port: int, secure: bool) -> IStreamClientEndpoint:
        endpoint = HostnameEndpoint(self.reactor, host, port)
        if secure:
            options = optionsForClientTLS(host, trustRoot=self.trustRoot)
            endpoint = wrapClientTLS(options, endpoint)
        return endpoint


@implementer(IAgentEndpointFactory)
class AgentEndpoints:
    """
    Let an L{Agent} connect through an L{EndpointFactory}, so that the health
    check and the WebSocket use the same connections and TLS settings.
    """

    def __init__(self, endpoints: EndpointFactory) -> None:
        self.endpoints = endpoints

    def endpointForURI(self, uri: URI) -> IStreamClientEndpoint:
        return self.endpoints.endpoint(
            uri.host.decode("ascii"), uri.port, uri.scheme == b"https"
        )


class Probe:
    """
    One run of the probe against a target.

    @ivar step: The step in progress, which a timeout message names.
    """

    def __init__(
        self,
        reactor: IReactorTime,
        target: Target,
        endpoints: EndpointFactory,
        prefix: str = DEFAULT_PREFIX,
        healthPath: str | None = DEFAULT_HEALTH_PATH,
        messages: Sequence[Message] = (),
        timer: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.reactor = reactor
        self.target = target
        self.endpoints = endpoints
        self.prefix = prefix.encode("utf-8")
        self.healthPath = healthPath
        self.messages = list(messages)
        self.timer = timer
        self.step = "starting"
        self.protocol: ProbeClientProtocol | None = None

    def run(self, timeout: float) -> Deferred[Report]:
        """
        Run every check within C{timeout} seconds.

        @return: A L{Deferred} that fires with the L{Report}, or fails with
            L{ProbeError}.
        """
        running = Deferred.fromCoroutine(self.check())
        running.addTimeout(timeout, self.reactor)
        running.addErrback(self.explain, timeout)
        running.addBoth(self.cleanUp)
        return running

    async def check(self) -> Report:
        report = Report(self.target.url)
        if self.healthPath is not None:
            report.health = await self.checkHealth(
                self.target.healthURL(self.healthPath)
            )
        protocol = await self.connect()
        for number, message in enumerate(self.messages, start=1):
            self.step = (
                f"waiting for the echo of message {number} of {len(self.messages)}"
            )
            started = self.timer()
            protocol.sendMessage(message.payload, message.isBinary)
            payload, isBinary = await protocol.nextMessage()
            report.roundTrips.append(self.timer() - started)
            checkEcho(message, number, self.prefix, payload, isBinary)
            report.sent.append(message)
        self.step = "waiting for the closing handshake"
        protocol.sendClose(NORMAL_CLOSURE)
        closing = await protocol.closed
        if closing.code != NORMAL_CLOSURE:
            raise ProbeError(
                f"the server replied to the close with status {closing.code} "
                f"{closing.reason or ''}".rstrip()
            )
        return report

    async def checkHealth(self, url: str) -> Health:
        self.step = f"waiting for {url}"
        agent = Agent.usingEndpointFactory(self.reactor, AgentEndpoints(self.endpoints))
        started = self.timer()
        headers = Headers({b"user-agent": [USER_AGENT.encode("ascii")]})
        try:
            response = await agent.request(b"GET", url.encode("ascii"), headers)
            body = await readLimitedBody(response, url, MAX_HEALTH_BODY)
        except (ResponseFailed, ResponseNeverReceived) as failure:
            raise ProbeError(
                describeConnectionError(failure.reasons[0].value, url)
            ) from None
        except CONNECTION_ERRORS as failure:
            raise ProbeError(describeConnectionError(failure, url)) from None
        return parseHealth(url, response.code, body, self.timer() - started)

    async def connect(self) -> ProbeClientProtocol:
        target = self.target
        self.step = f"connecting to {target.authority}"
        factory = WebSocketClientFactory(
            target.url, useragent=USER_AGENT, reactor=self.reactor
        )
        factory.protocol = ProbeClientProtocol
        endpoint = self.endpoints.endpoint(target.host, target.port, target.secure)
        try:
            protocol = await endpoint.connect(factory)
        except CONNECTION_ERRORS as failure:
            raise ProbeError(describeConnectionError(failure, target.url)) from None
        self.protocol = protocol
        self.step = f"waiting for the WebSocket handshake with {target.url}"
        await protocol.opened
        return protocol

    def explain(self, failure: Failure, timeout: float) -> Failure:
        """
        Turn a timeout or an unexpected error into a L{ProbeError}.
        """
        if failure.check(ProbeError):
            return failure
        if failure.check(defer.TimeoutError, CancelledError):
            return Failure(ProbeError(f"timed out after {timeout:g} s {self.step}"))
        if failure.check(*CONNECTION_ERRORS):
            return Failure(
                ProbeError(describeConnectionError(failure.value, self.target.url))
            )
        name = type(failure.value).__name__
        message = f"unexpected {name} {self.step}: {failure.value}"
        return Failure(ProbeError(message))

    def cleanUp(self, result: Report | Failure) -> Report | Failure:
        """
        Drop the connection if a failure left it open.
        """
        protocol = self.protocol
        if protocol is not None and not protocol.closed.called and protocol.transport:
            protocol.transport.abortConnection()
        return result


def describeConnectionError(failure: BaseException, url: str) -> str:
    """
    Describe a failed connection in one line.
    """
    if isinstance(failure, net_error.ConnectionRefusedError):
        return f"connection refused by {hostOf(url)} ({url})"
    if isinstance(failure, net_error.DNSLookupError):
        return f"cannot resolve the host of {url}"
    if isinstance(failure, net_error.TimeoutError):
        return f"connecting to {url} timed out"
    if isTLSError(failure):
        return f"TLS handshake with {hostOf(url)} failed: {describeTLSError(failure)}"
    text = str(failure).strip() or type(failure).__name__
    return f"cannot connect to {url}: {text}"


def isTLSError(error: BaseException | None) -> bool:
    return error is not None and type(error).__module__.startswith("OpenSSL")


def describeTLSError(error: BaseException) -> str:
    """
    Join the reasons of an OpenSSL error, which come as a list of
    C{(library, function, reason)} tuples.
    """
    details = error.args[0] if error.args else None
    if isinstance(details, list) and all(isinstance(item, tuple) for item in details):
        reasons = [str(item[-1]) for item in details if item and item[-1]]
        if reasons:
            return "; ".join(reasons)
    return str(error) or type(error).__name__


def hostOf(url: str) -> str:
    return urlsplit(url).netloc


def loadTrustRoot(path: str) -> IOpenSSLTrustRoot:
    """
    Read the certificate authorities in a PEM file.

    @raise ProbeError: The file cannot be read or contains no certificate.
    """
    try:
        with open(path, "rb") as pemFile:
            data = pemFile.read()
    except OSError as error:
        raise ProbeError(f"cannot read --ca-file {path}: {error.strerror}") from None
    blocks = re.findall(
        rb"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----", data, re.DOTALL
    )
    if not blocks:
        raise ProbeError(f"--ca-file {path} contains no PEM certificate")
    return trustRootFromCertificates([Certificate.loadPEM(block) for block in blocks])


def positiveNumber(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(
            f"expected a number of seconds above 0, got {text!r}"
        )
    return value


def positiveInteger(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a count of 1 or more, got {text!r}")
    return value


def parseArguments(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m wsecho.probe",
        description="Check a running wsecho: its /health, the echo of text and "
        "binary messages, and the round-trip latency. Exits with status 1 and a "
        "one-line reason when a check fails.",
    )
    parser.add_argument(
        "url",
        help="the WebSocket URL, such as ws://localhost:8080/ws or "
        "wss://example.com/ws (http:// and https:// are read as ws:// and wss://)",
    )
    parser.add_argument(
        "--prefix",
        default=DEFAULT_PREFIX,
        help="text the server puts before echoed text messages "
        f"[default: {DEFAULT_PREFIX!r}]",
    )
    parser.add_argument(
        "--timeout",
        type=positiveNumber,
        default=DEFAULT_TIMEOUT,
        help="time limit for the whole probe, in seconds "
        f"[default: {DEFAULT_TIMEOUT:g}]",
    )
    parser.add_argument(
        "--count",
        type=positiveInteger,
        default=DEFAULT_COUNT,
        help="number of messages to send, text and binary in turn "
        f"[default: {DEFAULT_COUNT}]",
    )
    parser.add_argument(
        "--health-path",
        default=DEFAULT_HEALTH_PATH,
        help="URL path of the health check on the same host "
        f"[default: {DEFAULT_HEALTH_PATH}]",
    )
    parser.add_argument(
        "--no-health", action="store_true", help="skip the health check"
    )
    parser.add_argument(
        "--ca-file",
        help="PEM file of the certificate authorities to trust for wss:// and "
        "https:// instead of the system's",
    )
    return parser.parse_args(argv)


async def runFromArguments(reactor: IReactorTime, arguments: argparse.Namespace) -> int:
    """
    Run the probe that the command line describes, print the outcome and
    return the exit status.
    """
    try:
        target = parseTarget(arguments.url)
        trustRoot = loadTrustRoot(arguments.ca_file) if arguments.ca_file else None
        probe = Probe(
            reactor,
            target,
            EndpointFactory(reactor, trustRoot),
            prefix=arguments.prefix,
            healthPath=None if arguments.no_health else arguments.health_path,
            messages=buildMessages(arguments.count),
        )
        report = await probe.run(arguments.timeout)
    except ProbeError as failure:
        sys.stderr.write(f"wsecho.probe: error: {failure}\n")
        return 1
    for line in report.lines():
        sys.stdout.write(line + "\n")
    return 0


def main(argv: Sequence[str] | None = None) -> None:
    """
    Run C{python -m wsecho.probe}; exits the process with the probe's status.
    """
    from twisted.internet.task import react

    arguments = parseArguments(argv)

    async def probeAndExit(reactor: IReactorTime) -> None:
        status = await runFromArguments(reactor, arguments)
        if status:
            raise SystemExit(status)

    react(lambda reactor: Deferred.fromCoroutine(probeAndExit(reactor)))


if __name__ == "__main__":
    main()
