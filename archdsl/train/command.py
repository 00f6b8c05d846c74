"""The `train` and `eval` commands: from command-line options to the loop, and back."""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from ..diagnostics import Diagnostic, Diagnostics, SpecError, printable
from ..files import OutputError
from . import checkpoint
from .data import DataError
from . import tasks
from .loop import (RunInfo, TrainConfig, TrainingStopped, evaluate, new_run_dir, pick_device,
                   train)


def network_from_files(files: dict, root: str, name: str, args: dict, input_shape,
                       plugins=(), given=()):
    """Rebuild a network from the spec texts a checkpoint carries (kept in memory). When it
    fails and the run was trained with --plugin modules not given now, the error says so
    (a checkpoint names its plugins; it never loads code itself)."""
    from ..api import spec_from_files

    try:
        return spec_from_files(files, root).network(name, input_shape=input_shape, **args)
    except SpecError as error:
        missing = [p for p in plugins if p not in (given or ())]
        if missing:
            flags = " ".join(f"--plugin {p}" for p in missing)
            raise SpecError([Diagnostic(
                "E0201", f"this run was trained with {flags}, which defines layer kinds its "
                f"spec uses; give it again: {flags}")]) from None
        raise error


def say(command: str, message) -> None:
    """An error for the user, on stderr; text from files and checkpoints is escaped."""
    if isinstance(message, SpecError):  # located diagnostics say `error[E...]` themselves
        print(printable("\n".join(d.render() for d in message.diagnostics)), file=sys.stderr)
        return
    print(printable(f"archdsl {command}: error: {message}"), file=sys.stderr)


def config_from_args(args, recipe: dict | None = None) -> TrainConfig:
    """The training options of the command line, over the spec's recipe for the network
    (options given win); ValueError names a value out of range."""
    values = {**(recipe or {}), **{k: v for k, v in vars(args).items() if v is not None}}
    config = TrainConfig.from_dict(values)
    if "lr" not in values:
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

    if args.nproc is not None and not 1 <= args.nproc <= 1024:
        say("train", f"--nproc must be a number of processes from 1 to 1024, got {args.nproc}")
        return 2
    if args.nproc and args.nproc > 1 and not launched_by_torchrun():
        return relaunch(args, args.argv)
    try:
        processes = start(args.device or "auto")
    except DataError as error:
        say("train", error)
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


# What may be given again with --resume: how long to go on, and how to show and run it.
# Everything else is the run's own (recorded in its checkpoint) and cannot change midway.
RESUME_MAY_CHANGE = {"epochs", "device", "no_progress", "no_tensorboard", "resume", "nproc",
                     "plugin", "command", "run", "argv", "allow_use", "format", "offline",
                     "limit_steps", "save_every", "parser"}


def _fixed_on_resume(args) -> list[str]:
    """The options given with --resume that a resumed run cannot take, as written."""
    given = []
    for key, value in vars(args).items():
        if key in RESUME_MAY_CHANGE or value in (None, False, []):
            continue
        given.append(key if key in ("file", "network") else "--" + key.replace("_", "-"))
    return given


def _run_train(args, elaborate_one, print_diagnostics, processes) -> int:
    resume = None
    if args.resume:
        fixed = _fixed_on_resume(args)
        if fixed:
            spec = [f for f in fixed if f in ("file", "network")]
            options = [f for f in fixed if f not in ("file", "network")]
            say("train", "--resume continues a run as it was started: its spec, network and "
                "options are recorded in its checkpoint" +
                (f"; leave out the spec and network given ({' '.join(filter(None, [args.file, args.network]))})" if spec else "") +
                (f"; these options cannot change: {', '.join(options)}" if options else "") +
                ". Only --epochs (to train longer), --device and the display options may be "
                "given again; start a new run for other settings")
            return 2
        resume = _read_checkpoint(args.resume, "train")
        if resume is None:
            return 2
        config = _config_of(resume, args.resume, "train")
        if config is None:
            return 2
        if args.epochs is not None:
            if args.epochs < config.epochs:
                say("train", f"--epochs {args.epochs} is fewer than the run's {config.epochs}: "
                    "its learning-rate schedule was laid out for those; a resumed run can "
                    "only train longer (or evaluate it now: archdsl eval)")
                return 2
            config.epochs = args.epochs  # continuing for longer is allowed
        config.progress = not args.no_progress
        if args.device is not None:
            config.device = args.device
        try:
            config.check()  # the options given again are checked too
        except ValueError as error:
            say("train", error)
            return 2
        run = Path(args.resume) if Path(args.resume).is_dir() else Path(args.resume).parent
        for stale in run.glob(".*.tmp.pt"):  # a checkpoint half-written when the run was killed
            stale.unlink(missing_ok=True)
        try:
            net = network_from_files(resume["spec_files"], resume["spec_name"],
                                     resume["network"], resume["args"], resume["input_shape"],
                                     resume.get("plugins", []), args.plugin)
        except SpecError as error:
            say("train", error)
            return 2
        problem = checkpoint.unresumable(resume)
        if problem is not None:
            say("train", f"{args.resume} cannot be resumed: {problem}")
            return 2
        info = RunInfo(resume["spec_files"], resume["spec_name"], resume["network"],
                       resume["args"], resume["input_shape"], list(resume["history"]),
                       list(resume.get("plugins", [])))
    else:
        if args.config:
            from . import config_file

            try:
                config_file.apply(args, config_file.read(args.config))
            except DataError as error:
                say("train", error)
                return 2
        if args.file is None:
            print("archdsl train: error: give a spec file (or --resume RUN, or --config FILE "
                  "naming its `spec`)", file=sys.stderr)
            return 2
        try:
            config = config_from_args(args)
        except ValueError as error:
            say("train", error)
            return 2
        diagnostics = Diagnostics()
        net = elaborate_one(args, diagnostics)
        if net is None:
            print_diagnostics(diagnostics)
            return 1
        task = args.task or tasks.task_of(net)
        # segmentation's and sequence-to-sequence's embedded default data sets
        data = args.data or {"segment": "shapes", "seq2seq": "reverse"}.get(task, config.data)
        try:  # before a run directory is made
            tasks.check_network(net, task)
            if task == "lm" and args.data is None:
                raise DataError(f"`{net.name}` is a language model (token ids in, scores of "
                                "the next token out), which learns from a text: give --data "
                                "text:PATH (a UTF-8 file)")
            tasks.check_data(task, data)
        except DataError as error:
            say("train", error)
            return 2
        from ..api import load

        saved = getattr(args, "saved_model", None)  # a .pt: the spec it carries, and its recipe
        spec = saved.spec if saved is not None else load(Path(args.file),
                                                         allow_use=args.allow_use or ())
        try:
            recipe = spec.recipe(net.name) if hasattr(spec, "recipe") else {}
        except SpecError as error:
            print_diagnostics(error.diagnostics)
            return 1
        if args.optimizer is not None and recipe.get("optimizer", args.optimizer) != args.optimizer:
            # another optimiser than the recipe's: its rate and momentum do not carry over
            recipe = {k: v for k, v in recipe.items()
                      if k not in ("optimizer", "lr", "momentum", "nesterov", "weight_decay")}
        used = {k: v for k, v in recipe.items() if getattr(args, k, None) is None}
        if used:
            config = config_from_args(args, used)
            print(f"recipe of {args.file} for {net.name}: " + ", ".join(
                f"--{k.replace('_', '-')} {v}" for k, v in used.items()) +
                " (options given on the command line win)", file=sys.stderr)
        config.task, config.data = task, data
        try:
            config.check()  # the rules that join options (--mixup is for classifiers)
        except ValueError as error:
            say("train", error)
            return 2
        config.progress = not args.no_progress
        config.tensorboard = not args.no_tensorboard
        if args.print_config:  # what would run, as a --config file; nothing is trained
            from . import config_file

            print(config_file.dump(config_file.resolved(args, config))[0], end="")
            return 0
        files, root = spec.files()
        sets = dict(s.split("=", 1) for s in (args.set or []))
        info = RunInfo(files, root, net.name, sets,
                       list(net.input_shape) if args.input else None,
                       plugins=list(args.plugin or []))
        base = Path(args.out) if args.out else Path("runs") / f"{net.name}-{config.data.split(':')[0]}"
        run = None
        if processes.main:  # one run directory, chosen by rank 0
            try:
                run = new_run_dir(base)
                (run / Path(root).name).write_text(files[root])
                (run / "options.json").write_text(json.dumps(
                    {"spec": args.file, "network": net.name, "set": sets, "input": args.input,
                     "processes": processes.world, **asdict(config)}, indent=2))
                (run / "network.json").write_text(json.dumps(net.to_json(), indent=2))
                from . import config_file  # `archdsl train --config RUN/config.yaml` again

                text, suffix = config_file.dump(config_file.resolved(args, config))
                (run / f"config{suffix}").write_text(text)
            except OSError as error:
                where = run if run is not None else base
                say("train", f"cannot write {where}: {error.strerror or error}")
                return 2
        run = Path(processes.share(str(run) if run else None))
    if processes.main:
        on = f" on {processes.world} processes" if processes.active else ""
        doing = {"classify": "training", "segment": "training to segment:",
                 "lm": "training a language model:",
                 "seq2seq": "training a sequence-to-sequence model:"}[config.task]
        print(f"{doing} {net.name} ({net.params_total:,} params) on {config.data} "
              f"for {config.epochs} epochs{on}; run directory {run}", file=sys.stderr)
    try:
        result = train(net, info, config, run, resume,
                       log=lambda line: print(line, file=sys.stderr), processes=processes)
    except DataError as error:
        say("train", error)
        _discard_empty_run(run, resume, processes)
        return 2
    except (OutputError, checkpoint.CheckpointError) as error:  # a full disk, a read-only run
        say("train", error)
        return 2
    except OSError as error:
        say("train", f"cannot write in {run}: {error.strerror or error}; the checkpoints "
                     f"written before are kept")
        return 2
    except TrainingStopped as stop:
        print(f"archdsl train: {stop}", file=sys.stderr)
        _discard_empty_run(run, resume, processes)
        return stop.status
    if not processes.main:
        return 0
    print(f"done: {result['network']} on {result['data']}, {result['epochs']} epochs: "
          f"{tasks.make(config.task, 0).done(result)}; run directory {result['run']}")
    return 0


def _discard_empty_run(run: Path, resume, processes) -> None:
    """A new run that failed before its first checkpoint leaves no directory behind: the
    retry gets the same name, not `-2`. A run with a checkpoint is kept, to be resumed."""
    import shutil

    if resume is not None or not processes.main or run is None:
        return
    if any(run.glob("*.pt")):
        return
    shutil.rmtree(run, ignore_errors=True)
    print(f"archdsl train: nothing was saved; removed the run directory {run}",
          file=sys.stderr)


def _config_of(state: dict, path: str, command: str, data: str | None = None
               ) -> TrainConfig | None:
    """The training options a checkpoint recorded, checked like the command line's, or None
    after saying what is wrong. A saved model (`compile -o model.pt`) records none: `eval`
    then takes the default options and the data set given with --data."""
    if "config" not in state:
        if command == "eval" and data:
            return TrainConfig(data=data)
        say(command, f"{path} is a saved model, not a training checkpoint: " +
            ("it does not say which data set to evaluate it on; give --data" if command == "eval"
             else "only a checkpoint written by `archdsl train` can be resumed"))
        return None
    try:
        return TrainConfig.from_dict(state["config"])
    except ValueError as error:
        say(command, f"{path} is a damaged archdsl checkpoint: {error}")
        return None


def _read_checkpoint(path: str, command: str) -> dict | None:
    """A checkpoint's contents, or None after saying why it cannot be read."""
    try:
        return checkpoint.load(Path(path))
    except checkpoint.CheckpointError as error:
        say(command, error)
        return None


def _best_of_run(path: str, doing: str) -> str:
    """A run directory stands for its best checkpoint (the best validation top-1), as the run
    reports it; a file is itself."""
    if Path(path).is_dir() and (Path(path) / "best.pt").is_file():
        path = str(Path(path) / "best.pt")
        print(f"{doing} {path}, the run's best checkpoint by validation (name last.pt for "
              f"the last epoch's)", file=sys.stderr)
    return path


def run_predict(args) -> int:
    """`archdsl predict CHECKPOINT IMAGE...`: the top classes of each image."""
    from .predict import PredictError, Predictor, image_files
    from .preprocess import Preprocess

    if args.top_k < 1:
        say("predict", f"--top-k must be at least 1, got {args.top_k}")
        return 2
    if args.batch_size is not None and args.batch_size < 1:
        say("predict", f"--batch-size must be at least 1, got {args.batch_size}")
        return 2
    args.checkpoint = _best_of_run(args.checkpoint, "predicting with")
    state = _read_checkpoint(args.checkpoint, "predict")
    if state is None:
        return 2
    if "preprocess" not in state:
        say("predict", f"{args.checkpoint} records no preprocessing (it was not written by "
            "`archdsl train`), so raw images cannot be fed to it; train the network with "
            "`archdsl train` and predict with its checkpoint")
        return 2
    if state["preprocess"].get("task") in ("lm", "seq2seq"):
        what, verb = (("a language model", "continue a text") if state["preprocess"]["task"]
                      == "lm" else ("a sequence-to-sequence model", "write a text's target"))
        say("predict", f"{args.checkpoint} is {what}, which reads text, not images: {verb} "
            f"with `archdsl generate {args.checkpoint} --prompt ...`")
        return 2
    try:
        net = network_from_files(state["spec_files"], state["spec_name"], state["network"],
                                 state["args"], state["input_shape"], state.get("plugins", []),
                                 args.plugin)
        predictor = Predictor(net, state["model"], Preprocess.from_dict(state["preprocess"]),
                              pick_device(args.device or "auto"))
        files = image_files(args.images)
        results = predictor(files, args.top_k, args.batch_size or 256)
    except (PredictError, SpecError, DataError) as error:
        say("predict", error)
        return 2
    if predictor.preprocess.task == "segment":
        return _write_masks(args, files, results)
    if args.json:
        print(json.dumps([{"image": str(f), "top": r} for f, r in zip(files, results)],
                         indent=2))
        return 0
    for file, top in zip(files, results):
        print(printable(f"{file}: " + ", ".join(f"{t['label']} {t['probability']:.1%}"
                                                 for t in top)))
    return 0


def run_generate(args) -> int:
    """`archdsl generate CHECKPOINT --prompt TEXT`: the prompt and what a trained language
    model writes after it, on stdout."""
    import math

    from .preprocess import Preprocess
    from .text import (Streamed, check_token_ids, decodes_with_cache, generate,
                       reads_whole_context, vocabulary_of)

    if not 1 <= args.length <= 1_000_000:
        say("generate", f"--length must be a number of tokens (characters, or a tokenizer's "
            f"tokens) from 1 to 1,000,000, got {args.length}")
        return 2
    if args.temperature is not None and not (math.isfinite(args.temperature)
                                             and 0 <= args.temperature <= 100):
        say("generate", f"--temperature must be from 0 (always the most likely token) to "
            f"100, got {args.temperature}")
        return 2
    if args.top_k is not None and args.top_k < 1:
        say("generate", f"--top-k must be at least 1, got {args.top_k}")
        return 2
    if not 0 <= args.seed < 2 ** 63:
        say("generate", f"--seed must be an integer from 0 to 2**63 - 1, got {args.seed}")
        return 2
    args.checkpoint = _best_of_run(args.checkpoint, "generating with")
    state = _read_checkpoint(args.checkpoint, "generate")
    if state is None:
        return 2
    if state.get("preprocess", {}).get("task") not in ("lm", "seq2seq"):
        say("generate", f"{args.checkpoint} is not a language model (a checkpoint of "
            "`archdsl train --task lm` or `--task seq2seq`); a classifier or segmenter "
            f"predicts: `archdsl predict {args.checkpoint} IMAGE...`")
        return 2
    preprocess = Preprocess.from_dict(state["preprocess"])  # checked when it was read
    try:
        vocabulary = vocabulary_of(preprocess)
        prompt = args.prompt if args.prompt is not None else vocabulary.default_prompt()
        ids = vocabulary.encode(prompt, "--prompt")
        if not ids:
            raise DataError("--prompt is empty: give at least one character to continue")
        net = network_from_files(state["spec_files"], state["spec_name"], state["network"],
                                 state["args"], state["input_shape"], state.get("plugins", []),
                                 args.plugin)
        check_token_ids(ids, net, "--prompt")
        device = pick_device(args.device or "auto")
    except (DataError, SpecError) as error:
        say("generate", error)
        return 2
    model = net.build(logits=True).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:
        say("generate", f"{args.checkpoint}: its weights do not fit the network it describes")
        return 2
    if preprocess.task == "seq2seq":
        return _write_target(args, net, model, vocabulary, ids, device)
    temperature = 0.8 if args.temperature is None else args.temperature
    # the prompt, then each character as it is drawn
    sys.stdout.write(prompt)
    sys.stdout.flush()
    streamed = Streamed(vocabulary, ids)

    def show(token: int) -> None:
        sys.stdout.write(streamed.add(token))
        sys.stdout.flush()

    generate(model, ids, args.length, net.input_shape[0], len(vocabulary),
             padded=reads_whole_context(net), cached=decodes_with_cache(net),
             temperature=temperature, top_k=args.top_k, seed=args.seed, device=device,
             on_token=show, stop=preprocess.stop)
    sys.stdout.write(streamed.rest() + "\n")
    return 0


def _write_target(args, net, model, vocabulary, source, device) -> int:
    """A sequence-to-sequence model's target for the prompt (its source): written a token at
    a time, up to its end token, the network's target length or --length."""
    from .text import pair_lengths, translate

    try:
        lengths = pair_lengths(net, source, "--prompt", args.length)
    except DataError as error:
        say("generate", error)
        return 2

    def show(token: int) -> None:
        sys.stdout.write(vocabulary.decode([token]))
        sys.stdout.flush()

    translate(model, source, lengths, len(vocabulary), temperature=args.temperature or 0.0,
              top_k=args.top_k, seed=args.seed, device=device, on_token=show)
    sys.stdout.write("\n")
    return 0


def _write_masks(args, files, results) -> int:
    """A segmenter's predictions: a mask PNG per image (class indices, as mask data sets
    hold them) in a new folder, and what each image holds."""
    from PIL import Image

    from ..files import OutputError, write_output

    base = Path(args.out or "masks")
    try:
        folder = new_run_dir(base)  # a new folder: never overwrite earlier masks
    except OSError as error:
        say("predict", f"cannot write {base}: {error.strerror or error}")
        return 2
    written, taken = [], set()
    for file, result in zip(files, results):
        name, n = file.stem, 1
        while name in taken:  # two images of one name, in different folders
            n += 1
            name = f"{file.stem}-{n}"
        taken.add(name)
        mask = Image.fromarray(result["mask"].clamp(0, 255).byte().numpy())  # mode L
        try:
            written.append(write_output(folder / f"{name}.png",
                                        lambda tmp, m=mask: m.save(tmp, format="PNG")))
        except OutputError as error:
            say("predict", error)
            return 2
    if args.json:
        print(json.dumps([{"image": str(f), "mask": str(w), "classes": r["classes"]}
                          for f, w, r in zip(files, written, results)], indent=2))
        return 0
    for file, path, result in zip(files, written, results):
        print(printable(f"{file} -> {path}: " + ", ".join(
            f"{c['label']} {c['fraction']:.1%}" for c in result["classes"])))
    return 0


def run_eval(args) -> int:
    import torch

    from .data import BatchPipeline, load_splits, trained_classes

    from ..zoo import PLOT_FORMATS

    if args.confusion and Path(args.confusion).suffix.lower() not in PLOT_FORMATS:
        say("eval", f"cannot draw to `{Path(args.confusion).name}`: use "
            + ", ".join(PLOT_FORMATS))
        return 2
    args.checkpoint = _best_of_run(args.checkpoint, "evaluating")
    state = _read_checkpoint(args.checkpoint, "eval")
    if state is None:
        return 2
    config = _config_of(state, args.checkpoint, "eval", args.data)
    if config is None:
        return 2
    if args.data:
        config.data = args.data
    # where data sets are read and downloaded to is the user's choice, never the checkpoint's
    config.data_dir = args.data_dir or TrainConfig.data_dir
    if args.batch_size is not None:
        config.batch_size = args.batch_size
    try:
        config.check()  # the options given on the command line
    except ValueError as error:
        say("eval", error)
        return 2
    try:
        net = network_from_files(state["spec_files"], state["spec_name"], state["network"],
                                 state["args"], state["input_shape"], state.get("plugins", []),
                                 args.plugin)
        device = pick_device(args.device or "auto")
        if "config" not in state:  # a saved model: the task its network implies
            config.task = tasks.task_of(net)
        splits = load_splits(config.data, Path(config.data_dir), net.input_shape,
                             val_split=config.val_split, seed=config.seed,
                             fake_size=config.fake_size, download=not args.offline,
                             classes=trained_classes(state, config.task, config.data),
                             whole=args.split == "all", target_shape=tasks.target_shape(net))
    except (DataError, SpecError) as error:
        say("eval", error)
        return 2
    model = net.build(logits=True).to(device)
    try:
        model.load_state_dict(state["model"])
    except RuntimeError:  # names or shapes that do not fit: an altered checkpoint
        say("eval", f"{args.checkpoint}: its weights do not fit the network it describes")
        return 2
    data = splits.val if args.split == "val" else splits.test  # "all": one split of it all
    if data is None:
        print("archdsl eval: error: this run has no validation split", file=sys.stderr)
        return 2
    try:
        tasks.check_network(net, config.task)
        tasks.check_data(config.task, config.data)
    except DataError as error:
        say("eval", error)
        return 2
    outputs = tasks.scores(net)
    if data.classes > outputs:
        say("eval", tasks.too_few_scores(net, config.task, config.data, data.classes)
            .split("; ")[0] + ": it was not made for this data set")
        return 2
    task = tasks.make(config.task, outputs, data.class_names, net)
    # images normalised as in training (its data set's statistics, which the checkpoint
    # records), not by the statistics of the images evaluated
    trained = state.get("preprocess") or {}
    mean, std = (trained["mean"], trained["std"]) if trained.get("mean") else (splits.mean,
                                                                              splits.std)
    pipe = BatchPipeline(net.input_shape, mean, std, augment=False)
    with torch.no_grad():
        metrics = evaluate(model, data, pipe, config, device, task=task)
    if args.confusion:
        from ..extras import MissingExtra
        from .pictures import confusion_plot

        if "confusion" not in metrics:
            say("eval", "--confusion draws a classifier's confusion matrix (of up to "
                f"{tasks.Classify.CONFUSION_LIMIT} classes)")
            return 2
        try:
            confusion_plot(Path(args.confusion), metrics["confusion"], task.names)
        except (MissingExtra, OutputError) as error:
            say("eval", error)
            return 2
        print(f"wrote {args.confusion}", file=sys.stderr)
    if args.json:
        figures = dict(metrics)
        if config.task == "classify":
            figures.update(top1_error=1 - metrics["top1"], top5_error=1 - metrics["top5"])
        print(json.dumps({"checkpoint": args.checkpoint, "network": state["network"],
                          "data": config.data, "split": args.split, splits.unit: len(data),
                          "task": config.task, **figures}, indent=2))
        return 0
    print(f"{state['network']} on {config.data} ({args.split}, {len(data):,} {splits.unit}): "
          + task.evaluated(metrics))
    return 0
