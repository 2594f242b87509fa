"""
Child processes for end-to-end tests: any command whose output is collected
line by line while it runs, and a real C{twistd -n wsecho}.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

TWISTD = str(Path(sys.executable).with_name("twistd"))
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


class ServerProcess(RunningProcess):
    """
    A C{twistd -n wsecho} child process, with the environment of the tests
    less C{SERVER_PORT}, plus C{environ}.
    """

    def __init__(
        self,
        arguments: Sequence[str] = (),
        environ: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        env = {key: value for key, value in os.environ.items() if key != "SERVER_PORT"}
        env.update(environ or {})
        env["PYTHONUNBUFFERED"] = "1"
        command = [TWISTD, "-n", "--pidfile=", "wsecho", *arguments]
        super().__init__(command, env, cwd)

    def waitForPort(self, timeout: float = 15) -> int:
        """
        Wait for the listening line and return the port it names.
        """
        return self.waitForListening(timeout)[0]


def runTwistd(
    arguments: Sequence[str] = (),
    environ: Mapping[str, str] | None = None,
    timeout: float = 30,
) -> subprocess.CompletedProcess[str]:
    """
    Run C{twistd -n wsecho} expecting it to exit by itself.
    """
    server = ServerProcess(arguments, environ)
    try:
        status = server.wait(timeout)
    finally:
        server.stop()
    return subprocess.CompletedProcess(server.command, status, server.output)
