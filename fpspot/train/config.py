"""Training configuration: dataclasses, YAML files and command-line overrides of any (nested) field.

A configuration is a dataclass whose fields are plain types (``bool``, ``int``, ``float``, ``str``, lists,
tuples, ``dict[str, ...]``, ``Literal``, ``Optional``) or nested configuration dataclasses. The same
functions serve the trainer's :class:`TrainConfig` and the recipes' top-level configs (which nest it as
``train``):

* :func:`config_from_dict` / :func:`load_config` build a config from a mapping / a YAML file, rejecting
  unknown keys (the error names the file and the dotted key, and suggests the closest known one) and values
  of the wrong type;
* :func:`apply_overrides` sets fields from ``"a.b=value"`` assignments, values written in YAML
  (``1e-3``, ``true``, ``null``, ``[10, 20]``; a list may also be written ``10,20``);
* :func:`parse_config` is the command line of a recipe, in the manner of litgpt::

      python recipes/taad.py --config recipes/configs/taad.yaml --train.lr_head=1e-3 train.epochs=5 \\
          --train.decay_epochs "[3, 4]"

  ``--config FILE`` (or ``-c FILE``) gives the config file (else the recipe's default; a file may start
  from another with ``base: OTHER.yaml`` and set only what differs), each further
  argument overrides one field (``--key=value``, ``--key value`` or ``key=value``), ``--print-config``
  prints the resolved YAML and exits, ``--help`` lists every field with its type and default;
* :func:`save_config` writes the resolved config next to a run (atomically), so the run can be repeated.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import sys
import types
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, Union

import yaml

from fpspot.utils.atomic import atomic_open

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration file or override is invalid; the message names the source and the dotted key."""


# ---------------------------------------------------------------------------------------- the trainer


#: The learning rates the FOOTPASS paper states for TAAD and TAAD+GNN (spec §2.3, §3.4). The defaults of
#: :class:`TrainConfig` use them with a correct linear warmup.
PAPER_LRS: dict[str, float] = {"lr_head": 1e-3, "lr_backbone": 5e-5}

#: The learning rates the released baseline code actually trained with: its warmup multiplier is only
#: stepped while the *batch* counter is <= 50, so it freezes at 7/50 = 0.14 (TAAD, accumulation 8) or
#: 6/50 = 0.12 (TAAD+GNN, accumulation 10) of the nominal rates (spec §2.3, §3.4, §8.3). Use these with
#: ``warmup_steps: 0`` to reproduce the released models' effective optimisation.
AS_CODED_LRS: dict[str, dict[str, float]] = {
    "taad": {"lr_head": 1.4e-4, "lr_backbone": 7e-6},
    "taad_gnn": {"lr_head": 1.2e-4, "lr_backbone": 6e-6},
}


@dataclass
class TrainConfig:
    """Options of :class:`fpspot.train.trainer.Trainer` (defaults: the TAAD baseline, spec §2.3, with the
    paper's learning rates and a correct warmup; see ``PAPER_LRS`` / ``AS_CODED_LRS``).

    Schedule and optimisation
        ``epochs``; ``batch_size`` clips per process and micro-batch; ``grad_accum`` micro-batches per
        optimizer step (effective batch = ``batch_size * grad_accum * processes``); AdamW with
        ``lr_head`` (every parameter outside ``model.backbone``) and ``lr_backbone``, ``weight_decay`` on
        weight matrices and kernels only (biases, norm parameters and every other 1-D parameter get 0);
        ``warmup_steps`` optimizer steps of linear warmup, factor ``min(1, (step + 1) / warmup_steps)``
        (0: none); the rate is multiplied by ``decay_gamma`` from the start of each 0-based epoch listed in
        ``decay_epochs`` (``[10, 20]``: after 10 and after 20 completed epochs, as the baseline);
        ``freeze_backbone_epochs`` first epochs with the backbone run without gradients (its BatchNorm
        statistics still update); ``clip_grad_norm`` maximum global gradient norm (0: no clipping; the
        baseline does not clip); ``max_steps`` stops after that many optimizer steps (0: no limit);
        ``ema_decay``: keep an exponential moving average of the weights (decay warmed up as
        ``min(ema_decay, (1 + n) / (10 + n))`` after ``n`` steps; :mod:`fpspot.train.ema`) and evaluate and
        export it instead of the trained weights (0: off; not with DeepSpeed ZeRO-3).
    Precision and memory
        ``mixed_precision``: ``"auto"`` (the launcher's ``fp16``/``bf16`` if it sets one, else bf16 on a
        CUDA device that supports it, fp16 on other CUDA devices, full fp32 on CPU), ``"no"``, ``"fp16"``,
        ``"bf16"``; ``grad_checkpointing``: ``true``/``false`` switches the model's activation
        checkpointing, ``null`` leaves it as the model was built.
    Loss
        ``class_weights``: scheme of :mod:`fpspot.train.class_weights` the recipe computes from the shard
        manifest (``none``, ``baseline``, ``inv_freq``, ``sqrt_inv_freq``).
    Runs
        ``run_dir``: TensorBoard logs (``tensorboard/``), checkpoints (``checkpoints/step_XXXXXX``), the
        best model (``best/``) and the last one (``final/``); ``resume``: ``"auto"`` (the latest complete
        checkpoint of ``run_dir`` if any), ``"none"`` (start afresh; refused when ``run_dir`` already has
        checkpoints) or the path of a checkpoint folder; ``checkpoint_every`` optimizer steps between
        checkpoints (0: only at the end of each epoch, which always saves one) keeping the last
        ``checkpoint_keep``; ``eval_every`` epochs between validations (0: only after the last epoch);
        ``best_metric`` key of the evaluation results that picks the best model, ``best_mode`` ``"max"``
        or ``"min"``; ``log_every`` optimizer steps between TensorBoard points; ``seed``.
    """

    epochs: int = 20
    batch_size: int = 6
    grad_accum: int = 8
    lr_head: float = PAPER_LRS["lr_head"]
    lr_backbone: float = PAPER_LRS["lr_backbone"]
    weight_decay: float = 1e-4
    warmup_steps: int = 50
    decay_epochs: list[int] = field(default_factory=lambda: [10, 20])
    decay_gamma: float = 0.1
    freeze_backbone_epochs: int = 2
    clip_grad_norm: float = 0.0
    max_steps: int = 0
    ema_decay: float = 0.0
    mixed_precision: Literal["auto", "no", "fp16", "bf16"] = "auto"
    grad_checkpointing: bool | None = None
    class_weights: Literal["none", "baseline", "inv_freq", "sqrt_inv_freq"] = "baseline"
    run_dir: str = "runs/default"
    resume: str = "auto"
    checkpoint_every: int = 500
    checkpoint_keep: int = 2
    eval_every: int = 1
    best_metric: str = "macro_f1"
    best_mode: Literal["max", "min"] = "max"
    log_every: int = 10
    seed: int = 0

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise :class:`ConfigError` for values out of range (names the field)."""
        positive = ("epochs", "batch_size", "grad_accum", "checkpoint_keep", "log_every")
        non_negative = ("warmup_steps", "freeze_backbone_epochs", "max_steps", "checkpoint_every",
                        "eval_every")
        for name in positive:
            if getattr(self, name) < 1:
                raise ConfigError(f"{name}: must be >= 1, got {getattr(self, name)}")
        for name in non_negative + ("lr_head", "lr_backbone", "weight_decay", "clip_grad_norm"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{name}: must be >= 0, got {getattr(self, name)}")
        if not 0 <= self.ema_decay < 1:
            raise ConfigError(f"ema_decay: must be in [0, 1) (0 = no weight average), got {self.ema_decay}")
        if not 0 < self.decay_gamma <= 1:
            raise ConfigError(f"decay_gamma: must be in (0, 1], got {self.decay_gamma}")
        if any(e < 0 for e in self.decay_epochs):
            raise ConfigError(f"decay_epochs: epochs are 0-based indices >= 0, got {self.decay_epochs}")


# -------------------------------------------------------------------------------- dict <-> dataclass


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is None:
        return getattr(tp, "__name__", repr(tp))
    args = typing.get_args(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in args)
    if origin in (Union, types.UnionType):
        return " | ".join("null" if a is type(None) else _type_name(a) for a in args)
    return f"{getattr(origin, '__name__', repr(origin))}[{', '.join(_type_name(a) for a in args)}]"


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _suggest(key: str, known: Sequence[str]) -> str:
    close = difflib.get_close_matches(key, list(known), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """``value`` checked against the annotation ``tp`` (and converted where lossless); ``where`` names it."""
    if tp is Any:
        return value
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if dataclasses.is_dataclass(tp):
        if isinstance(value, tp):
            return value
        return _from_mapping(tp, value, where)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(value, arg, where)
            except ConfigError as err:
                errors.append(str(err))
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        if isinstance(value, bool):  # YAML 1.1 reads a bare no / off / yes / on as a boolean
            spellings = ("yes", "on", "true") if value else ("no", "off", "false")
            named = [a for a in args if isinstance(a, str) and a.lower() in spellings]
            if len(named) == 1:
                return named[0]
        raise ConfigError(f"{where}: expected one of {', '.join(repr(a) for a in args)}, got {value!r}")
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "yes", "no", "on", "off"):
            return value.lower() in ("true", "yes", "on")
        raise ConfigError(f"{where}: expected true or false, got {value!r}")
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                value = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise ConfigError(f"{where}: expected an integer, got {value!r}") from None
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{where}: expected an integer, got {value!r}")
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)
        raise ConfigError(f"{where}: expected a string, got {value!r}")
    if origin in (list, tuple, Sequence) or tp in (list, tuple):
        if isinstance(value, str):  # "10,20" on a command line
            value = [v.strip() for v in value.split(",") if v.strip()] if value.strip() else []
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and args and not (len(args) == 2 and args[1] is Ellipsis):
            if len(value) != len(args):
                raise ConfigError(f"{where}: expected {len(args)} values, got {len(value)}")
            return tuple(_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
        item = args[0] if args else Any
        items = [_coerce(v, item, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple or tp is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if not isinstance(value, Mapping):
            raise ConfigError(f"{where}: expected a mapping, got {value!r}")
        key_tp, val_tp = args if args else (Any, Any)
        return {_coerce(k, key_tp, where): _coerce(v, val_tp, f"{where}.{k}") for k, v in value.items()}
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise ConfigError(f"{where}: unsupported field type {_type_name(tp)}")


def _merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in update.items():
        nested = isinstance(value, Mapping) and isinstance(out.get(key), Mapping)
        out[key] = _merge(out[key], value) if nested else value
    return out


def _onto_default(f: dataclasses.Field, value: Any) -> Any:
    """A partial mapping for a nested-config field is laid over that field's default (so a recipe's own
    defaults for ``train`` survive a file that sets only ``train.epochs``); other values pass."""
    if not isinstance(value, Mapping):
        return value
    if f.default_factory is not dataclasses.MISSING:
        default = f.default_factory()
    elif f.default is not dataclasses.MISSING:
        default = f.default
    else:
        return value
    if not (dataclasses.is_dataclass(default) and not isinstance(default, type)):
        return value
    return _merge(config_to_dict(default), value)


def _from_mapping(cls: type[T], data: Any, where: str) -> T:
    prefix = f"{where}." if where and not where.endswith(":") else where + (" " if where else "")
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{where}: expected a mapping of {cls.__name__} fields, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    hints = _hints(cls)
    unknown = [k for k in data if k not in fields]
    if unknown:
        raise ConfigError(f"{prefix}{unknown[0]}: unknown key{_suggest(str(unknown[0]), list(fields))} "
                          f"(known keys: {', '.join(fields)})")
    kwargs = {name: _coerce(_onto_default(fields[name], value), hints[name], f"{prefix}{name}")
              for name, value in data.items()}
    missing = [n for n, f in fields.items() if n not in kwargs and f.default is dataclasses.MISSING
               and f.default_factory is dataclasses.MISSING]
    if missing:
        raise ConfigError(f"{prefix}{missing[0]}: required key missing")
    try:
        return cls(**kwargs)
    except ConfigError as err:
        raise ConfigError(f"{prefix}{err}") from None
    except (TypeError, ValueError) as err:
        raise ConfigError(f"{where or cls.__name__}: {err}") from None


def config_from_dict(cls: type[T], data: Mapping[str, Any] | None, source: str = "") -> T:
    """A ``cls`` config from a (nested) mapping; unknown keys and wrong types raise :class:`ConfigError`
    naming ``source`` (e.g. the file) and the dotted key."""
    where = f"{source}:" if source else ""
    return _from_mapping(cls, data, where)


def config_to_dict(config: Any) -> Any:
    """A config as plain YAML-able data (nested dicts, lists, scalars)."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        return {f.name: config_to_dict(getattr(config, f.name)) for f in dataclasses.fields(config)}
    if isinstance(config, Mapping):
        return {str(k): config_to_dict(v) for k, v in config.items()}
    if isinstance(config, (list, tuple)):
        return [config_to_dict(v) for v in config]
    if isinstance(config, Path):
        return str(config)
    return config


def read_config_file(path: str | os.PathLike, _seen: tuple[Path, ...] = ()) -> Any:
    """A YAML config file as data. A top-level ``base: OTHER.yaml`` (relative to this file) is read first and
    this file's keys are merged over it (nested mappings key by key; lists and scalars replace)."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"file {str(path)!r}: no such file") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"file {str(path)!r}: not valid YAML ({err})") from None
    if not (isinstance(data, Mapping) and "base" in data):
        return data
    base = data["base"]
    if not isinstance(base, str) or not base:
        raise ConfigError(f"file {str(path)!r}: base: expected the path of another config file, got {base!r}")
    base_path = (path.parent / base).resolve()
    if base_path in _seen or base_path == path.resolve():
        raise ConfigError(f"file {str(path)!r}: base: {base!r} includes itself")
    parent = read_config_file(base_path, (*_seen, path.resolve()))
    if not isinstance(parent, Mapping):
        raise ConfigError(f"file {str(base_path)!r} (base of {str(path)!r}): expected a mapping of config keys")
    return _merge(parent, {k: v for k, v in data.items() if k != "base"})


def load_config(cls: type[T], path: str | os.PathLike | None = None,
                overrides: Sequence[str] | Mapping[str, Any] = ()) -> T:
    """``cls`` from the YAML file ``path`` (``None``: the defaults), then ``overrides`` applied."""
    config = cls() if path is None else config_from_dict(cls, read_config_file(path), f"file {str(path)!r}")
    return apply_overrides(config, overrides)


def save_config(config: Any, path: str | os.PathLike, header: str | None = None) -> Path:
    """Write ``config`` as YAML, atomically (after ``header`` as comment lines if given)."""
    with atomic_open(path) as handle:
        if header:
            handle.write("".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()))
        yaml.safe_dump(config_to_dict(config), handle, sort_keys=False, default_flow_style=None, width=110)
    return Path(path)


# ---------------------------------------------------------------------------------------- overrides


def _field_type(cls: type, dotted: str, source: str) -> Any:
    """The annotation of the dotted field ``dotted`` of ``cls`` (through nested dataclasses and dicts)."""
    tp: Any = cls
    walked: list[str] = []
    for part in dotted.split("."):
        while typing.get_origin(tp) in (Union, types.UnionType):  # Optional[Nested] -> Nested
            non_none = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = non_none[0] if len(non_none) == 1 else Any
        where = ".".join(walked + [part])
        if dataclasses.is_dataclass(tp):
            names = [f.name for f in dataclasses.fields(tp) if f.init]
            if part not in names:
                raise ConfigError(f"{source}: {where}: unknown key{_suggest(part, names)} "
                                  f"(known keys of {'.'.join(walked) or 'the config'}: {', '.join(names)})")
            tp = _hints(tp)[part]
        elif typing.get_origin(tp) in (dict, Mapping) or tp is dict:
            args = typing.get_args(tp)
            tp = args[1] if args else Any
        elif tp is Any:
            pass
        else:
            raise ConfigError(f"{source}: {where}: {'.'.join(walked)} is of type {_type_name(tp)}, "
                              "not a section")
        walked.append(part)
    return tp


def _parse_value(text: Any, tp: Any) -> Any:
    """A command-line value: raw text for string fields, YAML for the rest."""
    if not isinstance(text, str):
        return text
    if tp is str:
        return text
    try:
        return yaml.safe_load(text) if text != "" else ""
    except yaml.YAMLError:
        return text


def _split_assignment(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep:
        raise ConfigError(f"command line: {item!r}: expected key=value")
    return key.removeprefix("--").strip(), value


def apply_overrides(config: T, overrides: Sequence[str] | Mapping[str, Any],
                    source: str = "command line") -> T:
    """A copy of ``config`` with the dotted fields of ``overrides`` set.

    ``overrides``: ``["train.lr_head=1e-3", "--train.epochs=5"]`` or ``{"train.lr_head": 1e-3}``; string
    values are read as YAML (except for string fields, which take the text as is).
    """
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    else:
        items = [_split_assignment(o) for o in overrides]
    if not items:
        return config
    data = config_to_dict(config)
    for key, text in items:
        if not key:
            raise ConfigError(f"{source}: empty key in an override")
        tp = _field_type(type(config), key, source)
        value = _coerce(_parse_value(text, tp), tp, f"{source}: {key}")
        node = data
        parts = key.split(".")
        for part in parts[:-1]:
            if node.get(part) is None:
                node[part] = {}
            node = node[part]
        node[parts[-1]] = config_to_dict(value)
    return config_from_dict(type(config), data, source)


# ------------------------------------------------------------------------------------- command line


def describe_fields(cls: type, prefix: str = "", values: Any = None) -> list[tuple[str, str, Any]]:
    """``(dotted name, type, value)`` of every leaf field of ``cls`` (nested dataclasses expanded, an optional
    section that is ``null`` too, with its own defaults), the values taken from ``values`` (an instance of
    ``cls``; default: ``cls()``)."""
    rows: list[tuple[str, str, Any]] = []
    values = cls() if values is None else values
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        value, hint = getattr(values, f.name), hints[f.name]
        section = _optional_section(hint) if value is None else None
        if dataclasses.is_dataclass(value):
            rows.extend(describe_fields(type(value), f"{prefix}{f.name}.", value))
        elif section is not None:
            rows.append((f"{prefix}{f.name}", f"{section.__name__} | null", None))
            rows.extend(describe_fields(section, f"{prefix}{f.name}."))
        else:
            rows.append((f"{prefix}{f.name}", _type_name(hint), config_to_dict(value)))
    return rows


def _optional_section(hint: Any) -> type | None:
    """The dataclass of an ``Optional[Section]`` annotation, else ``None``."""
    if typing.get_origin(hint) not in (Union, types.UnionType):
        return None
    non_none = [a for a in typing.get_args(hint) if a is not type(None)]
    return non_none[0] if len(non_none) == 1 and dataclasses.is_dataclass(non_none[0]) else None


def _usage(cls: type, prog: str, description: str | None, default_config: str | os.PathLike | None) -> str:
    lines = [f"usage: {prog} [--config FILE] [--print-config] [--KEY=VALUE ...]", ""]
    if description:
        lines += [description, ""]
    base = default_config or "the built-in defaults"
    lines.append(f"  --config FILE     base YAML config (default: {base})")
    lines.append("  --print-config    print the resolved config as YAML and exit")
    lines.append("  --KEY=VALUE       set one field (also '--KEY VALUE' or 'KEY=VALUE'); values are YAML")
    values, source = None, "the code's defaults"
    if default_config:
        try:
            values, source = load_config(cls, default_config), f"the values of {default_config}"
        except (ConfigError, OSError):
            pass  # the error shows when the config is read
    lines += ["", f"fields ({source}; a null section's fields show its code defaults):"]
    rows = describe_fields(cls, values=values)
    width = max((len(r[0]) for r in rows), default=0)
    for name, type_name, default in rows:
        lines.append(f"  --{name.ljust(width)}  {type_name}  (default: {default!r})")
    return "\n".join(lines)


def parse_config(cls: type[T], argv: Sequence[str] | None = None, *,
                 default_config: str | os.PathLike | None = None, prog: str | None = None,
                 description: str | None = None, exit_on_error: bool = True) -> T:
    """The command line of a recipe: ``[--config FILE] [--print-config] [--key=value | --key value |
    key=value]...``.

    Errors print ``prog: error: ...`` and exit with status 2 (``exit_on_error``) or raise
    :class:`ConfigError`.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    prog = prog or Path(sys.argv[0]).name
    config_path: str | os.PathLike | None = default_config
    print_config = False
    overrides: list[str] = []
    try:
        i = 0
        while i < len(argv):
            arg = argv[i]
            if arg in ("-h", "--help"):
                print(_usage(cls, prog, description, default_config))
                raise SystemExit(0)
            if arg == "--print-config":
                print_config = True
            elif arg in ("-c", "--config"):
                if i + 1 >= len(argv):
                    raise ConfigError(f"command line: {arg} needs a file")
                config_path = argv[i + 1]
                i += 1
            elif arg.startswith("--config="):
                config_path = arg.split("=", 1)[1]
            elif "=" in arg:
                overrides.append(arg)
            elif arg.startswith("--") and len(arg) > 2:
                if i + 1 >= len(argv):
                    raise ConfigError(f"command line: {arg} needs a value")
                overrides.append(f"{arg}={argv[i + 1]}")
                i += 1
            else:
                raise ConfigError(f"command line: unexpected argument {arg!r} (use --key=value)")
            i += 1
        config = load_config(cls, config_path, overrides)
    except ConfigError as err:
        if not exit_on_error:
            raise
        print(f"{prog}: error: {err}", file=sys.stderr)
        raise SystemExit(2) from None
    if print_config:
        text = yaml.safe_dump(config_to_dict(config), sort_keys=False, default_flow_style=None, width=110)
        print(text, end="")
        raise SystemExit(0)
    return config


def flat_config(config: Any, prefix: str = "") -> dict[str, int | float | str | bool]:
    """``{"train.lr_head": 0.001, ...}``: scalars kept, lists and ``None`` as text (TensorBoard hparams)."""
    out: dict[str, int | float | str | bool] = {}
    data = config_to_dict(config)
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flat_config(value, f"{name}."))
        elif isinstance(value, (bool, int, float, str)):
            out[name] = value
        else:
            out[name] = str(value)
    return out


__all__ = ["AS_CODED_LRS", "ConfigError", "PAPER_LRS", "TrainConfig", "apply_overrides", "config_from_dict",
           "config_to_dict", "describe_fields", "flat_config", "load_config", "parse_config", "read_config_file",
           "save_config"]
