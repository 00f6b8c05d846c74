"""`archdsl train --task lm`: a small GPT learns a text one character at a time (loss,
perplexity and next-token accuracy per epoch, a sample at the end); `archdsl generate`, the
saved model's `generate` and the exported .py continue a prompt alike; eval, resume and the
text data set's windows."""

import json
import math

import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import archdsl
from archdsl.backends.source import to_source
from archdsl.backends.torch_module import InputError
from archdsl.cli import main
from archdsl.train.data import load_splits
from archdsl.train.preprocess import Preprocess
from archdsl.train.tasks import LanguageModel, task_of
from archdsl.train.text import (decode, decodes_with_cache, encode, generate,
                                reads_whole_context)
from conftest import SPECS

QUIET = ["--no-progress", "--no-tensorboard"]
# GPT-2's spec, small: 2 layers of width 32, 2 heads, a context of 32 characters
GPT = [str(SPECS / "gpt.arch"), "gpt", "--set", "depth=2", "--set", "d=32", "--set",
       "heads=2", "--set", "context=32", "--set", "vocab=48"]
# English and Korean (the seeds' language): the vocabulary is the text's characters
TEXT = ("the quick brown fox jumps over the lazy dog\n" + "신경망은 층을 쌓는다\n") * 150
# The vocabulary holds 28 + 12 characters; a network that learned nothing scores a perplexity
# of about 20 (the characters' frequencies). The run below reaches 1.04-1.10 on this machine;
# the test asks for under 1.5, a margin for other machines' arithmetic.
PERPLEXITY_BELOW = 1.5


# One process of `make test` (pytest-xdist) runs this file, so the trained GPT is made once.
pytestmark = pytest.mark.xdist_group("language_model")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("lm")
    (root / "text.txt").write_text(TEXT, encoding="utf-8")
    status = main(["train", *GPT, "--data", f"text:{root / 'text.txt'}", "--epochs", "25",
                   "--batch-size", "16", "--optimizer", "adamw", "--lr", "0.01",
                   "--out", str(root / "run"), *QUIET])
    assert status == 0
    return root


def test_a_small_gpt_learns_a_text(run):
    result = json.loads((run / "run" / "result.json").read_text())
    assert result["task"] == "lm"
    assert result["best_test_perplexity"] < PERPLEXITY_BELOW
    assert result["test_perplexity"] == pytest.approx(math.exp(result["test_loss"]))
    history = json.loads((run / "run" / "metrics.json").read_text())
    assert history[-1]["val_loss"] < history[0]["val_loss"]
    header = (run / "run" / "metrics.csv").read_text().splitlines()[0]
    assert header.startswith("epoch,train_loss,train_accuracy,val_loss,val_perplexity,"
                             "val_accuracy")
    sample = (run / "run" / "sample.txt").read_text(encoding="utf-8")
    assert len(sample) > 400 and set(sample) <= set(TEXT)


def test_generate_continues_a_prompt_the_same_everywhere(run, capsys, tmp_path):
    """The command, the saved model's method and the exported .py draw the same characters
    (one seed); at temperature 0 the model continues the text it learned."""
    assert main(["generate", str(run / "run"), "--prompt", "the quick", "--temperature", "0",
                 "--length", "10"]) == 0
    greedy = capsys.readouterr().out
    assert greedy.startswith("the quick brown fox")
    assert main(["generate", str(run / "run"), "--prompt", "신경", "--length", "80",
                 "--seed", "3"]) == 0
    drawn = capsys.readouterr().out.rstrip("\n")
    saved = archdsl.load(run / "run" / "best.pt")
    assert saved.generate("신경", 80, seed=3) == drawn
    assert main(["compile", str(run / "run" / "best.pt"), "-o", str(tmp_path / "gpt.py")]) == 0
    namespace = {"__name__": "exported"}
    exec(compile((tmp_path / "gpt.py").read_text(), "gpt.py", "exec"), namespace)
    exported = namespace["Gpt"]()  # built with the values the run trained
    exported.load_state_dict(saved.state_dict)
    assert namespace["generate"](exported, "신경", 80, seed=3) == drawn
    with pytest.raises(archdsl.PredictError, match="vocabulary"):
        saved.generate("THE")
    with pytest.raises(archdsl.PredictError, match="language model"):
        saved.predict(torch.zeros(1, 1, 8, 8, dtype=torch.uint8))


def test_eval_gives_the_runs_test_figures(run, capsys):
    assert main(["eval", str(run / "run" / "best.pt"), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    result = json.loads((run / "run" / "result.json").read_text())
    assert figures["task"] == "lm" and figures["sequences"] > 0
    assert figures["perplexity"] == pytest.approx(result["best_test_perplexity"])


def test_eval_scores_all_of_another_text(run, capsys, tmp_path):
    """`--split all` scores every window of a text (its last 10% is all `test` would take),
    through the run's vocabulary: 910 characters are 1 window of 32 in their last 10%, 27
    in all of them."""
    other = tmp_path / "other.txt"
    other.write_text("the lazy dog\n" * 70, encoding="utf-8")
    counts = {}
    for split in ("test", "all"):
        assert main(["eval", str(run / "run"), "--data", f"text:{other}", "--split", split,
                     "--json"]) == 0
        counts[split] = json.loads(capsys.readouterr().out)["sequences"]
    assert counts == {"test": 1, "all": (len("the lazy dog\n") * 70 - 32) // 32}
    other.write_text("the lazy dog\n" * 4, encoding="utf-8")
    assert main(["eval", str(run / "run"), "--data", f"text:{other}", "--split", "all"]) == 2
    assert "too few for windows of 32: give a text of at least 64" in capsys.readouterr().err


def test_a_language_model_started_from_another_keeps_its_characters(run, capsys, tmp_path):
    """--init from a language model's checkpoint: the new text is read through its
    vocabulary (the rows of its embedding are characters), not the new text's own (here
    12 characters, which would get other ids); a character it lacks is an error."""
    other = tmp_path / "other.txt"
    other.write_text("the lazy dog\n" * 70, encoding="utf-8")
    assert main(["train", *GPT, "--data", f"text:{other}", "--init", str(run / "run"
                                                                         / "best.pt"),
                 "--epochs", "1", "--batch-size", "8", "--out", str(tmp_path / "tuned"),
                 *QUIET]) == 0
    vocabulary = torch.load(run / "run" / "best.pt", weights_only=True)["preprocess"]["classes"]
    tuned = torch.load(tmp_path / "tuned" / "best.pt", weights_only=True)
    assert tuned["preprocess"]["classes"] == vocabulary and len(vocabulary) > 12
    capsys.readouterr()
    other.write_text("THE LAZY DOG\n" * 70, encoding="utf-8")
    assert main(["train", *GPT, "--data", f"text:{other}", "--init", str(run / "run"
                                                                         / "best.pt"),
                 "--epochs", "1", "--out", str(tmp_path / "upper"), *QUIET]) == 2
    assert "lacks: 'A', 'D', 'E', 'G'" in capsys.readouterr().err


def test_a_language_model_run_resumes(run, capsys):
    epochs = json.loads((run / "run" / "result.json").read_text())["epochs"]
    assert main(["train", "--resume", str(run / "run"), "--epochs", str(epochs + 1),
                 *QUIET]) == 0
    history = json.loads((run / "run" / "metrics.json").read_text())
    assert [row["epoch"] for row in history][-2:] == [epochs, epochs + 1]


def test_text_windows_and_their_next_characters(tmp_path):
    """Each window's labels are the window one character on; the parts follow the text's
    order (train, validation, test); training windows can start anywhere."""
    (tmp_path / "t.txt").write_text("abcdefghij" * 30)
    shape = archdsl.load(SPECS / "gpt.arch").network(
        "gpt", depth=1, d=8, heads=1, context=8, vocab=10).input_shape
    splits = load_splits(f"text:{tmp_path / 't.txt'}", tmp_path, shape, val_split=0.1)
    assert splits.train.class_names == list("abcdefghij") and splits.unit == "sequences"
    for part in (splits.train, splits.val, splits.test):
        assert torch.equal(part.images[:, 1:], part.labels[:, :-1])
        assert torch.equal((part.images + 1) % 10, part.labels)  # the next letter
    assert len(splits.train) * 8 <= 300 * 0.81 and len(splits.test) == (30 - 8) // 8
    shifted = splits.train.shifted(3)
    assert len(shifted) == len(splits.train) and int(shifted.images[0, 0]) == 3
    # a trained model's vocabulary gives the ids, whatever the new text holds
    (tmp_path / "u.txt").write_text("jihgfedcba" * 30)
    again = load_splits(f"text:{tmp_path / 'u.txt'}", tmp_path, shape, val_split=0.1,
                        classes=list("abcdefghij"))
    assert int(again.train.images[0, 0]) == 9


def test_next_token_figures_count_as_defined():
    task = LanguageModel(3)
    y = torch.tensor([[0, 1, 2, 2]])
    logits = torch.log(torch.tensor([[[0.5, 0.25, 0.25], [0.2, 0.6, 0.2], [0.1, 0.1, 0.8],
                                      [0.7, 0.2, 0.1]]]))
    m = task.metrics(task.add(task.totals(), logits, y))
    loss = -(math.log(0.5) + math.log(0.6) + math.log(0.8) + math.log(0.1)) / 4
    assert m["loss"] == pytest.approx(loss)
    assert m["perplexity"] == pytest.approx(math.exp(loss))
    assert m["accuracy"] == 0.75 and m["likelihood"] == pytest.approx(math.exp(-loss))


# A GPT whose position vectors are one `param`, added whole: it takes exactly its context
FIXED_GPT = """
block layer(heads):
    let d = in.d
    add:
        branch: identity
        branch: layernorm attention(heads, causal=true)
    add:
        branch: identity
        branch: layernorm linear(4 * d) gelu linear(d)

network gpt_fixed:
    input 12 tokens of 20
    wte: embedding(16)
    add:
        branch: identity
        branch: param(12x16, init="normal")
    layer(2) x 2
    layernorm
    linear(20)
"""


def test_a_right_padded_prompt_reads_as_the_prompt_alone():
    """A network that takes exactly its context gets a short prompt padded on the right: a
    language model's scores at a position depend on no later one, so the padding changes
    nothing before it. GPT's spec takes any shorter sequence (its position embedding adds
    the first L vectors): it reads the prompt as it is, and draws the same characters."""
    net = archdsl.load(SPECS / "gpt.arch").network("gpt", depth=2, d=16, heads=2, context=12,
                                                   vocab=20)
    fixed = archdsl.load(FIXED_GPT).network("gpt_fixed")
    assert task_of(net) == task_of(fixed) == "lm"
    assert not reads_whole_context(net) and reads_whole_context(fixed)
    for model in (net.build().eval(), fixed.build().eval()):
        x = torch.randint(0, 20, (1, 12))
        padded = x.clone()
        padded[0, 5:] = 0
        with torch.no_grad():
            assert torch.equal(model(x)[0, :5], model(padded)[0, :5])
    model = net.build().eval()
    prompt = [3, 1, 4, 1, 5]
    assert generate(model, prompt, 20, 12, 20, temperature=0) == \
        generate(model, prompt, 20, 12, 20, temperature=0, padded=True)
    with pytest.raises(InputError, match="it takes no other size"):
        fixed.build()(torch.zeros(1, 5, dtype=torch.long))
    # the exported .py pads for the one and not for the other, and draws as generate does
    vocabulary = tuple("abcdefghijklmnopqrst")
    for spec in (net, fixed):
        model = spec.build().eval()
        namespace = {"__name__": "exported"}
        lm = Preprocess(0, (0, 0), (), (), (12,), vocabulary, "", "lm")
        exec(compile(to_source(spec, lm), "lm.py", "exec"), namespace)
        drawn = namespace["generate"](model, "dabe", 30, seed=1)
        assert drawn == decode(generate(model, encode("dabe", vocabulary), 30, 12, 20, seed=1,
                                        padded=reads_whole_context(spec)), vocabulary)


def test_a_cache_writes_what_reading_the_whole_window_writes():
    """A GPT writes a token at a time reading only the new token, its attention layers
    keeping the earlier keys and values (train/text.py): the same ids as reading the whole
    window each time, greedy and drawn, from short and long prompts and past the context
    (where every position moves and the window is read whole again). Which networks can:
    each layer kind says (`decodes`)."""
    torch.manual_seed(0)
    net = archdsl.load(SPECS / "gpt.arch").network("gpt", depth=2, d=32, heads=4, context=16,
                                                   vocab=50)
    model = net.build().eval()
    for temperature in (0, 0.8):
        for prompt in ([3], list(range(10)), list(range(16)), list(range(20))):
            assert generate(model, prompt, 30, 16, 50, cached=True, temperature=temperature,
                            seed=1) == \
                generate(model, prompt, 30, 16, 50, temperature=temperature, seed=1)
    # the cached scores themselves, token by token, against the whole sequence's
    from archdsl.train.text import _Cache

    ids = torch.randint(0, 50, (1, 16))
    with torch.no_grad():
        whole = model(ids)[0]
        with _Cache(model, True):
            steps = [model(ids[:, :5])[0, -1]] + [model(ids[:, i:i + 1])[0, -1]
                                                  for i in range(5, 16)]
    assert (torch.stack(steps) - whole[4:]).abs().max() <= 1e-5
    # and the model is left as it was: the whole sequence again, not one more position
    with torch.no_grad():
        assert torch.equal(model(ids)[0], whole)
    # which networks decode so: GPTs, not a network of recurrent layers (their state is not
    # kept), nor one that adds its positions whole, nor attention that sees later positions
    fixed = archdsl.load(FIXED_GPT).network("gpt_fixed")
    lstm = archdsl.load(SPECS / "char_rnn.arch").network("char_lstm")
    both_ways = archdsl.load("""
network bert_like:
    input 8 tokens of 20
    embedding(16)
    position_embedding(8)
    attention(2)
    linear(20)
""").network("bert_like")
    assert decodes_with_cache(net) and decodes_with_cache(
        archdsl.load(SPECS / "gpt.arch").network("gpt2"))
    assert not any(map(decodes_with_cache, (fixed, lstm, both_ways)))
    # the exported .py caches as generate does (its draws: test_a_right_padded_prompt_...)
    lm = Preprocess(0, (0, 0), (), (), (16,), tuple("abcdefghij"), "", "lm")
    assert "caching(True)" in to_source(net, lm)
    assert "caching(True)" not in to_source(lstm, Preprocess(0, (0, 0), (), (), (50,),
                                                             tuple("abcdefghij"), "", "lm"))


@pytest.mark.parametrize("name,cell", [("char_lstm", torch.nn.LSTM), ("char_gru", torch.nn.GRU)])
def test_char_rnn_is_an_embedding_a_recurrent_stack_and_a_read_out(name, cell):
    """specs/char_rnn.arch against the same network written in PyTorch (char-rnn's PyTorch
    ports): equal counts, and equal scores once the weights are copied."""
    from archdsl.backends.weights import copy_state

    class CharRNN(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.embed = torch.nn.Embedding(65, 128)
            self.rnn = cell(128, 128, num_layers=2, batch_first=True)
            self.out = torch.nn.Linear(128, 65)

        def forward(self, x):
            return self.out(self.rnn(self.embed(x))[0])

    net = archdsl.load(SPECS / "char_rnn.arch").network(name)
    assert task_of(net) == "lm"
    reference = CharRNN().eval()
    assert net.params_total == sum(p.numel() for p in reference.parameters())
    model = net.build().eval()
    copy_state(model, reference)
    x = torch.randint(0, 65, (2, 50))
    with torch.no_grad():
        assert (model(x) - reference(x)).abs().max() <= 1e-6


def test_a_char_lstm_trains_as_a_language_model(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    assert main(["train", str(SPECS / "char_rnn.arch"), "char_lstm", "--set", "vocab=40",
                 "--set", "hidden=32", "--data", f"text:{tmp_path / 't.txt'}", "--epochs", "8",
                 "--batch-size", "16",
                 "--optimizer", "adamw", "--lr", "0.01", "--out", str(tmp_path / "run"),
                 *QUIET]) == 0
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["task"] == "lm" and result["test_perplexity"] < 20


@settings(max_examples=60, deadline=None)
@given(length=st.integers(2, 400), context=st.integers(1, 40), offset=st.integers(0, 39))
def test_text_windows_cover_the_stream_in_order(length, context, offset):
    """For any stream and context: every window's labels are the stream one on, windows follow
    each other from the offset, and every offset below the context gives as many windows."""
    from archdsl.train.data import TextData

    assume(offset < context and length >= 2 * context)
    stream = torch.arange(length, dtype=torch.int32)
    data = TextData("t", stream, context, ["a"]).shifted(offset)
    count = (length - context) // context
    assert data.images.shape == data.labels.shape == (count, context) and len(data) == count
    expected = offset + torch.arange(count * context, dtype=torch.int32).view(count, context)
    assert torch.equal(data.images, expected) and torch.equal(data.labels, expected + 1)
    assert int(data.labels.max()) < length
