"""A forward-only frame buffer over a decoded video stream.

Windows of a half are requested in increasing start order; the buffer keeps only the frames from the
earliest start still needed, so memory is bounded by the span of one batch of windows, not by the length
of the match.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

import numpy as np


class FrameBuffer:
    """Serve ``frames[start:stop]`` from an iterator of ``(H, W, 3)`` uint8 frames numbered from ``first``.

    ``get(start, stop)`` returns ``(stop - start, H, W, 3)`` uint8; frames past the end of the stream are
    zeros (padding) and reported by :attr:`end`. Requests must not go back before an earlier ``start``.
    """

    def __init__(self, frames: Iterator[np.ndarray], first: int, name: str = "video"):
        self._frames = iter(frames)
        self._buffer: deque[np.ndarray] = deque()
        self._buffer_start = first  # frame number of self._buffer[0]
        self._exhausted = False
        self._shape: tuple[int, ...] | None = None
        self.name = name
        self.end: int | None = None  # one past the last frame, once the stream is exhausted
        self.frames_decoded = 0

    def _pull(self) -> bool:
        if self._exhausted:
            return False
        frame = next(self._frames, None)
        if frame is None:
            self._exhausted = True
            self.end = self._buffer_start + len(self._buffer)
            return False
        if self._shape is None:
            self._shape = frame.shape
        elif frame.shape != self._shape:
            raise ValueError(f"{self.name}: frame {self._buffer_start + len(self._buffer)} has shape {frame.shape}, "
                             f"earlier frames {self._shape}")
        self._buffer.append(frame)
        self.frames_decoded += 1
        return True

    def get(self, start: int, stop: int) -> np.ndarray:
        if start < self._buffer_start:
            raise ValueError(f"{self.name}: frame {start} was already released (buffer starts at {self._buffer_start})")
        while self._buffer and self._buffer_start < start:  # release what no later window needs
            self._buffer.popleft()
            self._buffer_start += 1
        while self._buffer_start + len(self._buffer) < start and self._pull():  # skip ahead
            self._buffer.popleft()
            self._buffer_start += 1
        while self._buffer_start + len(self._buffer) < stop and self._pull():
            pass
        if self._shape is None:
            raise ValueError(f"{self.name}: no frame could be read")
        out = np.zeros((stop - start, *self._shape), dtype=np.uint8)
        have = min(stop, self._buffer_start + len(self._buffer)) - start
        for i in range(max(have, 0)):
            out[i] = self._buffer[start - self._buffer_start + i]
        return out
