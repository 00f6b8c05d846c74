"""archdsl: a compiler for neural-network architecture descriptions (.arch files).

    import archdsl
    spec = archdsl.load("specs/resnet.arch")
    net = spec.network("resnet50", classes=10)
    print(net.summary())
    model = net.build()

Importing archdsl does not import torch; only building a module does.
"""

from . import layers  # noqa: F401  (registers the layer kinds)
from .api import Network, Spec, load
from .backends.weights import WeightsError, copy_state, load_torchvision
from .diagnostics import Diagnostic, SpecError

__all__ = ["Diagnostic", "Network", "Spec", "SpecError", "WeightsError", "copy_state", "load",
           "load_torchvision"]
__version__ = "0.1.0"
