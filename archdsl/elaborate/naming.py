"""Hierarchical names from the spec's own words, and the finished graph.

Names are paths through the frames a node was made in. The rules, in the order they apply:

1. A frame's segment is its label or output name, its block's name (`bottleneck`), its merge
   op (`add`), or for a branch its name (`branch shortcut:`) or its index (`0`, `1`, ...).
   A layer's segment is its kind (`conv`). Groups, repeats, `if`, `with` and `let` make no
   frame: their steps belong to the enclosing one.
2. A frame whose only content is one block call or one merge takes that call's place:
   `conv1: conv_bn(64, 7, 2)` gives `conv1.conv` and `conv1.bn`, not `conv1.conv_bn.conv`.
3. When all of a frame's contents are calls of the same block (a ResNet stage), they are
   numbered from 0 like a PyTorch Sequential: `conv3_x.0`, `conv3_x.1`, ...
4. Otherwise a segment that occurs more than once among siblings is numbered from 1
   (`conv1`, `conv2`; `block3_1` when the segment ends in a digit), skipping names that are
   already taken.

A merge's join node is named by its frame (`conv3_x.0.add`), an output by its name.
"""

from __future__ import annotations

from collections import Counter

from ..graph import FrameRecord, LayerGraph, ScopeEntry


def build_graph(name, definition, path, parameters, root, nodes, inputs, outputs,
                main_outputs) -> LayerGraph:
    _collapse(root)
    _assign(root, "")
    for i, (input_name, node) in enumerate(inputs.items()):
        # the first input is `input`; the others `input.meta` (no label path starts so:
        # `input` is a keyword)
        node.name = "input" if i == 0 else f"input.{input_name}"
    for node in nodes:
        if node.kind == "output" and node.output_name == "output":
            node.name = "output"
    scopes: dict = {}
    records = {node.name: dict(kind=node.kind, layer=node.layer, args=node.args,
                               inputs=[i.name for i in node.inputs], shape=node.shape,
                               span=node.span, notation=node.notation,
                               scope=_scope_of(node.frame, scopes),
                               output=node.output_name,
                               tied=node.tied.name if node.tied is not None else None,
                               frozen=node.frozen)
               for node in nodes}
    return LayerGraph(name, path, parameters, records,
                      {out: node.name for out, node in outputs.items()}, _frames(root),
                      main_outputs, {name: node.name for name, node in inputs.items()})


def _frames(root) -> dict:
    """Every frame by path, with its contents in order (for the source exporter)."""
    records = {}

    def visit(frame, path):
        block, args, call = None, {}, ""
        for f in [frame, *frame.absorbed]:
            if f.kind == "block":
                block, args, call = f.name, f.block_args, f.title
                break
        children = []
        for item in frame.children:
            if _is_frame(item):
                child = _frame_path(item)
                if child:
                    visit(item, child)
                    children.append(("frame", child))
            else:
                children.append(("node", item.name))
        records[path] = FrameRecord(path, frame.kind, frame.title, block, args, children, call)

    visit(root, "")
    return records


def _is_frame(item) -> bool:
    return hasattr(item, "children")


def _collapse(frame) -> None:
    """Rule 2, bottom-up."""
    for child in frame.children:
        if _is_frame(child):
            _collapse(child)
    while (frame.kind != "network" and len(frame.children) == 1 and _is_frame(frame.children[0])
           and frame.children[0].kind in ("block", "merge")):
        inner = frame.children[0]
        frame.children = inner.children
        for c in frame.children:
            if _is_frame(c):
                c.parent = frame
            else:
                c.frame = frame
        if inner.node is not None and frame.node is None:
            frame.node = inner.node
            inner.node.frame = frame
        frame.absorbed.append(inner)


def _segment(item) -> str:
    if _is_frame(item):
        return item.name
    return item.kind


def _assign(frame, prefix: str) -> None:
    items = frame.children
    blocks = {_block_of(i) for i in items}
    if len(items) >= 2 and len(blocks) == 1 and None not in blocks:
        names = [str(i) for i in range(len(items))]  # rule 3
    elif frame.kind == "merge":
        names = [i.name for i in items]  # branches: their names or indices
    else:
        names = _number(_segment(i) for i in items)  # rule 4
    for item, segment in zip(items, names):
        path = prefix + segment
        if _is_frame(item):
            if item.node is not None:
                item.node.name = path
            _assign(item, path + ".")
        else:
            item.name = path


def _block_of(item):
    """The block a frame is a call of (directly, or absorbed by rule 2), else None."""
    if not _is_frame(item):
        return None
    if item.kind == "block":
        return item.name
    return None


def _number(segments) -> list[str]:
    segments = list(segments)
    counts = Counter(segments)
    taken = {s for s in segments if counts[s] == 1}
    next_index: dict[str, int] = {}
    names = []
    for s in segments:
        if counts[s] == 1:
            names.append(s)
            continue
        i = next_index.get(s, 1)
        sep = "_" if s[-1].isdigit() else ""
        while f"{s}{sep}{i}" in taken:
            i += 1
        name = f"{s}{sep}{i}"
        taken.add(name)
        next_index[s] = i + 1
        names.append(name)
    return names


def _scope_of(frame, cache: dict) -> tuple[ScopeEntry, ...]:
    """The frames around a node, outermost first (a merge's join node and an output node sit
    *in* their frame's cluster). Worked out once per frame: the nodes of a frame share it."""
    if frame is None or frame.kind == "network":
        return ()
    scope = cache.get(id(frame))
    if scope is None:
        title = frame.title
        if frame.absorbed:
            title = " · ".join([frame.title] + [a.title for a in frame.absorbed
                                                if a.title != frame.title])
        scope = _scope_of(frame.parent, cache) + (
            ScopeEntry(_frame_path(frame), frame.kind, title),)
        cache[id(frame)] = scope
    return scope


def _frame_path(frame) -> str:
    """A frame's path: the prefix its nodes share (computed from any named descendant)."""
    node = frame.node or _first_node(frame)
    if node is None:
        return ""
    if frame.node is node:
        return node.name
    depth = 0
    f = node.frame
    while f is not frame:
        depth += 1
        f = f.parent
    return node.name.rsplit(".", depth + 1)[0]


def _first_node(frame):
    for item in frame.children:
        if _is_frame(item):
            found = _first_node(item)
            if found is not None:
                return found
        else:
            return item
    return None
