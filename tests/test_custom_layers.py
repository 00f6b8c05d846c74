"""A layer kind registered from user code is parsed, checked, counted, drawn, compiled and
exported like a built-in (examples/cbam.py, loaded as a plugin)."""

import subprocess
import sys

import pytest
import torch

import archdsl
from archdsl.cli import load_plugins, main
from archdsl.layers import LAYERS, LayerDeclarationError, LayerKind
from conftest import ROOT
from oracle import check_against_torch

PLUGIN = ROOT / "examples" / "cbam.py"
SPEC = """
block conv_bn_relu(c):
    conv(c, 3, pad=same, bias=false) bn relu
network attention_net(classes=10):
    input 3x32x32
    conv_bn_relu(32) cbam conv_bn_relu(64) cbam(reduction=8, kernel=3) gap linear(classes)
"""


@pytest.fixture
def cbam():
    load_plugins([str(PLUGIN)])
    yield LAYERS["cbam"]
    archdsl.unregister_layer("cbam")


def test_parsed_checked_counted_against_torch(cbam):
    net = archdsl.load(SPEC).network("attention_net")
    assert [n["kind"] for _, n in net.graph.layers()].count("cbam") == 2
    check_against_torch(net)  # shapes, parameters and MACs against the real module


def test_checked_like_a_builtin(cbam):
    def codes(step):
        with pytest.raises(archdsl.SpecError) as info:
            archdsl.load(f"network n:\n    input 32x8x8\n    {step}\n").network("n")
        return [d.code for d in info.value.diagnostics]

    assert codes("cbam(reduction=0)") == ["E0304"]
    assert codes("cbam(reduction=64)") == ["E0404"]  # no hidden channels left
    assert codes("cbam(reducton=2)") == ["E0205"]
    assert codes("cbam(kernel=4)") == ["E0304"]
    assert codes("flatten cbam") == ["E0404"]
    assert codes("cbma") == ["E0201"]  # and suggested


def test_drawn_and_exported(cbam, tmp_path):
    net = archdsl.load(SPEC).network("attention_net")
    from archdsl.backends.diagram import to_dot

    assert "CBAM /16" in to_dot(net).source
    path = net.export(tmp_path / "net.py")
    assert "class CBAM(nn.Module):" in path.read_text()
    model = net.build().eval()
    torch.save(model.state_dict(), tmp_path / "weights.pt")
    x = torch.randn(2, 3, 32, 32)
    torch.save(x, tmp_path / "x.pt")
    code = (f"import sys, torch; sys.modules['archdsl'] = None; exec(open({str(path)!r}).read()); "
            f"m = AttentionNet().eval(); m.load_state_dict(torch.load({str(tmp_path / 'weights.pt')!r})); "
            f"torch.save(m(torch.load({str(tmp_path / 'x.pt')!r})), {str(tmp_path / 'y.pt')!r})")
    done = subprocess.run([sys.executable, "-I", "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    with torch.no_grad():
        assert torch.equal(torch.load(tmp_path / "y.pt"), model(x))


def test_the_command_line_takes_plugins(tmp_path, capsys):
    spec = tmp_path / "net.arch"
    spec.write_text(SPEC)
    try:
        assert main(["summary", str(spec), "--plugin", str(PLUGIN)]) == 0
        assert "CBAM /8" in capsys.readouterr().out
    finally:
        archdsl.unregister_layer("cbam")
    assert main(["check", str(spec)]) == 1  # without the plugin, `cbam` is unknown
    assert main(["check", str(spec), "--plugin", "no_such_module_xyz"]) == 2


def test_declarations_are_checked():
    class Incomplete(LayerKind):
        name = "incomplete"

        def shape(self, a, x):
            return x

    with pytest.raises(LayerDeclarationError, match="does not state"):
        archdsl.register_layer(Incomplete)

    class Clash(LayerKind):
        name = "conv"
        shape = params_count = macs = flops = torch = lambda *a: None

    with pytest.raises(LayerDeclarationError, match="already declared"):
        archdsl.register_layer(Clash)


def test_a_run_records_its_plugins_and_asks_for_them_again(tmp_path, capsys):
    """A checkpoint names the --plugin modules its spec needs (never loading them itself):
    `eval` without them says which to give, once (issue 18)."""
    spec = tmp_path / "net.arch"
    spec.write_text(SPEC.replace("3x32x32", "3x16x16"))
    run = tmp_path / "run"
    try:
        assert main(["train", str(spec), "--plugin", str(PLUGIN), "--data", "fake",
                     "--fake-size", "128", "--epochs", "1", "--limit-steps", "1",
                     "--no-progress", "--no-tensorboard", "--out", str(run)]) == 0
    finally:
        archdsl.unregister_layer("cbam")
    capsys.readouterr()
    assert main(["eval", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count(f"this run was trained with --plugin {PLUGIN}") == 1, err
    assert "error: error" not in err
    try:
        assert main(["eval", str(run), "--plugin", str(PLUGIN)]) == 0
    finally:
        archdsl.unregister_layer("cbam")
