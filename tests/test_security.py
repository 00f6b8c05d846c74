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


# ---- checkpoints and saved models carry spec texts: never written where their names say ----

def _saved_model(tmp_path, **changes):
    """A .pt file as `archdsl compile -o` and training write it (with training options, so
    `eval` reads it too), its recorded spec files changed as given."""
    from dataclasses import asdict

    from archdsl.backends.export import saved_spec
    from archdsl.train import checkpoint
    from archdsl.train.loop import TrainConfig

    net = archdsl.load(SPECS / "lenet.arch").network("lenet5")
    state = {**saved_spec(net), "model": net.build(logits=True).state_dict(),
             "config": asdict(TrainConfig()), "history": []}
    state.update(changes)
    path = tmp_path / "model.pt"
    checkpoint.save(path, state)
    return path


def _every_reader(path, capsys):
    """What each reader of a .pt answers: (API error, [(command, status, stderr)])."""
    try:
        archdsl.load(path)
        api = None
    except archdsl.SpecError as error:
        api = str(error)
    answers = []
    for argv in (["eval", str(path), "--offline"], ["compile", str(path)],
                 ["summary", str(path)],
                 ["train", "--resume", str(path), "--no-progress", "--no-tensorboard"]):
        status = main(argv)
        answers.append((argv[0], status, capsys.readouterr().err))
    return api, answers


@pytest.mark.parametrize("name", ["../../escaped.arch", "{absolute}", "a/../../escaped.arch",
                                  "C:\\escaped.arch", "sub/./x.arch", "escaped.txt", ""])
def test_a_checkpoint_cannot_name_where_its_spec_files_go(name, tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    absolute = tmp_path / "absolute.arch"
    name = name.format(absolute=absolute)
    text = (SPECS / "lenet.arch").read_text()
    path = _saved_model(work, spec_files={"lenet.arch": text, name: "block evil:\n    relu\n"})
    api, answers = _every_reader(path, capsys)
    assert api is not None and "unsafe name" in api
    for command, status, err in answers:
        assert status == 2, (command, err)
        assert "unsafe name" in err and "Traceback" not in err, (command, err)
    assert not absolute.exists() and not (tmp_path / "escaped.arch").exists()
    assert not (tmp_path / "a" / "escaped.arch").exists()
    assert sorted(p.name for p in work.iterdir()) == ["model.pt"]


def test_spec_files_of_a_checkpoint_stay_in_memory(tmp_path, monkeypatch):
    """Loading a saved model writes no file at all, not even to a temporary folder, and a
    `use` between carried files resolves among them only."""
    import builtins
    import tempfile

    lib = "block twice:\n    relu relu\n"
    root = ('use "blocks/lib.arch"\nnetwork n:\n    input 3x8x8\n    conv(4, 3) twice gap '
            'linear(2)\n')
    path = tmp_path / "n.pt"
    spec = tmp_path / "spec"
    (spec / "blocks").mkdir(parents=True)
    (spec / "blocks" / "lib.arch").write_text(lib)
    (spec / "n.arch").write_text(root)
    net = archdsl.load(spec / "n.arch").network("n")
    net.export(path)

    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        assert not set(mode) & set("wax+"), f"opened {file} to write"
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_open)
    monkeypatch.setattr(tempfile, "mkdtemp", lambda *a, **k: pytest.fail("made a folder"))
    saved = archdsl.load(path)
    assert saved.network.params_total == net.params_total
    assert sorted(saved.spec.files()[0]) == ["blocks/lib.arch", "n.arch"]


def test_a_use_in_a_checkpoint_cannot_leave_it(tmp_path, capsys):
    outside = tmp_path / "outside.arch"
    outside.write_text("block b:\n    relu\n")
    root = 'use "../outside.arch"\nnetwork lenet5:\n    input 1x32x32\n    b\n'
    path = _saved_model(tmp_path, spec_files={"lenet.arch": root})
    with pytest.raises(archdsl.SpecError, match="among the spec files"):
        archdsl.load(path)


@pytest.mark.parametrize("change,problem", [
    ({"spec_files": ["lenet.arch"]}, "`spec_files` is missing or not a dict"),
    ({"args": {"not a name": "1"}}, "`args` must name network parameters"),
    ({"input_shape": ["3", 32, 32]}, "`input_shape` must be a list of integers"),
    ({"model": {"w": 1}}, "`model` must map names to tensors"),
    ({"history": "x"}, "`history` must be a list of epochs"),
    ({"config": {"batch_size": "64"}}, "--batch-size has a value of the wrong type"),
    ({"config": {"epochs": -5}}, "--epochs must be between 1 and 1,000,000"),
])
def test_damaged_checkpoints_are_refused_clearly(change, problem, tmp_path, capsys):
    path = _saved_model(tmp_path, **change)
    status = main(["eval", str(path), "--offline"])
    err = capsys.readouterr().err
    assert status == 2 and problem in err and "Traceback" not in err, err


def test_eval_never_reads_or_downloads_where_a_checkpoint_says(tmp_path, monkeypatch, capsys):
    """The data folder is the user's choice (--data-dir, or ./data), not the checkpoint's."""
    from dataclasses import asdict

    from archdsl.train.loop import TrainConfig

    monkeypatch.chdir(tmp_path)
    elsewhere = tmp_path / "planted_by_checkpoint"
    config = asdict(TrainConfig(data="mnist", data_dir=str(elsewhere)))
    path = _saved_model(tmp_path, config=config)
    status = main(["eval", str(path), "--offline"])
    err = capsys.readouterr().err
    assert status == 2 and "planted_by_checkpoint" not in err and "data/MNIST" in err, err
    assert not elsewhere.exists()


def test_weights_that_do_not_fit_are_refused_clearly(tmp_path, capsys):
    path = _saved_model(tmp_path, model={"conv1.weight": torch.zeros(2, 2)})
    status = main(["eval", str(path), "--offline"])
    err = capsys.readouterr().err
    assert status == 2 and "do not fit" in err and "Traceback" not in err, err


# ---- spec files on disk: links resolved, regular files only, `use` kept in the folder ------

SECRET = "TOPSECRET first line"


@pytest.fixture
def planted(tmp_path, monkeypatch):
    """A spec folder with links to a secret and to the process's environment, a FIFO, and a
    link to itself, each named *.arch."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_text(SECRET + "\nsecond line\n")
    spec = tmp_path / "spec"
    spec.mkdir()
    (spec / "leak.arch").symlink_to(tmp_path / "secret.txt")
    if Path("/proc/self/environ").exists():
        (spec / "environ.arch").symlink_to("/proc/self/environ")
    os.mkfifo(spec / "pipe.arch")
    (spec / "loop").symlink_to(spec)
    (spec / "ok.arch").write_text("network n:\n    input 3x8x8\n    relu\n")
    return spec


@pytest.mark.parametrize("target", ["leak.arch", "environ.arch", "pipe.arch"])
def test_a_spec_that_is_a_link_or_a_special_file_is_refused_unread(planted, target, capsys):
    if not (planted / target).exists() and not (planted / target).is_symlink():
        pytest.skip("no /proc here")
    assert main(["check", str(planted / target)]) == 1
    err = capsys.readouterr().err
    assert "E0206" in err and SECRET not in err and "PATH=" not in err, err


@pytest.mark.parametrize("target", ["leak.arch", "environ.arch", "pipe.arch"])
def test_a_used_link_or_special_file_is_refused_unread(planted, target, capsys):
    (planted / "uses.arch").write_text(f'use "{target}"\nnetwork n:\n    input 3x8x8\n    relu\n')
    assert main(["check", str(planted / "uses.arch")]) == 1
    err = capsys.readouterr().err
    assert "E0206" in err and SECRET not in err and "PATH=" not in err, err


def test_checking_a_folder_with_a_fifo_and_a_link_loop_answers(planted):
    """A FIFO would block a plain open() for ever; a link to the folder itself would loop."""
    result = subprocess.run([sys.executable, "-m", "archdsl", "check", str(planted)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "`" + str(planted / "pipe.arch") + "` is not a regular file" in result.stderr
    assert SECRET not in result.stderr
    assert result.stderr.count("error[") == 3 if (planted / "environ.arch").is_symlink() else 2


def test_use_stays_in_the_spec_folder_unless_allowed(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lib").mkdir()
    (tmp_path / "spec").mkdir()
    (tmp_path / "lib" / "blocks.arch").write_text("block b:\n    relu\n")
    (tmp_path / "spec" / "sub").mkdir()
    (tmp_path / "spec" / "sub" / "inner.arch").write_text("block c:\n    relu\n")
    spec = tmp_path / "spec" / "n.arch"
    spec.write_text('use "../lib/blocks.arch"\nuse "sub/inner.arch"\n'
                    'network n:\n    input 3x8x8\n    b c\n')
    assert main(["check", str(spec)]) == 1
    err = capsys.readouterr().err
    assert "reaches outside the spec's folder" in err and "--allow-use" in err
    assert main(["check", str(spec), "--allow-use", "lib"]) == 0
    assert archdsl.load(spec, allow_use=[tmp_path / "lib"]).network("n").params_total == 0
    # a link inside the folder that leads out of it is judged by where it leads
    (tmp_path / "spec" / "linked.arch").symlink_to(tmp_path / "lib" / "blocks.arch")
    spec.write_text('use "linked.arch"\nnetwork n:\n    input 3x8x8\n    b\n')
    assert main(["check", str(spec)]) == 1
    assert "reaches outside" in capsys.readouterr().err


# ---- resource bounds: every operation on values is metered by size -------------------------

NET = "network n:\n    input 3x8x8\n"


def _tree(name, depth):
    """Lets building a binary tree of lists that shares its halves: 2**depth leaves."""
    lines = [f"    let {name}0 = [0]"]
    lines += [f"    let {name}{i} = [{name}{i - 1}, {name}{i - 1}]" for i in range(1, depth + 1)]
    return "\n".join(lines) + "\n"


# name -> (spec, the first error code, or "ok"). Each hung (or took many seconds) before
# values were metered by size; each must now answer at once. The bound below is generous
# (whole processes, on a slow machine); benchmarks/limits.py times them properly.
HOSTILE = {
    "round_to_negative_digits": (NET + "    let a = round(5, -30000000)\n    relu\n", "ok"),
    "million_item_list_in_a_loop": (NET + "    repeat 40000:\n        let n = len([0] * 1000000)"
                                    "\n    relu\n", "E0507"),
    "list_copied_in_a_loop": (NET + "    let xs = [0] * 500000\n    repeat 40000:\n"
                              "        let n = len(xs + xs)\n    relu\n", "E0507"),
    "shared_list_in_a_message": (NET + "    let a = [0] * 1000\n    let b = [a] * 999\n"
                                 "    dropout(b)\n", "E0303"),
    "shared_list_in_a_block_title": ("block blk(v):\n    relu\n" + NET + "    let a = [0] * 1000\n"
                                     "    let b = [a] * 999\n    blk(b)\n    dropout(b)\n",
                                     "E0303"),
    "equality_of_shared_trees": (NET + _tree("t", 40) + _tree("u", 40)
                                 + "    relu when t40 == u40\n", "E0604"),
    "adaptive_pool_of_a_huge_width": ("network n:\n    input 1x1x1000000000\n"
                                      "    adaptive_avgpool(1x1000000000)\n", "ok"),
    "million_by_million_list": (NET + "    dropout([[0] * 1000000] * 1000000)\n", "E0604"),
    "unknown_layer_repeated": (NET + "    nosuchlayer x 50000\n", "E0201"),
    "an_error_in_nested_repeats": (NET + "    [linear() x 50000] x 8\n", "E0301"),
    "a_chain_of_2500_variants": (NET + "    relu\nnetwork v0 = n()\n" + "".join(
        f"network v{i} = v{i - 1}()\n" for i in range(1, 2500)), "E0501"),
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_values_are_answered_at_once(name, tmp_path):
    text, expected = HOSTILE[name]
    spec = tmp_path / f"{name}.arch"
    spec.write_text(text)
    result = subprocess.run([sys.executable, "-m", "archdsl", "check", str(spec)],
                            capture_output=True, text=True, timeout=20)
    if expected == "ok":
        assert result.returncode == 0, result.stderr
    else:
        assert result.returncode == 1 and result.stderr.startswith(f"error[{expected}]"), \
            result.stderr[:500]
        if expected == "E0507":  # refused by the metering, not by a count limit
            assert "units of work" in result.stderr.splitlines()[0], result.stderr[:500]
    assert len(result.stderr) < 5000  # one error, its value cut short: no million-item text


def test_counts_of_a_repeated_error_stay_exact():
    with pytest.raises(archdsl.SpecError) as error:
        archdsl.load(NET + "    [linear() x 1000] x 8\n").network("n")
    (diagnostic,) = error.value.diagnostics
    assert "occurs 7999 more times" in diagnostic.render()


def test_set_with_a_deep_expression_is_an_error_not_a_crash(capsys):
    chain = "+".join(["1"] * 60000)
    status = main(["summary", str(SPECS / "lenet.arch"), "lenet5", "--set", f"classes={chain}"])
    err = capsys.readouterr().err
    assert status == 1 and "E0507" in err and "internal error" not in err, err[:500]
    status = main(["summary", str(SPECS / "lenet.arch"), "lenet5", "--set",
                   "classes=" + "(" * 5000 + "1" + ")" * 5000])
    assert status == 1 and "E0507" in capsys.readouterr().err


def _nested(depth):
    value = []
    for _ in range(depth):
        value = [value]
    return value


def _cyclic():
    value = [1]
    value.append(value)
    return value


@pytest.mark.parametrize("value,problem", [
    (_nested(100000), "nested more than 64 deep"),
    (_cyclic(), "nested more than 64 deep"),
    ([[0] * 1000] * 1001, "holds more than 1,000,000"),
    (float("nan"), "the number nan"),
    (2 ** 100, "beyond ±2**62"),
    ({"a": 1}, "a dict"),
])
def test_api_values_are_checked_like_the_language(value, problem):
    spec = archdsl.load(SPECS / "lenet.arch")
    with pytest.raises(archdsl.SpecError) as error:
        spec.network("lenet5", classes=value)
    assert problem in str(error.value)


def test_control_characters_never_reach_the_terminal(tmp_path, capsys):
    spec = tmp_path / "n.arch"
    spec.write_text('network n(title="x"):\n    input 3x8x8\n    relu\n')
    assert main(["summary", str(spec), "--set", 'title="\x1b[31mred\x07"']) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out and "\\x1b[31mred\\x07" in out


def test_every_defence_in_the_security_page_names_a_test_that_exists():
    import re

    text = (ROOT / "docs" / "security.md").read_text()
    named = set(re.findall(r"`(test_\w+)`", text))
    defined = set()
    for path in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", path.read_text(), re.M))
    assert len(named) >= 15
    assert named <= defined, named - defined


def test_repeated_errors_and_variant_chains_are_worked_out_once(monkeypatch):
    """The slow-but-answered cases of issue 15, counted in work rather than seconds: an error
    repeated by `x N` builds its suggestion and binds its arguments once per round that can
    differ, not N times; a chain of variants is resolved once per variant, not once per
    variant per network that uses it (that was n**2 lookups)."""
    from archdsl.elaborate import elaborator

    calls = {"suggest": 0, "bind": 0, "lookup": 0}

    def counting(name, function):
        def wrapper(*args, **kwargs):
            calls[name] += 1
            return function(*args, **kwargs)
        return wrapper

    monkeypatch.setattr(elaborator, "did_you_mean", counting("suggest", elaborator.did_you_mean))
    monkeypatch.setattr(elaborator, "bind_layer", counting("bind", elaborator.bind_layer))
    monkeypatch.setattr(elaborator.Elaborator, "_lookup_network",
                        counting("lookup", elaborator.Elaborator._lookup_network))
    def rendered(text):
        with pytest.raises(archdsl.SpecError) as error:
            archdsl.load(text).network("n")
        return "\n".join(d.render() for d in error.value.diagnostics)

    assert "occurs 49999 more times" in rendered(NET + "    nosuchlayer x 50000\n")
    assert calls["suggest"] == 1
    assert "occurs 399999 more times" in rendered(NET + "    [linear() x 50000] x 8\n")
    assert calls["bind"] <= 4
    from archdsl.diagnostics import Diagnostics

    spec = archdsl.load(NET + "    relu\nnetwork v0 = n()\n" + "".join(
        f"network v{i} = v{i - 1}()\n" for i in range(1, 2500)))
    calls["lookup"] = 0
    diagnostics = Diagnostics()
    for name in spec.concrete_networks():
        spec.elaborate(name, diagnostics=diagnostics)
    assert calls["lookup"] <= 4 * 2501, calls["lookup"]


@pytest.mark.parametrize("name,content,message", [
    ("big.arch", "#" * 70_000 + "\n", "is larger than 64 KiB"),
    ("latin.arch", b"# caf\xe9\nblock b:\n    relu\n", "is not UTF-8 text"),
    ("loop.arch", None, "its path cannot be resolved"),
    ("a\x00b.arch", None, "a path cannot hold a NUL character"),
    ("x" * 300 + ".arch", None, "its path cannot be resolved"),
])
def test_a_used_file_that_cannot_be_read_is_reported_at_its_use(name, content, message,
                                                                  tmp_path):
    """Each problem of a used file is a located E0206/E0507 at the `use` line, from the CLI
    and from archdsl.load (issue 18: OSError, ValueError or no location)."""
    if name == "loop.arch":
        (tmp_path / "loop.arch").symlink_to(tmp_path / "loop2.arch")
        (tmp_path / "loop2.arch").symlink_to(tmp_path / "loop.arch")
    elif content is not None:
        path = tmp_path / name
        path.write_bytes(content) if isinstance(content, bytes) else path.write_text(content)
    spec = tmp_path / "main.arch"
    spec.write_text(f'use "{name}"\nnetwork n:\n    input 3\n    relu\n')
    with pytest.raises(archdsl.SpecError) as error:
        archdsl.load(spec)
    [diagnostic] = error.value.diagnostics
    assert message in diagnostic.message
    assert diagnostic.span is not None and diagnostic.span.line == 1
