"""Exports: standalone PyTorch source for every network (run without archdsl), .pt, ONNX."""

import json
import subprocess
import sys

import pytest
import torch

import archdsl
from archdsl.backends.source import camel, to_source
from archdsl.cli import main
from conftest import SPECS

# Every network of the zoo up to 700M parameters: run twice each (here and exported), the
# largest variants (GPT-2 large and XL: 3 to 6 GB of weights, minutes of CPU) would double the
# suite's time; their source is the same classes as their family's smaller variants'.
def _exportable(file, name) -> bool:
    """Every network but the heaviest to build and run twice on a CPU (over 200 M parameters
    or 12 G MACs: GPT-2 medium and up, ViT-B/16 and larger, ConvNeXt-B and L, Swin-B,
    RegNet 16GF and up, ResNeXt-101, VGG-16 and 19, EfficientNet-B6, B7 and V2-M, L,
    YOLOv8s and up, the seeds' AlexNet-VGG-ResNet hybrid, FCN and DeepLabV3 at 520x520),
    whose code paths their smaller siblings of the same spec take; the suite stays well
    under 10 minutes."""
    if name in LARGER_SIBLINGS:
        return False
    net = archdsl.load(file).network(name)
    return net.params_total <= 200_000_000 and net.macs <= 12_000_000_000


# Deeper or wider variants of a network exported here, built from the same blocks with other
# arguments: their source is the same classes (over 3 G MACs each; left out to keep the suite
# well under 10 minutes); and vgg11 and vgg11_lrn, torchvision's names of vgg_a and vgg_a_lrn
LARGER_SIBLINGS = {"resnet34", "resnet101", "resnet152", "resnet101_v1", "resnet152_v1",
                   "preact_resnet101", "preact_resnet152", "wide_resnet50_2", "regnet_x_3_2gf",
                   "regnet_y_3_2gf", "regnet_x_8gf", "regnet_y_8gf", "swin_s", "swin_v2_s",
                   "vgg_b", "vgg11", "vgg11_lrn", "vgg13", "vgg13_bn", "efficientnet_b4",
                   "efficientnet_b5", "densenet161", "densenet169", "densenet201",
                   "densenet264", "convnext_small", "xception_seed", "inception_v3_noaux"}


NETWORKS = [(f.name, n) for f in sorted(SPECS.glob("*.arch")) for n in archdsl.load(f).concrete_networks()
            if _exportable(f, n)]

FILL = '''
import torch
def fill(model):
    """The same weights on both sides: each tensor from a generator seeded by its position."""
    with torch.no_grad():
        for i, (key, tensor) in enumerate(sorted(model.state_dict().items())):
            if tensor.is_floating_point():
                g = torch.Generator().manual_seed(i)
                tensor.copy_(torch.rand(tensor.shape, generator=g) * 0.2 - 0.1
                             if "running_var" not in key else torch.rand(tensor.shape, generator=g) + 0.5)
    return model
'''
namespace = {}
exec(FILL, namespace)
fill = namespace["fill"]

RUNNER = FILL + '''
import importlib.util, json, sys
sys.modules["archdsl"] = None  # archdsl must not be importable here
folder = sys.argv[1]
report = {}
for name, inputs in json.load(open(folder + "/networks.json")):
    spec = importlib.util.spec_from_file_location(name, f"{folder}/{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = fill(module.MODEL().eval())
    torch.manual_seed(0)
    xs = [torch.randint(0, vocab, (1, *shape)) if vocab else torch.randn(1, *shape)
          for shape, vocab in inputs]
    with torch.no_grad():
        torch.save(model(*xs), f"{folder}/{name}.out")
    report[name] = sorted(model.state_dict())
json.dump(report, open(folder + "/keys.json", "w"))
'''


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """Every network of the zoo written as .py, then run in one fresh interpreter."""
    folder = tmp_path_factory.mktemp("exported")
    listing = []
    for file, name in NETWORKS:
        net = archdsl.load(SPECS / file).network(name)
        source = to_source(net) + f"\nMODEL = {camel(name)}\n"
        (folder / f"{name}.py").write_text(source)
        listing.append((name, [(list(x), x.vocab) for x in net.graph.input_shapes().values()]))
    (folder / "networks.json").write_text(json.dumps(listing))
    (folder / "runner.py").write_text(RUNNER)
    done = subprocess.run([sys.executable, "-I", str(folder / "runner.py"), str(folder)],
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return folder, json.loads((folder / "keys.json").read_text())


@pytest.mark.xdist_group("exported")  # one process runs these, so the zoo is exported once
@pytest.mark.parametrize("file,name", NETWORKS, ids=[n for _, n in NETWORKS])
def test_exported_source_gives_the_same_outputs_without_archdsl(exported, file, name):
    folder, keys = exported
    net = archdsl.load(SPECS / file).network(name)
    model = fill(net.build().eval())
    assert keys[name] == sorted(model.state_dict())  # the same state_dict keys
    torch.manual_seed(0)  # the inputs as the runner makes them
    xs = [torch.randint(0, x.vocab, (1, *x)) if x.vocab else torch.randn(1, *x)
          for x in net.graph.input_shapes().values()]
    with torch.no_grad():
        expected = model(*xs)
    got = torch.load(folder / f"{name}.out", weights_only=True)
    if isinstance(expected, tuple):  # several outputs (a feature pyramid)
        assert len(got) == len(expected) and all(map(torch.equal, got, expected))
    else:
        assert torch.equal(got, expected), (got - expected).abs().max()


def test_a_saved_state_dict_loads_unchanged(tmp_path):
    net = archdsl.load(SPECS / "googlenet.arch").network("googlenet")
    model = net.build()
    path = tmp_path / "googlenet.py"
    path.write_text(to_source(net))
    namespace = {"__name__": "exported"}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    exported_model = namespace["Googlenet"]()
    exported_model.load_state_dict(model.state_dict())  # strict: every key, every shape
    model.train(), exported_model.train()
    torch.manual_seed(1)
    x = torch.randn(2, 3, 224, 224)
    torch.manual_seed(2)
    a = model(x)
    torch.manual_seed(2)
    b = exported_model(x)
    assert len(a) == len(b) == 3 and all(torch.equal(p, q) for p, q in zip(a, b))


def test_the_source_reads_like_pytorch():
    source = to_source(archdsl.load(SPECS / "resnet.arch").network("resnet50"))
    assert source.startswith('"""The network `resnet50` of ')
    assert "import torch\n" in source and "archdsl" not in source.split('"""', 2)[2]
    assert "class ConvBn(nn.Module):" in source and "class Bottleneck(nn.Module):" in source
    assert "padding=k // 2" in source  # an expression of the block's own parameters
    assert "class Resnet50(nn.Module):" in source and "self.conv2_x = Stage(" in source
    assert "# 256x56x56" in source
    # the only loops are a stage's: its repeated blocks built in one, and called in order
    assert "        for i in range(1, 6):\n            self.add_module(str(i), Bottleneck" in source
    loops = [line.strip() for line in source.splitlines()
             if line.strip().startswith(("for ", "while "))]
    assert loops and all(line.startswith(("for i in range(", "for block in self.children():"))
                         for line in loops), loops
    assert "def __init__(self, classes=1000):" in source  # Resnet50(classes=10)


ONNX_SET = [("vgg.arch", "vgg16"), ("resnet.arch", "resnet50"), ("googlenet.arch", "googlenet"),
            ("densenet.arch", "densenet121"), ("efficientnet.arch", "efficientnet_b0"),
            ("xception.arch", "xception")]


@pytest.mark.parametrize("file,name", ONNX_SET, ids=[n for _, n in ONNX_SET])
def test_onnx_export_checks_and_matches_pytorch(tmp_path, file, name):
    import onnxruntime

    net = archdsl.load(SPECS / file).network(name)
    model = net.build(side_outputs="always").eval()
    path = net.export(tmp_path / f"{name}.onnx", model)  # passes onnx.checker
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    assert session.get_inputs()[0].shape[0] == "batch"  # dynamic batch dimension
    assert [o.name for o in session.get_outputs()] == list(net.output_shapes)
    torch.manual_seed(0)
    x = torch.randn(3, *net.input_shape)  # another batch size than the export's
    with torch.no_grad():
        expected = model(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = session.run(None, {"input": x.numpy()})
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert abs(torch.from_numpy(a) - b).max() <= 1e-4


def test_pt_round_trip_keeps_weights_and_arguments(tmp_path):
    net = archdsl.load(SPECS / "resnet.arch").network("resnet18", classes=10, input_shape=[3, 64, 64])
    model = fill(net.build().eval())
    path = net.export(tmp_path / "r18.pt", model)
    saved = archdsl.load(path)
    assert isinstance(saved, archdsl.SavedModel)
    assert saved.network.output_shapes["output"] == (10,) and saved.network.input_shape == (3, 64, 64)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(saved.build().eval()(x), model(x))
    loaded = torch.load(path, weights_only=True)
    assert "resnet.arch" in loaded["spec_files"]


def test_compile_writes_every_format(tmp_path, capsys):
    from archdsl.cli import main

    for ext in ("py", "onnx", "pt"):
        out = tmp_path / f"lenet.{ext}"
        assert main(["compile", str(SPECS / "lenet.arch"), "lenet5", "-o", str(out)]) == 0
        assert out.stat().st_size > 1000
    assert main(["compile", str(SPECS / "lenet.arch"), "lenet5", "-o", str(tmp_path / "x.h5")]) == 2
    assert "must be .py, .onnx or .pt" in capsys.readouterr().err


def test_compile_exports_trained_weights(tmp_path, capsys):
    from archdsl.cli import main

    net = archdsl.load(SPECS / "lenet.arch").network("lenet5")
    trained = fill(net.build())
    net.export(tmp_path / "trained.pt", trained)
    assert main(["compile", str(SPECS / "lenet.arch"), "lenet5", "--weights",
                 str(tmp_path / "trained.pt"), "-o", str(tmp_path / "again.pt")]) == 0
    again = torch.load(tmp_path / "again.pt", weights_only=True)["model"]
    for key, value in trained.state_dict().items():
        assert torch.equal(again[key], value)


def test_create_model_over_the_bundled_zoo():
    model = archdsl.create_model("resnet50", classes=10)
    assert sum(p.numel() for p in model.parameters()) == 23_528_522
    assert "efficientnet_b7" in archdsl.list_models() and len(archdsl.list_models()) >= 50
    with pytest.raises(archdsl.UnknownModel, match="did you mean `resnet50`"):
        archdsl.create_model("resnet05")
    source = archdsl.zoo_network("lenet5").to_source()
    assert "class Lenet5(nn.Module):" in source


def test_a_saved_model_evaluates_on_the_data_set_given(tmp_path, capsys):
    """`compile -o model.pt` records no training options: `eval --data` supplies the data set,
    and `summary`, `compile` and `draw` read the network it carries."""
    path = tmp_path / "model.pt"
    assert main(["compile", str(SPECS / "lenet.arch"), "lenet5", "-o", str(path)]) == 0
    assert main(["eval", str(path), "--data", "digits", "--offline"]) == 0
    assert "lenet5 on digits (test" in capsys.readouterr().out
    assert main(["summary", str(path), "--set", "classes=5"]) == 0
    out = capsys.readouterr().out
    assert "Network: lenet5(" in out and "Outputs: output 5" in out


def test_a_spec_given_as_text_round_trips_through_a_pt_file(tmp_path):
    net = archdsl.load("network n(c=4):\n    input 3x8x8\n    conv(c, 3) gap linear(2)\n"
                       ).network("n", c=6)
    net.export(tmp_path / "n.pt")
    saved = archdsl.load(tmp_path / "n.pt")
    assert saved.network.params_total == net.params_total
    assert saved.spec.files()[1] == "_text_.arch"


RECURRENT = """
network tagger(vocab=50, d=16):
    input 12 tokens of vocab
    embedding(d) lstm(24, bidirectional=true) gru(16, layers=2) linear(5)
"""

# The networks after 2019, small: attention, token ids, references and several outputs,
# upsampling and transposed convolutions, channel shuffles, recurrent layers
MODERN_ONNX = [("fpn.arch", "resnet18_fpn", dict(res=64)),
               ("gpt.arch", "gpt", dict(depth=2, d=64, heads=4, context=16, vocab=100)),
               # rotary embeddings, grouped keys and values, SwiGLU
               ("llama.arch", "llama", dict(depth=2, d=64, heads=4, kv_heads=2, context=16,
                                            vocab=100)),
               # Qwen3's: heads wider than D / heads, their queries and keys normalised
               ("llama.arch", "llama", dict(depth=2, d=64, heads=4, kv_heads=2, context=16,
                                            vocab=100, head_dim=32, qk_norm=True)),
               ("vit.arch", "vit", dict(patch=8, d=64, depth=2, heads=4, mlp=128, classes=10,
                                        res=32)),
               ("unet.arch", "unet", dict(c=8, res=64)),
               ("shufflenet.arch", "shufflenet_v2_x0_5", {}),
               # windows padded (8x8 grids in 7x7 windows), shifted and masked
               ("swin.arch", "swin", dict(c=16, depths=[2, 2], heads=[1, 2], sd=0.1,
                                          classes=10, res=64)),
               ("swin.arch", "swin", dict(c=16, depths=[2, 2], heads=[1, 2], sd=0.1,
                                          classes=10, res=64, window=8, v2=True)),
               (None, "tagger", {})]


@pytest.mark.parametrize("file,name,args", MODERN_ONNX,
                         ids=[m[1] + ("_v2" if m[2].get("v2") else "") for m in MODERN_ONNX])
def test_onnx_export_of_modern_networks(tmp_path, file, name, args):
    import onnxruntime

    from archdsl.backends.torch_module import example_input

    net = (archdsl.load(SPECS / file) if file else archdsl.load(RECURRENT)).network(name, **args)
    model = net.build().eval()
    path = net.export(tmp_path / f"{name}.onnx", model)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == net.graph.main_outputs
    torch.manual_seed(0)
    x = example_input(net.input_shape, 3)
    with torch.no_grad():
        expected = model(x)
    expected = expected if isinstance(expected, tuple) else (expected,)
    got = session.run(None, {"input": x.numpy()})
    for a, b in zip(got, expected, strict=True):
        assert abs(torch.from_numpy(a) - b).max() <= 1e-4 * max(1.0, float(b.abs().max()))


# Networks that take other sizes, written with dynamic sizes: the input's named sizes, and
# sizes to run the .onnx at (the spec's first)
DYNAMIC_ONNX = [("gpt.arch", "gpt", dict(depth=2, d=64, heads=4, context=16, vocab=100),
                 ["batch", "positions"], [(16,), (7,), (1,)]),
                # and a sliding window (a mask made from the positions)
                ("llama.arch", "llama", dict(depth=2, d=64, heads=4, kv_heads=2, context=16,
                                             vocab=100, sliding_window=5),
                 ["batch", "positions"], [(16,), (7,)]),
                ("resnet.arch", "resnet18", {}, ["batch", 3, "height", "width"],
                 [(3, 224, 224), (3, 96, 128)]),
                ("unet.arch", "unet", dict(c=8, depth=2, res=32), ["batch", 1, "height", "width"],
                 [(1, 32, 32), (1, 48, 64)])]


@pytest.mark.parametrize("file,name,args,dims,sizes", DYNAMIC_ONNX,
                         ids=[m[1] for m in DYNAMIC_ONNX])
def test_onnx_with_dynamic_sizes_runs_at_other_sizes(tmp_path, file, name, args, dims, sizes):
    """`--dynamic`: the .onnx takes the sizes the network takes (a GPT any length up to its
    context), named in its input; it computes what PyTorch does at each of them."""
    import onnxruntime

    from archdsl.backends.torch_module import example_input

    net = (archdsl.load(SPECS / file) if file else archdsl.load(RECURRENT)).network(name, **args)
    model = net.build().eval()
    path = net.export(tmp_path / f"{name}.onnx", model, dynamic=True)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape == dims
    torch.manual_seed(0)
    for size in sizes:
        x = example_input(net.graph.input_shapes()["input"].like(size), 2)
        with torch.no_grad():
            expected = model(x)
        (got,) = session.run(None, {"input": x.numpy()})
        assert got.shape == tuple(expected.shape)
        assert abs(torch.from_numpy(got) - expected).max() <= 1e-4 * max(1.0, float(
            expected.abs().max()))


def test_onnx_with_dynamic_sizes_names_each_inputs_own(tmp_path):
    """Several inputs: each one's sizes are dynamic under its own names (an image's, not a
    vector's, which has none but the batch)."""
    import onnxruntime

    from test_modern import FUSION

    net = archdsl.load(FUSION).network("fusion")
    model = net.build().eval()
    session = onnxruntime.InferenceSession(str(net.export(tmp_path / "f.onnx", model,
                                                          dynamic=True)),
                                           providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("image", ["batch", 3, "image_height", "image_width"]), ("meta", ["batch", 12])]
    image, meta = torch.randn(2, 3, 48, 40), torch.randn(2, 12)
    (got,) = session.run(None, {"image": image.numpy(), "meta": meta.numpy()})
    with torch.no_grad():
        assert abs(torch.from_numpy(got) - model(image, meta)).max() <= 1e-5


def test_onnx_is_one_self_contained_file(tmp_path):
    """Below 2 GB the .onnx holds its weights: moved alone, it loads (issue 18: a 100 MB
    model referred to a companion file by a temporary name)."""
    import numpy as np
    import onnxruntime

    net = archdsl.load("network wide:\n    input 4096\n    linear(4096) relu linear(10)\n") \
        .network("wide")
    folder = tmp_path / "out"
    folder.mkdir()
    net.export(folder / "wide.onnx")
    assert [p.name for p in folder.iterdir()] == ["wide.onnx"]
    moved = tmp_path / "elsewhere" / "model.onnx"
    moved.parent.mkdir()
    (folder / "wide.onnx").rename(moved)
    session = onnxruntime.InferenceSession(str(moved), providers=["CPUExecutionProvider"])
    assert session.run(None, {"input": np.zeros((2, 4096), np.float32)})[0].shape == (2, 10)


@pytest.mark.parametrize("file,name,parameter,value", [
    ("resnet.arch", "resnet18", "classes", 10), ("lenet.arch", "lenet5", "classes", 4),
    ("unet.arch", "unet_small", "classes", 5), ("vit.arch", "vit_ti_16", "classes", 7),
    ("efficientnet.arch", "efficientnet_b0", "classes", 3)])
def test_the_exported_class_takes_the_networks_parameters(file, name, parameter, value):
    """`Resnet18(classes=10)`, as timm's num_classes: the exported class with another value
    is archdsl's network with it, weight for weight and output for output."""
    spec = archdsl.load(SPECS / file)
    net = spec.network(name)
    namespace = {}
    exec(compile(to_source(net), f"{name}.py", "exec"), namespace)
    cls = namespace[camel(name)]
    import inspect

    assert inspect.signature(cls).parameters[parameter].default == net.graph.parameters[parameter]
    theirs = cls(**{parameter: value}).eval()
    ours = spec.network(name, **{parameter: value}).build().eval()
    assert {k: v.shape for k, v in theirs.state_dict().items()} == \
        {k: v.shape for k, v in ours.state_dict().items()}
    theirs.load_state_dict(ours.state_dict())
    x = torch.randn(2, *net.input_shape)
    with torch.no_grad():
        assert torch.equal(theirs(x), ours(x))


SEGMENTER = """
block pyramid(c=8):                     # DeepLabV3's image pooling branch, small
    concat:
        branch: conv(c, 1) relu
        branch: gap conv(c, 1) relu upsample(like=input, mode="bilinear")

network segmenter(classes=5):
    input 3x48x48
    conv(16, 3, 2, pad=1) relu conv(16, 3, 2, pad=1) relu
    pyramid()
    conv(classes, 1)
    upsample(like=input, mode="bilinear")
"""


def test_upsampling_to_a_tensors_size_exports_to_source_and_onnx(tmp_path):
    """`upsample(like=input)` reads the size when it runs: in the built module, the
    standalone source (a block's `input` is its forward's argument) and ONNX."""
    import onnxruntime

    net = archdsl.load(SEGMENTER).network("segmenter")
    model = net.build().eval()
    namespace = {"__name__": "exported"}
    exec(compile(to_source(net), "segmenter.py", "exec"), namespace)
    exported = namespace["Segmenter"]().eval()
    exported.load_state_dict(model.state_dict())
    torch.manual_seed(0)
    with torch.no_grad():
        for size in ((48, 48), (40, 72)):  # the spec's size and another
            x = torch.randn(2, 3, *size)
            assert model(x).shape == (2, 5, *size)
            assert torch.equal(model(x), exported(x))
        x = torch.randn(1, 3, 48, 48)
        expected = model(x)
    path = net.export(tmp_path / "segmenter.onnx", model)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(None, {"input": x.numpy()})[0]
    assert abs(torch.from_numpy(got) - expected).max() <= 1e-5
