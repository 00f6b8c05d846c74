"""The options of `archdsl train`, their types and their rules — torch-free, so that
`archdsl check` can validate a spec's `recipe` lines without importing PyTorch."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

DATASETS = ("digits", "mnist", "fashion-mnist", "cifar10", "cifar100", "fake", "shapes",
            "reverse", "imagefolder:PATH", "masks:PATH", "text:PATH", "pairs:PATH")
# the data sets of segmentation: a mask of class indices per image
SEGMENTATION_DATA = ("shapes", "masks:")
# ... and of language models: text
TEXT_DATA = ("text:",)
# ... and of sequence-to-sequence models: pairs of texts
PAIRS_DATA = ("reverse", "pairs:")
TASKS = ("classify", "segment", "lm", "seq2seq")
_NAMED = tuple(d for d in DATASETS if not d.endswith(":PATH"))
_PATHS = tuple(d[:-len("PATH")] for d in DATASETS if d.endswith(":PATH"))

# What a spec's `recipe` may set: how to train, not where the data is or how the run is shown
RECIPE_OPTIONS = ("epochs", "batch_size", "optimizer", "lr", "momentum", "nesterov",
                  "weight_decay", "schedule", "warmup_epochs", "step_epochs", "gamma",
                  "label_smoothing", "clip_grad", "aux_weight", "augment", "flip",
                  "accumulate", "patience", "ema", "mixup", "cutmix")


@dataclass
class TrainConfig:
    data: str = "digits"  # for --task segment: shapes; seq2seq: reverse; lm has no default
    task: str = "classify"  # classify | segment | lm | seq2seq (from the network unless given)
    data_dir: str = "data"
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "sgd"  # sgd | adamw
    lr: float = 0.05
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 5e-4
    schedule: str = "cosine"  # cosine | step | onecycle | constant
    warmup_epochs: float = 0.0
    step_epochs: int = 30
    gamma: float = 0.1
    label_smoothing: float = 0.0
    clip_grad: float | None = None
    accumulate: int = 1  # batches whose gradients add up before each optimizer step
    patience: int = 0  # stop after this many epochs without a better validation score
    ema: float | None = None  # decay of an exponential moving average of the weights
    mixup: float = 0.0  # Beta(α, α) of mixup's blend (0: off)
    cutmix: float = 0.0  # Beta(α, α) of cutmix's box (0: off)
    aux_weight: float = 0.3
    val_split: float = 0.1
    augment: bool | None = None  # None: the data set's default
    flip: bool | None = None
    device: str = "auto"
    amp: str | None = None  # bf16 | fp16
    channels_last: bool = False
    compile: bool = False
    seed: int = 0
    save_every: int = 0  # also checkpoint every N steps (0: at the end of each epoch only)
    save_top: int = 0  # also keep the checkpoints of the K best epochs (best-epochE.pt)
    fake_size: int | None = None  # images in `fake` and `shapes`; None: data.generated_count
    offline: bool = False  # never download data sets
    limit_steps: int = 0  # stop after N steps in total (tests, smoke runs)
    init: str | None = None  # torchvision:NAME or a checkpoint to start from
    progress: bool = True
    tensorboard: bool = True

    @classmethod
    def from_dict(cls, values: dict) -> "TrainConfig":
        """Options from the command line or a checkpoint (untrusted data: each value must have
        its option's type, or ValueError says which does not)."""
        if not isinstance(values, dict):
            raise ValueError("its training options are missing")
        chosen = {}
        for f in fields(cls):
            if f.name not in values:
                continue
            value, kind = values[f.name], _OPTION_TYPES[f.type]
            if type(value) is int and float in kind:
                value = float(value)
            if type(value) not in kind:
                raise ValueError(f"--{f.name.replace('_', '-')} has a value of the wrong type")
            rule = _OPTION_RULES.get(f.name)
            if rule is not None and value is not None and not rule[0](value):
                raise ValueError(f"--{f.name.replace('_', '-')} must be {rule[1]}, got {value!r}")
            chosen[f.name] = value
        config = cls(**chosen)
        if (config.mixup or config.cutmix) and config.task != "classify":
            raise ValueError("--mixup and --cutmix blend images and their labels: they are for "
                             f"classifiers, not --task {config.task}")
        if config.patience and config.val_split == 0:
            raise ValueError("--patience stops when the validation score stops improving: it "
                             "needs a validation split (--val-split above 0)")
        if config.save_every % config.accumulate:
            raise ValueError(f"--save-every must be a multiple of --accumulate "
                             f"({config.accumulate}): a checkpoint between optimizer steps "
                             "would lose the gradients added up so far")
        return config

    def check(self) -> None:
        """ValueError when an option set after from_dict (a command-line override of a
        checkpoint's options) breaks its rule."""
        TrainConfig.from_dict(asdict(self))


# The Python types each annotation of TrainConfig admits (exact types: a bool is no int).
_OPTION_TYPES = {"str": (str,), "int": (int,), "float": (float,), "bool": (bool,),
                 "str | None": (str, type(None)), "float | None": (float, type(None)),
                 "bool | None": (bool, type(None)), "int | None": (int, type(None))}


# What each option's value must be, besides its type: (test, description for the message).
_OPTION_RULES = {
    "data": (lambda v: v in _NAMED or any(v.startswith(kind) and len(v) > len(kind)
                                          for kind in _PATHS),
             "one of " + ", ".join(DATASETS)),
    "task": (lambda v: v in TASKS, "classify, segment, lm or seq2seq"),
    "data_dir": (lambda v: v != "", "a folder"),
    "epochs": (lambda v: 1 <= v <= 10 ** 6, "between 1 and 1,000,000"),
    "batch_size": (lambda v: 1 <= v <= 2 ** 24, "a positive number of images"),
    "optimizer": (lambda v: v in ("sgd", "adamw"), "sgd or adamw"),
    "lr": (lambda v: 0 < v < math.inf, "a positive number"),
    "momentum": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "weight_decay": (lambda v: 0 <= v < math.inf, "0 or more"),
    "schedule": (lambda v: v in ("cosine", "step", "onecycle", "constant"),
                 "cosine, step, onecycle or constant"),
    "warmup_epochs": (lambda v: 0 <= v <= 10 ** 6, "0 or more epochs"),
    "step_epochs": (lambda v: 1 <= v <= 10 ** 6, "a positive number of epochs"),
    "gamma": (lambda v: 0 < v <= 1, "above 0 and at most 1"),
    "label_smoothing": (lambda v: 0 <= v < 1, "at least 0 and below 1"),
    "clip_grad": (lambda v: 0 < v < math.inf, "a positive gradient norm"),
    "accumulate": (lambda v: 1 <= v <= 4096, "between 1 and 4,096 batches"),
    "patience": (lambda v: 0 <= v <= 10 ** 6, "0 (never stop early) or more epochs"),
    "ema": (lambda v: 0 < v < 1, "a decay above 0 and below 1, such as 0.999"),
    "mixup": (lambda v: 0 <= v <= 100, "an α from 0 (off) to 100, such as 0.2"),
    "cutmix": (lambda v: 0 <= v <= 100, "an α from 0 (off) to 100, such as 1.0"),
    "aux_weight": (lambda v: 0 <= v < math.inf, "0 or more"),
    "val_split": (lambda v: 0 <= v < 1, "a fraction at least 0 and below 1"),
    "device": (lambda v: v in ("auto", "cpu", "cuda"), "auto, cpu or cuda"),
    "amp": (lambda v: v in ("bf16", "fp16"), "bf16 or fp16"),
    "seed": (lambda v: 0 <= v < 2 ** 63, "an integer from 0 to 2**63 - 1"),
    "save_every": (lambda v: v >= 0, "0 or more steps"),
    "save_top": (lambda v: 0 <= v <= 1000, "a number of checkpoints from 0 to 1,000"),
    "fake_size": (lambda v: 2 <= v <= 10 ** 7, "between 2 and 10,000,000 images"),
    "limit_steps": (lambda v: v >= 0, "0 or more steps"),
}


