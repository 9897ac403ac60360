"""Activation checkpointing: peak tensor memory and step time of a TAAD training step, plain vs checkpointed.

One TAAD training step (forward, loss, backward, AdamW step) with the whole X3D backbone trainable, on a batch
of 2 clips x 16 frames at 176x320 with M = 5 tracks, measured side by side in one run:

* peak tensor memory with ``torch.distributed._tools.mem_tracker.MemTracker`` (deterministic; counts
  parameters, buffers, gradients, optimizer states, activations and temporaries), after one untracked warm-up
  step so the optimizer states exist in both;
* step time: median of ``--repeats`` timed steps (alternating plain / checkpointed).

From the same measurements it projects the peak memory of the baseline setting (batch 6, 50 frames, 352x640):
the memory that depends on the input (activations, temporaries, inputs; "activation" below) scales with
``B*T*H*W`` (every tensor of the network is ``B x C x T x h x w`` with h, w proportional to H, W; the track
features scale with ``B*M*T``, negligible), the rest (parameters, gradients, optimizer states, buffers) is
fixed. fp32 as measured; the fp16-autocast line assumes activations halve (the baseline trains under fp16
autocast; BatchNorm outputs and the saved inputs of convs are then fp16) and counts no CUDA allocator slack
or cuDNN workspace, so add ~10-20 % headroom on a real GPU.

Usage::

    python benchmarks/checkpoint_memory.py [--json OUT] [--backbone x3d_s] [--project x3d_s x3d_l]

``--project`` lists backbones to project (each one measured at the small setting; default the measured
backbone and x3d_l).
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from fpspot.models import build  # noqa: E402
from fpspot.models.taad import TAAD  # noqa: E402

FIXED_KINDS = ("Parameter", "Buffer", "Gradient", "Optstate")
MEASURED = dict(batch=2, frames=16, height=176, width=320, tracks=5)
BASELINE = dict(batch=6, frames=50, height=352, width=640)
GIB = 1024 ** 3


def make_batch(batch: int, frames: int, height: int, width: int, tracks: int) -> dict:
    return TAAD.example_batch({"frame_hw": [height, width]}, batch, torch.Generator().manual_seed(0),
                              num_tracks=tracks, num_frames=frames)


def train_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> None:
    loss = model(batch)["loss"]
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def peak_memory(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: dict) -> dict[str, int]:
    """Peak tensor bytes of one step and its breakdown by kind at the peak."""
    from torch.distributed._tools.mem_tracker import MemTracker

    tracker = MemTracker()
    tracker.track_external(model, optimizer, *[v for v in batch.values() if isinstance(v, torch.Tensor)])
    with tracker:
        train_step(model, optimizer, batch)
    snapshot = tracker.get_tracker_snapshot("peak")
    device = next(iter(snapshot))
    return {getattr(k, "value", k): int(v) for k, v in snapshot[device].items()}


def measure(backbone: str, repeats: int) -> dict[str, float]:
    """Plain and checkpointed step of the same model on the same batch."""
    torch.manual_seed(0)
    plain = build("taad", backbone=backbone, frame_hw=[MEASURED["height"], MEASURED["width"]])
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    batch = make_batch(**MEASURED)
    models = {"plain": plain, "ckpt": ckpt}
    optimizers = {name: torch.optim.AdamW(m.parameters(), lr=1e-4) for name, m in models.items()}
    for name, model in models.items():  # warm-up: optimizer states, allocator, kernels
        model.train()
        train_step(model, optimizers[name], batch)
    result: dict[str, float] = {}
    for name, model in models.items():
        breakdown = peak_memory(model, optimizers[name], batch)
        result[f"peak_bytes_{name}"] = breakdown["Total"]
        result[f"fixed_bytes_{name}"] = sum(breakdown.get(k, 0) for k in FIXED_KINDS)
        result[f"breakdown_{name}"] = breakdown
    times: dict[str, list[float]] = {"plain": [], "ckpt": []}
    for _ in range(repeats):
        for name, model in models.items():
            start = time.perf_counter()
            train_step(model, optimizers[name], batch)
            times[name].append(time.perf_counter() - start)
    for name in models:
        result[f"step_s_{name}"] = statistics.median(times[name]) if times[name] else float("nan")
    return result


def project(result: dict, setting: dict) -> dict[str, float]:
    """Peak bytes of ``setting`` from the measured split: fixed + activation * (B*T*H*W ratio)."""
    volume = lambda s: s["batch"] * s["frames"] * s["height"] * s["width"]  # noqa: E731
    scale = volume(setting) / volume(MEASURED)
    out = {}
    for name in ("plain", "ckpt"):
        fixed = result[f"fixed_bytes_{name}"]
        activation = result[f"peak_bytes_{name}"] - fixed
        out[f"{name}_fp32"] = fixed + activation * scale
        out[f"{name}_fp16"] = fixed + activation * scale / 2
        per_clip = activation * scale / setting["batch"]
        for budget in (24, 80):
            out[f"{name}_max_batch_{budget}gb_fp32"] = int((budget * GIB - fixed) // per_clip)
            out[f"{name}_max_batch_{budget}gb_fp16"] = int((budget * GIB - fixed) // (per_clip / 2))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="write the figures as JSON here")
    parser.add_argument("--backbone", default="x3d_s", help="backbone of the measured step (default x3d_s)")
    parser.add_argument("--project", nargs="*", default=None,
                        help="backbones to project to the baseline setting (default: the measured one and x3d_l)")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per variant (median)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    result = measure(args.backbone, args.repeats)
    figures = {k: result[k] for k in ("peak_bytes_plain", "peak_bytes_ckpt", "step_s_plain", "step_s_ckpt")}
    figures["peak_ratio"] = result["peak_bytes_ckpt"] / result["peak_bytes_plain"]
    figures["time_ratio"] = result["step_s_ckpt"] / result["step_s_plain"]
    figures["backbone"] = args.backbone
    figures["setting"] = MEASURED
    figures["breakdown_plain"] = result["breakdown_plain"]
    figures["breakdown_ckpt"] = result["breakdown_ckpt"]
    print(f"{args.backbone}, batch {MEASURED['batch']} x {MEASURED['frames']} frames at "
          f"{MEASURED['height']}x{MEASURED['width']}, M={MEASURED['tracks']}, torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads")
    print(f"  peak plain {result['peak_bytes_plain'] / 2**20:8.1f} MiB   step {result['step_s_plain']:.2f} s")
    print(f"  peak ckpt  {result['peak_bytes_ckpt'] / 2**20:8.1f} MiB   step {result['step_s_ckpt']:.2f} s")
    print(f"  ratio      {figures['peak_ratio']:.3f}x memory, {figures['time_ratio']:.2f}x time "
          f"(target <= 0.30x memory at <= 1.4x time)")

    projected = {}
    for backbone in (args.project if args.project is not None else list(dict.fromkeys([args.backbone, "x3d_l"]))):
        source = result if backbone == args.backbone else measure(backbone, repeats=0)
        projected[backbone] = project(source, BASELINE)
        projected[backbone]["measured_peak_bytes_plain"] = source["peak_bytes_plain"]
        projected[backbone]["measured_peak_bytes_ckpt"] = source["peak_bytes_ckpt"]
        p = projected[backbone]
        print(f"  projected {backbone} at batch {BASELINE['batch']} x {BASELINE['frames']} frames, "
              f"{BASELINE['height']}x{BASELINE['width']}:")
        for name in ("plain", "ckpt"):
            print(f"    {name:5s} fp32 {p[f'{name}_fp32'] / GIB:6.1f} GiB (max batch 24 GiB: "
                  f"{p[f'{name}_max_batch_24gb_fp32']}, 80 GiB: {p[f'{name}_max_batch_80gb_fp32']});  "
                  f"fp16 {p[f'{name}_fp16'] / GIB:6.1f} GiB (max batch 24 GiB: {p[f'{name}_max_batch_24gb_fp16']}, "
                  f"80 GiB: {p[f'{name}_max_batch_80gb_fp16']})")
    figures["projected"] = projected
    figures["baseline_setting"] = BASELINE
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
