"""
End-to-end tests of C{--workers}: several processes sharing one socket.
"""

import os
import re
import signal
import time

import pytest
from serverprocess import ServerProcess
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

WORKER_STARTED = re.compile(r"Started worker (\d+) \(pid (\d+)\)")


def workerPids(server: ServerProcess) -> dict[int, int]:
    pids = {}
    for line in server.output.splitlines():
        match = WORKER_STARTED.search(line)
        if match:
            pids[int(match.group(1))] = int(match.group(2))
    return pids


def waitForWorkersListening(server: ServerProcess, count: int) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        listening = server.output.count("[wsecho.listening#info] Listening")
        if listening >= count:
            return
        time.sleep(0.05)
    raise AssertionError(f"workers did not start:\n{server.output}")


def echo(port: int, text: str) -> str:
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as client:
        client.send(text)
        return client.recv(timeout=10)


def test_workersShareThePort(startServer):
    """
    Two workers serve one port; a killed worker is replaced; SIGTERM stops
    them all with 1001 for open WebSockets and exit status 0.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1", "--workers", "2")
    port = server.waitForPort()
    waitForWorkersListening(server, 2)
    assert sorted(workerPids(server)) == [0, 1]
    for index in range(6):
        assert echo(port, f"m{index}") == f"You said: m{index}"

    os.kill(workerPids(server)[0], signal.SIGKILL)
    server.waitForLine(r"Worker 0 was killed by signal 9; restarting it")
    waitForWorkersListening(server, 3)
    assert echo(port, "after restart") == "You said: after restart"

    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send("open")
        client.recv(timeout=10)
        server.process.terminate()
        with pytest.raises(ConnectionClosed) as closed:
            client.recv(timeout=15)
    assert closed.value.rcvd.code == 1001
    assert server.wait(20) == 0


def test_workersNeedSocketPort(startServer, tmp_path):
    """
    A port type the workers cannot share stops start-up with one line.
    """
    socketPath = tmp_path / "echo.sock"
    server = startServer("--port", f"unix:{socketPath}", "--workers", "2")
    assert server.wait(30) == 1
    assert (
        server.output.strip()
        .splitlines()[-1]
        .startswith("twistd wsecho: --workers 2 needs a TCP or TLS port")
    )
