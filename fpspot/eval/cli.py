"""``fpspot evaluate PRED.json GT.json``: print the official table, micro and macro F1."""

from __future__ import annotations

import argparse
import json

from fpspot.utils.atomic import atomic_open


def _checked(convert, check, expected: str):
    """An argparse type: ``convert`` the text, then ``check`` the value with the library's own check
    (:func:`fpspot.eval.metric.check_delta` / ``check_threshold``)."""
    def parse(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{expected} expected, got {text!r}") from None
        try:
            check(value)
        except ValueError as err:
            raise argparse.ArgumentTypeError(str(err)) from None
        return value

    return parse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", help="predictions JSON (frame, team, shirt, class, score)")
    parser.add_argument("ground_truth", help="ground-truth JSON (frame, team, shirt, class, bbox, replay)")
    from fpspot.eval.metric import check_delta, check_threshold

    parser.add_argument("--delta", type=_checked(int, check_delta, "a whole number of frames"), default=12,
                        help="matching tolerance in frames, >= 0 (default 12)")
    parser.add_argument("--threshold", type=_checked(float, check_threshold, "a number"), default=0.15,
                        help="minimum score, in [0, 1] (default 0.15)")
    parser.add_argument("--official-keys", action="store_true",
                        help="score only halves present in both files, as the official script does")
    parser.add_argument("--per-half", action="store_true", help="also print micro P/R/F1 per half")
    parser.add_argument("--json", metavar="OUT.json", help="write the figures as JSON")
    parser.add_argument("--plot", metavar="OUT.png", help="draw per-class bars and precision-recall curves")


def run(args: argparse.Namespace) -> int:
    from fpspot.eval.metric import evaluate
    from fpspot.eval.report import format_per_half, plot_report

    report = evaluate(args.predictions, args.ground_truth, delta=args.delta, threshold=args.threshold,
                      official_keys=args.official_keys)
    print(report.table())
    if args.per_half:
        print(format_per_half(report))
    if args.json:
        with atomic_open(args.json) as handle:
            json.dump(report.to_json(), handle, indent=2)
    if args.plot:
        plot_report(report, args.plot)
    return 0
