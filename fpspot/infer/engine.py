"""Batched sliding-window inference of TAAD / TAAD+GNN over whole halves (spec §2.4).

``run_half`` streams the frames of a half once, cuts them into the windows of a plan
(:mod:`fpspot.infer.windows`), runs the model on batches of windows and averages the overlapping
per-frame logits into ``(9, 26, last + 1)`` float32 (zeros before the first frame with a visible player,
as the baseline writes them). Window inputs (RoIs, masks, node features of the 26 role slots) come from a
``window_inputs(start, length)`` callable, so the same loop serves real FOOTPASS and synthetic halves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
import torch
from einops import rearrange

from fpspot.infer.stream import FrameBuffer
from fpspot.infer.windows import LogitAccumulator, Window, plan_long, plan_overlap
from fpspot.schema import NUM_CLASSES, NUM_SLOTS

WindowInputs = Callable[[int, int], dict[str, np.ndarray]]


@dataclass
class EngineConfig:
    """How a half is cut and batched.

    ``scheme``: ``"overlap"`` (baseline: ``length`` frames every ``stride``) or ``"long"`` (windows of
    ``core + 2 * margin`` frames keeping their central ``core`` frames).
    """

    scheme: str = "overlap"
    length: int = 50
    stride: int = 25
    core: int = 250
    margin: int = 25
    batch_size: int = 8

    def plan(self, first: int, last: int) -> list[Window]:
        if self.scheme == "overlap":
            return plan_overlap(first, last, self.length, self.stride)
        if self.scheme == "long":
            return plan_long(first, last, self.core, self.margin)
        raise ValueError(f"unknown window scheme {self.scheme!r} (use 'overlap' or 'long')")


def _batches(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


def autocast_context(device: torch.device) -> contextlib.AbstractContextManager:
    """bf16 autocast on CUDA devices that support it, fp16 on other CUDA devices, nothing on CPU."""
    if device.type != "cuda":
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.autocast(device_type="cuda", dtype=dtype)


@torch.inference_mode()
def run_half(
    model: torch.nn.Module,
    frames: FrameBuffer,
    window_inputs: WindowInputs,
    first: int,
    last: int,
    config: EngineConfig | None = None,
    device: torch.device | str | None = None,
    progress: Callable[[int], None] | None = None,
    num_classes: int = NUM_CLASSES,
) -> np.ndarray:
    """Per-frame logits of one half: ``(num_classes, 26, last + 1)`` float32, zeros before ``first``.

    frames: frames of the half's video, numbered so that ``frames.get(a, b)`` returns frames ``a..b-1``;
    window_inputs(start, length): ``{"rois": (26, L, 4), "masks": (26, L), "nodes": (26, L, 6)}`` arrays.
    Frames after ``last`` inside a window are padding: their masks are forced to 0.
    num_classes: logit channels the model gives (9; more for models run together, see ``FrameModels``).
    progress(n): called after every batch with the number of frames of the half newly covered (the calls
    add up to ``last + 1 - first``), for a frames-per-second display.
    """
    config = config or EngineConfig()
    device = torch.device(device) if device is not None else next(model.parameters()).device
    plan = config.plan(first, last)
    accumulator = LogitAccumulator(num_classes, NUM_SLOTS, first, last)  # zeros before ``first``
    model.eval()
    done = first  # frames first..done-1 are covered by the windows run so far
    for windows in _batches(plan, config.batch_size):
        batch = _window_batch(windows, frames, window_inputs, last, device)
        with autocast_context(device):
            logits = model(batch)["logits"]
        if logits.shape != (len(windows), num_classes, NUM_SLOTS, windows[0].length):
            raise ValueError(f"the model gave logits of shape {tuple(logits.shape)} for {len(windows)} windows of "
                             f"{windows[0].length} frames; expected (B, {num_classes}, {NUM_SLOTS}, T)")
        logits = logits.float().cpu().numpy()
        for window, window_logits in zip(windows, logits):
            accumulator.add(window, window_logits)
        covered = max(done, min(max(w.keep_hi for w in windows), last + 1))
        if progress is not None:
            progress(covered - done)
        done = covered
        del batch, logits  # release this batch before the next one is built (peak memory: one batch)
    return accumulator.result()


def _window_batch(windows: list[Window], frames: FrameBuffer, window_inputs: WindowInputs, last: int,
                  device: torch.device) -> dict[str, torch.Tensor]:
    """Stack the inputs of a list of windows (all of one length) into a clip batch on ``device``.

    The frames are written into one preallocated ``(B, 3, L, H, W)`` uint8 array, window by window.
    """
    video = None
    rois, masks, nodes = [], [], []
    for i, w in enumerate(windows):
        clip = frames.get(w.start, w.stop)  # (L, H, W, 3)
        if video is None:
            video = np.empty((len(windows), clip.shape[3], w.length, *clip.shape[1:3]), dtype=np.uint8)
        video[i] = rearrange(clip, "t h w c -> c t h w")
        del clip
        inputs = window_inputs(w.start, w.length)
        mask = np.array(inputs["masks"], dtype=np.float32, copy=True)
        mask[:, max(0, last + 1 - w.start):] = 0.0  # padding frames after the end of the half
        rois.append(inputs["rois"])
        masks.append(mask)
        nodes.append(inputs["nodes"])
    return {
        "video": torch.from_numpy(video).to(device),
        "rois": torch.from_numpy(np.stack(rois).astype(np.float32)).to(device),
        "masks": torch.from_numpy(np.stack(masks)).to(device),
        "nodes": torch.from_numpy(np.stack(nodes).astype(np.float32)).to(device),
    }
