"""The networks after 2019 (issue 16): layouts, references to earlier tensors, and the specs
that need them, each against the real thing — torchvision's models with their weights copied
in, or a plain PyTorch module written here."""

import pytest
import torch
from torch import nn

import archdsl
from archdsl.backends.torch_module import InputError
from archdsl.backends.weights import copy_state, torchvision_model
from conftest import SPECS
from oracle import check_against_torch

# ---- the specs against torchvision ----------------------------------------------------------

# (file, network, torchvision model, its trainable parameters as the issue quotes them from
# torchvision; the test also counts torchvision's own)
MODERN = [
    ("vit.arch", "vit_b_16", "vit_b_16", 86_567_656),
    ("convnext.arch", "convnext_tiny", "convnext_tiny", 28_589_128),
    ("shufflenet.arch", "shufflenet_v2_x1_0", "shufflenet_v2_x1_0", 2_278_604),
    # torchvision's own counts (issue 17 quotes none)
    ("mobilenet.arch", "mobilenet_v2", "mobilenet_v2", 3_504_872),
    ("mobilenet.arch", "mobilenet_v3_large", "mobilenet_v3_large", 5_483_032),
    ("mobilenet.arch", "mobilenet_v3_small", "mobilenet_v3_small", 2_542_856),
    ("resnet.arch", "resnext50_32x4d", "resnext50_32x4d", 25_028_904),
    ("resnet.arch", "wide_resnet50_2", "wide_resnet50_2", 68_883_240),
    ("squeezenet.arch", "squeezenet1_0", "squeezenet1_0", 1_248_424),
    ("squeezenet.arch", "squeezenet1_1", "squeezenet1_1", 1_235_496),
    ("mnasnet.arch", "mnasnet1_0", "mnasnet1_0", 4_383_312),
    ("efficientnet.arch", "efficientnet_v2_s", "efficientnet_v2_s", 21_458_488),
    ("regnet.arch", "regnet_x_400mf", "regnet_x_400mf", 5_495_976),
    ("regnet.arch", "regnet_y_400mf", "regnet_y_400mf", 4_344_144),
    ("swin.arch", "swin_t", "swin_t", 28_288_354),
    ("swin.arch", "swin_v2_t", "swin_v2_t", 28_351_570),
    ("maxvit.arch", "maxvit_t", "maxvit_t", 30_919_624),
]


@pytest.mark.parametrize("file,name,reference,params", MODERN, ids=[m[1] for m in MODERN])
def test_torchvision_weights_give_torchvision_outputs(file, name, reference, params):
    torch.manual_seed(0)
    net = archdsl.load(SPECS / file).network(name)
    tv = torchvision_model(reference).eval()
    assert net.params_trainable == params == sum(p.numel() for p in tv.parameters())
    assert net.params_nontrainable == sum(b.numel() for n, b in tv.named_buffers()
                                          if n.endswith(("running_mean", "running_var")))
    model = net.build().eval()
    transfer = copy_state(model, tv)
    assert len(transfer) == len(tv.state_dict())
    x = torch.randn(2, *net.input_shape)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max() <= 1e-5


VARIANTS = [("vit.arch", n) for n in ("vit_b_32", "vit_l_16", "vit_l_32", "vit_h_14")] + \
    [("convnext.arch", n) for n in ("convnext_small", "convnext_base", "convnext_large")] + \
    [("shufflenet.arch", n) for n in ("shufflenet_v2_x0_5", "shufflenet_v2_x1_5",
                                      "shufflenet_v2_x2_0")] + \
    [("resnet.arch", n) for n in ("resnext101_32x8d", "resnext101_64x4d", "wide_resnet101_2")] + \
    [("mnasnet.arch", n) for n in ("mnasnet0_5", "mnasnet0_75", "mnasnet1_3")] + \
    [("efficientnet.arch", n) for n in ("efficientnet_v2_m", "efficientnet_v2_l")] + \
    [("swin.arch", n) for n in ("swin_s", "swin_b", "swin_v2_s", "swin_v2_b")]


@pytest.mark.parametrize("file,name", VARIANTS, ids=[v[1] for v in VARIANTS])
def test_every_variant_counts_as_torchvision(file, name):
    net = archdsl.load(SPECS / file).network(name)
    with torch.device("meta"):
        tv = torchvision_model(name)
    assert net.params_trainable == sum(p.numel() for p in tv.parameters())


@pytest.mark.parametrize("name,aux", [("inception_v3", True), ("inception_v3_noaux", False)])
def test_inception_v3_with_and_without_its_auxiliary_head(name, aux):
    """torchvision's counts and outputs; the auxiliary classifier runs in training mode only,
    as torchvision's (whose InceptionOutputs are (logits, aux_logits))."""
    torch.manual_seed(0)
    net = archdsl.load(SPECS / "inception_v3.arch").network(name)
    tv = torchvision_model("inception_v3", aux_logits=aux, init_weights=False).eval()
    assert net.params_trainable == sum(p.numel() for p in tv.parameters())
    assert net.params_nontrainable == sum(b.numel() for n, b in tv.named_buffers()
                                          if n.endswith(("running_mean", "running_var")))
    model = net.build().eval()
    copy_state(model, tv)
    x = torch.randn(2, 3, 299, 299)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max() <= 1e-5
        model.train(), tv.train()
        torch.manual_seed(1)
        ours = model(x)
        torch.manual_seed(1)
        theirs = tv(x)
    if aux:  # dropout draws the same masks in the same order
        assert all((a - b).abs().max() <= 1e-5 for a, b in zip(ours, theirs, strict=True))
    else:
        assert (ours - theirs).abs().max() <= 1e-5


REGNETS = [n for n in archdsl.load(SPECS / "regnet.arch").concrete_networks()]


@pytest.mark.parametrize("name", REGNETS)
def test_regnet_widths_from_the_rule_give_torchvision_counts(name, monkeypatch):
    """Every RegNet X and Y: the widths come from the quantised linear rule in the spec, not
    from a table, and give torchvision's parameters and running statistics exactly."""
    from torchvision.models import regnet

    # torchvision computes the widths with tensors: on the CPU, while the model is made on
    # the meta device (no memory: regnet_y_128gf has 644,812,894 parameters)
    rule = regnet.BlockParams.from_init_params.__func__

    def on_the_cpu(cls, *args, **kwargs):
        with torch.device("cpu"):
            return rule(cls, *args, **kwargs)

    monkeypatch.setattr(regnet.BlockParams, "from_init_params", classmethod(on_the_cpu))
    with torch.device("meta"):
        tv = torchvision_model(name)
    net = archdsl.load(SPECS / "regnet.arch").network(name)
    assert net.params_trainable == sum(p.numel() for p in tv.parameters())
    assert net.params_nontrainable == sum(b.numel() for n, b in tv.named_buffers()
                                          if n.endswith(("running_mean", "running_var")))


@pytest.mark.parametrize("file,name", [("vit.arch", "vit_b_16"), ("convnext.arch", "convnext_tiny"),
                                       ("shufflenet.arch", "shufflenet_v2_x1_0"),
                                       ("swin.arch", "swin_b"), ("swin.arch", "swin_v2_b")])
def test_modern_specs_against_torch_on_the_meta_device(file, name):
    """Every layer's shape and the MACs against the built module (FlopCounterMode)."""
    check_against_torch(archdsl.load(SPECS / file).network(name), batch=1, device="meta")


@pytest.mark.parametrize("file", ["vit.arch", "convnext.arch", "shufflenet.arch", "unet.arch",
                                  "gpt.arch", "fpn.arch", "mobilenet.arch", "squeezenet.arch",
                                  "mnasnet.arch", "regnet.arch", "efficientnet.arch",
                                  "inception_v3.arch", "swin.arch", "maxvit.arch", "transformer.arch",
                                  "bert.arch"])
def test_modern_specs_read_like_their_papers(file):
    from archdsl.syntax import ast

    unit = archdsl.load(SPECS / file).unit
    for d in unit.module.definitions:
        lines = d.span.end_line - d.span.line + 1
        assert lines == 1 if isinstance(d, ast.Variant) else lines <= 40, (d.name, lines)


# ---- U-Net against a plain PyTorch module ---------------------------------------------------


class UNet(nn.Module):
    """Ronneberger et al. 2015, Figure 1, written out as a PyTorch user would (padded 3x3
    convolutions, as the spec)."""

    def __init__(self, classes=2, c=64, depth=4, channels=1):
        super().__init__()

        def double(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.ReLU(),
                                 nn.Conv2d(o, o, 3, padding=1), nn.ReLU())

        widths = [c * 2 ** i for i in range(depth + 1)]
        self.down = nn.ModuleList([double(channels, c)] + [double(widths[i], widths[i + 1])
                                                           for i in range(depth)])
        self.up = nn.ModuleList([nn.ConvTranspose2d(widths[i + 1], widths[i], 2, stride=2)
                                 for i in reversed(range(depth))])
        self.fuse = nn.ModuleList([double(2 * widths[i], widths[i]) for i in reversed(range(depth))])
        self.head = nn.Conv2d(c, classes, 1)

    def forward(self, x):
        skips = []
        for i, block in enumerate(self.down):
            x = block(x if i == 0 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        skips.pop()
        for up, fuse in zip(self.up, self.fuse):
            x = fuse(torch.cat([skips.pop(), up(x)], 1))
        return self.head(x)

    def ordered_state(self):
        """The tensors in the order the spec's recursion creates them: each level's first
        double conv on the way down, then from the bottom up the up-convolution and the
        double conv after the concatenation."""
        state, depth = self.state_dict(), len(self.up)
        names = [n for i in range(depth + 1) for n in state if n.startswith(f"down.{i}.")]
        for k in range(depth):
            names += [n for n in state if n.startswith((f"up.{k}.", f"fuse.{k}."))]
        names += ["head.weight", "head.bias"]
        return {n: state[n] for n in names}


def test_unet_matches_a_plain_pytorch_module():
    torch.manual_seed(0)
    full = archdsl.load(SPECS / "unet.arch").network("unet_paper")
    assert full.params_total == sum(p.numel() for p in UNet().parameters())
    net = archdsl.load(SPECS / "unet.arch").network("unet", c=8, res=64)
    reference = UNet(c=8).eval()
    model = net.build().eval()
    copy_state(model, reference.ordered_state())
    x = torch.randn(2, 1, 64, 64)
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() <= 1e-5
    check_against_torch(net)


# ---- references -----------------------------------------------------------------------------

FPN = """
network fpn(c=16):
    input 3x32x32
    c3: conv(8, 3, stride=2, pad=1) relu
    c4: conv(16, 3, stride=2, pad=1) relu
    c5: conv(32, 3, stride=2, pad=1) relu
    lat5: conv(c, 1)
    top4: add:
        branch: from c4 conv(c, 1)
        branch: from lat5 upsample(2)
    top3: add:
        branch: from c3 conv(c, 1)
        branch: from top4 upsample(2)
    concat:
        branch: from top3 conv(c, 3, pad=1) gap
        branch: from top4 conv(c, 3, pad=1) gap
        branch: from lat5 conv(c, 3, pad=1) gap
"""


def test_references_make_a_dag_that_is_checked_counted_and_compiled():
    net = archdsl.load(FPN).network("fpn")
    g = net.graph
    assert g.graph.in_degree("top4") == 2  # an add of c4's lateral and lat5's upsampling
    assert set(g["top4.1.upsample"]["inputs"]) == {"lat5.conv"}
    assert set(g["top4.0.conv"]["inputs"]) == {"c4.relu"}
    g.lint()
    model = check_against_torch(net)
    assert "self.top4" in model.code or "top4" in model.code


def test_computed_names_of_labels_and_outputs():
    net = archdsl.load("""
network n:
    input 3x16x16
    repeat 3 as i:
        c{i + 1}: conv(4 * (i + 1), 3, pad=1)
    repeat 2 as i:
        output p{i + 1}: from c{i + 1} gap
""").network("n")
    assert list(net.output_shapes) == ["p1", "p2"]  # the body ends with them: both main
    assert net.graph.main_outputs == ["p1", "p2"]
    assert net.output_shapes["p2"] == (8, 1, 1)
    assert "c3.conv" in net.graph


def test_a_block_starts_from_its_own_tensors():
    net = archdsl.load("""
block two_paths(c):
    a: conv(c, 1)
    b: conv(c, 3, pad=1)
    add:
        branch: from a
        branch: identity
    concat:
        branch: identity
        branch: from input conv(c, 1)

network n:
    input 3x8x8
    two_paths(4) two_paths(2)
""").network("n")
    assert net.output_shapes["output"] == (4, 8, 8)
    # `from input` in a block is the block's input: the second call's branch reads the first
    # call's 8 channels, not the network's 3
    assert net.graph["two_paths2.concat.1.conv"]["inputs"] == ["two_paths1.concat"]
    assert net.graph["two_paths2.concat.1.conv"]["params"].trainable == 8 * 2 + 2
    check_against_torch(net)


# ---- layouts --------------------------------------------------------------------------------

def test_layouts_are_part_of_the_shape_and_shown():
    from archdsl.shapes import SEQ, Shape, show

    seq, signal = Shape((64, 100), SEQ), Shape((64, 100))
    assert seq != signal and seq == (64, 100) and signal.layout == "map1d"
    assert show(seq) == "64x100 seq" and show(signal) == "64x100"
    net = archdsl.load("network n:\n    input 12 tokens of 100\n    embedding(8) pick(-1)\n"
                       ).network("n")
    assert net.input_shape.layout == "tokens" and net.input_shape.vocab == 100
    assert net.output_shapes["output"].layout == "vector"
    summary = net.to_json()
    assert summary["input_layout"] == "tokens" and summary["input_vocab"] == 100
    assert [layer["layout"] for layer in summary["layers"]] == ["seq", "vector"]


def test_shapes_survive_pickling():
    import pickle

    from archdsl.shapes import Shape

    shape = Shape((12,), "tokens", 100)
    again = pickle.loads(pickle.dumps(shape))
    assert again == shape and again.vocab == 100 and again.layout == "tokens"


class GPT(nn.Module):
    """GPT-2 (Radford et al. 2019) as a PyTorch user writes it, its output layer tied to the
    token embedding."""

    def __init__(self, depth, d, heads, context=1024, vocab=50257, p=0.1):
        super().__init__()
        self.wte = nn.Embedding(vocab, d)
        self.wpe = nn.Parameter(torch.randn(context, d) * 0.02)
        self.drop = nn.Dropout(p)
        self.h = nn.ModuleList(GPTLayer(d, heads, p) for _ in range(depth))
        self.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, vocab, bias=False)
        self.lm_head.weight = self.wte.weight

    def forward(self, ids):
        x = self.drop(self.wte(ids) + self.wpe)
        for layer in self.h:
            x = layer(x)
        return self.lm_head(self.ln_f(x))


class GPTLayer(nn.Module):
    def __init__(self, d, heads, p):
        super().__init__()
        self.ln_1 = nn.LayerNorm(d)
        self.attn = nn.MultiheadAttention(d, heads, batch_first=True)
        self.ln_2 = nn.LayerNorm(d)
        self.fc = nn.Linear(d, 4 * d)
        self.proj = nn.Linear(4 * d, d)
        self.drop = nn.Dropout(p)

    def forward(self, x):
        y = self.ln_1(x)
        causal = torch.ones(x.shape[1], x.shape[1], dtype=torch.bool).triu(1)
        x = x + self.drop(self.attn(y, y, y, attn_mask=causal, need_weights=False)[0])
        gelu = nn.functional.gelu(self.fc(self.ln_2(x)), approximate="tanh")  # GPT-2's
        return x + self.drop(self.proj(gelu))


# GPT-2's sizes (Radford et al. 2019, Table 2) and the figure the issue quotes for the small one
GPT2_SIZES = {"gpt2": (12, 768, 12), "gpt2_medium": (24, 1024, 16),
              "gpt2_large": (36, 1280, 20), "gpt2_xl": (48, 1600, 25)}


@pytest.mark.parametrize("name", GPT2_SIZES)
def test_gpt2_counts_its_tied_weight_once(name):
    net = archdsl.load(SPECS / "gpt.arch").network(name)
    with torch.device("meta"):
        reference = GPT(*GPT2_SIZES[name])
    assert net.params_total == sum(p.numel() for p in reference.parameters())
    if name == "gpt2":
        assert net.params_total == 124_439_808  # the figure (Hugging Face's gpt2)


def test_gpt_matches_a_plain_pytorch_module_with_tied_weights():
    torch.manual_seed(0)
    net = archdsl.load(SPECS / "gpt.arch").network("gpt", depth=2, d=64, heads=4, context=16,
                                                   vocab=100)
    model, reference = net.build().eval(), GPT(2, 64, 4, context=16, vocab=100).eval()
    assert model.lm_head.linear.weight is model.wte.embedding.weight
    assert sum(p.numel() for p in model.parameters()) == net.params_total \
        == sum(p.numel() for p in reference.parameters())
    copy_state(model, reference)
    ids = torch.randint(0, 100, (3, 16))
    with torch.no_grad():  # in float64: the same function, not just close in float32
        assert (model.double()(ids) - reference.double()(ids)).abs().max() <= 1e-10
    check_against_torch(net)
    # fewer positions than its context: the first L position vectors, as a prefix of the
    # whole context's scores (each position sees only itself and earlier ones)
    with torch.no_grad():
        assert (model(ids[:, :7]) - model(ids)[:, :7]).abs().max() <= 1e-10
    # more: archdsl's message, naming the position embedding
    with pytest.raises(InputError, match=r"cannot take 17 token ids: at `wpe.position_"
                                         r"embedding`, a sequence of 17 positions is longer "
                                         r"than the 16 this position embedding holds \(its "
                                         r"spec's size: 16 token ids\)"):
        model(torch.randint(0, 100, (1, 17)))
    # training moves the shared weight once, by the sum of both uses' gradients
    model.train()
    model(ids).sum().backward()
    assert model.wte.embedding.weight.grad is model.lm_head.linear.weight.grad


def hugging_face_gpt2(**config):
    """Hugging Face's GPT2LMHeadModel (transformers), and its tensors in the spec's order:
    its Conv1D weights (in x out) transposed to nn.Linear's."""
    from transformers import GPT2Config, GPT2LMHeadModel

    reference = GPT2LMHeadModel(GPT2Config(**config))
    conv1d = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
    state = {name: value.t() if name.endswith(conv1d) else value
             for name, value in reference.state_dict().items()}
    return reference, state


@pytest.mark.parametrize("name", GPT2_SIZES)
def test_gpt2_counts_as_hugging_face_gpt2(name):
    depth, d, heads = GPT2_SIZES[name]
    with torch.device("meta"):
        reference, _ = hugging_face_gpt2(n_layer=depth, n_embd=d, n_head=heads)
    net = archdsl.load(SPECS / "gpt.arch").network(name)
    assert net.params_total == sum(p.numel() for p in reference.parameters())


def test_gpt2_equals_hugging_face_gpt2():
    """GPT-2's spec computes what Hugging Face's GPT2LMHeadModel does (its gelu_new, its
    causal attention, its position embedding's first L vectors), at its context and shorter,
    in float64; and at float32 within the 1e-5 the zoo holds torchvision's models to."""
    torch.manual_seed(0)
    reference, state = hugging_face_gpt2(n_layer=2, n_embd=64, n_head=4, n_positions=16,
                                         vocab_size=100, bos_token_id=0, eos_token_id=0)
    net = archdsl.load(SPECS / "gpt.arch").network("gpt", depth=2, d=64, heads=4, context=16,
                                                   vocab=100)
    model, reference = net.build().eval(), reference.eval()
    assert len(copy_state(model, state)) == len(state)
    with torch.no_grad():
        for length in (16, 7, 1):
            ids = torch.randint(0, 100, (3, length))
            assert (model(ids) - reference(ids).logits).abs().max() <= 1e-5
            assert (model.double()(ids) - reference.double()(ids).logits).abs().max() <= 1e-10
            model.float(), reference.float()


# ---- a feature pyramid: several outputs, all of them the network's --------------------------


class ResNetFPN(nn.Module):
    """ResNet-18's stages with torchvision's FeaturePyramidNetwork on C3-C5: P3, P4, P5."""

    def __init__(self, c=256):
        import torchvision
        from torchvision.ops import FeaturePyramidNetwork

        super().__init__()
        self.body = torchvision.models.resnet18()
        del self.body.fc
        self.fpn = FeaturePyramidNetwork([128, 256, 512], c)

    def forward(self, x):
        b = self.body
        c2 = b.layer1(b.maxpool(b.relu(b.bn1(b.conv1(x)))))
        c3 = b.layer2(c2)
        c4 = b.layer3(c3)
        c5 = b.layer4(c4)
        return tuple(self.fpn({"c3": c3, "c4": c4, "c5": c5}).values())

    def ordered_state(self):
        """The backbone, then the laterals from the top (C5's first) and the output
        convolutions from P3 up: the order the spec creates them."""
        state = self.state_dict()
        names = [n for n in state if n.startswith("body.")]
        names += [n for i in (2, 1, 0) for n in state if n.startswith(f"fpn.inner_blocks.{i}.")]
        names += [n for n in state if n.startswith("fpn.layer_blocks.")]
        return {n: state[n] for n in names}


def test_resnet18_fpn_matches_torchvision_feature_pyramid():
    torch.manual_seed(0)
    net = archdsl.load(SPECS / "fpn.arch").network("resnet18_fpn", res=128)
    assert net.graph.main_outputs == ["p3", "p4", "p5"]  # all of them, in every mode
    assert net.output_shapes == {"p3": (256, 16, 16), "p4": (256, 8, 8), "p5": (256, 4, 4)}
    reference = ResNetFPN().eval()
    assert net.params_trainable == sum(p.numel() for p in reference.parameters())
    model = net.build().eval()
    assert len(copy_state(model, reference.ordered_state())) == len(reference.state_dict())
    x = torch.randn(2, 3, 128, 128)
    with torch.no_grad():
        outs, expected = model(x), reference(x)
    assert len(outs) == 3
    for got, want in zip(outs, expected):
        assert got.shape == want.shape and (got - want).abs().max() <= 1e-5
    model.train()  # the same three outputs in training mode
    assert [o.shape for o in model(x)] == [o.shape for o in expected]
    check_against_torch(net)


# ---- several inputs -------------------------------------------------------------------------

FUSION = """
network fusion(classes=10):                 # an image and a vector of metadata per example
    input image: 3x32x32
    input meta: 12
    conv(16, 3, pad=1) relu gap flatten
    concat:
        branch: identity
        branch: from meta linear(16) relu
    linear(classes)
"""


class Fusion(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, padding=1)
        self.meta = nn.Linear(12, 16)
        self.head = nn.Linear(32, 10)

    def forward(self, image, meta):
        x = torch.relu(self.conv(image)).mean((2, 3))
        return self.head(torch.cat([x, torch.relu(self.meta(meta))], 1))


def test_several_named_inputs_are_arguments_in_order(tmp_path):
    torch.manual_seed(0)
    net = archdsl.load(FUSION).network("fusion")
    assert net.input_shapes == {"image": (3, 32, 32), "meta": (12,)}
    assert "Inputs: image 3x32x32, meta 12" in net.summary()
    assert net.to_json()["inputs"] == {"image": [3, 32, 32], "meta": [12]}
    model = net.build().eval()
    assert model.code.startswith("def forward(self, x, meta):")
    reference = Fusion().eval()
    copy_state(model, reference)
    image, meta = torch.randn(4, 3, 32, 32), torch.randn(4, 12)
    with torch.no_grad():
        assert (model(image, meta) - reference(image, meta)).abs().max() <= 1e-6
    check_against_torch(net)
    # ONNX names its inputs as the spec does
    import onnxruntime

    path = net.export(tmp_path / "fusion.onnx", model)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["image", "meta"]
    got = session.run(None, {"image": image.numpy(), "meta": meta.numpy()})[0]
    assert abs(torch.from_numpy(got) - model(image, meta)).max() <= 1e-4


def test_an_input_can_be_used_deep_in_the_network_and_drawn():
    net = archdsl.load("""
network film:
    input image: 8x16x16
    input cond: 8
    conv(8, 3, pad=1) gap flatten
    mul:                                    # gated by the second input
        branch: identity
        branch: from cond linear(8) sigmoid
    linear(3)
""").network("film")
    assert net.graph.inputs == {"image": "input", "cond": "input.cond"}
    net.graph.lint()
    check_against_torch(net)
    from archdsl.backends.diagram import to_dot

    source = to_dot(net).source
    assert "input `cond`" in source and "input `image`" in source


# ---- segmentation: FCN and DeepLabV3 on a dilated ResNet ------------------------------------

@pytest.mark.parametrize("name,aux", [("fcn_resnet50", False), ("fcn_resnet50", True),
                                      ("deeplabv3_resnet50", False),
                                      ("deeplabv3_resnet50", True)])
def test_segmentation_with_torchvision_weights_gives_torchvision_outputs(name, aux):
    torch.manual_seed(0)
    net = archdsl.load(SPECS / "segmentation.arch").network(name, res=96, aux=aux)
    tv = torchvision_model(name, aux_loss=aux).eval()
    assert net.params_trainable == sum(p.numel() for p in tv.parameters())
    model = net.build().eval()
    transfer = copy_state(model, tv)
    assert len(transfer) == len(tv.state_dict())
    x = torch.randn(2, 3, 96, 96)
    with torch.no_grad():
        expected = tv(x)
        assert (model(x) - expected["out"]).abs().max() <= 1e-5
        # upsampling `like=input` reads the image's size when it runs: the module built at
        # 96x96 segments other sizes, non-square ones too, as torchvision's does
        other = torch.randn(1, 3, 72, 104)
        assert model(other).shape == (1, 21, 72, 104)
        assert (model(other) - tv(other)["out"]).abs().max() <= 1e-5
        if aux:  # the auxiliary head is a side output: the module returns it in training
            # (without dropout: the two models draw its masks in another order)
            for m in (model, tv):
                m.train()
                for d in m.modules():
                    if isinstance(d, nn.Dropout):
                        d.eval()
            out, side = model(x)
            expected = tv(x)
            assert (out - expected["out"]).abs().max() <= 1e-4
            assert (side - expected["aux"]).abs().max() <= 1e-4


def test_googlenet_weights_match_by_the_order_of_the_forward_pass():
    """torchvision registers GoogLeNet's auxiliary heads after the last stage and runs them in
    the middle; the spec holds them where they run. The copy follows the forward pass (issue
    18: in registration order, aux1's classifier took the main classifier's weights)."""
    net = archdsl.load(SPECS / "googlenet.arch").network("googlenet_torchvision")
    tv = torchvision_model("googlenet", aux_logits=True, init_weights=True)
    model = net.build()
    transfer = copy_state(model, tv)
    paired = {ours: theirs for ours, theirs, _ in transfer.pairs}
    assert all(theirs.startswith("aux1.") for ours, theirs in paired.items()
               if ours.startswith("aux1."))
    assert [theirs for ours, theirs in paired.items() if "fc" in theirs][-2:] == \
        ["fc.weight", "fc.bias"]
    x = torch.randn(2, 3, 224, 224)
    for m in (model, tv):  # training mode, where the auxiliary heads run; no dropout
        m.train()
        for d in m.modules():
            if isinstance(d, nn.Dropout):
                d.eval()
    with torch.no_grad():
        main, aux1, aux2 = model(x)
        expected = tv(x)
    for got, want in ((main, expected.logits), (aux1, expected.aux_logits1),
                      (aux2, expected.aux_logits2)):
        assert (got - want).abs().max() <= 1e-4


@pytest.mark.parametrize("trainable", [3, 0, 5])
def test_resnet50_fpn_backbone_is_torchvisions(trainable):
    """torchvision's resnet_fpn_backbone: FrozenBatchNorm2d, its first stages frozen
    (`frozen when trainable < k`), P2-P5 and the pool level; counts in both conventions and
    outputs with its weights copied in."""
    from torchvision.models.detection.backbone_utils import resnet_fpn_backbone

    torch.manual_seed(0)
    tv = resnet_fpn_backbone(backbone_name="resnet50", weights=None,
                             trainable_layers=trainable).eval()
    with torch.no_grad():  # frozen statistics that are not the initial 0 and 1
        for name, b in tv.named_buffers():
            b.uniform_(0.5, 1.5) if name.endswith(("running_var", "weight")) else \
                b.uniform_(-0.2, 0.2)
    net = archdsl.load(SPECS / "fpn.arch").network("resnet50_fpn_backbone", res=128,
                                                   trainable=trainable)
    t = net.totals
    assert t.params_trainable == sum(p.numel() for p in tv.parameters() if p.requires_grad)
    assert t.params_frozen == sum(p.numel() for p in tv.parameters() if not p.requires_grad)
    assert t.params.buffers == sum(b.numel() for b in tv.buffers())
    model = net.build().eval()
    assert len(copy_state(model, tv)) == len(tv.state_dict())
    assert [n for n, p in model.named_parameters() if not p.requires_grad] and trainable < 5 or \
        all(p.requires_grad for p in model.parameters())
    # the spec's size, and one whose side is no multiple of 32 (the top-down path upsamples
    # to each lateral's size, `like=`, as torchvision's F.interpolate(size=...))
    for x in (torch.randn(2, 3, 128, 128), torch.randn(1, 3, 100, 136)):
        with torch.no_grad():
            got, expected = model(x), tv(x)
        assert list(expected) == ["0", "1", "2", "3", "pool"]
        for g, e in zip(got, expected.values(), strict=True):
            assert g.shape == e.shape and (g - e).abs().max() <= 1e-4


@pytest.mark.parametrize("file,name,size", [("swin.arch", "swin_t", (3, 256, 320)),
                                            ("swin.arch", "swin_v2_t", (3, 192, 224)),
                                            ("convnext.arch", "convnext_tiny", (3, 160, 192)),
                                            ("vgg.arch", "vgg11_bn", (3, 160, 192))])
def test_networks_take_other_sizes_as_torchvision(file, name, size):
    """Swin and ConvNeXt keep their tokens channels last (a grid), as torchvision does, and
    name no size: the module built at 224x224 runs at other sizes with torchvision's outputs
    (Swin's last 8x10 grid is padded to whole 7x7 windows and shifted). VGG with batch norm
    pools adaptively to 7x7, as torchvision's does (its 5x6 map to 7x7)."""
    from archdsl.passes.sizes import size_dependent_layer

    torch.manual_seed(0)
    net = archdsl.load(SPECS / file).network(name)
    assert size_dependent_layer(net.graph) is None
    tv = torchvision_model(name).eval()
    model = net.build(logits=True).eval()  # VGG's table ends in a softmax, torchvision's not
    copy_state(model, tv)
    x = torch.randn(1, *size)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max() <= 1e-5


def test_window_attention_compiles_to_one_graph():
    """Padding, rolls and the shifted windows' mask are traced, not graph breaks: a small
    Swin (8x8 grids in 7x7 windows, padded and shifted) is one graph under torch.compile."""
    net = archdsl.load(SPECS / "swin.arch").network("swin", c=16, depths=[2, 2], heads=[1, 2],
                                                    sd=0.1, classes=10, res=64)
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(net.build().eval())(torch.randn(2, 3, 64, 64))
    assert explanation.graph_break_count == 0 and explanation.graph_count == 1


def test_swin_built_for_odd_grids_pads_them_as_torchvision():
    """At 200x200 the grids are 50, 25 and 13 positions wide: the spec pads an odd grid
    before patch merging (`zeropad ... when in.h % 2 == 1`), as torchvision does, and gives
    its outputs; the module built at 224x224 refuses that size with the layer it cannot
    pass (tests/test_backend.py)."""
    torch.manual_seed(0)
    net = archdsl.load(SPECS / "swin.arch").network("swin_t", input_shape=[3, 200, 200])
    pads = [n for n, node in net.graph.layers() if node["kind"] == "zeropad"]
    assert pads == ["stage3.patch_merging.zeropad", "stage4.patch_merging.zeropad"]
    tv = torchvision_model("swin_t").eval()
    model = net.build().eval()
    copy_state(model, tv)
    x = torch.randn(1, 3, 200, 200)
    with torch.no_grad():
        assert (model(x) - tv(x)).abs().max() <= 1e-5
