"""Normalisation layers."""

from __future__ import annotations

from ..shapes import FEATURES_LAST, MAPS, SEQ, VECTOR
from .registry import LayerKind, Params, Param, ShapeError, TorchModule, numel, register
from .types import Bool, Float, Int, Optional


@register
class BatchNorm(LayerKind):
    output_disposable = True  # its backward does not read its output
    name = "bn"
    aliases = ("batchnorm",)
    family = "norm"
    doc = ("Batch normalisation over channels (torch.nn.BatchNorm2d; BatchNorm1d on a vector "
           "or a 1-D map, BatchNorm3d on a volume). "
           "Defaults are PyTorch's; Keras' are eps=1e-3, momentum=0.01 in PyTorch's convention. "
           "Its scale and shift are trainable; the running mean and variance are the "
           "non-trainable parameters, as Keras counts them. PyTorch's `num_batches_tracked` "
           "counter is not a parameter and is not counted. `frozen=true` is torchvision's "
           "FrozenBatchNorm2d (its detection backbones): scale, shift, mean and variance are "
           "all fixed buffers, in training too.")
    params = (
        Param("eps", Float(0.0, low_inclusive=False), 1e-5, "added to the variance"),
        Param("momentum", Float(0.0, 1.0, high_inclusive=True), 0.1,
              "weight of the new batch in the running statistics (PyTorch's convention)"),
        Param("affine", Bool(), True, "learn a scale and a shift"),
        Param("frozen", Bool(), False, "all four tensors fixed buffers (FrozenBatchNorm2d)"),
    )
    # not sequences: BatchNorm1d on (N, L, D) would normalise over positions, not features
    accepts = (VECTOR, *MAPS)

    def saved(self, a):
        # FrozenBatchNorm2d is x * scale + shift with fixed buffers: nothing of x is kept
        return () if a["frozen"] else self.saves

    def shape(self, a, x):
        return x

    def params_count(self, a, x):
        c = x[0]
        if a["frozen"]:
            return Params(buffers=4 * c)
        return Params(2 * c if a["affine"] else 0, buffers=2 * c)

    def macs(self, a, x, y):
        return 0  # not a weight multiply-add: folded into the previous conv at inference

    def flops(self, a, x, y):
        return 2 * numel(y)  # inference: one multiply and one add per element

    def torch(self, a, x, y):
        if a["frozen"]:
            return TorchModule("archdsl.backends.torch_modules.FrozenBatchNorm",
                               dict(num_features=x[0], eps=a["eps"]))
        cls = f"torch.nn.BatchNorm{max(len(x.spatial), 1)}d"
        return TorchModule(cls, dict(num_features=x[0], eps=a["eps"], momentum=a["momentum"],
                                     affine=a["affine"]))

    def describe(self, a):
        return "frozen bn" if a["frozen"] else "bn"


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

    accepts = MAPS  # PyTorch normalises across the channels of a map, not a vector

    def saved_extra(self, a, x, y):
        # PyTorch's composite keeps the padded squares (for the window average), the
        # denominator and its power
        return ((numel(y), "act"),) * 3

    def shape(self, a, x):
        return x

    def params_count(self, a, x):
        return Params()

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


# ---- normalisations of modern networks -------------------------------------------------------
# Their FLOPs: 4 per element to normalise (the mean's add, subtract, the variance's square and
# add, then a divide by the root, counted once per element) and 2 more with a scale and shift.


class _Norm(LayerKind):
    family = "norm"
    each_position = False  # normalises each position's features alone (layer and RMS norms)

    def decodes(self, a, x):
        return "position" if self.each_position and x.layout == SEQ else None
    output_disposable = False  # their backward reads their output or statistics of it
    autocast = "fp32"  # autocast runs layer_norm and group_norm in fp32

    def shape(self, a, x):
        return x

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return numel(y) * (6 if a.get("affine") else 4)


@register
class LayerNorm(_Norm):
    name = "layernorm"
    each_position = True
    aliases = ("ln",)
    doc = ("Layer normalisation (Ba et al. 2016) over the features at each position: a "
           "sequence's or a grid's D features or a vector's (torch.nn.LayerNorm(D)); on a map, "
           "the channels "
           "at each pixel, as ConvNeXt's LayerNorm2d (its scale and shift are C each, so "
           "torchvision's weights load). The scale and shift are trainable.")
    params = (
        Param("eps", Float(0.0, low_inclusive=False), 1e-5, "added to the variance"),
        Param("affine", Bool(), True, "learn a scale and a shift"),
    )
    accepts = (*FEATURES_LAST, VECTOR, *MAPS)

    def params_count(self, a, x):
        return Params(2 * x.features if a["affine"] else 0)

    def torch(self, a, x, y):
        cls = ("archdsl.backends.torch_modules.ChannelLayerNorm" if x.is_map
               else "torch.nn.LayerNorm")
        return TorchModule(cls, dict(normalized_shape=x.features, eps=a["eps"],
                                     elementwise_affine=a["affine"]))

    def describe(self, a):
        return "layernorm"


@register
class RMSNorm(_Norm):
    name = "rmsnorm"
    each_position = True
    doc = ("Root-mean-square normalisation (Zhang & Sennrich 2019) over the features at each "
           "position of a sequence, a grid or a vector (torch.nn.RMSNorm): x / rms(x) * scale, no "
           "shift. `eps=none` is PyTorch's default (the dtype's machine epsilon).")
    params = (
        Param("eps", Optional(Float(0.0, low_inclusive=False)), None, "added to the mean square"),
        Param("affine", Bool(), True, "learn a scale"),
    )
    accepts = (*FEATURES_LAST, VECTOR)

    def params_count(self, a, x):
        return Params(x.features if a["affine"] else 0)

    def saved_extra(self, a, x, y):
        # PyTorch's composite: x·rsqrt(mean(x²) + eps) is kept for the scale's gradient
        return ((numel(y), "act"),) if a["affine"] else ()

    def flops(self, a, x, y):
        return numel(y) * (4 if a["affine"] else 3)  # square, add, divide (+ scale)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.RMSNorm", dict(normalized_shape=x.features, eps=a["eps"],
                                                   elementwise_affine=a["affine"]))


@register
class GroupNorm(_Norm):
    name = "groupnorm"
    doc = ("Group normalisation (Wu & He 2018, torch.nn.GroupNorm): a map's channels in "
           "`groups` groups, each normalised over its channels and all positions. "
           "`groupnorm(1)` normalises each sample as a whole; `groupnorm(C)` is instance norm "
           "with a learned scale.")
    params = (
        Param("groups", Int(1), doc="channel groups; must divide the channels"),
        Param("eps", Float(0.0, low_inclusive=False), 1e-5, "added to the variance"),
        Param("affine", Bool(), True, "learn a scale and a shift per channel"),
    )
    accepts = MAPS

    def shape(self, a, x):
        if x[0] % a["groups"]:
            raise ShapeError(f"`groups={a['groups']}` must divide the {x[0]} channels",
                             help="choose a number of groups that divides the channels",
                             arg="groups", code="E0405")
        return x

    def params_count(self, a, x):
        return Params(2 * x[0] if a["affine"] else 0)

    def torch(self, a, x, y):
        return TorchModule("torch.nn.GroupNorm", dict(num_groups=a["groups"], num_channels=x[0],
                                                     eps=a["eps"], affine=a["affine"]))

    def describe(self, a):
        return f"groupnorm {a['groups']}"


@register
class InstanceNorm(_Norm):
    name = "instancenorm"
    doc = ("Instance normalisation (Ulyanov et al. 2016; torch.nn.InstanceNorm1d/2d/3d by the "
           "map's rank): each channel of each sample over its positions. PyTorch's defaults: "
           "no scale or shift, no running statistics (`track=true` keeps them, counted as "
           "non-trainable as bn's are).")
    params = (
        Param("eps", Float(0.0, low_inclusive=False), 1e-5, "added to the variance"),
        Param("momentum", Float(0.0, 1.0, high_inclusive=True), 0.1,
              "weight of the new batch in the running statistics"),
        Param("affine", Bool(), False, "learn a scale and a shift per channel"),
        Param("track", Bool(), False, "keep running statistics for inference"),
    )
    accepts = MAPS

    def params_count(self, a, x):
        return Params(2 * x[0] if a["affine"] else 0, buffers=2 * x[0] if a["track"] else 0)

    def torch(self, a, x, y):
        return TorchModule(f"torch.nn.InstanceNorm{len(x.spatial)}d", dict(
            num_features=x[0], eps=a["eps"], momentum=a["momentum"], affine=a["affine"],
            track_running_stats=a["track"]))
