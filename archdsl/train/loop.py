"""Training and evaluation: `archdsl train` and `archdsl eval`.

One linear loop, in sections: set-up (device, data, model, optimiser), resume, then per
epoch: train with a progress bar, validate, log (console, CSV/JSON, TensorBoard, curves PNG),
checkpoint (`last.pt` always, `best.pt` on the best validation top-1). The loss trains on
logits: a trailing softmax of the spec is left out of the training model and folded into the
cross-entropy. Side outputs (GoogLeNet's auxiliary heads) add their loss with weight 0.3.

Resuming continues exactly: the batch order of an epoch is a function of (seed, epoch), and
the checkpoint holds the model, optimiser, scaler and random number generators, and the
batch within the epoch it was taken at (SIGINT and SIGTERM save one before stopping).
"""

from __future__ import annotations

import csv
import json
import math
import signal
import sys
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..files import write_output
from . import checkpoint
from .distributed import Processes, device_for
from .data import (BatchPipeline, DataError, Splits, batch_count, batches, load_splits,
                   trained_classes)
from .options import TrainConfig
from .mixing import mix
from .preprocess import Preprocess
from . import tasks


class TrainingStopped(Exception):
    """Training ended early (diverged, interrupted); the message says what was kept."""

    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


# Data sets whose images may be mirrored (digits and letters may not).
FLIPPABLE = ("cifar10", "cifar100", "fake")


@dataclass
class RunInfo:
    """What a checkpoint must carry to rebuild the network without the original files."""

    spec_files: dict  # path relative to the spec's folder -> text
    spec_name: str  # the root file's relative path
    network: str
    args: dict  # --set values, as text
    input_shape: list | None
    history: list = field(default_factory=list)
    plugins: list = field(default_factory=list)  # --plugin modules the spec needs, as given


# ---- helpers -------------------------------------------------------------------------------

def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DataError("--device cuda: no CUDA device is available here")
    return torch.device(name)


def autocast(device: torch.device, amp: str | None):
    if amp is None:
        return nullcontext()
    dtype = {"bf16": torch.bfloat16, "fp16": torch.float16}[amp]
    return torch.autocast(device_type=device.type, dtype=dtype)


def lr_factor(config: TrainConfig, step: int, steps_per_epoch: int) -> float:
    """The learning rate at `step`, as a fraction of --lr."""
    total = max(config.epochs * steps_per_epoch, 1)
    warmup = int(config.warmup_epochs * steps_per_epoch)
    if config.schedule == "onecycle":
        peak = max(int(0.3 * total), 1)
        if step < peak:
            return 0.04 + 0.96 * step / peak
        progress = (step - peak) / max(total - peak, 1)
        return 1e-4 + (1 - 1e-4) * 0.5 * (1 + math.cos(math.pi * progress))
    if step < warmup:
        return (step + 1) / warmup
    if config.schedule == "cosine":
        progress = (step - warmup) / max(total - warmup, 1)
        return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    if config.schedule == "step":
        return config.gamma ** (step // (config.step_epochs * steps_per_epoch))
    return 1.0


def make_optimizer(config: TrainConfig, model) -> torch.optim.Optimizer:
    # no weight decay on biases and normalisation parameters (one-dimensional tensors)
    decay = [p for p in model.parameters() if p.ndim > 1]
    no_decay = [p for p in model.parameters() if p.ndim <= 1]
    groups = [{"params": decay, "weight_decay": config.weight_decay},
              {"params": no_decay, "weight_decay": 0.0}]
    if config.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=config.lr)
    return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum,
                           nesterov=config.nesterov and config.momentum > 0)


def split_outputs(out):
    """The main output and the side outputs (a tuple in training mode when there are any)."""
    if isinstance(out, (tuple, list)):
        return out[0], list(out[1:])
    return out, []


@torch.no_grad()
def evaluate(model, data, pipeline, config, device, processes: Processes = Processes(),
             task=None) -> dict:
    """The task's figures over `data`: loss, top-1 and top-5 (classify), or loss, mean IoU
    and pixel accuracy (segment). Each process takes its shard; the sums are shared."""
    task = task or tasks.Classify()
    model.eval()
    totals = task.totals()
    for images, labels in batches(data, config.batch_size * 2, shuffle=False,
                                  rank=processes.rank, world=processes.world):
        x = pipeline(images.to(device, non_blocking=True))
        y = labels.to(device, non_blocking=True).long()  # masks are held as bytes
        with autocast(device, config.amp):
            logits, _ = split_outputs(model(*task.inputs(x)))
        totals = task.add(totals, logits.float(), y)
    return task.metrics(processes.sum(totals, device))


def new_run_dir(base: Path) -> Path:
    """A fresh run directory: never overwrite an earlier run's work."""
    run, n = base, 1
    while run.exists():
        n += 1
        run = base.with_name(f"{base.name}-{n}")
    run.mkdir(parents=True)
    return run


class _Signals:
    """SIGINT/SIGTERM during training: finish the step, save, then stop."""

    def __init__(self):
        self.received = None

    def __enter__(self):
        self.previous = {}
        for sig in (signal.SIGINT, signal.SIGTERM):
            try:
                self.previous[sig] = signal.signal(sig, self._handle)
            except ValueError:  # not the main thread: leave signals alone
                pass
        return self

    def _handle(self, signum, frame):
        if self.received is not None:  # a second Ctrl-C: stop now
            raise KeyboardInterrupt
        self.received = signum

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        return False


# ---- logging -------------------------------------------------------------------------------

class RunLog:
    """metrics.csv, metrics.json, curves.png and TensorBoard events in the run directory."""

    def __init__(self, run: Path, history: list, tensorboard: bool, task=None):
        self.run = run
        self.history = history
        self.task = task or tasks.Classify()
        self.writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.writer = SummaryWriter(str(run / "tensorboard"))
            except ImportError:
                print("note: tensorboard is not installed; no event files are written",
                      file=sys.stderr)

    def epoch(self, row: dict) -> None:
        self.history.append(row)
        with open(self.run / "metrics.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, self.task.columns, extrasaction="ignore")
            writer.writeheader()
            writer.writerows(self.history)
        (self.run / "metrics.json").write_text(json.dumps(self.history, indent=2))
        if self.writer is not None:
            for key in self.task.columns[1:-1]:
                if row.get(key) is not None:
                    self.writer.add_scalar(key.replace("_", "/", 1), row[key], row["epoch"])
            self.writer.flush()
        self.plot()

    def step(self, step: int, loss: float, lr: float) -> None:
        """Per-step scalars (every tenth step: when the loss is read anyway)."""
        if self.writer is not None:
            self.writer.add_scalar("train/loss_step", loss, step)
            self.writer.add_scalar("train/lr_step", lr, step)

    def hparams(self, config, result: dict) -> None:
        """The run's options and its final figures, for TensorBoard's HParams tab."""
        if self.writer is None:
            return
        options = {k: v for k, v in asdict(config).items()
                   if isinstance(v, (bool, int, float, str)) and k not in ("progress",
                                                                           "tensorboard")}
        figures = {f"hparam/{k}": v for k, v in result.items()
                   if isinstance(v, float) and k != "seconds"}
        self.writer.add_hparams(options, figures, run_name=".")

    def plot(self) -> None:
        """Accuracy and loss curves, as seed 002 draws them."""
        from ..extras import available, note_missing

        if not available("matplotlib"):
            note_missing("matplotlib", "no curves are drawn",
                         lambda line: print(line, file=sys.stderr))
            return
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        epochs = [r["epoch"] for r in self.history]
        fig, panels = plt.subplots(1, 2, figsize=(10, 4))
        for panel, (what, curves) in zip(panels, self.task.panels):
            for label, key in curves:
                if any(r.get(key) is not None for r in self.history):
                    panel.plot(epochs, [r.get(key) for r in self.history],
                               label=f"{label} {what}" if what in ("Accuracy", "Loss")
                               else label)
            panel.set_title(f"Training and Validation {what}" if what in ("Accuracy", "Loss")
                            else what)
            panel.set_xlabel("epoch")
            panel.legend()
        fig.tight_layout()
        try:
            write_output(self.run / "curves.png", lambda tmp: fig.savefig(tmp, dpi=100))
        finally:
            plt.close(fig)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def initialise(model, source: str, option: str = "--init", net=None, input_shape=None) -> str:
    """--init (or compile's --weights): torchvision's pretrained weights, a Hugging Face
    language model's, or another run's checkpoint, copied in order. With `net`, a checkpoint
    must hold that same network with the same arguments (compile's --weights: weights trained
    with `--set act=relu` do not go silently into the spec's default network). `input_shape`
    (else `net`'s): the network's, on which a Hugging Face model's scores are compared."""
    from ..backends.weights import (HUGGING_FACE, WeightsError, copy_state, load_huggingface,
                                    load_torchvision)

    try:
        if source.startswith("torchvision:"):
            transfer = load_torchvision(model, source.split(":", 1)[1], pretrained=True)
        elif source.startswith(HUGGING_FACE):
            transfer = load_huggingface(model, source[len(HUGGING_FACE):],
                                        input_shape or net.input_shape)
            return (f"initialised from {source} ({len(transfer)} tensors; its scores and the "
                    f"network's agree within {transfer.difference:.2g})")
        else:
            state = checkpoint.load(Path(source))
            if net is not None:
                _same_network(net, state, source, option)
            transfer = copy_state(model, state["model"])
    except (WeightsError, checkpoint.CheckpointError) as error:
        raise DataError(f"{option} {source}: {error}") from None
    return f"initialised from {source} ({len(transfer)} tensors)"


def huggingface_record(source: str, input_shape) -> Preprocess | None:
    """The record of a Hugging Face model's tokenizer (`source`: huggingface:NAME|FOLDER),
    for reading text with it as the model does, and of the ids that end its texts; None
    where transformers is not installed (`initialise` says so) or the model has no tokenizer
    the `tokenizers` package reads."""
    from ..backends.weights import HUGGING_FACE, huggingface_stop, huggingface_tokenizer
    from ..extras import available

    name = source[len(HUGGING_FACE):]
    tokenizer = available("transformers") and huggingface_tokenizer(name)
    return Preprocess.of_tokenizer(tokenizer, input_shape, source, huggingface_stop(name)) \
        if tokenizer else None


def _init_state(config: TrainConfig) -> dict | None:
    """The checkpoint a language model starts from (--init), for its vocabulary; for a
    Hugging Face model, the record of its tokenizer, so that the text is read with it. None
    for other runs, torchvision's weights, a Hugging Face model without a tokenizer, or a
    checkpoint that cannot be read (`initialise` says why)."""
    if config.task != "lm" or not config.init or config.init.startswith("torchvision:"):
        return None
    if config.init.startswith("huggingface:"):
        record = huggingface_record(config.init, ())
        return {"preprocess": record.to_dict()} if record else None
    try:
        return checkpoint.load(Path(config.init))
    except checkpoint.CheckpointError:
        return None


def _same_network(net, state: dict, source: str, option: str) -> None:
    def settings(args: dict) -> str:
        return " ".join(f"--set {k}={v}" for k, v in sorted(args.items())) or "no --set"

    ours = {k: str(v) for k, v in (net.arguments or {}).items()}
    theirs = {k: str(v) for k, v in state["args"].items()}
    if state["network"] != net.name or ours != theirs:
        raise DataError(
            f"{option} {source}: the checkpoint holds `{state['network']}` with "
            f"{settings(theirs)}, not `{net.name}` with {settings(ours)}: its weights would "
            f"go into another network. Give the same network and --set, or compile the "
            f"checkpoint itself: archdsl compile {source} -o OUT")


# ---- the loop ------------------------------------------------------------------------------

def prepare_compile(net) -> None:
    """What torch.compile needs to trace the network as one graph: dynamo runs nn.LSTM and
    nn.GRU eagerly, and the whole forward with them, unless allow_rnn is set
    (LayerKind.is_rnn)."""
    if any(node["layer"].is_rnn for _, node in net.graph.layers()):
        import torch._dynamo.config

        torch._dynamo.config.allow_rnn = True


def train(net, info: RunInfo, config: TrainConfig, run: Path, resume: dict | None = None,
          log=print, processes: Processes = Processes()) -> dict:
    """Train `net` (an archdsl Network); returns the final metrics. With several processes
    (torchrun), each trains on its shard and rank 0 alone writes `run`."""
    # -- set-up --------------------------------------------------------------------------
    torch.manual_seed(config.seed)
    device = pick_device(config.device) if not processes.active else \
        device_for(processes, config.device)
    if not processes.main:
        log = _silent
    tasks.check_network(net, config.task)
    tasks.check_data(config.task, config.data)
    # a resumed run keeps the ids it trained with (a language model's characters, an image
    # folder's classes), even if its text or folder has changed; so does a language model
    # that starts from another's checkpoint (--init): its embedding's rows are characters
    splits: Splits = load_splits(config.data, Path(config.data_dir), net.input_shape,
                                 val_split=config.val_split, seed=config.seed,
                                 fake_size=config.fake_size, download=not config.offline,
                                 classes=trained_classes(resume or _init_state(config),
                                                         config.task, config.data),
                                 target_shape=tasks.target_shape(net))
    log(f"data: {config.data}: {splits.describe()}")
    classes = tasks.scores(net)
    if splits.train.classes > classes:
        raise DataError(tasks.too_few_scores(net, config.task, config.data, splits.train.classes))
    task = tasks.make(config.task, classes, splits.train.class_names, net)
    # segmentation: flips by default, which move the masks with the images; crops only when
    # asked for (--augment), as the padding they bring in is counted as background
    segment = config.task == "segment"
    lm = config.task == "lm"
    augment = config.augment if config.augment is not None else config.data != "fake"
    flip = config.flip if config.flip is not None else config.data.split(":")[0] in FLIPPABLE \
        or config.data.startswith(("imagefolder:", "masks:")) or config.data == "shapes"
    height = net.input_shape[1] if len(net.input_shape) == 3 and net.input_shape.is_map else 0
    crops = height and (config.augment if segment else True)
    train_pipe = BatchPipeline(net.input_shape, splits.mean, splits.std, augment=augment,
                               crop_padding=max(height // 8, 1) if crops else 0, flip=flip,
                               channels_last=config.channels_last)
    eval_pipe = BatchPipeline(net.input_shape, splits.mean, splits.std, augment=False,
                              channels_last=config.channels_last)
    preprocess = Preprocess.of(splits, net.input_shape, config.task)  # for predict, exports

    if device.type == "cuda":
        # training batches all have one shape, so cuDNN may time its kernels once and keep
        # the fastest (PyTorch's default picks by heuristics); small data sets live on the
        # GPU, so that no batch is copied
        torch.backends.cudnn.benchmark = True
        for split in (splits.train, splits.val, splits.test):
            if split is not None and split.images.numel() * split.images.element_size() < 2**32:
                split.images, split.labels = split.images.to(device), split.labels.to(device)
    model = net.build(logits=True)
    if config.init and resume is None:
        log(initialise(model, config.init, input_shape=net.input_shape))
    model = model.to(device)
    if config.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(config, model)
    scaler = torch.amp.GradScaler(device.type, enabled=config.amp == "fp16")
    # --ema: a moving average of the weights (and buffers), updated after each optimizer step;
    # it is what validation, testing and the checkpoints' `model` hold (timm's ModelEmaV3)
    ema = None
    if config.ema:
        from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

        ema = AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(config.ema),
                            use_buffers=True)
    evaluated = ema.module if ema is not None else model
    if config.compile:
        prepare_compile(net)
    forward = torch.compile(model) if config.compile else model
    if config.compile:
        log("compiling with torch.compile: the first steps (and the first validation) wait for "
            "it, often a minute or more")
    if processes.active:  # gradients averaged across processes; batches are per process
        from torch.nn.parallel import DistributedDataParallel

        ddp = DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda"
                                      else None)
        forward = torch.compile(ddp) if config.compile else ddp
        torch.manual_seed(config.seed * 7919 + processes.rank)  # own dropout masks per process
    steps_per_epoch = batch_count(splits.train, config.batch_size, drop_last=True,
                                  world=processes.world)
    if steps_per_epoch == 0:
        raise DataError(f"--batch-size {config.batch_size} is larger than the training set "
                        f"({len(splits.train):,} {splits.unit}"
                        + (f" over {processes.world} processes" if processes.world > 1 else "")
                        + "): give a smaller one")
    augment_rng = torch.Generator()
    start_epoch, skip, best, stale = 0, 0, -1.0, 0  # stale: epochs since the best

    # -- resume --------------------------------------------------------------------------
    if resume is not None:
        try:
            if ema is not None:  # the trained weights, and their average so far
                model.load_state_dict(resume["trained"])
                ema.module.load_state_dict(resume["model"])
                ema.n_averaged.fill_(resume["ema_steps"])
            else:
                model.load_state_dict(resume["model"])
        except (RuntimeError, KeyError, TypeError):  # an altered checkpoint
            raise checkpoint.CheckpointError(
                "the checkpoint's weights do not fit the network it describes") from None
        try:
            optimizer.load_state_dict(resume["optimizer"])
            scaler.load_state_dict(resume["scaler"])
            checkpoint.restore_rng(resume["rng"], augment_rng)
        except (KeyError, ValueError, TypeError, RuntimeError, IndexError) as error:
            raise checkpoint.CheckpointError(
                f"the checkpoint's optimizer or random state is damaged ({error})") from None
        start_epoch, skip, best = resume["epoch"], resume["batch"], resume["best"]
        stale = resume.get("stale", 0)
        log(f"resuming {info.network} at epoch {start_epoch + 1}, batch {skip}")

    logbook = RunLog(run, info.history, config.tensorboard and processes.main, task)
    state = {"epoch": start_epoch, "batch": skip, "best": best, "stale": stale,
             "top": [list(t) for t in (resume or {}).get("top", [])]}

    def save(name: str) -> None:
        if not processes.main:
            return
        checkpoint.save(run / name, {
            "spec_files": info.spec_files, "spec_name": info.spec_name,
            "network": info.network, "args": info.args, "input_shape": info.input_shape,
            "plugins": info.plugins, "config": asdict(config), "history": info.history,
            "model": evaluated.state_dict(), "preprocess": preprocess.to_dict(),
            **({"trained": model.state_dict(), "ema_steps": int(ema.n_averaged)}
               if ema is not None else {}),
            "optimizer": optimizer.state_dict(), "scaler": scaler.state_dict(),
            "rng": checkpoint.rng_state(augment_rng), **state,
            **({"partial": _on_host(state["partial"])} if "partial" in state else {})})

    # -- epochs --------------------------------------------------------------------------
    total_steps = 0
    with _Signals() as signals:
        for epoch in range(start_epoch, config.epochs):
            model.train()
            if skip == 0:
                augment_rng.manual_seed((config.seed * 1000 + epoch) * processes.world
                                        + processes.rank)
            order_seed = config.seed * 1000 + epoch
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device)
            answers = torch.zeros((), device=device)  # images (classify), pixels (segment)
            seen, started = 0, time.perf_counter()
            if skip and resume is not None and "partial" in resume:  # the epoch's sums so far
                loss_sum += resume["partial"]["loss_sum"]
                correct += resume["partial"]["correct"]
                seen = resume["partial"]["seen"]
                answers += resume["partial"].get("answers", seen)
            bar = _progress(config, steps_per_epoch, skip, epoch) if processes.main else None
            # text: windows from a start drawn for the epoch (the same on resuming)
            epoch_data = splits.train if not lm else splits.train.shifted(int(torch.randint(
                0, net.input_shape[0], (), generator=torch.Generator().manual_seed(order_seed))))
            for b, (images, labels) in enumerate(
                    batches(epoch_data, config.batch_size, shuffle=True, seed=order_seed,
                            drop_last=True, skip=skip, rank=processes.rank,
                            world=processes.world), start=skip):
                step = epoch * steps_per_epoch + b
                for group in optimizer.param_groups:
                    group["lr"] = config.lr * lr_factor(config, step, steps_per_epoch)
                if segment:  # the masks move with the images
                    x, y = train_pipe(images.to(device, non_blocking=True), augment_rng,
                                      labels.to(device, non_blocking=True))
                    y = y.long()  # masks are held as bytes
                else:
                    x = train_pipe(images.to(device, non_blocking=True), augment_rng)
                    y = labels.to(device, non_blocking=True).long()
                if config.mixup or config.cutmix:
                    x, partners, lam = mix(x, y, config.mixup, config.cutmix, augment_rng)

                    def scored(out, y=y, partners=partners, lam=lam):
                        return lam * task.loss(out, y, config) + \
                            (1 - lam) * task.loss(out, partners, config)
                else:
                    def scored(out, y=y):
                        return task.loss(out, y, config)
                with autocast(device, config.amp):
                    logits, side = split_outputs(forward(*task.inputs(x)))
                    loss = scored(logits)
                    for extra in side:
                        loss = loss + config.aux_weight * scored(extra)
                # --accumulate N: N batches' gradients add up (each loss divided by N, so the
                # sum is their mean's) before one optimizer step
                scaler.scale(loss / config.accumulate if config.accumulate > 1 else loss
                             ).backward()
                if (b + 1) % config.accumulate == 0 or b + 1 == steps_per_epoch:
                    if config.clip_grad:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(model.parameters(), config.clip_grad)
                    scaler.step(optimizer)
                    scaler.update()
                    optimizer.zero_grad(set_to_none=True)
                    if ema is not None:
                        ema.update_parameters(model)

                loss_sum += loss.detach() * len(y)
                right, given = task.hits(logits, y)
                correct += right
                answers += given
                seen += len(y)
                total_steps += 1
                # the running sums stay on the device (copying them here would wait for the
                # GPU at every step); save() copies them when a checkpoint is written
                state.update(epoch=epoch, batch=b + 1, partial={
                    "loss_sum": loss_sum, "correct": correct, "seen": seen,
                    "answers": answers})
                # reading the loss waits for the device, so it is checked every 10 steps, and
                # before anything is saved: a NaN never reaches a checkpoint
                must_save = (config.save_every and (step + 1) % config.save_every == 0) \
                    or signals.received is not None
                if b % 10 == 0 or must_save:
                    # one read for both: the running sum (checked) and the step's loss (logged)
                    total, current = torch.stack([loss_sum.float(),
                                                  loss.detach().float()]).tolist()
                    check_finite(total, epoch, b, run, config)
                    if processes.main:
                        logbook.step(step, current, optimizer.param_groups[0]["lr"])
                if bar is not None:
                    bar.update(1)
                    if b % 10 == 0:
                        elapsed = time.perf_counter() - started
                        bar.set_postfix(loss=f"{float(loss_sum) / seen:.4f}",
                                        acc=f"{float(correct) / max(float(answers), 1):.2%}",
                                        img_s=f"{seen / max(elapsed, 1e-9):.0f}")
                if config.save_every and (step + 1) % config.save_every == 0:
                    save("last.pt")
                if signals.received is not None:
                    save("last.pt")
                    name = "SIGINT" if signals.received == signal.SIGINT else "SIGTERM"
                    raise TrainingStopped(
                        f"{name}: stopped at epoch {epoch + 1}, batch {b + 1}; saved "
                        f"{run / 'last.pt'}. Continue with: archdsl train --resume {run}",
                        130 if signals.received == signal.SIGINT else 143)
                if config.limit_steps and total_steps >= config.limit_steps:
                    break
            if bar is not None:
                bar.close()
            check_finite(loss_sum, epoch, steps_per_epoch, run, config)
            seconds = time.perf_counter() - started
            skip = 0

            # -- validate, log, checkpoint -----------------------------------------------
            val = evaluate(evaluated, splits.val, eval_pipe, config, device, processes, task) \
                if splits.val else None
            total_loss, total_correct, total_seen, total_answers = processes.sum(
                [float(loss_sum), float(correct), seen, float(answers)], device)
            row = {"epoch": epoch + 1,
                   **task.row(total_loss / max(total_seen, 1),
                              total_correct / max(total_answers, 1), val),
                   "lr": optimizer.param_groups[0]["lr"],
                   "images_per_s": total_seen / max(seconds, 1e-9),
                   "seconds": seconds}
            if processes.main:
                logbook.epoch(row)
            log(_epoch_line(row, config.epochs, task))
            state.update(epoch=epoch + 1, batch=0)
            state.pop("partial", None)
            score = val[task.score_key] if val else task.train_score(row)
            if score > state["best"]:
                state["best"], state["stale"] = score, 0
                save("best.pt")
            else:
                state["stale"] = state.get("stale", 0) + 1
            if config.save_top:
                keep_top(state["top"], score, epoch + 1, config.save_top, save, run)
            save("last.pt")
            if config.limit_steps and total_steps >= config.limit_steps:
                break
            if config.patience and state["stale"] >= config.patience:
                log(f"early stop: validation {task.score_key} has not improved for "
                    f"{state['stale']} epochs (best {state['best']:.2%}; --patience "
                    f"{config.patience})")
                break

    # -- test ----------------------------------------------------------------------------
    processes.barrier()  # rank 0 has written best.pt
    best_state = checkpoint.load(run / "best.pt")["model"]
    final = evaluate(evaluated, splits.test, eval_pipe, config, device, processes, task)
    evaluated.load_state_dict(best_state)
    best_test = evaluate(evaluated, splits.test, eval_pipe, config, device, processes, task)
    result = {"network": info.network, "data": config.data, "task": config.task,
              "epochs": state["epoch"], **task.result(final, state["best"], best_test),
              "run": str(run)}
    if processes.main:
        logbook.hparams(config, result)
    logbook.close()
    if processes.main:
        (run / "result.json").write_text(json.dumps(result, indent=2))
        if config.task == "lm":  # what the best checkpoint writes after a test prompt
            from .text import sample

            text = sample(evaluated, net, splits.test, task.names, device, config.seed)
            (run / "sample.txt").write_text(text, encoding="utf-8")
            log(f"sample of the best checkpoint: {run / 'sample.txt'}")
        elif config.task == "seq2seq":  # what the best checkpoint writes for test sources
            from .text import translations

            text = translations(evaluated, net, splits.test, task.names, device)
            (run / "sample.txt").write_text(text, encoding="utf-8")
            log(f"what the best checkpoint writes for test sources: {run / 'sample.txt'}")
        elif config.task == "segment":  # the best checkpoint's masks on test images
            from .pictures import write_overlays

            write_overlays(run / "overlays.png", evaluated, splits.test, eval_pipe, device,
                           classes)
        elif "confusion" in best_test:  # the best checkpoint's confusions on the test set
            from ..extras import available
            from .pictures import confusion_plot

            if available("matplotlib"):  # (without it, the run's curves say so already)
                confusion_plot(run / "confusion.png", best_test["confusion"], task.names)
    return result


def keep_top(top: list, score: float, epoch: int, k: int, save, run: Path) -> None:
    """--save-top K: `top` lists [score, epoch] of the K best epochs, best first; an epoch
    that enters it is saved as best-epochE.pt, and the one it pushes out is deleted."""
    if len(top) == k and score <= top[-1][0]:
        return
    save(f"best-epoch{epoch}.pt")
    top.append([score, epoch])
    top.sort(key=lambda t: -t[0])
    for _, dropped in top[k:]:
        (run / f"best-epoch{dropped}.pt").unlink(missing_ok=True)
    del top[k:]


def check_finite(loss_sum, epoch: int, batch: int, run: Path, config) -> None:
    """Stop when the loss is no longer a number. `loss_sum`: a tensor, or its value read."""
    if not math.isfinite(float(loss_sum)):
        last = run / "last.pt"
        kept = (f"The last good checkpoint is {last}." if last.exists() else
                "No checkpoint was written before it (the first is written at the end of "
                "epoch 1, or by --save-every).")
        raise TrainingStopped(
            f"the loss became {float(loss_sum)} by epoch {epoch + 1}, batch {batch}; training "
            f"stopped. {kept} Try a lower --lr (now {config.lr}), --clip-grad, or no "
            f"--amp fp16.", 4)


def _on_host(values: dict) -> dict:
    return {k: v.detach().cpu() if torch.is_tensor(v) else v for k, v in values.items()}


def _silent(*args, **kwargs) -> None:
    """The log of processes other than rank 0."""


def _progress(config, total, done, epoch):
    if not config.progress:
        return None
    from ..extras import available, note_missing

    if not available("tqdm"):
        note_missing("tqdm", "there is no progress bar", lambda line: print(line, file=sys.stderr))
        return None
    from tqdm import tqdm

    return tqdm(total=total, initial=done, desc=f"epoch {epoch + 1}/{config.epochs}",
                leave=False, dynamic_ncols=True, file=sys.stderr,
                disable=None)  # no bar when stderr is not a terminal (logs, CI)


def _epoch_line(row: dict, epochs: int, task=None) -> str:
    text = f"epoch {row['epoch']:>3}/{epochs}  " + (task or tasks.Classify()).line(row)
    speed = getattr(task, "speed", "img/s")
    return text + f"  lr {row['lr']:.3g}  {row['images_per_s']:.0f} {speed}  {row['seconds']:.1f}s"
