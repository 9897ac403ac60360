"""Property tests of the matcher (hypothesis) on realistic event lists."""

from __future__ import annotations

import random

import numpy as np
import pytest

from hypothesis import given, settings
from hypothesis import strategies as st

from fpspot.data.footpass import PlayByPlay
from fpspot.eval import evaluate
from fpspot.schema import GTEvent, Prediction

KEY = "game_1_H1"


@st.composite
def ground_truth(draw) -> PlayByPlay:
    """A half of 1..60 events, sorted by frame, a few players per team, spacing like the real data."""
    n = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.integers(1, 120), min_size=n, max_size=n))
    frames, t = [], draw(st.integers(0, 500))
    for g in gaps:
        t += g
        frames.append(t)
    events = [GTEvent(f, draw(st.integers(0, 1)), draw(st.integers(1, 6)), draw(st.integers(1, 8)),
                      draw(st.integers(0, 1)), draw(st.integers(0, 1))) for f in frames]
    return PlayByPlay("gt", [KEY], {KEY: events})


def _preds(events, shift=0, scores=None) -> PlayByPlay:
    scores = scores or [0.9] * len(events)
    return PlayByPlay("pred", [KEY], {KEY: [Prediction(e.frame + shift, e.team, e.shirt, e.cls, s)
                                            for e, s in zip(events, scores)]})


@settings(max_examples=60, deadline=None)
@given(ground_truth())
def test_perfect_predictions_score_one(gt):
    report = evaluate(_preds(gt.events[KEY]), gt)
    assert report.micro_f1 == 1.0
    assert report.overall.fp == 0 and report.overall.fn == 0


@settings(max_examples=60, deadline=None)
@given(ground_truth(), st.sampled_from([-1, 1]), st.integers(12, 30))
def test_shift_beyond_delta_gives_no_tp(gt, sign, delta):
    # Shifting every prediction by delta + 1 can still land a prediction within delta of *another* event
    # of the same (team, shirt, class); keep the spacing of each group above 2 * delta + 1 to rule that out.
    kept, last = [], {}
    for e in gt.events[KEY]:
        g = (e.team, e.shirt, e.cls)
        if g not in last or e.frame - last[g] > 2 * delta + 1:
            kept.append(e)
            last[g] = e.frame
    gt = PlayByPlay("gt", [KEY], {KEY: kept})
    report = evaluate(_preds(kept, shift=sign * (delta + 1)), gt, delta=delta)
    assert report.overall.tp == 0
    assert evaluate(_preds(kept, shift=sign * delta), gt, delta=delta).overall.tp == len(kept)


@settings(max_examples=60, deadline=None)
@given(ground_truth(), st.integers(0, 10_000), st.lists(st.integers(-20, 20), min_size=60, max_size=60))
def test_reordering_distinct_scores_changes_nothing(gt, seed, jitter):
    events = gt.events[KEY]
    scores = random.Random(seed).sample(range(1, 10_000), len(events))
    preds = [Prediction(e.frame + j, e.team, e.shirt, e.cls, s / 10_000) for e, s, j in zip(events, scores, jitter)]
    shuffled = preds[:]
    random.Random(seed + 1).shuffle(shuffled)
    a = evaluate(PlayByPlay("pred", [KEY], {KEY: preds}), gt)
    b = evaluate(PlayByPlay("pred", [KEY], {KEY: shuffled}), gt)
    assert a.to_json()["per_class"] == b.to_json()["per_class"]


@settings(max_examples=60, deadline=None)
@given(ground_truth(), st.lists(st.tuples(st.integers(0, 8000), st.integers(0, 1), st.integers(1, 6),
                                          st.integers(1, 8), st.floats(0, 0.1499)), max_size=40))
def test_predictions_below_threshold_change_nothing(gt, extra):
    base = _preds(gt.events[KEY], shift=3)
    more = PlayByPlay("pred", [KEY], {KEY: base.events[KEY] + [Prediction(*e) for e in extra]})
    assert evaluate(base, gt).to_json()["per_class"] == evaluate(more, gt).to_json()["per_class"]


def test_ap11_by_hand():
    """11-point interpolated AP worked by hand: scores 0.9 / 0.8 / 0.7 / 0.6 with hits 1 0 1 1 and 4 ground-truth
    events have precision 1, 1/2, 2/3, 3/4 at recall 1/4, 1/4, 1/2, 3/4, so the interpolated precision is 1 at
    r = 0, 0.1, 0.2, 3/4 at r = 0.3 .. 0.7 and 0 above 3/4: (3 + 5 x 0.75) / 11. Without the interpolation (the
    precision at the first rank reaching r instead of the best one beyond it) it would be (3 + 0.667 x 3 + 0.75 x
    2) / 11."""
    from fpspot.eval.metric import ap11

    scores, hits = np.array([0.6, 0.9, 0.7, 0.8]), np.array([1, 1, 1, 0])  # ranked by score, not by position
    assert ap11(scores, hits, 4) == pytest.approx(6.75 / 11)
    assert ap11(scores, np.ones(4), 4) == pytest.approx(1.0)  # every ground-truth event found first
    assert ap11(scores, np.ones(4), 8) == pytest.approx(6 / 11)  # half recalled: r = 0 .. 0.5 at precision 1
    assert ap11(scores, np.zeros(4), 4) == 0.0 and ap11(scores, hits, 0) == 0.0


def test_per_class_ap_and_map_from_the_matcher():
    """A class's AP comes from its own predictions ranked by score (hits from the matcher), and mAP is the mean
    over the 8 classes (classes without predictions count 0)."""
    gt_events = [GTEvent(100 * (i + 1), 0, 7, 2, 1, 0) for i in range(4)]  # four passes of player 7
    scored = [(100, 0.6), (200, 0.9), (300, 0.7), (370, 0.8)]  # 370: no event within 12 frames, a false positive
    preds = [Prediction(f, 0, 7, 2, s) for f, s in scored]
    gt = PlayByPlay("gt", [KEY], {KEY: gt_events})
    report = evaluate(PlayByPlay("pred", [KEY], {KEY: preds}), gt)
    assert report.per_class["pass"].tp == 3 and report.per_class["pass"].fp == 1
    assert report.per_class["pass"].ap == pytest.approx(6.75 / 11)  # the hand-worked case of test_ap11_by_hand
    assert report.mean_ap == pytest.approx(6.75 / 11 / 8)
    assert report.to_json()["map"] == pytest.approx(report.mean_ap)
