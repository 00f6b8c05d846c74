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
# -13b-hf, -70b-hf; meta-llama/Meta-Llama-3-8B, Llama-3.1-8B, Llama-3.2-1B, Llama-3.2-3B;
# mistralai/Mistral-7B-v0.1, -v0.3; Qwen/Qwen2.5-0.5B, Qwen/Qwen3-0.6B;
# TinyLlama/TinyLlama-1.1B-intermediate-step-1431k-3T; HuggingFaceTB/SmolLM-135M), each with
# the transformers class that builds it; the configs' defaults hold the rest (RMS norm, SiLU,
# no biases but Qwen's on q, k and v). The spec computes the MLP's width from Meta's rule
# where the model does: those intermediate_size values are the check of that rule.
CONFIGS = {
    "llama2_7b": ("Llama", dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                                num_attention_heads=32, num_key_value_heads=32, vocab_size=32000,
                                max_position_embeddings=4096)),
    "llama2_13b": ("Llama", dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40,
                                 num_attention_heads=40, num_key_value_heads=40,
                                 vocab_size=32000, max_position_embeddings=4096)),
    "llama2_70b": ("Llama", dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80,
                                 num_attention_heads=64, num_key_value_heads=8, vocab_size=32000,
                                 max_position_embeddings=4096)),
    "llama3_8b": ("Llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32,
                                num_attention_heads=32, num_key_value_heads=8, vocab_size=128256,
                                max_position_embeddings=8192)),
    "llama3_1_8b": ("Llama", dict(hidden_size=4096, intermediate_size=14336,
                                  num_hidden_layers=32, num_attention_heads=32,
                                  num_key_value_heads=8, vocab_size=128256,
                                  max_position_embeddings=131072)),
    "llama3_2_1b": ("Llama", dict(hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
                                  num_attention_heads=32, num_key_value_heads=8,
                                  vocab_size=128256, max_position_embeddings=131072,
                                  tie_word_embeddings=True)),
    "llama3_2_3b": ("Llama", dict(hidden_size=3072, intermediate_size=8192, num_hidden_layers=28,
                                  num_attention_heads=24, num_key_value_heads=8,
                                  vocab_size=128256, max_position_embeddings=131072,
                                  tie_word_embeddings=True)),
    "mistral_7b_v0_1": ("Mistral", dict(hidden_size=4096, intermediate_size=14336,
                                        num_hidden_layers=32, num_attention_heads=32,
                                        num_key_value_heads=8, vocab_size=32000,
                                        max_position_embeddings=32768, sliding_window=4096)),
    "mistral_7b": ("Mistral", dict(hidden_size=4096, intermediate_size=14336,
                                   num_hidden_layers=32, num_attention_heads=32,
                                   num_key_value_heads=8, vocab_size=32768,
                                   max_position_embeddings=32768)),
    "qwen2_5_0_5b": ("Qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24,
                                   num_attention_heads=14, num_key_value_heads=2,
                                   vocab_size=151936, max_position_embeddings=32768,
                                   tie_word_embeddings=True)),
    "qwen3_0_6b": ("Qwen3", dict(hidden_size=1024, intermediate_size=3072, num_hidden_layers=28,
                                 num_attention_heads=16, num_key_value_heads=8, head_dim=128,
                                 vocab_size=151936, max_position_embeddings=40960,
                                 tie_word_embeddings=True)),
    "tinyllama": ("Llama", dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22,
                                num_attention_heads=32, num_key_value_heads=4, vocab_size=32000,
                                max_position_embeddings=2048)),
    "smollm_135m": ("Llama", dict(hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                                  num_attention_heads=9, num_key_value_heads=3,
                                  vocab_size=49152, max_position_embeddings=2048,
                                  tie_word_embeddings=True)),
}


def hugging_face(kind: str, **config):
    """transformers' KIND ForCausalLM built from its KIND Config."""
    return getattr(transformers, f"{kind}ForCausalLM")(
        getattr(transformers, f"{kind}Config")(**config))


@pytest.mark.parametrize("name", CONFIGS)
def test_counts_equal_transformers(name):
    kind, config = CONFIGS[name]
    config = {"tie_word_embeddings": False, **config}
    with torch.device("meta"):
        reference = hugging_face(kind, **config)
    net = archdsl.load(SPECS / "llama.arch").network(name)
    assert net.params_total == sum(p.numel() for p in reference.parameters())
    # the MLP's width, from Meta's rule or given, and the context
    assert net.input_shape[0] == config["max_position_embeddings"]
    assert any(r["args"].get("out") == config["intermediate_size"]
               for r in net.graph.records.values() if r.get("kind") == "linear")


SMALL = dict(vocab_size=300, hidden_size=64, intermediate_size=192, num_hidden_layers=2,
             num_attention_heads=4, max_position_embeddings=16, rms_norm_eps=1e-5,
             bos_token_id=0, eos_token_id=0)


def saved_llama(folder, kind="Llama", **config):
    """A small LlamaForCausalLM (or Mistral's, Qwen2's) with random weights (its norms'
    scales too, so that a norm matched to the wrong one shows), written as Hugging Face
    writes models."""
    torch.manual_seed(0)
    reference = hugging_face(kind, **{**SMALL, **config})
    with torch.no_grad():
        for name, tensor in reference.named_parameters():
            if name.endswith("norm.weight"):
                tensor.uniform_(0.5, 1.5)
    reference.eval().save_pretrained(folder)
    return reference


def small(kv_heads=None, tied=False, **changes):
    """specs/llama.arch at SMALL's sizes (multiple=32: the rule gives 192)."""
    args = dict(dict(depth=2, d=64, heads=4, kv_heads=kv_heads, context=16, vocab=300,
                     multiple=32, tied=tied), **changes)
    return archdsl.load(SPECS / "llama.arch").network("llama", **args)


# (kind, key/value heads, tied, the spec's other arguments, and the config's)
FAMILY = [("Llama", 4, False, {}, {}), ("Llama", 2, False, {}, {}), ("Llama", 1, True, {}, {}),
          ("Mistral", 2, False, {}, {}),
          # Llama 3.1's scaled rotary embedding, its original context 4 positions: at 16 the
          # slow pairs turn differently
          ("Llama", 2, True, dict(theta=500000.0, rope_scaling=[8, 1, 4, 4]),
           dict(rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                                     low_freq_factor=1.0, high_freq_factor=4.0,
                                     original_max_position_embeddings=4))),
          ("Qwen2", 2, True, dict(qkv_bias=True, eps=1e-6, theta=1e6),
           dict(rms_norm_eps=1e-6, rope_theta=1e6)),
          # heads wider than D / heads (4 of 32 over a width of 64), their q and k normalised
          ("Qwen3", 2, True, dict(head_dim=32, qk_norm=True, eps=1e-6, theta=1e6),
           dict(head_dim=32, rms_norm_eps=1e-6, rope_theta=1e6))]


@pytest.mark.parametrize("kind,kv_heads,tied,args,config", FAMILY,
                         ids=["multi-head", "grouped", "multi-query-tied", "mistral",
                              "llama3.1-scaled", "qwen2", "qwen3"])
def test_the_spec_equals_hugging_face(tmp_path, kind, kv_heads, tied, args, config):
    """Multi-head, grouped-query and multi-query attention, separate and tied output layers,
    Mistral's model, Llama 3.1's scaled rotary embedding, Qwen2's (biases on q, k and v) and
    Qwen3's (wider heads, their queries and keys normalised): the same scores as
    transformers' at the context and shorter, within 1e-6 (the zoo holds torchvision's
    models to 1e-5; here they agree to the bit on this machine), and the same greedy
    continuations, with the cache and without. Not in float64: Hugging Face's RMS norm
    computes in float32 whatever the model's dtype."""
    reference = saved_llama(tmp_path, kind, num_key_value_heads=kv_heads,
                            tie_word_embeddings=tied, **config)
    net = small(kv_heads, tied, **args)
    model = net.build().eval()
    transfer = load_huggingface(model, str(tmp_path), net.input_shape)
    # q, k and v one matrix: 7 tensors a layer (and q, k and v's biases, the norms of q and
    # k), the embedding, the norm, the output layer
    assert len(transfer) == 17 + (2 if args.get("qkv_bias") else 0) \
        + (4 if args.get("qk_norm") else 0)
    # writing a token at a time with the cache (rotated, normalised keys of the shared
    # heads) continues as transformers' generate does, and as without the cache
    from archdsl.train.text import generate

    prompt = torch.tensor([[5, 17, 42]])
    expected = reference.generate(prompt, max_new_tokens=10, do_sample=False, pad_token_id=0,
                                  eos_token_id=None)[0].tolist()
    for cached in (True, False):
        assert generate(model, prompt[0].tolist(), 10, 16, 300, cached=cached,
                        temperature=0) == expected
    with torch.no_grad():
        for length in (16, 5, 1):
            ids = torch.randint(0, 300, (2, length))
            assert (model(ids) - reference(ids).logits).abs().max() <= 1e-6


def test_another_rotary_embedding_or_size_is_refused_with_what_differs(tmp_path):
    """Another base or scaling is refused from the config (over a few positions the slow
    pairs barely turn, so the scores alone might not show it); another activation by the
    scores; other sizes by the first tensor that differs, with the config's sizes."""
    from archdsl.backends.weights import WeightsError

    saved_llama(tmp_path, num_key_value_heads=2)
    with pytest.raises(WeightsError, match=r"^LlamaForCausalLM turns its queries and keys with "
                                           r"θ = 10000 \(its config.json\), the spec's "
                                           r"attention with θ = 500: give the spec's "
                                           r"attention rope=10000$"):
        load_huggingface(small(2, theta=500.0).build(), str(tmp_path), small(2).input_shape)
    with pytest.raises(WeightsError, match=r"with θ = 10000 \(its config.json\), the spec's "
                                           r"attention with θ = 10000 and Llama 3.1's scaling "
                                           r"\[8, 1, 4, 8192\]: give the spec's "
                                           r"attention rope=10000, no rope_scaling$"):
        net = small(2, rope_scaling=[8, 1, 4, 8192])
        load_huggingface(net.build(), str(tmp_path), net.input_shape)
    with pytest.raises(WeightsError, match=r"archdsl `layers.0.add1.1.self_attn.attention."
                                           r"in_proj_weight` is 192x64, the source's `model."
                                           r"layers.0.self_attn.in_proj_weight` is 128x64 .*"
                                           r"num_key_value_heads=2"):
        load_huggingface(small(4).build(), str(tmp_path), small(4).input_shape)
    saved_llama(tmp_path / "gelu", num_key_value_heads=2, hidden_act="gelu")
    with pytest.raises(WeightsError, match=r"scores differ from Hugging Face's by up to .*"
                                           r"LlamaForCausalLM"):
        load_huggingface(small(2).build(), str(tmp_path / "gelu"), small(2).input_shape)


def test_small_llamas_against_torch():
    """Every layer's shape and the MACs against the built module (FlopCounterMode): the
    grouped keys and values are repeated for their query heads, the rotation is no
    multiply-add."""
    check_against_torch(small(2))
    check_against_torch(small(2, head_dim=32, qk_norm=True))  # Qwen3's wider heads
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


@pytest.mark.parametrize("kind,config,message", [
    ("Llama", dict(rope_parameters=dict(rope_type="yarn", rope_theta=10000.0, factor=4.0,
                                        original_max_position_embeddings=8)),
     "LlamaForCausalLM scales its rotary embedding (`yarn`, in its config.json), which "
     "archdsl's `attention` does not express: only the plain rotary embedding and Llama "
     "3.1's scaling (`rope_scaling`) are"),
    ("Mistral", dict(sliding_window=8),
     "MistralForCausalLM attends within a sliding window of 8 positions (its config.json), "
     "the spec's attention to every earlier position over its 16 positions: give the spec's "
     "attention sliding_window=8"),
])
def test_what_a_spec_cannot_express_is_refused_before_the_weights_load(tmp_path, kind, config,
                                                                       message):
    """YaRN's scaled rotary embedding, and a sliding window the spec does not have, change
    only the slow pairs and the long sequences, which a short comparison might miss: the
    config says."""
    from archdsl.backends.weights import WeightsError

    saved_llama(tmp_path, kind, num_key_value_heads=2, **config)
    with pytest.raises(WeightsError) as error:
        load_huggingface(small(2).build(), str(tmp_path), small(2).input_shape)
    assert str(error.value) == message
    # within the window, the same function: the weights load
    if kind == "Mistral":
        net = small(2, context=8)
        assert load_huggingface(net.build(), str(tmp_path), net.input_shape).difference <= 1e-6


def test_a_sliding_window_computes_and_writes_as_mistral(tmp_path):
    """Mistral 7B v0.1's sliding window (here 4 positions over a context of 16): the same
    scores as MistralForCausalLM at every length, and the same greedy continuation as its
    generate with the cache and without."""
    from archdsl.train.text import generate

    reference = saved_llama(tmp_path, "Mistral", num_key_value_heads=2, sliding_window=4)
    net = small(2, sliding_window=4)
    model = net.build().eval()
    assert load_huggingface(model, str(tmp_path), net.input_shape).difference <= 1e-6
    with torch.no_grad():
        for length in (16, 9, 3):
            ids = torch.randint(0, 300, (2, length))
            assert (model(ids) - reference(ids).logits).abs().max() <= 1e-6
    prompt = torch.tensor([[5, 17, 42]])
    expected = reference.generate(prompt, max_new_tokens=12, do_sample=False,
                                  pad_token_id=0)[0].tolist()
    for cached in (True, False):
        assert generate(model, prompt[0].tolist(), 12, 16, 300, cached=cached,
                        temperature=0) == expected


def test_llama3_scaling_turns_each_pair_at_hugging_faces_rate():
    """At Llama 3.1's sizes (θ = 500,000, heads of 128, [8, 1, 4, 8192]) every pair turns at
    the rate transformers computes: the 35 slowest 8 times slower, the 6 between blended, the
    fast ones as before — read back from the angle of one step."""
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    from archdsl.backends.torch_modules import SelfAttention

    config = transformers.LlamaConfig(
        hidden_size=4096, num_attention_heads=32, max_position_embeddings=131072,
        rope_parameters=dict(rope_type="llama3", rope_theta=500000.0, factor=8.0,
                             low_freq_factor=1.0, high_freq_factor=4.0,
                             original_max_position_embeddings=8192))
    expected, _ = ROPE_INIT_FUNCTIONS["llama3"](config, "cpu")
    x = torch.zeros(1, 1, 2, 128)
    x[..., :64] = 1.0  # each pair at angle 0, turned by one position
    turned = SelfAttention.rotate(x, 0, 500000.0, (8.0, 1.0, 4.0, 8192.0))[0, 0, 1]
    assert (torch.atan2(turned[64:], turned[:64]) - expected).abs().max() <= 1e-6
    plain = 1.0 / 500000.0 ** (torch.arange(0, 128, 2).float() / 128)
    assert int((expected < plain / 7.99).sum()) == 29
    assert int(((expected < plain * 0.999) & (expected > plain / 7.99)).sum()) == 6


def saved_llama_tokenizer(folder):
    """A tokenizer laid out as Llama's tokenizer.json is (tokenizers): spaces as ▁ before
    BPE, <s> put before every text, the ▁ read back as spaces; trained here on a line of
    English and Korean."""
    from tokenizers import Tokenizer, decoders, models, normalizers, processors, trainers

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Sequence([normalizers.Prepend("▁"),
                                                 normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.Fuse(),
                                           decoders.Strip(" ", 1, 0)])
    tokenizer.train_from_iterator(
        ["the quick brown fox jumps over the lazy dog 신경망"] * 50,
        trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"]))
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>",
                                                eos_token="</s>", unk_token="<unk>")
    fast.save_pretrained(folder)
    return fast


def test_generate_reads_as_llamas_tokenizer_and_stops_at_the_end_of_text(tmp_path, capsys):
    """A Llama-style tokenizer puts <s> before the prompt (the model was trained so), and
    the text ends at the model's end-of-text token (its eos_token_id), as transformers'
    generate does: from `archdsl generate`, the saved model and the exported .py."""
    folder = tmp_path / "hf"
    tokenizer = saved_llama_tokenizer(folder)
    reference = saved_llama(folder, num_key_value_heads=2, vocab_size=len(tokenizer),
                            bos_token_id=1, eos_token_id=2)
    prompt = "the quick"
    ids = tokenizer(prompt, return_tensors="pt").input_ids
    assert ids[0, 0] == 1  # <s>
    # the end of text: a token the model writes third or later, for the first time, as it
    # writes without one
    written = reference.generate(ids, max_new_tokens=8, do_sample=False, pad_token_id=0,
                                 eos_token_id=None)[0, ids.shape[1]:].tolist()
    end = next(t for i, t in enumerate(written[:-1]) if i >= 2 and t not in written[:i])
    reference.config.eos_token_id = reference.generation_config.eos_token_id = end
    reference.save_pretrained(folder)
    expected = tokenizer.decode(reference.generate(ids, max_new_tokens=8, do_sample=False,
                                                   pad_token_id=0)[0], skip_special_tokens=True)
    assert expected.startswith(prompt) and len(reference.generate(
        ids, max_new_tokens=8, do_sample=False, pad_token_id=0)[0]) < ids.shape[1] + 8
    command = ["compile", str(SPECS / "llama.arch"), "llama"]
    for key, value in dict(depth=2, d=64, heads=4, kv_heads=2, context=16,
                           vocab=len(tokenizer), multiple=32).items():
        command += ["--set", f"{key}={value}"]
    assert main([*command, "--weights", f"huggingface:{folder}",
                 "-o", str(tmp_path / "llama.pt")]) == 0
    capsys.readouterr()
    saved = archdsl.load(tmp_path / "llama.pt")
    assert saved.preprocess.stop == (end,)
    assert main(["generate", str(tmp_path / "llama.pt"), "--prompt", prompt,
                 "--temperature", "0", "--length", "8"]) == 0
    assert capsys.readouterr().out == expected + "\n"
    assert saved.generate(prompt, 8, temperature=0) == expected
    assert exported_generate(tmp_path / "llama.pt", "Llama", prompt, 8) == expected
