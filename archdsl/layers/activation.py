"""Activations: element-wise, shape-preserving, no parameters.

Their FLOPs are counted per output element with the costs below: a stated convention, not a
measurement (exp, division and comparison count one each).
"""

from __future__ import annotations

from .registry import LayerKind, Params, Param, TorchModule, numel, register
from .types import Choice, Float


class Activation(LayerKind):
    family = "activation"
    torch_class = ""
    cost = 1  # FLOPs per element
    decoding = "position"  # element by element (softmax: over a position's features)

    def shape(self, a, x):
        return x

    def params_count(self, a, x):
        return Params()

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return self.cost * numel(y)

    def torch_kwargs(self, a, x):
        return {}

    def torch(self, a, x, y):
        return TorchModule(self.torch_class, self.torch_kwargs(a, x))

    def describe(self, a):
        return self.name


def _activation(name, torch_class, cost, doc, aliases=(), runs_in_place=False,
                saves=("input",)):
    cls = type(name.capitalize(), (Activation,), dict(
        name=name, torch_class=torch_class, cost=cost, doc=doc, aliases=aliases,
        runs_in_place=runs_in_place, saves=saves))
    return register(cls)


# The backward of relu, relu6 (run in place), sigmoid, tanh and leakyrelu (in place) reads
# their output; the others' reads their input.
_activation("relu", "torch.nn.ReLU", 1, "max(x, 0).", runs_in_place=True, saves=("output",))
_activation("relu6", "torch.nn.ReLU6", 2, "min(max(x, 0), 6), as in MobileNet.",
            runs_in_place=True, saves=("output",))
_activation("silu", "torch.nn.SiLU", 4, "x * sigmoid(x), also called swish (EfficientNet).",
            aliases=("swish",), runs_in_place=True)
_activation("sigmoid", "torch.nn.Sigmoid", 3, "1 / (1 + exp(-x)).", saves=("output",))
_activation("tanh", "torch.nn.Tanh", 5, "Hyperbolic tangent.", saves=("output",))
_activation("hardswish", "torch.nn.Hardswish", 4, "x * relu6(x + 3) / 6 (MobileNetV3).",
            runs_in_place=True)
_activation("hardsigmoid", "torch.nn.Hardsigmoid", 3, "relu6(x + 3) / 6 (MobileNetV3).",
            runs_in_place=True)
_activation("mish", "torch.nn.Mish", 6, "x * tanh(softplus(x)).", runs_in_place=True)


@register
class LeakyRelu(Activation):
    name = "leakyrelu"
    runs_in_place = True
    saves = ("output",)
    torch_class = "torch.nn.LeakyReLU"
    cost = 2
    doc = "max(x, 0) + slope * min(x, 0)."
    params = (Param("slope", Float(0.0), 0.01, "slope for negative inputs"),)

    def torch_kwargs(self, a, x):
        return dict(negative_slope=a["slope"])

    def describe(self, a):
        return f"leakyrelu {a['slope']:g}"


@register
class Gelu(Activation):
    name = "gelu"
    torch_class = "torch.nn.GELU"
    cost = 8
    doc = ("Gaussian error linear unit, x·Φ(x) (Hendrycks & Gimpel 2016): the erf form, or "
           "`approximate=\"tanh\"`, GPT-2's 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))) "
           "(Hugging Face's gelu_new).")
    params = (Param("approximate", Choice("none", "tanh"), "none",
                    "\"tanh\": the tanh approximation, as GPT-2 and BERT use"),)

    def flops(self, a, x, y):
        return (9 if a["approximate"] == "tanh" else self.cost) * numel(y)

    def torch_kwargs(self, a, x):
        return {} if a["approximate"] == "none" else dict(approximate="tanh")

    def describe(self, a):
        return "gelu" if a["approximate"] == "none" else "gelu (tanh)"


@register
class Elu(Activation):
    name = "elu"
    torch_class = "torch.nn.ELU"
    cost = 3
    doc = "x if x > 0 else alpha * (exp(x) - 1)."
    params = (Param("alpha", Float(0.0), 1.0, "scale of the negative part"),)

    def torch_kwargs(self, a, x):
        return dict(alpha=a["alpha"])


@register
class Softmax(Activation):
    name = "softmax"
    cost = 3  # exp, sum, divide
    saves = ("output",)
    autocast = "fp32"
    doc = ("Softmax over channels (dim 1; a sequence's or a grid's features, the last). A "
           "trailing softmax is part of the network for inference; training fuses it into the "
           "loss and trains on logits. Table notation: `soft-max`.")

    def torch(self, a, x, y):
        return TorchModule("torch.nn.Softmax", dict(dim=-1 if x.features_last else 1))
