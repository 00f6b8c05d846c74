"""The command line: output, JSON, options, exit codes, and that check/summary stay torch-free."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.cli import main
from conftest import ROOT, SPECS


def run(capsys, *argv):
    status = main(list(argv))
    out = capsys.readouterr()
    return status, out.out, out.err


def test_check_a_folder(capsys):
    status, out, err = run(capsys, "check", str(SPECS))
    assert status == 0, err
    assert out.startswith("ok: ") and "networks in" in out


@pytest.mark.parametrize("form", ["text", "json"])
def test_check_in_parallel_reports_what_one_process_reports(capsys, monkeypatch, form):
    """`check` of many files runs one process per core: the same diagnostics, in the same
    order with the same repeat counts, the same notes and the same status as one process
    checking them in turn — over the golden error cases, 158 files of mistakes."""
    import archdsl.cli

    folder = str(ROOT / "tests" / "ui")
    parallel = run(capsys, "check", folder, "--format", form)
    monkeypatch.setattr(archdsl.cli, "CHECK_PROCESSES", 1)
    assert run(capsys, "check", folder, "--format", form) == parallel
    assert parallel[0] == 1 and (parallel[1] + parallel[2]).count("E0") > 100


def test_check_reports_errors_with_status_1(capsys, tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("network n:\n    input 3x8x8\n    conv(4, 3) rleu\n")
    status, out, err = run(capsys, "check", str(bad))
    assert status == 1
    assert "bad.arch:3:16" in err and "did you mean `relu`?" in err


def test_check_json_diagnostics(capsys, tmp_path):
    bad = tmp_path / "bad.arch"
    bad.write_text("network n:\n    input 3x8x8\n    conv(4, 3) rleu\n")
    status, out, _ = run(capsys, "check", "--format", "json", str(bad))
    assert status == 1
    (d,) = json.loads(out)
    assert d["code"] == "E0201" and d["line"] == 3 and d["column"] == 16
    assert d["end"] == {"line": 3, "column": 20} and d["help"] == "did you mean `relu`?"
    assert set(d) >= {"code", "severity", "message", "file", "line", "column", "end", "notes", "help"}


def test_summary_table(capsys):
    status, out, _ = run(capsys, "summary", str(SPECS / "alexnet.arch"), "alexnet_cifar10")
    assert status == 0
    assert "Total params: 58,360,586" in out
    assert "Trainable params: 58,341,450" in out
    assert "Non-trainable params: 19,136" in out
    assert "conv 11x11, 96, /4" in out


def test_summary_json(capsys):
    status, out, _ = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet18", "--json")
    assert status == 0
    data = json.loads(out)
    for key in ("params_total", "params_trainable", "params_nontrainable", "macs", "input",
                "outputs", "layers"):
        assert key in data
    assert data["input"] == [3, 224, 224] and data["outputs"] == {"output": [1000]}
    assert data["params_trainable"] == 11_689_512
    assert sum(layer["macs"] for layer in data["layers"]) == data["macs"]
    assert data["layers"][0]["name"] == "conv1.conv_bn.conv"


def test_summary_set_and_input(capsys):
    status, out, _ = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet18",
                         "--set", "classes=10", "--input", "3x32x32", "--json")
    data = json.loads(out)
    assert status == 0
    assert data["outputs"] == {"output": [10]} and data["input"] == [3, 32, 32]
    assert data["arguments"] == {"unit": "basic", "layers": [2, 2, 2, 2], "classes": 10}


def test_summary_set_accepts_block_names(capsys):
    status, out, _ = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet18",
                         "--set", "unit=bottleneck", "--json")
    assert status == 0 and json.loads(out)["arguments"]["unit"] == "bottleneck"


@pytest.mark.parametrize("argv", [
    ["summary", "specs/resnet.arch"],  # several networks, none named
    ["summary", "specs/resnet.arch", "resnet18", "--set", "classes"],
    ["summary", "specs/resnet.arch", "resnet18", "--input", "3x32"],
    ["summary", "no/such/file.arch"],
    ["check", "no/such/folder"],
    ["frobnicate"],
    [],
])
def test_usage_errors_exit_2(capsys, monkeypatch, argv):
    monkeypatch.chdir(ROOT)
    status, out, err = run(capsys, *argv)
    assert status == 2
    assert "Traceback" not in err


def test_unknown_network_is_a_spec_error(capsys):
    status, _, err = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet19")
    assert status == 1 and "did you mean `resnet18`" in err


def test_bad_set_value_is_reported(capsys):
    status, _, err = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet18",
                         "--set", "classes=0")
    assert status == 1 and "expected a positive integer" in err


def test_compile_prints_generated_code(capsys):
    status, out, err = run(capsys, "compile", str(SPECS / "lenet.arch"), "lenet5")
    assert status == 0
    assert out.startswith("def forward(self, x):")
    assert "self.conv1(x)" in out and "# 6x28x28" in out
    assert "forward pass on 1x32x32 gives 10" in err


def test_internal_errors_are_reported_without_traceback(capsys, monkeypatch):
    import archdsl.cli as cli

    def broken(args):
        raise ValueError("boom")

    monkeypatch.setattr(cli, "cmd_check", broken)
    status, _, err = run(capsys, "check", str(SPECS))
    assert status == 3
    assert "internal error: ValueError: boom" in err and "Traceback" not in err


def test_check_and_summary_do_not_import_torch():
    code = ("import sys; from archdsl.cli import main; "
            f"main(['check', {str(SPECS)!r}]); "
            f"main(['summary', {str(SPECS / 'vgg.arch')!r}, 'vgg16', '--json']); "
            "assert 'torch' not in sys.modules, 'torch was imported'; "
            "assert 'networkx' not in sys.modules, 'networkx was imported'")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "archdsl", "check", str(SPECS)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and result.stdout.startswith("ok: ")


def test_version(capsys):
    from archdsl import __version__

    status, out, _ = run(capsys, "--version")
    assert status == 0 and out.strip() == f"archdsl {__version__}"


def test_layers_shows_named_kinds_in_full(capsys):
    status, out, _ = run(capsys, "layers", "conv", "dfl")
    assert status == 0
    assert "### `conv(out, kernel, stride=1" in out and "### `dfl(bins=16)`" in out
    assert "| `groups` |" in out and "### `bn(" not in out


def test_ctrl_c_while_loading_is_an_interruption_not_a_traceback(monkeypatch, capsys):
    import archdsl.cli
    from archdsl import console

    def interrupted(argv=None):
        raise KeyboardInterrupt

    monkeypatch.setattr(archdsl.cli, "main", interrupted)
    with pytest.raises(SystemExit) as exit_:
        console.run()
    assert exit_.value.code == 130 and capsys.readouterr().err == "interrupted\n"


# Every subcommand without the optional packages, as after a plain `pip install archdsl`
# (issue 18): what needs one says which and how to install it (exit 2), what can do without
# leaves it out with a note; never an internal error (exit 3). The packages are hidden by
# running Python without its site folder and with a copy of it (links) that lacks them.
EXTRAS = ("sklearn", "scikit_learn", "matplotlib", "mpl_toolkits", "pylab", "tqdm",
          "tensorboard", "onnx", "onnxscript", "onnxruntime", "yaml", "_yaml", "pygls",
          "lsprotocol", "transformers")


def _site_without_extras(folder):
    import site

    view = folder / "site-packages"
    view.mkdir()
    for base in site.getsitepackages():
        for entry in Path(base).iterdir():
            stem = entry.name.split(".")[0].split("-")[0].lower()
            if not any(stem == e or stem.startswith(e + "_") for e in EXTRAS) \
                    and not (view / entry.name).exists():
                (view / entry.name).symlink_to(entry)
    return view


WITHOUT_EXTRAS = [
    (["check", "specs/lenet.arch"], 0, None),
    (["summary", "specs/lenet.arch", "lenet5"], 0, None),
    (["compile", "specs/lenet.arch", "lenet5", "-o", "{tmp}/x.py"], 0, None),
    (["compile", "specs/lenet.arch", "lenet5", "-o", "{tmp}/x.pt"], 0, None),
    (["compile", "specs/lenet.arch", "lenet5", "-o", "{tmp}/x.onnx"], 2, "archdsl[onnx]"),
    (["draw", "specs/lenet.arch", "lenet5", "-o", "{tmp}/x.dot"], 0, None),
    (["fmt", "specs/lenet.arch"], 0, None),
    (["layers"], 0, None),
    (["zoo", "specs/lenet.arch"], 0, None),
    (["zoo", "specs/lenet.arch", "--plot", "{tmp}/zoo.png"], 2, "archdsl[train]"),
    (["train", "specs/lenet.arch", "lenet5", "--out", "{tmp}/run"], 2, "archdsl[train]"),
    (["train", "specs/lenet.arch", "lenet5", "--data", "fake", "--fake-size", "256",
      "--epochs", "1", "--out", "{tmp}/run2"], 0, "no progress bar"),
    (["eval", "{tmp}/run2", "--data", "digits"], 2, "archdsl[train]"),
    (["eval", "{tmp}/run2"], 0, None),
    (["predict", "{tmp}/run2", "specs/../docs/images"], 0, None),
    (["summary", "specs/lenet.arch", "lenet5", "--batch", "8"], 0, None),
    (["lsp"], 2, "archdsl[lsp]"),
    (["compile", "specs/gpt.arch", "gpt", "--set", "depth=1", "--set", "d=32", "--set",
      "heads=2", "--set", "context=8", "--set", "vocab=10", "--weights", "huggingface:{tmp}",
      "-o", "{tmp}/gpt.pt"], 2, "archdsl[hf]"),
]


def test_every_subcommand_without_the_optional_packages(tmp_path):
    import os

    site = _site_without_extras(tmp_path)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{site}"}
    hidden = subprocess.run([sys.executable, "-S", "-c", "import importlib.util as u; "
                             "print([m for m in ('sklearn', 'matplotlib', 'tqdm', 'onnx', 'pygls') "
                             "if u.find_spec(m)])"], env=env, capture_output=True, text=True)
    assert hidden.stdout.strip() == "[]", hidden.stdout + hidden.stderr
    for argv, status, said in WITHOUT_EXTRAS:
        argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
        done = subprocess.run([sys.executable, "-S", "-m", "archdsl", *argv], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == status, (argv, done.returncode, done.stderr[-2000:])
        assert "internal error" not in done.stderr and "Traceback" not in done.stderr, argv
        if said:
            assert said in done.stderr, (argv, done.stderr[-2000:])


def test_help_lists_every_exit_status(capsys):
    status, out, _ = run(capsys, "--help")
    assert status == 0
    for meaning in ("0 ok", "1 errors in a spec", "2 wrong command line", "3 internal error",
                    "4 training stopped", "130 interrupted", "143 terminated"):
        assert meaning in " ".join(out.split()), meaning


def test_summary_counts_as_keras_or_as_pytorch_and_says_which(capsys):
    status, keras, _ = run(capsys, "summary", str(SPECS / "yolo.arch"), "yolov8n")
    assert status == 0 and "Total params: 3,167,792" in keras and "as Keras does" in keras
    status, torch_, _ = run(capsys, "summary", str(SPECS / "yolo.arch"), "yolov8n",
                            "--params", "torch")
    assert status == 0 and "as PyTorch does" in torch_
    assert "Parameters: 3,157,200 (trainable 3,157,184, frozen 16)" in torch_
    assert "Buffers: 10,592" in torch_ and "Total params" not in torch_


def test_summary_depth_collapses_blocks_into_rows_with_their_totals(capsys):
    import archdsl
    from archdsl.report import summary_rows

    net = archdsl.load(SPECS / "resnet.arch").network("resnet50")
    for depth in (1, 2, 3):
        rows = summary_rows(net, depth)
        assert sum(r[3].total for r in rows) == net.params_total
        assert sum(r[4] for r in rows) == net.macs
    assert [r[0] for r in summary_rows(net, 1)] == [
        "conv1", "pool1", "conv2_x", "conv3_x", "conv4_x", "conv5_x", "gap", "linear"]
    status, out, _ = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet50",
                         "--depth", "2")
    assert status == 0 and "conv3_x.0  " in out and "bottleneck(c=128, s=2)" in out
    status, _, err = run(capsys, "summary", str(SPECS / "resnet.arch"), "resnet50",
                         "--depth", "0")
    assert status == 2 and "--depth must be at least 1, got 0" in err


def test_summary_says_what_each_row_reads_where_the_network_branches(capsys):
    status, out, _ = run(capsys, "summary", str(SPECS / "fpn.arch"), "resnet18_fpn",
                         "--depth", "1")
    assert status == 0
    rows = {line.split()[0]: line for line in out.splitlines() if line[:2] in ("m4", "p4")}
    assert rows["m4"].endswith("c4, m5") and rows["p4"].endswith("m4")
    status, out, _ = run(capsys, "summary", str(SPECS / "lenet.arch"), "lenet5")
    assert "From" not in out  # a plain sequence: every row reads the one above
