"""The layer kinds archdsl knows. Importing this package registers them all."""

from . import activation, conv, linear, merge, norm, pool, structure  # noqa: F401  (registration)
from .registry import LAYERS, LayerKind, Param, ShapeError, TorchFunction, TorchModule, lookup

__all__ = ["LAYERS", "LayerKind", "Param", "ShapeError", "TorchFunction", "TorchModule", "lookup"]
