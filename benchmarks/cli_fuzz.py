"""Fuzzing the command line: random subcommands, options, values and paths, each run through
archdsl's `main` in this process, in a scratch folder. A case fails if it ends with exit
status 3 (an internal error), prints a traceback, or lets an exception out of `main`.

    .venv/bin/python benchmarks/cli_fuzz.py [--cases 2000] [--seed 0] [--write]

--write puts the figures into docs/benchmarks.md (section cli-fuzz); benchmarks/fuzz.py runs
it too, after the spec fuzzers; tests/test_fuzz.py runs a few dozen cases.
"""

import argparse
import collections
import contextlib
import io
import os
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUBCOMMANDS = ("check", "summary", "compile", "draw", "fmt", "layers", "zoo", "train", "eval",
               "predict")
NUMBERS = ("-1", "0", "1", "2", "3", "7", "1e9", "-0.5", "0.5", "1.5", "nan", "inf", "many", "",
           "0x10", "１")
WORDS = ("lenet5", "nosuch", "resnet18", "", "a b", "é", "--", "-", "x" * 300)


def scratch(folder: Path) -> dict:
    """Paths of every kind a user might give, made once."""
    (folder / "ok.arch").write_text((ROOT / "specs" / "lenet.arch").read_text())
    (folder / "bad.arch").write_text("network n:\n    input 3x8x8\n    conv(4, 3) rleu\n")
    (folder / "notes.txt").write_text("hello\n")
    (folder / "empty.arch").write_text("")
    (folder / "latin.arch").write_bytes(b"# caf\xe9\n")
    (folder / "dir").mkdir()
    (folder / "dir.arch").mkdir()
    (folder / "fake.pt").write_bytes(b"PK\x03\x04 not really")
    (folder / "images" / "a").mkdir(parents=True)
    (folder / "images" / "a" / "x.png").write_bytes(b"not an image")
    from archdsl.cli import main  # a real run, for predict to read

    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        main(["train", str(ROOT / "specs" / "lenet.arch"), "lenet5", "--data", "fake",
              "--fake-size", "128", "--epochs", "1", "--limit-steps", "1", "--no-progress",
              "--no-tensorboard", "--out", str(folder / "trained")])
    return {
        "runs": [str(folder / "trained"), str(folder / "trained" / "last.pt")],
        "spec": [str(ROOT / "specs" / "lenet.arch"), str(folder / "ok.arch"),
                 str(folder / "bad.arch"), str(folder / "empty.arch"),
                 str(folder / "latin.arch"), str(folder / "notes.txt"), str(folder / "dir"),
                 str(folder / "dir.arch"), str(folder / "missing.arch"), "/proc/self/environ",
                 str(ROOT / "specs"), "/dev/null"],
        "out": [str(folder / "o.py"), str(folder / "o.pt"), str(folder / "o.svg"),
                str(folder / "o.dot"), str(folder / "o.png"), str(folder / "o.h5"),
                str(folder / "nodir" / "o.py"), str(folder / "notes.txt" / "o.py"),
                str(folder / "dir"), "/proc/o.py", str(folder / "o"), str(folder / "o.onnx")],
        "checkpoint": [str(folder / "fake.pt"), str(folder / "missing.pt"), str(folder / "dir"),
                       str(folder / "notes.txt"), str(folder / "ok.arch")],
        "images": [str(folder / "images"), str(folder / "images" / "a" / "x.png"),
                   str(folder / "notes.txt"), str(folder / "missing.png"), str(folder / "dir"),
                   str(ROOT / "docs" / "images")],
        "data": ["digits", "fake", "mnist", "imagenet", "imagefolder:", "cifar10", "shapes",
                 f"masks:{folder}", "masks:",
                 f"imagefolder:{folder / 'images'}", f"imagefolder:{folder / 'nothing'}"],
    }


OPTIONS = {  # option -> what its value is drawn from (None: a flag)
    "check": {"--format": ["text", "json", "xml"], "--allow-use": "out"},
    "summary": {"--set": "set", "--input": ["3x32x32", "0x32x32", "1x32", "abc", "-1"],
                "--json": None, "--format": ["text", "json"], "--batch": NUMBERS,
                "--optimizer": ["sgd", "adamw", "adam"]},
    "compile": {"-o": "out", "--set": "set", "--weights": "checkpoint",
                "--torchvision": ["resnet18", "nosuch", "lenet:num_classes=x", ":"]},
    "draw": {"-o": "out", "--depth": NUMBERS, "--rankdir": ["TB", "LR", "XX"], "--names": None,
             "--dpi": NUMBERS},
    "fmt": {"--check": None},
    "layers": {"--markdown": None},
    "zoo": {"--plot": "out", "--json": None, "--markdown": None},
    "train": {"--data": "data", "--epochs": NUMBERS, "--batch-size": NUMBERS, "--lr": NUMBERS,
              "--momentum": NUMBERS, "--weight-decay": NUMBERS, "--val-split": NUMBERS,
              "--label-smoothing": NUMBERS, "--seed": NUMBERS, "--fake-size": NUMBERS,
              "--schedule": ["cosine", "step", "none"], "--step-epochs": NUMBERS,
              "--gamma": NUMBERS, "--warmup-epochs": NUMBERS, "--optimizer": ["sgd", "adam"],
              "--set": "set", "--resume": "checkpoint", "--init": "checkpoint",
              "--save-every": NUMBERS, "--clip-grad": NUMBERS, "--amp": ["bf16", "fp32"],
              "--accumulate": NUMBERS, "--patience": NUMBERS, "--ema": NUMBERS,
              "--task": ["classify", "segment", "detect"], "--config": "out",
              "--print-config": None, "--save-top": NUMBERS, "--mixup": NUMBERS,
              "--cutmix": NUMBERS},
    "eval": {"--data": "data", "--batch-size": NUMBERS, "--split": ["test", "val", "train"],
             "--confusion": "out"},
    "predict": {"--top-k": NUMBERS, "--json": None, "--batch-size": NUMBERS},
}


def draw_value(kind, paths, rng):
    if kind is None:
        return None
    if isinstance(kind, (list, tuple)):
        return rng.choice(kind)
    if kind == "set":
        return rng.choice(["classes=3", "classes=-1", "act=relu", "act=nosuch", "nosuch=1",
                           "classes", "=3", "classes=", "size=1"])
    return rng.choice(paths[kind])


def draw_case(paths, rng, folder: Path) -> list[str]:
    command = rng.choice(SUBCOMMANDS)
    argv = [command]
    if command in ("check", "fmt", "zoo"):
        # (zoo without a path reads the whole zoo: seconds a case, nothing more to find)
        argv += [rng.choice(paths["spec"]) for _ in range(rng.randint(1, 2))]
    elif command in ("summary", "compile", "draw", "train"):
        if not (command == "train" and rng.random() < 0.3):
            argv.append(rng.choice(paths["spec"] + paths["checkpoint"]))
            if rng.random() < 0.6:
                argv.append(rng.choice(WORDS))
    elif command == "eval":
        argv.append(rng.choice(paths["checkpoint"]))
    elif command == "predict":
        argv.append(rng.choice(paths["checkpoint"] + paths["runs"]))
        argv += [rng.choice(paths["images"]) for _ in range(rng.randint(0, 2))]
    elif command == "layers" and rng.random() < 0.5:
        argv.append(rng.choice(["conv", "convv", "bn", "dfl", ""]))
    options = OPTIONS[command]
    for option in rng.sample(sorted(options), k=min(len(options), rng.randint(0, 3))):
        value = draw_value(options[option], paths, rng)
        argv += [option] if value is None else [option, value]
    if rng.random() < 0.05:
        argv.append(rng.choice(["--frobnicate", "-x", "--epochs=", "--", "--help"]))
    if command == "train":  # short, quiet and inside the scratch folder, whatever was drawn
        argv += ["--limit-steps", "1", "--epochs", "1", "--no-progress", "--no-tensorboard",
                 "--out", str(folder / "runs" / f"r{rng.randrange(10 ** 9)}")]
    return argv


def run_cases(cases: int, seed: int = 0, log=None) -> dict:
    """Run `cases` random command lines; returns the counts of exit statuses, the failures
    (argv, status, output) and the slowest case."""
    from archdsl.cli import main

    rng = random.Random(seed)
    statuses, failures, slowest = collections.Counter(), [], (0.0, None)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        paths = scratch(folder)
        here = os.getcwd()
        os.chdir(folder)
        try:
            for _ in range(cases):
                argv = draw_case(paths, rng, folder)
                out, err = io.StringIO(), io.StringIO()
                start = time.perf_counter()
                try:
                    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
                        status = main(argv)
                except SystemExit as exit_:  # --help
                    status = exit_.code if isinstance(exit_.code, int) else 0
                except BaseException as error:  # noqa: BLE001 — an escape is the failure sought
                    status = f"escaped {type(error).__name__}: {error}"
                took = time.perf_counter() - start
                slowest = max(slowest, (took, argv), key=lambda t: t[0])
                text = err.getvalue()
                statuses[status] += 1
                if status == 3 or not isinstance(status, int) or "Traceback" in text:
                    failures.append((argv, status, text[-1500:]))
                if log:
                    log(f"{took:.3f}\t{status}\t{' '.join(argv)}")
        finally:
            os.chdir(here)
    return {"statuses": statuses, "failures": failures, "slowest": slowest}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args()
    start = time.perf_counter()
    result = run_cases(args.cases, args.seed)
    text = summary(result, args.cases, time.perf_counter() - start)
    print(text)
    for argv, status, output in result["failures"][:10]:
        print("FAILED:", argv, status, output, sep="\n")
    if args.write and not result["failures"]:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        from common import machine, write_section

        write_section("cli-fuzz", f"Machine: {machine()}. " + text)
    return 1 if result["failures"] else 0


def summary(result, cases: int, wall: float) -> str:
    statuses = ", ".join(f"exit {s}: {n:,}" for s, n in sorted(result["statuses"].items(),
                                                              key=lambda kv: str(kv[0])))
    took, argv = result["slowest"]
    return (f"{cases:,} random command lines in {wall:.0f} s: {len(result['failures'])} "
            f"failures (exit 3, a traceback or an escaped exception). {statuses}. Slowest "
            f"{took:.2f} s (`archdsl {' '.join(argv)[:80]}`).")


if __name__ == "__main__":
    sys.exit(main())
