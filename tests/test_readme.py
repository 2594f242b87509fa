"""
The README documents every option with its variable and default.
"""

from pathlib import Path

from wsecho.settings import OPTIONS

README = Path(__file__).resolve().parent.parent / "README.md"


def test_everyOptionDocumented():
    """
    Each option has a README table row with its variable and its default.
    """
    rows = [
        line for line in README.read_text().splitlines() if line.startswith("| `--")
    ]
    for spec in OPTIONS:
        [row] = [row for row in rows if row.startswith(f"| `--{spec.name}`")]
        cells = [cell.strip() for cell in row.split("|")]
        assert cells[2] == f"`{spec.variable}`"
        assert cells[3] == f"`{spec.default}`"
