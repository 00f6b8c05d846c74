"""Fully connected layers."""

from __future__ import annotations

from ..shapes import FEATURES_LAST, MAPS, SEQ, VECTOR, Shape
from .registry import LayerKind, Params, Param, TorchModule, numel, register
from .types import Bool, Int, Optional, TensorLabel

TIED = Param("tied", Optional(TensorLabel()), None,
             "share the weight of the layer labelled so (same weight shape); counted once")


@register
class Linear(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "linear"
    autocast = "low"
    aliases = ("fc", "FC", "dense")
    family = "linear"
    accepts_act = True
    doc = ("Fully connected layer (torch.nn.Linear). A feature-map input is flattened first, as "
           "the papers' tables imply (VGG's FC-4096 after the last maxpool); on a sequence or a "
           "grid it acts on each position's features (LxD to LxOUT, HxWxD to HxWxOUT). Table notation `FC-4096` is "
           "linear(4096). `tied=wte` shares the weight of the layer labelled `wte` (GPT's "
           "output layer and its token embedding, Press & Wolf 2017): counted once, there.")
    accepts = (VECTOR, *MAPS, *FEATURES_LAST)
    params = (
        Param("out", Int(1), doc="output features"),
        Param("bias", Bool(), True, "add a learned bias"),
        TIED,
    )

    def decodes(self, a, x):
        return "position" if x.layout == SEQ else None  # each position's features alone

    def shape(self, a, x):
        if x.features_last:
            return x.like((*x[:-1], a["out"]))
        return Shape((a["out"],), VECTOR)

    def in_features(self, x) -> int:
        return x[-1] if x.features_last else numel(x)

    def weight_shape(self, a, x) -> tuple[int, int]:
        return a["out"], self.in_features(x)

    def params_count(self, a, x):
        weight = 0 if a["tied"] else self.in_features(x) * a["out"]
        return Params(weight + (a["out"] if a["bias"] else 0))

    def macs(self, a, x, y):
        return numel(y) * self.in_features(x)

    def flops(self, a, x, y):
        return 2 * self.macs(a, x, y) + (numel(y) if a["bias"] else 0)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.Linear", dict(in_features=self.in_features(x),
                                                   out_features=a["out"], bias=a["bias"]),
                           pre=(("flatten",),) if x.is_map else ())

    def describe(self, a):
        return f"FC-{a['out']}" + (f", tied to {a['tied']}" if a["tied"] else "")
