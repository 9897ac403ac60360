"""Cost of one training window of the event DST: reading it from a shard, corrupting and tokenising it.

The event DST recipe corrupts every training window afresh each epoch, in the training processes
(``fpspot.data.event_windows.WindowCorruptor``: corruption + tokenising). This script times, side by side
(rounds alternated, median) on real training windows, and checks that every way gives identical tokens:

* categorical draws with ``rng.choice(values, p=p)`` (the first code; its per-call validation dominated),
  with ``fpspot.data.corrupt.draw_index`` on tables rebuilt for every window (the code before
  :class:`~fpspot.data.corrupt.SamplerTables`), and with tables built once per parameter set (the recipe now);
* reading the windows back from shards (``window_dataset``, decode only) written by ``webdataset.TarWriter``
  (a pax header before every member: its mtimes are floats) and by the project's ``ShardSetWriter`` (ustar).

    python benchmarks/corruption_speed.py [--windows 1000] [--rounds 3]

The ``rng.choice`` way restores the first code's draws by patching: ``draw_index`` and the sampler's offset
draw call ``rng.choice`` again (the score quantiles stay cached as arrays, so this reference is, if anything,
a little faster than that code).
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
import webdataset as wds

import event_dst_recipe
import fpspot.data.corrupt.generate as corrupt  # the module that draws (its draw_index is patched below)
from fpspot.data.event_windows import WindowCorruptor, iter_windows
from fpspot.data.footpass import read_playbyplay

REPO = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def rng_choice_draws():
    """Draw with ``rng.choice(..., p=...)`` as the code did before ``draw_index`` (same values, slower)."""
    sampler, tables = corrupt._Sampler, corrupt.SamplerTables
    saved = corrupt.draw_index, tables.__dict__["_hist"], sampler.offset

    def draw_with_choice(rng, p):
        return int(rng.choice(len(p), p=p))

    def hist_with_probs(offsets, probs):  # keep the arrays rng.choice needs
        return np.asarray(offsets, dtype=np.int64), np.asarray(probs, dtype=np.float64)

    def offset_with_choice(self, hist):
        return int(self.rng.choice(hist[0], p=hist[1]))

    corrupt.draw_index, sampler.offset = draw_with_choice, offset_with_choice
    tables._hist = staticmethod(hist_with_probs)
    try:
        yield
    finally:
        corrupt.draw_index, tables._hist, sampler.offset = saved


def time_corruptor(corruptor: WindowCorruptor, windows: list[dict]) -> tuple[float, list[dict]]:
    start = time.perf_counter()
    tokens = [corruptor(w) for w in windows]
    return (time.perf_counter() - start) / len(windows) * 1e3, tokens


def same_tokens(a: list[dict], b: list[dict]) -> bool:
    return all(x.keys() == y.keys() and all(np.array_equal(x[k], y[k]) for k in x if k != "meta") for x, y in zip(a, b))


def recipe_corruptor(tables_once: bool = True) -> WindowCorruptor:
    """The recipe's corruptor (``recipes/configs/event_dst.yaml``: noise strengths, augmentations);
    ``tables_once=False``: sampler tables rebuilt for every window."""
    corruptor = event_dst_recipe.recipe_corruptor(event_dst_recipe.recipe_config())
    if not tables_once:
        corruptor.tables = None
    return corruptor


def time_reading(shard_dir: Path) -> tuple[float, list[dict]]:
    from fpspot.data.event_windows import decode_window

    start = time.perf_counter()
    windows = [decode_window(sample) for sample in wds.WebDataset(sorted(map(str, shard_dir.glob("*.tar"))),
                                                                  shardshuffle=False, empty_check=False)]
    return (time.perf_counter() - start) / len(windows) * 1e3, windows


def write_pax_shards(out_dir: Path, windows: list[dict], per_shard: int = 500) -> None:
    """The windows as ``webdataset.TarWriter`` writes them (how window shards were written before)."""
    from fpspot.data.event_windows import window_sample

    out_dir.mkdir(parents=True)
    for n, first in enumerate(range(0, len(windows), per_shard)):
        with wds.TarWriter(str(out_dir / f"train-{n:06d}.tar")) as sink:
            for w in windows[first:first + per_shard]:
                sink.write(window_sample(w))


def main() -> None:
    import tempfile

    from fpspot.data.event_windows import write_window_shards

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "footpass" / "playbyplay_train.json"))
    parser.add_argument("--windows", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    gt = read_playbyplay(args.data, "gt")
    config = event_dst_recipe.recipe_window_config(event_dst_recipe.recipe_config())
    windows = list(itertools.islice(iter_windows(gt, config), 0, None, 7))[:args.windows]
    ways = {"rng.choice": "rng.choice, tables per window", "per window": "draw_index, tables per window",
            "once": "draw_index, tables built once"}
    times: dict[str, list[float]] = {name: [] for name in ways}
    identical = True
    for _ in range(args.rounds):
        with rng_choice_draws():
            ms, reference = time_corruptor(recipe_corruptor(tables_once=False), windows)
        times["rng.choice"].append(ms)
        for name, once in (("per window", False), ("once", True)):
            ms, tokens = time_corruptor(recipe_corruptor(tables_once=once), windows)
            times[name].append(ms)
            identical &= same_tokens(reference, tokens)
    # reading: the same clean windows (as the recipe writes them: every half's windows, in a fixed shuffle) from
    # both kinds of shards
    keys = gt.keys[::max(1, len(gt.keys) // 8)][:8]
    reads: dict[str, list[float]] = {"pax (webdataset.TarWriter)": [], "ustar (ShardSetWriter)": []}
    with tempfile.TemporaryDirectory() as tmp:
        manifest = write_window_shards(Path(tmp) / "ustar", gt, config, keys=keys, samples_per_shard=500,
                                       shuffle_seed=0)
        _, clean = time_reading(Path(tmp) / "ustar")
        write_pax_shards(Path(tmp) / "pax", clean)
        for _ in range(args.rounds):
            for name, folder in zip(reads, ("pax", "ustar")):
                ms, back = time_reading(Path(tmp) / folder)
                reads[name].append(ms)
                identical &= len(back) == len(clean) and all(
                    a["meta"] == b["meta"] and np.array_equal(a["gt"], b["gt"]) for a, b in zip(back, clean))
    print(f"machine: {platform.machine()}, {len(windows)} training windows, {args.rounds} rounds alternated (median)")
    for name, values in times.items():
        print(f"  {ways[name]:<31} {statistics.median(values):6.2f} ms per window (corruption + tokens)")
    once = statistics.median(times["once"])
    print(f"speed-up over rng.choice {statistics.median(times['rng.choice']) / once:.2f}x, over tables per window "
          f"{statistics.median(times['per window']) / once:.2f}x")
    print(f"reading {manifest['num_samples']} windows of {len(keys)} halves back from shards (decoded):")
    for name, values in reads.items():
        print(f"  {name:<31} {statistics.median(values):6.3f} ms per window")
    print(f"identical tokens and windows: {identical}")
    if not identical:
        raise SystemExit("the ways of drawing or storing gave different windows")


if __name__ == "__main__":
    main()
