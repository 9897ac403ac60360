"""Cost of corrupting one training window of the event DST: ``draw_index`` against ``rng.choice``.

The event DST recipe corrupts every training window afresh each epoch, in the training processes
(``fpspot.data.event_windows.WindowCorruptor``: corruption + tokenising). Its categorical draws used
``rng.choice(values, p=p)``, whose per-call validation dominated; they now go through
``fpspot.data.corrupt.draw_index`` and cached cumulative sums, which draw exactly the same values. This
script times the corruptor on real training windows both ways, side by side (rounds alternated, median), and
checks that both give identical tokens.

    python benchmarks/corruption_speed.py [--windows 1000] [--rounds 3]

The ``rng.choice`` way restores the previous code's draws by patching: ``draw_index`` and the sampler's
offset draw call ``rng.choice`` again (the score quantiles stay cached as arrays, so this reference is, if
anything, a little faster than the previous code).
Annotations: FOOTPASS (Ochin et al., CVIU 2026), CC BY-NC 4.0.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import fpspot.data.corrupt as corrupt
from fpspot.data.event_windows import WindowConfig, WindowCorruptor, iter_windows
from fpspot.data.footpass import read_playbyplay

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def rng_choice_draws():
    """Draw with ``rng.choice(..., p=...)`` as the code did before ``draw_index`` (same values, slower)."""
    sampler = corrupt._Sampler
    saved = corrupt.draw_index, sampler.__dict__["_hist"], sampler.offset

    def draw_with_choice(rng, p):
        return int(rng.choice(len(p), p=p))

    def hist_with_probs(offsets, probs):  # keep the arrays rng.choice needs
        return np.asarray(offsets, dtype=np.int64), np.asarray(probs, dtype=np.float64)

    def offset_with_choice(self, hist):
        return int(self.rng.choice(hist[0], p=hist[1]))

    corrupt.draw_index, sampler._hist, sampler.offset = draw_with_choice, staticmethod(hist_with_probs), offset_with_choice
    try:
        yield
    finally:
        corrupt.draw_index, sampler._hist, sampler.offset = saved


def time_corruptor(corruptor: WindowCorruptor, windows: list[dict]) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    tokens = [corruptor(w) for w in windows]
    return (time.perf_counter() - start) / len(windows) * 1e3, tokens


def same_tokens(a: list[dict], b: list[dict]) -> bool:
    return all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x if k != "meta") for x, y in zip(a, b))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "footpass" / "playbyplay_train.json"))
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gt = read_playbyplay(args.data, "gt")
    windows = list(itertools.islice(iter_windows(gt, WindowConfig(750, 375, 125)), 0, None, 7))[:args.windows]
    # the recipe's corruptor: strengths log-uniform in [0.05, 1.5] or 1 (half the windows), augmentations on
    corruptor = WindowCorruptor(corrupt.CorruptionParams.load(), seed=0, strength=(0.05, 1.5, 0.5), augment=True,
                                max_players=64)
    times: dict[str, list[float]] = {"rng.choice": [], "draw_index": []}
    identical = True
    for _ in range(args.rounds):
        with rng_choice_draws():
            ms, reference = time_corruptor(corruptor, windows)
        times["rng.choice"].append(ms)
        ms, tokens = time_corruptor(corruptor, windows)
        times["draw_index"].append(ms)
        identical &= same_tokens(reference, tokens)
    print(f"machine: {platform.machine()}, {len(windows)} training windows, {args.rounds} rounds alternated (median)")
    for name, values in times.items():
        print(f"  {name:<11} {statistics.median(values):6.2f} ms per window (corruption + tokens)")
    speedup = statistics.median(times["rng.choice"]) / statistics.median(times["draw_index"])
    print(f"speed-up {speedup:.2f}x; identical tokens: {identical}")
    if not identical:
        raise SystemExit("the two ways of drawing gave different tokens")


if __name__ == "__main__":
    main()
