"""A layer kind from user code: CBAM, the Convolutional Block Attention Module (Woo, Park, Lee,
Kweon, ECCV 2018). Use it from the command line with `--plugin examples/cbam.py`, or from
Python by importing this module; specs then write `cbam`, `cbam(reduction=8)`.

The PyTorch module below is self-contained (torch only), so `archdsl compile -o model.py`
copies it into the exported source.
"""

import torch
import torch.nn.functional as F
from torch import nn

import archdsl
from archdsl.layers import LayerKind, Param, ShapeError, TorchModule, numel, spatial, types


class CBAM(nn.Module):
    """Channel attention from average- and max-pooled features through a shared MLP, then
    spatial attention from the channel-wise average and maximum through a kxk convolution."""

    def __init__(self, channels, reduction=16, kernel_size=7):
        super().__init__()
        hidden = channels // reduction
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1, bias=False), nn.ReLU(),
                                 nn.Conv2d(hidden, channels, 1, bias=False))
        self.spatial = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x):
        gates = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        x = x * torch.sigmoid(gates)
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial(pooled))


@archdsl.register_layer
class CbamLayer(LayerKind):
    name = "cbam"
    family = "attention"
    doc = "CBAM attention (Woo et al. 2018): channel then spatial gates; shape-preserving."
    params = (
        Param("reduction", types.Int(1), 16, "channel reduction of the MLP"),
        Param("kernel", types.Int(1), 7, "size of the spatial attention's convolution (odd)"),
    )

    def shape(self, a, x):
        c, h, w = spatial(self.name, x)
        if c // a["reduction"] < 1:
            raise ShapeError(f"`cbam` with reduction {a['reduction']} leaves no hidden channels "
                             f"from {c}", help="use a smaller reduction", arg="reduction")
        if a["kernel"] % 2 == 0:
            raise ShapeError("`cbam` needs an odd kernel", arg="kernel", code="E0304")
        return x

    def params_count(self, a, x):
        c = x[0]
        hidden = c // a["reduction"]
        return 2 * c * hidden + 2 * a["kernel"] ** 2, 0

    def macs(self, a, x, y):
        c, h, w = x
        hidden = c // a["reduction"]
        # the MLP runs on the pooled 1x1 maps twice (average, max); the spatial conv on HxW
        return 2 * 2 * c * hidden + 2 * a["kernel"] ** 2 * h * w

    def flops(self, a, x, y):
        # 2 FLOPs per MAC, plus pooling (2 per element), two gatings, the channel mean and max
        return 2 * self.macs(a, x, y) + 6 * numel(x)

    def torch(self, a, x, y):
        return TorchModule(f"{__name__}.CBAM", dict(channels=x[0], reduction=a["reduction"],
                                                    kernel_size=a["kernel"]))

    def describe(self, a):
        return f"CBAM /{a['reduction']}"
