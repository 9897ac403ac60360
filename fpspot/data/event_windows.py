"""Time windows of play-by-play for the event-sequence DST: clean windows in shards, noisy inputs on the fly.

A half is cut into windows of ``length`` frames (750 = 30 s) every ``stride`` frames. A *clean window*
(:func:`cut_windows`) keeps the ground-truth events of ``[start - margin, start + length + margin)`` (the
margin lets events just outside the window leave jittered detections, ghosts and duplicates inside it) and
the half's active players; it is what the shards store. The loader corrupts each clean window with
:mod:`fpspot.data.corrupt` using a generator seeded from ``(seed, epoch, sample key)``
(:class:`WindowCorruptor`), so every epoch sees fresh noise and a run is reproducible.

Players are not a closed vocabulary, so the model refers to them by *pointing*: the window's player table
lists the distinct ``(team, jersey)`` pairs of the input events (sorted by team, jersey), then -- for
training only -- the target players absent from the input (``player_known = False``: the "unknown player"
case, whose jersey the model cannot recover from its input).

Tokens of one window (:func:`tokenize_window`; frames relative to the window, ``1..length``):

* inputs, ``N`` noisy events sorted by frame: ``in_cls`` int64 ``(N,)`` 1..8, ``in_team`` int64 ``(N,)``,
  ``in_frame`` int64 ``(N,)``, ``in_score`` float32 ``(N,)``, ``in_player`` int64 ``(N,)`` index into the
  player table, ``in_features`` float32 ``(N, 11)`` = ``[one-hot class (8), team, frame / length, score]``;
* players, ``P``: ``players`` int64 ``(P, 2)`` ``[team, jersey]``, ``player_known`` bool ``(P,)``;
* targets, ``M`` clean events in the window sorted by frame: ``tgt_cls``, ``tgt_team``, ``tgt_player``
  (pointer into the player table), ``tgt_frame``, all int64 ``(M,)``, and ``tgt_known`` bool ``(M,)``.

:func:`collate_windows` pads a list of token dicts into a batch: int fields padded with -1, floats with 0,
plus ``in_mask (B, N_max)``, ``player_mask (B, P_max)``, ``tgt_mask (B, M_max)`` and ``meta``.

Shards (:func:`write_window_shards`): WebDataset tars written with ``webdataset.TarWriter``, one sample per
window with fields ``gt.npy`` int64 ``(K, 6)`` ``[rel frame, team, jersey, class, bbox, replay]`` (rel frame
may be <= 0 or > length inside the margin), ``players.npy`` int64 ``(Q, 3)`` ``[team, jersey, events in the
half]`` and ``meta.json`` ``{key, start_frame, length, margin}``; no pickles (``np.save(allow_pickle=False)``).
A ``manifest.json`` (``"format": "fpspot-shards/1"``, ``"kind": "event_dst"``) lists shards and class counts.
"""

from __future__ import annotations

import io
import json
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from fpspot.data.corrupt import CorruptionParams, corrupt_half, half_seed
from fpspot.data.footpass import PlayByPlay, load_playbyplay
from fpspot.schema import ACTION_CLASSES, NUM_ACTIONS
from fpspot.utils.atomic import atomic_open, atomic_path

SHARD_FORMAT = "fpspot-shards/1"
SHARD_KIND = "event_dst"
NUM_INPUT_FEATURES = NUM_ACTIONS + 3


@dataclass(frozen=True)
class WindowConfig:
    """Window geometry in frames. ``margin`` >= largest displacement the corruption makes (jitter 50,
    ghosts 25, duplicates 75 from a jittered detection -> 125)."""

    length: int = 750
    stride: int = 375
    margin: int = 125


# ================================================================================================ windows


def window_starts(first: int, last: int, cfg: WindowConfig) -> list[int]:
    """Start frames covering ``[first, last]`` every ``stride`` frames (the last window ends at or after ``last``)."""
    starts = [first]
    while starts[-1] + cfg.length <= last:
        starts.append(starts[-1] + cfg.stride)
    return starts


def cut_windows(key: str, gt_events: Sequence, cfg: WindowConfig = WindowConfig()) -> list[dict]:
    """Clean windows of one half that hold at least one event; each is a dict with ``__key__``,
    ``gt`` int64 ``(K, 6)`` (frames relative: ``frame - start + 1``), ``players`` int64 ``(Q, 3)`` and ``meta``."""
    if not gt_events:
        return []
    gt = np.asarray([tuple(e[:6]) for e in gt_events], dtype=np.int64).reshape(-1, 6)
    gt = gt[np.argsort(gt[:, 0], kind="stable")]
    counter = Counter((int(t), int(s)) for t, s in gt[:, 1:3])
    players = np.asarray([(t, s, n) for (t, s), n in sorted(counter.items())], dtype=np.int64).reshape(-1, 3)
    windows = []
    for start in window_starts(int(gt[0, 0]), int(gt[-1, 0]), cfg):
        inside = (gt[:, 0] >= start) & (gt[:, 0] < start + cfg.length)
        if not inside.any():
            continue
        keep = (gt[:, 0] >= start - cfg.margin) & (gt[:, 0] < start + cfg.length + cfg.margin)
        rel = gt[keep].copy()
        rel[:, 0] -= start - 1
        windows.append({"__key__": f"{key}_{start:07d}", "gt": rel, "players": players.copy(),
                        "meta": {"key": key, "start_frame": start, "length": cfg.length, "margin": cfg.margin}})
    return windows


def corrupt_window(window: dict, params: CorruptionParams, rng: np.random.Generator) -> np.ndarray:
    """Noisy input events of a clean window: float64 ``(N, 5)`` ``[rel frame 1..length, team, jersey, class,
    score]`` sorted by frame. The whole context (window + margins) is corrupted, then cropped to the window."""
    meta = window["meta"]
    length, margin = int(meta["length"]), int(meta["margin"])
    shift = margin + 1  # context frames become >= 0 for the corruption model
    events = [(int(f) + shift, int(t), int(s), int(c), int(b), int(r)) for f, t, s, c, b, r in window["gt"]]
    players = {0: [], 1: []}
    for team, shirt, count in window["players"]:
        players[int(team)].append((int(shirt), float(count)))
    preds = corrupt_half(events, params, rng, players=players, span=(shift + 1, shift + length))
    out = np.asarray([(p.frame - shift, p.team, p.shirt, p.cls, p.score) for p in preds], dtype=np.float64)
    out = out.reshape(-1, 5)
    return out[(out[:, 0] >= 1) & (out[:, 0] <= length)]


def tokenize_window(window: dict, noisy: np.ndarray) -> dict:
    """Token arrays of one window (see the module docstring for names and shapes)."""
    length = int(window["meta"]["length"])
    gt = window["gt"]
    targets = gt[(gt[:, 0] >= 1) & (gt[:, 0] <= length)]
    targets = targets[np.lexsort((targets[:, 3], targets[:, 2], targets[:, 1], targets[:, 0]))]
    noisy = noisy[np.argsort(noisy[:, 0], kind="stable")] if noisy.size else noisy.reshape(0, 5)
    in_pairs = sorted({(int(t), int(s)) for t, s in noisy[:, 1:3]})
    extra = sorted({(int(t), int(s)) for t, s in targets[:, 1:3]} - set(in_pairs))
    table = in_pairs + extra
    index = {pair: i for i, pair in enumerate(table)}
    in_cls = noisy[:, 3].astype(np.int64)
    in_team = noisy[:, 1].astype(np.int64)
    in_frame = noisy[:, 0].astype(np.int64)
    in_score = noisy[:, 4].astype(np.float32)
    features = np.zeros((len(noisy), NUM_INPUT_FEATURES), dtype=np.float32)
    features[np.arange(len(noisy)), in_cls - 1] = 1.0
    features[:, NUM_ACTIONS] = in_team
    features[:, NUM_ACTIONS + 1] = in_frame / length
    features[:, NUM_ACTIONS + 2] = in_score
    tgt_player = np.asarray([index[(int(t), int(s))] for t, s in targets[:, 1:3]], dtype=np.int64)
    return {
        "in_cls": in_cls, "in_team": in_team, "in_frame": in_frame, "in_score": in_score,
        "in_player": np.asarray([index[(int(t), int(s))] for t, s in noisy[:, 1:3]], dtype=np.int64),
        "in_features": features,
        "players": np.asarray(table, dtype=np.int64).reshape(-1, 2),
        "player_known": np.arange(len(table)) < len(in_pairs),
        "tgt_cls": targets[:, 3].astype(np.int64), "tgt_team": targets[:, 1].astype(np.int64),
        "tgt_player": tgt_player, "tgt_frame": targets[:, 0].astype(np.int64),
        "tgt_known": tgt_player < len(in_pairs),
        "meta": {"key": window["__key__"], "half": window["meta"]["key"],
                 "start_frame": int(window["meta"]["start_frame"])},
    }


_GROUPS = {"in": ("in_cls", "in_team", "in_frame", "in_score", "in_player", "in_features"),
           "player": ("players", "player_known"),
           "tgt": ("tgt_cls", "tgt_team", "tgt_player", "tgt_frame", "tgt_known")}


def collate_windows(samples: Sequence[dict]) -> dict:
    """Pad token dicts into a batch of torch tensors: ints -1, floats 0, bools False; adds
    ``in_mask (B, N_max)``, ``player_mask (B, P_max)``, ``tgt_mask (B, M_max)`` and ``meta`` (list)."""
    import torch

    batch: dict = {"meta": [s["meta"] for s in samples]}
    for group, names in _GROUPS.items():
        lengths = [len(s[names[0]]) for s in samples]
        size = max(max(lengths, default=0), 1)
        for name in names:
            first = samples[0][name]
            shape = (len(samples), size, *first.shape[1:])
            fill = -1 if first.dtype == np.int64 else 0
            out = np.full(shape, fill, dtype=first.dtype)
            for b, s in enumerate(samples):
                out[b, : len(s[name])] = s[name]
            batch[name] = torch.from_numpy(out)
        mask = np.zeros((len(samples), size), dtype=bool)
        for b, n in enumerate(lengths):
            mask[b, :n] = True
        batch[f"{group}_mask"] = torch.from_numpy(mask)
    return batch


# ================================================================================================= shards


def _npy_bytes(array: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.save(buf, np.ascontiguousarray(array), allow_pickle=False)
    return buf.getvalue()


def encode_window(window: dict) -> dict:
    """A clean window as a WebDataset sample (bytes per field)."""
    return {"__key__": window["__key__"], "gt.npy": _npy_bytes(window["gt"]),
            "players.npy": _npy_bytes(window["players"]), "meta.json": json.dumps(window["meta"]).encode()}


def decode_window(sample: dict) -> dict:
    """Inverse of :func:`encode_window` (works on raw tar samples; never unpickles)."""
    try:
        return {"__key__": sample["__key__"],
                "gt": np.load(io.BytesIO(sample["gt.npy"]), allow_pickle=False).astype(np.int64).reshape(-1, 6),
                "players": np.load(io.BytesIO(sample["players.npy"]), allow_pickle=False).astype(np.int64).reshape(-1, 3),
                "meta": json.loads(sample["meta.json"])}
    except KeyError as err:
        raise ValueError(f"event window sample {sample.get('__key__')!r} from {sample.get('__url__')!r}: "
                         f"missing field {err}") from None


def write_window_shards(out_dir: str | Path, gt: PlayByPlay | str, cfg: WindowConfig = WindowConfig(), *,
                        split: str = "train", samples_per_shard: int = 1000, keys: Iterable[str] | None = None) -> dict:
    """Write clean windows of every half as ``{split}-NNNNNN.tar`` shards plus ``manifest.json``; returns it."""
    import webdataset as wds

    gt = load_playbyplay(gt, "gt")
    keys = list(gt.keys if keys is None else keys)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    windows = [w for k in keys for w in cut_windows(k, gt.events[k], cfg)]
    shards = []
    for n, first in enumerate(range(0, len(windows), samples_per_shard)):
        name = f"{split}-{n:06d}.tar"
        chunk = windows[first:first + samples_per_shard]
        with atomic_path(out_dir / name) as tmp:
            with wds.TarWriter(str(tmp)) as sink:
                for w in chunk:
                    sink.write(encode_window(w))
        shards.append({"name": name, "samples": len(chunk)})
    all_counts = Counter(int(e[3]) for k in keys for e in gt.events[k])
    box_counts = Counter(int(e[3]) for k in keys for e in gt.events[k] if e[4])
    manifest = {
        "format": SHARD_FORMAT, "kind": SHARD_KIND, "split": split, "num_samples": len(windows), "shards": shards,
        "class_counts": {"all": {name: all_counts[c] for c, name in enumerate(ACTION_CLASSES, 1)},
                         "box_visible": {name: box_counts[c] for c, name in enumerate(ACTION_CLASSES, 1)}},
        "config": {**asdict(cfg), "keys": keys, "source": gt.source},
    }
    with atomic_open(out_dir / "manifest.json") as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def read_manifest(shard_dir: str | Path) -> dict:
    path = Path(shard_dir) / "manifest.json"
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ValueError(f"shard manifest {str(path)!r}: no such file") from None
    if manifest.get("format") != SHARD_FORMAT or manifest.get("kind") != SHARD_KIND:
        raise ValueError(f"shard manifest {str(path)!r}: key 'format'/'kind' must be {SHARD_FORMAT!r}/"
                         f"{SHARD_KIND!r}, got {manifest.get('format')!r}/{manifest.get('kind')!r}")
    return manifest


class WindowCorruptor:
    """Maps a decoded clean window to its tokens with fresh noise: the generator is seeded from
    ``(seed, epoch, sample key)``. Call :meth:`set_epoch` before iterating each epoch (DataLoader workers
    receive a copy of the dataset, and so of this object, when the epoch's iterator is created; use
    ``persistent_workers=False``)."""

    def __init__(self, params: CorruptionParams | None = None, seed: int = 0, epoch: int = 0):
        self.params = params or CorruptionParams.load()
        self.seed, self.epoch = int(seed), int(epoch)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __call__(self, window: dict) -> dict:
        rng = half_seed(self.seed, window["__key__"], self.epoch)
        return tokenize_window(window, corrupt_window(window, self.params, rng))


def window_dataset(shard_dir: str | Path, corruptor: WindowCorruptor, *, shuffle: int = 0,
                   split: str | None = None):
    """WebDataset pipeline over the shards of ``shard_dir``: split by node and worker, optional sample
    shuffle buffer, decode (no pickles), corrupt + tokenize. Batch it with ``collate_windows``."""
    import webdataset as wds

    manifest = read_manifest(shard_dir)
    if split is not None and manifest["split"] != split:
        raise ValueError(f"shard manifest in {str(shard_dir)!r}: key 'split' is {manifest['split']!r}, not {split!r}")
    urls = [str(Path(shard_dir) / s["name"]) for s in manifest["shards"]]
    dataset = wds.WebDataset(urls, nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                             shardshuffle=False, empty_check=False)
    if shuffle:
        dataset = dataset.shuffle(shuffle)
    return dataset.map(decode_window).map(corruptor)


def iter_windows(gt: PlayByPlay | str, cfg: WindowConfig = WindowConfig()) -> Iterator[dict]:
    """All clean windows of a ground-truth file, in key order (no shards; for evaluation and tests)."""
    gt = load_playbyplay(gt, "gt")
    for key in gt.keys:
        yield from cut_windows(key, gt.events[key], cfg)


__all__ = [
    "NUM_INPUT_FEATURES", "WindowConfig", "WindowCorruptor", "collate_windows", "corrupt_window", "cut_windows",
    "decode_window", "encode_window", "iter_windows", "read_manifest", "tokenize_window", "window_dataset",
    "window_starts", "write_window_shards",
]
