"""Registry of fpspot models: ``build(name, **config)``, ``list_models()``, ``load_model(dir)``.

Model modules register their class with :func:`register_model`; they are imported on first use of the
registry (``_MODEL_MODULES``), so ``import fpspot.models`` stays light.
"""

from __future__ import annotations

import importlib
import json
import os
from pathlib import Path
from typing import Any

import torch

from fpspot.models.base import CONFIG_NAME, WEIGHTS_NAME, SpotterModel

#: modules that register models when imported
_MODEL_MODULES = ("fpspot.models.taad", "fpspot.models.taad_gnn", "fpspot.models.dst", "fpspot.models.event_dst")
_REGISTRY: dict[str, type[SpotterModel]] = {}
_IMPORTED = False


class ModelLoadError(ValueError):
    """A saved model cannot be loaded; the message names the folder and what does not match."""


def register_model(name: str):
    """Class decorator: register a :class:`SpotterModel` subclass under ``name``."""

    def add(cls: type[SpotterModel]) -> type[SpotterModel]:
        if name in _REGISTRY and _REGISTRY[name] is not cls:
            raise ValueError(f"model {name!r} is already registered by {_REGISTRY[name].__qualname__}")
        cls.model_name = name
        _REGISTRY[name] = cls
        return cls

    return add


def _import_models() -> None:
    global _IMPORTED
    if _IMPORTED:
        return
    for module in _MODEL_MODULES:
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as err:
            if err.name != module:  # a missing dependency inside an existing module is a real error
                raise
    _IMPORTED = True


def list_models() -> list[str]:
    """Names of the registered models."""
    _import_models()
    return sorted(_REGISTRY)


def model_class(name: str) -> type[SpotterModel]:
    _import_models()
    if name not in _REGISTRY:
        raise KeyError(f"unknown model {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}")
    return _REGISTRY[name]


def build(name: str, **config: Any) -> SpotterModel:
    """A new model ``name`` built from ``config`` (keyword arguments of its class).

    A key the model does not take raises ``TypeError`` naming the model, the key and the likely intended key
    (:meth:`~fpspot.models.base.SpotterModel.check_config`).
    """
    cls = model_class(name)
    cls.check_config(config)
    return cls(**config)


def _read_config(directory: Path) -> dict:
    path = directory / CONFIG_NAME
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{directory}: no {CONFIG_NAME} (not a folder written by save_pretrained)") from None
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict) or "model" not in obj or not isinstance(obj.get("config", {}), dict):
        raise ModelLoadError(f"{path}: expected {{'model': name, 'config': {{...}}}}")
    try:
        model_class(obj["model"]).check_config(obj.get("config", {}))
    except KeyError as err:  # an unknown model name
        raise ModelLoadError(f"{path}: {err.args[0]}") from None
    except TypeError as err:  # an unknown config key
        raise ModelLoadError(f"{path}: {err}") from None
    return obj


def load_state(model: torch.nn.Module, state: dict[str, torch.Tensor], source: str) -> None:
    """Load ``state`` into ``model`` strictly; on any mismatch raise :class:`ModelLoadError` listing the
    missing keys, the unexpected keys and the keys whose shapes differ."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: saved {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        lines = [f"{source}: the weights do not fit {type(model).__name__}"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20])
                             + (" ..." if len(items) > 20 else ""))
        raise ModelLoadError("\n".join(lines))
    model.load_state_dict(state, strict=True)


def load_model(directory: str | os.PathLike | SpotterModel, map_location: str | torch.device = "cpu",
               **overrides: Any) -> SpotterModel:
    """A model saved with ``save_pretrained`` (``config.json`` + ``model.safetensors``); a model passes through.

    ``overrides`` replace config fields that do not change the weights (e.g. ``grad_checkpointing``).
    A ``config.json`` naming an unknown model or config key raises :class:`ModelLoadError` naming the file;
    an unknown key in ``overrides`` raises ``TypeError`` (see :func:`build`).
    """
    if isinstance(directory, torch.nn.Module):
        return directory
    from safetensors.torch import load_file

    directory = Path(directory)
    obj = _read_config(directory)
    model = build(obj["model"], **{**obj.get("config", {}), **overrides})
    weights = directory / WEIGHTS_NAME
    if not weights.is_file():
        raise ModelLoadError(f"{directory}: no {WEIGHTS_NAME}")
    load_state(model, load_file(str(weights), device=str(map_location)), str(weights))
    return model
