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

Fitted values (TAAD, games 18 and 24)
-------------------------------------
Regenerate with ``python recipes/fit_corruption.py --out fpspot/data/corruption_taad.json`` (without ``--out`` the
fit goes to ``runs/fit_corruption/corruption.json``).
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

Modules
-------
:mod:`~fpspot.data.corrupt.params` (the parameters and the names of outcomes, kinds and buckets),
:mod:`~fpspot.data.corrupt.labels` (how predictions relate to the ground truth: error kinds, possessions, twins),
:mod:`~fpspot.data.corrupt.fit` (fitting and calibration), :mod:`~fpspot.data.corrupt.generate` (drawing
corrupted predictions), :mod:`~fpspot.data.corrupt.structure` (how false positives are laid out, to compare a real
file with corrupted ground truth). Everything public is importable from this package.
"""

from fpspot.data.corrupt.fit import (
    calibrate_corruption, fit_corruption, parent_score_tilt, per_class_hists, random_bursts, shrunk_fractions,
)
from fpspot.data.corrupt.generate import (
    SamplerTables, corrupt_half, corrupt_playbyplay, draw_index, half_seed, scaled_outcome, strength_scales,
)
from fpspot.data.corrupt.labels import (
    HalfLabels, label_predictions, nms_window_of, on_other_action, player_possessions, possession_of,
    same_group_gaps, twin_group, twin_parents,
)
from fpspot.data.corrupt.params import (
    BUCKETS, DETECTION_KINDS, OUTCOMES, PREDICTION_KINDS, SCORE_KINDS, TWIN_PARENTS, CorruptionParams, bucket_of,
)
from fpspot.data.corrupt.structure import false_positive_layout

__all__ = [
    "BUCKETS", "DETECTION_KINDS", "OUTCOMES", "PREDICTION_KINDS", "SCORE_KINDS", "TWIN_PARENTS", "CorruptionParams",
    "HalfLabels", "SamplerTables",
    "bucket_of", "calibrate_corruption", "corrupt_half", "corrupt_playbyplay", "draw_index", "false_positive_layout",
    "fit_corruption", "half_seed", "label_predictions", "nms_window_of", "on_other_action", "parent_score_tilt",
    "per_class_hists", "player_possessions", "possession_of", "random_bursts", "same_group_gaps", "scaled_outcome",
    "shrunk_fractions", "strength_scales", "twin_group", "twin_parents",
]
