"""
Tests for the report summary and the case patterns of the conformance
runner, on report folders written by the tests in the layout of wstest 0.8.2.
"""

import argparse
import json
from pathlib import Path

import pytest
from conformance_cli import casePatterns
from wstest_report import CaseResult, ReportError, countVerdicts, loadResults, summarize


def writeReports(folder: Path, cases: dict[str, tuple[str, str]]) -> Path:
    """
    Write an C{index.json} and one case report per case, with each case's
    C{(behavior, behaviorClose)}.
    """
    index = {}
    for caseId, (behavior, behaviorClose) in cases.items():
        reportFile = f"wsecho_case_{caseId.replace('.', '_')}.json"
        index[caseId] = {
            "behavior": behavior,
            "behaviorClose": behaviorClose,
            "duration": 1500,
            "remoteCloseCode": 1000,
            "reportfile": reportFile,
        }
        report = {
            "id": caseId,
            "description": f"case {caseId}",
            "result": f"explanation of {behavior}",
            "resultClose": f"explanation of {behaviorClose}",
        }
        (folder / reportFile).write_text(json.dumps(report))
    (folder / "index.json").write_text(json.dumps({"wsecho": index}))
    return folder


def test_loadResultsSortsNumerically(tmp_path):
    writeReports(
        tmp_path,
        {"6.10.1": ("OK", "OK"), "6.9.1": ("OK", "OK"), "10.1.1": ("OK", "OK")},
    )
    results = loadResults(tmp_path)
    assert [case.caseId for case in results] == ["6.9.1", "6.10.1", "10.1.1"]


def test_loadResultsReadsFailedCaseReport(tmp_path):
    writeReports(tmp_path, {"1.1.1": ("OK", "OK"), "6.4.1": ("FAILED", "OK")})
    passed, failed = loadResults(tmp_path)
    assert passed.result == ""
    assert failed.result == "explanation of FAILED"
    assert failed.description == "case 6.4.1"


def test_loadResultsMissingCaseReport(tmp_path):
    writeReports(tmp_path, {"6.4.1": ("FAILED", "OK")})
    (tmp_path / "wsecho_case_6_4_1.json").unlink()
    [case] = loadResults(tmp_path)
    assert case.behavior == "FAILED"
    assert case.result.startswith("no case report:")


def test_loadResultsMissingIndex(tmp_path):
    with pytest.raises(ReportError, match="wrote no report index"):
        loadResults(tmp_path)


def test_loadResultsInvalidIndex(tmp_path):
    (tmp_path / "index.json").write_text("{")
    with pytest.raises(ReportError, match="cannot read the report index"):
        loadResults(tmp_path)


@pytest.mark.parametrize(
    ("behavior", "behaviorClose", "failed", "passed"),
    [
        ("OK", "OK", False, True),
        ("NON-STRICT", "INFORMATIONAL", False, True),
        ("OK", "WRONG CODE", False, False),
        ("OK", "FAILED BY CLIENT", False, False),
        ("NO_CLOSE", "OK", False, False),
        ("FAILED", "OK", True, False),
        ("UNIMPLEMENTED", "OK", True, False),
        ("OK", "UNCLEAN", True, False),
        ("OK", "FAILED", True, False),
        ("SOMETHING NEW", "OK", True, False),
    ],
)
def test_caseVerdicts(behavior, behaviorClose, failed, passed):
    case = CaseResult("1.1.1", behavior, behaviorClose)
    assert case.failed is failed
    assert case.passed is passed


def test_reasonNamesCloseCode():
    case = CaseResult(
        "7.9.1",
        "OK",
        "WRONG CODE",
        remoteCloseCode=1000,
        resultClose="The close code should have been 1002 or empty",
    )
    assert case.reason() == (
        "behavior OK, behaviorClose WRONG CODE (The close code should have "
        "been 1002 or empty; server sent close code 1000)"
    )


def test_countVerdictsOrder():
    counts = countVerdicts(["FAILED", "OK", "NEW", "OK", "NON-STRICT"])
    assert counts == "OK 2, NON-STRICT 1, FAILED 1, NEW 1"


def test_summarizeGroupsFailures(tmp_path):
    writeReports(
        tmp_path,
        {
            "1.1.1": ("OK", "OK"),
            "12.1.1": ("UNIMPLEMENTED", "OK"),
            "12.1.2": ("UNIMPLEMENTED", "OK"),
            "7.9.1": ("OK", "WRONG CODE"),
        },
    )
    lines = summarize(loadResults(tmp_path))
    assert lines[0] == "Cases run: 4"
    assert lines[1] == "behavior:      OK 2, UNIMPLEMENTED 2"
    assert lines[2] == "behaviorClose: OK 3, WRONG CODE 1"
    assert lines[3] == "Time by group: 12: 3.0 s, 1: 1.5 s, 7: 1.5 s"
    assert "Failed cases (2):" in lines
    assert (
        "  behavior UNIMPLEMENTED (explanation of UNIMPLEMENTED), "
        "behaviorClose OK: 2 cases"
    ) in lines
    assert "    12.1.1 12.1.2" in lines
    assert "Warnings, which do not fail the run (1):" in lines
    assert (
        "  behavior OK, behaviorClose WRONG CODE (explanation of WRONG CODE; "
        "server sent close code 1000): 1 case"
    ) in lines
    assert "    7.9.1" in lines


@pytest.mark.parametrize(
    ("text", "patterns"),
    [
        ("*", ["*"]),
        ("12.*,13.*", ["12.*", "13.*"]),
        (" 1.*, 6.4.1 ", ["1.*", "6.4.1"]),
    ],
)
def test_casePatternsValid(text, patterns):
    assert casePatterns(text) == patterns


@pytest.mark.parametrize("text", ["", "12.*,", "1.?", "12.x", "1..1", "-1"])
def test_casePatternsInvalid(text):
    with pytest.raises(argparse.ArgumentTypeError, match="invalid case pattern"):
        casePatterns(text)
