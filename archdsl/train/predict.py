"""Predictions of a trained classifier on image files: `archdsl predict` and
`archdsl.load("best.pt").predict(...)`. The images go through the preprocessing the run
trained with (preprocess.py), recorded in its checkpoint."""

from __future__ import annotations

from pathlib import Path

import torch

from .preprocess import Preprocess

# What `predict` reads in a folder: the formats PIL opens that image data sets use
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm",
                  ".pgm")


class PredictError(Exception):
    """Images or a model that predict cannot use: the message says which and why."""


def image_files(paths) -> list[Path]:
    """Image files named, or found in the folders named (recursively, in sorted order)."""
    files = []
    for path in map(Path, [paths] if isinstance(paths, (str, Path)) else paths):
        if path.is_dir():
            found = sorted(p for p in path.rglob("*")
                           if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
            if not found:
                raise PredictError(f"{path} holds no image files ("
                                   + ", ".join(IMAGE_SUFFIXES[:4]) + ", ...)")
            files += found
        elif path.is_file():
            files.append(path)
        else:
            raise PredictError(f"no such image file or folder: {path}")
    return files


def read_images(preprocess: Preprocess, files: list[Path]) -> torch.Tensor:
    """The files as one uint8 batch at the size the network's data was held at."""
    images = []
    for file in files:
        try:
            images.append(preprocess.read(file))
        except (OSError, ValueError) as error:
            reason = error.strerror if isinstance(error, OSError) and error.strerror else error
            raise PredictError(f"cannot read {file}: {reason}") from None
    return torch.stack(images)


def check_output(net, preprocess: Preprocess) -> int:
    """The number of class scores a network gives (per image, or per pixel of a map for a
    segmentation run); PredictError if its output is not that."""
    outputs = net.graph.main_outputs
    shape = net.output_shapes[outputs[0]]
    rank = 3 if preprocess.task == "segment" else 1
    if len(outputs) != 1 or len(shape) != rank:
        what = "a map of class scores" if rank == 3 else "class scores"
        raise PredictError(f"predict reads {what}, but `{net.name}` outputs "
                           + ", ".join(f"{o} {'x'.join(map(str, net.output_shapes[o]))}"
                                       for o in outputs))
    if tuple(net.input_shape) != tuple(preprocess.input_shape):
        raise PredictError(f"its preprocessing makes {'x'.join(map(str, preprocess.input_shape))} "
                           f"inputs, but `{net.name}` takes "
                           f"{'x'.join(map(str, net.input_shape))}")
    return shape[0]


class Predictor:
    """A trained network with its preprocessing: call it with image files, folders, or a
    uint8 batch (N, C, H, W) at the held size. A classifier gives, per image, the `top_k`
    classes as dicts of label, index and probability, the most probable first; a segmenter
    (a run of --task segment) gives per image a dict: `mask`, the class of each pixel (H, W)
    at the held size, and `classes`, the share of the image each class covers (label, index,
    fraction), the largest first."""

    def __init__(self, net, state_dict: dict, preprocess: Preprocess, device="cpu"):
        self.classes = check_output(net, preprocess)
        self.preprocess = preprocess
        self.device = torch.device(device)
        self.model = net.build(logits=True).to(self.device).eval()
        try:
            self.model.load_state_dict(state_dict)
        except RuntimeError:  # names or shapes that do not fit: an altered checkpoint
            raise PredictError("its weights do not fit the network it describes") from None

    def label(self, index: int) -> str:
        names = self.preprocess.classes
        return names[index] if index < len(names) else str(index)

    def probabilities(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """Softmax probabilities (N, classes) of a uint8 batch."""
        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                x = self.preprocess(images[start:start + batch_size].to(self.device))
                out.append(torch.softmax(self.model(x).float(), dim=1).cpu())
        return torch.cat(out) if out else torch.zeros(0, self.classes)

    def masks(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        """The class of each pixel (N, H, W) of a uint8 batch, at its size."""
        from .tasks import pixel_classes

        out = []
        with torch.no_grad():
            for start in range(0, len(images), batch_size):
                chunk = images[start:start + batch_size].to(self.device)
                logits = self.model(self.preprocess(chunk)).float()
                out.append(pixel_classes(logits, chunk.shape[2:]).cpu())
        return torch.cat(out)

    def __call__(self, images, top_k: int = 5, batch_size: int = 256) -> list:
        if not isinstance(images, torch.Tensor):
            images = read_images(self.preprocess, image_files(images))
        if images.dim() == 3:
            images = images.unsqueeze(0)
        if self.preprocess.task == "segment":
            results = []
            for mask in self.masks(images, batch_size):
                counts = torch.bincount(mask.flatten(), minlength=self.classes)
                shares = [{"label": self.label(i), "index": i,
                           "fraction": float(c) / mask.numel()}
                          for i, c in enumerate(counts.tolist()) if c]
                results.append({"mask": mask, "classes": sorted(
                    shares, key=lambda s: -s["fraction"])})
            return results
        probs = self.probabilities(images, batch_size)
        values, indices = probs.topk(min(top_k, probs.shape[1]), dim=1)
        return [[{"label": self.label(int(i)), "index": int(i), "probability": float(p)}
                 for p, i in zip(row_p, row_i)] for row_p, row_i in zip(values, indices)]
