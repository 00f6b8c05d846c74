"""Pictures of results: a classifier's confusion matrix (matplotlib), and for segmentation
masks as colours and a run's overlays.png (test images with their true and predicted masks,
drawn with Pillow alone)."""

from __future__ import annotations

from pathlib import Path

import torch

# Colours of classes 0, 1, 2, ... (0, the background, black); ignored pixels are white.
PALETTE = [(0, 0, 0), (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200),
           (245, 130, 48), (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60),
           (250, 190, 212), (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200),
           (128, 0, 0), (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128)]


def colour(mask: torch.Tensor) -> torch.Tensor:
    """A mask (H, W) of class indices as an RGB image (H, W, 3) uint8."""
    table = torch.tensor(PALETTE * (256 // len(PALETTE) + 1), dtype=torch.uint8)[:256]
    table[255] = torch.tensor([255, 255, 255], dtype=torch.uint8)
    return table[mask.clamp(0, 255).long().cpu()]


def predicted_masks(model, images: torch.Tensor, pipeline, device) -> torch.Tensor:
    """The class of each pixel (N, H, W) for stored images (N, C, H, W), at their size."""
    from .tasks import pixel_classes

    with torch.no_grad():
        logits = model.eval()(pipeline(images.to(device)))
        if isinstance(logits, (tuple, list)):
            logits = logits[0]
    return pixel_classes(logits, images.shape[2:]).cpu()


def write_overlays(path: Path, model, data, pipeline, device, classes: int, count: int = 8):
    """A grid of up to `count` test images: the image, its true mask and the predicted one,
    each mask laid over the image at half strength."""
    from PIL import Image

    from ..files import write_output

    images = data.images[:count]
    predicted = predicted_masks(model, images, pipeline, device)
    rows = []
    for image, truth, guess in zip(images.cpu(), data.labels[:count].cpu(), predicted):
        rgb = image.expand(3, -1, -1) if image.shape[0] == 1 else image[:3]
        rgb = rgb.permute(1, 2, 0).float()
        cells = [rgb] + [0.5 * rgb + 0.5 * colour(m).float() for m in (truth, guess)]
        rows.append(torch.cat(cells, dim=1))
    grid = torch.cat(rows, dim=0).clamp(0, 255).to(torch.uint8).numpy()
    picture = Image.fromarray(grid)
    if picture.height < 256:  # small images: scaled up, pixels kept sharp
        scale = max(256 // picture.height, 1)
        picture = picture.resize((picture.width * scale, picture.height * scale),
                                 Image.Resampling.NEAREST)
    write_output(path, lambda tmp: picture.save(tmp, format="PNG"))


def confusion_plot(path: Path, confusion: list, names: list) -> None:
    """The confusion matrix as a picture: rows the true classes, columns the predicted ones,
    each row as fractions of its images (its counts written in when there are few classes).
    Needs matplotlib (the `train` extra): MissingExtra otherwise."""
    from ..extras import require
    from ..files import write_output

    require("matplotlib", "the confusion matrix picture")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    counts = np.asarray(confusion, dtype=np.float64)  # plain numbers: no tensor is read
    k = len(counts)
    rows = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    side = min(max(4.0, 0.45 * k + 2), 24.0)
    fig, ax = plt.subplots(figsize=(side + 1, side))
    image = ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
    if k <= 40:
        labels = [str(n) for n in names[:k]] + [str(i) for i in range(len(names), k)]
        ax.set_xticks(range(k), labels, rotation=90 if k > 10 else 0)
        ax.set_yticks(range(k), labels)
    if k <= 20:
        for i in range(k):
            for j in range(k):
                if counts[i, j]:
                    ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                            color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(f"Confusion matrix ({int(counts.sum()):,} images)")
    fig.tight_layout()
    try:
        write_output(path, lambda tmp: fig.savefig(tmp, dpi=100))
    finally:
        plt.close(fig)
