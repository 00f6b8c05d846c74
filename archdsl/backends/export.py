"""Writing a compiled network out of archdsl: `.py` (standalone PyTorch source), `.onnx`, or
`.pt` (weights plus the spec's text, which `archdsl.load` reads back)."""

from __future__ import annotations

import os
import tempfile
import warnings
from pathlib import Path

from ..files import OutputError, check_output_folder, write_output

FORMATS = (".py", ".onnx", ".pt")


class ExportError(Exception):
    pass


def export(net, path, model=None, preprocess=None, dynamic: bool = False) -> Path:
    """Write `net` to `path` (format by extension). `model`: the module whose weights to
    write (a freshly built one if None). `preprocess` (train/preprocess.py): how raw images
    become its input, as a run trained it — the `.py` gets `read_image` and `preprocess`
    functions, the `.onnx` the metadata `archdsl.preprocess`, the `.pt` the record.
    `dynamic`: the `.onnx` takes the other input sizes the network takes, not only its
    spec's (the batch is dynamic either way)."""
    path = Path(path)
    if path.suffix not in FORMATS:
        raise ExportError(f"cannot write `{path.name}`: the extension must be .py, .onnx or .pt")
    if dynamic and path.suffix != ".onnx":
        raise ExportError(f"cannot write `{path.name}` with dynamic sizes: they are for .onnx "
                          "files (a .py or .pt module takes every size the network takes)")
    if path.suffix == ".py":
        from .source import to_source

        write_output(path, to_source(net, preprocess).encode())
    elif path.suffix == ".onnx":
        to_onnx(net, path, model, preprocess, dynamic)
    else:
        from ..train import checkpoint

        model = model if model is not None else net.build()
        record = {"preprocess": preprocess.to_dict()} if preprocess is not None else {}
        try:
            checkpoint.save(path, {**saved_spec(net), "model": model.state_dict(), **record})
        except checkpoint.CheckpointError as error:  # cannot write it
            raise OutputError(str(error)) from None
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


# the ONNX metadata key of a trained network's preprocessing (JSON of Preprocess.to_dict)
ONNX_PREPROCESS = "archdsl.preprocess"


def to_onnx(net, path: Path, model=None, preprocess=None, dynamic: bool = False) -> None:
    """ONNX through torch.export: input `input` (several inputs by their names), outputs
    named as in the spec (side outputs included), a dynamic batch dimension; checked with
    onnx.checker. A trained network's preprocessing goes into the metadata, as JSON under
    `archdsl.preprocess`. `dynamic`: the input's sizes are dynamic too (`dynamic_sizes`)."""
    import torch

    from ..extras import MissingExtra, require

    try:
        require("onnx", "ONNX export")
        require("onnxscript", "ONNX export")  # torch.onnx's exporter needs it
    except MissingExtra as error:
        raise ExportError(str(error)) from None
    import onnx
    sizes = dynamic_sizes(net) if dynamic else {}
    exported = net.build(side_outputs="always").eval()
    if model is not None:
        exported.load_state_dict(model.state_dict())
    from .codegen import input_arguments
    from .torch_module import example_inputs

    xs = example_inputs(net.graph)
    batch = torch.export.Dim("batch", min=1, max=65536)
    arguments = input_arguments(net.graph).values()
    # One self-contained file below protobuf's 2 GB; above, the weights go to `NAME.onnx.data`
    # beside it, which the model names (both are written in a temporary folder under their
    # final names, then moved: a model never refers to a temporary name).
    size = sum(t.numel() * t.element_size() for t in exported.state_dict().values())
    external = size >= 2 * 1024 ** 3 - 64 * 1024 ** 2
    check_output_folder(path)
    try:
        with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as folder:
            target = Path(folder) / path.name
            with warnings.catch_warnings():
                # several inputs share the one batch dimension, which the exporter notes
                warnings.filterwarnings("ignore", message="The axis name: batch will not be used")
                torch.onnx.export(exported, xs, str(target), input_names=list(net.graph.inputs),
                                  output_names=list(net.output_shapes),
                                  dynamic_shapes={arg: {0: batch, **{
                                      axis + 1: torch.export.Dim.AUTO
                                      for axis in sizes.get(name, {})}}
                                      for name, arg in zip(net.graph.inputs, arguments)},
                                  dynamo=True, verbose=False, external_data=external)
            if preprocess is not None or sizes:
                proto = onnx.load(str(target), load_external_data=False)
                _name_sizes(net, proto, sizes)
                if preprocess is not None:
                    import json

                    entry = proto.metadata_props.add()
                    entry.key, entry.value = ONNX_PREPROCESS, json.dumps(preprocess.to_dict())
                onnx.save(proto, str(target))
            onnx.checker.check_model(str(target))
            for written in sorted(Path(folder).iterdir(), key=lambda f: f == target):
                os.replace(written, path.parent / written.name)  # the model last
    except OSError as error:
        raise OutputError(f"cannot write {path}: {error.strerror or error}") from None


def dynamic_sizes(net) -> dict[str, dict[int, str]]:
    """For each input, its axes (the batch excluded) whose sizes an `.onnx` written with
    dynamic sizes leaves open, by name (`height`, `width`, `positions`; prefixed with the
    input's name when there are several). ExportError when the network takes only its
    spec's sizes (passes/sizes.py), or a layer of it would run at those only in ONNX."""
    from ..passes.sizes import size_dependent_layer
    from ..shapes import describe

    graph = net.graph
    shapes = graph.input_shapes()
    taken = ", ".join("x".join(map(str, s)) for s in shapes.values())
    fixed = size_dependent_layer(graph, side_outputs=True)  # the .onnx computes them all
    if fixed is not None and fixed not in graph.main_ancestors():  # GoogLeNet's auxiliary heads
        raise ExportError(f"the side outputs of `{net.name}` take only {taken} (`{fixed}` "
                          "depends on that size), and its .onnx computes them: it can have "
                          "a dynamic batch only — leave out --dynamic")
    if fixed is not None:
        raise ExportError(f"`{net.name}` takes only {taken} (`{fixed}` depends on that size; "
                          "passes/sizes.py): its .onnx can have a dynamic batch only — leave "
                          "out --dynamic")
    for name, node in graph.layers():
        layer = node["layer"]
        x = graph[node["inputs"][0]]["shape"]
        why = None if layer.is_merge else layer.onnx_one_size(node["args"], x)
        if why:
            given = " and ".join(describe(s) for s in shapes.values())
            raise ExportError(f"`{name}` ({layer.describe(node['args'])}) would run in ONNX "
                              f"only on {describe(x)}, what it gets from {given}: {why}. "
                              "Leave out --dynamic for an .onnx of the spec's size")
    several = len(shapes) > 1
    return {name: {axis: f"{name}_{size}" if several else size
                   for axis, size in shape.size_axes.items()}
            for name, shape in shapes.items()}


def _name_sizes(net, proto, sizes: dict[str, dict[int, str]]) -> None:
    """Name the dynamic sizes of the model's inputs as `dynamic_sizes` does (torch.export
    calls them s0, s53, ...), in every shape that mentions them; ExportError when one came
    out fixed (torch.export found the computation depends on it)."""
    import re

    renames = {}
    for value in proto.graph.input:
        for axis, size in sizes.get(value.name, {}).items():
            dim = value.type.tensor_type.shape.dim[axis + 1]
            if not dim.dim_param:
                raise ExportError(f"`{net.name}`: torch.export fixed the {size} of its input "
                                  f"`{value.name}` at {dim.dim_value}: the computation depends "
                                  "on it. Leave out --dynamic")
            renames[dim.dim_param] = size
    if not renames:
        return
    symbol = re.compile(r"\b(" + "|".join(map(re.escape, renames)) + r")\b")
    for value in (*proto.graph.input, *proto.graph.output, *proto.graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = symbol.sub(lambda m: renames[m.group(1)], dim.dim_param)
