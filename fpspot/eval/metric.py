"""The official FOOTPASS matcher (spec §5) and the figures derived from it.

Per half key:

1. ground-truth events are grouped by ``(team, shirt, class)``, each group sorted by frame (stable);
2. predictions with ``score >= threshold`` are sorted by descending score (stable: ties keep file order);
3. each prediction takes the nearest unused ground-truth event of its group within ``+-delta`` frames
   (inclusive; ties go to the earliest ground-truth event). Found: TP; otherwise FP.

Counts are summed over halves; ``FN = GT - TP``. Precision, recall and F1 per class, micro (pooled) and
macro (mean of the 8 per-class F1) figures, 11-point interpolated AP per class (the reconstruction of spec
§5: predictions of a class pooled over halves, ranked by score), and micro F1 per half.

A ground-truth half absent from the predictions counts as all misses (with a warning). The official
script instead scores only the halves present in both files: pass ``official_keys=True`` for that.
Predicted halves absent from the ground truth are ignored, as the official script does, with a warning
naming them (it prints "[Info] N predicted games not in GT (ignored)").
"""

from __future__ import annotations

import bisect
import warnings
from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from fpspot.data.footpass import PlayByPlay, load_playbyplay
from fpspot.schema import ACTION_CLASSES, NUM_ACTIONS

SPLIT_FIELDS = ("bb", "noBB", "rep", "live")


@dataclass
class HalfMatch:
    """Matching result of one half.

    ``pred_cls``, ``pred_score``, ``pred_tp``: one entry per scored prediction (above the threshold), in
    the order they were matched (descending score). ``gt_matched``: one flag per ground-truth event of the
    half, in file order.
    """

    key: str
    pred_cls: np.ndarray
    pred_score: np.ndarray
    pred_tp: np.ndarray
    gt_cls: np.ndarray
    gt_bbox: np.ndarray
    gt_replay: np.ndarray
    gt_matched: np.ndarray


def scored_order(predictions, threshold: float = 0.15) -> list[int]:
    """Indices of the predictions the matcher scores (score >= ``threshold``, class 1..8), in the order it
    matches them: descending score, equal scores in file order. ``HalfMatch.pred_*[n]`` is prediction
    ``scored_order(...)[n]``."""
    kept = [i for i, p in enumerate(predictions) if p[4] >= threshold and 1 <= p[3] <= NUM_ACTIONS]
    return sorted(kept, key=lambda i: -predictions[i][4])  # stable: equal scores keep file order


def match_half(gt_events, predictions, delta: int = 12, threshold: float = 0.15, key: str = "") -> HalfMatch:
    """Greedy official matching of one half's predictions to its ground truth.

    gt_events: sequence of ``(frame, team, shirt, class, bbox, replay)``;
    predictions: sequence of ``(frame, team, shirt, class, score)``.
    """
    groups_frames: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    groups_index: dict[tuple[int, int, int], list[int]] = defaultdict(list)
    order = sorted(range(len(gt_events)), key=lambda i: gt_events[i][0])  # stable sort by frame
    for i in order:
        frame, team, shirt, cls = gt_events[i][:4]
        groups_frames[(team, shirt, cls)].append(frame)
        groups_index[(team, shirt, cls)].append(i)
    gt_matched = np.zeros(len(gt_events), dtype=bool)
    used = {g: [False] * len(frames) for g, frames in groups_frames.items()}

    scored = [predictions[i] for i in scored_order(predictions, threshold)]
    pred_tp = np.zeros(len(scored), dtype=bool)
    for n, (frame, team, shirt, cls, _score) in enumerate(scored):
        group = (team, shirt, cls)
        frames = groups_frames.get(group)
        if frames is None:
            continue
        flags = used[group]
        lo = bisect.bisect_left(frames, frame - delta)
        hi = bisect.bisect_right(frames, frame + delta)
        best, best_dist = -1, delta + 1
        for j in range(lo, hi):  # ascending frame: strict '<' keeps the earliest on ties
            if not flags[j]:
                dist = abs(frames[j] - frame)
                if dist < best_dist:
                    best, best_dist = j, dist
        if best >= 0:
            flags[best] = True
            gt_matched[groups_index[group][best]] = True
            pred_tp[n] = True
    gt = np.asarray([e[:6] if len(e) >= 6 else (*e[:4], 0, 0) for e in gt_events], dtype=np.int64).reshape(-1, 6)
    return HalfMatch(
        key=key,
        pred_cls=np.asarray([p[3] for p in scored], dtype=np.int64),
        pred_score=np.asarray([p[4] for p in scored], dtype=np.float64),
        pred_tp=pred_tp,
        gt_cls=gt[:, 3],
        gt_bbox=gt[:, 4],
        gt_replay=gt[:, 5],
        gt_matched=gt_matched,
    )


def _safe_div(num: float, den: float) -> float:
    return float(num) / float(den) if den else 0.0


def _f1(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if (p + r) > 0 else 0.0


def ap11(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> float:
    """11-point interpolated AP (VOC2007): mean over r in {0, 0.1, ..., 1} of max precision at recall >= r."""
    if num_gt == 0 or scores.size == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    hits = tp[order].astype(np.float64)
    cum_tp = np.cumsum(hits)
    precision = cum_tp / np.arange(1, hits.size + 1)
    recall = cum_tp / num_gt
    points = []
    for r in np.linspace(0.0, 1.0, 11):
        mask = recall >= r - 1e-12
        points.append(precision[mask].max() if mask.any() else 0.0)
    return float(np.mean(points))


@dataclass
class ClassStats:
    """Figures of one action class (or the pooled ``overall`` row)."""

    name: str
    tp: int
    fp: int
    gt: int
    tp_split: dict[str, int]
    gt_split: dict[str, int]
    ap: float | None = None

    @property
    def fn(self) -> int:
        return self.gt - self.tp

    @property
    def precision(self) -> float:
        return _safe_div(self.tp, self.tp + self.fp)

    @property
    def recall(self) -> float:
        return _safe_div(self.tp, self.gt)

    @property
    def f1(self) -> float:
        return _f1(self.precision, self.recall)

    def as_dict(self) -> dict:
        out = {"precision": self.precision, "recall": self.recall, "f1": self.f1, "tp": self.tp, "fp": self.fp,
               "fn": self.fn, "gt": self.gt}
        for s in SPLIT_FIELDS:
            out[f"tp_{s}"] = self.tp_split[s]
            out[f"fn_{s}"] = self.gt_split[s] - self.tp_split[s]
            out[f"gt_{s}"] = self.gt_split[s]
        if self.ap is not None:
            out["ap"] = self.ap
        return out


@dataclass
class Report:
    """Result of :func:`evaluate`: per-class and overall figures, macro F1, AP and per-half micro F1."""

    per_class: dict[str, ClassStats]
    overall: ClassStats
    per_half: dict[str, dict[str, float]]
    keys: list[str]
    missing_keys: list[str]
    delta: int
    threshold: float
    matches: list[HalfMatch] = field(default_factory=list, repr=False)

    @property
    def micro_f1(self) -> float:
        return self.overall.f1

    @property
    def macro_f1(self) -> float:
        return float(np.mean([c.f1 for c in self.per_class.values()]))

    @property
    def mean_ap(self) -> float:
        return float(np.mean([c.ap for c in self.per_class.values()]))

    def to_json(self) -> dict:
        """The ``--json`` object: micro, macro_f1, per_class, per_half (and a few extra fields)."""
        micro = {k: v for k, v in self.overall.as_dict().items() if k in
                 ("precision", "recall", "f1", "tp", "fp", "fn", "gt")}
        return {
            "micro": micro,
            "macro_f1": self.macro_f1,
            "macro_precision": float(np.mean([c.precision for c in self.per_class.values()])),
            "macro_recall": float(np.mean([c.recall for c in self.per_class.values()])),
            "map": self.mean_ap,
            "per_class": {name: c.as_dict() for name, c in self.per_class.items()},
            "per_half": self.per_half,
            "delta": self.delta,
            "threshold": self.threshold,
            "keys": self.keys,
            "missing_keys": self.missing_keys,
        }

    def table(self) -> str:
        """The official ``evaluation.py`` table, followed by micro and macro F1."""
        from fpspot.eval.report import format_official_table

        return format_official_table(self)


def _stats(name: str, tp_mask: np.ndarray, fp: int, gt_sel: np.ndarray, bbox: np.ndarray, replay: np.ndarray,
           ap: float | None = None) -> ClassStats:
    splits = {"bb": bbox == 1, "noBB": bbox == 0, "rep": replay == 1, "live": replay == 0}
    return ClassStats(
        name=name,
        tp=int(tp_mask[gt_sel].sum()),
        fp=int(fp),
        gt=int(gt_sel.sum()),
        tp_split={s: int((tp_mask & gt_sel & m).sum()) for s, m in splits.items()},
        gt_split={s: int((gt_sel & m).sum()) for s, m in splits.items()},
        ap=ap,
    )


def check_delta(delta: int) -> None:
    """Raise ``ValueError`` naming the argument unless ``delta >= 0`` (frames)."""
    if not delta >= 0:
        raise ValueError(f"delta must be a number of frames >= 0, got {delta}")


def check_threshold(threshold: float) -> None:
    """Raise ``ValueError`` naming the argument unless ``0 <= threshold <= 1`` (NaN fails too)."""
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")


def evaluate(predictions, ground_truth, delta: int = 12, threshold: float = 0.15,
             official_keys: bool = False) -> Report:
    """Score predictions against ground truth with the official FOOTPASS matcher.

    predictions, ground_truth: paths, loaded JSON objects or :class:`~fpspot.data.footpass.PlayByPlay`.
    ``official_keys=True`` scores only the halves present in both (as ``evaluation.py`` does); otherwise a
    ground-truth half without predictions counts as all misses, with a warning. Predicted halves the ground
    truth does not have are ignored (as ``evaluation.py`` does), with a warning that names them.
    ``delta``: frames, >= 0; ``threshold``: in [0, 1] (``ValueError`` otherwise).
    """
    check_delta(delta)
    check_threshold(threshold)
    pred = load_playbyplay(predictions, "pred")
    gt = load_playbyplay(ground_truth, "gt")
    pred_keys, gt_keys = set(pred.keys), set(gt.keys)
    ignored = [k for k in pred.keys if k not in gt_keys]
    if ignored:
        warnings.warn(f"{len(ignored)} predicted half(s) are not in the ground truth and are ignored: "
                      f"{', '.join(ignored)}", stacklevel=2)
    missing = [k for k in gt.keys if k not in pred_keys]
    if official_keys:
        keys = sorted(k for k in gt.keys if k in pred_keys)
    else:
        keys = sorted(gt.keys)
        if missing:
            warnings.warn(f"{len(missing)} ground-truth half(s) have no predictions and count as all misses: "
                          f"{', '.join(missing)}", stacklevel=2)
    matches = [match_half(gt.events[k], pred.events.get(k, []), delta, threshold, k) for k in keys]
    return _report(matches, keys, missing, delta, threshold)


def _report(matches: list[HalfMatch], keys: list[str], missing: list[str], delta: int, threshold: float) -> Report:
    cat = lambda name: np.concatenate([getattr(m, name) for m in matches]) if matches else np.zeros(0)  # noqa: E731
    pred_cls, pred_score, pred_tp = cat("pred_cls"), cat("pred_score"), cat("pred_tp").astype(bool)
    gt_cls, gt_bbox, gt_replay = cat("gt_cls"), cat("gt_bbox"), cat("gt_replay")
    gt_matched = cat("gt_matched").astype(bool)

    per_class: dict[str, ClassStats] = {}
    for c, name in enumerate(ACTION_CLASSES, start=1):
        sel_pred = pred_cls == c
        sel_gt = gt_cls == c
        fp = int((sel_pred & ~pred_tp).sum())
        ap = ap11(pred_score[sel_pred], pred_tp[sel_pred], int(sel_gt.sum()))
        per_class[name] = _stats(name, gt_matched, fp, sel_gt, gt_bbox, gt_replay, ap)
    overall = _stats("OVERALL", gt_matched, int((~pred_tp).sum()), np.ones_like(gt_matched, dtype=bool),
                     gt_bbox, gt_replay)
    per_half = {}
    for m in matches:
        tp, fp, n_gt = int(m.pred_tp.sum()), int((~m.pred_tp).sum()), int(m.gt_matched.size)
        p, r = _safe_div(tp, tp + fp), _safe_div(tp, n_gt)
        per_half[m.key] = {"precision": p, "recall": r, "f1": _f1(p, r), "tp": tp, "fp": fp, "gt": n_gt}
    return Report(per_class, overall, per_half, list(keys), list(missing), delta, threshold, matches)


def spec_loop_counts(predictions: PlayByPlay, ground_truth: PlayByPlay, delta: int = 12,
                     threshold: float = 0.15) -> dict[int, tuple[int, int, int]]:
    """A plain statement of the spec's loop (§5), for tests and benchmarks: ``{class: (TP, FP, GT)}``.

    Keys are the halves present in both files, as in the official script.
    """
    tp, fp, n_gt = defaultdict(int), defaultdict(int), defaultdict(int)
    for key in sorted(set(ground_truth.keys) & set(predictions.keys)):
        groups: dict[tuple, list[int]] = {}
        for e in ground_truth.events[key]:
            groups.setdefault((e[1], e[2], e[3]), []).append(e[0])
            n_gt[e[3]] += 1
        for g in groups.values():
            g.sort()
        used = {g: [False] * len(v) for g, v in groups.items()}
        dets = [(p[4], p[1], p[2], p[3], p[0]) for p in predictions.events[key] if p[4] >= threshold]
        dets.sort(key=lambda d: d[0], reverse=True)
        for score, team, shirt, cls, frame in dets:
            g = (team, shirt, cls)
            if g not in groups:
                fp[cls] += 1
                continue
            best, best_d = None, None
            for i, gf in enumerate(groups[g]):
                d = abs(gf - frame)
                if not used[g][i] and d <= delta and (best_d is None or d < best_d):
                    best, best_d = i, d
            if best is None:
                fp[cls] += 1
            else:
                used[g][best] = True
                tp[cls] += 1
    return {c: (tp[c], fp[c], n_gt[c]) for c in range(1, NUM_ACTIONS + 1)}
