"""
Installing wsecho leaves twistd able to find its plugin, both as a normal
install and as the documented editable install.
"""

import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest

CHECKOUT = Path(__file__).resolve().parent.parent


def copyCheckout(destination: Path) -> Path:
    """
    Copy the files git tracks, so that builds leave the checkout untouched.
    """
    listed = subprocess.run(
        ["git", "ls-files", "-z"], cwd=CHECKOUT, capture_output=True, check=True
    )
    for name in listed.stdout.decode().split("\0"):
        if name and (CHECKOUT / name).is_file():
            target = destination / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(CHECKOUT / name, target)
    return destination


def installAndListPlugins(tmp_path: Path, *pipArguments: str) -> str:
    source = copyCheckout(tmp_path / "source")
    environment = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True).create(environment)
    python = environment / "bin" / "python"
    subprocess.run(
        [python, "-m", "pip", "install", "--quiet", *pipArguments],
        cwd=source,
        check=True,
        timeout=600,
    )
    result = subprocess.run(
        [environment / "bin" / "twistd", "--help"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    return result.stdout + result.stderr


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Autobahn needs Python 3.11")
def test_normalInstall(tmp_path):
    """
    After C{pip install .}, C{twistd --help} lists wsecho.
    """
    output = installAndListPlugins(tmp_path, ".")
    assert "wsecho" in output


@pytest.mark.skipif(sys.version_info < (3, 11), reason="Autobahn needs Python 3.11")
def test_editableInstall(tmp_path):
    """
    After the documented editable install, C{twistd --help} lists wsecho.
    """
    output = installAndListPlugins(
        tmp_path, "-e", ".", "--config-settings", "editable_mode=compat"
    )
    assert "wsecho" in output
