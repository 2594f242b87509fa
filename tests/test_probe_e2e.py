"""
End-to-end tests of C{python -m wsecho.probe} against real twistd processes
and small misbehaving servers, all on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from certificates import writeSelfSignedCertificate
from image_process import freePort
from serverprocess import RunningProcess

TWISTD = str(Path(sys.executable).with_name("twistd"))


def serverEnvironment() -> dict[str, str]:
    """
    The test's environment without the variables that configure wsecho.
    """
    return {
        name: value
        for name, value in os.environ.items()
        if name != "SERVER_PORT" and not name.startswith("WSECHO_")
    }


@pytest.fixture
def startServer(tmp_path) -> Iterator[Callable[..., int]]:
    """
    Start C{twistd -n wsecho} on 127.0.0.1 and return its port.
    """
    servers: list[RunningProcess] = []

    def start(*arguments: str, port: str = "tcp:0:interface=127.0.0.1") -> int:
        command = [TWISTD, "-n", "--pidfile=", "wsecho", "--port", port, *arguments]
        server = RunningProcess(command, serverEnvironment(), tmp_path)
        servers.append(server)
        listening, _ = server.waitForListening()
        return listening

    yield start
    for server in servers:
        server.stop()


def runProbe(*arguments: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wsecho.probe", *arguments],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assertFailed(result: subprocess.CompletedProcess[str], reason: str) -> None:
    """
    Check that the probe exited with status 1 and one line naming C{reason}.
    """
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout == ""
    assert result.stderr.count("\n") == 1, result.stderr
    assert result.stderr.startswith("wsecho.probe: error: ")
    assert reason in result.stderr
    assert "Traceback" not in result.stderr


def test_passes(startServer):
    """
    Against a running server the probe passes and reports the health, the
    echo and the latency.
    """
    port = startServer()
    result = runProbe(f"ws://127.0.0.1:{port}/ws")
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    lines = result.stdout.splitlines()
    assert len(lines) == 3
    assert lines[0].startswith("health: ok, version ")
    assert lines[1] == (
        f"echo: 6 of 6 messages came back right (3 text, 3 binary) over ws://127.0.0.1:{port}/ws"
    )
    assert lines[2].startswith("round trip: min ")


def test_customPrefix(startServer):
    """
    --prefix must match the server's prefix.
    """
    port = startServer("--prefix", "Echo: ")
    url = f"ws://127.0.0.1:{port}/ws"
    assert runProbe("--prefix", "Echo: ", url).returncode == 0
    assertFailed(runProbe(url), "wrong echo of message 1 (text message of")


def test_wrongPath(startServer):
    """
    A path the server does not serve fails the WebSocket handshake.
    """
    port = startServer()
    assertFailed(
        runProbe(f"ws://127.0.0.1:{port}/nowhere"),
        f"WebSocket handshake with ws://127.0.0.1:{port}/nowhere failed",
    )


def test_connectionRefused():
    """
    A port where nothing listens fails with connection refused.
    """
    port = freePort()
    assertFailed(
        runProbe(f"ws://127.0.0.1:{port}/ws"), f"connection refused by 127.0.0.1:{port}"
    )


def test_silentServerTimesOut():
    """
    A server that accepts the connection and never responds fails the probe
    once --timeout has passed.
    """
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        started = time.monotonic()
        result = runProbe("--timeout", "1", "--no-health", f"ws://127.0.0.1:{port}/ws")
        elapsed = time.monotonic() - started
    assertFailed(
        result,
        f"timed out after 1 s waiting for the WebSocket handshake with ws://127.0.0.1:{port}/ws",
    )
    assert elapsed < 10


class UnhealthyHandler(http.server.BaseHTTPRequestHandler):
    """
    Respond to every request with 503 and a JSON body.
    """

    def do_GET(self):
        body = b'{"status": "draining"}'
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *arguments):
        pass


def test_badHealth():
    """
    A health check that responds with 503 fails the probe before the WebSocket.
    """
    server = http.server.HTTPServer(("127.0.0.1", 0), UnhealthyHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        port = server.server_address[1]
        result = runProbe(f"ws://127.0.0.1:{port}/ws")
    finally:
        server.shutdown()
        server.server_close()
    assertFailed(
        result,
        f"health check failed: http://127.0.0.1:{port}/health responded with HTTP 503",
    )


def test_secureWebSocket(startServer, tmp_path):
    """
    Over wss:// with --ca-file the probe passes, health check included; a
    certificate it does not trust fails the TLS handshake.
    """
    keyPath, certificatePath = writeSelfSignedCertificate(tmp_path)
    port = startServer(
        port=f"ssl:0:privateKey={keyPath}:certKey={certificatePath}:interface=127.0.0.1"
    )
    url = f"wss://127.0.0.1:{port}/ws"
    passed = runProbe("--ca-file", str(certificatePath), url)
    assert passed.returncode == 0, passed.stderr
    assert passed.stdout.startswith("health: ok")
    assertFailed(
        runProbe("--no-health", url), f"TLS handshake with 127.0.0.1:{port} failed"
    )
