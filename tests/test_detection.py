"""Detection (issue 17): YOLOv8 against Ultralytics — its published counts, and its own model
with the weights copied in — and the language features it needs: branches repeated inside a
merge, frozen parameters, starting from a named output."""

import importlib.util
import json
import subprocess
import sys

import pytest
import torch

import archdsl
from archdsl.backends.weights import keys_in_call_order
from archdsl.diagnostics import SpecError
from conftest import SPECS

PUBLISHED = json.loads((SPECS.parent / "tests" / "data" / "published_counts.json").read_text())


@pytest.mark.parametrize("entry", PUBLISHED["ultralytics"], ids=lambda e: e["network"])
def test_yolov8_counts_as_ultralytics_prints_them(entry):
    net = archdsl.load(SPECS / entry["file"]).network(entry["network"])
    assert net.totals.params_torch == entry["parameters"], entry["source"]
    assert net.params_trainable == entry["gradients"], entry["source"]
    assert net.totals.params_frozen == entry["parameters"] - entry["gradients"]


def _in_call_order(model, *inputs) -> dict:
    """The model's tensors in the order its forward pass uses them (Ultralytics registers
    C2f's cv2 before its bottlenecks and runs it after them), without BatchNorm's counters."""
    state = model.state_dict()
    return {key: state[key] for key in keys_in_call_order(model, *inputs)
            if not key.endswith("num_batches_tracked")}


# Ultralytics runs in a process of its own: importing it changes the process (it replaces
# torch.save, adds warning filters, sets print options), which other tests must not see.
REFERENCE = """
import sys, torch
from archdsl.backends.weights import keys_in_call_order
from ultralytics.nn.tasks import DetectionModel
torch.manual_seed(0)
model = DetectionModel(f"yolov8{sys.argv[1]}.yaml", verbose=False).eval()
with torch.no_grad():  # statistics that are not the initial 0 and 1
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
x = torch.randn(2, 3, 256, 256)
full = model.state_dict()
state = {k: full[k] for k in keys_in_call_order(model, x) if not k.endswith("num_batches_tracked")}
with torch.no_grad():
    _, raw = model(x)
    outputs = [raw["boxes"], raw["scores"], model.model[-1].dfl(raw["boxes"])]
torch.save({"x": x, "state": list(state.items()), "outputs": outputs}, sys.argv[2])
"""


@pytest.mark.parametrize("variant", ["n", "s"])
def test_yolov8_with_ultralytics_weights_gives_ultralytics_outputs(variant, tmp_path):
    if importlib.util.find_spec("ultralytics") is None:  # not imported here: see REFERENCE
        pytest.skip("Ultralytics is not installed (the test extra: pip install 'archdsl[test]')")
    out = tmp_path / "reference.pt"
    done = subprocess.run([sys.executable, "-c", REFERENCE, variant, str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "ultralytics" not in sys.modules
    reference = torch.load(out, weights_only=True)
    x = reference["x"]
    net = archdsl.load(SPECS / "yolo.arch").network(f"yolov8{variant}", res=256)
    model = net.build().eval()
    ours = _in_call_order(model, x)
    theirs = reference["state"]
    assert [tuple(v.shape) for v in ours.values()] == [tuple(v.shape) for _, v in theirs]
    model.load_state_dict({k: v for k, (_, v) in zip(ours, theirs)}, strict=False)
    # the frozen DFL weights are Ultralytics' own, and stay without gradients
    [dfl] = [m for m in model.modules() if type(m).__name__ == "DFL"]
    assert not dfl.conv.weight.requires_grad
    assert dfl.conv.weight.flatten().tolist() == list(range(16))

    with torch.no_grad():
        got = model(x)
    assert [o.shape[1:] for o in got] == [torch.Size(s) for s in net.output_shapes.values()]
    for g, e in zip(got, reference["outputs"], strict=True):
        assert g.shape == e.shape
        assert (g - e).abs().max() <= 1e-4 * max(1.0, e.abs().max().item())


def test_yolov8_trains_only_what_ultralytics_trains():
    net = archdsl.load(SPECS / "yolo.arch").network("yolov8n", res=64)
    model = net.build()
    frozen = sum(p.numel() for p in model.parameters() if not p.requires_grad)
    assert frozen == net.totals.params_frozen == 16
    boxes, scores, distances = model(torch.randn(2, 3, 64, 64))
    (boxes.square().mean() + scores.mean()).backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    # the expected distance lies between the first and the last bin
    assert 0 <= distances.min() and distances.max() <= 15


def test_the_dfl_integral_is_the_expected_distance():
    net = archdsl.load("network t:\n    input 64x5\n    dfl(16)\n").network("t")
    model = net.build()
    logits = torch.full((1, 4, 16, 5), -1e4)
    logits[0, :, 3, :] = 0  # every side certain of distance 3
    logits[0, 2, 3, 1], logits[0, 2, 7, 1] = 0, 0  # one side torn between 3 and 7
    out = model(logits.view(1, 64, 5))
    expected = torch.full((1, 4, 5), 3.0)
    expected[0, 2, 1] = 5.0
    assert torch.allclose(out, expected)


# ---- the language it needs ------------------------------------------------------------------

C2F = """
block c2f(c2, n):
    cv1: conv(c2, 1)
    m0: channels(c2 // 2)
    repeat n as i:
        m{i + 1}: conv(c2 // 2, 3, pad=1)
    concat:
        branch: from cv1
        repeat n as i:
            branch: from m{i + 1}
    conv(c2, 1)

network t(n=3):
    input 8x6x6
    c2f(16, n)
"""


def test_repeated_branches_join_in_one_merge():
    net = archdsl.load(C2F).network("t")
    [concat] = [node for _, node in net.graph.layers() if node["kind"] == "concat"]
    assert len(concat["inputs"]) == 4
    assert tuple(concat["shape"]) == (16 + 3 * 8, 6, 6)
    model = net.build()
    assert model(torch.randn(2, 8, 6, 6)).shape == (2, 16, 6, 6)


def test_repeated_branches_that_leave_one_are_an_error():
    with pytest.raises(SpecError) as error:
        archdsl.load(C2F.replace("concat:\n        branch: from cv1\n", "concat:\n")) \
            .network("t", n=1)
    assert "`concat` needs at least two branches; with its repeats it has 1" in str(error.value)


def test_an_output_is_a_tensor_later_lines_start_from():
    net = archdsl.load("network t:\n    input 4x8\n    output a: linear(6)\n"
                       "    output b: from a relu\n").network("t")
    assert dict(net.output_shapes) == {"a": (6,), "b": (6,)}
