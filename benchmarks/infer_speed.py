"""Inference speed: frames per second against batch size, and the long-window mode against the baseline scheme.

Three measurements:

1. **Backbone frame-evaluations per frame** of the two window schemes, from their plans
   (:func:`fpspot.infer.windows.backbone_frames`): a 75,000-frame half (and the halves of ``--data`` when
   given). The baseline's overlapping 50-frame windows every 25 frames cost 2 per frame; the long mode
   (300-frame windows keeping their central 250) 1.2. Target: at least 1.6x fewer.
2. **Frames per second against batch size** on this machine, end to end (decode the mp4, cut windows, run the
   model, average): the first ``--frames`` frames of a synthetic half rendered at the model's frame size
   (written once under ``--cache``), through :func:`fpspot.infer.api.half_logits`, for both schemes. The
   model: ``--model DIR`` (a saved model), else a new ``taad`` with ``--backbone`` (default ``x3d_s``;
   random weights: speed does not depend on them).
3. With ``--model DIR --data DIR``: micro and macro F1 of both schemes on ``--split`` (target: within
   0.005) and their wall time.

    python benchmarks/infer_speed.py [--model DIR | --backbone x3d_s] [--frame-hw 352x640] [--frames 1000]
        [--batch-sizes 1,2,4,8] [--long-batch-sizes 1,2] [--threads N] [--data DIR --split val] [--json OUT]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path

import torch

from fpspot.infer.engine import EngineConfig
from fpspot.infer.windows import backbone_frames, plan_long, plan_overlap

HALF_FRAMES = 75_000


def parse_hw(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def plan_costs(first: int, last: int, config: EngineConfig) -> dict[str, float]:
    overlap = backbone_frames(plan_overlap(first, last, config.length, config.stride), first, last)
    long = backbone_frames(plan_long(first, last, config.core, config.margin), first, last)
    return {"frames": last + 1 - first, "overlap": overlap, "long": long, "ratio": overlap / long}


def build_model(args) -> torch.nn.Module:
    from fpspot.models import build, load_model

    if args.model:
        return load_model(args.model)
    return build("taad", backbone=args.backbone, frame_hw=list(args.frame_hw))


def synthetic_half(cache: Path, frame_hw: tuple[int, int], frames: int):
    """A :class:`DatasetHalf` of ``frames`` frames from a synthetic game rendered at ``frame_hw`` (cached)."""
    from fpspot.data.synth import SynthConfig, generate_dataset
    from fpspot.infer.sources import dataset_halves

    minutes = max(0.5, 2 * (frames + 100) / 1500)  # both halves; 1,500 frames a minute
    root = cache / f"synth_{frame_hw[0]}x{frame_hw[1]}_{minutes:g}min"
    if not (root / "splits.json").is_file():
        print(f"rendering a synthetic game ({minutes:g} min, {frame_hw[0]}x{frame_hw[1]}) into {root} ...",
              flush=True)
        generate_dataset(root, SynthConfig(games=1, minutes=minutes, size=frame_hw, seed=0))
    half = dataset_halves(root, frame_hw=frame_hw)[0]
    if half.num_frames < frames:
        raise SystemExit(f"{half.key} has {half.num_frames} visible frames, fewer than --frames {frames}")
    return dataclasses.replace(half, last=half.first + frames - 1)


def time_half(model, half, config: EngineConfig) -> float:
    from fpspot.infer.api import half_logits

    source = half.load()
    began = time.perf_counter()
    half_logits(model, source, config, "cpu")
    return time.perf_counter() - began


def speed_table(args, model) -> list[dict]:
    half = synthetic_half(Path(args.cache), args.frame_hw, args.frames)
    warm = dataclasses.replace(half, last=half.first + 49)
    time_half(model, warm, EngineConfig(batch_size=1))  # first-call costs (allocator, kernels) out of the way
    rows = []
    for scheme, sizes in (("overlap", args.batch_sizes), ("long", args.long_batch_sizes)):
        for batch_size in sizes:
            config = EngineConfig(scheme=scheme, batch_size=batch_size)
            seconds = time_half(model, half, config)
            cost = backbone_frames(config.plan(half.first, half.last), half.first, half.last)
            rows.append({"scheme": scheme, "batch_size": batch_size, "frames": half.num_frames, "seconds": seconds,
                         "frames_per_s": half.num_frames / seconds, "backbone_frames_per_frame": cost})
            print(f"  {scheme:8s} batch {batch_size:3d}: {half.num_frames / seconds:8.2f} frames/s "
                  f"({seconds:.1f} s, {cost:.2f} backbone frames per frame)", flush=True)
    return rows


def f1_of_schemes(args, model) -> dict:
    from fpspot.data.layout import DatasetLayout
    from fpspot.eval import evaluate
    from fpspot.infer.api import infer
    from fpspot.infer.sources import dataset_halves

    layout = DatasetLayout(args.data)
    gt = layout.ground_truth(args.split)
    halves = dataset_halves(args.data, split=args.split, frame_hw=tuple(model.config.get("frame_hw", args.frame_hw)))
    out = {"split": args.split, "halves": len(halves)}
    for scheme in ("overlap", "long"):
        began = time.perf_counter()
        pred = infer(model, halves, scheme=scheme, device="cpu", show_progress=True)
        seconds = time.perf_counter() - began
        report = evaluate(pred, gt)
        cost = sum(backbone_frames(EngineConfig(scheme=scheme).plan(h.first, h.last), h.first, h.last) * h.num_frames
                   for h in halves) / sum(h.num_frames for h in halves)
        out[scheme] = {"micro_f1": report.micro_f1, "macro_f1": report.macro_f1, "seconds": seconds,
                       "backbone_frames_per_frame": cost}
        print(f"  {scheme:8s}: micro F1 {report.micro_f1:.4f}, macro F1 {report.macro_f1:.4f}, {seconds:.0f} s, "
              f"{cost:.2f} backbone frames per frame", flush=True)
    out["micro_f1_difference"] = out["long"]["micro_f1"] - out["overlap"]["micro_f1"]
    out["macro_f1_difference"] = out["long"]["macro_f1"] - out["overlap"]["macro_f1"]
    out["evaluation_ratio"] = out["overlap"]["backbone_frames_per_frame"] / out["long"]["backbone_frames_per_frame"]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="saved model folder (default: a new taad with --backbone)")
    parser.add_argument("--backbone", default="x3d_s", help="backbone of the new taad (default x3d_s)")
    parser.add_argument("--frame-hw", type=parse_hw, default=(352, 640), help="frame size of the new taad")
    parser.add_argument("--frames", type=int, default=1000, help="frames of the timed half (default 1000)")
    parser.add_argument("--batch-sizes", default="1,2,4,8", help="overlap scheme batch sizes (windows of 50)")
    parser.add_argument("--long-batch-sizes", default="1,2", help="long mode batch sizes (windows of 300)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--data", help="dataset folder with ground truth: also compare the F1 of both schemes")
    parser.add_argument("--split", default="val", help="split of --data (default val)")
    parser.add_argument("--cache", default="/tmp/fpspot_bench", help="where synthetic halves are rendered")
    parser.add_argument("--skip-speed", action="store_true", help="only the plans (and F1 with --data)")
    parser.add_argument("--json", help="write the figures as JSON")
    args = parser.parse_args()
    args.batch_sizes = [int(v) for v in args.batch_sizes.split(",")]
    args.long_batch_sizes = [int(v) for v in args.long_batch_sizes.split(",")]
    if args.threads:
        torch.set_num_threads(args.threads)

    results: dict = {"torch_threads": torch.get_num_threads()}
    costs = plan_costs(0, HALF_FRAMES - 1, EngineConfig())
    results["plans"] = costs
    print(f"backbone frame-evaluations per frame, {HALF_FRAMES}-frame half: overlap {costs['overlap']:.3f}, "
          f"long {costs['long']:.3f} -> {costs['ratio']:.2f}x fewer (target >= 1.6x)")
    model = None
    if not args.skip_speed or args.data:
        model = build_model(args).eval()
        args.frame_hw = tuple(model.config.get("frame_hw", args.frame_hw))
        name = args.model or f"new taad ({args.backbone})"
        print(f"model: {name}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f} M parameters, "
              f"frames {args.frame_hw[0]}x{args.frame_hw[1]}, {torch.get_num_threads()} threads")
        results["model"] = {"name": name, "frame_hw": list(args.frame_hw)}
    if not args.skip_speed:
        print(f"frames per second, first {args.frames} frames of a synthetic half (decode + windows + model):")
        results["speed"] = speed_table(args, model)
    if args.data:
        if not args.model:
            print("note: F1 of a model with random weights means nothing; pass --model DIR (a trained model)")
        print(f"F1 of both schemes on {args.data} ({args.split}):")
        results["f1"] = f1_of_schemes(args, model)
        f1 = results["f1"]
        print(f"long - overlap: micro F1 {f1['micro_f1_difference']:+.4f}, macro F1 {f1['macro_f1_difference']:+.4f} "
              f"(target within 0.005); {f1['evaluation_ratio']:.2f}x fewer backbone evaluations")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
