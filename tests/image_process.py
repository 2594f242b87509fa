"""
Helpers for the image and Elastic Beanstalk tests: free loopback ports,
waiting for a port, and a container-like environment. The processes
themselves are L{serverprocess.RunningProcess}.
"""

from __future__ import annotations

import errno
import os
import socket
import time
from collections.abc import Sequence
from pathlib import Path

from serverprocess import RunningProcess


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
