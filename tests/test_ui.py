"""Golden tests of error messages: tests/ui/NAME.arch and its expected output NAME.stderr.

Each case is a bad spec; `archdsl check` must exit with status 1 and print exactly the
reviewed text. To regenerate after an intended change: ARCHDSL_BLESS=1 pytest tests/test_ui.py,
then review the diff of every .stderr file before committing.
"""

import os
from pathlib import Path

import pytest

from archdsl.cli import main

UI = Path(__file__).parent / "ui"
CASES = sorted(p.stem for p in UI.glob("*.arch"))


def run_check(name, capsys, monkeypatch):
    monkeypatch.chdir(UI)
    status = main(["check", f"{name}.arch"])
    return status, capsys.readouterr()


@pytest.mark.parametrize("name", CASES)
def test_error_message(name, capsys, monkeypatch):
    status, out = run_check(name, capsys, monkeypatch)
    golden = UI / f"{name}.stderr"
    if os.environ.get("ARCHDSL_BLESS"):
        golden.write_text(out.err)
    assert status == 1
    assert out.err == golden.read_text()
    assert "Traceback" not in out.err


def test_catalogue_covers_enough_distinct_errors():
    codes = set()
    for name in CASES:
        text = (UI / f"{name}.stderr").read_text()
        codes |= {line.split("]")[0] for line in text.splitlines() if line.startswith("error[")}
    assert len(CASES) >= 30
    assert len(codes) >= 15, codes
