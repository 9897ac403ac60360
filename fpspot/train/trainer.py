"""One Accelerate training loop for every fpspot model (TAAD, TAAD+GNN, DST), from one CPU process to
DeepSpeed ZeRO-3 on several nodes; only the ``accelerate launch`` config changes (see ``launch/``).

::

    trainer = Trainer(model, config.train, train_data=lambda epoch: train_loader(..., epoch=epoch),
                      evaluate=run_validation, class_weights=weights)
    result = trainer.fit()          # resumes from run_dir/checkpoints when a run was interrupted

Contract of the callables (the recipes pass the clip / window loaders and an inference + metric function):

``train_data(epoch) -> iterable of batches``
    the batches **this process** trains on in ``epoch``; if it also takes ``start_batch`` (fpspot's
    loaders do: ``functools.partial(train_loader, ...)``), a resumed epoch starts there without loading the
    batches already trained on, else they are read and dropped (a dict of tensors, on any device: the trainer moves
    them to the model's); deterministic given ``epoch`` and independent of the global RNG state, with the
    same number of batches on every process. The loaders are **not** passed through ``accelerator.prepare``
    (they split the data by process themselves; preparing would split a second time).
``evaluate(model) -> {name: value}``
    called on every process with the unwrapped model in eval mode; values are numbers (or nested dicts of
    numbers, logged as ``val/a/b``). ``config.best_metric`` (e.g. ``macro_f1``) picks the best model; the main
    process decides and tells the others. With DeepSpeed ZeRO-3 every process must run the same number of
    forward calls (the parameters are gathered layer by layer).

What one optimizer step does: ``grad_accum`` micro-batches under ``accelerator.accumulate`` (the last,
partial group of an epoch is stepped too, its gradient scaled by ``k / grad_accum`` as Accelerate does at
the end of a dataloader), the loss taken from ``model(batch)["loss"]`` (the model computes it, so DDP and
DeepSpeed wrap the whole step), gradient clipping at ``clip_grad_norm`` (DeepSpeed: the config's
``gradient_clipping``, filled from it), AdamW and the warmup / step-decay schedule; with ``ema_decay`` the
weight average (:mod:`fpspot.train.ema`) is updated after it, and the average, not the trained weights, is what
``evaluate`` receives and what ``best/`` and ``final/`` hold.

Per epoch: the global RNGs are reseeded from ``(seed, epoch, process)``, then ``model.set_epoch(epoch)``,
``model.set_backbone_frozen(epoch < freeze_backbone_epochs)`` (DDP then runs with
``find_unused_parameters=True``), the schedule's epoch, and after the epoch the evaluation
(every ``eval_every`` epochs and after the last), the best model export and a checkpoint.

Run folder (``config.run_dir``)::

    train_config.yaml                 the TrainConfig of the run
    tensorboard/                      TensorBoard events (Accelerate's tracker)
    checkpoints/step_000500/          accelerator.save_state (model.safetensors, optimizer, scheduler, RNG
                                      states per process, DeepSpeed shards) + trainer_state.json (epoch,
                                      batches done in it, optimizer steps, best score, evaluation history)
                                      + ema.safetensors (the weight average, with ema_decay)
    best/                             save_pretrained of the best model + metrics.json
    final/                            save_pretrained of the last model

A checkpoint folder is written under a temporary name and renamed when complete, so an interrupted save
never looks like a checkpoint; the last ``checkpoint_keep`` are kept. Exact resume: ``load_state`` restores
model, optimizer, scheduler and RNG states; the trainer rebuilds the epoch with ``train_data(epoch)``, skips
the batches already consumed (with `start_batch` when `train_data` takes it, else by reading and dropping them)
and puts the RNG states back after that, so the resumed run continues bit for bit (``tests/test_trainer.py``).
Optimizer and scheduler states are saved by Accelerate with ``torch.save``; model weights are safetensors.

TensorBoard scalars every ``log_every`` optimizer steps: ``train/loss`` and every scalar component the
model returns (``train/<name>``), ``train/grad_norm``, ``lr/<group>``, ``perf/samples_per_s`` (all
processes), ``perf/data_wait_fraction`` (time spent waiting for the next batch / wall time, mean over
processes), ``memory/peak_allocated_mib`` (CUDA: ``torch.cuda.max_memory_allocated``) or on CPU
``memory/peak_rss_mib`` (the main process's peak resident set size from ``getrusage``: an upper bound that
includes the Python runtime and the data pipeline, not just tensors); after each epoch ``perf/epoch_s`` (its
training wall time, slowest process; also printed); after each evaluation ``val/<name>``;
at the start the class weights (text table and ``class_weights/<class>`` scalars) and the config (hparams).

A NaN or infinite loss (any process) stops the run before the optimizer step it belongs to with a
:class:`NonFiniteLossError` naming the step, epoch and batch; no checkpoint is written after it, so the
last checkpoint is the last good state. Without fp16 loss scaling a non-finite gradient norm stops it too.

Limits: the end-of-epoch sync registers the epoch with Accelerate's gradient state as its prepared
DataLoaders do (``GradientState._add_dataloader``, the one private Accelerate call; covered by the tests).
Under DeepSpeed ZeRO a frozen backbone is stepped with zero gradients (Adam's step count and the weight
decay advance; torch's AdamW skips parameters without gradients). Checkpoints of multi-node runs need a
file system every node sees.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
import re
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.optim.lr_scheduler import LRScheduler

from fpspot.train.class_weights import format_class_weights
from fpspot.train.config import ConfigError, TrainConfig, flat_config, save_config
from fpspot.train.ema import EMA_FILE, build_ema, load_ema, save_ema
from fpspot.utils.atomic import atomic_open

TrainData = Callable[[int], Iterable[Mapping[str, Any]]]
Evaluate = Callable[[torch.nn.Module], Mapping[str, Any]]
StepCallback = Callable[["Trainer"], None]

CHECKPOINTS = "checkpoints"
STATE_NAME = "trainer_state.json"
STATE_FORMAT = "fpspot-trainer-state/1"
_STEP_DIR = re.compile(r"^step_(\d{6,})$")


class NonFiniteLossError(FloatingPointError):
    """The loss (or, without fp16 loss scaling, the gradient norm) became NaN or infinite."""


# ---------------------------------------------------------------------------- optimizer and schedule


def is_backbone_parameter(name: str) -> bool:
    """Parameters of the video backbone live under ``model.backbone`` (the model contract)."""
    return name.startswith("backbone.")


def is_decayed_parameter(name: str, param: torch.Tensor) -> bool:
    """Weight decay applies to weight matrices and kernels only: biases, norm scales and shifts and every
    other parameter with fewer than 2 dimensions get none."""
    return param.ndim >= 2 and not name.endswith(".bias")


def param_groups(model: torch.nn.Module, lr_head: float, lr_backbone: float,
                 weight_decay: float) -> list[dict]:
    """AdamW parameter groups ``backbone``, ``backbone_no_decay``, ``head``, ``head_no_decay`` (empty ones
    dropped); each group carries its ``name``. Only parameters with ``requires_grad``."""
    groups: dict[str, dict] = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:
            continue
        part = "backbone" if is_backbone_parameter(name) else "head"
        decayed = is_decayed_parameter(name, param)
        key = part if decayed else f"{part}_no_decay"
        group = groups.setdefault(key, {"name": key, "params": [], "param_names": [],
                                        "lr": lr_backbone if part == "backbone" else lr_head,
                                        "weight_decay": weight_decay if decayed else 0.0})
        group["params"].append(param)
        group["param_names"].append(name)
    order = ("backbone", "backbone_no_decay", "head", "head_no_decay")
    return [groups[k] for k in order if k in groups]


def build_optimizer(model: torch.nn.Module, config: TrainConfig) -> torch.optim.AdamW:
    """AdamW over :func:`param_groups` (``param_names`` are kept out of the optimizer's state); its fused
    implementation (one kernel over all parameters) when every parameter is a float tensor on a CPU or CUDA
    device: the same update; the event DST's optimizer step takes about 6 ms instead of 16 on CPU
    (``benchmarks/train_step_speed.py``)."""
    groups = [{k: v for k, v in g.items() if k != "param_names"}
              for g in param_groups(model, config.lr_head, config.lr_backbone, config.weight_decay)]
    if not groups:
        raise ValueError("the model has no trainable parameters")
    params = [p for g in groups for p in g["params"]]
    fused = all(p.is_floating_point() and p.device.type in ("cpu", "cuda") for p in params)
    return torch.optim.AdamW(groups, lr=config.lr_head, weight_decay=config.weight_decay, fused=fused)


class WarmupStepDecay(LRScheduler):
    """``lr = base_lr * min(1, (step + 1) / warmup_steps) * gamma ** #{e in decay_epochs : e <= epoch}``.

    ``step`` counts optimizer steps (this scheduler's ``last_epoch``: call :meth:`step` once per optimizer
    step), ``epoch`` is set by :meth:`set_epoch` at the start of each 0-based epoch. The warmup reaches the
    full rate after ``warmup_steps`` steps (the baseline meant this, but only stepped its LambdaLR on 6 of
    the first 50 batches, freezing the factor at 0.14; spec §2.3).
    """

    def __init__(self, optimizer: torch.optim.Optimizer, warmup_steps: int = 0,
                 decay_epochs: Sequence[int] = (), gamma: float = 0.1):
        self.warmup_steps = int(warmup_steps)
        self.decay_epochs = sorted(int(e) for e in decay_epochs)
        self.gamma = float(gamma)
        self.epoch = 0
        super().__init__(optimizer)

    def factor(self, step: int | None = None, epoch: int | None = None) -> float:
        step = self.last_epoch if step is None else step
        epoch = self.epoch if epoch is None else epoch
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        return warm * self.gamma ** sum(epoch >= e for e in self.decay_epochs)

    def get_lr(self) -> list[float]:
        factor = self.factor()
        return [base * factor for base in self.base_lrs]

    def set_epoch(self, epoch: int) -> None:
        """Enter ``epoch``: the step decay applies from now on."""
        self.epoch = int(epoch)
        for group, lr in zip(self.optimizer.param_groups, self.get_lr()):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


# --------------------------------------------------------------------------------- the accelerator


def _env_flag(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes")


def uses_cuda() -> bool:
    """Whether Accelerate will put this process on a CUDA device (CUDA present and not forced to CPU)."""
    return torch.cuda.is_available() and not _env_flag("ACCELERATE_USE_CPU")


def launched_processes() -> int:
    """The number of processes the launcher started (``WORLD_SIZE``; 1 without a launcher)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def cpu_process_group() -> bool:
    """Whether Accelerate must be built with ``cpu=True`` for the processes the launcher started to form one
    process group: several processes without CUDA, not under DeepSpeed (``cpu=True`` disables it). ``accelerate
    launch`` with a ``MULTI_GPU`` + ``use_cpu: true`` config does not set ``ACCELERATE_USE_CPU``, so without
    this every CPU process would run alone (an independent copy of the model, every half of the data)."""
    return not uses_cuda() and launched_processes() > 1 and not _env_flag("ACCELERATE_USE_DEEPSPEED")


def resolve_mixed_precision(setting: str, cuda: bool | None = None, launcher: str | None = None) -> str:
    """``"auto"`` -> the launcher's ``fp16``/``bf16`` if set (``ACCELERATE_MIXED_PRECISION``), else ``bf16``
    on a CUDA device that supports it, ``fp16`` on other CUDA devices, ``"no"`` on CPU. Other values pass."""
    if setting != "auto":
        return setting
    cuda = uses_cuda() if cuda is None else cuda
    if not cuda:
        return "no"
    launcher = os.environ.get("ACCELERATE_MIXED_PRECISION", "no") if launcher is None else launcher
    if launcher in ("fp16", "bf16"):
        return launcher
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(config: TrainConfig, *, find_unused_parameters: bool = False,
                     log_with: str | Sequence[str] | None = "tensorboard"):
    """The Accelerator the trainer needs: ``config.grad_accum`` accumulation steps (synced at the end of each
    epoch), the resolved mixed precision, gloo between CPU processes, the scheduler stepped by the trainer
    (once per optimizer step, whatever the number of processes), TensorBoard under ``run_dir``."""
    from accelerate import Accelerator
    from accelerate.utils import (DistributedDataParallelKwargs, GradientAccumulationPlugin,
                                  InitProcessGroupKwargs, ProjectConfiguration)

    handlers: list = []
    if not uses_cuda() and launched_processes() > 1:
        handlers.append(InitProcessGroupKwargs(backend="gloo"))  # CPU processes talk over gloo (not MPI)
    if find_unused_parameters:
        handlers.append(DistributedDataParallelKwargs(find_unused_parameters=True))
    run_dir = str(Path(config.run_dir))
    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(config.mixed_precision),
        gradient_accumulation_plugin=GradientAccumulationPlugin(num_steps=config.grad_accum,
                                                                sync_with_dataloader=True),
        step_scheduler_with_optimizer=False,
        log_with=log_with,
        project_config=ProjectConfiguration(project_dir=run_dir, logging_dir=run_dir),
        kwargs_handlers=handlers,
        # several CPU processes are DDP only with cpu=True (else Accelerate inits the process group but does
        # not wrap the model: independent copies); DeepSpeed on CPU must not set it (it disables DeepSpeed)
        cpu=cpu_process_group(),
    )
    from accelerate.utils import DistributedType

    launched = launched_processes()
    independent = launched > 1 and accelerator.distributed_type == DistributedType.NO
    if launched != accelerator.num_processes or independent:
        raise RuntimeError(
            f"{launched} processes were launched but Accelerate runs {accelerator.num_processes} "
            f"({accelerator.distributed_type}): every process would train its own copy; on a machine without "
            "GPUs use launch/accelerate/cpu.yaml (MULTI_GPU + use_cpu)")
    return accelerator


def _fill_deepspeed(accelerator, config: TrainConfig) -> None:
    """Fill the DeepSpeed config's ``"auto"`` fields the trainer owns (the loaders are not prepared, so
    Accelerate cannot read the batch size from them) and refuse settings that contradict the TrainConfig."""
    ds = accelerator.state.deepspeed_plugin.deepspeed_config
    for key in ("optimizer", "scheduler"):
        if key in ds:
            raise ConfigError(f"DeepSpeed config: remove {key!r}: the trainer brings its own AdamW and "
                              "schedule")
    wanted = {"train_micro_batch_size_per_gpu": config.batch_size,
              "gradient_accumulation_steps": config.grad_accum,
              "gradient_clipping": float(config.clip_grad_norm)}
    for key, value in wanted.items():
        current = ds.get(key, "auto")
        if current == "auto":
            ds[key] = value
        elif float(current) != float(value):
            raise ConfigError(f"DeepSpeed config: {key} is {current} but the training config says {value}: "
                              f"set it to \"auto\" (filled from the training config) or make them agree")
    if ds.get("train_batch_size", "auto") == "auto":
        ds["train_batch_size"] = config.batch_size * config.grad_accum * accelerator.num_processes


def _is_zero3(accelerator) -> bool:
    from accelerate.utils import DistributedType

    return (accelerator.distributed_type == DistributedType.DEEPSPEED
            and accelerator.state.deepspeed_plugin.zero_stage == 3)


# ------------------------------------------------------------------------------------------ helpers


def peak_memory(device: torch.device) -> dict[str, float]:
    """``{"memory/peak_allocated_mib": x}`` on CUDA, ``{"memory/peak_rss_mib": x}`` elsewhere (process peak
    RSS from ``getrusage``; ``{}`` where unavailable)."""
    if device.type == "cuda":
        return {"memory/peak_allocated_mib": torch.cuda.max_memory_allocated(device) / 2**20}
    try:
        import resource
    except ImportError:  # Windows
        return {}
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"memory/peak_rss_mib": rss / (2**20 if sys.platform == "darwin" else 2**10)}


def _batch_size(batch: Mapping[str, Any], default: int) -> int:
    for value in batch.values():
        if isinstance(value, torch.Tensor) and value.ndim >= 1:
            return int(value.shape[0])
    return default


def _flatten(metrics: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in metrics.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flatten(value, f"{name}/"))
        elif isinstance(value, torch.Tensor) and value.numel() == 1:
            out[name] = float(value)
        elif isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
            out[name] = float(value)
        elif isinstance(value, str):
            out[name] = value
    return out


def _rng_snapshot() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _rng_restore(state: Mapping[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state:
        torch.cuda.set_rng_state_all(state["cuda"])


class _EpochEnd:
    """Stands for the epoch's data in Accelerate's gradient state, so the last micro-batch of an epoch
    syncs the gradients and steps (as a prepared DataLoader's last batch would)."""

    def __init__(self) -> None:
        self.end_of_dataloader = False
        self.remainder = -1


def checkpoint_step(path: Path) -> int | None:
    match = _STEP_DIR.match(path.name)
    return int(match.group(1)) if match else None


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Complete checkpoints of a run (``checkpoints/step_*`` holding ``trainer_state.json``), oldest first."""
    root = Path(run_dir) / CHECKPOINTS
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir()
             if p.is_dir() and checkpoint_step(p) is not None and (p / STATE_NAME).is_file()]
    return sorted(found, key=checkpoint_step)


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    found = list_checkpoints(run_dir)
    return found[-1] if found else None


@dataclass
class TrainState:
    """The trainer's own counters, saved beside each checkpoint as ``trainer_state.json``."""

    epoch: int = 0  # the epoch to run (or being run)
    batches_done: int = 0  # micro-batches of ``epoch`` already trained on
    global_step: int = 0  # optimizer steps taken
    best_score: float | None = None
    best_step: int | None = None
    best_epoch: int | None = None
    history: list[dict] = field(default_factory=list)  # one entry per evaluation
    num_processes: int = 1
    batch_size: int = 0
    grad_accum: int = 0

    def save(self, directory: Path) -> None:
        with atomic_open(directory / STATE_NAME) as handle:
            json.dump({"format": STATE_FORMAT, **asdict(self)}, handle, indent=1)

    @classmethod
    def load(cls, directory: Path) -> "TrainState":
        path = directory / STATE_NAME
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"{directory}: not a complete checkpoint (no {STATE_NAME})") from None
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg})") from None
        if obj.pop("format", None) != STATE_FORMAT:
            raise ValueError(f"{path}: format must be {STATE_FORMAT!r}")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(obj) - known)
        if unknown:
            raise ValueError(f"{path}: unknown key(s) {', '.join(unknown)}")
        return cls(**obj)


@dataclass
class TrainResult:
    """What :meth:`Trainer.fit` returns."""

    global_step: int
    epochs_completed: int
    best_score: float | None
    best_dir: Path | None
    final_dir: Path
    last_metrics: dict[str, Any]
    history: list[dict]


# ---------------------------------------------------------------------------------------- the trainer


class Trainer:
    """The training loop (see the module docstring).

    model: a :class:`fpspot.models.SpotterModel` (or any module with its hooks and ``forward(batch)``
    returning ``{"loss": scalar, ...}``); config: :class:`TrainConfig`; train_data(epoch) and
    evaluate(model): see the module docstring; accelerator: one built by :func:`make_accelerator` (default)
    or your own (same gradient accumulation as ``config``, ``step_scheduler_with_optimizer=False``);
    class_weights: ``(9,)`` loss weights set on the model and logged (``class_counts``: the 8 action counts
    they came from, shown in the table); on_step_end(trainer): called after every optimizer step, after that
    step's periodic checkpoint (tests, custom logging); hparams: the config logged to TensorBoard (default
    ``config``; recipes pass their whole config).

    The model, optimizer and schedule are prepared in the constructor (``self.model`` is the wrapped model,
    :attr:`unwrapped_model` the module). :meth:`fit` leaves the trackers open: call
    ``trainer.accelerator.end_training()`` when the script is done (it also ends the process group).
    """

    def __init__(self, model: torch.nn.Module, config: TrainConfig, train_data: TrainData,
                 evaluate: Evaluate | None = None, accelerator=None, *,
                 class_weights: torch.Tensor | Sequence[float] | None = None,
                 class_counts: Sequence[int] | None = None, on_step_end: StepCallback | None = None,
                 hparams: Any = None):
        self.config = config
        self.train_data = train_data
        self.evaluate = evaluate
        self.on_step_end = on_step_end
        self.hparams = config if hparams is None else hparams
        self.run_dir = Path(config.run_dir)
        self.class_weights = (None if class_weights is None
                              else torch.as_tensor(class_weights, dtype=torch.float32))
        self.class_counts = class_counts
        self.state = TrainState()
        self.epoch_batches: int | None = None  # micro-batches of the current epoch, when known
        self._last_saved_step: int | None = None
        self._loss_keys: list[str] | None = None

        has_backbone = any(is_backbone_parameter(n) for n, p in model.named_parameters() if p.requires_grad)
        needs_unused = has_backbone and config.freeze_backbone_epochs > 0
        if accelerator is None:
            accelerator = make_accelerator(config, find_unused_parameters=needs_unused)
        else:
            self._check_accelerator(accelerator, needs_unused)
        self.accelerator = accelerator

        if config.grad_checkpointing is not None:
            model.set_grad_checkpointing(config.grad_checkpointing)
        if self.class_weights is not None:
            model.set_class_weights(self.class_weights)
        optimizer = build_optimizer(model, config)
        self.group_names = [g["name"] for g in optimizer.param_groups]
        self.scheduler = WarmupStepDecay(optimizer, config.warmup_steps, config.decay_epochs,
                                         config.decay_gamma)

        from accelerate.utils import DistributedType

        if accelerator.distributed_type == DistributedType.DEEPSPEED:
            _fill_deepspeed(accelerator, config)
        self.ema = None
        if config.ema_decay > 0:
            if _is_zero3(accelerator):
                raise ValueError("train.ema_decay: the weight average needs every parameter on every process, "
                                 "and DeepSpeed ZeRO-3 shards them; use ZeRO-1/2 or ema_decay: 0")
            self.ema = build_ema(model, config.ema_decay)  # before prepare: a copy of the plain module
        # only model, optimizer and schedule: the loaders split the data by process themselves
        prepared = accelerator.prepare(model, optimizer, self.scheduler)
        self.model, self.optimizer, self.prepared_scheduler = prepared
        if self.ema is not None:
            self.ema.to(accelerator.device)

    # ------------------------------------------------------------------------------------ properties

    @property
    def unwrapped_model(self) -> torch.nn.Module:
        return self.accelerator.unwrap_model(self.model)

    @property
    def evaluated_model(self) -> torch.nn.Module:
        """The model ``evaluate`` receives and the exports hold: the weight average with ``ema_decay``, else
        :attr:`unwrapped_model`."""
        return self.ema.module if self.ema is not None else self.unwrapped_model

    @property
    def global_step(self) -> int:
        return self.state.global_step

    def _check_accelerator(self, accelerator, needs_unused: bool) -> None:
        from accelerate.utils import DistributedType

        if accelerator.step_scheduler_with_optimizer:
            raise ValueError("pass an Accelerator built with step_scheduler_with_optimizer=False (the "
                             "trainer steps its schedule once per optimizer step), e.g. "
                             "fpspot.train.trainer.make_accelerator")
        if accelerator.gradient_accumulation_steps != self.config.grad_accum:
            raise ValueError(f"the Accelerator accumulates {accelerator.gradient_accumulation_steps} "
                             f"micro-batches but config.grad_accum is {self.config.grad_accum}")
        handler = getattr(accelerator, "ddp_handler", None)
        is_ddp = accelerator.num_processes > 1 and accelerator.distributed_type not in (
            DistributedType.DEEPSPEED, DistributedType.FSDP, DistributedType.XLA)
        if needs_unused and is_ddp and not (handler is not None and handler.find_unused_parameters):
            raise ValueError("the backbone is frozen in the first epochs: build the Accelerator with "
                             "DistributedDataParallelKwargs(find_unused_parameters=True)")

    # ----------------------------------------------------------------------------------------- fit

    def fit(self) -> TrainResult:
        """Train for ``config.epochs`` (resuming if ``config.resume`` says so); a :class:`TrainResult`."""
        acc, cfg = self.accelerator, self.config
        resume_dir = self._resume_dir()
        self._start_run(resumed_from=resume_dir)
        rng_after_load = None
        if resume_dir is not None:
            self.state = TrainState.load(resume_dir)
            self._warn_if_changed(resume_dir)
            acc.load_state(str(resume_dir))
            if self.ema is not None and not load_ema(self.ema, resume_dir):
                acc.print(f"warning: {resume_dir} has no {EMA_FILE} (written without train.ema_decay): the "
                          "weight average starts from the resumed weights")
            rng_after_load = _rng_snapshot() if self.state.batches_done > 0 else None
            self._last_saved_step = self.state.global_step
            acc.print(f"resumed from {resume_dir} (epoch {self.state.epoch + 1}, "
                      f"batch {self.state.batches_done}, step {self.state.global_step})")
        last_metrics: dict[str, Any] = {}
        while self.state.epoch < cfg.epochs and not self._done():
            epoch = self.state.epoch
            started = time.perf_counter()
            finished = self._train_epoch(epoch, rng_after_load)
            rng_after_load = None
            if not finished:  # max_steps reached inside the epoch
                break
            self._log_epoch_time(epoch, time.perf_counter() - started)
            self.state.epoch, self.state.batches_done = epoch + 1, 0
            if self._eval_due(epoch):
                last_metrics = self._evaluate_and_select(epoch)
            self._save_checkpoint()
        history = self.state.history
        evaluated_last = bool(history) and history[-1]["step"] == self.state.global_step
        if self.evaluate is not None and not evaluated_last and self.state.global_step > 0:
            # stopped by max_steps (or no evaluation yet): evaluate where it stopped
            current = self.state.epoch if self.state.batches_done else self.state.epoch - 1
            last_metrics = self._evaluate_and_select(current)
        if self._last_saved_step != self.state.global_step:
            self._save_checkpoint()
        final_dir = self.run_dir / "final"
        self._export(final_dir)
        best_dir = self.run_dir / "best"
        return TrainResult(global_step=self.state.global_step, epochs_completed=self.state.epoch,
                           best_score=self.state.best_score, best_dir=best_dir if best_dir.is_dir() else None,
                           final_dir=final_dir, last_metrics=last_metrics, history=list(self.state.history))

    def _log_epoch_time(self, epoch: int, seconds: float) -> None:
        """``perf/epoch_s``: wall-clock seconds of one epoch's training (data, steps, logging and mid-epoch
        checkpoints; not the evaluation nor the checkpoint after it; a resumed epoch from the resume), the
        slowest process's."""
        acc = self.accelerator
        elapsed = torch.tensor([seconds], dtype=torch.float64)
        if acc.num_processes > 1:
            elapsed = acc.reduce(elapsed.to(acc.device), reduction="max").cpu()
        seconds = float(elapsed[0])
        acc.log({"perf/epoch_s": seconds}, step=self.state.global_step)
        acc.print(f"epoch {epoch + 1}: trained in {seconds:.1f} s")

    def _done(self) -> bool:
        return self.config.max_steps > 0 and self.state.global_step >= self.config.max_steps

    def _eval_due(self, epoch: int) -> bool:
        if self.evaluate is None:
            return False
        last = epoch + 1 == self.config.epochs
        every = self.config.eval_every
        return last or (every > 0 and (epoch + 1) % every == 0)

    # ------------------------------------------------------------------------------------ one epoch

    def _begin_epoch(self, epoch: int) -> None:
        from accelerate.utils import set_seed

        set_seed(self.config.seed + 1_000_003 * epoch, device_specific=True)
        model = self.unwrapped_model
        model.train()
        model.set_epoch(epoch)
        model.set_backbone_frozen(epoch < self.config.freeze_backbone_epochs)
        self.scheduler.set_epoch(epoch)

    def _train_epoch(self, epoch: int, rng_after_load: Mapping[str, Any] | None) -> bool:
        """Train on the rest of ``epoch``; False when ``max_steps`` stopped it early."""
        from accelerate.utils import send_to_device
        from tqdm.auto import tqdm

        acc, cfg = self.accelerator, self.config
        self._begin_epoch(epoch)
        skip = self.state.batches_done
        # loaders that take start_batch (fpspot's do) resume without loading the batches already trained on
        fast_skip = skip > 0 and _accepts_start_batch(self.train_data)
        data = self.train_data(epoch, start_batch=skip) if fast_skip else self.train_data(epoch)
        try:
            self.epoch_batches = len(data) + (skip if fast_skip else 0)  # type: ignore[arg-type]
        except TypeError:  # an iterable without a length (a DataLoader over an IterableDataset without one)
            self.epoch_batches = None
        iterator: Iterator = iter(data)
        for skipped in range(0 if fast_skip else skip):
            if next(iterator, None) is None:
                raise RuntimeError(f"resuming epoch {epoch + 1}: the checkpoint consumed {skip} batches but "
                                   f"train_data({epoch}) has only {skipped}: the data changed since the "
                                   "checkpoint")
        meter = _Meter()
        with meter.data_wait():
            upcoming = next(iterator, None)
        if rng_after_load is not None:  # mid-epoch resume: the RNG streams continue from the checkpoint
            _rng_restore(rng_after_load)
        if upcoming is None:
            if skip:
                return True
            raise RuntimeError(f"train_data({epoch}) yielded no batch")

        bar = tqdm(total=self.epoch_batches, initial=skip, desc=f"epoch {epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not acc.is_local_main_process, dynamic_ncols=True)
        end = _EpochEnd()
        acc.gradient_state._add_dataloader(end)
        bad = torch.zeros((), dtype=torch.bool, device=acc.device)
        batch_index = skip
        try:
            while upcoming is not None:
                batch = upcoming
                with meter.data_wait():
                    upcoming = next(iterator, None)
                end.end_of_dataloader = upcoming is None
                batch = send_to_device(batch, acc.device, non_blocking=True)
                with acc.accumulate(self.model):
                    outputs = self.model(batch)
                    loss = self._loss(outputs)
                    bad |= ~torch.isfinite(loss.detach())
                    meter.add(outputs, loss, _batch_size(batch, cfg.batch_size), self._loss_keys)
                    if acc.sync_gradients:
                        self._stop_if_bad(bad, epoch, batch_index)
                    acc.backward(loss)
                    grad_norm = None
                    if acc.sync_gradients:
                        # max_norm inf: no clipping, the norm is still computed (logged and checked)
                        max_norm = cfg.clip_grad_norm if cfg.clip_grad_norm > 0 else math.inf
                        grad_norm = acc.clip_grad_norm_(self.model.parameters(), max_norm)
                        self._stop_if_bad_grad(grad_norm, epoch, batch_index)
                        meter.lrs = [group["lr"] for group in self.scheduler.optimizer.param_groups]
                    self.optimizer.step()
                    if acc.sync_gradients and not acc.optimizer_step_was_skipped:
                        self.prepared_scheduler.step()
                        if self.ema is not None:
                            self.ema.update_parameters(self.unwrapped_model)
                    self.optimizer.zero_grad(set_to_none=True)
                batch_index += 1
                bar.update(1)
                if not acc.sync_gradients:
                    continue
                self.state.global_step += 1
                self.state.batches_done = batch_index
                if grad_norm is not None:
                    meter.grad_norm = float(grad_norm)
                if self.state.global_step % cfg.log_every == 0 or end.end_of_dataloader:
                    self._log_train(meter, bar)
                    meter = _Meter()
                if self._done():
                    self._call_step_end()
                    return end.end_of_dataloader
                if (cfg.checkpoint_every > 0 and self.state.global_step % cfg.checkpoint_every == 0
                        and not end.end_of_dataloader):
                    started = time.perf_counter()
                    self._save_checkpoint()
                    meter.start += time.perf_counter() - started  # saving is not training time
                self._call_step_end()
        finally:
            acc.gradient_state._remove_dataloader(end)
            bar.close()
        return True

    def _call_step_end(self) -> None:
        if self.on_step_end is not None:
            self.on_step_end(self)

    def _loss(self, outputs: Mapping[str, Any]) -> torch.Tensor:
        if not isinstance(outputs, Mapping) or "loss" not in outputs:
            raise KeyError("model(batch) returned no 'loss': the training batches must carry targets")
        loss = outputs["loss"]
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise TypeError(f"model(batch)['loss'] must be a scalar tensor, got {type(loss).__name__}")
        if self._loss_keys is None:
            self._loss_keys = sorted(k for k, v in outputs.items()
                                     if k != "loss" and isinstance(v, torch.Tensor) and v.numel() == 1)
        return loss

    def _where(self, epoch: int, batch_index: int, applied: bool = False) -> str:
        last = latest_checkpoint(self.run_dir)
        total = f" of {self.epoch_batches}" if self.epoch_batches else ""
        kept = f"the last good checkpoint is {last}" if last is not None else "no checkpoint was written yet"
        stop = ("no checkpoint is written after it" if applied
                else "the run stopped before that step was applied")
        return (f"at optimizer step {self.state.global_step + 1} (epoch {epoch + 1}, "
                f"batch {batch_index + 1}{total}); {stop}; {kept}")

    def _stop_if_bad(self, bad: torch.Tensor, epoch: int, batch_index: int) -> None:
        count = bad.to(torch.float32)
        if self.accelerator.num_processes > 1:
            count = self.accelerator.reduce(count, reduction="sum")  # every process stops at the same step
        if float(count) > 0:
            raise NonFiniteLossError(f"non-finite loss (NaN or inf) {self._where(epoch, batch_index)}")

    def _stop_if_bad_grad(self, grad_norm, epoch: int, batch_index: int) -> None:
        if grad_norm is None or self.accelerator.mixed_precision == "fp16":  # fp16 overflows: skipped steps
            return
        if not math.isfinite(float(grad_norm)):
            from accelerate.utils import DistributedType

            applied = self.accelerator.distributed_type == DistributedType.DEEPSPEED  # stepped in backward
            raise NonFiniteLossError(f"non-finite gradient norm ({float(grad_norm)}) "
                                     f"{self._where(epoch, batch_index, applied)}")

    # --------------------------------------------------------------------------------------- logging

    def _start_run(self, resumed_from: Path | None) -> None:
        acc = self.accelerator
        if acc.is_main_process:
            self.run_dir.mkdir(parents=True, exist_ok=True)
            save_config(self.config, self.run_dir / "train_config.yaml")
        acc.init_trackers("tensorboard", config=flat_config(self.hparams))
        if self.class_weights is not None:
            title = f"class weights ({self.config.class_weights})"
            table = format_class_weights(self.class_weights, self.class_counts, title)
            acc.print(table)
            if resumed_from is None:
                from fpspot.schema import CLASSES

                values: dict[str, Any] = {f"class_weights/{c}": float(w)
                                          for c, w in zip(CLASSES, self.class_weights)}
                values["class_weights_table"] = "```\n" + table + "\n```"
                acc.log(values, step=0)
        acc.print(f"training {type(self.unwrapped_model).__name__} on {acc.num_processes} process(es) "
                  f"({acc.distributed_type}, {acc.device}, mixed precision {acc.mixed_precision}); "
                  f"effective batch {self.config.batch_size * self.config.grad_accum * acc.num_processes}; "
                  f"run folder {self.run_dir}")

    def _log_train(self, meter: "_Meter", bar) -> None:
        acc = self.accelerator
        keys = self._loss_keys or []
        components = [float(meter.components.get(k, 0.0)) for k in keys]
        packed = torch.tensor([float(meter.loss), meter.micro_batches, meter.samples, meter.wait,
                               meter.wall(), *components], dtype=torch.float64)
        if acc.num_processes > 1:
            packed = acc.reduce(packed.to(acc.device), reduction="sum").cpu()
        loss_sum, micro, samples, wait, wall = packed[:5].tolist()
        micro = max(micro, 1.0)
        values: dict[str, Any] = {"train/loss": loss_sum / micro}
        values.update({f"train/{k}": float(v) / micro for k, v in zip(keys, packed[5:].tolist())})
        if meter.grad_norm is not None:
            values["train/grad_norm"] = meter.grad_norm
        mean_wall = wall / acc.num_processes
        if mean_wall > 0:
            values["perf/samples_per_s"] = samples / mean_wall
            values["perf/data_wait_fraction"] = wait / wall
        for name, lr in zip(self.group_names, meter.lrs):
            if not name.endswith("_no_decay"):
                values[f"lr/{name}"] = float(lr)
        values["train/epoch"] = self.state.epoch + (self.state.batches_done / self.epoch_batches
                                                    if self.epoch_batches else 0.0)
        values.update(peak_memory(acc.device))
        acc.log(values, step=self.state.global_step)
        bar.set_postfix(loss=f"{values['train/loss']:.4g}", step=self.state.global_step, refresh=False)

    # ------------------------------------------------------------------------------------ evaluation

    def _evaluate_and_select(self, epoch: int) -> dict[str, Any]:
        from accelerate.utils import broadcast_object_list

        acc, cfg = self.accelerator, self.config
        model = self.evaluated_model
        model.eval()
        try:
            with torch.no_grad():
                metrics = dict(self.evaluate(model))
        finally:
            if self.ema is None:  # the average stays in eval mode
                model.train()
        flat = _flatten(metrics)
        if cfg.best_metric not in flat or not isinstance(flat[cfg.best_metric], float):
            raise KeyError(f"evaluate() returned no number {cfg.best_metric!r} (config best_metric); "
                           f"it returned: {', '.join(sorted(flat)) or 'nothing'}")
        score = flat[cfg.best_metric]
        best = self.state.best_score
        improved = [best is None or (score > best if cfg.best_mode == "max" else score < best)]
        broadcast_object_list(improved)  # the main process decides for everyone
        acc.log({f"val/{k}": v for k, v in flat.items()}, step=self.state.global_step)
        shown = ", ".join(f"{k} {v:.4f}" for k, v in flat.items() if isinstance(v, float) and "/" not in k)
        acc.print(f"epoch {epoch + 1} step {self.state.global_step}: {shown}")
        self.state.history.append({"epoch": epoch + 1, "step": self.state.global_step,
                                   **{k: v for k, v in flat.items() if isinstance(v, float)}})
        if improved[0]:
            self.state.best_score, self.state.best_step = score, self.state.global_step
            self.state.best_epoch = epoch + 1
            self._export(self.run_dir / "best", {"epoch": epoch + 1, "step": self.state.global_step,
                                                 "best_metric": cfg.best_metric, "metrics": flat})
        return metrics

    def _export(self, directory: Path, info: Mapping[str, Any] | None = None) -> None:
        """``save_pretrained`` of the model into ``directory`` (replaced whole); all processes call it."""
        acc = self.accelerator
        state_dict = acc.get_state_dict(self.model) if _is_zero3(acc) else None  # ZeRO-3 gathers: collective
        if acc.is_main_process:
            tmp = directory.with_name(f".{directory.name}.tmp")
            shutil.rmtree(tmp, ignore_errors=True)
            model = self.evaluated_model
            if state_dict is not None:  # the live module only holds this process's shard: save a full copy
                model = type(model)(**model.config)
                model.load_state_dict(state_dict)
            model.save_pretrained(tmp)
            if info is not None:
                with atomic_open(tmp / "metrics.json") as handle:
                    json.dump(info, handle, indent=1)
            _replace_dir(tmp, directory)
        acc.wait_for_everyone()

    # ----------------------------------------------------------------------------------- checkpoints

    def _resume_dir(self) -> Path | None:
        resume = self.config.resume
        if resume == "none":
            existing = list_checkpoints(self.run_dir)
            if existing:
                raise ValueError(f"{self.run_dir} already has checkpoints (latest {existing[-1].name}): "
                                 "resume with train.resume=auto or choose another train.run_dir")
            return None
        if resume == "auto":
            return latest_checkpoint(self.run_dir)
        path = Path(resume)
        if not (path / STATE_NAME).is_file():
            raise ValueError(f"train.resume={resume!r}: not a complete checkpoint folder (no {STATE_NAME})")
        return path

    def _warn_if_changed(self, resume_dir: Path) -> None:
        saved = self.state
        now = (self.accelerator.num_processes, self.config.batch_size, self.config.grad_accum)
        if (saved.num_processes, saved.batch_size, saved.grad_accum) != now:
            self.accelerator.print(
                f"warning: {resume_dir} was written with {saved.num_processes} process(es), batch "
                f"{saved.batch_size}, accumulation {saved.grad_accum}; now {now[0]}, {now[1]}, {now[2]}: the "
                "resumed run is not exact")

    def _save_checkpoint(self) -> Path:
        """``accelerator.save_state`` into ``checkpoints/step_XXXXXX`` (written under a temporary name and
        renamed when complete); every process calls it."""
        acc = self.accelerator
        root = self.run_dir / CHECKPOINTS
        final = root / f"step_{self.state.global_step:06d}"
        tmp = root / f".{final.name}.tmp"
        if acc.is_main_process:
            shutil.rmtree(tmp, ignore_errors=True)
            tmp.mkdir(parents=True)
        acc.wait_for_everyone()
        acc.save_state(str(tmp), safe_serialization=True)
        acc.wait_for_everyone()
        if acc.is_main_process:
            self.state.num_processes = acc.num_processes
            self.state.batch_size, self.state.grad_accum = self.config.batch_size, self.config.grad_accum
            self.state.save(tmp)
            if self.ema is not None:
                save_ema(self.ema, tmp)
            _replace_dir(tmp, final)
            for old in list_checkpoints(self.run_dir)[:-self.config.checkpoint_keep]:
                shutil.rmtree(old, ignore_errors=True)
        acc.wait_for_everyone()
        self._last_saved_step = self.state.global_step
        return final


def _accepts_start_batch(train_data: Callable[..., Any]) -> bool:
    """Whether ``train_data(epoch, start_batch=k)`` can be called (then it yields batches ``k..`` of the epoch)."""
    import inspect

    try:
        parameters = inspect.signature(train_data).parameters
    except (TypeError, ValueError):
        return False
    return "start_batch" in parameters or any(p.kind is p.VAR_KEYWORD for p in parameters.values())


def _replace_dir(src: Path, dst: Path) -> None:
    """Put the folder ``src`` at ``dst``, replacing an existing ``dst`` (renames; no half-written ``dst``)."""
    old = dst.with_name(f".{dst.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if dst.exists():
        os.replace(dst, old)
    os.replace(src, dst)
    shutil.rmtree(old, ignore_errors=True)


class _Meter:
    """Loss sums (kept as tensors: no device sync per micro-batch), samples and data-wait time of this process
    since the last log point."""

    def __init__(self) -> None:
        self.loss: torch.Tensor | float = 0.0
        self.components: dict[str, torch.Tensor | float] = {}
        self.micro_batches = 0
        self.samples = 0
        self.grad_norm: float | None = None
        self.lrs: list[float] = []
        self.wait = 0.0
        self.start = time.perf_counter()

    @contextlib.contextmanager
    def data_wait(self) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.wait += time.perf_counter() - start

    def add(self, outputs: Mapping[str, Any], loss: torch.Tensor, samples: int,
            keys: Sequence[str] | None) -> None:
        self.loss = self.loss + loss.detach().float()
        for key in keys or ():
            self.components[key] = self.components.get(key, 0.0) + outputs[key].detach().float()
        self.micro_batches += 1
        self.samples += samples

    def wall(self) -> float:
        return time.perf_counter() - self.start


__all__ = ["NonFiniteLossError", "TrainResult", "TrainState", "Trainer", "WarmupStepDecay", "build_optimizer",
           "latest_checkpoint", "list_checkpoints", "make_accelerator", "param_groups", "peak_memory",
           "resolve_mixed_precision"]
