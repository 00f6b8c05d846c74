"""The `train` and `eval` commands: from command-line options to the loop, and back."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from ..diagnostics import Diagnostics, SpecError
from . import checkpoint
from .data import DataError
from .loop import RunInfo, TrainConfig, TrainingStopped, evaluate, new_run_dir, pick_device, train


def network_from_files(files: dict, root: str, name: str, args: dict, input_shape):
    """Rebuild a network from the spec texts a checkpoint carries."""
    from ..api import spec_from_files

    return spec_from_files(files, root).network(name, input_shape=input_shape, **args)


def config_from_args(args) -> TrainConfig:
    values = {k: v for k, v in vars(args).items() if v is not None}
    config = TrainConfig.from_dict(values)
    if args.lr is None:
        config.lr = 1e-3 if config.optimizer == "adamw" else 0.05
    return config


def relaunch(args, argv: list[str]) -> int:
    """--nproc N: run this same command under torchrun with N processes on this machine."""
    import subprocess

    rest, skip = [], False
    for i, item in enumerate(argv):
        if skip:
            skip = False
            continue
        if item == "--nproc":
            skip = True
            continue
        if item.startswith("--nproc="):
            continue
        rest.append(item)
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
               f"--nproc-per-node={args.nproc}", "-m", "archdsl", *rest]
    print("running: " + " ".join(command[2:]), file=sys.stderr)
    return subprocess.call(command)


def run_train(args, elaborate_one, print_diagnostics) -> int:
    from .distributed import launched_by_torchrun, start

    if args.nproc and args.nproc > 1 and not launched_by_torchrun():
        return relaunch(args, args.argv)
    try:
        processes = start(args.device or "auto")
    except DataError as error:
        print(f"archdsl train: error: {error}", file=sys.stderr)
        return 2
    status = None  # set when training returns; an exception leaves it unset
    try:
        status = _run_train(args, elaborate_one, print_diagnostics, processes)
    finally:
        processes.close(finished=status == 0)
    if processes.active:
        # A worker under torchrun whose work is done and saved (checkpoints are written
        # atomically and closed) leaves at once: gloo's threads have been seen to abort the
        # interpreter's own shutdown ("terminate called without an active exception"),
        # turning a finished run into a failed one.
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _run_train(args, elaborate_one, print_diagnostics, processes) -> int:
    resume = None
    if args.resume:
        resume = _read_checkpoint(args.resume, "train")
        if resume is None:
            return 2
        config = TrainConfig.from_dict(resume["config"])
        if args.epochs is not None:
            config.epochs = args.epochs  # continuing for longer is allowed
        config.progress = not args.no_progress
        if args.device is not None:
            config.device = args.device
        run = Path(args.resume) if Path(args.resume).is_dir() else Path(args.resume).parent
        net = network_from_files(resume["spec_files"], resume["spec_name"], resume["network"],
                                 resume["args"], resume["input_shape"])
        info = RunInfo(resume["spec_files"], resume["spec_name"], resume["network"],
                       resume["args"], resume["input_shape"], list(resume["history"]))
    else:
        if args.file is None:
            print("archdsl train: error: give a spec file (or --resume RUN)", file=sys.stderr)
            return 2
        diagnostics = Diagnostics()
        net = elaborate_one(args, diagnostics)
        if net is None:
            print_diagnostics(diagnostics)
            return 1
        config = config_from_args(args)
        config.progress = not args.no_progress
        config.tensorboard = not args.no_tensorboard
        from ..api import load

        files, root = load(Path(args.file)).files()
        sets = dict(s.split("=", 1) for s in (args.set or []))
        info = RunInfo(files, root, net.name, sets,
                       list(net.input_shape) if args.input else None)
        base = Path(args.out) if args.out else Path("runs") / f"{net.name}-{config.data.split(':')[0]}"
        run = None
        if processes.main:  # one run directory, chosen by rank 0
            run = new_run_dir(base)
            (run / Path(root).name).write_text(files[root])
            (run / "options.json").write_text(json.dumps(
                {"spec": args.file, "network": net.name, "set": sets, "input": args.input,
                 "processes": processes.world, **asdict(config)}, indent=2))
            (run / "network.json").write_text(json.dumps(net.to_json(), indent=2))
        run = Path(processes.share(str(run) if run else None))
    if processes.main:
        on = f" on {processes.world} processes" if processes.active else ""
        print(f"training {net.name} ({net.params_total:,} params) on {config.data} "
              f"for {config.epochs} epochs{on}; run directory {run}", file=sys.stderr)
    try:
        result = train(net, info, config, run, resume,
                       log=lambda line: print(line, file=sys.stderr), processes=processes)
    except DataError as error:
        print(f"archdsl train: error: {error}", file=sys.stderr)
        return 2
    except TrainingStopped as stop:
        print(f"archdsl train: {stop}", file=sys.stderr)
        return stop.status
    if not processes.main:
        return 0
    print(f"done: {result['network']} on {result['data']}, {result['epochs']} epochs: "
          f"test top-1 {result['test_top1']:.2%}, top-5 {result['test_top5']:.2%} "
          f"(best checkpoint: val top-1 {result['best_val_top1']:.2%}, test top-1 "
          f"{result['best_test_top1']:.2%}); run directory {result['run']}")
    return 0


def _read_checkpoint(path: str, command: str) -> dict | None:
    """A checkpoint's contents, or None after saying why it cannot be read."""
    try:
        return checkpoint.load(Path(path))
    except checkpoint.CheckpointError as error:
        print(f"archdsl {command}: error: {error}", file=sys.stderr)
        return None


def run_eval(args) -> int:
    import torch

    from .data import BatchPipeline, load_splits

    state = _read_checkpoint(args.checkpoint, "eval")
    if state is None:
        return 2
    config = TrainConfig.from_dict(state["config"])
    if args.data:
        config.data = args.data
    if args.data_dir:
        config.data_dir = args.data_dir
    if args.batch_size:
        config.batch_size = args.batch_size
    try:
        net = network_from_files(state["spec_files"], state["spec_name"], state["network"],
                                 state["args"], state["input_shape"])
        device = pick_device(args.device or "auto")
        splits = load_splits(config.data, Path(config.data_dir), net.input_shape,
                             val_split=config.val_split, seed=config.seed,
                             fake_size=config.fake_size, download=not args.offline)
    except (DataError, SpecError) as error:
        print(f"archdsl eval: error: {error}", file=sys.stderr)
        return 2
    model = net.build(logits=True).to(device)
    model.load_state_dict(state["model"])
    data = splits.val if args.split == "val" else splits.test
    if data is None:
        print("archdsl eval: error: this run has no validation split", file=sys.stderr)
        return 2
    pipe = BatchPipeline(net.input_shape, splits.mean, splits.std, augment=False)
    with torch.no_grad():
        metrics = evaluate(model, data, pipe, config, device)
    print(f"{state['network']} on {config.data} ({args.split}, {len(data)} images): "
          f"loss {metrics['loss']:.4f}, top-1 {metrics['top1']:.2%}, top-5 {metrics['top5']:.2%} "
          f"(top-1 error {1 - metrics['top1']:.2%}, top-5 error {1 - metrics['top5']:.2%})")
    return 0
