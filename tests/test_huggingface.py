"""`--weights huggingface:NAME|FOLDER` and `--init huggingface:...`: a Hugging Face causal
language model's weights go into a spec that computes the same function, and a spec that
computes another one is refused with the difference. The reference is transformers itself
(a small GPT2LMHeadModel written by save_pretrained: nothing is downloaded)."""

import json

import pytest
import torch

import archdsl
from archdsl.backends.weights import SAME_FUNCTION, WeightsError, load_huggingface
from archdsl.cli import main
from conftest import SPECS

transformers = pytest.importorskip("transformers")

SIZES = dict(n_layer=2, n_embd=64, n_head=4, n_positions=16, vocab_size=100)
# specs/gpt.arch's GPT-2 at those sizes
GPT = [str(SPECS / "gpt.arch"), "gpt", "--set", "depth=2", "--set", "d=64", "--set", "heads=4",
       "--set", "context=16", "--set", "vocab=100"]


def saved_gpt2(folder, **config):
    """A randomly initialised GPT2LMHeadModel, written as Hugging Face writes models."""
    torch.manual_seed(0)
    config = {**SIZES, "bos_token_id": 0, "eos_token_id": 0, **config}
    model = transformers.GPT2LMHeadModel(transformers.GPT2Config(**config)).eval()
    model.save_pretrained(folder)
    return model


def network(**changes):
    args = dict(depth=2, d=64, heads=4, context=16, vocab=100, **changes)
    return archdsl.load(SPECS / "gpt.arch").network("gpt", **args)


def test_compile_writes_gpt2_with_hugging_face_weights(tmp_path, capsys):
    reference = saved_gpt2(tmp_path / "hf")
    status = main(["compile", *GPT, "--weights", f"huggingface:{tmp_path / 'hf'}",
                   "-o", str(tmp_path / "gpt.pt")])
    err = capsys.readouterr().err
    assert status == 0, err
    assert f"initialised from huggingface:{tmp_path / 'hf'} (29 tensors; its scores and the " \
           "network's agree within" in err
    saved = archdsl.load(tmp_path / "gpt.pt")
    model = saved.build().eval()
    with torch.no_grad():
        for length in (16, 5):  # its context, and fewer positions
            ids = torch.randint(0, 100, (2, length))
            assert (model(ids) - reference(ids).logits).abs().max() <= 1e-5


def test_the_comparison_is_on_the_outputs_and_says_how_close(tmp_path):
    saved_gpt2(tmp_path / "hf")
    model = network().build()
    transfer = load_huggingface(model, str(tmp_path / "hf"), network().input_shape)
    assert len(transfer) == 29 and transfer.difference <= 1e-6 < SAME_FUNCTION
    assert model.training  # the comparison ran in eval mode and put the mode back


def test_a_spec_that_computes_another_function_is_refused(tmp_path):
    saved_gpt2(tmp_path / "hf", activation_function="relu")  # GELU in the spec
    with pytest.raises(WeightsError, match=r"the weights fit, but the network's scores differ "
                                           r"from Hugging Face's by up to [0-9.e-]+ .*another "
                                           r"function than GPT2LMHeadModel"):
        load_huggingface(network().build(), str(tmp_path / "hf"), network().input_shape)


def test_other_sizes_are_refused_with_the_models_config(tmp_path, capsys):
    saved_gpt2(tmp_path / "hf")
    status = main(["compile", str(SPECS / "gpt.arch"), "gpt2", "--weights",
                   f"huggingface:{tmp_path / 'hf'}", "-o", str(tmp_path / "gpt2.pt")])
    err = capsys.readouterr().err
    assert status == 2 and "Traceback" not in err
    assert "the structures differ: the archdsl model has 149 tensors, the source 29" in err
    assert "(its config.json: vocab_size=100, n_positions=16, n_embd=64, n_layer=2, " \
           "n_head=4)" in err
    assert not (tmp_path / "gpt2.pt").exists()


@pytest.mark.parametrize("where,message", [
    ("{tmp}/no-such-folder", "`{tmp}/no-such-folder` is not a folder: give a folder that "
                             "Hugging Face's save_pretrained wrote"),
    ("{tmp}/empty", "the folder `{tmp}/empty` has no config.json: it is not a Hugging Face "
                    "model that save_pretrained wrote"),
    ("{tmp}/weights.bin", "`{tmp}/weights.bin` is not a folder"),
])
def test_a_folder_that_holds_no_model_gets_a_clear_answer(tmp_path, capsys, where, message):
    (tmp_path / "empty").mkdir()
    (tmp_path / "weights.bin").write_bytes(b"\0" * 8)
    where = where.format(tmp=tmp_path)
    status = main(["compile", *GPT, "--weights", f"huggingface:{where}"])
    err = capsys.readouterr().err
    assert status == 2 and message.format(tmp=tmp_path) in err and "Traceback" not in err


def test_training_starts_from_hugging_face_weights(tmp_path, capsys):
    saved_gpt2(tmp_path / "hf")
    text = tmp_path / "text.txt"
    text.write_text("abcdefgh\n" * 200)
    status = main(["train", *GPT, "--task", "lm", "--data", f"text:{text}", "--epochs", "1",
                   "--init", f"huggingface:{tmp_path / 'hf'}", "--no-progress",
                   "--no-tensorboard", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "initialised from huggingface:" in out + err
    assert json.loads((tmp_path / "run" / "result.json").read_text())["task"] == "lm"
