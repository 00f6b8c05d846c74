"""Writing a compiled network out of archdsl: `.py` (standalone PyTorch source), `.onnx`, or
`.pt` (weights plus the spec's text, which `archdsl.load` reads back)."""

from __future__ import annotations

import warnings
from pathlib import Path

FORMATS = (".py", ".onnx", ".pt")


class ExportError(Exception):
    pass


def export(net, path, model=None) -> Path:
    """Write `net` to `path` (format by extension). `model`: the module whose weights to
    write (a freshly built one if None)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ExportError(f"cannot write `{path.name}`: the extension must be .py, .onnx or .pt")
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".py":
        from .source import to_source

        _atomic_write(path, to_source(net).encode())
    elif path.suffix == ".onnx":
        to_onnx(net, path, model)
    else:
        from ..train import checkpoint

        model = model if model is not None else net.build()
        checkpoint.save(path, {**saved_spec(net), "model": model.state_dict()})
    return path


def saved_spec(net) -> dict:
    """What a .pt file or a checkpoint needs to rebuild the network without its files."""
    from ..layers.types import value_text

    spec = net.spec
    files, root = spec.files()
    return {"spec_files": files, "spec_name": root, "network": net.name,
            "args": {k: value_text(v, quote=True) if not isinstance(v, str) else v
                     for k, v in (net.arguments or {}).items()},
            "input_shape": list(net.input_shape) if net.input_override else None}


def to_onnx(net, path: Path, model=None) -> None:
    """ONNX through torch.export: input `input` (several inputs by their names), outputs
    named as in the spec (side outputs included), a dynamic batch dimension; checked with onnx.checker."""
    import torch

    try:
        import onnx
        import onnxscript  # noqa: F401  (torch.onnx's exporter needs it)
    except ImportError:
        raise ExportError("ONNX export needs the onnx and onnxscript packages: "
                          "pip install onnx onnxscript") from None
    exported = net.build(side_outputs="always").eval()
    if model is not None:
        exported.load_state_dict(model.state_dict())
    from .codegen import input_arguments
    from .torch_module import example_inputs

    xs = example_inputs(net.graph)
    batch = torch.export.Dim("batch", min=1, max=65536)
    tmp = path.with_name(path.name + ".tmp")
    arguments = input_arguments(net.graph).values()
    with warnings.catch_warnings():
        # several inputs share the one batch dimension, which the exporter notes each time
        warnings.filterwarnings("ignore", message="The axis name: batch will not be used")
        torch.onnx.export(exported, xs, str(tmp), input_names=list(net.graph.inputs),
                          output_names=list(net.output_shapes),
                          dynamic_shapes={arg: {0: batch} for arg in arguments},
                          dynamo=True, verbose=False)
    onnx.checker.check_model(onnx.load(str(tmp)))
    tmp.replace(path)


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
