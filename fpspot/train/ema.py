"""Exponential moving average (EMA) of a model's weights, for ``train.ema_decay`` of the trainer.

The average is torch's :class:`torch.optim.swa_utils.AveragedModel` (a copy of the model whose parameters and
buffers are averaged after every optimizer step) with a warmed-up decay, as timm's ``ModelEmaV3`` does: after
``n`` updates the weights move by ``1 - d_n`` towards the trained ones, with

    d_n = min(decay, (1 + n) / (10 + n))

so the first updates follow the model closely (``d_1 = 2 / 11``) and the average does not carry the random
initialisation for the ``1 / (1 - decay)`` steps a fixed decay would. Integer buffers (BatchNorm's
``num_batches_tracked``) are copied from the model.

The copy is made from the plain module *before* ``accelerator.prepare`` (which may patch the module's
``forward`` with autocast; a deep copy of the patched module would still call the original's) and lives on the
training device. Saved as ``ema.safetensors`` in each checkpoint folder (``safetensors.torch.save_model``) and
put back on resume.
"""

from __future__ import annotations

import os
from collections.abc import Callable

import torch
from torch.optim.swa_utils import AveragedModel

EMA_FILE = "ema.safetensors"
WARMUP_OFFSET = 10  # d_n = (1 + n) / (WARMUP_OFFSET + n) until it reaches the decay


def warmed_up_decay(decay: float, updates: int) -> float:
    """The decay of the update after ``updates`` earlier ones: ``min(decay, (1 + n) / (10 + n))``."""
    return min(decay, (1.0 + updates) / (WARMUP_OFFSET + updates))


def ema_update_fn(decay: float) -> Callable[[list[torch.Tensor], list[torch.Tensor], torch.Tensor], None]:
    """``multi_avg_fn`` for :class:`AveragedModel`: ``ema <- d_n * ema + (1 - d_n) * current`` per tensor
    (``n`` = updates so far); integer tensors take the current value."""
    if not 0.0 < decay < 1.0:
        raise ValueError(f"ema decay must be in (0, 1), got {decay}")

    @torch.no_grad()
    def update(averaged: list[torch.Tensor], current: list[torch.Tensor], num_averaged: torch.Tensor) -> None:
        weight = 1.0 - warmed_up_decay(decay, int(num_averaged))
        floats = [(a, c.to(a.dtype)) for a, c in zip(averaged, current) if a.is_floating_point()]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current):
            if not a.is_floating_point():
                a.copy_(c)

    return update


def build_ema(model: torch.nn.Module, decay: float) -> AveragedModel:
    """An :class:`AveragedModel` copy of ``model`` (parameters and buffers averaged), in eval mode."""
    ema = AveragedModel(model, multi_avg_fn=ema_update_fn(decay), use_buffers=True)
    ema.module.eval()
    return ema


def save_ema(ema: AveragedModel, directory: str | os.PathLike) -> None:
    """Write the average (weights and its update count) as ``directory/ema.safetensors``."""
    from safetensors.torch import save_model

    save_model(ema, os.path.join(directory, EMA_FILE))


def load_ema(ema: AveragedModel, directory: str | os.PathLike) -> bool:
    """Put back the average saved in ``directory``; False when the folder has none. A file that does not fit
    the model raises an error naming the file and the keys."""
    from safetensors.torch import load_model

    path = os.path.join(directory, EMA_FILE)
    if not os.path.isfile(path):
        return False
    missing, unexpected = load_model(ema, path, strict=False, device=str(ema.n_averaged.device))
    if missing or unexpected:
        raise ValueError(f"{path}: the weight average does not fit the model (missing {sorted(missing)[:10]}, "
                         f"unexpected {sorted(unexpected)[:10]})")
    return True


__all__ = ["EMA_FILE", "build_ema", "ema_update_fn", "load_ema", "save_ema", "warmed_up_decay"]
