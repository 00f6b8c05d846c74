"""Llama (specs/llama.arch): rotary position embeddings, grouped-query attention and SwiGLU,
against transformers' own LlamaForCausalLM — its parameter counts for the published
configurations (built on the meta device: nothing allocated), its outputs after a weight
copy, and its greedy continuations with the cache."""

import pytest
import torch

import archdsl
from archdsl.backends.weights import load_huggingface
from archdsl.cli import main
from conftest import SPECS, exported_generate, saved_tokenizer
from oracle import check_against_torch

transformers = pytest.importorskip("transformers")

# The sizes of the models' config.json files on the Hugging Face Hub (meta-llama/Llama-2-7b-hf,
# -13b-hf, -70b-hf; TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T;
# HuggingFaceTB/SmolLM-135M). transformers' LlamaConfig holds the rest of them by default
# (RMS norm, SiLU, no biases, θ = 10000). The spec computes the MLP's width from Meta's rule:
# these intermediate_size values are the check of that rule.
CONFIGS = {
    "llama2_7b": dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                      num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                      max_position_embeddings=4096),
    "llama2_13b": dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                       num_attention_heads=40, num_key_value_heads=40, vocab_size=32000,
                       max_position_embeddings=4096),
    "llama2_70b": dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                       num_attention_heads=64, num_key_value_heads=8, vocab_size=32000,
                       max_position_embeddings=4096),
    "tinyllama": dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                      num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                      max_position_embeddings=2048),
    "smollm_135m": dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                        num_attention_heads=9, num_key_value_heads=3, vocab_size=49152,
                        max_position_embeddings=2048, tie_word_embeddings=True),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_counts_equal_transformers_llama(name):
    config = {"tie_word_embeddings": False, **CONFIGS[name]}
    with torch.device("meta"):
        reference = transformers.LlamaForCausalLM(transformers.LlamaConfig(**config))
    net = archdsl.load(SPECS / "llama.arch").network(name)
    assert net.params_total == sum(p.numel() for p in reference.parameters())
    # the MLP's width from Meta's rule, the context from the config
    assert net.input_shape[0] == config["max_position_embeddings"]
    assert any(r["args"].get("out") == config["intermediate_size"]
               for r in net.graph.records.values() if r.get("kind") == "linear")


SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
             num_attention_heads=4, max_position_embeddings=16, rms_norm_eps=1e-5,
             bos_token_id=0, eos_token_id=0)


def saved_llama(folder, **config):
    """A small LlamaForCausalLM with random weights (its norms' scales too, so that a norm
    matched to the wrong one shows), written as Hugging Face writes models."""
    torch.manual_seed(0)
    reference = transformers.LlamaForCausalLM(transformers.LlamaConfig(**{**SMALL, **config}))
    with torch.no_grad():
        for name, tensor in reference.named_parameters():
            if name.endswith("norm.weight"):
                tensor.uniform_(0.5, 1.5)
    reference.eval().save_pretrained(folder)
    return reference


def small(kv_heads=None, tied=False, **changes):
    """specs/llama.arch at SMALL's sizes (multiple=32: the rule gives 192)."""
    args = dict(depth=2, d=64, heads=4, kv_heads=kv_heads, context=16, vocab=300, multiple=32,
                tied=tied, **changes)
    return archdsl.load(SPECS / "llama.arch").network("llama", **args)


@pytest.mark.parametrize("kv_heads,tied", [(4, False), (2, False), (1, True)],
                         ids=["multi-head", "grouped", "multi-query-tied"])
def test_llama_equals_hugging_face_llama(tmp_path, kv_heads, tied):
    """Multi-head, grouped-query and multi-query attention, separate and tied output layers:
    the same scores as LlamaForCausalLM at its context and shorter, within 1e-6 (the zoo holds
    torchvision's models to 1e-5; here they agree to the bit on this machine). Not in
    float64: Hugging Face's RMS norm computes in float32 whatever the model's dtype."""
    reference = saved_llama(tmp_path, num_key_value_heads=kv_heads, tie_word_embeddings=tied)
    net = small(kv_heads, tied)
    model = net.build().eval()
    transfer = load_huggingface(model, str(tmp_path), net.input_shape)
    assert len(transfer) == 17  # q, k and v one matrix: 7 a layer, the embedding, norm, head
    with torch.no_grad():
        for length in (16, 5, 1):
            ids = torch.randint(0, 300, (2, length))
            assert (model(ids) - reference(ids).logits).abs().max() <= 1e-6


def test_another_rotary_base_is_refused_with_the_difference(tmp_path):
    from archdsl.backends.weights import WeightsError

    saved_llama(tmp_path, num_key_value_heads=2)
    with pytest.raises(WeightsError, match=r"scores differ from Hugging Face's by up to .*"
                                           r"LlamaForCausalLM .*a rotary embedding's base"):
        load_huggingface(small(2, theta=500.0).build(), str(tmp_path), small(2).input_shape)
    with pytest.raises(WeightsError, match=r"archdsl `layers.0.add1.1.self_attn.attention."
                                           r"in_proj_weight` is 192x64, the source's `model."
                                           r"layers.0.self_attn.in_proj_weight` is 128x64 .*"
                                           r"num_key_value_heads=2"):
        load_huggingface(small(4).build(), str(tmp_path), small(4).input_shape)


def test_small_llamas_against_torch():
    """Every layer's shape and the MACs against the built module (FlopCounterMode): the
    grouped keys and values are repeated for their query heads, the rotation is no
    multiply-add."""
    check_against_torch(small(2))
    check_against_torch(archdsl.load(SPECS / "llama.arch").network("smollm_135m"), batch=1,
                        device="meta")


def test_generate_continues_as_hugging_face_with_the_cache(tmp_path, capsys):
    """The cache holds the rotated keys: a token at a time from position len(prompt) on, the
    same greedy continuation as transformers' generate, from `archdsl generate`, the saved
    model and the exported .py; and the same ids without the cache."""
    from archdsl.train.text import decodes_with_cache, generate

    reference = saved_llama(tmp_path / "hf", num_key_value_heads=2)
    tokenizer = saved_tokenizer(tmp_path / "hf")
    prompt = "the quick"
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    expected = reference.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0)[0]
    command = ["compile", str(SPECS / "llama.arch"), "llama"]
    for key, value in dict(depth=2, d=64, heads=4, kv_heads=2, context=16, vocab=300,
                           multiple=32).items():
        command += ["--set", f"{key}={value}"]
    status = main([*command, "--weights", f"huggingface:{tmp_path / 'hf'}",
                   "-o", str(tmp_path / "llama.pt")])
    assert status == 0, capsys.readouterr().err
    capsys.readouterr()
    text = tokenizer.decode(expected)
    assert main(["generate", str(tmp_path / "llama.pt"), "--prompt", prompt,
                 "--temperature", "0", "--length", "8"]) == 0
    assert capsys.readouterr().out == text + "\n"
    saved = archdsl.load(tmp_path / "llama.pt")
    assert saved.generate(prompt, 8, temperature=0) == text
    net = small(2)
    assert decodes_with_cache(net)
    model = saved.build()
    for cached in (True, False):
        assert generate(model, ids[0].tolist(), 8, 16, 300, cached=cached, seed=0,
                        temperature=0) == expected.tolist()
    assert exported_generate(tmp_path / "llama.pt", "Llama", prompt, 8) == text


def test_a_small_llama_trains_on_text(tmp_path, capsys):
    text = tmp_path / "text.txt"
    text.write_text("to be or not to be, that is the question\n" * 30)
    status = main(["train", str(SPECS / "llama.arch"), "llama_char", "--set", "depth=1",
                   "--set", "d=64", "--set", "heads=4", "--set", "context=32",
                   "--task", "lm", "--data", f"text:{text}", "--epochs", "2",
                   "--batch-size", "16", "--no-progress", "--no-tensorboard",
                   "--out", str(tmp_path / "run")])
    out, err = capsys.readouterr()
    assert status == 0, err
    assert "perplexity" in out + err
