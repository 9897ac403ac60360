"""Halves of a FOOTPASS-format dataset (real or synthetic) as inference sources (spec §1.1-1.3, §2.4-2.5).

:func:`dataset_halves` lists the halves of a dataset folder (:class:`~fpspot.data.layout.DatasetLayout`) for
one split, several, all, or a list of half keys, and checks them before any model runs: every half needs
its game's video, and the video must hold every frame the half is run on. A :class:`DatasetHalf` is only a
few paths and numbers; :meth:`DatasetHalf.load` reads its tactical rows and returns the
:class:`~fpspot.infer.api.HalfSource` the engine runs on, so a process holds one half's rows at a time:

* frames ``first .. last`` streamed from ``videos/game_{id}.mp4`` with PyAV, resized to the model's
  ``frame_hw`` (``first``/``last`` = first/last frame with a visible player, the baseline's ``minf``/``maxf``);
* window inputs of the 26 role slots from the rows (:meth:`~fpspot.data.tracks.HalfRows.slots`, boxes
  enlarged by 1.125 and mapped to ``frame_hw``);
* the slot -> jersey table ``(26, last + 1)`` (:func:`~fpspot.data.footpass.slot_jersey_table`).

Errors name the half key and the file: a missing video or tactical file, a half key that no tactical file
holds, a video with fewer frames than the tactical data needs (:class:`~fpspot.data.footpass.FormatError`),
and a frame that cannot be decoded (:class:`~fpspot.data.video.VideoError`, raised while streaming).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from fpspot.data.footpass import FormatError, TacticalFile, iter_half_keys, slot_jersey_table
from fpspot.data.layout import SPLITS, DatasetLayout
from fpspot.infer.api import HalfSource
from fpspot.schema import MODEL_HW, parse_half_key


@dataclass(frozen=True)
class DatasetHalf:
    """One half of a dataset folder, checked but not loaded.

    ``first``/``last``: first and last frame with a visible player (the frames the engine runs on;
    ``last = first - 1`` when no player is ever visible). ``frame_hw``: ``(H, W)`` of the model's input frames.
    """

    key: str
    split: str
    tactical: Path
    video: Path
    first: int
    last: int
    frame_hw: tuple[int, int] = MODEL_HW

    @property
    def num_frames(self) -> int:
        return max(self.last + 1 - self.first, 0)

    def load(self) -> HalfSource:
        """Read the half's rows and return its :class:`HalfSource` (frames are decoded when iterated)."""
        from fpspot.data.tracks import HalfRows
        from fpspot.data.video import read_frames

        with TacticalFile(self.tactical) as tf:
            rows = HalfRows(tf.read(self.key), self.key)
        return HalfSource(
            key=self.key,
            first=self.first,
            last=self.last,
            frames=partial(read_frames, self.video, self.first, self.last + 1, self.frame_hw,
                           f"{self.key} (video {self.video})"),
            window_inputs=partial(rows.slots, frame_hw=self.frame_hw),
            jerseys=slot_jersey_table(rows.rows, self.last + 1),
            rows=rows,
        )


def _splits_to_read(layout: DatasetLayout, split: str | Sequence[str] | None) -> list[str]:
    if split is None:
        names = list(SPLITS)
        if layout.splits_file.is_file():
            names += [s for s in layout.splits() if s not in names]
        found = [s for s in names if layout.tactical(s).is_file()]
        if not found:
            raise FormatError(layout.root, "no data/{split}_tactical_data.h5: not a FOOTPASS dataset")
        return found
    names = [split] if isinstance(split, str) else list(split)
    for name in names:
        if not layout.tactical(name).is_file():
            raise FormatError(layout.tactical(name), f"no tactical file for split {name!r}")
    return names


def _video_frames(path: Path, key: str) -> int:
    """Frames of a video as its container states them (0: unknown; the stream is then checked while read)."""
    from fpspot.data.video import VideoError, VideoReader

    try:
        with VideoReader(path) as reader:
            return reader.num_frames
    except VideoError as err:
        raise FormatError(path, f"cannot open the video ({err})", key) from None


def dataset_halves(
    root: str | os.PathLike | DatasetLayout,
    split: str | Sequence[str] | None = None,
    keys: Iterable[str] | None = None,
    frame_hw: tuple[int, int] | Sequence[int] = MODEL_HW,
) -> list[DatasetHalf]:
    """The halves of a FOOTPASS-format dataset, checked against their videos.

    split: a split name, a list of them, or ``None`` for every split with a tactical file.
    keys: only these half keys (in this order), looked up in the splits read.
    frame_hw: ``(H, W)`` the frames are resized to (the model's ``config["frame_hw"]``).
    Reads each half's rows once to find its first and last visible frame; every video's frame count is
    compared with the last frame its halves need.
    """
    layout = root if isinstance(root, DatasetLayout) else DatasetLayout(root)
    frame_hw = (int(frame_hw[0]), int(frame_hw[1]))
    wanted = None if keys is None else list(keys)
    if wanted is not None and len(set(wanted)) != len(wanted):
        raise ValueError(f"half keys listed twice: {sorted({k for k in wanted if wanted.count(k) > 1})}")
    from fpspot.data.tracks import HalfRows

    halves: dict[str, DatasetHalf] = {}
    video_frames: dict[Path, int] = {}
    for name in _splits_to_read(layout, split):
        path = layout.tactical(name)
        with TacticalFile(path) as tf:
            for key in iter_half_keys(tf.keys()):
                if (wanted is not None and key not in wanted) or key in halves:
                    continue
                try:
                    game, _ = parse_half_key(key)
                except ValueError:
                    raise FormatError(path, "not a half key (expected game_{id}_H1 or game_{id}_H2)", key) from None
                video = layout.video(game)
                if not video.is_file():
                    raise FormatError(video, "no such video file (needed by this half)", key)
                rows = HalfRows(tf.read(key), key)
                first = rows.first_visible if rows.first_visible is not None else rows.first
                last = rows.last_visible if rows.last_visible is not None else first - 1
                if video not in video_frames:
                    video_frames[video] = _video_frames(video, key)
                count = video_frames[video]
                if count and count <= last:
                    raise FormatError(video, f"the video has {count} frames (0..{count - 1}) but the tactical data "
                                             f"has visible players up to frame {last}", key)
                halves[key] = DatasetHalf(key, name, path, video, first, last, frame_hw)
    if wanted is None:
        return list(halves.values())
    missing = [k for k in wanted if k not in halves]
    if missing:
        read = ", ".join(str(layout.tactical(s)) for s in _splits_to_read(layout, split))
        raise FormatError(layout.root, f"half keys {missing} are in none of the tactical files read ({read})")
    return [halves[k] for k in wanted]


def open_halves(data, split: str | Sequence[str] | None = None, keys: Iterable[str] | None = None,
                frame_hw: tuple[int, int] | Sequence[int] = MODEL_HW) -> list:
    """Halves to run from ``data``: a dataset folder (or :class:`DatasetLayout`) -> :func:`dataset_halves`;
    a list of :class:`HalfSource` / :class:`DatasetHalf` -> that list (filtered by ``keys``)."""
    if isinstance(data, (str, os.PathLike, DatasetLayout)):
        return dataset_halves(data, split, keys, frame_hw)
    if isinstance(data, (HalfSource, DatasetHalf)):
        data = [data]
    halves = list(data)
    for half in halves:
        if not (hasattr(half, "key") and callable(getattr(half, "load", None))):
            raise TypeError("data must be a dataset folder or a list of HalfSource/DatasetHalf, "
                            f"got {type(half).__name__}")
    if split is not None:
        raise ValueError("split selects halves of a dataset folder; with a list of halves, pass keys or filter "
                         "the list")
    seen = [h.key for h in halves]
    if len(set(seen)) != len(seen):
        raise ValueError(f"halves listed twice: {sorted({k for k in seen if seen.count(k) > 1})}")
    if keys is not None:
        by_key = {h.key: h for h in halves}
        missing = [k for k in keys if k not in by_key]
        if missing:
            raise KeyError(f"half keys {missing} are not among the halves given ({seen})")
        halves = [by_key[k] for k in keys]
    return halves


__all__ = ["DatasetHalf", "dataset_halves", "open_halves"]
