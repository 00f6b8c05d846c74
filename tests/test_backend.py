"""The PyTorch backend: generated forward code, module names, side outputs, and equivalence
with torchvision's own implementation when given its weights."""

import torch
import torchvision

import archdsl
from conftest import SPECS

SIDE = """
block head(classes):
    gap linear(classes)
network n(aux=true):
    input 3x16x16
    conv(8, 3, pad=same) relu
    output aux1: head(5) when aux
    conv(8, 3, stride=2, pad=same) bn relu
    head(10) soft-max
"""


def test_side_outputs_in_training_only(spec_text):
    model = spec_text(SIDE).network("n").build()
    x = torch.randn(2, 3, 16, 16)
    main, aux = model.train()(x)
    assert main.shape == (2, 10) and aux.shape == (2, 5)
    assert model.eval()(x).shape == (2, 10)
    assert "if self.training:" in model.code
    always = spec_text(SIDE).network("n").build(side_outputs="always").eval()
    assert [o.shape[1] for o in always(x)] == [10, 5]
    assert spec_text(SIDE).network("n", aux=False).build().train()(x).shape == (2, 10)


def test_logits_leaves_out_the_final_softmax(spec_text):
    net = spec_text(SIDE).network("n")
    probabilities = net.build().eval()
    logits = net.build(logits=True).eval()
    logits.load_state_dict(probabilities.state_dict())
    x = torch.randn(2, 3, 16, 16)
    assert torch.allclose(probabilities(x), logits(x).softmax(1))
    assert "softmax" not in logits.code


def test_generated_code_is_straight_line_with_shapes():
    model = archdsl.load(SPECS / "lenet.arch").network("lenet5").build()
    lines = model.code.splitlines()
    assert lines[0] == "def forward(self, x):"
    assert "    x = self.conv1(x)" in model.code and "# 6x28x28" in model.code
    assert not any(w in model.code for w in ("for ", "while ", "lambda"))
    targets = {line.split("=")[0].strip() for line in lines[2:-1]}
    assert targets == {"x"}  # a chain needs a single variable


def test_modules_are_named_after_the_spec(spec_text):
    net = spec_text("""
        block unit(c):
            conv(c, 3, pad=same) bn
        network n:
            input 3x8x8
            stem: unit(4)
            for: unit(4)
            training: relu
            stage:
                unit(4)
                unit(4)
    """).network("n")
    model = net.build()
    keys = set(model.state_dict())
    assert {"stem.conv.weight", "for.conv.weight", "stage.0.bn.running_mean",
            "stage.1.conv.weight"} <= keys
    assert isinstance(model.training_.relu, torch.nn.ReLU)  # a name nn.Module already uses
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_no_graph_breaks_and_fx_traces():
    net = archdsl.load(SPECS / "resnet.arch").network("resnet18", input_shape=[3, 32, 32])
    model = net.build().eval()
    x = torch.randn(2, 3, 32, 32)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    traced = torch.fx.symbolic_trace(model)
    assert torch.equal(traced(x), model(x))


def test_asymmetric_padding_is_explicit(spec_text):
    model = spec_text("network n:\n    input 3x9x9\n    conv(4, 4, stride=2, pad=same)\n").network("n").build()
    assert "F.pad(x, (1, 2, 1, 2), value=0.0)" in model.code


def copy_in_order(model, reference):
    """torchvision's tensors into an archdsl model, matched in order, shapes checked."""
    ours, theirs = model.state_dict(), reference.state_dict()
    assert len(ours) == len(theirs)
    for (k, a), (k2, b) in zip(ours.items(), theirs.items()):
        assert a.shape == b.shape, (k, k2)
    model.load_state_dict(dict(zip(ours, theirs.values())))


def test_resnet18_with_torchvision_weights_gives_torchvision_outputs():
    torch.manual_seed(0)
    model = archdsl.load(SPECS / "resnet.arch").network("resnet18").build().eval()
    reference = torchvision.models.resnet18().eval()
    copy_in_order(model, reference)
    x = torch.randn(2, 3, 224, 224)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() <= 1e-5


def test_vgg16_with_torchvision_weights_gives_torchvision_outputs():
    torch.manual_seed(0)
    model = archdsl.load(SPECS / "vgg.arch").network("vgg16").build(logits=True).eval()
    reference = torchvision.models.vgg16().eval()
    copy_in_order(model, reference)
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() <= 1e-4
