"""Cost of one event DST training step on CPU: torch's dropout and AdamW against fpspot's choices.

The event DST recipe trains the released model's configuration (``recipes/configs/event_dst.yaml``) on
token-budget batches of about 600 input events, one thread per process. This script times, side by side
(each batch through every variant back to back, in a rotating order; medians), forward, backward and
optimizer step per batch on the same real training windows, the same batches and the same initial weights, for
five variants:

* dropout: ``torch.nn.Dropout`` (one ``bernoulli_`` float per element) or ``fpspot.models.blocks.dropout.Dropout``
  (16 random bits per element, the scaled mask kept for backward), in every layer of the seq2seq block;
* optimizer: ``torch.optim.AdamW`` default (for-each) or ``fused=True`` (what ``build_optimizer`` picks);
* and the recipe's step under CPU bf16 autocast (``train.mixed_precision=bf16``; fast on CPUs with AVX-512 BF16).

    python benchmarks/train_step_speed.py [--threads 1] [--steps 20] [--rounds 3]

Annotations: FOOTPASS (Ochin et al., CVIU 2026), CC BY-NC 4.0.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import itertools
import platform
import random
import statistics
import time
from pathlib import Path

import torch
from event_dst_recipe import recipe_config, recipe_corruptor, recipe_window_config
from torch import nn

from fpspot.data.bucketing import token_budget_batches
from fpspot.data.event_windows import collate_windows, iter_windows
from fpspot.data.footpass import read_playbyplay
from fpspot.models import build
from fpspot.models.blocks.dropout import Dropout

REPO = Path(__file__).resolve().parents[1]
# name -> (dropout, fused AdamW, bf16 autocast)
VARIANTS = {"torch dropout, AdamW for-each": ("torch", False, False),
            "torch dropout, AdamW fused": ("torch", True, False),
            "fpspot dropout, AdamW for-each": ("fpspot", False, False),
            "fpspot dropout, AdamW fused (recipe)": ("fpspot", True, False),
            "fpspot dropout, AdamW fused, bf16 autocast": ("fpspot", True, True)}


def with_dropout(model: nn.Module, kind: str) -> nn.Module:
    """A copy of ``model`` whose dropout modules are ``torch.nn.Dropout`` or fpspot's ``Dropout`` (same p)."""
    model = copy.deepcopy(model)
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, (nn.Dropout, Dropout)):
                setattr(module, name, nn.Dropout(child.p) if kind == "torch" else Dropout(child.p))
    return model


def real_batches(data: Path, config, num_batches: int, pool: int = 1024) -> list[dict]:
    """Token-budget batches (``data.max_tokens`` of ``config``) of real training windows corrupted as the recipe
    does: a seeded pool of ``pool`` clean windows drawn from all training halves, then corrupted and cut."""
    gt = read_playbyplay(data, "gt")
    clean = list(iter_windows(gt, recipe_window_config(config)))
    random.Random(0).shuffle(clean)
    corruptor = recipe_corruptor(config)
    windows = [corruptor(w) for w in clean[:pool]]
    groups = token_budget_batches(windows, config.data.max_tokens, length=lambda w: len(w["in_cls"]),
                                  pool=pool, rng=random.Random(0))
    return [collate_windows(group) for group in itertools.islice(groups, num_batches)]


def one_step(model: nn.Module, optimizer: torch.optim.Optimizer, batch: dict,
             bf16: bool = False) -> tuple[float, float, float]:
    """Milliseconds of forward (under CPU bf16 autocast with ``bf16``, as Accelerate's ``mixed_precision: bf16``
    runs it), backward (with gradient clipping) and optimizer step on one batch."""
    t0 = time.perf_counter()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        loss = model(batch)["loss"]
    t1 = time.perf_counter()
    loss.backward()
    nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    t2 = time.perf_counter()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    t3 = time.perf_counter()
    return (t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "footpass" / "playbyplay_train.json"))
    parser.add_argument("--config", default=str(REPO / "recipes" / "configs" / "event_dst.yaml"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    config = recipe_config(args.config)
    max_tokens = config.data.max_tokens
    batches = real_batches(Path(args.data), config, args.steps + 2)
    torch.manual_seed(0)
    base = build("event_dst", window=config.data.window, **dataclasses.asdict(config.model))
    variants = {}
    for name, (kind, fused, bf16) in VARIANTS.items():
        model = with_dropout(base, kind).train()
        variants[name] = (model, torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01, fused=fused), bf16)
    for model, optimizer, bf16 in variants.values():  # warm-up
        for batch in batches[:2]:
            one_step(model, optimizer, batch, bf16)
    # every batch goes through the variants back to back (in a rotating order), so that the load of this
    # shared machine, which drifts over seconds, weighs on all of them alike
    times: dict[str, list[tuple[float, float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for round_index in range(args.rounds):
        for i, batch in enumerate(batches[2:]):
            shift = (round_index + i) % len(names)
            for name in names[shift:] + names[:shift]:
                model, optimizer, bf16 = variants[name]
                times[name].append(one_step(model, optimizer, batch, bf16))
    tokens = statistics.mean(b["in_mask"].numel() for b in batches[2:])
    print(f"machine: {platform.machine()} {platform.processor() or ''}, torch {torch.__version__}, "
          f"{args.threads} thread(s); {args.steps} token-budget batches (<= {max_tokens} input events, "
          f"{tokens:.0f} padded on average) x {args.rounds} rounds, each batch through the {len(names)} variants "
          f"back to back (median over the {args.steps * args.rounds} steps)")
    print(f"  {'variant':<44} {'forward':>8} {'backward':>9} {'optimizer':>10} {'step':>8}  (ms)")
    steps = {}
    for name, values in times.items():
        parts = [statistics.median(v[k] for v in values) for k in range(3)]
        steps[name] = statistics.median(sum(v) for v in values)
        print(f"  {name:<44} {parts[0]:8.1f} {parts[1]:9.1f} {parts[2]:10.1f} {steps[name]:8.1f}")
    before, now = "torch dropout, AdamW for-each", "fpspot dropout, AdamW fused (recipe)"
    ratios = [sum(a) / sum(b) for a, b in zip(times[now], times[before])]
    print(f"step time {now} / {before}: {steps[now] / steps[before]:.2f} (per batch: median "
          f"{statistics.median(ratios):.2f}, quartiles {statistics.quantiles(ratios, n=4)[0]:.2f}-"
          f"{statistics.quantiles(ratios, n=4)[2]:.2f})")


if __name__ == "__main__":
    main()
