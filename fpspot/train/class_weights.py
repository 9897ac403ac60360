"""Per-class loss weights (9 values: background + the 8 actions) from the class counts of a shard manifest.

Schemes (``kind`` is the model family: ``"taad"`` or ``"taad_gnn"``; it fixes the baseline's background
weight ``b`` and foreground weight ``f``: TAAD ``b = 0.05, f = 0.95`` (the CE weights, spec §2.3), TAAD+GNN
``b = 1/161, f = 20/161`` (the focal-loss alpha, spec §3.4)):

``none``
    all ones (an unweighted loss).
``baseline``
    the baseline's values: ``[b, f, f, f, f, f, f, f, f]``.
``inv_freq`` and ``sqrt_inv_freq`` (extension 3)
    over the 8 action classes ``c`` with event counts ``N_c`` (by default counted on **box-visible**
    events, the ones the clip sampler draws), ``N_max = max_c N_c``:

    * ``r_c = N_max / N_c`` (``inv_freq``) or ``r_c = sqrt(N_max / N_c)`` (``sqrt_inv_freq``);
      a class with ``N_c = 0`` gets the largest ``r`` of the counted classes (the max weight);
    * ``w_c = f * r_c / mean_c(r_c)``: normalised so that the mean of the 8 foreground weights equals the
      baseline's foreground weight ``f``, which keeps the loss on the scale the learning rates were tuned
      for (the TAAD sampler draws the classes nearly balanced, so the plain mean over classes is the mean
      weight a foreground frame sees);
    * ``w_0 = b``: the background keeps the baseline's weight.

    On the real FOOTPASS train counts of box-visible events (drive 30477, pass 37144, cross 1519, throw-in
    754, shot 889, header 2426, tackle 174, block 994) ``sqrt_inv_freq`` for TAAD gives pass 0.168 (the most
    frequent class) up to tackle 2.458, mean 0.95 (see ``tests/test_class_weights.py``). ``inv_freq``
    spreads them far more (pass 0.0198 < background 0.05, tackle 4.23): the square root is the milder
    choice.

:func:`format_class_weights` renders the weights in use as a table, for the log of a run.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from fpspot.schema import ACTION_CLASSES, CLASSES, NUM_ACTIONS, NUM_CLASSES

SCHEMES: tuple[str, ...] = ("none", "baseline", "inv_freq", "sqrt_inv_freq")

#: (background weight, foreground weight) of the baseline loss of each model family
BASELINE_WEIGHTS: dict[str, tuple[float, float]] = {
    "taad": (0.05, 0.95),
    "taad_gnn": (1.0 / 161.0, 20.0 / 161.0),
}

#: which counts of the manifest's ``class_counts`` the frequency schemes use by default
DEFAULT_SUBSET = "box_visible"


def counts_from_manifest(manifest: Mapping | str | os.PathLike, subset: str = DEFAULT_SUBSET) -> list[int]:
    """The 8 action-class counts (``ACTION_CLASSES`` order) of a shard manifest's ``class_counts[subset]``.

    ``manifest``: the parsed ``manifest.json``, its path, or the shard folder holding it.
    """
    source = "manifest"
    if not isinstance(manifest, Mapping):
        path = Path(manifest)
        if path.is_dir():
            path = path / "manifest.json"
        source = str(path)
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{source}: no such file (write shards with `fpspot shard`)") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{source}: not valid JSON ({err.msg})") from None
    counts = manifest.get("class_counts")
    if not isinstance(counts, Mapping):
        raise ValueError(f"{source}: missing field 'class_counts'")
    if subset not in counts:
        raise ValueError(f"{source}: class_counts has no {subset!r} counts "
                         f"(has: {', '.join(counts) or 'none'})")
    table = counts[subset]
    missing = [c for c in ACTION_CLASSES if c not in table]
    if missing:
        raise ValueError(f"{source}: class_counts.{subset}: missing class(es) {', '.join(missing)}")
    values = []
    for name in ACTION_CLASSES:
        value = table[name]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{source}: class_counts.{subset}.{name}: expected a count >= 0, got {value!r}")
        values.append(value)
    return values


def _ratios(counts: Sequence[int], power: float) -> list[float]:
    if len(counts) != NUM_ACTIONS:
        raise ValueError(f"expected {NUM_ACTIONS} action-class counts ({', '.join(ACTION_CLASSES)}), "
                         f"got {len(counts)}")
    if any(n < 0 for n in counts):
        raise ValueError(f"class counts must be >= 0, got {list(counts)}")
    n_max = max(counts)
    if n_max == 0:
        raise ValueError("every action class has 0 events: frequency weights are undefined")
    ratios = [(n_max / n) ** power if n > 0 else math.nan for n in counts]
    largest = max(r for r in ratios if not math.isnan(r))
    return [largest if math.isnan(r) else r for r in ratios]


def compute_class_weights(scheme: str, counts: Sequence[int] | None = None,
                          kind: str = "taad") -> torch.Tensor:
    """The ``(9,)`` float32 loss weights of ``scheme`` (see the module docstring for the formulas).

    counts: the 8 action-class event counts (``ACTION_CLASSES`` order); needed by ``inv_freq`` and
    ``sqrt_inv_freq``. kind: ``"taad"`` or ``"taad_gnn"`` (the baseline's background/foreground weights).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown class-weight scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if kind not in BASELINE_WEIGHTS:
        raise ValueError(f"unknown model kind {kind!r} for class weights; use one of "
                         f"{', '.join(BASELINE_WEIGHTS)}")
    background, foreground = BASELINE_WEIGHTS[kind]
    if scheme == "none":
        values = [1.0] * NUM_CLASSES
    elif scheme == "baseline":
        values = [background] + [foreground] * NUM_ACTIONS
    else:
        if counts is None:
            raise ValueError(f"class-weight scheme {scheme!r} needs the class counts "
                             "(from the shard manifest)")
        ratios = _ratios(list(counts), 1.0 if scheme == "inv_freq" else 0.5)
        mean = sum(ratios) / len(ratios)
        values = [background] + [foreground * r / mean for r in ratios]
    return torch.tensor(values, dtype=torch.float64).to(torch.float32)


def class_weights_from_manifest(scheme: str, manifest: Mapping | str | os.PathLike | None, kind: str = "taad",
                                subset: str = DEFAULT_SUBSET) -> torch.Tensor:
    """:func:`compute_class_weights` with the counts of a shard manifest (not read for ``none`` and
    ``baseline``)."""
    needs_counts = scheme not in ("none", "baseline") and manifest is not None
    counts = counts_from_manifest(manifest, subset) if needs_counts else None
    return compute_class_weights(scheme, counts, kind)


def format_class_weights(weights: Sequence[float] | torch.Tensor, counts: Sequence[int] | None = None,
                         title: str | None = None) -> str:
    """A text table of the 9 weights (and the 8 action counts when given), one class a line."""
    values = [float(w) for w in (weights.tolist() if isinstance(weights, torch.Tensor) else weights)]
    if len(values) != NUM_CLASSES:
        raise ValueError(f"expected {NUM_CLASSES} weights, got {len(values)}")
    lines = [title] if title else []
    lines.append(f"{'class':<12}{'events':>8}{'weight':>10}")
    for i, (name, weight) in enumerate(zip(CLASSES, values)):
        count = "-" if counts is None or i == 0 else str(int(counts[i - 1]))
        lines.append(f"{name:<12}{count:>8}{weight:>10.4f}")
    return "\n".join(lines)


__all__ = ["BASELINE_WEIGHTS", "DEFAULT_SUBSET", "SCHEMES", "class_weights_from_manifest",
           "compute_class_weights", "counts_from_manifest", "format_class_weights"]
