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
from conftest import SPECS, exported_generate, saved_tokenizer

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
    assert "has no tokenizer that the tokenizers package reads" in err  # weights alone
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


def test_generate_reads_prompts_with_the_models_tokenizer_as_hugging_face_does(tmp_path, capsys):
    """The tokenizer goes into the saved model with the weights, and `archdsl generate`, the
    saved model's generate and the exported .py continue a prompt as transformers'
    greedy `generate` does, to the token."""
    reference = saved_gpt2(tmp_path / "hf", vocab_size=300)
    tokenizer = saved_tokenizer(tmp_path / "hf")
    prompt = "the quick 신경"
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    expected = tokenizer.decode(reference.generate(ids, max_new_tokens=8, do_sample=False,
                                                   pad_token_id=0)[0])
    gpt = [a.replace("vocab=100", "vocab=300") for a in GPT]
    status = main(["compile", *gpt, "--weights", f"huggingface:{tmp_path / 'hf'}",
                   "-o", str(tmp_path / "gpt.pt")])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    status = main(["generate", str(tmp_path / "gpt.pt"), "--prompt", prompt,
                   "--temperature", "0", "--length", "8"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert out == expected + "\n"
    saved = archdsl.load(tmp_path / "gpt.pt")
    assert saved.preprocess.tokenizer and saved.preprocess.task == "lm"
    assert saved.generate(prompt, 8, temperature=0) == expected
    # the exported .py holds the tokenizer too
    assert exported_generate(tmp_path / "gpt.pt", "Gpt", prompt, 8) == expected


def test_a_tokenizer_record_is_checked_and_kept(monkeypatch):
    import archdsl.train.preprocess
    from archdsl.train.preprocess import Preprocess

    record = Preprocess.of_tokenizer('{"version": "1.0"}', (16,), "huggingface:gpt2")
    assert Preprocess.from_dict(record.to_dict()) == record
    for damaged in (7, "not json", ""):
        with pytest.raises(ValueError, match="must be a tokenizer's JSON text"):
            Preprocess.from_dict({**record.to_dict(), "tokenizer": damaged})
    # the ids that end a text (Llama 3's are three)
    ending = Preprocess.of_tokenizer('{"version": "1.0"}', (16,), "x", (128001, 128009))
    assert Preprocess.from_dict(ending.to_dict()).stop == (128001, 128009)
    for damaged in (7, [-1], ["2"], [2.0], list(range(65))):
        with pytest.raises(ValueError, match="must be a list of at most 64 token ids"):
            Preprocess.from_dict({**ending.to_dict(), "stop": damaged})
    # a record longer than any tokenizer is damage, refused before it is parsed
    monkeypatch.setattr(archdsl.train.preprocess, "MAX_TOKENIZER_CHARACTERS", 10)
    with pytest.raises(ValueError, match="must be a tokenizer's JSON text"):
        Preprocess.from_dict(record.to_dict())


def test_token_ids_beyond_the_networks_vocabulary_are_an_error():
    from archdsl.train.data import DataError
    from archdsl.train.text import check_token_ids

    check_token_ids([0, 99], network(), "--prompt")
    with pytest.raises(DataError, match=r"--prompt reads as token ids up to 150, beyond the "
                                        r"network's vocabulary of 100"):
        check_token_ids([5, 150, 120], network(), "--prompt")


def test_a_run_from_hugging_face_weights_reads_its_text_with_their_tokenizer(tmp_path, capsys):
    """Fine-tuning: the text is read through the model's tokenizer, the checkpoints keep it,
    and eval and generate read through it too."""
    saved_gpt2(tmp_path / "hf", vocab_size=300)
    tokenizer = saved_tokenizer(tmp_path / "hf")
    text = tmp_path / "text.txt"
    text.write_text("the quick brown fox jumps over the lazy dog 신경망\n" * 40)
    gpt = [a.replace("vocab=100", "vocab=300") for a in GPT]
    status = main(["train", *gpt, "--task", "lm", "--data", f"text:{text}", "--epochs", "2",
                   "--batch-size", "8",
                   "--init", f"huggingface:{tmp_path / 'hf'}", "--no-progress",
                   "--no-tensorboard", "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert status == 0, err
    tokens = len(tokenizer(text.read_text()).input_ids)
    assert "tokens in its tokenizer" in out + err
    saved = archdsl.load(tmp_path / "run" / "best.pt")
    assert saved.preprocess.tokenizer == tokenizer.backend_tokenizer.to_str()
    assert tokens < len(text.read_text())  # BPE: fewer tokens than characters
    status = main(["eval", str(tmp_path / "run"), "--data", f"text:{text}", "--split", "all"])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "perplexity" in out + err
    assert main(["generate", str(tmp_path / "run"), "--prompt", "the quick", "--length", "5",
                 "--temperature", "0"]) == 0
    assert capsys.readouterr().out.startswith("the quick")
