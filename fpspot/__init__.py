"""fpspot: player-centric ball-action spotting in soccer broadcast video (FOOTPASS).

The public API is imported lazily so that ``import fpspot`` stays fast and imports neither torch nor
torch-geometric, deepspeed or tensorboard (``dir(fpspot)`` lists the lazy names):

* :func:`fpspot.evaluate` - the official FOOTPASS matcher (``fpspot.eval``);
* :func:`fpspot.load_model` - a model saved with ``save_pretrained`` (``fpspot.models``);
* :func:`fpspot.infer` - run a model over whole halves: the package ``fpspot.infer`` is callable
  (:func:`fpspot.infer.api.infer`) and its modules import as usual (``fpspot.infer.engine``).
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_LAZY = {
    "evaluate": ("fpspot.eval", "evaluate"),
    "load_model": ("fpspot.models", "load_model"),
}

__all__ = ["__version__", "evaluate", "infer", "load_model"]


def __dir__() -> list[str]:
    """The module's names and the lazy public API (``evaluate``, ``infer``, ``load_model``), for tab completion."""
    return sorted(set(globals()) | set(__all__))


def __getattr__(name: str):
    if name == "infer":
        return importlib.import_module("fpspot.infer")
    if name in _LAZY:
        module, attr = _LAZY[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'fpspot' has no attribute {name!r}")
