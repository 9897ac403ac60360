"""Per-frame model inputs from tactical rows (spec §1.3, §2.1, §2.4, §3.1, §4.1).

Every function takes the tactical rows of a half (any order; only rows with ``start_frame <= FRAME <
start_frame + num_frames`` are used) and returns numpy arrays for that window, so the shard writer, the
loader and the inference engine build their inputs the same way:

* :func:`roi_to_frame`: Full-HD ``ROI_X, ROI_Y, ROI_WIDTH, ROI_HEIGHT`` -> enlarged ``x1, y1, x2, y2`` in the
  pixel space of a ``(H, W)`` frame, with the spec's integer arithmetic (``/3`` and ``/3.068181`` for
  352x640 are ``1920 / W`` and ``1080 / H``) and its validity rule (w and h of at least 2 px);
* :func:`slot_window`: the 26 role slots (``slot = team * 13 + role - 1``): RoIs, masks, sharp labels,
  node features ``[team, shirt, x, y, vx, vy]`` (-15 where the slot has no row) and the Full-HD boxes;
  slot ``m`` at frame ``t`` takes the first row with that (team, role, frame) and a box (spec §2.4) for
  its RoI and label, and the first row with that (team, role, frame) for its node features;
* :func:`player_window`: the same per ``PLAYER_ID`` (the TAAD tracklets of spec §2.1; id 300 = padding);
* :func:`teamvec_window`: the DST team vector ``(5, 26, T)`` ``[x, y, vx, vy, obs]`` (spec §4.1);
* :func:`dilate_labels`: +-1 frame label dilation (spec §2.1);
* :class:`HalfRows`: the rows of a half sorted by frame, to cut many windows quickly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fpspot.schema import DUMMY_PLAYER_ID, MISSING_FILL, NUM_ROLES, NUM_SLOTS, NUM_TACTICAL_COLUMNS, VIDEO_HW, Col

EVAL_COEFF = 1.125  # box enlargement at evaluation (spec §1.3)
NODE_COLUMNS = (Col.LEFT_TO_RIGHT, Col.SHIRT_NUMBER, Col.X_POS, Col.Y_POS, Col.X_SPEED, Col.Y_SPEED)
ROI_COLUMNS = (Col.ROI_X, Col.ROI_Y, Col.ROI_WIDTH, Col.ROI_HEIGHT)


def roi_to_frame(roi: np.ndarray, coeff: float | np.ndarray = EVAL_COEFF,
                 frame_hw: tuple[int, int] = (352, 640)) -> tuple[np.ndarray, np.ndarray]:
    """Enlarge Full-HD boxes and map them to a ``(H, W)`` frame (spec §1.3).

    roi: ``(..., 4)`` ``x, y, w, h`` in Full-HD pixels, NaN where there is no box.
    coeff: enlargement, a scalar or an array broadcastable to ``roi.shape[:-1]``.
    Returns ``(boxes, valid)``: ``(..., 4)`` float32 ``x1, y1, x2, y2`` (integers as in the baseline;
    top-left clamped to ``[0, W-1] x [0, H-1]``, bottom-right to ``[0, W] x [0, H]``; zeros where invalid) and
    ``(...)`` bool, False where the box is missing or under 2 px wide or high.
    """
    full_h, full_w = VIDEO_HW
    height, width = frame_hw
    sx, sy = full_w / width, full_h / height
    roi = np.asarray(roi, dtype=np.float64)
    coeff = np.asarray(coeff, dtype=np.float64)
    x, y, w, h = roi[..., 0], roi[..., 1], roi[..., 2], roi[..., 3]
    finite = np.isfinite(roi).all(axis=-1)
    with np.errstate(invalid="ignore"):
        x1 = np.trunc(np.clip(np.trunc(x - np.floor((coeff - 1) * w / 2)), 0, full_w) / sx)
        y1 = np.trunc(np.clip(np.trunc(y - np.floor((coeff - 1) * h / 2)), 0, full_h) / sy)
        x2 = np.trunc(np.clip(np.trunc(x + coeff * w), 0, full_w) / sx)
        y2 = np.trunc(np.clip(np.trunc(y + coeff * h), 0, full_h) / sy)
    x1, y1 = np.minimum(x1, width - 1), np.minimum(y1, height - 1)
    boxes = np.stack([x1, y1, x2, y2], axis=-1)
    with np.errstate(invalid="ignore"):
        valid = finite & (x2 - x1 >= 2) & (y2 - y1 >= 2)
    boxes = np.where(valid[..., None], boxes, 0.0).astype(np.float32)
    return boxes, valid


def dilate_labels(labels: np.ndarray) -> np.ndarray:
    """Copy every non-zero label to its neighbouring frames ``t-1, t+1`` (last axis), keeping originals.

    labels: ``(..., T)`` int. Where two dilated labels meet, the earlier event's label wins.
    """
    out = labels.copy()
    for src, dst in ((slice(None, -1), slice(1, None)), (slice(1, None), slice(None, -1))):
        source = labels[..., src]
        target = out[..., dst]
        fill = (target == 0) & (source != 0) & (labels[..., dst] == 0)
        target[fill] = source[fill]
    return out


def _in_window(rows: np.ndarray, start_frame: int, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
    frame = rows[:, Col.FRAME].astype(np.int64) - start_frame
    keep = (frame >= 0) & (frame < num_frames)
    return rows[keep], frame[keep]


def _first_index(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Unique keys and the index of their first occurrence (row order)."""
    unique, first = np.unique(keys, return_index=True)
    return unique, first


def _gather(rows: np.ndarray, frame: np.ndarray, track: np.ndarray, num_tracks: int, num_frames: int,
            coeff, frame_hw) -> dict[str, np.ndarray]:
    """Arrays of ``num_tracks`` tracks; ``track``: track index of each row (-1: not a track)."""
    boxes_full = np.full((num_tracks, num_frames, 4), np.nan, np.float64)  # float64: the spec's integer rounding
    labels = np.zeros((num_tracks, num_frames), np.int64)
    nodes = np.full((num_tracks, num_frames, len(NODE_COLUMNS)), MISSING_FILL, np.float32)
    has_label = rows.shape[1] >= NUM_TACTICAL_COLUMNS
    ok = track >= 0
    key = track * num_frames + frame
    # node features: the first row of each (track, frame)
    unique, first = _first_index(key[ok])
    src = np.flatnonzero(ok)[first]
    nodes.reshape(-1, nodes.shape[-1])[unique] = rows[src][:, list(NODE_COLUMNS)]
    # RoI and label: the first row of each (track, frame) that has a box
    with_box = ok & np.isfinite(rows[:, list(ROI_COLUMNS)]).all(axis=1)
    unique, first = _first_index(key[with_box])
    src = np.flatnonzero(with_box)[first]
    boxes_full.reshape(-1, 4)[unique] = rows[src][:, list(ROI_COLUMNS)]
    if has_label:
        cls = rows[src, Col.CLS]
        labels.reshape(-1)[unique] = np.where(np.isfinite(cls), cls, 0).astype(np.int64)
    coeff = np.asarray(coeff, dtype=np.float64)
    if coeff.ndim == 1:
        coeff = coeff[:, None]
    rois, valid = roi_to_frame(boxes_full, coeff, frame_hw)
    labels = np.where(valid, labels, 0)
    return {"rois": rois, "masks": valid.astype(np.float32), "labels_sharp": labels, "nodes": nodes,
            "boxes": boxes_full.astype(np.float32)}


def slot_window(rows: np.ndarray, start_frame: int, num_frames: int, frame_hw: tuple[int, int] = (352, 640),
                coeff: float | np.ndarray = EVAL_COEFF) -> dict[str, np.ndarray]:
    """Inputs of the 26 role slots over frames ``start_frame .. start_frame + num_frames - 1``.

    rows: ``(N, 14|13)`` tactical rows of one half. coeff: scalar or ``(26,)`` (one per slot).
    Returns ``rois`` ``(26, T, 4)`` float32 (``x1, y1, x2, y2`` in ``frame_hw`` pixels), ``masks`` ``(26, T)``
    float32, ``labels_sharp`` ``(26, T)`` int64 (0 without a valid box or without a CLS column), ``nodes``
    ``(26, T, 6)`` float32 ``[team, shirt, x, y, vx, vy]`` (-15 where the slot has no row), ``boxes``
    ``(26, T, 4)`` float32 Full-HD ``x, y, w, h`` (NaN without a box) and ``player_ids`` ``(26, T)`` int64
    (-1 where the slot has no row).
    """
    rows, frame = _in_window(np.asarray(rows), start_frame, num_frames)
    role = rows[:, Col.ROLE_ID]
    valid_role = np.isfinite(role) & (role >= 1) & (role <= NUM_ROLES)
    slot = np.where(valid_role, rows[:, Col.LEFT_TO_RIGHT] * NUM_ROLES + np.nan_to_num(role) - 1, -1).astype(np.int64)
    out = _gather(rows, frame, slot, NUM_SLOTS, num_frames, coeff, frame_hw)
    player_ids = np.full((NUM_SLOTS, num_frames), -1, np.int64)
    ok = slot >= 0
    unique, first = _first_index((slot * num_frames + frame)[ok])
    player_ids.reshape(-1)[unique] = rows[np.flatnonzero(ok)[first], Col.PLAYER_ID].astype(np.int64)
    out["player_ids"] = player_ids
    return out


def player_window(rows: np.ndarray, player_ids: Sequence[int], start_frame: int, num_frames: int,
                  frame_hw: tuple[int, int] = (352, 640), coeff: float | np.ndarray = EVAL_COEFF
                  ) -> dict[str, np.ndarray]:
    """Inputs of the tracklets of ``player_ids`` (``DUMMY_PLAYER_ID`` = padding, never matched).

    Returns the arrays of :func:`slot_window` with ``M = len(player_ids)`` tracks in the given order.
    """
    rows, frame = _in_window(np.asarray(rows), start_frame, num_frames)
    ids = np.asarray(player_ids, dtype=np.int64)
    pid = rows[:, Col.PLAYER_ID]
    track = np.full(rows.shape[0], -1, np.int64)
    for m, player in enumerate(ids):
        if player != DUMMY_PLAYER_ID:
            track[pid == player] = m
    return _gather(rows, frame, track, len(ids), num_frames, coeff, frame_hw)


def teamvec_window(rows: np.ndarray, start_frame: int, num_frames: int) -> np.ndarray:
    """DST team vector ``(5, 26, T)`` float32 ``[x, y, vx, vy, obs]``, -15 where the slot has no row.

    The first row of each (slot, frame) is used; ``obs`` is 1 when its ROI_X is not NaN.
    """
    rows, frame = _in_window(np.asarray(rows), start_frame, num_frames)
    role = rows[:, Col.ROLE_ID]
    valid_role = np.isfinite(role) & (role >= 1) & (role <= NUM_ROLES)
    slot = np.where(valid_role, rows[:, Col.LEFT_TO_RIGHT] * NUM_ROLES + np.nan_to_num(role) - 1, -1).astype(np.int64)
    out = np.full((5, NUM_SLOTS * num_frames), MISSING_FILL, np.float32)
    ok = slot >= 0
    unique, first = _first_index((slot * num_frames + frame)[ok])
    src = rows[np.flatnonzero(ok)[first]]
    out[:4, unique] = src[:, [Col.X_POS, Col.Y_POS, Col.X_SPEED, Col.Y_SPEED]].T
    out[4, unique] = np.isfinite(src[:, Col.ROI_X]).astype(np.float32)
    return out.reshape(5, NUM_SLOTS, num_frames)


class HalfRows:
    """The tactical rows of one half sorted by frame (stable, so "first row" keeps its meaning).

    ``window(start, length)`` returns the rows of frames ``start .. start + length - 1`` without a scan.
    ``first_visible`` / ``last_visible``: first and last frame with any box (the baseline's ``minf``/``maxf``).
    """

    def __init__(self, rows: np.ndarray, key: str = "half"):
        rows = np.asarray(rows)
        frames = rows[:, Col.FRAME]
        if frames.size > 1 and not np.all(frames[1:] >= frames[:-1]):  # FOOTPASS files are sorted: no copy then
            rows = rows[np.argsort(frames, kind="stable")]
        self.key = key
        self.rows = rows
        self.frames = self.rows[:, Col.FRAME].astype(np.int64)
        self.first = int(self.frames[0]) if len(self.frames) else 0
        self.last = int(self.frames[-1]) if len(self.frames) else -1
        visible = self.frames[np.isfinite(self.rows[:, Col.ROI_X])]
        self.first_visible = int(visible[0]) if visible.size else None
        self.last_visible = int(visible[-1]) if visible.size else None

    def window(self, start: int, length: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.frames, [start, start + length], side="left")
        return self.rows[lo:hi]

    def slots(self, start: int, length: int, frame_hw=(352, 640), coeff=EVAL_COEFF) -> dict[str, np.ndarray]:
        return slot_window(self.window(start, length), start, length, frame_hw, coeff)

    def players(self, player_ids, start: int, length: int, frame_hw=(352, 640), coeff=EVAL_COEFF):
        return player_window(self.window(start, length), player_ids, start, length, frame_hw, coeff)

    def teamvec(self, start: int, length: int) -> np.ndarray:
        return teamvec_window(self.window(start, length), start, length)
