"""How a spotter's false positives are laid out: figures that compare a real prediction file with ground truth
corrupted by a fit (:func:`false_positive_layout`), beyond the rates the fit matches by construction."""

from __future__ import annotations

import numpy as np

from fpspot.data.corrupt.fit import random_bursts
from fpspot.data.corrupt.labels import label_predictions, on_other_action, same_group_gaps, twin_parents
from fpspot.data.corrupt.params import DETECTION_KINDS
from fpspot.data.footpass import PlayByPlay
from fpspot.schema import NUM_ACTIONS


def false_positive_layout(gt: PlayByPlay, pred: PlayByPlay, model=None) -> dict[str, float]:
    """Figures of how a prediction file's false positives are laid out against the ground truth of its halves
    (random bursts, ghosts next to a detection, duplicates and their parents, predictions inside their
    player's possession, twins; see :mod:`fpspot.data.corrupt`), and with an event DST ``model`` the mean keep
    probability it gives each error kind. ``recipes/fit_corruption.py --structure`` prints them for the real file
    and for the ground truth corrupted by a fit, side by side."""
    randoms, ghost_gap, dup_near, dup_close, same_gaps, keep = [], [], [], [], [], {}
    dup_scores, parent_scores = [], []
    carries = num_events = 0
    twins, ghosts = 0, 0
    for key in gt.keys:
        preds = [tuple(p) for p in pred.events.get(key, []) if 1 <= int(p[3]) <= NUM_ACTIONS]
        events = gt.events[key]
        labels = label_predictions(events, preds)
        relabelled = label_predictions(events, preds, carry=True)  # the same predictions with the carry kind
        carry_kinds = {tuple(p): kind for p, kind in zip(relabelled.predictions, relabelled.kinds)}
        carries += relabelled.kinds.count("carry")
        num_events += len(events)
        same_gaps += same_group_gaps(preds).tolist()
        randoms.append([p for p, kind in zip(labels.predictions, labels.kinds) if kind == "random"])
        made = np.asarray(sorted(p[0] for p, kind in zip(labels.predictions, labels.kinds)
                                 if kind in DETECTION_KINDS))
        twin_of = twin_parents(labels.predictions, labels.kinds)
        twins += sum(parent >= 0 for parent in twin_of)
        ghosts += labels.kinds.count("ghost")
        for p, kind, j in zip(labels.predictions, labels.kinds, labels.gt_index):
            if kind == "ghost" and made.size:
                ghost_gap.append(int(np.abs(made - p[0]).min()))
            elif kind == "duplicate":
                dup_near.append(on_other_action(events, p, preds[j]))
                dup_close.append(abs(int(p[0]) - int(preds[j][0])) <= 12)
                dup_scores.append(float(p[4]))
                parent_scores.append(float(preds[j][4]))
        if model is not None:
            from fpspot.post.event_dst import denoise_half

            _, details = denoise_half(model, preds, strength=1.0, min_score=0.0, return_details=True)
            index = {p: i for i, p in enumerate(preds)}
            for p, kind, parent in zip(labels.predictions, labels.kinds, twin_of):
                keep.setdefault(kind, []).append(float(details["keep_prob"][index[tuple(p)]]))
                if parent >= 0:
                    keep.setdefault("twin (a ghost next to its player's other class)", []).append(
                        float(details["keep_prob"][index[tuple(p)]]))
                if carry_kinds[tuple(p)] == "carry":
                    keep.setdefault("carry (a ghost or random inside its player's possession)", []).append(
                        float(details["keep_prob"][index[tuple(p)]]))
    bursts = random_bursts(randoms)
    sizes = np.asarray(bursts["random_burst_size"])
    out = {"random burst size (mean)": float(np.dot(np.arange(1, sizes.size + 1), sizes)),
           "random bursts: same player": bursts["random_burst_same_player"],
           "random bursts: same class": bursts["random_burst_same_class"],
           "ghost within 2 frames of a prediction": float(np.mean(np.asarray(ghost_gap) <= 2)),
           "duplicate on another action of its player": float(np.mean(dup_near)),
           # a spotter's per-(player, class) NMS (TAAD: 25 frames, spec section 2.5) leaves no such pairs
           "duplicate within 12 frames of its parent": float(np.mean(dup_close)),
           "same player and class <= 25 frames apart": float(np.mean(np.asarray(same_gaps) <= 25)),
           # duplicates' scores: TAAD repeats its confident detections (parents score high), and a duplicate is
           # never scored exactly like its parent
           "duplicate score (median)": float(np.median(dup_scores)),
           "score of a duplicate's parent (median)": float(np.median(parent_scores)),
           "duplicates scored exactly like their parent": float(np.mean(np.isclose(dup_scores, parent_scores))),
           # TAAD fires on a player between two of his consecutive events (mostly drives during a carry)
           "inside their player's possession, per event": carries / max(num_events, 1),
           # TAAD fires several classes on one player at once
           "ghosts that are twins (player's other class)": twins / max(ghosts, 1)}
    out.update({f"keep probability: {kind}": float(np.mean(v)) for kind, v in sorted(keep.items())})
    return out
