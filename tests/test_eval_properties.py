"""Property tests of the matcher (hypothesis) on realistic event lists."""

from __future__ import annotations

import random

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
