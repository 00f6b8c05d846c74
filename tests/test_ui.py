"""Golden tests of error messages: tests/ui/NAME.arch and its expected output NAME.stderr.

Each case is a bad spec; `archdsl check` must exit with status 1 and print exactly the
reviewed text. To regenerate after an intended change: ARCHDSL_BLESS=1 pytest tests/test_ui.py,
then review the diff of every .stderr file before committing.
"""

import os
import re
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
    assert len(CASES) >= 50
    assert len(codes) >= 30, codes


@pytest.mark.parametrize("name", CASES)
def test_every_case_is_located(name):
    """Every golden message points at a line and column of a spec file."""
    text = (UI / f"{name}.stderr").read_text()
    assert re.search(r"^ *--> [\w/.]+\.arch:\d+:\d+$", text, re.M), name


@pytest.mark.parametrize("command", ["check", "summary", "compile", "draw"])
def test_every_case_in_json_for_editors(command, capsys, monkeypatch, tmp_path):
    """--format json gives the same diagnostics as the text, with every field an editor needs,
    on each command that reads a spec."""
    import json
    import re

    monkeypatch.chdir(UI)
    for name in CASES:
        extra = ["-o", str(tmp_path / "n.svg")] if command == "draw" else []
        status = main([command, f"{name}.arch", *extra, "--format", "json"])
        out = capsys.readouterr().out
        if command != "check" and status != 1:
            continue  # e.g. a file with several networks: the first one may be fine
        assert status == 1, name
        items = json.loads(out)
        text = (UI / f"{name}.stderr").read_text()
        expected = re.findall(r"^error\[(E\d+)\]", text, re.M)
        assert [d["code"] for d in items] == expected if command == "check" else \
            {d["code"] for d in items} <= set(expected), name
        for d in items:
            assert set(d) == {"code", "severity", "message", "file", "line", "column", "end",
                              "notes", "help"}
            assert d["severity"] == "error" and d["message"]
            if d["line"] is not None:
                assert f"{d['file']}:{d['line']}:{d['column']}" in text, name
