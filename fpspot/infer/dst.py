"""DST inference over a whole half (spec §4.5, with its two bugs fixed).

The frames ``[first_visible, min(last_visible, N - 1)]`` of the half are cut into contiguous,
non-overlapping windows of ``T = model.config["window"]`` frames; the last one is padded (``frame_index``
-1, masked in the model, so the padding values do not matter). All windows go through the model in one
batch (or in batches of ``batch_size``) and are decoded greedily with the KV cache
(:meth:`fpspot.models.dst.DST.generate`). Each valid decoded token ``(class, slot, rel frame r)`` becomes
``Prediction(frame = start + r - 1, team = slot // 13, shirt = jerseys[slot, frame], class, score)``:

* no ``+1`` lag (the baseline's output is one frame late);
* a window that never emits EOS keeps its events (the baseline drops the whole window);
* tokens with the neutral slot, a frame on padding or a slot without a known jersey (-1) are skipped.

:func:`dst_predictions` runs it over the halves of a dataset split from per-half logits files (the DST
stage of a pipeline whose frame model already ran, e.g. the DST validation of a recipe), shared out over
processes. :func:`fpspot.infer.infer` with a TAAD+DST stack runs the frame model and this in one go.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch

from fpspot.data.dst_windows import load_half_logits
from fpspot.data.footpass import PlayByPlay, TacticalFile, slot_jersey_table
from fpspot.data.layout import DatasetLayout
from fpspot.data.tracks import HalfRows
from fpspot.infer.engine import autocast_context
from fpspot.post.peaks import as_numpy_logits
from fpspot.schema import MISSING_FILL, NUM_ROLES, NUM_SLOTS, Prediction


def window_starts(first: int, last: int, window: int) -> list[int]:
    """Starts of the contiguous ``window``-frame windows covering ``first .. last``."""
    return list(range(first, last + 1, window)) if last >= first else []


def half_windows(rows: HalfRows, logits: np.ndarray, starts: list[int], last: int, window: int,
                 gnn_logits: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """The DST batch (without targets) of the windows starting at ``starts``; frames after ``last`` are padding."""
    teamvec = np.full((len(starts), 5, NUM_SLOTS, window), MISSING_FILL, np.float32)
    streams = {"logits": np.zeros((len(starts), *logits.shape[:2], window), np.float32)}
    if gnn_logits is not None:
        streams["gnn_logits"] = np.zeros((len(starts), *gnn_logits.shape[:2], window), np.float32)
    frame_index = np.full((len(starts), window), -1, np.int64)
    for i, start in enumerate(starts):
        n = min(window, last + 1 - start)
        teamvec[i, ..., :n] = rows.teamvec(start, n)
        streams["logits"][i, ..., :n] = logits[..., start:start + n]
        if gnn_logits is not None:
            streams["gnn_logits"][i, ..., :n] = gnn_logits[..., start:start + n]
        frame_index[i, :n] = np.arange(1, n + 1)
    batch = {"teamvec": torch.from_numpy(teamvec), "frame_index": torch.from_numpy(frame_index)}
    batch.update({k: torch.from_numpy(v) for k, v in streams.items()})
    return batch


@torch.inference_mode()
def dst_half_events(model: torch.nn.Module, rows: HalfRows, logits, jerseys: np.ndarray, gnn_logits=None,
                    device: torch.device | str | None = None, batch_size: int | None = None) -> list[Prediction]:
    """Events of one half decoded by a DST ``model``, sorted by frame.

    rows: the half's tactical rows; logits (and gnn_logits when the model fuses them): ``(9, 26, N)`` with
    absolute frames ``0..N-1`` (a logits file of :func:`fpspot.infer.api.save_logits`); jerseys: ``(26, >=N)``
    slot -> jersey table (:func:`fpspot.data.footpass.slot_jersey_table`). batch_size: windows per forward
    pass (default: all windows of the half at once). Mixed precision on CUDA only.
    """
    window = int(model.config["window"])
    uses_gnn = bool(model.config.get("use_gnn_logits", False))
    logits = as_numpy_logits(logits)
    if uses_gnn and gnn_logits is None:
        raise ValueError(f"{rows.key}: the DST fuses GNN logits (use_gnn_logits) but none were given")
    gnn = as_numpy_logits(gnn_logits, "gnn_logits") if uses_gnn else None
    jerseys = np.asarray(jerseys)
    if rows.first_visible is None:
        return []
    last = min(rows.last_visible, logits.shape[2] - 1, *(() if gnn is None else (gnn.shape[2] - 1,)))
    if jerseys.shape[0] != NUM_SLOTS or jerseys.shape[1] <= last:
        raise ValueError(f"{rows.key}: jerseys must have shape (26, > {last}), got {jerseys.shape}")
    starts = window_starts(rows.first_visible, last, window)
    if device is not None:
        model = model.to(device)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    size = batch_size or max(1, len(starts))
    events: list[Prediction] = []
    try:
        for i in range(0, len(starts), size):
            chunk = starts[i:i + size]
            batch = {k: v.to(device) for k, v in half_windows(rows, logits, chunk, last, window, gnn).items()}
            with autocast_context(device):
                out = model.generate(batch)
            out = {k: v.cpu().numpy() for k, v in out.items()}
            for b, step in zip(*np.nonzero(out["valid"])):
                slot = int(out["slot"][b, step])
                frame = chunk[b] + int(out["frame"][b, step]) - 1
                shirt = int(jerseys[slot, frame])
                if shirt < 0:
                    continue
                events.append(Prediction(frame, slot // NUM_ROLES, shirt, int(out["action"][b, step]),
                                         float(out["score"][b, step])))
    finally:
        model.train(was_training)
    events.sort(key=lambda e: (e.frame, e.team, e.shirt, e.cls))
    return events


def dst_predictions(model: torch.nn.Module, data_dir: str | os.PathLike, split: str, logits_dir: str | os.PathLike,
                    gnn_logits_dir: str | os.PathLike | None = None, *, keys: Sequence[str] | None = None,
                    device: torch.device | str | None = None, batch_size: int | None = None) -> PlayByPlay:
    """DST events of every half of ``split`` (or ``keys``) of a dataset folder, from the logits files
    ``{logits_dir}/{key}.safetensors`` (and ``{gnn_logits_dir}/{key}.safetensors`` for a GNN-fused DST).

    Under ``accelerate launch`` each process decodes a contiguous share of the halves and the results are
    gathered, so every process returns the same predictions (every key present, in split order).
    """
    from accelerate.utils import gather_object

    from fpspot.infer.api import process_state

    layout = DatasetLayout(data_dir)
    path = layout.tactical(split)
    keys = list(layout.half_keys(split) if keys is None else keys)
    state = process_state()  # a bare PartialState() would leave CPU processes without a process group
    results = []
    with state.split_between_processes(keys) as mine, TacticalFile(path) as tactical:
        for key in mine:
            rows = HalfRows(tactical.read(key), key)
            logits = load_half_logits(logits_dir, key)
            gnn = load_half_logits(gnn_logits_dir, key) if gnn_logits_dir is not None else None
            jerseys = slot_jersey_table(rows.rows, logits.shape[2])
            results.append((key, dst_half_events(model, rows, logits, jerseys, gnn_logits=gnn, device=device,
                                                 batch_size=batch_size)))
    gathered = dict(gather_object(results)) if state.num_processes > 1 else dict(results)
    return PlayByPlay("pred", keys, {key: list(gathered.get(key, [])) for key in keys})
