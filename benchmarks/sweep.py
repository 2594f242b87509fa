"""
Sweep connection counts and message sizes for wsecho and the plain Autobahn
server, and plot the results.

    python benchmarks/sweep.py            # about 4 minutes
    python benchmarks/sweep.py --quick    # about 1 minute

Connections: 1, 10, 100, 1,000 and 5,000 connections, each sending 32-byte
text messages in a request/response loop. Sizes: 32 B to 1 MiB binary
messages on 10 connections. Every point starts a fresh server. The charts go
to benchmarks/results/sweep-connections.png and sweep-sizes.png, and the
numbers to benchmarks/results/sweep-<date>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness import (
    RESULTS,
    SERVERS,
    BenchmarkError,
    Measurement,
    Scenario,
    formatSize,
    median,
)
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator, StrMethodFormatter
from report import describeEnvironment, environmentLines, markdownTable

DEFAULT_SERVERS = "wsecho,autobahn"
CONNECTION_COUNTS = [1, 10, 100, 1000, 5000]
MESSAGE_SIZES = [32, 1024, 16 * 1024, 64 * 1024, 256 * 1024, 1024 * 1024]
SIZE_SWEEP_CONNECTIONS = 10
CONNECTION_SWEEP_SIZE = 32


@dataclass(frozen=True)
class Settings:
    """
    How long and how often each point is measured, and which points.

    @ivar warmup: Seconds of load before the measuring window.
    @ivar duration: Length of the measuring window, in seconds.
    """

    runs: int
    warmup: float
    duration: float
    connectionCounts: list[int]
    messageSizes: list[int]


FULL = Settings(1, 1.0, 3.0, CONNECTION_COUNTS, MESSAGE_SIZES)
QUICK = Settings(1, 0.5, 1.0, [1, 100], [32, 64 * 1024])


@dataclass
class Point:
    """
    The median of one server at one point of a sweep.

    @ivar sweep: C{"connections"} or C{"sizes"}.
    """

    sweep: str
    server: str
    connections: int
    size: int
    messagesPerSecond: float
    megabytesPerSecond: float
    latencyP50: float
    serverCpu: float
    generatorCpu: float
    otherLoad: float


def parseArguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/sweep.py",
        description=(
            "Measure messages/s and MB/s over connection counts "
            f"({', '.join(map(str, CONNECTION_COUNTS))}; 32 B text) and message "
            f"sizes ({', '.join(formatSize(s) for s in MESSAGE_SIZES)}; binary on "
            f"{SIZE_SWEEP_CONNECTIONS} connections), and plot them as PNG charts."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke run: two points per sweep and a 1 s window",
    )
    parser.add_argument(
        "--runs",
        type=int,
        help=f"how many times each point is measured [default: {FULL.runs}]",
    )
    parser.add_argument(
        "--servers",
        default=DEFAULT_SERVERS,
        help=f"comma-separated servers to sweep [default: {DEFAULT_SERVERS}]",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="folder for the charts and the .json results "
        "[default: benchmarks/results]",
    )
    parser.add_argument(
        "--replot",
        type=Path,
        metavar="JSON",
        help="redraw the charts from a sweep-<date>.json file without measuring",
    )
    arguments = parser.parse_args(argv)
    harness.checkRuns(parser, arguments.runs)
    return arguments


log = harness.log


def sweepScenarios(settings: Settings) -> list[tuple[str, Scenario]]:
    scenarios = [
        ("connections", Scenario(f"{count} connections", count, CONNECTION_SWEEP_SIZE))
        for count in settings.connectionCounts
    ]
    scenarios += [
        (
            "sizes",
            Scenario(formatSize(size), SIZE_SWEEP_CONNECTIONS, size, binary=True),
        )
        for size in settings.messageSizes
    ]
    return scenarios


def measureAll(
    serverNames: list[str], settings: Settings
) -> tuple[list[Point], list[Measurement]]:
    """
    Measure every point of both sweeps for every server.
    """
    points = []
    measurements = []
    quietGate = harness.QuietGate()
    with harness.logDirectory() as logs:
        for sweep, scenario in sweepScenarios(settings):
            for name in serverNames:
                runs = []
                for run in range(1, settings.runs + 1):
                    log(f"{name}, {scenario.title}, run {run}/{settings.runs}")
                    measurement = harness.measure(
                        SERVERS[name],
                        scenario,
                        run,
                        settings.warmup,
                        settings.duration,
                        logs,
                        quietGate,
                        log,
                    )
                    result = measurement.result
                    log(
                        f"  {result['messages_per_second']:,.0f} msg/s, "
                        f"{result['megabytes_per_second']:,.1f} MB/s, server CPU "
                        f"{result['server_cpu_percent']:.0f}%, generator CPU "
                        f"{result['generator_cpu_percent']:.0f}%"
                    )
                    runs.append(measurement)
                measurements += runs
                points.append(summarizePoint(sweep, name, scenario, runs))
    return points, measurements


def summarizePoint(
    sweep: str, server: str, scenario: Scenario, runs: list[Measurement]
) -> Point:
    def medianOf(key: str) -> float:
        return median([float(m.result[key]) for m in runs])

    return Point(
        sweep=sweep,
        server=server,
        connections=scenario.connections,
        size=scenario.size,
        messagesPerSecond=medianOf("messages_per_second"),
        megabytesPerSecond=medianOf("megabytes_per_second"),
        latencyP50=median([float(m.result["latency_us"]["p50"]) for m in runs]),
        serverCpu=medianOf("server_cpu_percent"),
        generatorCpu=medianOf("generator_cpu_percent"),
        otherLoad=medianOf("other_cpu_percent"),
    )


def plotSeries(
    axes: Axes,
    points: list[Point],
    serverNames: list[str],
    xKey: str,
    yKey: str,
) -> None:
    for index, name in enumerate(serverNames):
        series = sorted(
            (p for p in points if p.server == name), key=lambda p: getattr(p, xKey)
        )
        xs = [getattr(p, xKey) for p in series]
        ys = [getattr(p, yKey) for p in series]
        axes.plot(xs, ys, marker="o", label=name)
        for x, y in zip(xs, ys, strict=True):
            axes.annotate(
                f"{y:,.0f}" if y >= 100 else f"{y:,.1f}",
                (x, y),
                textcoords="offset points",
                # Labels of alternate servers go above and below their
                # points, so that close values do not print over each other.
                xytext=(0, 6 if index % 2 == 0 else -13),
                ha="center",
                fontsize=8,
            )
    axes.set_xscale("log")
    axes.xaxis.set_minor_locator(NullLocator())
    axes.yaxis.set_major_formatter(StrMethodFormatter("{x:,.0f}"))
    axes.grid(True, which="major", alpha=0.4)
    axes.legend()


def plotConnections(
    points: list[Point], serverNames: list[str], subtitle: str, path: Path
) -> None:
    selected = [p for p in points if p.sweep == "connections"]
    figure = Figure(figsize=(8, 5), layout="constrained")
    axes = figure.subplots()
    plotSeries(axes, selected, serverNames, "connections", "messagesPerSecond")
    counts = sorted({p.connections for p in selected})
    axes.set_xticks(counts, [f"{c:,}" for c in counts])
    axes.set_xlabel("connections, each in a request/response loop")
    axes.set_ylabel("messages/s (echoes received)")
    axes.set_ylim(bottom=0)
    figure.suptitle(f"Messages/s by connection count, 32 B text\n{subtitle}")
    figure.savefig(path, dpi=110)


def plotSizes(
    points: list[Point], serverNames: list[str], subtitle: str, path: Path
) -> None:
    selected = [p for p in points if p.sweep == "sizes"]
    sizes = sorted({p.size for p in selected})
    labels = [formatSize(size) for size in sizes]
    figure = Figure(figsize=(12, 5), layout="constrained")
    rateAxes, bytesAxes = figure.subplots(1, 2)
    plotSeries(rateAxes, selected, serverNames, "size", "messagesPerSecond")
    rateAxes.set_yscale("log")
    rateAxes.set_ylabel("messages/s (echoes received, log scale)")
    plotSeries(bytesAxes, selected, serverNames, "size", "megabytesPerSecond")
    bytesAxes.set_ylabel("MB/s of echoed payload (10^6 bytes)")
    bytesAxes.set_ylim(bottom=0)
    for axes in (rateAxes, bytesAxes):
        axes.set_xticks(sizes, labels)
        axes.set_xlabel(f"message size, binary, {SIZE_SWEEP_CONNECTIONS} connections")
    figure.suptitle(f"Throughput by message size\n{subtitle}")
    figure.savefig(path, dpi=110)


def pointTable(points: list[Point]) -> list[str]:
    rows = [
        [
            "connections" if p.sweep == "connections" else "size",
            f"{p.connections:,}" if p.sweep == "connections" else formatSize(p.size),
            p.server,
            f"{p.messagesPerSecond:,.0f}",
            f"{p.megabytesPerSecond:,.1f}",
            f"{p.serverCpu:.0f}%",
            f"{p.generatorCpu:.0f}%",
            f"{p.otherLoad:.0f}%",
        ]
        for p in points
    ]
    header = [
        "Sweep",
        "Point",
        "Server",
        "msg/s",
        "MB/s",
        "Server CPU",
        "Generator CPU",
        "Other load",
    ]
    return markdownTable(header, rows)


def chartSubtitle(environment: dict[str, str], runs: int, duration: float) -> str:
    return (
        f"{environment['date']}, {environment['nproc']} CPUs "
        f"{environment['cpu_model']}, median of {runs} run(s), {duration:g} s window"
    )


def replot(path: Path, output: Path) -> int:
    """
    Draw the charts again from the JSON file of an earlier sweep.
    """
    try:
        data = json.loads(path.read_text())
        points = [Point(**point) for point in data["points"]]
        environment = data["environment"]
        settings = data["settings"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        print(
            f"sweep.py: cannot read sweep results from {path}: {error}", file=sys.stderr
        )
        return 1
    serverNames = list(dict.fromkeys(point.server for point in points))
    subtitle = chartSubtitle(environment, settings["runs"], settings["duration"])
    suffix = "-quick" if path.stem.endswith("-quick") else ""
    connectionsChart = output / f"sweep-connections{suffix}.png"
    sizesChart = output / f"sweep-sizes{suffix}.png"
    plotConnections(points, serverNames, subtitle, connectionsChart)
    plotSizes(points, serverNames, subtitle, sizesChart)
    print(f"Charts written to {connectionsChart} and {sizesChart}")
    return 0


def main(argv: list[str] | None = None) -> int:
    arguments = parseArguments(argv)
    if arguments.replot is not None:
        return replot(arguments.replot, arguments.output)
    settings = QUICK if arguments.quick else FULL
    if arguments.runs is not None:
        settings = dataclasses.replace(settings, runs=arguments.runs)
    try:
        serverNames = harness.parseChoices(arguments.servers, SERVERS, "server")
        harness.ensureLoadGenerator(log)
        if "ws" in serverNames:
            harness.ensureNodePeers(log)
        for name in serverNames:
            harness.checkNativeAutobahn(SERVERS[name])
        environment = describeEnvironment()
        points, measurements = measureAll(serverNames, settings)
    except BenchmarkError as error:
        print(f"sweep.py: {error}", file=sys.stderr)
        return 1

    output: Path = arguments.output
    output.mkdir(parents=True, exist_ok=True)
    suffix = "-quick" if arguments.quick else ""
    subtitle = chartSubtitle(environment, settings.runs, settings.duration)
    connectionsChart = output / f"sweep-connections{suffix}.png"
    sizesChart = output / f"sweep-sizes{suffix}.png"
    plotConnections(points, serverNames, subtitle, connectionsChart)
    plotSizes(points, serverNames, subtitle, sizesChart)

    stem = "sweep-" + datetime.now(UTC).strftime("%Y-%m-%d") + suffix
    data = {
        "environment": environment,
        "settings": dataclasses.asdict(settings),
        "points": [dataclasses.asdict(point) for point in points],
        "measurements": [dataclasses.asdict(m) for m in measurements],
    }
    jsonPath = output / f"{stem}.json"
    jsonPath.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")

    table = pointTable(points)
    print()
    print("\n".join(environmentLines(environment)))
    print()
    print("\n".join(table))
    print()
    print(f"Charts written to {connectionsChart} and {sizesChart}; data to {jsonPath}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
