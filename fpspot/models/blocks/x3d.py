"""X3D video backbone (stem + res2..res5) whose state dict is the one of pytorchvideo's X3D.

The module tree mirrors pytorchvideo's ``create_x3d`` (``blocks.0`` stem, ``blocks.1..4`` stages of
residual blocks), so the public Kinetics-400 checkpoints (``X3D_S.pyth``, ``X3D_M.pyth``, ``X3D_L.pyth``: a
torch pickle dict holding ``model_state``) load key for key once their head (``blocks.5``) is dropped:
:func:`load_pytorchvideo_x3d`. Nothing is downloaded.

Structure (pytorchvideo's naming is kept, including its swapped stem names):

* stem ``blocks.0``: ``conv.conv_t`` Conv3d 3->24, kernel 1x3x3, stride (1, 2, 2) (the *spatial* conv) ->
  ``conv.conv_xy`` depthwise Conv3d 24->24, kernel 5x1x1 (the *temporal* conv) -> ``norm`` BN -> ReLU;
* stage ``blocks.{1..4}.res_blocks.{i}`` (res2..res5; widths 24/48/96/192, bottleneck 54/108/216/432 =
  2.25x, depths 3/5/11/7 for S and M, 5/10/25/15 for L): ``branch2`` = ``conv_a`` 1x1x1 -> ``norm_a`` BN ->
  ReLU -> ``conv_b`` depthwise 3x3x3 (spatial stride 2 in the first block of a stage, temporal stride 1
  everywhere) -> ``norm_b.0`` BN -> ``norm_b.1`` squeeze-excitation (ratio 0.0625, on blocks 0, 2, 4, ...)
  -> swish -> ``conv_c`` 1x1x1 -> ``norm_c`` BN; the first block of a stage has a shortcut ``branch1_conv``
  1x1x1 with the stride (plus ``branch1_norm`` BN when the width changes, i.e. not in res2); sum -> ReLU.

Shapes: ``(B, 3, T, H, W)`` -> ``(B, 24, T, H/4, W/4)`` (res2), ``(B, 48, T, H/8, W/8)`` (res3),
``(B, 96, T, H/16, W/16)`` (res4), ``(B, 192, T, H/32, W/32)`` (res5) (each halving rounds up).

Activation checkpointing (:meth:`X3D.set_grad_checkpointing`) recomputes each residual block in backward
(non-reentrant ``torch.utils.checkpoint``); BatchNorm running statistics are updated once per forward, not
again during the recomputation (:func:`checkpoint_module`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

STAGE_WIDTHS = (24, 48, 96, 192)
BOTTLENECK_FACTOR = 2.25
SE_RATIO = 0.0625


@dataclass(frozen=True)
class X3DSpec:
    """Depths of res2..res5 (all X3D variants used here share the widths 24/48/96/192)."""

    depths: tuple[int, int, int, int]


#: pytorchvideo's ``round_repeats([1, 2, 5, 3], depth_factor)`` for depth factor 2.2 (XS, S, M) and 5.0 (L);
#: ``x3d_tiny`` is one block per stage, for tests and CPU recipes.
X3D_SPECS: dict[str, X3DSpec] = {
    "x3d_s": X3DSpec((3, 5, 11, 7)),
    "x3d_m": X3DSpec((3, 5, 11, 7)),
    "x3d_l": X3DSpec((5, 10, 25, 15)),
    "x3d_tiny": X3DSpec((1, 1, 1, 1)),
}


def round_width(width: float, multiplier: float, divisor: int = 8) -> int:
    """Channel rounding of the X3D paper (pytorchvideo ``round_width``): nearest multiple of ``divisor``, at
    least ``divisor``, bumped up by one ``divisor`` if rounding lost more than 10 %."""
    width = width * multiplier
    rounded = max(divisor, int(width + divisor / 2) // divisor * divisor)
    if rounded < 0.9 * width:
        rounded += divisor
    return int(rounded)


class Swish(nn.Module):
    """``x * sigmoid(x)``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(x)


class SqueezeExcitation(nn.Module):
    """Channel gating ``x * sigmoid(W2 relu(W1 mean_thw(x)))`` with 1x1x1 convs (``block.0``, ``block.2``)."""

    def __init__(self, channels: int, reduced: int):
        super().__init__()
        self.block = nn.Sequential(nn.Conv3d(channels, reduced, 1, bias=True), nn.ReLU(),
                                   nn.Conv3d(reduced, channels, 1, bias=True), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.block(x.mean(dim=(2, 3, 4), keepdim=True))


class Conv2Plus1D(nn.Module):
    """Two stacked convs; named ``conv_t`` (applied first) and ``conv_xy`` as in pytorchvideo's stem."""

    def __init__(self, conv_t: nn.Module, conv_xy: nn.Module):
        super().__init__()
        self.conv_t = conv_t
        self.conv_xy = conv_xy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_xy(self.conv_t(x))


class Stem(nn.Module):
    """``(B, 3, T, H, W)`` -> ``(B, width, T, ceil(H/2), ceil(W/2))``: spatial 3x3 stride 2, depthwise
    temporal 5, BN, ReLU."""

    def __init__(self, width: int = STAGE_WIDTHS[0], in_channels: int = 3):
        super().__init__()
        self.conv = Conv2Plus1D(
            nn.Conv3d(in_channels, width, (1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1), bias=False),
            nn.Conv3d(width, width, (5, 1, 1), padding=(2, 0, 0), groups=width, bias=False),
        )
        self.norm = nn.BatchNorm3d(width)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.norm(self.conv(x)))


class Bottleneck(nn.Module):
    """``conv_a`` 1x1x1 -> BN -> ReLU -> depthwise 3x3x3 ``conv_b`` -> BN (-> SE) -> swish -> ``conv_c`` -> BN."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, spatial_stride: int, use_se: bool):
        super().__init__()
        self.conv_a = nn.Conv3d(dim_in, dim_inner, 1, bias=False)
        self.norm_a = nn.BatchNorm3d(dim_inner)
        self.act_a = nn.ReLU()
        self.conv_b = nn.Conv3d(dim_inner, dim_inner, 3, stride=(1, spatial_stride, spatial_stride), padding=1,
                                groups=dim_inner, bias=False)
        se = SqueezeExcitation(dim_inner, round_width(dim_inner, SE_RATIO)) if use_se else nn.Identity()
        self.norm_b = nn.Sequential(nn.BatchNorm3d(dim_inner), se)
        self.act_b = Swish()
        self.conv_c = nn.Conv3d(dim_inner, dim_out, 1, bias=False)
        self.norm_c = nn.BatchNorm3d(dim_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act_a(self.norm_a(self.conv_a(x)))
        x = self.act_b(self.norm_b(self.conv_b(x)))
        return self.norm_c(self.conv_c(x))


class ResBlock(nn.Module):
    """``relu(shortcut(x) + branch2(x))``; the shortcut is a strided 1x1x1 conv (+ BN if the width changes)
    in the first block of a stage, the identity elsewhere."""

    def __init__(self, dim_in: int, dim_inner: int, dim_out: int, spatial_stride: int, use_se: bool):
        super().__init__()
        needs_conv = dim_in != dim_out or spatial_stride > 1
        self.branch1_conv = (nn.Conv3d(dim_in, dim_out, 1, stride=(1, spatial_stride, spatial_stride), bias=False)
                             if needs_conv else None)
        self.branch1_norm = nn.BatchNorm3d(dim_out) if dim_in != dim_out else None
        self.branch2 = Bottleneck(dim_in, dim_inner, dim_out, spatial_stride, use_se)
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x
        if self.branch1_conv is not None:
            shortcut = self.branch1_conv(x)
        if self.branch1_norm is not None:
            shortcut = self.branch1_norm(shortcut)
        return self.act(shortcut + self.branch2(x))


class Stage(nn.Module):
    """``depth`` residual blocks; the first one strides by 2 spatially and changes the width."""

    def __init__(self, depth: int, dim_in: int, dim_out: int):
        super().__init__()
        dim_inner = int(BOTTLENECK_FACTOR * dim_out)
        self.res_blocks = nn.ModuleList(
            ResBlock(dim_in if i == 0 else dim_out, dim_inner, dim_out, 2 if i == 0 else 1, use_se=i % 2 == 0)
            for i in range(depth))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.res_blocks:
            x = block(x)
        return x


# ------------------------------------------------------------------------------------------ checkpointing

def _needs_grad(module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> bool:
    return torch.is_grad_enabled() and (any(p.requires_grad for p in module.parameters())
                                        or any(t.requires_grad for t in inputs))


def _batch_norms(module: nn.Module) -> list[nn.modules.batchnorm._BatchNorm]:
    return [m for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]


@contextlib.contextmanager
def _frozen_running_stats(norms: list[nn.modules.batchnorm._BatchNorm]) -> Iterator[None]:
    """Restore the running statistics (and ``num_batches_tracked``) of ``norms`` on exit.

    The recomputation must run the very same ops as the original forward (checkpointing matches the tensors
    saved by both), so BatchNorm still updates its buffers while recomputing; they are put back afterwards,
    also when the recomputation stops early.
    """
    names = ("running_mean", "running_var", "num_batches_tracked")
    saved = [(m, [getattr(m, n).clone() if getattr(m, n, None) is not None else None for n in names])
             for m in norms if m.training and m.track_running_stats]
    try:
        yield
    finally:
        with torch.no_grad():
            for m, values in saved:
                for name, value in zip(names, values):
                    if value is not None:
                        getattr(m, name).copy_(value)


def checkpoint_module(module: nn.Module, *inputs: torch.Tensor) -> torch.Tensor:
    """``module(*inputs)`` with its activations recomputed in backward instead of stored.

    Non-reentrant ``torch.utils.checkpoint``. The recomputation leaves the BatchNorm running statistics as it
    found them, so a checkpointed training step updates them exactly as a plain one. Falls back to a plain call
    when no gradient is needed (grad disabled, or neither the parameters nor the inputs require grad).
    """
    if not _needs_grad(module, inputs):
        return module(*inputs)
    norms = _batch_norms(module)

    def contexts() -> tuple[contextlib.AbstractContextManager, contextlib.AbstractContextManager]:
        return contextlib.nullcontext(), _frozen_running_stats(norms)

    return checkpoint(module, *inputs, use_reentrant=False, context_fn=contexts)


# ------------------------------------------------------------------------------------------------ model

class X3D(nn.Module):
    """X3D trunk without its classification head (spec §2.2: pytorchvideo ``blocks[0..4]``).

    ``forward(x)`` with ``x`` ``(B, 3, T, H, W)`` float (normalised video) returns the list of the four stage
    outputs ``[res2, res3, res4, res5]`` of shapes ``(B, 24|48|96|192, T, H/4|8|16|32, W/4|8|16|32)``.
    """

    def __init__(self, variant: str = "x3d_s"):
        super().__init__()
        if variant not in X3D_SPECS:
            raise ValueError(f"unknown X3D variant {variant!r}; choose from {', '.join(X3D_SPECS)}")
        self.variant = variant
        self.depths = X3D_SPECS[variant].depths
        stages: list[nn.Module] = [Stem(STAGE_WIDTHS[0])]
        dim_in = STAGE_WIDTHS[0]
        for depth, width in zip(self.depths, STAGE_WIDTHS):
            stages.append(Stage(depth, dim_in, width))
            dim_in = width
        self.blocks = nn.ModuleList(stages)
        self.widths = STAGE_WIDTHS
        self.grad_checkpointing = False
        self.checkpoint_stem = True
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """pytorchvideo's initialisation: Kaiming-normal convs, BN weight 1 (0 for the last BN of a
        residual branch, so every block starts as its shortcut), bias 0."""
        for m in self.modules():
            if isinstance(m, nn.Conv3d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm3d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
        for m in self.modules():
            if isinstance(m, Bottleneck):
                nn.init.zeros_(m.norm_c.weight)

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute every residual block (and the stem) in backward; see :func:`checkpoint_module`."""
        self.grad_checkpointing = bool(enable)

    def residual_blocks(self) -> list[ResBlock]:
        return [block for stage in self.blocks[1:] for block in stage.res_blocks]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        ckpt = self.grad_checkpointing
        stem = self.blocks[0]
        x = checkpoint_module(stem, x) if ckpt and self.checkpoint_stem else stem(x)
        features = []
        for stage in self.blocks[1:]:
            for block in stage.res_blocks:
                x = checkpoint_module(block, x) if ckpt else block(x)
            features.append(x)
        return features


def x3d(variant: str = "x3d_s", weights: str | os.PathLike | None = None) -> X3D:
    """An :class:`X3D` trunk, optionally loaded from a local pytorchvideo checkpoint (``.pyth``)."""
    model = X3D(variant)
    if weights is not None:
        load_pytorchvideo_x3d(model, weights)
    return model


# ------------------------------------------------------------------------------------------- weights

class X3DWeightsError(ValueError):
    """A pytorchvideo checkpoint does not fit; the message names the file and the mismatching keys."""


HEAD_PREFIX = "blocks.5."


def pytorchvideo_state(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """The trunk tensors of a pytorchvideo X3D checkpoint: ``model_state`` (or the dict itself if it is a bare
    state dict) without the head ``blocks.5.*``. Read with ``torch.load(weights_only=True)``."""
    path = os.fspath(path)
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise X3DWeightsError(f"{path}: no such file") from None
    except Exception as err:  # noqa: BLE001 - any unpickling failure is a bad file for the caller
        raise X3DWeightsError(f"{path}: not a readable torch checkpoint ({type(err).__name__}: {err})") from None
    state = obj.get("model_state", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise X3DWeightsError(f"{path}: expected a dict with key 'model_state' mapping names to tensors")
    return {k: v for k, v in state.items() if not k.startswith(HEAD_PREFIX)}


def load_pytorchvideo_x3d(model: X3D, path: str | os.PathLike) -> X3D:
    """Load a pytorchvideo X3D checkpoint (e.g. Kinetics-400 ``X3D_S.pyth``) into ``model``, strictly.

    The head (``blocks.5``) is dropped. On any mismatch an :class:`X3DWeightsError` lists the missing keys,
    the unexpected keys and the keys whose shapes differ (a wrong variant shows as missing/unexpected blocks).
    """
    state = pytorchvideo_state(path)
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    shapes = sorted(f"{k}: file {tuple(state[k].shape)}, model {tuple(own[k].shape)}"
                    for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or unexpected or shapes:
        lines = [f"{os.fspath(path)}: the checkpoint does not fit X3D {model.variant!r}"]
        for title, items in (("missing", missing), ("unexpected", unexpected), ("shape mismatch", shapes)):
            if items:
                lines.append(f"  {title} ({len(items)}): " + ", ".join(items[:20])
                             + (" ..." if len(items) > 20 else ""))
        raise X3DWeightsError("\n".join(lines))
    model.load_state_dict(state, strict=True)
    return model


def num_blocks(variant: str) -> int:
    """Number of residual blocks of a variant (res2..res5)."""
    return sum(X3D_SPECS[variant].depths)


__all__ = ["X3D", "X3DSpec", "X3DWeightsError", "X3D_SPECS", "checkpoint_module", "load_pytorchvideo_x3d",
           "pytorchvideo_state", "round_width", "x3d"]
