"""Real-data result of ``fpspot.post``: leave-one-game-out on the released FOOTPASS validation files.

Uses only ``playbyplay_val_g18_g24.json`` (ground truth of games 18 and 24) and the released TAAD and
TAAD+DST predictions of the same halves. For each game: fit the pipeline (TAAD + DST fusion, jersey
re-assignment, offsets, gating) on the other game, score the held-out one, next to DST and TAAD alone.
The same options as ``recipes/configs/post_footpass_val.yaml`` (the fit on both games): the known
``dst=-1`` frame offset (off-by-one in the baseline's code, spec §4.5), everything else fitted. A second table
appends an unfitted pipeline after the fitted steps (``--then``, default the released event DST in filter mode,
``recipes/pretrained/event_dst/pipeline_dst.yaml``: trained and chosen on training games only, nothing in it
fitted here; the committed config does without it).
Annotations and predictions: FOOTPASS (Ochin et al., CVIU 2026), CC BY-NC 4.0.

    python benchmarks/post_footpass_logo.py [--data ../shared/data/footpass] [--then PIPELINE.yaml] [--json OUT]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from fpspot.data.footpass import read_playbyplay
from fpspot.eval.metric import evaluate
from fpspot.post.fit import FitOptions, cross_validate
from fpspot.post.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=str(REPO.parent / "shared" / "data" / "footpass"))
    parser.add_argument("--config", default=str(REPO / "recipes" / "configs" / "post_footpass_val.yaml"))
    parser.add_argument("--then", default=str(REPO / "recipes" / "pretrained" / "event_dst" / "pipeline_dst.yaml"),
                        help="one-input pipeline appended to the fitted one ('' for none)")
    parser.add_argument("--json", metavar="OUT")
    args = parser.parse_args()
    data = Path(args.data)
    gt = read_playbyplay(data / "playbyplay_val_g18_g24.json")
    preds = {"taad": read_playbyplay(data / "playbyplay_TAAD_val_g18_g24.json"),
             "dst": read_playbyplay(data / "playbyplay_DST_val_g18_g24.json")}

    t0 = time.perf_counter()
    fitted_only = cross_validate(gt, preds, FitOptions(offsets={"dst": -1}), reference="dst")
    seconds = time.perf_counter() - t0
    print(f"leave-one-game-out, fitted steps only ({seconds:.1f} s):")
    print(fitted_only.table())
    cv = fitted_only
    if args.then:
        t0 = time.perf_counter()
        cv = cross_validate(gt, preds, FitOptions(offsets={"dst": -1}, then=Pipeline.load(args.then)), reference="dst")
        print(f"\nleave-one-game-out, then {args.then} ({time.perf_counter() - t0:.1f} s):")
        print(cv.table())
    for game, pipe in cv.pipelines.items():
        fuse = next(s for s in pipe.steps if s["step"] == "fuse")
        jersey = next((s["min_support_score"] for s in pipe.steps if s["step"] == "reassign_jersey"), None)
        shifts = {s["input"]: s["frames"] for s in pipe.steps if s["step"] == "shift"}
        print(f"  held out {game}: shifts {shifts}, fusion weights {fuse['weights']}, jersey from {jersey}")

    rows = {}
    for name, p in preds.items():
        r = evaluate(p, gt)
        rows[name] = {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1}
    committed = Pipeline.load(args.config)
    r = evaluate(committed.apply(preds), gt)
    rows["committed pipeline (in sample)"] = {"macro_f1": r.macro_f1, "micro_f1": r.micro_f1}
    print("\nall 4 halves:")
    for name, v in rows.items():
        print(f"  {name:32s} micro {v['micro_f1']:.4f}  macro {v['macro_f1']:.4f}")
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump({"cv": cv.to_json(), "cv_fitted_only": fitted_only.to_json(), "all_halves": rows}, handle,
                      indent=2)


if __name__ == "__main__":
    main()
