"""Post-processing of per-frame logits and event lists (``fpspot.post``).

* :mod:`~fpspot.post.peaks`: logits -> events (softmax + per (slot, class) NMS as the baseline, soft-NMS,
  smoothed peaks);
* :mod:`~fpspot.post.gating`: per-class score thresholds fitted under the official metric;
* :mod:`~fpspot.post.refine`: constant offsets, moves to the class-score peak (parabolic sub-frame fit);
* :mod:`~fpspot.post.jersey`: re-assignment of an event to another player of the same team;
* :mod:`~fpspot.post.ensemble`: logit averaging and weighted event fusion of N models;
* :mod:`~fpspot.post.pipeline`: YAML pipelines of named steps (``fpspot post --config``);
* :mod:`~fpspot.post.fit`: fitting a pipeline and leave-one-game-out validation (``fpspot post fit``).

Submodules are imported on use, so ``import fpspot.post`` stays light.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "logits_to_events": "fpspot.post.peaks",
    "gate": "fpspot.post.gating",
    "fit_thresholds": "fpspot.post.gating",
    "shift": "fpspot.post.refine",
    "refine_with_logits": "fpspot.post.refine",
    "reassign_by_support": "fpspot.post.jersey",
    "reassign_by_logits": "fpspot.post.jersey",
    "average_logits": "fpspot.post.ensemble",
    "fuse_events": "fpspot.post.ensemble",
    "Pipeline": "fpspot.post.pipeline",
    "register_step": "fpspot.post.pipeline",
    "STEPS": "fpspot.post.pipeline",
    "HalfLogits": "fpspot.post.events",
    "fit_pipeline": "fpspot.post.fit",
    "cross_validate": "fpspot.post.fit",
    "FitOptions": "fpspot.post.fit",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fpspot.post' has no attribute {name!r}")
