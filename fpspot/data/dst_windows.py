"""Training and validation windows of the DST (spec §4.1, §4.2, §4.4), sampled on the fly from per-half arrays.

Storage
-------
:func:`write_dst_windows` turns a split of a FOOTPASS-format dataset (tactical HDF5 with the ``CLS`` column)
and a folder of per-half logits files (:func:`fpspot.infer.api.save_logits`, ``{key}.safetensors``) into
one set of arrays per half, over the frames ``[first_visible, min(last_visible, N_logits - 1)]``, time-major
so that a window is one contiguous read of a memory-mapped file::

    OUT/manifest.json                 {"format": "fpspot-dst/1", "kind": "dst", "split", "halves": [...],
                                       "class_counts": {"all": {...}, "box_visible": {...}}, "config": {...}}
    OUT/{key}.teamvec.npy             (N, 5, 26)  [x, y, vx, vy, obs], -15 where a slot has no row
    OUT/{key}.logits.npy              (N, 9, 26)  raw TAAD logits
    OUT/{key}.gnn_logits.npy          (N, 9, 26)  raw GNN logits (only with gnn_logits_dir)
    OUT/{key}.events.npy              (E, 4) int64 [abs frame, class 1..8, slot, bbox], sorted by (frame, slot)

Why not window shards: a 750-frame window holds 1.1 MB (1.8 MB with GNN logits) of float32 inputs, and
the baseline draws 2,000 random windows per half per epoch (192,000 for 96 halves: ~210 GB per epoch if
written out), while the per-half arrays of 96 halves of about 75k frames take about 5 GB in float16
(8.6 GB with GNN logits; ``dtype="float32"`` doubles it). Sampling windows from them gives fresh random
start frames and mirrors every epoch, costs one memory-mapped slice per window, and makes the data of an
epoch a pure function of ``(seed, epoch)``, so a resumed run sees exactly the batches it would have seen.
float16 is the precision of the baseline's own logits files (``avg_logits_*.npy``).

Windows
-------
* Training (:func:`dst_train_loader`): per epoch ``windows_per_half`` windows of every half (spec: 2000) in
  a random order; start frame uniform over ``[lo, max(lo, hi - T + 1)]`` (the stored span; the baseline's
  range is two frames shorter, an artefact); one of the four mirror options of spec §4.4 with p = 1/4.
  The plan is global (independent of the number of processes): global batch ``k`` is plan items
  ``[k G, (k+1) G)`` with ``G = batch_size x world_size``, and process ``r`` takes the ``r``-th slice of
  ``batch_size``; the last incomplete global batch is dropped, so every process yields the same number of
  batches.
* Validation (:func:`dst_eval_loader`): the windows the inference uses (contiguous, non-overlapping,
  from ``lo``; the last one padded with ``frame_index = -1``), not augmented. Each window is given to one
  process; shares are padded to equal length with copies flagged ``meta["padding"] = True`` whose targets
  are fully masked (they add nothing to the loss), so every process yields the same number of batches.

A window's target sequence (spec §4.2): ``[SOS(8, 26, 0), e_1 .. e_N, EOS(9, 26, rel(e_N) + 1)]``, with
``e = (class - 1, slot, rel frame)``, ``rel = frame - start + 1`` in ``1..T``, events sorted by frame (then
slot); with no event ``EOS`` has frame ``T + 1``.

Mirrors (spec §4.4): new slot ``i`` takes old slot ``perm[i]`` in the team vectors and both logit streams;
``x -> 1 - x, vx -> -vx`` (X), ``y -> 1 - y, vy -> -vy`` (Y), both (XY), only on entries that are not -15;
``obs`` is unchanged; an event of old slot ``s`` moves to slot ``perm^-1[s]``.

Batch (the DST batch contract): ``teamvec (B, 5, 26, T)``, ``logits (B, 9, 26, T)``, [``gnn_logits``],
``frame_index (B, T)`` int64, ``tgt_action``, ``tgt_slot``, ``tgt_frame`` ``(B, L)`` int64, ``tgt_mask (B, L)``
bool and ``meta`` (list of ``{key, start, mirror, padding}``).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fpspot.data.footpass import FormatError, TacticalFile, slot_index
from fpspot.data.layout import DatasetLayout
from fpspot.data.tracks import HalfRows
from fpspot.schema import ACTION_CLASSES, MISSING_FILL, NUM_ACTIONS, NUM_CLASSES, NUM_SLOTS, Col
from fpspot.utils.atomic import atomic_open

DST_FORMAT = "fpspot-dst/1"
SOS, EOS, NEUTRAL_SLOT = NUM_ACTIONS, NUM_ACTIONS + 1, NUM_SLOTS
MIRRORS = ("none", "x", "y", "xy")
#: new slot i <- old slot perm[i] (spec §4.4, literally)
SLOT_PERMUTATIONS: dict[str, np.ndarray] = {
    "none": np.arange(NUM_SLOTS),
    "x": np.array([13, 25, 17, 16, 15, 19, 18, 20, 21, 23, 22, 24, 14, 0, 12, 4, 3, 2, 6, 5, 7, 8, 10, 9, 11, 1]),
    "y": np.array([0, 12, 4, 3, 2, 6, 5, 7, 8, 10, 9, 11, 1, 13, 25, 17, 16, 15, 19, 18, 20, 21, 23, 22, 24, 14]),
    "xy": np.array([*range(13, 26), *range(13)]),
}
_FLIPS = {"none": (), "x": (0, 2), "y": (1, 3), "xy": (0, 1, 2, 3)}  # teamvec channels changed by each mirror
STREAMS = ("teamvec", "logits", "gnn_logits")


# ================================================================================================ targets


def half_events(rows: np.ndarray) -> np.ndarray:
    """Ground-truth events of a half from its tactical rows: ``(E, 4)`` int64 ``[frame, class, slot, bbox]``
    of the rows with ``CLS`` in 1..8 and a valid role, sorted by (frame, slot)."""
    rows = np.asarray(rows)
    if rows.shape[1] <= Col.CLS:
        return np.zeros((0, 4), np.int64)
    cls = rows[:, Col.CLS]
    slot = slot_index(rows)
    keep = np.isfinite(cls) & (cls >= 1) & (cls <= NUM_ACTIONS) & (slot >= 0)
    events = np.stack([rows[keep, Col.FRAME], cls[keep], slot[keep], np.isfinite(rows[keep, Col.ROI_X])],
                      axis=1).astype(np.int64)
    return events[np.lexsort((events[:, 2], events[:, 0]))]


def target_sequence(events: np.ndarray, start: int, length: int, valid_length: int | None = None
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(actions, slots, frames)`` int64 ``(N + 2,)`` of the window ``start .. start + length - 1`` (spec §4.2).

    events: ``(E, >=3)`` ``[abs frame, class, slot, ...]`` sorted by frame; only events in the first
    ``valid_length`` frames (default ``length``: the rest is padding) are targets.
    """
    valid_length = length if valid_length is None else valid_length
    frames = events[:, 0]
    inside = events[(frames >= start) & (frames < start + valid_length)]
    rel = inside[:, 0] - start + 1
    eos_frame = int(rel[-1]) + 1 if len(rel) else length + 1
    actions = np.concatenate([[SOS], inside[:, 1] - 1, [EOS]]).astype(np.int64)
    slots = np.concatenate([[NEUTRAL_SLOT], inside[:, 2], [NEUTRAL_SLOT]]).astype(np.int64)
    frames = np.concatenate([[0], rel, [eos_frame]]).astype(np.int64)
    return actions, slots, frames


def mirror_window(arrays: dict[str, np.ndarray], slots: np.ndarray, option: str
                  ) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Apply a mirror option (spec §4.4) to a window's streams and its events' slots.

    arrays: ``teamvec (5, 26, T)`` and ``logits`` / ``gnn_logits`` ``(9, 26, T)`` (any present);
    slots: ``(N,)`` event slots. Returns new arrays and slots (inputs are not modified).
    """
    if option not in SLOT_PERMUTATIONS:
        raise ValueError(f"mirror option must be one of {MIRRORS}, got {option!r}")
    if option == "none":
        return dict(arrays), np.asarray(slots).copy()
    perm = SLOT_PERMUTATIONS[option]
    out = {name: np.ascontiguousarray(a[:, perm]) for name, a in arrays.items()}
    if "teamvec" in out:
        teamvec = out["teamvec"]
        for channel in _FLIPS[option]:
            values = teamvec[channel]
            present = values != MISSING_FILL
            values[present] = (1.0 - values[present]) if channel < 2 else -values[present]
    inverse = np.argsort(perm)
    return out, inverse[np.asarray(slots, dtype=np.int64)]


def pad_targets(sequences: Sequence[tuple[Sequence[int], Sequence[int], Sequence[int]]],
                masked: Sequence[bool] | None = None) -> dict[str, torch.Tensor]:
    """``tgt_action``, ``tgt_slot``, ``tgt_frame`` ``(B, L)`` int64 (0 at padding) and ``tgt_mask`` ``(B, L)``
    bool from per-window ``(actions, slots, frames)`` that already hold SOS and EOS. ``masked[i]``: window
    ``i`` is a filler whose targets are all masked out."""
    length = max(len(seq[0]) for seq in sequences)
    out = {k: torch.zeros(len(sequences), length, dtype=torch.long) for k in ("tgt_action", "tgt_slot", "tgt_frame")}
    mask = torch.zeros(len(sequences), length, dtype=torch.bool)
    for i, (actions, slots, frames) in enumerate(sequences):
        n = len(actions)
        out["tgt_action"][i, :n] = torch.as_tensor(np.asarray(actions, dtype=np.int64))
        out["tgt_slot"][i, :n] = torch.as_tensor(np.asarray(slots, dtype=np.int64))
        out["tgt_frame"][i, :n] = torch.as_tensor(np.asarray(frames, dtype=np.int64))
        mask[i, :n] = not (masked is not None and masked[i])
    out["tgt_mask"] = mask
    return out


# ================================================================================================ writing


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_open(path, "wb") as handle:
        np.save(handle, np.ascontiguousarray(array), allow_pickle=False)


def load_half_logits(folder: str | os.PathLike, key: str) -> np.ndarray:
    from fpspot.infer.api import load_logits

    path = Path(folder) / f"{key}.safetensors"
    if not path.is_file():
        raise FormatError(path, "no logits file for this half (write them with fpspot.infer.api.save_logits)", key)
    stored_key, logits = load_logits(path)
    if stored_key != key:
        raise FormatError(path, f"holds the logits of {stored_key!r}", key)
    if logits.ndim != 3 or logits.shape[:2] != (NUM_CLASSES, NUM_SLOTS):
        raise FormatError(path, f"logits must have shape (9, 26, N), got {logits.shape}", key)
    return logits


def half_arrays(rows: HalfRows, logits: np.ndarray, gnn_logits: np.ndarray | None = None,
                dtype: str = "float16") -> dict[str, Any] | None:
    """The stored arrays of one half (see the module docstring), or ``None`` when no frame is usable.

    logits / gnn_logits: ``(9, 26, N)`` with absolute frames 0..N-1.
    """
    if rows.first_visible is None:
        return None
    last = min(rows.last_visible, logits.shape[2] - 1)
    if gnn_logits is not None:
        last = min(last, gnn_logits.shape[2] - 1)
    first = rows.first_visible
    if last < first:
        return None
    n = last - first + 1
    out: dict[str, Any] = {
        "first": first,
        "num_frames": n,
        "teamvec": np.moveaxis(rows.teamvec(first, n), 2, 0).astype(dtype),
        "logits": np.moveaxis(logits[:, :, first:last + 1], 2, 0).astype(dtype),
        "events": half_events(rows.rows),
    }
    if gnn_logits is not None:
        out["gnn_logits"] = np.moveaxis(gnn_logits[:, :, first:last + 1], 2, 0).astype(dtype)
    return out


def write_dst_windows(data_dir: str | os.PathLike, split: str, logits_dir: str | os.PathLike,
                      out_dir: str | os.PathLike, gnn_logits_dir: str | os.PathLike | None = None,
                      dtype: str = "float16", keys: Sequence[str] | None = None,
                      progress: Callable[[int], None] | None = None) -> dict:
    """Write the DST inputs of ``split`` (every half, or ``keys``) into ``out_dir``; returns the manifest.

    The manifest is written last, so a folder with a ``manifest.json`` is complete.
    """
    if dtype not in ("float16", "float32"):
        raise ValueError(f"dtype must be 'float16' or 'float32', got {dtype!r}")
    layout = DatasetLayout(data_dir)
    path = layout.tactical(split)
    if not path.is_file():
        raise FormatError(path, f"no tactical file for split {split!r}")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "manifest.json").unlink(missing_ok=True)
    halves, skipped = [], []
    counts = {"all": np.zeros(NUM_ACTIONS, np.int64), "box_visible": np.zeros(NUM_ACTIONS, np.int64)}
    with TacticalFile(path) as tf:
        for key in (tf.keys() if keys is None else list(keys)):
            if not tf.has_labels(key):
                raise FormatError(path, "DST windows need the CLS column (14 columns); challenge files have none",
                                  key)
            rows = HalfRows(tf.read(key), key)
            logits = load_half_logits(logits_dir, key)
            gnn = load_half_logits(gnn_logits_dir, key) if gnn_logits_dir is not None else None
            arrays = half_arrays(rows, logits, gnn, dtype)
            if arrays is None:
                skipped.append(key)
                continue
            events = arrays["events"]
            np.add.at(counts["all"], events[:, 1] - 1, 1)
            np.add.at(counts["box_visible"], events[:, 1] - 1, events[:, 3])
            for name in (*STREAMS, "events"):
                if name in arrays:
                    _save_npy(out / f"{key}.{name}.npy", arrays[name])
            halves.append({"key": key, "first": int(arrays["first"]), "num_frames": int(arrays["num_frames"]),
                           "num_events": int(len(events))})
            if progress is not None:
                progress(1)
    manifest = {
        "format": DST_FORMAT, "kind": "dst", "split": split, "num_halves": len(halves), "halves": halves,
        "skipped": skipped,
        "class_counts": {k: dict(zip(ACTION_CLASSES, v.tolist())) for k, v in counts.items()},
        "config": {"data": str(Path(data_dir)), "logits_dir": str(Path(logits_dir)),
                   "gnn_logits_dir": None if gnn_logits_dir is None else str(Path(gnn_logits_dir)),
                   "gnn_logits": gnn_logits_dir is not None, "dtype": dtype},
    }
    with atomic_open(out / "manifest.json") as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def read_dst_manifest(inputs_dir: str | os.PathLike) -> dict:
    """Read and check the ``manifest.json`` of a folder written by :func:`write_dst_windows`."""
    path = Path(inputs_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(path, "no manifest.json (write the DST inputs with write_dst_windows)") from None
    except json.JSONDecodeError as err:
        raise FormatError(path, f"not valid JSON ({err.msg})") from None
    if manifest.get("format") != DST_FORMAT:
        raise FormatError(path, f"format must be {DST_FORMAT!r}, got {manifest.get('format')!r}")
    for name in ("split", "halves", "class_counts", "config"):
        if name not in manifest:
            raise FormatError(path, f"missing field {name!r}")
    if not manifest["halves"]:
        raise FormatError(path, "no half with usable frames")
    return manifest


# ================================================================================================ reading


class DSTInputs:
    """Memory-mapped per-half arrays of a folder written by :func:`write_dst_windows`.

    ``window(h, start, length, mirror)`` cuts one sample; files are opened lazily (per worker process).
    """

    def __init__(self, inputs_dir: str | os.PathLike):
        self.root = Path(inputs_dir)
        self.manifest = read_dst_manifest(self.root)
        self.halves: list[dict] = self.manifest["halves"]
        self.has_gnn = bool(self.manifest["config"].get("gnn_logits", False))
        self._arrays: dict[tuple[int, str], np.ndarray] = {}

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_arrays"] = {}
        return state

    def __len__(self) -> int:
        return len(self.halves)

    def array(self, h: int, name: str) -> np.ndarray:
        if (h, name) not in self._arrays:
            path = self.root / f"{self.halves[h]['key']}.{name}.npy"
            try:
                self._arrays[h, name] = np.load(path, mmap_mode="r" if name != "events" else None, allow_pickle=False)
            except FileNotFoundError:
                raise FormatError(path, "listed in the manifest but missing", self.halves[h]["key"]) from None
        return self._arrays[h, name]

    def span(self, h: int) -> tuple[int, int]:
        """First and last stored absolute frame of half ``h``."""
        half = self.halves[h]
        return int(half["first"]), int(half["first"]) + int(half["num_frames"]) - 1

    def window(self, h: int, start: int, length: int, mirror: str = "none") -> dict[str, Any]:
        """Sample of frames ``start .. start + length - 1`` of half ``h`` (frames after the stored span are
        padding: teamvec -15, logits 0, ``frame_index`` -1)."""
        first, last = self.span(h)
        if start < first:
            raise ValueError(f"{self.halves[h]['key']}: window start {start} before the first stored frame {first}")
        valid = max(0, min(length, last + 1 - start))
        lo = start - first
        arrays = {}
        for name in STREAMS if self.has_gnn else STREAMS[:2]:
            fill = MISSING_FILL if name == "teamvec" else 0.0
            data = self.array(h, name)
            block = np.full((length, *data.shape[1:]), fill, np.float32)
            block[:valid] = data[lo:lo + valid]
            arrays[name] = np.moveaxis(block, 0, 2)  # (C, 26, T)
        events = self.array(h, "events")
        actions, slots, frames = target_sequence(events, start, length, valid)
        arrays, inner = mirror_window(arrays, slots[1:-1], mirror)
        slots = np.concatenate([[NEUTRAL_SLOT], inner, [NEUTRAL_SLOT]]).astype(np.int64)
        frame_index = np.full(length, -1, np.int64)
        frame_index[:valid] = np.arange(1, valid + 1)
        return {**{k: np.ascontiguousarray(v) for k, v in arrays.items()}, "frame_index": frame_index,
                "tgt_action": actions, "tgt_slot": slots, "tgt_frame": frames,
                "meta": {"key": self.halves[h]["key"], "start": int(start), "mirror": mirror, "padding": False}}


def collate_dst(samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stack DST samples into the batch of the DST contract (targets padded, filler windows masked)."""
    batch: dict[str, Any] = {}
    for name in (*STREAMS, "frame_index"):
        if name in samples[0]:
            batch[name] = torch.from_numpy(np.stack([s[name] for s in samples]))
    batch.update(pad_targets([(s["tgt_action"], s["tgt_slot"], s["tgt_frame"]) for s in samples],
                             [bool(s["meta"].get("padding", False)) for s in samples]))
    batch["meta"] = [s["meta"] for s in samples]
    return batch


class DSTWindowDataset(torch.utils.data.Dataset):
    """Map-style dataset over planned windows ``(half, start, mirror id, padding flag)``."""

    def __init__(self, inputs: DSTInputs, plan: np.ndarray, window: int):
        self.inputs, self.plan, self.window_length = inputs, np.asarray(plan, dtype=np.int64).reshape(-1, 4), window

    def __len__(self) -> int:
        return len(self.plan)

    def __getitem__(self, index: int) -> dict[str, Any]:
        h, start, mirror, padding = (int(v) for v in self.plan[index])
        sample = self.inputs.window(h, start, self.window_length, MIRRORS[mirror])
        sample["meta"]["padding"] = bool(padding)
        return sample


def train_plan(inputs: DSTInputs, window: int, windows_per_half: int, epoch: int, seed: int,
               augment: bool = True) -> np.ndarray:
    """Windows of one training epoch, ``(H * windows_per_half, 4)`` int64 ``[half, start, mirror, 0]`` in a
    random order; a pure function of the arguments."""
    rng = np.random.default_rng([int(seed), int(epoch), 0xD57])
    spans = np.array([inputs.span(h) for h in range(len(inputs))], dtype=np.int64).reshape(-1, 2)
    halves = rng.permutation(np.repeat(np.arange(len(inputs)), windows_per_half))
    lo = spans[halves, 0]
    hi = np.maximum(lo, spans[halves, 1] - window + 1)
    starts = lo + np.floor(rng.random(len(halves)) * (hi - lo + 1)).astype(np.int64)
    mirrors = rng.integers(0, len(MIRRORS), len(halves)) if augment else np.zeros(len(halves), np.int64)
    return np.stack([halves, starts, mirrors, np.zeros_like(halves)], axis=1)


def eval_plan(inputs: DSTInputs, window: int) -> np.ndarray:
    """The inference windows of every half: contiguous from the first stored frame, the last one padded."""
    items = []
    for h in range(len(inputs)):
        first, last = inputs.span(h)
        items.extend((h, start, 0, 0) for start in range(first, last + 1, window))
    return np.asarray(items, dtype=np.int64).reshape(-1, 4)


def _processes(rank: int | None, world_size: int | None) -> tuple[int, int]:
    if rank is None or world_size is None:
        from accelerate import PartialState

        state = PartialState()
        rank = state.process_index if rank is None else rank
        world_size = state.num_processes if world_size is None else world_size
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} outside 0..{world_size - 1}")
    return int(rank), int(world_size)


def _loader(dataset: DSTWindowDataset, batches: list[list[int]], num_workers: int) -> torch.utils.data.DataLoader:
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, collate_fn=collate_dst,
                                       num_workers=num_workers, persistent_workers=False)


def dst_train_loader(inputs_dir: str | os.PathLike | DSTInputs, batch_size: int, epoch: int, seed: int,
                     rank: int | None = None, world_size: int | None = None, *, window: int = 750,
                     windows_per_half: int = 2000, augment: bool = True, num_workers: int = 0,
                     start_batch: int = 0) -> torch.utils.data.DataLoader:
    """Training batches of one epoch for process ``rank`` of ``world_size`` (default: from Accelerate).

    Deterministic given the arguments; processes get disjoint windows and the same number of batches
    (``len(loader)``); ``start_batch`` skips the first batches (exact resume inside an epoch).
    """
    inputs = inputs_dir if isinstance(inputs_dir, DSTInputs) else DSTInputs(inputs_dir)
    rank, world_size = _processes(rank, world_size)
    plan = train_plan(inputs, window, windows_per_half, epoch, seed, augment)
    global_batch = batch_size * world_size
    num_batches = len(plan) // global_batch
    if num_batches == 0:
        raise ValueError(f"{inputs.root}: {len(plan)} windows per epoch do not fill one global batch of "
                         f"{global_batch} ({batch_size} x {world_size} processes); raise windows_per_half")
    batches = [list(range(k * global_batch + rank * batch_size, k * global_batch + (rank + 1) * batch_size))
               for k in range(start_batch, num_batches)]
    return _loader(DSTWindowDataset(inputs, plan, window), batches, num_workers)


def dst_eval_loader(inputs_dir: str | os.PathLike | DSTInputs, batch_size: int, rank: int | None = None,
                    world_size: int | None = None, *, window: int = 750, num_workers: int = 0
                    ) -> torch.utils.data.DataLoader:
    """Validation batches for process ``rank``: every inference window of the split exactly once over the
    processes (fillers flagged ``meta["padding"]`` equalise the number of batches)."""
    inputs = inputs_dir if isinstance(inputs_dir, DSTInputs) else DSTInputs(inputs_dir)
    rank, world_size = _processes(rank, world_size)
    plan = eval_plan(inputs, window)
    share = -(-len(plan) // world_size)
    mine = plan[rank * share:(rank + 1) * share]
    filler = np.repeat(plan[:1], share - len(mine), axis=0)
    filler[:, 3] = 1
    mine = np.concatenate([mine, filler])
    batches = [list(range(i, min(i + batch_size, len(mine)))) for i in range(0, len(mine), batch_size)]
    return _loader(DSTWindowDataset(inputs, mine, window), batches, num_workers)


__all__ = [
    "DST_FORMAT", "DSTInputs", "DSTWindowDataset", "MIRRORS", "SLOT_PERMUTATIONS", "collate_dst", "dst_eval_loader",
    "dst_train_loader", "eval_plan", "half_arrays", "half_events", "mirror_window", "pad_targets",
    "load_half_logits", "read_dst_manifest", "target_sequence", "train_plan", "write_dst_windows",
]
