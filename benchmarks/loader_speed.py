"""Clip loading speed: WebDataset shards (``fpspot.data.loader.train_loader``) against reading the same clips
straight from the game's mp4 and the tactical HDF5; disk bytes per clip; frame storage options; the time to
generate and shard one synthetic game.

Default mode (everything runs on a synthetic dataset written under ``--work``):

1. ``fpspot synth``-equivalent: ``--games`` games of ``--minutes`` at ``--size`` (the generation time per game
   is reported; ``--texture`` adds a pitch-fixed grey texture to the renderer so that the video costs what
   textured broadcast video costs to decode, instead of flat colours), then the clip shards of the train
   split (``fpspot shard --draws``; the time per game and per draw is reported);
2. ``shards``: ``train_loader`` with ``--workers`` DataLoader workers, batch ``--batch``, over ``--clips`` clips,
   with the default augmentation and without it;
3. ``direct``: the same clips (same half and start frame, from the shard manifest's samples) read with a
   ``torch.utils.data.DataLoader`` of the same number of workers: seek + decode 50 frames of the game's mp4
   (``VideoReader``), the RoIs, masks, labels and node features from the half's tactical rows, collated into
   the same batch, no augmentation. Twice: ``kept open`` (each worker keeps its video readers and the half
   tables it read from the HDF5: the favourable case for this path) and ``opened per clip`` (the mp4 and the
   half's table are opened for every clip, as a plain ``Dataset.__getitem__`` does). Clips come in a
   shuffled order, as in training. ``--gop`` sets the keyframe interval of the synthetic game videos (250,
   x264's default, by default): every seek of this path decodes from the previous keyframe;
4. disk: bytes per clip of the shards (all fields, and the ``video.mp4`` field alone).

``--storage`` mode compares frame storage options on ``--clips`` 50-frame clips cut from the synthetic video
(as rendered with ``--texture``, and with Gaussian per-frame noise sigma 3 on top): JPEG q90 per frame
(Pillow), raw uint8 ``.npy``, zlib-compressed ``.npy`` (level 1), and one H.264 chunk per clip
(``fpspot.data.video.encode_clip``, CRF 23, one GOP, no B-frames): bytes per clip and decode CPU time per
clip (single thread, best of 3).

    python benchmarks/loader_speed.py --work /tmp/data/bench [--size 352x640] [--minutes 2] [--clips 96]
                                      [--gop 250] [--texture 8] [--draws 2] [--source-size 1080x1920]
    python benchmarks/loader_speed.py --work /tmp/data/bench --storage [--clips 8]

``--source-size 1080x1920`` renders the game videos at the real FOOTPASS broadcast size: the shard writer and
the direct path then both decode Full-HD and resize to ``--size``, as they do on the real release.

Figures depend on the machine and its load: compare the ratios measured in one run.
"""

from __future__ import annotations

import argparse
import io
import json
import time
import zlib
from pathlib import Path

import numpy as np


def parse_size(text: str) -> tuple[int, int]:
    height, width = (int(v) for v in text.lower().split("x"))
    return height, width


# ================================================================================================ dataset


def _textured_pitch(sigma: float):
    """Patch the synthetic renderer: Gaussian texture of ``sigma`` grey levels fixed to the pitch (it moves
    with the camera pan, as grass and crowd do), so that the videos cost about what broadcast video costs
    to decode instead of flat colours."""
    from fpspot.data import synth

    plain = synth.PitchRenderer._texture

    def textured(self):
        texture = plain(self)
        noise = np.random.default_rng(7).normal(0.0, sigma, texture.shape[:2] + (1,))
        return np.clip(texture + noise, 0, 255).astype(np.uint8)

    synth.PitchRenderer._texture = textured


def build(work: Path, size, games: int, minutes: float, gop: int, texture: float, draws: int, seed: int = 0,
          source_size=None) -> dict:
    """Synthetic games rendered at ``source_size`` (default ``size``) and their clip shards at ``size``."""
    from fpspot.data.shards import ShardConfig, write_clip_shards
    from fpspot.data.synth import SynthConfig, generate_dataset

    data, shards = work / "synth", work / "shards"
    if texture > 0:
        _textured_pitch(texture)
    began = time.perf_counter()
    generate_dataset(data, SynthConfig(games=games, minutes=minutes, size=tuple(source_size or size), seed=seed,
                                       val_games=1, gop=gop))
    generated = time.perf_counter() - began
    began = time.perf_counter()
    manifest = write_clip_shards(data, "train", shards, ShardConfig(frame_hw=size, samples_per_shard=32, draws=draws))
    sharded = time.perf_counter() - began
    train_games = games - 1
    return {"data": data, "shards": shards, "manifest": manifest,
            "generate_s_per_game": generated / games, "shard_s_per_game": sharded / train_games / draws,
            "clips_per_game": manifest["num_samples"] / train_games / draws}


# ================================================================================================ loaders


def time_shards(shards: Path, clips: int, batch: int, workers: int, augment) -> dict:
    from fpspot.data.augment import AugmentConfig
    from fpspot.data.loader import train_loader

    loader = train_loader(shards, batch_size=batch, epoch=0, num_workers=workers, samples_per_epoch=clips,
                          augment=AugmentConfig() if augment else None)
    return _timed(loader)


def _cpu_seconds() -> float:
    import resource

    return sum(getattr(resource.getrusage(who), f) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
               for f in ("ru_utime", "ru_stime"))


def _timed(loader) -> dict:
    """Clips per second (wall clock) over the whole loop and after the first batch, and the CPU time per clip
    of all processes (main + DataLoader workers, counted when they exit): on a shared machine the CPU time is
    the steadier figure; on a quiet one, throughput is about ``workers / CPU time per clip``."""
    cpu = _cpu_seconds()
    began = time.perf_counter()
    first = None
    n = n_first = 0
    iterator = iter(loader)
    for b in iterator:
        n += b["video"].shape[0]
        if first is None:
            first, n_first = time.perf_counter(), n
    end = time.perf_counter()
    del iterator  # joins the workers, so that their CPU time is counted
    cpu = _cpu_seconds() - cpu
    steady = (n - n_first) / max(1e-9, end - first)
    return {"clips": n, "seconds": end - began, "clips_per_s": n / (end - began), "steady_clips_per_s": steady,
            "first_batch_s": first - began, "cpu_ms_per_clip": 1e3 * cpu / n}


class DirectClips:
    """Map-style dataset: clip ``i`` read from the mp4 + HDF5 (see the module docstring)."""

    def __init__(self, data: Path, split: str, clips: list[dict], size, kind: str, cached: bool):
        self.data, self.split, self.clips, self.size, self.kind = data, split, clips, size, kind
        self.cached = cached
        self._halves: dict = {}
        self._readers: dict = {}

    def __len__(self) -> int:
        return len(self.clips)

    def __getitem__(self, index: int) -> dict:
        from fpspot.data.footpass import TacticalFile
        from fpspot.data.layout import DatasetLayout
        from fpspot.data.tracks import HalfRows, dilate_labels
        from fpspot.data.video import VideoReader

        meta = self.clips[index]
        layout = DatasetLayout(self.data)
        key, start, length = meta["key"], meta["start_frame"], meta["num_frames"]
        if key not in self._halves or not self.cached:
            with TacticalFile(layout.tactical(self.split)) as tf:
                self._halves[key] = HalfRows(tf.read(key), key)
        half = self._halves[key]
        if meta["game"] not in self._readers or not self.cached:  # cached: kept open between clips
            if meta["game"] in self._readers:
                self._readers[meta["game"]].close()
            self._readers[meta["game"]] = VideoReader(layout.video(meta["game"]), size=self.size, threads=1)
        video = self._readers[meta["game"]].clip(start, start + length)
        if self.kind == "taad_gnn":
            arrays = half.slots(start, length, self.size)
        else:
            arrays = half.players(meta["player_ids"], start, length, self.size)
        return {"video": video, "rois": arrays["rois"], "masks": arrays["masks"],
                "labels_sharp": arrays["labels_sharp"], "labels": dilate_labels(arrays["labels_sharp"]),
                "nodes": arrays["nodes"], "meta": meta}


def time_direct(data: Path, shards: Path, clips: int, batch: int, workers: int, size, cached: bool) -> dict:
    import torch

    from fpspot.data.loader import collate_clips, eval_loader

    metas = [m for b in eval_loader(shards, batch_size=16, num_workers=0) for m in b["meta"]][:clips]
    kind = json.loads((shards / "manifest.json").read_text())["kind"]
    order = np.random.default_rng(0).permutation(len(metas))
    dataset = DirectClips(data, "train", [metas[i] for i in order], size, kind, cached)
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch, num_workers=workers, collate_fn=collate_clips)
    return _timed(loader)


def disk_bytes(shards: Path) -> dict:
    import tarfile

    manifest = json.loads((shards / "manifest.json").read_text())
    total = sum((shards / s["name"]).stat().st_size for s in manifest["shards"])
    video = 0
    for s in manifest["shards"]:
        with tarfile.open(shards / s["name"]) as tar:
            video += sum(m.size for m in tar.getmembers() if m.name.endswith(".video.mp4"))
    n = manifest["num_samples"]
    return {"bytes_per_clip": total / n, "video_bytes_per_clip": video / n, "clips": n}


# ================================================================================================ storage


def storage(data: Path, size, clips: int) -> list[dict]:
    from PIL import Image

    from fpspot.data.video import VideoReader, decode_clip, encode_clip

    with VideoReader(data / "videos" / "game_0.mp4", size=size) as reader:
        source = [reader.clip(200 + 120 * i, 250 + 120 * i) for i in range(clips)]
    noise = np.random.default_rng(0)
    noisy = [np.clip(c + noise.normal(0, 3, c.shape).round(), 0, 255).astype(np.uint8) for c in source]

    def jpeg_encode(clip):
        out = []
        for frame in clip:
            buf = io.BytesIO()
            Image.fromarray(frame).save(buf, format="JPEG", quality=90)
            out.append(buf.getvalue())
        return out

    def jpeg_decode(frames):
        return np.stack([np.asarray(Image.open(io.BytesIO(f)).convert("RGB")) for f in frames])

    def npy_encode(clip):
        buf = io.BytesIO()
        np.save(buf, clip, allow_pickle=False)
        return buf.getvalue()

    def npy_decode(data):
        return np.load(io.BytesIO(data), allow_pickle=False)

    options = {
        "jpeg_q90_per_frame": (jpeg_encode, jpeg_decode, lambda e: sum(len(f) for f in e)),
        "raw_npy": (npy_encode, npy_decode, len),
        "zlib1_npy": (lambda c: zlib.compress(npy_encode(c), 1), lambda d: npy_decode(zlib.decompress(d)), len),
        "h264_chunk_crf23": (encode_clip, decode_clip, len),
    }
    rows = []
    for content, clips_in in (("rendered", source), ("plus_noise_sigma3", noisy)):
        for name, (encode, decode, size_of) in options.items():
            encoded = [encode(c) for c in clips_in]
            seconds = float("inf")
            for _ in range(3):  # CPU time, best of 3: the steadier figure on a shared machine
                began = time.process_time()
                decoded = [decode(e) for e in encoded]
                seconds = min(seconds, (time.process_time() - began) / len(encoded))
            error = float(np.mean([np.abs(d.astype(int) - c.astype(int)).mean() for d, c in zip(decoded, clips_in)]))
            kb = float(np.mean([size_of(e) for e in encoded])) / 1e3
            rows.append({"content": content, "storage": name, "kb_per_clip": kb,
                         "decode_ms_per_clip": 1e3 * seconds, "mean_abs_error": error})
    return rows


# =================================================================================================== main


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", required=True, type=Path, help="folder for the synthetic dataset and shards")
    parser.add_argument("--size", type=parse_size, default=(352, 640), help="frame size of the clips (HxW)")
    parser.add_argument("--source-size", type=parse_size, default=None,
                        help="frame size of the game videos (default --size; 1080x1920 is the real FOOTPASS source, "
                             "which both paths then decode and resize to --size)")
    parser.add_argument("--games", type=int, default=2, help="games to generate (the last one is the val split)")
    parser.add_argument("--minutes", type=float, default=2.0)
    parser.add_argument("--clips", type=int, default=96)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--gop", type=int, default=250, help="keyframe interval of the synthetic game videos")
    parser.add_argument("--texture", type=float, default=8.0,
                        help="grey levels of pitch texture added to the synthetic frames (0: flat colours)")
    parser.add_argument("--draws", type=int, default=2, help="clips per event in the shards (fpspot shard --draws)")
    parser.add_argument("--storage", action="store_true", help="compare frame storage options instead")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)
    size = tuple(args.size)
    tag = f"{size[0]}x{size[1]}"
    if args.source_size and tuple(args.source_size) != size:
        tag += f"_from_{args.source_size[0]}x{args.source_size[1]}"
    work = args.work / f"{tag}_gop{args.gop}_tex{args.texture:g}"
    if args.storage:
        data = work / "synth"
        if not (data / "videos" / "game_0.mp4").is_file():
            build(work, size, args.games, args.minutes, args.gop, args.texture, args.draws)
        rows = storage(data, size, args.clips)
        print("| content | storage | kB / clip | decode ms / clip | mean abs error |\n|---|---|---|---|---|")
        for r in rows:
            print(f"| {r['content']} | {r['storage']} | {r['kb_per_clip']:.1f} | {r['decode_ms_per_clip']:.1f} | "
                  f"{r['mean_abs_error']:.2f} |")
        result = {"size": tag, "storage": rows}
    else:
        built = build(work, size, args.games, args.minutes, args.gop, args.texture, args.draws,
                      source_size=args.source_size)
        clips = min(args.clips, built["manifest"]["num_samples"])
        clips -= clips % args.batch
        direct = time_direct(built["data"], built["shards"], clips, args.batch, args.workers, size, cached=True)
        reopen = time_direct(built["data"], built["shards"], clips, args.batch, args.workers, size, cached=False)
        plain = time_shards(built["shards"], clips, args.batch, args.workers, augment=False)
        augmented = time_shards(built["shards"], clips, args.batch, args.workers, augment=True)
        disk = disk_bytes(built["shards"])
        result = {"size": tag, "gop": args.gop, "clips": clips, "workers": args.workers, "batch": args.batch,
                  "direct": direct, "direct_reopen": reopen,
                  "shards": plain, "shards_augmented": augmented, "disk": disk,
                  "generate_s_per_game": built["generate_s_per_game"], "shard_s_per_game": built["shard_s_per_game"],
                  "clips_per_game": built["clips_per_game"], "minutes_per_game": args.minutes}
        print(f"{tag}, source keyframe every {args.gop} frames, pitch texture {args.texture:g}, {clips} clips of 50 "
              f"frames, {args.workers} workers, batch {args.batch}")
        print("| path | clips/s | vs direct | clips/s after the first batch | CPU ms / clip | CPU vs direct |\n"
              "|---|---|---|---|---|---|")
        for name, r in (("direct mp4 + HDF5, kept open", direct), ("direct mp4 + HDF5, opened per clip", reopen),
                        ("shards, no augmentation", plain), ("shards, default augmentation", augmented)):
            print(f"| {name} | {r['clips_per_s']:.2f} | {r['clips_per_s'] / direct['clips_per_s']:.2f}x | "
                  f"{r['steady_clips_per_s']:.2f} | {r['cpu_ms_per_clip']:.0f} | "
                  f"{direct['cpu_ms_per_clip'] / r['cpu_ms_per_clip']:.2f}x |")
        print(f"disk: {disk['bytes_per_clip'] / 1e3:.1f} kB per clip "
              f"({disk['video_bytes_per_clip'] / 1e3:.1f} kB video)")
        print(f"one synthetic game of {args.minutes} min: generate {built['generate_s_per_game']:.1f} s, "
              f"shard {built['shard_s_per_game']:.1f} s ({built['clips_per_game']:.0f} clips)")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
