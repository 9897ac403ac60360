"""The event DST's release folder: the chosen model with two post-processing pipelines fitted on the held-out
training halves only (``pipeline.yaml`` for a TAAD-like spotter, ``pipeline_dst.yaml`` for a clean one such as
TAAD+DST); see :class:`~fpspot.pipeline.event_dst.config.ExportSection`."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fpspot.pipeline.event_dst.config import EvalSection, ExportSection, RecipeConfig
from fpspot.pipeline.event_dst.heldout import GATE_GRID


PIPELINE_HEADER = """Event-sequence DST (issue 8) applied to one prediction file named '{input}' ({what}).
Model: trained on the FOOTPASS training play-by-play (Ochin et al., CVIU 2026; annotations CC BY-NC 4.0)
corrupted by the TAAD noise model. {fitted}
Every choice was made on TRAINING games (held out: {games}), never on validation games.
Apply (from the repository root): fpspot post --config {path} --pred {input}=PRED.json --out OUT.json"""


DST_FITTED = {
    "auto": "Filter mode, thresholds auto: per half and class, the input events the model scores best\n"
            "are kept, as many as maximise the expected F1 given the class's ground-truth events per minute of play\n"
            "in the training halves (class_rates).",
    "maximin": "Filter mode: per-class maximin thresholds over {n} noise-strength / score-power\n"
               "conditions; classes without a worst-case gain above {margin} pass through unchanged."}


def _model_scored(model, pred, strength, cfg: EvalSection, mode: str):
    """``(model output with min_score 0, input events re-scored by the model)`` of one half."""
    from fpspot.post.event_dst import denoise_half
    from fpspot.schema import Prediction

    clean, details = denoise_half(model, pred, strength=strength, min_score=0.0, nms_window=cfg.nms_window,
                                  batch_size=cfg.batch_size, return_details=True)
    rescored = [Prediction(*(int(x) for x in e[:4]), float(np.clip(details["score"][i], 0.0, 1.0)))
                for i, e in enumerate(pred)]
    return clean if mode == "replace" else rescored


def _held_out_figures(pipe, model, noisy, truth) -> dict:
    """Macro / micro F1 of ``noisy`` before and after ``pipe`` (with the in-memory model: the release folder
    is not in place yet)."""
    from fpspot.eval import evaluate
    from fpspot.post.pipeline import Pipeline

    in_memory = Pipeline(pipe.inputs, [{**pipe.steps[0], "model": model}], pipe.output)
    before, after = evaluate(noisy, truth), evaluate(in_memory.apply({"taad": noisy}), truth)
    return {"input_macro_f1": round(before.macro_f1, 4), "input_micro_f1": round(before.micro_f1, 4),
            "macro_f1": round(after.macro_f1, 4), "micro_f1": round(after.micro_f1, 4)}


def fit_taad_pipeline(model, gt, keys: list[str], params, cfg: RecipeConfig, model_path: str):
    """``pipeline.yaml``: ``replace`` mode, per-class thresholds on the model's score fitted on ``keys``
    corrupted at strength 1 with ``export.seeds`` seeds (each seed's halves are separate calibration halves)."""
    from fpspot.data.corrupt import corrupt_playbyplay
    from fpspot.data.footpass import PlayByPlay
    from fpspot.post.gating import fit_thresholds
    from fpspot.post.pipeline import Pipeline

    strength = cfg.export.taad_strength
    strength = strength if strength in ("taad", "auto") else float(strength)
    truth, noisy, scored = {}, {}, {}
    for seed in range(cfg.export.seeds):
        pred = corrupt_playbyplay(gt.subset(keys), params, 10_000 + seed, strength=1.0)
        for k in keys:
            name = f"{k}#{seed}"
            truth[name], noisy[name] = gt.events[k], pred.events[k]
            scored[name] = _model_scored(model, pred.events[k], strength, cfg.eval, "replace")
    names = list(truth)
    truth, noisy, scored = (PlayByPlay(kind, names, d)
                            for kind, d in (("gt", truth), ("pred", noisy), ("pred", scored)))
    thresholds = fit_thresholds(truth, scored, GATE_GRID, shrink=cfg.export.shrink, shared="micro")
    step = {"step": "event_dst", "input": "taad", "model": model_path, "strength": strength, "mode": "replace",
            "min_score": cfg.eval.min_score, "nms_window": cfg.eval.nms_window, "thresholds": thresholds}
    pipe = Pipeline(["taad"], [step], "taad")
    pipe.info = {"fitted_on": keys, "corruption_seeds": cfg.export.seeds, "strength": 1.0,
                 "held_out": _held_out_figures(pipe, model, noisy, truth)}
    return pipe


def _dst_conditions(truth, params, exp: ExportSection):
    """The held-out halves corrupted under each ``[strength, score power]`` of ``exp.dst_conditions``."""
    from fpspot.data.corrupt import corrupt_playbyplay
    from fpspot.data.footpass import PlayByPlay
    from fpspot.schema import Prediction

    for strength, power in exp.dst_conditions:
        pred = corrupt_playbyplay(truth, params, exp.dst_seed, strength=float(strength))
        yield (strength, power), PlayByPlay("pred", pred.keys, {
            k: [Prediction(e.frame, e.team, e.shirt, e.cls, float(e.score) ** power) for e in pred.events[k]]
            for k in pred.keys})


def _maximin_thresholds(model, truth, inputs: list, cfg: RecipeConfig) -> tuple[dict, dict]:
    """Per class the grid threshold with the largest worst F1 gain over ``inputs`` (0 = pass through when that
    gain is not above ``export.dst_margin``); returns ``(thresholds, worst gains)``."""
    from fpspot.data.footpass import PlayByPlay
    from fpspot.post.gating import threshold_curves
    from fpspot.schema import ACTION_CLASSES

    grid = (0.0, *GATE_GRID)  # 0 = keep every input event of the class
    gains = []
    for pred in inputs:
        scored = PlayByPlay("pred", truth.keys, {k: _model_scored(model, pred.events[k], cfg.export.dst_strength,
                                                                  cfg.eval, "filter") for k in truth.keys})
        f1 = threshold_curves(truth, scored, grid).f1()  # (8, G); column 0 = the input unchanged
        gains.append(f1 - f1[:, :1])
    worst = np.stack(gains).min(0)  # (8, G): worst gain over the conditions
    thresholds, worst_gain = {}, {}
    for c, name in enumerate(ACTION_CLASSES):
        j = int(np.argmax(worst[c]))
        thresholds[name] = float(grid[j]) if worst[c, j] > cfg.export.dst_margin else 0.0
        worst_gain[name] = round(float(worst[c, j]), 4) if thresholds[name] > 0 else 0.0
    return thresholds, worst_gain


def fit_dst_pipeline(model, gt, keys: list[str], params, cfg: RecipeConfig, model_path: str):
    """``pipeline_dst.yaml``: ``filter`` mode with ``thresholds: auto`` and the training halves' class rates, or
    per-class maximin thresholds over ``export.dst_conditions`` (``export.dst_thresholds``, see
    :class:`ExportSection`); either way the held-out figures under every condition go into ``info``."""
    from fpspot.post.event_dst import ground_truth_class_rates
    from fpspot.post.pipeline import Pipeline

    exp = cfg.export
    truth = gt.subset(keys)
    conditions = list(_dst_conditions(truth, params, exp))
    step = {"step": "event_dst", "input": "taad", "model": model_path, "strength": exp.dst_strength, "mode": "filter",
            "min_score": 0.0}
    info = {"fitted_on": keys, "conditions": [list(c) for c in exp.dst_conditions], "corruption_seed": exp.dst_seed,
            "strength": exp.dst_strength}
    if exp.dst_thresholds == "auto":
        training = [k for k in gt.keys if k not in set(keys)]
        step.update(thresholds="auto", class_rates=ground_truth_class_rates(gt, training))
        del info["fitted_on"]  # nothing is fitted on the held-out halves
        info.update(class_rates_from=f"{len(training)} training halves (all but the held-out ones)", reported_on=keys)
    else:
        thresholds, worst_gain = _maximin_thresholds(model, truth, [pred for _, pred in conditions], cfg)
        step["thresholds"] = thresholds
        info.update(margin=exp.dst_margin, passthrough=[n for n, t in thresholds.items() if t == 0.0],
                    worst_class_gain=worst_gain)
    pipe = Pipeline(["taad"], [step], "taad")
    info["held_out"] = {f"strength {s:g} score^{p:g}": _held_out_figures(pipe, model, pred, truth)
                        for (s, p), pred in conditions}
    pipe.info = info
    return pipe


def export_release(run_dir: Path, gt, keys: list[str], params, config: RecipeConfig, print_fn=print,
                   model_dir: str | Path | None = None) -> Path:
    """``run_dir/release``: the model (``model_dir``, else the run's ``best/`` or ``final/``) as ``config.json``
    + ``model.safetensors``, with ``pipeline.yaml`` and ``pipeline_dst.yaml`` fitted on the held-out training
    halves ``keys``."""
    import shutil

    from fpspot.models import load_model

    source = Path(model_dir) if model_dir else (run_dir / "best" if (run_dir / "best").is_dir() else run_dir / "final")
    out = run_dir / "release"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "metrics.json"):
        if (source / name).is_file() and (source / name).resolve() != (out / name).resolve():
            shutil.copy2(source / name, out / name)
    model = load_model(out).eval()
    model_path = "recipes/pretrained/event_dst"
    games = sorted({int(k.split("_")[1]) for k in keys})
    exp = config.export
    for file, what, fit, fitted in (
            ("pipeline.yaml", "a TAAD-like spotter", fit_taad_pipeline,
             f"Per-class thresholds on the model's score fitted at noise strength 1 ({exp.seeds} corruption seeds)."),
            ("pipeline_dst.yaml", "a clean spotter such as TAAD+DST", fit_dst_pipeline,
             DST_FITTED[exp.dst_thresholds].format(n=len(exp.dst_conditions), margin=exp.dst_margin))):
        pipe = fit(model, gt, keys, params, config, model_path)
        header = PIPELINE_HEADER.format(input="taad", what=what, fitted=fitted, games=games,
                                        path=f"{model_path}/{file}")
        pipe.save(out / file, header=header)
        print_fn(f"{file}: {pipe.steps[0]['thresholds']}; held-out {pipe.info['held_out']}")
    return out
