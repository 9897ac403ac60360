"""Small helpers over event lists shared by the post-processing steps.

An event is a :class:`~fpspot.schema.Prediction` ``(frame, team, shirt, cls, score)``; a half's events are a
list of them; a file's events are a :class:`~fpspot.data.footpass.PlayByPlay`. Nothing here (or in any
step) modifies its inputs: every function returns new lists.
"""

from __future__ import annotations

import bisect
import numbers
from collections import defaultdict
from collections.abc import Callable, Sequence

import numpy as np

from fpspot.data.footpass import PlayByPlay
from fpspot.schema import ACTION_CLASSES, CLASS_IDS, Prediction

Group = tuple[int, int, int]  # (team, shirt, cls): the unit the official matcher compares


def as_prediction(event) -> Prediction:
    """Any 5-sequence ``(frame, team, shirt, cls, score)`` as a :class:`Prediction`."""
    return event if isinstance(event, Prediction) else Prediction(*event)


def map_halves(fn: Callable[[str, list[Prediction]], list[Prediction]], pbp: PlayByPlay) -> PlayByPlay:
    """A new prediction file with ``fn(key, events)`` applied to every half (every key kept)."""
    return PlayByPlay("pred", list(pbp.keys), {k: list(fn(k, list(pbp.events.get(k, [])))) for k in pbp.keys},
                      pbp.source)


def nms_keep(events: Sequence[Prediction], window: int) -> list[int]:
    """Greedy NMS per ``(team, shirt, cls)``: in order of decreasing score (ties: input order), an event is kept
    unless a kept event of its group lies within ``window`` frames. Returns the kept indices in input order."""
    kept_frames: dict[Group, list[int]] = defaultdict(list)
    keep = []
    for i in sorted(range(len(events)), key=lambda i: -events[i][4]):
        near = kept_frames[(events[i][1], events[i][2], events[i][3])]
        if all(abs(events[i][0] - f) > window for f in near):
            near.append(events[i][0])
            keep.append(i)
    return sorted(keep)


class GroupIndex:
    """Events of one half grouped by ``(team, shirt, cls)`` and sorted by frame, for window look-ups."""

    def __init__(self, events: Sequence[Prediction]):
        groups: dict[Group, list[int]] = defaultdict(list)
        for i in sorted(range(len(events)), key=lambda i: events[i][0]):
            e = events[i]
            groups[(e[1], e[2], e[3])].append(i)
        self.events = events
        self.index = dict(groups)
        self.frames = {g: [events[i][0] for i in idx] for g, idx in self.index.items()}
        by_team_cls: dict[tuple[int, int], list[Group]] = defaultdict(list)
        for g in self.index:
            by_team_cls[(g[0], g[2])].append(g)
        self.by_team_cls = dict(by_team_cls)

    def near(self, group: Group, frame: int, window: int) -> list[int]:
        """Indices (into ``events``) of the group's events with ``|t - frame| <= window``."""
        frames = self.frames.get(group)
        if not frames:
            return []
        lo = bisect.bisect_left(frames, frame - window)
        hi = bisect.bisect_right(frames, frame + window)
        return self.index[group][lo:hi]

    def near_other_shirts(self, team: int, shirt: int, cls: int, frame: int, window: int) -> list[int]:
        """Events of the same team and class but another shirt within ``window`` frames."""
        out: list[int] = []
        for g in self.by_team_cls.get((team, cls), []):
            if g[1] != shirt:
                out.extend(self.near(g, frame, window))
        return out


def class_id(name_or_id) -> int:
    """``"pass"`` or ``2`` -> 2 (action classes 1..8 only)."""
    if isinstance(name_or_id, str):
        if name_or_id not in CLASS_IDS or name_or_id == "background":
            raise ValueError(f"unknown action class {name_or_id!r}; expected one of {', '.join(ACTION_CLASSES)}")
        return CLASS_IDS[name_or_id]
    cid = int(name_or_id)
    if not 1 <= cid <= len(ACTION_CLASSES):
        raise ValueError(f"action class id must be in 1..8, got {name_or_id!r}")
    return cid


def per_class(values, name: str = "value") -> dict[int, float]:
    """A scalar (same for every class) or a ``{class name or id: value}`` mapping (all 8 classes) as
    ``{class id: float}``."""
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        return {c: float(values) for c in range(1, len(ACTION_CLASSES) + 1)}
    if not isinstance(values, dict):
        raise ValueError(f"{name} must be a number or a mapping class -> number, got {type(values).__name__}")
    out = {}
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise ValueError(f"{name}: the value of class {key!r} must be a number, got {value!r}")
        out[class_id(key)] = float(value)
    missing = [ACTION_CLASSES[c - 1] for c in range(1, len(ACTION_CLASSES) + 1) if c not in out]
    if missing:
        raise ValueError(f"{name} has no value for class(es) {', '.join(missing)}")
    return out


class HalfLogits:
    """One half's per-frame logits for the logit-level steps.

    logits: ``(9, 26, T)`` raw logits (numpy or torch); frame ``i`` is video frame ``start_frame + i``.
    jerseys: ``(26, T)`` slot -> shirt table on the same frames
    (:func:`fpspot.data.footpass.slot_jersey_table`).
    """

    __slots__ = ("logits", "jerseys", "start_frame")

    def __init__(self, logits, jerseys, start_frame: int = 0):
        from fpspot.post.peaks import as_numpy_logits

        self.logits = as_numpy_logits(logits)
        self.jerseys = np.asarray(jerseys, dtype=np.int64)
        if self.jerseys.shape != (self.logits.shape[1], self.logits.shape[2]):
            raise ValueError(f"jerseys must have shape (26, T) = {self.logits.shape[1:]}, got {self.jerseys.shape}")
        self.start_frame = int(start_frame)
