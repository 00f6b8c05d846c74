"""Layers of sequence models: multi-head self-attention and token embeddings."""

from __future__ import annotations

from ..shapes import SEQ, TOKENS, Shape
from .registry import LayerKind, Params, Param, ShapeError, TorchModule, register
from .linear import TIED
from .types import Bool, Float, Int, Optional


@register
class Attention(LayerKind):
    name = "attention"
    aliases = ("mhsa", "self_attention")
    family = "attention"
    doc = ("Multi-head self-attention over a sequence (Vaswani et al. 2017): LxD to LxD. Its "
           "parameters are torch.nn.MultiheadAttention's (in_proj_weight 3DxD, in_proj_bias, "
           "out_proj), so torchvision's ViT weights load; it runs through "
           "scaled_dot_product_attention. `causal=true` lets each position attend only to "
           "itself and earlier ones (GPT). MACs: the q, k, v and output projections (4·L·D²) "
           "and the QKᵀ and AV products (2·L²·D), as fvcore counts them.")
    params = (
        Param("heads", Int(1), doc="attention heads; must divide the width D"),
        Param("dropout", Float(0.0, 1.0), 0.0, "dropout on the attention weights while training"),
        Param("causal", Bool(), False, "mask out later positions"),
        Param("bias", Bool(), True, "biases in the projections"),
    )
    accepts = (SEQ,)
    output_disposable = True
    autocast = "low"

    def saved_extra(self, a, x, y):
        # the q, k, v projections, the attention's output and its log-sum-exp per query
        # (the flash and memory-efficient kernels keep no LxL matrix), and that output laid
        # out again for the output projection
        length, d = x
        return ((3 * length * d, "act"), (length * d, "act"), (a["heads"] * length, "fp32"),
                (length * d, "act"))

    def shape(self, a, x):
        if x[1] % a["heads"]:
            raise ShapeError(f"{a['heads']} heads do not divide the width {x[1]}",
                             help="choose a number of heads that divides the sequence's "
                                  "features (768 = 12 x 64)", arg="heads", code="E0405")
        return x

    def params_count(self, a, x):
        d = x[1]
        return Params(4 * d * d + (4 * d if a["bias"] else 0))

    def macs(self, a, x, y):
        length, d = x
        return 4 * length * d * d + 2 * length * length * d

    def flops(self, a, x, y):
        length, d = x
        # the products' multiply-adds, the biases, and per attention score a scale, an exp,
        # a sum and a divide (softmax)
        return 2 * self.macs(a, x, y) + (4 * length * d if a["bias"] else 0) \
            + 4 * a["heads"] * length * length

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.SelfAttention", dict(
            embed_dim=x[1], num_heads=a["heads"], dropout=a["dropout"], causal=a["causal"],
            bias=a["bias"]))

    def describe(self, a):
        return f"attention x{a['heads']}" + (", causal" if a["causal"] else "")


@register
class Embedding(LayerKind):
    name = "embedding"
    family = "attention"
    doc = ("Token embedding (torch.nn.Embedding): token ids of a vocabulary to a sequence of "
           "D-wide vectors, L to LxD. The vocabulary is the input's (`input 1024 tokens of "
           "50257`) unless given. Looking up is no multiply-add: 0 MACs.")
    params = (
        Param("d", Int(1), doc="width of each vector"),
        Param("vocab", Optional(Int(1)), None, "vocabulary size; `none`: the input's"),
        TIED,
    )
    accepts = (TOKENS,)

    def resolve(self, a, x):
        return dict(a, vocab=a["vocab"] or x.vocab)

    def shape(self, a, x):
        if x.vocab and a["vocab"] < x.vocab:
            raise ShapeError(f"an embedding of {a['vocab']} tokens cannot look up the input's "
                             f"ids up to {x.vocab - 1}", arg="vocab", code="E0304",
                             help="leave `vocab` out to take the input's")
        return Shape((x[0], a["d"]), SEQ)

    def weight_shape(self, a, x) -> tuple[int, int]:
        return a["vocab"], a["d"]

    def params_count(self, a, x):
        return Params(0 if a["tied"] else a["vocab"] * a["d"])

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return 0

    def torch(self, a, x, y):
        return TorchModule("torch.nn.Embedding", dict(num_embeddings=a["vocab"],
                                                     embedding_dim=a["d"]))

    def describe(self, a):
        return f"embedding {a['vocab']}x{a['d']}" + (f", tied to {a['tied']}" if a["tied"]
                                                     else "")
