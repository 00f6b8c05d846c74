"""What docs/security.md promises: a spec cannot run Python, read files other than the .arch
files it uses, or write anywhere; checkpoints and saved models load without unpickling code."""

import os
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.cli import main
from conftest import ROOT, SPECS


def codes(text):
    try:
        archdsl.load(text).network("n")
    except archdsl.SpecError as error:
        return [d.code for d in error.diagnostics]
    return []


@pytest.mark.parametrize("expression", [
    '__import__("os")', "eval", "exec", "open", "in.__class__", "in.shape.__len__",
    "(1).__class__", "[].append", "print", "globals", "getattr"])
def test_no_python_is_reachable_from_expressions(expression):
    found = codes(f"network n:\n    input 3x8x8\n    let v = {expression}\n    relu\n")
    assert found and set(found) <= {"E0202", "E0603"}, found


@pytest.mark.parametrize("target", ["/etc/passwd", "../../etc/passwd", "evil.py",
                                    "secret.txt", "data.pt"])
def test_use_reads_only_arch_files(target, tmp_path, capsys):
    (tmp_path / "secret.txt").write_text("password\n")
    spec = tmp_path / "n.arch"
    spec.write_text(f'use "{target}"\nnetwork n:\n    input 3x8x8\n    relu\n')
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "E0206" in err and "password" not in err


def test_reading_commands_write_nothing(tmp_path):
    """check, summary, fmt (without -w) and layers leave the file system as it was, apart from
    the parser's cache of archdsl's own grammar in the user's cache folder."""
    home = tmp_path / "home"
    work = tmp_path / "work"
    home.mkdir()
    work.mkdir()
    spec = work / "lenet.arch"
    spec.write_text((SPECS / "lenet.arch").read_text())
    env = {**os.environ, "HOME": str(home), "XDG_CACHE_HOME": str(home / ".cache"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    for command in (["check", "lenet.arch"], ["summary", "lenet.arch", "lenet5"], ["fmt", "lenet.arch"],
                    ["layers"], ["check", "--format", "json", "lenet.arch"]):
        subprocess.run([sys.executable, "-m", "archdsl", *command], cwd=work, env=env,
                       check=True, capture_output=True)
    assert sorted(p.name for p in work.iterdir()) == ["lenet.arch"]
    written = [p.relative_to(home).parts[:2] for p in home.rglob("*") if p.is_file()]
    assert set(written) <= {(".cache", "archdsl")}, written


class _Payload:
    def __reduce__(self):
        return (os.system, ("touch PWNED",))


def test_checkpoints_and_saved_models_never_unpickle_code(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as f:
        pickle.dump({"model": _Payload()}, f)
    with pytest.raises(Exception):
        archdsl.load(evil)
    status = main(["train", str(SPECS / "lenet.arch"), "--data", "digits", "--epochs", "1",
                   "--init", str(evil), "--out", str(tmp_path / "run"), "--no-progress",
                   "--no-tensorboard"])
    assert status != 0
    assert "Traceback" not in capsys.readouterr().err
    assert not (tmp_path / "PWNED").exists()


def test_security_page_names_each_promise():
    text = (ROOT / "docs" / "security.md").read_text()
    for promise in ["weights_only=True", "--plugin", "`use \"path.arch\"`", "limits", "MD5",
                    "escape"]:
        assert promise in text, promise
