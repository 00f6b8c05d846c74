"""archdsl's own small PyTorch modules, for layers PyTorch lacks as a single module.

This file imports only torch: the standalone source exporter copies these classes verbatim
into the files it writes.
"""

import torch
from torch import nn


class SeparableConv2d(nn.Module):
    """Depthwise then pointwise convolution, as Keras' SeparableConv2D (one bias, at the end)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 depth_multiplier=1, bias=True):
        super().__init__()
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(in_channels, mid, kernel_size, stride, padding, dilation,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class DropPath(nn.Module):
    """Stochastic depth, per sample (torchvision.ops.StochasticDepth with mode 'row')."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self):
        return f"p={self.p}"


class AvgPool2dSame(nn.Module):
    """Average pooling with padding `same` where it is uneven (even kernels), leaving the
    padded pixels out of each average as Keras does. PyTorch pads both sides alike, so this
    pads explicitly, then divides each window's sum by the number of real pixels in it:
    pooling the input and pooling a map of ones share one divisor per window, which cancels.
    `padding` is (left, right, top, bottom), as torch.nn.functional.pad takes it."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.padding = tuple(padding)

    def _pool(self, x):
        return nn.functional.avg_pool2d(nn.functional.pad(x, self.padding), self.kernel_size,
                                        self.stride)

    def forward(self, x):
        return self._pool(x) / self._pool(torch.ones_like(x[:1, :1]))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"
