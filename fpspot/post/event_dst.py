"""Apply an event-sequence DST (:mod:`fpspot.models.event_dst`) to a prediction file: the ``event_dst`` step.

Per half (:func:`denoise_half`): the predictions are cut into overlapping windows
(:func:`fpspot.data.event_windows.half_windows`: every input event is decided by the one window where it sits
in the central half), all windows go through the model in batches, and every input event becomes one output
event -- its corrected frame (``input frame + offset``), the pointed player's team and jersey, the
predicted class and the model's confidence. Events under ``min_score`` (or under their class's entry of
``thresholds``) are dropped; with ``thresholds`` the kept scores are mapped from ``[threshold, 1]`` onto
``[0.15, 1]``, so the official evaluator's cut falls on each class's fitted threshold. Then events that
landed on one another are merged by a greedy per-(team, jersey, class) NMS over ``nms_window`` frames
(highest score kept). ``mode: filter`` instead keeps the input events untouched and only removes those the
model scores under the threshold (the conservative use for an already clean spotter).

Insertions (replace mode, models trained with ``insert_offset > 0``, ``insert: true`` by default): every
input event may also propose one *missed* event next to it (the class, a player of the window's table and a
frame offset of the model's insertion heads, scored like the corrected events, ``ins_score``); proposals
at or above ``min_score`` join the corrected events before the NMS and the class cuts, so an insertion that
lands on a corrected event of the same player and class is merged with it.

``thresholds: auto`` (with ``class_rates``, each class's ground-truth events per minute of play) fits the cuts
per half without labels, treating the model's scores as calibrated probabilities of being a true positive:
per class it keeps the ``k`` best-scored events that maximise the expected F1 ``2 * (sum of their scores) /
(k + rate * minutes)`` (:func:`expected_f1_cuts`; the plug-in rule of Lipton et al., "Optimal thresholding of
classifiers to maximize F1 measure", ECML 2014, whose optimum sits at half the attainable F1). A class the
spotter under-detects (few events against many expected) thus keeps nearly all of its events, a class it
over-detects loses its weakest ones. The output keeps
every half key of the input (empty halves included) and only valid events (class 1..8, frame >= 0, team
0/1, a jersey seen in the input, score in [0, 1]).

Noise strength (the model's conditioning input, 1 = the TAAD noise it was fitted on): a number, ``"taad"``
(1.0), or ``"auto"``: estimated per half from the number of input events per minute of play, by
interpolating the table ``strength_density`` that training stored in the model's config (the density of
corrupted training halves at each strength; :func:`estimate_strength`).

Pipeline step (``fpspot post``)::

    - {step: event_dst, input: taad, model: recipes/pretrained/event_dst, output: clean,
       strength: auto, min_score: 0.05, nms_window: 12, mode: replace,
       thresholds: {drive: 0.3, pass: 0.3, cross: 0.2, ...}}
    - {step: event_dst, input: dst, model: recipes/pretrained/event_dst, strength: 0.15, mode: filter,
       thresholds: auto, class_rates: {drive: 7.42, pass: 9.53, cross: 0.45, ...}}

``model`` is a folder written by ``save_pretrained``; a relative path is looked up in the current directory,
then in the fpspot source tree (so ``recipes/pretrained/event_dst`` works from anywhere in a checkout).
Loaded models are cached per path.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fpspot.data.footpass import PlayByPlay
from fpspot.schema import FPS, NUM_ACTIONS, Prediction

_MODELS: dict[str, object] = {}
OFFICIAL_THRESHOLD = 0.15


class EventDSTError(ValueError):
    """The event DST step cannot run (bad model path, wrong model, bad option); the message names it."""


def resolve_model_path(path: str | Path) -> Path:
    """``path`` if it exists, else (relative paths) the same path inside the fpspot source tree."""
    path = Path(path)
    if path.exists() or path.is_absolute():
        return path
    import fpspot

    in_tree = Path(fpspot.__file__).resolve().parents[1] / path
    return in_tree if in_tree.exists() else path


def load_event_dst(path: str | Path, device: str = "cpu"):
    """The :class:`~fpspot.models.event_dst.EventDST` saved in ``path`` (cached); errors name the path."""
    from fpspot.models import ModelLoadError, load_model

    if not isinstance(path, (str, Path)):
        return path  # a model object passes through
    resolved = resolve_model_path(path)
    cache_key = f"{resolved.resolve()}@{device}"
    if cache_key in _MODELS:
        return _MODELS[cache_key]
    if not resolved.is_dir():
        raise EventDSTError(f"event_dst model {str(path)!r}: no such folder (expected config.json + "
                            f"model.safetensors written by save_pretrained)")
    try:
        model = load_model(resolved, map_location=device)
    except (ModelLoadError, KeyError, OSError) as err:
        raise EventDSTError(f"event_dst model {str(path)!r}: {err}") from None
    if getattr(model, "model_name", "") != "event_dst":
        raise EventDSTError(f"event_dst model {str(path)!r}: holds a {model.model_name!r} model, not 'event_dst'")
    model.eval()
    _MODELS[cache_key] = model
    return model


# ------------------------------------------------------------------------------------------- strength


def events_per_minute(events: Sequence, min_score: float = 0.15) -> float:
    """Input events (score >= ``min_score``) per minute between the first and the last of them."""
    scored = [e for e in events if float(e[4]) >= min_score]
    return len(scored) / play_minutes(scored) if len(scored) >= 2 else 0.0


def estimate_strength(events: Sequence, table: Sequence[Sequence[float]] | None) -> float:
    """Noise strength whose corrupted training halves have this half's event density (linear interpolation
    in the ``[[strength, events per minute], ...]`` table; clipped to its range). No table: 1.0."""
    if not table:
        return 1.0
    pairs = np.asarray(sorted(table, key=lambda r: r[1]), dtype=np.float64)
    return float(np.interp(events_per_minute(events), pairs[:, 1], pairs[:, 0]))


def _strength_of(model, events: Sequence, strength: float | str) -> float:
    if isinstance(strength, str):
        if strength == "taad":
            return 1.0
        if strength == "auto":
            return estimate_strength(events, model.config.get("strength_density"))
        raise EventDSTError(f"event_dst: strength must be a number, 'taad' or 'auto', got {strength!r}")
    value = float(strength)
    if not value > 0:
        raise EventDSTError(f"event_dst: strength must be > 0, got {value}")
    return value


# ------------------------------------------------------------------------------------------ denoising


def nms_events(events: list[Prediction], window: int) -> list[Prediction]:
    """Greedy NMS per (team, jersey, class) (:func:`fpspot.post.events.nms_keep`): keep the highest score, drop
    others within ``window`` frames; kept events in input order. ``window <= 0``: every event."""
    from fpspot.post.events import nms_keep

    return list(events) if window <= 0 else [events[i] for i in nms_keep(events, window)]


def class_thresholds(thresholds) -> dict[int, float] | str | None:
    """``None``, a number or ``{class name or id: number}`` -> ``{class id: threshold}`` (or ``None``);
    ``"auto"`` passes through (see :func:`expected_f1_cuts`)."""
    if thresholds is None or thresholds == "auto":
        return thresholds
    if isinstance(thresholds, str):
        raise EventDSTError(f"event_dst: thresholds must be a number, a mapping class -> number or 'auto', "
                            f"got {thresholds!r}")
    from fpspot.post.events import per_class

    try:
        table = per_class(thresholds, "thresholds")
    except ValueError as err:
        raise EventDSTError(f"event_dst: {err}") from None
    bad = {c: t for c, t in table.items() if not 0.0 <= float(t) < 1.0}
    if bad:
        raise EventDSTError(f"event_dst: thresholds must be in [0, 1), got {bad}")
    return {int(c): float(t) for c, t in table.items()}


def check_class_rates(class_rates) -> dict[int, float]:
    """``{class name or id: ground-truth events per minute}`` (all 8 classes, each > 0) -> ``{class id: rate}``."""
    from fpspot.post.events import per_class

    if class_rates is None:
        raise EventDSTError("event_dst: thresholds 'auto' needs class_rates (ground-truth events per minute of "
                            "play for every class)")
    try:
        rates = per_class(class_rates, "class_rates")
    except ValueError as err:
        raise EventDSTError(f"event_dst: {err}") from None
    bad = {c: r for c, r in rates.items() if not float(r) > 0}
    if bad:
        raise EventDSTError(f"event_dst: class_rates must be > 0 events per minute, got {bad}")
    return rates


def play_minutes(events: Sequence) -> float:
    """Minutes from the first to the last event of a half (at least 1)."""
    frames = [int(e[0]) for e in events]
    return max((max(frames) - min(frames)) / FPS / 60.0, 1.0) if frames else 1.0


def ground_truth_class_rates(gt: PlayByPlay | str | Path, keys: Sequence[str] | None = None) -> dict[str, float]:
    """``{class name: ground-truth events per minute of play}`` over the halves ``keys`` of ``gt`` (a play-by-play
    file or a :class:`PlayByPlay`; all halves by default; minutes from each half's first to last event), rounded
    to 4 decimals: the ``class_rates`` of ``thresholds: auto``."""
    from fpspot.data.footpass import load_playbyplay
    from fpspot.schema import ACTION_CLASSES

    gt = load_playbyplay(gt, "gt")
    keys = list(gt.keys if keys is None else keys)
    counts = np.zeros(NUM_ACTIONS)
    minutes = 0.0
    for key in keys:
        events = gt.events.get(key, [])
        minutes += play_minutes(events) if events else 0.0
        counts += np.bincount([int(e[3]) - 1 for e in events if 1 <= int(e[3]) <= NUM_ACTIONS], minlength=NUM_ACTIONS)
    if minutes <= 0 or not counts.all():
        raise ValueError(f"class rates of {gt.source!r}: every class needs ground-truth events in the halves "
                         f"{keys[:3]}{'...' if len(keys) > 3 else ''} (counts {counts.astype(int).tolist()})")
    return {name: round(float(n / minutes), 4) for name, n in zip(ACTION_CLASSES, counts)}


def expected_f1_cuts(scores: np.ndarray, classes: np.ndarray, class_rates: dict[int, float],
                     minutes: float) -> dict[int, float]:
    """Per-class score cuts that maximise the expected F1 of the kept events of one half.

    scores: ``(n,)`` probabilities that each event is a true positive; classes: ``(n,)`` class ids 1..8;
    class ``c`` is expected to have ``class_rates[c] * minutes`` ground-truth events. For each class the events
    are ranked by score and the top ``k`` kept, ``k`` maximising ``2 * sum(top-k scores) / (k + expected count)``;
    the cut is the ``k``-th score (a class without events gets 0). Returns ``{class id: cut}`` for 1..8."""
    scores, classes = np.asarray(scores, dtype=np.float64), np.asarray(classes, dtype=np.int64)
    cuts = {}
    for c in range(1, NUM_ACTIONS + 1):
        ranked = np.sort(scores[classes == c])[::-1]
        if not ranked.size:
            cuts[c] = 0.0
            continue
        expected_f1 = 2.0 * np.cumsum(ranked) / (np.arange(1, ranked.size + 1) + class_rates[c] * minutes)
        cuts[c] = float(ranked[int(np.argmax(expected_f1))])
    return cuts


def rescale_score(score: float, threshold: float, official: float = OFFICIAL_THRESHOLD) -> float:
    """Map a score in ``[threshold, 1]`` linearly onto ``[official, 1]`` (the evaluator's cut then sits at
    the class's own threshold)."""
    return official + (1.0 - official) * (score - threshold) / (1.0 - threshold)


def denoise_half(model, events: Sequence, *, strength: float | str = "auto", min_score: float = 0.05,
                 nms_window: int = 12, thresholds=None, mode: str = "replace", batch_size: int = 64,
                 class_rates=None, insert: bool = True, return_details: bool = False):
    """Cleaned predictions of one half (see the module docstring), sorted by frame.

    events: ``(frame, team, shirt, class, score)`` records (absolute frames). mode ``"replace"``: the model's
    corrected events with its scores; ``"filter"``: the input events unchanged (frame, player, class and
    score), minus those the model scores under the threshold. thresholds: ``None`` (keep everything at or
    above ``min_score``), a number or ``{class: number}``: per-class cut on the model's score (by the output
    class); in replace mode the kept scores are then mapped from ``[threshold, 1]`` onto ``[0.15, 1]``
    (:func:`rescale_score`). ``"auto"``: the cuts of :func:`expected_f1_cuts` for this half, from
    ``class_rates`` (in replace mode over the events left after ``min_score`` and the NMS). insert: add the
    model's insertions (replace mode, models with insertion heads). With ``return_details`` also a dict of
    per-input-event numpy arrays (``keep_prob``, ``cls``, ``offset``, ``score`` ..., and ``ins_*`` for the
    insertions) in input order.
    """
    import torch

    from fpspot.data.event_windows import collate_windows, half_windows

    if mode not in ("replace", "filter"):
        raise EventDSTError(f"event_dst: mode must be 'replace' or 'filter', got {mode!r}")
    cuts = class_thresholds(thresholds)
    rates = check_class_rates(class_rates) if cuts == "auto" else None
    events = [e for e in events if 1 <= int(e[3]) <= NUM_ACTIONS]
    value = _strength_of(model, events, strength)
    windows = half_windows(events, int(model.config["window"]), strength=value, max_players=model.max_players)
    device = next(model.parameters()).device
    decisions = ("keep_prob", "cls", "cls_prob", "player", "player_prob", "offset", "frame_prob", "score")
    # the per-event heads, and the insertion heads (outputs prefixed "ins_") when they are used
    heads = ("", "ins_") if mode == "replace" and insert and getattr(model, "insert_offset", 0) > 0 else ("",)
    fields = tuple(head + name for head in heads for name in decisions)
    details = {name: np.zeros(len(events), dtype=np.float64) for name in fields}
    details.update({head + name: np.zeros(len(events), dtype=np.int64) for head in heads for name in ("team", "shirt")})
    for first in range(0, len(windows), batch_size):
        chunk = windows[first:first + batch_size]
        batch = collate_windows(chunk)
        batch = {k: v.to(device) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
        with torch.no_grad():
            out = model.predict(batch)
        out = {k: out[k].cpu().numpy() for k in fields}
        for b, tok in enumerate(chunk):
            owned = np.flatnonzero(tok["owned"])
            src = tok["source"][owned]
            for name in fields:
                details[name][src] = out[name][b, owned]
            for head in heads:
                pairs = tok["players"][out[f"{head}player"][b, owned]]
                details[f"{head}team"][src], details[f"{head}shirt"][src] = pairs[:, 0], pairs[:, 1]
    scores = np.clip(details["score"], 0.0, 1.0)
    if mode == "filter":
        if rates is not None:
            cuts = expected_f1_cuts(scores, np.asarray([int(e[3]) for e in events]), rates, play_minutes(events))
        result = [Prediction(*(int(x) for x in e[:4]), float(e[4])) for i, e in enumerate(events)
                  if scores[i] >= max(min_score, cuts.get(int(e[3]), 0.0) if cuts else 0.0)]
    else:
        input_frames = np.asarray([int(e[0]) for e in events], dtype=np.int64)
        proposals = []
        for head in heads:
            frames = input_frames + details[f"{head}offset"].astype(np.int64)
            team, shirt, cls = (details[f"{head}{name}"] for name in ("team", "shirt", "cls"))
            head_scores = np.clip(details[f"{head}score"], 0.0, 1.0)
            proposals += [Prediction(int(frames[i]), int(team[i]), int(shirt[i]), int(cls[i]), float(head_scores[i]))
                          for i in range(len(events)) if frames[i] >= 0 and head_scores[i] >= min_score]
        # the NMS groups by class and a class's cut removes its lowest scores, so NMS first then cut keeps the
        # same events as cut first then NMS; the auto cuts need the merged events
        result = nms_events(proposals, int(nms_window))
        if rates is not None:
            cuts = expected_f1_cuts(np.asarray([p.score for p in result]), np.asarray([p.cls for p in result]),
                                    rates, play_minutes(events))
        if cuts:
            result = [p._replace(score=rescale_score(p.score, cuts.get(p.cls, 0.0))) for p in result
                      if p.score >= cuts.get(p.cls, 0.0)]
    result.sort(key=lambda p: (p.frame, -p.score))
    if return_details:
        details["strength"] = np.full(len(events), value)
        return result, details
    return result


def denoise_playbyplay(model, pred: PlayByPlay, *, strength: float | str = "auto", min_score: float = 0.05,
                       nms_window: int = 12, thresholds=None, mode: str = "replace",
                       batch_size: int = 64, class_rates=None, insert: bool = True) -> PlayByPlay:
    """:func:`denoise_half` over every half of ``pred`` (every key kept)."""
    model = load_event_dst(model)
    events = {k: denoise_half(model, pred.events.get(k, []), strength=strength, min_score=min_score,
                              nms_window=nms_window, thresholds=thresholds, mode=mode, batch_size=batch_size,
                              class_rates=class_rates, insert=insert)
              for k in pred.keys}
    return PlayByPlay("pred", list(pred.keys), events)


def event_dst_step(pred: PlayByPlay, model, *, strength: float | str = "auto", min_score: float = 0.05,
                   nms_window: int = 12, thresholds=None, mode: str = "replace", batch_size: int = 64,
                   class_rates=None, insert: bool = True) -> PlayByPlay:
    """The ``event_dst`` pipeline step on one event stream (options checked, model loaded and cached)."""
    if not 0.0 <= float(min_score) <= 1.0:
        raise EventDSTError(f"event_dst: min_score must be in [0, 1], got {min_score}")
    if int(batch_size) < 1:
        raise EventDSTError(f"event_dst: batch_size must be >= 1, got {batch_size}")
    if mode not in ("replace", "filter"):
        raise EventDSTError(f"event_dst: mode must be 'replace' or 'filter', got {mode!r}")
    if not isinstance(insert, bool):
        raise EventDSTError(f"event_dst: insert must be true or false, got {insert!r}")
    if class_thresholds(thresholds) == "auto":  # fail before loading the model
        check_class_rates(class_rates)
    return denoise_playbyplay(load_event_dst(model), pred, strength=strength, min_score=float(min_score),
                              nms_window=int(nms_window), thresholds=thresholds, mode=mode,
                              batch_size=int(batch_size), class_rates=class_rates, insert=insert)


__all__ = ["EventDSTError", "check_class_rates", "class_thresholds", "denoise_half", "denoise_playbyplay",
           "estimate_strength", "event_dst_step", "events_per_minute", "expected_f1_cuts", "ground_truth_class_rates",
           "load_event_dst", "nms_events", "play_minutes", "rescale_score", "resolve_model_path"]
