"""The batched engine over a half: batching, streaming and window schemes, with a small real conv model."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from einops import rearrange

from fpspot.infer.engine import EngineConfig, run_half
from fpspot.infer.stream import FrameBuffer


class PixelSpotter(torch.nn.Module):
    """A tiny model with the clip-batch interface: per slot and frame, the mean colour inside its box,
    a temporal conv (so window edges matter) and a linear layer to 9 classes -> (B, 9, M, T)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.temporal = torch.nn.Conv1d(3, 16, 3, padding=1)
        self.head = torch.nn.Linear(16, 9)

    def forward(self, batch):
        video = batch["video"].float() / 255  # (B, 3, T, H, W)
        rois = batch["rois"].long()  # (B, M, T, 4)
        b, m, t = rois.shape[:3]
        feats = torch.zeros(b, m, t, 3)
        for i in range(b):
            for j in range(m):
                for k in range(t):
                    x1, y1, x2, y2 = rois[i, j, k].tolist()
                    feats[i, j, k] = video[i, :, k, y1:y2 + 1, x1:x2 + 1].mean(dim=(-1, -2))
        feats = feats * batch["masks"][..., None]
        hidden = self.temporal(rearrange(feats, "b m t c -> (b m) c t")).relu()
        logits = self.head(rearrange(hidden, "(b m) c t -> b m t c", b=b))
        return {"logits": rearrange(logits, "b m t c -> b c m t")}


H, W, N_FRAMES, FIRST = 12, 16, 140, 5


def _video(n=N_FRAMES):
    rng = np.random.default_rng(1)
    return rng.integers(0, 255, size=(n, H, W, 3), dtype=np.uint8)


def _inputs(start, length):
    t = np.arange(start, start + length)
    x1 = (t % 8)[None, :].repeat(26, 0) + np.arange(26)[:, None] % 4
    rois = np.stack([x1, np.zeros_like(x1) + 2, x1 + 5, np.zeros_like(x1) + 9], -1).astype(np.float32)
    masks = np.ones((26, length), dtype=np.float32)
    masks[3] = 0.0  # one slot never visible
    return {"rois": rois, "masks": masks, "nodes": np.full((26, length, 6), -15.0, dtype=np.float32)}


def _run(config, video=None, last=N_FRAMES - 1):
    video = _video() if video is None else video
    frames = FrameBuffer(iter(video[FIRST:]), first=FIRST)
    return run_half(PixelSpotter(), frames, _inputs, FIRST, last, config), frames


def test_batched_equals_unbatched_and_is_batch_size_independent():
    ref, _ = _run(EngineConfig(batch_size=1, length=20, stride=10))
    for bs in (2, 5, 64):
        out, _ = _run(EngineConfig(batch_size=bs, length=20, stride=10))
        np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    assert out.shape == (9, 26, N_FRAMES) and (out[..., :FIRST] == 0).all() and (out[..., FIRST:] != 0).any()


def test_streaming_decodes_each_frame_once_and_bounds_memory():
    video = _video()
    buf = FrameBuffer(iter(video[FIRST:]), first=FIRST)
    run_half(PixelSpotter(), buf, _inputs, FIRST, N_FRAMES - 1, EngineConfig(batch_size=2, length=20, stride=10))
    assert buf.frames_decoded == N_FRAMES - FIRST
    assert len(buf._buffer) <= 2 * 20  # at most one batch of windows is held


def test_long_window_mode_equals_one_window_over_the_whole_half():
    # The model's receptive field is +-1 frame (Conv1d k=3): with a margin >= 1 every kept frame sees all
    # of its context, so the long mode must equal a single window spanning the half, exactly.
    whole, _ = _run(EngineConfig(scheme="long", batch_size=1, core=10_000, margin=0))
    long, _ = _run(EngineConfig(scheme="long", batch_size=4, core=30, margin=5))
    np.testing.assert_allclose(long, whole, rtol=1e-5, atol=1e-6)
    # The overlap scheme cuts context at window edges, so it differs there (and agrees elsewhere).
    base, _ = _run(EngineConfig(batch_size=4, length=20, stride=10))
    assert not np.allclose(base, whole, atol=1e-6)


def test_frames_after_the_end_are_padding():
    video = _video(100)
    out, frames = _run(EngineConfig(batch_size=3, length=20, stride=10), video=video, last=99)
    assert frames.end == 100 and out.shape[-1] == 100


def test_unknown_scheme_is_an_error():
    with pytest.raises(ValueError, match="unknown window scheme"):
        EngineConfig(scheme="dense").plan(0, 10)
