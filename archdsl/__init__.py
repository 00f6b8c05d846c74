"""archdsl: a compiler for neural-network architecture descriptions (.arch files).

    import archdsl
    spec = archdsl.load("specs/resnet.arch")
    net = spec.network("resnet50", classes=10)
    print(net.summary())
    model = net.build()

Importing archdsl does not import torch; only building a module does. The names below are
loaded when first used, so that `import archdsl` (and the `archdsl` command's start, where a
Ctrl-C must not meet a half-imported package) stays short.
"""

import importlib

# public name -> (module, name in it)
_EXPORTS = {
    "Network": (".api", "Network"), "SavedModel": (".api", "SavedModel"),
    "Spec": (".api", "Spec"), "UnknownModel": (".api", "UnknownModel"),
    "create_model": (".api", "create_model"), "list_models": (".api", "list_models"),
    "load": (".api", "load"), "zoo_network": (".api", "zoo_network"),
    "PredictError": (".train.predict", "PredictError"),
    "WeightsError": (".backends.weights", "WeightsError"),
    "copy_state": (".backends.weights", "copy_state"),
    "load_torchvision": (".backends.weights", "load_torchvision"),
    "load_huggingface": (".backends.weights", "load_huggingface"),
    "Diagnostic": (".diagnostics", "Diagnostic"), "SpecError": (".diagnostics", "SpecError"),
    "register_layer": (".layers", "register"), "unregister_layer": (".layers", "unregister"),
}

__all__ = sorted(_EXPORTS)
__version__ = "0.1.0"


def __getattr__(name: str):
    if name in _EXPORTS:
        module, attribute = _EXPORTS[name]
        value = getattr(importlib.import_module(module, __name__), attribute)
    else:
        try:  # a subpackage or module: archdsl.layers, archdsl.shapes, ...
            value = importlib.import_module(f".{name}", __name__)
        except ModuleNotFoundError:
            raise AttributeError(f"module 'archdsl' has no attribute {name!r}") from None
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(_EXPORTS))
