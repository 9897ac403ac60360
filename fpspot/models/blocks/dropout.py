"""Dropout whose CPU mask is drawn 16 random bits per element instead of one float per element.

``torch.nn.Dropout`` on CPU draws one ``bernoulli_`` float per element, which costs more than the matmul
that produced the activation for a transformer of this project's size: on one EPYC core, a ``(600, 768)``
feed-forward activation takes 4.5-7 ms to drop (forward + backward; several runs) against about 2 ms for the
forward matmul that makes it.
:class:`Dropout` draws the mask as random 64-bit words read as four 16-bit integers each, compares them
with ``p`` quantised to 1/65536, and keeps the scaled mask for the backward pass (one multiply each way):
about 2-3.5 ms for the same tensor (timed alone; the whole training step: ``benchmarks/train_step_speed.py``).

It is the same function as ``nn.Dropout``: elements are zeroed independently with probability ``p``
(within 1/65536) and the others scaled by ``1 / (1 - p)``; identity in eval mode or with ``p = 0``. The
random numbers come from torch's default generator (``torch.manual_seed`` makes runs repeatable), but the
stream differs from ``nn.Dropout``'s. Tensors not on the CPU use ``F.dropout`` (fused on GPUs).
It has no parameters or buffers, so ``state_dict`` names are those of ``nn.Dropout``. The saved mask is the
scaled float one (4 bytes per element against ``nn.Dropout``'s 1-byte bool mask), so activation memory grows a
little on CPU; activation checkpointing recomputes it from the saved RNG state like any other op.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["Dropout", "dropout", "keep_mask"]

_LEVELS = 1 << 16


def keep_mask(shape: torch.Size | tuple[int, ...], p: float, device: torch.device | str = "cpu") -> torch.Tensor:
    """Bool ``shape`` mask, each element True with probability ``1 - p`` (``p`` quantised to 1/65536),
    drawn from torch's default generator as 16 random bits per element."""
    count = math.prod(shape)
    words = torch.empty((count + 3) // 4, dtype=torch.int64, device=device).random_(-(1 << 63), None)
    bits = words.view(torch.int16)[:count].view(shape)  # uniform over -32768..32767
    return bits >= round(p * _LEVELS) - _LEVELS // 2


class _MaskedScale(torch.autograd.Function):
    """``x * mask`` with the float mask saved for backward (``grad * mask``)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(mask)
        return x * mask

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> tuple[torch.Tensor, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask, None


def dropout(x: torch.Tensor, p: float, training: bool = True) -> torch.Tensor:
    """Functional :class:`Dropout`: ``x`` of any shape, the same shape back."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"dropout probability must be in [0, 1], got {p}")
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu" or not x.is_floating_point() or p == 1.0:
        return F.dropout(x, p, training)
    mask = keep_mask(x.shape, p, x.device).to(x.dtype).mul_(1.0 / (1.0 - p))
    return _MaskedScale.apply(x, mask)


class Dropout(nn.Module):
    """Drop-in for ``nn.Dropout(p)`` with the cheaper CPU mask of :func:`dropout`: ``(...) -> (...)``."""

    def __init__(self, p: float = 0.5):
        super().__init__()
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"dropout probability must be in [0, 1], got {p}")
        self.p = float(p)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dropout(x, self.p, self.training)

    def extra_repr(self) -> str:
        return f"p={self.p}"
