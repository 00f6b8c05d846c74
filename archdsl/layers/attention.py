"""Layers of sequence models: multi-head self-attention (over a whole sequence, or within
windows of a grid), cross-attention (from one sequence to another: an encoder-decoder's), and
token and position embeddings."""

from __future__ import annotations

from ..shapes import GRID, SEQ, TOKENS, Shape, describe as describe_shape
from .registry import LayerKind, Params, Param, ShapeError, TorchModule, register
from .linear import TIED
from .types import Bool, Float, Int, Numbers, Optional, TensorLabel


@register
class Attention(LayerKind):
    name = "attention"
    aliases = ("mhsa", "self_attention")
    family = "attention"
    doc = ("Multi-head self-attention over a sequence (Vaswani et al. 2017): LxD to LxD. Its "
           "parameters are torch.nn.MultiheadAttention's (in_proj_weight with the q, k and v "
           "rows, in_proj_bias, out_proj), so torchvision's ViT weights load; it runs through "
           "scaled_dot_product_attention. `causal=true` lets each position attend only to "
           "itself and earlier ones (GPT). `kv_heads` fewer than `heads` shares each key and "
           "value head among heads/kv_heads query heads (grouped-query attention, Ainslie et "
           "al. 2023; one: multi-query, Shazeer 2019), so k and v are kv_heads·D/heads wide. "
           "`rope=θ` turns the queries and keys by their position (rotary position "
           "embedding, Su et al. 2021, in Hugging Face's Llama layout: the two halves of each "
           "head; Llama: θ = 10000), and `rope_scaling` turns the slowest pairs slower for "
           "long contexts as Llama 3.1 does. `sliding_window=N` (causal) lets each position "
           "see only the N latest (Mistral 7B v0.1), through a mask: all L² scores are "
           "computed and counted. `head_dim` sets each head's width where it is not D/heads, "
           "and `qk_norm` RMS-normalises each head's queries and keys (Qwen3). MACs: the q, "
           "k, v and output projections (2·L·D·Dq + 2·L·D·Dkv; Dq = D unless `head_dim`) and "
           "the QKᵀ and AV products (2·L²·Dq), as fvcore counts them.")
    params = (
        Param("heads", Int(1), doc="attention heads; must divide the width D"),
        Param("dropout", Float(0.0, 1.0), 0.0, "dropout on the attention weights while training"),
        Param("causal", Bool(), False, "mask out later positions"),
        Param("bias", Bool(), True, "biases in the projections"),
        Param("out_bias", Optional(Bool()), None,
              "a bias in the output projection; `none`: as `bias` (Qwen: biases on q, k and v "
              "only)"),
        Param("kv_heads", Optional(Int(1)), None,
              "key and value heads, dividing `heads` (grouped-query); `none`: as many as heads"),
        Param("rope", Optional(Float(0.0, low_inclusive=False)), None,
              "rotary position embedding with this base θ (Llama: 10000); `none`: no rotation"),
        Param("sliding_window", Optional(Int(1)), None,
              "with `causal`, each position attends only to itself and the window - 1 before "
              "it (Mistral 7B v0.1: 4096); `none`: to all before it"),
        Param("head_dim", Optional(Int(1)), None,
              "the width of each head, when not D/heads (Qwen3, Gemma): q is heads·head_dim "
              "wide, k and v kv_heads·head_dim"),
        Param("qk_norm", Optional(Float(0.0, low_inclusive=False)), None,
              "RMS-normalise each head's queries and keys, with this epsilon, before they "
              "turn (Qwen3: 1e-6); `none`: not"),
        Param("rope_scaling", Optional(Numbers("factor", "low", "high", "context")), None,
              "Llama 3.1's slower turning of the slow pairs for long contexts: [factor, "
              "low_freq_factor, high_freq_factor, original context] (Llama 3.1: [8, 1, 4, "
              "8192]); `none`: none"),
    )
    accepts = (SEQ,)
    output_disposable = True
    autocast = "low"

    @staticmethod
    def head_width(a, d: int) -> int:
        return a["head_dim"] or d // a["heads"]

    @classmethod
    def widths(cls, a, d: int) -> tuple[int, int]:
        """The width of the queries (D, unless `head_dim` says otherwise) and that of the
        keys and of the values (less with fewer key/value heads)."""
        size = cls.head_width(a, d)
        return a["heads"] * size, (a["kv_heads"] or a["heads"]) * size

    @staticmethod
    def biases(a, d: int, q: int, kv: int) -> int:
        """The numbers in the projections' biases: q, k and v's, and the output's."""
        out = a["bias"] if a["out_bias"] is None else a["out_bias"]
        return (q + 2 * kv if a["bias"] else 0) + (d if out else 0)

    def decodes(self, a, x):
        return "cached" if a["causal"] else None  # a later position changes earlier outputs

    def saved_extra(self, a, x, y):
        # the q, k, v projections, the attention's output and its log-sum-exp per query
        # (the flash and memory-efficient kernels keep no LxL matrix), and that output laid
        # out again for the output projection; the rotated queries and keys (the rotation's
        # input is the projection, kept already) and keys and values repeated for the
        # query heads that share them (the attention keeps those, not the rotated keys)
        # (and the normalised queries and keys, with `qk_norm`)
        length, d = x
        q, kv = self.widths(a, d)
        grouped = kv != q
        saved = [(length * (q + 2 * kv), "act"), (length * q, "act"),
                 (a["heads"] * length, "fp32"), (length * q, "act")]
        if a["qk_norm"] is not None:
            saved.append((length * (q + kv), "act"))
        if a["rope"] is not None:
            saved.append((length * (q if grouped else q + kv), "act"))
        if grouped:
            saved.append((2 * length * q, "act"))
        return tuple(saved)

    def shape(self, a, x):
        if a["head_dim"] is None:
            _heads_divide(a["heads"], x[1])
        kv = a["kv_heads"]
        if kv is not None and a["heads"] % kv:
            raise ShapeError(f"{kv} key/value heads do not divide the {a['heads']} heads: each "
                             f"key/value head serves the same number of query heads",
                             arg="kv_heads", code="E0405",
                             help=f"key/value heads that divide {a['heads']}: " + ", ".join(
                                 str(n) for n in range(1, a["heads"] + 1) if a["heads"] % n == 0))
        size = self.head_width(a, x[1])
        if a["rope"] is not None and size % 2:
            wide = f"`head_dim` {size}" if a["head_dim"] else \
                f"D {x[1]} / {a['heads']} heads"
            raise ShapeError(f"a rotary position embedding turns pairs of numbers, and each "
                             f"head is {size} wide ({wide}), an odd number", arg="rope",
                             code="E0304",
                             help="give the heads an even width, or leave `rope` out")
        if a["sliding_window"] is not None and not a["causal"]:
            raise ShapeError("a sliding window looks back from each position: it needs "
                             "`causal=true`", arg="sliding_window", code="E0304",
                             help="add causal=true, or leave `sliding_window` out")
        scaling = a["rope_scaling"]
        if scaling is not None and a["rope"] is None:
            raise ShapeError("`rope_scaling` scales a rotary position embedding, and this "
                             "attention has none", arg="rope_scaling", code="E0304",
                             help="give it one with `rope=θ` (Llama 3.1: rope=500000)")
        if scaling is not None and scaling[2] <= scaling[1]:
            raise ShapeError(f"the high frequency factor ({scaling[2]:g}) must be above the "
                             f"low one ({scaling[1]:g}): the pairs between them are scaled "
                             f"gradually", arg="rope_scaling", code="E0304",
                             help="Llama 3.1's: [8, 1, 4, 8192]")
        return x

    def params_count(self, a, x):
        d = x[1]
        q, kv = self.widths(a, d)
        norms = 2 * self.head_width(a, d) if a["qk_norm"] is not None else 0
        return Params(2 * d * q + 2 * d * kv + self.biases(a, d, q, kv) + norms)

    def macs(self, a, x, y):
        length, d = x
        q, kv = self.widths(a, d)
        return 2 * length * d * (q + kv) + 2 * length * length * q

    def flops(self, a, x, y):
        length, d = x
        q, kv = self.widths(a, d)
        # the products' multiply-adds, the biases, per attention score a scale, an exp, a
        # sum and a divide (softmax), the norms of q and k (a square, a sum, a divide and a
        # scale per number) and the rotation (two products and a sum per number of q and k)
        return 2 * self.macs(a, x, y) + length * self.biases(a, d, q, kv) \
            + 4 * a["heads"] * length * length \
            + (4 * length * (q + kv) if a["qk_norm"] is not None else 0) \
            + (3 * length * (q + kv) if a["rope"] is not None else 0)

    def torch(self, a, x, y):
        extra = {}
        if a["kv_heads"] not in (None, a["heads"]):
            extra["kv_heads"] = a["kv_heads"]
        if a["rope"] is not None:
            extra["rope"] = a["rope"]
        if a["rope_scaling"] is not None:
            extra["rope_scaling"] = list(a["rope_scaling"])
        if a["sliding_window"] is not None:
            extra["sliding_window"] = a["sliding_window"]
        if a["head_dim"] is not None and a["head_dim"] * a["heads"] != x[1]:
            extra["head_dim"] = a["head_dim"]
        if a["qk_norm"] is not None:
            extra["qk_norm"] = a["qk_norm"]
        if a["out_bias"] not in (None, a["bias"]):
            extra["out_bias"] = a["out_bias"]
        return TorchModule("archdsl.backends.torch_modules.SelfAttention", dict(
            embed_dim=x[1], num_heads=a["heads"], dropout=a["dropout"], causal=a["causal"],
            bias=a["bias"], **extra))

    def describe(self, a):
        kv = a["kv_heads"]
        window = f", window {a['sliding_window']}" if a["sliding_window"] is not None else ""
        return f"attention x{a['heads']}" + (f", {kv} kv" if kv not in (None, a["heads"])
                                             else "") \
            + (", rotary" if a["rope"] is not None else "") + (", causal" if a["causal"] else "") \
            + window


@register
class CrossAttention(LayerKind):
    name = "cross_attention"
    family = "attention"
    doc = ("Multi-head attention from a sequence to another one, `memory` (Vaswani et al. "
           "2017, §3.2.3: the decoder's queries, the encoder's keys and values): LxD and MxD "
           "(the tensor named) to LxD. Each position attends to every position of the "
           "memory, so it is no mask and no cache: a decoder's causal order is its "
           "self-attention's. Its parameters are torch.nn.MultiheadAttention's (in_proj_weight "
           "with the q, k and v rows, in_proj_bias, out_proj), so torch.nn.Transformer's "
           "`multihead_attn` weights load; it runs through scaled_dot_product_attention. The "
           "memory is read when the module runs, so its length may differ from the "
           "sequence's and from one input to the next. MACs: the q and output projections "
           "(2·L·D²), k and v (2·M·D²) and the QKᵀ and AV products (2·L·M·D).")
    params = (
        Param("heads", Int(1), doc="attention heads; must divide the width D"),
        Param("memory", TensorLabel("memory=encoder", "a tensor"),
              doc="the sequence attended to: a labelled tensor, an input, or a block's "
                  "parameter given one (an encoder's output)"),
        Param("dropout", Float(0.0, 1.0), 0.0, "dropout on the attention weights while training"),
        Param("bias", Bool(), True, "biases in the projections"),
    )
    accepts = (SEQ,)
    shape_inputs = {"memory": "memory_length"}
    reads_shape_inputs = True
    output_disposable = True
    autocast = "low"

    def with_shapes(self, a, x, shapes):
        (memory,) = shapes
        if memory.layout != SEQ or memory[1] != x[1]:
            what = f"a sequence {memory[0]} long of width {memory[1]}" if memory.layout == SEQ \
                else describe_shape(memory)
            raise ShapeError(f"`memory={a['memory']}` is {what}; attending from a sequence of "
                             f"width {x[1]} needs a sequence of the same width",
                             help=f"project the memory to the width first (`linear({x[1]})`)"
                                  if memory.layout == SEQ else
                                  "make the memory a sequence of its positions first: "
                                  "`rearrange(\"c h w -> (h w) c\")` for a feature map",
                             arg="memory", code="E0404")
        return dict(a, memory_length=memory[0])

    def saved_extra(self, a, x, y):
        # q, k and v, the attention's output and its log-sum-exp per query, and that output
        # laid out again for the output projection (as self-attention's)
        (length, d), m = x, a["memory_length"]
        return ((length * d + 2 * m * d, "act"), (length * d, "act"),
                (a["heads"] * length, "fp32"), (length * d, "act"))

    def shape(self, a, x):
        _heads_divide(a["heads"], x[1])
        return x

    def params_count(self, a, x):
        d = x[1]
        return Params(4 * d * d + (4 * d if a["bias"] else 0))

    def macs(self, a, x, y):
        (length, d), m = x, a["memory_length"]
        return 2 * (length + m) * d * d + 2 * length * m * d

    def flops(self, a, x, y):
        (length, d), m = x, a["memory_length"]
        # the products' multiply-adds, the biases, and per attention score a scale, an exp,
        # a sum and a divide (softmax)
        return 2 * self.macs(a, x, y) + (2 * (length + m) * d if a["bias"] else 0) \
            + 4 * a["heads"] * length * m

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.CrossAttention", dict(
            embed_dim=x[1], num_heads=a["heads"], dropout=a["dropout"], bias=a["bias"]))

    def describe(self, a):
        return f"cross-attention x{a['heads']} to {a['memory']}"


def _heads_divide(heads: int, width: int) -> None:
    if width % heads:
        divisors = [d for d in range(1, min(width, 64) + 1) if width % d == 0]
        raise ShapeError(f"{heads} heads do not divide the width {width}",
                         help=f"heads that divide {width}: {', '.join(map(str, divisors))}"
                              + (", ..." if width > 64 else ""), arg="heads", code="E0405")


@register
class WindowAttention(LayerKind):
    name = "window_attention"
    family = "attention"
    doc = ("Multi-head self-attention within windows of a grid (Swin, Liu et al. 2021, §3.2): "
           "HxWxD to HxWxD. The grid is padded to whole `window`x`window` windows; the "
           "positions of each window attend to each other, with a learned bias for each "
           "relative position ((2·window-1)² per head). `shift` rolls the grid by that many "
           "positions before and back after, masking the pairs the roll brings together "
           "(Swin's shifted windows: window // 2 in every other block); an axis that one "
           "window spans is not shifted, as torchvision does. Its parameters and buffer are "
           "torchvision's ShiftedWindowAttention's, so Swin's weights load; it runs through "
           "scaled_dot_product_attention. `v2=true` is Swin V2's (Liu et al. 2022, §3.2): "
           "cosine attention with a learned temperature per head, and the bias from a small "
           "MLP (2 to 512 to heads) over log-spaced relative positions; torchvision's "
           "ShiftedWindowAttentionV2. MACs: the q, k, v and output projections (4·N·D²) and "
           "the QKᵀ and AV products within the windows (2·N·window²·D), N the positions of "
           "the padded grid; V2's bias MLP once.")
    params = (
        Param("heads", Int(1), doc="attention heads; must divide the width D"),
        Param("window", Int(1), 7, "side of the square windows, in positions"),
        Param("shift", Int(0), 0, "positions the windows are shifted by; less than `window`"),
        Param("dropout", Float(0.0, 1.0), 0.0, "dropout on the attention weights while training"),
        Param("v2", Bool(), False, "Swin V2's attention: cosine, with an MLP for the bias"),
        Param("scale", Optional(Float(0.0, low_inclusive=False)), None,
              "the scores' scale; `none`: 1/sqrt(D/heads) (MaxViT's is 1/sqrt(D))"),
    )
    CPB_WIDTH = 512  # the hidden width of V2's bias MLP (torchvision's, the paper's)
    accepts = (GRID,)
    output_disposable = True
    autocast = "low"
    saves = ()  # it keeps its windows (a copy), not its input

    @staticmethod
    def padded(a, x) -> int:
        """The positions of the grid padded to whole windows."""
        w = a["window"]
        return -(-x[0] // w) * w * (-(-x[1] // w) * w)

    def saved_extra(self, a, x, y):
        # The learned bias needs its gradient, which PyTorch's fused CPU kernel does not
        # give: the attention runs as matrix products (its math path, in fp32 also under
        # autocast), keeping the windows (the projection's input), q, k and v, q and k
        # scaled, the attention weights (a window's L x L per head) and the output laid
        # out again for the output projection. (On a GPU the memory-efficient kernel keeps
        # no weights: this is the larger case, the one tests/test_memory.py measures.)
        n, d, length = self.padded(a, x), x[2], a["window"] ** 2
        return ((n * d, "act"), (3 * n * d, "act"), (2 * n * d, "fp32"),
                (a["heads"] * n * length, "fp32"), (n * d, "act"))

    def shape(self, a, x):
        _heads_divide(a["heads"], x[2])
        if a["v2"] and a["scale"] is not None:
            raise ShapeError("Swin V2's cosine attention has a learned scale per head",
                             arg="scale", code="E0304", help="leave `scale` out with v2=true")
        if a["v2"] and a["window"] < 2:
            raise ShapeError("Swin V2's bias scales relative positions by the window - 1: "
                             "it needs windows of at least 2", arg="window", code="E0304")
        if a["shift"] >= a["window"]:
            raise ShapeError(f"the shift ({a['shift']}) must be less than the window "
                             f"({a['window']})", arg="shift", code="E0304",
                             help=f"shift by less than the window: Swin's is window // 2 "
                                  f"({a['window'] // 2})")
        return x

    def params_count(self, a, x):
        d, side, heads = x[2], 2 * a["window"] - 1, a["heads"]
        if a["v2"]:  # a temperature per head, the bias MLP
            bias = heads + 3 * self.CPB_WIDTH + self.CPB_WIDTH * heads
        else:  # the table of biases
            bias = side * side * heads
        return Params(4 * d * d + 4 * d + bias)

    def macs_per_batch(self, a, x):
        side = 2 * a["window"] - 1
        return side * side * self.CPB_WIDTH * (2 + a["heads"]) if a["v2"] else 0

    def macs(self, a, x, y):
        n, d = self.padded(a, x), x[2]
        return 4 * n * d * d + 2 * n * a["window"] ** 2 * d + self.macs_per_batch(a, x)

    def flops(self, a, x, y):
        n, d = self.padded(a, x), x[2]
        # the products' multiply-adds, the biases, and per attention score the position
        # bias, a scale, an exp, a sum and a divide (softmax); V2's normalisation of the
        # queries and keys (a square, a sum, a divide each) and its MLP's bias and relu
        cosine = 6 * n * d + 2 * (2 * a["window"] - 1) ** 2 * self.CPB_WIDTH if a["v2"] else 0
        return 2 * self.macs(a, x, y) + 4 * n * d + 5 * a["heads"] * n * a["window"] ** 2 \
            + cosine

    def onnx_one_size(self, a, x):
        # whether to pad to whole windows, and whether an axis is long enough to shift, are
        # decided in Python (as torchvision's): torch.export keeps the traced grid's answers
        return ("its padding to whole windows and its shifts are decided for the grid's size "
                "when traced")

    def torch(self, a, x, y):
        cls = "WindowAttentionV2" if a["v2"] else "WindowAttention"
        scale = {} if a["scale"] is None else {"scale": a["scale"]}
        return TorchModule(f"archdsl.backends.torch_modules.{cls}", dict(
            dim=x[2], num_heads=a["heads"], window=a["window"], shift=a["shift"],
            dropout=a["dropout"], **scale))

    def describe(self, a):
        w = a["window"]
        return f"window attention{' v2' if a['v2'] else ''} x{a['heads']}, {w}x{w}" + (
            f", shift {a['shift']}" if a["shift"] else "")


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
        Param("std", Optional(Float(0, low_inclusive=False)), None,
              "initialise the vectors from N(0, std²) (GPT-2: 0.02); `none`: PyTorch's N(0, 1)"),
        Param("scale", Optional(Float(0, low_inclusive=False)), None,
              "multiply the vectors looked up by this (the Transformer: sqrt(d), §3.4); "
              "`none`: not"),
    )
    accepts = (TOKENS,)
    decoding = "position"

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
        return 0 if a["scale"] is None else x[0] * a["d"]  # a multiply per number

    def torch(self, a, x, y):
        size = dict(num_embeddings=a["vocab"], embedding_dim=a["d"])
        if a["std"] is not None or a["scale"] is not None:
            extra = {k: a[k] for k in ("std", "scale") if a[k] is not None}
            return TorchModule("archdsl.backends.torch_modules.Embedding", dict(size, **extra))
        return TorchModule("torch.nn.Embedding", size)

    def describe(self, a):
        return f"embedding {a['vocab']}x{a['d']}" + (f", tied to {a['tied']}" if a["tied"]
                                                     else "") \
            + (f", x{a['scale']:.4g}" if a["scale"] is not None else "")


class _AddedPositions(LayerKind):
    """What position embeddings and encodings share: a vector added to each position of a
    sequence, which a cached decoder continues from the positions already read."""

    accepts = (SEQ,)
    saves = ()  # a sum's gradient needs neither of its terms
    output_disposable = True
    decoding = "cached"  # the new tokens' positions follow the earlier ones

    def macs(self, a, x, y):
        return 0

    def flops(self, a, x, y):
        return x[0] * x[1]  # the additions


@register
class PositionEmbedding(_AddedPositions):
    name = "position_embedding"
    family = "attention"
    doc = ("Learned position embeddings (GPT, BERT): adds a learned D-wide vector to each "
           "position of an LxD sequence, the first L of `positions` vectors, so the network "
           "takes any sequence up to `positions` long (GPT-2: 1024) — a prompt, or the windows "
           "of a shorter context. Stored as a `positions`xD `weight`, as Hugging Face's `wpe`. "
           "0 MACs; L·D additions.")
    params = (
        Param("positions", Int(1), doc="the most positions it holds (a GPT's context)"),
        Param("std", Float(0, low_inclusive=False), 0.02,
              "initialise the vectors from N(0, std²) (GPT-2: 0.02)"),
    )

    def shape(self, a, x):
        if x[0] > a["positions"]:
            raise ShapeError(f"a sequence of {x[0]} positions is longer than the "
                             f"{a['positions']} this position embedding holds",
                             arg="positions", code="E0304",
                             help=f"give it at least {x[0]} positions, or a shorter input")
        return x

    def params_count(self, a, x):
        return Params(a["positions"] * x[1])

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.PositionEmbedding",
                           dict(positions=a["positions"], dim=x[1], std=a["std"]))

    def describe(self, a):
        return f"position embedding {a['positions']}"


@register
class PositionEncoding(_AddedPositions):
    name = "position_encoding"
    family = "attention"
    doc = ("Sinusoidal position encoding (Vaswani et al. 2017, §3.5): adds to position p of "
           "an LxD sequence the fixed vector PE(p, 2i) = sin(p / base^(2i/D)), PE(p, 2i+1) = "
           "cos(p / base^(2i/D)), so the network takes sequences of any length, and no "
           "parameters. Computed in float32 when the module runs, as the paper's formula "
           "(PyTorch's tutorial's `PositionalEncoding` gives the same numbers, to rounding). "
           "0 MACs; L·D additions.")
    params = (
        Param("base", Float(0.0, low_inclusive=False), 10000.0,
              "the base of the wavelengths, from 2π to base·2π (the paper: 10000)"),
    )

    def shape(self, a, x):
        if x[1] % 2:
            raise ShapeError(f"a sinusoidal encoding pairs a sine and a cosine per "
                             f"wavelength, and the width {x[1]} is odd", code="E0405",
                             help="give the sequence an even width")
        return x

    def params_count(self, a, x):
        return Params(0)

    def torch(self, a, x, y):
        return TorchModule("archdsl.backends.torch_modules.PositionEncoding",
                           dict(base=a["base"]))

    def describe(self, a):
        return "sinusoidal positions" + (f", base {a['base']:g}" if a["base"] != 10000 else "")
