"""Blocks: RoIAlign (pure torch vs a direct statement of torchvision's algorithm), track pooling, FPN neck,
temporal heads, player graph and EdgeConv encoder."""

from __future__ import annotations

import math

import pytest
import torch

from fpspot.models.blocks.graph import SpatioTemporalEncoder, frame_graph, knn_edges
from fpspot.models.blocks.neck import FPNNeck
from fpspot.models.blocks.temporal import ConvHead, RecurrentHead
from fpspot.models.blocks.track_pool import TrackPool, roi_align, roi_align_torch
from fpspot.models.blocks.x3d import X3D
from fpspot.schema import MISSING_FILL

# ------------------------------------------------------------------------------------------------ RoIAlign


def roi_align_loops(features, boxes, output_size, spatial_scale, sampling_ratio=-1, aligned=False):
    """torchvision's ``roi_align`` (CPU kernel) stated directly, one sample at a time, in float64."""
    num, channels, height, width = features.shape
    out_h, out_w = output_size
    f = features.double()
    out = torch.zeros(len(boxes), channels, out_h, out_w, dtype=torch.float64)
    for k, (n, x1, y1, x2, y2) in enumerate(boxes.tolist()):
        off = 0.5 if aligned else 0.0
        start_w, start_h = x1 * spatial_scale - off, y1 * spatial_scale - off
        roi_w, roi_h = x2 * spatial_scale - off - start_w, y2 * spatial_scale - off - start_h
        if not aligned:
            roi_w, roi_h = max(roi_w, 1.0), max(roi_h, 1.0)
        bin_h, bin_w = roi_h / out_h, roi_w / out_w
        grid_h = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_h / out_h)
        grid_w = sampling_ratio if sampling_ratio > 0 else math.ceil(roi_w / out_w)
        count = max(grid_h * grid_w, 1)
        for ph in range(out_h):
            for pw in range(out_w):
                total = torch.zeros(channels, dtype=torch.float64)
                for iy in range(grid_h):
                    y = start_h + ph * bin_h + (iy + 0.5) * bin_h / grid_h
                    for ix in range(grid_w):
                        x = start_w + pw * bin_w + (ix + 0.5) * bin_w / grid_w
                        if y < -1.0 or y > height or x < -1.0 or x > width:
                            continue
                        y, x = max(y, 0.0), max(x, 0.0)
                        y_low, x_low = int(y), int(x)
                        if y_low >= height - 1:
                            y_high = y_low = height - 1
                            y = float(y_low)
                        else:
                            y_high = y_low + 1
                        if x_low >= width - 1:
                            x_high = x_low = width - 1
                            x = float(x_low)
                        else:
                            x_high = x_low + 1
                        ly, lx = y - y_low, x - x_low
                        hy, hx = 1 - ly, 1 - lx
                        v = f[int(n)]
                        total += (hy * hx * v[:, y_low, x_low] + hy * lx * v[:, y_low, x_high]
                                  + ly * hx * v[:, y_high, x_low] + ly * lx * v[:, y_high, x_high])
                out[k, :, ph, pw] = total / count
    return out


#: boxes in input pixels for a (7, 11) feature map at stride 8 (56 x 88 pixels)
BOXES = torch.tensor([
    [0, 3.0, 5.0, 40.0, 50.0],      # inside
    [1, 0.0, 0.0, 88.0, 56.0],      # the whole frame: samples reach the last row/column
    [2, -10.0, -6.0, 5.0, 3.0],     # crosses the top-left border (clamped samples)
    [0, 80.0, 50.0, 100.0, 70.0],   # crosses the bottom-right border (samples past H/W give 0)
    [1, 20.3, 17.1, 20.9, 17.5],    # sub-pixel box (size clamped to one feature pixel)
    [2, 60.0, 10.0, 61.0, 12.0],    # narrow box
    [0, 0.0, 0.0, 0.0, 0.0],        # dummy box of a masked frame
    [1, 120.0, 90.0, 130.0, 99.0],  # entirely outside
    [2, 7.9, 15.9, 40.1, 31.9],     # samples near integer positions
    [0, 4.0, 2.0, 70.0, 54.0],      # large box: 3 x 5 samples per bin
])


@pytest.mark.parametrize("sampling_ratio", [-1, 2])
@pytest.mark.parametrize("aligned", [False, True])
def test_roi_align_torch_matches_the_algorithm(sampling_ratio, aligned):
    features = torch.randn(3, 5, 7, 11, generator=torch.Generator().manual_seed(0))
    got = roi_align_torch(features, BOXES, (4, 2), 0.125, sampling_ratio, aligned)
    expected = roi_align_loops(features, BOXES, (4, 2), 0.125, sampling_ratio, aligned)
    assert got.shape == (len(BOXES), 5, 4, 2)
    torch.testing.assert_close(got.double(), expected, rtol=1e-5, atol=1e-6)
    assert got[7].abs().max() == 0  # outside the map
    assert roi_align(features, BOXES, (4, 2), 0.125, sampling_ratio, aligned).shape == got.shape


def test_roi_align_torch_gradient():
    features = torch.randn(2, 3, 5, 6, dtype=torch.float64, requires_grad=True)
    boxes = torch.tensor([[0, 1.0, 2.0, 30.0, 20.0], [1, -4.0, 8.0, 50.0, 44.0], [1, 10.2, 10.2, 10.5, 10.9]],
                         dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda f: roi_align_torch(f, boxes, (4, 2), 0.125), (features,))


def test_track_pool_reads_frame_b_t_and_masks():
    batch, channels, frames, tracks = 2, 4, 3, 5
    # every frame (b, t) holds a constant value 10 * b + t, plus a spatial ramp on channel 1
    value = (10 * torch.arange(batch)[:, None] + torch.arange(frames)[None, :]).float()
    features = value[:, None, :, None, None].expand(batch, channels, frames, 7, 11).clone()
    features[:, 1] += torch.arange(11).float()
    gen = torch.Generator().manual_seed(0)
    x1 = torch.randint(0, 50, (batch, tracks, frames), generator=gen).float()
    y1 = torch.randint(0, 30, (batch, tracks, frames), generator=gen).float()
    rois = torch.stack([x1, y1, x1 + 20, y1 + 16], dim=-1)
    masks = (torch.rand(batch, tracks, frames, generator=gen) > 0.3).float()
    pooled = TrackPool(backend="torch")(features, rois, masks)
    assert pooled.shape == (batch, tracks, frames, channels)
    expected = value[:, None, :].expand(batch, tracks, frames) * masks
    torch.testing.assert_close(pooled[..., 0], expected)
    # channel 1: the mean over the RoIAlign bins, checked against the loop statement
    boxes = torch.cat([(torch.arange(batch)[:, None, None] * frames + torch.arange(frames))
                       .expand(batch, tracks, frames).unsqueeze(-1).float(), rois], dim=-1).reshape(-1, 5)
    frames_first = features.permute(0, 2, 1, 3, 4).reshape(batch * frames, channels, 7, 11)
    reference = roi_align_loops(frames_first, boxes, (4, 2), 0.125).mean(dim=(2, 3)).reshape(batch, tracks, frames,
                                                                                             channels)
    torch.testing.assert_close(pooled.double(), reference * masks[..., None].double(), rtol=1e-5, atol=1e-5)


def test_track_pool_rejects_bad_shapes():
    with pytest.raises(ValueError, match="rois must be"):
        TrackPool()(torch.zeros(1, 4, 3, 7, 11), torch.zeros(1, 2, 4, 4), torch.ones(1, 2, 4))
    with pytest.raises(ValueError, match="backend"):
        TrackPool(backend="cuda")


# ------------------------------------------------------------------------------------------------ neck, heads


@pytest.mark.parametrize("hw", [(64, 96), (70, 100)])
def test_fpn_neck_is_stride_8(hw):
    backbone, neck = X3D("x3d_tiny").eval(), FPNNeck().eval()
    with torch.no_grad():
        features = backbone(torch.randn(1, 3, 4, *hw))
        out = neck(features)
    assert out.shape == (1, 192, 4, math.ceil(hw[0] / 8), math.ceil(hw[1] / 8))
    assert out.shape[2:] == features[1].shape[2:]


def test_temporal_heads_shapes_and_locality():
    x = torch.randn(6, 192, 10)
    conv = ConvHead().eval()
    assert conv(x).shape == (6, 9, 10)
    # kernel 3: changing frame 0 changes logits of frames 0 and 1 only
    y = x.clone()
    y[:, :, 0] += 1
    changed = (conv(y) - conv(x)).abs().amax(dim=(0, 1)) > 0
    assert changed.tolist() == [True, True] + [False] * 8
    recurrent = RecurrentHead().eval()
    assert recurrent(x).shape == (6, 9, 10)
    # the BiGRU sees the whole sequence: a change at frame 0 reaches the last frame
    assert (recurrent(y) - recurrent(x))[:, :, -1].abs().max() > 0


# ------------------------------------------------------------------------------------------------ graph


def test_knn_edges_reverse_direction_and_distance_cut():
    # 8 players on a line at x = 0, 0.1, ..., 0.7 and one node 3 units away
    positions = torch.zeros(1, 9, 2)
    positions[0, :8, 0] = torch.arange(8) * 0.1
    positions[0, 8] = torch.tensor([3.0, 0.0])
    edges = knn_edges(positions, k=6, max_distance=2.0)
    pairs = set(map(tuple, edges.t().tolist()))
    # node 0's 6 nearest are 1..6: edges 0 -> j (edge_index[0] is the node that chose)
    assert {(0, j) for j in range(1, 7)} <= pairs
    assert (0, 7) not in pairs
    # node 8 is more than 2 away from everybody: no edge in either direction
    assert not any(8 in pair for pair in pairs)
    assert len(edges[0][edges[0] == 3]) == 6
    # source ascending, neighbours nearest first
    assert edges[1][edges[0] == 3].tolist()[:2] in ([2, 4], [4, 2])


def test_missing_slots_form_their_own_cluster_and_graph_is_static_per_clip():
    batch, tracks, frames = 2, 26, 4
    gen = torch.Generator().manual_seed(0)
    nodes = torch.rand(batch, tracks, frames, 6, generator=gen)
    missing = [5, 12, 20]
    nodes[0, missing] = MISSING_FILL
    edges = frame_graph(nodes, k=6, max_distance=2.0)
    # nodes are numbered (b, t, m): recover (b, t, m) of both ends
    b, rest = edges // (frames * tracks), edges % (frames * tracks)
    t, m = rest // tracks, rest % tracks
    assert torch.equal(b[0], b[1]) and torch.equal(t[0], t[1])  # no edge across clips or frames
    for clip in range(batch):
        per_frame = [sorted(zip(m[0][(b[0] == clip) & (t[0] == f)].tolist(),
                                m[1][(b[0] == clip) & (t[0] == f)].tolist()))
                     for f in range(frames)]
        assert all(p == per_frame[0] for p in per_frame)  # static per clip
    clip0 = (b[0] == 0) & (t[0] == 0)
    src, dst = m[0][clip0], m[1][clip0]
    for s, d in zip(src.tolist(), dst.tolist()):
        assert (s in missing) == (d in missing)  # the -15 slots link only to each other
    assert all((src == s).sum() == 2 for s in missing)  # a missing slot links to the 2 other missing ones
    assert all((src == s).sum() == 6 for s in range(tracks) if s not in missing)


def _player_clips(batch: int, frames: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Node features ``(B, 26, T, 6)`` ``[team, shirt, x, y, vx, vy]`` of players moving slowly on a [0, 1] pitch
    (three slots of clip 0 missing: -15) and the TAAD+GNN encoder input ``(B, 26, T, 69)``: the five tactical
    columns and 64 non-negative visual features."""
    gen = torch.Generator().manual_seed(seed)
    start = torch.rand(batch, 26, 1, 2, generator=gen)
    velocity = (torch.rand(batch, 26, 1, 2, generator=gen) - 0.5) * 0.01
    position = start + velocity * torch.arange(frames)[None, None, :, None]
    team = (torch.arange(26) >= 13).float()[None, :, None, None].expand(batch, 26, frames, 1)
    shirt = (torch.arange(26) % 13 + 1).float()[None, :, None, None].expand(batch, 26, frames, 1)
    nodes = torch.cat([team, shirt, position, velocity.expand(batch, 26, frames, 2)], dim=-1)
    nodes[0, [5, 12, 20]] = MISSING_FILL
    visual = torch.rand(batch, 26, frames, 64, generator=gen)
    return nodes, torch.cat([nodes[..., [0, 2, 3, 4, 5]], visual], dim=-1)


def _chosen(nodes: torch.Tensor, k: int = 6, max_distance: float = 2.0) -> list[list[set[int]]]:
    """``chosen[b][i]``: the players player ``i`` of clip ``b`` picks as neighbours, found by sorting the other
    players by the distance between clip-mean positions: the ``k`` nearest within ``max_distance``."""
    mean = nodes[..., 2:4].double().mean(dim=2)
    chosen = []
    for clip in mean:
        chosen.append([])
        for i in range(len(clip)):
            others = sorted((float((clip[i] - clip[j]).norm()), j) for j in range(len(clip)) if j != i)
            chosen[-1].append({j for d, j in others[:k] if d <= max_distance})
    return chosen


def encoder_loops(encoder: SpatioTemporalEncoder, x: torch.Tensor, chosen: list[list[set[int]]]) -> torch.Tensor:
    """:class:`SpatioTemporalEncoder` stated directly from its own weights, one clip, frame and player at a time:
    player ``j`` at frame ``t`` takes the channel-wise max over the players ``i`` that chose ``j``, in the same
    clip and frame, of ``Linear([h_j, h_i - h_j])`` (0 when nobody chose ``j``), then ReLU; before every graph
    layer but the first, each player's track ``(D, T)`` goes through the temporal block on its own."""
    batch, players, frames, _ = x.shape
    h = x
    for layer, graph_conv in enumerate(encoder.graph_convs):
        if layer > 0:
            h = torch.stack([torch.stack([encoder.temporal[layer - 1](h[b, m].t()[None])[0].t()
                                          for m in range(players)]) for b in range(batch)])
        out = torch.zeros(batch, players, frames, graph_conv.nn.out_features)
        for b in range(batch):
            for j in range(players):
                sources = [i for i in range(players) if j in chosen[b][i]]
                for t in range(frames):
                    if sources:
                        target = h[b, j, t].expand(len(sources), -1)
                        messages = graph_conv.nn(torch.cat([target, h[b, sources, t] - target], dim=-1))
                        out[b, j, t] = messages.max(dim=0).values
        h = out.relu()
    return h


@pytest.mark.usefixtures("one_thread")  # tiny tensors in Python loops
def test_edgeconv_encoder_messages_flow_from_chooser_to_chosen():
    """torch-geometric's EdgeConv sends messages along ``edge_index[0] -> edge_index[1]``; in fpspot's encoder,
    changing one player at one frame changes, after one graph layer, exactly that player and the players it
    chose, at that frame only (node order ``(b, t, m)`` of :func:`frame_graph` matches the encoder's)."""
    pytest.importorskip("torch_geometric")
    from torch_geometric.nn import EdgeConv

    x = torch.randn(4, 3)
    edge_index = torch.tensor([[0, 1], [2, 2]])  # nodes 0 and 1 chose node 2
    conv = EdgeConv(torch.nn.Linear(6, 5), aggr="max")
    out = conv(x, edge_index)
    assert torch.equal(out[0], torch.zeros(5)) and torch.equal(out[3], torch.zeros(5))  # nobody chose 0 or 3
    assert out[2].abs().sum() > 0
    torch.manual_seed(0)
    encoder = SpatioTemporalEncoder(in_dim=69, num_graph_layers=1).eval()
    nodes, x = _player_clips(batch=2, frames=5, seed=1)
    edges = frame_graph(nodes)
    chosen = _chosen(nodes)
    player, frame = 7, 2
    assert len(chosen[1][player]) == 6  # it chose 6 players
    assert any(player in c for c in chosen[1])  # somebody chose the player: its own output depends on it
    moved = x.clone()
    moved[1, player, frame] += torch.randn(69, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        changed = (encoder(moved, edges) - encoder(x, edges)).abs().amax(dim=-1) > 1e-6  # (B, M, T)
    expected = torch.zeros_like(changed)
    expected[1, sorted(chosen[1][player] | {player}), frame] = True
    assert torch.equal(changed, expected), \
        f"changed (b, m, t) {changed.nonzero().tolist()}, expected {expected.nonzero().tolist()}"


@pytest.mark.usefixtures("one_thread")  # tiny tensors in Python loops
def test_spatio_temporal_encoder_equals_a_loop_over_players_and_frames():
    """The 3-layer encoder on the graph of :func:`frame_graph` equals :func:`encoder_loops` built from the same
    weights (the graph found by sorting distances), on two clips of 26 players over 5 frames."""
    pytest.importorskip("torch_geometric")
    torch.manual_seed(0)
    encoder = SpatioTemporalEncoder(in_dim=69).eval()
    nodes, x = _player_clips(batch=2, frames=5, seed=3)
    with torch.no_grad():
        h = encoder(x, frame_graph(nodes))
        reference = encoder_loops(encoder, x, _chosen(nodes))
    assert h.shape == (2, 26, 5, 128) and (h >= 0).all()  # ReLU after the last EdgeConv
    assert (h[0, [5, 12, 20]] > 0).any() and (h > 0).float().mean() > 0.2  # not a trivial all-zero output
    torch.testing.assert_close(h, reference, rtol=1e-5, atol=1e-5)


def test_track_pool_torchvision_branch_lays_out_frames_the_same_way(monkeypatch):
    """The torchvision branch (frames-first ``(B*T, C, h, w)`` + 5-column boxes) gives what the pure-torch branch
    gives; torchvision is replaced by the pure-torch kernel here (it is not importable beside this torch)."""
    from fpspot.models.blocks import track_pool

    monkeypatch.setattr(track_pool, "_torchvision_roi_align", lambda: roi_align_torch)
    gen = torch.Generator().manual_seed(3)
    features = torch.randn(2, 6, 3, 7, 11, generator=gen)
    x1 = torch.randint(0, 60, (2, 4, 3), generator=gen).float()
    y1 = torch.randint(0, 40, (2, 4, 3), generator=gen).float()
    rois = torch.stack([x1, y1, x1 + 25, y1 + 14], dim=-1)
    masks = torch.ones(2, 4, 3)
    torch.testing.assert_close(TrackPool(backend="torchvision")(features, rois, masks),
                               TrackPool(backend="torch")(features, rois, masks))
    torch.testing.assert_close(TrackPool(backend="torchvision")(features.half(), rois, masks),
                               TrackPool(backend="torch")(features, rois, masks), atol=2e-3, rtol=2e-3)
