"""Weights from elsewhere: copy another model's state_dict into an archdsl-compiled model.

Tensors are matched in order — the order in which both models register their parameters and
buffers — and every shape is checked, so a spec that builds the same network as torchvision
takes torchvision's weights (pretrained ones too) whatever the modules are called. When the
structures differ, the error names the first tensor that disagrees on both sides.

Shapes match when they are equal once sizes of 1 are left out: the same numbers in the same
order. So a 1x1 convolution's weight (O, I, 1, 1) takes a linear layer's (O, I) — the paper's
"1x1, 384" that torchvision's ConvNeXt writes as nn.Linear on channels-last — and a layer
scale `param(96x1x1)` takes one stored as (96, 1, 1) or (1, 96, 1, 1).
"""

from __future__ import annotations

from dataclasses import dataclass


class WeightsError(Exception):
    pass


@dataclass
class Transfer:
    """What was copied: (archdsl name, source name, shape) for every tensor."""

    pairs: list

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
    pairs, state = [], {}
    for i, j in _pairing([t.shape for t in ours.values()], [t.shape for t in theirs.values()]):
        (name, tensor), (source_name, value) = our_items[i], their_items[j]
        if not _same_numbers(tensor.shape, value.shape):
            raise WeightsError(
                f"tensor {i} differs: archdsl `{name}` is {_shape(tensor)}, the source's "
                f"`{source_name}` is {_shape(value)}")
        pairs.append((name, source_name, tuple(tensor.shape)))
        state[name] = value.reshape(tensor.shape)
    model.load_state_dict(state)
    return Transfer(pairs)


def _pairing(ours: list, theirs: list) -> list[tuple[int, int]]:
    """(our index, their index) for every tensor. In order, except where a few tensors sit
    elsewhere in one model's order than in the other's — a free tensor such as ViT's class
    token is registered first in torchvision's model, where the network uses it in ours:
    the longest runs of agreeing shapes are matched first (difflib), and the tensors left
    over are paired in order."""
    keys = [tuple(n for n in shape if n != 1) for shape in ours]
    their_keys = [tuple(n for n in shape if n != 1) for shape in theirs]
    if keys == their_keys:
        return list(zip(range(len(ours)), range(len(theirs))))
    import difflib

    matcher = difflib.SequenceMatcher(None, keys, their_keys, autojunk=False)
    pairs = [(block.a + k, block.b + k) for block in matcher.get_matching_blocks()
             for k in range(block.size)]
    matched_ours, matched_theirs = {i for i, _ in pairs}, {j for _, j in pairs}
    left = zip([i for i in range(len(ours)) if i not in matched_ours],
               [j for j in range(len(theirs)) if j not in matched_theirs])
    return sorted(pairs + list(left))


def _same_numbers(a, b) -> bool:
    """Equal shapes once sizes of 1 are left out (see the module's docstring)."""
    return [n for n in a if n != 1] == [n for n in b if n != 1]


def _first_difference(ours, theirs) -> str:
    for i, ((a, x), (b, y)) in enumerate(zip(ours.items(), theirs.items())):
        if not _same_numbers(x.shape, y.shape):
            return f"; the first that differs is tensor {i}: archdsl `{a}` {_shape(x)}, source `{b}` {_shape(y)}"
    longer, name = (ours, "archdsl model") if len(ours) > len(theirs) else (theirs, "source")
    extra = list(longer)[min(len(ours), len(theirs))]
    return f"; the {name} goes on with `{extra}`"


def torchvision_model(name: str, pretrained: bool = False, **kwargs):
    """A torchvision classification model by name, with its default weights if asked."""
    import torchvision

    try:
        builder = torchvision.models.get_model_builder(name)
    except ValueError:
        raise WeightsError(f"torchvision has no model `{name}`; its models: "
                           + ", ".join(sorted(torchvision.models.list_models(torchvision.models))))
    if not pretrained:
        return builder(weights=None, **kwargs)
    try:
        return builder(weights="DEFAULT", **kwargs)
    except Exception as error:  # offline, or no pretrained weights for it
        raise WeightsError(
            f"could not get torchvision's pretrained weights for `{name}` ({error}); on a "
            f"machine with internet access torchvision downloads them into its cache "
            f"($TORCH_HOME, ~/.cache/torch/hub/checkpoints)") from None


def load_torchvision(model, name: str, pretrained: bool = True) -> Transfer:
    """Copy torchvision's `name` weights (pretrained by default) into an archdsl model."""
    return copy_state(model, torchvision_model(name, pretrained=pretrained))
