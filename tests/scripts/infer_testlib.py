"""Shared pieces of the inference tests: a small real model and a tiny synthetic dataset.

``PixelSpotter`` is a model with the clip-batch contract; inside ``pixel_model_registered()`` it is registered
in the zoo as ``test_pixel`` (so ``save_pretrained`` / ``load_model`` work) and removed again afterwards, so
the zoo tests that run over every registered model never see it.

Per role slot and frame it takes the mean colour inside the slot's box (on 4x4-pooled frames, with an
integral image), the slot's pitch position, a temporal convolution (k=3, so window edges matter) and a linear
layer to the 9 classes: ``forward(batch)["logits"]`` is ``(B, 9, M, T)``. ``background_bias`` is added to
the background logit (a large value gives a model that predicts no event).

``synth_dataset(folder)`` writes (once) a FOOTPASS-format synthetic dataset of 2 games x 0.5 minute at
88x160 (game 0 train, game 1 val; halves of 375 frames); ``copy_dataset`` copies one to damage it.
"""

from __future__ import annotations

import contextlib
import shutil
from pathlib import Path

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from fpspot.models import SpotterModel, register_model
from fpspot.schema import NUM_CLASSES


class PixelSpotter(SpotterModel):
    def __init__(self, frame_hw=(88, 160), hidden: int = 16, background_bias: float = 0.0, seed: int = 0):
        super().__init__(frame_hw=list(frame_hw), hidden=hidden, background_bias=background_bias, seed=seed)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.backbone = nn.Conv1d(5, hidden, 3, padding=1)
            self.head = nn.Linear(hidden, NUM_CLASSES)
        self.background_bias = background_bias

    @classmethod
    def tiny_config(cls):
        return {"frame_hw": [32, 48], "hidden": 8}

    @classmethod
    def example_batch(cls, config, batch_size=2, generator=None):
        h, w = config.get("frame_hw", (88, 160))
        m, t = 5, 6
        g = generator
        x1 = torch.randint(0, w - 4, (batch_size, m, t, 1), generator=g).float()
        y1 = torch.randint(0, h - 4, (batch_size, m, t, 1), generator=g).float()
        rois = torch.cat([x1, y1, x1 + 3, y1 + 3], -1)
        labels = torch.randint(0, NUM_CLASSES, (batch_size, m, t), generator=g)
        return {"video": torch.randint(0, 256, (batch_size, 3, t, h, w), dtype=torch.uint8, generator=g),
                "rois": rois, "masks": torch.ones(batch_size, m, t),
                "nodes": torch.rand(batch_size, m, t, 6, generator=g), "labels": labels, "labels_sharp": labels}

    def box_colours(self, video: torch.Tensor, rois: torch.Tensor) -> torch.Tensor:
        """Mean RGB inside each box, on the frames pooled 4x4 (integral image, float64, exact up to float
        rounding): video ``(B, 3, T, H, W)`` float in [0, 1], rois ``(B, M, T, 4)`` -> ``(B, M, T, 3)``."""
        b, _, t, h, w = video.shape
        m = rois.shape[1]
        pooled = F.avg_pool3d(video, (1, 4, 4), ceil_mode=True)  # (B, 3, T, h/4, w/4)
        hp, wp = pooled.shape[-2:]
        sat = torch.zeros(b, t, hp + 1, wp + 1, 3, dtype=torch.float64, device=video.device)
        sat[:, :, 1:, 1:] = rearrange(pooled, "b c t h w -> b t h w c").double().cumsum(2).cumsum(3)
        x1, y1, x2, y2 = (rois.long() // 4).unbind(-1)
        x1, x2 = x1.clamp(0, wp), (x2 + 1).clamp(0, wp)
        y1, y2 = y1.clamp(0, hp), (y2 + 1).clamp(0, hp)
        bi = torch.arange(b, device=video.device)[:, None, None].expand(b, m, t)
        ti = torch.arange(t, device=video.device)[None, None, :].expand(b, m, t)
        total = sat[bi, ti, y2, x2] - sat[bi, ti, y1, x2] - sat[bi, ti, y2, x1] + sat[bi, ti, y1, x1]
        area = ((x2 - x1).clamp(min=0) * (y2 - y1).clamp(min=0)).clamp(min=1)
        return (total / area[..., None]).float()

    def forward(self, batch):
        video = batch["video"].float() / 255
        colours = self.box_colours(video, batch["rois"]) * batch["masks"][..., None]
        feats = torch.cat([colours, batch["nodes"][..., 2:4].float() / 15], -1)  # (B, M, T, 5)
        b = feats.shape[0]
        context = torch.no_grad() if self.backbone_frozen else contextlib.nullcontext()
        with context:
            hidden = F.gelu(self.backbone(rearrange(feats, "b m t c -> (b m) c t")))
        logits = self.head(rearrange(hidden, "(b m) c t -> b m t c", b=b))
        logits = logits + F.one_hot(torch.tensor(0), NUM_CLASSES).to(logits) * self.background_bias
        out = {"logits": rearrange(logits, "b m t c -> b c m t")}
        if "labels" in batch:
            out.update(self.compute_loss(out, batch))
        return out

    def compute_loss(self, outputs, batch):
        weight = self.class_weights if self.class_weights.numel() else None
        ce = F.cross_entropy(outputs["logits"], batch["labels"], weight=weight, reduction="none")
        loss = (ce * batch["masks"]).mean()
        return {"loss": loss, "ce": loss.detach()}


@contextlib.contextmanager
def pixel_model_registered():
    """Register :class:`PixelSpotter` as ``test_pixel`` for the duration of the block."""
    from fpspot.models import zoo

    zoo.list_models()  # import the library's models first
    register_model("test_pixel")(PixelSpotter)
    try:
        yield
    finally:
        zoo._REGISTRY.pop("test_pixel", None)


SYNTH_HW = (88, 160)


def synth_dataset(folder: Path) -> Path:
    """A tiny synthetic FOOTPASS dataset in ``folder`` (written on the first call)."""
    from fpspot.data.synth import SynthConfig, generate_dataset

    folder = Path(folder)
    if not (folder / "splits.json").is_file():
        generate_dataset(folder, SynthConfig(games=2, minutes=0.5, size=SYNTH_HW, seed=3))
    return folder


def copy_dataset(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def truncate_video(path: Path, frames: int) -> None:
    """Rewrite a video with its first ``frames`` frames only."""
    from fpspot.data.video import VideoReader, VideoWriter

    with VideoReader(path) as reader:
        kept = reader.clip(0, frames)
    with VideoWriter(path, kept.shape[1], kept.shape[2]) as writer:
        writer.write_all(kept)


def corrupt_frame(path: Path, frame: int) -> None:
    """Overwrite the bytes of the packet of ``frame`` (and the next ones, 4 kB) with zeros."""
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        packet = next(p for p in container.demux(stream)
                      if p.pts is not None and p.pts * stream.time_base * 25 >= frame)
        position = packet.pos
    data = bytearray(path.read_bytes())
    data[position:position + 4000] = bytes(4000)
    path.write_bytes(bytes(data))
