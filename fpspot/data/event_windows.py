"""Time windows of play-by-play for the event-sequence DST: clean windows in shards, noisy inputs on the fly.

A half is cut into windows of ``length`` frames (750 = 30 s) every ``stride`` frames. A *clean window*
(:func:`cut_windows`) keeps the ground-truth events of ``[start - margin, start + length + margin)`` (the
margin lets events just outside the window leave jittered detections, ghosts and duplicates inside it) and
the half's active players; it is what the shards store. The loader corrupts each clean window with
:mod:`fpspot.data.corrupt` using a generator seeded from ``(seed, epoch, sample key)``
(:class:`WindowCorruptor`), so every epoch sees fresh noise and a run is reproducible. The corruptor can
draw a noise *strength* per window (:func:`fpspot.data.corrupt.strength_scales`; 1 = the fitted TAAD noise)
and swap the two team labels (they are side-based, so both labellings are equally likely).

Players are not a closed vocabulary, so the model refers to them by *pointing*: the window's player table
lists the distinct ``(team, jersey)`` pairs of the input events (sorted by team, jersey), then -- for
training only -- the target players absent from the input (``player_known = False``: the "unknown player"
case, whose jersey the model cannot recover from its input). Each table entry also gets an *identity*
``player_id`` in ``0..max_players-1`` (a random injective draw per window in training, ``0..P-1`` at
inference) that the model embeds, so attention can tell "same player" from "other player" without a
jersey vocabulary.

Tokens of one window (:func:`tokenize_window` for training, :func:`tokenize_events` for inference; frames
relative to the window, ``1..length``):

* inputs, ``N`` noisy events sorted by frame: ``in_cls`` int64 ``(N,)`` 1..8, ``in_team`` int64 ``(N,)``,
  ``in_frame`` int64 ``(N,)``, ``in_score`` float32 ``(N,)``, ``in_player`` int64 ``(N,)`` index into the
  player table, ``in_player_id`` int64 ``(N,)`` its identity, ``in_features`` float32 ``(N, 11)`` =
  ``[one-hot class (8), team, frame / length, score]``;
* players, ``P``: ``players`` int64 ``(P, 2)`` ``[team, jersey]``, ``player_known`` bool ``(P,)``,
  ``player_id`` int64 ``(P,)``;
* ``strength`` float32 scalar: the noise strength the window was corrupted with (inference: given or
  estimated, see :func:`estimate_strength`);
* per-input targets (training only): ``in_keep`` bool ``(N,)`` -- the event is the detection made from a
  ground-truth event (detected, or wrong jersey / class / team; not a duplicate, ghost or random false
  positive) whose player is in the input table; ``in_tgt_cls`` (class 1..8), ``in_tgt_player`` (pointer),
  ``in_tgt_offset`` (``gt frame - input frame``), int64 ``(N,)``, -1 / 0 where ``in_keep`` is False;
  ``in_kind`` int64 ``(N,)`` the generative kind (index into :data:`fpspot.data.corrupt.PREDICTION_KINDS`);
* per-input insertion targets (training only, on request): ``in_ins`` bool ``(N,)`` -- a *missed*
  ground-truth event (no kept input event comes from it; its player is in the input table) lies in the gap
  after this input event (up to the next one's frame), at most :data:`INSERT_REACH` frames away;
  ``in_ins_cls``, ``in_ins_player``, ``in_ins_offset`` int64 ``(N,)``: its class, player pointer and
  ``gt frame - input frame`` (-1 / 0 where ``in_ins`` is False);
* sequence targets, ``M`` clean events in the window sorted by frame: ``tgt_cls``, ``tgt_team``,
  ``tgt_player`` (pointer into the player table), ``tgt_frame``, all int64 ``(M,)``, and ``tgt_known``
  bool ``(M,)``.

:func:`collate_windows` pads a list of token dicts into a batch: int fields padded with -1, floats with 0,
plus ``in_mask (B, N_max)``, ``player_mask (B, P_max)``, ``tgt_mask (B, M_max)``, ``strength (B,)`` and
``meta``.

Inference over a half (:func:`half_windows`): windows every ``length / 2`` frames; window ``k`` *owns* the
input events of its central half ``[start + length / 4, start + 3 length / 4)`` (the first window also owns
everything before, the last everything after), so every input event is decided once, with at least
``length / 4`` frames (7.5 s) of context on each side.

Shards (:func:`write_window_shards`): WebDataset tars written with :class:`fpspot.data.shards.ShardSetWriter`
(plain ustar members with mtime 0: no pax headers to parse, the same bytes for the same windows), one sample per
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

from fpspot.data.corrupt import (
    DETECTION_KINDS, PREDICTION_KINDS, CorruptionParams, SamplerTables, corrupt_half, half_seed, strength_scales,
)
from fpspot.data.footpass import PlayByPlay, load_playbyplay
from fpspot.schema import ACTION_CLASSES, NUM_ACTIONS
from fpspot.utils.atomic import atomic_open

SHARD_FORMAT = "fpspot-shards/1"
SHARD_KIND = "event_dst"
NUM_INPUT_FEATURES = NUM_ACTIONS + 3
MAX_PLAYERS = 64  # identities a window's players are drawn from
KEEP_KINDS = frozenset(PREDICTION_KINDS.index(k) for k in DETECTION_KINDS)
INSERT_REACH = 100  # frames: a missed event farther than this from every input event gets no insertion target


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


def corrupt_window(window: dict, params: CorruptionParams, rng: np.random.Generator,
                   strength: float = 1.0, tables: SamplerTables | None = None) -> np.ndarray:
    """Noisy input events of a clean window: float64 ``(N, 7)`` ``[rel frame 1..length, team, jersey, class,
    score, kind, source]`` sorted by frame, where ``kind`` indexes :data:`PREDICTION_KINDS` and ``source`` is
    the row of ``window["gt"]`` the event was made from (-1: none). The whole context (window + margins) is
    corrupted with noise ``strength`` (:func:`strength_scales`), then cropped to the window. ``tables``:
    :meth:`SamplerTables.of` of ``params`` (pass them when corrupting many windows)."""
    meta = window["meta"]
    length, margin = int(meta["length"]), int(meta["margin"])
    shift = margin + 1  # context frames become >= 0 for the corruption model
    events = [(int(f) + shift, int(t), int(s), int(c), int(b), int(r)) for f, t, s, c, b, r in window["gt"]]
    players = {0: [], 1: []}
    for team, shirt, count in window["players"]:
        players[int(team)].append((int(shirt), float(count)))
    fp_scale, miss_scale = strength_scales(strength)
    preds, kinds, sources = corrupt_half(events, params, rng, players=players, span=(shift + 1, shift + length),
                                         return_kinds=True, return_sources=True, fp_scale=fp_scale,
                                         miss_scale=miss_scale, tables=tables)
    out = np.asarray([(p.frame - shift, p.team, p.shirt, p.cls, p.score, PREDICTION_KINDS.index(k), src)
                      for p, k, src in zip(preds, kinds, sources)], dtype=np.float64)
    out = out.reshape(-1, 7)
    return out[(out[:, 0] >= 1) & (out[:, 0] <= length)]


def _player_ids(count: int, rng: np.random.Generator | None, max_players: int) -> np.ndarray:
    """Identities of ``count`` table entries: ``0..count-1`` (no rng) or a random injective draw."""
    if rng is None:
        return np.arange(count, dtype=np.int64) % max_players
    return rng.permutation(max(count, max_players))[:count].astype(np.int64) % max_players


def tokenize_events(events: np.ndarray, length: int, *, strength: float = 1.0, extra_players: Sequence = (),
                    rng: np.random.Generator | None = None, max_players: int = MAX_PLAYERS,
                    meta: dict | None = None) -> dict:
    """Input tokens of one window from its events ``(N, >=5)`` ``[rel frame, team, jersey, class, score, ...]``
    (any order; rel frames ``1..length``). ``extra_players``: ``(team, jersey)`` pairs appended to the table
    as unknown players (training targets). Returns the input and player fields of the module docstring plus
    ``order`` ``(N,)``: the row of ``events`` behind each token (tokens are sorted by frame)."""
    events = np.asarray(events, dtype=np.float64)
    events = events.reshape(0, 5) if events.size == 0 else events.reshape(len(events), -1)
    order = np.argsort(events[:, 0], kind="stable")
    events = events[order]
    in_pairs = sorted({(int(t), int(s)) for t, s in events[:, 1:3]})
    table = in_pairs + sorted(set(map(tuple, extra_players)) - set(in_pairs))
    index = {pair: i for i, pair in enumerate(table)}
    in_cls = events[:, 3].astype(np.int64)
    in_frame = events[:, 0].astype(np.int64)
    features = np.zeros((len(events), NUM_INPUT_FEATURES), dtype=np.float32)
    features[np.arange(len(events)), in_cls - 1] = 1.0
    features[:, NUM_ACTIONS] = events[:, 1]
    features[:, NUM_ACTIONS + 1] = in_frame / length
    features[:, NUM_ACTIONS + 2] = events[:, 4]
    in_player = np.asarray([index[(int(t), int(s))] for t, s in events[:, 1:3]], dtype=np.int64)
    player_id = _player_ids(len(table), rng, max_players)
    return {
        "in_cls": in_cls, "in_team": events[:, 1].astype(np.int64), "in_frame": in_frame,
        "in_score": events[:, 4].astype(np.float32), "in_player": in_player, "in_player_id": player_id[in_player],
        "in_features": features,
        "players": np.asarray(table, dtype=np.int64).reshape(-1, 2),
        "player_known": np.arange(len(table)) < len(in_pairs), "player_id": player_id,
        "strength": np.float32(strength), "order": order, "meta": dict(meta or {}),
    }


def tokenize_window(window: dict, noisy: np.ndarray, *, strength: float = 1.0,
                    rng: np.random.Generator | None = None, max_players: int = MAX_PLAYERS,
                    insertions: bool = False) -> dict:
    """Token arrays of one training window (see the module docstring for names and shapes).

    noisy: ``(N, 5)`` events, or ``(N, 7)`` from :func:`corrupt_window` (then the per-input targets
    ``in_keep`` ... are filled from the provenance columns). rng: draws the player identities (``None``:
    ``0..P-1``). insertions: also the insertion targets ``in_ins*`` (for models with insertion heads; they
    cost about a third of the corruption's time, so they are made only on request)."""
    length = int(window["meta"]["length"])
    gt = window["gt"]
    targets = gt[(gt[:, 0] >= 1) & (gt[:, 0] <= length)]
    targets = targets[np.lexsort((targets[:, 3], targets[:, 2], targets[:, 1], targets[:, 0]))]
    noisy = np.asarray(noisy, dtype=np.float64)
    noisy = noisy.reshape(len(noisy), -1) if noisy.size else noisy.reshape(0, 5)
    meta = {"key": window["__key__"], "half": window["meta"]["key"], "start_frame": int(window["meta"]["start_frame"]),
            "length": length}
    tok = tokenize_events(noisy, length, strength=strength, extra_players={(int(t), int(s)) for t, s in targets[:, 1:3]},
                          rng=rng, max_players=max_players, meta=meta)
    noisy = noisy[tok.pop("order")]
    index = {(int(t), int(s)): i for i, (t, s) in enumerate(tok["players"])}
    known = int(tok["player_known"].sum())
    tgt_player = np.asarray([index[(int(t), int(s))] for t, s in targets[:, 1:3]], dtype=np.int64)
    n = len(noisy)
    keep = np.zeros(n, dtype=bool)
    tgt_cls = np.full(n, -1, dtype=np.int64)
    tgt_ptr = np.full(n, -1, dtype=np.int64)
    offset = np.zeros(n, dtype=np.int64)
    kind = np.full(n, -1, dtype=np.int64)
    if noisy.shape[1] >= 7:
        kind = noisy[:, 5].astype(np.int64)
        source = noisy[:, 6].astype(np.int64)
        for i in range(n):
            if kind[i] in KEEP_KINDS and source[i] >= 0:
                row = gt[source[i]]
                ptr = index.get((int(row[1]), int(row[2])), known)  # a margin event's player may be absent
                if ptr < known:
                    keep[i] = True
                    tgt_cls[i], tgt_ptr[i], offset[i] = int(row[3]), ptr, int(row[0] - noisy[i, 0])
        detected = set(source[keep].tolist())
    else:
        detected = None
    insert = _insertion_targets(gt, noisy[:, 0], detected, index, known, length) if insertions else {}
    tok.update({
        "in_keep": keep, "in_tgt_cls": tgt_cls, "in_tgt_player": tgt_ptr, "in_tgt_offset": offset, "in_kind": kind,
        **insert,
        "tgt_cls": targets[:, 3].astype(np.int64), "tgt_team": targets[:, 1].astype(np.int64),
        "tgt_player": tgt_player, "tgt_frame": targets[:, 0].astype(np.int64), "tgt_known": tgt_player < known,
    })
    return tok


def _insertion_targets(gt: np.ndarray, frames: np.ndarray, detected: set | None, index: dict, known: int,
                       length: int, reach: int = INSERT_REACH) -> dict:
    """Per-input insertion targets ``in_ins`` bool ``(N,)``, ``in_ins_cls``, ``in_ins_player``, ``in_ins_offset``
    int64 ``(N,)`` (-1 / 0 where ``in_ins`` is False): each *missed* ground-truth event of the window (inside
    ``1..length``, its player in the input table, the source of no kept input event) is assigned to the last
    input event at or before it (``frames`` sorted; the first input event if none is) if that lies within
    ``reach`` frames: "a missed event in the gap after me". An input event assigned several keeps the nearest.
    ``detected``: rows of ``gt`` the kept inputs come from (``None``: no provenance, no insertion targets)."""
    n = len(frames)
    out = {"in_ins": np.zeros(n, dtype=bool), "in_ins_cls": np.full(n, -1, dtype=np.int64),
           "in_ins_player": np.full(n, -1, dtype=np.int64), "in_ins_offset": np.zeros(n, dtype=np.int64)}
    if detected is None or n == 0:
        return out
    ptr = np.asarray([index.get((int(t), int(s)), known) for t, s in gt[:, 1:3]], dtype=np.int64)
    missed = (gt[:, 0] >= 1) & (gt[:, 0] <= length) & (ptr < known)
    missed[list(detected)] = False
    rows = np.flatnonzero(missed)
    if rows.size == 0:
        return out
    # the anchor is the last input event at or before the missed one (the first input event if none is)
    anchor = np.clip(np.searchsorted(frames, gt[rows, 0], side="right") - 1, 0, n - 1)
    distance = np.abs(gt[rows, 0] - frames[anchor])
    near = distance <= reach
    rows, anchor, distance = rows[near], anchor[near], distance[near]
    # the nearest missed event per anchor: visit them farthest first so the nearest writes last
    order = np.argsort(-distance, kind="stable")
    for row, a in zip(rows[order], anchor[order]):
        out["in_ins"][a] = True
        out["in_ins_cls"][a], out["in_ins_player"][a] = int(gt[row, 3]), int(ptr[row])
        out["in_ins_offset"][a] = int(gt[row, 0] - frames[a])
    return out


_GROUPS = {"in": ("in_cls", "in_team", "in_frame", "in_score", "in_player", "in_player_id", "in_features",
                  "in_keep", "in_tgt_cls", "in_tgt_player", "in_tgt_offset", "in_kind",
                  "in_ins", "in_ins_cls", "in_ins_player", "in_ins_offset"),
           "player": ("players", "player_known", "player_id"),
           "tgt": ("tgt_cls", "tgt_team", "tgt_player", "tgt_frame", "tgt_known")}


def collate_windows(samples: Sequence[dict]) -> dict:
    """Pad token dicts into a batch of torch tensors: ints -1, floats 0, bools False; adds
    ``in_mask (B, N_max)``, ``player_mask (B, P_max)``, ``tgt_mask (B, M_max)``, ``strength (B,)`` and
    ``meta`` (list). Fields absent from the samples (inference tokens have no targets) are left out."""
    import torch

    batch: dict = {"meta": [s["meta"] for s in samples]}
    for group, names in _GROUPS.items():
        names = [n for n in names if n in samples[0]]
        if not names:
            continue
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
    batch["strength"] = torch.tensor([float(s.get("strength", 1.0)) for s in samples], dtype=torch.float32)
    return batch


def half_windows(events: Sequence, length: int = 750, *, strength: float = 1.0,
                 max_players: int = MAX_PLAYERS) -> list[dict]:
    """Inference tokens of one half's predictions ``(frame, team, shirt, class, score)`` (absolute frames).

    Windows start every ``length // 2`` frames from ``first frame - length // 4``; each token dict carries
    ``owned`` bool ``(N,)`` (the token is decided by this window, see the module docstring) and
    ``source`` int64 ``(N,)`` (index into ``events``), and ``meta["start_frame"]`` (absolute frame of rel 1).
    Every event is owned by exactly one window; windows that own nothing are skipped."""
    if not len(events):
        return []
    arr = np.asarray([tuple(e[:5]) for e in events], dtype=np.float64).reshape(-1, 5)
    quarter, half = length // 4, length // 2
    first, last = int(arr[:, 0].min()), int(arr[:, 0].max())
    out = []
    start = first - quarter
    while True:
        own_lo = start + quarter
        own_hi = own_lo + half
        is_first, is_last = start == first - quarter, own_hi > last
        inside = np.flatnonzero((arr[:, 0] >= start) & (arr[:, 0] < start + length))
        rel = arr[inside].copy()
        rel[:, 0] -= start - 1
        owned = ((arr[inside, 0] >= own_lo) | is_first) & ((arr[inside, 0] < own_hi) | is_last)
        if owned.any():
            tok = tokenize_events(rel, length, strength=strength, max_players=max_players,
                                  meta={"start_frame": start, "length": length})
            order = tok.pop("order")
            tok["owned"], tok["source"] = owned[order], inside[order].astype(np.int64)
            out.append(tok)
        if is_last:
            return out
        start += half


def window_sample(window: dict) -> dict:
    """A clean window as a shard sample: its key, ``gt.npy`` and ``players.npy`` arrays and ``meta.json``
    object, encoded by the writer (:func:`fpspot.data.shards.encode_sample`: ``np.save`` without pickles)."""
    return {"__key__": window["__key__"], "gt.npy": window["gt"], "players.npy": window["players"],
            "meta.json": window["meta"]}


def decode_window(sample: dict) -> dict:
    """Inverse of writing :func:`window_sample` to a shard (works on raw tar samples; never unpickles)."""
    try:
        return {"__key__": sample["__key__"],
                "gt": np.load(io.BytesIO(sample["gt.npy"]), allow_pickle=False).astype(np.int64).reshape(-1, 6),
                "players": np.load(io.BytesIO(sample["players.npy"]), allow_pickle=False).astype(np.int64).reshape(-1, 3),
                "meta": json.loads(sample["meta.json"])}
    except KeyError as err:
        raise ValueError(f"event window sample {sample.get('__key__')!r} from {sample.get('__url__')!r}: "
                         f"missing field {err}") from None


def write_window_shards(out_dir: str | Path, gt: PlayByPlay | str, cfg: WindowConfig = WindowConfig(), *,
                        split: str = "train", samples_per_shard: int = 1000, keys: Iterable[str] | None = None,
                        shuffle_seed: int | None = None) -> dict:
    """Write clean windows of every half as ``{split}-NNNNNN.tar`` shards plus ``manifest.json``; returns it.
    ``shuffle_seed``: write the windows in a random order (else half by half, in time order)."""
    from fpspot.data.shards import ShardSetWriter

    gt = load_playbyplay(gt, "gt")
    keys = list(gt.keys if keys is None else keys)
    missing = [k for k in keys if k not in gt.events]
    if missing:
        raise ValueError(f"write_window_shards: ground truth {gt.source!r} has no key(s) {missing}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    windows = [w for k in keys for w in cut_windows(k, gt.events[k], cfg)]
    if shuffle_seed is not None:
        order = np.random.default_rng(shuffle_seed).permutation(len(windows))
        windows = [windows[i] for i in order]
    with ShardSetWriter(out_dir, split, samples_per_shard) as sink:
        for w in windows:
            sink.write(window_sample(w))
        shards = sink.close()
    all_counts = Counter(int(e[3]) for k in keys for e in gt.events[k])
    box_counts = Counter(int(e[3]) for k in keys for e in gt.events[k] if e[4])
    manifest = {
        "format": SHARD_FORMAT, "kind": SHARD_KIND, "split": split, "num_samples": len(windows), "shards": shards,
        "class_counts": {"all": {name: all_counts[c] for c, name in enumerate(ACTION_CLASSES, 1)},
                         "box_visible": {name: box_counts[c] for c, name in enumerate(ACTION_CLASSES, 1)}},
        "config": {**asdict(cfg), "keys": keys, "source": gt.source, "shuffle_seed": shuffle_seed},
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
    ``persistent_workers=False``).

    strength: the noise strength (a number), or ``(low, high, p_fitted)``: with probability ``p_fitted``
    strength 1 (the fitted noise), else log-uniform in ``[low, high]``. augment: swap the team labels of half
    the windows and draw random player identities (else identities ``0..P-1``). The sampling tables of
    ``params`` are built once, here (:class:`~fpspot.data.corrupt.SamplerTables`): make a new corruptor for
    other parameters. insertions: add the insertion targets (:func:`tokenize_window`)."""

    def __init__(self, params: CorruptionParams | None = None, seed: int = 0, epoch: int = 0, *,
                 strength: float | Sequence[float] = 1.0, augment: bool = False, max_players: int = MAX_PLAYERS,
                 insertions: bool = False):
        self.params = params or CorruptionParams.load()
        self.tables = SamplerTables.of(self.params)
        self.seed, self.epoch = int(seed), int(epoch)
        self.strength = strength
        self.augment, self.max_players, self.insertions = bool(augment), int(max_players), bool(insertions)
        if not isinstance(strength, (int, float)) and len(strength) != 3:
            raise ValueError(f"WindowCorruptor: strength must be a number or (low, high, p_fitted), got {strength!r}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def draw_strength(self, rng: np.random.Generator) -> float:
        if isinstance(self.strength, (int, float)):
            return float(self.strength)
        low, high, p_fitted = map(float, self.strength)
        if rng.random() < p_fitted:
            return 1.0
        return float(np.exp(rng.uniform(np.log(low), np.log(high))))

    def __call__(self, window: dict) -> dict:
        rng = half_seed(self.seed, window["__key__"], self.epoch)
        strength = self.draw_strength(rng)
        noisy = corrupt_window(window, self.params, rng, strength, self.tables)
        if self.augment and rng.random() < 0.5:
            window = {**window, "gt": window["gt"].copy()}
            window["gt"][:, 1] = 1 - window["gt"][:, 1]
            noisy = noisy.copy()
            noisy[:, 1] = 1 - noisy[:, 1]
        return tokenize_window(window, noisy, strength=strength, rng=rng if self.augment else None,
                               max_players=self.max_players, insertions=self.insertions)


def window_dataset(shard_dir: str | Path, corruptor: WindowCorruptor, *, shuffle: int = 0,
                   split: str | None = None, shuffle_seed: int | None = None):
    """WebDataset pipeline over the shards of ``shard_dir``: split by node and worker, optional sample
    shuffle buffer (seeded by ``shuffle_seed``, else from the clock), decode (no pickles), corrupt +
    tokenize. Batch it with ``collate_windows``."""
    import webdataset as wds

    manifest = read_manifest(shard_dir)
    if split is not None and manifest["split"] != split:
        raise ValueError(f"shard manifest in {str(shard_dir)!r}: key 'split' is {manifest['split']!r}, not {split!r}")
    urls = [str(Path(shard_dir) / s["name"]) for s in manifest["shards"]]
    dataset = wds.WebDataset(urls, nodesplitter=wds.split_by_node, workersplitter=wds.split_by_worker,
                             shardshuffle=False, empty_check=False)
    if shuffle:
        dataset = dataset.shuffle(shuffle, seed=shuffle_seed)
    return dataset.map(decode_window).map(corruptor)


def iter_windows(gt: PlayByPlay | str, cfg: WindowConfig = WindowConfig()) -> Iterator[dict]:
    """All clean windows of a ground-truth file, in key order (no shards; for evaluation and tests)."""
    gt = load_playbyplay(gt, "gt")
    for key in gt.keys:
        yield from cut_windows(key, gt.events[key], cfg)


__all__ = [
    "MAX_PLAYERS", "NUM_INPUT_FEATURES", "WindowConfig", "WindowCorruptor", "collate_windows", "corrupt_window",
    "cut_windows", "decode_window", "half_windows", "iter_windows", "read_manifest",
    "tokenize_events", "tokenize_window", "window_dataset", "window_sample", "window_starts", "write_window_shards",
]
