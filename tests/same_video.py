"""Comparing two writes of the same data whose mp4 bytes may differ.

libx264 (PyAV 18.1's wheels) does not always give the same bytes for the same frames (BENCHMARKS.md, "Encoded
clips are not bit-reproducible"): a rewrite may differ in a few videos. The tests of reproducible writers
therefore require identical bytes for everything else, and for a video either identical bytes or the same
frames up to what one H.264 generation costs (two encodings that took different decisions decode about 1-1.5
grey levels apart on average; a wrong clip or frame is far more)."""

from __future__ import annotations

import numpy as np

from fpspot.data.video import decode_clip

#: mean absolute difference (grey levels) allowed between two encodings of the same frames
ENCODING_TOLERANCE = 3.0


def same_video(first: bytes, second: bytes, name: str) -> bool:
    """True when the bytes are identical; else asserts that both decode to frames of one shape within
    :data:`ENCODING_TOLERANCE` of each other, and returns False."""
    if first == second:
        return True
    a, b = decode_clip(first, name), decode_clip(second, name)
    assert a.shape == b.shape, f"{name}: {a.shape} != {b.shape}"
    error = float(np.abs(a.astype(np.int16) - b.astype(np.int16)).mean())
    assert error < ENCODING_TOLERANCE, f"{name}: the two encodings decode {error:.2f} grey levels apart"
    return False
