"""The Python API: load a spec, pick a network, get its graph, counts and PyTorch module.

    spec = archdsl.load("specs/resnet.arch")
    net = spec.network("resnet50", classes=10)
    net.params_total, net.macs, net.output_shapes
    print(net.summary())
    model = net.build()          # torch.nn.Module (imports torch only here)

Argument values may be Python numbers, booleans and lists, or strings holding an expression of
the spec's language (`unit="bottleneck"`, `layers="[2, 2, 2, 2]"`).
"""

from __future__ import annotations

from pathlib import Path

from .diagnostics import Diagnostic, Diagnostics, Source, SpecError, did_you_mean
from .elaborate.elaborator import Elaborator, WorkBudget
from .elaborate.expressions import Scope
from .elaborate.program import FileUnit, Program
from .graph import LayerGraph
from .passes.cost import Totals, count
from .syntax import ast
from .syntax.parser import parse_expr


class Network:
    """One elaborated network: its layer graph and its counts."""

    def __init__(self, graph: LayerGraph, totals: Totals, spec: "Spec | None" = None,
                 arguments: dict | None = None, input_override=None):
        self.graph = graph
        self.totals = totals
        self.spec = spec  # where it came from, and what it was given
        self.arguments = arguments or {}
        self.input_override = input_override

    def __repr__(self) -> str:
        return (f"<Network {self.name}: input {'x'.join(map(str, self.input_shape))}, "
                f"{self.params_total:,} params, {self.macs:,} MACs>")

    @property
    def name(self) -> str:
        return self.graph.name

    @property
    def input_shape(self) -> tuple:
        return self.graph.input_shape

    @property
    def input_shapes(self) -> dict[str, tuple]:
        """Every input's shape by name (`{"input": ...}` for a network's only input)."""
        return self.graph.input_shapes()

    @property
    def output_shapes(self) -> dict[str, tuple]:
        return self.graph.output_shapes()

    @property
    def params(self) -> int:
        return self.totals.params_total

    @property
    def params_total(self) -> int:
        return self.totals.params_total

    @property
    def params_trainable(self) -> int:
        return self.totals.params_trainable

    @property
    def params_nontrainable(self) -> int:
        return self.totals.params_nontrainable

    @property
    def macs(self) -> int:
        return self.totals.macs

    @property
    def flops(self) -> int:
        return self.totals.flops

    def summary(self, params: str = "keras", depth: int | None = None) -> str:
        """The summary table; `params="torch"` counts parameters as PyTorch does, `depth`
        collapses what is nested deeper into one row per block (see report.summary_rows)."""
        from .report import summary_text

        return summary_text(self, params, depth)

    def memory(self, batch: int, precision: str = "fp32", optimizer: str = "sgd"):
        """An estimate of the memory one training step takes at `batch` samples (bytes of
        parameters, gradients, optimizer state, kept activations and the peak;
        passes/memory.py). precision: "fp32" or "bf16" (autocast); optimizer: "sgd" (with
        momentum) or "adamw"."""
        from .passes.memory import estimate

        return estimate(self.graph, batch, precision, optimizer)

    def to_json(self) -> dict:
        from .report import summary_json

        return summary_json(self)

    def draw(self, path=None, *, depth: int | None = None, rankdir: str = "TB",
             names: bool = False, dpi: int | None = None):
        """Write a diagram; the format comes from the extension (.svg .png .pdf .dot). Without
        a path, the diagram itself, which a notebook shows (`net.draw(depth=3)`)."""
        from .backends.diagram import Diagram, render

        if path is None:
            return Diagram(self, depth=depth, rankdir=rankdir, names=names)
        return render(self, path, depth=depth, rankdir=rankdir, names=names, dpi=dpi)

    def _repr_svg_(self):
        """Jupyter shows a network as its diagram, two levels deep (blocks folded: a
        ResNet's stages, a transformer's encoder); net.draw(depth=N) shows more or less."""
        from .backends.diagram import Diagram

        return Diagram(self, depth=2)._repr_svg_()

    def build(self, **options):
        """A torch.nn.Module for this network (see backends/torch_module.py for options)."""
        from .backends.torch_module import build

        return build(self.graph, **options)

    def to_source(self) -> str:
        """Standalone PyTorch source for this network (needs only torch to run)."""
        from .backends.source import to_source

        return to_source(self)

    def export(self, path, model=None, preprocess=None, *, dynamic: bool = False):
        """Write .py, .onnx or .pt (by extension); `model` supplies the weights, `preprocess`
        a trained network's preprocessing (SavedModel.preprocess). `dynamic`: an .onnx takes
        every input size the network takes (height and width, a sequence's length), not only
        the spec's; the batch is dynamic either way."""
        from .backends.export import export

        return export(self, path, model, preprocess, dynamic)


class Spec:
    """A loaded spec file and the files it uses."""

    def __init__(self, program: Program, unit: FileUnit):
        self.program = program
        self.unit = unit

    @property
    def path(self) -> str:
        return self.unit.path

    @property
    def networks(self) -> list[str]:
        """The networks this file defines, in order."""
        return [d.name for d in self.unit.networks()]

    def concrete_networks(self) -> list[str]:
        """The networks that can be built as they are: every parameter has a value."""
        elaborator = Elaborator(Diagnostics())
        names = []
        for name in self.networks:
            try:
                definition, _, variant_args = elaborator.resolve_network(self.unit, name)
            except SpecError:
                names.append(name)  # elaborating it will report why
                continue
            bound = sum(len(args) for args, _ in variant_args)
            required = [p for p in definition.params if p.default is None]
            if not required or bound:
                names.append(name)
        return names

    def recipe(self, name: str) -> dict:
        """The training options the spec recommends for network `name`: its `recipe` line,
        or, for a variant without one, its base network's; {} when there is none. Raises
        SpecError for a recipe that is not right (checks_recipes)."""
        seen = set()
        while name in self.unit.namespace and name not in seen:
            seen.add(name)
            definition, unit = self.unit.namespace[name]
            if name in unit.recipes:
                return self._recipe_values(unit.recipes[name], Scope(unit))
            if not isinstance(definition, ast.Variant):
                break
            name = definition.base
        return {}

    def _recipe_values(self, recipe, scope) -> dict:
        from .train.options import RECIPE_OPTIONS, TrainConfig

        elaborator = Elaborator(Diagnostics())
        values, problems = {}, []
        for arg in recipe.args:
            if arg.name is None:
                problems.append(Diagnostic("E0303", "a recipe's options are given by name",
                                           arg.span, help='write recipe NAME: lr=0.003, '
                                                          'optimizer="adamw"'))
                continue
            if arg.name not in RECIPE_OPTIONS:
                problems.append(Diagnostic(
                    "E0205", f"a recipe has no option `{arg.name}`", arg.span,
                    help=did_you_mean(arg.name, RECIPE_OPTIONS) or
                    "it may set: " + ", ".join(RECIPE_OPTIONS)))
                continue
            try:
                value = elaborator.evaluator.eval(arg.value, scope)
                TrainConfig.from_dict({arg.name: value})  # the option's type and rule
            except SpecError as error:
                problems.extend(error.diagnostics)
                continue
            except ValueError as error:
                problems.append(Diagnostic("E0304", str(error).replace("--", "`", 1).replace(
                    " must", "` must", 1), arg.span))
                continue
            values[arg.name] = value
        if recipe.name not in self.unit.namespace or not isinstance(
                self.unit.namespace[recipe.name][0], (ast.Network, ast.Variant)):
            problems.insert(0, Diagnostic("E0208", f"a recipe for `{recipe.name}`, which is "
                                          "not a network of this file", recipe.name_span))
        if problems:
            raise SpecError(problems)
        return values

    def check_recipes(self, diagnostics: Diagnostics) -> None:
        """Report every problem of this file's own `recipe` lines (for `archdsl check`)."""
        for recipe in self.unit.recipes.values():
            try:
                self._recipe_values(recipe, Scope(self.unit))
            except SpecError as error:
                diagnostics.extend(error.diagnostics)

    def templates_without_variants(self) -> dict[str, list[str]]:
        """Networks with parameters that no default or variant of this file gives:
        name -> the parameters they need."""
        concrete = set(self.concrete_networks())
        bases = {d.base for d in self.unit.networks() if isinstance(d, ast.Variant)}
        return {d.name: [p.name for p in d.params if p.default is None]
                for d in self.unit.networks()
                if d.name not in concrete and d.name not in bases and isinstance(d, ast.Network)}

    def elaborate(self, name: str | None = None, args: dict | None = None,
                  input_shape=None, diagnostics: Diagnostics | None = None,
                  budget: WorkBudget | None = None) -> Network | None:
        """Elaborate and count one network; errors go to `diagnostics` and give None. A
        `budget` shared between calls bounds their elaboration work together."""
        diagnostics = diagnostics if diagnostics is not None else Diagnostics()
        graph = self.layer_graph(name, args, input_shape, diagnostics, budget)
        if graph is None:
            return None
        return Network(graph, count(graph), self, dict(args or {}),
                       list(graph.input_shape) if input_shape is not None else None)

    def layer_graph(self, name: str | None, args: dict | None, input_shape,
                    diagnostics: Diagnostics, budget: WorkBudget | None = None):
        """Elaborate one network into its layer graph, without counting (what `check`
        needs); errors go to `diagnostics` and give None."""
        elaborator = Elaborator(diagnostics, budget)
        if name is None:
            concrete = self.concrete_networks()
            if not concrete:
                diagnostics.add(Diagnostic("E0203", f"{self.path} defines no network to build"))
                return None
            if len(concrete) > 1:  # as the command line: never a silent choice
                shown = ", ".join(concrete[:8]) + (", ..." if len(concrete) > 8 else "")
                diagnostics.add(Diagnostic(
                    "E0203", f"{self.path} defines {len(concrete)} networks ({shown}); name "
                    f"the one to build", help=f'spec.network("{concrete[0]}")'))
                return None
            name = concrete[0]
        try:
            overrides = {k: self._value(v, elaborator) for k, v in (args or {}).items()}
        except SpecError as error:
            diagnostics.extend(error.diagnostics)
            return None
        return elaborator.network(self.unit, name, overrides, input_shape)

    def files(self) -> tuple[dict, str]:
        """The texts of this spec and every file it uses, by path relative to their common
        folder, and the root file's path among them (what a checkpoint carries). Spec text
        given directly is named `_text_.arch`, in the current folder its `use`s start from."""
        import os

        units = {(Path.cwd().resolve() / "_text_.arch" if k == "<string>" else k): u
                 for k, u in self.program.units.items()}
        root = next(k for k, u in units.items() if u is self.unit)
        if all(isinstance(k, str) for k in units):  # names inside a checkpoint already
            return {k: u.module.source.text for k, u in units.items()}, root
        common = Path(os.path.commonpath([str(k.parent) for k in units]))
        texts = {k.relative_to(common).as_posix(): u.module.source.text for k, u in units.items()}
        return texts, root.relative_to(common).as_posix()

    def network(self, name: str | None = None, *, input_shape=None, **args) -> Network:
        """Like `elaborate`, but raises SpecError (with every diagnostic) on errors."""
        diagnostics = Diagnostics()
        net = self.elaborate(name, args, input_shape, diagnostics)
        if net is None:
            raise SpecError(list(diagnostics))
        return net

    def _value(self, value, elaborator):
        """Python values are checked as the language checks its own; strings are expressions
        of the spec's language (bounded like spec text: size, nesting, work)."""
        from .elaborate.values import from_python
        from .limits import MAX_FILE_BYTES, deep_recursion

        if not isinstance(value, str):
            try:
                return from_python(value)
            except ValueError as error:
                raise SpecError(Diagnostic("E0603", f"cannot pass {error} as an argument"))
        if len(value.encode()) > MAX_FILE_BYTES:
            raise SpecError(Diagnostic("E0507", f"an argument of more than "
                                       f"{MAX_FILE_BYTES // 1024} KiB of text"))
        source = Source("<argument>", value)
        expr: ast.Expr = parse_expr(value, source, 1, 1)
        elaborator.current = None
        elaborator.chain = []
        try:
            with deep_recursion():
                return elaborator.evaluator.eval(expr, Scope(self.unit))
        except RecursionError:
            raise SpecError(Diagnostic("E0507", "an argument is nested too deeply to evaluate",
                                       help="split long expressions")) from None


class SavedModel:
    """A network saved with its weights (`compile -o model.pt`, or a training checkpoint).
    `preprocess`: how raw images become its input, as it was trained (train/preprocess.py);
    None for a model no run trained."""

    def __init__(self, spec: Spec, network: Network, state_dict: dict, preprocess=None):
        self.spec = spec
        self.network = network
        self.state_dict = state_dict
        self.preprocess = preprocess
        self._predictor = None

    def build(self, **options):
        """The module, with the saved weights."""
        model = self.network.build(**options)
        model.load_state_dict(self.state_dict)
        return model

    def export(self, path, *, dynamic: bool = False):
        """Write .py, .onnx or .pt (by extension) with the saved weights and preprocessing;
        `dynamic` as Network.export's."""
        return self.network.export(path, self.build().eval(), self.preprocess, dynamic=dynamic)

    def predict(self, images, top_k: int = 5, device="cpu") -> list[list[dict]]:
        """The `top_k` classes of each image, the most probable first, as dicts of `label`,
        `index` and `probability`. `images`: an image file, a folder of them, a list of
        either, or a uint8 batch (N, C, H, W) at the size the training images were held at.
        Raises archdsl.PredictError for images it cannot read, or a model without the
        preprocessing a training run records."""
        from .train.predict import PredictError, Predictor

        if self.preprocess is None:
            raise PredictError("this saved model records no preprocessing (it was not written "
                               "by `archdsl train`), so raw images cannot be fed to it")
        if self.preprocess.task in ("lm", "seq2seq"):
            raise PredictError(
                "this saved model is a language model, which reads text: continue a text "
                "with .generate(prompt)" if self.preprocess.task == "lm" else
                "this saved model is a sequence-to-sequence model, which reads text: write "
                "a source's target with .generate(source)")
        if self._predictor is None or self._predictor.device != _torch_device(device):
            self._predictor = Predictor(self.network, self.state_dict, self.preprocess, device)
        return self._predictor(images, top_k)


    def generate(self, prompt: str, length: int = 500, *, temperature: float | None = None,
                 top_k: int | None = None, seed: int = 0, device="cpu") -> str:
        """A trained language model's continuation of `prompt`: the prompt and `length`
        tokens drawn after it (characters, or its Hugging Face tokenizer's tokens:
        train/text.py), fewer where the model ends its text (its end-of-text token); drawn
        at `temperature` 0.8 unless given. A sequence-to-sequence model's target for the
        source `prompt`, alone: up to its end token, the network's target length or
        `length`, the most likely token each time unless `temperature` is given. Raises
        archdsl.PredictError for a model that is neither, or a prompt with characters it
        never trained on."""
        from .train.data import DataError
        from .train.predict import PredictError
        from .train.text import (check_token_ids, decodes_with_cache, generate, pair_lengths,
                                 reads_whole_context, translate, vocabulary_of)

        if self.preprocess is not None and self.preprocess.task == "seq2seq":
            vocabulary = vocabulary_of(self.preprocess)
            try:
                source = vocabulary.encode(prompt, "the source")
                lengths = pair_lengths(self.network, source, "the source", length)
            except DataError as error:
                raise PredictError(str(error)) from None
            model = self.build(logits=True).to(device)
            return vocabulary.decode(translate(
                model, source, lengths, len(vocabulary), temperature=temperature or 0.0,
                top_k=top_k, seed=seed, device=device))
        if self.preprocess is None or self.preprocess.task != "lm":
            raise PredictError("this saved model is not a language model (a checkpoint of "
                               "`archdsl train --task lm`, or a Hugging Face model's weights "
                               "with its tokenizer)")
        try:
            vocabulary = vocabulary_of(self.preprocess)
            ids = vocabulary.encode(prompt, "the prompt")
            check_token_ids(ids, self.network, "the prompt")
        except DataError as error:
            raise PredictError(str(error)) from None
        if not ids:
            raise PredictError("the prompt is empty: give at least one character to continue")
        model = self.build(logits=True).to(device)
        return vocabulary.decode(generate(
            model, ids, length, self.network.input_shape[0], len(vocabulary),
            padded=reads_whole_context(self.network), cached=decodes_with_cache(self.network),
            temperature=0.8 if temperature is None else temperature, top_k=top_k,
            seed=seed, device=device, stop=self.preprocess.stop))


def _torch_device(name):
    import torch

    return torch.device(name)


def spec_from_files(files: dict, root: str, where: str = "the checkpoint") -> Spec:
    """A spec from the texts a checkpoint carries (by name, relative to a common folder). They
    stay in memory: nothing is written, whatever the names say (files.MemoryFiles)."""
    from .files import MemoryFiles

    try:
        program = Program(MemoryFiles(files, where))
    except SpecError as error:  # the checkpoint itself is unusable
        raise SavedModelError(error.diagnostics) from None
    try:
        unit = program.load_file(root)
    except SpecError as error:
        program.diagnostics.extend(error.diagnostics)
        unit = None
    if program.diagnostics or unit is None:
        raise SpecError(list(program.diagnostics))
    return Spec(program, unit)


class SavedModelError(SpecError):
    """A checkpoint or saved model that cannot be used at all (unreadable, damaged, or with
    unsafe spec file names), as opposed to errors in the spec it carries."""


def load_saved(path: str | Path) -> SavedModel:
    from .train import checkpoint

    try:
        state = checkpoint.load(Path(path))
    except checkpoint.CheckpointError as error:
        raise SavedModelError(Diagnostic("E0206", str(error))) from None
    spec = spec_from_files(state["spec_files"], state["spec_name"], f"`{Path(path).name}`")
    net = spec.network(state["network"], input_shape=state["input_shape"], **state["args"])
    preprocess = None
    if "preprocess" in state:  # checked by checkpoint.load
        from .train.preprocess import Preprocess

        preprocess = Preprocess.from_dict(state["preprocess"])
    return SavedModel(spec, net, state["model"], preprocess)


def load(path_or_text: str | Path, *, allow_use=()) -> Spec:
    """Load a spec from a .arch file, or from spec text. Raises SpecError on errors.
    A .pt file (from `compile -o` or training) gives a SavedModel instead.

    A spec's `use`s may read .arch files inside its own folder; `allow_use` names more
    folders they may read from (docs/security.md)."""
    if str(path_or_text).endswith(".pt") and "\n" not in str(path_or_text):
        return load_saved(path_or_text)
    from .files import DiskFiles

    program = Program(DiskFiles(allow_use))
    text = str(path_or_text)
    if isinstance(path_or_text, Path) or ("\n" not in text and text.endswith(".arch")):
        try:
            unit = program.load_file(path_or_text)
        except SpecError as error:
            program.diagnostics.extend(error.diagnostics)
            unit = None
    else:
        unit = program.load_text(text)
    if program.diagnostics or unit is None:
        raise SpecError(list(program.diagnostics))
    return Spec(program, unit)


def load_all(paths, diagnostics: Diagnostics, allow_use=()) -> list[Spec]:
    """Load several spec files; a file with errors adds them to `diagnostics` and is skipped."""
    specs = []
    for path in paths:
        try:
            specs.append(load(Path(path), allow_use=allow_use))
        except SpecError as error:
            diagnostics.extend(error.diagnostics)
    return specs


# ---- the bundled zoo -----------------------------------------------------------------------

ZOO = Path(__file__).resolve().parent / "specs"


class UnknownModel(ValueError):
    pass


_zoo_index: dict[str, Path] | None = None


def list_models() -> list[str]:
    """The networks of the bundled zoo that can be built as they are."""
    return sorted(_index())


def _index() -> dict[str, Path]:
    global _zoo_index
    if _zoo_index is None:
        _zoo_index = {}
        for path in sorted(ZOO.glob("*.arch")):
            for name in load(path).concrete_networks():
                _zoo_index.setdefault(name, path)
    return _zoo_index


def zoo_network(name: str, *, input_shape=None, **args) -> Network:
    """A network of the bundled zoo, elaborated: `zoo_network("resnet50", classes=10)`."""
    from .diagnostics import did_you_mean

    index = _index()
    if name not in index:
        hint = did_you_mean(name, index) or "archdsl.list_models() lists them"
        raise UnknownModel(f"the zoo has no network `{name}`; {hint}")
    return load(index[name]).network(name, input_shape=input_shape, **args)


def create_model(name: str, *, input_shape=None, logits: bool = False, **args):
    """A torch.nn.Module from the bundled zoo, like timm.create_model:
    `create_model("resnet50", classes=10)`. logits=True leaves out a final softmax."""
    return zoo_network(name, input_shape=input_shape, **args).build(logits=logits)
