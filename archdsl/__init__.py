"""archdsl: a compiler for neural-network architecture descriptions (.arch files).

    import archdsl
    spec = archdsl.load("specs/resnet.arch")
    net = spec.network("resnet50", classes=10)
    print(net.summary())
    model = net.build()

Importing archdsl does not import torch; only building a module does.
"""

from . import layers  # noqa: F401  (registers the layer kinds)
from .api import (Network, SavedModel, Spec, UnknownModel, create_model, list_models, load,
                  zoo_network)
from .backends.weights import WeightsError, copy_state, load_torchvision
from .diagnostics import Diagnostic, SpecError
from .layers import register as register_layer
from .layers import unregister as unregister_layer

__all__ = ["Diagnostic", "Network", "SavedModel", "Spec", "SpecError", "UnknownModel", "WeightsError",
           "copy_state", "create_model", "list_models", "load", "load_torchvision",
           "register_layer", "unregister_layer", "zoo_network"]
__version__ = "0.1.0"
