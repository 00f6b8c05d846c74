"""archdsl's own small PyTorch modules, for layers PyTorch lacks as a single module.

This file imports only torch: the standalone source exporter copies these classes verbatim
into the files it writes.
"""

import torch
from torch import nn


class SeparableConv2d(nn.Module):
    """Depthwise then pointwise convolution, as Keras' SeparableConv2D (one bias, at the end)."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0, dilation=1,
                 depth_multiplier=1, bias=True):
        super().__init__()
        mid = in_channels * depth_multiplier
        self.depthwise = nn.Conv2d(in_channels, mid, kernel_size, stride, padding, dilation,
                                   groups=in_channels, bias=False)
        self.pointwise = nn.Conv2d(mid, out_channels, 1, bias=bias)

    def forward(self, x):
        return self.pointwise(self.depthwise(x))


class DropPath(nn.Module):
    """Stochastic depth, per sample (torchvision.ops.StochasticDepth with mode 'row')."""

    def __init__(self, p=0.0):
        super().__init__()
        self.p = p

    def forward(self, x):
        if not self.training or self.p == 0.0:
            return x
        keep = 1.0 - self.p
        shape = (x.shape[0],) + (1,) * (x.dim() - 1)
        mask = torch.empty(shape, dtype=x.dtype, device=x.device).bernoulli_(keep)
        return x * mask.div_(keep)

    def extra_repr(self):
        return f"p={self.p}"


class AvgPoolSame(nn.Module):
    """Average pooling with padding `same` where it is uneven (even kernels), leaving the
    padded pixels out of each average as Keras does, on maps of any rank. PyTorch pads both
    sides alike, so this pads explicitly, then divides each window's sum by the number of
    real pixels in it: pooling the input and pooling a map of ones share one divisor per
    window, which cancels. `padding` is as torch.nn.functional.pad takes it (last axis
    first: left, right, top, bottom, ...)."""

    def __init__(self, kernel_size, stride, padding):
        super().__init__()
        self.kernel_size = tuple(kernel_size)
        self.stride = tuple(stride)
        self.padding = tuple(padding)
        self.pool = getattr(nn.functional, f"avg_pool{len(self.kernel_size)}d")

    def _pool(self, x):
        return self.pool(nn.functional.pad(x, self.padding), self.kernel_size, self.stride)

    def forward(self, x):
        return self._pool(x) / self._pool(torch.ones_like(x[:1, :1]))

    def extra_repr(self):
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class ChannelLayerNorm(nn.LayerNorm):
    """Layer norm over the channels at each position of a map (channels first), as
    torchvision's ConvNeXt LayerNorm2d: its weight and bias are C each."""

    def forward(self, x):
        x = x.movedim(1, -1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.movedim(-1, 1)


class FreeTensor(nn.Module):
    """A learned tensor that ignores its input but for the batch size: a class token, a
    position embedding, a layer scale. `init`: a number to fill it with, or "normal" (std
    0.02, as ViT's position embedding). Stored with the shape given (`shape`), broadcast
    over the batch."""

    def __init__(self, shape, init=0.0):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(shape))
        if init == "normal":
            nn.init.normal_(self.weight, std=0.02)
        else:
            nn.init.constant_(self.weight, init)

    def forward(self, x):
        # Without autograd, a view of a parameter still "requires grad" but has no grad_fn,
        # which breaks tools that hook module outputs (FlopCounterMode): detach it there.
        weight = self.weight if torch.is_grad_enabled() else self.weight.detach()
        return weight.expand(x.shape[0], *weight.shape)


class Embedding(nn.Embedding):
    """nn.Embedding whose vectors start from N(0, std²) (GPT-2's 0.02), not PyTorch's
    N(0, 1): tied to the output layer, unit vectors would give logits of std sqrt(width)
    and a first loss of a hundred nats. `scale`: the vectors looked up are multiplied by it
    (the Transformer's sqrt(width)); std None: PyTorch's N(0, 1)."""

    def __init__(self, num_embeddings, embedding_dim, std=None, scale=None):
        self.std = std  # read by reset_parameters, which nn.Embedding's __init__ calls
        super().__init__(num_embeddings, embedding_dim)
        self.scale = scale

    def reset_parameters(self):
        if self.std is None:
            super().reset_parameters()
        else:
            nn.init.normal_(self.weight, std=self.std)

    def forward(self, ids):
        x = super().forward(ids)
        return x if self.scale is None else x * self.scale

    def extra_repr(self):
        return super().extra_repr() + (f", scale={self.scale:g}" if self.scale else "")


class PositionEmbedding(nn.Module):
    """Learned position embeddings added to a sequence (N, L, D): the first L of
    `positions` vectors, so any L up to `positions` (a prompt shorter than the context)."""

    def __init__(self, positions, dim, std=0.02):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(positions, dim))
        nn.init.normal_(self.weight, std=std)
        self.offset = None  # while decoding with a cache: the positions already read

    def forward(self, x):
        if self.offset is None:
            return x + self.weight[:x.shape[1]]
        start, self.offset = self.offset, self.offset + x.shape[1]
        return x + self.weight[start:self.offset]


class PositionEncoding(nn.Module):
    """The Transformer's sinusoidal position encoding added to a sequence (N, L, D): at
    position p, sin(p / base^(2i/D)) in feature 2i and cos(...) in feature 2i + 1,
    computed in float32."""

    def __init__(self, base=10000.0):
        super().__init__()
        self.base = base
        self.offset = None  # while decoding with a cache: the positions already read

    def forward(self, x):
        length, d = x.shape[1], x.shape[2]
        start = 0 if self.offset is None else self.offset
        if self.offset is not None:
            self.offset += length
        positions = torch.arange(start, start + length, device=x.device).float()
        rate = 1.0 / self.base ** (torch.arange(0, d, 2, device=x.device).float() / d)
        angles = torch.outer(positions, rate)
        encoding = torch.stack([angles.sin(), angles.cos()], -1).flatten(1)
        return x + encoding.to(x.dtype)

    def extra_repr(self):
        return f"base={self.base:g}"


class SelfAttention(nn.Module):
    """Multi-head self-attention over a sequence (N, L, D), with nn.MultiheadAttention's
    parameters (in_proj_weight: the q, k and v rows; in_proj_bias; out_proj) so that its
    weights (torchvision's ViT) load, and scaled_dot_product_attention at run time (flash or
    memory-efficient kernels where the device has them). With `kv_heads` fewer than
    `num_heads`, the keys and values have kv_heads heads, each shared by num_heads/kv_heads
    query heads (grouped-query attention); with `rope`, queries and keys are turned by their
    positions (rotary position embedding, base `rope`). `out_bias`: whether the output
    projection has a bias, where it differs from the others' (`bias`). `sliding_window`:
    each position attends to itself and the sliding_window - 1 before it (a mask).
    `head_dim`: each head's width, where it is not embed_dim / num_heads; `qk_norm`: the
    epsilon of RMS norms over each head's queries and keys."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, causal=False, bias=True,
                 kv_heads=None, rope=None, out_bias=None, rope_scaling=None,
                 sliding_window=None, head_dim=None, qk_norm=None):
        super().__init__()
        self.num_heads = num_heads
        self.kv_heads = kv_heads or num_heads
        self.dropout = dropout
        self.causal = causal
        self.rope = rope
        self.rope_scaling = rope_scaling  # Llama 3.1's [factor, low, high, original context]
        self.sliding_window = sliding_window  # causal: each position sees the latest ones
        self.head_dim = head_dim or embed_dim // num_heads
        inner, kv_dim = num_heads * self.head_dim, self.kv_heads * self.head_dim
        self.split = (inner, kv_dim, kv_dim)
        self.in_proj_weight = nn.Parameter(torch.empty(inner + 2 * kv_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(inner + 2 * kv_dim)) if bias else None
        if qk_norm is not None:  # Qwen3's: each head's queries and keys, before they turn
            self.q_norm = nn.RMSNorm(self.head_dim, eps=qk_norm)
            self.k_norm = nn.RMSNorm(self.head_dim, eps=qk_norm)
        self.qk_norm = qk_norm
        self.out_proj = nn.Linear(inner, embed_dim, bias=bias if out_bias is None
                                  else out_bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)
        # while decoding with a cache (train/text.py): the earlier positions' keys and values
        self.cache = None

    def forward(self, x):
        n, length, _ = x.shape
        size = self.head_dim
        q, k, v = nn.functional.linear(x, self.in_proj_weight, self.in_proj_bias).split(
            self.split, -1)
        q = q.view(n, length, self.num_heads, size)
        k = k.view(n, length, self.kv_heads, size)
        if self.qk_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = q.transpose(1, 2), k.transpose(1, 2)
        v = v.view(n, length, self.kv_heads, size).transpose(1, 2)
        start = self.cache[0].shape[2] if self.cache else 0  # positions read before
        if self.rope is not None:
            q = self.rotate(q, start, self.rope, self.rope_scaling)
            k = self.rotate(k, start, self.rope, self.rope_scaling)
        causal = self.causal
        if self.cache is not None:
            if self.cache:  # new positions after the cached ones: one at a time, which sees all
                if length != 1:
                    raise ValueError("a cached attention reads one new position at a time")
                k, v = torch.cat([self.cache[0], k], 2), torch.cat([self.cache[1], v], 2)
                causal = False
            self.cache[:] = [k, v]
        if self.kv_heads != self.num_heads:  # each key/value head serves a group of queries
            group = self.num_heads // self.kv_heads
            k, v = k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)
        mask = None
        if self.sliding_window is not None:  # query i sees keys j with i - window < j <= i
            queries = torch.arange(start, start + length, device=x.device)[:, None]
            keys = torch.arange(k.shape[2], device=x.device)[None, :]
            mask = (keys <= queries) & (keys > queries - self.sliding_window)
            causal = False
        y = nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0,
            is_causal=causal)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, self.split[0]))

    def extra_repr(self):
        return (f"heads={self.num_heads}" + (f", kv_heads={self.kv_heads}"
                                              if self.kv_heads != self.num_heads else "")
                + f", dropout={self.dropout}, causal={self.causal}"
                + (f", rope={self.rope}" if self.rope is not None else "")
                + (f", sliding_window={self.sliding_window}" if self.sliding_window else ""))

    @staticmethod
    def rotate(x, start, base, scaling=None):
        """The rotary position embedding (Su et al. 2021) of queries or keys x (N, heads, L,
        size) at positions start, start + 1, ...: the i-th number of each head's first half
        and the i-th of its second half turn together by position / base^(2i/size) — Hugging
        Face's Llama layout, computed as it computes it (angles in float32) so that its
        weights give its outputs. `scaling`: Llama 3.1's [factor, low_freq_factor,
        high_freq_factor, original context] — pairs whose wavelength is beyond the original
        context / low turn `factor` times slower, those below context / high as before, and
        those between by a blend."""
        size, length = x.shape[-1], x.shape[-2]
        rate = 1.0 / base ** (torch.arange(0, size, 2, device=x.device).float() / size)
        if scaling is not None:
            factor, low, high, context = scaling
            wavelength = 2 * torch.pi / rate
            slow = torch.where(wavelength > context / low, rate / factor, rate)
            blend = (context / wavelength - low) / (high - low)
            between = (wavelength >= context / high) & (wavelength <= context / low)
            rate = torch.where(between, (1 - blend) * slow / factor + blend * slow, slow)
        positions = torch.arange(start, start + length, device=x.device).float()
        angles = torch.outer(positions, rate).repeat(1, 2)
        first, second = x.chunk(2, -1)
        turned = torch.cat([-second, first], -1)
        return x * angles.cos().to(x.dtype) + turned * angles.sin().to(x.dtype)


class CrossAttention(nn.Module):
    """Multi-head attention from a sequence x (N, L, D) to a memory (N, M, D), with
    nn.MultiheadAttention's parameters (in_proj_weight: the q, k and v rows; in_proj_bias;
    out_proj) so that torch.nn.Transformer's decoder weights load: the queries come from x,
    the keys and values from the memory. scaled_dot_product_attention runs it."""

    def __init__(self, embed_dim, num_heads, dropout=0.0, bias=True):
        super().__init__()
        self.num_heads, self.dropout = num_heads, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * embed_dim, embed_dim))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * embed_dim)) if bias else None
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)
        nn.init.xavier_uniform_(self.in_proj_weight)
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)

    def forward(self, x, memory):
        (n, length, d), m = x.shape, memory.shape[1]
        w, b = self.in_proj_weight, self.in_proj_bias
        q = nn.functional.linear(x, w[:d], None if b is None else b[:d])
        k, v = nn.functional.linear(memory, w[d:], None if b is None else b[d:]).chunk(2, -1)
        size = d // self.num_heads
        q = q.view(n, length, self.num_heads, size).transpose(1, 2)
        k = k.view(n, m, self.num_heads, size).transpose(1, 2)
        v = v.view(n, m, self.num_heads, size).transpose(1, 2)
        y = nn.functional.scaled_dot_product_attention(
            q, k, v, dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(y.transpose(1, 2).reshape(n, length, d))

    def extra_repr(self):
        return f"heads={self.num_heads}, dropout={self.dropout}"


class WindowAttention(nn.Module):
    """Multi-head self-attention within windows of a grid (N, H, W, C), Swin's (shifted)
    window attention, with torchvision's ShiftedWindowAttention's tensors in its state_dict
    order (relative_position_bias_table, relative_position_index, qkv, proj) so that its
    weights load. The relative-position bias and the shift's mask (-100 between positions
    the roll brought together, as torchvision) are one additive mask for
    scaled_dot_product_attention."""

    def __init__(self, dim, num_heads, window, shift=0, dropout=0.0, scale=None):
        super().__init__()
        self.num_heads, self.window, self.shift, self.dropout = num_heads, window, shift, dropout
        self.scale = scale  # of the scores; None: 1/sqrt(head's width)
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self._define_position_bias()
        # for each pair of positions (i, j) of a window, the row of the table for i - j
        side = 2 * window - 1
        ys, xs = torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")
        ys, xs = ys.flatten(), xs.flatten()
        index = (ys[:, None] - ys[None, :] + window - 1) * side + xs[:, None] - xs[None, :] \
            + window - 1
        self.register_buffer("relative_position_index", index.flatten())

    def _define_position_bias(self):
        side = 2 * self.window - 1
        self.relative_position_bias_table = nn.Parameter(torch.zeros(side * side,
                                                                     self.num_heads))
        nn.init.trunc_normal_(self.relative_position_bias_table, std=0.02)

    def _position_bias(self, table):
        """(heads, L, L): the bias of each pair of a window's L positions, from a table with
        a row per relative position."""
        length = self.window ** 2
        return table[self.relative_position_index].view(length, length, -1).permute(2, 0, 1)

    def position_bias(self):
        return self._position_bias(self.relative_position_bias_table)

    def project(self, windows):
        return self.qkv(windows)

    def attend(self, q, k, v, mask):
        """The attention of (N, windows·heads, L, d) queries, keys and values."""
        return nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask.to(q.dtype), dropout_p=self.dropout if self.training else 0.0,
            scale=self.scale)

    def _regions(self, size, shift, device):
        """Which of the three bands a roll by `shift` makes each position of an axis of
        `size` belong to (0 for all when not shifted)."""
        i = torch.arange(size, device=device)
        if not shift:
            return torch.zeros_like(i)
        return (i >= size - self.window).long() + (i >= size - shift).long()

    def forward(self, x):
        n, h, w, c = x.shape
        win, heads = self.window, self.num_heads
        pad_h, pad_w = -h % win, -w % win
        if pad_h or pad_w:
            x = nn.functional.pad(x, (0, 0, 0, pad_w, 0, pad_h))
        hp, wp = h + pad_h, w + pad_w
        rows, cols = hp // win, wp // win
        # an axis one window spans is not shifted (torchvision)
        shift_h = self.shift if win < hp else 0
        shift_w = self.shift if win < wp else 0
        shifted = bool(shift_h or shift_w)
        if shifted:
            x = torch.roll(x, (-shift_h, -shift_w), (1, 2))
        windows = x.view(n, rows, win, cols, win, c).transpose(2, 3)
        length = win * win
        qkv = self.project(windows.reshape(n, rows * cols, length, c))
        qkv = qkv.view(n, rows * cols, length, 3, heads, c // heads).permute(3, 0, 1, 4, 2, 5)
        # one mask per window and head (the batch of attentions is N x windows·heads): the
        # bias, and where shifted, -100 between positions the roll brought together
        mask = self.position_bias()[None].expand(rows * cols, heads, length, length)
        if shifted:
            region = self._regions(hp, shift_h, x.device)[:, None] * 3 \
                + self._regions(wp, shift_w, x.device)[None, :]
            region = region.view(rows, win, cols, win).transpose(1, 2).reshape(-1, length)
            mask = mask + ((region[:, None, :] != region[:, :, None]) * -100.0)[:, None]
        mask = mask.reshape(1, rows * cols * heads, length, length)
        q, k, v = qkv.reshape(3, n, rows * cols * heads, length, c // heads).unbind(0)
        # the heads side by side again: a copy (a clone, not a reshape: attention kernels lay
        # out their output in more than one way, and torch.export, which traces one and
        # decomposes into another, turned a reshape into a view that fails)
        y = self.attend(q, k, v, mask).view(n, rows * cols, heads, length, c // heads)
        y = y.transpose(2, 3).clone(memory_format=torch.contiguous_format)
        y = self.proj(y.view(n, rows * cols, length, c))
        y = y.view(n, rows, cols, win, win, c).transpose(2, 3).reshape(n, hp, wp, c)
        if shifted:
            y = torch.roll(y, (shift_h, shift_w), (1, 2))
        if pad_h or pad_w:
            y = y[:, :h, :w].contiguous()
        return y

    def extra_repr(self):
        return (f"heads={self.num_heads}, window={self.window}, shift={self.shift}, "
                f"dropout={self.dropout}" + (f", scale={self.scale}" if self.scale else ""))


class WindowAttentionV2(WindowAttention):
    """Swin V2's window attention (Liu et al. 2022), as torchvision's
    ShiftedWindowAttentionV2, its tensors in its order (logit_scale, relative_coords_table,
    relative_position_index, qkv, proj, cpb_mlp): cosine attention with a learned
    temperature per head (at most 100), a position bias of 16·sigmoid of a small MLP over
    log-spaced relative coordinates, and the keys' bias held at zero."""

    def __init__(self, dim, num_heads, window, shift=0, dropout=0.0):
        super().__init__(dim, num_heads, window, shift, dropout)
        self.logit_scale = nn.Parameter(torch.log(10 * torch.ones((num_heads, 1, 1))))
        self.cpb_mlp = nn.Sequential(nn.Linear(2, 512), nn.ReLU(inplace=True),
                                     nn.Linear(512, num_heads, bias=False))
        with torch.no_grad():
            self.qkv.bias[dim:2 * dim].zero_()

    def _define_position_bias(self):
        # the relative positions (-(w-1) .. w-1 on each axis) scaled to -8 .. 8, log-spaced
        steps = torch.arange(-(self.window - 1), self.window, dtype=torch.float32)
        table = torch.stack(torch.meshgrid(steps, steps, indexing="ij"), -1).unsqueeze(0)
        table = table / (self.window - 1) * 8
        self.register_buffer("relative_coords_table",
                             torch.sign(table) * torch.log2(table.abs() + 1.0) / 3.0)

    def position_bias(self):
        table = self.cpb_mlp(self.relative_coords_table).view(-1, self.num_heads)
        return 16 * torch.sigmoid(self._position_bias(table))

    def project(self, windows):
        third = self.qkv.bias.numel() // 3
        bias = torch.cat([self.qkv.bias[:third], torch.zeros_like(self.qkv.bias[third:2 * third]),
                          self.qkv.bias[2 * third:]])
        return nn.functional.linear(windows, self.qkv.weight, bias)

    def attend(self, q, k, v, mask):
        # cosine similarity times each head's temperature: the queries carry the temperature
        # (one per head, repeated for each window), and no 1/sqrt(d)
        scale = torch.clamp(self.logit_scale, max=4.605170185988092).exp()  # at most log(100)
        scale = scale.repeat(q.shape[1] // self.num_heads, 1, 1)
        q = nn.functional.normalize(q, dim=-1) * scale
        k = nn.functional.normalize(k, dim=-1)
        return nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask.to(q.dtype), dropout_p=self.dropout if self.training else 0.0,
            scale=1.0)


class LSTM(nn.LSTM):
    """nn.LSTM (batch first) that returns its output sequence alone, not the final states:
    one tensor, as every other layer."""

    def forward(self, x):
        return super().forward(x)[0]


class GRU(nn.GRU):
    """nn.GRU (batch first) that returns its output sequence alone, not the final state."""

    def forward(self, x):
        return super().forward(x)[0]


class DFL(nn.Module):
    """The integral of Distribution Focal Loss, as Ultralytics' DFL: the expected distance of
    each side of a box from a softmax over `bins` distances, computed by a 1x1 convolution
    whose weights 0, 1, ..., bins - 1 are frozen (parameters without gradients)."""

    def __init__(self, bins=16):
        super().__init__()
        self.bins = bins
        self.conv = nn.Conv2d(bins, 1, 1, bias=False).requires_grad_(False)
        with torch.no_grad():
            self.conv.weight.copy_(torch.arange(bins, dtype=torch.float).view(1, bins, 1, 1))

    def forward(self, x):
        b, _, a = x.shape
        x = x.view(b, 4, self.bins, a).transpose(2, 1).softmax(1)
        return self.conv(x).view(b, 4, a)


class FrozenBatchNorm(nn.Module):
    """Batch normalisation with fixed statistics and affine parameters, all four buffers, as
    torchvision.ops.FrozenBatchNorm2d (the same state_dict keys and arithmetic), on maps of
    any rank and on vectors."""

    def __init__(self, num_features, eps=1e-5):
        super().__init__()
        self.eps = eps
        self.register_buffer("weight", torch.ones(num_features))
        self.register_buffer("bias", torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        shape = (1, -1) + (1,) * (x.dim() - 2)
        scale = self.weight.reshape(shape) * (self.running_var.reshape(shape) + self.eps).rsqrt()
        bias = self.bias.reshape(shape) - self.running_mean.reshape(shape) * scale
        return x * scale + bias

    def extra_repr(self):
        return f"{self.weight.shape[0]}, eps={self.eps}"
