"""``fpspot post``: apply a post-processing pipeline, or fit one.

    fpspot post --config PIPELINE.yaml --pred taad=TAAD.json --pred dst=DST.json --out OUT.json
    fpspot post fit --gt GT.json --pred taad=TAAD.json dst=DST.json --out PIPELINE.yaml [--cv games]
                    [--then ONE_INPUT_PIPELINE.yaml]

NAME in ``--pred NAME=PATH`` is how the pipeline refers to each model's predictions. Errors in the input print one
line and exit 2 (:mod:`fpspot.cli`).
"""

from __future__ import annotations

import argparse
import json


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", nargs="?", choices=["fit"],
                        help="'fit': fit a pipeline on ground truth; omitted: apply --config")
    parser.add_argument("--config", metavar="PIPELINE.yaml", help="pipeline to apply")
    parser.add_argument("--pred", metavar="NAME=PATH", nargs="+", action="extend", default=[],
                        help="predictions JSON of one model, under the name the pipeline uses (repeatable)")
    parser.add_argument("--out", metavar="PATH", required=True,
                        help="output predictions JSON (apply) or pipeline YAML (fit)")
    parser.add_argument("--gt", metavar="GT.json", help="ground truth of the calibration halves (fit)")
    parser.add_argument("--cv", choices=["games"], help="fit: also run leave-one-game-out validation and report "
                        "the held-out scores per game")
    parser.add_argument("--cv-json", metavar="OUT.json", help="fit: write the cross-validation rows as JSON")
    parser.add_argument("--offset", metavar="NAME=FRAMES", nargs="+", action="extend", default=[],
                        help="fit: known frame correction of a model instead of a measured one (e.g. dst=-1)")
    parser.add_argument("--primary", metavar="NAME", help="fit: the model the others support (default: best alone)")
    parser.add_argument("--objective", choices=["micro", "macro", "macro+micro"],
                        help="fit: criterion for the fusion weights and jersey rule (default micro)")
    parser.add_argument("--then", metavar="PIPELINE.yaml", help="fit: a one-input pipeline appended unchanged to "
                        "the fitted one, e.g. recipes/pretrained/event_dst/pipeline_dst.yaml")


_FIT_OPTIONS = ("gt", "cv", "cv_json", "offset", "primary", "objective", "then")  # argparse names


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name or not rest:
            raise ValueError(f"{what} must be NAME=VALUE, got {value!r}")
        if name in out:
            raise ValueError(f"{what}: name {name!r} given twice")
        out[name] = rest
    return out


def _read_predictions(specs: list[str]):
    from fpspot.data.footpass import read_playbyplay

    paths = _pairs(specs, "--pred")
    if not paths:
        raise ValueError("give at least one --pred NAME=PATH")
    return {name: read_playbyplay(path, "pred") for name, path in paths.items()}


def run(args: argparse.Namespace) -> int:
    from fpspot.data.footpass import read_playbyplay, write_playbyplay
    from fpspot.post.pipeline import Pipeline

    preds = _read_predictions(args.pred)
    if args.action is None:
        if not args.config:
            raise ValueError("give --config PIPELINE.yaml to apply a pipeline, or use 'fpspot post fit'")
        fit_only = [f"--{name.replace('_', '-')}" for name in _FIT_OPTIONS if getattr(args, name)]
        if fit_only:
            raise ValueError(f"{', '.join(fit_only)}: option(s) of 'fpspot post fit', not of applying a pipeline")
        pipeline = Pipeline.load(args.config)
        unused = [name for name in preds if name not in pipeline.inputs]
        if unused:
            raise ValueError(f"--pred {', '.join(unused)}: not an input of {args.config} (its inputs: "
                             f"{', '.join(pipeline.inputs)})")
        result = pipeline.apply(preds)
        write_playbyplay(args.out, result)
        print(f"wrote {len(result)} events over {len(result.keys)} halves to {args.out}")
        return 0

    from fpspot.post.fit import FitOptions, cross_validate, fit_pipeline

    if not args.gt:
        raise ValueError("'fpspot post fit' needs --gt GT.json")
    gt = read_playbyplay(args.gt, "gt")
    offsets = {name: int(v) for name, v in _pairs(args.offset, "--offset").items()}
    if args.config:
        raise ValueError("--config is the pipeline to apply; 'fpspot post fit' writes one to --out")
    options = FitOptions(primary=args.primary, offsets=offsets, objective=args.objective or "micro",
                         then=Pipeline.load(args.then) if args.then else None)
    cv = cross_validate(gt, preds, options) if args.cv else None
    pipeline = fit_pipeline(gt, preds, options)
    if cv is not None:
        print("leave-one-game-out (fit on the other games, score the held-out one):")
        print(cv.table())
        pipeline.info["cross_validation"] = [
            {"game": r["game"], "macro_f1": round(r["macro_f1"], 4), "micro_f1": round(r["micro_f1"], 4),
             **{f"{n}_macro_f1": round(v["macro_f1"], 4) for n, v in r["inputs"].items()},
             **{f"{n}_micro_f1": round(v["micro_f1"], 4) for n, v in r["inputs"].items()}} for r in cv.rows]
        if args.cv_json:
            from fpspot.utils.atomic import atomic_open

            with atomic_open(args.cv_json) as handle:
                json.dump(cv.to_json(), handle, indent=2)
    pipeline.save(args.out, header=(
        f"Post-processing pipeline fitted by `fpspot post fit` on {args.gt}\n"
        f"(inputs: {', '.join(f'{n}={p}' for n, p in _pairs(args.pred, '--pred').items())}).\n"
        "Apply: fpspot post --config THIS.yaml " + " ".join(f"--pred {n}=PATH" for n in preds) + " --out OUT.json"))
    cal = pipeline.info["calibration"]
    print(f"fitted on {len(gt.keys)} halves: macro F1 {cal['macro_f1']:.4f}, micro F1 {cal['micro_f1']:.4f} "
          f"(in sample); wrote {args.out}")
    return 0
