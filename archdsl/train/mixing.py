"""Mixup (Zhang et al. 2018) and CutMix (Yun et al. 2019), as timm applies them: each batch is
blended with a shuffled copy of itself, and the loss with the two sets of labels in the same
proportion. With both, each batch takes one of them at random (timm's switch_prob 0.5)."""

from __future__ import annotations

import numpy as np
import torch


def mix(x: torch.Tensor, y: torch.Tensor, mixup: float, cutmix: float,
        generator: torch.Generator):
    """(mixed images, the partners' labels, λ): the loss is λ·loss(y) + (1 − λ)·loss(partners).
    The random draws come from `generator` (a CPU generator whose state checkpoints keep, so a
    resumed run mixes as the uninterrupted one would)."""
    draws = torch.randint(0, 2 ** 31 - 1, (2,), generator=generator).tolist()
    rng = np.random.default_rng(draws)
    use_cutmix = cutmix > 0 and (mixup <= 0 or rng.random() < 0.5)
    lam = float(rng.beta(cutmix, cutmix) if use_cutmix else rng.beta(mixup, mixup))
    order = torch.randperm(len(x), generator=generator).to(x.device, non_blocking=True)
    if not use_cutmix:
        return lam * x + (1 - lam) * x[order], y[order], lam
    height, width = x.shape[-2:]
    # a box of (1 - λ) of the image's area, centred anywhere, clipped to the image; λ is then
    # what is left of the image's own pixels
    cut_h, cut_w = int(height * np.sqrt(1 - lam)), int(width * np.sqrt(1 - lam))
    cy, cx = int(rng.integers(height)), int(rng.integers(width))
    top, bottom = max(cy - cut_h // 2, 0), min(cy + cut_h // 2, height)
    left, right = max(cx - cut_w // 2, 0), min(cx + cut_w // 2, width)
    mixed = x.clone()
    mixed[..., top:bottom, left:right] = x[order][..., top:bottom, left:right]
    lam = 1 - (bottom - top) * (right - left) / (height * width)
    return mixed, y[order], lam
