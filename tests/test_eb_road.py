"""
End-to-end tests of the road a request takes on Elastic Beanstalk. A client
talks to nginx, configured like the Docker platform's proxy plus the
bundle's own .platform drop-ins. nginx forwards to twistd, started with the
image's CMD and ENV plus the environment properties of the bundle's
.ebextensions. Everything listens on 127.0.0.1 only.

The load balancer in front of nginx is not simulated; a client that sends
X-Forwarded-For stands in for it.
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from eb_nginx import NginxUnavailableError, fetchNginx, preparePrefix, startNginx
from image_process import baseEnvironment, freePort
from serverprocess import RunningProcess
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from wsecho import bundle

CHECKOUT = Path(__file__).resolve().parent.parent
CLIENT_ADDRESS = "203.0.113.9"
"""
A documentation address (RFC 5737), sent only as text in X-Forwarded-For.
"""

SHORT_PROXY_TIMEOUT = 2
"""
Seconds of proxy_read_timeout in the test, in place of the drop-in's value.
"""


@dataclass
class Road:
    """
    A running server behind a running nginx.

    @ivar url: The HTTP URL of nginx.
    @ivar logs: nginx's log folder.
    """

    server: RunningProcess
    nginx: RunningProcess
    port: int
    logs: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def webSocketURL(self) -> str:
        return f"ws://127.0.0.1:{self.port}/ws"


@pytest.fixture(scope="module")
def nginxBinary() -> Path:
    try:
        return fetchNginx()
    except NginxUnavailableError as error:
        pytest.fail(f"nginx is needed for these tests: {error}")


@pytest.fixture(scope="module")
def bundleFolder() -> Iterator[Path]:
    """
    The checkout's Elastic Beanstalk bundle, unpacked.
    """
    work = Path(tempfile.mkdtemp(prefix="wsecho-road-"))
    built = bundle.makeBundle(CHECKOUT, work / "dist")
    folder = work / "bundle"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(folder)
    yield folder
    shutil.rmtree(work)


def serverCommand(bundleFolder: Path) -> tuple[list[str], dict[str, str]]:
    """
    Return the image's command and the container's environment: the image's
    ENV, then the .ebextensions environment properties, which Elastic
    Beanstalk passes to the container.
    """
    instructions = bundle.readDockerfile(bundleFolder / "Dockerfile")
    [command] = [
        json.loads(item.arguments)
        for item in bundle.finalStage(instructions)
        if item.keyword == "CMD"
    ]
    environment = bundle.imageEnvironment(instructions)
    for (namespace, name), value in bundle.ebextensionsSettings(bundleFolder).items():
        if namespace == bundle.ENVIRONMENT_NAMESPACE:
            environment[name] = value
    return command, environment


@pytest.fixture
def startRoad(
    tmp_path_factory, bundleFolder, nginxBinary
) -> Iterator[Callable[..., Road]]:
    """
    Start a server and nginx in front of it; both are stopped after the test.
    """
    processes: list[RunningProcess] = []
    prefixes: list[Path] = []

    def start(*serverArguments: str) -> Road:
        command, environment = serverCommand(bundleFolder)
        # The container listens on every address of its own network; here
        # the server listens on loopback only, on a port the system picks.
        environment["SERVER_PORT"] = "tcp:0:interface=127.0.0.1"
        fullEnvironment = baseEnvironment(
            [Path(sys.executable).parent, "/usr/bin", "/bin"]
        )
        fullEnvironment.update(environment)
        twistd = str(Path(sys.executable).with_name(command[0]))
        server = RunningProcess(
            [twistd, *command[1:], *serverArguments],
            fullEnvironment,
            tmp_path_factory.mktemp("server"),
        )
        processes.append(server)
        upstreamPort, _ = server.waitForListening()

        prefix = Path(tempfile.mkdtemp(prefix="wsecho-nginx-"))
        prefixes.append(prefix)
        preparePrefix(
            prefix,
            bundleFolder / ".platform" / "nginx",
            {"proxy_read_timeout": f"{SHORT_PROXY_TIMEOUT}s"},
        )
        listenPort = freePort()
        nginx = startNginx(nginxBinary, prefix, upstreamPort, listenPort)
        processes.append(nginx)
        return Road(server, nginx, listenPort, prefix / "logs")

    yield start
    for process in reversed(processes):
        process.stop()
    for prefix in prefixes:
        shutil.rmtree(prefix, ignore_errors=True)


def fetch(url: str) -> tuple[int, bytes]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.status, response.read()


def waitForText(path: Path, text: str, timeout: float = 10) -> str:
    """
    Wait until the file at C{path} contains C{text}; return its contents.
    """
    deadline = time.monotonic() + timeout
    while True:
        contents = path.read_text() if path.exists() else ""
        if text in contents or time.monotonic() > deadline:
            assert text in contents, (
                f"{text!r} not in {path} after {timeout} s:\n{contents}"
            )
            return contents
        time.sleep(0.1)


def healthdLog(logs: Path) -> str:
    return "".join(
        path.read_text()
        for path in sorted((logs / "healthd").glob("application.log.*"))
    )


def test_echo(startRoad):
    """
    Text and binary messages come back through the proxy.
    """
    road = startRoad("--ping-interval", "0.5")
    with connect(road.webSocketURL, open_timeout=10) as client:
        client.send("Hello through nginx")
        assert client.recv(timeout=10) == "You said: Hello through nginx"
        client.send(b"\x00\xff" * 1000)
        assert client.recv(timeout=10) == b"\x00\xff" * 1000


def test_pagesWithConnectionUpgrade(startRoad):
    """
    / and /health return 200 through the proxy, although nginx sends them
    upstream with Connection: upgrade.
    """
    road = startRoad("--ping-interval", "0.5")
    status, page = fetch(road.url + "/")
    assert status == 200
    assert b"<html" in page.lower()
    status, body = fetch(road.url + "/health")
    assert status == 200
    assert json.loads(body)["status"] == "ok"
    upstream = waitForText(road.logs / "upstream.log", "/health 200")
    assert "/ 200 connection=upgrade" in upstream
    assert "/health 200 connection=upgrade" in upstream


def test_idleWebSocketKeptByPings(startRoad):
    """
    A WebSocket that sends nothing for longer than proxy_read_timeout stays
    open, because the server's pings reset nginx's timer.
    """
    road = startRoad("--ping-interval", "0.5")
    with connect(road.webSocketURL, open_timeout=10, ping_interval=None) as client:
        time.sleep(SHORT_PROXY_TIMEOUT * 2.5)
        client.send("still there?")
        assert client.recv(timeout=10) == "You said: still there?"


def test_idleWebSocketCutWithoutPings(startRoad):
    """
    With pings off, nginx cuts the idle WebSocket after proxy_read_timeout,
    which shows that the drop-in's timeout is in force.
    """
    road = startRoad("--ping-interval", "0")
    with connect(road.webSocketURL, open_timeout=10, ping_interval=None) as client:
        started = time.monotonic()
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=SHORT_PROXY_TIMEOUT * 5)
        elapsed = time.monotonic() - started
    assert SHORT_PROXY_TIMEOUT - 0.5 < elapsed < SHORT_PROXY_TIMEOUT * 3


def test_clientAddressFromForwardedFor(startRoad):
    """
    With the trust depth that .ebextensions sets, the server logs the client
    address the load balancer put in X-Forwarded-For, not nginx's.
    """
    road = startRoad("--ping-interval", "0.5")
    headers = {"X-Forwarded-For": CLIENT_ADDRESS}
    with connect(
        road.webSocketURL, open_timeout=10, additional_headers=headers
    ) as client:
        client.send("who am I?")
        assert client.recv(timeout=10) == "You said: who am I?"
    road.server.waitForLine(f"Connection from {CLIENT_ADDRESS}")
    road.server.waitForLine(rf"{CLIENT_ADDRESS}\S* disconnected with status 1000")


def test_stopSendsGoingAway(startRoad):
    """
    SIGTERM to the server closes a WebSocket with status 1001 through the
    proxy, and the server exits with status 0.
    """
    road = startRoad("--ping-interval", "0.5")
    with connect(road.webSocketURL, open_timeout=10) as client:
        client.send("before the stop")
        assert client.recv(timeout=10) == "You said: before the stop"
        road.server.signal(signal.SIGTERM)
        with pytest.raises(ConnectionClosed):
            client.recv(timeout=10)
        assert client.protocol.close_rcvd is not None
        assert client.protocol.close_rcvd.code == 1001
    assert road.server.wait(timeout=15) == 0


def test_healthdLogSkipsUpgrades(startRoad):
    """
    The enhanced health log has the health checks but not the WebSocket's
    101, which the main access log has.
    """
    road = startRoad("--ping-interval", "0.5")
    with connect(road.webSocketURL, open_timeout=10) as client:
        client.send("logged?")
        assert client.recv(timeout=10) == "You said: logged?"
    fetch(road.url + "/health")
    waitForText(road.logs / "access.log", '"GET /ws HTTP/1.1" 101')
    waitForText(road.logs / "access.log", '"GET /health HTTP/1.1" 200')
    healthd = healthdLog(road.logs)
    assert '"/health"200"' in healthd
    assert '"101"' not in healthd
