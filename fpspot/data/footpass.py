"""Readers and writers of the FOOTPASS formats (spec §1.2, §1.4, §1.5, §2.5).

* play-by-play JSON, ground truth ``{"keys": [...], "events": {key: [[frame, team, shirt, class, bbox,
  replay], ...]}}`` and predictions ``{"keys": [...], "events": {key: [[frame, team, shirt, class, score],
  ...]}}``;
* tactical HDF5, one dataset per half key, ``(N_rows, 14)`` floats (``(N_rows, 13)`` in challenge files,
  which have no ``CLS`` column);
* the per-frame slot -> jersey table (forward then backward fill).

Every reader validates and raises :class:`FormatError` naming the file, the key and the event index; ``keys``
and ``events`` must name the same halves (a half under ``events`` only would otherwise be ignored).
Every writer writes a temporary file and renames it, and writes every key, even with no events.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from fpspot.schema import (
    NUM_ROLES,
    NUM_SLOTS,
    NUM_TACTICAL_COLUMNS,
    NUM_TACTICAL_COLUMNS_CHALLENGE,
    Col,
    GTEvent,
    Prediction,
)
from fpspot.utils.atomic import atomic_open, atomic_path

Kind = Literal["gt", "pred"]
PathLike = str | os.PathLike


class FormatError(ValueError):
    """A FOOTPASS file does not have the expected content. The message names file, key and index."""

    def __init__(self, path: PathLike | None, problem: str, key: str | None = None, index: int | None = None):
        where = [f"file {str(path)!r}" if path is not None else "<in-memory object>"]
        if key is not None:
            where.append(f"key {key!r}")
        if index is not None:
            where.append(f"event {index}")
        super().__init__(f"{', '.join(where)}: {problem}")
        self.path, self.key, self.index, self.problem = path, key, index, problem


@dataclass
class PlayByPlay:
    """A play-by-play file: the ordered half keys and, per key, a list of events.

    ``kind == "gt"``: events are :class:`GTEvent`; ``kind == "pred"``: :class:`Prediction`.
    """

    kind: Kind
    keys: list[str]
    events: dict[str, list] = field(default_factory=dict)
    source: str | None = None

    def __post_init__(self) -> None:
        for key in self.keys:
            self.events.setdefault(key, [])

    def __len__(self) -> int:
        return sum(len(v) for v in self.events.values())

    def games(self) -> list[int]:
        """Game ids present, in key order, without repeats."""
        from fpspot.schema import parse_half_key

        seen: dict[int, None] = {}
        for key in self.keys:
            seen.setdefault(parse_half_key(key)[0], None)
        return list(seen)

    def subset(self, keys: Iterable[str]) -> "PlayByPlay":
        """A new object holding only ``keys`` (in the given order); events lists are copied."""
        keys = list(keys)
        return PlayByPlay(self.kind, keys, {k: list(self.events.get(k, [])) for k in keys}, self.source)

    def to_json(self) -> dict:
        """The JSON object of the file format (events as plain lists)."""
        return {"keys": list(self.keys), "events": {k: [list(e) for e in self.events.get(k, [])] for k in self.keys}}


# ----------------------------------------------------------------------------------------------- reading


def _as_int(value, path, key, index, name) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise FormatError(path, f"{name} must be a number, got {value!r}", key, index)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise FormatError(path, f"{name} is {value}", key, index)
        if not value.is_integer():
            raise FormatError(path, f"{name} must be an integer, got {value!r}", key, index)
    return int(value)


def _parse_event(raw, kind: Kind, path, key, index):
    expected = 6 if kind == "gt" else 5
    if not isinstance(raw, (list, tuple)):
        raise FormatError(path, f"an event must be a list, got {type(raw).__name__}", key, index)
    if len(raw) != expected:
        what = "ground-truth events have 6 fields (frame, team, shirt, class, bbox, replay)" if kind == "gt" else (
            "predictions have 5 fields (frame, team, shirt, class, score)")
        raise FormatError(path, f"event has {len(raw)} fields; {what}", key, index)
    frame = _as_int(raw[0], path, key, index, "frame")
    team = _as_int(raw[1], path, key, index, "team")
    shirt = _as_int(raw[2], path, key, index, "shirt")
    cls = _as_int(raw[3], path, key, index, "class")
    if frame < 0:
        raise FormatError(path, f"negative frame {frame}", key, index)
    if team not in (0, 1):
        raise FormatError(path, f"team must be 0 or 1, got {team}", key, index)
    if not 1 <= cls <= 8:
        raise FormatError(path, f"class must be in 1..8, got {cls}", key, index)
    if kind == "gt":
        bbox = _as_int(raw[4], path, key, index, "bbox")
        replay = _as_int(raw[5], path, key, index, "replay")
        if bbox not in (0, 1) or replay not in (0, 1):
            raise FormatError(path, f"bbox and replay must be 0 or 1, got {bbox}, {replay}", key, index)
        return GTEvent(frame, team, shirt, cls, bbox, replay)
    score = raw[4]
    if isinstance(score, bool) or not isinstance(score, (int, float)):
        raise FormatError(path, f"score must be a number, got {score!r}", key, index)
    score = float(score)
    if math.isnan(score):
        raise FormatError(path, "score is NaN", key, index)
    if not 0.0 <= score <= 1.0:
        raise FormatError(path, f"score must be in [0, 1], got {score}", key, index)
    return Prediction(frame, team, shirt, cls, score)


def _reject_duplicate_keys(pairs: list[tuple[str, object]]) -> dict:
    seen: dict = {}
    for name, value in pairs:
        if name in seen:
            raise _DuplicateKey(name)
        seen[name] = value
    return seen


class _DuplicateKey(Exception):
    pass


def _guess_kind(events: Mapping[str, list]) -> Kind:
    for evs in events.values():
        if isinstance(evs, list) and evs and isinstance(evs[0], (list, tuple)):
            return "gt" if len(evs[0]) == 6 else "pred"
    return "pred"


def _reject_unlisted_halves(path: PathLike | None, keys: list[str], events: dict) -> None:
    """Halves under 'events' but not in 'keys' would be ignored by every reader: name them instead."""
    listed = set(keys)
    unlisted = list(iter_half_keys(k for k in events if k not in listed))
    if not unlisted:
        return
    count = sum(len(v) for k, v in events.items() if k not in listed and isinstance(v, list))
    names = ", ".join(repr(k) for k in unlisted[:10]) + (f" and {len(unlisted) - 10} more" if len(unlisted) > 10 else "")
    which = f"half {names} is" if len(unlisted) == 1 else f"halves {names} are"
    raise FormatError(path, f"{which} under 'events' but not listed in 'keys' ({count} event{'s' * (count != 1)})")


def parse_playbyplay(obj: object, kind: Kind | Literal["auto"] = "auto", path: PathLike | None = None) -> PlayByPlay:
    """Validate a loaded play-by-play JSON object and return a :class:`PlayByPlay`.

    ``kind="auto"`` decides from the length of the first event (6 -> ground truth, 5 -> predictions).
    """
    if not isinstance(obj, dict):
        raise FormatError(path, f"top level must be an object with 'keys' and 'events', got {type(obj).__name__}")
    for name in ("keys", "events"):
        if name not in obj:
            raise FormatError(path, f"missing top-level field {name!r}")
    keys, events = obj["keys"], obj["events"]
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise FormatError(path, "'keys' must be a list of strings")
    if not isinstance(events, dict):
        raise FormatError(path, "'events' must be an object mapping half keys to event lists")
    if len(set(keys)) != len(keys):
        dup = next(k for i, k in enumerate(keys) if k in keys[:i])
        raise FormatError(path, "listed twice in 'keys'", dup)
    _reject_unlisted_halves(path, keys, events)
    if kind == "auto":
        kind = _guess_kind(events)
    parsed: dict[str, list] = {}
    for key in keys:
        if key not in events:
            raise FormatError(path, "listed in 'keys' but absent from 'events'", key)
        raw_events = events[key]
        if not isinstance(raw_events, list):
            raise FormatError(path, f"events must be a list, got {type(raw_events).__name__}", key)
        parsed[key] = [_parse_event(raw, kind, path, key, i) for i, raw in enumerate(raw_events)]
    return PlayByPlay(kind, list(keys), parsed, None if path is None else str(path))


def read_playbyplay(path: PathLike, kind: Kind | Literal["auto"] = "auto") -> PlayByPlay:
    """Read and validate a play-by-play JSON file (ground truth or predictions)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise FormatError(path, "no such file") from None
    except OSError as err:
        raise FormatError(path, f"cannot read ({err.strerror or err})") from None
    except UnicodeDecodeError as err:
        raise FormatError(path, f"not UTF-8 text (byte {err.start})") from None
    try:
        obj = json.loads(text, object_pairs_hook=_reject_duplicate_keys)
    except _DuplicateKey as dup:
        raise FormatError(path, "duplicate key in a JSON object", str(dup)) from None
    except json.JSONDecodeError as err:
        raise FormatError(path, f"not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from None
    return parse_playbyplay(obj, kind, path)


def load_playbyplay(source: PathLike | PlayByPlay | Mapping, kind: Kind | Literal["auto"] = "auto") -> PlayByPlay:
    """Accept a path, a loaded JSON object or a :class:`PlayByPlay` and return a :class:`PlayByPlay`."""
    if isinstance(source, PlayByPlay):
        return source
    if isinstance(source, Mapping):
        return parse_playbyplay(dict(source), kind)
    return read_playbyplay(source, kind)


# ----------------------------------------------------------------------------------------------- writing


def _event_json(event) -> list:
    if isinstance(event, Prediction) or (len(event) == 5):
        frame, team, shirt, cls, score = event
        return [int(frame), int(team), int(shirt), int(cls), float(score)]
    return [int(v) for v in event]


def write_playbyplay(path: PathLike, pbp: PlayByPlay | Mapping, keys: Iterable[str] | None = None) -> Path:
    """Write a play-by-play JSON file atomically; every key in ``keys`` (default: all) is written.

    ``pbp`` may be a :class:`PlayByPlay` or a plain ``{"keys": ..., "events": ...}`` mapping; it is
    validated before anything is written.
    """
    if not isinstance(pbp, PlayByPlay):
        pbp = parse_playbyplay(dict(pbp))
    keys = list(pbp.keys if keys is None else keys)
    obj = {"keys": keys, "events": {k: [_event_json(e) for e in pbp.events.get(k, [])] for k in keys}}
    parse_playbyplay(obj, pbp.kind, path)  # never write what we could not read back
    with atomic_open(path) as handle:
        json.dump(obj, handle, separators=(",", ":"))
    return Path(path)


# ------------------------------------------------------------------------------------------ tactical HDF5


def _check_tactical(path: PathLike, key: str, rows: np.ndarray) -> np.ndarray:
    if rows.ndim != 2 or rows.shape[1] not in (NUM_TACTICAL_COLUMNS, NUM_TACTICAL_COLUMNS_CHALLENGE):
        raise FormatError(path, f"tactical table must be (N, 14) or (N, 13), got shape {rows.shape}", key)
    rows = np.asarray(rows, dtype=np.float64)
    for col in (Col.FRAME, Col.LEFT_TO_RIGHT, Col.ROLE_ID):
        values = rows[:, col]
        bad = np.flatnonzero(~np.isfinite(values))
        if bad.size:
            raise FormatError(path, f"column {col.name} is not finite in row {bad[0]}", key)
    if rows.size and rows[:, Col.FRAME].min() < 0:
        raise FormatError(path, f"negative frame in row {int(np.argmin(rows[:, Col.FRAME]))}", key)
    team = rows[:, Col.LEFT_TO_RIGHT]
    if np.any((team != 0) & (team != 1)):
        raise FormatError(path, f"LEFT_TO_RIGHT must be 0 or 1 (row {int(np.flatnonzero((team != 0) & (team != 1))[0])})", key)
    return rows


class TacticalFile:
    """Read access to a tactical HDF5 file: ``keys()`` and ``read(key) -> (N, 14|13) float64``.

    Use as a context manager or call :meth:`close`.
    """

    def __init__(self, path: PathLike):
        import h5py

        self.path = Path(path)
        try:
            self._h5 = h5py.File(self.path, "r")
        except FileNotFoundError:
            raise FormatError(self.path, "no such file") from None
        except OSError as err:
            raise FormatError(self.path, f"not a readable HDF5 file ({err})") from None

    def keys(self) -> list[str]:
        return sorted(self._h5.keys(), key=_half_sort_key)

    def __contains__(self, key: str) -> bool:
        return key in self._h5

    def read(self, key: str) -> np.ndarray:
        if key not in self._h5:
            raise FormatError(self.path, "no such dataset in the tactical file", key)
        return _check_tactical(self.path, key, self._h5[key][()])

    def has_labels(self, key: str) -> bool:
        return self._h5[key].shape[1] == NUM_TACTICAL_COLUMNS

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> "TacticalFile":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _half_sort_key(key: str):
    from fpspot.schema import parse_half_key

    try:
        return (0, *parse_half_key(key))
    except ValueError:
        return (1, key, 0)


def read_tactical(path: PathLike, keys: Iterable[str] | None = None) -> dict[str, np.ndarray]:
    """Read (and validate) the tables of ``keys`` (default: every half) from a tactical HDF5 file."""
    with TacticalFile(path) as tf:
        return {key: tf.read(key) for key in (tf.keys() if keys is None else keys)}


def write_tactical(path: PathLike, tables: Mapping[str, np.ndarray]) -> Path:
    """Write ``{half_key: (N, 14|13) array}`` to an HDF5 file atomically (float64, gzip-compressed)."""
    import h5py

    for key, rows in tables.items():
        _check_tactical(path, key, np.asarray(rows))
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            for key, rows in tables.items():
                h5.create_dataset(key, data=np.asarray(rows, dtype=np.float64), compression="gzip",
                                  compression_opts=1, shuffle=True)
    return Path(path)


# ------------------------------------------------------------------------------------------ slot tables


def slot_index(rows: np.ndarray) -> np.ndarray:
    """Role slot of each row, ``LEFT_TO_RIGHT * 13 + ROLE_ID - 1``; -1 where the role is not in 1..13.

    rows: (N, >=5) tactical rows. Returns (N,) int64.
    """
    role = rows[:, Col.ROLE_ID]
    valid = np.isfinite(role) & (role >= 1) & (role <= NUM_ROLES)
    slot = np.where(valid, rows[:, Col.LEFT_TO_RIGHT] * NUM_ROLES + role - 1, -1)
    return slot.astype(np.int64)


def _fill_forward(table: np.ndarray) -> np.ndarray:
    """Forward-fill -1 entries along the last axis of a (S, T) int table."""
    idx = np.where(table >= 0, np.arange(table.shape[1]), 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    filled = np.take_along_axis(table, idx, axis=1)
    return filled


def slot_jersey_table(rows: np.ndarray, num_frames: int, start_frame: int = 0) -> np.ndarray:
    """Jersey of each role slot at each frame, as the baseline builds it (spec §2.5).

    Rows with a finite SHIRT_NUMBER, ``start_frame <= FRAME < start_frame + num_frames`` and ROLE_ID in
    1..13 set ``table[slot, FRAME - start_frame] = shirt`` (the last row wins); then every slot is filled
    forward along time, then backward. A slot that never has a shirt stays -1.

    rows: (N, >=5) tactical rows. Returns (26, num_frames) int64.
    """
    table = np.full((NUM_SLOTS, num_frames), -1, dtype=np.int64)
    if rows.size == 0 or num_frames <= 0:
        return table
    frame = rows[:, Col.FRAME] - start_frame
    shirt = rows[:, Col.SHIRT_NUMBER]
    slot = slot_index(rows)
    keep = np.isfinite(shirt) & (slot >= 0) & (frame >= 0) & (frame < num_frames)
    flat = slot[keep] * num_frames + frame[keep].astype(np.int64)
    # The last row of each (slot, frame) wins, as in the baseline's loop: unique over the reversed rows.
    _, first_in_reversed = np.unique(flat[::-1], return_index=True)
    last = flat.size - 1 - first_in_reversed
    table.reshape(-1)[flat[last]] = shirt[keep][last].astype(np.int64)
    forward = _fill_forward(table)
    backward = _fill_forward(forward[:, ::-1])[:, ::-1]
    return np.ascontiguousarray(backward)


def iter_half_keys(obj: Mapping[str, object] | Iterable[str]) -> Iterator[str]:
    """Half keys in natural order (game id, then half)."""
    yield from sorted(obj, key=_half_sort_key)
