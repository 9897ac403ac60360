"""Window plans and overlap averaging of the inference engine."""

from __future__ import annotations

import numpy as np
import pytest

from fpspot.infer.windows import LogitAccumulator, backbone_frames, plan_long, plan_overlap


@pytest.mark.parametrize("first, last", [(0, 0), (3, 60), (10, 1009), (100, 75_099)])
def test_plans_cover_every_frame(first, last):
    for plan in (plan_overlap(first, last), plan_long(first, last)):
        cover = np.zeros(last + 1 - first, dtype=int)
        for w in plan:
            assert w.start <= w.keep_lo < w.keep_hi <= w.stop and w.start >= first
            cover[w.keep_lo - first:w.keep_hi - first] += 1
        assert cover.min() >= 1
    long = plan_long(first, last)
    assert all(b.keep_lo == a.keep_hi for a, b in zip(long, long[1:]))  # a partition
    for w in long:  # every kept frame has the margin of context that exists in the half
        assert w.keep_lo - w.start >= min(25, w.keep_lo - first)
        assert w.stop - w.keep_hi >= 25 or w.keep_hi == last + 1


def test_long_mode_needs_fewer_backbone_frames():
    first, last = 0, 75_000
    base = backbone_frames(plan_overlap(first, last), first, last)
    long = backbone_frames(plan_long(first, last), first, last)
    assert base == pytest.approx(2.0, abs=0.01)
    assert long == pytest.approx(1.2, abs=0.01)
    assert base / long >= 1.6


def test_overlap_average_equals_baseline_two_pass_scheme():
    """Spec §2.4: pass A (non-overlapping windows from minf) and pass B (from minf + 25), averaged."""
    rng = np.random.default_rng(0)
    minf, maxf = 7, 7 + 50 * 6 + 13
    frame_logits = rng.normal(size=(9, 26, maxf + 60)).astype(np.float32)

    def model_logits(start):  # a "model" whose logits depend on the window (so overlaps differ)
        return frame_logits[..., start:start + 50] + (start % 7)

    acc = LogitAccumulator(9, 26, minf, maxf)
    for w in plan_overlap(minf, maxf):
        acc.add(w, model_logits(w.start))
    ours = acc.result()

    pass_a = np.concatenate([model_logits(s) for s in range(minf, maxf + 1, 50)], axis=-1)
    pass_b = np.concatenate([model_logits(s) for s in range(minf + 25, maxf + 1, 50)], axis=-1)
    ref = np.zeros((9, 26, maxf + 1), dtype=np.float64)
    ref[..., minf:maxf + 1] = pass_a[..., :maxf + 1 - minf]
    end_b = min(minf + 25 + pass_b.shape[-1], maxf + 1)
    ref[..., minf + 25:end_b] = (pass_b[..., :end_b - minf - 25] + ref[..., minf + 25:end_b]) / 2
    np.testing.assert_allclose(ours[..., minf:], ref[..., minf:], rtol=1e-6, atol=1e-6)
    assert (ours[..., :minf] == 0).all()
