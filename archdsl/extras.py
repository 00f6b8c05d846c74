"""Optional dependencies: the extra that installs each, and the one way to ask for one.

A plain `pip install archdsl` checks, summarises, draws, compiles and trains; the extras add
what some commands use (pyproject.toml, docs/training.md):

    train   scikit-learn (the digits data set), matplotlib (training curves, `zoo --plot`),
            tqdm (progress bars), tensorboard (event files), PyYAML (`train --config x.yaml`)
    onnx    onnx, onnxscript, onnxruntime (`compile -o x.onnx`)
    lsp     pygls (`archdsl lsp`, the language server for editors)
    hf      transformers (`--weights huggingface:NAME`, `--init huggingface:NAME`: a Hugging
            Face model's weights), and with it tokenizers (its tokenizer, for `generate`)

Without one, a command leaves out what needs it with a note (no progress bar, no curves) or,
when it cannot do what was asked without it, stops with exit status 2 and the `pip install`
line — never with an internal error.
"""

from __future__ import annotations

import importlib.util

# module -> (the package that provides it, the archdsl extra that installs it)
EXTRAS = {
    "sklearn": ("scikit-learn", "train"),
    "matplotlib": ("matplotlib", "train"),
    "tqdm": ("tqdm", "train"),
    "tensorboard": ("tensorboard", "train"),
    "yaml": ("PyYAML", "train"),
    "onnx": ("onnx", "onnx"),
    "onnxscript": ("onnxscript", "onnx"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "pygls": ("pygls", "lsp"),
    "transformers": ("transformers", "hf"),
    "tokenizers": ("tokenizers", "hf"),
}


class MissingExtra(Exception):
    """A command needs an optional package that is not installed."""


def available(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def install_hint(module: str) -> str:
    package, extra = EXTRAS[module]
    return f"pip install 'archdsl[{extra}]' (or pip install {package})"


def require(module: str, what: str) -> None:
    """Raise MissingExtra, naming what needs the module and how to install it."""
    if not available(module):
        raise MissingExtra(f"{what} needs {EXTRAS[module][0]}, which is not installed: "
                           f"{install_hint(module)}")


_noted: set[str] = set()


def note_missing(module: str, what: str, say) -> None:
    """Say once per process that `what` is left out for want of `module`."""
    if module not in _noted:
        _noted.add(module)
        say(f"note: {EXTRAS[module][0]} is not installed, so {what}; {install_hint(module)}")
