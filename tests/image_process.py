"""
Child processes for the image and Elastic Beanstalk tests: a command whose
output is collected line by line while it runs, and free loopback ports.
"""

from __future__ import annotations

import errno
import os
import re
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

LISTENING = re.compile(r"Listening for connections on port (\d+) \((.+)\)")


class RunningProcess:
    """
    A child process with standard output and error merged and collected.

    @ivar lines: The output lines so far, without line ends.
    """

    def __init__(
        self,
        command: Sequence[str],
        environ: Mapping[str, str],
        cwd: Path,
        user: int | None = None,
        group: int | None = None,
    ) -> None:
        self.command = list(command)
        extra = {}
        if user is not None:
            extra = {"user": user, "group": group, "extra_groups": []}
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=dict(environ),
            cwd=cwd,
            text=True,
            **extra,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self.collect, daemon=True)
        self.reader.start()

    @property
    def pid(self) -> int:
        return self.process.pid

    def collect(self) -> None:
        for line in self.process.stdout:
            with self.changed:
                self.lines.append(line.rstrip("\n"))
                self.changed.notify_all()
        with self.changed:
            self.changed.notify_all()

    @property
    def output(self) -> str:
        with self.changed:
            return "\n".join(self.lines)

    def waitForLine(
        self, pattern: str | re.Pattern[str], timeout: float = 20
    ) -> re.Match[str]:
        """
        Wait until an output line matches C{pattern} and return the match.

        @raise AssertionError: No line matched in time, or the process ended.
        """
        regex = re.compile(pattern)
        deadline = time.monotonic() + timeout
        seen = 0
        with self.changed:
            while True:
                for line in self.lines[seen:]:
                    match = regex.search(line)
                    if match:
                        return match
                seen = len(self.lines)
                remaining = deadline - time.monotonic()
                ended = self.process.poll() is not None and not self.reader.is_alive()
                if remaining <= 0 or ended:
                    state = (
                        f"exited with status {self.process.returncode}"
                        if ended
                        else "still running"
                    )
                    raise AssertionError(
                        f"no output line matched {regex.pattern!r} within {timeout} s "
                        f"({state}): {' '.join(self.command)}\noutput:\n{self.output}"
                    )
                self.changed.wait(min(remaining, 0.2))

    def waitForListening(self, timeout: float = 20) -> tuple[int, str]:
        """
        Wait for wsecho's listening line; return its port and address.
        """
        match = self.waitForLine(LISTENING, timeout)
        return int(match.group(1)), match.group(2)

    def signal(self, number: int) -> None:
        if self.process.poll() is None:
            self.process.send_signal(number)

    def wait(self, timeout: float = 20) -> int:
        status = self.process.wait(timeout)
        self.reader.join(timeout)
        return status

    def stop(self, timeout: float = 15) -> int:
        """
        Send SIGTERM, then SIGKILL after C{timeout} seconds, and return the
        exit status.
        """
        self.signal(signal.SIGTERM)
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            return self.wait(timeout)


def freePort(host: str = "127.0.0.1") -> int:
    """
    Return a TCP port that was free on C{host} a moment ago.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


def portIsFree(port: int) -> bool:
    """
    Tell whether C{port} can be bound on every IPv4 and IPv6 address, as
    wsecho binds a bare port number.
    """
    families = [(socket.AF_INET6, "::"), (socket.AF_INET, "0.0.0.0")]  # noqa: S104
    for family, host in families:
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                probe.bind((host, port))
        except OSError as error:
            if family == socket.AF_INET6 and error.errno == errno.EAFNOSUPPORT:
                continue
            return False
    return True


def waitForConnect(
    host: str, port: int, process: RunningProcess, timeout: float = 15
) -> None:
    """
    Wait until C{host:port} accepts TCP connections.

    @raise AssertionError: It did not in time, or the process ended.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.process.poll() is not None:
            break
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(
        f"{host}:{port} did not accept connections within {timeout} s: "
        f"{' '.join(process.command)}\noutput:\n{process.output}"
    )


def baseEnvironment(path: Sequence[Path | str]) -> dict[str, str]:
    """
    Build a small environment, as a container starts with, plus C{PATH}.
    """
    environment = {
        "PATH": os.pathsep.join(str(entry) for entry in path),
        "LANG": "C.UTF-8",
        "HOME": "/nonexistent",
    }
    return environment
