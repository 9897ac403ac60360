"""Drawing corrupted predictions from ground truth (:func:`corrupt_half`, :func:`corrupt_playbyplay`) with
the fitted distributions (:class:`SamplerTables`, built once per parameter set)."""

from __future__ import annotations

import bisect
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from fpspot.data.corrupt.labels import free_mask, player_possessions, twin_group
from fpspot.data.corrupt.params import NEIGHBOUR_FRAMES, OUTCOMES, QUANTILE_LEVELS, CorruptionParams, bucket_of
from fpspot.data.footpass import PlayByPlay, load_playbyplay
from fpspot.post.events import GroupIndex, nms_keep
from fpspot.schema import FPS, NUM_ACTIONS, GTEvent, Prediction


def half_seed(seed: int, key: str, *extra: int) -> np.random.Generator:
    """A generator seeded from ``(seed, *extra, crc32(key))``: stable across processes and runs."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), *map(int, extra), zlib.crc32(key.encode())]))


def draw_index(rng: np.random.Generator, p: Sequence[float] | np.ndarray) -> int:
    """An index drawn with probabilities ``p``: the same draw as ``rng.choice(len(p), p=p)`` (numpy's algorithm:
    one ``rng.random()`` searched on the right side of the normalised cumulative sum), without its per-call
    validation, which dominated the corruption's cost."""
    return bisect.bisect_right(cumulative(p), rng.random())


def cumulative(p: Sequence[float] | np.ndarray) -> list[float]:
    """The normalised cumulative sum of ``p`` as :meth:`numpy.random.Generator.choice` computes it."""
    cdf = np.asarray(p, dtype=np.float64).cumsum()
    cdf /= cdf[-1]
    return cdf.tolist()


@dataclass(frozen=True)
class SamplerTables:
    """The fitted offset histograms (as ``(offsets, cumulative sums)``) and score quantiles of a
    :class:`CorruptionParams`, ready to draw from. Build them once per parameter set with :meth:`of` and pass
    them to :func:`corrupt_half` when corrupting many windows: building them is about a quarter of the cost of
    corrupting one training window. They read only the histogram and score fields, which calibration leaves
    alone."""

    jitter: tuple
    jitter_inner: tuple
    class_jitter: dict
    ghost: tuple
    dup: tuple
    ghost_anchor: tuple | None
    burst_gap: tuple
    quantiles: dict
    twin: tuple | None = None

    @classmethod
    def of(cls, params: CorruptionParams) -> "SamplerTables":
        jitter, jitter_inner = cls._jitters(params.jitter_hist, params.match_window)
        anchor, burst = params.ghost_anchor_hist, params.random_burst_gap_hist
        return cls(
            jitter=jitter, jitter_inner=jitter_inner,
            class_jitter={int(c): cls._jitters(h, params.match_window)
                          for c, h in (params.jitter_hist_per_class or {}).items()},
            ghost=cls._hist(params.ghost_offset_hist["offsets"], params.ghost_offset_hist["probs"]),
            dup=cls._hist(params.dup_offset_hist["offsets"], params.dup_offset_hist["probs"]),
            ghost_anchor=cls._hist(anchor["offsets"], anchor["probs"]) if anchor else None,
            burst_gap=cls._hist(burst["offsets"], burst["probs"]),
            twin=cls._hist(params.twin_offset_hist["offsets"], params.twin_offset_hist["probs"])
            if params.twin_offset_hist else None,
            quantiles={kind: {c: np.asarray(q, dtype=np.float64) for c, q in table.items()}
                       for kind, table in params.score_quantiles.items()})

    @staticmethod
    def _hist(offsets, probs) -> tuple[list[int], list[float]]:
        return np.asarray(offsets, dtype=np.int64).tolist(), cumulative(probs)

    @classmethod
    def _jitters(cls, hist: Mapping[str, list], match_window: int) -> tuple[tuple, tuple]:
        """The full histogram and its restriction to ``+-match_window`` (uniform there if it has no mass)."""
        offsets, probs = np.asarray(hist["offsets"]), np.asarray(hist["probs"])
        inner = np.abs(offsets) <= match_window
        kept = probs * inner
        return cls._hist(offsets, probs), cls._hist(offsets, kept / kept.sum() if kept.sum() else inner / inner.sum())


class _Sampler:
    """Draws from the fitted distributions with one generator (``tables``: :meth:`SamplerTables.of` of
    ``params``, built here when not given)."""

    def __init__(self, params: CorruptionParams, rng: np.random.Generator, tables: SamplerTables | None = None):
        self.params, self.rng = params, rng
        t = tables if tables is not None else SamplerTables.of(params)
        self.jitter, self.jitter_inner, self.class_jitter = t.jitter, t.jitter_inner, t.class_jitter
        self.dup_after = params.dup_after
        self.ghost, self.dup, self.ghost_anchor, self.burst_gap = t.ghost, t.dup, t.ghost_anchor, t.burst_gap
        self.twin = t.twin
        self.quantiles = t.quantiles

    def jitter_of(self, cls: int, inner: bool = False) -> tuple[list[int], list[float]]:
        """Jitter histogram of ground-truth class ``cls`` (the pooled one without ``jitter_hist_per_class``);
        ``inner``: restricted to ``+-match_window`` (the wrong outcomes)."""
        pair = self.class_jitter.get(cls)
        if pair is None:
            return self.jitter_inner if inner else self.jitter
        return pair[1] if inner else pair[0]

    def dup_sign(self, cls: int) -> int:
        """+1 (after the parent) with probability ``dup_after[cls]`` (0.5 without it), else -1."""
        after = 0.5 if self.dup_after is None else self.dup_after[cls]
        return 1 if self.rng.random() < after else -1

    def offset(self, hist: tuple[list[int], list[float]]) -> int:
        return hist[0][bisect.bisect_right(hist[1], self.rng.random())]

    def score(self, kind: str, cls: int, upper: float = 1.0) -> float:
        """A draw from the fitted scores of ``kind`` and ``cls``, capped at ``upper``; a duplicate of a file
        with ``dup_score_ratio`` (``upper`` = its parent's score) gets the parent's score times a drawn ratio."""
        if kind == "duplicate" and self.params.dup_score_ratio is not None:
            return float(upper * np.interp(self.rng.random(), QUANTILE_LEVELS, self.params.dup_score_ratio))
        table = self.quantiles.get(kind) or self.quantiles["ghost"]  # files without carry scores
        q = table.get(str(cls), table["all"])
        value = float(np.interp(self.rng.random(), QUANTILE_LEVELS, q))
        return float(min(value, upper))

    def dup_tilt(self, parent_score: float) -> float:
        """Duplicate-rate factor of a parent with this score (1 without ``dup_parent_tilt``)."""
        tilt = self.params.dup_parent_tilt
        if tilt is None:
            return 1.0
        k = bisect.bisect_right(tilt["edges"], parent_score) - 1
        return float(tilt["weights"][min(max(k, 0), len(tilt["weights"]) - 1)])


def active_players(gt_events: Sequence) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Active players of a half per team: ``team -> (shirts, probabilities by number of events)``."""
    counts: dict[int, Counter] = {0: Counter(), 1: Counter()}
    for e in gt_events:
        counts[e[1]][e[2]] += 1
    out = {}
    for team, counter in counts.items():
        shirts = np.asarray(sorted(counter), dtype=np.int64)
        weights = np.asarray([counter[s] for s in shirts], dtype=np.float64)
        out[team] = (shirts, weights / weights.sum() if weights.size else weights)
    return out


def _draw_player(rng: np.random.Generator, players: dict, team: int, exclude: int | None = None) -> int | None:
    shirts, probs = players[team]
    if exclude is not None:
        keep = shirts != exclude
        shirts, probs = shirts[keep], probs[keep]
    if shirts.size == 0:
        return None
    return int(shirts[draw_index(rng, probs / probs.sum())])


def scaled_outcome(probs: Sequence[float], miss_scale: float) -> list[float]:
    """Outcome probabilities over :data:`OUTCOMES` with the ``missed`` probability multiplied by
    ``miss_scale`` (capped at 1) and the four other outcomes rescaled to fill the rest in proportion."""
    probs = [float(p) for p in probs]
    if miss_scale == 1.0:
        return probs
    missed = min(1.0, probs[-1] * miss_scale)
    rest = sum(probs[:-1])
    if rest <= 0:
        return probs
    return [p * (1.0 - missed) / rest for p in probs[:-1]] + [missed]


def strength_scales(strength: float) -> tuple[float, float]:
    """``(fp_scale, miss_scale)`` of a noise strength: ``fp_scale = strength`` (ghosts, random false positives
    and duplicates scale with it) and ``miss_scale = 0.6 + 0.4 * strength``. Strength 1 is the fitted TAAD
    noise; strength ~0.2 has the false-positive rate and recall of the released TAAD+DST predictions
    (spec §7: FP/GT 0.25 against TAAD's 1.44, recall 0.70 against 0.63)."""
    strength = float(strength)
    if strength < 0:
        raise ValueError(f"noise strength must be >= 0, got {strength}")
    return strength, 0.6 + 0.4 * strength


def _draw_class(rng: np.random.Generator, class_probs: np.ndarray, exclude: int | None = None) -> int:
    """A class id 1..8 drawn from ``class_probs`` (8 probabilities), never ``exclude`` (unless it is the only one)."""
    probs = class_probs.copy()
    if exclude is not None and probs.sum() - probs[exclude - 1] > 0:
        probs[exclude - 1] = 0.0
    return draw_index(rng, probs / probs.sum()) + 1


def _other_player(rng: np.random.Generator, active: dict, team: int, shirt: int | None) -> tuple[int, int | None]:
    """A random active player of a random team other than ``(team, shirt)``."""
    new_team = int(rng.integers(2))
    new_shirt = _draw_player(rng, active, new_team, exclude=shirt if new_team == team else None)
    if new_shirt is None:
        new_team = 1 - new_team
        new_shirt = _draw_player(rng, active, new_team, exclude=shirt if new_team == team else None)
    return new_team, new_shirt


def _random_bursts(params: CorruptionParams, s: _Sampler, rng: np.random.Generator, free: np.ndarray,
                   minutes: float, active: dict, emit) -> None:
    """Random false positives in bursts: ``Poisson(total rate * minutes / mean burst size)`` bursts start on
    uniformly drawn free frames; each has a size from ``random_burst_size``; every further member follows the
    previous one by a gap from ``random_burst_gap_hist`` and, with probability ``random_burst_same_player``,
    keeps its player with another class, with probability ``random_burst_same_class`` keeps its class on
    another player, else draws class (in proportion to ``random_rate_per_min``) and player afresh -- never the
    previous player *and* class, which the labeller would call a duplicate. The first member's class is drawn
    in proportion to ``random_rate_per_min``, so the expected count per class stays close to
    ``random_rate_per_min[c] * minutes``."""
    rates = np.asarray(params.random_rate_per_min[1:], dtype=np.float64)
    if rates.sum() <= 0 or free.size == 0:
        return
    class_probs = rates / rates.sum()
    size_probs = np.asarray(params.random_burst_size, dtype=np.float64)
    mean_size = float(np.dot(np.arange(1, size_probs.size + 1), size_probs))
    for _ in range(rng.poisson(rates.sum() * minutes / mean_size)):
        frame = int(rng.choice(free))
        cls = draw_index(rng, class_probs) + 1
        team = int(rng.integers(2))
        shirt = _draw_player(rng, active, team)
        for member in range(draw_index(rng, size_probs) + 1):
            if member:
                frame += s.offset(s.burst_gap)
                u = rng.random()
                if u < params.random_burst_same_player:  # the same player, another class
                    cls = _draw_class(rng, class_probs, exclude=cls)
                elif u < params.random_burst_same_player + params.random_burst_same_class:  # same class, other player
                    team, shirt = _other_player(rng, active, team, shirt)
                else:  # drawn afresh, but never the same player and class again (that would be a duplicate)
                    new_cls = _draw_class(rng, class_probs)
                    if new_cls == cls:
                        team, shirt = _other_player(rng, active, team, shirt)
                    else:
                        team = int(rng.integers(2))
                        shirt = _draw_player(rng, active, team)
                    cls = new_cls
            emit(frame, team, shirt, cls, "random", "random")


def _twins(params: CorruptionParams, s: _Sampler, rng: np.random.Generator, fp_scale: float, emit,
           emitted: Sequence[tuple[Prediction, str, int]]) -> None:
    """Twins of the ``emitted`` detections and ghosts (``(prediction, kind, source)`` rows): per parent of class
    ``c`` in group ``g`` (:func:`twin_group`) ``Poisson(twin_rate[g][c] * fp_scale)`` predictions on the same
    player, with a class from ``twin_confusion[c]``, ``twin_offset_hist`` frames from the parent, scored as
    ghosts."""
    for pred, kind, _source in emitted:
        group = twin_group(kind)
        if group is None:
            continue
        for _ in range(rng.poisson(params.twin_rate[group][pred.cls] * fp_scale)):
            cls = draw_index(rng, params.twin_confusion[pred.cls])
            emit(pred.frame + s.offset(s.twin), pred.team, pred.shirt, cls, "ghost", "ghost")


def _carries(params: CorruptionParams, rng: np.random.Generator, events: Sequence[GTEvent], fp_scale: float,
             emit, emitted: Sequence[Prediction]) -> None:
    """False positives inside a player's own possession (:func:`player_possessions`), on that player: per class
    ``Poisson(carry_rate_per_min[c] * fp_scale * possession minutes)``, each on a frame drawn uniformly from
    the frames strictly inside the possessions; one that falls nearer than ``dup_min_gap`` to an ``emitted``
    prediction of the same player and class is dropped (the spotter's NMS would have; carries are not checked
    against each other)."""
    runs = [(key, first, last) for key, spans in player_possessions(events).items() for first, last, _ in spans]
    if not runs:
        return
    lengths = np.asarray([last - first - 1 for _, first, last in runs], dtype=np.float64)  # each >= 1
    probs = lengths / lengths.sum()
    minutes = lengths.sum() / FPS / 60.0
    taken = GroupIndex(emitted)
    for cls in range(1, NUM_ACTIONS + 1):
        for _ in range(rng.poisson(params.carry_rate_per_min[cls] * fp_scale * minutes)):
            (team, shirt), first, last = runs[draw_index(rng, probs)]
            frame = int(rng.integers(first + 1, last))
            if not taken.near((team, shirt, cls), frame, params.dup_min_gap - 1):  # none nearer than the gap
                emit(frame, team, shirt, cls, "carry", "carry")


def corrupt_half(gt_events: Sequence, params: CorruptionParams, rng: np.random.Generator, *,
                 players: Mapping[int, Sequence[tuple[int, int]]] | None = None,
                 span: tuple[int, int] | None = None, return_kinds: bool = False, return_sources: bool = False,
                 fp_scale: float = 1.0, miss_scale: float = 1.0, tables: SamplerTables | None = None):
    """Corrupt one half's ground truth into spotter-like predictions.

    gt_events: ``(frame, team, shirt, class, bbox, replay)`` records. players: optional active players
    ``{team: [(shirt, weight), ...]}`` (default: from ``gt_events``). span: ``(first, last)`` frame range
    where random false positives fall (default: first to last event). fp_scale multiplies the ghost, random
    and duplicate rates; miss_scale the probability of missing an event (:func:`scaled_outcome`); both 1:
    the fitted model (the random draws are then those of the unscaled model). Returns a list of
    :class:`Prediction` sorted by frame; with ``return_kinds`` also the list of their generative kinds, with
    ``return_sources`` also, per prediction, the index into ``gt_events`` of the event it was made from
    (detections, the three wrong outcomes and their duplicates; -1 for ghosts, random and carry false
    positives and their duplicates) -- in that order: ``preds[, kinds][, sources]``. tables:
    :meth:`SamplerTables.of` of ``params`` (built per call when not given; the same draws either way).
    """
    s = _Sampler(params, rng, tables)
    fp_scale, miss_scale = float(fp_scale), float(miss_scale)
    if fp_scale < 0 or miss_scale < 0:
        raise ValueError(f"corrupt_half: fp_scale and miss_scale must be >= 0, got {fp_scale}, {miss_scale}")
    if players is None:
        active = active_players(gt_events)
    else:
        active = {}
        for team in (0, 1):
            pairs = list(players.get(team, []))
            shirts = np.asarray([p[0] for p in pairs], dtype=np.int64)
            w = np.asarray([p[1] for p in pairs], dtype=np.float64)
            active[team] = (shirts, w / w.sum() if w.size else w)
    order = sorted(range(len(gt_events)), key=lambda i: int(gt_events[i][0]))
    events = [GTEvent(*map(int, gt_events[i][:6])) for i in order]
    frames = np.asarray([e.frame for e in events], dtype=np.int64)
    out: list[tuple[Prediction, str, int]] = []

    def emit(frame, team, shirt, cls, kind, score_kind, source=-1, upper=1.0):
        if frame < 0 or shirt is None:
            return
        out.append((Prediction(int(frame), int(team), int(shirt), int(cls), s.score(score_kind, cls, upper)), kind,
                    source))

    detection_frame: dict[int, int] = {}  # position in `events` -> frame of the prediction made from it
    for position, (src, e) in enumerate(zip(order, events)):
        emitted = len(out)
        probs = scaled_outcome(params.outcome[str(e.cls)][bucket_of(e)], miss_scale)
        outcome = OUTCOMES[draw_index(rng, probs)]
        if outcome == "detected":
            emit(e.frame + s.offset(s.jitter_of(e.cls)), e.team, e.shirt, e.cls, "detected", "detected", src)
        elif outcome == "wrong_jersey":
            emit(e.frame + s.offset(s.jitter_of(e.cls, inner=True)), e.team,
                 _draw_player(rng, active, e.team, e.shirt), e.cls,
                 "wrong_jersey", "wrong", src)
        elif outcome == "wrong_team":
            emit(e.frame + s.offset(s.jitter_of(e.cls, inner=True)), 1 - e.team,
                 _draw_player(rng, active, 1 - e.team), e.cls,
                 "wrong_team", "wrong", src)
        elif outcome == "wrong_class":
            cls = draw_index(rng, params.class_confusion[e.cls])
            emit(e.frame + s.offset(s.jitter_of(e.cls, inner=True)), e.team, e.shirt, cls, "wrong_class", "wrong",
                 src)
        if len(out) > emitted:
            detection_frame[position] = out[-1][0].frame
    for position, e in enumerate(events):
        for _ in range(rng.poisson(params.ghost_rate[e.cls] * fp_scale)):
            if s.ghost_anchor is not None and position in detection_frame:
                frame = detection_frame[position] + s.offset(s.ghost_anchor)
            else:
                frame = e.frame + s.offset(s.ghost)
            cls = draw_index(rng, params.ghost_confusion[e.cls])
            team = e.team if rng.random() < params.ghost_same_team else 1 - e.team
            shirt = None
            if rng.random() < params.ghost_neighbour_player:
                lo, hi = np.searchsorted(frames, [frame - NEIGHBOUR_FRAMES, frame + NEIGHBOUR_FRAMES + 1])
                near = sorted({events[j].shirt for j in range(lo, hi) if events[j].team == team})
                if near:
                    shirt = int(rng.choice(near))
            if shirt is None:
                shirt = _draw_player(rng, active, team)
            emit(frame, team, shirt, cls, "ghost", "ghost")
    if params.twin_rate is not None:
        _twins(params, s, rng, fp_scale, emit, list(out))
    if span is None and events:
        span = (events[0].frame, events[-1].frame)
    if span is not None:
        free = np.flatnonzero(free_mask(frames, span, params.ghost_window)) + span[0]
        minutes = free.size / FPS / 60.0
        if len(params.random_burst_size) > 1:
            _random_bursts(params, s, rng, free, minutes * fp_scale, active, emit)
        else:
            for cls in range(1, NUM_ACTIONS + 1):
                for _ in range(rng.poisson(params.random_rate_per_min[cls] * fp_scale * minutes)):
                    team = int(rng.integers(2))
                    emit(int(rng.choice(free)), team, _draw_player(rng, active, team), cls, "random", "random")
    if params.carry_rate_per_min is not None:
        _carries(params, rng, events, fp_scale, emit, [p for p, _, _ in out])
    player_events: dict[tuple[int, int], list] = defaultdict(list)  # (team, shirt) -> (frame, class) rows
    for e in events if params.dup_at_player_event > 0 else ():
        player_events[(e.team, e.shirt)].append((e.frame, e.cls))
    player_events = {k: np.asarray(v, dtype=np.int64).reshape(-1, 2) for k, v in player_events.items()}
    parents = list(out)
    for pred, _kind, src in parents:
        for _ in range(rng.poisson(params.dup_rate[pred.cls] * fp_scale * s.dup_tilt(pred.score))):
            if params.dup_at_player_event > 0 and rng.random() < params.dup_at_player_event:
                own = player_events.get((pred.team, pred.shirt), np.zeros((0, 2), dtype=np.int64))
                gap = np.abs(own[:, 0] - pred.frame)
                near = own[(gap > max(params.match_window, params.dup_min_gap - 1)) & (gap <= params.dup_window)
                           & (own[:, 1] != pred.cls), 0]
                if near.size and params.dup_after is not None:  # on the drawn side of the parent when it has one
                    side = near[(near > pred.frame) == (s.dup_sign(pred.cls) > 0)]
                    near = side if side.size else near
                if near.size:  # the player's other action (of another class), in the parent's class
                    frame = int(rng.choice(near)) + s.offset(s.jitter_inner)
                    if abs(frame - pred.frame) < params.dup_min_gap:  # the jitter never brings it nearer
                        frame = pred.frame + int(np.sign(frame - pred.frame) or 1) * params.dup_min_gap
                    emit(frame, pred.team, pred.shirt, pred.cls, "duplicate", "duplicate", src, upper=pred.score)
                    continue
            sign = s.dup_sign(pred.cls)  # drawn before the gap
            emit(pred.frame + sign * max(s.offset(s.dup), params.dup_min_gap), pred.team, pred.shirt, pred.cls,
                 "duplicate", "duplicate", src, upper=pred.score)
    if params.spotter_nms > 0:  # the spotter's own NMS (no random draw)
        out = [out[i] for i in nms_keep([p for p, _, _ in out], params.spotter_nms)]
    out.sort(key=lambda item: (item[0].frame, -item[0].score))
    result: list = [[p for p, _, _ in out]]
    if return_kinds:
        result.append([k for _, k, _ in out])
    if return_sources:
        result.append([i for _, _, i in out])
    return tuple(result) if len(result) > 1 else result[0]


def corrupt_playbyplay(gt: PlayByPlay | Mapping | str, params: CorruptionParams | None = None,
                       seed: int = 0, strength: float = 1.0) -> PlayByPlay:
    """Corrupt every half of a ground-truth file; half ``key`` uses :func:`half_seed` ``(seed, key)``.
    ``strength`` scales the noise (:func:`strength_scales`; 1 = the fitted model)."""
    gt = load_playbyplay(gt, "gt")
    params = params or CorruptionParams.load()
    fp_scale, miss_scale = strength_scales(strength)
    events: dict[str, list] = {k: corrupt_half(gt.events[k], params, half_seed(seed, k), fp_scale=fp_scale,
                                               miss_scale=miss_scale) for k in gt.keys}
    return PlayByPlay("pred", list(gt.keys), events)
