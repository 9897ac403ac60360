"""TAAD ("lightweight TAAD", spec §2.2-§2.3): X3D -> FPN (stride 8) -> RoIAlign per track -> Conv1d head.

Batch (see :class:`ClipSpotter`): ``video`` ``(B, 3, T, H, W)`` uint8, ``rois`` ``(B, M, T, 4)``, ``masks``
``(B, M, T)``; training adds ``labels`` ``(B, M, T)`` (dilated +-1). Output ``{"logits": (B, 9, M, T)}``, plus
``"loss"`` (and ``"ce"``) when the batch has ``labels``: the masked weighted cross-entropy of spec §2.3 with the
class weights of :meth:`set_class_weights` (default the baseline's ``[0.05, 0.95 x 8]``).

:class:`ClipSpotter` is the video trunk shared with TAAD+GNN (:mod:`fpspot.models.taad_gnn`): backbone
(``backbone.*``, an :class:`~fpspot.models.blocks.x3d.X3D`), FPN neck, track pooling, uint8 normalisation,
frozen-backbone and checkpointing switches, and a realistic ``example_batch``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from typing import Any, ClassVar

import torch
from einops import rearrange

from fpspot.models.base import SpotterModel
from fpspot.models.blocks.neck import FPNNeck
from fpspot.models.blocks.temporal import ConvHead
from fpspot.models.blocks.track_pool import TrackPool
from fpspot.models.blocks.x3d import X3D, X3D_SPECS, load_pytorchvideo_x3d
from fpspot.models.zoo import register_model
from fpspot.schema import MISSING_FILL, NUM_CLASSES
from fpspot.train.losses import TAAD_CLASS_WEIGHTS, masked_weighted_cross_entropy

VIDEO_MEAN = 0.45
VIDEO_STD = 0.225


def normalise_video(video: torch.Tensor) -> torch.Tensor:
    """uint8 ``(B, 3, T, H, W)`` -> float32 ``(x / 255 - 0.45) / 0.225`` (spec §2.1)."""
    if video.dtype != torch.uint8:
        raise TypeError(f"batch['video'] must be uint8 (B, 3, T, H, W) RGB, got {video.dtype}")
    return (video.float() / 255.0 - VIDEO_MEAN) / VIDEO_STD


class ClipSpotter(SpotterModel):
    """Video trunk of TAAD and TAAD+GNN: ``(B, 3, T, H, W)`` uint8 + boxes -> ``(B, M, T, 192)`` track features.

    Config: ``backbone`` (``x3d_s`` | ``x3d_m`` | ``x3d_l`` | ``x3d_tiny``), ``backbone_weights`` (local
    pytorchvideo ``.pyth`` loaded at construction; not written by ``save_pretrained``, whose weights already
    hold it), ``frame_hw`` (the frame size the model is meant for; RoIs are in its pixels),
    ``grad_checkpointing``, ``roi_backend`` (``auto`` | ``torch`` | ``torchvision``).
    """

    #: (num_tracks, num_frames) of :meth:`example_batch`
    example_shape: ClassVar[tuple[int, int]] = (5, 8)
    default_class_weights: ClassVar[Sequence[float]] = ()

    def __init__(self, backbone: str = "x3d_s", backbone_weights: str | None = None,
                 frame_hw: Sequence[int] = (352, 640), grad_checkpointing: bool = False, roi_backend: str = "auto"):
        if backbone not in X3D_SPECS:
            raise ValueError(f"unknown backbone {backbone!r}; choose from {', '.join(X3D_SPECS)}")
        super().__init__(backbone=backbone, backbone_weights=backbone_weights, frame_hw=[int(v) for v in frame_hw],
                         grad_checkpointing=bool(grad_checkpointing), roi_backend=roi_backend)
        self.backbone = X3D(backbone)
        if backbone_weights is not None:
            load_pytorchvideo_x3d(self.backbone, backbone_weights)
        self.neck = FPNNeck(self.backbone.widths, out_channels=192)
        self.pool = TrackPool(output_size=(4, 2), spatial_scale=1 / 8, backend=roi_backend)
        self.set_class_weights(self.default_class_weights)
        self.set_grad_checkpointing(grad_checkpointing)

    # ------------------------------------------------------------------------------------ training hooks

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute the stem, every X3D residual block and the two FPN fusions in backward."""
        super().set_grad_checkpointing(enable)
        self.config["grad_checkpointing"] = self.grad_checkpointing
        self.backbone.set_grad_checkpointing(enable)
        self.neck.set_grad_checkpointing(enable)

    def config_to_save(self) -> dict[str, Any]:
        """The config with ``backbone_weights`` cleared: the saved weights include the backbone, and the
        ``.pyth`` path need not exist where the model is loaded."""
        return {**self.config, "backbone_weights": None}

    # ---------------------------------------------------------------------------------------- forward

    def track_features(self, batch: dict[str, Any]) -> torch.Tensor:
        """``(B, M, T, 192)`` RoI features of every track and frame (zero where ``masks`` is 0)."""
        video = normalise_video(batch["video"])
        frozen = torch.no_grad() if self.backbone_frozen else contextlib.nullcontext()
        with frozen:
            features = self.backbone(video)
        stride8 = self.neck(features)
        return self.pool(stride8, batch["rois"].float(), batch["masks"])

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        outputs = {"logits": self.classify(self.track_features(batch), batch)}
        if "labels" in batch:
            outputs.update(self.compute_loss(outputs, batch))
        return outputs

    def classify(self, tracks: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """``(B, M, T, C)`` track features -> ``(B, 9, M, T)`` logits."""
        raise NotImplementedError

    # ------------------------------------------------------------------------------------ examples

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"backbone": "x3d_tiny", "frame_hw": [64, 96]}

    @classmethod
    def example_batch(cls, config: dict[str, Any], batch_size: int = 2, generator: torch.Generator | None = None,
                      *, num_tracks: int | None = None, num_frames: int | None = None) -> dict[str, Any]:
        """A well-formed clip batch for ``cls(**config)``: M tracks (default ``cls.example_shape[0]``: 5 for
        TAAD, 26 role slots for TAAD+GNN) and T frames (default 8) of ``config["frame_hw"]``.

        Players walk across the frame with boxes inside it (ints, as the loader gives); about 10 % of the
        frames have no box (mask 0, zero box), one track per clip is padding (no box, -15 node features);
        labels hold one event per clip on a visible frame, dilated +-1; nodes are ``[team, shirt, x, y, vx,
        vy]`` on a [0, 1] pitch.
        """
        from fpspot.data.tracks import dilate_labels

        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        height, width = config.get("frame_hw", (352, 640))
        b = batch_size
        m = num_tracks if num_tracks is not None else cls.example_shape[0]
        t = num_frames if num_frames is not None else cls.example_shape[1]

        def uniform(lo: float, hi: float, *shape: int) -> torch.Tensor:
            return lo + (hi - lo) * torch.rand(*shape, generator=gen)

        video = torch.randint(0, 256, (b, 3, t, height, width), generator=gen, dtype=torch.uint8)
        # pitch positions in [0, 1], smooth walks
        start = uniform(0.1, 0.9, b, m, 1, 2)
        speed = uniform(-0.01, 0.01, b, m, 1, 2)
        steps = torch.arange(t, dtype=torch.float32)[None, None, :, None]
        position = (start + speed * steps).clamp(0, 1)  # (b, m, t, 2)
        velocity = speed.expand(b, m, t, 2)
        # boxes in frame pixels around the player's image position
        box_w = uniform(0.04, 0.10, b, m, 1) * width
        box_h = uniform(0.12, 0.30, b, m, 1) * height
        cx = position[..., 0] * width
        foot = (0.3 + 0.7 * position[..., 1]) * height
        x1 = (cx - box_w / 2).clamp(0, width - 1).floor()
        y1 = (foot - box_h).clamp(0, height - 1).floor()
        x2 = (cx + box_w / 2).clamp(0, width).floor()
        y2 = foot.clamp(0, height).floor()
        rois = torch.stack([x1, y1, x2, y2], dim=-1)
        present = torch.ones(b, m, dtype=torch.bool)
        present[:, -1 if m <= 13 else 12] = False  # a padding track / an empty role slot
        masks = (torch.rand(b, m, t, generator=gen) > 0.1) & present[:, :, None]
        masks &= (x2 - x1 >= 2) & (y2 - y1 >= 2)
        rois = rois * masks[..., None]
        # one event per clip on a visible frame, dilated +-1 (spec §2.1)
        sharp = torch.zeros(b, m, t, dtype=torch.long)
        for clip in range(b):
            visible = torch.nonzero(masks[clip])
            pick = visible[torch.randint(len(visible), (1,), generator=gen)].squeeze(0)
            sharp[clip, pick[0], pick[1]] = int(torch.randint(1, NUM_CLASSES, (1,), generator=gen))
        labels = torch.from_numpy(dilate_labels(sharp.numpy()))
        labels = labels * masks  # no box, no label (spec §2.1)
        # node features [team, shirt, x, y, vx, vy], -15 where the track has no row
        team = (torch.arange(m) // 13 if m > 13 else torch.randint(0, 2, (m,), generator=gen)).float()
        shirt = torch.randint(1, 31, (b, m), generator=gen).float()
        nodes = torch.cat([team[None, :, None, None].expand(b, m, t, 1), shirt[:, :, None, None].expand(b, m, t, 1),
                           position, velocity], dim=-1)
        rows = present[:, :, None] & (torch.rand(b, m, t, generator=gen) > 0.05)
        nodes = torch.where(rows[..., None], nodes, torch.full_like(nodes, MISSING_FILL))
        return {"video": video, "rois": rois.float(), "masks": masks.float(), "nodes": nodes.float(),
                "labels": labels.long(), "labels_sharp": (sharp * masks).long()}


@register_model("taad")
class TAAD(ClipSpotter):
    """TAAD baseline: track features ``(B, M, T, 192)`` -> Conv1d(192->512, k3) -> BN -> GELU -> Linear(->9).

    forward(batch) -> ``{"logits": (B, 9, M, T)}`` (+ ``"loss"``, ``"ce"`` with ``labels``).
    """

    default_class_weights = TAAD_CLASS_WEIGHTS

    def __init__(self, **config: Any):
        super().__init__(**config)
        self.head = ConvHead(192, 512, NUM_CLASSES, kernel_size=3)

    def classify(self, tracks: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        logits = self.head(rearrange(tracks, "b m t c -> (b m) c t"))
        return rearrange(logits, "(b m) k t -> b k m t", b=tracks.shape[0])

    def compute_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Masked weighted CE (spec §2.3): mean over all B*M*T elements, masked ones included."""
        loss = masked_weighted_cross_entropy(outputs["logits"], batch["labels"], batch["masks"], self.class_weights)
        return {"loss": loss, "ce": loss.detach()}


__all__ = ["TAAD", "ClipSpotter", "normalise_video"]
