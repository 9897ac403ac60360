"""Session-wide synthetic data for the data tests: one small FOOTPASS-format dataset and its clip shards.

Import the fixtures into a test module (``from data_fixtures import synth_dir, taad_shards, ...``). The data
is built once per test run (memoised here, so importing the fixtures into several modules does not rebuild
it, and shared between pytest-xdist workers): 3 games of 1 minute at 176x320 (train: games 0 and 1, val:
game 2), about 10 s, and shards with few samples per shard so that splitting over processes and workers has
several shards to split. ``taad_like_logits(rows, seed)`` gives a half's logits as a decent TAAD would.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest

from fpspot.data.tracks import HalfRows
from fpspot.schema import NUM_ROLES, Col

SYNTH_HW = (176, 320)
_CACHE: dict[str, Path] = {}


def _build(name: str, factory, make) -> Path:
    """Build ``name`` once per test session: memoised in this process, and shared between pytest-xdist
    workers through the session's common temporary folder (a file lock; the first worker builds)."""
    if name not in _CACHE:
        from filelock import FileLock  # a dependency of torch

        root = factory.getbasetemp()
        if os.environ.get("PYTEST_XDIST_WORKER"):
            root = root.parent  # shared by the workers of one run
        path = root / "fpspot_data" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(str(path) + ".lock"):
            done = path / ".complete"
            if not done.is_file():
                shutil.rmtree(path, ignore_errors=True)
                path.mkdir()
                make(path)
                done.touch()
        _CACHE[name] = path
    return _CACHE[name]


@pytest.fixture(scope="session")
def synth_dir(tmp_path_factory) -> Path:
    """A synthetic dataset: 3 games x 1 minute at 176x320, seed 11 (train 0, 1; val 2)."""
    from fpspot.data.synth import SynthConfig, generate_dataset

    def make(path):
        generate_dataset(path, SynthConfig(games=3, minutes=1.0, size=SYNTH_HW, seed=11, val_games=1))

    return _build("synth", tmp_path_factory, make)


def _shards(tmp_path_factory, synth: Path, name: str, split: str, **options) -> Path:
    from fpspot.data.shards import ShardConfig, write_clip_shards

    def make(path):
        write_clip_shards(synth, split, path, ShardConfig(frame_hw=SYNTH_HW, **options))

    return _build(name, tmp_path_factory, make)


@pytest.fixture(scope="session")
def taad_shards(tmp_path_factory, synth_dir) -> Path:
    """TAAD clips (5 tracklets) of the train split, 6 samples per shard."""
    return _shards(tmp_path_factory, synth_dir, "taad_train", "train", kind="taad", samples_per_shard=6)


@pytest.fixture(scope="session")
def gnn_shards(tmp_path_factory, synth_dir) -> Path:
    """TAAD+GNN clips (26 role slots) of the train split plus 3 background clips per half, 8 per shard."""
    return _shards(tmp_path_factory, synth_dir, "gnn_train", "train", kind="taad_gnn", background_per_half=3,
                   samples_per_shard=8)


@pytest.fixture(scope="session")
def val_shards(tmp_path_factory, synth_dir) -> Path:
    """TAAD+GNN clips of the val split, 3 samples per shard (many small shards for the split tests)."""
    return _shards(tmp_path_factory, synth_dir, "gnn_val", "val", kind="taad_gnn", background_per_half=2,
                   samples_per_shard=3)


def shard_keys(shard_dir: Path) -> list[str]:
    """Sample keys of every shard in a folder, read straight from the tar member names, in manifest order."""
    import json
    import tarfile

    manifest = json.loads((shard_dir / "manifest.json").read_text())
    keys = []
    for shard in manifest["shards"]:
        with tarfile.open(shard_dir / shard["name"]) as tar:
            seen = dict.fromkeys(name.split(".", 1)[0] for name in tar.getnames())
        keys.extend(seen)
    return keys


def taad_like_logits(rows: np.ndarray, seed: int) -> np.ndarray:
    """Logits ``(9, 26, last + 1)`` as a decent TAAD would give: background everywhere, a peak of the class at
    the actor's slot on the event frame (and half of it on the neighbours), noise, zeros before the first
    visible frame (as the inference engine writes them)."""
    half = HalfRows(rows)
    n = half.last + 1
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 0.5, (9, 26, n)).astype(np.float32)
    logits[0] += 3.0
    for row in rows[np.nan_to_num(rows[:, Col.CLS]) > 0]:
        frame, cls = int(row[Col.FRAME]), int(row[Col.CLS])
        slot = int(row[Col.LEFT_TO_RIGHT] * NUM_ROLES + row[Col.ROLE_ID] - 1)
        logits[cls, slot, frame] += 8.0
        logits[cls, slot, max(0, frame - 1)] += 4.0
        logits[cls, slot, min(n - 1, frame + 1)] += 4.0
    logits[..., : half.first_visible] = 0.0
    return logits
