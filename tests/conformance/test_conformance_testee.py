"""
Tests for starting and stopping child processes in the conformance runner,
with small Python scripts in place of twistd.
"""

import signal
import subprocess
import sys
from pathlib import Path

import pytest
from testee import ServerError, ServerProcess, describeExit, stopProcess

IGNORE_SIGTERM = (
    "import signal, sys, time\n"
    "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "sys.stdout.write('ready\\n')\n"
    "sys.stdout.flush()\n"
    "time.sleep(60)\n"
)


def writeScript(folder: Path, body: str) -> Path:
    """
    Write an executable Python script to run in place of twistd.
    """
    script = folder / "twistd"
    script.write_text(f"#!{sys.executable}\n{body}")
    script.chmod(0o755)
    return script


def test_stopProcessTerminates():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    assert stopProcess(process, timeout=10) == -signal.SIGTERM


def test_stopProcessKillsAfterTimeout():
    process = subprocess.Popen(
        [sys.executable, "-c", IGNORE_SIGTERM], stdout=subprocess.PIPE
    )
    assert process.stdout.readline() == b"ready\n"
    assert stopProcess(process, timeout=0.5) == -signal.SIGKILL
    process.stdout.close()


def test_stopProcessAlreadyExited():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    process.wait(10)
    assert stopProcess(process, timeout=1) == 3


@pytest.mark.parametrize(
    ("status", "description"),
    [
        (0, "exited with status 0"),
        (1, "exited with status 1"),
        (-signal.SIGKILL, "was killed by SIGKILL"),
        (-signal.SIGTERM, "was killed by SIGTERM"),
    ],
)
def test_describeExit(status, description):
    assert describeExit(status) == description


def test_startReportsEarlyExit(tmp_path):
    twistd = writeScript(
        tmp_path, "print('Unknown command: wsecho')\nraise SystemExit(1)\n"
    )
    server = ServerProcess(twistd, tmp_path / "server.log")
    with pytest.raises(ServerError) as raised:
        server.start(timeout=10)
    message = str(raised.value)
    assert "the server exited with status 1 before listening" in message
    assert "Unknown command: wsecho" in message


def test_startTimesOut(tmp_path):
    twistd = writeScript(tmp_path, "import time\ntime.sleep(60)\n")
    server = ServerProcess(twistd, tmp_path / "server.log")
    try:
        with pytest.raises(
            ServerError, match=r"did not listen on 127\.0\.0\.1:[0-9]+ within 0\.5 s"
        ):
            server.start(timeout=0.5)
    finally:
        status = server.stop(timeout=10)
    assert status == -signal.SIGTERM


def test_startPassesEchoOptions(tmp_path):
    server = ServerProcess(tmp_path / "twistd", tmp_path / "server.log")
    server.port = 9001
    command = server.command()
    assert command[1:4] == ["-n", "--pidfile=", "wsecho"]
    assert command[command.index("--prefix") + 1] == ""
    assert command[command.index("--path") + 1] == "/ws"
    assert command[command.index("--port") + 1] == "tcp:9001:interface=127.0.0.1"
    assert server.url == "ws://127.0.0.1:9001/ws"
