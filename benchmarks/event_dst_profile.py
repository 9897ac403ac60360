"""Does a half-level player profile re-score the event DST's output better than its own score? (issue 8)

    python benchmarks/event_dst_profile.py                  # the released model, 4 corruption seeds
    python benchmarks/event_dst_profile.py --seeds 6 --model runs/event_dst_x/release

The model sees one 30 s window at a time. A half tells more about a player: a winger crosses, a full-back takes
the throw-ins. This measures whether such a profile, taken from the model's own output over the whole half,
helps to tell its true events from its false ones. Only held-out training halves are used (the recipe's
``data.holdout_games``), corrupted at strength 1 with ``--seeds`` seeds (10000 + seed, as the pipeline fit);
validation games 18/24 are not touched.

Per output event (``replace`` mode, the recipe's ``eval.min_score`` and ``eval.nms_window``, no class cut) of
player p and class c, the features are the logit of its score, ``log(1 + P)``, ``log(1 + A)``, ``P / (A + 1)``
and ``P / (C + 1)``, with P the summed scores of p's *other* events of class c in the half, A of all p's other
events, C of all other events of class c. Per class a logistic regression on whether the event is a true positive
(official matcher) re-scores it. Two-fold cross-validation by game: fit the regressions and the per-class
thresholds (as the pipeline fits them: F1-optimal on the recipe's grid, shrunk toward the micro-optimal shared one
by the recipe's ``export.shrink`` events) on two games, score macro and micro F1 on the other two, and the other
way round; the table gives the mean of the folds for the model's score as is, recalibrated alone, and with the
profile features.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
FOOTPASS = REPO.parent / "shared" / "data" / "footpass"
RELEASED = REPO / "recipes" / "pretrained" / "event_dst"
FEATURE_SETS = {"model score as is": None, "score recalibrated": [0], "+ player-class profile": [0, 1],
                "+ all profile features": [0, 1, 2, 3, 4]}


def true_positive_flags(gt_events, predictions) -> np.ndarray:
    """Per prediction (input order): matched by the official matcher (delta 12, every score counted)."""
    from fpspot.eval.metric import match_half, scored_order

    order = scored_order(predictions, 0.0)
    match = match_half(gt_events, predictions, 12, 0.0)
    flags = np.zeros(len(predictions), dtype=bool)
    flags[np.asarray(order, dtype=np.int64)[match.pred_tp]] = True
    return flags


def profile_features(predictions) -> np.ndarray:
    """``(N, 5)`` features of one half's predictions (module docstring)."""
    by_player_class, by_player, by_class = defaultdict(float), defaultdict(float), defaultdict(float)
    for p in predictions:
        by_player_class[p.team, p.shirt, p.cls] += p.score
        by_player[p.team, p.shirt] += p.score
        by_class[p.cls] += p.score
    out = np.zeros((len(predictions), 5))
    for i, p in enumerate(predictions):
        own = by_player_class[p.team, p.shirt, p.cls] - p.score
        player = by_player[p.team, p.shirt] - p.score
        cls = by_class[p.cls] - p.score
        score = min(max(p.score, 1e-4), 1 - 1e-4)
        out[i] = [np.log(score / (1 - score)), np.log1p(own), np.log1p(player), own / (player + 1), own / (cls + 1)]
    return out


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[np.ndarray, float]:
    """Weights and bias of an L2-regularised logistic regression (the first feature unpenalised)."""
    x_t, y_t = torch.tensor(x, dtype=torch.float64), torch.tensor(y, dtype=torch.float64)
    w = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], max_iter=200, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x_t @ w + b, y_t) + l2 * (w[1:] ** 2).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def fold_f1(fit_halves: list[dict], test_halves: list[dict], columns: list[int] | None,
            shrink: float) -> tuple[float, float]:
    """Macro and micro F1 on ``test_halves`` after re-scoring and per-class thresholds fitted on ``fit_halves``."""
    from fpspot.data.footpass import PlayByPlay
    from fpspot.eval import evaluate
    from fpspot.pipeline.event_dst.heldout import GATE_GRID
    from fpspot.post.event_dst import rescale_score
    from fpspot.post.gating import fit_thresholds
    from fpspot.schema import ACTION_CLASSES

    coefs = {}
    if columns is not None:
        for c in range(1, len(ACTION_CLASSES) + 1):
            masks = [np.asarray([p.cls == c for p in h["pred"]], dtype=bool) for h in fit_halves]
            x = np.concatenate([h["features"][m] for h, m in zip(fit_halves, masks)])[:, columns]
            y = np.concatenate([h["tp"][m] for h, m in zip(fit_halves, masks)]).astype(np.float64)
            if y.sum() >= 5:
                coefs[c] = fit_logistic(x, y)

    def rescored(halves):
        out = {}
        for h in halves:
            scores = [p.score if p.cls not in coefs else
                      float(1 / (1 + np.exp(-(h["features"][i, columns] @ coefs[p.cls][0] + coefs[p.cls][1]))))
                      for i, p in enumerate(h["pred"])]
            out[h["name"]] = [p._replace(score=s) for p, s in zip(h["pred"], scores)]
        return PlayByPlay("pred", list(out), out)

    def truth(halves):
        return PlayByPlay("gt", [h["name"] for h in halves], {h["name"]: h["gt"] for h in halves})

    thresholds = fit_thresholds(truth(fit_halves), rescored(fit_halves), GATE_GRID, shrink=shrink, shared="micro")
    cut = {i + 1: thresholds[name] for i, name in enumerate(ACTION_CLASSES)}
    test = rescored(test_halves)
    gated = {k: [p._replace(score=rescale_score(p.score, cut[p.cls])) for p in v if p.score >= cut[p.cls]]
             for k, v in test.events.items()}
    report = evaluate(PlayByPlay("pred", list(gated), gated), truth(test_halves))
    return report.macro_f1, report.micro_f1


def main(argv: list[str] | None = None) -> int:
    from fpspot.data.corrupt import CorruptionParams, corrupt_playbyplay
    from fpspot.data.footpass import read_playbyplay
    from fpspot.pipeline.event_dst.config import RecipeConfig
    from fpspot.post.event_dst import denoise_half, load_event_dst
    from fpspot.train.config import load_config

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--footpass", type=Path, default=FOOTPASS)
    parser.add_argument("--model", type=Path, default=RELEASED)
    parser.add_argument("--seeds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    started = time.perf_counter()

    config = load_config(RecipeConfig, REPO / "recipes" / "configs" / "event_dst.yaml")
    holdout = config.data.holdout_games
    gt = read_playbyplay(args.footpass / "playbyplay_train.json", "gt")
    keys = [k for k in gt.keys if int(k.split("_")[1]) in holdout]
    model = load_event_dst(args.model)
    halves = []
    for seed in range(args.seeds):
        noisy = corrupt_playbyplay(gt.subset(keys), CorruptionParams.load(), 10_000 + seed, strength=1.0)
        for k in keys:
            pred = denoise_half(model, noisy.events[k], strength="taad", min_score=config.eval.min_score,
                                nms_window=config.eval.nms_window)
            halves.append({"game": int(k.split("_")[1]), "name": f"{k}#{seed}", "pred": pred, "gt": gt.events[k],
                           "features": profile_features(pred), "tp": true_positive_flags(gt.events[k], pred)})
    folds = [holdout[: len(holdout) // 2], holdout[len(holdout) // 2:]]
    print(f"model {args.model}; held-out games {holdout} x {args.seeds} seeds, {sum(len(h['pred']) for h in halves)} "
          f"output events; 2-fold CV by game {folds}; {platform.processor() or platform.machine()}")
    print("| scores | macro F1 | micro F1 | folds (macro / micro) |\n|---|---|---|---|")
    for label, columns in FEATURE_SETS.items():
        results = np.asarray([fold_f1([h for h in halves if h["game"] not in fold],
                                      [h for h in halves if h["game"] in fold], columns, config.export.shrink)
                              for fold in folds])
        per_fold = ", ".join(f"{m:.4f} / {u:.4f}" for m, u in results)
        print(f"| {label} | {results[:, 0].mean():.4f} | {results[:, 1].mean():.4f} | {per_fold} |")
    print(f"({time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
