"""Reference points for a trained pipeline: class-prior predictions and an untrained model.

Class priors use only what a model could learn without looking at the video: the class frequencies and the
event rate (events per frame of the halves' visible span) of the **training** ground truth, and the tactical
rows of the half being predicted (who has a box at a frame). Three rules, each drawn with a few seeds:

* ``frequency``: ``round(rate x frames)`` events per half at uniform random frames of its visible span, each
  with a class drawn from the training class frequencies and a random player with a box at that frame;
* ``majority``: the same frames and players, every event of the most frequent training class;
* ``dense``: one event every 25 frames (the matcher accepts +-12 frames, so denser events cannot match more
  ground truth), most frequent class, random player with a box.

The untrained model is the frame model with its initial weights (the seed training starts from), run over
the halves with the baseline's NMS, as the trained one.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fpspot.data.footpass import PlayByPlay, TacticalFile, read_playbyplay
from fpspot.data.tracks import HalfRows
from fpspot.pipeline.layout import HalfSet
from fpspot.schema import NUM_ACTIONS, Col, Prediction

PRIOR_RULES = ("frequency", "majority", "dense")
DENSE_STEP = 25


def training_statistics(train: HalfSet) -> tuple[np.ndarray, float]:
    """``(class frequencies (8,), events per frame)`` of the training halves' ground truth (frames: the
    visible span of each half, first to last frame with a box)."""
    gt = read_playbyplay(train.ground_truth, "gt")
    counts = np.zeros(NUM_ACTIONS, np.float64)
    for events in gt.events.values():
        for event in events:
            counts[event.cls - 1] += 1
    frames = 0
    with TacticalFile(train.layout.tactical(train.split)) as tf:
        for key in gt.keys:
            if key in tf:
                rows = HalfRows(tf.read(key), key)
                if rows.first_visible is not None:
                    frames += rows.last_visible - rows.first_visible + 1
    if counts.sum() == 0 or frames == 0:
        raise ValueError(f"{train.ground_truth}: no events or no visible frames to measure a class prior from")
    return counts / counts.sum(), float(counts.sum() / frames)


def _actors(rows: HalfRows) -> tuple[np.ndarray, np.ndarray]:
    """``(frames, rows)`` of the rows with a box and a shirt number (candidate actors)."""
    keep = np.isfinite(rows.rows[:, Col.ROI_X]) & np.isfinite(rows.rows[:, Col.SHIRT_NUMBER])
    return rows.frames[keep], rows.rows[keep]


def prior_half(rows: HalfRows, rule: str, frequencies: np.ndarray, rate: float,
               rng: np.random.Generator) -> list[Prediction]:
    """Class-prior events of one half (see the module docstring)."""
    if rule not in PRIOR_RULES:
        raise ValueError(f"unknown prior rule {rule!r}; use one of {', '.join(PRIOR_RULES)}")
    frames, candidates = _actors(rows)
    if frames.size == 0:
        return []
    lo, hi = int(frames[0]), int(frames[-1])
    if rule == "dense":
        chosen = np.arange(lo, hi + 1, DENSE_STEP)
    else:
        chosen = np.sort(rng.integers(lo, hi + 1, size=int(round(rate * (hi - lo + 1)))))
    majority = int(np.argmax(frequencies)) + 1
    events = []
    for frame in chosen:
        start, stop = np.searchsorted(frames, [frame, frame + 1])
        if stop == start:  # no box at this frame: the nearest frame that has one
            nearest = min(int(np.searchsorted(frames, frame)), frames.size - 1)
            start, stop = np.searchsorted(frames, [frames[nearest], frames[nearest] + 1])
        row = candidates[int(rng.integers(start, stop))]
        cls = int(rng.choice(NUM_ACTIONS, p=frequencies)) + 1 if rule == "frequency" else majority
        events.append(Prediction(int(row[Col.FRAME]), int(row[Col.LEFT_TO_RIGHT]), int(row[Col.SHIRT_NUMBER]), cls,
                                 1.0))
    return events


def prior_predictions(half_set: HalfSet, rule: str, frequencies: np.ndarray, rate: float, seed: int) -> PlayByPlay:
    """Class-prior predictions of every half of ``half_set``."""
    keys = half_set.keys()
    rng = np.random.default_rng([seed, PRIOR_RULES.index(rule)])
    with TacticalFile(half_set.layout.tactical(half_set.split)) as tf:
        events = {key: prior_half(HalfRows(tf.read(key), key), rule, frequencies, rate, rng) for key in keys}
    return PlayByPlay("pred", keys, events)


def prior_scores(train: HalfSet, half_set: HalfSet, seeds: int = 3) -> dict:
    """Macro and micro F1 of each prior rule (mean over ``seeds`` draws) and the best rule by macro F1."""
    from fpspot.eval import evaluate

    frequencies, rate = training_statistics(train)
    rules = {}
    for rule in PRIOR_RULES:
        reports = [evaluate(prior_predictions(half_set, rule, frequencies, rate, seed), half_set.ground_truth)
                   for seed in range(max(1, seeds))]
        rules[rule] = {"macro_f1": round(float(np.mean([r.macro_f1 for r in reports])), 4),
                       "micro_f1": round(float(np.mean([r.micro_f1 for r in reports])), 4)}
    best = max(rules, key=lambda r: (rules[r]["macro_f1"], rules[r]["micro_f1"]))
    return {"rules": rules, "best": best, "events_per_minute": round(rate * 25 * 60, 2),
            "class_frequencies": [round(float(f), 4) for f in frequencies]}


def untrained_scores(arch: str, model_config: dict, seed: int, sets: Sequence[HalfSet], scheme: str,
                     batch_size: int | None) -> dict:
    """Macro and micro F1 of the untrained frame model (initial weights from ``seed``) on each set. Every
    process (halves shared out)."""
    import torch

    import fpspot
    from fpspot.models import build

    torch.manual_seed(seed)
    model = build(arch, **model_config).eval()
    out = {}
    for half_set in sets:
        pred = fpspot.infer(model, half_set.data_dir, split=half_set.split, scheme=scheme, batch_size=batch_size,
                            show_progress=False)
        report = fpspot.evaluate(pred, half_set.ground_truth)
        out[half_set.name] = {"macro_f1": round(report.macro_f1, 4), "micro_f1": round(report.micro_f1, 4),
                              "events": sum(len(v) for v in pred.events.values())}
    return out


__all__ = ["DENSE_STEP", "PRIOR_RULES", "prior_half", "prior_predictions", "prior_scores", "training_statistics",
           "untrained_scores"]
