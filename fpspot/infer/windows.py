"""Sliding-window plans over a half and the accumulator that averages overlapping window logits.

Two schemes cover the frames ``[first, last]`` of a half:

* ``overlap`` (the baseline, spec §2.4): windows of ``length`` frames every ``stride`` frames starting at
  ``first``; every frame of every window is kept and overlapping logits are averaged. With the defaults
  (50, 25) every interior frame goes through the backbone twice.
* ``long``: windows of ``core + 2 * margin`` frames every ``core`` frames; only the central ``core`` frames
  of a window are kept (the margins only give the backbone and the temporal head their context), except at
  the ends of the half, where the margin that falls outside the half is not needed. Each frame goes through
  the backbone ``(core + 2 * margin) / core`` times: 1.2 with the defaults (250, 25) instead of 2.

A plan is a list of :class:`Window`; frames past the end of the half inside a window are padding (masked).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Window:
    """One model input: frames ``[start, start + length)``; logits of ``[keep_lo, keep_hi)`` are used.

    All fields are absolute frame numbers. ``start + length`` may pass the end of the half (padding).
    """

    start: int
    length: int
    keep_lo: int
    keep_hi: int

    @property
    def stop(self) -> int:
        return self.start + self.length


def plan_overlap(first: int, last: int, length: int = 50, stride: int = 25) -> list[Window]:
    """Baseline windows: ``length`` frames every ``stride`` frames from ``first``; every frame kept.

    As in the baseline's two passes, windows start at every multiple of ``stride`` up to ``last``; frames
    after ``last`` are padding.
    """
    if last < first:
        return []
    if not 0 < stride <= length:
        raise ValueError(f"stride must be in 1..length, got stride={stride}, length={length}")
    return [Window(s, length, s, min(s + length, last + 1)) for s in range(first, last + 1, stride)]


def plan_long(first: int, last: int, core: int = 250, margin: int = 25) -> list[Window]:
    """Long windows of ``core + 2 * margin`` frames; window k keeps ``[first + k*core, first + (k+1)*core)``.

    A window starts ``margin`` frames before the frames it keeps (never before ``first``), so every kept
    frame has at least ``margin`` frames of context on each side that exist in the half.
    """
    if last < first:
        return []
    if core <= 0 or margin < 0:
        raise ValueError(f"core must be > 0 and margin >= 0, got core={core}, margin={margin}")
    length = core + 2 * margin
    windows = []
    for keep_lo in range(first, last + 1, core):
        keep_hi = min(keep_lo + core, last + 1)
        windows.append(Window(max(first, keep_lo - margin), length, keep_lo, keep_hi))
    return windows


def backbone_frames(windows: list[Window], first: int, last: int) -> float:
    """Backbone frame-evaluations per frame of ``[first, last]`` (padding frames count: they are computed)."""
    n = last - first + 1
    return sum(w.length for w in windows) / n if n > 0 else 0.0


class LogitAccumulator:
    """Average of window logits over the frames of a half.

    ``add(window, logits)`` with logits ``(C, S, window.length)`` adds the kept frames; ``result()`` returns
    ``(C, S, last + 1 - offset)`` float32 averages for frames ``offset..last`` (zeros where no window kept a
    frame, as the baseline leaves frames before the first visible player).
    """

    def __init__(self, num_classes: int, num_slots: int, first: int, last: int, offset: int = 0):
        self.first, self.last, self.offset = first, last, offset
        size = last + 1 - offset
        self._sum = np.zeros((num_classes, num_slots, size), dtype=np.float64)
        self._count = np.zeros(size, dtype=np.int32)

    def add(self, window: Window, logits: np.ndarray) -> None:
        if logits.shape[-1] != window.length:
            raise ValueError(f"logits cover {logits.shape[-1]} frames, the window {window.length}")
        lo, hi = max(window.keep_lo, self.first), min(window.keep_hi, self.last + 1)
        if hi <= lo:
            return
        self._sum[..., lo - self.offset:hi - self.offset] += logits[..., lo - window.start:hi - window.start]
        self._count[lo - self.offset:hi - self.offset] += 1

    def coverage(self) -> np.ndarray:
        """Number of windows that contributed to each frame ``offset..last``."""
        return self._count.copy()

    def result(self) -> np.ndarray:
        out = np.zeros(self._sum.shape, dtype=np.float32)
        seen = self._count > 0
        out[..., seen] = self._sum[..., seen] / self._count[seen]
        return out
