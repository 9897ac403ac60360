"""How many intra-op threads torch gets in a process on CPU."""

from __future__ import annotations

import os


def cpu_threads_per_process(setting: int) -> int:
    """Intra-op threads for torch in this process: ``setting`` if positive, else the cores this process may run
    on divided by the processes launched on this machine (``LOCAL_WORLD_SIZE``), at least 1.

    Plain ``accelerate launch`` sets ``OMP_NUM_THREADS=1``, which leaves a single process on one core; the
    recipes call ``torch.set_num_threads(cpu_threads_per_process(config.cpu_threads))`` at start.
    """
    if setting < 0:
        raise ValueError(f"cpu_threads must be 0 (automatic) or positive, got {setting}")
    if setting > 0:
        return setting
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // int(os.environ.get("LOCAL_WORLD_SIZE", "1")))


__all__ = ["cpu_threads_per_process"]
