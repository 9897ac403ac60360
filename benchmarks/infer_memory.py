"""Peak memory of inference over a 10-minute and a 45-minute synthetic half: what grows with length.

Each half is run in a fresh process (``fpspot.infer`` path: load the half, stream its mp4 through the
engine, events by NMS) with ``tracemalloc`` (every numpy array and Python object) and torch's
``MemTracker`` (tensors the model allocates). Besides the peaks, the parts are measured one by one:

* **frame path** (must not grow with length): frames held by the streaming buffer (the span of one batch
  of windows) and the batch arrays; measured as the engine's peak minus its output;
* **per-frame arrays** of the half (grow linearly, by nature): the tactical rows (``(rows, 14)`` float64,
  about 22 rows a frame), the slot -> jersey table ``(26, N)`` int64 and the output logits
  ``(9, 26, N)`` float32 (averaged in place: 937 bytes a frame, 70 MB for a 75,000-frame half).

The synthetic games are rendered once under ``--cache`` at ``--size`` (small by default: the frame path
scales with the frame area, not with the length; see BENCHMARKS.md for 352x640 figures by formula).

    python benchmarks/infer_memory.py [--minutes 10,45] [--size 72x128] [--batch-size 8] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

MB = 1 << 20


def parse_hw(text: str) -> tuple[int, int]:
    h, w = text.lower().split("x")
    return int(h), int(w)


def cheap_model():
    """A clip-batch model that costs almost nothing: per slot and frame, the colour at the box centre of
    8x-pooled frames -> Conv1d(k=3) -> Linear -> (B, 9, M, T). Memory of a real model is bounded by the batch."""
    import torch
    import torch.nn.functional as F
    from einops import rearrange

    class CentreColour(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.temporal = torch.nn.Conv1d(3, 8, 3, padding=1)
            self.head = torch.nn.Linear(8, 9)

        def forward(self, batch):
            video = F.avg_pool3d(batch["video"].float() / 255, (1, 8, 8), ceil_mode=True)  # (B, 3, T, h, w)
            b, _, t, h, w = video.shape
            rois = batch["rois"]  # (B, M, T, 4)
            m = rois.shape[1]
            cx = ((rois[..., 0] + rois[..., 2]) / 16).long().clamp(0, w - 1)
            cy = ((rois[..., 1] + rois[..., 3]) / 16).long().clamp(0, h - 1)
            bi = torch.arange(b)[:, None, None].expand(b, m, t)
            ti = torch.arange(t)[None, None, :].expand(b, m, t)
            colour = rearrange(video, "b c t h w -> b t h w c")[bi, ti, cy, cx] * batch["masks"][..., None]
            hidden = self.temporal(rearrange(colour, "b m t c -> (b m) c t")).relu()
            logits = self.head(rearrange(hidden, "(b m) c t -> b m t c", b=b))
            return {"logits": rearrange(logits, "b m t c -> b c m t")}

    return CentreColour()


def dataset_for(cache: Path, minutes: float, size: tuple[int, int]) -> Path:
    from fpspot.data.synth import SynthConfig, generate_dataset

    root = cache / f"synth_{size[0]}x{size[1]}_half{minutes:g}min"
    if not (root / "splits.json").is_file():
        print(f"rendering a synthetic game of 2 x {minutes:g} min at {size[0]}x{size[1]} into {root} ...", flush=True)
        began = time.perf_counter()
        generate_dataset(root, SynthConfig(games=1, minutes=2 * minutes, size=size, seed=0))
        print(f"  done in {time.perf_counter() - began:.0f} s", flush=True)
    return root


def measure(root: str, size: tuple[int, int], batch_size: int, scheme: str) -> dict:
    """Run the first half of ``root`` and return the figures (called in a fresh process)."""
    import tracemalloc

    import torch
    from torch.distributed._tools.mem_tracker import MemTracker

    from fpspot.infer import api
    from fpspot.infer.engine import EngineConfig
    from fpspot.infer.sources import dataset_halves
    from fpspot.infer.stream import FrameBuffer

    torch.set_num_threads(1)
    held = {"frames": 0}
    original_get = FrameBuffer.get

    def get(self, start, stop):  # record how many decoded frames the buffer holds at most
        out = original_get(self, start, stop)
        held["frames"] = max(held["frames"], len(self._buffer))
        return out

    FrameBuffer.get = get
    model = cheap_model().eval()
    config = EngineConfig(scheme=scheme, batch_size=batch_size)
    half = dataset_halves(root, frame_hw=size)[0]

    tracemalloc.start()
    began = time.perf_counter()
    source = half.load()
    after_load, load_peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    tracker = MemTracker()

    class Tracked:  # MemTracker follows one forward per module: clear its module stats before each call
        def eval(self):
            return self

        def __call__(self, batch):
            tracker.reset_mod_stats()
            return model(batch)

    with tracker:
        logits = api.half_logits(Tracked(), source, config, "cpu")
    engine_now, engine_peak = tracemalloc.get_traced_memory()
    events = api.nms_events(logits, source)
    _, end_peak = tracemalloc.get_traced_memory()
    seconds = time.perf_counter() - began
    tracemalloc.stop()
    torch_peak = sum(v["Total"] for v in tracker.get_tracker_snapshot("peak").values())

    frames = half.num_frames
    frame_bytes = size[0] * size[1] * 3
    return {
        "key": half.key, "frames": frames, "minutes": frames / 1500, "seconds": seconds, "events": len(events),
        "peak_total_mb": max(load_peak, engine_peak, end_peak) / MB,
        "load_peak_mb": load_peak / MB,
        "engine_peak_above_load_mb": (engine_peak - after_load) / MB,
        "frame_path_mb": (engine_peak - after_load - logits.nbytes) / MB,
        "frames_held_max": held["frames"], "frames_held_mb": held["frames"] * frame_bytes / MB,
        "logits_mb": logits.nbytes / MB, "logits_bytes_per_frame": logits.nbytes / (half.last + 1),
        "tactical_rows_mb": source.rows.rows.nbytes / MB, "rows_per_frame": len(source.rows.rows) / frames,
        "jerseys_mb": source.jerseys.nbytes / MB, "torch_peak_mb": torch_peak / MB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", default="10,45", help="half lengths in minutes (default 10,45)")
    parser.add_argument("--size", type=parse_hw, default=(72, 128), help="frame size of the videos and model")
    parser.add_argument("--batch-size", type=int, default=8, help="windows per model call (default 8)")
    parser.add_argument("--scheme", default="overlap", choices=("overlap", "long"))
    parser.add_argument("--cache", default="/tmp/fpspot_bench", help="where the synthetic games are rendered")
    parser.add_argument("--json", help="write the figures as JSON")
    parser.add_argument("--measure", help=argparse.SUPPRESS)  # internal: run one half in this process
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure, args.size, args.batch_size, args.scheme)))
        return

    rows = []
    for minutes in (float(m) for m in args.minutes.split(",")):
        root = dataset_for(Path(args.cache), minutes, args.size)
        cmd = [sys.executable, __file__, "--measure", str(root), "--size", f"{args.size[0]}x{args.size[1]}",
               "--batch-size", str(args.batch_size), "--scheme", args.scheme]
        done = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        print(f"{r['minutes']:5.1f} min ({r['frames']} frames, {r['seconds']:.0f} s): "
              f"peak {r['peak_total_mb']:.1f} MB | "
              f"frame path {r['frame_path_mb']:.2f} MB (buffer {r['frames_held_max']} frames = "
              f"{r['frames_held_mb']:.2f} MB) | logits {r['logits_mb']:.1f} MB, rows {r['tactical_rows_mb']:.1f} MB, "
              f"jerseys {r['jerseys_mb']:.1f} MB | torch peak {r['torch_peak_mb']:.2f} MB", flush=True)
    if len(rows) >= 2:
        a, b = rows[0], rows[-1]
        extra = b["frames"] - a["frames"]
        growth = {k: (b[k] - a[k]) * MB / extra for k in
                  ("peak_total_mb", "frame_path_mb", "logits_mb", "tactical_rows_mb", "jerseys_mb", "torch_peak_mb")}
        print("bytes per extra frame: " + ", ".join(f"{k.removesuffix('_mb')} {v:.0f}" for k, v in growth.items()))
        frame_path = np.array([r["frame_path_mb"] for r in rows])
        print(f"frame path {'does not grow' if np.ptp(frame_path) < 0.1 * frame_path.max() + 0.5 else 'GROWS'} "
              f"with length ({', '.join(f'{v:.2f}' for v in frame_path)} MB)")
        rows.append({"bytes_per_extra_frame": growth})
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
