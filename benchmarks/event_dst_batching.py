"""Event-DST training steps with fixed-size batches against token-budget batches (length bucketing), side by side.

    python benchmarks/event_dst_batching.py [--windows 1024] [--batch-size 32] [--max-tokens 600] [--rounds 2]
                                            [--threads 1] [--json OUT.json]

The same ``--windows`` training windows of the real FOOTPASS training play-by-play, corrupted once by the
training corruptor (noise strengths as in ``recipes/configs/event_dst.yaml``), are batched two ways:

* ``fixed``: ``--batch-size`` windows per batch in their stream order (the recipe with ``data.max_tokens=0``);
* ``tokens``: :func:`fpspot.data.bucketing.token_budget_batches` with ``--max-tokens`` padded input events per
  batch, pools of 1024 (the recipe with ``data.max_tokens``).

Both train a fresh copy of the released model's architecture (same initial weights) for one pass over their
batches (forward, backward, AdamW step), ``--rounds`` times alternately, with ``--threads`` torch threads (1 =
one of the recipe's 2 processes on 2 cores). Reported: batches, real input events per batch, the fraction of
padded tokens that are real events, and the training throughput in real input events per second (median over
rounds); the speed-up is the ratio of the two throughputs measured in this run.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOOTPASS = REPO.parent / "shared" / "data" / "footpass"


def _windows(count: int):
    import numpy as np

    from event_dst_recipe import recipe_config, recipe_corruptor, recipe_window_config
    from fpspot.data.event_windows import iter_windows
    from fpspot.data.footpass import read_playbyplay

    config = recipe_config()
    gt = read_playbyplay(FOOTPASS / "playbyplay_train.json", "gt")
    clean = list(iter_windows(gt, recipe_window_config(config)))
    picked = np.random.default_rng(0).choice(len(clean), size=min(count, len(clean)), replace=False)
    corruptor = recipe_corruptor(config)
    return [corruptor(clean[i]) for i in picked]


def _train_pass(batches, seed: int = 0) -> float:
    import torch

    from fpspot.models import build, load_model

    config = load_model(REPO / "recipes" / "pretrained" / "event_dst").config
    torch.manual_seed(seed)
    model = build("event_dst", **{k: v for k, v in config.items() if k not in ("frame_hw",)}).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    started = time.perf_counter()
    for batch in batches:
        model(batch)["loss"].backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--windows", type=int, default=1024)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    import torch

    from fpspot.data.bucketing import token_budget_batches
    from fpspot.data.event_windows import collate_windows

    torch.set_num_threads(args.threads)
    windows = _windows(args.windows)
    ways = {
        "fixed": [collate_windows(windows[i:i + args.batch_size]) for i in range(0, len(windows), args.batch_size)],
        "tokens": [collate_windows(g) for g in token_budget_batches(windows, args.max_tokens,
                                                                    length=lambda w: len(w["in_cls"]),
                                                                    rng=random.Random(0))],
    }
    real = sum(len(w["in_cls"]) for w in windows)
    seconds = {name: [] for name in ways}
    for _ in range(args.rounds):
        for name, batches in ways.items():
            seconds[name].append(_train_pass(batches))
    rows = {}
    for name, batches in ways.items():
        padded = sum(b["in_mask"].numel() for b in batches)
        wall = statistics.median(seconds[name])
        rows[name] = {"batches": len(batches), "real_events_per_batch": round(real / len(batches), 1),
                      "fill": round(real / padded, 3), "seconds": round(wall, 2),
                      "real_events_per_s": round(real / wall, 1)}
    speedup = rows["tokens"]["real_events_per_s"] / rows["fixed"]["real_events_per_s"]
    print(f"{len(windows)} corrupted training windows, {real} input events; torch threads {args.threads}")
    print(f"{'batching':<8} {'batches':>8} {'events/batch':>13} {'fill':>6} {'seconds':>8} {'events/s':>9}")
    for name, row in rows.items():
        print(f"{name:<8} {row['batches']:>8} {row['real_events_per_batch']:>13} {row['fill']:>6} "
              f"{row['seconds']:>8} {row['real_events_per_s']:>9}")
    print(f"token-budget speed-up: {speedup:.2f}x")
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "speedup": round(speedup, 3), "args": vars(args)}, default=str,
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
