"""BERT (specs/bert.arch) against Hugging Face's BertModel (transformers): the counts of
bert-base-uncased's and bert-large-uncased's sizes, and both outputs (every position's vector
and the pooled one) after a weight copy."""

from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.backends.weights import copy_state
from oracle import check_against_torch

transformers = pytest.importorskip("transformers")

SPEC = Path(__file__).parent.parent / "specs" / "bert.arch"

# The sizes of bert-base-uncased's and bert-large-uncased's config.json (Devlin et al. 2019,
# §3: L=12, H=768, A=12 and L=24, H=1024, A=16; a vocabulary of 30,522 WordPiece tokens)
CONFIGS = {"bert_base": dict(num_hidden_layers=12, hidden_size=768, num_attention_heads=12,
                             intermediate_size=3072),
           "bert_large": dict(num_hidden_layers=24, hidden_size=1024, num_attention_heads=16,
                              intermediate_size=4096)}


def hugging_face_state(model) -> dict:
    """BertModel's tensors as the spec holds them: its separate query, key and value
    projections as one matrix (nn.MultiheadAttention's in_proj: q's rows, k's, v's)."""
    state, merged = model.state_dict(), {}
    for key, value in state.items():
        holder, _, leaf = key.rpartition(".")
        if holder.endswith(".self.query"):
            base = holder[:-len("query")]
            merged[base + "in_proj_" + leaf] = torch.cat(
                [state[f"{base}{p}.{leaf}"] for p in ("query", "key", "value")])
        elif not holder.endswith((".self.key", ".self.value")):
            merged[key] = value
    return merged


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_counts_equal_transformers_bert_model(name):
    net = archdsl.load(SPEC).network(name)
    with torch.device("meta"):
        reference = transformers.BertModel(transformers.BertConfig(**CONFIGS[name]))
    assert net.params_trainable == sum(p.numel() for p in reference.parameters())
    assert net.params_nontrainable == 0


def test_shapes_and_macs_against_torch():
    check_against_torch(archdsl.load(SPEC).network("bert_base", context=64), batch=1,
                        device="meta")


def test_outputs_equal_transformers_after_a_weight_copy():
    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=256,
                                     max_position_embeddings=32)
    reference = transformers.BertModel(config).eval()
    net = archdsl.load(SPEC).network("bert", depth=2, d=64, heads=4, vocab=100, context=32)
    model = net.build().eval()
    copy_state(model, hugging_face_state(reference))
    ids = torch.randint(0, 100, (3, 10))  # shorter than the context, as sentences are
    segments = torch.cat([torch.zeros(3, 6, dtype=torch.long), torch.ones(3, 4, dtype=torch.long)], 1)
    with torch.no_grad():
        hidden, pooled = model(ids, segments)
        theirs = reference(input_ids=ids, token_type_ids=segments)
    assert (hidden - theirs.last_hidden_state).abs().max() < 1e-5
    assert (pooled - theirs.pooler_output).abs().max() < 1e-5


def test_compile_takes_a_hugging_face_berts_weights(tmp_path, capsys):
    """`compile --weights huggingface:FOLDER` on an encoder: the bare model's weights
    (AutoModel), checked to give its vectors; the saved .pt gives both outputs."""
    from archdsl.cli import main

    torch.manual_seed(0)
    config = transformers.BertConfig(vocab_size=100, hidden_size=64, num_hidden_layers=2,
                                     num_attention_heads=4, intermediate_size=256,
                                     max_position_embeddings=32)
    transformers.BertModel(config).save_pretrained(tmp_path / "bert")
    spec = [str(SPEC), "bert", "--set", "depth=2", "--set", "d=64", "--set", "heads=4",
            "--set", "vocab=100", "--set", "context=32"]
    assert main(["compile", *spec, "--weights", f"huggingface:{tmp_path / 'bert'}",
                 "-o", str(tmp_path / "bert.pt")]) == 0
    assert "note:" not in capsys.readouterr().err  # no tokenizer expected of an encoder
    model = archdsl.load(tmp_path / "bert.pt").build().eval()
    reference = transformers.BertModel.from_pretrained(tmp_path / "bert").eval()
    ids = torch.randint(0, 100, (2, 12))
    segments = torch.randint(0, 2, (2, 12))
    with torch.no_grad():
        hidden, pooled = model(ids, segments)
        theirs = reference(input_ids=ids, token_type_ids=segments)
    assert (hidden - theirs.last_hidden_state).abs().max() < 1e-5
    assert (pooled - theirs.pooler_output).abs().max() < 1e-5
    # a spec of another function (its norms' epsilon 0.1, not 1e-12): refused, with why
    assert main(["compile", *spec, "--set", "eps=0.1",
                 "--weights", f"huggingface:{tmp_path / 'bert'}"]) == 2
    assert "differ from Hugging Face's" in capsys.readouterr().err
