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

    Memory: one float32 array of the result's size and one count per frame (the sums are divided in place
    by :meth:`result`, so the result costs no second copy): ``4 * C * S + 1`` bytes per frame, 937 bytes for
    9 classes and 26 slots (70 MB for a 75,000-frame half). Averaging in float32 matches float64 averaging
    to float32 rounding (at most two windows overlap in the baseline scheme, one in the long mode).
    """

    def __init__(self, num_classes: int, num_slots: int, first: int, last: int, offset: int = 0):
        self.first, self.last, self.offset = first, last, offset
        size = max(last + 1 - offset, 0)
        self._sum = np.zeros((num_classes, num_slots, size), dtype=np.float32)
        self._count = np.zeros(size, dtype=np.uint8)
        self._done = False

    def add(self, window: Window, logits: np.ndarray) -> None:
        if self._done:
            raise RuntimeError("result() was already taken; the accumulator takes no more windows")
        if logits.shape[-1] != window.length:
            raise ValueError(f"logits cover {logits.shape[-1]} frames, the window {window.length}")
        lo, hi = max(window.keep_lo, self.first), min(window.keep_hi, self.last + 1)
        if hi <= lo:
            return
        if self._count[lo - self.offset:hi - self.offset].max() == np.iinfo(np.uint8).max:
            raise OverflowError(f"more than 255 windows keep frame range {lo}..{hi - 1}")
        self._sum[..., lo - self.offset:hi - self.offset] += logits[..., lo - window.start:hi - window.start]
        self._count[lo - self.offset:hi - self.offset] += 1

    def coverage(self) -> np.ndarray:
        """Number of windows that contributed to each frame ``offset..last``."""
        return self._count.astype(np.int32)

    def result(self) -> np.ndarray:
        """The averages ``(C, S, last + 1 - offset)`` float32 (computed once, in place)."""
        if not self._done:  # x / 1 is exact, so frames kept once (or never: zeros) are unchanged
            np.divide(self._sum, np.maximum(self._count, 1).astype(np.float32), out=self._sum)
            self._done = True
        return self._sum
