"""Checkpoints: written atomically, read with `torch.load(weights_only=True)`.

A checkpoint holds everything needed to continue exactly or to evaluate without the original
files: the spec's text (and the files it uses), the network's name and arguments, the
training options, the model, optimizer and gradient-scaler states, the random number
generators, and where in training it was taken (epoch, and batch within it).
"""

from __future__ import annotations

from pathlib import Path

import torch

FORMAT = "archdsl-checkpoint/1"


class CheckpointError(Exception):
    pass


def save(path: Path, state: dict) -> None:
    """Write then rename, so a crash never leaves a half-written checkpoint behind; a write
    that fails (a full disk, a folder made read-only) removes its temporary file and raises
    CheckpointError, the previous checkpoint untouched. The weights carry checksums that `load`
    verifies (WEIGHTS)."""
    from ..files import OutputError, write_output

    state = {"format": FORMAT, **state}
    for weights, key in WEIGHTS.items():
        tensors = state.get(weights)
        if isinstance(tensors, dict) and all(isinstance(t, torch.Tensor)
                                             for t in tensors.values()):
            state[key] = checksum(tensors)
    try:
        write_output(path, lambda tmp: torch.save(state, tmp))
    except OutputError as error:
        raise CheckpointError(str(error)) from None


# the tensors a checkpoint's checksums cover: the model's weights (with --ema, the averaged
# ones) and, with --ema, the weights training goes on from
WEIGHTS = {"model": "checksum", "trained": "trained_checksum"}


def checksum(tensors: dict) -> str:
    """SHA-256 of a state_dict's names, dtypes, shapes and bytes, in order."""
    import hashlib

    digest = hashlib.sha256()
    for name, tensor in tensors.items():
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.view(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def load(path: Path) -> dict:
    path = Path(path)
    if path.is_dir():
        path = path / "last.pt"
    if not path.exists():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a checkpoint, truncated, or not loadable safely
        # PyTorch explains weights_only refusals over many lines: the first says what it is
        text = str(error)
        reason = (text.strip().splitlines() or [type(error).__name__])[0]
        if "Unsupported global" in text or "GLOBAL" in text:
            reason = "it holds Python objects, which archdsl does not load (only tensors)"
        elif "Weights only load failed" in reason:
            reason = "not a PyTorch file, or a damaged one"
        raise CheckpointError(f"{path} is not a readable archdsl checkpoint: {reason}") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an archdsl checkpoint")
    problem = malformed(state)
    for weights, key in WEIGHTS.items():
        if problem is None and key in state:
            what = "weights" if weights == "model" else "trained weights (before --ema's average)"
            tensors = state.get(weights)
            if not (isinstance(tensors, dict) and all(isinstance(t, torch.Tensor)
                                                      for t in tensors.values())):
                problem = f"its {what} are not a dictionary of tensors"
            elif state[key] != checksum(tensors):
                problem = f"its {what} do not match their checksum (the file was changed or " \
                          "damaged)"
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
    plugins = state.get("plugins", [])
    if not (isinstance(plugins, list) and all(isinstance(p, str) for p in plugins)):
        return "`plugins` must be a list of module names"
    if "preprocess" in state:
        from .preprocess import Preprocess

        try:
            Preprocess.from_dict(state["preprocess"])
        except ValueError as error:
            return str(error)
    history = state.get("history", [])
    if not (isinstance(history, list) and all(isinstance(h, dict) for h in history)):
        return "`history` must be a list of epochs"
    return None


def unresumable(state: dict) -> str | None:
    """What a training checkpoint lacks to be resumed, or None (`malformed` checked the
    parts that rebuild the network)."""
    kinds = {"optimizer": dict, "scaler": dict, "rng": dict, "config": dict}
    for key, kind in kinds.items():
        if not isinstance(state.get(key), kind):
            return f"`{key}` is missing or not a {kind.__name__}"
    for key in ("epoch", "batch"):
        if type(state.get(key)) is not int or state[key] < 0:
            return f"`{key}` must be a whole number ≥ 0, got {state.get(key)!r}"
    if type(state.get("best")) not in (int, float):
        return f"`best` must be a number, got {state.get('best')!r}"
    top = state.get("top", [])
    if not (isinstance(top, list) and all(
            isinstance(t, list) and len(t) == 2 and type(t[0]) in (int, float)
            and type(t[1]) is int for t in top)):
        return "`top` must list [score, epoch] pairs"
    if type(state.get("stale", 0)) is not int or state.get("stale", 0) < 0:
        return f"`stale` must be a whole number ≥ 0, got {state.get('stale')!r}"
    if state["config"].get("ema") and not (
            isinstance(state.get("trained"), dict) and type(state.get("ema_steps")) is int):
        return "it trained with --ema but lacks its trained weights or their count of averages"
    if not isinstance(state["rng"].get("torch"), torch.Tensor):
        return "`rng` lacks the random number generator's state"
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
