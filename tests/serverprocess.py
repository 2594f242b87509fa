"""
A real C{twistd -n wsecho} process for end-to-end tests.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from pathlib import Path

TWISTD = str(Path(sys.executable).with_name("twistd"))
LISTENING = re.compile(r"Listening for connections on port (\d+)")


class ServerProcess:
    """
    A C{twistd -n wsecho} child process whose output is collected as it runs.
    """

    def __init__(
        self,
        arguments: Sequence[str] = (),
        environ: dict[str, str] | None = None,
        cwd: str | Path | None = None,
    ) -> None:
        env = {key: value for key, value in os.environ.items() if key != "SERVER_PORT"}
        env.update(environ or {})
        env["PYTHONUNBUFFERED"] = "1"
        self.command = [TWISTD, "-n", "--pidfile=", "wsecho", *arguments]
        self.process = subprocess.Popen(
            self.command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
            text=True,
        )
        self.lines: list[str] = []
        self.changed = threading.Condition()
        self.reader = threading.Thread(target=self.collect, daemon=True)
        self.reader.start()

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
        self, pattern: str | re.Pattern[str], timeout: float = 15
    ) -> re.Match[str]:
        """
        Wait until a line of output matches C{pattern}.

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
                if remaining <= 0 or (
                    self.process.poll() is not None and not self.reader.is_alive()
                ):
                    raise AssertionError(
                        f"no output line matched {regex.pattern!r} within "
                        f"{timeout} s; output:\n{self.output}"
                    )
                self.changed.wait(min(remaining, 0.2))

    def waitForPort(self, timeout: float = 15) -> int:
        """
        Wait for the listening line and return the port it names.
        """
        return int(self.waitForLine(LISTENING, timeout).group(1))

    def wait(self, timeout: float = 15) -> int:
        """
        Wait for the process to exit and return its status.
        """
        status = self.process.wait(timeout)
        self.reader.join(timeout)
        return status

    def stop(self, timeout: float = 10) -> int:
        """
        Send SIGTERM, then SIGKILL if the process is still running after
        C{timeout} seconds, and return the exit status.
        """
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                return self.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.wait(timeout)


def runTwistd(
    arguments: Sequence[str] = (),
    environ: dict[str, str] | None = None,
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
