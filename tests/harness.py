"""Helpers for tests that run the trainer or a recipe in the test process.

``reset_accelerate()`` clears Accelerate's process-wide state (an ``Accelerator`` built earlier in the same
process would otherwise be reused with its settings; the fixture ``fresh_accelerate_state`` in conftest.py
calls it before and after a test). ``with recipe_module(name) as recipe:`` imports ``recipes/<name>.py`` as a
module (recipes are scripts, not a package) and unregisters it afterwards. ``launch_two_cpu_processes(script,
*args)`` runs a script under ``accelerate launch`` with the shipped 2-process CPU config.
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]


def reset_accelerate() -> None:
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@contextmanager
def recipe_module(name: str, module_name: str | None = None) -> Iterator[ModuleType]:
    """``recipes/<name>.py`` imported under ``module_name`` and registered in ``sys.modules`` (dataclasses need
    it) for the duration of the ``with`` block."""
    module_name = module_name or f"recipe_{name}"
    spec = importlib.util.spec_from_file_location(module_name, REPO / "recipes" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.modules.pop(module_name, None)


def launch_two_cpu_processes(script: Path, *args: object, timeout: int = 600) -> subprocess.CompletedProcess:
    """``accelerate launch --config_file launch/accelerate/cpu.yaml script *args``: two real DDP processes on CPU
    (MULTI_GPU with use_cpu; ``--cpu --num_processes 2`` would start one), a free port, one thread each, and no
    ``ACCELERATE_USE_CPU`` (the launcher does not set it for this config, so the code must not need it). Returns
    the finished process with its output captured (text)."""
    env = {k: v for k, v in os.environ.items() if k != "ACCELERATE_USE_CPU"}  # the config alone must do
    env.update(OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    command = [sys.executable, "-m", "accelerate.commands.launch", "--config_file",
               str(REPO / "launch" / "accelerate" / "cpu.yaml"), "--main_process_port", "0", str(script),
               *map(str, args)]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
