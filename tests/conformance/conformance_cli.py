"""
The command line of C{tests/conformance/run}: set up C{wstest}, start the
wsecho server, run the Autobahn|Testsuite fuzzing client against it and
summarize the report.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import NoReturn

from python2_env import (
    HERE,
    Python2Environment,
    SetupError,
    UnknownCaseError,
    findPython2,
    pythonVersion,
)
from testee import ServerError, ServerProcess, describeExit, stopProcess, tail
from wstest_report import ReportError, loadResults, summarize

PROGRAM = "tests/conformance/run"

EXIT_PASSED = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_ERROR = 3
EXIT_INTERRUPTED = 130

AGENT = "wsecho"
"""
The agent name in the spec, which is the top-level key of the report index.
"""

CASE_PATTERN = re.compile(r"[0-9*]+(\.[0-9*]+)*")
"""
A case id or a pattern such as C{12.*}.  wstest turns C{*} into the regular
expression C{.*} and matches from the start of the id; a pattern without
C{*} must be a whole case id.
"""

DESCRIPTION = """\
Run the Autobahn|Testsuite fuzzing client (wstest 0.8.2) against a wsecho
server that this script starts on 127.0.0.1, then print the verdict counts
and the cases that did not pass.

wstest runs on Python 2.7 only. The first run creates a Python 2.7 virtual
environment in the cache folder and installs the pinned packages of
requirements.txt into it from the package index that pip is configured with.
Later runs reuse it.

The server is started as
  twistd -n --pidfile= wsecho --prefix '' --path /ws --port tcp:PORT:interface=127.0.0.1
with the twistd of the Python that runs this script, so run the script with
the Python of an environment where wsecho is installed."""

EPILOG = """\
examples:
  run the quick groups (skip the permessage-deflate cases):
    tests/conformance/run --exclude '12.*,13.*'
  run two groups and keep the HTML report:
    tests/conformance/run --cases '5.*,7.*' --report-dir /tmp/autobahn-report

exit status:
  0  every case passed: its behavior and behaviorClose are OK, NON-STRICT or
     INFORMATIONAL, or one of the warnings NO_CLOSE, WRONG CODE and
     FAILED BY CLIENT
  1  a case FAILED, was UNIMPLEMENTED or UNCLEAN, or had an unknown verdict
  2  invalid arguments
  3  the run did not complete: setup, the server or wstest failed or timed
     out, or no case ran"""


class OneLineParser(argparse.ArgumentParser):
    """
    An argument parser that reports an invalid argument in one line.
    """

    def error(self, message: str) -> NoReturn:
        self.exit(EXIT_USAGE, f"{self.prog}: error: {message} (see --help)\n")


def casePatterns(text: str) -> list[str]:
    """
    Split a comma-separated list of case patterns and validate each one.

    @raise argparse.ArgumentTypeError: A pattern is empty or contains a
        character other than digits, dots and C{*}.
    """
    patterns = [pattern.strip() for pattern in text.split(",")]
    for pattern in patterns:
        if not CASE_PATTERN.fullmatch(pattern):
            raise argparse.ArgumentTypeError(
                f"invalid case pattern {pattern!r} in {text!r}: expected a case id "
                "such as 6.4.1 or a pattern such as 12.*"
            )
    return patterns


def positiveSeconds(text: str) -> float:
    """
    Parse a time limit in seconds.

    @raise argparse.ArgumentTypeError: C{text} is not a positive number.
    """
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(
            f"invalid time limit {text!r}: expected a positive number of seconds"
        )
    return seconds


def buildParser() -> OneLineParser:
    parser = OneLineParser(
        prog=PROGRAM,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )

    parser.add_argument(
        "--cases",
        type=casePatterns,
        action="extend",
        metavar="PATTERNS",
        help="comma-separated case ids or patterns to run, such as '1.*,6.4.1', "
        "where * matches any characters, so 1* also selects 10.1.1 "
        "(may be repeated; default: '*', every case)",
    )

    parser.add_argument(
        "--exclude",
        type=casePatterns,
        action="extend",
        default=[],
        metavar="PATTERNS",
        help="comma-separated case ids or patterns to skip, such as '12.*,13.*' "
        "(may be repeated)",
    )

    parser.add_argument(
        "--twistd",
        type=Path,
        default=Path(sys.executable).parent / "twistd",
        metavar="PATH",
        help="twistd executable that has the wsecho plugin "
        "(default: twistd beside the running Python, %(default)s)",
    )

    parser.add_argument(
        "--python2",
        type=Path,
        metavar="PATH",
        help="Python 2.7 interpreter for creating the wstest environment "
        "(default: the newest pyenv 2.7 build, else python2.7 on PATH)",
    )

    parser.add_argument(
        "--cache",
        type=Path,
        default=HERE / ".py27",
        metavar="DIR",
        help="folder for the Python 2.7 environment (default: %(default)s)",
    )

    parser.add_argument(
        "--report-dir",
        type=Path,
        metavar="DIR",
        help="copy the HTML and JSON reports and the logs of wstest and the "
        "server to DIR (default: they are deleted with the temporary folder)",
    )

    parser.add_argument(
        "--timeout",
        type=positiveSeconds,
        default=1800.0,
        metavar="SECONDS",
        help="time limit of the wstest run (default: %(default)g). The whole "
        "suite took 12 to 14 minutes on a 2-core machine against a server that "
        "accepts permessage-deflate, and 25 seconds without groups 12 and 13",
    )

    parser.add_argument(
        "--start-timeout",
        type=positiveSeconds,
        default=30.0,
        metavar="SECONDS",
        help="time the server has to start listening (default: %(default)g)",
    )

    parser.add_argument(
        "--stop-timeout",
        type=positiveSeconds,
        default=10.0,
        metavar="SECONDS",
        help="time the server and wstest have to exit after SIGTERM before "
        "they get SIGKILL (default: %(default)g)",
    )

    parser.add_argument(
        "--setup-only",
        action="store_true",
        help="create or update the Python 2.7 environment, then exit",
    )
    return parser


def fail(message: str) -> int:
    """
    Print an error message and return the exit status of an incomplete run.
    """
    print(f"{PROGRAM}: error: {message}", file=sys.stderr)
    return EXIT_ERROR


def checkTwistd(twistd: Path, parser: OneLineParser) -> None:
    if not twistd.is_file() or not os.access(twistd, os.X_OK):
        parser.error(
            f"twistd not found at {twistd}: run this script with the Python of "
            "an environment that has wsecho installed, or pass --twistd PATH"
        )


def choosePython2(requested: Path | None, parser: OneLineParser) -> Path:
    if requested is None:
        found = findPython2()
        if found is None:
            parser.error(
                "no Python 2.7 interpreter found in pyenv or on PATH: "
                "pass --python2 PATH"
            )
        return found
    version = pythonVersion(requested)
    if version is None:
        parser.error(f"--python2 {requested} does not run")
    if version != "2.7":
        parser.error(f"--python2 {requested} is Python {version}, expected 2.7")
    return requested


def selectCases(
    environment: Python2Environment,
    arguments: argparse.Namespace,
    parser: OneLineParser,
) -> list[str]:
    """
    Resolve the case patterns, exiting with one line when they select no
    case or name a case that does not exist.
    """
    patterns = f"--cases {','.join(arguments.cases)}"
    if arguments.exclude:
        patterns += f" --exclude {','.join(arguments.exclude)}"
    try:
        selected = environment.selectCases(arguments.cases, arguments.exclude)
    except UnknownCaseError as error:
        parser.error(f"{error} in {patterns}")
    if not selected:
        parser.error(f"no case matches {patterns}")
    print(f"Cases: {len(selected)} selected by {patterns}")
    return selected


def writeSpec(folder: Path, url: str, cases: list[str], exclude: list[str]) -> Path:
    """
    Write the fuzzing client spec, with the report folder inside C{folder}.
    """
    spec = {
        "outdir": str(folder / "reports"),
        "servers": [{"agent": AGENT, "url": url}],
        "cases": cases,
        "exclude-cases": exclude,
        "exclude-agent-cases": {},
    }
    path = folder / "spec.json"
    path.write_text(json.dumps(spec, indent=2) + "\n", encoding="utf-8")
    return path


def runWstest(
    wstest: Path, spec: Path, log: Path, timeout: float, stopTimeout: float
) -> str | None:
    """
    Run the fuzzing client and wait for it to finish.

    @return: An error message when wstest failed or timed out, else L{None}.
    """
    command = [str(wstest), "-m", "fuzzingclient", "-s", str(spec)]
    print(f"Running: {' '.join(command)}", flush=True)
    with log.open("wb") as output:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=spec.parent,
                start_new_session=True,
            )
        except OSError as error:
            return f"cannot start {wstest}: {error}"
        try:
            status = process.wait(timeout)
        except subprocess.TimeoutExpired:
            return f"wstest did not finish within {timeout:g} s:\n{tail(log)}"
        finally:
            stopProcess(process, stopTimeout)
    if status != 0:
        return f"wstest {describeExit(status)}:\n{tail(log)}"
    return None


def keepReports(folder: Path, destination: Path) -> None:
    """
    Copy the reports and logs of a run out of its temporary folder.
    """
    destination.mkdir(parents=True, exist_ok=True)
    reports = folder / "reports"
    if reports.is_dir():
        shutil.copytree(reports, destination, dirs_exist_ok=True)
    for name in ("spec.json", "wstest.log", "server.log"):
        if (folder / name).is_file():
            shutil.copy2(folder / name, destination / name)
    print(f"Reports and logs copied to {destination}")


def runSuite(
    arguments: argparse.Namespace, wstest: Path, selected: list[str], folder: Path
) -> int:
    """
    Start the server, run wstest against it, stop the server and summarize.

    @param selected: The ids of the cases that the patterns select.
    @return: The exit status of the script.
    """
    server = ServerProcess(arguments.twistd, folder / "server.log")
    try:
        server.start(arguments.start_timeout)
        print(f"Server: {shlex.join(server.command())} (pid {server.process.pid})")
        spec = writeSpec(folder, server.url, arguments.cases, arguments.exclude)
        started = time.monotonic()
        wstestError = runWstest(
            wstest,
            spec,
            folder / "wstest.log",
            arguments.timeout,
            arguments.stop_timeout,
        )
        print(f"wstest ran for {time.monotonic() - started:.1f} s")
        serverStatus = server.exitStatus()
    except ServerError as error:
        return fail(str(error))
    finally:
        stopStatus = server.stop(arguments.stop_timeout)

    if serverStatus is not None:
        return fail(
            f"the server {describeExit(serverStatus)} during the run:\n"
            f"{tail(server.log)}"
        )
    if wstestError is not None:
        return fail(wstestError)

    try:
        results = loadResults(folder / "reports")
    except ReportError as error:
        return fail(f"{error}:\n{tail(folder / 'wstest.log')}")
    print("\n".join(summarize(results)))

    status = EXIT_PASSED
    tracebacks = server.countTracebacks()
    if tracebacks:
        print(f"The server logged {tracebacks} tracebacks; the first one:")
        print(server.firstTraceback())
    if stopStatus == -signal.SIGKILL:
        status = fail(
            f"the server did not exit within {arguments.stop_timeout:g} s of "
            "SIGTERM and was killed"
        )
    if len(results) != len(selected):
        return fail(
            f"wstest reported {len(results)} of the {len(selected)} selected cases"
        )
    if status == EXIT_PASSED and any(case.failed for case in results):
        status = EXIT_FAILED
    return status


def main(argv: list[str] | None = None) -> int:
    parser = buildParser()
    arguments = parser.parse_args(argv)
    arguments.cases = arguments.cases or ["*"]
    began = time.monotonic()
    checkTwistd(arguments.twistd, parser)
    python2 = choosePython2(arguments.python2, parser)

    environment = Python2Environment(python2, arguments.cache.resolve())
    try:
        environment.prepare(lambda message: print(message, flush=True))
        if arguments.setup_only:
            print(f"wstest is ready: {environment.wstest}")
            return EXIT_PASSED
        selected = selectCases(environment, arguments, parser)
        with tempfile.TemporaryDirectory(prefix="wsecho-conformance-") as folder:
            status = runSuite(arguments, environment.wstest, selected, Path(folder))
            if arguments.report_dir is not None:
                try:
                    keepReports(Path(folder), arguments.report_dir)
                except OSError as error:
                    status = fail(f"copying the reports failed: {error}")
    except SetupError as error:
        return fail(str(error))
    except KeyboardInterrupt:
        print(f"{PROGRAM}: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED

    print(f"Elapsed: {time.monotonic() - began:.1f} s")
    verdict = {EXIT_PASSED: "PASSED", EXIT_FAILED: "FAILED"}.get(status, "INCOMPLETE")
    print(f"Result: {verdict}")
    return status
