"""Streaming loaders of clip shards (``fpspot shard``): training and evaluation pipelines over WebDataset tars.

Both return a :class:`ClipLoader`: iterable, with ``len()`` = the batches this process yields, and batches in
the clip-batch contract: ``video (B, 3, T, H, W)`` uint8 (a view with channels-last-3d strides of the decoded
``(B, T, H, W, 3)`` frames: the permuting copy is left to the device; call ``.contiguous()`` if an op needs
it), ``rois (B, M, T, 4)`` float32, ``masks (B, M, T)`` float32, ``nodes (B, M, T, 6)`` float32,
``labels`` / ``labels_sharp (B, M, T)`` int64 and ``meta`` (a list of the samples' ``meta.json`` dicts plus
``sample_key`` and ``shard``). Batches are built inside the DataLoader workers (``batch_size=None`` in the
``torch.utils.data.DataLoader``), their videos decoded straight into one shared-memory tensor per batch.

**Do not pass these loaders through ``accelerator.prepare``**: they already split the data over processes
(and over DataLoader workers); Accelerate would split again and samples would be lost. Move batches to the
device yourself (``batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}``).

Training (:func:`train_loader`)
-------------------------------
* **Shards**: an endless sequence of seeded shard permutations (every shard once per cycle, a new order each
  cycle; seeded by ``(seed, epoch)``), i.e. resampled shards without the imbalance of drawing with
  replacement. With fewer shards than ``world_size * num_workers``, each shard counts as ``P`` parts
  (samples ``p, p + P, ...``) so that every worker still reads data of its own. The sequence is split by
  node (positions ``rank, rank + world_size, ...``: webdataset's ``split_by_node`` with the rank resolved
  once in the main process), then by worker (webdataset's ``split_by_worker``, with the worker's part
  rotated by ``start_batch`` so that a resumed run continues the DataLoader's round-robin order).
* **Shuffle buffer** of raw (undecoded) samples, filled before the first sample leaves it, at most the
  worker's share of the epoch (so a small epoch takes the first shards of the worker's sequence, shuffled),
  ``random.Random`` seeded by ``(seed, epoch, rank, world_size, worker, num_workers)``.
* **Decode + augment** each sample (:mod:`fpspot.data.augment`; the video is decoded by
  :func:`fpspot.data.video.decode_clip` with the fused augmentation) with a generator seeded by ``(seed,
  epoch, rank, world_size, worker, num_workers, sample index)``.
* **Batches**: every process yields ``samples_per_epoch // (world_size * batch_size)`` full batches (the
  same count on every process, as DDP needs); worker ``w`` makes ``n // num_workers`` (+1 for the first
  ``n % num_workers``) of them and the DataLoader interleaves the workers round-robin.
* **Deterministic** given ``(seed, epoch, rank, world_size, num_workers)``: the same call gives the same
  batches in the same order. A resumed run either skips the first ``k`` batches of the epoch
  (``itertools.islice``) or passes ``start_batch=k``, which yields the same tail without decoding the
  skipped samples. Different epochs and ranks see different shards, orders and augmentations.
* A corrupt or truncated shard is skipped with a :class:`CorruptShardWarning` naming the shard and the samples
  lost (printed by the worker process), and not read again by that worker this epoch; a sample whose video
  or arrays cannot be decoded is skipped with a warning naming the shard and the sample. A sample without
  one of the required fields is a :class:`ShardError` naming the shard and the sample key.

Evaluation (:func:`eval_loader`)
--------------------------------
Every sample exactly once over all processes and workers, in a fixed order, without augmentation: the
manifest's samples are numbered in shard order, process ``r`` takes the contiguous range
``[r * N // W, (r + 1) * N // W)`` and its workers split that range the same way (each reads only the shards
that overlap its range). Batches are full except the last one of each worker. Processes therefore hold
``N // W`` or ``N // W + 1`` samples and their batch counts can differ by one: **the trainer must not run a
collective operation per evaluation batch** -- accumulate sums (loss x count, counts, predictions) locally over all of
this process's batches, then reduce once after the loop (``accelerator.reduce(tensor, "sum")`` or
``accelerator.gather``). Any corrupt, truncated or incomplete shard is a :class:`ShardError` naming it.
"""

from __future__ import annotations

import io
import json
import random
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from itertools import islice
from pathlib import Path

import numpy as np
import torch
import torch.utils.data

from fpspot.data.augment import (
    AugmentConfig, FrameAugmenter, augment_meta, augment_tracks, augment_video, sample_augment,
)
from fpspot.data.shards import CLIP_FIELDS, read_manifest
from fpspot.schema import NUM_SLOTS

#: Array fields of a clip sample and their dtypes after decoding.
ARRAY_FIELDS = {"rois": np.float32, "masks": np.float32, "labels": np.int64, "labels_sharp": np.int64,
                "nodes": np.float32}
CLIP_KINDS = ("taad", "taad_gnn")


class ShardError(RuntimeError):
    """A shard or a sample cannot be used. The message names the shard (and the sample key)."""


class CorruptSampleError(ShardError):
    """A field of a sample cannot be decoded (not a readable ``.npy`` or JSON). Skipped in training."""


class CorruptShardWarning(UserWarning):
    """A training shard was skipped; the message names it and the number of samples lost."""


# ================================================================================================ reading


def _worker_info() -> tuple[int, int]:
    info = torch.utils.data.get_worker_info()
    return (0, 1) if info is None else (info.id, info.num_workers)


def resolve_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """``(rank, world_size)``: the given values, else the distributed job's (environment ``RANK`` /
    ``WORLD_SIZE`` or an initialised ``torch.distributed``, as webdataset's ``split_by_node`` reads them),
    else ``(0, 1)``."""
    if rank is None or world_size is None:
        from webdataset.utils import pytorch_worker_info

        env_rank, env_world, _, _ = pytorch_worker_info()
        rank = env_rank if rank is None else rank
        world_size = env_world if world_size is None else world_size
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a world of size {world_size}")
    return int(rank), int(world_size)


def read_shard(url: str, expected: int, *, strict: bool, required: Sequence[str],
               report: dict | None = None) -> Iterator[dict]:
    """Raw samples (``{"__key__", "__url__", field: bytes}``) of one tar shard, checked against the manifest.

    ``expected``: samples the manifest lists for the shard. A sample without a field of ``required`` raises
    :class:`ShardError` (shard and sample key). A shard that cannot be read to its end, or holds another
    number of samples than the manifest says, raises :class:`ShardError` when ``strict``, else warns with a
    :class:`CorruptShardWarning` naming the shard and the samples lost (a truncated last sample is lost too)
    and sets ``report["lost"]`` (when a ``report`` dict is given).
    """
    from webdataset.tariterators import group_by_keys, tar_file_expander, url_opener

    samples = group_by_keys(tar_file_expander(url_opener([{"url": url}])))
    yielded, pending, error = 0, None, None
    while True:
        try:
            sample = next(samples)
        except StopIteration:
            break
        except Exception as err:  # noqa: BLE001 - tarfile, OS and webdataset errors all mean "unreadable"
            error = f"{type(err).__name__}: {err.args[0] if err.args else err}"
            break
        if pending is not None:
            _check_fields(pending, url, required)
            yield pending
            yielded += 1
        pending = sample
    if pending is not None:
        missing = [name for name in required if name not in pending]
        if not missing:
            yield pending
            yielded += 1
        elif error is None and yielded + 1 >= expected:
            _check_fields(pending, url, required)  # an intact shard whose last sample lacks a field
        # else: the partial last sample of a truncated shard, counted as lost
    if error is None and yielded == expected:
        return
    reason = error or f"ends after {yielded} samples"
    if yielded > expected:
        reason = f"holds {yielded} samples"
    message = f"shard {url}: {reason}; the manifest lists {expected} samples, {max(0, expected - yielded)} lost"
    if strict:
        raise ShardError(message)
    if report is not None:
        report["lost"] = max(0, expected - yielded)
    warnings.warn(f"skipping the rest of {message}", CorruptShardWarning, stacklevel=2)


def _check_fields(sample: dict, url: str, required: Sequence[str]) -> None:
    missing = [name for name in required if name not in sample]
    if missing:
        present = sorted(k for k in sample if not k.startswith("__"))
        raise ShardError(f"shard {url}: sample {sample.get('__key__')!r} has no field {missing[0]!r} "
                         f"(fields: {', '.join(present)})")


def _load_npy(raw: dict, name: str) -> np.ndarray:
    try:
        return np.load(io.BytesIO(raw[f"{name}.npy"]), allow_pickle=False)
    except Exception as err:  # noqa: BLE001
        raise CorruptSampleError(f"shard {raw.get('__url__')}: sample {raw.get('__key__')!r}: field '{name}.npy' is "
                                 f"not a readable .npy array ({err})") from None


def decode_sample(raw: dict, *, slot_tracks: bool, augment: AugmentConfig | None = None,
                  rng: np.random.Generator | None = None, video_out: np.ndarray | None = None) -> dict:
    """Decode (and augment) one raw clip sample into numpy arrays.

    Returns ``video (T, H, W, 3)`` uint8 (decoded into ``video_out`` when given), ``rois (M, T, 4)``,
    ``masks (M, T)``, ``labels`` / ``labels_sharp`` ``(M, T)`` int64, ``nodes (M, T, 6)`` and ``meta`` (with
    ``sample_key`` and ``shard``).
    """
    from fpspot.data.video import decode_clip

    key, url = raw.get("__key__"), raw.get("__url__")
    where = f"shard {url}: sample {key!r}"
    try:
        meta = json.loads(raw["meta.json"])
    except (ValueError, UnicodeDecodeError) as err:
        raise CorruptSampleError(f"{where}: meta.json is not valid JSON ({err})") from None
    arrays = {name: _load_npy(raw, name).astype(dtype, copy=False) for name, dtype in ARRAY_FIELDS.items()}
    num_tracks, num_frames = arrays["masks"].shape
    for name, array in arrays.items():
        if array.shape[:2] != (num_tracks, num_frames):
            raise ShardError(f"{where}: field '{name}.npy' has shape {array.shape}, expected ({num_tracks}, "
                             f"{num_frames}, ...)")
    if slot_tracks and num_tracks != NUM_SLOTS:
        raise ShardError(f"{where}: a taad_gnn clip has {NUM_SLOTS} slots, got {num_tracks} tracks")
    frame_hw = tuple(int(v) for v in meta.get("frame_hw", ())) or None
    aug = None
    if augment is not None:
        if rng is None:
            raise ValueError("augmentation needs a numpy Generator")
        if frame_hw is None:
            raise ShardError(f"{where}: meta.json has no frame_hw")
        aug = sample_augment(augment, rng, frame_hw, num_tracks)
        if aug.coeffs is not None:
            arrays["boxes"] = _load_npy(raw, "boxes")
        arrays = augment_tracks(arrays, aug, slot_tracks)
        meta = augment_meta(meta, aug, slot_tracks)
    if aug is not None and FrameAugmenter.supports(aug.frame_hw):
        video = decode_clip(raw["video.mp4"], name=where, transform=FrameAugmenter(aug), out=video_out)
    elif aug is not None:
        video = augment_video(decode_clip(raw["video.mp4"], name=where), aug)
        if video_out is not None:
            video_out[...] = video
            video = video_out
    else:
        video = decode_clip(raw["video.mp4"], name=where, out=video_out)
    if video.shape[0] != num_frames or (frame_hw is not None and tuple(video.shape[1:3]) != frame_hw):
        raise ShardError(f"{where}: the video is {video.shape[:3]}, the tracks have {num_frames} frames of "
                         f"{frame_hw}")
    meta["sample_key"], meta["shard"] = key, url
    return {"video": video, **arrays, "meta": meta}


def collate_clips(samples: Sequence[dict], video: torch.Tensor | None = None) -> dict:
    """Stack decoded samples into the clip-batch contract (torch tensors; ``video`` ``(B, 3, T, H, W)``).

    video: the ``(B, T, H, W, 3)`` uint8 tensor the samples' videos were decoded into (no stacking copy), if any.
    """
    from einops import rearrange

    if video is None:
        video = torch.from_numpy(np.stack([s["video"] for s in samples]))
    # a (B, 3, T, H, W) view of (B, T, H, W, 3) memory (channels-last-3d strides): no copy in the workers
    batch = {"video": rearrange(video, "b t h w c -> b c t h w")}
    for name, dtype in ARRAY_FIELDS.items():
        batch[name] = torch.from_numpy(np.stack([s[name] for s in samples]).astype(dtype, copy=False))
    batch["meta"] = [s["meta"] for s in samples]
    return batch


class _BatchBuilder:
    """Collects decoded samples of one batch, decoding their videos straight into one ``(B, T, H, W, 3)`` tensor.

    Inside a DataLoader worker the tensor is allocated in shared memory, so handing the batch to the main
    process copies nothing (a fresh tensor would be copied into shared memory by the worker's queue).
    """

    def __init__(self, batch_size: int):
        self.batch_size = batch_size
        self.samples: list[dict] = []
        self.video: torch.Tensor | None = None
        self._frames: np.ndarray | None = None  # numpy view of ``video``

    def __len__(self) -> int:
        return len(self.samples)

    def slot(self, raw: dict) -> np.ndarray | None:
        """Where the video of ``raw`` goes (None: decode it on its own and stack it later)."""
        try:
            meta = json.loads(raw["meta.json"])
            shape = (int(meta["num_frames"]), *(int(v) for v in meta["frame_hw"]), 3)
        except (KeyError, TypeError, ValueError):
            return None
        if self.video is None:
            self.video = torch.empty((self.batch_size, *shape), dtype=torch.uint8)
            if torch.utils.data.get_worker_info() is not None:
                self.video.share_memory_()
            self._frames = self.video.numpy()
        if tuple(self.video.shape[1:]) != shape:
            raise ShardError(f"shard {raw.get('__url__')}: sample {raw.get('__key__')!r} has {shape[:3]} frames, "
                             f"the batch has {tuple(self.video.shape[1:4])}")
        return self._frames[len(self.samples)]

    def add(self, sample: dict) -> None:
        self.samples.append(sample)

    def take(self) -> dict:
        video = None
        if self.video is not None and all(s["video"].base is self._frames for s in self.samples):
            video = self.video[: len(self.samples)]
        batch = collate_clips(self.samples, video)
        self.samples, self.video, self._frames = [], None, None
        return batch


# ============================================================================================== pipelines


def _seed_int(*parts: int) -> int:
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1, np.uint64)[0])


def _worker_batches(total: int, num_workers: int) -> list[int]:
    return [total // num_workers + (w < total % num_workers) for w in range(num_workers)]


def _round_robin_skips(quotas: list[int], start_batch: int) -> list[int]:
    """Batches of each worker among the first ``start_batch`` batches of the DataLoader's round-robin order."""
    skips = [0] * len(quotas)
    remaining = start_batch
    for i in range(max(quotas, default=0)):
        for w, quota in enumerate(quotas):
            if remaining == 0:
                return skips
            if i < quota:
                skips[w] += 1
                remaining -= 1
    return skips


@dataclass
class _Plan:
    urls: list[str]
    counts: dict[str, int]
    slot_tracks: bool
    required: tuple[str, ...]


def _plan(shard_dir, box_jitter: bool) -> tuple[_Plan, dict]:
    manifest = read_manifest(shard_dir)
    if manifest["kind"] not in CLIP_KINDS:
        raise ShardError(f"shard folder {shard_dir}: kind {manifest['kind']!r} is not a clip kind {CLIP_KINDS}")
    urls = [str(Path(shard_dir) / s["name"]) for s in manifest["shards"]]
    counts = {url: int(s["samples"]) for url, s in zip(urls, manifest["shards"])}
    required = tuple(CLIP_FIELDS) + (("boxes.npy",) if box_jitter else ())
    return _Plan(urls, counts, manifest["kind"] == "taad_gnn", required), manifest


class _TrainStream(torch.utils.data.IterableDataset):
    """The training pipeline of one process (an ``IterableDataset``; runs inside each DataLoader worker)."""

    def __init__(self, plan: _Plan, *, batch_size: int, batches: int, start_batch: int, epoch: int, seed: int,
                 augment: AugmentConfig | None, shuffle_buffer: int, rank: int, world_size: int, parts: int = 1):
        super().__init__()
        self.parts = parts
        self.plan, self.batch_size, self.batches, self.start_batch = plan, batch_size, batches, start_batch
        self.epoch, self.seed, self.augment, self.shuffle_buffer = epoch, seed, augment, shuffle_buffer
        self.rank, self.world_size = rank, world_size

    def _shard_units(self) -> Iterator[tuple[str, int]]:
        """Endless seeded permutations of the ``(shard, part)`` units (part ``p`` of ``P``: samples ``p, p + P, ...``
        of the shard; ``P > 1`` only when there are fewer shards than processes x workers)."""
        units = [(url, part) for url in self.plan.urls for part in range(self.parts)]
        cycle = 0
        while True:
            order = np.random.default_rng([self.seed, self.epoch, cycle, 0x5EED]).permutation(len(units))
            yield from (units[i] for i in order)
            cycle += 1

    def _raw_samples(self, units: Iterator[tuple[str, int]]) -> Iterator[dict]:
        bad: set[str] = set()
        unique = set(self.plan.urls)
        for url, part in units:
            if url in bad:
                if bad >= unique:
                    raise ShardError(f"no readable shard left among {len(unique)} shards "
                                     f"(first: {self.plan.urls[0]})")
                continue
            report: dict = {}
            samples = read_shard(url, self.plan.counts[url], strict=False, required=self.plan.required, report=report)
            yield from islice(samples, part, None, self.parts)
            if "lost" in report:
                bad.add(url)
            if bad >= unique:
                raise ShardError(f"no readable shard left among {len(unique)} shards (first: {self.plan.urls[0]})")

    def __iter__(self) -> Iterator[dict]:
        import webdataset as wds

        from fpspot.data.video import VideoError

        physical, num_workers = _worker_info()
        # The DataLoader asks its workers round-robin starting with worker 0. A run resumed at batch k must
        # continue the original cycle, so physical worker p plays the part of worker (p + k) % num_workers.
        worker = (physical + self.start_batch) % num_workers
        quotas = _worker_batches(self.batches, num_workers)
        quota = quotas[worker]
        skip = _round_robin_skips(quotas, self.start_batch)[worker]
        units = islice(self._shard_units(), self.rank, None, self.world_size)  # split_by_node
        units = islice(units, worker, None, num_workers)  # split_by_worker (with the worker's part, see above)
        raw = self._raw_samples(units)
        buffer = min(self.shuffle_buffer, quota * self.batch_size)  # no more than this worker's share
        if buffer > 1:
            rng = random.Random(_seed_int(self.seed, self.epoch, self.rank, self.world_size, worker, num_workers))
            raw = wds.shuffle(buffer, initial=buffer, rng=rng)(raw)
        ids = (self.seed, self.epoch, self.rank, self.world_size, worker, num_workers)
        batch = _BatchBuilder(self.batch_size)
        made = skip  # batches of this worker already consumed by a resumed run
        for index, sample in enumerate(raw):
            if made >= quota:
                return
            if index < skip * self.batch_size:
                continue  # a sample of a batch the resumed run has seen: not decoded
            rng = np.random.default_rng([*ids, index]) if self.augment is not None else None
            try:
                batch.add(decode_sample(sample, slot_tracks=self.plan.slot_tracks, augment=self.augment, rng=rng,
                                        video_out=batch.slot(sample)))
            except (VideoError, CorruptSampleError) as err:
                warnings.warn(f"skipping a sample: {err}", CorruptShardWarning, stacklevel=1)
                continue
            if len(batch) == self.batch_size:
                yield batch.take()
                made += 1


class _EvalStream(torch.utils.data.IterableDataset):
    """The evaluation pipeline of one process: a contiguous range of the manifest's samples per worker."""

    def __init__(self, plan: _Plan, *, batch_size: int, rank: int, world_size: int):
        super().__init__()
        self.plan, self.batch_size, self.rank, self.world_size = plan, batch_size, rank, world_size

    @staticmethod
    def ranges(total: int, rank: int, world_size: int, num_workers: int) -> list[tuple[int, int]]:
        """``[lo, hi)`` global sample ranges of the workers of ``rank``."""
        lo, hi = rank * total // world_size, (rank + 1) * total // world_size
        n = hi - lo
        return [(lo + w * n // num_workers, lo + (w + 1) * n // num_workers) for w in range(num_workers)]

    def __iter__(self) -> Iterator[dict]:
        worker, num_workers = _worker_info()
        total = sum(self.plan.counts[u] for u in self.plan.urls)
        lo, hi = self.ranges(total, self.rank, self.world_size, num_workers)[worker]
        batch = _BatchBuilder(self.batch_size)
        start = 0
        for url in self.plan.urls:
            count = self.plan.counts[url]
            first, start = start, start + count
            if start <= lo or first >= hi:
                continue
            for index, sample in enumerate(read_shard(url, count, strict=True, required=self.plan.required),
                                           start=first):
                if index >= hi:
                    break
                if index < lo:
                    continue
                batch.add(decode_sample(sample, slot_tracks=self.plan.slot_tracks, video_out=batch.slot(sample)))
                if len(batch) == self.batch_size:
                    yield batch.take()
        if len(batch):
            yield batch.take()


def _identity(batch):
    return batch


class ClipLoader:
    """An iterable over clip batches with ``len()`` = the batches this process yields (see the module doc)."""

    def __init__(self, stream, *, length: int, num_workers: int, seed: int, manifest: dict, rank: int,
                 world_size: int):
        self.stream, self.length, self.num_workers = stream, length, num_workers
        self.manifest, self.rank, self.world_size = manifest, rank, world_size
        self._seed = seed

    def __len__(self) -> int:
        return self.length

    def __iter__(self) -> Iterator[dict]:
        loader = torch.utils.data.DataLoader(
            self.stream, batch_size=None, num_workers=self.num_workers, collate_fn=_identity,
            pin_memory=torch.cuda.is_available(), persistent_workers=False,
            prefetch_factor=2 if self.num_workers > 0 else None,
            generator=torch.Generator().manual_seed(self._seed),  # leave the caller's global RNG alone
        )
        return iter(loader)


def train_loader(shard_dir, *, batch_size: int, epoch: int, seed: int = 0, num_workers: int = 2,
                 augment: AugmentConfig | None = AugmentConfig(), samples_per_epoch: int | None = None,
                 shuffle_buffer: int = 256, rank: int | None = None, world_size: int | None = None,
                 start_batch: int = 0) -> ClipLoader:
    """Training batches of one epoch for this process (see the module docstring).

    samples_per_epoch: samples over all processes (default: the manifest's ``num_samples`` divided by the
    ``draws`` the shards were written with, i.e. one per-class draw per epoch); every process
    yields ``samples_per_epoch // (world_size * batch_size)`` full batches. start_batch: skip the first
    batches of the epoch (resume) without decoding them; ``len()`` is then the remaining count.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    rank, world_size = resolve_world(rank, world_size)
    plan, manifest = _plan(shard_dir, augment is not None and augment.box_jitter > 0)
    draws = max(1, int(manifest.get("config", {}).get("draws", 1)))
    samples = int(manifest["num_samples"] // draws if samples_per_epoch is None else samples_per_epoch)
    batches = samples // (world_size * batch_size)
    if batches < 1:
        raise ValueError(f"shard folder {shard_dir}: {samples} samples per epoch cannot give every one of "
                         f"{world_size} processes a batch of {batch_size}")
    if not 0 <= start_batch <= batches:
        raise ValueError(f"start_batch {start_batch} is outside 0..{batches}")
    parts = -(-world_size * max(1, num_workers) // len(plan.urls))  # shard parts, so that every worker has one
    stream = _TrainStream(plan, batch_size=batch_size, batches=batches, start_batch=start_batch, epoch=epoch,
                          seed=seed, augment=augment, shuffle_buffer=shuffle_buffer, rank=rank,
                          world_size=world_size, parts=parts)
    return ClipLoader(stream, length=batches - start_batch, num_workers=num_workers,
                      seed=_seed_int(seed, epoch, rank), manifest=manifest, rank=rank, world_size=world_size)


def eval_loader(shard_dir, *, batch_size: int, num_workers: int = 2, rank: int | None = None,
                world_size: int | None = None) -> ClipLoader:
    """Every sample of ``shard_dir`` exactly once over all processes and workers, not augmented.

    ``len()`` is this process's batch count (processes may differ; see the module docstring).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    if num_workers < 0:
        raise ValueError(f"num_workers must be >= 0, got {num_workers}")
    rank, world_size = resolve_world(rank, world_size)
    plan, manifest = _plan(shard_dir, box_jitter=False)
    total = sum(plan.counts.values())
    ranges = _EvalStream.ranges(total, rank, world_size, max(1, num_workers))
    length = sum(-(-(hi - lo) // batch_size) for lo, hi in ranges)
    stream = _EvalStream(plan, batch_size=batch_size, rank=rank, world_size=world_size)
    return ClipLoader(stream, length=length, num_workers=num_workers, seed=0, manifest=manifest, rank=rank,
                      world_size=world_size)


__all__ = [
    "ARRAY_FIELDS", "AugmentConfig", "ClipLoader", "CorruptSampleError", "CorruptShardWarning", "ShardError",
    "collate_clips", "decode_sample", "eval_loader", "read_shard", "resolve_world", "train_loader",
]
