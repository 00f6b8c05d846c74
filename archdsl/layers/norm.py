"""Normalisation layers."""

from __future__ import annotations

from .registry import LayerKind, Param, TorchModule, numel, register, spatial
from .types import Bool, Float, Int


@register
class BatchNorm(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "bn"
    aliases = ("batchnorm",)
    family = "norm"
    doc = ("Batch normalisation over channels (torch.nn.BatchNorm2d; BatchNorm1d on a vector). "
           "Defaults are PyTorch's; Keras' are eps=1e-3, momentum=0.01 in PyTorch's convention. "
           "Its scale and shift are trainable; the running mean and variance are the "
           "non-trainable parameters, as Keras counts them. PyTorch's `num_batches_tracked` "
           "counter is not a parameter and is not counted.")
    params = (
        Param("eps", Float(0.0, low_inclusive=False), 1e-5, "added to the variance"),
        Param("momentum", Float(0.0, 1.0, high_inclusive=True), 0.1,
              "weight of the new batch in the running statistics (PyTorch's convention)"),
        Param("affine", Bool(), True, "learn a scale and a shift"),
    )

    def shape(self, a, x):
        return x

    def params_count(self, a, x):
        c = x[0]
        return (2 * c if a["affine"] else 0), 2 * c

    def macs(self, a, x, y):
        return 0  # not a weight multiply-add: folded into the previous conv at inference

    def flops(self, a, x, y):
        return 2 * numel(y)  # inference: one multiply and one add per element

    def torch(self, a, x, y):
        cls = "torch.nn.BatchNorm2d" if len(x) == 3 else "torch.nn.BatchNorm1d"
        return TorchModule(cls, dict(num_features=x[0], eps=a["eps"], momentum=a["momentum"],
                                     affine=a["affine"]))

    def describe(self, a):
        return "bn"


@register
class LocalResponseNorm(LayerKind):
    name = "lrn"
    aliases = ("LRN",)
    family = "norm"
    doc = ("Local response normalisation across channels (AlexNet §3.3; "
           "torch.nn.LocalResponseNorm). AlexNet used size=5, alpha=1e-4, beta=0.75, k=2.")
    params = (
        Param("size", Int(1), 5, "number of neighbouring channels"),
        Param("alpha", Float(), 1e-4, "scale"),
        Param("beta", Float(), 0.75, "exponent"),
        Param("k", Float(), 1.0, "additive constant"),
    )

    def shape(self, a, x):
        return spatial("lrn", x)  # PyTorch normalises across channels of a map, not a vector

    def params_count(self, a, x):
        return 0, 0

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        # per element: `size` squares and adds over the window, then scale, add, power, divide
        return numel(y) * (2 * a["size"] + 4)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.LocalResponseNorm", dict(size=a["size"], alpha=a["alpha"],
                                                             beta=a["beta"], k=a["k"]))

    def describe(self, a):
        return f"LRN {a['size']}"
