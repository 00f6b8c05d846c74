"""The Transformer of "Attention Is All You Need" (specs/transformer.arch): an encoder-decoder
whose decoder attends to the encoder's output through `cross_attention`, a tensor given to a
block by name. torch.nn.Transformer is the oracle: counts, and outputs after a weight copy."""

import math
import re
from pathlib import Path

import pytest
import torch
from torch import nn

import archdsl
from oracle import check_against_torch

SPEC = Path(__file__).parent.parent / "specs" / "transformer.arch"

# Vaswani et al. 2017, Table 3: "params ×10^6" — rounded, so the test holds archdsl's counts
# to a PyTorch model of the same sizes, and these to the paper's rounding
PAPER_MILLIONS = {"transformer_base": 65, "transformer_big": 213}
SIZES = {"transformer_base": dict(d=512, heads=8, ff=2048, depth=6, p=0.1),
         "transformer_big": dict(d=1024, heads=16, ff=4096, depth=6, p=0.3)}


class Reference(nn.Module):
    """The paper's model written with torch.nn.Transformer, as PyTorch's tutorial does: one
    embedding for both languages and the output layer, scaled by sqrt(d), plus sinusoidal
    positions. `final_norms`: nn.Transformer's layer norms after each stack (the paper has
    none)."""

    def __init__(self, d, heads, ff, depth, p=0.1, vocab=37000, final_norms=False):
        super().__init__()
        self.d = d
        self.embed = nn.Embedding(vocab, d)
        encoder = nn.TransformerEncoder(
            nn.TransformerEncoderLayer(d, heads, ff, p, batch_first=True), depth,
            norm=nn.LayerNorm(d) if final_norms else None, enable_nested_tensor=False)
        decoder = nn.TransformerDecoder(
            nn.TransformerDecoderLayer(d, heads, ff, p, batch_first=True), depth,
            norm=nn.LayerNorm(d) if final_norms else None)
        self.transformer = nn.Transformer(d, heads, custom_encoder=encoder,
                                          custom_decoder=decoder, batch_first=True)
        self.generator = nn.Linear(d, vocab, bias=False)
        self.generator.weight = self.embed.weight

    def positions(self, length):
        # PyTorch's tutorial's PositionalEncoding
        position = torch.arange(length).unsqueeze(1)
        div_term = torch.exp(torch.arange(0, self.d, 2) * (-math.log(10000.0) / self.d))
        pe = torch.zeros(length, self.d)
        pe[:, 0::2] = torch.sin(position * div_term)
        pe[:, 1::2] = torch.cos(position * div_term)
        return pe

    def forward(self, source, target):
        s = self.embed(source) * math.sqrt(self.d) + self.positions(source.shape[1])
        t = self.embed(target) * math.sqrt(self.d) + self.positions(target.shape[1])
        mask = nn.Transformer.generate_square_subsequent_mask(target.shape[1])
        return self.generator(self.transformer(s, t, tgt_mask=mask, tgt_is_causal=True))


def reference_name(ours: str) -> str:
    """Our state_dict key as nn.Transformer's: the labels are its names; the residual sums'
    branches and each layer's own module are steps of ours that it does not have."""
    key = re.sub(r"\.add\d+\.\d+", "", ours)
    key = re.sub(r"\.(attention|cross_attention|linear|layernorm|embedding)\.", ".", key)
    key = key.replace("target_embed.", "embed.")  # one matrix, under both names (tied)
    return key if key.startswith(("embed.", "generator.")) else "transformer." + key


@pytest.mark.parametrize("name", sorted(PAPER_MILLIONS))
def test_counts_equal_a_pytorch_transformer_and_round_to_the_papers(name):
    net = archdsl.load(SPEC).network(name)
    with torch.device("meta"):
        reference = Reference(**SIZES[name])
    assert net.params_trainable == sum(p.numel() for p in reference.parameters())
    assert net.params_nontrainable == 0
    # the paper's own figure, rounded to millions (its base model: 63.1 M, printed 65)
    assert abs(net.params / 1e6 - PAPER_MILLIONS[name]) < 2.5


def test_transformer_base_shapes_and_macs_against_torch():
    check_against_torch(archdsl.load(SPEC).network("transformer_base", context=32), batch=1,
                        device="meta")


@pytest.mark.parametrize("final_norms", [False, True])
def test_outputs_equal_torch_nn_transformer_after_a_weight_copy(final_norms):
    sizes = dict(d=64, heads=4, ff=96, depth=2)
    net = archdsl.load(SPEC).network("transformer", vocab=100, context=16,
                                     final_norms=final_norms, **sizes)
    torch.manual_seed(0)
    reference = Reference(vocab=100, final_norms=final_norms, **sizes).eval()
    model = check_against_torch(net)  # counts, shapes and MACs, at the spec's sizes
    theirs = reference.state_dict()
    state = {key: theirs[reference_name(key)] for key in model.state_dict()}
    assert len(set(map(reference_name, state))) == len(theirs)  # every tensor, once
    model.load_state_dict(state)
    # a source and a target of other lengths than the spec's, and than each other's
    source, target = torch.randint(0, 100, (3, 12)), torch.randint(0, 100, (3, 7))
    with torch.no_grad():
        ours, expected = model.eval()(source, target), reference(source, target)
    # logits of some 20 (the embeddings are N(0, 1), times 8): float32's rounding, relative
    torch.testing.assert_close(ours, expected, rtol=1e-5, atol=1e-5)
    # the decoder is causal: a later target token changes no earlier position's output
    changed = target.clone()
    changed[:, -1] = (changed[:, -1] + 1) % 100
    with torch.no_grad():
        assert torch.equal(model(source, changed)[:, :-1], ours[:, :-1])


def test_a_training_step_reaches_every_parameter():
    net = archdsl.load(SPEC).network("transformer", d=32, heads=4, ff=64, depth=1, vocab=50,
                                     context=8)
    model = net.build().train()
    source, target = torch.randint(0, 50, (2, 8)), torch.randint(0, 50, (2, 8))
    logits = model(source, target)
    nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten()).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())


def small():
    return archdsl.load(SPEC).network("transformer", d=32, heads=4, ff=64, depth=2, vocab=50,
                                      context=8)


def test_the_exported_source_calls_cross_attention_with_the_memory():
    from archdsl.backends.source import to_source

    net = small()
    namespace = {}
    exec(compile(to_source(net), "transformer.py", "exec"), namespace)
    theirs, ours = namespace["Transformer"]().eval(), net.build().eval()
    theirs.load_state_dict(ours.state_dict())
    source, target = torch.randint(0, 50, (2, 6)), torch.randint(0, 50, (2, 5))
    with torch.no_grad():
        assert torch.equal(theirs(source, target), ours(source, target))


def test_onnx_with_dynamic_sizes_takes_a_source_and_a_target_of_their_own_lengths(tmp_path):
    import onnxruntime

    net = small()
    model = net.build().eval()
    session = onnxruntime.InferenceSession(
        str(net.export(tmp_path / "t.onnx", model, dynamic=True)),
        providers=["CPUExecutionProvider"])
    assert [(i.name, i.shape) for i in session.get_inputs()] == [
        ("source", ["batch", "source_positions"]), ("target", ["batch", "target_positions"])]
    for lengths in [(8, 8), (6, 3), (2, 7)]:
        source, target = (torch.randint(0, 50, (2, n)) for n in lengths)
        (got,) = session.run(None, {"source": source.numpy(), "target": target.numpy()})
        with torch.no_grad():
            expected = model(source, target)
        assert abs(torch.from_numpy(got) - expected).max() <= 1e-4 * max(1.0, float(
            expected.abs().max()))


def test_a_decoder_with_sinusoidal_positions_scores_the_same_with_and_without_the_cache():
    """The encoding continues from the positions already read (its offset), so the cached
    decoder, fed a token at a time, scores as reading the whole window does."""
    from archdsl.train.text import _Cache, decodes_with_cache

    net = archdsl.load("""
network decoder:
    input 24 tokens of 30
    embedding(32)
    position_encoding
    add:
        branch: identity
        branch: layernorm attention(4, causal=true)
    layernorm
    linear(30)
""").network("decoder")
    assert decodes_with_cache(net)
    torch.manual_seed(0)
    model = net.build(logits=True).eval()
    ids = torch.randint(0, 30, (1, 10))
    with torch.no_grad():
        whole = model(ids)[0]
        with _Cache(model, True):
            model(ids[:, :7])
            steps = [model(ids[:, i:i + 1])[0, 0] for i in range(7, 10)]
    torch.testing.assert_close(torch.stack(steps), whole[7:], rtol=1e-5, atol=1e-5)
