"""Top-down FPN neck from X3D res3..res5 to one stride-8 map (spec §2.2).

::

    x = res5 (B, 192, T, H/32, W/32)
    up(x) ++ res4 (B, 192+96, T, H/16, W/16) -> Conv3d 1x3x3 (no bias) -> BN3d -> GELU -> (B, 192, T, H/16, W/16)
    up(.) ++ res3 (B, 192+48, T, H/8,  W/8)  -> Conv3d 1x3x3 (no bias) -> BN3d -> GELU -> (B, 192, T, H/8,  W/8)

``up`` is nearest-neighbour upsampling to the size of the skip input (x2 in H and W, T unchanged; sizes that
were rounded up on the way down are matched exactly).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from fpspot.models.blocks.x3d import checkpoint_module


class FuseConv(nn.Module):
    """``GELU(BN(Conv3d_1x3x3(cat(up(top), skip))))``: ``(B, c_top, T, h, w)``, ``(B, c_skip, T, 2h, 2w)`` ->
    ``(B, out, T, 2h, 2w)``."""

    def __init__(self, top_channels: int, skip_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv3d(top_channels + skip_channels, out_channels, (1, 3, 3), padding=(0, 1, 1), bias=False)
        self.norm = nn.BatchNorm3d(out_channels)
        self.act = nn.GELU()

    def forward(self, top: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        top = F.interpolate(top, size=skip.shape[2:], mode="nearest")
        return self.act(self.norm(self.conv(torch.cat([top, skip], dim=1))))


class FPNNeck(nn.Module):
    """Stride-8 feature map ``(B, out_channels, T, H/8, W/8)`` from the X3D stage outputs ``[res2..res5]``."""

    def __init__(self, in_channels: Sequence[int] = (24, 48, 96, 192), out_channels: int = 192):
        super().__init__()
        _, c3, c4, c5 = in_channels
        self.fuse4 = FuseConv(c5, c4, out_channels)
        self.fuse3 = FuseConv(out_channels, c3, out_channels)
        self.out_channels = out_channels
        self.grad_checkpointing = False

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute each fusion step in backward (see :func:`fpspot.models.blocks.x3d.checkpoint_module`)."""
        self.grad_checkpointing = bool(enable)

    def forward(self, features: Sequence[torch.Tensor]) -> torch.Tensor:
        _, res3, res4, res5 = features
        if self.grad_checkpointing:
            x = checkpoint_module(self.fuse4, res5, res4)
            return checkpoint_module(self.fuse3, x, res3)
        return self.fuse3(self.fuse4(res5, res4), res3)
