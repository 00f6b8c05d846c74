"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

A checkpoint holds everything needed to continue exactly or to evaluate without the original
files: the spec's text (and the files it uses), the network's name and arguments, the
training options, the model, optimizer and gradient-scaler states, the random number
generators, and where in training it was taken (epoch, and batch within it).
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

FORMAT = "archdsl-checkpoint/1"


class CheckpointError(Exception):
    pass


def save(path: Path, state: dict) -> None:
    """Write then rename, so a crash never leaves a half-written checkpoint behind."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save({"format": FORMAT, **state}, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def load(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a checkpoint, truncated, or not loadable safely
        raise CheckpointError(f"{path} is not a readable archdsl checkpoint ({error})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an archdsl checkpoint")
    problem = malformed(state)
    if problem is not None:
        raise CheckpointError(f"{path} is a damaged archdsl checkpoint: {problem}")
    return state


def malformed(state: dict) -> str | None:
    """What is wrong with the parts of a checkpoint that rebuild its network, or None. A
    checkpoint may come from anyone: these are data, checked before use (the spec texts
    themselves are checked as they are read, by archdsl.files.MemoryFiles)."""
    expected = {"spec_files": dict, "spec_name": str, "network": str, "args": dict,
                "model": dict}
    for key, kind in expected.items():
        if not isinstance(state.get(key), kind):
            return f"`{key}` is missing or not a {kind.__name__}"
    if not all(isinstance(k, str) and k.isidentifier() for k in state["args"]):
        return "`args` must name network parameters"
    shape = state.get("input_shape")
    if shape is not None and not (isinstance(shape, list) and
                                  all(type(d) is int for d in shape)):
        return "`input_shape` must be a list of integers"
    if not all(isinstance(k, str) and isinstance(v, torch.Tensor)
               for k, v in state["model"].items()):
        return "`model` must map names to tensors"
    history = state.get("history", [])
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        return "`history` must be a list of epochs"
    return None


def rng_state(augment_generator: torch.Generator) -> dict:
    state = {"torch": torch.get_rng_state(), "augment": augment_generator.get_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict, augment_generator: torch.Generator) -> None:
    torch.set_rng_state(state["torch"])
    augment_generator.set_state(state["augment"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
