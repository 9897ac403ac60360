"""Player graph and the EdgeConv spatio-temporal encoder of TAAD+GNN (spec §3.2, §3.3).

Graph (:func:`knn_edges`, :func:`frame_graph`), built in torch (``cdist`` + ``topk``; torch-geometric's
``knn_graph`` would need pyg-lib):

* per clip, the mean position of every node over the T frames (the -15 fills of missing frames included, so
  missing slots sit near (-15, -15) and link only to each other);
* node ``i`` gets edges ``i -> j`` (``edge_index[0] = i``) to its ``k = 6`` nearest other nodes ``j`` within
  distance 2. PyG passes messages source -> target, so node ``j`` aggregates from the nodes that have ``j`` among
  their k nearest ("reverse kNN", as the baseline); a node nobody chose receives nothing (max aggregation 0);
* the graph is static per clip: the same edges in each of the T frames, no edges across time. Nodes are
  numbered in ``(b, t, m)`` order: node ``(b * T + t) * M + m``.

Encoder (:class:`SpatioTemporalEncoder`): ``EdgeConv(Linear(2 d -> 128), max) -> ReLU`` and, twice,
``temporal block -> EdgeConv(Linear(256 -> 128), max) -> ReLU``; the temporal block runs per node track over
time (Conv1d k5 -> LayerNorm -> GELU -> Dropout). torch-geometric is imported when an encoder is built.
"""

from __future__ import annotations

import torch
from einops import rearrange
from torch import nn

from fpspot.models.blocks.temporal import TemporalConvBlock


def knn_edges(positions: torch.Tensor, k: int = 6, max_distance: float = 2.0) -> torch.Tensor:
    """Reverse-kNN edges of B independent graphs of M nodes.

    positions: ``(B, M, D)``. Returns ``edge_index`` ``(2, E)`` int64 over ``B * M`` nodes (node ``b * M + m``),
    ``edge_index[0] = i``, ``edge_index[1] = j`` for every ``j`` among the ``min(k, M - 1)`` nearest other nodes of
    ``i`` with ``|p_i - p_j| <= max_distance``; sources in increasing order, neighbours nearest first.
    """
    batch, num_nodes, _ = positions.shape
    k = min(k, num_nodes - 1)
    if k <= 0:
        return torch.zeros(2, 0, dtype=torch.long, device=positions.device)
    distance = torch.cdist(positions.double(), positions.double())
    distance.diagonal(dim1=1, dim2=2).fill_(float("inf"))
    nearest_distance, nearest = distance.topk(k, dim=2, largest=False, sorted=True)  # (B, M, k)
    keep = nearest_distance <= max_distance
    offset = (torch.arange(batch, device=positions.device) * num_nodes)[:, None, None]
    source = (torch.arange(num_nodes, device=positions.device)[None, :, None] + offset).expand(batch, num_nodes, k)
    target = nearest + offset
    return torch.stack([source[keep], target[keep]])


def frame_graph(nodes: torch.Tensor, k: int = 6, max_distance: float = 2.0, position_dims: tuple[int, int] = (2, 3)
                ) -> torch.Tensor:
    """Static per-clip graph repeated over frames.

    nodes: ``(B, M, T, F)`` node features (``[team, shirt, x, y, vx, vy]``; -15 where missing). The positions
    ``nodes[..., position_dims]`` are averaged over T (fills included) and linked by :func:`knn_edges`.
    Returns ``edge_index`` ``(2, E * T)`` over the ``B * T * M`` nodes in ``(b, t, m)`` order.
    """
    batch, num_nodes, frames, _ = nodes.shape
    mean_position = nodes[..., list(position_dims)].mean(dim=2)  # (B, M, 2)
    edges = knn_edges(mean_position, k, max_distance)  # over b * M + m
    clip, node = edges // num_nodes, edges % num_nodes  # (2, E) each
    frame_offset = torch.arange(frames, device=nodes.device)  # (T,)
    # node (b, t, m) -> (b * T + t) * M + m
    index = (clip[:, :, None] * frames + frame_offset[None, None, :]) * num_nodes + node[:, :, None]
    return rearrange(index, "two e t -> two (t e)")


class SpatioTemporalEncoder(nn.Module):
    """EdgeConv + temporal convolution encoder over player graphs.

    forward(x ``(B, M, T, in_dim)``, edge_index ``(2, E)`` over nodes in ``(b, t, m)`` order) -> ``(B, M, T, hidden)``.
    """

    def __init__(self, in_dim: int = 69, hidden: int = 128, num_graph_layers: int = 3, kernel_size: int = 5,
                 dropout: float = 0.1):
        super().__init__()
        from torch_geometric.nn import EdgeConv  # lazy: torch-geometric is heavy to import

        dims = [in_dim] + [hidden] * num_graph_layers
        self.graph_convs = nn.ModuleList(EdgeConv(nn.Linear(2 * d, hidden), aggr="max") for d in dims[:-1])
        self.temporal = nn.ModuleList(TemporalConvBlock(hidden, hidden, kernel_size, dropout)
                                      for _ in range(num_graph_layers - 1))
        self.act = nn.ReLU()

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
        batch, num_nodes, frames, _ = x.shape
        h = rearrange(x, "b m t d -> (b t m) d")
        for layer, graph_conv in enumerate(self.graph_convs):
            if layer > 0:
                tracks = rearrange(h, "(b t m) d -> (b m) d t", b=batch, t=frames, m=num_nodes)
                h = rearrange(self.temporal[layer - 1](tracks), "(b m) d t -> (b t m) d", b=batch, m=num_nodes)
            h = self.act(graph_conv(h, edge_index))
        return rearrange(h, "(b t m) d -> b m t d", b=batch, t=frames, m=num_nodes)
