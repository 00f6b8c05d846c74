"""`archdsl train --config run.yaml`: the options of a run in a file (YAML or JSON), as
Lightning's CLI takes them, and `--print-config`, which writes the resolved options in the same
form. Every run saves its resolved options as `config.yaml`, so `archdsl train --config
runs/x/config.yaml` starts the same run again.

A file holds a mapping: the spec and network (`spec`, `network`, `set`, `input`) and any
training option by its name, with dashes or underscores (`batch-size: 32`). Options given on
the command line win over the file; the file wins over the spec's recipe.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

from .data import DataError
from .options import TrainConfig

# What a file may set besides the training options: what to train
NETWORK_KEYS = ("spec", "network", "set", "input")
OPTIONS = {f.name: f for f in fields(TrainConfig)}


# A run's options fit in a few kilobytes; a larger file is a mistake (or a YAML bomb's start)
MAX_CONFIG_BYTES = 1 << 20


def read(path: str) -> dict:
    """The file's settings, names normalised (`batch-size` -> `batch_size`). DataError says
    what is wrong: a missing file, a syntax error, an unknown name, a value of a wrong type,
    a file over MAX_CONFIG_BYTES."""
    file = Path(path)
    try:
        if file.is_file() and file.stat().st_size > MAX_CONFIG_BYTES:
            raise DataError(f"--config {path}: {file.stat().st_size:,} bytes; a run's options "
                            f"take at most {MAX_CONFIG_BYTES:,}")
        text = file.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        reason = getattr(error, "strerror", None) or str(error)
        raise DataError(f"--config {path}: cannot read it ({reason})") from None
    if file.suffix.lower() == ".json":
        try:
            values = json.loads(text)
        except json.JSONDecodeError as error:
            raise DataError(f"--config {path}:{error.lineno}:{error.colno}: not JSON: "
                            f"{error.msg}") from None
    else:
        from ..extras import MissingExtra, require

        try:
            require("yaml", "YAML run configurations (a .json file needs nothing)")
        except MissingExtra as error:
            raise DataError(str(error)) from None
        import yaml

        try:
            values = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            raise DataError(f"--config {path}{where}: not YAML: "
                            f"{getattr(error, 'problem', None) or error}") from None
    if values is None:
        return {}
    if not isinstance(values, dict):
        raise DataError(f"--config {path}: must hold a mapping of option names to values")
    settings = {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in OPTIONS and name not in NETWORK_KEYS:
            from difflib import get_close_matches

            known = sorted(OPTIONS) + list(NETWORK_KEYS)
            close = get_close_matches(name, known, n=1)
            raise DataError(f"--config {path}: unknown option `{key}`"
                            + (f"; did you mean `{close[0].replace('_', '-')}`?" if close else
                               "; `archdsl train --help` lists them"))
        settings[name] = _typed(path, name, value)
    return settings


def _typed(path: str, name: str, value):
    """YAML reads `1e-3` as text (YAML 1.1): a number written so is taken as one."""
    if name == "set":
        if isinstance(value, dict):
            return [f"{k}={_text(v)}" for k, v in value.items()]
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        raise DataError(f"--config {path}: `set` must map network parameters to values")
    if name in NETWORK_KEYS:
        if not isinstance(value, str):
            raise DataError(f"--config {path}: `{name}` must be text")
        return value
    kind = OPTIONS[name].type
    if "float" in kind and isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
    return value


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def apply(args, settings: dict) -> None:
    """Fill the options the command line left out from a file's settings."""
    for name, value in settings.items():
        key = {"spec": "file"}.get(name, name)
        if getattr(args, key, None) in (None, []):
            setattr(args, key, value)


def resolved(args, config: TrainConfig) -> dict:
    """A run's options in the form of a config file: what to train, then every option."""
    from dataclasses import asdict

    values = {"spec": args.file, "network": args.network}
    if args.set:
        values["set"] = dict(s.split("=", 1) for s in args.set)
    if args.input:
        values["input"] = args.input
    shown = {k: v for k, v in asdict(config).items() if k not in ("progress", "tensorboard")}
    return {**values, **{k.replace("_", "-"): v for k, v in shown.items()}}


def dump(values: dict) -> tuple[str, str]:
    """The text and the file suffix: YAML where PyYAML is installed, JSON otherwise (either
    reads back with --config)."""
    from ..extras import available

    if available("yaml"):
        import yaml

        return yaml.safe_dump(values, sort_keys=False, allow_unicode=True), ".yaml"
    return json.dumps(values, indent=2) + "\n", ".json"
