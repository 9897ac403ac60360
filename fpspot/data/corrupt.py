"""A corruption model that turns ground-truth play-by-play into realistic spotter output.

It is the noise source of the event-sequence DST (issue 8): ground-truth events of a half
(:class:`~fpspot.schema.GTEvent`) go in, a list of :class:`~fpspot.schema.Prediction` that looks like what
a TAAD spotter writes comes out. Its parameters are fitted (:func:`fit_corruption`) from a spotter's
released predictions against the ground truth of the same halves, with the official matcher
(:func:`fpspot.eval.metric.match_half`). The packaged parameters ``corruption_taad.json`` are fitted from
``playbyplay_TAAD_val_g18_g24.json`` against ``playbyplay_val_g18_g24.json`` (4 halves, 3855 events, 7579
predictions) by ``recipes/fit_corruption.py``.

Error taxonomy (how :func:`fit_corruption` labels each prediction)
-----------------------------------------------------------------
Predictions are visited by descending score (the matcher's order); a ground-truth event can be *claimed*
once. In order of precedence a prediction is

1. ``detected``: matched by the official matcher (``delta = 12``), or -- the jitter tail -- same team,
   jersey and class as an unclaimed ground-truth event within ``+-jitter_window`` (50) frames (an official
   FP whose event is an official FN);
2. ``wrong_jersey``: same team and class, another jersey, an unclaimed event within ``+-match_window`` (12);
3. ``wrong_class``: same team and jersey, another class, an unclaimed event within ``+-match_window``;
4. ``wrong_team``: same class, the other team, an unclaimed event within ``+-match_window``;
5. ``duplicate``: same team, jersey and class as a higher-scored prediction within ``+-dup_window`` (75)
   frames (what TAAD's NMS over 25 frames leaves);
6. ``ghost`` (false positive near play): within ``+-ghost_window`` (25) frames of some ground-truth event;
7. ``random`` (false positive away from play): everything else.

With ``carry`` (``label_predictions(..., carry=True)``, fits with ``carry=True``) a kind ``carry`` comes
before 6: a false positive on a player strictly between two consecutive events (in frame order, over all
players) of that same player -- his own possession (:func:`player_possessions`).

Generative model (what :func:`corrupt_half` does)
------------------------------------------------
For every ground-truth event of class ``c`` in visibility bucket ``b`` (``box``: the actor has a box;
``nobox``: live play without box; ``replay``) one outcome is drawn from ``outcome[c][b]`` over
``(detected, wrong_jersey, wrong_class, wrong_team, missed)``. ``detected`` keeps team, jersey and class and
moves the frame by a jitter drawn from ``jitter_hist`` (``pred - gt``, -50..50); the three wrong outcomes
draw their jitter from the same histogram restricted to ``+-match_window``; ``wrong_jersey`` takes another
player of the same team, ``wrong_team`` a player of the other team (players drawn from the half's active
players, weighted by their number of events), ``wrong_class`` a class from ``class_confusion[c]``.
Then, per ground-truth event of class ``c``, ``Poisson(ghost_rate[c])`` ghosts are placed with a class from
``ghost_confusion[c]``, on the event's team with probability ``ghost_same_team`` and, with probability
``ghost_neighbour_player``, on a player of that team who acts within +-75 frames (else any active player of
the team); a ghost of an event that was detected (or got one of the wrong outcomes) sits at an offset from
``ghost_anchor_hist`` from *that prediction* (TAAD fires on several players at once), a ghost of a missed
event at an offset from ``ghost_offset_hist`` from the event. With twins (``fit_corruption(..., twins=True)``,
``recipes/fit_corruption.py --twins``; not in the packaged fit) TAAD's habit of firing several classes on one
player at once is modelled too: every detection (any of the four detection outcomes) and every ghost of class
``c`` gets ``Poisson(twin_rate[group][c])`` twins (``group`` "detected" or "ghost", :data:`TWIN_PARENTS`), on
the same player, with a class from ``twin_confusion[c]`` (never ``c``), ``twin_offset_hist`` frames from it
(``-match_window..match_window``), scored as ghosts; the labeller calls them ghosts, and the fit tells them
from the other ghosts by :func:`twin_parents`. Random false positives (per class ``c``
``random_rate_per_min[c] * free minutes`` expected) fall on the *free* frames of the half's span (those
farther than ``ghost_window`` from every event, so that they are labelled ``random`` again) in bursts, as
TAAD's do: a burst starts on a uniformly drawn free frame and has ``random_burst_size`` members (sizes 1, 2,
...), each ``random_burst_gap_hist`` frames after the previous one; a member keeps the previous one's player
with another class (probability ``random_burst_same_player``), keeps its class on another player
(``random_burst_same_class``), or draws both afresh -- never the same player and class again, which is a
duplicate. Files without burst parameters draw every random false positive on its own.
Last, every emitted detection of class ``c`` gets ``Poisson(dup_rate[c] * tilt(score))`` duplicates, same
player and class, with a score no higher than its parent's: with probability ``dup_at_player_event`` on
another action (of another class, within ``dup_window``) of the same player, jittered by ``+-match_window``
(TAAD repeats a player's class on his next touch), else at ``+-|offset|`` from ``dup_offset_hist`` (1..75
frames) from the parent. Optionally (not in the packaged fit), TAAD's habit of repeating its confident detections:
``dup_parent_tilt`` (``{"edges", "weights"}``, bins of the parent's score at the quintiles of the
non-duplicate predictions' scores; ``tilt = 1`` without it) multiplies the rate by the bin's
duplicates per parent over the overall duplicates per parent (1 on average over the real parents), and a
duplicate's score is its parent's times a ratio drawn from ``dup_score_ratio`` (21 quantiles of the real
duplicates' score / parent score). Without them (``null``, the packaged fit and older files) there is no tilt
and duplicate scores come from ``score_quantiles["duplicate"]`` capped at the parent's score, which puts a
quarter of the duplicates exactly at their parent's score (never in the real file) and more of them on
low-scored parents than TAAD does.
With carries (``fit_corruption(..., carry=True)``; in the packaged fit), before the duplicates, per
class ``Poisson(carry_rate_per_min[c] * possession minutes)`` carries are put on uniformly drawn frames inside
the half's possessions, on the possession's player, scored from ``score_quantiles["carry"]``; one nearer than
``dup_min_gap`` to a detection, ghost or random of the same player and class is dropped. Their rate and the
duplicate rates are then calibrated by simulation, since generated carries next to their player's detection are
labelled duplicates.
With per-class offsets (``fit_corruption(..., per_class_offsets=30)``; in the packaged fit) the offsets are per
class: ``jitter_hist_per_class`` gives each ground-truth class its own jitter histogram (its
counts plus 30 pooled pseudo-counts; the wrong outcomes use its ``+-match_window`` part), ``dup_after[c]`` is the
probability that a duplicate of class ``c`` lies after its parent (an on-action duplicate then takes an action on
that side when there is one), and ``dup_min_gap`` keeps every duplicate at least that far from its parent
(the smallest real gap, 26 frames for TAAD, whose NMS covers 25). Without them (``null`` / 0) every class
shares ``jitter_hist`` and duplicates fall on either side alike (older files, and fits without the options).
With ``spotter_nms`` > 0 (0 in the packaged fit and in older files) the output then goes through the spotter's
own greedy NMS per (team, jersey, class) over that many frames (:func:`fpspot.post.events.nms_keep`; TAAD's is
25 frames, which ``fit_corruption(..., spotter_nms="auto")`` measures from the real file: :func:`nms_window_of`).
It uses no random draw. Measured on games 18/24 it does not make corrupted duplicates harder for the event DST and,
since the fitted false-positive rates do not make up for what it removes, moves the corrupted files' micro F1
away from the real one (0.429 against 0.423 without; real 0.4125), so the packaged fit leaves it off.
Scores are drawn from per-kind, per-class empirical quantile functions ``score_quantiles[kind][class]``
(21 quantiles, 0 %..100 %, linear interpolation; kinds ``detected``, ``wrong`` (the three wrong outcomes
pooled), ``duplicate``, ``ghost``, ``random``). A class's quantiles are its own empirical quantiles shrunk
toward the kind's pooled ones (stored under ``"all"``) with a pseudo-count of ``score_shrinkage`` (10)
predictions: ``q_c = w q_class + (1 - w) q_all``, ``w = n / (n + 10)`` (a quantile-wise average, so still a
quantile function); a class with fewer than ``min_score_samples`` (5) predictions of a kind uses the pooled
quantiles. Files fitted before the shrinkage (``min_score_samples`` 30, no ``score_shrinkage`` in their
``source``) pooled every class under 30 predictions, which gave TAAD's 23 correct blocks (median score .66)
the pooled median .79.

Estimation details: outcome probabilities are shrunk cell -> class -> global with a pseudo-count of
``shrinkage`` (10) events; confusion rows use add-``0.5`` smoothing on the off-diagonal; rates are counts
over exposures (ghost rate per event, duplicate rate per non-duplicate prediction, random rate per free
minute: frames of the span from first to last event that are farther than ``ghost_window`` from any event).
Bursts link a half's random false positives while consecutive ones are at most ``ghost_window`` frames apart
(:func:`random_bursts`); the repeat probabilities are solved from the observed repeat fractions net of
chance repeats, and, like the outcome probabilities and ``dup_at_player_event``, calibrated by simulation
(:func:`calibrate_corruption`), because the labeller turns some generated members into duplicates and some
duplicates into detections.

Fitted values (TAAD, games 18 and 24; regenerate with ``python recipes/fit_corruption.py``)
------------------------------------------------------------------------------------------
The packaged fit has per-class offsets (pseudo-count 30) and carry false positives, calibrated in 3 rounds;
``fit_corruption.py --per-class-offsets none --no-carry --calibrate-iters 2`` gives back the fit before it (on
which the event DST release before the current one was trained; its figures are in BENCHMARKS.md).
Labelled predictions: 2573 detected (2358 official TPs + 215 jitter tail), 65 wrong jersey, 209 wrong
class, 104 wrong team, 807 duplicates, 2690 ghosts, 840 random, 291 carries; 3855 events over 199 minutes of
play, of which 105 "free" minutes (farther than 25 frames from any event) and 55 minutes of possession
(between two consecutive events of one player).

* ``outcome[c][b]`` (after calibration; detected / wrong jersey / wrong class / wrong team / missed):
  box: drive .72/.01/.02/.00/.25, pass .76/.00/.07/.00/.16, cross .81/.00/.01/.01/.17,
  throw-in .70/.01/.01/.00/.27, shot .77/.03/.03/.03/.14, header .73/.01/.02/.00/.24,
  tackle .48/.00/.24/.03/.25, block .46/.04/.27/.08/.15; without a box detection collapses
  (drive .15, pass .11, header .20 in live play; .15, .08, .39 in replays) -- TAAD almost never finds an
  event whose actor has no box.
* ``jitter_hist`` (pooled): mean +0.4 frames, sd 8.3; 56 % within +-3 frames, 93 % within +-12 (the rest is
  the official-FN tail out to +-50). Per class (``jitter_hist_per_class``) it differs: 14 % of TAAD's drive
  detections are more than 12 frames off, mostly late (10th / 90th percentile -7 / +14 frames), against 4 % of
  its passes (-5 / +5); pooled offsets gave corrupted drives 9 % and passes 8 %.
* ``carry``: 291 of the false positives lie inside their player's possession -- 147 drives, 40 tackles, 32
  passes, 30 crosses -- TAAD firing on the player who has the ball between his touches; ``carry_rate_per_min``
  per possession minute (drive .. block) 9.37 1.24 .46 .01 .16 .07 .74 .28 after calibration (7.1 drives
  before it: generated carries next to their player's detection are labelled duplicates). Labelled the same
  way, a fit without carries makes about one in seven of them (about 45, 10 drives: its ghosts and randoms
  land on any player); this one 290-300 (about 155 drives).
* ``class_confusion``: wrong-class detections are mostly pass -> drive / cross / shot / header and
  drive -> header / cross (see the JSON).
* ``ghost_rate`` per event (drive .. block): .42 .87 1.00 .29 1.39 1.46 .77 .63; ``ghost_same_team`` .39;
  ``ghost_neighbour_player`` .22; ``ghost_anchor_hist`` (ghost - its event's prediction): median |offset| 5,
  30 % within +-2 frames, 12 % on the same frame; ``ghost_offset_hist`` (ghosts of missed events, from the
  event) median |offset| 11.
* twins (``--twins`` fit, not packaged): games 18/24 have 184 pairs of one player's predictions in different
  classes within 12 frames per 1000 predictions, the packaged fit about 74 (its ghosts fall on one player in
  two classes by chance: 24 ghost-ghost pairs against 426 real). Of the 2690 ghosts, 698 are twins of a
  higher-scored detection (337) or ghost (361) of their player; ``twin_rate`` after calibration (drive ..
  block) for detections .07 .17 .26 .06 .26 .21 .24 .30, for ghosts .15 .27 .29 .07 .32 .21 .12 .35; classes
  mostly drive <-> pass and pass / cross / header -> block; offsets mean |4.2| frames, never the same frame.
  The other ghosts keep ``ghost_rate`` (drive .. block) .35 .67 .70 .23 1.07 1.08 .69 .41. Corrupted with
  this fit, games 18/24 score micro / macro F1 0.410 +- 0.007 / 0.248 +- 0.006 (10 seeds; real 0.4125 /
  0.2498; the packaged fit 0.417 / 0.253) with 431 and 402 ghost-ghost pairs (2 seeds; real 426).
* ``random_rate_per_min`` per free minute (drive .. block): 3.68 1.33 .27 .43 .10 1.07 .65 .47. Bursts:
  sizes 1 / 2 / 3 / 4+ with probability .66 / .21 / .08 / .05, median gap 3 frames; observed repeats between
  consecutive members: player .26, class .46 (generative ``random_burst_same_player`` .38,
  ``random_burst_same_class`` .37 after calibration).
* ``dup_rate`` per emitted prediction (drive .. block, after calibration): .169 .040 .048 .249 .006 .004 .085
  .012; duplicates sit 26..75 frames from their parent (median 40: just outside TAAD's NMS window;
  ``dup_min_gap`` 26 keeps them there), after it (``dup_after``) for .74 of drives and .37 of passes (real, as
  labelled: 75 % and 31 %); 20 % of them lie within 12 frames of another action of their player
  (``dup_at_player_event`` .85 after calibration). Not in the packaged fit (``dup_tilt_bins=5``,
  ``fit_corruption.py --dup-tilt-bins 5``): ``dup_parent_tilt`` by parent-score quintile (edges .49 .58 .70
  .84) .15 .44 1.17 1.69 1.55 -- TAAD repeats its confident predictions (parents' median score .77, against .56
  for their duplicates) -- and ``dup_score_ratio`` (duplicate / parent score) median .78, IQR .67-.88, never 1.
  With them corrupted duplicates are as hard for the released model as real ones (keep probability .29 vs .30,
  against .22), but a model trained on that fit was worse on the held-out training halves (and on games 18/24),
  so the packaged fit leaves them out.
* ``score_quantiles`` medians (pooled): detected .79 (IQR .64-.91), wrong .59, duplicate .56, ghost .56,
  random .56, carry .61 -- true detections score higher, but the distributions overlap widely. Per class they
  differ: blocks are detected at a median .66 (23 predictions; .70 after shrinkage), drives at .75, passes at
  .85.

Sanity check (``python recipes/fit_corruption.py --check-seeds 10``): corrupting the real ground truth of
games 18/24 and scoring it gives micro F1 0.417 +- 0.005 and macro F1 0.253 +- 0.008 over 10 seeds (real
TAAD file: 0.4125 and 0.2498; the fit before: 0.424 / 0.247); per class, precision and recall are within 0.03
of the real file except pass precision (0.549 vs 0.524), throw-in (precision 0.21 vs 0.26, recall 0.41 vs
0.46; 69 events), shot recall (0.66 vs 0.59; 41 events) and tackle recall (0.39 vs 0.31; 13 events).

How hard the false positives are (an event DST's mean keep probability, corrupted vs real games 18/24;
``python recipes/fit_corruption.py --structure --model DIR``): without bursts, random false positives stood
isolated (median 36 frames to the next prediction, real 8) and were easier to reject than real ones (.20 vs
.25); with them, random .22 vs .25, ghosts .20 vs .21 and duplicates .24 vs .31 (10-epoch release), .23 vs .26,
.20 vs .21 and .25 vs .33 (18-epoch release), .21 vs .25, .19 vs .21 and .23 vs .31 (21-epoch release), .21 vs
.26, .19 vs .22 and .22 vs .30 (the release trained on the fit with shrunk per-class scores): duplicates stay
easier. For the current release and fit see BENCHMARKS.md. Per class, pooled scores had made corrupted blocks
easy to accept (21-epoch release: keep probability .37 for corrupted block detections, .20 for real ones); with
the shrunk per-class scores, .20 vs .20.
"""

from __future__ import annotations

import bisect
import copy
import json
import zlib
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from fpspot.data.footpass import PlayByPlay, load_playbyplay
from fpspot.eval.metric import match_half
from fpspot.post.events import GroupIndex, nms_keep
from fpspot.schema import FPS, NUM_ACTIONS, GTEvent, Prediction
from fpspot.utils.atomic import atomic_open

OUTCOMES: tuple[str, ...] = ("detected", "wrong_jersey", "wrong_class", "wrong_team", "missed")
DETECTION_KINDS: tuple[str, ...] = OUTCOMES[:-1]  # predictions that detect their event (right or wrong player/class)
BUCKETS: tuple[str, ...] = ("box", "nobox", "replay")
SCORE_KINDS: tuple[str, ...] = ("detected", "wrong", "duplicate", "ghost", "random")
PREDICTION_KINDS: tuple[str, ...] = ("detected", "wrong_jersey", "wrong_class", "wrong_team", "duplicate",
                                     "ghost", "random", "carry")
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 21)
TWIN_PARENTS: tuple[str, ...] = ("detected", "ghost")  # "detected": the four DETECTION_KINDS
NEIGHBOUR_FRAMES = 75  # a "neighbour" player acts within +-75 frames (3 s) of the event
PARAMS_FORMAT = "fpspot-corruption/1"
DEFAULT_PARAMS = "corruption_taad.json"


def bucket_of(event: Sequence) -> str:
    """Visibility bucket of a ground-truth event: ``replay`` | ``box`` | ``nobox``."""
    if event[5]:
        return "replay"
    return "box" if event[4] else "nobox"


@dataclass
class CorruptionParams:
    """Every parameter of the corruption model (see the module docstring for their meaning).

    Class-indexed lists have 9 entries (index = class id, entry 0 unused); confusion matrices are 9 x 9
    rows of probabilities (row = ground-truth class, column = emitted class). Histograms are
    ``{"offsets": [...], "probs": [...]}``.
    """

    outcome: dict[str, dict[str, list[float]]]  # class id (str) -> bucket -> probs over OUTCOMES
    jitter_hist: dict[str, list]
    class_confusion: list[list[float]]
    ghost_rate: list[float]
    ghost_offset_hist: dict[str, list]
    ghost_confusion: list[list[float]]
    ghost_same_team: float
    ghost_neighbour_player: float
    random_rate_per_min: list[float]
    dup_rate: list[float]
    dup_offset_hist: dict[str, list]
    score_quantiles: dict[str, dict[str, list[float]]]  # kind -> class id (str) | "all" -> 21 quantiles
    match_window: int = 12
    jitter_window: int = 50
    ghost_window: int = 25
    dup_window: int = 75
    # random false positives in bursts (absent from older files: then each one is drawn on its own)
    random_burst_size: list[float] = field(default_factory=lambda: [1.0])  # P(size = 1, 2, ...)
    random_burst_gap_hist: dict[str, list] = field(default_factory=lambda: {"offsets": [0], "probs": [1.0]})
    random_burst_same_class: float = 0.0
    random_burst_same_player: float = 0.0
    random_burst_window: int = 25
    # ghosts of an event that was detected sit relative to that detection (absent from older files: relative to
    # the event); ghost_offset_hist then holds the offsets of ghosts of missed events only
    ghost_anchor_hist: dict[str, list] | None = None
    # probability that a duplicate lands on another ground-truth event of its player (0 in older files)
    dup_at_player_event: float = 0.0
    # the spotter's own per-(team, jersey, class) NMS window in frames, applied to the corrupted output (0: none)
    spotter_nms: int = 0
    # duplicate rate factor by parent score bin {"edges": [0, ..., 1] (K + 1), "weights": K} (None: no tilt)
    dup_parent_tilt: dict | None = None
    # 21 quantiles of a duplicate's score / its parent's score (None: capped draws from score_quantiles)
    dup_score_ratio: list[float] | None = None
    # per ground-truth class id (str) a jitter histogram like jitter_hist (None: every class uses jitter_hist)
    jitter_hist_per_class: dict[str, dict[str, list]] | None = None
    # per class (9 entries) the probability that a duplicate lies after its parent (None: either side alike)
    dup_after: list[float] | None = None
    # a duplicate is never closer to its parent than this many frames (0: no limit; TAAD: 26, its 25-frame NMS)
    dup_min_gap: int = 0
    # per class (9 entries) false positives per minute of a player's own possession -- the frames between two
    # consecutive events of one player -- on that player (None: no such false positives; they are ghosts and
    # randoms); their scores are score_quantiles["carry"] (ghost scores when absent)
    carry_rate_per_min: list[float] | None = None
    # twins: another class on the same player next to a detection or a ghost (TAAD fires several classes on one
    # player at once). Per parent group (TWIN_PARENTS) 9 rates per parent class (None: no twins); the twin's class
    # from twin_confusion (9 x 9, parent class -> twin class, zero diagonal), its frame at twin_offset_hist
    # (twin - parent, -match_window..match_window) from its parent; scored as a ghost
    twin_rate: dict[str, list[float]] | None = None
    twin_confusion: list[list[float]] | None = None
    twin_offset_hist: dict[str, list] | None = None
    source: dict = field(default_factory=dict)
    format: str = PARAMS_FORMAT

    # ------------------------------------------------------------------------------------------- io
    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping, path: str | None = None) -> "CorruptionParams":
        where = f"corruption parameters {path!r}" if path else "corruption parameters"
        if not isinstance(obj, Mapping):
            raise ValueError(f"{where}: top level must be an object")
        if obj.get("format") != PARAMS_FORMAT:
            raise ValueError(f"{where}: key 'format' must be {PARAMS_FORMAT!r}, got {obj.get('format')!r}")
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(obj) - names
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        try:
            params = cls(**dict(obj))
        except TypeError as err:
            raise ValueError(f"{where}: {err}") from None
        params.validate(where)
        return params

    def validate(self, where: str = "corruption parameters") -> None:
        """Raise ``ValueError`` naming the key when a parameter has the wrong shape or range."""
        for c in range(1, NUM_ACTIONS + 1):
            for b in BUCKETS:
                probs = self.outcome.get(str(c), {}).get(b)
                if probs is None or len(probs) != len(OUTCOMES) or abs(sum(probs) - 1) > 1e-6 or min(probs) < 0:
                    raise ValueError(f"{where}: key 'outcome[{c}][{b}]' must be {len(OUTCOMES)} probabilities")
        for name in ("ghost_rate", "random_rate_per_min", "dup_rate"):
            values = getattr(self, name)
            if len(values) != NUM_ACTIONS + 1 or min(values) < 0:
                raise ValueError(f"{where}: key {name!r} must be 9 non-negative rates (index = class id)")
        twins = (self.twin_rate, self.twin_confusion, self.twin_offset_hist)
        if any(t is not None for t in twins) and any(t is None for t in twins):
            raise ValueError(f"{where}: keys 'twin_rate', 'twin_confusion' and 'twin_offset_hist' go together")
        if self.twin_rate is not None:
            if set(self.twin_rate) != set(TWIN_PARENTS):
                raise ValueError(f"{where}: key 'twin_rate' needs one rate list per parent group {list(TWIN_PARENTS)}")
            for group, values in self.twin_rate.items():
                if len(values) != NUM_ACTIONS + 1 or min(values) < 0:
                    raise ValueError(f"{where}: key 'twin_rate[{group}]' must be 9 non-negative rates "
                                     f"(index = class id)")
        for name in ("class_confusion", "ghost_confusion", *(("twin_confusion",) if self.twin_rate else ())):
            rows = getattr(self, name)
            if len(rows) != NUM_ACTIONS + 1 or any(len(r) != NUM_ACTIONS + 1 for r in rows):
                raise ValueError(f"{where}: key {name!r} must be a 9 x 9 matrix")
            for c in range(1, NUM_ACTIONS + 1):  # row 0 (no class) is never drawn from
                if min(rows[c]) < 0 or abs(sum(rows[c]) - 1) > 1e-6:
                    raise ValueError(f"{where}: key '{name}[{c}]' must be probabilities (>= 0, summing to 1)")
        sizes = self.random_burst_size
        if not sizes or min(sizes) < 0 or abs(sum(sizes) - 1) > 1e-6:
            raise ValueError(f"{where}: key 'random_burst_size' must be probabilities of burst sizes 1, 2, ...")
        ratio = self.dup_score_ratio
        if ratio is not None and (len(ratio) != len(QUANTILE_LEVELS) or any(b < a for a, b in zip(ratio, ratio[1:]))
                                  or ratio[0] < 0 or ratio[-1] > 1):
            raise ValueError(f"{where}: key 'dup_score_ratio' must be {len(QUANTILE_LEVELS)} ascending quantiles "
                             f"in [0, 1]")
        if self.dup_parent_tilt is not None:
            edges, weights = self.dup_parent_tilt.get("edges", []), self.dup_parent_tilt.get("weights", [])
            if (len(edges) != len(weights) + 1 or not weights or min(weights) < 0
                    or any(b < a for a, b in zip(edges, edges[1:]))):
                raise ValueError(f"{where}: key 'dup_parent_tilt' needs ascending 'edges' and one non-negative "
                                 f"weight per bin")
        if self.dup_after is not None and (len(self.dup_after) != NUM_ACTIONS + 1
                                           or not all(0.0 <= p <= 1.0 for p in self.dup_after)):
            raise ValueError(f"{where}: key 'dup_after' must be 9 probabilities (index = class id)")
        per_class = self.jitter_hist_per_class
        if per_class is not None and set(per_class) != {str(c) for c in range(1, NUM_ACTIONS + 1)}:
            raise ValueError(f"{where}: key 'jitter_hist_per_class' needs one histogram per class id '1'..'8'")
        carry = self.carry_rate_per_min
        if carry is not None and (len(carry) != NUM_ACTIONS + 1 or min(carry) < 0):
            raise ValueError(f"{where}: key 'carry_rate_per_min' must be 9 non-negative rates (index = class id)")
        if not isinstance(self.dup_min_gap, int) or not 0 <= self.dup_min_gap <= self.dup_window:
            raise ValueError(f"{where}: key 'dup_min_gap' must be frames in 0..dup_window, got {self.dup_min_gap!r}")
        if not isinstance(self.spotter_nms, int) or self.spotter_nms < 0:
            raise ValueError(f"{where}: key 'spotter_nms' must be a window in frames >= 0, got {self.spotter_nms!r}")
        for name in ("random_burst_same_class", "random_burst_same_player", "dup_at_player_event"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{where}: key {name!r} must be a probability")
        if min(self.random_burst_gap_hist.get("offsets", [-1]) or [-1]) < 0:
            raise ValueError(f"{where}: key 'random_burst_gap_hist' needs non-negative 'offsets'")
        anchored = ("ghost_anchor_hist",) if self.ghost_anchor_hist is not None else ()
        anchored += ("twin_offset_hist",) if self.twin_offset_hist is not None else ()
        hists = {name: getattr(self, name) for name in ("jitter_hist", "ghost_offset_hist", "dup_offset_hist",
                                                        "random_burst_gap_hist", *anchored)}
        hists.update({f"jitter_hist_per_class[{c}]": h for c, h in (per_class or {}).items()})
        for name, hist in hists.items():
            if len(hist.get("offsets", [])) != len(hist.get("probs", [])) or not hist["offsets"]:
                raise ValueError(f"{where}: key {name!r} needs equal-length non-empty 'offsets' and 'probs'")
            if min(hist["probs"]) < 0 or abs(sum(hist["probs"]) - 1) > 1e-6:
                raise ValueError(f"{where}: key '{name}[probs]' must be probabilities (>= 0, summing to 1)")
        for kind in (*SCORE_KINDS, *(("carry",) if "carry" in self.score_quantiles else ())):
            table = self.score_quantiles.get(kind, {})
            if "all" not in table or any(len(q) != len(QUANTILE_LEVELS) for q in table.values()):
                raise ValueError(f"{where}: key 'score_quantiles[{kind}]' needs 'all' and 21 quantiles per entry")

    def save(self, path: str | Path) -> Path:
        with atomic_open(path) as handle:
            json.dump(self.to_json(), handle, indent=1)
            handle.write("\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "CorruptionParams":
        """Read parameters from ``path`` (default: the packaged TAAD fit)."""
        if path is None:
            text = resources.files("fpspot.data").joinpath(DEFAULT_PARAMS).read_text(encoding="utf-8")
            path = DEFAULT_PARAMS
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ValueError(f"corruption parameters {str(path)!r}: no such file") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"corruption parameters {str(path)!r}: not valid JSON ({err.msg})") from None
        return cls.from_json(obj, str(path))

    # ------------------------------------------------------------------------------------ summaries
    def summary(self) -> dict[str, float]:
        """Headline figures: outcome probabilities pooled with the fitting exposure, mean rates."""
        src = self.source
        return {
            "detected_frac": src.get("counts", {}).get("detected", 0) / max(src.get("num_gt", 1), 1),
            "ghost_rate_mean": src.get("counts", {}).get("ghost", 0) / max(src.get("num_gt", 1), 1),
            "random_per_min": src.get("counts", {}).get("random", 0) / max(src.get("free_minutes", 1), 1e-9),
            "dup_per_pred": src.get("counts", {}).get("duplicate", 0) / max(src.get("num_pred", 1), 1),
        }


# ================================================================================================ fitting


@dataclass
class HalfLabels:
    """Per-prediction labels of one half (from :func:`label_predictions`).

    ``kinds[i]``: one of :data:`PREDICTION_KINDS`; ``gt_index[i]``: the claimed / nearest ground-truth
    event (-1 when none); ``offset[i]``: ``pred frame - reference frame`` (ground-truth event, or parent
    prediction for duplicates); ``outcome[j]``: outcome of ground-truth event ``j`` (:data:`OUTCOMES`).
    """

    predictions: list
    kinds: list[str]
    gt_index: list[int]
    offset: list[int]
    outcome: list[str]


def _scored_order(predictions: Sequence, threshold: float) -> list[int]:
    """Indices of predictions the matcher scores, in its order (descending score, stable)."""
    kept = [i for i, p in enumerate(predictions) if p[4] >= threshold and 1 <= p[3] <= NUM_ACTIONS]
    return sorted(kept, key=lambda i: -predictions[i][4])


def label_predictions(gt_events: Sequence, predictions: Sequence, *, delta: int = 12, threshold: float = 0.15,
                      jitter_window: int = 50, ghost_window: int = 25, dup_window: int = 75,
                      carry: bool = False) -> HalfLabels:
    """Label each scored prediction of one half with its error kind (see the module docstring).

    The official matcher (:func:`fpspot.eval.metric.match_half`) decides the ``detected`` core; the
    looser rules only label what it leaves unmatched.
    """
    order = _scored_order(predictions, threshold)
    match = match_half(gt_events, predictions, delta, threshold)
    tp = {order[n] for n in np.flatnonzero(match.pred_tp)}
    gt_frames = np.asarray([e[0] for e in gt_events], dtype=np.int64)
    claimed = match.gt_matched.copy()
    kinds: dict[int, str] = {}
    gt_index: dict[int, int] = {}
    offset: dict[int, int] = {}

    # pair official TPs with their events: within a (team, shirt, class) group the matched events and the TP
    # predictions have the same count; pairing them in frame order gives the offsets.
    tp_by_group: dict[tuple, list[int]] = defaultdict(list)
    gt_by_group: dict[tuple, list[int]] = defaultdict(list)
    for i in tp:
        tp_by_group[tuple(predictions[i][1:4])].append(i)
    for j in np.flatnonzero(match.gt_matched):
        gt_by_group[tuple(gt_events[j][1:4])].append(int(j))
    for group, preds in tp_by_group.items():
        preds.sort(key=lambda i: predictions[i][0])
        events = sorted(gt_by_group[group], key=lambda j: gt_events[j][0])
        for i, j in zip(preds, events, strict=True):
            kinds[i], gt_index[i], offset[i] = "detected", j, int(predictions[i][0] - gt_events[j][0])
    outcome = ["detected" if m else "missed" for m in match.gt_matched]

    def nearest_unclaimed(frame: int, window: int, accept) -> int:
        near = np.flatnonzero((np.abs(gt_frames - frame) <= window) & ~claimed)
        near = [int(j) for j in near if accept(gt_events[j])]
        return min(near, key=lambda j: (abs(gt_frames[j] - frame), j)) if near else -1

    rules = (
        ("detected", jitter_window, lambda p, e: e[1] == p[1] and e[2] == p[2] and e[3] == p[3]),
        ("wrong_jersey", delta, lambda p, e: e[1] == p[1] and e[2] != p[2] and e[3] == p[3]),
        ("wrong_class", delta, lambda p, e: e[1] == p[1] and e[2] == p[2] and e[3] != p[3]),
        ("wrong_team", delta, lambda p, e: e[1] != p[1] and e[3] == p[3]),
    )
    seen_by_group: dict[tuple, list[int]] = defaultdict(list)  # higher-scored predictions per player/class
    possessions = player_possessions(gt_events) if carry else {}
    for i in order:
        p = predictions[i]
        group = tuple(p[1:4])
        if i not in kinds:
            for kind, window, accept in rules:
                j = nearest_unclaimed(p[0], window, lambda e: accept(p, e))
                if j >= 0:
                    claimed[j] = True
                    kinds[i], gt_index[i], offset[i] = kind, j, int(p[0] - gt_events[j][0])
                    outcome[j] = kind
                    break
        if i not in kinds:
            parents = [q for q in seen_by_group[group] if abs(predictions[q][0] - p[0]) <= dup_window]
            if parents:
                q = min(parents, key=lambda q: abs(predictions[q][0] - p[0]))
                kinds[i], gt_index[i], offset[i] = "duplicate", q, int(p[0] - predictions[q][0])
            elif carry and (j := possession_of(possessions, p)) >= 0:
                kinds[i], gt_index[i], offset[i] = "carry", j, int(p[0] - gt_frames[j])
            elif gt_frames.size and np.abs(gt_frames - p[0]).min() <= ghost_window:
                j = int(np.argmin(np.abs(gt_frames - p[0])))
                kinds[i], gt_index[i], offset[i] = "ghost", j, int(p[0] - gt_frames[j])
            else:
                kinds[i], gt_index[i], offset[i] = "random", -1, 0
        seen_by_group[group].append(i)
    return HalfLabels([predictions[i] for i in order], [kinds[i] for i in order], [gt_index[i] for i in order],
                      [offset[i] for i in order], outcome)


def player_possessions(gt_events: Sequence) -> dict[tuple[int, int], list[tuple[int, int, int]]]:
    """A half's possessions: for every two consecutive events (in frame order) by one player,
    ``(team, shirt) -> [(first frame, last frame, index of the first event), ...]`` sorted by frame; the frames
    strictly between them are that player's own time on the ball."""
    order = sorted(range(len(gt_events)), key=lambda j: int(gt_events[j][0]))
    out: dict[tuple[int, int], list[tuple[int, int, int]]] = defaultdict(list)
    for a, b in zip(order, order[1:]):
        ea, eb = gt_events[a], gt_events[b]
        if (ea[1], ea[2]) == (eb[1], eb[2]) and int(eb[0]) - int(ea[0]) > 1:
            out[(int(ea[1]), int(ea[2]))].append((int(ea[0]), int(eb[0]), a))
    return dict(out)


def possession_of(possessions: Mapping[tuple[int, int], list[tuple[int, int, int]]], prediction: Sequence) -> int:
    """Index of the first event of the possession of ``prediction``'s player that strictly contains its frame
    (-1 when none)."""
    for first, last, j in possessions.get((int(prediction[1]), int(prediction[2])), ()):
        if first < prediction[0] < last:
            return j
    return -1


def possession_frames(gt_events: Sequence) -> int:
    """Frames inside the half's possessions (:func:`player_possessions`), the exposure of carry false positives."""
    return sum(last - first - 1 for runs in player_possessions(gt_events).values() for first, last, _ in runs)


def _hist(values: Sequence[int], lo: int, hi: int, smooth: float = 0.0) -> dict[str, list]:
    offsets = list(range(lo, hi + 1))
    counts = np.zeros(len(offsets))
    for v in values:
        if lo <= v <= hi:
            counts[v - lo] += 1
    counts += smooth
    if counts.sum() == 0:
        counts[:] = 1
    return {"offsets": offsets, "probs": [float(x) for x in counts / counts.sum()]}


def per_class_hists(class_values: Mapping[int, Sequence[int]], pooled: Sequence[int], window: int,
                    pseudo_count: float) -> dict[str, dict[str, list]]:
    """One ``-window..window`` histogram per class id 1..8 (keys ``"1"``..``"8"``): the class's counts plus
    ``pseudo_count`` times the pooled histogram of ``pooled``, normalised (a class without values gets the
    pooled histogram)."""
    shared = np.asarray(_hist(pooled, -window, window)["probs"])
    out = {}
    for c in range(1, NUM_ACTIONS + 1):
        own = np.asarray(_hist(class_values.get(c, []), -window, window)["probs"]) * len(class_values.get(c, []))
        counts = own + pseudo_count * shared
        out[str(c)] = {"offsets": list(range(-window, window + 1)), "probs": [float(x) for x in counts / counts.sum()]}
    return out


def shrunk_fractions(counts: np.ndarray, pseudo_count: float) -> list[float]:
    """Per class the fraction ``counts[c, 0] / counts[c].sum()`` shrunk toward the pooled fraction over classes
    1..8 with ``pseudo_count`` observations; counts: ``(9, 2)``, row 0 unused. Returns 9 entries (entry 0: 0.5)."""
    counts = np.asarray(counts, dtype=np.float64)
    total = counts[1:].sum(axis=0)
    pooled = total[0] / total.sum() if total.sum() else 0.5
    return [0.5] + [float((counts[c, 0] + pseudo_count * pooled) / (counts[c].sum() + pseudo_count))
                    for c in range(1, NUM_ACTIONS + 1)]


def parent_score_tilt(parent_scores: Sequence[float], dup_parent_scores: Sequence[float],
                      bins: int = 5) -> dict | None:
    """Duplicate-rate factor per bin of the parent's score: ``{"edges": K + 1, "weights": K}``.

    parent_scores: scores of every prediction that can have duplicates (the non-duplicates); dup_parent_scores:
    the parent's score of every duplicate. Bins at the quantiles of ``parent_scores`` (first edge 0, last 1);
    weight ``k`` = (duplicates per parent in bin ``k``) / (duplicates per parent overall), so the weights average
    1 over the parents. ``None`` when ``bins`` is 0 or there are no duplicates."""
    parents, dups = np.asarray(parent_scores, dtype=np.float64), np.asarray(dup_parent_scores, dtype=np.float64)
    if bins <= 0 or not parents.size or not dups.size:
        return None
    edges = np.quantile(parents, np.linspace(0.0, 1.0, bins + 1))
    edges[0], edges[-1] = 0.0, 1.0
    edges = np.maximum.accumulate(edges)
    where_parent = np.clip(np.searchsorted(edges, parents, side="right") - 1, 0, bins - 1)
    where_dup = np.clip(np.searchsorted(edges, dups, side="right") - 1, 0, bins - 1)
    per_bin = np.bincount(where_dup, minlength=bins) / np.maximum(np.bincount(where_parent, minlength=bins), 1)
    overall = dups.size / parents.size
    return {"edges": [float(e) for e in edges], "weights": [float(w) for w in per_bin / overall]}


def _quantiles(values: Sequence[float]) -> list[float]:
    return [float(q) for q in np.quantile(np.asarray(values, dtype=np.float64), QUANTILE_LEVELS)]


def _free_mask(frames: np.ndarray, span: tuple[int, int], window: int) -> np.ndarray:
    """``(span length,)`` bool: frames of ``span`` farther than ``window`` from every event frame."""
    free = np.ones(span[1] - span[0] + 1, dtype=bool)
    for f in frames:
        free[max(f - window - span[0], 0):max(f + window + 1 - span[0], 0)] = False
    return free


def _free_minutes(gt_events: Sequence, window: int) -> float:
    """Minutes of the half's span (first to last event) farther than ``window`` frames from any event."""
    if not gt_events:
        return 0.0
    frames = np.asarray([e[0] for e in gt_events], dtype=np.int64)
    return float(_free_mask(frames, (int(frames.min()), int(frames.max())), window).sum()) / FPS / 60.0


def on_other_action(gt_events: Sequence, pred: Sequence, parent: Sequence, window: int = 12) -> bool:
    """Whether a duplicate ``pred`` lies within ``window`` frames of a ground-truth action of its player
    (team, shirt) other than the one its ``parent`` prediction is about (farther than ``window`` from it)."""
    return any(e[1] == pred[1] and e[2] == pred[2] and abs(e[0] - pred[0]) <= window
               and abs(e[0] - parent[0]) > window for e in gt_events)


def twin_group(kind: str) -> str | None:
    """The :data:`TWIN_PARENTS` group of a prediction kind (``None``: its predictions have no twins)."""
    return "detected" if kind in DETECTION_KINDS else "ghost" if kind == "ghost" else None


def twin_parents(predictions: Sequence, kinds: Sequence[str], window: int = 12) -> list[int]:
    """Per labelled prediction (:func:`label_predictions` order: descending score), the index of the prediction
    it is a *twin* of, else -1. A twin is a ghost with a higher-scored detection or ghost of the same player
    (team, shirt) and another class within ``window`` frames that is not a twin itself; its parent is the
    nearest such prediction (the higher-scored one on a tie)."""
    parents = [-1] * len(predictions)
    seen: dict[tuple[int, int], list[int]] = defaultdict(list)  # non-twin parents so far, per player
    for i, (p, kind) in enumerate(zip(predictions, kinds)):
        player = (int(p[1]), int(p[2]))
        if kind == "ghost":
            near = [j for j in seen[player] if predictions[j][3] != p[3] and abs(predictions[j][0] - p[0]) <= window]
            if near:
                parents[i] = min(near, key=lambda j: (abs(predictions[j][0] - p[0]), j))
                continue
        if twin_group(kind) is not None:
            seen[player].append(i)
    return parents


def random_bursts(randoms: Sequence[Sequence], window: int = 25, max_size: int = 8) -> dict:
    """Burst statistics of random false positives: per half, predictions ``(frame, team, shirt, class, ...)``
    sorted by frame are linked into one burst while consecutive ones are at most ``window`` frames apart.

    Returns the :class:`CorruptionParams` fields ``random_burst_size`` (probabilities of sizes 1..``max_size``,
    larger bursts counted as ``max_size``), ``random_burst_gap_hist`` (frames between consecutive members,
    0..``window``), ``random_burst_same_class`` and ``random_burst_same_player`` (the observed fractions of
    members that repeat the previous one's class / player; :func:`fit_corruption` then removes the part that
    independent draws would repeat by chance)."""
    sizes, gaps = [], []
    same_class = same_player = pairs = 0
    for half in randoms:
        half = sorted(half, key=lambda p: p[0])
        size = 0
        for n, p in enumerate(half):
            if n and p[0] - half[n - 1][0] <= window:
                prev = half[n - 1]
                gaps.append(int(p[0] - prev[0]))
                pairs += 1
                same_class += int(p[3] == prev[3])
                same_player += int((p[1], p[2]) == (prev[1], prev[2]))
                size += 1
            else:
                if size:
                    sizes.append(size)
                size = 1
        if size:
            sizes.append(size)
    counts = np.bincount(np.minimum(np.asarray(sizes, dtype=np.int64), max_size), minlength=max_size + 1)[1:]
    return {"random_burst_size": [float(x) for x in counts / max(counts.sum(), 1)] if counts.sum() else [1.0],
            "random_burst_gap_hist": _hist(gaps, 0, window) if gaps else {"offsets": [0], "probs": [1.0]},
            "random_burst_same_class": same_class / max(pairs, 1),
            "random_burst_same_player": same_player / max(pairs, 1),
            "random_burst_window": int(window)}


def fit_corruption(gt: PlayByPlay | Mapping | str, pred: PlayByPlay | Mapping | str, *, delta: int = 12,
                   threshold: float = 0.15, jitter_window: int = 50, ghost_window: int = 25, dup_window: int = 75,
                   shrinkage: float = 10.0, min_score_samples: int = 5, score_shrinkage: float = 10.0,
                   calibrate_iters: int = 2, calibrate_seeds: int = 4, spotter_nms: int | str = 0,
                   dup_tilt_bins: int = 0, per_class_offsets: float | None = None,
                   carry: bool = False, twins: bool = False) -> CorruptionParams:
    """Fit :class:`CorruptionParams` from predictions against the ground truth of the same halves.

    gt, pred: paths, loaded JSON objects or :class:`PlayByPlay`. Only halves present in both are used.
    The raw estimates are then refined by :func:`calibrate_corruption` (``calibrate_iters`` rounds).
    spotter_nms: the NMS window applied to the corrupted output (0: none; ``"auto"``: measured on ``pred``
    by :func:`nms_window_of`); it is in place during the calibration. dup_tilt_bins: parent-score bins of
    ``dup_parent_tilt`` (0: no tilt and no ``dup_score_ratio``: the older capped duplicate scores).
    per_class_offsets: pseudo-count (in predictions) with which each class's jitter histogram
    (``jitter_hist_per_class``) and duplicate direction (``dup_after``) are shrunk toward the pooled ones; it
    also sets ``dup_min_gap`` to the smallest duplicate-parent gap seen (``None``: neither key and no gap, every
    class uses ``jitter_hist``, duplicates fall on either side alike and as close as a jitter puts them).
    carry: label the false positives inside their own player's possession ``carry`` and fit
    ``carry_rate_per_min`` and their scores (else they are ghosts and randoms, as in the previous packaged
    fit).
    twins: treat the ghosts that sit next to a higher-scored detection or ghost of their player in another class
    (within ``delta`` frames, :func:`twin_parents`) as its twins and fit ``twin_rate`` (shrunk per class toward the
    group's pooled rate with ``shrinkage``), ``twin_confusion`` and ``twin_offset_hist``; the other ghost
    parameters then come from the other ghosts (else twins are ordinary ghosts, as in the packaged fit).
    """
    gt, pred = load_playbyplay(gt, "gt"), load_playbyplay(pred, "pred")
    keys = [k for k in gt.keys if k in set(pred.keys)]
    if not keys:
        raise ValueError("fit_corruption: ground truth and predictions share no half key")
    C = NUM_ACTIONS + 1
    outcome_counts = np.zeros((C, len(BUCKETS), len(OUTCOMES)))
    confusion = np.zeros((C, C))
    ghost_confusion = np.zeros((C, C))
    gt_per_class = np.zeros(C)
    ghost_per_class = np.zeros(C)
    random_per_class = np.zeros(C)
    carry_per_class = np.zeros(C)
    possession_minutes = 0.0
    dup_per_class = np.zeros(C)
    parent_per_class = np.zeros(C)
    jitters, dup_offsets, anchor_offsets, missed_ghost_offsets = [], [], [], []
    class_jitters: dict[int, list[int]] = defaultdict(list)  # by the ground-truth event's class
    dup_after = np.zeros((C, 2))  # per class: duplicates after / before their parent
    ghost_same_team = ghost_neighbour = 0
    score_kinds = (*SCORE_KINDS, "carry") if carry else SCORE_KINDS
    scores: dict[str, dict[int, list[float]]] = {k: defaultdict(list) for k in (*SCORE_KINDS, "carry")}
    counts: Counter = Counter()
    minutes = 0.0
    randoms: list[list] = []
    dup_at_event = 0
    parent_scores, dup_parent_scores = [], []  # every non-duplicate prediction; the parent of every duplicate
    dup_ratios: list[float] = []  # duplicate score / parent score
    twin_counts = {g: np.zeros(C) for g in TWIN_PARENTS}  # twins per parent group and parent class
    twin_exposure = {g: np.zeros(C) for g in TWIN_PARENTS}  # non-twin predictions per group and class
    twin_confusion = np.zeros((C, C))
    twin_offsets: list[int] = []
    for key in keys:
        events, preds = gt.events[key], pred.events[key]
        labels = label_predictions(events, preds, delta=delta, threshold=threshold, jitter_window=jitter_window,
                                   ghost_window=ghost_window, dup_window=dup_window, carry=carry)
        minutes += _free_minutes(events, ghost_window)
        possession_minutes += possession_frames(events) / FPS / 60.0
        randoms.append([p for p, kind in zip(labels.predictions, labels.kinds) if kind == "random"])
        detection_frame = {j: p[0] for p, kind, j in zip(labels.predictions, labels.kinds, labels.gt_index)
                           if kind in DETECTION_KINDS}
        parents = twin_parents(labels.predictions, labels.kinds, delta) if twins else [-1] * len(labels.kinds)
        for e, out in zip(events, labels.outcome):
            outcome_counts[e[3], BUCKETS.index(bucket_of(e)), OUTCOMES.index(out)] += 1
            gt_per_class[e[3]] += 1
        for n, (p, kind, j, off) in enumerate(zip(labels.predictions, labels.kinds, labels.gt_index, labels.offset)):
            counts[kind] += 1
            cls = p[3]
            if twins and twin_group(kind) is not None and parents[n] < 0:
                twin_exposure[twin_group(kind)][cls] += 1
            score_kind = "wrong" if kind.startswith("wrong") else kind
            scores[score_kind][cls].append(p[4])
            if kind == "duplicate":
                dup_per_class[cls] += 1
                dup_offsets.append(abs(off))
                parent = preds[j]  # a duplicate's reference is its parent prediction
                dup_at_event += int(on_other_action(events, p, parent, delta))
                dup_after[cls, int(off < 0)] += 1
                dup_parent_scores.append(float(parent[4]))
                dup_ratios.append(float(p[4]) / max(float(parent[4]), 1e-9))
                continue
            parent_per_class[cls] += 1
            parent_scores.append(float(p[4]))
            if kind in DETECTION_KINDS:
                jitters.append(off)
                class_jitters[events[j][3]].append(off)
                if kind == "wrong_class":
                    confusion[events[j][3], cls] += 1
            elif kind == "ghost" and parents[n] >= 0:
                parent = labels.predictions[parents[n]]
                twin_counts[twin_group(labels.kinds[parents[n]])][parent[3]] += 1
                twin_confusion[parent[3], cls] += 1
                twin_offsets.append(int(p[0] - parent[0]))
            elif kind == "ghost":
                e = events[j]
                ghost_per_class[e[3]] += 1
                ghost_confusion[e[3], cls] += 1
                if j in detection_frame:
                    anchor_offsets.append(int(p[0] - detection_frame[j]))
                else:
                    missed_ghost_offsets.append(off)
                ghost_same_team += int(p[1] == e[1])
                ghost_neighbour += int(any(abs(x[0] - p[0]) <= NEIGHBOUR_FRAMES and x[1] == p[1] and x[2] == p[2]
                                           for x in events))
            elif kind == "carry":
                carry_per_class[cls] += 1
            else:
                random_per_class[cls] += 1
    counts["num_gt"] = int(gt_per_class.sum())

    # outcome probabilities, shrunk cell -> class -> global
    global_p = outcome_counts.sum(axis=(0, 1)) / max(outcome_counts.sum(), 1)
    outcome: dict[str, dict[str, list[float]]] = {}
    for c in range(1, C):
        cls_counts = outcome_counts[c].sum(axis=0)
        cls_p = (cls_counts + shrinkage * global_p) / (cls_counts.sum() + shrinkage)
        outcome[str(c)] = {}
        for b, name in enumerate(BUCKETS):
            cell = outcome_counts[c, b]
            p = (cell + shrinkage * cls_p) / (cell.sum() + shrinkage)
            outcome[str(c)][name] = [float(x) for x in p / p.sum()]

    def rows(matrix: np.ndarray, diagonal: bool) -> list[list[float]]:
        out = [[0.0] * C]
        for c in range(1, C):
            row = matrix[c].copy()
            row[1:] += 0.5
            row[0] = 0.0
            if not diagonal:
                row[c] = 0.0
            out.append([float(x) for x in row / row.sum()])
        return out

    pooled = {k: [s for v in scores[k].values() for s in v] for k in score_kinds}
    score_quantiles: dict[str, dict[str, list[float]]] = {}
    for kind in score_kinds:
        all_scores = pooled[kind] or [s for v in pooled.values() for s in v] or [threshold]
        table = {"all": _quantiles(all_scores)}
        for c in range(1, C):
            n = len(scores[kind][c])
            if n >= min_score_samples:
                weight = n / (n + score_shrinkage)
                table[str(c)] = [weight * own + (1.0 - weight) * shared
                                 for own, shared in zip(_quantiles(scores[kind][c]), table["all"])]
        score_quantiles[kind] = table

    num_ghosts = max(int(ghost_per_class.sum()), 1)

    def twin_rates(group: str) -> list[float]:
        found, exposed = twin_counts[group], twin_exposure[group]
        pooled_rate = found.sum() / max(exposed.sum(), 1)
        return [0.0] + [float((found[c] + shrinkage * pooled_rate) / (exposed[c] + shrinkage)) for c in range(1, C)]

    params = CorruptionParams(
        outcome=outcome,
        jitter_hist=_hist(jitters, -jitter_window, jitter_window, smooth=0.0),
        class_confusion=rows(confusion, diagonal=False),
        ghost_rate=[0.0] + [float(ghost_per_class[c] / max(gt_per_class[c], 1)) for c in range(1, C)],
        ghost_offset_hist=_hist(missed_ghost_offsets, -ghost_window, ghost_window),
        ghost_anchor_hist=_hist(anchor_offsets, -jitter_window, jitter_window),
        dup_at_player_event=dup_at_event / max(dup_per_class.sum(), 1),
        ghost_confusion=rows(ghost_confusion, diagonal=True),
        ghost_same_team=ghost_same_team / num_ghosts,
        ghost_neighbour_player=ghost_neighbour / num_ghosts,
        random_rate_per_min=[0.0] + [float(random_per_class[c] / max(minutes, 1e-9)) for c in range(1, C)],
        dup_rate=[0.0] + [float(dup_per_class[c] / max(parent_per_class[c], 1)) for c in range(1, C)],
        dup_offset_hist=_hist(dup_offsets, 1, dup_window),
        dup_parent_tilt=parent_score_tilt(parent_scores, dup_parent_scores, dup_tilt_bins),
        dup_score_ratio=_quantiles(np.clip(dup_ratios, 0.0, 1.0)) if dup_tilt_bins > 0 and dup_ratios else None,
        jitter_hist_per_class=None if per_class_offsets is None else per_class_hists(
            class_jitters, jitters, jitter_window, per_class_offsets),
        dup_after=None if per_class_offsets is None else shrunk_fractions(dup_after, per_class_offsets),
        dup_min_gap=0 if per_class_offsets is None or not dup_offsets else int(min(dup_offsets)),
        carry_rate_per_min=[0.0] + [float(carry_per_class[c] / max(possession_minutes, 1e-9)) for c in range(1, C)]
        if carry else None,
        twin_rate={g: twin_rates(g) for g in TWIN_PARENTS} if twins else None,
        twin_confusion=rows(twin_confusion, diagonal=False) if twins else None,
        twin_offset_hist=_hist(twin_offsets, -delta, delta) if twins else None,
        score_quantiles=score_quantiles,
        match_window=delta,
        jitter_window=jitter_window,
        ghost_window=ghost_window,
        dup_window=dup_window,
        **random_bursts(randoms, ghost_window),
        source={"gt": gt.source, "pred": pred.source, "keys": keys, "num_gt": counts["num_gt"],
                "num_pred": int(sum(counts[k] for k in PREDICTION_KINDS)), "free_minutes": minutes,
                **({"possession_minutes": possession_minutes} if carry else {}),
                "counts": {k: int(counts[k]) for k in PREDICTION_KINDS if carry or k != "carry"},
                "delta": delta, "threshold": threshold,
                "shrinkage": shrinkage, "min_score_samples": min_score_samples,
                "score_shrinkage": score_shrinkage, "per_class_offsets": per_class_offsets,
                "per_class": {"outcome": outcome_counts.sum(axis=1).astype(int).tolist(),
                              "ghost": ghost_per_class.astype(int).tolist(),
                              "random": random_per_class.astype(int).tolist(),
                              **({"carry": carry_per_class.astype(int).tolist()} if carry else {}),
                              **({f"twin_{g}": twin_counts[g].astype(int).tolist() for g in TWIN_PARENTS}
                                 if twins else {}),
                              "duplicate": dup_per_class.astype(int).tolist()}},
    )
    # the generator keeps the player (a), keeps the class (b) or draws both afresh (1 - a - b), and a fresh draw
    # repeats the class by chance with probability cc = sum(p^2) and then changes the player, else repeats the
    # player with probability cp: observed same player = a + (1 - a - b)(1 - cc) cp, same class = b + (1 - a - b) cc
    class_probs = np.asarray(params.random_rate_per_min[1:]) / max(sum(params.random_rate_per_min), 1e-12)
    cc = float(np.sum(class_probs ** 2))
    cp = float(np.mean([sum(0.5 * np.sum(w ** 2) for _, w in _players(gt.events[k]).values()) for k in keys]))
    observed = {"random_burst_same_player": params.random_burst_same_player,
                "random_burst_same_class": params.random_burst_same_class}
    k1, k2 = (1.0 - cc) * cp, cc
    a, b = observed["random_burst_same_player"], observed["random_burst_same_class"]
    if 1.0 - k1 - k2 > 1e-6:  # not a single class and player (then every repeat is by chance)
        a, b = np.linalg.solve([[1.0 - k1, -k1], [-k2, 1.0 - k2]], [a - k1, b - k2])
    a, b = max(float(a), 0.0), max(float(b), 0.0)
    if a + b > 1.0:
        a, b = a / (a + b), b / (a + b)
    params.random_burst_same_player, params.random_burst_same_class = a, b
    params.source["random_bursts_observed"] = observed
    params.source["dup_at_player_event_observed"] = params.dup_at_player_event
    if spotter_nms == "auto":
        spotter_nms = nms_window_of(pred.subset(keys), dup_window)
    if isinstance(spotter_nms, str) or int(spotter_nms) < 0:
        raise ValueError(f"fit_corruption: spotter_nms must be 'auto' or a window >= 0, got {spotter_nms!r}")
    params.spotter_nms = int(spotter_nms)
    if calibrate_iters:
        params = calibrate_corruption(params, gt.subset(keys), iters=calibrate_iters, seeds=calibrate_seeds)
    return params


def calibrate_corruption(params: CorruptionParams, gt: PlayByPlay, *, iters: int = 2,
                         seeds: int = 4) -> CorruptionParams:
    """Rescale the rates so that corrupting ``gt`` and labelling the result gives the fitted label counts.

    Labelling is ambiguous (a ghost that lands on a missed event's player and class is labelled
    ``detected``), so the raw outcome probabilities over-produce the labelled detections (recall comes out
    ~0.03 too high). Each iteration corrupts ``gt`` with ``seeds`` seeds, labels the output with
    :func:`fit_corruption` (uncalibrated) and multiplies, per class, the four non-missed outcome
    probabilities by ``target count / simulated count`` (the rest goes to ``missed``), and the two burst
    repeat probabilities by ``target fraction / simulated fraction`` (a burst member that repeats an earlier,
    not only the previous, member's player and class is labelled a duplicate, so the raw values under-produce
    repeats). The false-positive rates are left as fitted: the number of predictions per class already comes
    out right.
    """
    target = params.source["per_class"]
    target_repeats = params.source.get("random_bursts_observed", {})
    for it in range(iters):
        fits = [fit_corruption(gt, corrupt_playbyplay(gt, params, seed=10_000 * (it + 1) + s),
                               calibrate_iters=0, delta=params.match_window, threshold=params.source["threshold"],
                               jitter_window=params.jitter_window, ghost_window=params.ghost_window,
                               dup_window=params.dup_window,
                               carry=params.carry_rate_per_min is not None,
                               twins=params.twin_rate is not None).source for s in range(seeds)]
        sims = [fit["per_class"] for fit in fits]
        mean = {name: np.mean([np.asarray(sim[name], dtype=np.float64) for sim in sims], axis=0) for name in target}
        tgt = {name: np.asarray(target[name], dtype=np.float64) for name in target}

        def ratio(t, m):
            return float(t / m) if t > 0 and m > 0 else 1.0

        params = copy.deepcopy(params)
        for c in range(1, NUM_ACTIONS + 1):
            r = [ratio(tgt["outcome"][c][o], mean["outcome"][c][o]) for o in range(len(OUTCOMES) - 1)]
            for b in BUCKETS:
                probs = np.asarray(params.outcome[str(c)][b][:-1]) * r
                if probs.sum() > 0.999:
                    probs *= 0.999 / probs.sum()
                params.outcome[str(c)][b] = [float(x) for x in probs] + [float(1.0 - probs.sum())]
        if params.carry_rate_per_min is not None:  # generated carries turn into duplicates, ghosts into carries
            carry_rates = params.carry_rate_per_min
            params.carry_rate_per_min = [0.0] + [carry_rates[c] * ratio(tgt["carry"][c], mean["carry"][c])
                                                 for c in range(1, NUM_ACTIONS + 1)]
            params.dup_rate = [0.0] + [params.dup_rate[c] * ratio(tgt["duplicate"][c], mean["duplicate"][c])
                                       for c in range(1, NUM_ACTIONS + 1)]
        if params.twin_rate is not None:  # twins landing on another event of their class are labelled otherwise
            params.twin_rate = {g: [rate * ratio(tgt[f"twin_{g}"].sum(), mean[f"twin_{g}"].sum()) for rate in rates]
                                for g, rates in params.twin_rate.items()}
        if "dup_at_player_event_observed" in params.source:
            simulated = float(np.mean([fit["dup_at_player_event_observed"] for fit in fits]))
            params.dup_at_player_event = float(np.clip(
                params.dup_at_player_event * ratio(params.source["dup_at_player_event_observed"], simulated), 0.0, 1.0))
        if len(params.random_burst_size) > 1:
            for name, value in target_repeats.items():
                simulated = float(np.mean([fit["random_bursts_observed"][name] for fit in fits]))
                setattr(params, name, float(np.clip(getattr(params, name) * ratio(value, simulated), 0.0, 1.0)))
            total = params.random_burst_same_player + params.random_burst_same_class
            if total > 1.0:
                params.random_burst_same_player /= total
                params.random_burst_same_class /= total
    params.source = {**params.source, "calibration": {"iters": iters, "seeds": seeds}}
    return params


# ============================================================================================== sampling


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


def _players(gt_events: Sequence) -> dict[int, tuple[np.ndarray, np.ndarray]]:
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
        active = _players(gt_events)
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
        free = np.flatnonzero(_free_mask(frames, span, params.ghost_window)) + span[0]
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


def same_group_gaps(events: Sequence) -> np.ndarray:
    """Frame gaps between consecutive predictions of one ``(team, jersey, class)`` in a half, ``(n,)`` int64."""
    frames = GroupIndex(events).frames.values()
    return np.concatenate([np.diff(np.asarray(f, dtype=np.int64)) for f in frames] or [np.zeros(0, np.int64)])


def nms_window_of(pred: PlayByPlay, limit: int = 75) -> int:
    """The largest window (<= ``limit``) with no two predictions of one ``(team, jersey, class)`` that close in
    ``pred``: the smallest same-group gap minus 1 (TAAD's 25-frame NMS, spec §2.5: 25). 0 if some are 0 or 1
    frame apart."""
    gaps = np.concatenate([same_group_gaps(pred.events[k]) for k in pred.keys] or [np.zeros(0, np.int64)])
    return max(0, min(limit, int(gaps.min(initial=limit + 1)) - 1))


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


__all__ = [
    "BUCKETS", "DETECTION_KINDS", "OUTCOMES", "PREDICTION_KINDS", "SCORE_KINDS", "CorruptionParams", "HalfLabels",
    "SamplerTables",
    "bucket_of", "corrupt_half", "corrupt_playbyplay", "draw_index", "fit_corruption", "half_seed",
    "label_predictions", "nms_window_of", "on_other_action", "random_bursts", "same_group_gaps", "scaled_outcome",
    "strength_scales", "TWIN_PARENTS", "twin_group", "twin_parents",
]
