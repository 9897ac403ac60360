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
    # The overlap scheme cuts context at window edges, so it differs exactly on a window's first and last frames
    # (inside the half; the half's own ends are padded alike) and agrees elsewhere.
    overlap = EngineConfig(batch_size=4, length=20, stride=10)
    base, _ = _run(overlap)
    edges = {f for w in overlap.plan(FIRST, N_FRAMES - 1) for f in (w.start, w.stop - 1)} - {FIRST, N_FRAMES - 1}
    differs = ~np.isclose(base, whole, rtol=1e-5, atol=1e-6).all(axis=(0, 1))
    assert np.flatnonzero(differs).tolist() == sorted(f for f in edges if f < N_FRAMES)


def test_frames_after_the_end_are_padding():
    """Frames after the half's last frame (99) are padding: the same half run with a 100-frame video (the frame
    buffer pads past its end) and with a 140-frame video (real frames 100..139 follow) gives the same logits
    for frames 0..99, although the model's temporal conv reads frame 100 for frame 99; and the frame buffer
    returns zeros for the frames past the end of its video."""
    config = EngineConfig(batch_size=3, length=20, stride=10)
    assert max(w.stop for w in config.plan(FIRST, 99)) > 100  # the last windows reach past frame 99
    video = _video(140)
    short, frames = _run(config, video=video[:100], last=99)
    long, _ = _run(config, video=video, last=99)
    assert frames.end == 100 and short.shape == long.shape == (9, 26, 100)
    assert (short[..., 99] != 0).any()  # the last frame has logits
    np.testing.assert_allclose(short, long, rtol=0, atol=1e-6)
    tail = frames.get(95, 115)  # the last window's frames: 95..99 from the video, 100..114 padding
    np.testing.assert_array_equal(tail[:5], video[95:100])
    assert tail.shape == (20, H, W, 3)
    assert not tail[5:].any(), f"padding frames past the end hold {np.unique(tail[5:]).tolist()}, not zeros"


def test_unknown_scheme_is_an_error():
    with pytest.raises(ValueError, match="unknown window scheme"):
        EngineConfig(scheme="dense").plan(0, 10)


def _half(key="game_7_H1"):
    from fpspot.infer.api import HalfSource

    video = _video()
    jerseys = np.tile(np.arange(26)[:, None] + 1, (1, N_FRAMES))
    return HalfSource(key, FIRST, N_FRAMES - 1, lambda: iter(video[FIRST:]), _inputs, jerseys)


def test_predict_halves_writes_logits_and_every_key(tmp_path):
    from fpspot.data.footpass import read_playbyplay
    from fpspot.infer.api import load_logits, predict_halves, write_predictions
    from fpspot.schema import Prediction

    def to_events(logits, half):  # one event per slot at its best action frame
        jerseys = half.jerseys
        probs = np.exp(logits - logits.max(0))
        probs /= probs.sum(0)
        events = []
        for slot in range(26):
            c, t = np.unravel_index(probs[1:, slot, FIRST:].argmax(), probs[1:, slot, FIRST:].shape)
            events.append(Prediction(int(t) + FIRST, slot // 13, int(jerseys[slot, t]), int(c) + 1,
                                     float(probs[c + 1, slot, t + FIRST])))
        return events

    halves = [_half("game_7_H1"), _half("game_7_H2")]
    pred = predict_halves(PixelSpotter(), halves, EngineConfig(batch_size=4, length=20, stride=10),
                          logits_dir=tmp_path / "logits", to_events=to_events, show_progress=False)
    key, logits = load_logits(tmp_path / "logits" / "game_7_H2.safetensors")
    assert key == "game_7_H2" and logits.shape == (9, 26, N_FRAMES)
    pred.events["game_7_H2"] = []  # a half without events is still written
    out = read_playbyplay(write_predictions(pred, tmp_path / "pred.json"))
    assert out.keys == ["game_7_H1", "game_7_H2"] and len(out.events["game_7_H1"]) == 26
    assert out.events["game_7_H2"] == []


def test_video_shorter_than_tactical_data_names_the_half():
    from fpspot.infer.api import HalfSource, half_logits

    video = _video(60)
    half = HalfSource("game_9_H2", FIRST, N_FRAMES - 1, lambda: iter(video[FIRST:]), _inputs, np.zeros((26, N_FRAMES)))
    with pytest.raises(ValueError, match=r"game_9_H2: the video ends at frame 59, the tactical data at 139"):
        half_logits(PixelSpotter(), half, EngineConfig(length=20, stride=10), "cpu")
