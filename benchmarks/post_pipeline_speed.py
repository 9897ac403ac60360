"""Whole post-processing pipeline on one half, wall-clock.

* ``events``: the committed ``recipes/configs/post_footpass_val.yaml`` (shift, jersey re-assignment,
  TAAD + DST fusion, gating) on one real half (the released TAAD and DST predictions of game_18_H1);
* ``logits``: two models' logits of a 75,000-frame half (synthetic, shaped like a trained spotter's)
  through ``average_logits -> peaks (NMS 25) -> refine_logits -> reassign_jersey_logits -> gate``.

    python benchmarks/post_pipeline_speed.py [--data ../shared/data/footpass] [--repeat 5] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from fpspot.data.footpass import read_playbyplay
from fpspot.post.events import HalfLogits
from fpspot.post.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))
from post_peaks_speed import realistic_logits  # noqa: E402


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "footpass"))
    parser.add_argument("--config", default=str(REPO / "recipes" / "configs" / "post_footpass_val.yaml"))
    parser.add_argument("--key", default="game_18_H1")
    parser.add_argument("--frames", type=int, default=75_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    results = {}

    data = Path(args.data)
    preds = {name: read_playbyplay(data / f"playbyplay_{name.upper()}_val_g18_g24.json").subset([args.key])
             for name in ("taad", "dst")}
    pipe = Pipeline.load(args.config)
    seconds, out = best_time(lambda: pipe.apply(preds), args.repeat)
    results["events"] = {"key": args.key, "input_events": {n: len(p) for n, p in preds.items()},
                         "output_events": len(out), "seconds": seconds}
    print(f"events pipeline ({args.config}) on {args.key}: {sum(map(len, preds.values()))} events in, "
          f"{len(out)} out, {seconds * 1e3:.1f} ms")

    rng = np.random.default_rng(0)
    jerseys = rng.integers(1, 40, size=(26, args.frames))
    halves = {name: {"game_0_H1": HalfLogits(realistic_logits(args.frames, seed=s), jerseys)}
              for s, name in enumerate(("a", "b"))}
    logit_pipe = Pipeline(["a", "b"], [
        {"step": "average_logits", "inputs": ["a", "b"], "weights": [1.0, 1.0], "output": "avg"},
        {"step": "peaks", "input": "avg", "output": "events", "window": 25},
        {"step": "refine_logits", "input": "events", "logits": "avg", "radius": 3},
        {"step": "reassign_jersey_logits", "input": "events", "logits": "avg", "radius": 3, "margin": 0.3},
        {"step": "gate", "input": "events", "thresholds": 0.3},
    ], "events")
    seconds, out = best_time(lambda: logit_pipe.apply(halves), args.repeat)
    results["logits"] = {"frames": args.frames, "models": 2, "output_events": len(out), "seconds": seconds}
    print(f"logits pipeline (2 models x (9, 26, {args.frames}) -> average -> NMS -> refine -> jersey -> gate): "
          f"{len(out)} events, {seconds * 1e3:.1f} ms")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
