"""Ensembles of N >= 2 models, at logit level and at event level.

* :func:`average_logits`: weighted mean of per-frame logits ``(9, 26, T)`` (then
  :func:`fpspot.post.peaks.logits_to_events`).
* :func:`fuse_events`: weighted fusion of event lists. Per ``(team, shirt, class)``, events are taken in
  descending weighted score; each one not yet used seeds a cluster that takes, from every other model,
  its unused event nearest in time within ``window`` frames. A cluster becomes one event whose score is
  ``sum_m w_m s_m / sum_m w_m`` (a model without an event in the cluster counts 0: agreement raises the
  score) and whose frame is the score-weighted mean of the members' frames (rounded), or the seed's
  frame. ``min_models`` keeps only clusters that many models agree on; ``require`` only clusters that
  include given models.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from collections.abc import Sequence

import numpy as np

from fpspot.post.peaks import as_numpy_logits
from fpspot.schema import Prediction


def _check_weights(weights, n: int) -> list[float]:
    weights = [1.0] * n if weights is None else [float(w) for w in weights]
    if len(weights) != n:
        raise ValueError(f"{len(weights)} weights for {n} models")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be >= 0 with a positive sum, got {weights}")
    return weights


def average_logits(logits: Sequence, weights: Sequence[float] | None = None) -> np.ndarray:
    """Weighted mean of ``N`` arrays of logits ``(9, 26, T)`` (numpy or torch) on the same frames, float32."""
    arrays = [as_numpy_logits(x, f"logits[{i}]") for i, x in enumerate(logits)]
    if not arrays:
        raise ValueError("average_logits needs at least one array")
    shape = arrays[0].shape
    for i, a in enumerate(arrays):
        if a.shape != shape:
            raise ValueError(f"logits[{i}] has shape {a.shape}, logits[0] has {shape}: align the frames first")
    weights = _check_weights(weights, len(arrays))
    total = sum(weights)
    out = np.zeros(shape, dtype=np.float32)
    for w, a in zip(weights, arrays):
        if w:
            out += np.float32(w / total) * a.astype(np.float32, copy=False)
    return out


def fuse_events(event_lists: Sequence[Sequence[Prediction]], weights: Sequence[float] | None = None,
                window: int = 12, min_models: int = 1, frame: str = "weighted",
                require: Sequence[int] = ()) -> list[Prediction]:
    """Weighted fusion of one half's events from ``N`` models (see the module docstring).

    ``frame``: ``"weighted"`` (score-weighted mean of the cluster's frames) or ``"seed"``. ``require``:
    indices of models that every kept cluster must include (e.g. the strongest model, so that the others
    only confirm or re-rank its events). Returns the fused events sorted by score, descending.
    """
    if frame not in ("weighted", "seed"):
        raise ValueError(f"frame must be 'weighted' or 'seed', got {frame!r}")
    weights = _check_weights(weights, len(event_lists))
    total = sum(weights)
    groups: dict[tuple, list[tuple[float, int, Prediction]]] = defaultdict(list)
    for m, (w, events) in enumerate(zip(weights, event_lists)):
        if w == 0:
            continue
        for e in events:
            e = Prediction._make(e)
            groups[(e.team, e.shirt, e.cls)].append((w * e.score, m, e))
    out = []
    for members in groups.values():  # groups are (team, shirt, class): independent
        members.sort(key=lambda item: (-item[0], item[1], item[2].frame))
        used = [False] * len(members)
        by_model: dict[int, list[int]] = defaultdict(list)  # model -> member indices sorted by frame
        for j in sorted(range(len(members)), key=lambda j: members[j][2].frame):
            by_model[members[j][1]].append(j)
        frames = {m: [members[j][2].frame for j in idx] for m, idx in by_model.items()}
        for i, (_ws, m_seed, seed) in enumerate(members):
            if used[i]:
                continue
            used[i] = True
            cluster = {m_seed: seed}
            for m, idx in by_model.items():  # from every other model, its unused event nearest to the seed
                if m == m_seed:
                    continue
                lo = bisect.bisect_left(frames[m], seed.frame - window)
                hi = bisect.bisect_right(frames[m], seed.frame + window)
                free = [j for j in idx[lo:hi] if not used[j]]
                if free:  # nearest; ties keep the higher score (smaller member index)
                    j = min(free, key=lambda j: (abs(members[j][2].frame - seed.frame), j))
                    used[j] = True
                    cluster[m] = members[j][2]
            if len(cluster) < min_models or any(m not in cluster for m in require):
                continue
            score = sum(weights[m] * e.score for m, e in cluster.items()) / total
            if frame == "weighted":
                mass = sum(weights[m] * e.score for m, e in cluster.items())
                f = int(np.round(sum(weights[m] * e.score * e.frame for m, e in cluster.items()) / mass))
            else:
                f = seed.frame
            out.append(Prediction(f, seed.team, seed.shirt, seed.cls, float(min(1.0, score))))
    out.sort(key=lambda p: (-p.score, p.frame))
    return out
