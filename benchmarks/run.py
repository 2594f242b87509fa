"""
Benchmark wsecho against a plain Autobahn server, the websockets library and
Node's ws, and print one table.

    python benchmarks/run.py            # full run, about 9 minutes
    python benchmarks/run.py --quick    # smoke run, about 2 minutes

Each measurement starts a fresh server, so that one scenario cannot warm up
or fragment the heap for the next. Runs go round all servers in turn, so
that a noisy minute on a shared machine hits every server alike, and the
table shows the median of the runs. Results go to
benchmarks/results/<date>.md and .json; see benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import harness
from harness import (
    PURE_PYTHON_FLOOR_FACTOR,
    RESULTS,
    SCENARIOS,
    SERVERS,
    BenchmarkError,
    Measurement,
    Scenario,
    median,
)
from report import (
    describeEnvironment,
    environmentLines,
    formatLatency,
    formatMegabytes,
    formatPercent,
    formatRate,
    formatRatio,
    markdownTable,
)

BASELINE = "autobahn"
"""
The server that the "vs Autobahn" column divides by.
"""


@dataclass(frozen=True)
class Settings:
    """
    How long and how often each scenario is measured.

    @ivar warmup: Seconds of load before the measuring window.
    @ivar duration: Length of the measuring window, in seconds.
    @ivar idleConnections: Connections opened in scenario D.
    """

    runs: int
    warmup: float
    duration: float
    idleConnections: int


FULL = Settings(runs=3, warmup=2.0, duration=5.0, idleConnections=5000)
QUICK = Settings(runs=1, warmup=0.5, duration=1.5, idleConnections=500)

PRIMARY_METRICS = {
    "A": ("messages_per_second", "msg/s"),
    "B": ("messages_per_second", "msg/s"),
    "C": ("megabytes_per_second", "MB/s"),
    "D": ("kib_per_connection", "KiB/conn"),
}


def parseArguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python benchmarks/run.py",
        description=(
            "Start each echo server on 127.0.0.1 in turn, drive it with the same "
            "load generator, and print one table of medians. Scenarios: "
            + "; ".join(f"{key}: {s.title}" for key, s in SCENARIOS.items())
            + "."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=(
            f"smoke run: {QUICK.runs} run, {QUICK.warmup} s warm-up, "
            f"{QUICK.duration} s window, {QUICK.idleConnections} idle connections "
            "in D; results are written with a -quick suffix"
        ),
    )
    parser.add_argument(
        "--runs",
        type=int,
        help=f"how many times each scenario is measured [default: {FULL.runs}]",
    )
    parser.add_argument(
        "--servers",
        default=",".join(SERVERS),
        help=f"comma-separated servers to run [default: {','.join(SERVERS)}]",
    )
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help=f"comma-separated scenarios to run [default: {','.join(SCENARIOS)}]",
    )
    parser.add_argument(
        "--output",
        type=Path,
        default=RESULTS,
        help="folder for the .md and .json results [default: benchmarks/results]",
    )
    arguments = parser.parse_args(argv)
    harness.checkRuns(parser, arguments.runs)
    return arguments


log = harness.log


def primaryValue(measurement: Measurement) -> float:
    key, _ = PRIMARY_METRICS[measurement.scenario]
    return float(measurement.result[key])


def perServerCpuSecond(measurement: Measurement) -> float:
    cores = float(measurement.result["server_cpu_percent"]) / 100
    return primaryValue(measurement) / cores if cores > 0 else float("nan")


def describeMeasurement(measurement: Measurement) -> str:
    result = measurement.result
    _, unit = PRIMARY_METRICS[measurement.scenario]
    value = primaryValue(measurement)
    text = f"{value:,.1f} {unit}"
    if "latency_us" in result:
        latency = result["latency_us"]
        text += f", p50 {formatLatency(latency['p50'])}"
        text += f", p99 {formatLatency(latency['p99'])}"
    if "opening_seconds" in result:
        text += f", {result['connections']} opened in {result['opening_seconds']:.1f} s"
    return (
        f"{text}; server CPU {formatPercent(result['server_cpu_percent'])}, "
        f"generator CPU {formatPercent(result['generator_cpu_percent'])}, "
        f"other load {formatPercent(result['other_cpu_percent'])}"
    )


def runAll(
    serverNames: list[str], scenarios: list[Scenario], settings: Settings
) -> list[Measurement]:
    """
    Measure every scenario against every server, C{settings.runs} times.
    """
    measurements = []
    quietGate = harness.QuietGate()
    with harness.logDirectory() as logs:
        for run in range(1, settings.runs + 1):
            for name in serverNames:
                for scenario in scenarios:
                    log(f"Run {run}/{settings.runs}, {name}, scenario {scenario.key}")
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
                    log(f"  {describeMeasurement(measurement)}")
                    measurements.append(measurement)
    return measurements


def select(
    measurements: list[Measurement], server: str, scenario: str
) -> list[Measurement]:
    return [m for m in measurements if m.server == server and m.scenario == scenario]


def medianOf(measurements: list[Measurement], *path: str) -> float:
    values = []
    for measurement in measurements:
        value: object = measurement.result
        for key in path:
            value = value.get(key) if isinstance(value, dict) else None
        if isinstance(value, int | float):
            values.append(float(value))
    return median(values)


def ratio(
    measurements: list[Measurement], server: str, peer: str, scenario: str
) -> float | None:
    """
    Divide a server's primary metric by a peer's in the same run, and return
    the median over runs.
    """
    ratios = []
    peerByRun = {m.run: m for m in select(measurements, peer, scenario)}
    for measurement in select(measurements, server, scenario):
        other = peerByRun.get(measurement.run)
        if other is not None and primaryValue(other) > 0:
            ratios.append(primaryValue(measurement) / primaryValue(other))
    return median(ratios) if ratios else None


@dataclass
class SummaryRow:
    """
    The medians of one server in one scenario over all runs.

    @ivar metric: The key of the primary metric in the generator's output.
    @ivar vsAutobahn: The median of the per-run ratios to the plain Autobahn
        server, or L{None} when it was not measured.
    @ivar perServerCpuSecond: The median over runs of the primary metric
        divided by the server's CPU use in cores. Other processes that take
        CPU time from the server change it less than the metric itself.
    """

    scenario: str
    server: str
    runs: int
    metric: str
    median: float
    low: float
    high: float
    latencyP50: float
    latencyP99: float
    serverCpu: float
    generatorCpu: float
    otherLoad: float
    vsAutobahn: float | None
    perServerCpuSecond: float


def summarize(
    measurements: list[Measurement], serverNames: list[str], scenarios: list[Scenario]
) -> list[SummaryRow]:
    """
    Reduce the runs of each server and scenario to medians and ratios.
    """
    rows = []
    for scenario in scenarios:
        for name in serverNames:
            selected = select(measurements, name, scenario.key)
            values = [primaryValue(m) for m in selected]
            rows.append(
                SummaryRow(
                    scenario=scenario.key,
                    server=name,
                    runs=len(values),
                    metric=PRIMARY_METRICS[scenario.key][0],
                    median=median(values),
                    low=min(values),
                    high=max(values),
                    latencyP50=medianOf(selected, "latency_us", "p50"),
                    latencyP99=medianOf(selected, "latency_us", "p99"),
                    serverCpu=medianOf(selected, "server_cpu_percent"),
                    generatorCpu=medianOf(selected, "generator_cpu_percent"),
                    otherLoad=medianOf(selected, "other_cpu_percent"),
                    vsAutobahn=ratio(measurements, name, BASELINE, scenario.key),
                    perServerCpuSecond=median(
                        [perServerCpuSecond(m) for m in selected if not scenario.idle]
                    ),
                )
            )
    return rows


def formatPrimary(scenario: str, value: float) -> str:
    _, unit = PRIMARY_METRICS[scenario]
    if scenario == "C":
        return f"{formatMegabytes(value)} {unit}"
    if scenario == "D":
        return f"{value:,.1f} {unit}"
    return f"{formatRate(value)} {unit}"


def formatEfficiency(scenario: str, value: float) -> str:
    if value != value:  # NaN
        return "-"
    return formatPrimary(scenario, value)


def resultTable(rows: list[SummaryRow]) -> list[str]:
    header = [
        "Scenario",
        "Server",
        "Result (median)",
        "Range of runs",
        "p50",
        "p99",
        "Server CPU",
        "Generator CPU",
        "Other load",
        "Per server CPU-s",
        "vs Autobahn",
    ]
    lines = []
    for row in rows:
        low = formatPrimary(row.scenario, row.low).split()[0]
        high = formatPrimary(row.scenario, row.high).split()[0]
        lines.append(
            [
                row.scenario,
                row.server,
                formatPrimary(row.scenario, row.median),
                f"{low} to {high}",
                formatLatency(row.latencyP50),
                formatLatency(row.latencyP99),
                formatPercent(row.serverCpu),
                formatPercent(row.generatorCpu),
                formatPercent(row.otherLoad),
                formatEfficiency(row.scenario, row.perServerCpuSecond),
                formatRatio(row.vsAutobahn),
            ]
        )
    return markdownTable(header, lines)


def wsechoRatioTable(
    measurements: list[Measurement], serverNames: list[str], scenarios: list[Scenario]
) -> list[str]:
    """
    Tabulate wsecho's primary metric divided by each peer's, run by run.
    """
    peers = [name for name in serverNames if name != "wsecho"]
    if "wsecho" not in serverNames or not peers:
        return []
    rows = []
    for scenario in scenarios:
        cells = [
            formatRatio(ratio(measurements, "wsecho", peer, scenario.key))
            for peer in peers
        ]
        rows.append([scenario.key, *cells])
    return markdownTable(["Scenario", *(f"wsecho / {peer}" for peer in peers)], rows)


@dataclass
class FloorCheck:
    """
    The scenario C throughput floor for Autobahn-based servers.
    """

    pureMegabytesPerSecond: float
    floorMegabytesPerSecond: float
    failures: list[str]


def checkThroughputFloor(rows: list[SummaryRow]) -> FloorCheck | None:
    """
    Compare scenario C of each Autobahn-based server with the pure-Python
    masking rate measured on this machine.
    """
    checked = [
        row for row in rows if row.scenario == "C" and SERVERS[row.server].autobahn
    ]
    if not checked:
        return None
    pure = harness.pureMaskingMegabytesPerSecond()
    floor = PURE_PYTHON_FLOOR_FACTOR * pure
    failures = [
        f"scenario C for {row.server} reached {row.median:.1f} MB/s, below the "
        f"floor of {floor:.1f} MB/s ({PURE_PYTHON_FLOOR_FACTOR:.0f} times "
        "Autobahn's pure-Python masking rate on this machine), so it runs "
        "Autobahn's pure-Python path"
        for row in checked
        if row.median < floor
    ]
    return FloorCheck(pure, floor, failures)


def resultsPage(
    command: str,
    environment: dict[str, str],
    settings: Settings,
    scenarios: list[Scenario],
    table: list[str],
    ratioTable: list[str],
    floor: FloorCheck | None,
) -> str:
    lines = [
        f"# wsecho benchmark, {environment['date']}",
        "",
        f"Command: `{command}`",
        "",
        *environmentLines(environment),
        f"- Settings: {settings.runs} run(s), {settings.warmup} s warm-up, "
        f"{settings.duration} s measuring window",
        "",
        "Scenarios:",
        "",
        *(f"- {s.key}: {s.title}" for s in scenarios),
        "",
        *table,
        "",
    ]
    if ratioTable:
        lines += [
            "wsecho divided by each peer, median of the per-run ratios:",
            "",
            *ratioTable,
            "",
        ]
    if floor is not None:
        lines += [
            "Autobahn's pure-Python masking runs at "
            f"{floor.pureMegabytesPerSecond:.1f} MB/s on this machine; "
            "scenario C floor for Autobahn-based servers: "
            f"{floor.floorMegabytesPerSecond:.1f} MB/s.",
            "",
        ]
    return "\n".join(lines)


def writeResults(
    output: Path,
    stem: str,
    page: str,
    data: dict[str, object],
) -> tuple[Path, Path]:
    output.mkdir(parents=True, exist_ok=True)
    markdownPath = output / f"{stem}.md"
    jsonPath = output / f"{stem}.json"
    markdownPath.write_text(page)
    jsonPath.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
    return markdownPath, jsonPath


def main(argv: list[str] | None = None) -> int:
    arguments = parseArguments(argv)
    settings = QUICK if arguments.quick else FULL
    if arguments.runs is not None:
        settings = dataclasses.replace(settings, runs=arguments.runs)
    try:
        serverNames = harness.parseChoices(arguments.servers, SERVERS, "server")
        scenarioKeys = harness.parseChoices(arguments.scenarios, SCENARIOS, "scenario")
        scenarios = [SCENARIOS[key] for key in scenarioKeys]
        scenarios = [
            dataclasses.replace(s, connections=settings.idleConnections)
            if s.idle
            else s
            for s in scenarios
        ]

        harness.ensureLoadGenerator(log)
        if "ws" in serverNames:
            harness.ensureNodePeers(log)
        for name in serverNames:
            harness.checkNativeAutobahn(SERVERS[name])

        environment = describeEnvironment()
        measurements = runAll(serverNames, scenarios, settings)
        rows = summarize(measurements, serverNames, scenarios)
        floor = checkThroughputFloor(rows)
    except BenchmarkError as error:
        print(f"run.py: {error}", file=sys.stderr)
        return 1

    table = resultTable(rows)
    ratioTable = wsechoRatioTable(measurements, serverNames, scenarios)
    command = shlex.join(
        ["python", "benchmarks/run.py", *(sys.argv[1:] if argv is None else argv)]
    )
    page = resultsPage(
        command, environment, settings, scenarios, table, ratioTable, floor
    )
    data = {
        "command": command,
        "environment": environment,
        "settings": dataclasses.asdict(settings),
        "scenarios": {s.key: s.title for s in scenarios},
        "summary": [dataclasses.asdict(row) for row in rows],
        "measurements": [dataclasses.asdict(m) for m in measurements],
        "throughput_floor": dataclasses.asdict(floor) if floor else None,
    }
    stem = datetime.now(UTC).strftime("%Y-%m-%d") + (
        "-quick" if arguments.quick else ""
    )
    markdownPath, jsonPath = writeResults(arguments.output, stem, page, data)

    print()
    print("\n".join(table))
    if ratioTable:
        print()
        print("\n".join(ratioTable))
    print()
    print(f"Results written to {markdownPath} and {jsonPath}")
    if floor is not None and floor.failures:
        print(f"run.py: {floor.failures[0]}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
