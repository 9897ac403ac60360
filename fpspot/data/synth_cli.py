"""``fpspot synth --out DIR``: write a synthetic FOOTPASS-format dataset (see :mod:`fpspot.data.synth`)."""

from __future__ import annotations

import argparse
import time


def parse_size(text: str) -> tuple[int, int]:
    """``"176x320" -> (176, 320)`` (height x width, both even)."""
    try:
        height, width = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must be HxW, e.g. 352x640, got {text!r}") from None
    if height <= 0 or width <= 0 or height % 2 or width % 2:
        raise argparse.ArgumentTypeError(f"size {text!r}: height and width must be positive and even")
    return height, width


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--out", required=True, help="output folder (videos/, data/, playbyplay_GT/, splits.json)")
    parser.add_argument("--games", type=int, default=4, help="number of games (default 4)")
    parser.add_argument("--minutes", type=float, default=2.0, help="length of a game, both halves (default 2)")
    parser.add_argument("--size", type=parse_size, default=(352, 640), help="video frame size HxW (default 352x640)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (same seed, same data)")
    parser.add_argument("--val-games", type=int, default=None, help="games in the val split (default: 1 in 4)")
    parser.add_argument("--challenge-games", type=int, default=0, help="games in the challenge split (no GT)")
    parser.add_argument("--crf", type=int, default=23, help="H.264 quality of the videos (default 23)")
    parser.add_argument("--gop", type=int, default=50, help="keyframe interval of the videos (default 50)")
    parser.add_argument("--class-balance", type=float, default=0.0,
                        help="0: the real class mix (default); 0.75: nearly flat class frequencies")


def run(args: argparse.Namespace) -> int:
    from fpspot.data.synth import SynthConfig, generate_dataset

    config = SynthConfig(games=args.games, minutes=args.minutes, size=tuple(args.size), seed=args.seed,
                         val_games=args.val_games, challenge_games=args.challenge_games, crf=args.crf,
                         gop=args.gop, class_balance=args.class_balance)
    splits = config.splits()
    began = time.perf_counter()
    generate_dataset(args.out, config, progress=lambda game: print(f"game {game} done", flush=True))
    print(f"wrote {args.games} games ({', '.join(f'{k}: {v}' for k, v in splits.items() if v)}) to {args.out} "
          f"in {time.perf_counter() - began:.1f} s")
    return 0
