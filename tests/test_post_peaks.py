"""Logits to events: the vectorised NMS equals a direct statement of the spec's loop (§2.5); alternatives."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fpspot.post.peaks import (
    greedy_nms_1d,
    logits_to_events,
    logits_to_events_reference,
    smoothed_peak_events,
    soft_nms_events,
    top_class_scores,
)


def _same(a, b):
    assert len(a) == len(b)
    for p, q in zip(a, b):
        assert p[:4] == q[:4]
        assert p.score == pytest.approx(q.score, rel=1e-12, abs=1e-15)


def _jerseys(rng, num_frames):
    return rng.integers(1, 40, size=(26, num_frames))


@pytest.mark.parametrize("seed,scale,num_frames", [(0, 0.5, 300), (1, 2.0, 500), (2, 4.0, 257), (3, 1.0, 1200)])
def test_nms_equals_spec_loop_on_random_logits(seed, scale, num_frames):
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(9, 26, num_frames)) * scale
    jerseys = _jerseys(rng, num_frames)
    fast = logits_to_events(logits, jerseys, start_frame=100)
    _same(fast, logits_to_events_reference(logits, jerseys, start_frame=100))
    assert fast and all(p.frame >= 100 for p in fast)


def test_candidates_in_chunks_equal_one_pass(monkeypatch):
    """The softmax over candidate cells runs in bounded chunks: chunk boundaries change nothing."""
    import fpspot.post.peaks as peaks

    rng = np.random.default_rng(11)
    logits = rng.normal(size=(9, 26, 700)) * 2.0  # most cells are candidates
    jerseys = _jerseys(rng, 700)
    one_pass = logits_to_events(logits, jerseys)
    monkeypatch.setattr(peaks, "_CHUNK", 1000)
    assert (26 * 700) // 1000 > 5  # several chunks, the last one partial
    _same(logits_to_events(logits, jerseys), one_pass)
    _same(one_pass, logits_to_events_reference(logits, jerseys))


@pytest.mark.parametrize("window", [0, 3, 25, 60])
def test_nms_equals_spec_loop_with_ties_and_windows(window):
    rng = np.random.default_rng(7)
    logits = np.round(rng.normal(size=(9, 26, 400)), 0)  # coarse values: many equal scores in a window
    jerseys = _jerseys(rng, 400)
    _same(logits_to_events(logits, jerseys, window=window),
          logits_to_events_reference(logits, jerseys, window=window))


def test_nms_realistic_sparse_logits_and_torch_input():
    rng = np.random.default_rng(3)
    logits = rng.normal(size=(9, 26, 3000)).astype(np.float32)
    logits[0] += 5
    for slot, cls, t in zip(rng.integers(0, 26, 80), rng.integers(1, 9, 80), rng.integers(20, 2980, 80)):
        logits[cls, slot, t - 10:t + 10] += 8 * np.exp(-0.5 * (np.arange(-10, 10) / 3.0) ** 2)
    jerseys = _jerseys(rng, 3000)
    ref = logits_to_events_reference(logits, jerseys)
    _same(logits_to_events(logits, jerseys), ref)
    _same(logits_to_events(torch.from_numpy(logits), torch.from_numpy(jerseys)), ref)
    _same(logits_to_events(torch.from_numpy(logits).half().float(), jerseys),
          logits_to_events_reference(torch.from_numpy(logits).half().float(), jerseys))


def test_greedy_nms_1d_matches_brute_force():
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(1, 200))
        row, time = rng.integers(0, 4, n), rng.integers(0, 150, n)
        score = np.round(rng.random(n), 2)
        keep = greedy_nms_1d(row, time, score, 10)
        expected = np.zeros(n, dtype=bool)
        for r in np.unique(row):
            idx = [i for i in sorted(np.flatnonzero(row == r), key=lambda i: (-score[i], time[i]))]
            alive = list(idx)
            while alive:
                i0 = alive[0]
                expected[i0] = True
                alive = [i for i in alive[1:] if abs(time[i] - time[i0]) > 10]
        # equal (row, time, score) duplicates are interchangeable: compare the kept (row, time, score) sets
        assert sorted(zip(row[keep], time[keep], score[keep])) == sorted(zip(row[expected], time[expected],
                                                                             score[expected]))


def test_event_fields_scores_and_jerseys():
    logits = np.zeros((9, 26, 100))
    logits[0] = 3.0
    logits[5, 14, 40] = 10.0  # shot, slot 14 = team 1 role 2
    jerseys = np.full((26, 100), 7)
    jerseys[14, 40:] = 23  # a substitution before the event
    (event,) = logits_to_events(logits, jerseys, start_frame=1000)
    expected_score = np.exp(10.0) / (np.exp(10.0) + np.exp(3.0) + 7 * np.exp(0.0))
    assert event[:4] == (1040, 1, 23, 5)
    assert event.score == pytest.approx(expected_score, rel=1e-12)
    cls, score = top_class_scores(logits)
    assert cls[14, 40] == 5 and cls.sum() == 5 and score[14, 40] == pytest.approx(expected_score)


def test_inputs_not_modified_and_bad_shapes():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(9, 26, 50))
    jerseys = _jerseys(rng, 50)
    before, jbefore = logits.copy(), jerseys.copy()
    for method in ("nms", "soft_nms", "peaks"):
        logits_to_events(logits, jerseys, method=method)
    np.testing.assert_array_equal(logits, before)
    np.testing.assert_array_equal(jerseys, jbefore)
    with pytest.raises(ValueError, match=r"\(9, 26, T\)"):
        logits_to_events(np.zeros((8, 26, 10)), np.zeros((26, 10)))
    with pytest.raises(ValueError, match="jerseys"):
        logits_to_events(np.zeros((9, 26, 10)), np.zeros((26, 11)))
    with pytest.raises(ValueError, match="method"):
        logits_to_events(logits, jerseys, method="bogus")


def _double_peak_logits():
    """One slot: a pass peak at frame 100 and a weaker, real second pass at frame 118 (inside window 25)."""
    t = np.arange(300)
    logits = np.zeros((9, 26, 300))
    logits[0] = 4.0
    logits[2, 3] = 9.0 * np.exp(-0.5 * ((t - 100) / 3.0) ** 2) + 7.0 * np.exp(-0.5 * ((t - 118) / 3.0) ** 2)
    return logits, np.full((26, 300), 9)


def test_soft_nms_keeps_a_close_second_action_that_hard_nms_drops():
    logits, jerseys = _double_peak_logits()
    hard = logits_to_events(logits, jerseys)
    soft = logits_to_events(logits, jerseys, method="soft_nms", sigma=8.0, min_score=0.3)
    assert [e.frame for e in hard] == [100]
    assert sorted(e.frame for e in soft) == [100, 118]
    assert all(e.cls == 2 and e.shirt == 9 for e in soft)


def test_smoothed_peaks_ignore_single_frame_spikes():
    rng = np.random.default_rng(5)
    t = np.arange(400)
    logits = np.zeros((9, 26, 400))
    logits[0] = 4.0
    logits[1, 0] = 7.5 * np.exp(-0.5 * ((t - 200) / 4.0) ** 2)  # the real drive, broad
    logits[1, 0, 180] = 9.0  # a one-frame spike 20 frames earlier with a higher peak
    jerseys = np.full((26, 400), 4)
    hard = logits_to_events(logits, jerseys)
    assert hard[0].frame == 180  # NMS keeps the spike and suppresses the true peak
    peaks = smoothed_peak_events(logits, jerseys, sigma=3.0, min_score=0.2)
    assert [e.frame for e in peaks] == [200]
    soft = soft_nms_events(logits + rng.normal(0, 1e-3, size=logits.shape), jerseys, min_score=0.5)
    # soft-NMS decays instead of removing: the spike first, the true peak kept below it, nothing in between
    assert [(e.frame, e.cls, e.shirt) for e in soft] == [(180, 1, 4), (200, 1, 4)]
    assert soft[0].score > soft[1].score > 0.5
