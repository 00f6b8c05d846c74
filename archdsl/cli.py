"""The `archdsl` command line.

Exit status: 0 success; 1 errors in a spec (each reported at its file:line:col); 2 a wrong
command line; 3 an internal error (a bug in archdsl: rerun with ARCHDSL_DEBUG=1 for the
traceback). `check` and `summary` never import torch, so they start fast.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

from .diagnostics import Diagnostics, SpecError, printable
from .extras import MissingExtra, require
from .files import OutputError, write_output
from .limits import RECURSION_LIMIT

EXIT_OK, EXIT_SPEC, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class UsageError(Exception):
    """A wrong command line: exit status 2."""


# ---- shared helpers ------------------------------------------------------------------------

def print_diagnostics(diagnostics, fmt: str = "text") -> None:
    items = list(diagnostics)
    if fmt == "json":
        print(json.dumps([d.to_json() for d in items], indent=2))
        return
    for d in items:
        print(d.render() + "\n", file=sys.stderr)
    errors = len(items)
    if errors:
        print(f"{errors} error{'s' if errors != 1 else ''}", file=sys.stderr)


def parse_sets(items: list[str] | None) -> dict[str, str]:
    values = {}
    for item in items or []:
        name, sep, value = item.partition("=")
        if not sep or not name.strip().isidentifier() or not value.strip():
            raise UsageError(f"--set needs NAME=VALUE, got `{item}` (for example --set classes=10)")
        values[name.strip()] = value.strip()
    return values


def parse_input(text: str | None):
    if text is None:
        return None
    parts = re.split("[x×]", text.strip())
    if len(parts) not in (1, 3) or not all(p.isdigit() for p in parts):
        raise UsageError(f"--input needs CxHxW (such as 3x32x32) or a number of features, "
                         f"got `{text}`")
    dims = [int(d) for d in parts]
    if min(dims) < 1:
        raise UsageError(f"--input sizes must be positive, got `{text}`")
    return dims


def load_spec(path: str, diagnostics: Diagnostics, allow_use=()):
    """A spec file named on the command line (or a saved model's .pt), or None with its
    diagnostics."""
    from .api import SavedModelError, load

    p = Path(path)
    if not p.exists():
        raise UsageError(f"no such file: {path}")
    if p.is_dir():
        raise UsageError(f"{path} is a folder; give a .arch file")
    try:
        return load(p, allow_use=allow_use or ())
    except SavedModelError as error:
        raise UsageError(str(error)) from None
    except SpecError as error:
        diagnostics.extend(error.diagnostics)
        return None


def pick_network(spec, name: str | None) -> str:
    if name is not None:
        return name
    concrete = spec.concrete_networks()
    if len(concrete) == 1:
        return concrete[0]
    if not concrete:
        raise UsageError(f"{spec.path} defines no network that can be built as it is")
    raise UsageError(f"{spec.path} defines several networks; name one: {', '.join(concrete)}")


def elaborate_one(args, diagnostics: Diagnostics):
    """FILE [NETWORK] --set --input → a Network, or None with diagnostics. FILE may be a
    saved model (.pt): its spec, network and arguments, with --set and --input on top."""
    from .api import SavedModel

    spec = load_spec(args.file, diagnostics, getattr(args, "allow_use", None))
    if spec is None:
        return None
    sets, shape = parse_sets(args.set), parse_input(args.input)
    if isinstance(spec, SavedModel):
        args.saved_model = spec  # its weights and preprocessing, for compile
        saved = spec.network
        spec, name = spec.spec, args.network or saved.name
        sets = {**saved.arguments, **sets}
        shape = shape or saved.input_override
    else:
        name = pick_network(spec, args.network)
    return spec.elaborate(name, sets, shape, diagnostics)


def spec_files(paths: list[str]) -> list[Path]:
    """The spec files named on the command line; folders give every *.arch file in them."""
    from .files import spec_files_under

    files = []
    for path in paths:
        p = Path(path)
        if p.is_dir():
            files += spec_files_under(p)
        elif p.exists() or p.is_symlink():
            files.append(p)  # read, or refused with a reason, like any spec file
        else:
            raise UsageError(f"no such file or folder: {path}")
    return files


# ---- commands ------------------------------------------------------------------------------

def cmd_check(args) -> int:
    files = spec_files(args.paths)
    if not files:
        raise UsageError("no .arch files found in " + ", ".join(args.paths))
    diagnostics = Diagnostics()
    checked = 0
    for counted, count, notes in _check_files(files, tuple(args.allow_use or ())):
        for diagnostic, times in counted:  # in file order, as one process would report them
            diagnostics.add(diagnostic, times)
        checked += count
        for note in notes:
            print(printable(note), file=sys.stderr)
    if args.format == "json":
        print_diagnostics(diagnostics, "json")
    else:
        print_diagnostics(diagnostics)
        if not diagnostics:
            print(f"ok: {checked} network{'s' if checked != 1 else ''} in {len(files)} "
                  f"file{'s' if len(files) != 1 else ''}")
    return EXIT_SPEC if diagnostics else EXIT_OK


# Files are checked in parallel, one process per core (up to this many), when there are at
# least twice as many files as processes: the zoo's 26 files in 0.9 s instead of 1.5 s on two cores. On
# Linux only, where a forked process starts with archdsl already imported; elsewhere, and
# for a few files, one process checks them in turn.
CHECK_PROCESSES = 4


def _check_files(files: list[Path], allow_use: tuple) -> list:
    """(diagnostics with their counts, networks checked, notes) for each file, in order."""
    import os

    processes = min(CHECK_PROCESSES, os.cpu_count() or 1, len(files))
    if processes > 1 and sys.platform == "linux" and len(files) >= 2 * processes:
        import multiprocessing

        with multiprocessing.get_context("fork").Pool(processes, _ignore_interrupts) as pool:
            return pool.starmap(_check_file, [(f, allow_use) for f in files], chunksize=1)
    return [_check_file(f, allow_use) for f in files]


def _ignore_interrupts():
    """In a checking process: Ctrl-C is the parent's to answer (exit status 130, no
    traceback from each process); the pool's processes end with it."""
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _check_file(path: Path, allow_use: tuple):
    from .api import load_all
    from .elaborate.elaborator import WorkBudget

    diagnostics, checked, notes = Diagnostics(), 0, []
    for spec in load_all([path], diagnostics, allow_use):
        budget = WorkBudget()  # one per file: many networks cannot multiply the work allowed
        for name in spec.concrete_networks():
            if spec.layer_graph(name, None, None, diagnostics, budget) is not None:
                checked += 1
        spec.check_recipes(diagnostics)
        for name, needs in spec.templates_without_variants().items():
            notes.append(f"note: {spec.path}: network `{name}` is not checked: it needs "
                         f"arguments ({', '.join(needs)}) and no variant gives them")
    return diagnostics.counted(), checked, notes


def cmd_summary(args) -> int:
    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth must be at least 1, got {args.depth}")
    if args.batch is not None and args.batch < 1:
        raise UsageError(f"--batch must be at least 1, got {args.batch}")
    diagnostics = Diagnostics()
    net = elaborate_one(args, diagnostics)
    if net is None:
        print_diagnostics(diagnostics, args.format)
        return EXIT_SPEC
    optimizer = args.optimizer or _recipe_optimizer(net) or "sgd"
    if args.json:
        summary = net.to_json()
        if args.batch:
            from .passes.memory import PRECISIONS

            summary["memory"] = {p: net.memory(args.batch, p, optimizer).as_dict()
                                 for p in PRECISIONS}
        print(json.dumps(summary, indent=2))
    else:
        print(printable(net.summary(args.params, args.depth)))
        if args.batch:
            from .report import memory_text

            print()
            print(memory_text(net, args.batch, optimizer))
    return EXIT_OK


def _recipe_optimizer(net) -> str | None:
    """The optimizer of the network's recipe, if its spec has one (the memory it needs)."""
    spec = net.spec
    if spec is None or not hasattr(spec, "recipe"):
        return None
    try:
        return spec.recipe(net.name).get("optimizer")
    except Exception:  # a wrong recipe is `check`'s to report; the summary stands
        return None


def cmd_compile(args) -> int:
    diagnostics = Diagnostics()
    net = elaborate_one(args, diagnostics)
    if net is None:
        print_diagnostics(diagnostics, args.format)
        return EXIT_SPEC
    import torch

    if args.dynamic and (not args.output or Path(args.output).suffix != ".onnx"):
        raise UsageError("--dynamic is for an .onnx output (-o NAME.onnx): the compiled "
                         "module, a .py and a .pt take every size the network takes")
    if args.dynamic:  # refused before anything is built, when it is
        from .backends.export import ExportError, dynamic_sizes

        try:
            dynamic_sizes(net)
        except ExportError as error:
            print(printable(f"archdsl compile: error: {error}"), file=sys.stderr)
            return EXIT_USAGE
    if args.weights and args.output and Path(args.output).suffix == ".py":
        raise UsageError("--weights cannot go into a .py file (source code, no weights): "
                         "write .pt or .onnx, or load a state_dict into the exported class")
    model = net.build().eval()
    saved = getattr(args, "saved_model", None)
    preprocess = None
    if args.weights:
        from .backends.weights import WeightsError
        from .train.loop import initialise
        from .train.data import DataError

        try:
            print(initialise(model, args.weights, "--weights", net), file=sys.stderr)
            preprocess = _trained_preprocess(args.weights, net)
        except (DataError, WeightsError) as error:
            print(printable(f"archdsl compile: error: {error}"), file=sys.stderr)
            return EXIT_USAGE
    elif saved is not None:  # a checkpoint or saved model: its own weights
        try:
            model.load_state_dict(saved.state_dict)
        except RuntimeError:
            raise UsageError(f"the weights in {args.file} do not fit `{net.name}` as --set or "
                             "--input change it; compile it without them") from None
        preprocess = saved.preprocess
    from .backends.torch_module import example_inputs

    with torch.no_grad():
        out = model(*example_inputs(net.graph, 1))
    outs = out if isinstance(out, tuple) else (out,)
    got = [tuple(o.shape[1:]) for o in outs]
    expected = [tuple(net.output_shapes[o]) for o in net.graph.main_outputs]
    if got != expected:
        raise RuntimeError(f"compiled model gives {got}, the spec says {expected}")
    if args.output:
        from .backends.export import ExportError

        try:
            print(f"wrote {net.export(args.output, model, preprocess, dynamic=args.dynamic)}")
        except ExportError as error:
            print(printable(f"archdsl compile: error: {error}"), file=sys.stderr)
            return EXIT_USAGE
    else:
        print(model.code, end="")
    sizes = ", ".join("x".join(map(str, s)) for s in net.input_shapes.values())
    print(f"compiled {net.name}: {net.params_total:,} params; forward pass on {sizes} gives "
          f"{', '.join('x'.join(map(str, g)) for g in got)}", file=sys.stderr)
    if args.torchvision:
        return compare_with_torchvision(net, args.torchvision)
    return EXIT_OK


def _trained_preprocess(weights: str, net):
    """The preprocessing a --weights checkpoint records; for a Hugging Face language model,
    its tokenizer (where it has one the network's vocabulary holds); None for torchvision's
    weights and saved models no run trained."""
    from .train.preprocess import Preprocess

    if weights.startswith("torchvision:"):
        return None
    if weights.startswith("huggingface:"):
        from .train.loop import huggingface_record

        if len(net.graph.inputs) > 1 or len(net.graph.main_outputs) > 1:
            return None  # an encoder's weights (BERT's): it writes no text
        record = huggingface_record(weights, net.input_shape)
        if record is None:
            print(printable(f"note: {weights.split(':', 1)[1]} has no tokenizer that the "
                            f"tokenizers package reads, so `archdsl generate` cannot read "
                            f"prompts for it"), file=sys.stderr)
        return record
    from .train import checkpoint

    state = checkpoint.load(Path(weights))  # read once already by initialise: it is valid
    return Preprocess.from_dict(state["preprocess"]) if "preprocess" in state else None


def _option_value(text: str):
    """A torchvision keyword's value as written on the command line: a boolean, an integer,
    a float, or else the string (`num_classes=10`, `width_mult=0.5`, `aux_logits=false`)."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def compare_with_torchvision(net, spec: str) -> int:
    """`compile --torchvision NAME[:key=value,...]`: copy torchvision's weights in, compare."""
    from .backends.weights import (UnknownModel, WeightsError,
                                   compare_with_torchvision_model)

    name, _, options = spec.partition(":")
    kwargs = {}
    for item in filter(None, options.split(",")):
        key, _, value = item.partition("=")
        kwargs[key] = _option_value(value)
    try:
        tensors, diff = compare_with_torchvision_model(net, name, **kwargs)
    except UnknownModel as error:  # a wrong name on the command line
        print(printable(f"archdsl compile: error: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except (WeightsError, TypeError) as error:
        print(printable(f"archdsl compile: {name}: {error}"), file=sys.stderr)
        return EXIT_SPEC
    verdict = "agree" if diff <= 1e-4 else "DIFFER"
    print(f"torchvision's {name}: all {tensors} tensors fit; outputs on a random batch "
          f"{verdict} (max |difference| {diff:.2e})", file=sys.stderr)
    return EXIT_OK if diff <= 1e-4 else EXIT_SPEC


def cmd_draw(args) -> int:
    from .backends.diagram import DiagramError, render

    if args.depth is not None and args.depth < 1:
        raise UsageError(f"--depth must be at least 1, got {args.depth}")
    if args.dpi is not None and not 10 <= args.dpi <= 2400:
        raise UsageError(f"--dpi must be from 10 to 2400, got {args.dpi}")
    diagnostics = Diagnostics()
    net = elaborate_one(args, diagnostics)
    if net is None:
        print_diagnostics(diagnostics, args.format)
        return EXIT_SPEC
    try:
        path = render(net, args.output, depth=args.depth, rankdir=args.rankdir,
                      names=args.names, dpi=args.dpi)
    except DiagramError as error:
        print(printable(f"archdsl draw: error: {error.message}" +
                        (f"\nhelp: {error.help}" if error.help else "")), file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote {path}")
    return EXIT_OK


def cmd_layers(args) -> int:
    from .layers import LAYERS

    kinds = sorted(LAYERS.values(), key=lambda k: (k.family, k.name))
    if args.kinds:
        from .diagnostics import did_you_mean
        from .layers import lookup

        chosen = []
        for name in args.kinds:
            kind = lookup(name)
            if kind is None:
                names = [k.name for k in kinds] + [a for k in kinds for a in k.aliases]
                raise UsageError(f"no layer kind `{name}`; " + (
                    did_you_mean(name, names) or "`archdsl layers` lists them"))
            chosen.append(kind)
        kinds = chosen
        if not args.markdown:
            print(layers_markdown(kinds, title=False), end="")
            return EXIT_OK
    if args.markdown:
        print(layers_markdown(kinds), end="")
        return EXIT_OK
    width = max(len(k.signature) for k in kinds)
    for k in kinds:
        aliases = f"  (also: {', '.join(k.aliases)})" if k.aliases else ""
        print(f"{k.signature:<{width}}  {k.family}{aliases}")
    return EXIT_OK


def layers_markdown(kinds, title: bool = True) -> str:
    """docs/layers.md, generated from the registry: `archdsl layers --markdown`; without the
    title, the entries of some kinds (`archdsl layers conv bn`)."""
    from .layers.registry import _show_default

    out = ["# Layer reference", "",
           "Generated from archdsl's layer registry by `archdsl layers --markdown`; do not edit.",
           "Every layer kind is declared once, in `archdsl/layers/`, with everything below.",
           ""] if title else []
    family = None
    for k in kinds:
        if k.family != family:
            family = k.family
            out += [f"## {family}", ""]
        out += [f"### `{k.signature}`", ""]
        if k.aliases:
            out += ["Also written: " + ", ".join(f"`{a}`" for a in k.aliases) + ".", ""]
        out += [k.doc, ""]
        out += ["Takes: " + _layouts_text(k.accepts) + ".", ""]
        if k.params or k.accepts_act:
            out += ["| parameter | type | default | meaning |", "|---|---|---|---|"]
            for p in k.params:
                default = "required" if p.required else f"`{_show_default(p.default)}`"
                out.append(f"| `{p.name}` | {p.type.description} | {default} | {p.doc} |")
            if k.accepts_act:
                out.append("| `act` | an activation such as `relu` | `none` | "
                           "activation applied after the layer |")
            out.append("")
    return "\n".join(out)


def _layouts_text(accepts) -> str:
    from .shapes import LAYOUT_WORDS

    return ", ".join(LAYOUT_WORDS[layout] for layout in accepts)


def cmd_train(args) -> int:
    from .train.command import run_train

    return run_train(args, elaborate_one, print_diagnostics)


def cmd_eval(args) -> int:
    from .train.command import run_eval

    return run_eval(args)


def cmd_predict(args) -> int:
    from .train.command import run_predict

    return run_predict(args)


def cmd_generate(args) -> int:
    from .train.command import run_generate

    return run_generate(args)


def cmd_zoo(args) -> int:
    from . import zoo

    from .api import ZOO

    paths = args.paths or [str(ZOO)]
    if args.plot:  # before any work: the extension, and matplotlib (the `train` extra)
        if Path(args.plot).suffix.lower() not in zoo.PLOT_FORMATS:
            raise UsageError(f"cannot write {args.plot}: the extension must be "
                             + ", ".join(zoo.PLOT_FORMATS[:-1]) + f" or {zoo.PLOT_FORMATS[-1]}")
        require("matplotlib", "`zoo --plot`")
    files = spec_files(paths)
    if not files:
        raise UsageError("no .arch files found in " + ", ".join(paths))
    diagnostics = Diagnostics()
    rows = zoo.collect(files, diagnostics)
    if args.json:
        print(json.dumps(rows, indent=2))
    elif args.markdown:
        print(printable(zoo.markdown(rows)), end="")
    else:
        print(printable(zoo.table(rows)))
    print_diagnostics(diagnostics)
    if args.plot and not rows:  # (found by benchmarks/cli_fuzz.py)
        print(printable(f"archdsl zoo: nothing to plot: no network of {', '.join(paths)} "
                        f"could be counted; {args.plot} is not written"), file=sys.stderr)
        return EXIT_SPEC if diagnostics else EXIT_USAGE
    if args.plot:
        print(f"wrote {zoo.plot(rows, Path(args.plot))}", file=sys.stderr)
    return EXIT_SPEC if diagnostics else EXIT_OK


def cmd_lsp(args) -> int:
    require("pygls", "the language server (`archdsl lsp`)")
    if sys.stdin.isatty():
        print("archdsl lsp: serving the Language Server Protocol on stdin and stdout; an "
              "editor starts this (docs/editors.md). Ctrl-D or Ctrl-C stops it.",
              file=sys.stderr)
    from .lsp.server import serve

    serve()
    return EXIT_OK


def cmd_fmt(args) -> int:
    from .elaborate.program import read_spec_text
    from .syntax.format import FormatError, format_text

    diagnostics = Diagnostics()
    unformatted = []
    for path in spec_files(args.paths):
        try:
            text = read_spec_text(path)
            formatted = format_text(text, str(path))
        except SpecError as error:
            diagnostics.extend(error.diagnostics)
            continue
        except FormatError as error:
            raise RuntimeError(str(error)) from None
        if formatted != text:
            unformatted.append(path)
        if args.check:
            continue
        if args.write:
            if formatted != text:
                write_output(path, formatted.encode())
        else:
            print(formatted, end="")
    print_diagnostics(diagnostics)
    if args.check:
        for path in unformatted:
            print(f"would reformat {path}")
        return EXIT_SPEC if unformatted or diagnostics else EXIT_OK
    if args.write:
        for path in unformatted:
            print(f"reformatted {path}", file=sys.stderr)
    return EXIT_SPEC if diagnostics else EXIT_OK


# ---- the parser ----------------------------------------------------------------------------

def _add_network_args(p):
    p.add_argument("file", help="a .arch spec file")
    p.add_argument("network", nargs="?", help="which network (needed when the file has several)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE",
                   help="set a network parameter, e.g. --set classes=10 (repeatable)")
    p.add_argument("--input", metavar="CxHxW", help="override the input shape, e.g. 3x32x32")
    p.add_argument("--format", choices=("text", "json"), default="text",
                   help="how to print errors (json: for editors)")
    _add_allow_use(p)


def _add_allow_use(p):
    p.add_argument("--allow-use", action="append", metavar="FOLDER",
                   help="let `use` read .arch files under FOLDER too (by default a spec may use "
                        "only files inside its own folder); repeatable")


def load_plugins(plugins: list[str]) -> None:
    """--plugin: import Python modules (by name or .py path) that register layer kinds. Only
    the command line can do this; a spec never runs Python."""
    import importlib
    import importlib.util

    from .layers import LayerDeclarationError

    for plugin in plugins or []:
        try:
            if plugin.endswith(".py"):
                path = Path(plugin)
                if not path.is_file():
                    raise UsageError(f"--plugin: no such file: {plugin}")
                spec = importlib.util.spec_from_file_location(f"archdsl_plugin_{path.stem}", path)
                module = importlib.util.module_from_spec(spec)
                sys.modules[spec.name] = module
                spec.loader.exec_module(module)
            else:
                importlib.import_module(plugin)
        except LayerDeclarationError as error:
            raise UsageError(f"--plugin {plugin}: {error}") from None
        except ImportError as error:
            raise UsageError(f"--plugin {plugin}: cannot import it ({error})") from None


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="archdsl",
        description="Compile neural-network architecture specs (.arch files): check shapes, "
                    "count parameters and MACs, draw, build PyTorch models, train.",
        epilog="exit status: 0 ok, 1 errors in a spec, 2 wrong command line (or a file that "
               "cannot be read or written), 3 internal error (a bug), 4 training stopped (the "
               "loss diverged), 130 interrupted (Ctrl-C), 143 terminated (SIGTERM); see "
               "docs/errors.md")
    from . import __version__

    parser.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--plugin", action="append", metavar="MODULE",
                        help="import a Python module (a name or a .py file) that registers "
                             "layer kinds (docs/custom_layers.md); repeatable")
    add_parser = sub.add_parser

    def with_common(name, **kwargs):
        p = add_parser(name, parents=[common], **kwargs)
        p.set_defaults(parser=p)  # its own usage for the mistakes found after parsing
        return p

    sub.add_parser = with_common

    p = sub.add_parser("check", help="parse, elaborate and shape-check every network")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".arch files or folders")
    p.add_argument("--format", choices=("text", "json"), default="text")
    _add_allow_use(p)
    p.set_defaults(run=cmd_check)

    p = sub.add_parser("summary", help="a table of layers, shapes, parameters and MACs")
    _add_network_args(p)
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.add_argument("--depth", type=int, metavar="N",
                   help="one row per label or block call N levels deep, with its totals "
                        "(torchinfo's depth); default: every layer")
    p.add_argument("--params", choices=("keras", "torch"), default="keras",
                   help="how to count parameters: keras (default; BatchNorm's running "
                        "statistics are non-trainable parameters, as the seeds print) or torch "
                        "(model.parameters(); buffers apart, as torchinfo and timm print)")
    p.add_argument("--batch", type=int, metavar="N",
                   help="also estimate the memory of one training step at batch N "
                        "(parameters, gradients, optimizer state, activations; fp32 and bf16)")
    p.add_argument("--optimizer", choices=("sgd", "adamw"),
                   help="the optimizer whose state --batch counts (default: the spec's "
                        "recipe's, else sgd with momentum)")
    p.set_defaults(run=cmd_summary)

    p = sub.add_parser("zoo", help="every network in specs: input, parameters, MACs, depth")
    p.add_argument("paths", nargs="*", metavar="PATH", help=".arch files or folders (default: the bundled zoo)")
    p.add_argument("--json", action="store_true", help="print a list of objects")
    p.add_argument("--markdown", action="store_true", help="print the table of docs/zoo.md")
    p.add_argument("--plot", metavar="FILE.png", help="draw MACs against parameters")
    p.set_defaults(run=cmd_zoo)

    p = sub.add_parser("fmt", help="print specs in the canonical layout (comments kept)")
    p.add_argument("paths", nargs="+", metavar="PATH", help=".arch files or folders")
    p.add_argument("--check", action="store_true",
                   help="print nothing but the files that would change; exit 1 if any")
    p.add_argument("-w", "--write", action="store_true", help="rewrite the files in place")
    p.set_defaults(run=cmd_fmt)

    p = sub.add_parser("lsp", help="serve the Language Server Protocol over stdio (for "
                       "editors: docs/editors.md)")
    p.add_argument("--stdio", action="store_true",
                   help="talk over stdin and stdout (the default and only way; accepted "
                        "because editors' clients pass it)")
    p.set_defaults(run=cmd_lsp)

    p = sub.add_parser("layers", help="list the layer kinds and their signatures")
    p.add_argument("kinds", nargs="*", metavar="KIND",
                   help="show these kinds in full: signature, parameters, layouts, counts")
    p.add_argument("--markdown", action="store_true", help="print docs/layers.md")
    p.set_defaults(run=cmd_layers)

    p = sub.add_parser("draw", help="draw the network with Graphviz (.svg, .png, .pdf or .dot)")
    _add_network_args(p)
    p.add_argument("-o", "--output", required=True, metavar="OUT",
                   help="the file to write; its extension picks the format")
    p.add_argument("--depth", type=int, metavar="N",
                   help="collapse everything nested deeper than N levels into one node per block")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB",
                   help="top to bottom (default) or left to right")
    p.add_argument("--names", action="store_true",
                   help="also show each layer's name in the built module (its state_dict keys)")
    p.add_argument("--dpi", type=int, help="the resolution of a .png (Graphviz's default: 96)")
    p.set_defaults(run=cmd_draw)

    p = sub.add_parser("train", help="train a network (see docs/training.md)")
    p.add_argument("file", nargs="?", help="a .arch spec file (not needed with --resume)")
    p.add_argument("network", nargs="?", help="which network (needed when the file has several)")
    p.add_argument("--set", action="append", metavar="NAME=VALUE", help="set a network parameter")
    p.add_argument("--input", metavar="CxHxW", help="override the input shape")
    p.add_argument("--format", choices=("text", "json"), default="text", help=argparse.SUPPRESS)
    _add_allow_use(p)
    g = p.add_argument_group("data")
    g.add_argument("--task", choices=("classify", "segment", "lm", "seq2seq"),
                   help="classify images (a network that outputs a vector of class scores), "
                        "segment them (one that outputs a map), model text (lm: one that "
                        "reads token ids and scores the next token at each position), or "
                        "write a target text for a source text (seq2seq: one of two token "
                        "inputs, such as the Transformer); default: from the inputs and output")
    g.add_argument("--data",
                   help="digits (default, bundled), mnist, fashion-mnist, cifar10, cifar100, "
                        "fake, or imagefolder:PATH; for segmentation shapes (default, "
                        "generated) or masks:PATH; for language models text:PATH (a UTF-8 "
                        "file, one token per character); for seq2seq reverse (default, "
                        "generated) or pairs:PATH (a source, a tab and a target per line)")
    g.add_argument("--data-dir", help="where downloaded data sets live (default: ./data)")
    g.add_argument("--val-split", type=float, help="fraction of the training set held out (0.1)")
    g.add_argument("--augment", dest="augment", action="store_true", default=None,
                   help="random crops (and flips for natural images); on by default")
    g.add_argument("--no-augment", dest="augment", action="store_false")
    g.add_argument("--fake-size", type=int, help="images in the `fake` and `shapes` data "
                   "sets (4096, or as many as 512 MB hold for large inputs), pairs in "
                   "`reverse` (4096)")
    g.add_argument("--mixup", type=float, metavar="ALPHA",
                   help="blend each batch with a shuffled copy (λ ~ Beta(α, α)), labels too; "
                        "0.2 is usual (default off)")
    g.add_argument("--cutmix", type=float, metavar="ALPHA",
                   help="paste a box of a shuffled copy into each image, labels mixed by area; "
                        "1.0 is usual (default off); with --mixup, one of the two per batch")
    g.add_argument("--offline", action="store_true", default=None,
                   help="never download: read data sets from --data-dir only")
    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, help="passes over the training set (10)")
    g.add_argument("--batch-size", type=int, help="images per step (64)")
    g.add_argument("--optimizer", choices=("sgd", "adamw"), help="sgd (default) or adamw")
    g.add_argument("--lr", type=float, help="peak learning rate (0.05 for sgd, 0.001 for adamw)")
    g.add_argument("--momentum", type=float, help="SGD momentum (0.9)")
    g.add_argument("--nesterov", action="store_true", default=None, help="Nesterov momentum")
    g.add_argument("--weight-decay", type=float, help="decoupled from biases and norms (5e-4)")
    g.add_argument("--schedule", choices=("cosine", "step", "onecycle", "constant"),
                   help="learning-rate schedule (cosine)")
    g.add_argument("--warmup-epochs", type=float, help="linear warm-up (0)")
    g.add_argument("--step-epochs", type=int, help="`step` schedule: epochs between decays (30)")
    g.add_argument("--gamma", type=float, help="`step` schedule: decay factor (0.1)")
    g.add_argument("--label-smoothing", type=float, help="(0)")
    g.add_argument("--clip-grad", type=float, help="clip the gradient norm to this")
    g.add_argument("--accumulate", type=int, metavar="N",
                   help="add up the gradients of N batches before each optimizer step (a "
                        "batch N times larger in the memory of one; default 1)")
    g.add_argument("--ema", type=float, metavar="DECAY",
                   help="keep an exponential moving average of the weights (e.g. 0.999), "
                        "validated, tested and saved as the model; off by default")
    g.add_argument("--patience", type=int, metavar="EPOCHS",
                   help="stop early after EPOCHS epochs without a better validation score "
                        "(default 0: never)")
    g.add_argument("--seed", type=int, help="random seed (0)")
    g = p.add_argument_group("speed")
    g.add_argument("--device", choices=("auto", "cpu", "cuda"), help="auto: CUDA when available")
    g.add_argument("--amp", choices=("bf16", "fp16"), help="mixed precision")
    g.add_argument("--channels-last", action="store_true", default=None,
                   help="NHWC memory format (faster convolutions on GPUs)")
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g.add_argument("--nproc", type=int, metavar="N",
                   help="train on N processes on this machine (DDP through torchrun; one per "
                        "GPU, or CPU workers); --batch-size is per process")
    g = p.add_argument_group("runs")
    g.add_argument("--out", help="run directory (default runs/NETWORK-DATA; never overwritten)")
    g.add_argument("--resume", metavar="RUN", help="continue a run from its last checkpoint")
    g.add_argument("--config", metavar="FILE",
                   help="options from a YAML or JSON file (spec, network, set, and any option "
                        "by name); the command line wins; every run saves its own config.yaml")
    g.add_argument("--print-config", action="store_true",
                   help="print the resolved options as a --config file, and train nothing")
    g.add_argument("--init", metavar="WEIGHTS",
                   help="start from these weights: torchvision:NAME (pretrained, downloaded), "
                        "huggingface:NAME|FOLDER (a causal language model's), or an archdsl "
                        "checkpoint")
    g.add_argument("--save-every", type=int, help="also checkpoint every N steps")
    g.add_argument("--save-top", type=int, metavar="K",
                   help="also keep the checkpoints of the K best epochs by validation "
                        "(best-epochE.pt; default 0)")
    g.add_argument("--limit-steps", type=int, help="stop after N steps (smoke tests)")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g.add_argument("--no-tensorboard", action="store_true", help="no TensorBoard event files")
    p.set_defaults(run=cmd_train)

    p = sub.add_parser("eval", help="evaluate a checkpoint: loss, top-1 and top-5")
    p.add_argument("checkpoint", help="a checkpoint (.pt), or a run directory (its best.pt)")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--data", help="the data set (default: the one it was trained on)")
    p.add_argument("--data-dir")
    p.add_argument("--split", choices=("test", "val", "all"), default="test",
                   help="the data set's test split (default), the run's validation split, "
                        "or all of it (train and test: data the model never saw)")
    p.add_argument("--confusion", metavar="FILE.png",
                   help="also draw the confusion matrix (a classifier's; needs matplotlib)")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.add_argument("--offline", action="store_true", help="never download the data set")
    p.set_defaults(run=cmd_eval)

    p = sub.add_parser("predict", help="the most probable classes of images, by a trained "
                                       "checkpoint")
    p.add_argument("checkpoint", help="a checkpoint (.pt), or a run directory (its best.pt)")
    p.add_argument("images", nargs="+", metavar="IMAGE",
                   help="image files, or folders of them (read recursively)")
    p.add_argument("--top-k", type=int, default=5, metavar="K",
                   help="how many classes to show per image (default 5)")
    p.add_argument("--json", action="store_true", help="print the predictions as JSON")
    p.add_argument("--batch-size", type=int, help="images per forward pass (default 256)")
    p.add_argument("--out", metavar="DIR", help="a segmenter's masks go to this new folder "
                   "(default: masks; -2, -3, ... added if it exists)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.set_defaults(run=cmd_predict)

    p = sub.add_parser("generate", help="continue a text with a language model (a checkpoint "
                                        "of `archdsl train --task lm`, or a .pt compiled "
                                        "with a Hugging Face model's weights and tokenizer), "
                                        "or write the target of a source text (--task "
                                        "seq2seq)")
    p.add_argument("checkpoint", help="a checkpoint (.pt), or a run directory (its best.pt)")
    p.add_argument("--prompt", help="the text to continue (default: a new line), or a "
                                    "sequence-to-sequence model's source")
    p.add_argument("--length", type=int, default=500, metavar="N",
                   help="how many tokens to write: characters, or a tokenizer's tokens (default 500)")
    p.add_argument("--temperature", type=float, metavar="T",
                   help="divides the scores before drawing: lower is more predictable, 0 "
                        "always takes the most likely token (default 0.8; a "
                        "sequence-to-sequence model's: 0)")
    p.add_argument("--top-k", type=int, metavar="K",
                   help="draw only among the K most likely tokens (default: all)")
    p.add_argument("--seed", type=int, default=0, help="of the draws (default 0)")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"))
    p.set_defaults(run=cmd_generate)

    p = sub.add_parser("compile", help="build the PyTorch model and run it once; print its "
                                       "forward code, or write it as .py, .onnx or .pt")
    _add_network_args(p)
    p.add_argument("-o", "--output", metavar="OUT",
                   help="write OUT: .py (standalone PyTorch source), .onnx, or .pt (weights and "
                        "spec, read back by archdsl.load)")
    p.add_argument("--dynamic", action="store_true",
                   help="an .onnx output takes every input size the network takes (height "
                        "and width, a sequence's length), not only the spec's")
    p.add_argument("--weights", metavar="WEIGHTS",
                   help="the weights to write: torchvision:NAME (pretrained), "
                        "huggingface:NAME|FOLDER (a causal language model's, or an encoder's such "
                        "as BERT's) or a checkpoint")
    p.add_argument("--torchvision", metavar="NAME[:KEY=VALUE,...]",
                   help="check weight compatibility with a torchvision model: copy its tensors "
                        "in order and compare outputs (e.g. resnet50, googlenet:aux_logits=false)")
    p.set_defaults(run=cmd_compile)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    try:
        args, unknown = parser.parse_known_args(argv)
        if unknown:  # reported with the subcommand's usage, not the top-level one
            getattr(args, "parser", parser).error(f"unrecognized arguments: {' '.join(unknown)}")
    except SystemExit as exit_:
        return int(exit_.code or 0) and EXIT_USAGE
    args.argv = list(sys.argv[1:] if argv is None else argv)
    # the limits of archdsl/limits.py, not Python's default, decide what is nested too deeply
    # (the formatter and the exporters walk syntax trees recursively too)
    sys.setrecursionlimit(max(sys.getrecursionlimit(), RECURSION_LIMIT))
    try:
        load_plugins(getattr(args, "plugin", None))
        return args.run(args)
    except (UsageError, OutputError, MissingExtra) as error:
        print(printable(f"archdsl {args.command}: error: {error}"), file=sys.stderr)
        return EXIT_USAGE
    except SpecError as error:
        print_diagnostics(error.diagnostics, getattr(args, "format", "text"))
        return EXIT_SPEC
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return EXIT_OK
    except Exception as error:  # a bug in archdsl: say so, briefly, and how to see more
        if os.environ.get("ARCHDSL_DEBUG"):
            raise
        print(printable(f"archdsl: internal error: {type(error).__name__}: {error}\n"
                        "this is a bug in archdsl, not in your spec; rerun with ARCHDSL_DEBUG=1 "
                        "to see the traceback, and please report it"), file=sys.stderr)
        return EXIT_INTERNAL


def run() -> None:
    """The console script of installs made before archdsl.console (see there)."""
    from .console import run as console_run

    console_run()

