"""Temporal refinement: constant offsets, and moving events to the peak of their class score.

* :func:`shift` adds a constant number of frames to every event (the released TAAD+DST events are one
  frame late, spec §4.5: ``shift(dst, -1)``); :func:`measure_offset` measures that constant on a
  calibration set as the median signed ``pred - gt`` frame difference of matched events.
* :func:`refine_with_logits` moves each event to the maximum of its class probability for its slot within
  ``+-radius`` frames, with a parabolic sub-frame fit of the peak (plus an optional fractional offset) and
  rounding.
* Fusing the frames of events several models agree on is part of :func:`fpspot.post.ensemble.fuse_events`.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from fpspot.data.footpass import PlayByPlay
from fpspot.post.events import map_halves
from fpspot.post.jersey import slot_of_event
from fpspot.post.peaks import as_numpy_logits, class_probability_segment
from fpspot.schema import Prediction


def shift_events(events: list[Prediction], frames: int) -> list[Prediction]:
    """Every event moved by ``frames`` (clamped at frame 0)."""
    return [e._replace(frame=max(0, e.frame + int(frames))) for e in map(Prediction._make, events)]


def shift(pbp: PlayByPlay, frames: int) -> PlayByPlay:
    """:func:`shift_events` on every half."""
    return map_halves(lambda _key, events: shift_events(events, frames), pbp)


def signed_offsets(ground_truth: PlayByPlay, predictions: PlayByPlay, delta: int = 12,
                   threshold: float = 0.15) -> np.ndarray:
    """``pred - gt`` frame differences of predictions with a same-(team, shirt, class) ground-truth event
    within ``delta`` (the nearest one), over the halves of the ground truth."""
    out = []
    for key in ground_truth.keys:
        groups: dict[tuple, list[int]] = defaultdict(list)
        for e in ground_truth.events[key]:
            groups[(e[1], e[2], e[3])].append(e[0])
        for p in predictions.events.get(key, []):
            if p[4] < threshold:
                continue
            diffs = [p[0] - f for f in groups.get((p[1], p[2], p[3]), ()) if abs(p[0] - f) <= delta]
            if diffs:
                out.append(min(diffs, key=abs))
    return np.asarray(out, dtype=np.int64)


def measure_offset(ground_truth: PlayByPlay, predictions: PlayByPlay, delta: int = 12) -> int:
    """The frame correction to add to ``predictions``: minus the median signed offset, rounded (0 if
    nothing matches)."""
    diffs = signed_offsets(ground_truth, predictions, delta)
    return int(-np.round(np.median(diffs))) if diffs.size else 0


def _parabolic_peak(y_left: float, y_mid: float, y_right: float) -> float:
    """Sub-sample position (in ``[-0.5, 0.5]``) of the vertex of the parabola through three samples."""
    denom = y_left - 2.0 * y_mid + y_right
    if denom >= 0:  # not a strict maximum: no correction
        return 0.0
    return float(np.clip(0.5 * (y_left - y_right) / denom, -0.5, 0.5))


def refine_events_with_logits(events: list[Prediction], logits, jerseys, start_frame: int = 0, radius: int = 3,
                              offset: float = 0.0) -> list[Prediction]:
    """Move each event to the peak of its class probability for its slot within ``+-radius`` frames.

    logits: ``(9, 26, T)`` raw logits whose frame ``i`` is video frame ``start_frame + i``; jerseys:
    ``(26, T)`` slot -> shirt table on the same frames. The peak gets a parabolic sub-frame correction,
    ``offset`` (frames, may be fractional) is added, and the result is rounded. Events whose player has no
    slot at that frame, or that lie outside the logits, are returned unchanged.
    """
    x = as_numpy_logits(logits)
    jerseys = np.asarray(jerseys)
    num_frames = x.shape[-1]
    out = []
    for e in map(Prediction._make, events):
        t = e.frame - start_frame
        slot = slot_of_event(jerseys, e.team, e.shirt, t)
        if slot is None:
            out.append(e)
            continue
        lo, hi = max(0, t - radius), min(num_frames, t + radius + 1)
        a, b = max(0, lo - 1), min(num_frames, hi + 1)  # one more frame each side for the parabola
        curve = class_probability_segment(x, e.cls, slot, a, b)
        peak = lo - a + int(np.argmax(curve[lo - a:hi - a]))
        sub = _parabolic_peak(curve[peak - 1], curve[peak], curve[peak + 1]) if 0 < peak < curve.size - 1 else 0.0
        frame = int(np.round(a + peak + sub + offset)) + start_frame
        out.append(e._replace(frame=max(0, frame)))
    return out


def refine_with_logits(pbp: PlayByPlay, logits: dict, radius: int = 3, offset: float = 0.0) -> PlayByPlay:
    """:func:`refine_events_with_logits` on every half that has logits (``{key: HalfLogits}``); halves
    without logits are kept unchanged."""
    def run(key, events):
        half = logits.get(key)
        if half is None:
            return events
        return refine_events_with_logits(events, half.logits, half.jerseys, half.start_frame, radius, offset)

    return map_halves(run, pbp)
