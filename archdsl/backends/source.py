"""Layer graph → standalone PyTorch source (`archdsl compile FILE NETWORK -o model.py`).

The file imports only torch and reads like hand-written PyTorch:

- one `nn.Module` class per block kind of the spec (`ConvBn`, `Bottleneck`, ...); when calls
  of a block build different structures (a bottleneck with a projection shortcut and one
  without) each structure gets its own class (`Bottleneck`, `Bottleneck_2`);
- a class used by several calls takes constructor arguments for what differs between them.
  Each is written as an expression of the block's own parameters (`c`, `4 * c`, `k // 2`,
  `in_channels`) when that expression gives the right value in every call, and as a plain
  argument otherwise — the code is exact by construction, never a guess;
- the network class composes them under the spec's labels and block names, the same module
  paths as the archdsl-compiled model, so its state_dict loads unchanged; labels, merges and
  branches that are not block calls become `nn.ModuleDict` containers;
- every `forward` is straight-line, with the output shape as a comment on each line (in a
  class used several times, the shapes of its first use).
"""

from __future__ import annotations

import inspect
import keyword
import re
import textwrap

from .. import __version__
from ..graph import LayerGraph
from ..layers.registry import TorchModule, show
from ..passes.decoding import decodes_with_cache
from ..passes.sizes import size_dependent_layer
from .codegen import (Op, emit, in_place_layers, input_arguments, input_comments, module_call,
                      module_path, torch_op)

OWN_MODULES = "archdsl.backends.torch_modules."


def to_source(net, preprocess=None) -> str:
    """Standalone PyTorch source of `net`; with a trained network's `preprocess`
    (train/preprocess.py), also `read_image` and `preprocess` functions that feed it raw
    images as its training did, and its CLASSES."""
    code = with_network_parameters(net, with_loops(_Exporter(net).source()))
    if preprocess is None:
        return code
    main = code.index('\n\nif __name__ == "__main__":')
    if preprocess.task == "lm":
        padded = size_dependent_layer(net.graph) is not None
        cached = decodes_with_cache(net.graph)
        return (code[:main] + "\n\n\n" + text_source(preprocess, padded, cached) + "\n"
                + code[main:] + TEXT_MAIN)
    if preprocess.task == "seq2seq":
        target = list(net.graph.input_shapes().values())[1][0]
        return (code[:main] + "\n\n\n" + pairs_source(preprocess, target) + "\n"
                + code[main:] + TEXT_MAIN)
    g = net.graph
    ends_in_softmax = g[g[g.outputs[g.main_outputs[0]]]["inputs"][0]]["kind"] == "softmax"
    probabilities = "out[0]" if ends_in_softmax else "torch.softmax(out, dim=1)[0]"
    if preprocess.task == "segment":
        report = [
            "            mask = out.argmax(1)[0]  # the class of each pixel",
            "            shares = torch.bincount(mask.flatten(), minlength=len(CLASSES)) / mask.numel()",
            '            print(f"{path}: " + ", ".join(f"{CLASSES[i]} {float(s):.1%}" '
            "for i, s in enumerate(shares) if s))"]
    else:
        report = [
            f"            probabilities = {probabilities}",
            "            best = int(probabilities.argmax())",
            '            print(f"{path}: {CLASSES[best]} {float(probabilities[best]):.1%}")']
    return (code[:main] + "\n\n\n" + preprocess_source(preprocess) + "\n" + code[main:]
            + "\n".join([
                "    import sys", "",
                "    # python THIS.py WEIGHTS.pt IMAGE...: the most probable class of each image",
                "    if len(sys.argv) > 2:",
                '        state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)',
                '        model.load_state_dict(state.get("model", state))  # a checkpoint\'s, '
                "or a state_dict",
                "        for path in sys.argv[2:]:",
                "            with torch.no_grad():",
                "                out = model(preprocess(read_image(path)[None]))",
                *report, ""]))


_ADD = re.compile(r'^        self\.add_module\("(\d+)", (.+)\)$')
_CALL = re.compile(r'^        x = getattr\(self, "(\d+)"\)\(x\)\s*(#.*)?$')


def with_loops(code: str) -> str:
    """A class that only chains numbered submodules (a stage of repeated blocks) builds the
    runs of identical ones in a loop and calls them all in one: `for i in range(1, 6):
    self.add_module(str(i), Bottleneck(c=256, in_channels=1024))` and `for block in
    self.children(): x = block(x)`. The modules keep their names, so state_dicts still load."""
    lines = code.split("\n")
    out, i = [], 0
    while i < len(lines):
        line = lines[i]
        out.append(line)
        i += 1
        if line != "        super().__init__()":
            continue
        adds = []
        while i < len(lines) and (m := _ADD.match(lines[i])):
            adds.append((int(m.group(1)), m.group(2)))
            i += 1
        calls, j = [], i
        if adds and j + 2 < len(lines) and lines[j] == "" and \
                lines[j + 1] == "    def forward(self, x):":
            j += 2
            while j < len(lines) and (m := _CALL.match(lines[j])):
                calls.append((int(m.group(1)), m.group(2) or ""))
                j += 1
        chained = (len(adds) >= 2 and [k for k, _ in adds] == list(range(len(adds)))
                   and [k for k, _ in calls] == list(range(len(adds)))
                   and j < len(lines) and lines[j] == "        return x")
        if not chained:
            out += [f'        self.add_module("{k}", {rhs})' for k, rhs in adds]
            continue
        start = 0
        while start < len(adds):  # runs of one constructor call
            end = start
            while end + 1 < len(adds) and adds[end + 1][1] == adds[start][1]:
                end += 1
            if end - start >= 2:
                out += [f"        for i in range({start}, {end + 1}):",
                        f"            self.add_module(str(i), {adds[start][1]})"]
            else:
                out += [f'        self.add_module("{k}", {rhs})' for k, rhs in adds[start:end + 1]]
            start = end + 1
        shape = calls[-1][1].strip()
        out += ["", "    def forward(self, x):",
                "        for block in self.children():  # in order" + (
                    f"; {shape.lstrip('# ')} at the end" if shape else ""),
                "            x = block(x)"]
        i = j
    return "\n".join(out)


def with_network_parameters(net, code: str) -> str:
    """The network class takes the network's whole-number parameters as constructor
    arguments with the spec's values as defaults (`Resnet50(classes=10)`, as timm's
    `num_classes`), where a parameter only sets numbers written in the class's own
    `__init__`. Found by exporting the network again with each parameter changed: the lines
    that differ must differ only in numbers that equal the parameter in both exports. A
    parameter that changes anything else (a block class, the structure, a size computed from
    it) stays fixed."""
    spec = net.spec
    if spec is None:
        return code
    lines = code.split("\n")
    name = camel(net.graph.name)
    try:
        start = lines.index(f"class {name}(nn.Module):")
        init = lines.index("    def __init__(self):", start)
        forward = next(i for i in range(init, len(lines))
                       if lines[i].startswith("    def forward("))
    except (ValueError, StopIteration):
        return code
    taken, numbers = [], {}  # (line, token index) -> parameter
    for parameter, value in net.graph.parameters.items():
        if type(value) is not int or not parameter.isidentifier() or keyword.iskeyword(parameter):
            continue
        changed = value + 3  # not 0 or 1, and unlikely to meet another number by chance
        try:
            other = spec.network(net.graph.name, input_shape=net.input_override,
                                 **{**(net.arguments or {}), parameter: changed})
        except Exception:  # not valid with another value: it stays fixed
            continue
        theirs = with_loops(_Exporter(other).source()).split("\n")
        found = _numbers_set_by(lines, theirs, value, changed, range(init + 1, forward),
                                range(start, init + 1))
        if found is None or not found:
            continue
        taken.append((parameter, value))
        for place in found:
            numbers[place] = parameter
    if not taken:
        return code
    for i in sorted({line for line, _ in numbers}):  # every place of a line in one pass
        parts = re.split(r"(\d+)", lines[i])
        for (line, token), parameter in numbers.items():
            if line == i:
                parts[token] = parameter
        lines[i] = "".join(parts)
    lines[init] = "    def __init__(self, " + ", ".join(f"{p}={v}" for p, v in taken) + "):"
    return "\n".join(lines)


def _numbers_set_by(ours: list, theirs: list, value: int, changed: int, where: range,
                    described: range):
    """The (line, token) places of `value` in `ours` that are `changed` in `theirs`, or None
    when the two differ otherwise: outside `where` (the file's header, the class's docstring
    in `described` and the shape comments aside), or in anything but those numbers."""
    if len(ours) != len(theirs):
        return None
    header = ours.index("import torch") if "import torch" in ours else 0
    places = []
    for i, (a, b) in enumerate(zip(ours, theirs)):
        if a == b:
            continue
        code_a, code_b = a.split("#")[0], b.split("#")[0]
        if code_a == code_b or i < header or i in described:
            continue  # a shape comment, the header's counts and arguments, the docstring
        if i not in where:
            return None
        parts_a, parts_b = re.split(r"(\d+)", code_a), re.split(r"(\d+)", code_b)
        if len(parts_a) != len(parts_b):
            return None
        for k, (x, y) in enumerate(zip(parts_a, parts_b)):
            if x == y:
                continue
            if k % 2 == 0 or (x, y) != (str(value), str(changed)):
                return None  # text, or another number, changed with it
            places.append((i, k))
    return places


def preprocess_source(p) -> str:
    """The source of a trained network's preprocessing: the steps of Preprocess.read and
    Preprocess.__call__ that this network needs, with its numbers written in."""
    steps = [
        "    x = images.float() / 255.0",
        f"    mean = torch.tensor({list(p.mean)!r}, device=x.device).view(1, -1, 1, 1)",
        f"    std = torch.tensor({list(p.std)!r}, device=x.device).view(1, -1, 1, 1)",
        "    x = (x - mean) / std"]
    if len(p.input_shape) == 1:
        steps.append("    return x.flatten(1)  # the network takes a vector")
    else:
        channels, height, width = p.input_shape
        if channels != p.channels:
            steps.append("    x = x.expand(-1, 3, -1, -1)  # grey to the network's RGB"
                         if p.channels == 1 else
                         "    x = x.mean(dim=1, keepdim=True)  # RGB to the network's grey")
        if (height, width) != tuple(p.size):
            steps.append(f"    x = F.interpolate(x, size=({height}, {width}), mode=\"bilinear\", "
                         "align_corners=False)")
        steps.append("    return x")
    mode = "L" if p.channels == 1 else "RGB"
    height, width = p.size
    return "\n".join([
        "# How raw images become this network's input, as `archdsl train` fed it"
        + (f" ({p.data})" if p.data else "") + ".",
        f"CLASSES = {list(p.classes)!r}",
        f"PREPROCESS = {p.to_dict()!r}", "", "",
        "def read_image(path):",
        f'    """An image file as uint8 (C, H, W): {"grey" if mode == "L" else "RGB"}, '
        f'{height}x{width} (needs Pillow and NumPy)."""',
        "    import numpy as np",
        "    from PIL import Image", "",
        "    with Image.open(path) as image:",
        f'        image = image.convert("{mode}").resize(({width}, {height}), '
        "Image.Resampling.BILINEAR)",
        "        array = np.asarray(image)",
        "    return torch.from_numpy(array.copy()).view(*array.shape[:2], -1).permute(2, 0, 1)",
        "", "",
        "def preprocess(images):",
        '    """uint8 images (N, C, H, W), as read_image gives them, to the network\'s input."""',
        *steps])


def text_source(p, padded: bool, cached: bool = False) -> str:
    """A trained language model's vocabulary and a `generate` function (train/text.py's,
    written out): text to token ids, a continuation drawn a token at a time. The vocabulary
    is the characters of the text it trained on, or a Hugging Face tokenizer (its JSON, read
    by the `tokenizers` package). `padded`: the network takes exactly its context, so a
    shorter window is padded. `cached`: it reads only the new token while the text fits its
    context, its attention layers keeping the earlier keys and values (its `cache`, its
    position embedding's `offset`)."""
    context = p.input_shape[0]
    if p.tokenizer:
        vocabulary = ["# The Hugging Face tokenizer this language model reads text with"
                      + (f" ({p.data})" if p.data else "") + " (pip install tokenizers).",
                      f"TOKENIZER_JSON = {p.tokenizer!r}",
                      f"STOP = {tuple(p.stop)!r}  # the token ids that end a text"]
        size, unit = "TOKENIZER.get_vocab_size()", "tokens"
        read = ["    from tokenizers import Tokenizer",
                "    TOKENIZER = Tokenizer.from_str(TOKENIZER_JSON)",
                "    ids = TOKENIZER.encode(prompt).ids"]
        text = "    return TOKENIZER.decode(ids)"
    else:
        vocabulary = ["# The characters of the text `archdsl train` trained this language "
                      "model on" + (f" ({p.data})" if p.data else "") + ", by token id.",
                      f"VOCABULARY = {list(p.classes)!r}",
                      "STOP = ()  # no character ends a text"]
        size, unit = "len(VOCABULARY)", "characters"
        read = ["    index = {c: i for i, c in enumerate(VOCABULARY)}",
                "    ids = [index[c] for c in prompt]  # a KeyError names a character never "
                "trained on"]
        text = '    return "".join(VOCABULARY[i] for i in ids)'
    if padded:
        feed = ["        window = ids[-CONTEXT:]",
                "        x = torch.zeros(1, CONTEXT, dtype=torch.long)",
                "        x[0, :len(window)] = torch.tensor(window)",
                f"        scores = model(x)[0, len(window) - 1, :{size}].float()"]
        how = ["    than the context is padded on the right: the network sees no later position, so",
               '    the padding changes nothing before it."""']
    else:
        feed = ["        x = torch.tensor([ids[-CONTEXT:]])",
                f"        scores = model(x)[0, -1, :{size}].float()"]
        how = [f"    than the context is read as it is; a longer text, its last CONTEXT {unit}."
               '"""']
    loop = ["    for _ in range(length):", *feed]
    if cached:
        loop = [
            "    attention = [m for m in model.modules() if hasattr(m, \"cache\")]",
            "    positions = [m for m in model.modules() if hasattr(m, \"offset\")]",
            "",
            "    def caching(on):  # keys and values of the positions read so far",
            "        for m in attention:",
            "            m.cache = [] if on else None",
            "        for m in positions:",
            "            m.offset = 0 if on else None",
            "",
            "    caching(True)",
            "    read = 0  # the ids the cache holds; None once the text outgrows the context",
            "    try:",
            "        for _ in range(length):",
            "            if read is not None and len(ids) > CONTEXT:",
            "                caching(False)  # every position moves from here on",
            "                read = None",
            "            if read is not None:",
            "                x = torch.tensor([ids[read:]])",
            "                read = len(ids)",
            f"                scores = model(x)[0, -1, :{size}].float()",
            "            else:",
            *["        " + line for line in feed],
            *["    " + line for line in _DRAW],
            "    finally:",
            "        caching(False)"]
    else:
        loop += _DRAW
    return "\n".join([
        *vocabulary,
        f"CONTEXT = {context}  # the most positions the network reads" if not padded else
        f"CONTEXT = {context}  # the positions the network reads", "", "",
        "@torch.no_grad()",
        "def generate(model, prompt, length=500, temperature=0.8, top_k=None, seed=0):",
        f'    """The prompt and up to `length` {unit} drawn after it (a token of STOP ends it),',
        "    each from the scores at the last position (divided by `temperature`; 0: the most",
        "    likely one). A prompt shorter",
        *how,
        *read,
        "    generator = torch.Generator().manual_seed(seed)",
        "    model.eval()",
        *loop,
        text])


def pairs_source(p, target_length: int) -> str:
    """A trained sequence-to-sequence model's vocabulary (train/text.py Pairs: three special
    tokens, then a character each) and a `generate` function that writes a source's target
    (train/text.py's `translate`, written out)."""
    return "\n".join([
        "# The vocabulary `archdsl train` trained this model with"
        + (f" ({p.data})" if p.data else "") + ": the ids PAD,",
        "# BEGIN and END, then one per character of CHARACTERS.",
        "PAD, BEGIN, END = 0, 1, 2",
        f"CHARACTERS = {list(p.classes)!r}",
        f"SOURCE, TARGET = {p.input_shape[0]}, {target_length}  # the positions the network reads",
        "STOP = (END,)", "", "",
        "@torch.no_grad()",
        "def generate(model, source, length=None, temperature=0.0, top_k=None, seed=0):",
        '    """The target the model writes for `source`: a token at a time from BEGIN, each',
        "    from the scores at the last position written (divided by `temperature`; 0: the",
        "    most likely one), until END or TARGET (or `length`) tokens. The source and the",
        '    target are padded to the network\'s lengths, as in training."""',
        "    index = {c: i + 3 for i, c in enumerate(CHARACTERS)}",
        "    read = [index[c] for c in source]  # a KeyError names a character never trained on",
        "    if len(read) > SOURCE:",
        '        raise ValueError(f"the source is {len(read)} characters; the network reads '
        '{SOURCE}")',
        "    generator = torch.Generator().manual_seed(seed)",
        "    model.eval()",
        "    x = torch.full((1, SOURCE), PAD)",
        "    x[0, :len(read)] = torch.tensor(read, dtype=torch.long)",
        "    y = torch.full((1, TARGET), PAD)",
        "    y[0, 0] = BEGIN",
        "    ids = []",
        "    for position in range(min(TARGET, length or TARGET)):",
        "        scores = model(x, y)[0, position, :3 + len(CHARACTERS)].float()",
        *_DRAW,
        "        if position + 1 < TARGET:",
        "            y[0, position + 1] = ids[-1]",
        '    return "".join(CHARACTERS[i - 3] for i in ids if i >= 3)'])


# a token drawn from `scores` (train/text.py `_draw`), as the loop of `generate` writes it
_DRAW = [
    "        if temperature == 0:",
    "            ids.append(int(scores.argmax()))",
    "        else:",
    "            scores = scores / temperature",
    "            if top_k is not None and top_k < len(scores):",
    "                scores = scores.masked_fill(scores < scores.topk(top_k).values[-1], "
    "float(\"-inf\"))",
    "            ids.append(int(torch.multinomial(scores.softmax(-1), 1, generator=generator)))",
    "        if ids[-1] in STOP:  # the model ended its text",
    "            break"]


TEXT_MAIN = "\n".join([
    "    import sys", "",
    '    # python THIS.py WEIGHTS.pt "PROMPT": the prompt and what the model writes after it',
    "    if len(sys.argv) > 2:",
    '        state = torch.load(sys.argv[1], map_location="cpu", weights_only=True)',
    '        model.load_state_dict(state.get("model", state))  # a checkpoint\'s, or a state_dict',
    "        print(generate(model, sys.argv[2]))", ""])


# ---- small helpers -------------------------------------------------------------------------

def camel(name: str) -> str:
    text = "".join(part[:1].upper() + part[1:] for part in re.split(r"[_\W]+", name) if part)
    return text if text.isidentifier() and not keyword.iskeyword(text) else f"Block{text}"


def literal(value) -> str:
    if isinstance(value, float):
        return repr(value) if value == value and abs(value) != float("inf") else f'float("{value}")'
    return repr(value)


def _attribute(base: str, segment: str) -> str:
    if segment.isidentifier() and not keyword.iskeyword(segment):
        return f"{base}.{segment}"
    return f'getattr({base}, "{segment}")'


def access(relative: list[str]) -> str:
    """Module access inside a class: an attribute, then keys of ModuleDict containers."""
    expr = _attribute("self", relative[0])
    for segment in relative[1:]:
        expr += f'["{segment}"]'
    return expr


def _defaults(cls) -> dict:
    """A class's constructor parameters in order, with their defaults (or `inspect.Parameter.
    empty`)."""
    try:
        signature = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    return {k: p.default for k, p in signature.parameters.items() if k != "self"}


def _short(cls_path: str) -> str:
    if cls_path.startswith("torch.nn."):
        return "nn." + cls_path[len("torch.nn."):]
    return cls_path.rsplit(".", 1)[1]


# ---- the exporter --------------------------------------------------------------------------

class _Instance:
    """One call of a block that becomes an instance of a generated class."""

    def __init__(self, path: str, frame, input_key: str, output_key: str, in_channels: int):
        self.path = path
        self.frame = frame
        self.input_key = input_key
        self.output_key = output_key
        self.in_channels = in_channels
        self.cls: _Class | None = None
        self.values: list = []  # the values at the class's template positions
        self.targets: list = []  # what each position feeds (a keyword or parameter name)


class _Class:
    def __init__(self, name: str, block: str, instances: list[_Instance]):
        self.name = name
        self.block = block
        self.instances = instances
        self.parameters: list[str] = []  # constructor parameters
        self.expressions: list[str] = []  # per template position
        self.extra: dict[int, str] = {}  # template position -> its own constructor parameter
        self.candidates: dict[str, list] = {}  # parameter -> its value in each call


class _Exporter:
    def __init__(self, net):
        self.net = net
        self.graph: LayerGraph = net.graph
        self.g = net.graph.graph
        self.frames = net.graph.frames
        # the same in-place relus and adds as the compiled module (codegen.in_place_layers)
        self.in_place = in_place_layers(self.graph)
        self.members: dict[str, set] = {}
        for path in self.frames:
            self._collect(path)
        self.instances = {path: inst for path in self.frames
                          if (inst := self._instance(path)) is not None}
        self.classes: list[_Class] = []
        self.helpers: set[str] = set()
        self._group()

    # -- the frame tree ------------------------------------------------------------------

    def _collect(self, path: str) -> set:
        if path in self.members:
            return self.members[path]
        nodes = set()
        for kind, item in self.frames[path].children:
            nodes |= self._collect(item) if kind == "frame" else {item}
        if path and path in self.g and self.g.nodes[path]["layer"] is not None:
            nodes.add(path)  # a merge's join node carries its frame's name
        self.members[path] = nodes
        return nodes

    def _post_order(self, path: str) -> list[str]:
        order = []
        for kind, item in self.frames[path].children:
            if kind == "frame":
                order += self._post_order(item)
        return order + [path]

    def _instance(self, path: str) -> _Instance | None:
        """A frame that stands for a block call with one input and one output becomes an
        instance of a generated class; anything else is inlined into its parent."""
        frame = self.frames[path]
        members = self.members[path]
        if not path or frame.block is None or not members:
            return None
        if any(self.frames[p].kind == "output" for p in self.frames if p.startswith(path + ".")):
            return None
        inputs = {i for n in members for i in self.g.nodes[n]["inputs"] if i not in members}
        outputs = {n for n in members if any(s not in members for s in self.g.successors(n))}
        if len(inputs) != 1 or len(outputs) != 1:
            return None
        (source,), (result,) = inputs, outputs
        # `in_channels`: a map's channels, a sequence's width (not its length), a vector's size
        return _Instance(path, frame, source, result, self.g.nodes[source]["shape"].features)

    # -- the ops of a class body ---------------------------------------------------------

    def _walk(self, path: str, prefix: str):
        """The items of a class body: ("node", name) and ("instance", path) in order."""
        for kind, item in self.frames[path].children:
            if kind == "node":
                yield ("node", item)
            elif item in self.instances:
                yield ("instance", item)
            else:
                yield from self._walk(item, prefix)
        if path and path in self.g and self.g.nodes[path]["layer"] is not None:
            yield ("node", path)  # a merge's join node, after its branches

    def _relative(self, name: str, base: str) -> list[str]:
        tail = name[len(base) + 1:] if base else name
        return module_path(tail)

    def _ops(self, base: str) -> list[Op]:
        ops = []
        for kind, item in self._walk(base, base):
            if kind == "instance":
                inst = self.instances[item]
                call = access(self._relative(item, base))
                ops.append(Op(inst.output_key, [inst.input_key],
                              lambda v, call=call: f"{call}({v[0]})",
                              show(self.g.nodes[inst.output_key]["shape"])))
                continue
            node = self.g.nodes[item]
            if node["kind"] in ("input", "output"):
                continue
            op = torch_op(self.graph, item, self.in_place)
            shape = show(node["shape"])
            if node["kind"] == "identity":
                ops.append(Op(item, node["inputs"], None, shape))
            elif isinstance(op, TorchModule):
                call = access(self._relative(item, base))
                ops.append(Op(item, node["inputs"],
                              lambda v, call=call, op=op: module_call(call, op, v), shape))
            else:
                ops.append(Op(item, node["inputs"],
                              lambda v, op=op: op.expression(v), shape))
        return ops

    # -- __init__: the modules, as a template with values --------------------------------

    def _init_items(self, base: str) -> list:
        """The attributes a class body creates, in registration order: ("module", name, op)
        or ("instance", name, _Instance); containers are implied by the names."""
        items = []
        for kind, item in self.frames[base].children:
            items += self._init_item(kind, item)
        if base and base in self.g and self.g.nodes[base]["layer"] is not None:
            items += self._init_item("node", base)
        return items

    def _init_item(self, kind: str, item: str) -> list:
        if kind == "node":
            if self.g.nodes[item]["layer"] is None:
                return []
            op = torch_op(self.graph, item, self.in_place)
            return [("module", item, op)] if isinstance(op, TorchModule) else []
        if item in self.instances:
            return [("instance", item, self.instances[item])]
        return self._init_items(item)

    def _height(self, path: str, memo: dict) -> int:
        if path not in memo:
            nested = [self._height(name, memo) for kind, name, _ in self._init_items(path)
                      if kind == "instance"]
            memo[path] = 1 + max(nested) if nested else 0
        return memo[path]

    # -- classes -------------------------------------------------------------------------

    def _group(self) -> None:
        """Calls with the same block and the same structure share a class. Blocks that contain
        no other block are grouped first, so a structure can name its nested calls' classes,
        and a class's values can include the arguments of its nested calls."""
        order = [p for p in self._post_order("") if p in self.instances]
        memo: dict = {}
        heights = {p: self._height(p, memo) for p in order}
        by_block: dict[str, list] = {}
        for level in sorted(set(heights.values())):
            created = []
            for path in (p for p in order if heights[p] == level):
                inst = self.instances[path]
                items = self._init_items(path)
                key = (tuple((k, tuple(self._relative(n, path)),
                              (x.cls, tuple(x.kwargs), x.pre) if k == "module" else x.cls.name)
                             for k, n, x in items),
                       re.sub(r"\s+# .*", "", "\n".join(
                           emit(self._ops(path), inst.input_key, [inst.output_key]))))
                inst.values, inst.targets = [], []
                for kind, _, payload in items:
                    if kind == "module":
                        inst.values += list(payload.kwargs.values())
                        inst.targets += list(payload.kwargs)
                    else:
                        inst.values += self._argument_values(payload)
                        inst.targets += payload.cls.parameters
                groups = by_block.setdefault(inst.frame.block, [])
                match = next((cls for k, cls in groups if k == key), None)
                if match is None:
                    name = camel(inst.frame.block) + (f"_{len(groups) + 1}" if groups else "")
                    match = _Class(name, inst.frame.block, [])
                    groups.append((key, match))
                    created.append(match)
                    self.classes.append(match)
                match.instances.append(inst)
                inst.cls = match
            for cls in created:
                self._parameterise(cls)

    def _parameterise(self, cls: _Class) -> None:
        """An expression per template position: a literal where every call agrees, else an
        expression of the block's parameters that reproduces every call's value, else a
        constructor parameter of its own."""
        first = cls.instances[0]
        candidates = {}
        for name in first.frame.block_args:
            vector = [inst.frame.block_args.get(name) for inst in cls.instances]
            if all(isinstance(v, (int, float, bool)) or v is None for v in vector):
                candidates[name] = vector
        candidates["in_channels"] = [inst.in_channels for inst in cls.instances]
        used = set()
        extras: dict[str, list] = {}  # parameters of their own, by the name of what they feed
        for i in range(len(first.values)):
            vector = [inst.values[i] for inst in cls.instances]
            square = first.targets[i] in SQUARE_ARGUMENTS
            expr = _explain(vector, candidates, square=square) \
                or _explain(vector, extras, literals=False)
            if expr is None:
                expr = _fresh(first.targets[i], set(candidates) | set(extras))
                extras[expr] = vector
                cls.extra[i] = expr
            cls.expressions.append(expr)
            used |= {name for name in candidates if re.search(rf"\b{name}\b", expr)}
        cls.parameters = [p for p in [*first.frame.block_args, "in_channels"] if p in used]
        cls.candidates = {**candidates, **extras}
        cls.parameters += list(extras)

    def _argument_values(self, inst: _Instance) -> list:
        """The values a call passes to its class's constructor, in parameter order."""
        index = inst.cls.instances.index(inst)
        return [inst.cls.candidates[p][index] for p in inst.cls.parameters]

    # -- writing -------------------------------------------------------------------------

    def _constructor(self, op: TorchModule, expressions: list[str] | None) -> str:
        if not op.cls.startswith("torch.nn."):
            self.helpers.add(op.cls)  # archdsl's own or a plugin's module: copied in
        defaults = {}
        try:
            from .torch_module import resolve_class

            defaults = _defaults(resolve_class(op.cls))
        except Exception:
            pass
        parts = []
        for i, (key, value) in enumerate(op.kwargs.items()):
            expr = expressions[i] if expressions else _value(value, key)
            if _is_literal(expr) and key in defaults and _same(defaults[key], value):
                continue  # PyTorch's default: leave it out
            parts.append((key, f"{key}={expr}"))
        order = list(defaults) if defaults else []
        parts.sort(key=lambda p: order.index(p[0]) if p[0] in order else -1)
        return f"{_short(op.cls)}({', '.join(text for _, text in parts)})"

    def _init_lines(self, base: str, cls: _Class | None) -> list[str]:
        """`self.x = ...` lines; containers as nested nn.ModuleDict literals. In a shared
        class (`cls`), values come from the class's expressions; at the top level, literals."""
        cursor = 0
        tree: dict = {}
        for kind, name, payload in self._init_items(base):
            rel = self._relative(name, base)
            level = tree
            for segment in rel[:-1]:
                level = level.setdefault(segment, {})
            if kind == "module":
                n = len(payload.kwargs)
                exprs = cls.expressions[cursor:cursor + n] if cls else None
                cursor += n
                level[rel[-1]] = self._constructor(payload, exprs)
            else:
                n = len(payload.cls.parameters)
                if cls:
                    exprs = cls.expressions[cursor:cursor + n]
                else:
                    exprs = [literal(v) for v in self._argument_values(payload)]
                cursor += n
                args = ", ".join(f"{p}={e}" for p, e in zip(payload.cls.parameters, exprs))
                level[rel[-1]] = f"{payload.cls.name}({args})"

        def render(value, indent):
            if isinstance(value, str):
                return value
            pad = " " * (indent + 4)
            entries = [f'{pad}"{k}": {render(v, indent + 4)},' for k, v in value.items()]
            return "nn.ModuleDict({\n" + "\n".join(entries) + "\n" + " " * indent + "})"

        lines = []
        for segment, value in tree.items():
            if segment.isidentifier() and not keyword.iskeyword(segment):
                lines.append(f"        self.{segment} = {render(value, 8)}")
            else:
                lines.append(f'        self.add_module("{segment}", {render(value, 8)})')
        return lines

    def _class_source(self, cls: _Class) -> list[str]:
        first = cls.instances[0]
        uses = ", ".join(i.path for i in cls.instances[:3]) + (
            f" and {len(cls.instances) - 3} more" if len(cls.instances) > 3 else "")
        used = f"Used at {uses}." + (" Shapes in comments are those of the first."
                                     if len(cls.instances) > 1 else "")
        doc = (f'    """Block `{cls.block}`, as {first.frame.call or cls.block}.\n\n'
               + textwrap.fill(used, 92, initial_indent="    ", subsequent_indent="    "))
        lines = [f"class {cls.name}(nn.Module):", doc + '"""', "",
                 f"    def __init__(self{''.join(', ' + p for p in cls.parameters)}):",
                 "        super().__init__()"]
        lines += self._init_lines(first.path, cls)
        lines += ["", "    def forward(self, x):",
                  *_indent(emit(self._ops(first.path), first.input_key, [first.output_key]))]
        return lines

    def source(self) -> str:
        g = self.graph
        args = ", ".join(f"{k}={_arg_text(v)}" for k, v in g.parameters.items())
        t = self.net.totals
        body = []
        for cls in self.classes:
            body += self._class_source(cls) + ["", ""]
        name = camel(g.name)
        side = [g.outputs[o] for o in g.side_outputs]
        network = [f"class {name}(nn.Module):",
                   f'    """`{g.name}`: input' + ("s " + ", ".join(
                       f"{n} {show(s)}" for n, s in g.input_shapes().items())
                       if len(g.inputs) > 1 else f" {show(g.input_shape)}") + '; outputs '
                   + ", ".join(f"{o} {show(s)}" for o, s in g.output_shapes().items()) + '."""',
                   "", "    def __init__(self):", "        super().__init__()"]
        network += self._init_lines("", None)
        for layer, node in g.layers():
            if node.get("tied"):  # one Parameter in both modules (weight tying)
                mine, theirs = (".".join(module_path(n)) for n in (layer, node["tied"]))
                network.append(f'        self.get_submodule("{mine}").weight = '
                               f'self.get_submodule("{theirs}").weight')
        frozen = [layer for layer, node in g.layers() if node.get("frozen") and
                  node["params"].frozen]
        if frozen:  # `frozen:` in the spec: parameters without gradients
            network.append("        for name in [" + ", ".join(
                f'"{".".join(module_path(n))}"' for n in frozen) + "]:")
            network.append("            self.get_submodule(name).requires_grad_(False)")
        ops = self._ops("")
        needed = g.main_ancestors()
        for op in ops:
            op.side_only = op.key not in needed
        arguments = input_arguments(g)
        network += ["", f"    def forward(self, {', '.join(arguments.values())}):",
                    *_indent(input_comments(g, arguments)),
                    *_indent(emit(ops, "input", [self.g.nodes[g.outputs[o]]["inputs"][0]
                                                 for o in g.main_outputs],
                                  [self.g.nodes[n]["inputs"][0] for n in side],
                                  more_inputs={k: v for k, v in arguments.items()
                                               if k != "input"}))]
        helpers = [inspect.getsource(cls) for cls in _with_bases(sorted(self.helpers))]
        header = [
            f'"""The network `{g.name}` of {g.file}, as plain PyTorch.', "",
            f"    {g.name}({args})" if args else f"    {g.name}", "",
            f"Generated by archdsl {__version__}. {t.params_total:,} parameters "
            f"({t.params_trainable:,} trainable),",
            f"{t.macs:,} MACs per image. It needs only PyTorch; a state_dict of the",
            "archdsl-compiled model loads into it unchanged. Side outputs, if any, are",
            'returned after the main output in training mode only."""', "",
            "import torch", "import torch.nn.functional as F", "from torch import nn", "", "", ""]
        footer = ["", "", 'if __name__ == "__main__":',
                  f"    model = {name}().eval()",
                  *[f"    {arg} = {_example_input_source(g[node]['shape'])}"
                    for node, arg in arguments.items()],
                  "    with torch.no_grad():",
                  f"        out = model({', '.join(arguments.values())})",
                  "    print(out.shape if torch.is_tensor(out) else [o.shape for o in out])"]
        code = "\n".join(header) + "".join(h + "\n\n" for h in helpers) + "\n".join(body + network + footer) + "\n"
        return re.sub(r"\n{4,}", "\n\n\n", code)


# ---- values and expressions ----------------------------------------------------------------

def _example_input_source(shape) -> str:
    sizes = ", ".join(map(str, shape))
    if getattr(shape, "layout", None) == "tokens":
        return f"torch.randint(0, {shape.vocab}, (1, {sizes}))"
    return f"torch.randn(1, {sizes})"


def _indent(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


# Arguments of PyTorch's modules for which one int stands for a square (2, 2): not a tensor
# shape such as FreeTensor's, where 1024 is not 1024x1024.
SQUARE_ARGUMENTS = {"kernel_size", "stride", "padding", "dilation", "output_padding",
                    "output_size", "size", "scale_factor"}


def _value(value, key: str = "") -> str:
    if isinstance(value, tuple) and len(value) == 2 and value[0] == value[1] \
            and isinstance(value[0], int) and key in SQUARE_ARGUMENTS:
        return literal(value[0])  # PyTorch takes one int for a square size
    if isinstance(value, tuple):
        return "(" + ", ".join(literal(v) for v in value) + ("," if len(value) == 1 else "") + ")"
    return literal(value)


def _is_literal(expr: str) -> bool:
    import ast

    try:
        ast.literal_eval(expr)
        return True
    except (ValueError, SyntaxError):
        return False


def _same(default, value) -> bool:
    if isinstance(value, tuple) and len(set(value)) == 1 and default == value[0]:
        return True
    return type(default) is type(value) and default == value or (
        isinstance(default, (int, float)) and not isinstance(default, bool)
        and isinstance(value, (int, float)) and not isinstance(value, bool) and default == value)


def _fresh(target: str, taken: set) -> str:
    name = target if target.isidentifier() and not keyword.iskeyword(target) else "value"
    n = 2
    base = name
    while name in taken or name == "self":
        name = f"{base}_{n}"
        n += 1
    return name


def _explain(vector: list, candidates: dict, literals: bool = True,
             square: bool = False) -> str | None:
    """An expression that gives `vector` (one value per call): a literal, or a parameter.
    `square`: a PyTorch argument that takes one int for a square size."""
    if literals and all(v == vector[0] and type(v) is type(vector[0]) for v in vector):
        return _value(vector[0], "size" if square else "")
    if not literals:
        for name, values in candidates.items():
            if vector == values:
                return name
        return None
    if all(isinstance(v, tuple) for v in vector) and len({len(v) for v in vector}) == 1:
        parts = [_explain([v[j] for v in vector], candidates) for j in range(len(vector[0]))]
        if any(p is None for p in parts):
            return None
        if len(set(parts)) == 1 and square:
            return parts[0]  # PyTorch takes one int for a square size
        return "(" + ", ".join(parts) + ")"
    for name, values in candidates.items():
        if vector == values and all(type(a) is type(b) for a, b in zip(vector, values)):
            return name
    ints = all(isinstance(v, int) and not isinstance(v, bool) for v in vector)
    for name, values in candidates.items():
        if not ints or not all(isinstance(v, int) and not isinstance(v, bool) for v in values):
            continue
        for k in range(2, 9):
            if vector == [k * v for v in values]:
                return f"{k} * {name}"
            if vector == [v // k for v in values]:
                return f"{name} // {k}"
    return None


def _arg_text(value) -> str:
    from ..layers.types import value_text

    return value_text(value)


def _own(path: str):
    from .torch_module import resolve_class

    return resolve_class(path)


def _with_bases(paths: list[str]) -> list:
    """The classes to copy in: each with the bases it takes from the same module (Swin V2's
    attention extends V1's), a base before the classes that extend it."""
    classes = []
    for path in paths:
        cls = _own(path)
        for base in reversed(cls.__mro__):
            if base.__module__ == cls.__module__ and base not in classes:
                classes.append(base)
    return classes

