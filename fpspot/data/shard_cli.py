"""``fpspot shard --data DIR --split SPLIT --out SHARD_DIR``: clip shards + manifest (:mod:`fpspot.data.shards`)."""

from __future__ import annotations

import argparse
import time

from fpspot.data.synth_cli import parse_size


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--data", required=True, help="FOOTPASS-format dataset folder (real or synthetic)")
    parser.add_argument("--split", required=True, help="split to shard (train, val)")
    parser.add_argument("--out", required=True, help="output folder for the .tar shards and manifest.json")
    parser.add_argument("--kind", choices=("taad", "taad_gnn"), default="taad",
                        help="taad: tracklets per clip (--tracklets); taad_gnn: the 26 role slots")
    parser.add_argument("--clip-len", type=int, default=50, help="frames per clip (default 50)")
    parser.add_argument("--size", type=parse_size, default=(352, 640), help="frame size HxW (default 352x640)")
    parser.add_argument("--tracklets", type=int, default=5, help="tracks per TAAD clip, actor included (default 5)")
    parser.add_argument("--per-class-cap", type=int, default=500, help="events per class per draw (default 500)")
    parser.add_argument("--draws", type=int, default=1, help="independent per-class draws to write (default 1)")
    parser.add_argument("--background-per-half", type=int, default=None,
                        help="random clips per half (default 0 for taad, 50 for taad_gnn)")
    parser.add_argument("--samples-per-shard", type=int, default=64,
                        help="samples per .tar (default 64; want at least processes x workers shards)")
    parser.add_argument("--include-no-box", action="store_true", help="also sample events whose actor has no box")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed")
    parser.add_argument("--crf", type=int, default=23, help="H.264 quality of the clips (default 23)")


def run(args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from fpspot.data.shards import ShardConfig, write_clip_shards

    config = ShardConfig(kind=args.kind, clip_len=args.clip_len, frame_hw=tuple(args.size), tracklets=args.tracklets,
                         per_class_cap=args.per_class_cap, draws=args.draws,
                         background_per_half=args.background_per_half, samples_per_shard=args.samples_per_shard,
                         require_box=not args.include_no_box, seed=args.seed, crf=args.crf)
    began = time.perf_counter()
    with tqdm(unit="clip", desc=f"shard {args.split}", delay=1.0) as bar:  # no bar before an early error
        manifest = write_clip_shards(args.data, args.split, args.out, config, progress=bar.update)
    print(f"wrote {manifest['num_samples']} {args.kind} clips in {len(manifest['shards'])} shards to {args.out} "
          f"in {time.perf_counter() - began:.1f} s")
    return 0
