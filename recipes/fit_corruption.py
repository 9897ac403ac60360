"""Fit the corruption model of the event-sequence DST on a spotter's predictions (default: the packaged TAAD fit).

    python recipes/fit_corruption.py                 # the packaged TAAD fit, in runs/fit_corruption/corruption.json
    python recipes/fit_corruption.py --out fpspot/data/corruption_taad.json          # regenerate the packaged file
    python recipes/fit_corruption.py --gt GT.json --pred PRED.json --out params.json --check-seeds 5

Without ``--out`` the fit goes to ``runs/fit_corruption/corruption.json`` (under the working folder): the
packaged noise model ``fpspot/data/corruption_taad.json`` is only replaced when named explicitly.

The packaged fit has per-class offsets (pseudo-count 30) and carry false positives, calibrated in 3 rounds (the
defaults); ``--per-class-offsets none --no-carry --calibrate-iters 2`` gives back the previous packaged fit, on
which the event DST release before it was trained. ``--twins`` adds TAAD's habit of firing several classes on one
player at once (ghosts in another class next to a detection or ghost of the same player; see the module docstring
of ``fpspot.data.corrupt`` and BENCHMARKS.md).

With ``--check-seeds N`` it also corrupts the ground truth N times with the fitted parameters and prints
the official micro / macro F1 of the corrupted files next to those of the real predictions;
``--strengths 0.15,0.5`` adds the figures of the same ground truth corrupted at those noise strengths
(:func:`fpspot.data.corrupt.strength_scales`; the event DST trains over a range of strengths).
``--structure`` compares how the false positives are laid out in the real file and in the corrupted ground
truth (random bursts, ghosts next to their event's prediction, duplicates on another action of their player,
predictions of one player and class closer than a spotter's NMS window, the scores of duplicates and of their
parents, false positives inside their player's possession, ghosts that are twins of another prediction of their
player);
``--model DIR`` adds, per error kind, the mean keep probability an event DST gives them (how hard they are).

    python recipes/fit_corruption.py --out /tmp/params.json --check-seeds 0 --structure \\
        --model recipes/pretrained/event_dst
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fpspot.data.corrupt import CorruptionParams, corrupt_playbyplay, fit_corruption
from fpspot.data.corrupt.structure import false_positive_layout
from fpspot.data.footpass import read_playbyplay
from fpspot.eval import evaluate

REPO = Path(__file__).resolve().parents[1]
FOOTPASS = REPO.parent / "shared" / "data" / "footpass"
DEFAULT_OUT = Path("runs") / "fit_corruption" / "corruption.json"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gt", type=Path, default=FOOTPASS / "playbyplay_val_g18_g24.json", metavar="GT.json",
                        help="ground truth of the halves the spotter predicted (default: the released games 18 and "
                             "24, %(default)s)")
    parser.add_argument("--pred", type=Path, default=FOOTPASS / "playbyplay_TAAD_val_g18_g24.json",
                        metavar="PRED.json", help="the spotter's predictions for the same halves (default: the "
                                                  "released TAAD file, %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, metavar="PARAMS.json",
                        help="where to write the fitted parameters (default: %(default)s; give "
                             "fpspot/data/corruption_taad.json to replace the packaged fit)")
    parser.add_argument("--calibrate-iters", type=int, default=3)
    parser.add_argument("--dup-tilt-bins", type=int, default=0,
                        help="duplicates hung on parents by score (this many parent-score bins) and scored as a fitted "
                             "ratio of their parent's score (0: the packaged fit's capped draws; see BENCHMARKS.md)")
    parser.add_argument("--per-class-offsets", type=lambda v: None if v == "none" else float(v), default=30.0,
                        metavar="PSEUDO_COUNT",
                        help="per-class jitter histograms and duplicate directions, shrunk toward the pooled "
                             "ones with this pseudo-count (default 30, the packaged fit; 'none': pooled)")
    parser.add_argument("--carry", action=argparse.BooleanOptionalAction, default=True,
                        help="false positives on a player inside his own possession (between two of his "
                             "consecutive events) as a kind of their own, with their own rate and scores "
                             "(default: on, the packaged fit)")
    parser.add_argument("--twins", action=argparse.BooleanOptionalAction, default=False,
                        help="ghosts in another class next to a detection or ghost of the same player (TAAD fires "
                             "several classes on one player at once) as twins of it, with their own rates, "
                             "classes and offsets (default: off, the packaged fit)")
    parser.add_argument("--spotter-nms", default="0",
                        help="NMS window (frames) the spotter applies to its own output, put into the corruption: "
                             "0 = none (the packaged fit), 'auto' = measured on --pred (TAAD: 25), or a number")
    parser.add_argument("--check-seeds", type=int, default=5, help="corrupt the GT this many times and score it")
    parser.add_argument("--strengths", default="", help="comma-separated noise strengths to score as well")
    parser.add_argument("--json", type=Path, default=None, help="write the check figures here")
    parser.add_argument("--structure", action="store_true", help="compare the layout of the false positives")
    parser.add_argument("--model", type=Path, default=None, help="with --structure: an event DST folder")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return fit(args)
    except Exception as err:
        from fpspot.cli import exit_on_user_error

        return exit_on_user_error("recipes/fit_corruption.py", err)


def fit(args: argparse.Namespace) -> int:
    """Fit, write and check the corruption parameters as ``args`` say (see the module docstring)."""
    gt, pred = read_playbyplay(args.gt, "gt"), read_playbyplay(args.pred, "pred")
    nms = args.spotter_nms if args.spotter_nms == "auto" else int(args.spotter_nms)
    params = fit_corruption(gt, pred, calibrate_iters=args.calibrate_iters, spotter_nms=nms,
                            dup_tilt_bins=args.dup_tilt_bins, per_class_offsets=args.per_class_offsets,
                            carry=args.carry, twins=args.twins)
    params.source = {**params.source, "gt": args.gt.name, "pred": args.pred.name}
    params.save(args.out)
    CorruptionParams.load(args.out)  # never leave a file we cannot read back
    print(f"wrote {args.out}: {params.source['counts']}")
    if args.structure:
        structure(gt, pred, params, args.model)
    if args.check_seeds <= 0:
        return 0
    real = evaluate(pred, gt)
    runs = [evaluate(corrupt_playbyplay(gt, params, seed), gt) for seed in range(args.check_seeds)]
    figures = {
        "real": {"micro_f1": real.micro_f1, "macro_f1": real.macro_f1},
        "corrupted": {"micro_f1_mean": float(np.mean([r.micro_f1 for r in runs])),
                      "micro_f1_std": float(np.std([r.micro_f1 for r in runs])),
                      "macro_f1_mean": float(np.mean([r.macro_f1 for r in runs])),
                      "macro_f1_std": float(np.std([r.macro_f1 for r in runs])), "seeds": args.check_seeds},
        "per_class": {name: {"real_precision": c.precision, "real_recall": c.recall,
                             "corrupted_precision": float(np.mean([r.per_class[name].precision for r in runs])),
                             "corrupted_recall": float(np.mean([r.per_class[name].recall for r in runs]))}
                      for name, c in real.per_class.items()},
    }
    c = figures["corrupted"]
    print(f"real      micro F1 {real.micro_f1:.4f}  macro F1 {real.macro_f1:.4f}")
    print(f"corrupted micro F1 {c['micro_f1_mean']:.4f} +- {c['micro_f1_std']:.4f}  "
          f"macro F1 {c['macro_f1_mean']:.4f} +- {c['macro_f1_std']:.4f}  ({args.check_seeds} seeds)")
    print(f"{'class':10s} {'P real':>7s} {'P corr':>7s} {'R real':>7s} {'R corr':>7s}")
    for name, row in figures["per_class"].items():
        print(f"{name:10s} {row['real_precision']:7.3f} {row['corrupted_precision']:7.3f} "
              f"{row['real_recall']:7.3f} {row['corrupted_recall']:7.3f}")
    strengths = [float(x) for x in args.strengths.split(",") if x.strip()]
    for strength in strengths:
        runs = [evaluate(corrupt_playbyplay(gt, params, seed, strength=strength), gt)
                for seed in range(args.check_seeds)]
        row = {"micro_f1_mean": float(np.mean([r.micro_f1 for r in runs])),
               "macro_f1_mean": float(np.mean([r.macro_f1 for r in runs])),
               "precision_mean": float(np.mean([r.overall.precision for r in runs])),
               "recall_mean": float(np.mean([r.overall.recall for r in runs]))}
        figures.setdefault("strengths", {})[str(strength)] = row
        print(f"strength {strength:g}: micro F1 {row['micro_f1_mean']:.4f} macro F1 {row['macro_f1_mean']:.4f} "
              f"P {row['precision_mean']:.3f} R {row['recall_mean']:.3f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1))
    return 0


def structure(gt, pred, params, model_dir=None) -> None:
    model = None
    if model_dir is not None:
        import torch

        from fpspot.post.event_dst import load_event_dst

        torch.set_num_threads(1)
        model = load_event_dst(model_dir)
    real = false_positive_layout(gt, pred, model)
    corrupted = false_positive_layout(gt, corrupt_playbyplay(gt, params, 0), model)
    print(f"{'false-positive layout':45s} {'real':>7s} {'corrupted':>9s}")
    for name, value in real.items():
        print(f"{name:45s} {value:7.3f} {corrupted.get(name, float('nan')):9.3f}")


if __name__ == "__main__":
    raise SystemExit(main())
