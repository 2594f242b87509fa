"""
Reading and summarizing the JSON reports of the Autobahn|Testsuite fuzzing
client.

The client writes C{index.json} into its C{outdir}: for each agent, a map from
case id (C{"6.4.1"}) to the case's C{behavior}, C{behaviorClose},
C{remoteCloseCode} and C{reportfile}, the name of a JSON file beside it with
the case's C{description}, C{result} and C{resultClose}.
"""

from __future__ import annotations

import json
import textwrap
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

PASSING = ("OK", "NON-STRICT", "INFORMATIONAL")
"""
Verdicts that count as a pass, in C{behavior} and C{behaviorClose} alike.
"""

WARNING = ("NO_CLOSE", "WRONG CODE", "FAILED BY CLIENT")
"""
Verdicts that are listed as warnings but do not fail the run.  Every verdict
in neither L{PASSING} nor here fails it: FAILED, UNIMPLEMENTED, UNCLEAN and
any verdict this module does not know.  The test suite's own HTML report
colors UNCLEAN (the connection was not closed cleanly where the spec requires
it) as a failure too.
"""

VERDICT_ORDER = (
    "OK",
    "NON-STRICT",
    "INFORMATIONAL",
    "NO_CLOSE",
    "WRONG CODE",
    "FAILED BY CLIENT",
    "UNCLEAN",
    "FAILED",
    "UNIMPLEMENTED",
)
"""
The order of verdicts in the counts, from pass to failure.
"""


class ReportError(Exception):
    """
    The report folder has no readable C{index.json}.
    """


@dataclass(frozen=True)
class CaseResult:
    """
    The outcome of one test case.

    @ivar caseId: The case id, such as C{"6.4.1"}.
    @ivar behavior: The verdict on the messages the server sent back.
    @ivar behaviorClose: The verdict on the closing handshake.
    @ivar remoteCloseCode: The close code the server sent, or L{None}.
    @ivar duration: How long the case ran, in milliseconds, as wstest
        measured it.
    @ivar result: The test suite's explanation of C{behavior}.
    @ivar resultClose: The test suite's explanation of C{behaviorClose}.
    @ivar description: What the case sends.
    """

    caseId: str
    behavior: str
    behaviorClose: str
    remoteCloseCode: int | None = None
    duration: int = 0
    result: str = ""
    resultClose: str = ""
    description: str = ""

    @property
    def failed(self) -> bool:
        allowed = PASSING + WARNING
        return self.behavior not in allowed or self.behaviorClose not in allowed

    @property
    def passed(self) -> bool:
        return self.behavior in PASSING and self.behaviorClose in PASSING

    def reason(self) -> str:
        """
        Describe why the case did not pass, from the verdicts and the test
        suite's explanations.
        """
        parts = [f"behavior {self.behavior}"]
        if self.behavior not in PASSING and self.result:
            parts[0] += f" ({self.result})"
        close = f"behaviorClose {self.behaviorClose}"
        if self.behaviorClose not in PASSING:
            details = [self.resultClose] if self.resultClose else []
            if self.remoteCloseCode is not None:
                details.append(f"server sent close code {self.remoteCloseCode}")
            if details:
                close += f" ({'; '.join(details)})"
        parts.append(close)
        return ", ".join(parts)


def caseSortKey(caseId: str) -> tuple[int, ...]:
    """
    Sort case ids numerically, so that 6.10.1 comes after 6.9.1.
    """
    return tuple(int(part) for part in caseId.split("."))


def loadResults(reportDir: Path) -> list[CaseResult]:
    """
    Read the case results of every agent in a report folder.

    For a case that did not pass, its own case report is read too, because
    only that report contains the explanations of the verdicts.

    @raise ReportError: C{index.json} is missing or is not valid JSON.
    """
    indexPath = reportDir / "index.json"
    try:
        index = json.loads(indexPath.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"the test suite wrote no report index {indexPath}") from None
    except (OSError, ValueError) as error:
        raise ReportError(
            f"cannot read the report index {indexPath}: {error}"
        ) from None

    results = []
    for cases in index.values():
        for caseId, entry in cases.items():
            case = CaseResult(
                caseId=caseId,
                behavior=entry.get("behavior", "MISSING"),
                behaviorClose=entry.get("behaviorClose", "MISSING"),
                remoteCloseCode=entry.get("remoteCloseCode"),
                duration=entry.get("duration") or 0,
            )
            if not case.passed:
                case = addExplanations(case, reportDir / entry.get("reportfile", ""))
            results.append(case)
    results.sort(key=lambda case: caseSortKey(case.caseId))
    return results


def addExplanations(case: CaseResult, reportPath: Path) -> CaseResult:
    """
    Copy the explanations of a case from its own JSON report.

    A missing or unreadable report leaves a note in C{result} instead.
    """
    try:
        report = json.loads(reportPath.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        return replace(case, result=f"no case report: {error}")
    return replace(
        case,
        result=report.get("result") or "",
        resultClose=report.get("resultClose") or "",
        description=report.get("description") or "",
    )


def countVerdicts(verdicts: list[str]) -> str:
    """
    Format verdict counts as C{OK 240, FAILED 2}, in L{VERDICT_ORDER}.
    """
    counts = Counter(verdicts)
    known = [verdict for verdict in VERDICT_ORDER if verdict in counts]
    unknown = sorted(set(counts) - set(VERDICT_ORDER))
    return ", ".join(f"{verdict} {counts[verdict]}" for verdict in known + unknown)


def timeByGroup(results: list[CaseResult]) -> str:
    """
    Format the run time of each top-level case group, slowest first, as
    C{9: 14.2 s, 6: 3.1 s}.
    """
    totals: Counter[str] = Counter()
    for case in results:
        totals[case.caseId.split(".")[0]] += case.duration
    return ", ".join(
        f"{group}: {total / 1000:.1f} s" for group, total in totals.most_common()
    )


def groupByReason(cases: list[CaseResult]) -> dict[str, list[str]]:
    """
    Map each distinct reason to the ids of the cases that have it, in the
    order the reasons first appear.
    """
    groups: dict[str, list[str]] = {}
    for case in cases:
        groups.setdefault(case.reason(), []).append(case.caseId)
    return groups


def formatGroups(title: str, cases: list[CaseResult], width: int = 88) -> list[str]:
    """
    Format a titled list of cases, grouped by reason, with wrapped ids.
    """
    if not cases:
        return []
    lines = [f"{title} ({len(cases)}):"]
    for reason, caseIds in groupByReason(cases).items():
        count = "1 case" if len(caseIds) == 1 else f"{len(caseIds)} cases"
        lines.append(f"  {reason}: {count}")
        lines.extend(
            textwrap.wrap(
                " ".join(caseIds),
                width=width,
                initial_indent="    ",
                subsequent_indent="    ",
                break_on_hyphens=False,
            )
        )
    return lines


def summarize(results: list[CaseResult]) -> list[str]:
    """
    Format the verdict counts, then the failed cases and the warnings.
    """
    lines = [
        f"Cases run: {len(results)}",
        f"behavior:      {countVerdicts([case.behavior for case in results])}",
        f"behaviorClose: {countVerdicts([case.behaviorClose for case in results])}",
        f"Time by group: {timeByGroup(results)}",
    ]
    failed = [case for case in results if case.failed]
    warned = [case for case in results if not case.failed and not case.passed]
    lines.extend(formatGroups("Failed cases", failed))
    lines.extend(formatGroups("Warnings, which do not fail the run", warned))
    return lines
