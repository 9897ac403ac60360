"""Shared fixtures. Real FOOTPASS files are found through ``FPSPOT_FOOTPASS_DIR`` (default
``../shared/data/footpass`` next to the repository); tests that need them are skipped when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from harness import reset_accelerate

REPO = Path(__file__).resolve().parents[1]
FOOTPASS_DIR = Path(os.environ.get("FPSPOT_FOOTPASS_DIR", REPO.parent / "shared" / "data" / "footpass"))


@pytest.fixture(scope="session")
def footpass_dir() -> Path:
    """Folder of the real FOOTPASS ground truth and released predictions (skips when absent)."""
    if not (FOOTPASS_DIR / "playbyplay_val_g18_g24.json").is_file():
        pytest.skip(f"real FOOTPASS files not found in {FOOTPASS_DIR} (set FPSPOT_FOOTPASS_DIR)")
    return FOOTPASS_DIR


@pytest.fixture
def one_thread():
    """Torch on one thread for the test (tiny models and tensors on a shared 2-core machine run several times
    faster); the previous thread count is restored afterwards. Use with ``pytest.mark.usefixtures``."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def fresh_accelerate_state():
    """Accelerate's process-wide state cleared before and after the test (tests that build an Accelerator
    in-process; use with ``pytest.mark.usefixtures``)."""
    reset_accelerate()
    yield
    reset_accelerate()
