"""The training-memory estimate (passes/memory.py, `summary --batch`) against the allocator's
peak over a real training step (tests/oracle.py), and its invariants over the zoo."""

import json
import subprocess
import sys

import pytest

import archdsl
from archdsl.passes.memory import BYTES, estimate
from oracle import training_step_peak

from conftest import ROOT, SPECS

# (file, network, input, batches): small inputs where the network allows, to stay quick;
# benchmarks/memory_estimate.py measures the full sizes (docs/benchmarks.md)
MEASURED = [("lenet.arch", "lenet5", None, (32, 256)),
            ("resnet.arch", "resnet18", [3, 112, 112], (4, 16)),
            ("vit.arch", "vit_ti_16", None, (2, 4)),
            # a small Swin: shifted and padded windows, a learned bias (attention's math path)
            ("swin.arch", "swin", None, (2, 8)),
            # rotary embeddings, keys and values repeated for their query heads, SwiGLU
            ("llama.arch", "llama_char", None, (2, 8))]
ARGUMENTS = {"swin": dict(c=48, depths=[2, 2, 2], heads=[3, 6, 12], sd=0.1, classes=10,
                          res=128)}


@pytest.mark.parametrize("precision", ["fp32", "bf16"])
@pytest.mark.parametrize("file,name,shape,batches", MEASURED, ids=[m[1] for m in MEASURED])
def test_estimate_is_within_20_percent_of_the_measured_peak(file, name, shape, batches,
                                                            precision):
    net = archdsl.load(ROOT / "specs" / file).network(name, input_shape=shape,
                                                      **ARGUMENTS.get(name, {}))
    for batch in batches:
        predicted = net.memory(batch, precision).peak
        measured = training_step_peak(net, batch, precision)
        assert abs(predicted / measured - 1) <= 0.2, (batch, predicted, measured)


def test_adamw_state_is_measured_too():
    net = archdsl.load(ROOT / "specs" / "resnet.arch").network("resnet18",
                                                              input_shape=[3, 64, 64])
    predicted = net.memory(8, optimizer="adamw").peak
    measured = training_step_peak(net, 8, optimizer="adamw")
    assert abs(predicted / measured - 1) <= 0.2


def test_the_fixed_parts_are_the_counts_in_bytes():
    net = archdsl.load(ROOT / "specs" / "resnet.arch").network("resnet50")
    m = net.memory(32)
    assert m.parameters == 4 * net.params_total  # running statistics are fp32 buffers
    assert m.gradients == 4 * net.params_trainable
    assert m.optimizer_state == m.gradients  # momentum: one buffer per trainable parameter
    assert net.memory(32, optimizer="adamw").optimizer_state == 2 * m.gradients


def test_every_zoo_network_has_an_estimate_that_grows_with_the_batch():
    for path in sorted(SPECS.glob("*.arch")):
        spec = archdsl.load(path)
        for name in spec.concrete_networks():
            net = spec.network(name)
            small, large = net.memory(1), net.memory(4)
            assert 0 < small.activations < large.activations, name
            assert small.peak <= large.peak, name  # the optimizer step may be the peak
            assert large.peak >= large.parameters + large.optimizer_state + large.activations
            # bf16 keeps values in half the bytes, and autocast's copies of the weights
            low = net.memory(4, "bf16")
            assert low.activations <= large.activations + net.params_trainable * BYTES["bf16"]


def test_summary_prints_the_estimate_and_its_json():
    run = [sys.executable, "-m", "archdsl", "summary", str(ROOT / "specs" / "lenet.arch"),
           "lenet5", "--batch", "64"]
    out = subprocess.run(run, capture_output=True, text=True, check=True).stdout
    assert "Training memory at batch 64" in out and "bf16 autocast" in out
    assert "AdamW" in out  # lenet5's recipe trains with AdamW
    out = subprocess.run(run + ["--optimizer", "sgd", "--json"], capture_output=True,
                         text=True, check=True).stdout
    memory = json.loads(out)["memory"]
    net = archdsl.load(ROOT / "specs" / "lenet.arch").network("lenet5")
    assert memory["fp32"] == estimate(net.graph, 64, "fp32", "sgd").as_dict()
    assert memory["bf16"]["precision"] == "bf16"
