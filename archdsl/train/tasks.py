"""What `archdsl train` teaches a network: to classify images (one vector of class scores per
image, cross-entropy, top-1 and top-5) or to segment them (a map of class scores per pixel,
per-pixel cross-entropy, mean IoU and pixel accuracy). The loop (loop.py) is the same; a task
says how to score a batch, what to measure, and how to report it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE, DataError
from .options import SEGMENTATION_DATA


def task_of(net) -> str:
    """The task a network's output implies: a vector is class scores, a 2-D map is scores
    per pixel."""
    from ..shapes import MAP2D

    out = net.output_shapes[net.graph.main_outputs[0]]
    return "segment" if out.layout == MAP2D else "classify"


def check_network(net, task: str) -> None:
    """`train` trains networks with one image input and one output that fits the task."""
    from ..shapes import MAP2D, TOKENS, VECTOR, show

    graph = net.graph
    if len(graph.inputs) > 1:
        raise DataError(f"`{net.name}` takes {len(graph.inputs)} inputs "
                        f"({', '.join(graph.inputs)}); archdsl train's data sets give one "
                        "image per example")
    if net.input_shape.layout == TOKENS:
        raise DataError(f"`{net.name}` takes token ids; archdsl train's data sets are images")
    if len(graph.main_outputs) > 1:
        raise DataError(f"`{net.name}` has {len(graph.main_outputs)} outputs "
                        f"({', '.join(graph.main_outputs)}); archdsl train trains classifiers "
                        "(one vector of class scores) and segmenters (one map of them)")
    out = net.output_shapes[graph.main_outputs[0]]
    if task == "classify" and out.layout != VECTOR:
        hint = (" (a map of scores per pixel: train it with --task segment)"
                if out.layout == MAP2D else "")
        raise DataError(f"`{net.name}` outputs {show(out)}, not a vector of class scores"
                        f"{hint}; to classify, end the network in `linear(classes)` (after "
                        "`gap`, `flatten` or `pick(0)`)")
    if task == "segment" and (out.layout != MAP2D or net.input_shape.layout != MAP2D):
        raise DataError(f"`{net.name}` takes {show(net.input_shape)} and outputs {show(out)}; "
                        "--task segment needs an image in and a map of class scores out "
                        "(CxHxW, one channel per class), as a U-Net gives")


def check_data(task: str, data: str) -> None:
    """A segmentation data set for segmentation, a classification one otherwise."""
    segmentation = data.startswith(SEGMENTATION_DATA)
    if task == "segment" and not segmentation:
        raise DataError(f"--task segment needs masks: --data shapes (generated) or "
                        f"masks:PATH, not {data}")
    if task == "classify" and segmentation:
        raise DataError(f"{data} labels pixels, not images: train a network that outputs a "
                        "map with --task segment")


def pixel_classes(logits, size) -> torch.Tensor:
    """The class of each pixel (N, H, W) at `size`: scores of another size are resized
    bilinearly first (an unpadded U-Net's smaller map)."""
    if tuple(logits.shape[2:]) != tuple(size):
        logits = F.interpolate(logits.float(), size=tuple(size), mode="bilinear",
                               align_corners=False)
    return logits.argmax(1)


def make(task: str, classes: int, names=None):
    """The task's object; `names`: the data set's class names, for reports."""
    return Segment(classes, names) if task == "segment" else Classify(classes, names)


class Classify:
    """Class scores per image. With `classes`, evaluation also counts the confusion matrix
    (rows the true classes, columns the predicted ones) and each class's accuracy."""

    name = "classify"
    unit = "images"
    score_key = "top1"  # which validation figure picks best.pt
    columns = ["epoch", "train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr",
               "images_per_s", "seconds"]
    panels = [("Accuracy", [("Training", "train_top1"), ("Validation", "val_top1")]),
              ("Loss", [("Training", "train_loss"), ("Validation", "val_loss")])]

    # a confusion matrix of more classes would cost more to gather than the evaluation
    CONFUSION_LIMIT = 1000

    def __init__(self, classes: int = 0, names=None):
        self.classes = classes if classes <= self.CONFUSION_LIMIT else 0
        self.names = list(names or [])

    def label(self, i: int) -> str:
        return self.names[i] if i < len(self.names) else str(i)

    def loss(self, logits, y, config):
        return F.cross_entropy(logits, y, label_smoothing=config.label_smoothing)

    def hits(self, logits, y):
        """Right answers in a batch (a tensor, left on the device) and how many were given."""
        return (logits.detach().argmax(1) == y).sum(), len(y)

    def totals(self) -> list[float]:
        # loss sum, top-1, top-5, images, then the confusion matrix
        return [0.0, 0.0, 0.0, 0.0] + [0.0] * self.classes ** 2

    def add(self, totals: list, logits, y) -> list:
        k = min(5, logits.shape[1])
        hits = logits.topk(k, dim=1).indices == y.view(-1, 1)
        sums = [totals[0] + float(F.cross_entropy(logits, y, reduction="sum")),
                totals[1] + int(hits[:, :1].sum()), totals[2] + int(hits.any(dim=1).sum()),
                totals[3] + len(y)]
        if not self.classes:
            return sums
        c = self.classes
        pairs = y.clamp_max(c - 1) * c + logits.argmax(1).clamp_max(c - 1)
        confusion = torch.bincount(pairs, minlength=c * c)[:c * c].tolist()
        return sums + [a + b for a, b in zip(totals[4:], confusion)]

    def metrics(self, totals: list) -> dict:
        loss, top1, top5, count = totals[:4]
        count = max(count, 1)
        figures = {"loss": loss / count, "top1": top1 / count, "top5": top5 / count}
        if self.classes:
            c = self.classes
            confusion = [[int(v) for v in totals[4 + i * c:4 + (i + 1) * c]] for i in range(c)]
            figures["confusion"] = confusion
            # the accuracy of each class the data holds (recall): right / its images
            figures["per_class"] = {self.label(i): row[i] / sum(row)
                                    for i, row in enumerate(confusion) if sum(row)}
        return figures

    def row(self, train_loss, train_hits, val) -> dict:
        return {"train_loss": train_loss, "train_top1": train_hits,
                "val_loss": val and val["loss"], "val_top1": val and val["top1"],
                "val_top5": val and val["top5"]}

    def line(self, row) -> str:
        text = f"train loss {row['train_loss']:.4f} acc {row['train_top1']:.2%}"
        if row.get("val_loss") is not None:
            text += (f"  val loss {row['val_loss']:.4f} top-1 {row['val_top1']:.2%} "
                     f"top-5 {row['val_top5']:.2%}")
        return text

    def result(self, final, best_val, best_test) -> dict:
        return {"test_top1": final["top1"], "test_top5": final["top5"],
                "test_loss": final["loss"], "best_val_top1": best_val,
                "best_test_top1": best_test["top1"]}

    def done(self, result) -> str:
        return (f"test top-1 {result['test_top1']:.2%}, top-5 {result['test_top5']:.2%} "
                f"(best checkpoint: val top-1 {result['best_val_top1']:.2%}, test top-1 "
                f"{result['best_test_top1']:.2%})")

    def evaluated(self, metrics) -> str:
        text = (f"loss {metrics['loss']:.4f}, top-1 {metrics['top1']:.2%}, top-5 "
                f"{metrics['top5']:.2%} (top-1 error {1 - metrics['top1']:.2%}, top-5 error "
                f"{1 - metrics['top5']:.2%})")
        per_class = metrics.get("per_class", {})
        if per_class:
            worst = sorted(per_class.items(), key=lambda kv: kv[1])
            shown = ", ".join(f"{name} {value:.1%}" for name, value in worst[:10])
            more = f" (the {min(10, len(worst))} lowest of {len(worst)})" if len(worst) > 10 \
                else ""
            text += f"\naccuracy by class{more}: {shown}"
        return text


class Segment:
    """Per-pixel classes. The masks hold class indices (255: ignored); a network whose map is
    smaller or larger than the mask (an unpadded U-Net) has its scores resized to the mask,
    bilinearly, as torchvision's FCN upsamples its output."""

    name = "segment"
    unit = "pixels"
    score_key = "miou"
    columns = ["epoch", "train_loss", "train_pixel_acc", "val_loss", "val_pixel_acc",
               "val_miou", "lr", "images_per_s", "seconds"]
    panels = [("Mean IoU and pixel accuracy",
               [("Training pixel accuracy", "train_pixel_acc"),
                ("Validation pixel accuracy", "val_pixel_acc"),
                ("Validation mean IoU", "val_miou")]),
              ("Loss", [("Training", "train_loss"), ("Validation", "val_loss")])]

    def __init__(self, classes: int, names=None):
        self.classes = classes
        self.names = list(names or [])

    @staticmethod
    def fit(logits, y):
        if logits.shape[2:] != y.shape[1:]:
            logits = F.interpolate(logits, size=y.shape[1:], mode="bilinear",
                                   align_corners=False)
        return logits

    def loss(self, logits, y, config):
        return F.cross_entropy(self.fit(logits, y), y, ignore_index=IGNORE,
                               label_smoothing=config.label_smoothing)

    def hits(self, logits, y):
        valid = y != IGNORE
        right = (self.fit(logits.detach(), y).argmax(1) == y) & valid
        return right.sum(), valid.sum()

    def totals(self) -> list[float]:
        return [0.0, 0.0] + [0.0] * self.classes ** 2  # loss sum, pixels, confusion

    def add(self, totals: list, logits, y) -> list:
        logits = self.fit(logits, y)
        valid = y != IGNORE
        loss = float(F.cross_entropy(logits, y, ignore_index=IGNORE, reduction="sum"))
        k = self.classes
        pairs = y[valid] * k + logits.argmax(1)[valid].clamp_max(k - 1)
        confusion = torch.bincount(pairs, minlength=k * k)[:k * k].tolist()
        return [totals[0] + loss, totals[1] + int(valid.sum())] + [
            a + b for a, b in zip(totals[2:], confusion)]

    def metrics(self, totals: list) -> dict:
        k = self.classes
        confusion = torch.tensor(totals[2:], dtype=torch.float64).view(k, k)
        right = confusion.diag()
        union = confusion.sum(0) + confusion.sum(1) - right
        present = union > 0  # classes neither in the masks nor predicted do not count
        iou = torch.where(present, right / union.clamp_min(1), torch.zeros_like(right))
        pixels = max(totals[1], 1)
        return {"loss": totals[0] / pixels, "pixel_acc": float(right.sum()) / pixels,
                "miou": float(iou[present].mean()) if present.any() else 0.0,
                "iou": iou.tolist()}

    def row(self, train_loss, train_hits, val) -> dict:
        return {"train_loss": train_loss, "train_pixel_acc": train_hits,
                "val_loss": val and val["loss"], "val_pixel_acc": val and val["pixel_acc"],
                "val_miou": val and val["miou"]}

    def line(self, row) -> str:
        text = f"train loss {row['train_loss']:.4f} pixel acc {row['train_pixel_acc']:.2%}"
        if row.get("val_loss") is not None:
            text += (f"  val loss {row['val_loss']:.4f} pixel acc {row['val_pixel_acc']:.2%} "
                     f"mIoU {row['val_miou']:.2%}")
        return text

    def result(self, final, best_val, best_test) -> dict:
        return {"test_miou": final["miou"], "test_pixel_acc": final["pixel_acc"],
                "test_loss": final["loss"], "test_iou": final["iou"], "best_val_miou": best_val,
                "best_test_miou": best_test["miou"]}

    def done(self, result) -> str:
        return (f"test mean IoU {result['test_miou']:.2%}, pixel accuracy "
                f"{result['test_pixel_acc']:.2%} (best checkpoint: val mIoU "
                f"{result['best_val_miou']:.2%}, test mIoU {result['best_test_miou']:.2%})")

    def evaluated(self, metrics) -> str:
        per_class = ", ".join(f"{self.names[i] if i < len(self.names) else i}: {v:.2%}"
                              for i, v in enumerate(metrics["iou"]))
        return (f"loss {metrics['loss']:.4f}, mean IoU {metrics['miou']:.2%}, pixel accuracy "
                f"{metrics['pixel_acc']:.2%} (IoU by class: {per_class})")
