"""How a spotter's predictions relate to the ground truth of a half: each prediction's error kind
(:func:`label_predictions`), possessions, frames away from play, twins and duplicate spacing. The fit
(:mod:`~fpspot.data.corrupt.fit`) counts these; ``recipes/fit_corruption.py --structure`` reports them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fpspot.data.corrupt.params import DETECTION_KINDS
from fpspot.data.footpass import PlayByPlay
from fpspot.eval.metric import match_half, scored_order
from fpspot.post.events import GroupIndex
from fpspot.schema import FPS, NUM_ACTIONS


@dataclass
class HalfLabels:
    """Per-prediction labels of one half (from :func:`label_predictions`).

    ``kinds[i]``: one of :data:`PREDICTION_KINDS`; ``gt_index[i]``: the claimed / nearest ground-truth
    event (-1 when none); ``offset[i]``: ``pred frame - reference frame`` (ground-truth event, or parent
    prediction for duplicates); ``outcome[j]``: outcome of ground-truth event ``j`` (:data:`OUTCOMES`).
    """

    predictions: list
    kinds: list[str]
    gt_index: list[int]
    offset: list[int]
    outcome: list[str]


def label_predictions(gt_events: Sequence, predictions: Sequence, *, delta: int = 12, threshold: float = 0.15,
                      jitter_window: int = 50, ghost_window: int = 25, dup_window: int = 75,
                      carry: bool = False) -> HalfLabels:
    """Label each scored prediction of one half with its error kind (see the module docstring).

    The official matcher (:func:`fpspot.eval.metric.match_half`) decides the ``detected`` core; the
    looser rules only label what it leaves unmatched.
    """
    order = scored_order(predictions, threshold)
    match = match_half(gt_events, predictions, delta, threshold)
    tp = {order[n] for n in np.flatnonzero(match.pred_tp)}
    gt_frames = np.asarray([e[0] for e in gt_events], dtype=np.int64)
    claimed = match.gt_matched.copy()
    kinds: dict[int, str] = {}
    gt_index: dict[int, int] = {}
    offset: dict[int, int] = {}

    # pair official TPs with their events: within a (team, shirt, class) group the matched events and the TP
    # predictions have the same count; pairing them in frame order gives the offsets.
    tp_by_group: dict[tuple, list[int]] = defaultdict(list)
    gt_by_group: dict[tuple, list[int]] = defaultdict(list)
    for i in tp:
        tp_by_group[tuple(predictions[i][1:4])].append(i)
    for j in np.flatnonzero(match.gt_matched):
        gt_by_group[tuple(gt_events[j][1:4])].append(int(j))
    for group, preds in tp_by_group.items():
        preds.sort(key=lambda i: predictions[i][0])
        events = sorted(gt_by_group[group], key=lambda j: gt_events[j][0])
        for i, j in zip(preds, events, strict=True):
            kinds[i], gt_index[i], offset[i] = "detected", j, int(predictions[i][0] - gt_events[j][0])
    outcome = ["detected" if m else "missed" for m in match.gt_matched]

    def nearest_unclaimed(frame: int, window: int, accept) -> int:
        near = np.flatnonzero((np.abs(gt_frames - frame) <= window) & ~claimed)
        near = [int(j) for j in near if accept(gt_events[j])]
        return min(near, key=lambda j: (abs(gt_frames[j] - frame), j)) if near else -1

    rules = (
        ("detected", jitter_window, lambda p, e: e[1] == p[1] and e[2] == p[2] and e[3] == p[3]),
        ("wrong_jersey", delta, lambda p, e: e[1] == p[1] and e[2] != p[2] and e[3] == p[3]),
        ("wrong_class", delta, lambda p, e: e[1] == p[1] and e[2] == p[2] and e[3] != p[3]),
        ("wrong_team", delta, lambda p, e: e[1] != p[1] and e[3] == p[3]),
    )
    seen_by_group: dict[tuple, list[int]] = defaultdict(list)  # higher-scored predictions per player/class
    possessions = player_possessions(gt_events) if carry else {}
    for i in order:
        p = predictions[i]
        group = tuple(p[1:4])
        if i not in kinds:
            for kind, window, accept in rules:
                j = nearest_unclaimed(p[0], window, lambda e: accept(p, e))
                if j >= 0:
                    claimed[j] = True
                    kinds[i], gt_index[i], offset[i] = kind, j, int(p[0] - gt_events[j][0])
                    outcome[j] = kind
                    break
        if i not in kinds:
            parents = [q for q in seen_by_group[group] if abs(predictions[q][0] - p[0]) <= dup_window]
            if parents:
                q = min(parents, key=lambda q: abs(predictions[q][0] - p[0]))
                kinds[i], gt_index[i], offset[i] = "duplicate", q, int(p[0] - predictions[q][0])
            elif carry and (j := possession_of(possessions, p)) >= 0:
                kinds[i], gt_index[i], offset[i] = "carry", j, int(p[0] - gt_frames[j])
            elif gt_frames.size and np.abs(gt_frames - p[0]).min() <= ghost_window:
                j = int(np.argmin(np.abs(gt_frames - p[0])))
                kinds[i], gt_index[i], offset[i] = "ghost", j, int(p[0] - gt_frames[j])
            else:
                kinds[i], gt_index[i], offset[i] = "random", -1, 0
        seen_by_group[group].append(i)
    return HalfLabels([predictions[i] for i in order], [kinds[i] for i in order], [gt_index[i] for i in order],
                      [offset[i] for i in order], outcome)


def player_possessions(gt_events: Sequence) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """A half's possessions: for every two consecutive events (in frame order) by one player,
    ``(team, shirt) -> [(first frame, last frame, index of the first event), ...]`` sorted by frame; the frames
    strictly between them are that player's own time on the ball."""
    order = sorted(range(len(gt_events)), key=lambda j: int(gt_events[j][0]))
    out: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for a, b in zip(order, order[1:]):
        ea, eb = gt_events[a], gt_events[b]
        if (ea[1], ea[2]) == (eb[1], eb[2]) and int(eb[0]) - int(ea[0]) > 1:
            out[(int(ea[1]), int(ea[2]))].append((int(ea[0]), int(eb[0]), a))
    return dict(out)


def possession_of(possessions: Mapping[tuple[int, int], list[tuple[int, int, int]]], prediction: Sequence) -> int:
    """Index of the first event of the possession of ``prediction``'s player that strictly contains its frame
    (-1 when none)."""
    for first, last, j in possessions.get((int(prediction[1]), int(prediction[2])), ()):
        if first < prediction[0] < last:
            return j
    return -1


def possession_frames(gt_events: Sequence) -> int:
    """Frames inside the half's possessions (:func:`player_possessions`), the exposure of carry false positives."""
    return sum(last - first - 1 for runs in player_possessions(gt_events).values() for first, last, _ in runs)


def free_mask(frames: np.ndarray, span: tuple[int, int], window: int) -> np.ndarray:
    """``(span length,)`` bool: frames of ``span`` farther than ``window`` from every event frame."""
    free = np.ones(span[1] - span[0] + 1, dtype=bool)
    for f in frames:
        free[max(f - window - span[0], 0):max(f + window + 1 - span[0], 0)] = False
    return free


def free_minutes(gt_events: Sequence, window: int) -> float:
    """Minutes of the half's span (first to last event) farther than ``window`` frames from any event."""
    if not gt_events:
        return 0.0
    frames = np.asarray([e[0] for e in gt_events], dtype=np.int64)
    return float(free_mask(frames, (int(frames.min()), int(frames.max())), window).sum()) / FPS / 60.0


def on_other_action(gt_events: Sequence, pred: Sequence, parent: Sequence, window: int = 12) -> bool:
    """Whether a duplicate ``pred`` lies within ``window`` frames of a ground-truth action of its player
    (team, shirt) other than the one its ``parent`` prediction is about (farther than ``window`` from it)."""
    return any(e[1] == pred[1] and e[2] == pred[2] and abs(e[0] - pred[0]) <= window
               and abs(e[0] - parent[0]) > window for e in gt_events)


def twin_group(kind: str) -> str | None:
    """The :data:`TWIN_PARENTS` group of a prediction kind (``None``: its predictions have no twins)."""
    return "detected" if kind in DETECTION_KINDS else "ghost" if kind == "ghost" else None


def twin_parents(predictions: Sequence, kinds: Sequence[str], window: int = 12) -> list[int]:
    """Per labelled prediction (:func:`label_predictions` order: descending score), the index of the prediction
    it is a *twin* of, else -1. A twin is a ghost with a higher-scored detection or ghost of the same player
    (team, shirt) and another class within ``window`` frames that is not a twin itself; its parent is the
    nearest such prediction (the higher-scored one on a tie)."""
    parents = [-1] * len(predictions)
    seen: dict[tuple[int, int], list[int]] = defaultdict(list)  # non-twin parents so far, per player
    for i, (p, kind) in enumerate(zip(predictions, kinds)):
        player = (int(p[1]), int(p[2]))
        if kind == "ghost":
            near = [j for j in seen[player] if predictions[j][3] != p[3] and abs(predictions[j][0] - p[0]) <= window]
            if near:
                parents[i] = min(near, key=lambda j: (abs(predictions[j][0] - p[0]), j))
                continue
        if twin_group(kind) is not None:
            seen[player].append(i)
    return parents


def same_group_gaps(events: Sequence) -> np.ndarray:
    """Frame gaps between consecutive predictions of one ``(team, jersey, class)`` in a half, ``(n,)`` int64."""
    frames = GroupIndex(events).frames.values()
    return np.concatenate([np.diff(np.asarray(f, dtype=np.int64)) for f in frames] or [np.zeros(0, np.int64)])


def nms_window_of(pred: PlayByPlay, limit: int = 75) -> int:
    """The largest window (<= ``limit``) with no two predictions of one ``(team, jersey, class)`` that close in
    ``pred``: the smallest same-group gap minus 1 (TAAD's 25-frame NMS, spec §2.5: 25). 0 if some are 0 or 1
    frame apart."""
    gaps = np.concatenate([same_group_gaps(pred.events[k]) for k in pred.keys] or [np.zeros(0, np.int64)])
    return max(0, min(limit, int(gaps.min(initial=limit + 1)) - 1))
