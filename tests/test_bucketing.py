"""Token-budget batches (length bucketing) on the lengths of real corrupted event windows, and the event-DST
recipe's epochs built from them."""

from __future__ import annotations

import random

import numpy as np
import pytest

from fpspot.data.bucketing import count_batches, token_budget_batches
from fpspot.data.corrupt import CorruptionParams
from fpspot.data.event_windows import WindowCorruptor, cut_windows, write_window_shards
from fpspot.data.footpass import read_playbyplay
from fpspot.pipeline.event_dst.config import DataSection
from fpspot.pipeline.event_dst.data import WindowBatches


@pytest.fixture(scope="module")
def gt(footpass_dir):
    return read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")


@pytest.fixture(scope="module")
def window_lengths(gt):
    """Input events per window of the 4 real validation halves under the training noise (strengths 0.05..1.5)."""
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=3, strength=(0.05, 1.5, 0.5))
    windows = [w for k in gt.keys for w in cut_windows(k, gt.events[k])]
    return [len(corruptor(w)["in_cls"]) for w in windows]


def test_batches_keep_every_sample_within_the_budget(window_lengths):
    lengths = window_lengths
    assert max(lengths) > 2.5 * np.median(lengths)  # the lengths really vary
    samples = list(range(len(lengths)))
    groups = list(token_budget_batches(samples, 300, length=lambda i: lengths[i], pool=128, rng=random.Random(1)))
    assert sorted(i for g in groups for i in g) == samples
    assert all(len(g) * max(lengths[i] for i in g) <= 300 for g in groups)
    assert len(groups) == count_batches(lengths, 300, pool=128)
    # pools are sorted by length: far less padding than random batches of the same mean size
    padded = sum(len(g) * max(lengths[i] for i in g) for g in groups)
    size = round(len(samples) / len(groups))
    random_padded = sum(len(lengths[i:i + size]) * max(lengths[i:i + size]) for i in range(0, len(lengths), size))
    assert sum(lengths) / padded > 0.85 > sum(lengths) / random_padded
    # each pool's samples stay in that pool, and its groups come out shuffled (not shortest first)
    first_pool = groups[:count_batches(lengths[:128], 300, pool=128)]
    assert sorted(i for g in first_pool for i in g) == samples[:128]
    firsts = [max(lengths[i] for i in g) for g in first_pool]
    assert firsts != sorted(firsts)


def test_a_sample_longer_than_the_budget_is_its_own_batch():
    lengths = {"a": 3, "b": 50, "c": 4}
    groups = list(token_budget_batches("abc", 20, length=lengths.get, pool=10))
    assert sorted(map(sorted, groups)) == [["a", "c"], ["b"]]
    with pytest.raises(ValueError, match="max_tokens must be >= 1, got 0"):
        list(token_budget_batches("abc", 0, length=lengths.get))
    with pytest.raises(ValueError, match="pool must be >= 1, got 0"):
        count_batches([1, 2], 10, pool=0)


def test_recipe_epoch_of_token_budget_batches(gt, tmp_path):
    manifest = write_window_shards(tmp_path, gt, keys=gt.keys, samples_per_shard=60)
    data = DataSection(shard_dir=str(tmp_path), max_tokens=240, bucket_pool=64, shuffle=100)
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=0, strength=(0.05, 1.5, 0.5), augment=True)
    clean = [w for k in gt.keys for w in cut_windows(k, gt.events[k])]
    batches = WindowBatches(data, manifest, corruptor, 32, 0, 1, 0, estimate=clean)
    epochs = [list(batches(epoch)) for epoch in (0, 1)]
    for epoch in epochs:
        assert len(epoch) == len(batches) > 0
        assert all(b["in_mask"].numel() <= 240 for b in epoch)
        real = sum(int(b["in_mask"].sum()) for b in epoch)
        assert real / sum(b["in_mask"].numel() for b in epoch) > 0.8  # little padding
        assert sum(len(b["meta"]) for b in epoch) > 0.9 * manifest["num_samples"]  # nearly every window once
    assert [b["meta"][0]["key"] for b in epochs[0]] != [b["meta"][0]["key"] for b in epochs[1]]
    # an epoch longer than one pass over the windows continues with another shuffle of them
    batches.num_batches = len(batches) + 5
    assert len(list(batches(2))) == len(batches)
    with pytest.raises(ValueError, match="needs clean windows to size the epoch"):
        WindowBatches(data, manifest, corruptor, 32, 0, 1, 0)


def test_recipe_worker_makes_the_same_token_budget_batches(gt, tmp_path):
    """With ``data.num_workers: 1`` the worker corrupts, cuts and collates the batches (so it can work a whole
    pool ahead): they are the batches the training process makes itself, in the same order."""
    import torch

    manifest = write_window_shards(tmp_path, gt, keys=gt.keys[:2], samples_per_shard=60)
    clean = [w for k in gt.keys[:2] for w in cut_windows(k, gt.events[k])]
    epochs = []
    for workers in (0, 1):
        data = DataSection(shard_dir=str(tmp_path), max_tokens=240, bucket_pool=64, shuffle=100,
                           num_workers=workers, prefetch_batches=8)
        corruptor = WindowCorruptor(CorruptionParams.load(), seed=0, strength=(0.05, 1.5, 0.5), augment=True)
        epochs.append(list(WindowBatches(data, manifest, corruptor, 32, 0, 1, 0, estimate=clean)(2)))
    assert len(epochs[0]) == len(epochs[1]) > 5
    for main, worker in zip(*epochs):
        assert main["meta"] == worker["meta"]
        for name, value in main.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(value, worker[name]), name


def test_recipe_epoch_of_fixed_batches(gt, tmp_path):
    """``data.max_tokens: 0``: the fixed batches of the recipe before token-budget batches -- ``batch_size``
    windows each, ``samples // batch_size`` of them, in the order of the shuffled window dataset (same shuffle
    seed), each window corrupted exactly as the dataset corrupts it."""
    import torch

    from fpspot.data.event_windows import collate_windows, window_dataset

    manifest = write_window_shards(tmp_path, gt, keys=gt.keys, samples_per_shard=60)
    data = DataSection(shard_dir=str(tmp_path), max_tokens=0, shuffle=100)
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=0, strength=(0.05, 1.5, 0.5), augment=True)
    batches = WindowBatches(data, manifest, corruptor, 16, 0, 1, 7)
    assert len(batches) == manifest["num_samples"] // 16
    epoch = list(batches(3))
    assert len(epoch) == len(batches) and all(len(b["meta"]) == 16 for b in epoch)
    corruptor.set_epoch(3)
    shuffle_seed = 7 * 100_003 + 3 * 1009  # the recipe's seed for process 0, epoch 3, first pass
    windows = list(window_dataset(tmp_path, corruptor, shuffle=100, shuffle_seed=shuffle_seed))
    expected = [collate_windows(windows[i:i + 16]) for i in range(0, 16 * len(epoch), 16)]
    for got, want in zip(epoch, expected):
        assert got["meta"] == want["meta"]
        for name, value in want.items():
            if isinstance(value, torch.Tensor):
                assert torch.equal(got[name], value), name
