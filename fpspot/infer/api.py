"""``fpspot.infer``: run a trained model over whole halves and return (and write) predictions.

:func:`infer` is the one call (``fpspot.infer(model, data, ...)``): it loads the model (a folder written by
``save_pretrained``, a model object, or a TAAD+DST *stack*), lists the halves of a dataset folder
(:mod:`fpspot.infer.sources`) or takes a list of halves, runs the frame model over every half with the
batched engine (:mod:`fpspot.infer.engine`), turns each half's logits into events (the baseline's NMS, or the
DST decoder for a stack) and returns a :class:`~fpspot.data.footpass.PlayByPlay` with every key; with
``output`` it also writes the challenge-format JSON, atomically, once every half is done.

Under ``accelerate launch`` the halves are shared out over the processes (each takes a contiguous share,
the events are gathered on every process); per-frame logits can be kept per half as safetensors (and
gathered into one HDF5 file, as the baseline's tools read them).

A stack is a folder with ``stack.json`` ``{"format": "fpspot-stack/1", "frame_model": "taad", "dst": "dst"}``
whose values are sub-folders holding saved models (:func:`save_stack` writes one), or a tuple
``(frame_model, dst_model)`` of folders or models. A DST that fuses GNN logits (``use_gnn_logits``) also
needs the TAAD+GNN model: ``"gnn_model": "taad_gnn"`` in ``stack.json``, or ``(frame_model, gnn_model,
dst_model)``; both frame models then run on the same clip batches, in one pass over the video.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import torch

from fpspot.data.footpass import PlayByPlay, write_playbyplay
from fpspot.infer.engine import EngineConfig, run_half
from fpspot.infer.stream import FrameBuffer
from fpspot.schema import MODEL_HW, NUM_CLASSES
from fpspot.utils.atomic import atomic_open, atomic_path

if TYPE_CHECKING:
    from fpspot.data.tracks import HalfRows

STACK_FILE = "stack.json"
STACK_FORMAT = "fpspot-stack/1"
#: windows per model call when ``batch_size`` is not given: about 400 frames per call in both schemes
DEFAULT_BATCH_SIZE = {"overlap": 8, "long": 1}


@dataclass
class HalfSource:
    """Everything the engine needs of one half.

    ``frames()`` yields ``(H, W, 3)`` uint8 frames starting at frame ``first``; ``window_inputs(start, L)``
    gives the 26-slot ``rois``, ``masks`` and ``nodes`` of a window; ``jerseys`` is the ``(26, last + 1)``
    slot -> jersey table (spec §2.5). ``rows``: the half's tactical rows, needed by the DST decoder only.
    """

    key: str
    first: int
    last: int
    frames: Callable[[], Iterator[np.ndarray]]
    window_inputs: Callable[[int, int], dict[str, np.ndarray]]
    jerseys: np.ndarray
    rows: HalfRows | None = None

    @property
    def num_frames(self) -> int:
        return max(self.last + 1 - self.first, 0)

    def load(self) -> HalfSource:
        """A loaded half is its own source (see :meth:`fpspot.infer.sources.DatasetHalf.load`)."""
        return self


class HalfLike(Protocol):
    """A half that can be run: a :class:`HalfSource` or a not yet loaded ``DatasetHalf``."""

    key: str
    first: int
    last: int

    def load(self) -> HalfSource: ...


#: ``to_events(logits (9, 26, last + 1), half) -> list[Prediction]`` (absolute frames)
ToEvents = Callable[[np.ndarray, HalfSource], list]


# --------------------------------------------------------------------------------------------- logits


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


def export_logits_h5(logits_dir: str | os.PathLike, keys: Sequence[str], path: str | os.PathLike) -> Path:
    """Gather ``{key}.safetensors`` of ``logits_dir`` into one HDF5 file, one ``(9, 26, T)`` float32 dataset per
    half key (the layout of the baseline's ``TAAD_h5/preds_{split}.h5``), atomically."""
    import h5py

    with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
        for key in keys:
            stored, logits = load_logits(Path(logits_dir) / f"{key}.safetensors")
            if stored != key:
                raise ValueError(f"{logits_dir}/{key}.safetensors holds the logits of {stored!r}")
            h5.create_dataset(key, data=logits, compression="gzip", compression_opts=1, shuffle=True)
    return Path(path)


# --------------------------------------------------------------------------------------------- models


class UnsupportedModelError(ValueError):
    """A model that :func:`infer` cannot run over video (an event DST, a DST outside a stack, ...); the
    message names the model, what it is, which models ``infer`` runs and what to do instead."""


#: what a model of each ``input_kind`` (:class:`~fpspot.models.base.SpotterModel`) is, and how to run it instead
_NOT_VIDEO = {
    "frame_logits": ("an event decoder over a frame model's per-frame logits (spec §4), not a video model",
                     "run it in a stack behind a frame model: fpspot.infer.save_stack(DIR, frame_model, dst) then "
                     "infer DIR (fpspot infer --model DIR), or pass the pair (frame_model, dst) to fpspot.infer"),
    "events": ("an event-sequence model: it reads a spotter's events (a prediction file), not video",
               "use `fpspot post` with an event_dst pipeline step, e.g. `fpspot post --config "
               "recipes/pretrained/event_dst/pipeline.yaml --pred taad=PRED.json --out OUT.json` (README, "
               "'Event-sequence DST')"),
}


def input_kind(model: torch.nn.Module) -> str:
    """``model.input_kind`` (``"video"`` for any module that does not say: the clip-batch contract)."""
    return getattr(model, "input_kind", "video")


def _model_label(model: torch.nn.Module) -> str:
    name = getattr(model, "model_name", "") or type(model).__name__
    return f"model {name!r}"


def video_model_names() -> list[str]:
    """The registered models :func:`infer` runs over video (``input_kind == "video"``)."""
    from fpspot.models import list_models
    from fpspot.models.zoo import model_class

    return [name for name in list_models() if model_class(name).input_kind == "video"]


def check_video_model(model: torch.nn.Module, source: Any) -> None:
    """Raise :class:`UnsupportedModelError` unless ``model`` (loaded from ``source``: a folder or the model)
    reads clip batches of video; the message says what the model is and how to run it instead."""
    kind = input_kind(model)
    if kind == "video":
        return
    what, instead = _NOT_VIDEO.get(kind, (f"a model that reads {kind!r} inputs, not video", "see its documentation"))
    where = source if isinstance(source, (str, os.PathLike)) else f"the {type(model).__name__} object"
    raise UnsupportedModelError(
        f"{where}: {_model_label(model)} is {what}. fpspot.infer runs video models "
        f"({', '.join(video_model_names())}) and TAAD+DST stacks (a video model + a dst); to run this one, {instead}")


def _check_stack_part(role: str, model: torch.nn.Module, kind: str, names: str) -> None:
    if input_kind(model) != kind:
        raise UnsupportedModelError(f"the stack's {role} must be a {names} model (input_kind {kind!r}), got "
                                    f"{_model_label(model)} (input_kind {input_kind(model)!r})")


@dataclass
class Stack:
    """A frame model (TAAD or TAAD+GNN) whose per-half logits feed an event decoder (DST, spec §4); with
    ``gnn_model``, the DST also reads that model's logits (``use_gnn_logits``)."""

    frame_model: torch.nn.Module
    dst: torch.nn.Module
    gnn_model: torch.nn.Module | None = None

    def check(self) -> None:
        """Raise ``ValueError`` when the DST and the frame models do not fit together (or are not a video
        model and a DST: :class:`UnsupportedModelError`)."""
        _check_stack_part("frame_model", self.frame_model, "video", "video")
        if self.gnn_model is not None:
            _check_stack_part("gnn_model", self.gnn_model, "video", "video")
        _check_stack_part("dst", self.dst, "frame_logits", "dst")
        fuses = bool(getattr(self.dst, "config", {}).get("use_gnn_logits", False))
        if fuses and self.gnn_model is None:
            raise ValueError("the DST model fuses GNN logits (use_gnn_logits): the stack needs a gnn_model "
                             "('gnn_model' in stack.json, or a (frame_model, gnn_model, dst) tuple)")
        if not fuses and self.gnn_model is not None:
            raise ValueError("the stack has a gnn_model but its DST model does not read GNN logits (use_gnn_logits)")
        if self.gnn_model is not None and model_frame_hw(self.gnn_model) != model_frame_hw(self.frame_model):
            raise ValueError(f"the frame model takes {model_frame_hw(self.frame_model)} frames, the GNN model "
                             f"{model_frame_hw(self.gnn_model)}: they must run on the same frames")

    def frame_pass(self) -> torch.nn.Module:
        """The model(s) run over the video: the frame model, or :class:`FrameModels` with the GNN model."""
        if self.gnn_model is None:
            return self.frame_model
        return FrameModels(main=self.frame_model, gnn=self.gnn_model)


class FrameModels(torch.nn.Module):
    """Several frame models run on the same clip batches (one pass over the video).

    ``forward(batch)["logits"]``: the models' ``(B, 9, M, T)`` logits concatenated on the class axis,
    ``(B, 9 * len(models), M, T)``, in the order given. With a ``logits_dir``, the first model's logits are
    written in the folder, the others' in sub-folders named after them.
    """

    def __init__(self, **models: torch.nn.Module):
        super().__init__()
        if not models:
            raise ValueError("FrameModels needs at least one model")
        self.models = torch.nn.ModuleDict(models)

    def forward(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"logits": torch.cat([model(batch)["logits"] for model in self.models.values()], dim=1)}


def save_stack(directory: str | os.PathLike, frame_model, dst, gnn_model=None, frame_name: str = "taad",
               dst_name: str = "dst", gnn_name: str = "taad_gnn") -> Path:
    """Save the models of a stack (``save_pretrained``) in sub-folders of ``directory`` and write ``stack.json``."""
    directory = Path(directory)
    Stack(frame_model, dst, gnn_model).check()
    frame_model.save_pretrained(directory / frame_name)
    dst.save_pretrained(directory / dst_name)
    spec = {"format": STACK_FORMAT, "frame_model": frame_name, "dst": dst_name}
    if gnn_model is not None:
        gnn_model.save_pretrained(directory / gnn_name)
        spec["gnn_model"] = gnn_name
    with atomic_open(directory / STACK_FILE) as handle:
        json.dump(spec, handle, indent=1)
    return directory


def load_stack(directory: str | os.PathLike, map_location: str | torch.device = "cpu") -> Stack:
    """The :class:`Stack` described by ``directory/stack.json`` (see the module docstring)."""
    from fpspot.models import ModelLoadError, load_model

    path = Path(directory) / STACK_FILE
    try:
        obj = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelLoadError(f"{directory}: no {STACK_FILE}") from None
    except json.JSONDecodeError as err:
        raise ModelLoadError(f"{path}: not valid JSON ({err.msg})") from None
    if not isinstance(obj, dict) or obj.get("format") != STACK_FORMAT:
        raise ModelLoadError(f"{path}: expected {{'format': '{STACK_FORMAT}', 'frame_model': dir, 'dst': dir}}, "
                             f"got format {obj.get('format') if isinstance(obj, dict) else type(obj).__name__!r}")
    unknown = sorted(set(obj) - {"format", "frame_model", "dst", "gnn_model"})
    if unknown:
        raise ModelLoadError(f"{path}: unknown fields {unknown}")
    parts = {}
    for field in ("frame_model", "dst", "gnn_model"):
        value = obj.get(field)
        if value is None and field == "gnn_model":
            continue
        if not isinstance(value, str) or Path(value).is_absolute() or ".." in Path(value).parts:
            raise ModelLoadError(f"{path}: {field!r} must name a sub-folder of {directory}, got {value!r}")
        parts[field] = load_model(Path(directory) / value, map_location=map_location)
    stack = Stack(**parts)
    try:
        stack.check()
    except ValueError as err:
        raise ModelLoadError(f"{path}: {err}") from None
    return stack


def resolve_model(model: Any, map_location: str | torch.device = "cpu") -> torch.nn.Module | Stack:
    """A model or a :class:`Stack` from a folder (with or without ``stack.json``), a model, a tuple
    ``(frame_model, dst)`` / ``(frame_model, gnn_model, dst)`` or a :class:`Stack`."""
    from fpspot.models import load_model

    if isinstance(model, (torch.nn.Module, Stack)):
        return model
    if isinstance(model, tuple):
        if len(model) not in (2, 3):
            raise ValueError(f"a stack is (frame_model, dst) or (frame_model, gnn_model, dst); got {len(model)} "
                             "items")
        models = [load_model(m, map_location=map_location) for m in model]
        stack = Stack(models[0], models[-1], models[1] if len(models) == 3 else None)
        stack.check()
        return stack
    if isinstance(model, (str, os.PathLike)):
        if (Path(model) / STACK_FILE).is_file():
            return load_stack(model, map_location=map_location)
        return load_model(model, map_location=map_location)
    raise TypeError(f"model must be a folder, a model, or a (frame_model, dst) pair; got {type(model).__name__}")


def model_frame_hw(model: torch.nn.Module) -> tuple[int, int]:
    """Input frame size ``(H, W)`` of a model: ``model.config["frame_hw"]``, else 352x640."""
    hw = getattr(model, "config", {}).get("frame_hw") or MODEL_HW
    return int(hw[0]), int(hw[1])


def dst_events(stack: Stack, device: torch.device | str | None = None) -> ToEvents:
    """``to_events`` of a stack: the DST decoder over a half's frame-model logits (and GNN logits, which
    follow them on the class axis when the stack has a GNN model; see :class:`FrameModels`)."""
    from fpspot.infer.dst import dst_half_events

    stack.check()
    dst = stack.dst.to(device).eval() if device is not None else stack.dst.eval()
    fused = stack.gnn_model is not None

    def to_events(logits: np.ndarray, half: HalfSource) -> list:
        if half.rows is None:
            raise ValueError(f"{half.key}: the DST decoder needs the half's tactical rows (HalfSource.rows)")
        frame_logits, gnn_logits = (logits[:NUM_CLASSES], logits[NUM_CLASSES:]) if fused else (logits, None)
        return dst_half_events(dst, half.rows, frame_logits, half.jerseys, gnn_logits=gnn_logits, device=device)

    return to_events


def nms_events(logits: np.ndarray, half: HalfSource) -> list:
    """The baseline's events (spec §2.5): softmax, per-slot per-class NMS 25, jerseys from the slot table."""
    from fpspot.post.peaks import logits_to_events

    return logits_to_events(logits, half.jerseys)


# ---------------------------------------------------------------------------------------------- halves


def process_state():
    """Accelerate's ``PartialState``, created as the trainer's ``Accelerator`` would create it: CPU processes
    launched together (``launch/accelerate/cpu.yaml``) form a process group and share the halves out
    (:func:`~fpspot.train.trainer.cpu_process_group`; a ``PartialState()`` alone would leave every process
    alone with all the halves), and ``ACCELERATE_USE_CPU`` is honoured. Warns when the launcher started several
    processes but no process group was formed.
    """
    from accelerate import PartialState
    from accelerate.utils import parse_flag_from_env

    from fpspot.train.trainer import cpu_process_group, launched_processes

    state = PartialState(cpu=cpu_process_group() or parse_flag_from_env("ACCELERATE_USE_CPU"))
    launched = launched_processes()
    if state.num_processes == 1 and launched > 1:
        warnings.warn(f"launched as {launched} processes but Accelerate formed no process group: every process "
                      "runs every half", stacklevel=2)
    return state


def half_logits(model: torch.nn.Module, half: HalfSource, config: EngineConfig, device, progress=None) -> np.ndarray:
    """``(9, 26, last + 1)`` logits of one half (zeros before ``first``); ``(9 * k, 26, last + 1)`` for
    :class:`FrameModels` of k models."""
    num_classes = NUM_CLASSES * (len(model.models) if isinstance(model, FrameModels) else 1)
    buffer = FrameBuffer(half.frames(), first=half.first, name=half.key)
    logits = run_half(model, buffer, half.window_inputs, half.first, half.last, config, device, progress,
                      num_classes=num_classes)
    if buffer.end is not None and buffer.end <= half.last:
        raise ValueError(f"{half.key}: the video ends at frame {buffer.end - 1}, the tactical data at {half.last}")
    return logits


def predict_halves(
    model: torch.nn.Module,
    halves: Sequence[HalfLike],
    config: EngineConfig | None = None,
    device: torch.device | str | None = None,
    logits_dir: str | os.PathLike | None = None,
    to_events: ToEvents | None = None,
    show_progress: bool = True,
) -> PlayByPlay:
    """Run ``model`` on every half (shared out over processes) and return the gathered predictions.

    halves: :class:`HalfSource` or ``DatasetHalf`` (loaded one at a time, when its turn comes).
    ``to_events(logits, half) -> list[Prediction]`` turns a half's logits into events (default
    :func:`nms_events`, the baseline's). With ``logits_dir`` the logits of each half are also written there
    as ``{key}.safetensors``. The progress bar (main process) counts frames of this process's halves (frames
    per second) and names the half being run.
    """
    from accelerate.utils import gather_object
    from tqdm.auto import tqdm

    state = process_state()
    config = config or EngineConfig()
    device = torch.device(device) if device is not None else state.device
    model = model.to(device)
    to_events = to_events or nms_events
    results = []
    with state.split_between_processes(list(halves)) as mine:
        total = sum(max(h.last + 1 - h.first, 0) for h in mine)
        with tqdm(total=total, unit="frame", desc="infer", dynamic_ncols=True,
                  disable=not (show_progress and state.is_local_main_process)) as bar:
            for i, item in enumerate(mine):
                bar.set_postfix_str(f"half {i + 1}/{len(mine)} {item.key}")
                half = item.load()
                logits = half_logits(model, half, config, device, progress=bar.update)
                if logits_dir is not None:
                    _save_half_logits(Path(logits_dir), half.key, logits, model)
                results.append((half.key, to_events(logits, half)))
                del half, logits
    gathered = dict(gather_object(results)) if state.num_processes > 1 else dict(results)
    keys = [h.key for h in halves]
    return PlayByPlay("pred", keys, {k: list(gathered.get(k, [])) for k in keys})


def _save_half_logits(folder: Path, key: str, logits: np.ndarray, model: torch.nn.Module) -> None:
    """``folder/{key}.safetensors``; for :class:`FrameModels`, the second and later models' logits go to
    ``folder/{name}/{key}.safetensors``."""
    names = list(model.models) if isinstance(model, FrameModels) else [None]
    for i, name in enumerate(names):
        part = logits[i * NUM_CLASSES:(i + 1) * NUM_CLASSES]
        save_logits((folder if i == 0 else folder / name) / f"{key}.safetensors", part, key)


def write_predictions(pred: PlayByPlay, output: str | os.PathLike) -> Path:
    """Write predictions as challenge-format JSON with every key (temporary file + rename)."""
    return write_playbyplay(output, pred)


# ------------------------------------------------------------------------------------------------ API


def infer(
    model: Any,
    data: Any,
    *,
    split: str | Sequence[str] | None = None,
    keys: Sequence[str] | None = None,
    batch_size: int | None = None,
    device: torch.device | str | None = None,
    output: str | os.PathLike | None = None,
    scheme: str = "overlap",
    logits_dir: str | os.PathLike | None = None,
    logits_h5: str | os.PathLike | None = None,
    config: EngineConfig | None = None,
    to_events: ToEvents | None = None,
    show_progress: bool = True,
) -> PlayByPlay:
    """Run a trained model over whole halves and return its predictions (``fpspot.infer(model, data, ...)``).

    model: a folder written by ``save_pretrained``, a model, a stack folder (``stack.json``) or a pair
        ``(frame_model, dst_model)`` of folders or models (see the module docstring). A model must read video
        (``input_kind == "video"``: TAAD, TAAD+GNN); a DST alone or an event DST raises
        :class:`UnsupportedModelError` (saying how to run it instead) before any data is read.
    data: a FOOTPASS-format dataset folder (real or synthetic), or a list of halves
        (:class:`HalfSource` / :class:`~fpspot.infer.sources.DatasetHalf`).
    split: split(s) of the dataset to run (default: every split with a tactical file); keys: only these halves.
    batch_size: windows per model call (default 8 for ``scheme="overlap"``, 1 for ``"long"``: ~400 frames).
    device: default: the process's device (Accelerate's, see :func:`process_state`).
    output: write the predictions there as challenge-format JSON with every key (atomic; nothing is
        written when a half fails).
    scheme: ``"overlap"`` (the baseline's 50-frame windows every 25 frames, averaged) or ``"long"``
        (300-frame windows keeping their central 250 frames: ~1.2 backbone evaluations per frame instead of 2).
    logits_dir: also keep each half's ``(9, 26, T)`` logits as ``{key}.safetensors`` there (a stack's GNN
        model's in ``gnn/{key}.safetensors``);
    logits_h5: and gather them into one HDF5 file (needs ``logits_dir``).
    config: an :class:`EngineConfig` (overrides ``scheme`` and ``batch_size``).
    to_events: ``(logits, half) -> list[Prediction]`` instead of the baseline's NMS (frame models only).
    Returns a :class:`~fpspot.data.footpass.PlayByPlay` (kind ``"pred"``), the same on every process.
    """
    from fpspot.infer.sources import open_halves

    if logits_h5 is not None and logits_dir is None:
        raise ValueError("logits_h5 gathers the per-half logits files: pass logits_dir too")
    state = process_state()
    device = torch.device(device) if device is not None else state.device
    resolved = resolve_model(model)
    if not isinstance(resolved, Stack):
        check_video_model(resolved, model)  # before any data is read
    frame_model = resolved.frame_pass() if isinstance(resolved, Stack) else resolved
    if isinstance(resolved, Stack):
        if to_events is not None:
            raise ValueError("a stack turns logits into events with its DST model; to_events is for frame models")
        to_events = dst_events(resolved, device)
    if config is None:
        if scheme not in DEFAULT_BATCH_SIZE:
            raise ValueError(f"unknown window scheme {scheme!r} (use 'overlap' or 'long')")
        config = EngineConfig(scheme=scheme, batch_size=batch_size or DEFAULT_BATCH_SIZE[scheme])
    frame_hw = model_frame_hw(resolved.frame_model if isinstance(resolved, Stack) else frame_model)
    halves = open_halves(data, split=split, keys=keys, frame_hw=frame_hw)
    pred = predict_halves(frame_model, halves, config, device, logits_dir, to_events, show_progress)
    if output is not None or logits_h5 is not None:

        @state.on_main_process
        def write_outputs() -> None:  # every process holds the same predictions: one writes them
            if logits_h5 is not None:
                export_logits_h5(logits_dir, pred.keys, logits_h5)
            if output is not None:
                write_predictions(pred, output)

        write_outputs()
        state.wait_for_everyone()  # the files exist on every process when infer returns
    return pred


__all__ = [
    "DEFAULT_BATCH_SIZE", "FrameModels", "HalfLike", "HalfSource", "STACK_FILE", "STACK_FORMAT", "Stack", "ToEvents",
    "UnsupportedModelError", "check_video_model", "export_logits_h5", "half_logits", "infer", "input_kind",
    "load_logits", "load_stack", "model_frame_hw", "nms_events", "process_state", "predict_halves", "resolve_model",
    "save_logits", "save_stack", "video_model_names", "write_predictions",
]
