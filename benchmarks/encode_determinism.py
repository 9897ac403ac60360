"""Are the clip shards bit-reproducible? The same data sharded again and again, and single clips re-encoded.

The clip shards store each clip as an H.264 chunk (``fpspot.data.video.encode_clip``: libx264 in mp4, one
thread, bit-exact flags). Two runs of the main job on the same synthetic data wrote shards whose bytes differed
in a few clips, so their frame models trained on slightly different pixels. Two measurements:

1. ``shards``: the main job's synthetic data (6 games of 2 minutes at ``--size``, seed 0) and its training clip
   shards (``recipes/configs/taad_dst.yaml``: 36-frame clips, 2 tracklets, 2 draws) written ``--writes`` times
   into fresh folders by one process; per write, the shard members whose bytes differ from the first write's.
2. ``encoders``: ``--clips`` of those clips encoded ``--rounds`` times each, with a few random-sized buffers
   allocated and freed before each encode; the clips that got more than one distinct output, for libx264 in mp4
   (the shards' path), the same without x264's lookahead and macroblock tree, libx264 on a bare codec context
   (packets only, no container) and mpeg4 in mp4.

    python benchmarks/encode_determinism.py [--writes 6] [--clips 48] [--rounds 12] [--size 64x112] [--load 3]

``--load N`` runs N busy-loop processes beside the measurements, as other jobs sharing the cores would.

The input of every write and every encode of one clip is the same, so any difference comes from memory the
encoder reads without its input setting it.
"""

from __future__ import annotations

import argparse
import collections
import hashlib
import platform
import subprocess
import sys
import tarfile
import tempfile
import time
from fractions import Fraction
from pathlib import Path

import numpy as np


def write_shards_repeatedly(work: Path, size: tuple[int, int], writes: int) -> tuple[list[dict], Path]:
    """Generate the main job's data once, write its training clip shards ``writes`` times; per write the members
    that differ from the first write (``{field: count}``), and the first write's folder."""
    from fpspot.data.shards import ShardConfig, write_clip_shards
    from fpspot.data.synth import SynthConfig, generate_dataset

    data = work / "synth"
    generate_dataset(data, SynthConfig(games=6, minutes=2.0, size=size, seed=0, val_games=1))
    config = ShardConfig(clip_len=36, frame_hw=size, tracklets=2, per_class_cap=80, draws=2, samples_per_shard=16)
    first, report = None, []
    for index in range(writes):
        out = work / f"shards_{index}"
        write_clip_shards(data, "train", out, config)
        members = shard_members(out)
        first = first or members
        differing = collections.Counter(name.split(".", 1)[1] for name in first if members[name] != first[name])
        report.append({"members": len(members), "differing": dict(differing)})
    return report, work / "shards_0"


def shard_members(folder: Path) -> dict[str, str]:
    """``{member name: sha1 of its bytes}`` over the shards of ``folder``."""
    out = {}
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for member in tar.getmembers():
                out[member.name] = hashlib.sha1(tar.extractfile(member).read()).hexdigest()
    return out


def clips_of(folder: Path, count: int) -> list[np.ndarray]:
    """The first ``count`` clips of a shard folder, decoded, ``(T, H, W, 3)`` uint8 each."""
    from fpspot.data.video import decode_clip

    clips = []
    for shard in sorted(folder.glob("*.tar")):
        with tarfile.open(shard) as tar:
            for name in tar.getnames():
                if name.endswith(".video.mp4") and len(clips) < count:
                    clips.append(decode_clip(tar.extractfile(name).read()))
    return clips


def encode_bare_x264(frames: np.ndarray) -> bytes:
    """The packets of libx264 with the writer's options on a bare codec context (no container)."""
    import av

    from fpspot.data.video import _encoder_options

    context = av.CodecContext.create("libx264", "w")
    context.width, context.height, context.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
    context.time_base, context.framerate = Fraction(1, 25), Fraction(25, 1)
    context.options = _encoder_options("libx264", 23, len(frames))
    context.thread_count = 1
    packets = []
    for index, frame in enumerate(frames):
        video_frame = av.VideoFrame.from_ndarray(frame, format="rgb24").reformat(format="yuv420p")
        video_frame.pts = index
        packets += [bytes(p) for p in context.encode(video_frame)]
    packets += [bytes(p) for p in context.encode(None)]
    return b"".join(packets)


def distinct_outputs(clips: list[np.ndarray], encode, rounds: int, seed: int = 0) -> tuple[int, float]:
    """(clips with more than one distinct output over ``rounds`` encodes, ms per encode)."""
    rng = np.random.default_rng(seed)
    outputs: dict[int, collections.Counter] = collections.defaultdict(collections.Counter)
    began = time.perf_counter()
    for _ in range(rounds):
        for index, clip in enumerate(clips):
            stir = [rng.integers(0, 255, int(rng.integers(1_000, 200_000)), dtype=np.uint8) for _ in range(3)]
            outputs[index][hashlib.sha1(encode(clip)).hexdigest()] += 1
            del stir
    elapsed = (time.perf_counter() - began) / (rounds * len(clips))
    return sum(len(c) > 1 for c in outputs.values()), elapsed * 1e3


def main(argv=None) -> int:
    import av

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=6)
    parser.add_argument("--clips", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--size", default="64x112", help="HxW of the rendered games (the main job's size)")
    parser.add_argument("--work", default=None, help="folder for the data and shards (default: a temporary one)")
    parser.add_argument("--load", type=int, default=0,
                        help="busy-loop processes run beside both measurements (other jobs on the machine)")
    args = parser.parse_args(argv)
    size = tuple(int(x) for x in args.size.lower().split("x"))
    print(f"PyAV {av.__version__}, {platform.processor() or platform.machine()}")
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.load)]
    try:
        return measure(args, size)
    finally:
        for burner in burners:
            burner.kill()


def measure(args, size: tuple[int, int]) -> int:
    from fpspot.data.video import _encoder_options, encode_clip

    default_params = _encoder_options("libx264", 23, 36)["x264-params"]
    no_lookahead = {"x264-params": default_params + ":sync-lookahead=0:rc-lookahead=0:mbtree=0"}
    print(f"{args.load} busy-loop process(es) beside the measurements")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(args.work or tmp)
        report, first = write_shards_repeatedly(work, size, args.writes)
        print(f"\nshards: {report[0]['members']} members per write")
        print("| write | members differing from write 1 |\n|---:|---|")
        for index, row in enumerate(report[1:], start=2):
            print(f"| {index} | {sum(row['differing'].values())} {row['differing'] or ''} |")
        clips = clips_of(first, args.clips)
    print(f"\nencoders: {len(clips)} clips of {clips[0].shape[0]} frames, {args.rounds} encodes each")
    print("| encoder | clips with > 1 distinct output | ms per encode |\n|---|---:|---:|")
    for name, encode in (("libx264, mp4 (encode_clip, the shards' path)", encode_clip),
                         ("libx264, mp4, no lookahead (sync-lookahead=0:rc-lookahead=0:mbtree=0)",
                          lambda c: encode_clip(c, encoder_options=no_lookahead)),
                         ("libx264, bare codec context (packets)", encode_bare_x264),
                         ("mpeg4, mp4 (encode_clip(codec='mpeg4'))", lambda c: encode_clip(c, codec="mpeg4"))):
        unstable, ms = distinct_outputs(clips, encode, args.rounds)
        print(f"| {name} | {unstable} of {len(clips)} | {ms:.1f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
