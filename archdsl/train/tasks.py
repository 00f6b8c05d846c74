"""What `archdsl train` teaches a network: to classify images (one vector of class scores per
image, cross-entropy, top-1 and top-5), to segment them (a map of class scores per pixel,
per-pixel cross-entropy, mean IoU and pixel accuracy), to model text (scores over the
vocabulary at each position for the next token, cross-entropy per token, perplexity), or to
write a target text for a source text (a sequence-to-sequence model: the same, per target
token, and the share of targets written exactly). The loop (loop.py) is the same; a task
says what the network's inputs are, how to score a batch, what to measure, and how to report
it."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .data import IGNORE, DataError
from .options import PAIRS_DATA, SEGMENTATION_DATA, TEXT_DATA


def task_of(net) -> str:
    """The task a network's output implies: a vector is class scores, a 2-D map is scores
    per pixel, a sequence from token ids is scores of the next token at each position."""
    from ..shapes import MAP2D, SEQ, TOKENS

    out = net.output_shapes[net.graph.main_outputs[0]]
    inputs = list(net.graph.input_shapes().values())
    if len(inputs) == 2 and all(x.layout == TOKENS for x in inputs) and out.layout == SEQ \
            and len(net.graph.main_outputs) == 1:  # not an encoder's vectors and pooled one
        return "seq2seq"
    if net.input_shape.layout == TOKENS and out.layout == SEQ:
        return "lm"
    return "segment" if out.layout == MAP2D else "classify"


def target_shape(net):
    """A sequence-to-sequence network's target input (its second); None for other networks."""
    inputs = list(net.graph.input_shapes().values())
    return inputs[1] if len(inputs) == 2 else None


def scores(net) -> int:
    """How many classes the network scores: a vector's features, a map's channels, a
    sequence's features at each position (a language model's vocabulary)."""
    from ..shapes import SEQ

    out = net.output_shapes[net.graph.main_outputs[0]]
    return out[-1] if out.layout == SEQ else out[0]


def check_network(net, task: str) -> None:
    """`train` trains networks with one image input and one output that fits the task."""
    from ..shapes import MAP2D, TOKENS, VECTOR, show

    graph = net.graph
    if task == "seq2seq":
        _check_sequence_to_sequence(net)
        return
    if len(graph.inputs) > 1:
        raise DataError(f"`{net.name}` takes {len(graph.inputs)} inputs "
                        f"({', '.join(graph.inputs)}); archdsl train's data sets give one "
                        "image or text per example, or pairs of texts to a network of two "
                        "token inputs, a source and a target (--task seq2seq)")
    if task == "lm":
        _check_language_model(net)
        return
    if net.input_shape.layout == TOKENS:
        raise DataError(f"`{net.name}` takes token ids, which archdsl train's text data sets "
                        "give to language models only (--task lm: a network that outputs "
                        "scores over its vocabulary at each position)")
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


def _check_language_model(net) -> None:
    """A language model reads token ids, scores its whole vocabulary at each position, and
    sees no later position: otherwise it would learn to copy the next token, not predict it."""
    from ..shapes import SEQ, TOKENS, show

    graph = net.graph
    out = net.output_shapes[graph.main_outputs[0]]
    x = net.input_shape
    if x.layout != TOKENS or out.layout != SEQ or out[0] != x[0]:
        raise DataError(f"`{net.name}` takes {show(x)} and outputs {show(out)}; --task lm needs "
                        "token ids in and scores over the vocabulary at each of their positions "
                        "out (a GPT: `input 256 tokens of 65` ... `linear(65)`)")
    if out[1] != x.vocab:
        raise DataError(f"`{net.name}` reads tokens of a vocabulary of {x.vocab:,} but outputs "
                        f"{out[1]:,} scores at each position; a language model scores every "
                        f"token of its vocabulary: end it in linear({x.vocab})")
    for name, node in graph.layers():
        args = node["args"]
        if node["kind"] == "attention" and not args.get("causal"):
            reason = "attends to later positions (causal=false)"
            fix = "write attention(heads, causal=true)"
        elif node["kind"] in ("lstm", "gru") and args.get("bidirectional"):
            reason = "reads the sequence backwards too (bidirectional=true)"
            fix = "use a one-way layer (bidirectional=false)"
        else:
            continue
        raise DataError(f"`{name}` {reason}: a language model trained to predict each next "
                        f"token would see it; {fix}")


def _check_sequence_to_sequence(net) -> None:
    """A source and a target of token ids in, scores over the vocabulary at each target
    position out, and a decoder that sees no later target position (else it would learn to
    copy the next token). The encoder may see its whole source."""
    from ..shapes import SEQ, TOKENS, show

    graph = net.graph
    inputs = list(graph.input_shapes().values())
    out = net.output_shapes[graph.main_outputs[0]]
    if not (len(inputs) == 2 and all(x.layout == TOKENS for x in inputs)
            and out.layout == SEQ and out[0] == inputs[1][0] and len(graph.main_outputs) == 1):
        shown = ", ".join(show(x) for x in inputs)
        raise DataError(f"`{net.name}` takes {shown} and outputs "
                        f"{', '.join(show(net.output_shapes[o]) for o in graph.main_outputs)}; "
                        "--task seq2seq needs two inputs of token ids, a source and a target, "
                        "and scores over the vocabulary at each target position out (the "
                        "Transformer of specs/transformer.arch)")
    if out[1] != inputs[1].vocab:
        raise DataError(f"`{net.name}` reads targets of a vocabulary of {inputs[1].vocab:,} "
                        f"but outputs {out[1]:,} scores at each position; it must score every "
                        f"token of its vocabulary: end it in linear({inputs[1].vocab})")
    import networkx

    seen = networkx.descendants(graph.graph, graph.inputs[list(graph.inputs)[1]])
    for name, node in graph.layers():
        if name in seen and node["kind"] == "attention" and not node["args"].get("causal"):
            raise DataError(f"`{name}` reads the target and attends to later positions "
                            "(causal=false): a decoder trained to predict each next token "
                            "would see it; write attention(heads, causal=true)")


def too_few_scores(net, task: str, data: str, classes: int) -> str:
    """The message for a data set of more classes (characters) than the network scores."""
    if task == "seq2seq":
        return (f"{data} needs a vocabulary of {classes} tokens (3 special ones and its "
                f"{classes - 3} distinct characters) but `{net.name}` reads {scores(net)}; "
                f"set it with --set vocab={classes}")
    if task == "lm":
        return (f"{data} holds {classes} distinct characters but `{net.name}` reads a "
                f"vocabulary of {scores(net)}; set it with --set vocab={classes}")
    return (f"{data} has {classes} classes but `{net.name}` outputs {scores(net)} scores; set "
            f"it with --set classes={classes}")


def check_data(task: str, data: str) -> None:
    """A segmentation data set for segmentation, a text for language models, a classification
    one otherwise."""
    pairs = data.startswith(PAIRS_DATA)
    if task == "seq2seq" and not pairs:
        raise DataError(f"--task seq2seq learns from pairs of texts: --data reverse "
                        f"(generated) or pairs:PATH (a source, a tab and a target per line), "
                        f"not {data}")
    if task != "seq2seq" and pairs:
        raise DataError(f"{data} holds pairs of texts: train a network of two token inputs, a "
                        "source and a target, that scores the target's next token at each "
                        "position (--task seq2seq; specs/transformer.arch)")
    if pairs:
        return
    text = data.startswith(TEXT_DATA)
    if task == "lm" and not text:
        raise DataError(f"--task lm learns from text: --data text:PATH (a UTF-8 file), not "
                        f"{data}")
    if task != "lm" and text:
        raise DataError(f"{data} is text: train a network that reads token ids and scores "
                        "the next one at each position (--task lm)")
    if text:
        return
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


def make(task: str, classes: int, names=None, net=None):
    """The task's object; `names`: the data set's class names, for reports; `net`: the
    network it trains (a sequence-to-sequence network's source length splits its rows)."""
    if task == "seq2seq":
        return Seq2Seq(classes, names, net.input_shape[0] if net is not None else None)
    if task == "lm":
        return LanguageModel(classes, names)
    return Segment(classes, names) if task == "segment" else Classify(classes, names)


class Task:
    """What every task shares: the network's inputs from a batch's rows (one tensor)."""

    def inputs(self, x) -> tuple:
        return (x,)


class Classify(Task):
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

    def train_score(self, row) -> float:
        """The score that picks best.pt when there is no validation split."""
        return row["train_top1"]

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


class Segment(Task):
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

    def train_score(self, row) -> float:
        return row["train_pixel_acc"]

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


class LanguageModel(Task):
    """The next token at each position: the scores at position i predict token i + 1
    (cross-entropy averaged over tokens, in nats). Figures: the loss, its perplexity
    (exp(loss)) and the accuracy of the top-scored token. The best checkpoint has the lowest
    validation loss: its score is exp(-loss), the geometric mean of the probability the
    network gives each next token (higher is better, as the other tasks' scores)."""

    name = "lm"
    unit = "tokens"
    speed = "seq/s"  # sequences (windows of the context's length) per second
    score_key = "likelihood"
    columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_perplexity",
               "val_accuracy", "lr", "images_per_s", "seconds"]
    panels = [("Next-token accuracy", [("Training", "train_accuracy"),
                                       ("Validation", "val_accuracy")]),
              ("Loss (nats per token)", [("Training", "train_loss"), ("Validation", "val_loss")])]

    def __init__(self, classes: int = 0, names=None):
        self.classes = classes
        # the text's characters by token id, or a Hugging Face tokenizer (train/text.py)
        self.names = names if hasattr(names, "decode") else list(names or [])

    def loss(self, logits, y, config):
        return F.cross_entropy(logits.flatten(0, 1), y.flatten(),
                               label_smoothing=config.label_smoothing)

    def hits(self, logits, y):
        return (logits.detach().argmax(-1) == y).sum(), y.numel()

    def totals(self) -> list[float]:
        return [0.0, 0.0, 0.0]  # loss sum, right tokens, tokens

    def add(self, totals: list, logits, y) -> list:
        loss = float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), reduction="sum"))
        right = int((logits.argmax(-1) == y).sum())
        return [totals[0] + loss, totals[1] + right, totals[2] + y.numel()]

    def metrics(self, totals: list) -> dict:
        import math

        loss = totals[0] / max(totals[2], 1)
        return {"loss": loss, "perplexity": math.exp(min(loss, 700.0)),
                "accuracy": totals[1] / max(totals[2], 1), "likelihood": math.exp(-loss)}

    def train_score(self, row) -> float:
        import math

        return math.exp(-row["train_loss"])

    def row(self, train_loss, train_hits, val) -> dict:
        return {"train_loss": train_loss, "train_accuracy": train_hits,
                "val_loss": val and val["loss"], "val_perplexity": val and val["perplexity"],
                "val_accuracy": val and val["accuracy"]}

    def line(self, row) -> str:
        text = f"train loss {row['train_loss']:.4f} acc {row['train_accuracy']:.2%}"
        if row.get("val_loss") is not None:
            text += (f"  val loss {row['val_loss']:.4f} perplexity "
                     f"{_perplexity(row['val_perplexity'])} acc {row['val_accuracy']:.2%}")
        return text

    def result(self, final, best_val, best_test) -> dict:
        return {"test_loss": final["loss"], "test_perplexity": final["perplexity"],
                "test_accuracy": final["accuracy"],
                # best_val: the best epoch's score, exp(-loss), of validation (or training)
                "best_val_perplexity": 1 / best_val if best_val > 0 else None,
                "best_test_perplexity": best_test["perplexity"]}

    def done(self, result) -> str:
        best = result["best_val_perplexity"]
        return (f"test perplexity {_perplexity(result['test_perplexity'])} (loss "
                f"{result['test_loss']:.4f} nats per token), next-token accuracy "
                f"{result['test_accuracy']:.2%} (best checkpoint: "
                + (f"val perplexity {_perplexity(best)}, " if best is not None else "")
                + f"test perplexity {_perplexity(result['best_test_perplexity'])})")

    def evaluated(self, metrics) -> str:
        return (f"loss {metrics['loss']:.4f} nats per token, perplexity "
                f"{_perplexity(metrics['perplexity'])}, next-token accuracy "
                f"{metrics['accuracy']:.2%}")


class Seq2Seq(LanguageModel):
    """The next target token at each target position, the decoder reading the target so far
    (teacher forcing): cross-entropy averaged over the target's tokens and its end token,
    padding not scored. Figures: the loss, its perplexity, the accuracy of the top-scored
    token, and `exact`, the share of targets whose every token (the end token included) is
    the top-scored: those that greedy decoding (`archdsl generate`) writes exactly. A row of
    a batch holds the source, then the target the decoder reads (train/pairs.py)."""

    name = "seq2seq"
    unit = "tokens"
    speed = "pairs/s"
    columns = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_perplexity",
               "val_accuracy", "val_exact", "lr", "images_per_s", "seconds"]
    panels = [("Target-token accuracy", [("Training", "train_accuracy"),
                                         ("Validation", "val_accuracy"),
                                         ("Validation, whole targets", "val_exact")]),
              ("Loss (nats per token)", [("Training", "train_loss"), ("Validation", "val_loss")])]

    def __init__(self, classes: int = 0, names=None, source_length: int | None = None):
        super().__init__(classes, names)
        self.source_length = source_length  # where a row's target starts

    def inputs(self, x) -> tuple:
        return x[:, :self.source_length], x[:, self.source_length:]

    def loss(self, logits, y, config):
        from .text import Pairs

        return F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=Pairs.PAD,
                               label_smoothing=config.label_smoothing)

    def hits(self, logits, y):
        from .text import Pairs

        scored = y != Pairs.PAD
        return ((logits.detach().argmax(-1) == y) & scored).sum(), scored.sum()

    def totals(self) -> list[float]:
        return [0.0, 0.0, 0.0, 0.0, 0.0]  # loss sum, right tokens, tokens, exact, targets

    def add(self, totals: list, logits, y) -> list:
        from .text import Pairs

        scored = y != Pairs.PAD
        loss = float(F.cross_entropy(logits.flatten(0, 1), y.flatten(), ignore_index=Pairs.PAD,
                                     reduction="sum"))
        right = (logits.argmax(-1) == y) | ~scored
        return [totals[0] + loss, totals[1] + int((right & scored).sum()),
                totals[2] + int(scored.sum()), totals[3] + int(right.all(1).sum()),
                totals[4] + len(y)]

    def metrics(self, totals: list) -> dict:
        return {**super().metrics(totals[:3]), "exact": totals[3] / max(totals[4], 1)}

    def row(self, train_loss, train_hits, val) -> dict:
        return {**super().row(train_loss, train_hits, val), "val_exact": val and val["exact"]}

    def line(self, row) -> str:
        text = super().line(row)
        return text + (f" exact {row['val_exact']:.2%}" if row.get("val_exact") is not None
                       else "")

    def result(self, final, best_val, best_test) -> dict:
        return {**super().result(final, best_val, best_test), "test_exact": final["exact"],
                "best_test_exact": best_test["exact"]}

    def done(self, result) -> str:
        return (f"test targets written exactly {result['test_exact']:.2%}, perplexity "
                f"{_perplexity(result['test_perplexity'])}, token accuracy "
                f"{result['test_accuracy']:.2%} (best checkpoint: targets written exactly "
                f"{result['best_test_exact']:.2%})")

    def evaluated(self, metrics) -> str:
        return (f"targets written exactly {metrics['exact']:.2%}; loss {metrics['loss']:.4f} "
                f"nats per token, perplexity {_perplexity(metrics['perplexity'])}, token "
                f"accuracy {metrics['accuracy']:.2%}")


def _perplexity(value: float) -> str:
    """1.07, 18.46, 2.8e+06: two decimals while they mean something."""
    return f"{value:.2f}" if value < 1e4 else f"{value:.3g}"
