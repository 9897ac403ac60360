"""The clip loaders under ``accelerate launch`` with 2 CPU processes and 2 DataLoader workers each: evaluation
yields every sample exactly once, training splits the data (different samples per rank, same batch count)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from data_fixtures import gnn_shards, shard_keys, synth_dir, val_shards  # noqa: F401
from harness import launch_two_cpu_processes

SCRIPT = Path(__file__).parent / "scripts" / "loader_distributed.py"


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_two_workers(val_shards, gnn_shards, tmp_path):  # noqa: F811
    out = tmp_path / "seen.json"
    done = launch_two_cpu_processes(SCRIPT, val_shards, gnn_shards, out)
    assert done.returncode == 0, done.stderr[-4000:]
    ranks = json.loads(out.read_text())
    assert [r["num_processes"] for r in ranks] == [2, 2] and [r["dist_world_size"] for r in ranks] == [2, 2]
    assert [r["loader_world"] for r in ranks] == [[0, 2], [1, 2]]  # the loaders found the job's rank themselves
    # evaluation: every sample exactly once over 2 processes x 2 workers, each process yields len() batches
    seen = ranks[0]["eval_keys"] + ranks[1]["eval_keys"]
    assert sorted(seen) == sorted(shard_keys(val_shards)) and all(r["eval_keys"] for r in ranks)
    assert all(r["eval_batches"] == r["eval_len"] for r in ranks)
    # training: the same number of batches everywhere (DDP), different data on each rank
    assert ranks[0]["train_len"] == ranks[1]["train_len"] == 4
    assert all(r["train_batches"] == r["train_len"] for r in ranks)
    assert not set(ranks[0]["train_keys"]) & set(ranks[1]["train_keys"])
