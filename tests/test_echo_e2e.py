"""
End-to-end tests of the echo: a real twistd process and the websockets
client library, on loopback.
"""

import os
import socket
import urllib.error
import urllib.request

import pytest
from serverprocess import runTwistd
from websockets.sync.client import connect


def hasIPv6Loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as probe:
            probe.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_helloWorldFromEnvironmentPort(startServer):
    """
    With C{SERVER_PORT} set, the server echoes text with the prefix.
    """
    server = startServer(environ={"SERVER_PORT": "0"})
    port = server.waitForPort()
    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send("Hello, world!")
        assert client.recv(timeout=10) == "You said: Hello, world!"


def test_helloWorldFromOption(startServer):
    """
    C{--port} with an endpoint description binds the address it names.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1")
    port = server.waitForPort()
    assert f"(127.0.0.1:{port})" in server.output
    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send("Hello, world!")
        assert client.recv(timeout=10) == "You said: Hello, world!"


@pytest.mark.skipif(not hasIPv6Loopback(), reason="this host has no IPv6 loopback")
def test_bareNumberServesBothFamilies(startServer):
    """
    A bare port number serves clients on 127.0.0.1 and on ::1.
    """
    server = startServer("--port", "0")
    port = server.waitForPort()
    for host in ["127.0.0.1", "[::1]", "localhost"]:
        with connect(f"ws://{host}:{port}/ws") as client:
            client.send(f"via {host}")
            assert client.recv(timeout=10) == f"You said: via {host}"


@pytest.mark.skipif(not hasIPv6Loopback(), reason="this host has no IPv6 loopback")
def test_ipv6Description(startServer):
    """
    A C{tcp6:} description on ::1 serves IPv6 clients.
    """
    server = startServer("--port", "tcp6:0:interface=\\:\\:1")
    port = server.waitForPort()
    assert f"([::1]:{port})" in server.output
    with connect(f"ws://[::1]:{port}/ws") as client:
        client.send("six")
        assert client.recv(timeout=10) == "You said: six"


def test_binaryAndLargeMessages(startServer):
    """
    Binary messages, a 1 MiB one among them, come back unchanged.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1")
    port = server.waitForPort()
    large = os.urandom(1 << 20)
    with connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as client:
        client.send(b"\x00\x01\xfe\xff")
        assert client.recv(timeout=10) == b"\x00\x01\xfe\xff"
        client.send(large)
        assert client.recv(timeout=30) == large
        client.send("x" * (1 << 20))
        assert client.recv(timeout=30) == "You said: " + "x" * (1 << 20)


def test_emptyPrefix(startServer):
    """
    C{--prefix ''} echoes text unchanged.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1", "--prefix", "")
    port = server.waitForPort()
    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send("plain")
        assert client.recv(timeout=10) == "plain"


def test_connectionLogLines(startServer):
    """
    The output has a line for the connection and one for its close status.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1")
    port = server.waitForPort()
    with connect(f"ws://127.0.0.1:{port}/ws") as client:
        client.send("logged")
        client.recv(timeout=10)
        clientPort = client.local_address[1]
    peer = f"127.0.0.1:{clientPort}"
    server.waitForLine(f"Connection from {peer}$")
    server.waitForLine(f"{peer} disconnected with status 1000$")
    assert "logged" not in server.output


def test_upgradeRequiredOverHTTP(startServer):
    """
    A plain GET on the WebSocket path gets 426 naming the WebSocket URL.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1")
    port = server.waitForPort()
    with pytest.raises(urllib.error.HTTPError) as caught:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/ws", timeout=10)
    assert caught.value.code == 426
    assert f"ws://127.0.0.1:{port}/ws" in caught.value.read().decode()


def test_badEnvironmentPort():
    """
    C{SERVER_PORT=abc} stops start-up with one line and status 2.
    """
    result = runTwistd(environ={"SERVER_PORT": "abc"})
    assert result.returncode == 2
    assert result.stdout.strip() == (
        "twistd wsecho: invalid port 'abc' from the SERVER_PORT environment "
        "variable: expected a port number or an endpoint description such as tcp:8080"
    )


def test_badOptionPort():
    """
    C{--port bogus:1} stops start-up with one line and status 2.
    """
    result = runTwistd(["--port", "bogus:1"])
    assert result.returncode == 2
    assert result.stdout.strip() == (
        "twistd wsecho: invalid endpoint description 'bogus:1' from --port: "
        "Unknown endpoint type: 'bogus'"
    )


def test_portInUse():
    """
    A port already in use stops start-up with one clear line.
    """
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = runTwistd(["--port", f"tcp:{port}:interface=127.0.0.1"])
    assert result.returncode != 0
    assert result.stdout.strip() == (
        f"twistd wsecho: cannot listen on 127.0.0.1:{port}: the port is already "
        "in use; stop the other server or choose another port with --port or "
        "SERVER_PORT"
    )


def test_subprotocolSelected(startServer):
    """
    A client that offers subprotocols gets the first one selected.
    """
    server = startServer("--port", "tcp:0:interface=127.0.0.1")
    port = server.waitForPort()
    url = f"ws://127.0.0.1:{port}/ws?token=abc"
    with connect(url, subprotocols=["chat", "json"]) as client:
        assert client.subprotocol == "chat"
        client.send("hi")
        assert client.recv(timeout=10) == "You said: hi"
