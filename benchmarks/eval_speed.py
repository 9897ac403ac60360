"""Evaluator speed: score the 96 real training halves against a perturbed copy of themselves.

The copy has about 90,000 predictions: every event kept with probability 0.85, frame jitter of up to
+-15 frames, 10 % wrong jerseys, plus false positives (15 % of the event count) at random frames. We time
``fpspot.evaluate`` and a plain Python statement of the spec's loop (``spec_loop_counts``: for each
prediction, argmin over the whole ground-truth list of its group) on the same data, single-threaded, and
check that both give the same counts.

    python benchmarks/eval_speed.py [--data ../shared/data/footpass] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

from fpspot.data.footpass import PlayByPlay, read_playbyplay
from fpspot.eval import evaluate
from fpspot.eval.metric import spec_loop_counts
from fpspot.schema import ACTION_CLASSES, Prediction

REPO = Path(__file__).resolve().parents[1]


def perturb(gt: PlayByPlay, seed: int = 0) -> PlayByPlay:
    """A realistic noisy copy of ``gt`` as predictions (see module docstring)."""
    rng = np.random.default_rng(seed)
    events = {}
    for key in gt.keys:
        out = []
        evs = gt.events[key]
        for e in evs:
            if rng.random() < 0.85:
                shirt = e.shirt if rng.random() > 0.1 else int(rng.integers(1, 40))
                out.append(Prediction(max(0, e.frame + int(rng.integers(-15, 16))), e.team, shirt, e.cls,
                                      float(rng.uniform(0.2, 1.0))))
        lo, hi = evs[0].frame, evs[-1].frame
        for _ in range(int(0.15 * len(evs))):
            out.append(Prediction(int(rng.integers(lo, hi + 1)), int(rng.integers(0, 2)), int(rng.integers(1, 30)),
                                  int(rng.integers(1, 9)), float(rng.uniform(0.0, 0.8))))
        events[key] = out
    return PlayByPlay("pred", list(gt.keys), events)


def best_time(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=os.environ.get("FPSPOT_FOOTPASS_DIR", REPO.parent / "shared/data/footpass"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    gt = read_playbyplay(Path(args.data) / "playbyplay_train.json")
    pred = perturb(gt)
    n_pred = len(pred)
    t_fast = best_time(lambda: evaluate(pred, gt), args.repeat)
    t_loop = best_time(lambda: spec_loop_counts(pred, gt), 1)
    report = evaluate(pred, gt)
    loop = spec_loop_counts(pred, gt)
    same = all((report.per_class[n].tp, report.per_class[n].fp) == loop[c][:2] for c, n in enumerate(ACTION_CLASSES, 1))
    result = {"halves": len(gt.keys), "gt_events": len(gt), "predictions": n_pred, "evaluate_s": t_fast,
              "spec_loop_s": t_loop, "speedup": t_loop / t_fast, "same_counts": same,
              "micro_f1": report.micro_f1, "macro_f1": report.macro_f1}
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
