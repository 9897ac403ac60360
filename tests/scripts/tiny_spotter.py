"""A small spotting model and a deterministic in-memory clip source for the trainer tests.

``TinySpotter`` follows the model contract of :mod:`fpspot.models.base`: a 3D-conv backbone under
``backbone`` (BatchNorm or GroupNorm), a temporal head with a norm, dropout and a classifier, the loss
computed inside ``forward`` with the class weights, ``set_backbone_frozen`` running the backbone without
gradients. ``ClipSource(epoch)`` returns the batches of this process: the samples of an epoch are permuted
from ``(seed, epoch)`` and cut into global batches of ``batch_size * world_size``; process ``rank`` takes
its slice of each, so the processes see disjoint samples in the same global order as one process with the
global batch.

Run as a script (under ``accelerate launch``) it trains with :class:`fpspot.train.trainer.Trainer` and writes,
into ``--out``: ``params.safetensors`` (final state of the model), ``seen_rank{r}.json`` (per epoch, the
sample ids each process trained on), ``info.json`` (world size, distributed type, validation losses before
and after).
"""

from __future__ import annotations

import contextlib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from einops import rearrange
from torch import nn
from torch.nn import functional as F

from fpspot.models.base import SpotterModel
from fpspot.train.config import TrainConfig, config_to_dict, parse_config


def _norm3d(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm3d(channels) if kind == "batch" else nn.GroupNorm(2, channels)


def _norm1d(kind: str, channels: int) -> nn.Module:
    return nn.BatchNorm1d(channels) if kind == "batch" else nn.GroupNorm(2, channels)


class TinySpotter(SpotterModel):
    """``forward({"video": (B, 3, T, H, W) uint8, "nodes": (B, T, 2) float, "labels": (B, T) int64})``
    -> ``{"logits": (B, 9, T), "loss", "ce"}`` (``loss``: class-weighted CE averaged over all B*T frames,
    as the TAAD loss; ``ce``: unweighted CE, a logged component)."""

    def __init__(self, channels: int = 8, hidden: int = 16, norm: str = "batch", dropout: float = 0.1,
                 num_classes: int = 9):
        super().__init__(channels=channels, hidden=hidden, norm=norm, dropout=dropout,
                         num_classes=num_classes)
        self.backbone = nn.Sequential(
            nn.Conv3d(3, channels, (1, 3, 3), padding=(0, 1, 1), bias=False), _norm3d(norm, channels),
            nn.GELU(), nn.Conv3d(channels, channels, (3, 3, 3), padding=1))
        self.head = nn.Sequential(
            nn.Conv1d(channels + 2, hidden, 3, padding=1, bias=False), _norm1d(norm, hidden), nn.GELU(),
            nn.Dropout(dropout))
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        video = (batch["video"].float() / 255 - 0.45) / 0.225
        frozen = torch.no_grad() if self.backbone_frozen else contextlib.nullcontext()
        with frozen:
            features = self.backbone(video).mean(dim=(-1, -2))  # (B, C, T)
        features = torch.cat([features, rearrange(batch["nodes"], "b t c -> b c t")], dim=1)
        hidden = rearrange(self.head(features), "b c t -> b t c")
        logits = rearrange(self.classifier(hidden), "b t k -> b k t")
        out = {"logits": logits}
        if "labels" in batch:
            out.update(self.compute_loss(out, batch))
        return out

    def compute_loss(self, outputs: dict[str, torch.Tensor],
                     batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        logits, labels = outputs["logits"].float(), batch["labels"]
        ce = F.cross_entropy(logits, labels, reduction="none")  # (B, T)
        weights = self.class_weights[labels] if self.class_weights.numel() else torch.ones_like(ce)
        return {"loss": (ce * weights).mean(), "ce": ce.mean().detach()}


def make_clips(num_samples: int, seed: int = 0, frames: int = 8, size: int = 12) -> dict[str, torch.Tensor]:
    """``num_samples`` learnable clips: the class of frames 2..5 shows as a bright patch in one channel."""
    rng = np.random.default_rng(seed)
    classes = np.arange(num_samples) % 9
    video = rng.integers(0, 60, size=(num_samples, 3, frames, size, size), dtype=np.int64)
    labels = np.zeros((num_samples, frames), dtype=np.int64)
    for i, c in enumerate(classes):
        if c:
            labels[i, 2:6] = c
            video[i, c % 3, 2:6, 2:8, 2:8] += 40 * (1 + (c - 1) // 3)
    nodes = rng.normal(size=(num_samples, frames, 2)).astype(np.float32)
    return {"video": torch.from_numpy(video.astype(np.uint8)), "nodes": torch.from_numpy(nodes),
            "labels": torch.from_numpy(labels), "ids": torch.arange(num_samples)}


class ClipSource:
    """``source(epoch)``: the batches of process ``rank`` (see the module docstring). ``nan_at=(epoch, i)``
    puts NaN into the node features of that batch (on every process)."""

    def __init__(self, num_samples: int, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 nan_at: tuple[int, int] | None = None):
        self.clips = make_clips(num_samples, seed)
        self.num_samples, self.batch_size, self.seed = num_samples, batch_size, seed
        self.rank, self.world_size, self.nan_at = rank, world_size, nan_at
        self.seen: dict[int, list[int]] = {}  # epoch -> sample ids handed out

    def __call__(self, epoch: int) -> list[dict[str, torch.Tensor]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)
        global_batch = self.batch_size * self.world_size
        batches = []
        for i in range(self.num_samples // global_batch):
            global_ids = order[i * global_batch:(i + 1) * global_batch]
            ids = global_ids[self.rank * self.batch_size:(self.rank + 1) * self.batch_size]
            batch = {k: v[torch.from_numpy(ids)].clone() for k, v in self.clips.items()}
            if self.nan_at == (epoch, i):
                batch["nodes"][:] = float("nan")
            batches.append(batch)
        return _Recorded(batches, self.seen.setdefault(epoch, []))


class _Recorded(list):
    """The epoch's batches; records the sample ids handed out."""

    def __init__(self, batches: list, seen: list[int]):
        super().__init__(batches)
        self._seen = seen

    def __iter__(self):
        for batch in super().__iter__():
            self._seen.extend(batch["ids"].tolist())
            yield batch


def validation_loss(model: nn.Module, clips: dict[str, torch.Tensor]) -> float:
    """Loss of ``model`` in eval mode on ``clips`` (the training mode is restored)."""
    device = next(model.parameters()).device
    training = model.training
    model.eval()
    try:
        with torch.no_grad():
            return float(model({k: v.to(device) for k, v in clips.items()})["loss"])
    finally:
        model.train(training)


@dataclass
class ScriptConfig:
    """Command line of the script: ``--out DIR`` and any field (``--train.epochs=2``,
    ``--model.norm=group``)."""

    out: str = "/tmp/trainer/tiny"
    num_samples: int = 48
    evaluate: bool = True
    model: dict[str, Any] = field(default_factory=dict)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=2, batch_size=4, grad_accum=2, lr_head=1e-2, lr_backbone=1e-2, warmup_steps=2,
        decay_epochs=[1], freeze_backbone_epochs=1, checkpoint_every=0, log_every=1, best_metric="val_loss",
        best_mode="min", class_weights="none"))


def run(config: ScriptConfig) -> dict[str, Any]:
    """Train ``TinySpotter(**config.model)`` on a ClipSource split over the processes; returns the trainer's
    result and what the processes saw (the main process writes the files of the module docstring)."""
    from accelerate.utils import gather_object, set_seed
    from safetensors.torch import save_file

    from fpspot.train.trainer import Trainer, make_accelerator

    cfg = config.train
    set_seed(cfg.seed)
    model = TinySpotter(**config.model)
    freeze = cfg.freeze_backbone_epochs > 0
    accelerator = make_accelerator(cfg, find_unused_parameters=freeze)
    source = ClipSource(config.num_samples, cfg.batch_size, seed=cfg.seed, rank=accelerator.process_index,
                        world_size=accelerator.num_processes)
    val = make_clips(18, seed=cfg.seed + 99)
    val_before = validation_loss(model, val)
    evaluate = (lambda m: {"val_loss": validation_loss(m, val)}) if config.evaluate else None
    trainer = Trainer(model, cfg, source, evaluate, accelerator, class_weights=None, hparams=config)
    result = trainer.fit()
    seen = gather_object([source.seen])
    out = Path(config.out)
    info = {"world_size": accelerator.num_processes, "distributed_type": str(accelerator.distributed_type),
            "val_before": val_before, "val_after": validation_loss(trainer.unwrapped_model, val),
            "global_step": result.global_step, "best_score": result.best_score}
    if accelerator.is_main_process:
        out.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in trainer.unwrapped_model.state_dict().items()}
        save_file(state, str(out / "params.safetensors"))
        for rank, ids in enumerate(seen):
            (out / f"seen_rank{rank}.json").write_text(json.dumps(ids))
        (out / "info.json").write_text(json.dumps(info, indent=1))
        (out / "config.json").write_text(json.dumps(config_to_dict(config), indent=1))
    accelerator.wait_for_everyone()
    return {"result": result, "seen": seen, "info": info, "trainer": trainer}


def main(argv: list[str] | None = None) -> None:
    run(parse_config(ScriptConfig, argv, prog="tiny_spotter.py"))


if __name__ == "__main__":
    main(sys.argv[1:])
