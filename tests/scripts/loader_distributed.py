"""Run by ``tests/test_loader_distributed.py`` under ``accelerate launch`` (2 CPU processes, 2 workers each).

Usage: ``loader_distributed.py EVAL_SHARDS TRAIN_SHARDS OUT_JSON``. Every process iterates the evaluation
loader and one epoch of the training loader with the rank and world size left to their defaults (read from
the launched job), and the main process writes what every process saw to ``OUT_JSON``.
"""

from __future__ import annotations

import json
import sys

import torch.distributed as dist
from accelerate import PartialState

from fpspot.data.loader import eval_loader, train_loader


def main(eval_dir: str, train_dir: str, out: str) -> None:
    state = PartialState(cpu=True)
    evaluation = eval_loader(eval_dir, batch_size=2, num_workers=2)
    eval_batches = list(evaluation)
    training = train_loader(train_dir, batch_size=2, epoch=0, num_workers=2, samples_per_epoch=16, augment=None)
    train_batches = list(training)
    record = {
        "process_index": state.process_index, "num_processes": state.num_processes,
        "dist_world_size": dist.get_world_size() if dist.is_initialized() else 1,
        "loader_world": [evaluation.rank, evaluation.world_size],
        "eval_keys": [m["sample_key"] for b in eval_batches for m in b["meta"]],
        "eval_len": len(evaluation), "eval_batches": len(eval_batches),
        "train_keys": [m["sample_key"] for b in train_batches for m in b["meta"]],
        "train_len": len(training), "train_batches": len(train_batches),
    }
    gathered = [None] * state.num_processes
    if dist.is_initialized():
        dist.all_gather_object(gathered, record)
    else:
        gathered = [record]
    if state.is_main_process:
        with open(out, "w", encoding="utf-8") as handle:
            json.dump(gathered, handle)
    state.wait_for_everyone()


if __name__ == "__main__":
    main(*sys.argv[1:4])
