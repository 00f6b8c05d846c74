"""From a trained network to predictions on image files: `archdsl predict`, SavedModel.predict,
and the exported `.py` and `.onnx`, each fed raw images through the preprocessing the run
recorded (train/preprocess.py) — and all agreeing."""

import importlib.util
import json

import numpy as np
import pytest
import torch

import archdsl
from archdsl.cli import main
from archdsl.train.preprocess import Preprocess
from conftest import SPECS

QUIET = ["--no-progress", "--no-tensorboard"]
COLOURS = {"red": 0, "green": 1, "blue": 2}


def colour_images(folder, per_class, seed, colours=COLOURS, brighter=0):
    """Noisy images (20x24, another size than the network's 32x32) whose brightest channel is
    their class: a task a few epochs learn."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    for name in colours:
        channel = COLOURS[name]
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.integers(0, 120, (20, 24, 3)) + brighter
            pixels[..., channel] += 120
            Image.fromarray(pixels.astype(np.uint8)).save(folder / name / f"{name}{i}.png")


# One process of `make test` (pytest-xdist) runs this file, so the trained LeNet-5 is made once.
pytestmark = pytest.mark.xdist_group("predict")


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A LeNet-5 (3x32x32) trained on a generated image folder, and new images to predict."""
    root = tmp_path_factory.mktemp("predict")
    colour_images(root / "images", 20, seed=0)
    colour_images(root / "new", 4, seed=1)
    status = main(["train", str(SPECS / "lenet.arch"), "lenet5_cifar10", "--set", "act=relu",
                   "--data", f"imagefolder:{root / 'images'}", "--epochs", "8",
                   "--optimizer", "adamw", "--lr", "0.003", "--batch-size", "8",
                   "--out", str(root / "run"), *QUIET])
    assert status == 0
    return root


def predict_cli(capsys, *args):
    status = main(["predict", *map(str, args), "--json"])
    out = capsys.readouterr()
    assert status == 0, out.err
    return json.loads(out.out)


def test_checkpoints_record_their_preprocessing(trained):
    state = torch.load(trained / "run" / "best.pt", weights_only=True)
    p = Preprocess.from_dict(state["preprocess"])
    assert p.classes == ("blue", "green", "red")  # the class folders, sorted
    assert p.size == (32, 32) and p.channels == 3 and p.input_shape == (3, 32, 32)
    assert p.data.startswith("imagefolder:")


def test_predict_from_the_checkpoint_the_py_and_the_onnx_agree(trained, capsys):
    new = trained / "new"
    files = sorted(new.rglob("*.png"))
    # 1. the command line, on the run directory (its best.pt) and a folder
    cli = predict_cli(capsys, trained / "run", new, "--top-k", "3")
    assert [r["image"] for r in cli] == [str(f) for f in files]
    labels = [r["top"][0]["label"] for r in cli]
    truth = [f.parent.name for f in files]
    assert sum(a == b for a, b in zip(labels, truth)) >= 0.9 * len(files)
    assert all(len(r["top"]) == 3 for r in cli)
    in_twos = predict_cli(capsys, trained / "run", new, "--top-k", "3", "--batch-size", "2")
    assert [r["top"][0]["label"] for r in in_twos] == labels  # batches do not change answers
    # ... and the Python API, on the same images
    saved = archdsl.load(trained / "run" / "best.pt")
    api = saved.predict(new, top_k=3)
    for a, b in zip(cli, api):
        assert [t["label"] for t in a["top"]] == [t["label"] for t in b]
        assert a["top"][0]["probability"] == pytest.approx(b[0]["probability"], abs=1e-6)
    ours = torch.tensor([[t["probability"] for t in r] for r in api])[:, 0]

    # 2. the exported .py: its read_image and preprocess feed the state_dict's model
    assert main(["compile", str(trained / "run" / "best.pt"), "-o", str(trained / "m.py")]) == 0
    spec = importlib.util.spec_from_file_location("exported_lenet", trained / "m.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.Lenet5Cifar10().eval()
    model.load_state_dict(saved.state_dict)
    batch = torch.stack([module.read_image(f) for f in files])
    with torch.no_grad():
        out = model(module.preprocess(batch))  # lenet5 ends in its softmax
    assert [module.CLASSES[i] for i in out.argmax(1)] == labels
    torch.testing.assert_close(out.max(1).values, ours, atol=1e-5, rtol=0)

    # 3. the ONNX, through onnxruntime, preprocessed from its own metadata with NumPy
    import onnx
    import onnxruntime
    from PIL import Image

    assert main(["compile", str(trained / "run" / "best.pt"), "-o", str(trained / "m.onnx")]) == 0
    meta = {p.key: p.value for p in onnx.load(str(trained / "m.onnx")).metadata_props}
    p = json.loads(meta["archdsl.preprocess"])
    height, width = p["size"]
    x = np.stack([np.asarray(Image.open(f).convert("RGB").resize(
        (width, height), Image.Resampling.BILINEAR)) for f in files]).transpose(0, 3, 1, 2)
    x = (x / 255.0 - np.array(p["mean"])[None, :, None, None]) / np.array(p["std"])[None, :, None, None]
    session = onnxruntime.InferenceSession(str(trained / "m.onnx"))
    probs = session.run(None, {"input": x.astype(np.float32)})[0]
    assert [p["classes"][i] for i in probs.argmax(1)] == labels
    np.testing.assert_allclose(probs.max(1), ours.numpy(), atol=1e-5)


def test_the_exported_py_predicts_from_the_command_line(trained):
    import subprocess
    import sys

    assert main(["compile", str(trained / "run" / "best.pt"), "-o", str(trained / "m2.py")]) == 0
    image = sorted((trained / "new" / "green").glob("*.png"))[0]
    out = subprocess.run([sys.executable, str(trained / "m2.py"), str(trained / "run" / "best.pt"),
                          str(image)], capture_output=True, text=True, check=True).stdout
    assert f"{image}: green" in out


def test_digits_preprocessing_resizes_to_the_network(tmp_path, capsys):
    """Digits are held at 8x8 and LeNet-5 takes 32x32: predict resizes as training did, so a
    test image written as a file is classified as the network classifies it in memory."""
    from PIL import Image
    from sklearn.datasets import load_digits

    status = main(["train", str(SPECS / "lenet.arch"), "lenet5", "--set", "act=relu",
                   "--epochs", "3", "--out", str(tmp_path / "run"), *QUIET])
    assert status == 0
    capsys.readouterr()
    digits = load_digits()
    images = (digits.images[:6] * (255.0 / 16.0)).round().astype(np.uint8)
    for i, pixels in enumerate(images):
        Image.fromarray(pixels).save(tmp_path / f"{i}.png")
    cli = predict_cli(capsys, tmp_path / "run" / "last.pt", *[tmp_path / f"{i}.png"
                                                             for i in range(6)])
    saved = archdsl.load(tmp_path / "run" / "last.pt")
    in_memory = saved.predict(torch.from_numpy(images)[:, None], top_k=1)
    assert [r["top"][0]["label"] for r in cli] == [r[0]["label"] for r in in_memory]
    assert saved.preprocess.size == (8, 8) and saved.preprocess.input_shape == (1, 32, 32)


def test_predict_says_what_is_wrong(trained, capsys, tmp_path):
    run = trained / "run"
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.png").write_text("not an image")
    cases = [
        ([run, tmp_path / "missing.png"], "no such image file or folder"),
        ([run, tmp_path / "empty"], "holds no image files"),
        ([run, tmp_path / "notes.png"], "cannot read"),
        ([run, trained / "new", "--top-k", "0"], "--top-k must be at least 1"),
    ]
    for args, message in cases:
        assert main(["predict", *map(str, args)]) == 2
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    # a saved model no run trained records no preprocessing
    assert main(["compile", str(SPECS / "lenet.arch"), "lenet5", "-o",
                 str(tmp_path / "plain.pt")]) == 0
    capsys.readouterr()
    assert main(["predict", str(tmp_path / "plain.pt"), str(trained / "new")]) == 2
    assert "records no preprocessing" in capsys.readouterr().err
    with pytest.raises(archdsl.PredictError, match="no preprocessing"):
        archdsl.load(tmp_path / "plain.pt").predict(trained / "new")


def test_a_damaged_preprocessing_record_is_refused(trained, tmp_path, capsys):
    from archdsl.train import checkpoint

    state = torch.load(trained / "run" / "best.pt", weights_only=True)
    state["preprocess"]["std"] = [0.0, 1.0, 1.0]
    checkpoint.save(tmp_path / "bad.pt", {k: v for k, v in state.items() if k != "format"})
    assert main(["predict", str(tmp_path / "bad.pt"), str(trained / "new")]) == 2
    assert "preprocess.std" in capsys.readouterr().err


def test_compiling_a_checkpoint_keeps_its_weights(trained, tmp_path):
    saved = archdsl.load(trained / "run" / "best.pt")
    assert main(["compile", str(trained / "run" / "best.pt"), "-o", str(tmp_path / "c.pt")]) == 0
    again = archdsl.load(tmp_path / "c.pt")
    for key, tensor in saved.state_dict.items():
        assert torch.equal(again.state_dict[key], tensor), key
    assert again.preprocess == saved.preprocess


def test_eval_reads_another_folder_as_the_run_trained(trained, capsys, tmp_path):
    """`archdsl eval RUN --data imagefolder:OTHER --split all` scores every image of a folder
    the run never saw, labelled by the model's own classes (this one holds two of its three)
    and normalised with the training images' statistics, which the checkpoint records — not
    the folder's own (brighter, and without green): its loss is the one `predict` gives the
    same files."""
    colour_images(tmp_path / "other", 5, seed=2, colours=("red", "blue"), brighter=15)
    assert main(["eval", str(trained / "run"), "--data", f"imagefolder:{tmp_path / 'other'}",
                 "--split", "all", "--json"]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics["split"] == "all" and metrics["images"] == 10
    predictions = predict_cli(capsys, trained / "run", tmp_path / "other", "--top-k", "3")
    truth = [f.parent.name for f in sorted((tmp_path / "other").rglob("*.png"))]
    chance = [next(t["probability"] for t in r["top"] if t["label"] == label)
              for r, label in zip(predictions, truth)]
    assert metrics["loss"] == pytest.approx(-np.mean(np.log(chance)), rel=1e-4)
    assert metrics["top1"] == np.mean([r["top"][0]["label"] == label
                                       for r, label in zip(predictions, truth)])
    # a folder with a class the model does not know
    (tmp_path / "other" / "purple").mkdir()
    (tmp_path / "other" / "red" / "red0.png").rename(tmp_path / "other" / "purple" / "p.png")
    assert main(["eval", str(trained / "run"), "--data", f"imagefolder:{tmp_path / 'other'}",
                 "--split", "all"]) == 2
    assert "has classes the model was not trained on: purple" in capsys.readouterr().err
