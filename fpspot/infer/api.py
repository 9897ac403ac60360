"""``fpspot.infer``: run a trained model over whole halves and return (and write) predictions.

Halves are shared out over processes when run under ``accelerate launch`` (each process takes a contiguous
share, results are gathered), per-frame logits can be kept per half as safetensors, and the predictions
are written as a challenge-format JSON with every key.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from fpspot.data.footpass import PlayByPlay, write_playbyplay
from fpspot.infer.engine import EngineConfig, run_half
from fpspot.infer.stream import FrameBuffer
from fpspot.utils.atomic import atomic_path


@dataclass
class HalfSource:
    """Everything the engine needs of one half.

    ``frames()`` yields ``(H, W, 3)`` uint8 frames starting at frame ``first``; ``window_inputs(start, L)``
    gives the 26-slot ``rois``, ``masks`` and ``nodes`` of a window; ``jerseys`` is the ``(26, last + 1)``
    slot -> jersey table (spec §2.5).
    """

    key: str
    first: int
    last: int
    frames: Callable[[], Iterator[np.ndarray]]
    window_inputs: Callable[[int, int], dict[str, np.ndarray]]
    jerseys: np.ndarray


def save_logits(path: str | os.PathLike, logits: np.ndarray, key: str) -> Path:
    """Write a half's ``(9, 26, T)`` logits as safetensors (tensor name = half key), atomically."""
    from safetensors.numpy import save_file

    with atomic_path(path) as tmp:
        save_file({key: np.ascontiguousarray(logits, dtype=np.float32)}, str(tmp), metadata={"key": key})
    return Path(path)


def load_logits(path: str | os.PathLike) -> tuple[str, np.ndarray]:
    """Inverse of :func:`save_logits`: ``(key, (9, 26, T) float32)``."""
    from safetensors.numpy import load_file

    tensors = load_file(str(path))
    if len(tensors) != 1:
        raise ValueError(f"{path}: expected one tensor (the half's logits), found {sorted(tensors)}")
    return next(iter(tensors.items()))


def half_logits(model: torch.nn.Module, half: HalfSource, config: EngineConfig, device, progress=None) -> np.ndarray:
    """``(9, 26, last + 1)`` logits of one half (zeros before ``first``)."""
    buffer = FrameBuffer(half.frames(), first=half.first, name=half.key)
    logits = run_half(model, buffer, half.window_inputs, half.first, half.last, config, device, progress)
    if buffer.end is not None and buffer.end <= half.last:
        raise ValueError(f"{half.key}: the video ends at frame {buffer.end - 1}, the tactical data at {half.last}")
    return logits


def predict_halves(
    model: torch.nn.Module,
    halves: Sequence[HalfSource],
    config: EngineConfig | None = None,
    device: torch.device | str | None = None,
    logits_dir: str | os.PathLike | None = None,
    to_events: Callable[[np.ndarray, np.ndarray], list] | None = None,
    show_progress: bool = True,
) -> PlayByPlay:
    """Run ``model`` on every half (shared out over processes) and return the gathered predictions.

    ``to_events(logits, jerseys) -> list[Prediction]`` turns a half's logits into events (default: the
    baseline's softmax + per-slot, per-class NMS 25, :func:`fpspot.post.peaks.logits_to_events`).
    With ``logits_dir`` the logits of each half are also written there as ``{key}.safetensors``.
    """
    from accelerate import PartialState
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    state = PartialState()
    config = config or EngineConfig()
    device = torch.device(device) if device is not None else state.device
    model = model.to(device)
    if to_events is None:
        from fpspot.post.peaks import logits_to_events

        to_events = lambda logits, jerseys: logits_to_events(logits, jerseys)  # noqa: E731
    total = sum(h.last + 1 - h.first for h in halves)
    bar = tqdm(total=total, unit="frame", desc="infer", disable=not (show_progress and state.is_local_main_process))
    results = []
    with state.split_between_processes(list(halves)) as mine:
        for half in mine:
            bar.set_postfix_str(half.key)
            logits = half_logits(model, half, config, device, progress=bar.update)
            if logits_dir is not None:
                save_logits(Path(logits_dir) / f"{half.key}.safetensors", logits, half.key)
            results.append((half.key, to_events(logits, half.jerseys)))
    bar.close()
    gathered = dict(gather_object(results)) if state.num_processes > 1 else dict(results)
    keys = [h.key for h in halves]
    return PlayByPlay("pred", keys, {k: list(gathered.get(k, [])) for k in keys})


def write_predictions(pred: PlayByPlay, output: str | os.PathLike) -> Path:
    """Write predictions as challenge-format JSON with every key.

    The write is atomic (temporary file + rename) and every process holds the same gathered predictions,
    so when several processes call this they all rename identical content into place.
    """
    return write_playbyplay(output, pred)
