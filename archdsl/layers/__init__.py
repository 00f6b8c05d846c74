"""The layer kinds archdsl knows. Importing this package registers them all."""

from . import (activation, attention, conv, detection, linear, merge, norm,  # noqa: F401
               pool, recurrent, resample, structure)  # (registration)
from . import types
from .registry import (LAYERS, LayerDeclarationError, LayerKind, Param, Params, ShapeError,
                       TorchFunction, TorchModule, lookup, numel, register, spatial, unregister)

__all__ = ["LAYERS", "LayerDeclarationError", "LayerKind", "Param", "Params", "ShapeError",
           "TorchFunction",
           "TorchModule", "lookup", "numel", "register", "spatial", "types", "unregister"]
