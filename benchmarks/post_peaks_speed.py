"""Logits to events on one 75,000-frame half (9 x 26 x T): ``fpspot.post.peaks.logits_to_events`` vs a
direct Python statement of the spec's loop (§2.5), same input, same output. Two statements of the loop:
``pure``, the loop in plain Python after the float64 softmax (candidates, sort, greedy suppression), and
``numpy`` (``fpspot.post.peaks.logits_to_events_reference``), the baseline's own style: full float64
softmax, then per slot and class a while loop over kept frames with numpy suppression.

Two inputs:

* ``realistic``: float32 logits shaped like a trained spotter's: background logit ~6 above the others with
  unit noise, and ~3,000 Gaussian bumps (one action class of one slot, +-15 frames) per half, which gives
  a few thousand events, as the released TAAD files have per half;
* ``random``: i.i.d. N(0, 1) logits, the worst case (8 of 9 cells are candidates, ~390k events). The
  loops are timed on a slice of ``--random-slice`` frames and extrapolated linearly to the half (a lower
  bound for the pure loop, whose suppression is quadratic in the candidates of a slot).

    python benchmarks/post_peaks_speed.py [--frames 75000] [--repeat 3] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from fpspot.post.peaks import class_probabilities, logits_to_events, logits_to_events_reference
from fpspot.schema import Prediction


def realistic_logits(num_frames: int, seed: int = 0, events_per_half: int = 3000) -> np.ndarray:
    """``(9, 26, T)`` float32 logits with background dominant and sparse action bumps."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0.0, 1.0, size=(9, 26, num_frames)).astype(np.float32)
    x[0] += 6.0
    n = int(events_per_half * num_frames / 75_000)
    for slot, cls, t, amp in zip(rng.integers(0, 26, n), rng.integers(1, 9, n), rng.integers(0, num_frames, n),
                                 rng.uniform(5.0, 11.0, n)):
        lo, hi = max(0, t - 15), min(num_frames, t + 16)
        x[cls, slot, lo:hi] += (amp * np.exp(-0.5 * ((np.arange(lo, hi) - t) / 4.0) ** 2)).astype(np.float32)
    return x


def pure_python_spec_loop(logits: np.ndarray, jerseys: np.ndarray, window: int = 25) -> list[Prediction]:
    """The spec's loop (§2.5) stated in plain Python after the float64 softmax: per slot and class, the
    candidate frames, sorted by score, greedy keep / suppress ``|t - t0| <= window``."""
    prob = class_probabilities(logits)
    cls, score = prob.argmax(axis=0).tolist(), prob.max(axis=0).tolist()
    out = []
    for m in range(26):
        cls_m, score_m = cls[m], score[m]
        for c in range(1, 9):
            alive = [t for t in range(len(cls_m)) if cls_m[t] == c]
            alive.sort(key=lambda t: -score_m[t])
            while alive:
                t0 = alive[0]
                out.append(Prediction(t0, m // 13, int(jerseys[m, t0]), c, score_m[t0]))
                alive = [t for t in alive[1:] if abs(t - t0) > window]
    out.sort(key=lambda p: (-p.score, p.frame))
    return out


def best_time(fn, repeat: int) -> tuple[float, object]:
    best, out = float("inf"), None
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t0)
    return best, out


def same_events(a, b) -> bool:
    """Same frames, slots, classes, order; scores equal to 1e-12 (softmax evaluated on different shapes)."""
    return len(a) == len(b) and all(p[:4] == q[:4] and abs(p[4] - q[4]) <= 1e-12 for p, q in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=75_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--random-slice", type=int, default=7_500, help="frames of the random input run by the loop")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()

    rng = np.random.default_rng(1)
    jerseys = rng.integers(1, 40, size=(26, args.frames))
    results = {"frames": args.frames}

    def measure(name, logits, frames):
        fast_s, fast = best_time(lambda: logits_to_events(logits, jerseys), args.repeat)
        n = min(frames, args.frames)
        part_s, part = best_time(lambda: logits_to_events(logits[..., :n], jerseys[:, :n]), args.repeat)
        row = {"events": len(fast), "fast_s": fast_s, "loop_frames": n}
        for loop_name, loop in (("numpy", logits_to_events_reference), ("pure", pure_python_spec_loop)):
            loop_s, ref = best_time(lambda: loop(logits[..., :n], jerseys[:, :n]), 2)
            row[loop_name] = {"loop_s": loop_s, "loop_s_per_half": loop_s * args.frames / n,
                              "speedup": loop_s * args.frames / n / fast_s, "identical": same_events(part, ref)}
        results[name] = row
        print(f"{name:9s}: {len(fast):7d} events, fast {fast_s * 1e3:7.1f} ms per half; loops run on {n} frames"
              + ("" if n == args.frames else " (times extrapolated linearly to the half)"))
        for loop_name in ("numpy", "pure"):
            r = row[loop_name]
            print(f"           {loop_name:5s} loop {r['loop_s_per_half']:8.2f} s per half  speed-up "
                  f"{r['speedup']:7.1f}x  identical events {r['identical']}")

    measure("realistic", realistic_logits(args.frames), args.frames)
    measure("random", rng.normal(size=(9, 26, args.frames)).astype(np.float32), args.random_slice)
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(results, handle, indent=2)


if __name__ == "__main__":
    main()
