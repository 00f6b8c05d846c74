"""Training a sequence-to-sequence model (--task seq2seq): the Transformer of
specs/transformer.arch learns to reverse strings from the generated `reverse` pairs, writes
the reverse of strings it never saw, and reads pairs of texts from a file."""

import json

import pytest
import torch

from archdsl.cli import main
from archdsl.train import checkpoint
from archdsl.train.data import DataError
from archdsl.train.pairs import pair_splits
from archdsl.train.tasks import Seq2Seq
from archdsl.train.text import Pairs, translate
from conftest import ROOT

SPEC = str(ROOT / "specs" / "transformer.arch")

pytestmark = pytest.mark.xdist_group("seq2seq")


@pytest.fixture(scope="module")
def reverse_run(tmp_path_factory):
    """transformer_reverse trained by its recipe (8 epochs of 4,096 generated pairs)."""
    run = tmp_path_factory.mktemp("s2s") / "run"
    assert main(["train", SPEC, "transformer_reverse", "--no-progress", "--no-tensorboard",
                 "--out", str(run)]) == 0
    return run


def test_the_transformer_learns_to_reverse_strings(reverse_run):
    result = json.loads((reverse_run / "result.json").read_text())
    assert result["task"] == "seq2seq"
    # greedy decoding writes (nearly) every test target exactly; 100% on this machine
    assert result["best_test_exact"] >= 0.95, result
    sample = (reverse_run / "sample.txt").read_text().splitlines()
    assert sample[0] == "source\twritten\t(= or ≠) target"
    source, written, target = sample[1].split("\t")
    assert target == "= " + source[::-1]
    state = checkpoint.load(reverse_run / "best.pt")
    assert state["preprocess"]["task"] == "seq2seq"
    assert state["preprocess"]["classes"] == list("abcdefghijklmnopqrstuvwxyz")


def test_generate_writes_the_reverse_of_a_new_string(reverse_run, capsys):
    capsys.readouterr()
    assert main(["generate", str(reverse_run), "--prompt", "archdsl"]) == 0
    assert capsys.readouterr().out == "lsdhcra\n"


def test_eval_gives_the_runs_test_figures(reverse_run, capsys):
    capsys.readouterr()
    assert main(["eval", str(reverse_run), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    result = json.loads((reverse_run / "result.json").read_text())
    assert figures["task"] == "seq2seq" and figures["pairs"] == 512
    assert figures["exact"] == pytest.approx(result["best_test_exact"])


def test_a_run_resumes(reverse_run, capsys):
    assert main(["train", "--resume", str(reverse_run / "last.pt"), "--epochs", "9",
                 "--no-progress", "--no-tensorboard"]) == 0
    assert "epoch   9/9" in capsys.readouterr().err


def test_pairs_become_the_networks_two_inputs_and_its_labels(tmp_path):
    (tmp_path / "p.tsv").write_text("ab\tbca\n\nc\t\n" + "a\tb\n" * 8)
    splits = pair_splits(f"pairs:{tmp_path / 'p.tsv'}", (3, 5), val_split=0.0, seed=0,
                         count=None)
    assert splits.train.class_names == ["a", "b", "c"]  # after the 3 special tokens
    a, b, c = 3, 4, 5
    pad, begin, end = Pairs.PAD, Pairs.BEGIN, Pairs.END
    # the source padded to 3, then BEGIN and the target the decoder reads, padded to 5
    assert splits.train.images[0].tolist() == [a, b, pad, begin, b, c, a, pad]
    assert splits.train.labels[0].tolist() == [b, c, a, end, pad]
    # an empty target: the decoder writes its end at once
    assert splits.train.images[1].tolist() == [c, pad, pad, begin, pad, pad, pad, pad]
    assert splits.train.labels[1].tolist() == [end, pad, pad, pad, pad]
    assert len(splits.train) == 9 and len(splits.test) == 1  # the last 10%, at least one


def test_exact_counts_targets_whose_every_scored_token_is_right():
    task = Seq2Seq(6)
    labels = torch.tensor([[4, 2, 0], [5, 2, 0], [4, 5, 2]])
    guesses = torch.tensor([[4, 2, 1],    # right; its padding is not scored
                            [5, 3, 0],    # its end token is wrong
                            [4, 5, 2]])   # right
    logits = torch.nn.functional.one_hot(guesses, 6).float()
    metrics = task.metrics(task.add(task.totals(), logits, labels))
    assert metrics["exact"] == pytest.approx(2 / 3)
    assert metrics["accuracy"] == pytest.approx(6 / 7)  # of the 7 scored tokens


def test_translate_stops_at_the_end_token_or_the_target_length():
    class Scripted(torch.nn.Module):
        """Scores that spell `script` and then the end token, whatever it reads."""

        def __init__(self, script):
            super().__init__()
            self.script = script

        def forward(self, source, target):
            scores = torch.zeros(1, target.shape[1], 8)
            for position in range(target.shape[1]):
                token = self.script[position] if position < len(self.script) else Pairs.END
                scores[0, position, token] = 1.0
            return scores

    assert translate(Scripted([5, 6, 7]), [3, 4], (4, 6), 8) == [5, 6, 7]
    assert translate(Scripted([5, 6, 7]), [3, 4], (4, 2), 8) == [5, 6]


def test_the_saved_model_writes_the_same_target(reverse_run):
    import archdsl

    saved = archdsl.load(reverse_run / "best.pt")
    assert saved.generate("archdsl") == "lsdhcra"
    assert saved.generate("archdsl", 3) == "lsd"  # at most `length` tokens
    with pytest.raises(archdsl.PredictError, match="more than the 10"):
        saved.generate("abcdefghijkl")
    with pytest.raises(archdsl.PredictError, match="sequence-to-sequence model, which reads"):
        saved.predict(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_the_exported_source_writes_the_same_target(reverse_run, tmp_path):
    import subprocess
    import sys

    assert main(["compile", str(reverse_run / "best.pt"), "-o", str(tmp_path / "r.py")]) == 0
    namespace = {"__name__": "exported"}
    exec(compile((tmp_path / "r.py").read_text(), "r.py", "exec"), namespace)
    assert namespace["CHARACTERS"] == list("abcdefghijklmnopqrstuvwxyz")
    model = namespace["TransformerReverse"]()
    model.load_state_dict(checkpoint.load(reverse_run / "best.pt")["model"])
    assert namespace["generate"](model, "archdsl") == "lsdhcra"
    assert namespace["generate"](model, "archdsl", 3) == "lsd"
    # as a script, without archdsl: python r.py best.pt SOURCE
    done = subprocess.run([sys.executable, "-I", "-c",
                           "import sys; sys.modules['archdsl'] = None; sys.argv[0] = 'r.py'; "
                           f"exec(open({str(tmp_path / 'r.py')!r}).read())",
                           str(reverse_run / "best.pt"), "python"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "nohtyp"


def test_pairs_that_would_exhaust_memory_are_refused_before_they_are_held(tmp_path):
    (tmp_path / "p.tsv").write_text("a\tb\n" * 1000)  # 900 of them train
    with pytest.raises(DataError, match=r"900 pairs at the network's 100,000 \+ 200,000 "
                                        r"positions take 1\.7 GiB"):
        pair_splits(f"pairs:{tmp_path / 'p.tsv'}", (100_000, 200_000), val_split=0.0, seed=0,
                    count=None)


def test_a_damaged_vocabulary_in_a_checkpoint_is_refused(reverse_run, tmp_path, capsys):
    """The characters a seq2seq checkpoint records go into an exported .py: one character
    each, or the checkpoint is refused."""
    state = torch.load(reverse_run / "best.pt", weights_only=True)
    state["preprocess"]["classes"] = ["a", "'); import os; ('"]
    checkpoint.save(tmp_path / "bad.pt", {k: v for k, v in state.items()
                                          if k not in ("format", "checksum")})
    assert main(["generate", str(tmp_path / "bad.pt"), "--prompt", "a"]) == 2
    assert "preprocess.classes" in capsys.readouterr().err
