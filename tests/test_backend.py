"""The PyTorch backend: generated forward code, module names, side outputs, and equivalence
with torchvision's own implementation when given its weights."""

import re
from types import SimpleNamespace

import pytest
import torch
import torchvision

import archdsl
from archdsl.passes.sizes import size_dependent_layer
from archdsl.backends.codegen import in_place_layers
from archdsl.backends.weights import WeightsError, copy_state, torchvision_model
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


def test_blocks_are_looked_up_once_per_forward(spec_text):
    """A block whose modules are called is bound to a local once (each step of a path costs
    nn.Module.__getattr__); locals never take a keyword, a value's name or another's name."""
    net = spec_text("""
        block unit(c):
            conv(c, 3, pad=same) bn relu
        network n:
            input 3x8x8
            for: unit(4)
            x1: unit(4)
            stage:
                unit(4)
                x1_unit: unit(4)
            stage_unit: unit(4)
            gap linear(2)
    """).network("n")
    model, reference = net.build(), net.build(in_place=False)
    code = model.code
    for binding in ('block_for = getattr(self, "for")', "block_x1 = self.x1", "stage = self.stage",
                    "stage_unit = stage.unit", "stage_x1_unit = stage.x1_unit",
                    "block_stage_unit = self.stage_unit"):
        assert code.count(f"    {binding}\n") == 1, binding
    assert "    x = block_stage_unit.bn(x)" in code and "self.linear(" in code  # used once: not bound
    reference.load_state_dict(model.state_dict())
    x = torch.randn(2, 3, 8, 8)
    assert torch.equal(model.eval()(x), reference.eval()(x))


def test_no_graph_breaks_and_fx_traces():
    net = archdsl.load(SPECS / "resnet.arch").network("resnet18", input_shape=[3, 32, 32])
    model = net.build().eval()
    x = torch.randn(2, 3, 32, 32)
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    traced = torch.fx.symbolic_trace(model)
    assert torch.equal(traced(x), model(x))


MODERN = [("fpn.arch", "resnet18_fpn", dict(res=64)),
          ("gpt.arch", "gpt", dict(depth=2, d=64, heads=4, context=16, vocab=100)),
          ("vit.arch", "vit", dict(patch=8, d=64, depth=2, heads=4, mlp=128, classes=10, res=32)),
          ("unet.arch", "unet", dict(c=8, res=64)),
          ("convnext.arch", "convnext", dict(widths=[8, 16, 32, 64], depths=[1, 1, 1, 1], sd=0.1)),
          ("shufflenet.arch", "shufflenet_v2_x0_5", {})]


@pytest.mark.parametrize("file,name,args", MODERN, ids=[m[1] for m in MODERN])
def test_modern_networks_compile_to_one_graph(file, name, args):
    """Attention, token ids, free tensors, references, several outputs, upsampling, channel
    slices and shuffles: one graph under torch.compile, the same values."""
    from archdsl.backends.torch_module import example_input

    net = archdsl.load(SPECS / file).network(name, **args)
    model = net.build()
    x = example_input(net.input_shape)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_recurrent_layers_compile_to_one_graph_with_rnns_allowed():
    """PyTorch's dynamo runs nn.LSTM and nn.GRU eagerly (the whole forward) unless
    torch._dynamo.config.allow_rnn is set; with it, one graph."""
    import torch._dynamo.config

    from archdsl.backends.torch_module import example_input

    net = archdsl.load("""
network tagger:
    input 12 tokens of 50
    embedding(16) lstm(24, bidirectional=true) gru(16, layers=2) linear(5)
""").network("tagger")
    model = net.build().eval()
    x = example_input(net.input_shape)
    torch._dynamo.reset()
    # (not monkeypatch: undoing it deletes the option from dynamo's config module)
    with torch._dynamo.config.patch(allow_rnn=True):
        explanation = torch._dynamo.explain(model)(x)
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1
    # `archdsl train --compile` sets it for such a network, and only for one
    from archdsl.train.loop import prepare_compile

    with torch._dynamo.config.patch(allow_rnn=False):
        prepare_compile(archdsl.zoo_network("lenet5"))
        assert torch._dynamo.config.allow_rnn is False
        prepare_compile(net)
        assert torch._dynamo.config.allow_rnn is True


def test_asymmetric_padding_is_explicit(spec_text):
    model = spec_text("network n:\n    input 3x9x9\n    conv(4, 4, stride=2, pad=same)\n").network("n").build()
    assert "F.pad(x, (1, 2, 1, 2), value=0.0)" in model.code


WITH_TORCHVISION_WEIGHTS = [
    ("alexnet.arch", "alexnet_torchvision", "alexnet", {}),
    ("vgg.arch", "vgg16", "vgg16", {}),
    ("vgg.arch", "vgg11_bn", "vgg11_bn", {}),
    ("resnet.arch", "resnet50", "resnet50", {}),
    ("densenet.arch", "densenet121", "densenet121", {}),
    ("googlenet.arch", "googlenet_torchvision_noaux", "googlenet",
     {"aux_logits": False, "init_weights": True}),
    ("efficientnet.arch", "efficientnet_b0", "efficientnet_b0", {}),
]


@pytest.mark.parametrize("file,name,reference,kwargs", WITH_TORCHVISION_WEIGHTS,
                         ids=[w[1] for w in WITH_TORCHVISION_WEIGHTS])
def test_torchvision_weights_give_torchvision_outputs(file, name, reference, kwargs):
    torch.manual_seed(0)
    net = archdsl.load(SPECS / file).network(name)
    model = net.build(logits=True).eval()
    tv = torchvision_model(reference, **kwargs).eval()
    transfer = copy_state(model, tv)
    assert len(transfer) == len(tv.state_dict())
    x = torch.randn(2, *net.input_shape)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max() <= 1e-4


def test_mismatched_structures_are_named():
    model = archdsl.load(SPECS / "resnet.arch").network("resnet18").build()
    with pytest.raises(WeightsError) as info:
        copy_state(model, torchvision.models.resnet34())
    message = str(info.value)
    assert "the structures differ" in message
    assert "`conv3_x.0.add.0.conv_bn1.conv.weight` 128x64x3x3" in message
    assert "`layer1.2.conv1.weight` 64x64x3x3" in message


def test_compile_checks_compatibility_from_the_command_line(capsys):
    from archdsl.cli import main

    status = main(["compile", str(SPECS / "resnet.arch"), "resnet18", "--torchvision", "resnet18"])
    assert status == 0 and "all 122 tensors fit" in capsys.readouterr().err


def test_torchvision_options_keep_their_types(capsys):
    """`NAME:key=value` passes numbers as numbers (issue 18: `num_classes=10` and
    `width_mult=0.5` used to arrive as strings)."""
    from archdsl.cli import main

    assert main(["compile", str(SPECS / "resnet.arch"), "resnet18", "--set", "classes=10",
                 "--torchvision", "resnet18:num_classes=10"]) == 0
    assert main(["compile", str(SPECS / "mobilenet.arch"), "mobilenet_v3_small", "--set",
                 "w=0.5", "--torchvision", "mobilenet_v3_small:width_mult=0.5"]) == 0
    assert capsys.readouterr().err.count("agree (max |difference| 0.00e+00)") == 2


def test_compile_checks_segmentation_and_auxiliary_heads_against_torchvision(capsys):
    """torchvision's segmentation models return a dict (the `out` entry is compared); its
    GoogLeNet registers the auxiliary heads last and runs them in the middle (the copy
    follows the forward pass: issue 18)."""
    from archdsl.cli import main

    assert main(["compile", str(SPECS / "segmentation.arch"), "deeplabv3_resnet50", "--set",
                 "res=64", "--torchvision", "deeplabv3_resnet50"]) == 0
    assert main(["compile", str(SPECS / "googlenet.arch"), "googlenet_torchvision",
                 "--torchvision", "googlenet:aux_logits=true,init_weights=true"]) == 0
    err = capsys.readouterr().err
    assert err.count("agree (max |difference| 0.00e+00)") == 2, err
    assert "all 364 tensors fit" in err


def test_an_unknown_torchvision_model_is_named_with_the_closest(capsys):
    from archdsl.cli import main

    assert main(["compile", str(SPECS / "resnet.arch"), "resnet18",
                 "--torchvision", "resnet81"]) == 2  # a wrong name on the command line
    assert "torchvision has no model `resnet81`; did you mean `resnet18`" in \
        capsys.readouterr().err


IN_PLACE = """
network n:
    input 3x16x16
    relu                                   # the caller's tensor: never overwritten
    conv(8, 3, pad=same) relu              # in place
    conv(8, 3, pad=same) sigmoid relu      # sigmoid's backward reads its output: not in place
    add:
        branch: conv(8, 3, pad=same) bn relu6   # in place; the add is not (relu6's output)
        branch: relu                       # its input is read by the other branch too
    relu                                   # after a merge: in place
    add:
        branch: conv(8, 3, pad=same) bn    # the add writes into bn's output, in place
        branch: identity
    relu
    add:
        branch: conv(8, 1) bn droppath(0.5)  # droppath returns bn's output at inference: in place
        branch: identity
    add:
        branch: droppath(0.5)              # its input is read by the other branch: not in place
        branch: identity
    conv(8, 1) silu conv(8, 1) hardswish conv(8, 1) mish conv(8, 1) hardsigmoid   # in place
    conv(8, 1) elu                         # its in-place gradient differs: not in place
"""


@pytest.mark.parametrize("source", ["spec", "resnet18", "resnet50", "googlenet", "densenet121",
                                    "efficientnet_b0"])
def test_in_place_layers_change_no_value_or_gradient(source, spec_text):
    """In training mode (values and gradients) and at inference (values), where dropout and
    droppath return their input itself."""
    net = (spec_text(IN_PLACE).network("n") if source == "spec"
           else archdsl.zoo_network(source, input_shape=[3, 128, 128]))
    torch.manual_seed(0)
    model = net.build().train()
    reference = net.build(in_place=False).train()
    reference.load_state_dict(model.state_dict())
    chosen = sorted(in_place_layers(net.graph))
    if source == "spec":
        assert chosen == ["add1.0.relu6", "add2", "add3", "hardsigmoid", "hardswish", "mish",
                          "relu2", "relu4", "relu5", "silu"], chosen
        assert model.code.count(".add_(") == 2 and "add_" not in reference.code
    else:
        assert chosen
    assert not any(getattr(m, "inplace", False) for m in reference.modules())
    x = torch.randn(2, *net.input_shape)
    original = x.clone()
    outputs = []
    for m in (model, reference):
        torch.manual_seed(1)  # the same dropout masks
        out = m(x)
        out = out if isinstance(out, tuple) else (out,)
        sum(o.double().sum() for o in out).backward()
        outputs.append(out)
    assert torch.equal(x, original)
    assert all(torch.equal(a, b) for a, b in zip(*outputs))
    for (name, p), q in zip(model.named_parameters(), reference.parameters()):
        assert torch.equal(p.grad, q.grad), name
    with torch.no_grad():
        assert torch.equal(model.eval()(x), reference.eval()(x))
    assert torch.equal(x, original)


def test_every_model_compiles_on_its_own(spec_text):
    """torch.compile caches per code object with a recompile limit of 8; each model has its
    own forward, so the twelfth model compiled in a process is still compiled."""
    import torch._dynamo.utils as dynamo_utils

    torch._dynamo.reset()
    dynamo_utils.counters.clear()
    for width in range(1, 13):
        model = spec_text(f"network n:\n    input 3x8x8\n    conv({width}, 3) relu gap "
                          "linear(2)\n").network("n").build().eval()
        compiled = torch.compile(model, backend="eager")
        with torch.no_grad():
            compiled(torch.randn(1, 3, 8, 8))
    assert dynamo_utils.counters["stats"]["unique_graphs"] == 12
    assert not dynamo_utils.counters["recompiles"]
    from archdsl.backends.torch_module import ArchModule

    assert isinstance(model, ArchModule) and type(model).__name__ == "ArchModule"


def test_labels_named_like_module_internals_build(tmp_path):
    """`output __class__: ...` and `_modules: ...` passed `check` and failed in `build`
    (issue 18): names that could be nn.Module's attributes get a trailing `_`."""
    net = archdsl.load("""
network n:
    input 3x8x8
    _modules: conv(4, 3)
    output __class__: gap linear(2)
    training: conv(4, 1)
    input_shapes: gap linear(3)
""").network("n")
    model = net.build()
    assert isinstance(model.__class___.linear, torch.nn.Linear)
    assert "_modules_.conv.weight" in model.state_dict()
    main, side = model.train()(torch.randn(2, 3, 8, 8))
    assert main.shape == (2, 3) and side.shape == (2, 2)
    path = net.export(tmp_path / "n.py", model)
    namespace = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    exported = namespace["N"]()
    exported.load_state_dict(model.state_dict())


FROZEN = """
network n(k=1):
    input 3x16x16
    frozen:
        stem: conv(8, 3) bn relu
    frozen when k > 1:
        body: conv(8, 3)
    conv(8, 3) gap linear(10)
"""


@pytest.mark.parametrize("k", [1, 2])
def test_frozen_layers_are_counted_apart_and_not_trained(k, tmp_path):
    from archdsl.backends.source import to_source

    net = archdsl.load(FROZEN).network("n", k=k)
    frozen = {"stem.conv", "stem.bn"} | ({"body.conv"} if k > 1 else set())
    model = net.build()
    assert {n.rsplit(".", 1)[0] for n, p in model.named_parameters() if not p.requires_grad} \
        == frozen
    assert net.totals.params_frozen == sum(p.numel() for p in model.parameters()
                                           if not p.requires_grad)
    assert net.params_nontrainable == net.totals.params_frozen + 16  # and bn's statistics
    model(torch.randn(2, 3, 16, 16)).sum().backward()
    assert all((p.grad is None) == (not p.requires_grad) for p in model.parameters())
    # the standalone source freezes the same parameters
    namespace = {"__name__": "exported"}
    exec(compile(to_source(net), "n.py", "exec"), namespace)
    exported = namespace["N"]()
    assert {n for n, p in exported.named_parameters() if not p.requires_grad} == \
        {n for n, p in model.named_parameters() if not p.requires_grad}


@pytest.mark.parametrize("shape,message", [
    ((1, 32, 32), "got one example of 1x32x32: add the batch dimension"),
    ((2, 3, 32, 32), "takes a batch of 1x32x32 (1 channels), got 3 channels"),
    ((32, 32), "(4 dimensions with the batch), got 2 dimensions"),
])
def test_the_built_module_says_what_input_it_takes(shape, message):
    """A wrong input gets archdsl's message, what the spec expects and what came (issue 19),
    before any layer runs; other image sizes are left to the layers (a convolutional network
    takes them)."""
    from archdsl.backends.torch_module import InputError

    model = archdsl.load(SPECS / "lenet.arch").network("lenet5").build()
    with pytest.raises(InputError, match=re.escape(message)):
        model(torch.randn(*shape))
    resnet = archdsl.load(SPECS / "resnet.arch").network("resnet18").build().eval()
    with torch.no_grad():
        assert resnet(torch.randn(1, 3, 64, 80)).shape == (1, 1000)


@pytest.mark.parametrize("name,size", [("lenet5", (1, 28, 28)), ("vit_ti_16", (3, 112, 112)),
                                       ("vgg16", (3, 112, 112))])
def test_a_network_of_one_input_size_refuses_others_up_front(name, size):
    """LeNet-5 reads a flattened 16x5x5 map; a ViT adds a position embedding of 197 positions:
    another size gets archdsl's message, naming the layer that ties the network to its size
    (passes/sizes.py). Without the check, PyTorch itself fails on that size: the check refuses
    nothing that would have run."""
    from archdsl.backends.torch_module import InputError

    model = archdsl.zoo_network(name).build().eval()
    x = torch.randn(1, *size)
    with pytest.raises(InputError, match=r"it takes no other size \(`[\w.]+` depends on it"):
        model(x)
    _without_size_checks(model)
    with pytest.raises(RuntimeError), torch.no_grad():
        model(x)


def _without_size_checks(model):
    model.fixed_by = None
    model.input_sizes = SimpleNamespace(refusal=lambda sizes: None)


@pytest.mark.parametrize("name,size,layer,why", [
    ("swin_t", (3, 200, 200), "stage3.patch_merging.rearrange", r"25 does not split into \(h a\)"),
    ("alexnet_torchvision", (3, 32, 32), "maxpool3", r"`maxpool` output would be 0x0"),
])
def test_a_size_some_layer_cannot_take_is_refused_up_front(name, size, layer, why):
    """A network that takes other sizes, but not this one: Swin's patch merging needs an even
    grid, AlexNet's last pool a map of at least 3x3. archdsl's message names the layer (the
    sizes pass infers the shapes at that size, once); PyTorch fails there without it."""
    from archdsl.backends.torch_module import InputError

    model = archdsl.zoo_network(name).build().eval()
    assert model.fixed_by is None
    x = torch.randn(1, *size)
    with pytest.raises(InputError, match=rf"cannot take {'x'.join(map(str, size))}: at "
                                         rf"`{re.escape(layer)}`, {why}"):
        model(x)
    _without_size_checks(model)
    with pytest.raises(RuntimeError), torch.no_grad():
        model(x)


@pytest.mark.parametrize("name,size", [("resnet18", (3, 96, 64)), ("googlenet", (3, 160, 160)),
                                       ("mobilenet_v3_small", (3, 64, 64)),
                                       ("unet_small", None), ("yolov8n", (3, 320, 256))])
def test_a_network_that_takes_other_sizes_runs_on_them(name, size):
    """What the pass finds flexible runs at another size (GoogLeNet in eval mode: its
    auxiliary heads, fixed to 224x224, run in training only)."""
    net = archdsl.zoo_network(name)
    assert size_dependent_layer(net.graph) is None
    if size is None:
        c, h, w = net.input_shape
        size = (c, 2 * h, 2 * w)
    with torch.no_grad():
        net.build().eval()(torch.randn(1, *size))


def test_the_summary_says_whether_other_sizes_fit():
    lenet, resnet = archdsl.zoo_network("lenet5"), archdsl.zoo_network("resnet18")
    assert "\nInput: 1x32x32   (this size only: `linear1` depends on it)\n" in lenet.summary()
    assert "\nInput: 3x224x224   (other sizes too, where its layers take them)\n" in \
        resnet.summary()
    assert lenet.to_json()["input_size_fixed_by"] == "linear1"
    assert resnet.to_json()["input_size_fixed_by"] is None


def test_which_zoo_networks_take_only_their_size():
    fixed = {name for name in archdsl.list_models()
             if size_dependent_layer(archdsl.zoo_network(name).graph) is not None}
    assert {"lenet5", "vgg16", "vit_b_16", "alexnet_original"} <= fixed
    # a GPT holds up to its context's positions, and takes any shorter sequence
    assert not fixed & {"resnet50", "efficientnet_b0", "googlenet", "alexnet_torchvision",
                        "densenet121", "unet", "yolov8n", "regnet_y_400mf", "gpt2", "gpt_char",
                        "char_lstm"}
