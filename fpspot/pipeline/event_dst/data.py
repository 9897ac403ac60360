"""Training data of the event DST recipe: the split into training and held-out games, the clean windows'
WebDataset shards (written once per window setting), the noise-strength density table, and the per-epoch
batches (:class:`WindowBatches`: each window corrupted afresh every epoch, fixed or token-budget batches, the
same count on every process)."""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from pathlib import Path

import numpy as np

from fpspot.pipeline.event_dst.config import DataSection, RecipeConfig


def split_keys(gt, holdout_games: list[int]) -> tuple[list[str], list[str]]:
    """``(training keys, held-out keys)`` of a play-by-play; errors name the games that are not in it."""
    games = set(gt.games())
    missing = sorted(set(holdout_games) - games)
    if missing:
        raise ValueError(f"data.holdout_games: game(s) {missing} are not in {gt.source!r} (games: {sorted(games)})")
    held = [k for k in gt.keys if int(k.split("_")[1]) in set(holdout_games)]
    return [k for k in gt.keys if k not in set(held)], held


def shard_fingerprint(cfg: DataSection, keys: list[str]) -> str:
    text = json.dumps({"gt": cfg.gt, "keys": keys, "window": cfg.window, "stride": cfg.stride, "margin": cfg.margin,
                       "samples_per_shard": cfg.samples_per_shard, "tar": "ustar"}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def window_config(cfg: DataSection):
    """The training windows' :class:`~fpspot.data.event_windows.WindowConfig` (window, stride, margin)."""
    from fpspot.data.event_windows import WindowConfig

    return WindowConfig(cfg.window, cfg.stride, cfg.margin)


def training_corruptor(config: RecipeConfig, params):
    """The training :class:`~fpspot.data.event_windows.WindowCorruptor`: ``data.strength`` (a ``[low, high,
    p_fitted]`` range or ``[strength]``), ``data.augment``, ``model.max_players``, seeded by ``train.seed``;
    insertion targets when ``model.insert_offset > 0``."""
    from fpspot.data.event_windows import WindowCorruptor

    data = config.data
    strength = data.strength if len(data.strength) == 3 else data.strength[0]
    return WindowCorruptor(params, seed=config.train.seed, strength=strength, augment=data.augment,
                           max_players=config.model.max_players, insertions=config.model.insert_offset > 0)


def prepare_shards(cfg: DataSection, gt, keys: list[str]) -> dict:
    """The shards of ``keys`` in ``cfg.shard_dir`` (written unless a manifest with the same fingerprint exists)."""
    from fpspot.data.event_windows import read_manifest, write_window_shards

    fingerprint = shard_fingerprint(cfg, keys)
    try:
        manifest = read_manifest(cfg.shard_dir)
        if manifest.get("config", {}).get("fingerprint") == fingerprint:
            return manifest
    except ValueError:
        pass
    for old in Path(cfg.shard_dir).glob("train-*.tar"):
        old.unlink()
    manifest = write_window_shards(cfg.shard_dir, gt, window_config(cfg), keys=keys,
                                   samples_per_shard=cfg.samples_per_shard, shuffle_seed=0)
    manifest["config"]["fingerprint"] = fingerprint
    from fpspot.utils.atomic import atomic_open

    with atomic_open(Path(cfg.shard_dir) / "manifest.json") as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def strength_table(gt, keys: list[str], params, strengths=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5),
                   seed: int = 7) -> list[list[float]]:
    """``[[strength, input events per minute], ...]``: mean density of corrupted halves of ``keys``."""
    from fpspot.data.corrupt import corrupt_half, half_seed, strength_scales
    from fpspot.post.event_dst import events_per_minute

    table = []
    for s in strengths:
        fp, miss = strength_scales(s)
        rates = [events_per_minute(corrupt_half(gt.events[k], params, half_seed(seed, k), fp_scale=fp,
                                                miss_scale=miss)) for k in keys]
        table.append([float(s), round(float(np.mean(rates)), 3)])
    return table


class WindowBatches:
    """``train_data(epoch)`` for the trainer: this process's share of the shards, corrupted afresh each epoch,
    batched (``train.batch_size`` windows, or token-budget batches with ``data.max_tokens``); every process
    yields the same number of batches (the smallest share decides). ``estimate``: clean training windows whose
    corrupted lengths size a token-budget epoch (the same list on every process)."""

    def __init__(self, cfg: DataSection, manifest: dict, corruptor, batch_size: int, rank: int, world: int,
                 seed: int, estimate: list[dict] | None = None):
        self.cfg, self.manifest, self.corruptor = cfg, manifest, corruptor
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        shards = manifest["shards"]
        if len(shards) < world * max(cfg.num_workers, 1):
            raise ValueError(f"{len(shards)} shards for {world} process(es) x {max(cfg.num_workers, 1)} worker(s): "
                             f"lower data.samples_per_shard")
        per_rank = int(min(sum(s["samples"] for s in shards[r::world]) for r in range(world)) * cfg.epoch_fraction)
        if cfg.max_tokens > 0:
            self.num_batches = int(per_rank * self.batches_per_window(estimate or []) * TOKEN_EPOCH_SAFETY)
        else:
            self.num_batches = per_rank // batch_size

    def batches_per_window(self, windows: list[dict]) -> float:
        """Token-budget batches per window, measured by packing ``windows`` corrupted with a fixed epoch."""
        import copy

        from fpspot.data.bucketing import count_batches

        if not windows:
            raise ValueError("data.max_tokens > 0 needs clean windows to size the epoch (data.bucket_estimate >= 1)")
        probe = copy.copy(self.corruptor)
        probe.set_epoch(ESTIMATE_EPOCH)
        lengths = [len(probe(w)["in_cls"]) for w in windows]
        return count_batches(lengths, self.cfg.max_tokens, pool=self.cfg.bucket_pool) / len(lengths)

    def __len__(self) -> int:
        return self.num_batches

    def __call__(self, epoch: int):
        self.corruptor.set_epoch(epoch)
        return _Epoch(lambda restart: self._batches(epoch, restart), self.num_batches)

    def _batches(self, epoch: int, restart: int):
        """One pass over this process's windows (``restart`` > 0: another shuffle of them, when a token-budget
        pass fell short of the epoch's batch count)."""
        import torch

        from fpspot.data.event_windows import collate_windows, window_dataset

        shuffle_seed = self.seed * 100_003 + epoch * 1009 + self.rank + restart * 7_919
        dataset = window_dataset(self.cfg.shard_dir, self.corruptor, shuffle=self.cfg.shuffle,
                                 shuffle_seed=shuffle_seed)
        workers = self.cfg.num_workers
        if self.cfg.max_tokens <= 0:
            return iter(torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, collate_fn=collate_windows,
                                                    num_workers=workers, persistent_workers=False))
        # batches are cut and collated where the windows are made (in the workers, if any), so a worker can
        # run a whole pool ahead of training instead of handing over one window at a time
        batches = dataset.compose(functools.partial(_budget_batches, max_tokens=self.cfg.max_tokens,
                                                    pool=self.cfg.bucket_pool, seed=shuffle_seed))
        return iter(torch.utils.data.DataLoader(batches.map(collate_windows), batch_size=None, collate_fn=_as_is,
                                                num_workers=workers, persistent_workers=False,
                                                prefetch_factor=self.cfg.prefetch_batches if workers else None))


TOKEN_EPOCH_SAFETY = 0.97  # token-budget epochs stop a little short of the measured count (lengths are random)
ESTIMATE_EPOCH = 1_000_003  # corruption epoch of the windows that size a token-budget epoch (no training epoch)


def _as_is(sample):
    return sample


def _window_length(window: dict) -> int:
    return len(window["in_cls"])


def _budget_batches(windows, max_tokens: int, pool: int, seed: int):
    """Token-budget groups of a stream of tokenized windows (a pipeline stage; module level so it pickles)."""
    import random

    from fpspot.data.bucketing import token_budget_batches

    return token_budget_batches(windows, max_tokens, length=_window_length, pool=pool, rng=random.Random(seed))


class _Epoch:
    """The first ``length`` batches of ``passes(0)``, then of ``passes(1)`` ... if a pass runs short (every
    process must yield the same count), with a length (the trainer shows progress with it)."""

    def __init__(self, passes, length: int):
        self.passes, self.length = passes, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        def chained():
            for restart in itertools.count():
                empty = True
                for batch in self.passes(restart):
                    empty = False
                    yield batch
                if empty:
                    raise RuntimeError("event DST training data: a pass over this process's shards yielded no batch")

        return itertools.islice(chained(), self.length)
