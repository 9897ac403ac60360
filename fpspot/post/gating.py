"""Per-class score gating, and its fit under the official metric.

``gate`` drops the events of class ``c`` whose score is below ``thresholds[c]``. ``fit_thresholds`` picks,
for each class, the threshold that maximises that class's F1 under the official greedy matcher, then
shrinks it toward one shared threshold by the class's ground-truth count (rare classes, whose F1 curve is
noise, stay near the shared value): ``t_c = t_shared + n_c / (n_c + shrink) * (t_c* - t_shared)``.

The fit needs one matching per half: the matcher takes predictions in descending score order, so the
matching of the events above any threshold is a prefix of the matching of all of them, and the TP and FP
counts of every threshold come from cumulative sums (:func:`threshold_curves`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpspot.data.footpass import PlayByPlay
from fpspot.eval.metric import match_half
from fpspot.post.events import map_halves, per_class
from fpspot.schema import ACTION_CLASSES, NUM_ACTIONS, Prediction

#: Coarse default grid of thresholds (the evaluator drops scores under 0.15 anyway).
DEFAULT_GRID: tuple[float, ...] = tuple(np.round(np.arange(0.15, 0.951, 0.05), 2))


def gate_events(events: list[Prediction], thresholds: dict[int, float]) -> list[Prediction]:
    """Events whose score is at least their class's threshold (order kept)."""
    return [e for e in events if e[4] >= thresholds.get(e[3], 0.0)]


def gate(pbp: PlayByPlay, thresholds) -> PlayByPlay:
    """:func:`gate_events` on every half. ``thresholds``: a number or ``{class name or id: number}``, each in
    [0, 1] (scores are probabilities)."""
    table = per_class(thresholds, "thresholds")
    outside = [f"{ACTION_CLASSES[c - 1]}: {v}" for c, v in table.items() if not 0.0 <= v <= 1.0]
    if outside:
        raise ValueError(f"thresholds must be in [0, 1]; got {', '.join(outside)}")
    return map_halves(lambda _key, events: gate_events(events, table), pbp)


@dataclass
class ThresholdCurves:
    """TP, FP (``(8, G)``) and ground-truth counts (``(8,)``) of each class at each grid threshold."""

    grid: np.ndarray
    tp: np.ndarray
    fp: np.ndarray
    gt: np.ndarray

    def f1(self) -> np.ndarray:
        """``(8, G)`` per-class F1 at each threshold."""
        denom = 2 * self.tp + self.fp + (self.gt[:, None] - self.tp)
        return np.divide(2 * self.tp, denom, out=np.zeros(self.tp.shape), where=denom > 0)

    def micro_f1(self) -> np.ndarray:
        """``(G,)`` micro F1 when every class uses the same threshold."""
        tp, fp, gt = self.tp.sum(0), self.fp.sum(0), self.gt.sum()
        denom = 2 * tp + fp + (gt - tp)
        return np.divide(2 * tp, denom, out=np.zeros(tp.shape), where=denom > 0)


def threshold_curves(ground_truth: PlayByPlay, predictions: PlayByPlay, grid=DEFAULT_GRID,
                     delta: int = 12) -> ThresholdCurves:
    """Per-class TP / FP at every threshold of ``grid`` (official matcher, halves of the ground truth)."""
    grid = np.asarray(sorted(grid), dtype=np.float64)
    tp = np.zeros((NUM_ACTIONS, grid.size))
    fp = np.zeros((NUM_ACTIONS, grid.size))
    gt = np.zeros(NUM_ACTIONS)
    lowest = float(grid[0]) if grid.size else 0.15
    for key in ground_truth.keys:
        match = match_half(ground_truth.events[key], predictions.events.get(key, []), delta, lowest, key)
        gt += np.bincount(match.gt_cls - 1, minlength=NUM_ACTIONS)[:NUM_ACTIONS]
        above = match.pred_score[None, :] >= grid[:, None]  # (G, n)
        for c in range(1, NUM_ACTIONS + 1):
            sel = match.pred_cls == c
            hits = match.pred_tp[sel]
            tp[c - 1] += (above[:, sel] & hits).sum(1)
            fp[c - 1] += (above[:, sel] & ~hits).sum(1)
    return ThresholdCurves(grid, tp, fp, gt)


def fit_thresholds(ground_truth: PlayByPlay, predictions: PlayByPlay, grid=DEFAULT_GRID, shrink: float = 100.0,
                   shared: str | float = "macro", delta: int = 12) -> dict[str, float]:
    """Per-class thresholds fitted to maximise each class's F1, shrunk toward a shared threshold.

    ``shared``: the shared threshold, or how it is chosen: ``"macro"`` (max of the mean per-class F1 with
    one threshold for all) or ``"micro"`` (max of the micro F1). ``shrink``: ground-truth count at which a class's own
    optimum gets half the weight (0 = no shrinkage). Returns ``{class name: threshold}`` (rounded to 0.01).
    """
    curves = threshold_curves(ground_truth, predictions, grid, delta)
    f1 = curves.f1()
    if isinstance(shared, (int, float)):
        t_shared = float(shared)
    elif shared in ("macro", "micro"):
        objective = f1.mean(0) if shared == "macro" else curves.micro_f1()
        t_shared = float(curves.grid[int(np.argmax(objective))])
    else:
        raise ValueError(f"shared must be 'macro', 'micro' or a number, got {shared!r}")
    out = {}
    for c, name in enumerate(ACTION_CLASSES):
        best = float(curves.grid[int(np.argmax(f1[c]))]) if f1[c].max() > 0 else t_shared  # no evidence
        weight = curves.gt[c] / (curves.gt[c] + shrink) if shrink > 0 else 1.0
        out[name] = round(float(t_shared + weight * (best - t_shared)), 2)
    return out
