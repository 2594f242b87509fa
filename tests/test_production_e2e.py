"""
End-to-end tests of the production behaviour of a real twistd process on
127.0.0.1: health, metrics, keepalive, graceful stop, limits, bad clients,
backpressure, proxies and TLS.
"""

from __future__ import annotations

import json
import os
import resource
import ssl
import threading
import time
import urllib.request
from pathlib import Path

import pytest
from certificates import escapeEndpointValue, writeSelfSignedCertificate
from rawclient import RawWebSocket
from serverprocess import TWISTD, RunningProcess, ServerProcess
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.sync.client import connect

LOOPBACK = "tcp:0:interface=127.0.0.1"


def startOnLoopback(startServer, *arguments: str) -> tuple[ServerProcess, int]:
    server = startServer("--port", LOOPBACK, *arguments)
    return server, server.waitForPort()


def fetch(url: str, method: str = "GET", **headers: str):
    request = urllib.request.Request(url, method=method, headers=headers)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, response.headers, response.read()


def residentKiB(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for process {pid}")


def echoOnce(port: int, text: str = "ping") -> str:
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as client:
        client.send(text)
        return client.recv(timeout=10)


def test_healthAndPageBehindProxyHeaders(startServer):
    """
    C{/} and C{/health} return 200, HEAD too, with the proxy's
    C{Connection: upgrade} header.
    """
    _, port = startOnLoopback(startServer)
    base = f"http://127.0.0.1:{port}"
    status, headers, body = fetch(base + "/health", Connection="upgrade")
    assert status == 200
    assert headers["Content-Type"] == "application/json"
    health = json.loads(body)
    assert health["status"] == "ok"
    assert health["connections"] == 0
    assert set(health) == {"status", "connections", "uptime", "version"}
    status, headers, body = fetch(base + "/", Connection="upgrade")
    assert status == 200
    assert b"<html" in body
    for path in ["/", "/health"]:
        status, _, body = fetch(base + path, method="HEAD")
        assert status == 200
        assert body == b""


def test_metrics(startServer):
    """
    C{/metrics} counts a finished connection and its messages.
    """
    _, port = startOnLoopback(startServer)
    assert echoOnce(port) == "You said: ping"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        _, headers, body = fetch(f"http://127.0.0.1:{port}/metrics")
        text = body.decode()
        if 'wsecho_closes_total{code="1000"} 1.0' in text:
            break
        time.sleep(0.05)
    assert headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert "wsecho_connections_total 1.0" in text
    assert "wsecho_messages_received_total 1.0" in text
    assert 'wsecho_closes_total{code="1000"} 1.0' in text


def test_sigtermSendsGoingAway(startServer):
    """
    SIGTERM closes open WebSockets with 1001 and exits with status 0.
    """
    server, port = startOnLoopback(startServer, "--drain-timeout", "5")
    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send("before")
        assert client.recv(timeout=10) == "You said: before"
        server.process.terminate()
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd.code == 1001
    assert server.wait(15) == 0
    assert "1 of 1 WebSocket connections closed cleanly" in server.output


def test_sigtermDropsSilentClient(startServer):
    """
    A client that ignores the close frame is dropped at the drain timeout,
    and the server still exits with status 0.
    """
    server, port = startOnLoopback(startServer, "--drain-timeout", "1")
    client = RawWebSocket("127.0.0.1", port)
    assert client.handshake().startswith(b"HTTP/1.1 101 ")
    server.waitForLine("Connection from")
    started = time.monotonic()
    server.process.terminate()
    assert server.wait(15) == 0
    assert time.monotonic() - started < 5
    assert client.readFrame().closeCode == 1001
    assert (
        "0 of 1 WebSocket connections closed cleanly; 1 were dropped" in server.output
    )
    client.close()


def test_pingsDropDeadClient(startServer):
    """
    A client that never replies to pings is dropped; one that does stays.
    """
    server, port = startOnLoopback(
        startServer, "--ping-interval", "0.3", "--ping-timeout", "0.5"
    )
    silent = RawWebSocket("127.0.0.1", port, timeout=5)
    assert silent.handshake().startswith(b"HTTP/1.1 101 ")
    with connect(f"ws://127.0.0.1:{port}/ws") as alive:
        assert silent.readFrame().opcode == 0x9
        assert silent.isClosedByServer()
        time.sleep(1.5)
        alive.send("still here")
        assert alive.recv(timeout=10) == "You said: still here"
    server.waitForLine(r"disconnected with status 1006 .*ping timeout")
    silent.close()


def test_slowRequestDropped(startServer):
    """
    A client trickling its request headers is dropped at the handshake
    timeout while other clients are served.
    """
    server, port = startOnLoopback(startServer, "--handshake-timeout", "1")
    slow = RawWebSocket("127.0.0.1", port, timeout=0.2)
    started = time.monotonic()
    slow.send(b"GET /ws HTTP/1.1\r\n")
    closed = False
    while time.monotonic() - started < 5:
        try:
            slow.send(b"X-Slow: 1\r\n")
        except OSError:
            closed = True
            break
        if slow.isClosedByServer():
            closed = True
            break
    assert closed
    assert time.monotonic() - started < 3
    assert echoOnce(port) == "You said: ping"
    server.waitForLine(
        "Connections dropped for sending no complete request within 1 s: 1"
    )
    slow.close()


def test_messageTooBig(startServer):
    """
    A message above the limit is closed with 1009; smaller ones are echoed.
    """
    _, port = startOnLoopback(startServer, "--max-message-size", "1KiB")
    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send(b"x" * 1024)
        assert client.recv(timeout=10) == b"x" * 1024
        client.send(b"x" * 1025)
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=10)
    assert closed.value.rcvd.code == 1009


def test_hugeFrameHeaderRejectedAtOnce(startServer):
    """
    A frame header announcing 2**62 bytes gets 1009 at once.
    """
    _, port = startOnLoopback(startServer)
    client = RawWebSocket("127.0.0.1", port, timeout=5)
    client.handshake()
    client.send(b"\x82\xff" + (1 << 62).to_bytes(8, "big") + b"\x00" * 4)
    assert client.readUntilClosed().closeCode == 1009
    client.close()


def test_connectionLimit(startServer):
    """
    Past the limit, connections get 503 before the upgrade.
    """
    server, port = startOnLoopback(startServer, "--max-connections", "2")
    url = f"ws://127.0.0.1:{port}/ws"
    with connect(url), connect(url):
        with pytest.raises(InvalidStatus) as rejected:
            connect(url, open_timeout=10)
        assert rejected.value.response.status_code == 503
    server.waitForLine(
        "WebSocket connections rejected at the limit of 2 open connections: 1"
    )
    assert echoOnce(port) == "You said: ping"


def test_origins(startServer):
    """
    A browser from an origin outside the list gets 403.
    """
    _, port = startOnLoopback(startServer, "--allowed-origins", "https://good.example")
    url = f"ws://127.0.0.1:{port}/ws"
    with pytest.raises(InvalidStatus) as rejected:
        connect(url, origin="https://evil.example", open_timeout=10)
    assert rejected.value.response.status_code == 403
    with connect(url, origin="https://good.example") as client:
        client.send("ok")
        assert client.recv(timeout=10) == "You said: ok"


def test_forwardedForInLog(startServer):
    """
    With a trusted proxy, the log shows the address from X-Forwarded-For.
    """
    server, port = startOnLoopback(startServer, "--trust-x-forwarded-for", "1")
    headers = {"X-Forwarded-For": "203.0.113.9"}
    with connect(f"ws://127.0.0.1:{port}/ws", additional_headers=headers) as client:
        client.send("hi")
        client.recv(timeout=10)
    server.waitForLine(r"Connection from 203\.0\.113\.9$")
    server.waitForLine(r"203\.0\.113\.9 disconnected with status 1000")


def badClients(port: int) -> dict[str, int | None]:
    """
    Run each kind of misbehaving client once and return the close code each
    received, or L{None} for a client that gets no close frame.
    """
    codes: dict[str, int | None] = {}

    garbage = RawWebSocket("127.0.0.1", port)
    garbage.send(b"\x16\x03\x01\x02\x00 not http at all\r\n\r\n")
    status = garbage.readHead().split(b" ")[1]
    codes["garbage"] = int(status)
    garbage.close()

    for name, frame in [
        ("unmasked", b"\x81\x02hi"),
        ("utf8", b"\x81\x82\x00\x00\x00\x00\xc3\x28"),
        ("reserved", b"\xc1\x81\x00\x00\x00\x00x"),
        ("opcode", b"\x83\x80\x00\x00\x00\x00"),
    ]:
        client = RawWebSocket("127.0.0.1", port)
        client.handshake()
        client.send(frame)
        closing = client.readUntilClosed()
        codes[name] = closing.closeCode if closing else None
        client.close()

    vanishing = RawWebSocket("127.0.0.1", port)
    vanishing.handshake()
    vanishing.send(b"\x82\xfe\x03\xe8\x00\x00\x00\x00" + b"x" * 10)
    vanishing.close()
    return codes


def test_badClientsAffectOnlyThemselves(startServer):
    """
    Malformed requests, bad frames, invalid UTF-8 and clients vanishing
    mid-message each get their RFC 6455 close code, logged once, while a
    healthy client keeps echoing.
    """
    server, port = startOnLoopback(startServer)
    failures: list[str] = []
    stop = threading.Event()
    echoed = 0

    def healthy() -> None:
        nonlocal echoed
        with connect(f"ws://127.0.0.1:{port}/ws") as client:
            while not stop.is_set():
                client.send(f"n{echoed}")
                if client.recv(timeout=10) != f"You said: n{echoed}":
                    failures.append("wrong echo")
                echoed += 1

    worker = threading.Thread(target=healthy)
    worker.start()
    try:
        codes = badClients(port)
    finally:
        stop.set()
        worker.join(20)
    assert failures == []
    assert echoed > 0
    assert codes == {
        "garbage": 400,
        "unmasked": 1002,
        "utf8": 1007,
        "reserved": 1002,
        "opcode": 1002,
    }
    server.waitForLine("disconnected with status 1006")
    assert server.process.poll() is None
    assert server.output.count("disconnected with status 1007") == 1


def test_backpressureBoundsMemory(startServer):
    """
    A client that pushes 200 MiB without reading does not make the server
    buffer it: resident memory stays within 8 MiB of idle while other
    clients are served, and every byte comes back intact once it reads.
    """
    server, port = startOnLoopback(startServer)
    assert echoOnce(port) == "You said: ping"
    idle = residentKiB(server.process.pid)

    messageSize = 64 * 1024
    count = 200 * 1024 * 1024 // messageSize
    pusher = RawWebSocket("127.0.0.1", port, timeout=120)
    pusher.handshake()
    sender = threading.Thread(
        target=lambda: [
            pusher.sendFrame(0x2, index.to_bytes(4, "big") * (messageSize // 4))
            for index in range(count)
        ]
    )
    sender.start()

    peak = idle
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        peak = max(peak, residentKiB(server.process.pid))
        time.sleep(0.05)
    assert sender.is_alive(), "the server read everything without backpressure"
    assert echoOnce(port, "meanwhile") == "You said: meanwhile"

    for index in range(count):
        frame = pusher.readFrame()
        assert frame.payload == index.to_bytes(4, "big") * (messageSize // 4)
        if index % 256 == 0:
            peak = max(peak, residentKiB(server.process.pid))
    sender.join(30)
    pusher.close()
    print(f"resident memory: idle {idle} KiB, peak {peak} KiB")
    assert peak - idle < 8 * 1024, f"idle {idle} KiB, peak {peak} KiB"


def test_tlsEcho(startServer, tmp_path):
    """
    An C{ssl:} endpoint serves C{wss://} and C{https://}.
    """
    key, certificate = writeSelfSignedCertificate(tmp_path)
    description = (
        f"ssl:0:interface=127.0.0.1:privateKey={escapeEndpointValue(str(key))}"
        f":certKey={escapeEndpointValue(str(certificate))}"
    )
    server = startServer("--port", description)
    port = server.waitForPort()
    context = ssl.create_default_context(cafile=str(certificate))
    with connect(f"wss://127.0.0.1:{port}/ws", ssl=context) as client:
        client.send("secret")
        assert client.recv(timeout=10) == "You said: secret"
    request = urllib.request.Request(f"https://127.0.0.1:{port}/health")
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        assert json.loads(response.read())["status"] == "ok"


def test_openFileLimitRaised(tmp_path):
    """
    Started with a soft limit of 256 open files, the server raises it to the
    hard limit and logs it next to --max-connections.
    """
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    command = [
        "prlimit",
        "--nofile=256:",
        TWISTD,
        "-n",
        "--pidfile=",
        "wsecho",
        "--port",
        LOOPBACK,
        "--max-connections",
        "100",
    ]
    server = RunningProcess(command, dict(os.environ), tmp_path)
    try:
        server.waitForListening()
        assert f"Open-file limit: {hard}, enough for --max-connections 100" in (
            server.output
        )
        assert "Autobahn native acceleration (NVX) is active" in server.output
    finally:
        server.stop()
