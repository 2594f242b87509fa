"""
The server under test: C{twistd -n wsecho} as a child process on a free
loopback port.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

HOST = "127.0.0.1"
WEBSOCKET_PATH = "/ws"
LOG_TAIL_LINES = 15
TRACEBACK = "Traceback (most recent call last)"


class ServerError(Exception):
    """
    The server failed to start, and the message gives the reason.
    """


def findFreePort() -> int:
    """
    Ask the kernel for a free TCP port on the loopback address.

    NOTE: another process can take the port between this call and the
    server's bind.  The server then exits, and L{ServerProcess.start} reports it.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return probe.getsockname()[1]


def stopProcess(process: subprocess.Popen, timeout: float) -> int:
    """
    Stop a child process by its PID: SIGTERM, then SIGKILL when it is still
    running after C{timeout} seconds.

    @return: The exit status, negative for the signal that ended it.
    """
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return process.returncode


def describeExit(status: int) -> str:
    """
    Describe the exit status of a child process, as C{exited with status 1}
    or C{was killed by SIGKILL}.
    """
    if status < 0:
        try:
            name = signal.Signals(-status).name
        except ValueError:
            name = f"signal {-status}"
        return f"was killed by {name}"
    return f"exited with status {status}"


def isListening(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1):
            return True
    except OSError:
        return False


def tail(path: Path, count: int = LOG_TAIL_LINES) -> str:
    """
    Return the last lines of a log file, indented, for an error message.
    """
    try:
        lines = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError as error:
        return f"  (cannot read {path}: {error})"
    return "\n".join("  " + line for line in lines[-count:]) or "  (empty log)"


class ServerProcess:
    """
    One run of the wsecho server with an empty prefix, so that it echoes
    text unchanged, listening on the loopback address only.

    @ivar twistd: The C{twistd} executable of the Python environment that
        has wsecho installed.
    @ivar log: The file that receives the server's standard output and error.
    @ivar port: The TCP port, chosen by L{start}.
    """

    def __init__(self, twistd: Path, log: Path) -> None:
        self.twistd = twistd
        self.log = log
        self.port: int | None = None
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"ws://{HOST}:{self.port}{WEBSOCKET_PATH}"

    def command(self) -> list[str]:
        return [
            str(self.twistd),
            "-n",
            "--pidfile=",
            "wsecho",
            "--prefix",
            "",
            "--path",
            WEBSOCKET_PATH,
            "--port",
            f"tcp:{self.port}:interface={HOST}",
        ]

    def start(self, timeout: float) -> None:
        """
        Start the server and wait until it accepts TCP connections.

        @param timeout: Seconds to wait for the listening socket.
        @raise ServerError: The server exited, or did not listen in time.
        """
        self.port = findFreePort()
        environment = dict(os.environ, PYTHONUNBUFFERED="1")
        with self.log.open("wb") as log:
            try:
                self.process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.log.parent,
                    env=environment,
                    start_new_session=True,
                )
            except OSError as error:
                raise ServerError(f"cannot start {self.twistd}: {error}") from None

        deadline = time.monotonic() + timeout
        while not isListening(self.port):
            status = self.process.poll()
            if status is not None:
                raise ServerError(
                    f"the server {describeExit(status)} before listening "
                    f"on {HOST}:{self.port}:\n{tail(self.log)}"
                )
            if time.monotonic() > deadline:
                raise ServerError(
                    f"the server did not listen on {HOST}:{self.port} within "
                    f"{timeout:g} s:\n{tail(self.log)}"
                )
            time.sleep(0.1)

    def exitStatus(self) -> int | None:
        """
        Return the exit status if the server has exited, else L{None}.
        """
        if self.process is None:
            return None
        return self.process.poll()

    def stop(self, timeout: float) -> int | None:
        """
        Stop the server by its PID, if it was started.

        @return: The exit status, or L{None} when it never started.
        """
        if self.process is None:
            return None
        return stopProcess(self.process, timeout)

    def countTracebacks(self) -> int:
        """
        Count the Python tracebacks in the server log: each is an error the
        server logged, such as an exception in a protocol callback.
        """
        try:
            text = self.log.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return 0
        return text.count(TRACEBACK)

    def firstTraceback(self, count: int = 40) -> str:
        """
        Return the log lines from the first traceback on, indented, at most
        C{count} of them.
        """
        try:
            lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        except OSError as error:
            return f"  (cannot read {self.log}: {error})"
        for number, line in enumerate(lines):
            if TRACEBACK in line:
                # The line before a traceback names what failed.
                start = max(number - 1, 0)
                return "\n".join("  " + line for line in lines[start : start + count])
        return "  (no traceback)"
