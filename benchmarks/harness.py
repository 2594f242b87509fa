"""
Start WebSocket echo servers one at a time and drive them with the load
generator, for run.py and sweep.py.

Every server listens on 127.0.0.1 only. The server is pinned to CPU 0 and
the load generator (loadgen.c, compiled on first use) to CPU 1, and both are
started with the soft RLIMIT_NOFILE raised to the hard limit.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parent
REPOSITORY = BENCHMARKS.parent
PEERS = BENCHMARKS / "peers"
RESULTS = BENCHMARKS / "results"
LOADGEN_SOURCE = BENCHMARKS / "loadgen.c"
LOADGEN_BINARY = BENCHMARKS / ".build" / "loadgen"

SERVER_CPU = 0
GENERATOR_CPU = 1

SERVER_START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
QUIET_THRESHOLD_PERCENT = 30.0
"""
Other processes' CPU use, in % of one core, below which the machine counts as
quiet enough to start a measurement.
"""
QUIET_MAX_WAIT = 15.0
"""
Maximum wait for a quiet machine before one measurement, in seconds.
"""
QUIET_TOTAL_WAIT = 120.0
"""
Maximum total wait for a quiet machine in one benchmark, in seconds.
"""
IDLE_SETTLE_SECONDS = 2.0
"""
Time between the last of the idle connections opening and the RSS reading,
so that the server has finished its per-connection work.
"""

PURE_PYTHON_FLOOR_FACTOR = 3.0
"""
Scenario C fails an Autobahn-based server whose MB/s is below this multiple of
Autobahn's pure-Python XOR masking rate on the same machine. Unmasking every
64 KiB message in Python caps a server near that rate (about 7 MB/s against
220 MB/s with NVX on a 2-core AMD EPYC VM), so the floor sits far from both.
"""


class BenchmarkError(Exception):
    """
    A step of the benchmark failed, and the message names the step and the cause.
    """


@dataclass(frozen=True)
class ServerSpec:
    """
    How to start one echo server.

    @ivar name: The short name used on the command line and in the table.
    @ivar description: What the server is, for the results page.
    @ivar path: The URL path of its WebSocket endpoint.
    @ivar command: Build the command line for a port number.
    @ivar autobahn: Whether the server runs on Autobahn, so that its native
        masking (NVX) must be active.
    @ivar pinned: Whether the server is pinned to one core; a server with
        several worker processes is left free to use every core.
    """

    name: str
    description: str
    path: str
    command: Callable[[int], list[str]]
    autobahn: bool = False
    pinned: bool = True


def wsechoCommand(port: int, *options: str) -> list[str]:
    # The twistd console script calls twisted.scripts.twistd.run; calling it
    # through sys.executable keeps the server on the harness's interpreter.
    return [
        sys.executable,
        "-c",
        "import sys; from twisted.scripts.twistd import run; "
        "sys.argv[0] = 'twistd'; run()",
        "-n",
        "--pidfile=",
        "wsecho",
        "--prefix",
        "",
        "--port",
        f"tcp:{port}:interface=127.0.0.1",
        *options,
    ]


SERVERS: dict[str, ServerSpec] = {
    spec.name: spec
    for spec in [
        ServerSpec(
            "wsecho",
            "twistd -n --pidfile= wsecho --prefix '' (this repository)",
            "/ws",
            wsechoCommand,
            autobahn=True,
        ),
        ServerSpec(
            "wsecho-2w",
            "wsecho with --workers 2, unpinned (this repository)",
            "/ws",
            lambda port: wsechoCommand(port, "--workers", "2"),
            autobahn=True,
            pinned=False,
        ),
        ServerSpec(
            "autobahn",
            "plain Autobahn echo server (peers/autobahn_echo.py)",
            "/",
            lambda port: [sys.executable, str(PEERS / "autobahn_echo.py"), str(port)],
            autobahn=True,
        ),
        ServerSpec(
            "websockets",
            "websockets asyncio echo server (peers/websockets_echo.py)",
            "/",
            lambda port: [sys.executable, str(PEERS / "websockets_echo.py"), str(port)],
        ),
        ServerSpec(
            "ws",
            "Node ws echo server with bufferutil and utf-8-validate (peers/ws_echo.js)",
            "/",
            lambda port: ["node", str(PEERS / "ws_echo.js"), str(port)],
        ),
    ]
}


@dataclass(frozen=True)
class Scenario:
    """
    One load pattern.

    @ivar key: The letter used on the command line and in the table.
    @ivar connections: How many connections the generator opens.
    @ivar size: The message size in bytes; unused by idle scenarios.
    @ivar idle: Whether the connections stay idle, so that the scenario
        measures memory instead of throughput.
    """

    key: str
    connections: int
    size: int = 32
    binary: bool = False
    idle: bool = False

    @property
    def title(self) -> str:
        count = f"{self.connections:,} connection{'s' if self.connections > 1 else ''}"
        if self.idle:
            return f"{count}, idle, memory per connection"
        kind = "binary" if self.binary else "text"
        return f"{count}, {formatSize(self.size)} {kind}, request/response"


def formatSize(size: int) -> str:
    """
    Format a byte count as B, KiB or MiB.
    """
    if size >= 1024 * 1024 and size % (1024 * 1024) == 0:
        return f"{size // (1024 * 1024)} MiB"
    if size >= 1024 and size % 1024 == 0:
        return f"{size // 1024} KiB"
    return f"{size} B"


SCENARIOS: dict[str, Scenario] = {
    scenario.key: scenario
    for scenario in [
        Scenario("A", 1),
        Scenario("B", 100),
        Scenario("C", 10, 65536, binary=True),
        Scenario("D", 5000, idle=True),
    ]
}


def parseChoices(text: str, known: dict[str, object], kind: str) -> list[str]:
    """
    Split a comma-separated list of names and check each one.

    @raise BenchmarkError: A name is unknown; the message lists the known ones.
    """
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise BenchmarkError(f"no {kind} given; choose from {', '.join(known)}")
    for name in names:
        if name not in known:
            raise BenchmarkError(
                f"unknown {kind} {name!r}; choose from {', '.join(known)}"
            )
    return names


# Processes.


def pinnedLauncher(cpu: int | None) -> Callable[[], None]:
    """
    Build a preexec_fn that raises the soft RLIMIT_NOFILE to the hard limit
    and pins the child to C{cpu} when it is not L{None}.
    """

    def prepare() -> None:
        _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        if cpu is not None:
            os.sched_setaffinity(0, {cpu})

    return prepare


def cpuPinning() -> tuple[int | None, int | None]:
    """
    Return the CPUs for the server and the generator, or L{None} for both on a
    machine with fewer than two usable CPUs.
    """
    usable = os.sched_getaffinity(0)
    if {SERVER_CPU, GENERATOR_CPU} <= usable:
        return SERVER_CPU, GENERATOR_CPU
    return None, None


def processTree(pid: int) -> list[int]:
    """
    List a process and all of its descendants that are alive.
    """
    tree = [pid]
    index = 0
    while index < len(tree):
        taskDirectory = Path(f"/proc/{tree[index]}/task")
        index += 1
        try:
            tasks = list(taskDirectory.iterdir())
        except FileNotFoundError:
            continue
        for task in tasks:
            try:
                children = (task / "children").read_text().split()
            except FileNotFoundError:
                continue
            tree.extend(int(child) for child in children)
    return tree


def residentKiB(pids: list[int]) -> int:
    """
    Add up VmRSS of the processes, in KiB.
    """
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except FileNotFoundError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total


def machineBusyTicks() -> int:
    """
    Return the clock ticks all CPUs spent busy since boot, from /proc/stat.
    """
    with open("/proc/stat") as stat:
        fields = stat.readline().split()
    user, nice, system, _idle, _iowait, irq, softirq, steal = map(int, fields[1:9])
    return user + nice + system + irq + softirq + steal


def otherLoadPercent(seconds: float = 1.0) -> float:
    """
    Measure how busy the machine is, in % of one core, over C{seconds}.
    """
    before = machineBusyTicks()
    time.sleep(seconds)
    after = machineBusyTicks()
    return 100.0 * (after - before) / os.sysconf("SC_CLK_TCK") / seconds


class QuietGate:
    """
    Wait before each measurement for other processes to leave the CPUs
    mostly idle, within a total waiting budget for the whole benchmark, so
    that a machine that stays busy slows the benchmark by a bounded time.

    @ivar remaining: Seconds of waiting left in the budget.
    """

    def __init__(self, budget: float = QUIET_TOTAL_WAIT) -> None:
        self.remaining = budget

    def wait(self, log: Callable[[str], None]) -> float:
        """
        Return the load of other processes, in % of one core, measured last.
        """
        load = otherLoadPercent()
        if load <= QUIET_THRESHOLD_PERCENT:
            return load
        if self.remaining <= 0:
            log(f"  measuring while other processes use {load:.0f}% of a core")
            return load
        log(f"  waiting for other processes ({load:.0f}% of a core) to finish")
        deadline = time.monotonic() + min(QUIET_MAX_WAIT, self.remaining)
        started = time.monotonic()
        while time.monotonic() < deadline:
            load = otherLoadPercent()
            if load <= QUIET_THRESHOLD_PERCENT:
                break
        self.remaining -= time.monotonic() - started
        if load > QUIET_THRESHOLD_PERCENT:
            log(f"  measuring anyway: other processes use {load:.0f}% of a core")
        return load


def freePort() -> int:
    """
    Ask the kernel for a free TCP port on 127.0.0.1.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def serverEnvironment() -> dict[str, str]:
    """
    Build the environment of the Python servers: this checkout first on the
    path, so that twistd finds the wsecho plugin of the working tree.
    """
    environment = dict(os.environ)
    existing = environment.get("PYTHONPATH")
    environment["PYTHONPATH"] = (
        f"{REPOSITORY}{os.pathsep}{existing}" if existing else str(REPOSITORY)
    )
    return environment


@dataclass
class RunningServer:
    """
    A started server process and where its output goes.
    """

    spec: ServerSpec
    port: int
    process: subprocess.Popen[bytes]
    logPath: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def tree(self) -> list[int]:
        return processTree(self.pid)

    def logTail(self, lines: int = 5) -> str:
        try:
            text = self.logPath.read_text(errors="replace")
        except FileNotFoundError:
            return ""
        return " | ".join(text.strip().splitlines()[-lines:])

    def checkAlive(self) -> None:
        """
        @raise BenchmarkError: The server has exited; the message shows the end
            of its output.
        """
        code = self.process.poll()
        if code is not None:
            raise BenchmarkError(
                f"{self.spec.name} exited with status {code}: {self.logTail()}"
            )


def waitUntilListening(server: RunningServer) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    while time.monotonic() < deadline:
        server.checkAlive()
        try:
            with socket.create_connection(("127.0.0.1", server.port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise BenchmarkError(
        f"{server.spec.name} did not listen on 127.0.0.1:{server.port} within "
        f"{SERVER_START_TIMEOUT:.0f} s: {server.logTail()}"
    )


@contextmanager
def runningServer(spec: ServerSpec, logDirectory: Path) -> Iterator[RunningServer]:
    """
    Start a server on a free port, wait until it listens, and stop it by its
    PID on exit.
    """
    port = freePort()
    serverCpu, _ = cpuPinning()
    logPath = logDirectory / f"{spec.name}-{port}.log"
    with open(logPath, "wb") as logFile:
        process = subprocess.Popen(
            spec.command(port),
            stdin=subprocess.DEVNULL,
            stdout=logFile,
            stderr=subprocess.STDOUT,
            cwd=logDirectory,
            env=serverEnvironment(),
            preexec_fn=pinnedLauncher(serverCpu if spec.pinned else None),
        )
    server = RunningServer(spec, port, process, logPath)
    try:
        waitUntilListening(server)
        yield server
    finally:
        stopProcess(process)


def stopProcess(process: subprocess.Popen[bytes] | subprocess.Popen[str]) -> None:
    """
    Send SIGTERM to the process, and SIGKILL if it has not exited in time.
    """
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


# Autobahn's native code path.


def checkNativeAutobahn(spec: ServerSpec) -> None:
    """
    Check in the server's interpreter and environment that Autobahn uses its
    native XOR masking and UTF-8 validation (NVX).

    @raise BenchmarkError: It does not, so that scenario C would measure the
        pure-Python path.
    """
    if not spec.autobahn:
        return
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "from autobahn.websocket import USES_NVX; print(USES_NVX)",
        ],
        env=serverEnvironment(),
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"cannot import Autobahn with {sys.executable}: {result.stderr.strip()}"
        )
    if result.stdout.strip() != "True":
        raise BenchmarkError(
            f"{spec.name}: autobahn.websocket.USES_NVX is False in {sys.executable}, "
            "so Autobahn masks and validates in pure Python; install Autobahn with its "
            "NVX extension (cffi and a C compiler) and unset AUTOBAHN_USE_NVX"
        )


def pureMaskingMegabytesPerSecond() -> float:
    """
    Time Autobahn's pure-Python XOR masking of 64 KiB payloads on the server's
    CPU, in MB/s, the ceiling of a server that runs without NVX.
    """
    code = (
        "import time\n"
        "from autobahn.websocket.xormasker import create_xor_masker\n"
        "data = bytes(range(256)) * 256\n"
        "start = time.perf_counter(); count = 0\n"
        "while time.perf_counter() - start < 0.5:\n"
        "    create_xor_masker(b'\\x01\\x02\\x03\\x04', len(data)).process(data)\n"
        "    count += 1\n"
        "print(count * len(data) / (time.perf_counter() - start) / 1e6)\n"
    )
    environment = serverEnvironment()
    environment["AUTOBAHN_USE_NVX"] = "0"
    serverCpu, _ = cpuPinning()
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        preexec_fn=pinnedLauncher(serverCpu),
    )
    if result.returncode != 0:
        raise BenchmarkError(
            f"timing Autobahn's pure-Python masking failed: {result.stderr.strip()}"
        )
    return float(result.stdout)


# The load generator.


def ensureLoadGenerator(log: Callable[[str], None]) -> Path:
    """
    Compile loadgen.c unless the binary is newer than the source.

    @raise BenchmarkError: There is no C compiler, or compiling failed.
    """
    if (
        LOADGEN_BINARY.exists()
        and LOADGEN_BINARY.stat().st_mtime >= LOADGEN_SOURCE.stat().st_mtime
    ):
        return LOADGEN_BINARY
    compiler = os.environ.get("CC", "cc")
    if shutil.which(compiler) is None:
        raise BenchmarkError(
            f"C compiler {compiler!r} not found; install one (apt-get install gcc) "
            "or set CC"
        )
    LOADGEN_BINARY.parent.mkdir(exist_ok=True)
    log(f"Compiling {LOADGEN_SOURCE.name} with {compiler}")
    result = subprocess.run(
        [compiler, "-O2", "-Wall", "-o", str(LOADGEN_BINARY), str(LOADGEN_SOURCE)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise BenchmarkError(f"compiling loadgen.c failed: {result.stderr.strip()}")
    return LOADGEN_BINARY


def compilerVersion() -> str:
    compiler = os.environ.get("CC", "cc")
    try:
        result = subprocess.run(
            [compiler, "--version"], capture_output=True, text=True, check=False
        )
    except FileNotFoundError:
        return "not found"
    return result.stdout.splitlines()[0] if result.stdout else "unknown"


def ensureNodePeers(log: Callable[[str], None]) -> None:
    """
    Install the Node peer's packages with npm ci unless they are installed.

    @raise BenchmarkError: node or npm is missing, or npm ci failed.
    """
    if shutil.which("node") is None:
        raise BenchmarkError(
            "node not found; install Node.js 18 or later, or leave out ws"
        )
    if (PEERS / "node_modules" / "ws" / "package.json").exists():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise BenchmarkError("npm not found; it installs the ws peer's packages")
    log("Installing the ws peer's packages with npm ci")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=PEERS,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        lastLines = " | ".join(result.stderr.strip().splitlines()[-3:])
        raise BenchmarkError(f"npm ci in {PEERS} failed: {lastLines}")


def generatorCommand(server: RunningServer, scenario: Scenario) -> list[str]:
    command = [
        str(LOADGEN_BINARY),
        "--host",
        "127.0.0.1",
        "--port",
        str(server.port),
        "--path",
        server.spec.path,
        "--connections",
        str(scenario.connections),
    ]
    for pid in server.tree():
        command += ["--server-pid", str(pid)]
    return command


def runLoop(
    server: RunningServer, scenario: Scenario, warmup: float, duration: float
) -> dict[str, Any]:
    """
    Drive a request/response scenario and return the generator's measurements.

    @raise BenchmarkError: The generator failed or timed out.
    """
    command = [
        *generatorCommand(server, scenario),
        "--mode",
        "loop",
        "--size",
        str(scenario.size),
        "--warmup",
        str(warmup),
        "--duration",
        str(duration),
    ]
    if scenario.binary:
        command.append("--binary")
    _, generatorCpu = cpuPinning()
    timeout = warmup + duration + 180
    try:
        result = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            preexec_fn=pinnedLauncher(generatorCpu),
        )
    except subprocess.TimeoutExpired:
        raise BenchmarkError(
            f"the load generator did not finish scenario {scenario.key} against "
            f"{server.spec.name} within {timeout:.0f} s"
        ) from None
    if result.returncode != 0:
        server.checkAlive()
        raise BenchmarkError(
            f"scenario {scenario.key} against {server.spec.name}: "
            f"{result.stderr.strip() or f'loadgen exited with {result.returncode}'}"
        )
    return json.loads(result.stdout)


def readJsonLine(process: subprocess.Popen[str], timeout: float) -> dict[str, Any]:
    """
    Read one JSON line from the generator's standard output within C{timeout}.
    """
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], timeout)
    line = process.stdout.readline() if ready else ""
    if not line:
        process.wait(5)
        error = process.stderr.read().strip() if process.stderr else ""
        raise BenchmarkError(error or "the load generator stopped without a result")
    return json.loads(line)


def runIdle(server: RunningServer, scenario: Scenario) -> dict[str, Any]:
    """
    Open the scenario's idle connections and measure the server's memory.

    The baseline RSS is read after one short request/response exchange, so
    that modules a server imports on its first connection count as baseline.

    @raise BenchmarkError: The generator failed or timed out.
    """
    warm = Scenario("warm-up", 1)
    runLoop(server, warm, warmup=0.2, duration=0.3)
    time.sleep(1.0)
    rssBefore = residentKiB(server.tree())

    _, generatorCpu = cpuPinning()
    command = [*generatorCommand(server, scenario), "--mode", "idle", "--hold", "120"]
    process = subprocess.Popen(
        command,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=pinnedLauncher(generatorCpu),
    )
    try:
        opened = readJsonLine(process, timeout=150)
        time.sleep(IDLE_SETTLE_SECONDS)
        server.checkAlive()
        rssAfter = residentKiB(server.tree())
        assert process.stdin is not None
        process.stdin.write("close\n")
        process.stdin.flush()
        closed = readJsonLine(process, timeout=60)
        process.wait(30)
    except BenchmarkError as error:
        server.checkAlive()
        raise BenchmarkError(
            f"scenario {scenario.key} against {server.spec.name}: {error}"
        ) from None
    finally:
        stopProcess(process)

    count = int(opened["connections"])
    return {
        "mode": "idle",
        "connections": count,
        "opening_seconds": opened["seconds"],
        "rss_before_kib": rssBefore,
        "rss_after_kib": rssAfter,
        "kib_per_connection": (rssAfter - rssBefore) / count,
        "server_cpu_percent": closed["server_cpu_percent"],
        "generator_cpu_percent": closed["generator_cpu_percent"],
        "other_cpu_percent": closed["other_cpu_percent"],
    }


@dataclass
class Measurement:
    """
    The result of one scenario against one server in one run.
    """

    server: str
    scenario: str
    run: int
    result: dict[str, Any]
    quietLoadPercent: float


def measure(
    spec: ServerSpec,
    scenario: Scenario,
    run: int,
    warmup: float,
    duration: float,
    logDirectory: Path,
    quietGate: QuietGate,
    log: Callable[[str], None],
) -> Measurement:
    """
    Start a fresh server, run one scenario against it, and stop it.
    """
    with runningServer(spec, logDirectory) as server:
        quiet = quietGate.wait(log)
        if scenario.idle:
            result = runIdle(server, scenario)
        else:
            result = runLoop(server, scenario, warmup, duration)
        server.checkAlive()
    return Measurement(spec.name, scenario.key, run, result, quiet)


@contextmanager
def logDirectory() -> Iterator[Path]:
    """
    Make a temporary folder for server output, kept only when a step fails.
    """
    path = Path(tempfile.mkdtemp(prefix="wsecho-bench-"))
    try:
        yield path
    except BaseException:
        print(f"Server output is kept in {path}", file=sys.stderr)
        raise
    else:
        shutil.rmtree(path, ignore_errors=True)


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def log(message: str) -> None:
    """
    Print a progress line at once, even when the output is a pipe.
    """
    print(message, flush=True)


def checkRuns(parser: argparse.ArgumentParser, runs: int | None) -> None:
    """
    Reject a C{--runs} value outside 1 to 20 with the parser's usage error.
    """
    if runs is not None and not 1 <= runs <= 20:
        parser.error(f"invalid --runs {runs}: expected 1 to 20")
