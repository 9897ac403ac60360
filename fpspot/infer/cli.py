"""``fpspot infer --model DIR --data DIR [--split val] --out PRED.json``: run a trained model over whole halves.

Works alone or under ``accelerate launch`` (halves shared out over the processes). ``--model`` is a folder
written by ``save_pretrained`` holding a video model (TAAD, TAAD+GNN) or a stack folder (``stack.json``: a TAAD
frame model and a DST decoder). Another model (an event DST, a DST alone) stops with
:class:`~fpspot.infer.api.UnsupportedModelError` before any data is read; its message says how to run it instead.
"""

from __future__ import annotations

import argparse
import time


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, metavar="DIR",
                        help="a saved video model, taad or taad_gnn (config.json + model.safetensors), or a stack "
                             "folder (stack.json: a video model + a dst); event_dst models run in `fpspot post`")
    parser.add_argument("--data", required=True, metavar="DIR",
                        help="FOOTPASS-format dataset folder (videos/, data/{split}_tactical_data.h5)")
    parser.add_argument("--split", action="append", metavar="SPLIT",
                        help="split to run (repeatable; default: every split with a tactical file)")
    parser.add_argument("--keys", nargs="+", metavar="KEY", help="only these halves (e.g. game_18_H1)")
    parser.add_argument("--out", required=True, metavar="PRED.json",
                        help="predictions JSON (challenge format, every key), written atomically at the end")
    parser.add_argument("--batch-size", type=int, default=None, metavar="N",
                        help="windows per model call (default 8 with --scheme overlap, 1 with long)")
    parser.add_argument("--scheme", choices=("overlap", "long"), default="overlap",
                        help="overlap: the baseline's 50-frame windows every 25 frames, averaged (default); "
                             "long: 300-frame windows keeping their central 250 (~1.7x fewer backbone frames)")
    parser.add_argument("--logits-dir", metavar="DIR", help="also keep each half's logits as {key}.safetensors")
    parser.add_argument("--logits-h5", metavar="FILE", help="and gather them into one HDF5 file (needs --logits-dir)")
    parser.add_argument("--device", default=None, help="torch device (default: the process's device)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from fpspot.infer.api import infer, process_state

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")  # one line (fpspot.cli)
    began = time.perf_counter()
    pred = infer(args.model, args.data, split=args.split, keys=args.keys, batch_size=args.batch_size,
                 device=args.device, output=args.out, scheme=args.scheme, logits_dir=args.logits_dir,
                 logits_h5=args.logits_h5, show_progress=not args.no_progress)
    process_state().print(f"wrote {len(pred)} events for {len(pred.keys)} halves to {args.out} "
                          f"in {time.perf_counter() - began:.1f} s")
    return 0
