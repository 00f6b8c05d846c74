"""The shape of a tensor as every stage sees it: its sizes (batch excluded) and its layout.

Sizes alone do not say what a tensor is: 64x1000 may be a signal of 64 channels and 1000
steps (what `conv` slides over) or a sequence of 64 positions with 1000 features each (what
`linear`, `layernorm` and `attention` act on). So a shape carries its *layout*:

    vector   (D,)            features                           `4096`
    map1d    (C, L)          channels first, one spatial axis   `64x1000`
    map2d    (C, H, W)       channels first, an image           `3x224x224`
    map3d    (C, D, H, W)    channels first, a volume           `1x32x96x96`
    seq      (L, D)          positions, each a feature vector   `197x768 seq`
    grid     (H, W, D)       a 2-D grid of such positions       `56x56x96 grid`
    tokens   (L,)            integer ids from a vocabulary      `1024 tokens<50257`

Every layer kind states the layouts it accepts (LayerKind.accepts); the elaborator checks
them before a layer's shape rule runs, and a wrong layout is a located error whose hint says
how to move between layouts (`rearrange`, `flatten`, `pick`, `embedding`). Layouts change
only where a spec says so.

A sequence and a grid keep their features last (channels-last, as PyTorch's `nn.Linear` and
`nn.LayerNorm` see them): Swin's windows and ConvNeXt's per-pixel MLP work on a grid, what
`rearrange("c h w -> h w c")` makes of a map.

`Shape` is a tuple of the sizes, so `x[0]`, `len(x)` and unpacking read as before; two shapes
are equal when sizes *and* layouts are (a plain tuple compares by its sizes only). This module
imports nothing of archdsl: every stage may use it.
"""

from __future__ import annotations

VECTOR, MAP1D, MAP2D, MAP3D, SEQ, GRID, TOKENS = (
    "vector", "map1d", "map2d", "map3d", "seq", "grid", "tokens")
MAPS = (MAP1D, MAP2D, MAP3D)
LAYOUTS = (VECTOR, MAP1D, MAP2D, MAP3D, SEQ, GRID, TOKENS)
# The layouts of real-valued features: what most layers accept (not token ids)
FEATURES = (VECTOR, MAP1D, MAP2D, MAP3D, SEQ, GRID)
# Positions with their features last: a layer acting on each position's features (linear,
# layernorm) acts on the last axis
FEATURES_LAST = (SEQ, GRID)

# The layout a list of sizes has when nothing says otherwise: `input 3x224x224` is an image.
_BY_RANK = {1: VECTOR, 2: MAP1D, 3: MAP2D, 4: MAP3D}
_RANK = {VECTOR: 1, MAP1D: 2, MAP2D: 3, MAP3D: 4, SEQ: 2, GRID: 3, TOKENS: 1}

# How messages name layouts: "`conv` needs a map (CxL, CxHxW or CxDxHxW), got ..."
LAYOUT_WORDS = {
    VECTOR: "a vector", MAP1D: "a 1-D map (CxL)", MAP2D: "a feature map (CxHxW)",
    MAP3D: "a 3-D map (CxDxHxW)", SEQ: "a sequence (LxD)", GRID: "a grid (HxWxD)",
    TOKENS: "token ids",
}


def default_layout(rank: int) -> str | None:
    return _BY_RANK.get(rank)


def layout_rank(layout: str) -> int:
    return _RANK[layout]


class Shape(tuple):
    """Sizes without the batch, and a layout (one of LAYOUTS). `vocab`: for token ids, the
    size of their vocabulary (ids are 0 to vocab - 1)."""

    def __new__(cls, sizes=(), layout: str | None = None, vocab: int | None = None):
        self = super().__new__(cls, sizes)
        self.layout = layout or default_layout(len(self)) or VECTOR
        self.vocab = vocab
        return self

    def like(self, sizes) -> "Shape":
        """Other sizes in this shape's layout (a conv's output is a map like its input)."""
        return Shape(sizes, self.layout, self.vocab)

    # ---- what the sizes mean in each layout ----------------------------------------------

    @property
    def is_map(self) -> bool:
        return self.layout in MAPS

    @property
    def spatial(self) -> tuple:
        """The spatial sizes of a map: (L,), (H, W) or (D, H, W)."""
        return tuple(self[1:]) if self.is_map else ()

    @property
    def features_last(self) -> bool:
        """Positions with their features last: a sequence or a grid."""
        return self.layout in FEATURES_LAST

    @property
    def feature_axis(self) -> int:
        """Where the features are among the sizes: last for a sequence or a grid, first for
        a map (its channels) or a vector."""
        return len(self) - 1 if self.features_last else 0

    @property
    def features(self) -> int:
        """The features of a vector, the channels of a map, the width of a sequence or a
        grid."""
        return self[self.feature_axis]

    @property
    def size_axes(self) -> dict[int, str]:
        """The axes whose sizes an input may change (the batch excluded), by name: a map's
        spatial axes, the positions of a sequence, of token ids or of a grid; a vector has
        none (its size is its features)."""
        if self.is_map:
            return dict(zip(range(1, len(self)), ("depth", "height", "width")[4 - len(self):]
                            if len(self) > 2 else ("length",)))
        if self.layout in (SEQ, TOKENS):
            return {0: "positions"}
        if self.layout == GRID:
            return {0: "height", 1: "width"}
        return {}

    # ---- equality: sizes and layout ------------------------------------------------------

    def __eq__(self, other):
        if isinstance(other, Shape):
            return (tuple.__eq__(self, other) and self.layout == other.layout
                    and self.vocab == other.vocab)
        return tuple.__eq__(self, other)

    def __ne__(self, other):
        return not self == other

    __hash__ = tuple.__hash__

    def __reduce__(self):
        return (Shape, (tuple(self), self.layout, self.vocab))

    def __repr__(self) -> str:
        return f"Shape({show(self)})"


def as_shape(value, like: Shape | None = None) -> Shape:
    """A Shape from a layer's shape rule. A plain tuple (a plugin written before layouts)
    keeps the layout of an input of the same rank, or takes its rank's default."""
    if isinstance(value, Shape):
        return value
    value = tuple(value)
    if like is not None and len(like) == len(value):
        return like.like(value)
    return Shape(value)


def show(shape) -> str:
    """A shape as summaries, diagrams and messages write it: `64x56x56`, `4096`,
    `197x768 seq`, `56x56x96 grid`, `1024 tokens<50257`. Maps and vectors are written as
    their sizes (the rank says which); sequences, grids and token ids say so."""
    sizes = "x".join(str(d) for d in shape)
    layout = getattr(shape, "layout", None)
    if layout in (SEQ, GRID):
        return f"{sizes} {layout}"
    if layout == TOKENS:
        vocab = getattr(shape, "vocab", None)
        return sizes + " tokens" + (f"<{vocab}" if vocab else "")
    return sizes


def describe(shape) -> str:
    """A shape in a sentence: `a vector of 4096 features`, `a sequence 197x768 (LxD)`."""
    layout = getattr(shape, "layout", None) or default_layout(len(shape))
    if layout == VECTOR:
        return f"a vector of {shape[0]} features"
    if layout == TOKENS:
        return f"{shape[0]} token ids"
    if layout == SEQ:
        return f"a sequence of {shape[0]} positions x {shape[1]} features"
    if layout == GRID:
        return f"a grid of {shape[0]}x{shape[1]} positions x {shape[2]} features"
    return f"{LAYOUT_WORDS[layout].split(' (')[0]} {show(shape)}"
