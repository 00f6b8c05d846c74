"""Weights from elsewhere: copy another model's state_dict into an archdsl-compiled model.

Tensors are matched in order — the order in which both models register their parameters and
buffers — and every shape is checked, so a spec that builds the same network as torchvision
takes torchvision's weights (pretrained ones too) whatever the modules are called. When the
structures differ, the error names the first tensor that disagrees on both sides.
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
    """Copy `source` (a state_dict, or a module) into `model`, in order."""
    theirs = source.state_dict() if hasattr(source, "state_dict") else dict(source)
    ours = model.state_dict()
    if len(ours) != len(theirs):
        raise WeightsError(
            f"the structures differ: the archdsl model has {len(ours)} tensors, the source "
            f"{len(theirs)}" + _first_difference(ours, theirs))
    pairs = []
    for i, ((name, tensor), (source_name, value)) in enumerate(zip(ours.items(), theirs.items())):
        if tensor.shape != value.shape:
            raise WeightsError(
                f"tensor {i} differs: archdsl `{name}` is {_shape(tensor)}, the source's "
                f"`{source_name}` is {_shape(value)}")
        pairs.append((name, source_name, tuple(tensor.shape)))
    model.load_state_dict(dict(zip(ours, theirs.values())))
    return Transfer(pairs)


def _first_difference(ours, theirs) -> str:
    for i, ((a, x), (b, y)) in enumerate(zip(ours.items(), theirs.items())):
        if x.shape != y.shape:
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
