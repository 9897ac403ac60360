"""Fitting a post-processing pipeline on calibration predictions, and leave-one-game-out validation.

:func:`fit_pipeline` builds the pipeline ``shift -> reassign_jersey -> fuse -> gate`` for event-level
predictions of ``N >= 1`` models, under the official metric:

1. per model, a constant frame offset: a known one (``FitOptions.offsets``, e.g. ``{"dst": -1}``: the
   released TAAD+DST is one frame late by an off-by-one in its code, spec §4.5), or minus the median
   signed ``pred - gt`` of matched events, rounded and clipped to +-1 frame (the median moves by about
   two frames from one game to another: annotation timing differs per game);
2. the *primary* model is the one with the best micro F1 alone (or the one named); with other models:
   the weight of each other model in the fusion (coarse grid) and the score from which the best other
   model's event re-assigns the primary's jersey (coarse grid, or off), chosen on the calibration set by
   the objective after gating; the fusion keeps only clusters that include the primary model, so the
   others confirm, re-rank or re-assign its events but add none;
3. per-class gating thresholds (:func:`fpspot.post.gating.fit_thresholds`), shrunk toward "no gating"
   (0.15) by class frequency, so a class seen a handful of times keeps (almost) every event;
4. optionally (``FitOptions.then``) a fixed one-input pipeline run on the fitted output, with nothing in it
   fitted here -- e.g. the released event DST in filter mode (``recipes/pretrained/event_dst/pipeline_dst.yaml``),
   which drops events its sequence context makes unlikely (:meth:`fpspot.post.pipeline.Pipeline.then`).

:func:`cross_validate` refits on all games but one and scores the held-out game, for every game.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from fpspot.data.footpass import PlayByPlay
from fpspot.eval.metric import evaluate
from fpspot.post.gating import DEFAULT_GRID, fit_thresholds
from fpspot.post.pipeline import Pipeline
from fpspot.post.refine import measure_offset
from fpspot.schema import parse_half_key


@dataclass
class FitOptions:
    """Search space and regularisation of :func:`fit_pipeline` (coarse on purpose)."""

    primary: str | None = None  # the model the others support; default: best micro F1 alone
    weights: Sequence[float] = (0.5, 0.75, 1.0)  # weight of each other model (primary = 1)
    jersey_scores: Sequence[float | None] = (0.7, 0.8, 0.9, None)  # min support score; None = off
    window: int = 12  # fusion / support window, frames
    max_offset: int = 1  # measured offsets are clipped to +-max_offset frames (they vary by game)
    offsets: Mapping[str, int] = field(default_factory=dict)  # known offsets (not measured), e.g. {"dst": -1}
    threshold_grid: Sequence[float] = DEFAULT_GRID
    shrink: float = 30.0  # ground-truth count at which a class's own threshold gets half the weight
    prior: float | str = 0.15  # threshold a rare class shrinks to: 0.15 = no gating; or "macro" / "micro"
    objective: str = "micro"  # choice of weights and jersey rule: "micro" (low variance), "macro", "macro+micro"
    delta: int = 12
    then: Pipeline | None = None  # fixed one-input pipeline run on the fitted output (nothing in it is fitted)


def _score(report, objective: str) -> float:
    if objective == "macro":
        return report.macro_f1
    if objective == "micro":
        return report.micro_f1
    if objective == "macro+micro":
        return report.macro_f1 + report.micro_f1
    raise ValueError(f"objective must be 'macro', 'micro' or 'macro+micro', got {objective!r}")


def _steps(names: list[str], primary: str, offsets: Mapping[str, int], weights: Mapping[str, float],
           jersey_score: float | None, window: int, thresholds: Mapping[str, float] | None) -> tuple[list[dict], str]:
    steps = [{"step": "shift", "input": n, "frames": int(offsets[n])} for n in names if offsets[n]]
    others = [n for n in names if n != primary]
    if others and jersey_score is not None:
        steps.append({"step": "reassign_jersey", "input": primary, "support": others[0], "window": window,
                      "min_support_score": float(jersey_score)})
    output = primary
    if others:
        inputs = [primary] + others
        steps.append({"step": "fuse", "inputs": inputs, "weights": [float(weights.get(n, 1.0)) for n in inputs],
                      "window": window, "require": [primary], "output": "fused"})
        output = "fused"
    if thresholds is not None:
        steps.append({"step": "gate", "input": output, "thresholds": dict(thresholds)})
    return steps, output


def _few(keys: Sequence[str], shown: int = 3) -> str:
    """The first few half keys, for messages."""
    return ", ".join(list(keys)[:shown]) + (f" ... ({len(keys)} halves)" if len(keys) > shown else "") or "none"


def fit_pipeline(ground_truth: PlayByPlay, predictions: Mapping[str, PlayByPlay],
                 options: FitOptions | None = None) -> Pipeline:
    """Fit the pipeline on calibration data (the halves of ``ground_truth``); see the module docstring.

    predictions: model name -> predictions (the names the pipeline will refer to). Inputs are not modified.
    """
    opts = options or FitOptions()
    names = list(predictions)
    if not names:
        raise ValueError("fit_pipeline needs at least one model's predictions")
    gt = ground_truth
    for name in names:
        if not set(predictions[name].keys) & set(gt.keys):
            raise ValueError(f"predictions {name!r} share no half with the ground truth (predictions: "
                             f"{_few(predictions[name].keys)}; ground truth: {_few(gt.keys)})")
    unknown = [n for n in opts.offsets if n not in predictions]
    if unknown:
        raise ValueError(f"offsets given for unknown model(s) {unknown}; inputs are {names}")
    offsets = {n: int(opts.offsets[n]) if n in opts.offsets else
               int(np.clip(measure_offset(gt, predictions[n], opts.delta), -opts.max_offset, opts.max_offset))
               for n in names}
    if opts.primary is not None:
        if opts.primary not in predictions:
            raise ValueError(f"primary model {opts.primary!r} is not among the inputs {names}")
        primary = opts.primary
    else:
        primary = max(names, key=lambda n: evaluate(predictions[n], gt, opts.delta).micro_f1)
    others = [n for n in names if n != primary]
    best = None
    weight_grid = list(itertools.product(opts.weights, repeat=len(others))) if others else [()]
    jersey_grid = list(opts.jersey_scores) if others else [None]
    for combo in weight_grid:
        weights = {primary: 1.0, **dict(zip(others, combo))}
        for jersey_score in jersey_grid:
            steps, output = _steps(names, primary, offsets, weights, jersey_score, opts.window, None)
            fused = Pipeline(names, steps, output).apply(predictions)
            thresholds = fit_thresholds(gt, fused, opts.threshold_grid, opts.shrink, opts.prior, opts.delta)
            steps, output = _steps(names, primary, offsets, weights, jersey_score, opts.window, thresholds)
            report = evaluate(Pipeline(names, steps, output).apply(predictions), gt, opts.delta)
            score = _score(report, opts.objective)
            if best is None or score > best[0] + 1e-12:
                best = (score, steps, output, report, weights, jersey_score)
    score, steps, output, report, weights, jersey_score = best
    info = {
        "fitted_on": sorted(gt.keys),
        "primary": primary,
        "objective": opts.objective,
        "calibration": {"macro_f1": round(report.macro_f1, 4), "micro_f1": round(report.micro_f1, 4)},
        "options": {"weights": list(opts.weights), "jersey_scores": list(opts.jersey_scores), "window": opts.window,
                    "shrink": opts.shrink, "prior": opts.prior, "known_offsets": dict(opts.offsets),
                    "max_offset": opts.max_offset},
    }
    pipe = Pipeline(names, steps, output, info)
    if opts.then is not None:
        pipe = pipe.then(opts.then)
        after = evaluate(pipe.apply(predictions), gt, opts.delta)
        pipe.info["calibration"] = {"macro_f1": round(after.macro_f1, 4), "micro_f1": round(after.micro_f1, 4)}
        pipe.info["calibration_before_then"] = info["calibration"]
    return pipe


def games_of(pbp: PlayByPlay) -> dict[int, list[str]]:
    """Game id -> its half keys."""
    out: dict[int, list[str]] = {}
    for key in pbp.keys:
        out.setdefault(parse_half_key(key)[0], []).append(key)
    return out


@dataclass
class CVResult:
    """Held-out scores per game of :func:`cross_validate`, next to each input model alone."""

    rows: list[dict] = field(default_factory=list)
    pipelines: dict[int, Pipeline] = field(default_factory=dict)

    def table(self) -> str:
        """Markdown table: game, pipeline macro / micro F1, then each input alone, then the deltas."""
        if not self.rows:
            return "(no games)"
        models = list(self.rows[0]["inputs"])
        head = ["held-out game", "pipeline macro F1", "pipeline micro F1"]
        for m in models:
            head += [f"{m} macro F1", f"{m} micro F1"]
        ref = self.rows[0].get("reference")
        if ref:
            head += [f"macro - {ref}", f"micro - {ref}"]
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for r in self.rows:
            cells = [str(r["game"]), f"{r['macro_f1']:.4f}", f"{r['micro_f1']:.4f}"]
            for m in models:
                cells += [f"{r['inputs'][m]['macro_f1']:.4f}", f"{r['inputs'][m]['micro_f1']:.4f}"]
            if ref:
                cells += [f"{r['macro_f1'] - r['inputs'][ref]['macro_f1']:+.4f}",
                          f"{r['micro_f1'] - r['inputs'][ref]['micro_f1']:+.4f}"]
            lines.append("| " + " | ".join(cells) + " |")
        return "\n".join(lines)

    def to_json(self) -> list[dict]:
        return self.rows


def cross_validate(ground_truth: PlayByPlay, predictions: Mapping[str, PlayByPlay],
                   options: FitOptions | None = None, reference: str | None = None) -> CVResult:
    """Leave-one-game-out: for each game, fit on the other games, score the held-out game.

    Each row holds the held-out game's macro and micro F1 with the pipeline and with each input alone
    (``reference`` names the input the deltas are taken against; default: the fitted primary model).
    """
    games = games_of(ground_truth)
    if len(games) < 2:
        raise ValueError(f"leave-one-game-out needs at least 2 games, the ground truth has {sorted(games)}")
    result = CVResult()
    delta = (options or FitOptions()).delta
    for game, held_keys in games.items():
        fit_keys = [k for g, ks in games.items() if g != game for k in ks]
        pipe = fit_pipeline(ground_truth.subset(fit_keys), {n: p.subset(fit_keys) for n, p in predictions.items()},
                            options)
        held_gt = ground_truth.subset(held_keys)
        held_pred = {n: p.subset(held_keys) for n, p in predictions.items()}
        report = evaluate(pipe.apply(held_pred), held_gt, delta)
        inputs = {}
        for n, p in held_pred.items():
            alone = evaluate(p, held_gt, delta)
            inputs[n] = {"macro_f1": alone.macro_f1, "micro_f1": alone.micro_f1}
        result.rows.append({"game": game, "fitted_on": sorted({g for g in games if g != game}),
                            "macro_f1": report.macro_f1, "micro_f1": report.micro_f1, "inputs": inputs,
                            "reference": reference or pipe.info.get("primary")})
        result.pipelines[game] = pipe
    return result
