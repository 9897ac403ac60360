"""Real-data result of the released event-sequence DST (issue 8) on FOOTPASS validation games 18 and 24.

    python benchmarks/event_dst_footpass.py                     # the committed model and pipelines
    python benchmarks/event_dst_footpass.py --json out.json
    python benchmarks/event_dst_footpass.py --matched-noise 5   # the TAAD pipeline on corrupted GT of 18/24

For game 18, game 24 and both together: macro and micro F1 (official matcher, delta 12, threshold 0.15) of
the released TAAD predictions before and after ``recipes/pretrained/event_dst/pipeline.yaml``, and of the
released TAAD+DST predictions before and after ``recipes/pretrained/event_dst/pipeline_dst.yaml``. The model
never saw these games: it was trained on training games only and its checkpoint and options were chosen on
held-out training games (see ``recipes/pretrained/event_dst/README.md``). Ablation column (TAAD pipeline): the
input's own scores gated per class with thresholds fitted the same way as the pipeline's (held-out training
halves corrupted at strength 1), i.e. what thresholds alone give without the model.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
FOOTPASS = REPO.parent / "shared" / "data" / "footpass"
RELEASED = REPO / "recipes" / "pretrained" / "event_dst"


def main(argv: list[str] | None = None) -> int:
    from fpspot.data.footpass import read_playbyplay
    from fpspot.eval import evaluate
    from fpspot.post.pipeline import Pipeline

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footpass", type=Path, default=FOOTPASS)
    parser.add_argument("--taad-pipeline", type=Path, default=RELEASED / "pipeline.yaml")
    parser.add_argument("--dst-pipeline", type=Path, default=RELEASED / "pipeline_dst.yaml")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-ablation", action="store_true", help="skip the gating-alone comparison")
    parser.add_argument("--ceiling", action="store_true",
                        help="only print the no-insertion ceiling of a per-event model on held-out training halves")
    parser.add_argument("--matched-noise", type=int, default=0, metavar="SEEDS",
                        help="only apply the TAAD pipeline to the ground truth of games 18/24 corrupted by the fitted "
                             "noise model (SEEDS seeds): the same games with noise that matches the training noise")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.ceiling:
        return ceiling(args.footpass, Pipeline.load(args.taad_pipeline).info["fitted_on"])
    if args.matched_noise:
        return matched_noise(args.footpass, Pipeline.load(args.taad_pipeline), args.matched_noise)

    gt = read_playbyplay(args.footpass / "playbyplay_val_g18_g24.json", "gt")
    inputs = {"taad": read_playbyplay(args.footpass / "playbyplay_TAAD_val_g18_g24.json", "pred"),
              "dst": read_playbyplay(args.footpass / "playbyplay_DST_val_g18_g24.json", "pred")}
    pipelines = {"taad": args.taad_pipeline, "dst": args.dst_pipeline}
    outputs, seconds = {}, {}
    for name, pred in inputs.items():
        pipe = Pipeline.load(pipelines[name])
        if pipe.inputs != ["taad"]:
            raise ValueError(f"{pipelines[name]}: expected one input named 'taad', got {pipe.inputs}")
        start = time.perf_counter()
        outputs[name] = pipe.apply({"taad": pred})
        seconds[name] = time.perf_counter() - start

    # ablation: per-class gating of the input scores alone, fitted the same way (held-out training halves
    # corrupted at the pipeline's strength), to show what the model adds beyond thresholds
    gated = {}
    if not args.no_ablation:
        from fpspot.data.corrupt import CorruptionParams, corrupt_playbyplay
        from fpspot.pipeline.event_dst.config import RecipeConfig
        from fpspot.pipeline.event_dst.heldout import GATE_GRID  # the recipe's threshold grid
        from fpspot.train.config import load_config
        from fpspot.post.gating import fit_thresholds, gate

        train = read_playbyplay(args.footpass / "playbyplay_train.json", "gt")
        shrink = load_config(RecipeConfig, REPO / "recipes" / "configs" / "event_dst.yaml").export.shrink
        for name in inputs:
            pipe = Pipeline.load(pipelines[name])
            if "corruption_seeds" not in pipe.info:  # not a thresholds-at-one-strength pipeline (the DST filter)
                continue
            keys, strength = pipe.info["fitted_on"], float(pipe.info["strength"])
            seeds = int(pipe.info["corruption_seeds"])
            truth, noisy = {}, {}
            for seed in range(seeds):
                pred = corrupt_playbyplay(train.subset(keys), CorruptionParams.load(), 10_000 + seed, strength=strength)
                for k in keys:
                    truth[f"{k}#{seed}"], noisy[f"{k}#{seed}"] = train.events[k], pred.events[k]
            names = list(truth)
            from fpspot.data.footpass import PlayByPlay

            thresholds = fit_thresholds(PlayByPlay("gt", names, truth), PlayByPlay("pred", names, noisy), GATE_GRID,
                                        shrink=shrink, shared="micro")
            gated[name] = gate(inputs[name], thresholds)

    groups = {"game 18": [k for k in gt.keys if k.startswith("game_18_")],
              "game 24": [k for k in gt.keys if k.startswith("game_24_")], "both": list(gt.keys)}
    rows = []
    for name in inputs:
        for group, keys in groups.items():
            before = evaluate(inputs[name].subset(keys), gt.subset(keys))
            after = evaluate(outputs[name].subset(keys), gt.subset(keys))
            row = {"input": name, "halves": group, "macro_before": before.macro_f1,
                   "macro_after": after.macro_f1, "micro_before": before.micro_f1, "micro_after": after.micro_f1,
                   "events_before": sum(len(inputs[name].events[k]) for k in keys),
                   "events_after": sum(len(outputs[name].events[k]) for k in keys)}
            if name in gated:
                only = evaluate(gated[name].subset(keys), gt.subset(keys))
                row.update({"macro_gate_only": only.macro_f1, "micro_gate_only": only.micro_f1})
            rows.append(row)
    print(f"machine: {platform.machine()}, {torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print(f"pipelines: taad={pipelines['taad']} ({seconds['taad']:.1f} s), dst={pipelines['dst']} "
          f"({seconds['dst']:.1f} s) for 4 halves")
    header = f"{'input':6s} {'halves':8s} {'macro before':>12s} {'macro after':>11s} {'micro before':>12s} " \
             f"{'micro after':>11s} {'events':>13s}   gating alone (macro / micro)"
    print(header)
    for r in rows:
        ablation = f"   {r['macro_gate_only']:.4f} / {r['micro_gate_only']:.4f}" if "macro_gate_only" in r else ""
        print(f"{r['input']:6s} {r['halves']:8s} {r['macro_before']:12.4f} {r['macro_after']:11.4f} "
              f"{r['micro_before']:12.4f} {r['micro_after']:11.4f} {r['events_before']:>6d}->{r['events_after']:<6d}"
              f"{ablation}")
    both = {r["input"]: r for r in rows if r["halves"] == "both"}
    print(f"targets: TAAD macro >= 0.38 ({both['taad']['macro_after']:.4f}), micro >= 0.55 "
          f"({both['taad']['micro_after']:.4f}); DST never worse "
          f"(macro {both['dst']['macro_after'] - both['dst']['macro_before']:+.4f}, "
          f"micro {both['dst']['micro_after'] - both['dst']['micro_before']:+.4f})")
    per_class = {name: {c: s.f1 for c, s in evaluate(outputs[name], gt).per_class.items()} for name in inputs}
    per_class_in = {name: {c: s.f1 for c, s in evaluate(inputs[name], gt).per_class.items()} for name in inputs}
    print("per-class F1 (both games) before -> after:")
    for name in inputs:
        print(f"  {name}: " + ", ".join(f"{c} {per_class_in[name][c]:.3f}->{per_class[name][c]:.3f}"
                                        for c in per_class[name]))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "seconds": seconds, "per_class_after": per_class,
                                         "per_class_before": per_class_in}, indent=1))
    return 0


def matched_noise(footpass: Path, pipeline, seeds: int) -> int:
    """The TAAD pipeline on the ground truth of games 18/24 corrupted by the fitted noise model (seeds 1..N):
    how far the model gets on these games when its input noise is the one it was trained on."""
    import numpy as np

    from fpspot.data.corrupt import corrupt_playbyplay
    from fpspot.data.footpass import read_playbyplay
    from fpspot.eval import evaluate
    from fpspot.schema import ACTION_CLASSES

    gt = read_playbyplay(footpass / "playbyplay_val_g18_g24.json", "gt")
    rows, counts_in, counts_out = [], [], []
    for seed in range(1, seeds + 1):
        noisy = corrupt_playbyplay(gt, seed=seed)
        cleaned = pipeline.apply({"taad": noisy})
        before, after = evaluate(noisy, gt), evaluate(cleaned, gt)
        rows.append((before.macro_f1, after.macro_f1, before.micro_f1, after.micro_f1))
        counts_in.append(class_counts(noisy))
        counts_out.append(class_counts(cleaned))
    mean, sd = np.mean(rows, axis=0), np.std(rows, axis=0, ddof=1) if seeds > 1 else np.zeros(4)
    print(f"games 18/24 ground truth corrupted by the fitted model, {seeds} seed(s): "
          f"macro {mean[0]:.4f} +- {sd[0]:.4f} "
          f"-> {mean[1]:.4f} +- {sd[1]:.4f}, micro {mean[2]:.4f} +- {sd[2]:.4f} -> {mean[3]:.4f} +- {sd[3]:.4f}")
    # Events per class in and out of the pipeline: the real file against the matched noise (no labels used).
    real = read_playbyplay(footpass / "playbyplay_TAAD_val_g18_g24.json", "pred")
    sd_out = np.std(counts_out, axis=0, ddof=1) if seeds > 1 else np.zeros(8)
    table = [("ground truth", class_counts(gt)), ("input: real", class_counts(real)),
             ("input: matched", np.mean(counts_in, axis=0)), ("output: real", class_counts(pipeline.apply(
                 {"taad": real}))), ("output: matched", np.mean(counts_out, axis=0)), ("output: matched sd", sd_out)]
    print(f"{'events per class':<20}" + "".join(f"{name:>10}" for name in ACTION_CLASSES))
    for name, values in table:
        print(f"{name:<20}" + "".join(f"{v:>10.0f}" for v in values))
    return 0


def class_counts(pbp):
    """``(8,)`` numpy array: events per class over every half of ``pbp``."""
    import numpy as np

    return np.bincount([e[3] - 1 for key in pbp.keys for e in pbp.events[key]], minlength=8)


def ceiling(footpass: Path, keys: list[str]) -> int:
    """F1 of perfect per-event decisions on held-out training halves corrupted at strengths 1 and 0.15: keep
    exactly the detections made from real events, with their true class, player and frame; add nothing."""
    from fpspot.data.corrupt import CorruptionParams, corrupt_half, half_seed, strength_scales
    from fpspot.data.footpass import PlayByPlay, read_playbyplay
    from fpspot.eval import evaluate
    from fpspot.schema import Prediction

    gt = read_playbyplay(footpass / "playbyplay_train.json", "gt").subset(keys)
    for strength in (1.0, 0.15):
        fp, miss = strength_scales(strength)
        noisy, oracle = {}, {}
        for k in keys:
            events = gt.events[k]
            preds, kinds, sources = corrupt_half(events, CorruptionParams.load(), half_seed(1234, k), fp_scale=fp,
                                                 miss_scale=miss, return_kinds=True, return_sources=True)
            noisy[k] = preds
            oracle[k] = [Prediction(*events[s][:4], 1.0) for kind, s in zip(kinds, sources)
                         if kind not in ("duplicate", "ghost", "random") and s >= 0]
        before, best = evaluate(PlayByPlay("pred", keys, noisy), gt), evaluate(PlayByPlay("pred", keys, oracle), gt)
        print(f"strength {strength:g} ({len(keys)} held-out training halves): input macro {before.macro_f1:.4f} micro "
              f"{before.micro_f1:.4f}; perfect per-event decisions, no insertion: macro {best.macro_f1:.4f} micro "
              f"{best.micro_f1:.4f} (recall {best.overall.recall:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
