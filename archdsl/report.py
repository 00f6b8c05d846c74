"""Summaries of a network: a Keras-like table, and the same facts as JSON."""

from __future__ import annotations

from .layers.registry import show
from .passes.sizes import size_dependent_layer
from .layers.types import value_text

# The summary's header shows each argument of the network at most this long.
SHOWN_ARGUMENT = 200


def _json_value(value):
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, list):
        return [_json_value(v) for v in value]
    return value_text(value)


def describe(node) -> str:
    """A layer in the spec's own notation: `conv 3x3, 64, /2`."""
    layer = node["layer"]
    return layer.describe(node["args"]) if layer is not None else node["kind"]


def human(n: int) -> str:
    for unit, size in (("P", 10**15), ("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return str(n)


# How the summary counts parameters: Keras' convention (BatchNorm's running statistics are
# non-trainable parameters, as the seeds' model.summary() prints them) or PyTorch's
# (parameters() only, trainable or frozen; buffers apart: torchinfo, timm, Ultralytics).
CONVENTIONS = ("keras", "torch")


def summary_rows(net, depth: int | None = None):
    """(name, notation, output shape, Params, MACs, sources) per row of the summary: every
    layer, or with `depth` (torchinfo's depth, Keras' expand_nested off) the frames at that
    depth — labels, block calls, merges — collapsed into one row each, with their totals and
    the shape of their last layer; layers less deeply nested stay rows of their own.
    `sources`: the rows (or inputs) the row reads, from outside itself."""
    from .layers.registry import Params

    rows: list[list] = []
    where: dict[str, int] = {}  # row name -> its index
    represent: dict[str, str] = {}  # layer -> the row that shows it
    for name, node in net.graph.layers():
        scope = node["scope"]
        if depth is None or len(scope) < depth:
            row_name = name
            where[name] = len(rows)
            rows.append([name, describe(node), show(node["shape"]), node["params"],
                         node["macs"], []])
        else:
            row_name = scope[depth - 1].path
            if row_name not in where:
                where[row_name] = len(rows)
                rows.append([row_name, scope[depth - 1].title, "", Params(), 0, []])
            row = rows[where[row_name]]
            row[2] = show(node["shape"])  # the frame's output: its last layer's, in order
            row[3] = row[3] + node["params"]
            row[4] += node["macs"]
        represent[name] = row_name
        sources = rows[where[row_name]][5]
        for i in node["inputs"]:
            source = represent.get(i, i)
            if source != row_name and source not in sources:
                sources.append(source)
    return rows


def _from_column(rows) -> list[str] | None:
    """What each row reads, where it is not simply the row above (Keras' "Connected to");
    None when every row reads the one above it (a plain sequence of layers)."""
    shown, previous, needed = [], "input", False
    for row in rows:
        sources = row[5]
        text = "" if sources == [previous] else ", ".join(sources)
        needed = needed or bool(text)
        shown.append(text)
        previous = row[0]
    return shown if needed else None


def summary_text(net, params: str = "keras", depth: int | None = None) -> str:
    if params not in CONVENTIONS:
        raise ValueError(f"params must be one of {CONVENTIONS}, got {params!r}")
    g = net.graph
    args = ", ".join(f"{k}={value_text(v, SHOWN_ARGUMENT)}" for k, v in g.parameters.items())
    header = [f"Network: {g.name}" + (f"({args})" if args else "") + f"   [{g.file}]",
              (f"Input: {show(g.input_shape)}" if len(g.inputs) == 1 else
               "Inputs: " + ", ".join(f"{n} {show(s)}" for n, s in g.input_shapes().items()))
              + _sizes_note(g)]
    table = summary_rows(net, depth)
    sources = _from_column(table)
    rows = [("Layer", "Kind", "Output shape", "Param #", "MACs")
            + (("From",) if sources else ())]
    for i, (name, kind, shape, counts, macs, _) in enumerate(table):
        count = counts.total if params == "keras" else counts.torch
        rows.append((name, kind, shape, f"{count:,}", f"{macs:,}")
                    + ((sources[i],) if sources else ()))
    widths = [max(map(len, column)) for column in zip(*rows)]
    rule = "─" * (sum(widths) + 2 * (len(widths) - 1))
    line = "  ".join(["{:<%d}", "{:<%d}", "{:<%d}", "{:>%d}", "{:>%d}", "{:<%d}"]
                     [:len(widths)]) % tuple(widths)

    out = header + ["", line.format(*rows[0]).rstrip(), rule] + \
        [line.format(*r).rstrip() for r in rows[1:]] + [rule]
    t = net.totals
    if params == "keras":
        out += [
            f"Total params: {t.params_total:,}",
            f"Trainable params: {t.params_trainable:,}",
            f"Non-trainable params: {t.params_nontrainable:,}",
        ]
        if t.params_frozen:
            out.append(f"  of which frozen: {t.params_frozen:,} (parameters without gradients; "
                       f"PyTorch's parameters(): {t.params_torch:,})")
        out.append("(counted as Keras does: BatchNorm's running statistics are non-trainable; "
                   "--params torch: as PyTorch)")
    else:
        out += [
            f"Parameters: {t.params_torch:,} (trainable {t.params_trainable:,}, frozen "
            f"{t.params_frozen:,})",
            f"Buffers: {t.params.buffers:,} (running statistics; not parameters)",
            "(counted as PyTorch does, model.parameters(), as torchinfo and timm print; "
            "default: as Keras)",
        ]
    out += [
        f"MACs: {t.macs:,} ({human(t.macs)}; multiply-adds of conv, linear and attention)",
        f"FLOPs: {t.flops:,} ({human(t.flops)}; every operation, see docs/counting.md)",
    ]
    if t.macs_side:
        out.append(f"Side outputs (training only): {t.macs_side:,} more MACs, "
                   f"{t.flops_side:,} more FLOPs")
    out += [
        "Outputs: " + ", ".join(f"{o} {show(s)}" for o, s in g.output_shapes().items()),
    ]
    return "\n".join(out)


def size_text(n: int) -> str:
    """Bytes in binary units, as memory is sold and torch.cuda reports it: `1.50 GiB`."""
    for unit, size in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.2f} {unit}"
    return f"{n} B"


MEMORY_ROWS = (("parameters", "parameters and buffers (fp32)"),
               ("gradients", "gradients (fp32)"),
               ("optimizer_state", "optimizer state"),
               ("activations", "activations kept for backward"),
               ("peak", "peak of one step"))


def memory_text(net, batch: int, optimizer: str) -> str:
    """The memory estimate of a training step at fp32 and with bf16 autocast, as a table."""
    from .passes.memory import PRECISIONS

    estimates = [net.memory(batch, precision, optimizer).as_dict() for precision in PRECISIONS]
    what = {"sgd": "SGD with momentum", "adamw": "AdamW"}[optimizer]
    rows = [("", "fp32", "bf16 autocast")] + [
        (label, *(size_text(e[key]) for e in estimates)) for key, label in MEMORY_ROWS]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = [f"Training memory at batch {batch} (an estimate for one step of {what}; "
             "see docs/counting.md):"]
    for r in rows:
        lines.append(f"  {r[0]:<{widths[0]}}  {r[1]:>{widths[1]}}  {r[2]:>{widths[2]}}")
    return "\n".join(lines)


def _sizes_note(g) -> str:
    """Whether the network takes other input sizes than its spec's (passes/sizes.py): a
    convolutional network with a global pool does, LeNet-5 does not (the layer that ties it
    is named); a vector's size is its features, so nothing is said of it."""
    if all(not s.size_axes for s in g.input_shapes().values()):
        return ""
    fixed = size_dependent_layer(g)
    return (f"   (this size only: `{fixed}` depends on it)" if fixed is not None else
            "   (other sizes too, where its layers take them)")


def summary_json(net) -> dict:
    g = net.graph
    t = net.totals
    layers = []
    for name, node in g.layers():
        params = node["params"]
        layers.append({
            "name": name, "kind": node["kind"], "notation": describe(node),
            "output_shape": list(node["shape"]), "layout": node["shape"].layout,
            "inputs": node["inputs"],
            "params": params.total, "params_trainable": params.trainable,
            "params_nontrainable": params.non_trainable, "params_frozen": params.frozen,
            "macs": node["macs"], "flops": node["flops"],
            "side_output_only": node["side_only"],
            "line": node["span"].line, "column": node["span"].col,
        })
    return {
        "file": g.file, "network": g.name,
        "arguments": {k: _json_value(v) for k, v in g.parameters.items()},
        "input": list(g.input_shape), "input_layout": g.input_shape.layout,
        **({"input_vocab": g.input_shape.vocab} if g.input_shape.vocab else {}),
        "inputs": {n: list(s) for n, s in g.input_shapes().items()},
        # the layer that ties the network to its input's size, or null (passes/sizes.py)
        "input_size_fixed_by": size_dependent_layer(g),
        "outputs": {o: list(s) for o, s in g.output_shapes().items()},
        "main_outputs": list(g.main_outputs),
        "output_layouts": {o: s.layout for o, s in g.output_shapes().items()},
        "params_total": t.params_total, "params_trainable": t.params_trainable,
        "params_nontrainable": t.params_nontrainable, "params_frozen": t.params_frozen,
        "params_torch": t.params_torch, "buffers": t.params.buffers, "macs": t.macs, "flops": t.flops,
        "macs_side_outputs": t.macs_side, "flops_side_outputs": t.flops_side,
        "layers": layers,
    }
