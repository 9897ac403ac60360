"""RoIAlign over tracklets: one feature vector per (clip, track, frame) from a stride-8 video feature map.

* :func:`roi_align`: ``torchvision.ops.roi_align`` when torchvision is importable, else :func:`roi_align_torch`,
  a pure-torch implementation of the same semantics (``aligned=False`` by default, adaptive sampling grid);
* :class:`TrackPool`: ``(B, C, T, h, w)`` features and ``(B, M, T, 4)`` pixel boxes -> RoIAlign ``(4, 2)`` ->
  average over the bins (``AdaptiveAvgPool2d(1)``) -> ``(B, M, T, C)``, times the ``(B, M, T)`` mask (spec §2.2).

Semantics of RoIAlign (torchvision, ``aligned=False``): a box ``[k, x1, y1, x2, y2]`` is scaled by
``spatial_scale`` and its size clamped to at least 1 feature pixel; bin ``(ph, pw)`` of an ``oh x ow`` output
averages ``gh x gw`` bilinear samples at ``y = y1 + ph * bh + (iy + 0.5) * bh / gh`` (likewise x), with
``bh = h / oh`` and ``gh = ceil(h / oh)`` when ``sampling_ratio <= 0``. A sample with ``y < -1``, ``y > H``,
``x < -1`` or ``x > W`` contributes 0; otherwise negative coordinates are clamped to 0 and coordinates at or
past the last row/column read that row/column.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@functools.cache
def _torchvision_roi_align():
    """``torchvision.ops.roi_align`` or ``None`` when torchvision cannot be imported."""
    try:
        from torchvision.ops import roi_align as tv_roi_align
    except Exception:  # noqa: BLE001 - a broken torchvision install (e.g. built for another torch) counts as absent
        return None
    return tv_roi_align


def _bilinear_corners(y: torch.Tensor, x: torch.Tensor, height: int, width: int
                      ) -> tuple[torch.Tensor, torch.Tensor]:
    """Flat pixel indices ``(..., 4)`` and weights ``(..., 4)`` of the bilinear samples at ``(y, x)`` with
    torchvision's boundary rules (corners: low-low, low-high, high-low, high-high in (y, x))."""
    outside = (y < -1.0) | (y > height) | (x < -1.0) | (x > width)
    y = y.clamp(min=0)
    x = x.clamp(min=0)
    y_low = y.floor().long()
    x_low = x.floor().long()
    y_edge = y_low >= height - 1
    x_edge = x_low >= width - 1
    y_low = torch.where(y_edge, height - 1, y_low)
    x_low = torch.where(x_edge, width - 1, x_low)
    y = torch.where(y_edge, y_low.to(y.dtype), y)
    x = torch.where(x_edge, x_low.to(x.dtype), x)
    y_high = torch.where(y_edge, y_low, y_low + 1)
    x_high = torch.where(x_edge, x_low, x_low + 1)
    ly, lx = y - y_low, x - x_low
    hy, hx = 1 - ly, 1 - lx
    index = torch.stack([y_low * width + x_low, y_low * width + x_high,
                         y_high * width + x_low, y_high * width + x_high], dim=-1)
    weight = torch.stack([hy * hx, hy * lx, ly * hx, ly * lx], dim=-1)
    weight = weight.masked_fill(outside.unsqueeze(-1), 0.0)
    index = index.masked_fill(outside.unsqueeze(-1), 0)
    return index, weight


def _sample_plan(boxes: torch.Tensor, output_size: tuple[int, int], spatial_scale: float, sampling_ratio: int,
                 aligned: bool, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Sampling of every output bin as a bag of (pixel, weight) pairs.

    boxes: ``(K, 5)`` ``[k, x1, y1, x2, y2]``. Returns ``index`` ``(S,)`` int64 flat indices into the
    ``(N * H * W)`` pixels, ``weight`` ``(S,)`` (bilinear weight / samples per bin) and ``offsets`` ``(K*oh*ow,)``
    start of each bin's bag (bins in ``(k, ph, pw)`` order).
    """
    out_h, out_w = output_size
    dtype = boxes.dtype if boxes.dtype.is_floating_point else torch.float32
    boxes = boxes.to(dtype)
    offset = 0.5 if aligned else 0.0
    image = boxes[:, 0].long()
    x1, y1 = boxes[:, 1] * spatial_scale - offset, boxes[:, 2] * spatial_scale - offset
    x2, y2 = boxes[:, 3] * spatial_scale - offset, boxes[:, 4] * spatial_scale - offset
    roi_w, roi_h = x2 - x1, y2 - y1
    if not aligned:
        roi_w, roi_h = roi_w.clamp(min=1.0), roi_h.clamp(min=1.0)
    bin_h, bin_w = roi_h / out_h, roi_w / out_w
    if sampling_ratio > 0:
        grid_h = torch.full_like(image, sampling_ratio)
        grid_w = torch.full_like(image, sampling_ratio)
    else:
        grid_h = torch.ceil(roi_h / out_h).long()
        grid_w = torch.ceil(roi_w / out_w).long()
    count = (grid_h * grid_w).clamp(min=1).to(dtype)

    bag_index, bag_weight, bag_rows, bag_sizes = [], [], [], []
    pairs = torch.stack([grid_h, grid_w], dim=1)
    for gh, gw in torch.unique(pairs, dim=0).tolist():
        rows = torch.nonzero((grid_h == gh) & (grid_w == gw)).squeeze(1)
        n = rows.numel()
        ph = torch.arange(out_h, device=boxes.device, dtype=dtype)
        pw = torch.arange(out_w, device=boxes.device, dtype=dtype)
        iy = (torch.arange(gh, device=boxes.device, dtype=dtype) + 0.5) / max(gh, 1)
        ix = (torch.arange(gw, device=boxes.device, dtype=dtype) + 0.5) / max(gw, 1)
        # (n, oh, ow, gh, gw)
        y = (y1[rows, None, None, None, None] + bin_h[rows, None, None, None, None]
             * (ph[None, :, None, None, None] + iy[None, None, None, :, None]))
        x = (x1[rows, None, None, None, None] + bin_w[rows, None, None, None, None]
             * (pw[None, None, :, None, None] + ix[None, None, None, None, :]))
        y, x = torch.broadcast_tensors(y, x)
        index, weight = _bilinear_corners(y, x, height, width)  # (n, oh, ow, gh, gw, 4)
        index = index + (image[rows] * (height * width))[:, None, None, None, None, None]
        weight = weight / count[rows, None, None, None, None, None]
        per_bin = gh * gw * 4
        bag_index.append(index.reshape(n * out_h * out_w, per_bin))
        bag_weight.append(weight.reshape(n * out_h * out_w, per_bin))
        bag_rows.append(rows)
        bag_sizes.append(per_bin)

    # bins of every group in (k, ph, pw) order, then put the groups back in box order
    bins = out_h * out_w
    num_boxes = boxes.shape[0]
    sizes = torch.empty(num_boxes, dtype=torch.long, device=boxes.device)
    for rows, per_bin in zip(bag_rows, bag_sizes):
        sizes[rows] = per_bin
    bin_sizes = sizes.repeat_interleave(bins)
    offsets = torch.zeros(num_boxes * bins, dtype=torch.long, device=boxes.device)
    if num_boxes:
        offsets[1:] = torch.cumsum(bin_sizes, 0)[:-1]
    total = int(bin_sizes.sum())
    index = torch.zeros(total, dtype=torch.long, device=boxes.device)
    weight = torch.zeros(total, dtype=dtype, device=boxes.device)
    for rows, idx, wgt, per_bin in zip(bag_rows, bag_index, bag_weight, bag_sizes):
        if per_bin == 0:
            continue
        bin_rows = (rows[:, None] * bins + torch.arange(bins, device=boxes.device)).reshape(-1)
        starts = offsets[bin_rows]
        positions = starts[:, None] + torch.arange(per_bin, device=boxes.device)
        index[positions.reshape(-1)] = idx.reshape(-1)
        weight[positions.reshape(-1)] = wgt.reshape(-1)
    return index, weight, offsets


def _roi_align_table(table: torch.Tensor, boxes: torch.Tensor, output_size: tuple[int, int], spatial_scale: float,
                     sampling_ratio: int, aligned: bool, height: int, width: int) -> torch.Tensor:
    """RoIAlign from a channel-last pixel table ``(N*H*W, C)``: ``(K, oh*ow, C)``."""
    index, weight, offsets = _sample_plan(boxes, output_size, spatial_scale, sampling_ratio, aligned, height, width)
    pooled = F.embedding_bag(index, table, offsets, mode="sum", per_sample_weights=weight.to(table.dtype))
    return rearrange(pooled, "(k bins) c -> k bins c", bins=output_size[0] * output_size[1])


def roi_align_torch(features: torch.Tensor, boxes: torch.Tensor, output_size: int | Sequence[int],
                    spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """Pure-torch ``torchvision.ops.roi_align``: ``(N, C, H, W)``, boxes ``(K, 5)`` -> ``(K, C, oh, ow)``.

    Every output bin is a weighted bag of feature pixels summed by one ``F.embedding_bag`` (forward and
    backward are single kernels; the sampling plan is built without a Python loop over boxes).
    """
    out_h, out_w = (output_size, output_size) if isinstance(output_size, int) else tuple(output_size)
    _, _, height, width = features.shape
    table = rearrange(features, "n c h w -> (n h w) c")
    pooled = _roi_align_table(table, boxes, (out_h, out_w), spatial_scale, sampling_ratio, aligned, height, width)
    return rearrange(pooled, "k (oh ow) c -> k c oh ow", oh=out_h, ow=out_w)


def roi_align(features: torch.Tensor, boxes: torch.Tensor, output_size: int | Sequence[int],
              spatial_scale: float = 1.0, sampling_ratio: int = -1, aligned: bool = False) -> torch.Tensor:
    """``torchvision.ops.roi_align`` if importable, else :func:`roi_align_torch` (same signature and result)."""
    tv_roi_align = _torchvision_roi_align()
    if tv_roi_align is not None:
        return tv_roi_align(features, boxes, output_size, spatial_scale=spatial_scale,
                            sampling_ratio=sampling_ratio, aligned=aligned)
    return roi_align_torch(features, boxes, output_size, spatial_scale, sampling_ratio, aligned)


class TrackPool(nn.Module):
    """One feature vector per track and frame (spec §2.2).

    forward(features ``(B, C, T, h, w)``, rois ``(B, M, T, 4)`` ``x1, y1, x2, y2`` in input-frame pixels,
    masks ``(B, M, T)``) -> ``(B, M, T, C)``: RoIAlign ``output_size`` at ``spatial_scale`` (box of clip b, frame
    t reads frame ``b*T + t``), mean over the bins, times the mask (0 where the track has no box).

    ``backend``: ``"auto"`` (torchvision if importable), ``"torch"`` or ``"torchvision"``.
    """

    def __init__(self, output_size: Sequence[int] = (4, 2), spatial_scale: float = 0.125, sampling_ratio: int = -1,
                 backend: str = "auto"):
        super().__init__()
        if backend not in ("auto", "torch", "torchvision"):
            raise ValueError(f"unknown RoIAlign backend {backend!r} (use 'auto', 'torch' or 'torchvision')")
        if backend == "torchvision" and _torchvision_roi_align() is None:
            raise ImportError("RoIAlign backend 'torchvision' requested but torchvision cannot be imported")
        self.output_size = (int(output_size[0]), int(output_size[1]))
        self.spatial_scale = float(spatial_scale)
        self.sampling_ratio = int(sampling_ratio)
        self.backend = backend

    def extra_repr(self) -> str:
        return f"output_size={self.output_size}, spatial_scale={self.spatial_scale}, backend={self.backend!r}"

    def forward(self, features: torch.Tensor, rois: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        batch, _, frames, height, width = features.shape
        num_tracks = rois.shape[1]
        if rois.shape[0] != batch or rois.shape[2] != frames or rois.shape[3] != 4:
            raise ValueError(f"rois must be (B={batch}, M, T={frames}, 4), got {tuple(rois.shape)}")
        frame_index = (torch.arange(batch, device=rois.device)[:, None, None] * frames
                       + torch.arange(frames, device=rois.device)[None, None, :]).expand(batch, num_tracks, frames)
        boxes = torch.cat([frame_index.unsqueeze(-1).to(rois.dtype), rois], dim=-1).reshape(-1, 5)
        use_tv = self.backend == "torchvision" or (self.backend == "auto" and _torchvision_roi_align() is not None)
        if use_tv:
            frames_first = rearrange(features, "b c t h w -> (b t) c h w")
            if frames_first.dtype in (torch.float16, torch.bfloat16):
                frames_first = frames_first.float()  # as torchvision's autocast rule; keeps frame indices > 2048 exact
            pooled = _torchvision_roi_align()(frames_first, boxes.to(frames_first.dtype), self.output_size,
                                              spatial_scale=self.spatial_scale, sampling_ratio=self.sampling_ratio,
                                              aligned=False)
            pooled = pooled.mean(dim=(2, 3))
        else:
            table = rearrange(features, "b c t h w -> (b t h w) c")
            pooled = _roi_align_table(table, boxes, self.output_size, self.spatial_scale, self.sampling_ratio,
                                      False, height, width).mean(dim=1)
        pooled = rearrange(pooled, "(b m t) c -> b m t c", b=batch, m=num_tracks, t=frames)
        return pooled * masks.unsqueeze(-1).to(pooled.dtype)


__all__ = ["TrackPool", "roi_align", "roi_align_torch"]
