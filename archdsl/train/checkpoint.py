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
    return state


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
