"""Every file in ``launch/`` parses with the loader of the tool that reads it (Accelerate's config loader, its
DeepSpeed plugin, bash) and says what its comments promise; the DeepSpeed "auto" fields are the ones the
trainer fills, and a contradiction between a DeepSpeed file and the training config is a clear error."""

from __future__ import annotations

import copy
import json
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from fpspot.train.config import ConfigError, TrainConfig
from fpspot.train.trainer import _fill_deepspeed

REPO = Path(__file__).resolve().parents[1]
LAUNCH = REPO / "launch"

#: what each Accelerate config must say: (distributed type, processes, machines, use_cpu, mixed precision)
ACCELERATE_CONFIGS = {
    "cpu.yaml": ("MULTI_GPU", 2, 1, True, "no"),
    "cpu_single.yaml": ("NO", 1, 1, True, "no"),
    "single_gpu.yaml": ("NO", 1, 1, False, "bf16"),
    "multi_gpu.yaml": ("MULTI_GPU", 8, 1, False, "bf16"),
    "multi_node.yaml": ("MULTI_GPU", 16, 2, False, "bf16"),
    "deepspeed_zero2.yaml": ("DEEPSPEED", 8, 1, False, "bf16"),
    "deepspeed_zero3.yaml": ("DEEPSPEED", 8, 1, False, "bf16"),
}
DEEPSPEED_CONFIGS = {"zero2.json": 2, "zero3.json": 3}
OTHER_FILES = {"slurm/multi_node.sbatch"}
#: the fields Accelerate fills from the training config (the trainer for the first four)
AUTO_FIELDS = ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "train_batch_size",
               "gradient_clipping")


def test_launch_folder_holds_only_tested_files():
    files = {str(p.relative_to(LAUNCH)) for p in LAUNCH.rglob("*") if p.is_file()}
    expected = ({f"accelerate/{n}" for n in ACCELERATE_CONFIGS}
                | {f"deepspeed/{n}" for n in DEEPSPEED_CONFIGS} | OTHER_FILES)
    assert files == expected


@pytest.mark.parametrize("name", sorted(ACCELERATE_CONFIGS))
def test_accelerate_config_loads_with_accelerates_loader(name):
    from accelerate.commands.config.config_args import ClusterConfig, load_config_from_file

    config = load_config_from_file(str(LAUNCH / "accelerate" / name))  # rejects unknown keys itself
    assert isinstance(config, ClusterConfig)
    kind, processes, machines, use_cpu, precision = ACCELERATE_CONFIGS[name]
    assert (config.distributed_type.value, config.num_processes, config.num_machines, bool(config.use_cpu),
            str(config.mixed_precision)) == (kind, processes, machines, use_cpu, precision)
    assert config.compute_environment.value == "LOCAL_MACHINE"
    if machines > 1:
        assert config.main_process_ip and config.main_process_port and config.machine_rank == 0
    if kind == "DEEPSPEED":
        ds_file = REPO / config.deepspeed_config["deepspeed_config_file"]  # relative to the repository root
        assert ds_file.is_file() and ds_file.parent == LAUNCH / "deepspeed"
        assert f"zero{name[-6]}" in ds_file.name  # deepspeed_zero2.yaml -> zero2.json
        assert config.deepspeed_config["zero3_init_flag"] is False


@pytest.mark.parametrize("name", sorted(DEEPSPEED_CONFIGS))
def test_deepspeed_config_loads_with_accelerates_plugin(name):
    from accelerate.utils import DeepSpeedPlugin

    path = LAUNCH / "deepspeed" / name
    raw = json.loads(path.read_text())
    plugin = DeepSpeedPlugin(hf_ds_config=str(path))
    assert plugin.zero_stage == DEEPSPEED_CONFIGS[name]
    for field in AUTO_FIELDS:
        assert plugin.is_auto(field), field
    assert raw["bf16"]["enabled"] == raw["fp16"]["enabled"] == "auto"  # from the launcher's mixed_precision
    assert "optimizer" not in raw and "scheduler" not in raw  # the trainer brings AdamW and its schedule
    zero = raw["zero_optimization"]
    # bucket sizes are numbers: Accelerate fills them only from a transformers-style model.config.hidden_size
    assert not [k for k, v in zero.items() if v == "auto"]
    if DEEPSPEED_CONFIGS[name] == 3:
        assert zero["stage3_gather_16bit_weights_on_model_save"] is True  # needed to export the best model


def _fake_accelerator(path: Path, processes: int):
    ds = copy.deepcopy(json.loads(path.read_text()))
    return SimpleNamespace(state=SimpleNamespace(deepspeed_plugin=SimpleNamespace(deepspeed_config=ds)),
                           num_processes=processes), ds


def test_trainer_fills_deepspeed_auto_fields_and_refuses_contradictions():
    accelerator, ds = _fake_accelerator(LAUNCH / "deepspeed" / "zero2.json", processes=8)
    _fill_deepspeed(accelerator, TrainConfig(batch_size=6, grad_accum=1, clip_grad_norm=1.0))
    assert (ds["train_micro_batch_size_per_gpu"], ds["gradient_accumulation_steps"], ds["train_batch_size"],
            ds["gradient_clipping"]) == (6, 1, 48, 1.0)
    accelerator, ds = _fake_accelerator(LAUNCH / "deepspeed" / "zero3.json", processes=2)
    ds["gradient_accumulation_steps"] = 4
    with pytest.raises(ConfigError, match="gradient_accumulation_steps is 4 but the training config says 8"):
        _fill_deepspeed(accelerator, TrainConfig(grad_accum=8))
    ds["gradient_accumulation_steps"] = "auto"
    ds["optimizer"] = {"type": "AdamW"}
    with pytest.raises(ConfigError, match="remove 'optimizer'"):
        _fill_deepspeed(accelerator, TrainConfig())


def test_slurm_script_is_valid_bash_with_one_launch_per_node():
    script = LAUNCH / "slurm" / "multi_node.sbatch"
    subprocess.run(["bash", "-n", str(script)], check=True)
    text = script.read_text()
    assert "#SBATCH --ntasks-per-node=1" in text and "srun" in text and "accelerate launch" in text
    for wiring in ('--machine_rank "$SLURM_NODEID"', '--main_process_ip "$MASTER_ADDR"',
                   '--num_machines "$SLURM_NNODES"', "--num_processes $((SLURM_NNODES * GPUS_PER_NODE))"):
        assert wiring in text
    default = text.split("ACCELERATE_CONFIG=${ACCELERATE_CONFIG:-", 1)[1].split("}", 1)[0]
    assert (REPO / default).is_file()
