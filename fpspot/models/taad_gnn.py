"""TAAD+GNN (spec §3.3-§3.4): the TAAD video trunk, an EdgeConv spatio-temporal player graph and a BiGRU head.

::

    tracks (B, M, T, 192)  [TAAD trunk: X3D -> FPN -> RoIAlign -> mean -> x mask]
    v  = ReLU(Linear(192->64)(ReLU(Linear(192->192)(tracks))))                 (B, M, T, 64)
    h0 = nodes[..., [team, x, y, vx, vy]] ++ v                                  (B, M, T, 69)
    h  = SpatioTemporalEncoder(h0, reverse-kNN graph of clip-mean positions)    (B, M, T, 128)
    logits = RecurrentHead(v ++ h)  [Conv1d k5 -> LN -> GELU -> BiGRU + residual -> Linear]  (B, 9, M, T)

Batch: the TAAD batch plus ``nodes`` ``(B, M, T, 6)`` ``[team, shirt, x, y, vx, vy]`` (-15 where missing);
M = 26 role slots. Loss (with ``labels``): the focal loss of spec §3.4, ``100 * mean(alpha[y] (1 - p_y)^gamma
(-log p_y))`` over all B*M*T elements, **unmasked as in the baseline** (slots and frames without a box count,
with label 0); alpha = the class weights (default ``[1/161, 20/161 x 8]``); gamma = ``focal_gammas[0]`` (1.0)
before epoch ``focal_switch_epoch`` (2, 0-based: the baseline's epochs 1-2) and ``focal_gammas[1]`` (1.25) from
it on, following :meth:`set_epoch`. ``masked_loss=True`` multiplies the loss by ``masks`` instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from einops import rearrange
from torch import nn

from fpspot.models.blocks.graph import SpatioTemporalEncoder, frame_graph
from fpspot.models.blocks.temporal import RecurrentHead
from fpspot.models.taad import ClipSpotter
from fpspot.models.zoo import register_model
from fpspot.schema import NUM_CLASSES, NUM_SLOTS
from fpspot.train.losses import GNN_FOCAL_ALPHA, focal_loss

#: node feature columns fed to the graph: team, x, y, vx, vy (shirt is not a feature; spec §3.2)
TACTICAL_COLUMNS = (0, 2, 3, 4, 5)


@register_model("taad_gnn")
class TAADGNN(ClipSpotter):
    """TAAD+GNN baseline. forward(batch) -> ``{"logits": (B, 9, M, T)}`` (+ ``"loss"``, ``"focal"``).

    Extra config: ``k_neighbors`` (6), ``max_distance`` (2.0), ``focal_gammas`` ([1.0, 1.25]),
    ``focal_switch_epoch`` (2), ``masked_loss`` (False).
    """

    example_shape = (NUM_SLOTS, 8)
    default_class_weights = GNN_FOCAL_ALPHA

    def __init__(self, k_neighbors: int = 6, max_distance: float = 2.0, focal_gammas: Sequence[float] = (1.0, 1.25),
                 focal_switch_epoch: int = 2, masked_loss: bool = False, **config: Any):
        own = {"k_neighbors": int(k_neighbors), "max_distance": float(max_distance),
               "focal_gammas": [float(g) for g in focal_gammas], "focal_switch_epoch": int(focal_switch_epoch),
               "masked_loss": bool(masked_loss)}
        super().__init__(**config)  # the video trunk's settings (ClipSpotter takes no other key)
        self.config.update(own)
        self.visual = nn.Sequential(nn.Linear(192, 192), nn.ReLU(), nn.Linear(192, 64), nn.ReLU())
        self.encoder = SpatioTemporalEncoder(in_dim=len(TACTICAL_COLUMNS) + 64, hidden=128, num_graph_layers=3,
                                             kernel_size=5, dropout=0.1)
        self.head = RecurrentHead(64 + 128, hidden=256, num_classes=NUM_CLASSES, kernel_size=5, dropout=0.2)
        self.focal_gamma = self.config["focal_gammas"][0]

    def set_epoch(self, epoch: int) -> None:
        """Focal gamma of the epoch (0-based): ``focal_gammas[0]`` before ``focal_switch_epoch``, then ``[1]``."""
        low, high = self.config["focal_gammas"]
        self.focal_gamma = low if epoch < self.config["focal_switch_epoch"] else high

    def classify(self, tracks: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        nodes = batch["nodes"].to(tracks.dtype)
        visual = self.visual(tracks)  # (B, M, T, 64)
        with torch.no_grad():
            edge_index = frame_graph(nodes, self.config["k_neighbors"], self.config["max_distance"])
        h = self.encoder(torch.cat([nodes[..., list(TACTICAL_COLUMNS)], visual], dim=-1), edge_index)
        logits = self.head(rearrange(torch.cat([visual, h], dim=-1), "b m t c -> (b m) c t"))
        return rearrange(logits, "(b m) k t -> b k m t", b=tracks.shape[0])

    def compute_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Focal loss x100 over all elements (spec §3.4); unmasked unless ``masked_loss``."""
        mask = batch["masks"] if self.config["masked_loss"] else None
        loss = focal_loss(outputs["logits"], batch["labels"], self.class_weights, self.focal_gamma, mask=mask)
        return {"loss": loss, "focal": loss.detach()}


__all__ = ["TAADGNN"]
