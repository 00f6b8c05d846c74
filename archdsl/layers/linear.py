"""Fully connected layers."""

from __future__ import annotations

from .registry import LayerKind, Param, TorchModule, numel, register
from .types import Bool, Int


@register
class Linear(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "linear"
    aliases = ("fc", "FC", "dense")
    family = "linear"
    accepts_act = True
    doc = ("Fully connected layer (torch.nn.Linear). A feature-map input is flattened first, as "
           "the papers' tables imply (VGG's FC-4096 after the last maxpool). Table notation "
           "`FC-4096` is linear(4096).")
    params = (
        Param("out", Int(1), doc="output features"),
        Param("bias", Bool(), True, "add a learned bias"),
    )

    def shape(self, a, x):
        return (a["out"],)

    def params_count(self, a, x):
        return numel(x) * a["out"] + (a["out"] if a["bias"] else 0), 0

    def macs(self, a, x, y):
        return numel(x) * a["out"]

    def flops(self, a, x, y):
        return 2 * self.macs(a, x, y) + (a["out"] if a["bias"] else 0)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.Linear", dict(in_features=numel(x), out_features=a["out"],
                                                   bias=a["bias"]),
                           pre=(("flatten",),) if len(x) > 1 else ())

    def describe(self, a):
        return f"FC-{a['out']}"
