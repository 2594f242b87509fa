"""
Print the ids of the test cases that case patterns select, one per line, in
the order wstest runs them.

This script runs under the Python 2.7 of the wstest environment, so it is
written in the subset of Python that 2.7 and 3 share::

    python select_cases.py '{"cases": ["*"], "exclude-cases": ["12.*"]}'

The argument has the C{cases} and C{exclude-cases} keys of a fuzzing client
spec.  wstest 0.8.2 itself waits forever when the patterns select no case,
and fails with a KeyError on a case id that does not exist, so the runner
checks the selection with this script first.  Exits with status 2 and one
line on standard error for an unknown case id.
"""

import json
import sys

from autobahntestsuite.case import (
    CaseBasename,
    CaseCategories,
    Cases,
    CaseSetname,
    CaseSubCategories,
)
from autobahntestsuite.caseset import CaseSet


def main():
    patterns = json.loads(sys.argv[1])
    caseSet = CaseSet(
        CaseSetname, CaseBasename, Cases, CaseCategories, CaseSubCategories
    )
    # parseSpecCases expands the patterns with "*" against the known cases and
    # keeps any other pattern as it is, known or not.
    selected = caseSet.parseSpecCases(patterns)
    unknown = [caseId for caseId in selected if caseId not in caseSet.CasesIndices]
    if unknown:
        sys.stderr.write("unknown case id: " + ", ".join(unknown) + "\n")
        return 2
    for caseId in selected:
        sys.stdout.write(caseId + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
