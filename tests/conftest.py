"""
Fixtures for the end-to-end tests: real twistd processes on loopback.
"""

from collections.abc import Iterator

import pytest
from serverprocess import ServerProcess


@pytest.fixture
def startServer(tmp_path) -> Iterator:
    """
    Start C{twistd -n wsecho} processes that are stopped after the test.
    """
    servers: list[ServerProcess] = []

    def start(*arguments: str, environ: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(arguments, environ, cwd=tmp_path)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
