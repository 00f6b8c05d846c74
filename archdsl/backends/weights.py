"""Weights from elsewhere: copy another model's state_dict into an archdsl-compiled model.

Tensors are matched in order — the order in which both models register their parameters and
buffers — and every shape is checked, so a spec that builds the same network as torchvision
takes torchvision's weights (pretrained ones too) whatever the modules are called. Where the
source registers modules in another order than it runs them (torchvision's GoogLeNet: its
auxiliary heads last), the order of its forward pass is used. When the structures differ,
the error names the first tensor that disagrees on both sides.

Shapes match when they are equal once sizes of 1 are left out: the same numbers in the same
order. So a 1x1 convolution's weight (O, I, 1, 1) takes a linear layer's (O, I) — the paper's
"1x1, 384" that torchvision's ConvNeXt writes as nn.Linear on channels-last — and a layer
scale `param(96x1x1)` takes one stored as (96, 1, 1) or (1, 96, 1, 1). Integer tensors are
tables and counters made from a layer's arguments (a window attention's relative-position
index: Swin stores it flat, MaxViT as a square): they match by their number of elements.
"""

from __future__ import annotations

from dataclasses import dataclass


class WeightsError(Exception):
    pass


class UnknownModel(WeightsError):
    """torchvision has no model of that name."""


@dataclass
class Transfer:
    """What was copied: (archdsl name, source name, shape) for every tensor."""

    pairs: list
    difference: float | None = None  # from the source's outputs, where they were compared

    def __len__(self) -> int:
        return len(self.pairs)


def _shape(tensor) -> str:
    return "x".join(map(str, tensor.shape)) or "a scalar"


def copy_state(model, source) -> Transfer:
    """Copy `source` (a state_dict, or a module) into `model`, matched in order."""
    theirs = source.state_dict() if hasattr(source, "state_dict") else dict(source)
    ours = model.state_dict()
    if len(ours) != len(theirs):
        raise WeightsError(
            f"the structures differ: the archdsl model has {len(ours)} tensors, the source "
            f"{len(theirs)}" + _first_difference(ours, theirs))
    our_items, their_items = list(ours.items()), list(theirs.items())
    if _keys(ours.values()) != _keys(theirs.values()) and hasattr(source, "state_dict"):
        their_items = _in_call_order(source, model, their_items)
    pairs, state = [], {}
    for i, j in _pairing(_keys(t for _, t in our_items), _keys(t for _, t in their_items)):
        (name, tensor), (source_name, value) = our_items[i], their_items[j]
        if _key(tensor) != _key(value):
            raise WeightsError(
                f"tensor {i} differs: archdsl `{name}` is {_shape(tensor)}, the source's "
                f"`{source_name}` is {_shape(value)}")
        pairs.append((name, source_name, tuple(tensor.shape)))
        state[name] = value.reshape(tensor.shape)
    model.load_state_dict(state)
    return Transfer(pairs)


def _key(tensor) -> tuple:
    """What must agree for a tensor to take another's values (see the module's docstring)."""
    if tensor.is_floating_point() or tensor.is_complex():
        return tuple(n for n in tensor.shape if n != 1)
    return ("integers", tensor.numel())


def _keys(tensors) -> list:
    return [_key(t) for t in tensors]


def keys_in_call_order(module, *inputs) -> list[str]:
    """The module's state_dict keys in the order one forward pass (no_grad, in the module's
    present mode) first uses the submodules that hold them. A submodule the pass never calls
    goes with the nearest module around it that the pass calls, after that module's own
    tensors: such a module uses the tensors itself (torchvision's Swin attention calls
    F.linear with its `qkv.weight`). Tensors no called module holds are left out."""
    import torch

    order, hooks = [], []
    for sub in module.modules():
        if any(True for _ in sub.parameters(recurse=False)) or \
                any(True for _ in sub.buffers(recurse=False)):
            hooks.append(sub.register_forward_pre_hook(
                lambda m, args: order.append(m) if m not in order else None))
    try:
        with torch.no_grad():
            module(*inputs)
    finally:
        for hook in hooks:
            hook.remove()
    names = {m: n for n, m in module.named_modules()}
    by_name = {n: m for m, n in names.items()}
    called = set(order)
    carried: dict = {}
    for name, sub in module.named_modules():
        if sub in called or not sub._parameters and not sub._buffers:
            continue
        parts = name.split(".")
        around = (by_name[".".join(parts[:i])] for i in range(len(parts) - 1, -1, -1))
        holder = next((m for m in around if m in called), None)
        if holder is not None:
            carried.setdefault(holder, []).append(sub)
    keys = []
    for sub in order:
        for each in (sub, *carried.get(sub, ())):
            prefix = names[each] + "." if names[each] else ""
            keys += [prefix + key for key in each.state_dict() if "." not in key]  # its own
    return keys


def _in_call_order(source, model, items: list) -> list:
    """The source's tensors in the order its forward pass uses the modules that hold them,
    when that order fits ours better than the order it registers them in: torchvision's
    GoogLeNet registers its auxiliary heads after the last stage and runs them in the middle
    (as archdsl's spec, and the compiled model, hold them). The pass runs in training mode,
    where auxiliary heads run, on a random batch of the model's input shapes; the source's
    state (running statistics, mode) is put back. Without a model that states its inputs, or
    when the pass fails, the tensors stay as they are."""
    import torch

    shapes = getattr(model, "input_shapes", None)
    if not shapes:
        return items
    saved = {k: v.clone() for k, v in source.state_dict().items()}
    training = source.training
    try:
        source.train()
        order = keys_in_call_order(source, *(torch.randn(2, *s) for s in shapes.values()))
    except Exception:  # any input it cannot take: keep the registered order
        return items
    finally:
        source.load_state_dict(saved)
        source.train(training)
    rank = {key: i for i, key in enumerate(order)}
    reordered = sorted(items, key=lambda item: rank.get(item[0], len(rank)))
    ours = _keys(t for t in model.state_dict().values())
    better = _keys(t for _, t in reordered) == ours and _keys(t for _, t in items) != ours
    return reordered if better else items


def _pairing(keys: list, their_keys: list) -> list[tuple[int, int]]:
    """(our index, their index) for every tensor. In order, except where a few tensors sit
    elsewhere in one model's order than in the other's — a free tensor such as ViT's class
    token is registered first in torchvision's model, where the network uses it in ours:
    the longest runs of agreeing shapes are matched first (difflib), and the tensors left
    over are paired in order. `keys`, `their_keys`: each tensor's _key."""
    if keys == their_keys:
        return list(zip(range(len(keys)), range(len(their_keys))))
    import difflib

    matcher = difflib.SequenceMatcher(None, keys, their_keys, autojunk=False)
    pairs = [(block.a + k, block.b + k) for block in matcher.get_matching_blocks()
             for k in range(block.size)]
    matched_ours, matched_theirs = {i for i, _ in pairs}, {j for _, j in pairs}
    left = zip([i for i in range(len(keys)) if i not in matched_ours],
               [j for j in range(len(their_keys)) if j not in matched_theirs])
    return sorted(pairs + list(left))


def _first_difference(ours, theirs) -> str:
    for i, ((a, x), (b, y)) in enumerate(zip(ours.items(), theirs.items())):
        if _key(x) != _key(y):
            return f"; the first that differs is tensor {i}: archdsl `{a}` {_shape(x)}, source `{b}` {_shape(y)}"
    longer, name = (ours, "archdsl model") if len(ours) > len(theirs) else (theirs, "source")
    extra = list(longer)[min(len(ours), len(theirs))]
    return f"; the {name} goes on with `{extra}`"


def torchvision_model(name: str, pretrained: bool = False, **kwargs):
    """A torchvision model (classification or segmentation) by name, with its default
    weights if asked. Without, a segmentation model's backbone is not pretrained either
    (torchvision would download ImageNet weights for it)."""
    import inspect

    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        from ..diagnostics import did_you_mean

        raise UnknownModel(f"torchvision has no model `{name}`; " + (
            did_you_mean(name, torchvision.models.list_models()) or "its models: " +
            ", ".join(sorted(torchvision.models.list_models(torchvision.models)))))
    if not pretrained:
        if "weights_backbone" in inspect.signature(builder).parameters:
            kwargs.setdefault("weights_backbone", None)
        return builder(weights=None, **kwargs)
    try:
        return builder(weights="DEFAULT", **kwargs)
    except Exception as error:  # offline, or no pretrained weights for it
        raise WeightsError(
            f"could not get torchvision's pretrained weights for `{name}` ({error}); on a "
            f"machine with internet access torchvision downloads them into its cache "
            f"($TORCH_HOME, ~/.cache/torch/hub/checkpoints)") from None


def compare_with_torchvision_model(net, name: str, **kwargs) -> tuple[int, float]:
    """Build `net`, copy torchvision's `name` (built with `kwargs`, random weights) into it and
    run both on one random batch in eval mode: (tensors copied, max |difference| of the main
    outputs). WeightsError when the structures differ."""
    import torch

    from .torch_module import example_input

    reference = torchvision_model(name, **kwargs).eval()
    model = net.build(logits=True).eval()
    transfer = copy_state(model, reference)
    x = example_input(net.input_shape)
    with torch.no_grad():
        ours, theirs = model(x), reference(x)
    if isinstance(theirs, dict):  # torchvision's segmentation models: {"out": ..., "aux": ...}
        theirs = theirs["out"]
    if isinstance(ours, tuple):  # several outputs: the first is the one compared
        ours = ours[0]
    return len(transfer), float((ours - theirs).abs().max())


def load_torchvision(model, name: str, pretrained: bool = True) -> Transfer:
    """Copy torchvision's `name` weights (pretrained by default) into an archdsl model."""
    return copy_state(model, torchvision_model(name, pretrained=pretrained))


# ---- Hugging Face ------------------------------------------------------------------------

HUGGING_FACE = "huggingface:"  # --weights / --init huggingface:NAME_OR_FOLDER

# How far the outputs may be apart, relative to the largest of Hugging Face's, for the
# spec to compute the same function: float32 rounding in two implementations stays below
# 1e-6 (tests/test_huggingface.py); a different activation (GELU's exact form instead of GPT-2's
# tanh form) or a missing mask is far above.
SAME_FUNCTION = 1e-4


def huggingface_model(source: str, causal: bool = True):
    """A Hugging Face causal language model (transformers' AutoModelForCausalLM), or with
    `causal=False` the bare model (AutoModel: an encoder such as BERT, whose outputs are its
    last layer's vectors): from a folder written by `save_pretrained` when `source` is one,
    else by its name on the Hugging Face Hub (downloaded into transformers' cache, on a
    machine with internet access)."""
    from pathlib import Path

    from ..extras import available, install_hint

    if not available("transformers"):
        raise WeightsError(f"a Hugging Face model's weights need transformers, which is not "
                           f"installed: {install_hint('transformers')}")
    path = Path(source).expanduser()
    if _local(source):
        if not path.is_dir():
            raise WeightsError(f"`{source}` is not a folder: give a folder that Hugging "
                               f"Face's save_pretrained wrote (config.json and the weights), "
                               f"or a model's name on the Hub (gpt2)")
        if not (path / "config.json").is_file():
            raise WeightsError(f"the folder `{source}` has no config.json: it is not a "
                               f"Hugging Face model that save_pretrained wrote")
    transformers = _transformers()
    try:
        kind = transformers.AutoModelForCausalLM if causal else transformers.AutoModel
        return kind.from_pretrained(_where(source)).float().eval()
    except Exception as error:  # offline, no such model, not a causal language model
        where = ("" if _local(source) else "; on a machine with internet access transformers "
                 "downloads a model named on the Hub into its cache (~/.cache/huggingface)")
        raise WeightsError(f"could not load the Hugging Face model `{source}` as a "
                           + ("causal language model" if causal else "model")
                           + f" ({_first_line(error)}){where}") from None


def huggingface_tokenizer(source: str) -> str | None:
    """The tokenizer that goes with a Hugging Face model (`huggingface_model`'s source), as
    its tokenizer.json text; None where it has none that the `tokenizers` package reads (a
    folder of weights alone, a tokenizer written in Python only)."""
    from pathlib import Path

    path = Path(source).expanduser()
    if _local(source) and not any((path / name).is_file() for name in (
            "tokenizer.json", "vocab.json", "tokenizer.model")):
        return None  # transformers would make an empty tokenizer of the model's kind
    try:
        tokenizer = _transformers().AutoTokenizer.from_pretrained(_where(source))
        reader = tokenizer.backend_tokenizer
    except Exception:  # no tokenizer files, or a slow (Python) tokenizer only
        return None
    return reader.to_str() if reader.get_vocab_size() > 1 else None


def huggingface_stop(source: str) -> tuple[int, ...]:
    """The token ids that end a text for a Hugging Face model (`huggingface_model`'s source):
    its generation_config.json's eos_token_id, else its config.json's (one id, or several:
    Llama 3's); () where it states none."""
    where = _where(source)
    transformers = _transformers()
    # a Hub model's files are in transformers' cache by now (its weights or tokenizer were
    # read): look there first, so that an offline machine does not wait on the network
    for cached_only in (True, False):
        for config in (transformers.GenerationConfig, transformers.AutoConfig):
            try:
                eos = config.from_pretrained(where, local_files_only=cached_only).eos_token_id
            except Exception:  # no such file: the next one
                continue
            if eos is not None:
                return tuple(int(i) for i in (eos if isinstance(eos, (list, tuple))
                                              else [eos]))
        if _local(source):
            break
    return ()


def _where(source: str) -> str:
    """What transformers' from_pretrained is given: a folder here (its path, ~ expanded), or
    the name of a model on the Hub as it is."""
    from pathlib import Path

    return str(Path(source).expanduser()) if _local(source) else source


def _local(source: str) -> bool:
    """Whether `source` names a folder (or a file) here, not a model on the Hub."""
    from pathlib import Path

    return Path(source).expanduser().exists() or source.startswith((".", "/", "~"))


def _transformers():
    """transformers, quiet: no loading reports or progress bars among archdsl's output."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    return transformers


def _first_line(error: Exception) -> str:
    text = str(error).strip().splitlines()
    return text[0] if text else type(error).__name__


def huggingface_state(reference) -> dict:
    """The model's tensors as the spec's layers hold them, in the order its forward pass uses
    them (Llama registers each layer's MLP before its two norms and runs it after them).
    GPT-2's Conv1D layers store their weight as (in, out), nn.Linear as (out, in), so those
    are transposed; Llama's separate q, k and v projections are one matrix in the spec's
    attention (nn.MultiheadAttention's in_proj_weight: the q rows, then k's, then v's)."""
    import torch

    transposed = {f"{name}.weight" for name, module in reference.named_modules()
                  if type(module).__name__ == "Conv1D"}
    # Llama's names, and BERT's (its attention's `self`)
    triples = (("q_proj", "k_proj", "v_proj"), ("query", "key", "value"))
    attention = {name: names for name, module in reference.named_modules()
                 for names in triples if all(hasattr(module, p) for p in names)}
    state = reference.state_dict()
    rank = {key: i for i, key in enumerate(
        keys_in_call_order(reference, torch.zeros(1, 2, dtype=torch.long)))}
    merged = {}
    for name in sorted(state, key=lambda key: rank.get(key, len(rank))):
        holder, projection, leaf = (["", ""] + name.rsplit(".", 2))[-3:]
        projections = attention.get(holder, ())
        if projection in projections:
            if projection == projections[0]:  # all three where the first is
                merged[f"{holder}.in_proj_{leaf}"] = torch.cat(
                    [state[f"{holder}.{p}.{leaf}"] for p in projections])
            continue
        merged[name] = state[name].t() if name in transposed else state[name]
    return merged


def _config_text(reference) -> str:
    """The sizes in the model's config that a spec's arguments must match."""
    config = reference.config.to_dict()
    sizes = [f"{key}={config[key]}" for key in ("vocab_size", "n_positions", "n_embd",
             "n_layer", "n_head", "hidden_size", "num_hidden_layers", "num_attention_heads",
             "max_position_embeddings", "intermediate_size", "num_key_value_heads")
             if isinstance(config.get(key), int)]
    return f" (its config.json: {', '.join(sizes)})" if sizes else ""


def _unexpressed(model, config, context: int) -> str | None:
    """What the model's config asks for that the spec does not compute, though the weights
    would fit and a short comparison might not show it: another rotary embedding (a base or
    a scaling for long contexts changes mostly the slowest-turning pairs, which barely turn
    over a few positions), a scaling archdsl does not express, and another sliding window
    (Mistral 7B v0.1's), which changes only sequences longer than it; a window that spans
    the network's context is the same as none."""
    from .torch_modules import SelfAttention

    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None)
    rope = rope if isinstance(rope, dict) else {}
    kind = rope.get("rope_type", rope.get("type", "default"))
    if kind not in ("default", "llama3"):
        return (f"scales its rotary embedding (`{kind}`, in its config.json), which archdsl's "
                f"`attention` does not express: only the plain rotary embedding and Llama "
                f"3.1's scaling (`rope_scaling`) are")
    theirs = (rope.get("rope_theta", getattr(config, "rope_theta", None)), None)
    if kind == "llama3":
        theirs = (theirs[0], tuple(float(rope[key]) for key in (
            "factor", "low_freq_factor", "high_freq_factor",
            "original_max_position_embeddings")))
    window = getattr(config, "sliding_window", None)
    if not getattr(config, "use_sliding_window", True) or (window or context) >= context:
        window = None  # none, or one that spans the network's whole context
    for module in model.modules():
        if not isinstance(module, SelfAttention):
            continue
        if module.rope is not None:
            ours = (module.rope, tuple(module.rope_scaling) if module.rope_scaling else None)
            if theirs[0] is not None and ours != (float(theirs[0]), theirs[1]):
                wanted = f"rope={float(theirs[0]):g}" + (
                    f", rope_scaling=[{', '.join(f'{v:g}' for v in theirs[1])}]"
                    if theirs[1] else ", no rope_scaling" if ours[1] else "")
                return (f"turns its queries and keys with {_rotary_text(*theirs)} (its "
                        f"config.json), the spec's attention with {_rotary_text(*ours)}: "
                        f"give the spec's attention {wanted}")
        ours = module.sliding_window if (module.sliding_window or context) < context else None
        if ours != window:
            wanted = f"sliding_window={window}" if window else "no sliding_window"
            return (f"attends {_window_text(window)} (its config.json), the spec's attention "
                    f"{_window_text(ours)} over its {context:,} positions: give the spec's "
                    f"attention {wanted}")
    return None


def _window_text(window: int | None) -> str:
    return f"within a sliding window of {window:,} positions" if window else \
        "to every earlier position"


def _rotary_text(theta: float, scaling) -> str:
    text = f"θ = {float(theta):g}"
    if scaling:
        text += f" and Llama 3.1's scaling [{', '.join(f'{v:g}' for v in scaling)}]"
    return text


def load_huggingface(model, source: str, input_shape) -> Transfer:
    """Copy a Hugging Face causal language model's weights (`huggingface_model`) into an
    archdsl model, in order, and check that both compute the same function: their scores on
    one random sequence of token ids (of `input_shape`, the network's; 8 of them where it
    takes fewer positions than its context) must agree to SAME_FUNCTION. A network of
    several inputs or outputs (an encoder: BERT's token ids and segments in, its vectors and
    the pooled one out) takes the bare model's weights (AutoModel), and its first output is
    compared with the model's last layer's vectors, its further inputs all zeros (one
    segment). The transfer's `difference` says how far apart they are."""
    import torch

    inputs = getattr(model, "input_shapes", None) or {"input": input_shape}
    outputs = getattr(model, "output_names", None) or ["output"]
    causal = len(inputs) == 1 and len(outputs) == 1
    reference = huggingface_model(source, causal)
    unexpressed = _unexpressed(model, reference.config, input_shape[0])
    if unexpressed:
        raise WeightsError(f"{type(reference).__name__} {unexpressed}")
    try:
        transfer = copy_state(model, huggingface_state(reference))
    except WeightsError as error:
        raise WeightsError(f"{error}{_config_text(reference)}") from None
    vocab = getattr(input_shape, "vocab", None)
    if not vocab:
        raise WeightsError("a Hugging Face language model's weights go into a network of "
                           "token ids (`input N tokens of V`)")
    training = model.training
    model.eval()
    try:
        generator = torch.Generator().manual_seed(0)
        # a network that takes fewer positions than its context is compared on a few
        length = input_shape[0] if getattr(model, "fixed_by", None) else min(input_shape[0], 8)
        ids = torch.randint(0, vocab, (1, length), generator=generator)
        others = [torch.zeros(1, length, dtype=torch.long)] * (len(inputs) - 1)
        with torch.no_grad():
            ours = model(ids, *others)
            ours = ours[0] if isinstance(ours, (tuple, list)) else ours
            out = reference(ids)
            theirs = out.logits if causal else out.last_hidden_state
    finally:
        model.train(training)
    if ours.shape != theirs.shape:
        raise WeightsError(f"the weights fit, but the network gives {tuple(ours.shape[1:])} "
                           f"where Hugging Face's model gives {tuple(theirs.shape[1:])}")
    difference = float((ours - theirs).abs().max())
    scale = max(1.0, float(theirs.abs().max()))
    if not difference <= SAME_FUNCTION * scale:
        raise WeightsError(
            f"the weights fit, but the network's scores differ from Hugging Face's by up to "
            f"{difference:.3g} (of scores up to {scale:.3g}): the spec computes another "
            f"function than {type(reference).__name__} (another activation, such as GELU's "
            f"exact form for GPT-2's tanh form; a norm's epsilon; attention without its "
            f"causal mask)")
    transfer.difference = difference
    return transfer
