"""Per-track temporal heads over ``(N, C, T)`` sequences (N = clips x tracks).

* :class:`ConvHead` (TAAD, spec §2.2): Conv1d k3 (no bias) -> BN1d -> GELU -> Linear per frame;
* :class:`TemporalConvBlock` (TAAD+GNN, spec §3.3): Conv1d (no bias, "same") -> LayerNorm over channels ->
  GELU -> Dropout;
* :class:`RecurrentHead` (TAAD+GNN head, spec §3.3): TemporalConvBlock -> BiGRU -> Dropout -> residual add ->
  Linear per frame.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn


class ConvHead(nn.Module):
    """``(N, in_channels, T)`` -> ``(N, num_classes, T)``: Conv1d(k) -> BN1d -> GELU -> Linear on each frame."""

    def __init__(self, in_channels: int = 192, hidden: int = 512, num_classes: int = 9, kernel_size: int = 3):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, hidden, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.BatchNorm1d(hidden)
        self.act = nn.GELU()
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self.norm(self.conv(x)))
        return rearrange(self.classifier(rearrange(x, "n c t -> n t c")), "n t k -> n k t")


class TemporalConvBlock(nn.Module):
    """``(N, in_channels, T)`` -> ``(N, out_channels, T)``: Conv1d(k, same, no bias) -> LayerNorm(channels) ->
    GELU -> Dropout."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 5, dropout: float = 0.1):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False)
        self.norm = nn.LayerNorm(out_channels)
        self.act = nn.GELU()
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.norm(rearrange(self.conv(x), "n c t -> n t c"))
        return rearrange(self.dropout(self.act(x)), "n t c -> n c t")


class RecurrentHead(nn.Module):
    """``(N, in_channels, T)`` -> ``(N, num_classes, T)``.

    ``h = Dropout(GELU(LN(Conv1d_k5(x))))`` ``(N, T, hidden)``; ``y = h + Dropout(BiGRU(h))`` (the GRU has
    ``hidden / 2`` units per direction); logits = ``Linear(y)``.
    """

    def __init__(self, in_channels: int = 192, hidden: int = 256, num_classes: int = 9, kernel_size: int = 5,
                 dropout: float = 0.2):
        super().__init__()
        if hidden % 2:
            raise ValueError(f"hidden must be even (two GRU directions of hidden/2), got {hidden}")
        self.conv = TemporalConvBlock(in_channels, hidden, kernel_size, dropout)
        self.gru = nn.GRU(hidden, hidden // 2, num_layers=1, batch_first=True, bidirectional=True)
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = rearrange(self.conv(x), "n c t -> n t c")
        recurrent, _ = self.gru(h)
        y = h + self.dropout(recurrent)
        return rearrange(self.classifier(y), "n t k -> n k t")
