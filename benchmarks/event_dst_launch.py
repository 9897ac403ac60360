"""Epoch time of the event DST recipe under different launches: 2 DDP processes or 1 process with 2 threads,
fp32 or bf16 autocast.

Each variant runs ``recipes/event_dst.py`` for one epoch on ``--fraction`` of the training windows (the same
windows and token budget per optimizer step for every variant: ``data.max_tokens`` per process, doubled for one
process) with the held-out evaluation and the export off as far as the recipe allows (it evaluates after its last
epoch), and reports the trainer's ``epoch 1: trained in X s`` (the slowest process's training time, without setup
and evaluation). Variants take turns within each round, so that the drift of this shared machine's load weighs
on all of them alike; the table gives the median over the rounds and the ratio to the first variant.

    python benchmarks/event_dst_launch.py --rounds 2 --variants 0 3     # about 7 min on 2 cores

Whole epochs by default (``--fraction 1``): on a fraction of an epoch its start weighs more, and one-off runs
on 0.3 of an epoch put the single bf16 process at 0.86x of the DDP epoch, where whole epochs side by side gave
1.03x (BENCHMARKS.md).

Runs write to a temporary folder; the shards are the recipe's (``data.shard_dir``, written on first use).
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch" / "accelerate"
# name -> (accelerate config, recipe overrides); token budgets are per process
DDP, SINGLE = "cpu.yaml", "cpu_single.yaml"
VARIANTS = {
    "2 processes (DDP), fp32, 600 tokens each": (DDP, ["train.mixed_precision='no'", "data.max_tokens=600"]),
    "2 processes (DDP), bf16, 600 tokens each": (DDP, ["train.mixed_precision=bf16", "data.max_tokens=600"]),
    "1 process x 2 threads, fp32, 1200 tokens": (SINGLE, ["train.mixed_precision='no'", "data.max_tokens=1200"]),
    "1 process x 2 threads, bf16, 1200 tokens": (SINGLE, ["train.mixed_precision=bf16", "data.max_tokens=1200"]),
}
EPOCH_LINE = re.compile(r"epoch 1: trained in ([0-9.]+) s")
SCORE_LINE = re.compile(r"best score ([0-9.]+)")


def run_variant(launch_config: str, overrides: list[str], run_dir: Path, fraction: float) -> tuple[float, float]:
    """``(epoch seconds, held-out selection score after it)`` of one recipe run; errors show its output tail."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(LAUNCH / launch_config),
               str(REPO / "recipes" / "event_dst.py"), "--config", str(REPO / "recipes" / "configs" / "event_dst.yaml"),
               f"train.run_dir={run_dir}", "train.epochs=1", f"data.epoch_fraction={fraction}",
               "export.enabled=false", "train.log_every=1000", *overrides]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True,
                          env={**os.environ, "PYTHONWARNINGS": "ignore"})
    output = done.stdout + done.stderr
    seconds, score = EPOCH_LINE.search(output), SCORE_LINE.search(output)
    if done.returncode != 0 or seconds is None or score is None:
        raise RuntimeError(f"{' '.join(command)} failed (exit {done.returncode}):\n{output[-3000:]}")
    return float(seconds.group(1)), float(score.group(1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--fraction", type=float, default=1.0, help="data.epoch_fraction of each run")
    parser.add_argument("--variants", type=int, nargs="+", default=list(range(len(VARIANTS))),
                        help="indices of the variants to run (0-3, in the order of the table; the first is the "
                             "reference of the ratios)")
    args = parser.parse_args()
    names = [list(VARIANTS)[i] for i in args.variants]
    times: dict[str, list[float]] = {name: [] for name in names}
    scores: dict[str, list[float]] = {name: [] for name in names}
    with tempfile.TemporaryDirectory() as tmp:
        for round_index in range(args.rounds):
            shift = round_index % len(names)
            for name in names[shift:] + names[:shift]:
                launch_config, overrides = VARIANTS[name]
                run_dir = Path(tmp) / f"run_{round_index}_{names.index(name)}"
                seconds, score = run_variant(launch_config, overrides, run_dir, args.fraction)
                times[name].append(seconds)
                scores[name].append(score)
                print(f"  round {round_index + 1}: {name}: {seconds:.1f} s", flush=True)
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; one epoch on {args.fraction} of the training "
          f"windows, {args.rounds} rounds (variants take turns)")
    reference = statistics.median(times[names[0]])
    print(f"  {'launch':<44} {'epoch s (median)':>17} {'runs':>22} {'ratio':>6} {'score':>7}")
    for name in names:
        median = statistics.median(times[name])
        runs = " ".join(f"{t:.1f}" for t in times[name])
        print(f"  {name:<44} {median:17.1f} {runs:>22} {median / reference:6.2f} "
              f"{statistics.mean(scores[name]):7.4f}")


if __name__ == "__main__":
    main()
