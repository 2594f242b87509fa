"""
The Python 2.7 virtual environment that runs C{wstest}.

Autobahn|Testsuite 0.8.2 runs on Python 2.7 only.  The environment lives in
a cache folder::

    CACHE/bootstrap/   virtualenv, installed with pip --target
    CACHE/env/         the virtual environment with autobahntestsuite
    CACHE/setup.log    the output of every setup step

Both are made on the first run and reused while the pinned requirement files
are unchanged.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent

REQUIREMENTS = HERE / "requirements.txt"
"""
Pins of autobahntestsuite 0.8.2 and every package it pulls in.
"""

VIRTUALENV_REQUIREMENTS = HERE / "virtualenv-requirements.txt"
"""
Pins of virtualenv and its dependencies for running under Python 2.7.
"""

SETUP_TIMEOUT = 900
"""
Seconds allowed for each setup step.  Building the C extensions of wsaccel
and zope.interface is the slowest one.
"""

LOG_TAIL_LINES = 15

UNKNOWN_CASE_STATUS = 2
"""
The exit status of C{select_cases.py} for a case id that does not exist.
"""


class SetupError(Exception):
    """
    The Python 2.7 environment could not be made, and the message gives the
    reason.
    """


class UnknownCaseError(Exception):
    """
    A case pattern without C{*} names a case that the test suite does not
    have.
    """


def findPython2() -> Path | None:
    """
    Find a Python 2.7 interpreter: a pyenv build first, then C{python2.7} on
    C{PATH}.

    @return: The first candidate that runs and reports version 2.7, or
        L{None}.
    """
    pyenvRoot = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")
    candidates = sorted((pyenvRoot / "versions").glob("2.7*/bin/python"), reverse=True)
    for directory in os.environ.get("PATH", "").split(os.pathsep):
        if directory:
            candidates.append(Path(directory) / "python2.7")
    for candidate in candidates:
        if candidate.is_file() and pythonVersion(candidate) == "2.7":
            return candidate
    return None


def pythonVersion(python: Path) -> str | None:
    """
    Run an interpreter to read its C{major.minor} version.

    @return: The version, or L{None} when the interpreter does not run.
    """
    try:
        completed = subprocess.run(
            [
                str(python),
                "-c",
                "import sys; sys.stdout.write('%d.%d' % sys.version_info[:2])",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            env=python2Environment(),
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if completed.returncode != 0:
        return None
    return completed.stdout.strip()


def python2Environment(pythonPath: Path | None = None) -> dict[str, str]:
    """
    Build the environment of a Python 2.7 process, without the variables
    that would point it at Python 3 modules.
    """
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")
    }
    environment["PYTHONNOUSERSITE"] = "1"
    if pythonPath is not None:
        environment["PYTHONPATH"] = str(pythonPath)
    return environment


def fileDigest(*paths: Path) -> str:
    """
    Hash the contents of files, to tell whether an environment is current.
    """
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    return digest.hexdigest()


@contextmanager
def locked(cache: Path) -> Iterator[None]:
    """
    Hold an exclusive lock on the cache folder, so that two runs do not set
    it up at the same time.
    """
    with (cache / "lock").open("w") as lockFile:
        fcntl.flock(lockFile, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lockFile, fcntl.LOCK_UN)


class Python2Environment:
    """
    The cached Python 2.7 environment with C{wstest}.

    @ivar python2: The Python 2.7 interpreter that the environment is made
        from.
    @ivar cache: The cache folder.
    """

    def __init__(self, python2: Path, cache: Path) -> None:
        self.python2 = python2
        self.cache = cache
        self.bootstrap = cache / "bootstrap"
        self.env = cache / "env"
        self.log = cache / "setup.log"
        self.stamp = self.env / "requirements.sha256"

    @property
    def wstest(self) -> Path:
        return self.env / "bin" / "wstest"

    @property
    def python(self) -> Path:
        return self.env / "bin" / "python"

    def selectCases(self, cases: list[str], exclude: list[str]) -> list[str]:
        """
        Resolve case patterns to case ids with the test suite's own matching,
        by running C{select_cases.py} under Python 2.7.

        @return: The selected case ids, in the order wstest runs them.
        @raise UnknownCaseError: A case id does not exist.
        @raise SetupError: The script failed.
        """
        patterns = json.dumps({"cases": cases, "exclude-cases": exclude})
        command = [str(self.python), "-W", "ignore", str(HERE / "select_cases.py")]
        try:
            completed = subprocess.run(
                [*command, patterns],
                capture_output=True,
                text=True,
                timeout=60,
                env=python2Environment(),
                check=False,
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise SetupError(f"selecting the cases failed: {error}") from None
        message = completed.stderr.strip() or f"exit status {completed.returncode}"
        if completed.returncode == UNKNOWN_CASE_STATUS:
            raise UnknownCaseError(message)
        if completed.returncode != 0:
            raise SetupError(f"selecting the cases failed: {message}")
        return completed.stdout.split()

    def isCurrent(self) -> bool:
        """
        Tell whether the environment exists and matches the requirement
        files.
        """
        if not (self.wstest.is_file() and self.stamp.is_file()):
            return False
        expected = fileDigest(REQUIREMENTS, VIRTUALENV_REQUIREMENTS)
        return self.stamp.read_text(encoding="ascii").strip() == expected

    def prepare(self, report: Callable[[str], None]) -> None:
        """
        Make or update the environment unless it is current.

        @param report: Called with a one-line progress message per step.
        @raise SetupError: A step failed or timed out.
        """
        try:
            self.cache.mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise SetupError(
                f"cannot create the cache folder {self.cache}: {error}"
            ) from None
        with locked(self.cache):
            if self.isCurrent():
                return
            digest = fileDigest(REQUIREMENTS, VIRTUALENV_REQUIREMENTS)
            if not (self.bootstrap / "virtualenv").is_dir():
                report(f"Installing virtualenv for Python 2.7 into {self.bootstrap}")
                self.installVirtualenv()
            if not self.python.is_file():
                report(f"Creating the Python 2.7 environment {self.env}")
                self.createEnvironment()
            report(
                f"Installing autobahntestsuite into {self.env}; the first install "
                "builds the C extensions of wsaccel and zope.interface"
            )
            self.installTestSuite()
            self.stamp.write_text(digest + "\n", encoding="ascii")

    def installVirtualenv(self) -> None:
        self.runStep(
            "checking pip of Python 2.7",
            [str(self.python2), "-m", "pip", "--version"],
            python2Environment(),
            hint=f"install pip for it with: {self.python2} -m ensurepip",
        )
        self.runStep(
            "installing virtualenv",
            [
                str(self.python2),
                "-m",
                "pip",
                "install",
                "--target",
                str(self.bootstrap),
                "--requirement",
                str(VIRTUALENV_REQUIREMENTS),
            ],
            python2Environment(),
        )

    def createEnvironment(self) -> None:
        # The periodic update would start a background process that fetches
        # newer pip and setuptools wheels.  The pins were tested with the
        # wheels bundled in virtualenv 20.15.1: pip 20.3.4, setuptools 44.1.1.
        self.runStep(
            "creating the virtual environment",
            [
                str(self.python2),
                "-m",
                "virtualenv",
                "--no-periodic-update",
                str(self.env),
            ],
            python2Environment(self.bootstrap),
        )

    def installTestSuite(self) -> None:
        self.runStep(
            "installing autobahntestsuite",
            [
                str(self.python),
                "-m",
                "pip",
                "install",
                "--requirement",
                str(REQUIREMENTS),
            ],
            python2Environment(),
        )

    def runStep(
        self,
        title: str,
        command: list[str],
        environment: dict[str, str],
        hint: str = "",
    ) -> None:
        """
        Run one setup command, appending its output to the setup log.

        @raise SetupError: The command failed, timed out or did not start.
        """
        with self.log.open("a", encoding="utf-8") as log:
            log.write(f"\n$ {' '.join(command)}\n")
            log.flush()
            try:
                completed = subprocess.run(
                    command,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=environment,
                    timeout=SETUP_TIMEOUT,
                    check=False,
                )
            except subprocess.TimeoutExpired:
                raise SetupError(
                    f"{title} timed out after {SETUP_TIMEOUT} s; see {self.log}"
                ) from None
            except OSError as error:
                raise SetupError(f"{title} failed to start: {error}") from None
        if completed.returncode != 0:
            message = f"{title} failed with exit status {completed.returncode}"
            if hint:
                message += f"; {hint}"
            raise SetupError(f"{message}\n{self.logTail()}\nFull log: {self.log}")

    def logTail(self) -> str:
        lines = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join("  " + line for line in lines[-LOG_TAIL_LINES:])
