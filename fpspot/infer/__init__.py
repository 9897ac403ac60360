"""Inference: run a trained model over whole halves and write challenge-ready predictions.

The package itself is callable: ``fpspot.infer(model, data, ...)`` is :func:`fpspot.infer.api.infer`
(also importable as ``from fpspot.infer import infer``), and the modules stay importable as usual:

* :mod:`fpspot.infer.api` - :func:`~fpspot.infer.api.infer`, stacks, per-half logits files, halves over processes;
* :mod:`fpspot.infer.sources` - halves of a FOOTPASS-format dataset folder (videos + tactical data);
* :mod:`fpspot.infer.engine` - batched sliding windows over a half (:mod:`~fpspot.infer.windows`,
  :mod:`~fpspot.infer.stream`);
* :mod:`fpspot.infer.cli` - ``fpspot infer``.

Importing this package is light (no torch); the modules load on first use.
"""

from __future__ import annotations

import importlib
import sys
import types

_LAZY = {
    "infer": "fpspot.infer.api",
    "HalfSource": "fpspot.infer.api",
    "Stack": "fpspot.infer.api",
    "EngineConfig": "fpspot.infer.engine",
    "load_logits": "fpspot.infer.api",
    "load_stack": "fpspot.infer.api",
    "save_logits": "fpspot.infer.api",
    "save_stack": "fpspot.infer.api",
    "UnsupportedModelError": "fpspot.infer.api",
    "DatasetHalf": "fpspot.infer.sources",
    "dataset_halves": "fpspot.infer.sources",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fpspot.infer' has no attribute {name!r}")


class _CallablePackage(types.ModuleType):
    """Module type of ``fpspot.infer``: calling the package calls :func:`fpspot.infer.api.infer`.

    ``import fpspot.infer.engine`` binds the *package* to ``fpspot.infer``, so a plain function of that name
    would be shadowed as soon as any inference module is imported; a callable package cannot be.
    """

    def __call__(self, model, data, **options):
        from fpspot.infer.api import infer

        return infer(model, data, **options)


sys.modules[__name__].__class__ = _CallablePackage
