"""Clip augmentations that keep frames, boxes, slots, teams and node features consistent (spec §1.3, §2.1, §3.1).

One draw of :func:`sample_augment` (a :class:`ClipAugment`, all randomness from the ``numpy.random.Generator``
passed in) describes the whole clip; the same parameters act on every frame and on every track:

1. **Box enlargement jitter** (spec §1.3): each track gets ``coeff = 1.125 + U(-0.125, 0.125)`` and its RoIs
   are rebuilt from the stored Full-HD boxes (``boxes.npy``) with :func:`fpspot.data.tracks.roi_to_frame`.
2. **Colour jitter**: brightness ``b``, contrast ``c``, saturation ``s`` in ``[1 - x, 1 + x]`` and a hue
   rotation ``h`` in ``[-x, x]`` (fraction of the hue circle), applied in BT.601 YUV, the space the clips
   are stored in: ``Y' = c * (b * (Y - 16) - m) + m + 16`` (``m``: mean of ``b * (Y - 16)`` over the first
   frame) and ``(U', V') = c * b * s * R(2 pi h) (U - 128, V - 128) + 128``. Brightness scales light and
   colour, contrast pulls towards the mean grey, saturation scales colour, hue rotates it (the usual
   ColorJitter semantics, without its random order).
3. **Horizontal flip** (p = 0.5): the image and the boxes are mirrored (``x -> W - x``); node features of
   tracks with a row get ``x -> 1 - x``, ``vx -> -vx`` and team ``0 <-> 1`` (feature 0; -15 stays -15).
   For 26-slot clips the slot axis of rois, masks, labels and nodes is also permuted with the X-mirror
   permutation of spec §4.4 (team swap + left/right role swap, :data:`X_MIRROR_SLOTS`), so slot ``m`` keeps
   meaning ``team * 13 + role - 1`` after the flip: the mirrored left back of team 0 is where a right back
   of team 1 plays. The GNN baseline swaps teams without permuting roles (spec §8 item 16); this is that
   ambiguity fixed on purpose. 5-track TAAD clips keep their track order (the tracks are players, not slots).
4. **Scale, translate, crop**: the (flipped) frame is resized by ``s in [1 - 0.1, 1 + 0.1]`` to
   ``(sH, sW)`` and placed at offset ``(oy, ox)`` (uniform over the scaled frame's placements, plus a
   translation of up to 10 % of the frame) in an ``H x W`` canvas; what falls outside is cropped, what is
   uncovered is black. Boxes follow (``x -> x * sW / W + ox``), are clipped to the frame, and a box under
   2 px wide or high (including one that left the frame) gets mask 0 and label 0; dilated labels are
   rebuilt from the sharp ones (spec §2.1). The baseline's ``±1.5°`` rotation is not reproduced.

Video layout: :func:`augment_video` works on ``(T, H, W, 3)`` uint8 RGB (the decoder's layout; the loader's
collate rearranges to ``(3, T, H, W)``). It is the reference implementation. The loader uses the fused
path :class:`FrameAugmenter`, which :func:`fpspot.data.video.decode_clip` calls on every decoded frame: colour
and flip act on the YUV 4:2:0 planes before the RGB conversion, and the scaling is done by that conversion
(swscale), so augmentation costs a fraction of the decoding instead of several times it (see
``benchmarks/loader_speed.py``). Both paths give the same clip up to interpolation rounding.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpspot.data.tracks import EVAL_COEFF, dilate_labels, roi_to_frame
from fpspot.schema import MISSING_FILL, NUM_ROLES, NUM_SLOTS, ROLE_LR_MIRROR

#: New slot ``i`` takes old slot ``X_MIRROR_SLOTS[i]`` under a horizontal flip: team swap + L<->R roles
#: (spec §4.4, X-mirror). An involution.
X_MIRROR_SLOTS: tuple[int, ...] = tuple((1 - team) * NUM_ROLES + ROLE_LR_MIRROR[role]
                                        for team in range(2) for role in range(NUM_ROLES))
NODE_TEAM, NODE_X, NODE_VX = 0, 2, 4  # indices into the 6 node features [team, shirt, x, y, vx, vy]
_Y_BLACK = 16.0  # BT.601 limited range: Y in [16, 235], U/V in [16, 240] around 128


@dataclass(frozen=True)
class AugmentConfig:
    """Ranges of the training augmentations (module docstring). Set a value to 0 to switch that one off."""

    flip_p: float = 0.5
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.1
    scale: float = 0.1
    translate: float = 0.1
    box_jitter: float = 0.125  # coeff = 1.125 + U(-box_jitter, box_jitter)
    min_box_px: float = 2.0


@dataclass
class ClipAugment:
    """One draw of the augmentation parameters of a clip of ``frame_hw = (H, W)`` frames and ``M`` tracks."""

    frame_hw: tuple[int, int]
    flip: bool = False
    scaled_hw: tuple[int, int] | None = None  # None: no resize
    offset: tuple[int, int] = (0, 0)  # (oy, ox) of the scaled frame's top-left corner in the canvas
    brightness: float = 1.0
    contrast: float = 1.0
    saturation: float = 1.0
    hue: float = 0.0
    coeffs: np.ndarray | None = None  # (M,) box enlargement per track; None: keep the stored RoIs
    min_box_px: float = 2.0

    @property
    def identity_colour(self) -> bool:
        return self.brightness == 1.0 and self.contrast == 1.0 and self.saturation == 1.0 and self.hue == 0.0

    @property
    def identity_geometry(self) -> bool:
        return (self.scaled_hw is None or tuple(self.scaled_hw) == tuple(self.frame_hw)) and self.offset == (0, 0)

    def as_meta(self) -> dict:
        """JSON-friendly summary (stored in the sample's ``meta["augment"]``)."""
        return {"flip": bool(self.flip), "scaled_hw": list(self.scaled_hw or self.frame_hw),
                "offset": list(self.offset), "colour": [self.brightness, self.contrast, self.saturation, self.hue]}


def sample_augment(config: AugmentConfig, rng: np.random.Generator, frame_hw: tuple[int, int],
                   num_tracks: int) -> ClipAugment:
    """Draw the parameters of one clip (always the same number of draws from ``rng``, whatever the config)."""
    height, width = int(frame_hw[0]), int(frame_hw[1])
    u = rng.uniform(size=11)
    coeff_u = rng.uniform(-1.0, 1.0, size=num_tracks)
    scale = 1.0 + config.scale * (2 * u[1] - 1)
    sh, sw = (max(2, 2 * int(round(n * scale / 2))) for n in (height, width))  # even: YUV 4:2:0
    oy = int(round((height - sh) * u[2] + config.translate * height * (2 * u[3] - 1)))
    ox = int(round((width - sw) * u[4] + config.translate * width * (2 * u[5] - 1)))
    return ClipAugment(
        frame_hw=(height, width), flip=bool(u[0] < config.flip_p),
        scaled_hw=(sh, sw), offset=(oy, ox),
        brightness=1.0 + config.brightness * (2 * u[6] - 1), contrast=1.0 + config.contrast * (2 * u[7] - 1),
        saturation=1.0 + config.saturation * (2 * u[8] - 1), hue=config.hue * (2 * u[9] - 1),
        coeffs=(EVAL_COEFF + config.box_jitter * coeff_u) if config.box_jitter > 0 else None,
        min_box_px=config.min_box_px,
    )


# ================================================================================================= tracks


def _map_boxes(rois: np.ndarray, aug: ClipAugment) -> np.ndarray:
    """``(..., 4)`` ``x1, y1, x2, y2`` through flip -> scale -> offset (not clipped)."""
    height, width = aug.frame_hw
    x1, y1, x2, y2 = (rois[..., i].astype(np.float64) for i in range(4))
    if aug.flip:
        x1, x2 = width - x2, width - x1
    sh, sw = aug.scaled_hw or aug.frame_hw
    oy, ox = aug.offset
    fx, fy = sw / width, sh / height
    return np.stack([x1 * fx + ox, y1 * fy + oy, x2 * fx + ox, y2 * fy + oy], axis=-1)


def flip_nodes(nodes: np.ndarray) -> np.ndarray:
    """Node features ``(..., 6)`` ``[team, shirt, x, y, vx, vy]`` of a horizontally flipped clip.

    Rows with a tactical row (team != -15) get ``team -> 1 - team``, ``x -> 1 - x``, ``vx -> -vx``.
    """
    out = nodes.copy()
    present = nodes[..., NODE_TEAM] != MISSING_FILL
    out[..., NODE_TEAM] = np.where(present, 1.0 - nodes[..., NODE_TEAM], nodes[..., NODE_TEAM])
    out[..., NODE_X] = np.where(present, 1.0 - nodes[..., NODE_X], nodes[..., NODE_X])
    out[..., NODE_VX] = np.where(present, -nodes[..., NODE_VX], nodes[..., NODE_VX])
    return out


def augment_tracks(arrays: dict[str, np.ndarray], aug: ClipAugment, slot_tracks: bool) -> dict[str, np.ndarray]:
    """Apply ``aug`` to the track arrays of one clip (a new dict; the input is not modified).

    arrays: ``rois (M, T, 4)``, ``masks (M, T)``, ``labels_sharp (M, T)``, ``nodes (M, T, 6)`` and, when
    ``aug.coeffs`` is set, ``boxes (M, T, 4)`` (Full-HD ``x, y, w, h``, NaN: none). ``labels`` is rebuilt
    (dilated sharp labels). slot_tracks: the tracks are the 26 role slots (permuted under a flip).
    Returns ``rois`` float32, ``masks`` float32, ``labels``/``labels_sharp`` int64, ``nodes`` float32.
    """
    height, width = aug.frame_hw
    masks = np.asarray(arrays["masks"]).astype(bool)
    rois = np.asarray(arrays["rois"], dtype=np.float32)
    if aug.coeffs is not None:
        if "boxes" not in arrays:
            raise KeyError("box enlargement jitter needs the Full-HD 'boxes' of the clip")
        rois, valid = roi_to_frame(arrays["boxes"], np.asarray(aug.coeffs)[:, None], (height, width))
        masks = masks & valid
    mapped = _map_boxes(rois, aug)
    mapped[..., 0::2] = np.clip(mapped[..., 0::2], 0, width)
    mapped[..., 1::2] = np.clip(mapped[..., 1::2], 0, height)
    box_w, box_h = mapped[..., 2] - mapped[..., 0], mapped[..., 3] - mapped[..., 1]
    masks &= (box_w >= aug.min_box_px) & (box_h >= aug.min_box_px)
    rois = np.where(masks[..., None], mapped, 0.0).astype(np.float32)
    sharp = np.where(masks, np.asarray(arrays["labels_sharp"]), 0).astype(np.int64)
    nodes = np.asarray(arrays["nodes"], dtype=np.float32)
    if aug.flip:
        nodes = flip_nodes(nodes)
        if slot_tracks:
            if rois.shape[0] != NUM_SLOTS:
                raise ValueError(f"a slot clip has {NUM_SLOTS} tracks, got {rois.shape[0]}")
            perm = list(X_MIRROR_SLOTS)
            rois, masks, sharp, nodes = rois[perm], masks[perm], sharp[perm], nodes[perm]
    return {"rois": np.ascontiguousarray(rois), "masks": masks.astype(np.float32), "labels_sharp": sharp,
            "labels": dilate_labels(sharp), "nodes": np.ascontiguousarray(nodes, dtype=np.float32)}


def augment_meta(meta: dict, aug: ClipAugment, slot_tracks: bool) -> dict:
    """Meta of an augmented clip: under a flip the event's role slot is mirrored and, for slot clips, the
    per-slot jerseys and the actor index follow the slot permutation."""
    out = dict(meta)
    out["augment"] = aug.as_meta()
    if aug.flip and isinstance(meta.get("event"), dict) and isinstance(meta["event"].get("slot"), int):
        out["event"] = {**meta["event"], "slot": X_MIRROR_SLOTS[meta["event"]["slot"]]}  # the actor's mirrored slot
    if aug.flip and slot_tracks:
        if isinstance(meta.get("jerseys"), list) and len(meta["jerseys"]) == NUM_SLOTS:
            out["jerseys"] = [meta["jerseys"][s] for s in X_MIRROR_SLOTS]
        if isinstance(meta.get("actor"), int):
            out["actor"] = X_MIRROR_SLOTS[meta["actor"]]  # an involution: old slot a lands at X_MIRROR_SLOTS[a]
    return out


# ================================================================================================== video


def _luma_lut(aug: ClipAugment, mean_above_black: float) -> np.ndarray:
    """256-entry uint8 table of the Y transform (brightness, then contrast around the first frame's mean)."""
    y = np.arange(256, dtype=np.float64) - _Y_BLACK
    m = aug.brightness * mean_above_black
    out = aug.contrast * (aug.brightness * y - m) + m + _Y_BLACK
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _chroma(u: np.ndarray, v: np.ndarray, aug: ClipAugment) -> tuple[np.ndarray, np.ndarray]:
    """Rotate and scale the chroma planes (uint8, centred at 128)."""
    gain = aug.brightness * aug.contrast * aug.saturation
    angle = 2.0 * math.pi * aug.hue
    cos, sin = gain * math.cos(angle), gain * math.sin(angle)
    du = u.astype(np.float32) - 128.0
    dv = v.astype(np.float32) - 128.0
    nu = cos * du - sin * dv + 128.0
    nv = sin * du + cos * dv + 128.0
    return (np.clip(np.rint(nu), 0, 255).astype(np.uint8), np.clip(np.rint(nv), 0, 255).astype(np.uint8))


def _place(scaled: np.ndarray, aug: ClipAugment, out: np.ndarray | None = None) -> np.ndarray:
    """Put a scaled ``(..., sH, sW, 3)`` image at ``aug.offset`` in a black ``(..., H, W, 3)`` canvas
    (``out`` when given)."""
    height, width = aug.frame_hw
    sh, sw = scaled.shape[-3], scaled.shape[-2]
    oy, ox = aug.offset
    if out is None:
        canvas = np.zeros(scaled.shape[:-3] + (height, width, 3), np.uint8)
    else:
        canvas = out
        canvas[...] = 0
    y0, y1 = max(0, oy), min(height, oy + sh)
    x0, x1 = max(0, ox), min(width, ox + sw)
    if y1 > y0 and x1 > x0:
        canvas[..., y0:y1, x0:x1, :] = scaled[..., y0 - oy:y1 - oy, x0 - ox:x1 - ox, :]
    return canvas


# BT.601 limited-range conversion (the decoder's default for these clips), used by the reference path
_RGB2YUV = np.array([[0.257, 0.504, 0.098], [-0.148, -0.291, 0.439], [0.439, -0.368, -0.071]], np.float32)
_YUV_OFFSET = np.array([16.0, 128.0, 128.0], np.float32)


def augment_video(video: np.ndarray, aug: ClipAugment) -> np.ndarray:
    """Reference implementation on ``(T, H, W, 3)`` uint8 RGB frames: colour -> flip -> scale -> place.

    Returns ``(T, H, W, 3)`` uint8. Slow (float32 over the whole clip); the loader uses :class:`FrameAugmenter`.
    """
    import torch
    import torch.nn.functional as F
    from einops import rearrange

    if video.ndim != 4 or video.shape[-1] != 3 or video.dtype != np.uint8:
        raise ValueError(f"video must be (T, H, W, 3) uint8, got {video.shape} {video.dtype}")
    if tuple(video.shape[1:3]) != tuple(aug.frame_hw):
        raise ValueError(f"video frames are {video.shape[1:3]}, the augmentation was drawn for {aug.frame_hw}")
    out = video
    if not aug.identity_colour:
        yuv = video.astype(np.float32) @ _RGB2YUV.T + _YUV_OFFSET
        y = np.clip(np.rint(yuv[..., 0]), 0, 255).astype(np.uint8)
        mean_above_black = float(y[0].mean()) - _Y_BLACK
        y = _luma_lut(aug, mean_above_black)[y].astype(np.float32)
        u, v = _chroma(np.clip(np.rint(yuv[..., 1]), 0, 255), np.clip(np.rint(yuv[..., 2]), 0, 255), aug)
        yuv = np.stack([y, u.astype(np.float32), v.astype(np.float32)], axis=-1) - _YUV_OFFSET
        out = np.clip(np.rint(yuv @ np.linalg.inv(_RGB2YUV).T.astype(np.float32)), 0, 255).astype(np.uint8)
    if aug.flip:
        out = out[:, :, ::-1]
    if not aug.identity_geometry:
        sh, sw = aug.scaled_hw or aug.frame_hw
        if (sh, sw) != tuple(aug.frame_hw):
            frames = rearrange(torch.from_numpy(np.ascontiguousarray(out)), "t h w c -> t c h w")
            frames = F.interpolate(frames, size=(sh, sw), mode="bilinear", antialias=True, align_corners=False)
            out = rearrange(frames, "t c h w -> t h w c").numpy()
        out = _place(out, aug)
    return np.ascontiguousarray(out)


class FrameAugmenter:
    """Fused per-frame augmentation for :func:`fpspot.data.video.decode_clip` (``transform=``).

    Called with each decoded ``av.VideoFrame`` in order (and the slot to fill, if any); returns the augmented
    ``(H, W, 3)`` uint8 RGB frame: colour jitter and flip on the YUV 4:2:0 planes, the resize on the YUV frame
    (swscale, bilinear), one conversion to RGB, then the placement in the canvas. Needs ``H % 4 == 0`` and
    even ``W`` (PyAV packs the chroma planes in rows of ``W``); check :meth:`supports` and use
    :func:`augment_video` otherwise.
    """

    def __init__(self, aug: ClipAugment):
        from av.video.reformatter import VideoReformatter

        if not self.supports(aug.frame_hw):
            raise ValueError(f"the fused path needs H % 4 == 0 and even W, got {aug.frame_hw}")
        self.aug = aug
        self._lut: np.ndarray | None = None  # Y table, and a (U, V) -> (U', V') table, built on the first frame
        self._chroma_lut: np.ndarray | None = None
        self._scaler = VideoReformatter()  # kept: swscale contexts are cached between frames
        self._to_rgb = VideoReformatter()

    @staticmethod
    def supports(frame_hw: tuple[int, int]) -> bool:
        return frame_hw[0] % 4 == 0 and frame_hw[1] % 2 == 0

    def __call__(self, frame, out: np.ndarray | None = None) -> np.ndarray:
        """The augmented ``(H, W, 3)`` uint8 RGB frame, written into ``out`` when it is given."""
        import av

        aug = self.aug
        height, width = frame.height, frame.width
        if (height, width) != tuple(aug.frame_hw):
            raise ValueError(f"decoded frames are {height}x{width}, the augmentation was drawn for {aug.frame_hw}")
        work = frame
        if not (aug.identity_colour and not aug.flip):
            planes = frame.to_ndarray(format="yuv420p")  # (H * 3 / 2, W): Y, then U and V packed
            y = planes[:height]
            u = planes[height:height + height // 4].reshape(height // 2, width // 2)
            v = planes[height + height // 4:].reshape(height // 2, width // 2)
            if not aug.identity_colour:
                if self._lut is None:
                    self._lut = _luma_lut(aug, float(y.mean()) - _Y_BLACK)
                    grid_u, grid_v = np.meshgrid(np.arange(256, dtype=np.uint8), np.arange(256, dtype=np.uint8),
                                                 indexing="ij")
                    self._chroma_lut = np.stack(_chroma(grid_u, grid_v, aug), axis=-1).reshape(-1, 2)  # (65536, 2)
                y = np.take(self._lut, y)  # np.take: several times faster than fancy indexing here
                uv = np.take(self._chroma_lut, (u.astype(np.intp) << 8) | v, axis=0)
                u, v = uv[..., 0], uv[..., 1]
            if aug.flip:
                y, u, v = y[:, ::-1], u[:, ::-1], v[:, ::-1]
            packed = np.concatenate([y, np.ascontiguousarray(u).reshape(height // 4, width),
                                     np.ascontiguousarray(v).reshape(height // 4, width)], axis=0)
            work = av.VideoFrame.from_ndarray(packed, format="yuv420p")
        if aug.identity_geometry:
            return self._to_rgb.reformat(work, format="rgb24", threads=1).to_ndarray()
        sh, sw = aug.scaled_hw or aug.frame_hw
        if (sh, sw) != (height, width):
            work = self._scaler.reformat(work, width=sw, height=sh, format="yuv420p", interpolation="BILINEAR",
                                         threads=1)
        return _place(self._to_rgb.reformat(work, format="rgb24", threads=1).to_ndarray(), aug, out)


__all__ = [
    "AugmentConfig", "ClipAugment", "FrameAugmenter", "X_MIRROR_SLOTS", "augment_meta", "augment_tracks",
    "augment_video", "flip_nodes", "sample_augment",
]
