"""Fitting the corruption model to a spotter's predictions against the ground truth of the same halves
(:func:`fit_corruption`), and calibrating its rates by simulation (:func:`calibrate_corruption`)."""

from __future__ import annotations

import copy
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence

import numpy as np

from fpspot.data.corrupt.generate import active_players, corrupt_playbyplay
from fpspot.data.corrupt.labels import (
    free_minutes, label_predictions, nms_window_of, on_other_action, possession_frames, twin_group, twin_parents,
)
from fpspot.data.corrupt.params import (
    BUCKETS, DETECTION_KINDS, NEIGHBOUR_FRAMES, OUTCOMES, PREDICTION_KINDS, QUANTILE_LEVELS, SCORE_KINDS, TWIN_PARENTS,
    CorruptionParams, bucket_of,
)
from fpspot.data.footpass import PlayByPlay, load_playbyplay
from fpspot.schema import FPS, NUM_ACTIONS


def _hist(values: Sequence[int], lo: int, hi: int, smooth: float = 0.0) -> dict[str, list]:
    offsets = list(range(lo, hi + 1))
    counts = np.zeros(len(offsets))
    for v in values:
        if lo <= v <= hi:
            counts[v - lo] += 1
    counts += smooth
    if counts.sum() == 0:
        counts[:] = 1
    return {"offsets": offsets, "probs": [float(x) for x in counts / counts.sum()]}


def per_class_hists(class_values: Mapping[int, Sequence[int]], pooled: Sequence[int], window: int,
                    pseudo_count: float) -> dict[str, dict[str, list]]:
    """One ``-window..window`` histogram per class id 1..8 (keys ``"1"``..``"8"``): the class's counts plus
    ``pseudo_count`` times the pooled histogram of ``pooled``, normalised (a class without values gets the
    pooled histogram)."""
    shared = np.asarray(_hist(pooled, -window, window)["probs"])
    out = {}
    for c in range(1, NUM_ACTIONS + 1):
        own = np.asarray(_hist(class_values.get(c, []), -window, window)["probs"]) * len(class_values.get(c, []))
        counts = own + pseudo_count * shared
        out[str(c)] = {"offsets": list(range(-window, window + 1)), "probs": [float(x) for x in counts / counts.sum()]}
    return out


def shrunk_fractions(counts: np.ndarray, pseudo_count: float) -> list[float]:
    """Per class the fraction ``counts[c, 0] / counts[c].sum()`` shrunk toward the pooled fraction over classes
    1..8 with ``pseudo_count`` observations; counts: ``(9, 2)``, row 0 unused. Returns 9 entries (entry 0: 0.5)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts[1:].sum(axis=0)
    pooled = total[0] / total.sum() if total.sum() else 0.5
    return [0.5] + [float((counts[c, 0] + pseudo_count * pooled) / (counts[c].sum() + pseudo_count))
                    for c in range(1, NUM_ACTIONS + 1)]


def parent_score_tilt(parent_scores: Sequence[float], dup_parent_scores: Sequence[float],
                      bins: int = 5) -> dict | None:
    """Duplicate-rate factor per bin of the parent's score: ``{"edges": K + 1, "weights": K}``.

    parent_scores: scores of every prediction that can have duplicates (the non-duplicates); dup_parent_scores:
    the parent's score of every duplicate. Bins at the quantiles of ``parent_scores`` (first edge 0, last 1);
    weight ``k`` = (duplicates per parent in bin ``k``) / (duplicates per parent overall), so the weights average
    1 over the parents. ``None`` when ``bins`` is 0 or there are no duplicates."""
    parents, dups = np.asarray(parent_scores, dtype=np.float64), np.asarray(dup_parent_scores, dtype=np.float64)
    if bins <= 0 or not parents.size or not dups.size:
        return None
    edges = np.quantile(parents, np.linspace(0.0, 1.0, bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    edges = np.maximum.accumulate(edges)
    where_parent = np.clip(np.searchsorted(edges, parents, side="right") - 1, 0, bins - 1)
    where_dup = np.clip(np.searchsorted(edges, dups, side="right") - 1, 0, bins - 1)
    per_bin = np.bincount(where_dup, minlength=bins) / np.maximum(np.bincount(where_parent, minlength=bins), 1)
    overall = dups.size / parents.size
    return {"edges": [float(e) for e in edges], "weights": [float(w) for w in per_bin / overall]}


def _quantiles(values: Sequence[float]) -> list[float]:
    return [float(q) for q in np.quantile(np.asarray(values, dtype=np.float64), QUANTILE_LEVELS)]


def random_bursts(randoms: Sequence[Sequence], window: int = 25, max_size: int = 8) -> dict:
    """Burst statistics of random false positives: per half, predictions ``(frame, team, shirt, class, ...)``
    sorted by frame are linked into one burst while consecutive ones are at most ``window`` frames apart.

    Returns the :class:`CorruptionParams` fields ``random_burst_size`` (probabilities of sizes 1..``max_size``,
    larger bursts counted as ``max_size``), ``random_burst_gap_hist`` (frames between consecutive members,
    0..``window``), ``random_burst_same_class`` and ``random_burst_same_player`` (the observed fractions of
    members that repeat the previous one's class / player; :func:`fit_corruption` then removes the part that
    independent draws would repeat by chance)."""
    sizes, gaps = [], []
    same_class = same_player = pairs = 0
    for half in randoms:
        half = sorted(half, key=lambda p: p[0])
        size = 0
        for n, p in enumerate(half):
            if n and p[0] - half[n - 1][0] <= window:
                prev = half[n - 1]
                gaps.append(int(p[0] - prev[0]))
                pairs += 1
                same_class += int(p[3] == prev[3])
                same_player += int((p[1], p[2]) == (prev[1], prev[2]))
                size += 1
            else:
                if size:
                    sizes.append(size)
                size = 1
        if size:
            sizes.append(size)
    counts = np.bincount(np.minimum(np.asarray(sizes, dtype=np.int64), max_size), minlength=max_size + 1)[1:]
    return {"random_burst_size": [float(x) for x in counts / max(counts.sum(), 1)] if counts.sum() else [1.0],
            "random_burst_gap_hist": _hist(gaps, 0, window) if gaps else {"offsets": [0], "probs": [1.0]},
            "random_burst_same_class": same_class / max(pairs, 1),
            "random_burst_same_player": same_player / max(pairs, 1),
            "random_burst_window": int(window)}


def fit_corruption(gt: PlayByPlay | Mapping | str, pred: PlayByPlay | Mapping | str, *, delta: int = 12,
                   threshold: float = 0.15, jitter_window: int = 50, ghost_window: int = 25, dup_window: int = 75,
                   shrinkage: float = 10.0, min_score_samples: int = 5, score_shrinkage: float = 10.0,
                   calibrate_iters: int = 2, calibrate_seeds: int = 4, spotter_nms: int | str = 0,
                   dup_tilt_bins: int = 0, per_class_offsets: float | None = None,
                   carry: bool = False, twins: bool = False) -> CorruptionParams:
    """Fit :class:`CorruptionParams` from predictions against the ground truth of the same halves.

    gt, pred: paths, loaded JSON objects or :class:`PlayByPlay`. Only halves present in both are used.
    The raw estimates are then refined by :func:`calibrate_corruption` (``calibrate_iters`` rounds).
    spotter_nms: the NMS window applied to the corrupted output (0: none; ``"auto"``: measured on ``pred``
    by :func:`nms_window_of`); it is in place during the calibration. dup_tilt_bins: parent-score bins of
    ``dup_parent_tilt`` (0: no tilt and no ``dup_score_ratio``: the older capped duplicate scores).
    per_class_offsets: pseudo-count (in predictions) with which each class's jitter histogram
    (``jitter_hist_per_class``) and duplicate direction (``dup_after``) are shrunk toward the pooled ones; it
    also sets ``dup_min_gap`` to the smallest duplicate-parent gap seen (``None``: neither key and no gap, every
    class uses ``jitter_hist``, duplicates fall on either side alike and as close as a jitter puts them).
    carry: label the false positives inside their own player's possession ``carry`` and fit
    ``carry_rate_per_min`` and their scores (else they are ghosts and randoms, as in the previous packaged
    fit).
    twins: treat the ghosts that sit next to a higher-scored detection or ghost of their player in another class
    (within ``delta`` frames, :func:`twin_parents`) as its twins and fit ``twin_rate`` (shrunk per class toward the
    group's pooled rate with ``shrinkage``), ``twin_confusion`` and ``twin_offset_hist``; the other ghost
    parameters then come from the other ghosts (else twins are ordinary ghosts, as in the packaged fit).
    """
    gt, pred = load_playbyplay(gt, "gt"), load_playbyplay(pred, "pred")
    keys = [k for k in gt.keys if k in set(pred.keys)]
    if not keys:
        raise ValueError("fit_corruption: ground truth and predictions share no half key")
    C = NUM_ACTIONS + 1
    outcome_counts = np.zeros((C, len(BUCKETS), len(OUTCOMES)))
    confusion = np.zeros((C, C))
    ghost_confusion = np.zeros((C, C))
    gt_per_class = np.zeros(C)
    ghost_per_class = np.zeros(C)
    random_per_class = np.zeros(C)
    carry_per_class = np.zeros(C)
    possession_minutes = 0.0
    dup_per_class = np.zeros(C)
    parent_per_class = np.zeros(C)
    jitters, dup_offsets, anchor_offsets, missed_ghost_offsets = [], [], [], []
    class_jitters: dict[int, list[int]] = defaultdict(list)  # by the ground-truth event's class
    dup_after = np.zeros((C, 2))  # per class: duplicates after / before their parent
    ghost_same_team = ghost_neighbour = 0
    score_kinds = (*SCORE_KINDS, "carry") if carry else SCORE_KINDS
    scores: dict[str, dict[int, list[float]]] = {k: defaultdict(list) for k in (*SCORE_KINDS, "carry")}
    counts: Counter = Counter()
    minutes = 0.0
    randoms: list[list] = []
    dup_at_event = 0
    parent_scores, dup_parent_scores = [], []  # every non-duplicate prediction; the parent of every duplicate
    dup_ratios: list[float] = []  # duplicate score / parent score
    twin_counts = {g: np.zeros(C) for g in TWIN_PARENTS}  # twins per parent group and parent class
    twin_exposure = {g: np.zeros(C) for g in TWIN_PARENTS}  # non-twin predictions per group and class
    twin_confusion = np.zeros((C, C))
    twin_offsets: list[int] = []
    for key in keys:
        events, preds = gt.events[key], pred.events[key]
        labels = label_predictions(events, preds, delta=delta, threshold=threshold, jitter_window=jitter_window,
                                   ghost_window=ghost_window, dup_window=dup_window, carry=carry)
        minutes += free_minutes(events, ghost_window)
        possession_minutes += possession_frames(events) / FPS / 60.0
        randoms.append([p for p, kind in zip(labels.predictions, labels.kinds) if kind == "random"])
        detection_frame = {j: p[0] for p, kind, j in zip(labels.predictions, labels.kinds, labels.gt_index)
                           if kind in DETECTION_KINDS}
        parents = twin_parents(labels.predictions, labels.kinds, delta) if twins else [-1] * len(labels.kinds)
        for e, out in zip(events, labels.outcome):
            outcome_counts[e[3], BUCKETS.index(bucket_of(e)), OUTCOMES.index(out)] += 1
            gt_per_class[e[3]] += 1
        for n, (p, kind, j, off) in enumerate(zip(labels.predictions, labels.kinds, labels.gt_index, labels.offset)):
            counts[kind] += 1
            cls = p[3]
            if twins and twin_group(kind) is not None and parents[n] < 0:
                twin_exposure[twin_group(kind)][cls] += 1
            score_kind = "wrong" if kind.startswith("wrong") else kind
            scores[score_kind][cls].append(p[4])
            if kind == "duplicate":
                dup_per_class[cls] += 1
                dup_offsets.append(abs(off))
                parent = preds[j]  # a duplicate's reference is its parent prediction
                dup_at_event += int(on_other_action(events, p, parent, delta))
                dup_after[cls, int(off < 0)] += 1
                dup_parent_scores.append(float(parent[4]))
                dup_ratios.append(float(p[4]) / max(float(parent[4]), 1e-9))
                continue
            parent_per_class[cls] += 1
            parent_scores.append(float(p[4]))
            if kind in DETECTION_KINDS:
                jitters.append(off)
                class_jitters[events[j][3]].append(off)
                if kind == "wrong_class":
                    confusion[events[j][3], cls] += 1
            elif kind == "ghost" and parents[n] >= 0:
                parent = labels.predictions[parents[n]]
                twin_counts[twin_group(labels.kinds[parents[n]])][parent[3]] += 1
                twin_confusion[parent[3], cls] += 1
                twin_offsets.append(int(p[0] - parent[0]))
            elif kind == "ghost":
                e = events[j]
                ghost_per_class[e[3]] += 1
                ghost_confusion[e[3], cls] += 1
                if j in detection_frame:
                    anchor_offsets.append(int(p[0] - detection_frame[j]))
                else:
                    missed_ghost_offsets.append(off)
                ghost_same_team += int(p[1] == e[1])
                ghost_neighbour += int(any(abs(x[0] - p[0]) <= NEIGHBOUR_FRAMES and x[1] == p[1] and x[2] == p[2]
                                           for x in events))
            elif kind == "carry":
                carry_per_class[cls] += 1
            else:
                random_per_class[cls] += 1
    counts["num_gt"] = int(gt_per_class.sum())

    # outcome probabilities, shrunk cell -> class -> global
    global_p = outcome_counts.sum(axis=(0, 1)) / max(outcome_counts.sum(), 1)
    outcome: dict[str, dict[str, list[float]]] = {}
    for c in range(1, C):
        cls_counts = outcome_counts[c].sum(axis=0)
        cls_p = (cls_counts + shrinkage * global_p) / (cls_counts.sum() + shrinkage)
        outcome[str(c)] = {}
        for b, name in enumerate(BUCKETS):
            cell = outcome_counts[c, b]
            p = (cell + shrinkage * cls_p) / (cell.sum() + shrinkage)
            outcome[str(c)][name] = [float(x) for x in p / p.sum()]

    def rows(matrix: np.ndarray, diagonal: bool) -> list[list[float]]:
        out = [[0.0] * C]
        for c in range(1, C):
            row = matrix[c].copy()
            row[1:] += 0.5
            row[0] = 0.0
            if not diagonal:
                row[c] = 0.0
            out.append([float(x) for x in row / row.sum()])
        return out

    pooled = {k: [s for v in scores[k].values() for s in v] for k in score_kinds}
    score_quantiles: dict[str, dict[str, list[float]]] = {}
    for kind in score_kinds:
        all_scores = pooled[kind] or [s for v in pooled.values() for s in v] or [threshold]
        table = {"all": _quantiles(all_scores)}
        for c in range(1, C):
            n = len(scores[kind][c])
            if n >= min_score_samples:
                weight = n / (n + score_shrinkage)
                table[str(c)] = [weight * own + (1.0 - weight) * shared
                                 for own, shared in zip(_quantiles(scores[kind][c]), table["all"])]
        score_quantiles[kind] = table

    num_ghosts = max(int(ghost_per_class.sum()), 1)

    def twin_rates(group: str) -> list[float]:
        found, exposed = twin_counts[group], twin_exposure[group]
        pooled_rate = found.sum() / max(exposed.sum(), 1)
        return [0.0] + [float((found[c] + shrinkage * pooled_rate) / (exposed[c] + shrinkage)) for c in range(1, C)]

    params = CorruptionParams(
        outcome=outcome,
        jitter_hist=_hist(jitters, -jitter_window, jitter_window, smooth=0.0),
        class_confusion=rows(confusion, diagonal=False),
        ghost_rate=[0.0] + [float(ghost_per_class[c] / max(gt_per_class[c], 1)) for c in range(1, C)],
        ghost_offset_hist=_hist(missed_ghost_offsets, -ghost_window, ghost_window),
        ghost_anchor_hist=_hist(anchor_offsets, -jitter_window, jitter_window),
        dup_at_player_event=dup_at_event / max(dup_per_class.sum(), 1),
        ghost_confusion=rows(ghost_confusion, diagonal=True),
        ghost_same_team=ghost_same_team / num_ghosts,
        ghost_neighbour_player=ghost_neighbour / num_ghosts,
        random_rate_per_min=[0.0] + [float(random_per_class[c] / max(minutes, 1e-9)) for c in range(1, C)],
        dup_rate=[0.0] + [float(dup_per_class[c] / max(parent_per_class[c], 1)) for c in range(1, C)],
        dup_offset_hist=_hist(dup_offsets, 1, dup_window),
        dup_parent_tilt=parent_score_tilt(parent_scores, dup_parent_scores, dup_tilt_bins),
        dup_score_ratio=_quantiles(np.clip(dup_ratios, 0.0, 1.0)) if dup_tilt_bins > 0 and dup_ratios else None,
        jitter_hist_per_class=None if per_class_offsets is None else per_class_hists(
            class_jitters, jitters, jitter_window, per_class_offsets),
        dup_after=None if per_class_offsets is None else shrunk_fractions(dup_after, per_class_offsets),
        dup_min_gap=0 if per_class_offsets is None or not dup_offsets else int(min(dup_offsets)),
        carry_rate_per_min=[0.0] + [float(carry_per_class[c] / max(possession_minutes, 1e-9)) for c in range(1, C)]
        if carry else None,
        twin_rate={g: twin_rates(g) for g in TWIN_PARENTS} if twins else None,
        twin_confusion=rows(twin_confusion, diagonal=False) if twins else None,
        twin_offset_hist=_hist(twin_offsets, -delta, delta) if twins else None,
        score_quantiles=score_quantiles,
        match_window=delta,
        jitter_window=jitter_window,
        ghost_window=ghost_window,
        dup_window=dup_window,
        **random_bursts(randoms, ghost_window),
        source={"gt": gt.source, "pred": pred.source, "keys": keys, "num_gt": counts["num_gt"],
                "num_pred": int(sum(counts[k] for k in PREDICTION_KINDS)), "free_minutes": minutes,
                **({"possession_minutes": possession_minutes} if carry else {}),
                "counts": {k: int(counts[k]) for k in PREDICTION_KINDS if carry or k != "carry"},
                "delta": delta, "threshold": threshold,
                "shrinkage": shrinkage, "min_score_samples": min_score_samples,
                "score_shrinkage": score_shrinkage, "per_class_offsets": per_class_offsets,
                "per_class": {"outcome": outcome_counts.sum(axis=1).astype(int).tolist(),
                              "ghost": ghost_per_class.astype(int).tolist(),
                              "random": random_per_class.astype(int).tolist(),
                              **({"carry": carry_per_class.astype(int).tolist()} if carry else {}),
                              **({f"twin_{g}": twin_counts[g].astype(int).tolist() for g in TWIN_PARENTS}
                                 if twins else {}),
                              "duplicate": dup_per_class.astype(int).tolist()}},
    )
    # the generator keeps the player (a), keeps the class (b) or draws both afresh (1 - a - b), and a fresh draw
    # repeats the class by chance with probability cc = sum(p^2) and then changes the player, else repeats the
    # player with probability cp: observed same player = a + (1 - a - b)(1 - cc) cp, same class = b + (1 - a - b) cc
    class_probs = np.asarray(params.random_rate_per_min[1:]) / max(sum(params.random_rate_per_min), 1e-12)
    cc = float(np.sum(class_probs ** 2))
    cp = float(np.mean([sum(0.5 * np.sum(w ** 2) for _, w in active_players(gt.events[k]).values()) for k in keys]))
    observed = {"random_burst_same_player": params.random_burst_same_player,
                "random_burst_same_class": params.random_burst_same_class}
    k1, k2 = (1.0 - cc) * cp, cc
    a, b = observed["random_burst_same_player"], observed["random_burst_same_class"]
    if 1.0 - k1 - k2 > 1e-6:  # not a single class and player (then every repeat is by chance)
        a, b = np.linalg.solve([[1.0 - k1, -k1], [-k2, 1.0 - k2]], [a - k1, b - k2])
    a, b = max(float(a), 0.0), max(float(b), 0.0)
    if a + b > 1.0:
        a, b = a / (a + b), b / (a + b)
    params.random_burst_same_player, params.random_burst_same_class = a, b
    params.source["random_bursts_observed"] = observed
    params.source["dup_at_player_event_observed"] = params.dup_at_player_event
    if spotter_nms == "auto":
        spotter_nms = nms_window_of(pred.subset(keys), dup_window)
    if isinstance(spotter_nms, str) or int(spotter_nms) < 0:
        raise ValueError(f"fit_corruption: spotter_nms must be 'auto' or a window >= 0, got {spotter_nms!r}")
    params.spotter_nms = int(spotter_nms)
    if calibrate_iters:
        params = calibrate_corruption(params, gt.subset(keys), iters=calibrate_iters, seeds=calibrate_seeds)
    return params


def calibrate_corruption(params: CorruptionParams, gt: PlayByPlay, *, iters: int = 2,
                         seeds: int = 4) -> CorruptionParams:
    """Rescale the rates so that corrupting ``gt`` and labelling the result gives the fitted label counts.

    Labelling is ambiguous (a ghost that lands on a missed event's player and class is labelled
    ``detected``), so the raw outcome probabilities over-produce the labelled detections (recall comes out
    ~0.03 too high). Each iteration corrupts ``gt`` with ``seeds`` seeds, labels the output with
    :func:`fit_corruption` (uncalibrated) and multiplies, per class, the four non-missed outcome
    probabilities by ``target count / simulated count`` (the rest goes to ``missed``), and the two burst
    repeat probabilities by ``target fraction / simulated fraction`` (a burst member that repeats an earlier,
    not only the previous, member's player and class is labelled a duplicate, so the raw values under-produce
    repeats). The false-positive rates are left as fitted: the number of predictions per class already comes
    out right.
    """
    target = params.source["per_class"]
    target_repeats = params.source.get("random_bursts_observed", {})
    for it in range(iters):
        fits = [fit_corruption(gt, corrupt_playbyplay(gt, params, seed=10_000 * (it + 1) + s),
                               calibrate_iters=0, delta=params.match_window, threshold=params.source["threshold"],
                               jitter_window=params.jitter_window, ghost_window=params.ghost_window,
                               dup_window=params.dup_window,
                               carry=params.carry_rate_per_min is not None,
                               twins=params.twin_rate is not None).source for s in range(seeds)]
        sims = [fit["per_class"] for fit in fits]
        mean = {name: np.mean([np.asarray(sim[name], dtype=np.float64) for sim in sims], axis=0) for name in target}
        tgt = {name: np.asarray(target[name], dtype=np.float64) for name in target}

        def ratio(t, m):
            return float(t / m) if t > 0 and m > 0 else 1.0

        params = copy.deepcopy(params)
        for c in range(1, NUM_ACTIONS + 1):
            r = [ratio(tgt["outcome"][c][o], mean["outcome"][c][o]) for o in range(len(OUTCOMES) - 1)]
            for b in BUCKETS:
                probs = np.asarray(params.outcome[str(c)][b][:-1]) * r
                if probs.sum() > 0.999:
                    probs *= 0.999 / probs.sum()
                params.outcome[str(c)][b] = [float(x) for x in probs] + [float(1.0 - probs.sum())]
        if params.carry_rate_per_min is not None:  # generated carries turn into duplicates, ghosts into carries
            carry_rates = params.carry_rate_per_min
            params.carry_rate_per_min = [0.0] + [carry_rates[c] * ratio(tgt["carry"][c], mean["carry"][c])
                                                 for c in range(1, NUM_ACTIONS + 1)]
            params.dup_rate = [0.0] + [params.dup_rate[c] * ratio(tgt["duplicate"][c], mean["duplicate"][c])
                                       for c in range(1, NUM_ACTIONS + 1)]
        if params.twin_rate is not None:  # twins landing on another event of their class are labelled otherwise
            params.twin_rate = {g: [rate * ratio(tgt[f"twin_{g}"].sum(), mean[f"twin_{g}"].sum()) for rate in rates]
                                for g, rates in params.twin_rate.items()}
        if "dup_at_player_event_observed" in params.source:
            simulated = float(np.mean([fit["dup_at_player_event_observed"] for fit in fits]))
            params.dup_at_player_event = float(np.clip(
                params.dup_at_player_event * ratio(params.source["dup_at_player_event_observed"], simulated), 0.0, 1.0))
        if len(params.random_burst_size) > 1:
            for name, value in target_repeats.items():
                simulated = float(np.mean([fit["random_bursts_observed"][name] for fit in fits]))
                setattr(params, name, float(np.clip(getattr(params, name) * ratio(value, simulated), 0.0, 1.0)))
            total = params.random_burst_same_player + params.random_burst_same_class
            if total > 1.0:
                params.random_burst_same_player /= total
                params.random_burst_same_class /= total
    params.source = {**params.source, "calibration": {"iters": iters, "seeds": seeds}}
    return params
