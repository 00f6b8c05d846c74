"""`archdsl train` and `archdsl eval`: learning, checkpoints, exact resume, data formats."""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from archdsl.cli import main
from conftest import SPECS

LENET = [str(SPECS / "lenet.arch"), "lenet5", "--set", "act=relu"]
QUIET = ["--no-progress", "--no-tensorboard"]


def train(capsys, tmp_path, *options, name="run"):
    status = main(["train", *LENET, "--out", str(tmp_path / name), *QUIET, *options])
    out = capsys.readouterr()
    return status, out.out, out.err


def test_a_short_run_learns(capsys, tmp_path):
    status, out, err = train(capsys, tmp_path, "--epochs", "6")
    assert status == 0, err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["test_top1"] > 0.85  # chance is 0.10
    assert "test top-1" in out
    run = tmp_path / "run"
    for name in ("last.pt", "best.pt", "metrics.csv", "metrics.json", "curves.png",
                 "options.json", "network.json", "lenet.arch"):
        assert (run / name).exists(), name
    history = json.loads((run / "metrics.json").read_text())
    assert [row["epoch"] for row in history] == list(range(1, 7))
    assert history[-1]["train_loss"] < history[0]["train_loss"]


class HostWaits(torch.overrides.TorchFunctionMode):
    """Counts what makes the host wait for a GPU to finish everything queued before it:
    reads of a tensor's value, and blocking copies to a device (a copy from pageable host
    memory synchronises the stream; on a CPU these calls are no-ops, so the count is the same
    there)."""

    READS = {"cpu", "item", "tolist", "numpy", "__float__", "__int__", "__bool__"}

    def __init__(self):
        super().__init__()
        self.count = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        to_device = name == "to" and not kwargs.get("non_blocking") and any(
            isinstance(a, (torch.device, str)) for a in (*args[1:], kwargs.get("device")))
        self.count += name in self.READS or name == "cuda" or to_device
        return func(*args, **kwargs)


def test_training_steps_do_not_wait_for_the_device(capsys, tmp_path):
    # the loss is checked every 10 steps; nothing else of a step is read back or copied over
    # blocking, so the GPU's queue never runs dry (the two runs differ only in their number of
    # training steps). Three blocking copies a step made ResNet-18 train at 0.77 of a
    # hand-written loop on an H100.
    # (SGD: AdamW's step reads its per-parameter step counters, CPU tensors that never wait
    # for a GPU, but that the counter here would count)
    waits = []
    for steps in (10, 40):
        with HostWaits() as counter:
            status, _, err = train(capsys, tmp_path, "--epochs", "1", "--limit-steps",
                                   str(steps), "--batch-size", "16", "--optimizer", "sgd",
                                   name=f"steps{steps}")
        assert status == 0, err
        waits.append(counter.count)
    assert waits[1] - waits[0] <= 30 / 10 + 1, waits


def test_runs_are_never_overwritten(capsys, tmp_path):
    for _ in range(2):
        assert train(capsys, tmp_path, "--epochs", "1", "--limit-steps", "2")[0] == 0
    assert (tmp_path / "run").is_dir() and (tmp_path / "run-2").is_dir()


def test_checkpoints_load_with_weights_only(capsys, tmp_path):
    train(capsys, tmp_path, "--epochs", "1", "--limit-steps", "3")
    state = torch.load(tmp_path / "run" / "last.pt", weights_only=True)
    assert state["network"] == "lenet5" and "conv1.weight" in state["model"]
    assert state["args"] == {"act": "relu"} and "lenet.arch" in state["spec_files"]


def test_eval_a_checkpoint(capsys, tmp_path):
    train(capsys, tmp_path, "--epochs", "3")
    capsys.readouterr()
    status = main(["eval", str(tmp_path / "run" / "best.pt")])
    out = capsys.readouterr().out
    assert status == 0 and "top-1" in out and "top-5 error" in out


def test_nan_loss_stops_with_a_clear_message(capsys, tmp_path):
    status, _, err = train(capsys, tmp_path, "--epochs", "2", "--lr", "1e30")
    assert status == 4
    assert "the loss became" in err and "--lr" in err and "Traceback" not in err
    # it diverged before the first checkpoint: no `last.pt` is named, and the run directory
    # is gone, so a retry gets the same name (issue 18)
    assert "No checkpoint was written" in err and "last.pt" not in err
    assert not (tmp_path / "run").exists() and "removed the run directory" in err


def test_the_start_line_says_which_images_each_split_holds(capsys, tmp_path):
    status, _, err = train(capsys, tmp_path, "--epochs", "1", "--limit-steps", "1")
    assert status == 0, err
    assert ("data: digits: 1,295 training images, 143 validation (held out of train), 359 "
            "test images (20% held out, stratified, fixed), 10 classes") in err


def _image_folder(root, splits, per_class=6, classes=("cats", "dogs")):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in splits:
        for label in classes:
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")


@pytest.mark.parametrize("layout,test_from,test_images", [
    (["train", "test"], "{images}/test", 12),
    (["train", "val"], "{images}/val", 12),
    ([""], "20% of {images} held out, stratified, fixed", 2),
])
def test_imagefolder_layouts_hold_out_a_real_test_set(capsys, tmp_path, layout, test_from,
                                                      test_images):
    """Without test/, the test set is held out of the images, never the training images
    themselves; train/ + val/ tests on val/ (issue 18: `train` and `val` became the classes,
    and the test set was the whole folder)."""
    from archdsl.train.data import load_splits

    _image_folder(tmp_path / "images", layout)
    splits = load_splits(f"imagefolder:{tmp_path / 'images'}", tmp_path, (3, 16, 16),
                         val_split=0.0)
    assert splits.train.classes == 2 and splits.train.class_names == ["cats", "dogs"]
    assert len(splits.test) == test_images
    assert splits.test_from == test_from.format(images=tmp_path / "images")
    if layout == [""]:  # held out: no image in both
        train = {tuple(x.flatten()[:16].tolist()) for x in splits.train.images}
        assert not any(tuple(x.flatten()[:16].tolist()) in train for x in splits.test.images)


def _train_process(tmp_path, name, *options):
    # bitwise equal on a CPU; on CUDA, cuDNN's autotuned kernels differ in the last bits
    cmd = [sys.executable, "-m", "archdsl", "train", *LENET, "--out", str(tmp_path / name),
           *QUIET, "--epochs", "4", "--save-every", "7", "--device", "cpu", *options]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _final_state(run):
    state = torch.load(run / "last.pt", weights_only=True)
    history = [{k: v for k, v in row.items() if k not in ("seconds", "images_per_s")}
               for row in state["history"]]
    return state["model"], history


@pytest.mark.parametrize("how", ["SIGKILL", "SIGINT"])
def test_an_interrupted_run_resumes_exactly(tmp_path, how):
    reference = _train_process(tmp_path, "reference")
    victim = _train_process(tmp_path, "victim")
    checkpoint = tmp_path / "victim" / "last.pt"
    deadline = time.time() + 120
    while not checkpoint.exists() and victim.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    assert victim.poll() is None, "the run ended before it could be interrupted"
    victim.send_signal(getattr(signal, how))
    victim.communicate(timeout=60)
    assert victim.returncode == (-signal.SIGKILL if how == "SIGKILL" else 130)
    state = torch.load(checkpoint, weights_only=True)
    assert state["epoch"] < 4  # stopped before the end
    resumed = subprocess.run([sys.executable, "-m", "archdsl", "train", "--resume",
                              str(tmp_path / "victim"), "--no-progress"],
                             capture_output=True, text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr
    assert reference.wait(timeout=300) == 0
    weights, history = _final_state(tmp_path / "victim")
    ref_weights, ref_history = _final_state(tmp_path / "reference")
    assert history == ref_history
    for key, value in ref_weights.items():
        assert torch.equal(value, weights[key]), key


def write_fake_cifar10(root, per_batch=40):
    """A small CIFAR-10 in its real on-disk format: pickled dicts of uint8 arrays."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        labels = rng.integers(0, 10, per_batch).tolist()
        data = rng.integers(0, 256, (per_batch, 3072), dtype=np.uint8)
        with open(folder / name, "wb") as f:
            pickle.dump({"batch_label": name, "labels": labels, "data": data}, f)


def test_cifar10_in_its_standard_format(capsys, tmp_path):
    write_fake_cifar10(tmp_path / "data")
    status = main(["train", str(SPECS / "lenet.arch"), "lenet5_cifar10", "--data", "cifar10",
                   "--data-dir", str(tmp_path / "data"), "--offline", "--epochs", "1",
                   "--batch-size", "32", "--out", str(tmp_path / "run"), *QUIET])
    out = capsys.readouterr()
    assert status == 0, out.err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["data"] == "cifar10"


def test_a_missing_data_set_says_where_to_put_it(capsys, tmp_path):
    status = main(["train", str(SPECS / "lenet.arch"), "lenet5_cifar10", "--data", "cifar10",
                   "--data-dir", str(tmp_path), "--offline", "--out", str(tmp_path / "run"),
                   *QUIET])
    err = capsys.readouterr().err
    assert status == 2
    assert "cifar-10-batches-py" in err and "cifar-10-python.tar.gz" in err


def test_data_pickles_cannot_run_code(tmp_path):
    from archdsl.train.data import _unpickle

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    path = tmp_path / "evil"
    path.write_bytes(pickle.dumps({"data": Evil()}))
    with pytest.raises(pickle.UnpicklingError):
        _unpickle(path)


def test_more_classes_than_outputs_is_refused(capsys, tmp_path):
    status = main(["train", *LENET, "--set", "classes=5", "--out", str(tmp_path / "r"), *QUIET])
    assert status == 2 and "--set classes=10" in capsys.readouterr().err


def test_fake_data_for_throughput(capsys, tmp_path):
    status = main(["train", str(SPECS / "resnet.arch"), "resnet18", "--set", "classes=10",
                   "--input", "3x32x32", "--data", "fake", "--fake-size", "256",
                   "--epochs", "1", "--batch-size", "64", "--out", str(tmp_path / "r"), *QUIET])
    assert status == 0, capsys.readouterr().err


def test_two_process_ddp_equals_one_process_with_the_global_batch(tmp_path):
    """2 processes x batch 32 on CPU (gloo) must train as 1 process x batch 64: DDP averages
    the two halves' gradients, which is the gradient of the whole batch."""
    common = [*LENET, "--epochs", "2", "--no-augment", *QUIET, "--save-every", "0",
              "--device", "cpu"]
    ddp = subprocess.run([sys.executable, "-m", "archdsl", "train", *common, "--batch-size", "32",
                          "--nproc", "2", "--out", str(tmp_path / "ddp")],
                         capture_output=True, text=True, timeout=300)
    assert ddp.returncode == 0, ddp.stderr
    assert "on 2 processes" in ddp.stderr
    single = subprocess.run([sys.executable, "-m", "archdsl", "train", *common, "--batch-size",
                             "64", "--out", str(tmp_path / "single")],
                            capture_output=True, text=True, timeout=300)
    assert single.returncode == 0, single.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ddp", "single"]  # one run directory
    a = torch.load(tmp_path / "ddp" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "single" / "last.pt", weights_only=True)
    # equal up to floating-point summation order (measured: 7e-5 after 40 steps; a wrong
    # sharding of the batches gives 2e-2)
    for key, value in b["model"].items():
        assert torch.allclose(a["model"][key], value, atol=1e-3), key
    assert [r["epoch"] for r in a["history"]] == [1, 2]  # logged once, by rank 0
    for ra, rb in zip(a["history"], b["history"]):
        assert ra["train_loss"] == pytest.approx(rb["train_loss"], rel=1e-4)
        assert ra["val_top1"] == pytest.approx(rb["val_top1"])
    result = json.loads((tmp_path / "ddp" / "result.json").read_text())
    assert 0 <= result["test_top1"] <= 1


def test_more_processes_than_gpus_is_a_clear_error(capsys, tmp_path, monkeypatch):
    # what each worker of `torchrun --nproc-per-node 2` sees on a machine with one GPU; the
    # check comes before the process group is joined, so no worker waits for another
    for name, value in {"RANK": "1", "LOCAL_RANK": "1", "WORLD_SIZE": "2",
                        "LOCAL_WORLD_SIZE": "2"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    status, _, err = train(capsys, tmp_path, "--epochs", "1")
    assert status == 2
    assert "2 processes on this machine, which has 1 GPU" in err and "--nproc 1" in err
    assert "Traceback" not in err and not (tmp_path / "run").exists()


def test_imagefolder(capsys, tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "test"):
        for label in ("cats", "dogs"):
            folder = tmp_path / "images" / split / label
            folder.mkdir(parents=True)
            for i in range(12):
                pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    status = main(["train", str(SPECS / "lenet.arch"), "lenet5_cifar10", "--data",
                   f"imagefolder:{tmp_path / 'images'}", "--epochs", "1", "--batch-size", "8",
                   "--out", str(tmp_path / "run"), *QUIET])
    assert status == 0, capsys.readouterr().err
    assert json.loads((tmp_path / "run" / "result.json").read_text())["data"].startswith("imagefolder:")


def write_idx(path, array):
    import gzip
    import struct

    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(
        struct.pack(">I", d) for d in array.shape)
    with gzip.open(str(path) + ".gz", "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def test_mnist_in_its_standard_format(capsys, tmp_path):
    raw = tmp_path / "data" / "MNIST" / "raw"
    raw.mkdir(parents=True)
    rng = np.random.default_rng(0)
    write_idx(raw / "train-images-idx3-ubyte", rng.integers(0, 256, (80, 28, 28)))
    write_idx(raw / "train-labels-idx1-ubyte", rng.integers(0, 10, 80))
    write_idx(raw / "t10k-images-idx3-ubyte", rng.integers(0, 256, (20, 28, 28)))
    write_idx(raw / "t10k-labels-idx1-ubyte", rng.integers(0, 10, 20))
    status = main(["train", *LENET, "--data", "mnist", "--data-dir", str(tmp_path / "data"),
                   "--offline", "--epochs", "1", "--batch-size", "16",
                   "--out", str(tmp_path / "run"), *QUIET])
    assert status == 0, capsys.readouterr().err


@pytest.mark.parametrize("name", ["mnist", "fashion-mnist", "cifar10", "cifar100"])
def test_downloads_are_checked_against_published_checksums(name, tmp_path, monkeypatch):
    import torchvision.datasets.utils as utils

    from archdsl.train.data import _download

    calls = []
    monkeypatch.setattr(utils, "download_url", lambda *a, **k: calls.append(k))
    monkeypatch.setattr(utils, "download_and_extract_archive", lambda *a, **k: calls.append(k))
    _download(name, tmp_path)
    assert calls and all(len(k["md5"]) == 32 for k in calls)


def test_a_full_disk_stops_training_cleanly_and_keeps_the_last_checkpoint(capsys, tmp_path,
                                                                          monkeypatch):
    """A checkpoint that cannot be written stops with `cannot write PATH: reason` (exit 2),
    leaves no temporary file, and the earlier checkpoint survives (issue 18: exit 3 and a
    partial last.pt.tmp)."""
    import errno

    real_save, calls = torch.save, []

    def full_disk(obj, f, *args, **kwargs):
        calls.append(f)
        if len(calls) <= 2:  # the first epoch's last.pt and best.pt
            return real_save(obj, f, *args, **kwargs)
        Path(f).write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch, "save", full_disk)
    status, _, err = train(capsys, tmp_path, "--epochs", "3")
    assert status == 2, err
    assert "cannot write" in err and ".pt: No space left on device; the earlier file is kept" \
        in err and "Traceback" not in err
    run = tmp_path / "run"
    assert sorted(p.name for p in run.iterdir() if "tmp" in p.name) == []
    monkeypatch.setattr(torch, "save", real_save)
    from archdsl.train import checkpoint

    assert checkpoint.load(run / "last.pt")["epoch"] == 1  # the first epoch's, intact


def test_eval_of_a_run_takes_its_best_checkpoint_and_prints_json(capsys, tmp_path):
    status, _, err = train(capsys, tmp_path, "--epochs", "2")
    assert status == 0, err
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert main(["eval", str(tmp_path / "run"), "--json"]) == 0
    out = capsys.readouterr()
    metrics = json.loads(out.out)
    assert metrics["checkpoint"].endswith("best.pt") and "best checkpoint by validation" in out.err
    assert metrics["top1"] == pytest.approx(result["best_test_top1"])
    assert metrics["top1_error"] == pytest.approx(1 - metrics["top1"])


RECIPE_SPEC = """network tiny(classes=10):
    input 1x8x8
    conv(8, 3, pad=1) relu gap linear(classes)
network tiny_wide = tiny()
recipe tiny: optimizer="adamw", lr=0.004, epochs=2, label_smoothing=0.1
"""


def test_a_spec_recipe_trains_where_no_option_is_given(capsys, tmp_path):
    """The spec's recipe sets what the command line leaves out, for the network and its
    variants; options given win; the start line and options.json say what was used
    (issue 19: the paper's LeNet-5 stayed at chance with every default)."""
    spec = tmp_path / "tiny.arch"
    spec.write_text(RECIPE_SPEC)
    for network, extra, lr in (("tiny", [], 0.004), ("tiny_wide", ["--lr", "0.01"], 0.01)):
        out = tmp_path / network
        status = main(["train", str(spec), network, "--out", str(out), "--limit-steps", "2",
                       *QUIET, *extra])
        err = capsys.readouterr().err
        assert status == 0, err
        options = json.loads((out / "options.json").read_text())
        assert (options["optimizer"], options["lr"], options["epochs"],
                options["label_smoothing"]) == ("adamw", lr, 2, 0.1)
        assert f"recipe of {spec} for {network}: --optimizer adamw" in err
        assert ("--lr 0.004" in err) == (not extra)


def test_lenet5_with_every_default_learns_from_its_recipe(capsys, tmp_path):
    """`archdsl train specs/lenet.arch lenet5` with no option: the paper's sigmoid network
    learns from the recipe in its spec (five seeds in docs/benchmarks.md reach 95%)."""
    status = main(["train", str(SPECS / "lenet.arch"), "lenet5", "--out",
                   str(tmp_path / "run"), *QUIET])
    assert status == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["epochs"] == 40 and result["test_top1"] >= 0.95


def test_another_optimizer_than_the_recipes_drops_its_rate(capsys, tmp_path):
    spec = tmp_path / "tiny.arch"
    spec.write_text(RECIPE_SPEC)
    status = main(["train", str(spec), "tiny", "--optimizer", "sgd", "--out",
                   str(tmp_path / "run"), "--limit-steps", "1", *QUIET])
    assert status == 0
    options = json.loads((tmp_path / "run" / "options.json").read_text())
    assert (options["optimizer"], options["lr"], options["epochs"]) == ("sgd", 0.05, 2)


def test_eval_gives_each_class_accuracy_and_draws_the_confusion_matrix(capsys, tmp_path):
    status, _, err = train(capsys, tmp_path, "--epochs", "2")
    assert status == 0, err
    assert (tmp_path / "run" / "confusion.png").exists()  # the run's best checkpoint, on test
    assert main(["eval", str(tmp_path / "run"), "--json", "--confusion",
                 str(tmp_path / "cm.png")]) == 0
    figures = json.loads(capsys.readouterr().out)
    confusion = torch.tensor(figures["confusion"])
    assert confusion.shape == (10, 10) and int(confusion.sum()) == figures["images"]
    assert int(confusion.diag().sum()) == round(figures["top1"] * figures["images"])
    for label, accuracy in figures["per_class"].items():
        row = confusion[int(label)]
        assert accuracy == pytest.approx(float(row[int(label)] / row.sum()))
    assert (tmp_path / "cm.png").stat().st_size > 1000
    assert main(["eval", str(tmp_path / "run")]) == 0
    assert "accuracy by class: " in capsys.readouterr().out
    assert main(["eval", str(tmp_path / "run"), "--confusion", str(tmp_path / "cm.gif")]) == 2
    assert "cannot draw to `cm.gif`" in capsys.readouterr().err


def test_accumulated_gradients_equal_one_larger_batch(capsys, tmp_path):
    """--accumulate 2 with batches of 16 takes the steps of batches of 32 (the same images,
    the mean of the two halves' losses): the same weights, to rounding."""
    same = ["--epochs", "1", "--no-augment", "--schedule", "constant", "--lr", "0.05",
            "--optimizer", "sgd"]
    assert train(capsys, tmp_path, *same, "--batch-size", "32", name="big")[0] == 0
    assert train(capsys, tmp_path, *same, "--batch-size", "16", "--accumulate", "2",
                 name="halves")[0] == 0
    big = torch.load(tmp_path / "big" / "last.pt", weights_only=True)["model"]
    halves = torch.load(tmp_path / "halves" / "last.pt", weights_only=True)["model"]
    for key in big:
        torch.testing.assert_close(halves[key], big[key], atol=1e-5, rtol=1e-4)


def test_patience_stops_a_run_that_no_longer_improves(capsys, tmp_path):
    # random labels: the validation score cannot keep improving
    status, out, err = train(capsys, tmp_path, "--data", "fake", "--fake-size", "256",
                             "--epochs", "30", "--patience", "2")
    assert status == 0, err
    assert "early stop: validation top1 has not improved for 2 epochs" in err
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert len(history) < 30
    best = max(range(len(history)), key=lambda i: history[i]["val_top1"])
    assert len(history) - 1 - best == 2  # stopped two epochs after the best


@pytest.mark.parametrize("options,message", [
    (["--patience", "3", "--val-split", "0"], "needs a validation split"),
    (["--accumulate", "2", "--save-every", "3"], "must be a multiple of --accumulate"),
    (["--accumulate", "0"], "--accumulate must be between 1 and 4,096"),
])
def test_option_combinations_that_cannot_work_are_refused(capsys, tmp_path, options, message):
    status, _, err = train(capsys, tmp_path, *options)
    assert status == 2 and message in err, err


def test_compiling_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr(torch, "compile", lambda model, **kwargs: model)  # no minute's wait
    status, _, err = train(capsys, tmp_path, "--epochs", "1", "--compile", "--limit-steps", "2")
    assert status == 0, err
    assert "compiling with torch.compile" in err


def test_ema_weights_are_validated_and_saved_as_the_model(capsys, tmp_path):
    from archdsl.train import checkpoint

    assert train(capsys, tmp_path, "--epochs", "2", "--ema", "0.9", name="ema")[0] == 0
    state = checkpoint.load(tmp_path / "ema" / "last.pt")
    assert state["ema_steps"] > 0
    differs = [k for k in state["model"] if state["model"][k].is_floating_point()
               and not torch.allclose(state["model"][k], state["trained"][k])]
    assert differs  # the average lags the trained weights
    # a decay of almost 0 averages nothing: the average is the last trained weights
    assert train(capsys, tmp_path, "--epochs", "1", "--ema", "1e-9", name="none")[0] == 0
    state = checkpoint.load(tmp_path / "none" / "last.pt")
    for key, tensor in state["model"].items():
        torch.testing.assert_close(tensor, state["trained"][key], atol=1e-6, rtol=0)
    # eval, predict and compile read the average (the checkpoint's `model`)
    assert main(["eval", str(tmp_path / "ema"), "--json"]) == 0
    # and a run with --ema resumes
    assert train(capsys, tmp_path, "--epochs", "2", "--ema", "0.9", "--limit-steps", "3",
                 name="cut")[0] == 0
    capsys.readouterr()
    assert main(["train", "--resume", str(tmp_path / "cut"), *QUIET]) == 0
    history = json.loads((tmp_path / "cut" / "metrics.json").read_text())
    assert len(history) == 2


def test_a_config_file_gives_the_options_and_each_run_saves_its_own(capsys, tmp_path):
    import yaml

    config = tmp_path / "run.yaml"
    config.write_text(f"spec: {SPECS / 'lenet.arch'}\nnetwork: lenet5\nset:\n  act: relu\n"
                      "epochs: 2\nbatch-size: 32\nlr: 1e-3\noptimizer: adamw\n")
    assert main(["train", "--config", str(config), "--epochs", "1", "--print-config"]) == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["epochs"] == 1  # the command line wins over the file
    assert printed["batch-size"] == 32 and printed["lr"] == 0.001  # `1e-3` is a number
    assert printed["set"] == {"act": "relu"} and printed["network"] == "lenet5"
    assert not (tmp_path / "runs").exists()  # --print-config trains nothing
    # a run saves its resolved options; --config of that file runs the same again
    status = main(["train", "--config", str(config), "--out", str(tmp_path / "a"), *QUIET])
    assert status == 0
    saved = (tmp_path / "a" / "config.yaml").read_text()
    assert main(["train", "--config", str(tmp_path / "a" / "config.yaml"), "--out",
                 str(tmp_path / "b"), *QUIET]) == 0
    assert (tmp_path / "b" / "config.yaml").read_text() == saved
    # JSON too
    (tmp_path / "run.json").write_text(json.dumps({"spec": str(SPECS / "lenet.arch"),
                                                   "network": "lenet5", "epochs": 1}))
    assert main(["train", "--config", str(tmp_path / "run.json"), "--print-config"]) == 0
    assert "epochs: 1" in capsys.readouterr().out


@pytest.mark.parametrize("text,message", [
    ("batch_sise: 3\n", "unknown option `batch_sise`; did you mean `batch-size`?"),
    ("epochs: [\n", "run.yaml:4:1: not YAML"),
    ("- 1\n- 2\n", "must hold a mapping"),
    ("epochs: many\n", "--epochs has a value of the wrong type"),
    ("set: 3\n", "`set` must map network parameters to values"),
])
def test_config_file_mistakes_get_clear_answers(capsys, tmp_path, text, message):
    (tmp_path / "run.yaml").write_text(f"spec: {SPECS / 'lenet.arch'}\nnetwork: lenet5\n"
                                       + text if not text.startswith("-") else text)
    assert main(["train", "--config", str(tmp_path / "run.yaml"), "--out",
                 str(tmp_path / "run"), *QUIET]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


def test_tensorboard_gets_per_step_scalars_and_the_runs_hyperparameters(capsys, tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    status = main(["train", *LENET, "--epochs", "2", "--out", str(tmp_path / "run"),
                   "--no-progress"])
    assert status == 0
    events = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    events.Reload()
    scalars = events.Tags()["scalars"]
    assert {"train/loss_step", "train/lr_step", "train/loss", "val/top1"} <= set(scalars)
    steps = [e.step for e in events.Scalars("train/loss_step")]
    assert steps == [0, 10, 20, 30]  # two epochs of 20 steps, every tenth
    assert events.PluginTagToContent("hparams")  # the HParams tab's session data


def test_save_top_keeps_the_checkpoints_of_the_best_epochs(capsys, tmp_path):
    status, _, err = train(capsys, tmp_path, "--epochs", "5", "--save-top", "2")
    assert status == 0, err
    history = json.loads((tmp_path / "run" / "metrics.json").read_text())
    order = sorted(history, key=lambda r: -r["val_top1"])  # stable: the earlier of a tie first
    kept = sorted(int(p.stem.removeprefix("best-epoch"))
                  for p in (tmp_path / "run").glob("best-epoch*.pt"))
    assert kept == sorted(r["epoch"] for r in order[:2])


def test_mixup_and_cutmix_blend_images_and_labels_in_one_proportion():
    from archdsl.train.mixing import mix

    x = torch.arange(4 * 3 * 8 * 8, dtype=torch.float32).view(4, 3, 8, 8)
    y = torch.tensor([0, 1, 2, 3])
    mixed, partners, lam = mix(x, y, 0.4, 0.0, torch.Generator().manual_seed(1))
    order = [int(p) for p in partners]  # the labels say which image each was blended with
    torch.testing.assert_close(mixed, lam * x + (1 - lam) * x[order])
    for seed in range(20):
        mixed, partners, lam = mix(x, y, 0.0, 1.0, torch.Generator().manual_seed(seed))
        own = (mixed == x).all(dim=1).float().mean(dim=(1, 2))  # pixels left of each image
        moved = [i for i in range(4) if partners[i] != y[i]]
        for i in moved:  # λ is exactly the share of the image's own pixels
            assert float(own[i]) == pytest.approx(lam)
        assert 0 <= lam <= 1
    # the same generator state mixes the same way (a resumed run repeats it)
    a = mix(x, y, 0.2, 1.0, torch.Generator().manual_seed(7))
    b = mix(x, y, 0.2, 1.0, torch.Generator().manual_seed(7))
    assert torch.equal(a[0], b[0]) and a[2] == b[2]


def test_a_run_with_mixup_and_cutmix_learns(capsys, tmp_path):
    status, out, err = train(capsys, tmp_path, "--epochs", "8", "--mixup", "0.2",
                             "--cutmix", "1.0")
    assert status == 0, err
    assert json.loads((tmp_path / "run" / "result.json").read_text())["test_top1"] > 0.8
    assert main(["train", str(SPECS / "unet.arch"), "unet_small", "--mixup", "0.2",
                 "--out", str(tmp_path / "seg"), *QUIET]) == 2
    assert "they are for classifiers" in capsys.readouterr().err


def test_a_config_file_of_unbounded_size_is_refused_unread(capsys, tmp_path):
    from archdsl.train.config_file import MAX_CONFIG_BYTES

    big = tmp_path / "big.yaml"
    big.write_text("# padding\n" * (MAX_CONFIG_BYTES // 10 + 1))
    assert main(["train", "--config", str(big), *QUIET]) == 2
    assert "a run's options take at most" in capsys.readouterr().err


def test_checksums_cover_the_weights_and_the_trained_weights(capsys, tmp_path):
    """A checkpoint of an --ema run holds two sets of weights: both are checked on loading."""
    from archdsl.train import checkpoint

    assert train(capsys, tmp_path, "--epochs", "1", "--ema", "0.9", "--limit-steps", "2",
                 name="ema")[0] == 0
    state = torch.load(tmp_path / "ema" / "last.pt", weights_only=True)
    assert {"checksum", "trained_checksum"} <= set(state)
    for part, message in [("model", "its weights do not match their checksum"),
                          ("trained", "its trained weights (before --ema's average) do not "
                                      "match their checksum")]:
        changed = {**state, part: {k: v + 1 if v.is_floating_point() else v
                                   for k, v in state[part].items()}}
        torch.save(changed, tmp_path / "changed.pt")
        with pytest.raises(checkpoint.CheckpointError, match=re.escape(message)):
            checkpoint.load(tmp_path / "changed.pt")
        torch.save({**state, part: {"w": "not a tensor"}}, tmp_path / "junk.pt")
        with pytest.raises(checkpoint.CheckpointError, match="damaged"):
            checkpoint.load(tmp_path / "junk.pt")


def test_a_saved_model_trains_with_the_recipe_of_the_spec_it_carries(capsys, tmp_path):
    """`compile -o x.pt` keeps the spec, recipes included: `train x.pt` uses them, as
    `train specs/lenet.arch lenet5` does (the recipe: AdamW at 3e-3 for 40 epochs)."""
    assert main(["compile", "specs/lenet.arch", "lenet5", "-o", str(tmp_path / "l5.pt")]) == 0
    capsys.readouterr()
    assert main(["train", str(tmp_path / "l5.pt"), "--print-config"]) == 0
    out, err = capsys.readouterr()
    assert "recipe of" in err and "--optimizer adamw, --lr 0.003, --epochs 40" in err
    assert "optimizer: adamw" in out and "lr: 0.003" in out and "epochs: 40" in out


def test_generated_data_sets_stay_small_for_large_inputs():
    """The paper's U-Net (572x572): 4,096 generated images would take 1.3 GB; without
    --fake-size, as many as 512 MB hold are made instead (as bytes from the start)."""
    from archdsl.train.data import GENERATED_BYTES, GENERATED_IMAGES, generated_count

    assert generated_count((1, 32, 32)) == GENERATED_IMAGES
    assert generated_count((1, 572, 572)) * 572 * 572 <= GENERATED_BYTES
    assert generated_count((3, 560, 560)) == GENERATED_BYTES // (3 * 560 * 560)
    assert generated_count((3, 4096, 4096)) == 64
