"""WebDataset shards of training clips (spec §2.1, §3.1) and their ``manifest.json``.

``fpspot shard`` turns a FOOTPASS-format dataset (real or synthetic: mp4 + tactical HDF5 + play-by-play)
into ``{split}-000000.tar ...`` plus ``manifest.json`` (format ``fpspot-shards/1``, see the common brief).

Clip samples
------------
Per draw (``draws`` = epochs' worth of clips), for each of the 8 classes ``min(n_c, per_class_cap)`` events
are drawn without replacement from the tactical rows with ``CLS != 0`` (only events whose actor has a box
when ``require_box``, as the paper samples), and each event gets a clip of ``clip_len`` frames starting at
``sf ~ U{max(first, e - 35), ..., min(last_start, e - 15) - 1}`` (the event sits at clip position 16..35).
``background_per_half`` extra clips per half start 25 frames before a random frame of
``[first_visible + 50, last_visible - 50)`` that has a visible player, with a random visible player of that
frame as the "actor" (spec §3.1). Only one game's tactical rows are in memory at a time (planning keeps
the event rows and the frames with a box of each half: :class:`HalfSummary`).

Tracks: ``kind="taad"`` has ``tracklets`` (default 5) tracks per clip, up to ``tracklets - 1`` random other
players with a box in the clip and then the actor, padded with id 300; ``kind="taad_gnn"`` has the 26 role
slots. A sample holds (``M`` tracks, ``T`` frames, ``H x W`` frames):

=================  ===============================================================================
``video.mp4``      the ``T`` frames resized to ``H x W`` (area), one H.264 GOP (see below)
``rois.npy``       float32 ``(M, T, 4)`` ``x1, y1, x2, y2`` in ``H x W`` pixels, enlargement 1.125 (spec §1.3)
``masks.npy``      uint8 ``(M, T)``, 1 where the RoI is valid
``labels.npy``     int8 ``(M, T)`` labels dilated by +-1 frame; ``labels_sharp.npy`` the undilated ones
``nodes.npy``      float32 ``(M, T, 6)`` ``[team, shirt, x, y, vx, vy]``, -15 where the track has no row
``boxes.npy``      float32 ``(M, T, 4)`` the Full-HD ``x, y, w, h`` boxes (NaN: none), for box-size jitter
``meta.json``      ``game, half, key, start_frame, num_frames, frame_hw, source (event|background), event
                   {frame, cls, player_id, slot}, actor`` (track index of the actor), ``slots | player_ids,
                   jerseys`` (jersey of each track at the event frame, or at the clip centre; -1 unknown)
=================  ===============================================================================

Samples are spread over ``ceil(n / samples_per_shard)`` shards (default 64 samples: small shards, so that
there are enough to split over processes x workers) by a seeded permutation (every shard mixes games and
classes) while the video of each game is still decoded once, in order. With ``draws = E`` the shards hold E
independent per-class draws (the baseline draws anew every epoch); the loader's default epoch is one draw.

Frame storage, measured by ``benchmarks/loader_speed.py --storage`` on 50-frame 352x640 clips of the synthetic
videos (decode CPU time per clip, one thread, shared 2-core machine; flat-colour frames / frames with a pitch
texture, ``--texture 8``): JPEG q90 per frame 0.9 / 3.9 MB and 63 / 149 ms; raw uint8 ``.npy`` 33.8 MB and
10 ms (a memory copy, but 34 MB to read from disk per clip); zlib-compressed ``.npy`` 2.0 / 18.2 MB and
100 / 194 ms (23-27 MB once per-frame noise is added); one H.264 chunk (CRF 23, one GOP, no B-frames,
``tune=fastdecode``) 37 / 140 kB and 25 / 31 ms. The H.264 chunk is 25-100x smaller than JPEG and the fastest
to decode after raw arrays, which are 240x larger; its loss (mean absolute error 1.8-2.8 grey levels on top of
the source codec) is the price. Shards therefore store H.264 chunks; ``crf`` sets the quality.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
import warnings
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fpspot.data.footpass import FormatError, TacticalFile, read_playbyplay, slot_jersey_table
from fpspot.data.layout import DatasetLayout
from fpspot.data.tracks import EVAL_COEFF, HalfRows, dilate_labels, player_window, slot_window
from fpspot.schema import ACTION_CLASSES, DUMMY_PLAYER_ID, NUM_ACTIONS, NUM_SLOTS, Col, parse_half_key
from fpspot.utils.atomic import atomic_open

MANIFEST_FORMAT = "fpspot-shards/1"
KINDS = ("taad", "taad_gnn", "dst")
#: fields of a clip sample (without the ``.npy`` / ``.mp4`` / ``.json`` extension handled by the loader)
CLIP_FIELDS = ("video.mp4", "rois.npy", "masks.npy", "labels.npy", "labels_sharp.npy", "nodes.npy", "meta.json")


# ------------------------------------------------------------------------------------------ writing


def encode_sample(sample: Mapping[str, object]) -> dict[str, bytes]:
    """Encode a sample for a tar file: ``.npy`` arrays (no pickles), ``.json`` objects; ``bytes`` as they are.

    ``sample`` maps ``"__key__"`` to the sample key and ``"name.ext"`` to a value.
    """
    out: dict[str, bytes] = {}
    for name, value in sample.items():
        if name == "__key__":
            out[name] = str(value).encode()
        elif isinstance(value, (bytes, bytearray)):  # already encoded (e.g. copied from another shard)
            out[name] = bytes(value)
        elif name.endswith(".npy"):
            buffer = io.BytesIO()
            np.save(buffer, np.asarray(value), allow_pickle=False)
            out[name] = buffer.getvalue()
        elif name.endswith(".json"):
            out[name] = json.dumps(value, separators=(",", ":")).encode()
        else:
            raise TypeError(f"sample {sample.get('__key__')!r}: cannot encode field {name!r} of type "
                            f"{type(value).__name__}")
    if "__key__" not in out:
        raise KeyError("a sample needs a '__key__'")
    return out


class ShardSetWriter:
    """Write samples into numbered tar shards ``{prefix}-{i:06d}.tar`` in ``out_dir``.

    ``write(sample, shard=None)``: the sample goes to shard ``shard`` (when given) or to the current shard,
    which is closed after ``samples_per_shard`` samples. Shards are written to temporary files and renamed
    by :meth:`close`, which returns ``[{"name": ..., "samples": n}, ...]`` in shard order. Tar members get
    mtime 0 so the same samples give the same bytes. Use as a context manager (an error discards everything).
    """

    def __init__(self, out_dir: str | os.PathLike, prefix: str, samples_per_shard: int = 200):
        if samples_per_shard < 1:
            raise ValueError(f"samples_per_shard must be >= 1, got {samples_per_shard}")
        self.out_dir = Path(out_dir)
        self.out_dir.mkdir(parents=True, exist_ok=True)
        self.prefix = prefix
        self.samples_per_shard = samples_per_shard
        self._open: dict[int, tuple[Path, tarfile.TarFile]] = {}
        self._counts: dict[int, int] = {}
        self._sequential = 0

    def name(self, index: int) -> str:
        return f"{self.prefix}-{index:06d}.tar"

    def _tar(self, index: int) -> tarfile.TarFile:
        if index not in self._open:
            tmp = self.out_dir / f".{self.name(index)}.{os.getpid()}.tmp"
            self._open[index] = (tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT))
            self._counts.setdefault(index, 0)
        return self._open[index][1]

    def write(self, sample: Mapping[str, object], shard: int | None = None) -> None:
        if shard is None:
            if self._counts.get(self._sequential, 0) >= self.samples_per_shard:
                self._sequential += 1
            shard = self._sequential
        encoded = encode_sample(sample)
        key = encoded.pop("__key__").decode()
        if "." in key or "/" in key:
            raise ValueError(f"sample key {key!r} must not contain '.' or '/' (WebDataset splits names at the "
                             "first dot)")
        tar = self._tar(shard)
        for name in sorted(encoded):
            info = tarfile.TarInfo(f"{key}.{name}")
            info.size = len(encoded[name])
            info.mtime = 0
            info.mode = 0o444
            tar.addfile(info, io.BytesIO(encoded[name]))
        self._counts[shard] = self._counts.get(shard, 0) + 1

    def close(self) -> list[dict]:
        shards = []
        for index in sorted(self._open):
            tmp, tar = self._open[index]
            tar.close()
            os.replace(tmp, self.out_dir / self.name(index))
            shards.append({"name": self.name(index), "samples": self._counts[index]})
        self._open.clear()
        return shards

    def abort(self) -> None:
        for tmp, tar in self._open.values():
            tar.close()
            tmp.unlink(missing_ok=True)
        self._open.clear()

    def __enter__(self) -> "ShardSetWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is not None:
            self.abort()


def write_manifest(out_dir: str | os.PathLike, kind: str, split: str, shards: list[dict],
                   class_counts: Mapping[str, Mapping[str, int]], config: Mapping) -> Path:
    """Write ``manifest.json`` (format ``fpspot-shards/1``) atomically; returns its path."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")
    manifest = {"format": MANIFEST_FORMAT, "kind": kind, "split": split,
                "num_samples": int(sum(s["samples"] for s in shards)), "shards": list(shards),
                "class_counts": {k: {c: int(v.get(c, 0)) for c in ACTION_CLASSES} for k, v in class_counts.items()},
                "config": dict(config)}
    path = Path(out_dir) / "manifest.json"
    with atomic_open(path) as handle:
        json.dump(manifest, handle, indent=1)
    return path


def read_manifest(shard_dir: str | os.PathLike) -> dict:
    """Read and check ``manifest.json`` of a shard folder."""
    path = Path(shard_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except FileNotFoundError:
        raise FormatError(path, "no manifest.json (write shards with `fpspot shard`)") from None
    except json.JSONDecodeError as err:
        raise FormatError(path, f"not valid JSON ({err.msg})") from None
    if manifest.get("format") != MANIFEST_FORMAT:
        raise FormatError(path, f"format must be {MANIFEST_FORMAT!r}, got {manifest.get('format')!r}")
    for name in ("kind", "split", "num_samples", "shards", "class_counts"):
        if name not in manifest:
            raise FormatError(path, f"missing field {name!r}")
    return manifest


# ------------------------------------------------------------------------------------------ planning


@dataclass
class ShardConfig:
    """Options of ``fpspot shard`` (stored in the manifest)."""

    kind: str = "taad"
    clip_len: int = 50
    frame_hw: tuple[int, int] = (352, 640)
    tracklets: int = 5  # M for kind "taad" (4 others + the actor); "taad_gnn" always has 26 slots
    per_class_cap: int = 500
    draws: int = 1
    background_per_half: int | None = None  # default: 0 for taad, 50 for taad_gnn (spec §3.1)
    samples_per_shard: int = 64  # small shards: enough of them to split over processes x workers
    require_box: bool = True
    seed: int = 0
    crf: int = 23

    def __post_init__(self) -> None:
        if self.kind not in ("taad", "taad_gnn"):
            raise ValueError(f"clip shards are 'taad' or 'taad_gnn', got {self.kind!r}")
        if self.clip_len < 36:
            raise ValueError(f"clip_len must be at least 36 (events sit at positions 16..35), got {self.clip_len}")
        self.frame_hw = (int(self.frame_hw[0]), int(self.frame_hw[1]))
        if self.background_per_half is None:
            self.background_per_half = 0 if self.kind == "taad" else 50

    @property
    def num_tracks(self) -> int:
        return self.tracklets if self.kind == "taad" else NUM_SLOTS


@dataclass
class ClipPlan:
    """One clip to write."""

    key: str
    start: int
    source: str  # "event" | "background"
    cls: int  # 0 for background
    frame: int  # event frame (background: the random frame)
    player_id: int
    slot: int
    sample_key: str = ""
    shard: int = 0
    seed: tuple = field(default_factory=tuple)


def _event_rows(rows: np.ndarray) -> np.ndarray:
    if rows.shape[1] <= Col.CLS:
        return rows[:0]
    cls = rows[:, Col.CLS]
    return rows[np.isfinite(cls) & (cls >= 1) & (cls <= NUM_ACTIONS)]


@dataclass
class HalfSummary:
    """What planning needs of a half, without its rows (a real half is ~1.65 M rows, 185 MB).

    ``events``: the rows with an action label; ``visible_frames``: sorted frames with at least one box.
    """

    key: str
    first: int
    last: int
    events: np.ndarray
    visible_frames: np.ndarray

    @classmethod
    def of(cls, half: HalfRows) -> "HalfSummary":
        visible = np.unique(half.frames[np.isfinite(half.rows[:, Col.ROI_X])])
        return cls(half.key, half.first, half.last, _event_rows(half.rows), visible)

    @property
    def first_visible(self) -> int | None:
        return int(self.visible_frames[0]) if self.visible_frames.size else None

    @property
    def last_visible(self) -> int | None:
        return int(self.visible_frames[-1]) if self.visible_frames.size else None


def plan_clips(halves: Mapping[str, HalfRows | HalfSummary], config: ShardConfig) -> list[ClipPlan]:
    """Clips of every draw: per-class capped events plus background clips (see the module docstring).

    Background clips get their frame here (uniform over the frames of ``[first_visible + 50, last_visible -
    50)`` that have a visible player) and their "actor" when the sample is built (:func:`build_clip_sample`).
    """
    halves = {key: half if isinstance(half, HalfSummary) else HalfSummary.of(half) for key, half in halves.items()}
    candidates: list[list[tuple[str, np.ndarray]]] = [[] for _ in range(NUM_ACTIONS)]
    short = [key for key, half in halves.items() if half.last - half.first + 1 < config.clip_len]
    if short:
        warnings.warn(f"skipping {len(short)} halves shorter than a clip of {config.clip_len} frames: {short[:5]}",
                      stacklevel=2)
        halves = {key: half for key, half in halves.items() if key not in short}
    for key, half in halves.items():
        for row in half.events:
            if config.require_box and not np.isfinite(row[Col.ROI_X]):
                continue
            candidates[int(row[Col.CLS]) - 1].append((key, row))
    plans: list[ClipPlan] = []
    for draw in range(config.draws):
        rng = np.random.default_rng([config.seed, draw])
        for c in range(NUM_ACTIONS):
            pool = candidates[c]
            take = min(len(pool), config.per_class_cap)
            for i in rng.choice(len(pool), size=take, replace=False) if take else []:
                key, row = pool[int(i)]
                half = halves[key]
                frame = int(row[Col.FRAME])
                last_start = half.last - config.clip_len + 1
                lo = max(half.first, frame - 35)
                hi = min(last_start, frame - 15)
                if hi > lo:
                    start = int(rng.integers(lo, hi))
                else:  # too close to an end of the half: as close to position 25 as the half allows
                    start = int(np.clip(frame - 25, half.first, max(half.first, last_start)))
                slot = int(row[Col.LEFT_TO_RIGHT] * 13 + row[Col.ROLE_ID] - 1)
                plans.append(ClipPlan(key, start, "event", c + 1, frame, int(row[Col.PLAYER_ID]), slot))
        for key, half in halves.items():
            if half.first_visible is None:
                continue
            lo, hi = np.searchsorted(half.visible_frames, [half.first_visible + 50, half.last_visible - 50])
            for _ in range(config.background_per_half if hi > lo else 0):
                frame = int(half.visible_frames[int(rng.integers(lo, hi))])
                start = int(np.clip(frame - 25, half.first, max(half.first, half.last - config.clip_len + 1)))
                plans.append(ClipPlan(key, start, "background", 0, frame, -1, -1))
    rng = np.random.default_rng([config.seed, 1_000_003])
    order = rng.permutation(len(plans))
    num_shards = max(1, -(-len(plans) // config.samples_per_shard))
    for position, index in enumerate(order):
        plan = plans[index]
        plan.shard = int(position * num_shards // max(1, len(plans)))
        plan.sample_key = f"{plan.key}_{plan.start:07d}_{plan.source[0]}{index:06d}"
        plan.seed = (config.seed, int(index))
    return plans


# ------------------------------------------------------------------------------------------ samples


def build_clip_sample(half: HalfRows, plan: ClipPlan, frames: np.ndarray, config: ShardConfig) -> dict:
    """The sample of one planned clip; ``frames``: ``(T, H, W, 3)`` uint8 already at ``config.frame_hw``."""
    from fpspot.data.video import encode_clip

    game, half_index = parse_half_key(plan.key)
    t = config.clip_len
    window = half.window(plan.start, t)
    if plan.player_id < 0:  # a background clip: a random player with a box at its frame is the "actor"
        at_frame = half.window(plan.frame, 1)
        at_frame = at_frame[np.isfinite(at_frame[:, Col.ROI_X])]
        if not len(at_frame):
            raise ValueError(f"{half.key}: no player has a box at frame {plan.frame} (background clip "
                             f"{plan.sample_key})")
        row = at_frame[int(np.random.default_rng([*plan.seed, 1]).integers(len(at_frame)))]
        slot = int(row[Col.LEFT_TO_RIGHT] * 13 + row[Col.ROLE_ID] - 1)
        plan = replace(plan, player_id=int(row[Col.PLAYER_ID]), slot=slot)
    rel = plan.frame - plan.start
    centre = rel if 0 <= rel < t else t // 2
    meta = {"game": game, "half": half_index, "key": plan.key, "start_frame": plan.start, "num_frames": t,
            "frame_hw": list(config.frame_hw), "source": plan.source,
            "event": {"frame": plan.frame, "cls": plan.cls, "player_id": plan.player_id, "slot": plan.slot}
            if plan.source == "event" else None}
    if config.kind == "taad_gnn":
        arrays = slot_window(window, plan.start, t, config.frame_hw, EVAL_COEFF)
        jerseys = slot_jersey_table(window, t, plan.start)[:, centre]
        meta["slots"] = list(range(NUM_SLOTS))
        meta["actor"] = plan.slot
    else:
        rng = np.random.default_rng(list(plan.seed))
        pid = window[:, Col.PLAYER_ID]
        with_box = np.isfinite(window[:, Col.ROI_X])
        others = np.unique(pid[with_box & (pid != plan.player_id)]).astype(np.int64)
        chosen = rng.permutation(others)[: config.tracklets - 1].tolist()
        ids = [DUMMY_PLAYER_ID] * (config.tracklets - 1 - len(chosen)) + chosen + [plan.player_id]
        arrays = player_window(window, ids, plan.start, t, config.frame_hw, EVAL_COEFF)
        jerseys = []
        for player in ids:
            shirts = window[(pid == player) & np.isfinite(window[:, Col.SHIRT_NUMBER]), Col.SHIRT_NUMBER]
            jerseys.append(int(shirts[0]) if player != DUMMY_PLAYER_ID and shirts.size else -1)
        meta["player_ids"] = [int(i) for i in ids]
        meta["actor"] = len(ids) - 1
    meta["jerseys"] = [int(j) for j in jerseys]
    sharp = arrays["labels_sharp"]
    return {
        "__key__": plan.sample_key,
        "video.mp4": encode_clip(frames, crf=config.crf),
        "rois.npy": arrays["rois"],
        "masks.npy": arrays["masks"].astype(np.uint8),
        "labels.npy": dilate_labels(sharp).astype(np.int8),
        "labels_sharp.npy": sharp.astype(np.int8),
        "nodes.npy": arrays["nodes"],
        "boxes.npy": arrays["boxes"],
        "meta.json": meta,
    }


class ForwardClips:
    """Clips of one video requested in increasing start order: overlapping clips share decoded frames.

    Frames are decoded forward once; a request starting more than ``seek_gap`` frames after the last decoded
    frame (or before the buffer) restarts the reader there (a keyframe seek).
    """

    def __init__(self, reader, seek_gap: int = 250):
        self.reader = reader
        self.seek_gap = seek_gap
        self._frames = None
        self._buffer: deque[np.ndarray] = deque()
        self._start = 0  # frame number of _buffer[0]

    def get(self, start: int, stop: int) -> np.ndarray:
        end = self._start + len(self._buffer)
        if self._frames is None or start < self._start or start > end + self.seek_gap:
            self._frames = self.reader.frames(start)
            self._buffer.clear()
            self._start = end = start
        while self._buffer and self._start < start:
            self._buffer.popleft()
            self._start += 1
        while self._start + len(self._buffer) < stop:
            frame = next(self._frames, None)
            if frame is None:
                raise FormatError(self.reader.name, f"the video ends at frame {self._start + len(self._buffer) - 1}, "
                                  f"the clip needs frames {start}..{stop - 1}")
            if self._start + len(self._buffer) < start:
                self._start += 1
                continue
            self._buffer.append(frame)
        return np.stack(list(self._buffer)[: stop - start])


def class_counts(layout: DatasetLayout, split: str, halves: Mapping[str, HalfRows | HalfSummary]
                 ) -> dict[str, dict[str, int]]:
    """Per-class event counts of the split's halves: all events and events whose actor has a box.

    From the ground-truth play-by-play when present, else from the tactical ``CLS`` column.
    """
    all_counts = np.zeros(NUM_ACTIONS, np.int64)
    box_counts = np.zeros(NUM_ACTIONS, np.int64)
    gt_path = layout.ground_truth(split)
    if gt_path.is_file():
        pbp = read_playbyplay(gt_path, "gt")
        for key in halves:
            for event in pbp.events.get(key, []):
                all_counts[event.cls - 1] += 1
                box_counts[event.cls - 1] += event.bbox
    else:
        for half in halves.values():
            rows = half.events if isinstance(half, HalfSummary) else _event_rows(half.rows)
            cls = rows[:, Col.CLS].astype(np.int64) - 1
            np.add.at(all_counts, cls, 1)
            np.add.at(box_counts, cls, np.isfinite(rows[:, Col.ROI_X]).astype(np.int64))
    return {"all": dict(zip(ACTION_CLASSES, all_counts.tolist())),
            "box_visible": dict(zip(ACTION_CLASSES, box_counts.tolist()))}


def write_clip_shards(data_dir: str | os.PathLike, split: str, out_dir: str | os.PathLike, config: ShardConfig,
                      progress: Callable[[int], None] | None = None) -> dict:
    """Plan, cut, encode and write the clip shards of ``split``; returns the manifest."""
    from fpspot.data.video import VideoReader

    layout = DatasetLayout(data_dir)
    path = layout.tactical(split)
    if not path.is_file():
        raise FormatError(path, f"no tactical file for split {split!r}")
    with TacticalFile(path) as tf:  # one half in memory at a time
        keys = tf.keys()
        if not all(tf.has_labels(k) for k in keys):
            raise FormatError(path, "clip shards need the CLS column (14 columns); challenge files have none")
        halves = {key: HalfSummary.of(HalfRows(tf.read(key), key)) for key in keys}
    out_dir = Path(out_dir)
    if (out_dir / "manifest.json").is_file():
        previous = read_manifest(out_dir)
        if previous["split"] != split:
            raise FormatError(out_dir / "manifest.json", f"this folder holds {previous['split']!r} shards; write "
                              f"split {split!r} to a folder of its own (one manifest per folder)")
    plans = plan_clips(halves, config)
    counts = class_counts(layout, split, halves)
    by_game: dict[int, list[ClipPlan]] = {}
    for plan in plans:
        by_game.setdefault(parse_half_key(plan.key)[0], []).append(plan)
    with ShardSetWriter(out_dir, split, config.samples_per_shard) as writer:
        for game in sorted(by_game):
            video = layout.video(game)
            with TacticalFile(path) as tf:  # the rows of this game's halves only
                rows = {key: HalfRows(tf.read(key), key) for key in sorted({p.key for p in by_game[game]})}
            with VideoReader(video, size=config.frame_hw) as reader:
                clips = ForwardClips(reader)
                for plan in sorted(by_game[game], key=lambda p: (p.start, p.sample_key)):
                    reader.name = f"{video} ({plan.key}, clip {plan.sample_key})"
                    frames = clips.get(plan.start, plan.start + config.clip_len)
                    writer.write(build_clip_sample(rows[plan.key], plan, frames, config), shard=plan.shard)
                    if progress is not None:
                        progress(1)
        shards = writer.close()
    for stale in out_dir.glob(f"{split}-*.tar"):
        if stale.name not in {s["name"] for s in shards}:
            stale.unlink()
    options = asdict(config)
    options["frame_hw"] = list(config.frame_hw)
    options["num_tracks"] = config.num_tracks
    options["data"] = str(Path(data_dir))
    write_manifest(out_dir, config.kind, split, shards, counts, options)
    return read_manifest(out_dir)


def shard_urls(shard_dir: str | os.PathLike) -> tuple[list[str], dict[str, int], dict]:
    """``(urls, samples per url, manifest)`` of a shard folder, in manifest order."""
    manifest = read_manifest(shard_dir)
    urls = [str(Path(shard_dir) / s["name"]) for s in manifest["shards"]]
    counts = {url: int(s["samples"]) for url, s in zip(urls, manifest["shards"])}
    return urls, counts, manifest


__all__ = [
    "CLIP_FIELDS", "ClipPlan", "HalfSummary", "ShardConfig", "ShardSetWriter", "build_clip_sample", "class_counts",
    "encode_sample", "plan_clips", "read_manifest", "shard_urls", "write_clip_shards", "write_manifest",
]

