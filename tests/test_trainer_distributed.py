"""The trainer under ``accelerate launch`` with 2 CPU processes: DDP (``launch/accelerate/cpu.yaml``) and
DeepSpeed ZeRO-2 (``launch/accelerate/deepspeed_zero2.yaml`` with ``--num_processes 2 --mixed_precision no``).

Each run must split the data (the two processes train on disjoint samples of every epoch) and end with the
parameters of one process trained on the same global batches in the same order (``tests/scripts/
tiny_spotter.py``: per-process batch 4 vs one process with batch 8, accumulation 2, two epochs).

Both runs also keep a weight average (``train.ema_decay``): each process updates its own copy from the same
parameters, so the exported average must match one process's too.

Tolerance: 1e-6 absolute on parameters of magnitude ~1 (measured: 3e-8 for DDP, 1.5e-8 for ZeRO-2); what
differs is only the float summation order of the gradient (two per-process means averaged vs one mean over 8
samples).
The model uses GroupNorm here: with BatchNorm each process normalises with the statistics of its own 4
samples, so the result legitimately differs from one process normalising over 8 (SyncBatchNorm would make them
agree on GPUs; it does not run on CPU). The DDP run also freezes the backbone in epoch 1, which exercises
``find_unused_parameters``. DeepSpeed runs without the frozen epoch: ZeRO steps parameters without gradients
as if their gradient were zero (Adam's step count and weight decay advance), unlike torch's AdamW, which skips
them. The first DeepSpeed start on a machine compiles a small communication op (about 30 s to a few minutes).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "scripts"))

from harness import reset_accelerate  # noqa: E402
from tiny_spotter import ScriptConfig, TinySpotter, run  # noqa: E402

from fpspot.train.config import apply_overrides  # noqa: E402

pytestmark = [pytest.mark.slow, pytest.mark.distributed]

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "tests" / "scripts" / "tiny_spotter.py"
EXACT = ["model.norm=group", "model.dropout=0", "train.ema_decay=0.7"]
TOLERANCE = 1e-6


def _launch(config: str, out: Path, overrides: list[str], launch_args: list[str] = ()) -> dict:
    accelerate = shutil.which("accelerate", path=str(Path(sys.executable).parent)) or "accelerate"
    command = [accelerate, "launch", "--config_file", str(REPO / "launch" / "accelerate" / config),
               "--main_process_port", "0", *launch_args, str(SCRIPT),
               f"--out={out}", f"--train.run_dir={out / 'run'}", *[f"--{o}" for o in overrides]]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, f"{' '.join(command)}\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return json.loads((out / "info.json").read_text())


def _single_process(out: Path, overrides: list[str]) -> dict[str, torch.Tensor]:
    reset_accelerate()
    try:
        settings = [f"out={out}", f"train.run_dir={out / 'run'}", "train.batch_size=8", *overrides]
        run(apply_overrides(ScriptConfig(), settings))
    finally:
        reset_accelerate()
    return load_file(str(out / "params.safetensors"))


def _assert_split(out: Path, num_samples: int = 48) -> None:
    seen = [json.loads((out / f"seen_rank{r}.json").read_text()) for r in (0, 1)]
    assert seen[0].keys() == seen[1].keys() == {"0", "1"}  # two epochs
    for epoch in ("0", "1"):
        first, second = seen[0][epoch], seen[1][epoch]
        assert len(first) == len(second) == num_samples // 2
        assert not set(first) & set(second)  # split, not duplicated
        assert sorted(first + second) == list(range(num_samples))


def _initial_parameters() -> dict[str, torch.Tensor]:
    from accelerate.utils import set_seed

    set_seed(ScriptConfig().train.seed)  # as run() does before building the model
    return TinySpotter(norm="group", dropout=0.0).state_dict()


def _assert_same_parameters(params: dict[str, torch.Tensor], reference: dict[str, torch.Tensor]) -> None:
    assert params.keys() == reference.keys()
    worst = max((params[k].float() - reference[k].float()).abs().max().item() for k in reference)
    assert worst <= TOLERANCE, worst
    initial = _initial_parameters()
    trained = max((params[k].float() - initial[k].float()).abs().max().item() for k in initial)
    assert trained > 1e-2  # the runs trained: agreeing to 1e-6 is not agreeing on untouched weights


def _assert_same_average(out: Path, reference_out: Path) -> None:
    """``final/`` holds the weight average (``train.ema_decay``): the same as one process's, not the trained
    weights."""
    average = load_file(str(out / "run" / "final" / "model.safetensors"))
    _assert_same_parameters(average, load_file(str(reference_out / "run" / "final" / "model.safetensors")))
    trained = load_file(str(out / "params.safetensors"))
    assert max((average[k] - trained[k]).abs().max().item() for k in trained) > 100 * TOLERANCE


def test_ddp_on_two_cpu_processes_matches_one_process(tmp_path):
    info = _launch("cpu.yaml", tmp_path / "ddp", EXACT)  # freeze_backbone_epochs=1 (script default)
    assert info["world_size"] == 2 and info["distributed_type"] == "DistributedType.MULTI_CPU"
    assert info["global_step"] == 6  # 48 samples / (4 x 2 processes) = 6 micro-batches an epoch, accum 2
    assert info["val_after"] < info["val_before"]
    _assert_split(tmp_path / "ddp")
    reference = _single_process(tmp_path / "one", EXACT)
    params = load_file(str(tmp_path / "ddp" / "params.safetensors"))
    _assert_same_parameters(params, reference)
    best = load_file(str(tmp_path / "ddp" / "run" / "best" / "model.safetensors"))
    assert best.keys() == params.keys()
    _assert_same_average(tmp_path / "ddp", tmp_path / "one")


def test_deepspeed_zero2_on_two_cpu_processes_matches_one_process(tmp_path):
    overrides = [*EXACT, "train.freeze_backbone_epochs=0"]
    info = _launch("deepspeed_zero2.yaml", tmp_path / "zero2", overrides,
                   ["--num_processes", "2", "--mixed_precision", "no"])
    assert info["world_size"] == 2 and info["distributed_type"] == "DistributedType.DEEPSPEED"
    assert info["val_after"] < info["val_before"]
    _assert_split(tmp_path / "zero2")
    reference = _single_process(tmp_path / "one", overrides)
    _assert_same_parameters(load_file(str(tmp_path / "zero2" / "params.safetensors")), reference)
    _assert_same_average(tmp_path / "zero2", tmp_path / "one")
    checkpoint = tmp_path / "zero2" / "run" / "checkpoints" / "step_000006"
    assert (checkpoint / "trainer_state.json").is_file() and (checkpoint / "pytorch_model").is_dir()
    rng_files = {p.name for p in checkpoint.glob("random_states_*.pkl")}
    assert rng_files == {"random_states_0.pkl", "random_states_1.pkl"}
    assert (tmp_path / "zero2" / "run" / "best" / "model.safetensors").is_file()
