"""
Describe the machine and software versions of a benchmark run, and format
numbers for its tables.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

from harness import PEERS, REPOSITORY, compilerVersion, cpuPinning


def cpuModel() -> str:
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or "unknown"
    for line in cpuinfo.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown"


def packageVersion(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def nodePackageVersion(name: str) -> str:
    manifest = PEERS / "node_modules" / name / "package.json"
    try:
        return str(json.loads(manifest.read_text())["version"])
    except (OSError, ValueError, KeyError):
        return "not installed"


def commandOutput(command: list[str], cwd: Path | None = None) -> str:
    try:
        result = subprocess.run(
            command, capture_output=True, text=True, check=False, cwd=cwd
        )
    except FileNotFoundError:
        return "not found"
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def wsechoRevision() -> str:
    """
    Return the commit of this checkout, marked when the server code differs
    from it.
    """
    commit = commandOutput(["git", "rev-parse", "--short", "HEAD"], REPOSITORY)
    changes = commandOutput(
        ["git", "status", "--porcelain", "--", "wsecho", "twisted"], REPOSITORY
    )
    if changes and changes not in ("unknown", "not found"):
        return f"{commit} with uncommitted changes"
    return commit


def describeEnvironment() -> dict[str, str]:
    """
    Collect the date, machine and versions that a results page states.
    """
    serverCpu, generatorCpu = cpuPinning()
    pinning = (
        f"server on CPU {serverCpu}, load generator on CPU {generatorCpu}"
        if serverCpu is not None
        else "none (fewer than 2 usable CPUs)"
    )
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu_model": cpuModel(),
        "nproc": str(os.cpu_count()),
        "kernel": platform.release(),
        "pinning": pinning,
        "python": platform.python_version(),
        "python_executable": sys.executable,
        "twisted": packageVersion("Twisted"),
        "autobahn": packageVersion("autobahn"),
        "websockets": packageVersion("websockets"),
        "node": commandOutput(["node", "--version"]),
        "ws": nodePackageVersion("ws"),
        "bufferutil": nodePackageVersion("bufferutil"),
        "utf-8-validate": nodePackageVersion("utf-8-validate"),
        "loadgen_compiler": compilerVersion(),
        "wsecho": wsechoRevision(),
    }


def environmentLines(environment: dict[str, str]) -> list[str]:
    """
    Format the environment as a Markdown list.
    """
    return [
        f"- Date: {environment['date']}",
        f"- Machine: {environment['nproc']} CPUs, {environment['cpu_model']}, "
        f"Linux {environment['kernel']}",
        f"- Pinning: {environment['pinning']}",
        f"- Python {environment['python']}, Twisted {environment['twisted']}, "
        f"Autobahn {environment['autobahn']}, websockets {environment['websockets']}",
        f"- Node {environment['node']}, ws {environment['ws']}, "
        f"bufferutil {environment['bufferutil']}, "
        f"utf-8-validate {environment['utf-8-validate']}",
        f"- Load generator: loadgen.c built with {environment['loadgen_compiler']}",
        f"- wsecho revision: {environment['wsecho']}",
    ]


def formatRate(value: float) -> str:
    return f"{value:,.0f}"


def formatMegabytes(value: float) -> str:
    return f"{value:,.1f}"


def formatLatency(microseconds: float) -> str:
    if microseconds != microseconds:  # NaN
        return "-"
    if microseconds < 1000:
        return f"{microseconds:.0f} µs"
    return f"{microseconds / 1000:.2f} ms"


def formatPercent(value: float) -> str:
    if value != value:  # NaN
        return "-"
    return f"{value:.0f}%"


def formatRatio(value: float | None) -> str:
    if value is None or value != value:  # NaN
        return "-"
    return f"{value:.2f}x"


def markdownTable(header: list[str], rows: list[list[str]]) -> list[str]:
    """
    Lay out a Markdown table with columns padded for reading in a terminal.
    """
    widths = [len(cell) for cell in header]
    for row in rows:
        widths = [
            max(width, len(cell)) for width, cell in zip(widths, row, strict=True)
        ]

    def line(cells: list[str]) -> str:
        padded = [cell.ljust(width) for cell, width in zip(cells, widths, strict=True)]
        return "| " + " | ".join(padded) + " |"

    separator = "|" + "|".join("-" * (width + 2) for width in widths) + "|"
    return [line(header), separator, *(line(row) for row in rows)]
