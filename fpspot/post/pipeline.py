"""Post-processing pipelines: a list of named steps over named streams, stored as YAML.

A *stream* is either a prediction file (:class:`~fpspot.data.footpass.PlayByPlay`) or per-half logits
(``{key: HalfLogits}``). The pipeline's ``inputs`` name the streams it needs (``taad``, ``dst`` for the
released baselines); each step reads streams by name and writes its result under ``output`` (default: its
input's name); the stream named by the pipeline's ``output`` is the result. Example::

    format: fpspot-post/1
    inputs: [dst, taad]
    output: fused
    steps:
      - {step: shift, input: dst, frames: -1}
      - {step: reassign_jersey, input: dst, support: taad, window: 12, min_support_score: 0.8}
      - {step: fuse, inputs: [dst, taad], weights: [1.0, 0.5], window: 12, output: fused}
      - {step: gate, input: fused, thresholds: {drive: 0.3, pass: 0.3, ...}}

Steps live in :data:`STEPS` (name -> function ``(streams, **params) -> {name: stream}``);
:func:`register_step` adds one. ``event_dst`` runs the learned event-level DST (:mod:`fpspot.post.event_dst`).
"""

from __future__ import annotations

import difflib
import inspect
import numbers
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fpspot.data.footpass import PlayByPlay
from fpspot.post.events import HalfLogits
from fpspot.utils.atomic import atomic_open

FORMAT = "fpspot-post/1"

Stream = PlayByPlay | dict  # a prediction file, or {key: HalfLogits}
StepFn = Callable[..., dict]

#: name -> step function ``(streams: dict[str, Stream], **params) -> dict[str, Stream]``.
STEPS: dict[str, StepFn] = {}


class PipelineError(ValueError):
    """A pipeline config or its inputs are wrong; the message names the step and the problem."""


def register_step(name: str, fn: StepFn | None = None, replace: bool = False):
    """Register ``fn`` as step ``name`` (usable as a decorator). A reserved placeholder may be replaced."""
    def add(fn: StepFn) -> StepFn:
        current = STEPS.get(name)
        if current is not None and not (replace or getattr(current, "reserved", False)):
            raise ValueError(f"step {name!r} is already registered")
        STEPS[name] = fn
        return fn

    return add(fn) if fn is not None else add


def _whole(value, name: str) -> int:
    """A step parameter that counts frames or models: a whole number (``2.0`` is accepted, ``2.7`` is not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, got {value!r}")
    return int(value)


def _events_stream(streams: Mapping[str, Stream], name: str, step: str) -> PlayByPlay:
    if name not in streams:
        raise PipelineError(f"step {step!r}: no stream named {name!r} (have: {', '.join(sorted(streams))})")
    stream = streams[name]
    if isinstance(stream, dict) and stream and all(isinstance(v, HalfLogits) for v in stream.values()):
        raise PipelineError(f"step {step!r}: stream {name!r} holds logits, this step needs events")
    if not isinstance(stream, PlayByPlay):
        raise PipelineError(f"step {step!r}: stream {name!r} is a {type(stream).__name__}, this step needs events "
                            "(a PlayByPlay or a prediction file's path)")
    return stream


def _logits_stream(streams: Mapping[str, Stream], name: str, step: str) -> dict[str, HalfLogits]:
    if name not in streams:
        raise PipelineError(f"step {step!r}: no stream named {name!r} (have: {', '.join(sorted(streams))})")
    stream = streams[name]
    if isinstance(stream, PlayByPlay) or not all(isinstance(v, HalfLogits) for v in stream.values()):
        raise PipelineError(f"step {step!r}: stream {name!r} holds events, this step needs logits")
    return stream


def _union_keys(files) -> list[str]:
    keys: dict[str, None] = {}
    for f in files:
        for k in (f.keys if isinstance(f, PlayByPlay) else f):
            keys.setdefault(k, None)
    return list(keys)


# ------------------------------------------------------------------------------------------------ steps


@register_step("shift")
def _step_shift(streams, input: str, frames: int, output: str | None = None) -> dict:
    """Add a constant number of frames to every event."""
    from fpspot.post.refine import shift

    return {output or input: shift(_events_stream(streams, input, "shift"), _whole(frames, "frames"))}


@register_step("gate")
def _step_gate(streams, input: str, thresholds, output: str | None = None) -> dict:
    """Drop events under their class's threshold (a number or {class: number})."""
    from fpspot.post.gating import gate

    return {output or input: gate(_events_stream(streams, input, "gate"), thresholds)}


@register_step("fuse")
def _step_fuse(streams, inputs: list[str], output: str, weights: list[float] | None = None, window: int = 12,
               min_models: int = 1, frame: str = "weighted", require: list[str] | None = None) -> dict:
    """Event-level weighted fusion of several models (see :func:`fpspot.post.ensemble.fuse_events`)."""
    from fpspot.post.ensemble import fuse_events

    files = [_events_stream(streams, name, "fuse") for name in inputs]
    unknown = [n for n in (require or []) if n not in inputs]
    if unknown:
        raise PipelineError(f"step 'fuse': required model(s) {', '.join(unknown)} not among its inputs {inputs}")
    required = [inputs.index(n) for n in (require or [])]
    keys = _union_keys(files)
    window, min_models = _whole(window, "window"), _whole(min_models, "min_models")
    events = {k: fuse_events([f.events.get(k, []) for f in files], weights, window, min_models, frame, required)
              for k in keys}
    return {output: PlayByPlay("pred", keys, events)}


@register_step("reassign_jersey")
def _step_reassign_jersey(streams, input: str, support: str, window: int = 12, min_support_score: float = 0.8,
                          max_score: float = 1.0, output: str | None = None) -> dict:
    """Take another model's shirt for the same team, class and time (see :mod:`fpspot.post.jersey`)."""
    from fpspot.post.jersey import reassign_by_support

    return {output or input: reassign_by_support(_events_stream(streams, input, "reassign_jersey"),
                                                 _events_stream(streams, support, "reassign_jersey"),
                                                 _whole(window, "window"), float(min_support_score),
                                                 float(max_score))}


@register_step("average_logits")
def _step_average_logits(streams, inputs: list[str], output: str, weights: list[float] | None = None) -> dict:
    """Logit-level ensemble: weighted mean of the inputs' logits, half by half."""
    from fpspot.post.ensemble import average_logits

    sets = [_logits_stream(streams, name, "average_logits") for name in inputs]
    keys = [k for k in _union_keys(sets) if all(k in s for s in sets)]
    out = {}
    for k in keys:
        first = sets[0][k]
        out[k] = HalfLogits(average_logits([s[k].logits for s in sets], weights), first.jerseys, first.start_frame)
    return {output: out}


@register_step("peaks")
def _step_peaks(streams, input: str, output: str, method: str = "nms", window: int = 25, **options) -> dict:
    """Logits to events (softmax + NMS as the baseline, or soft-NMS, or smoothed peaks)."""
    from fpspot.post.peaks import logits_to_events

    halves = _logits_stream(streams, input, "peaks")
    events = {k: logits_to_events(h.logits, h.jerseys, h.start_frame, method, _whole(window, "window"), **options)
              for k, h in halves.items()}
    return {output: PlayByPlay("pred", list(halves), events)}


@register_step("refine_logits")
def _step_refine_logits(streams, input: str, logits: str, radius: int = 3, offset: float = 0.0,
                        output: str | None = None) -> dict:
    """Move events to the peak of their class probability within +-radius (parabolic sub-frame fit)."""
    from fpspot.post.refine import refine_with_logits

    return {output or input: refine_with_logits(_events_stream(streams, input, "refine_logits"),
                                                _logits_stream(streams, logits, "refine_logits"),
                                                _whole(radius, "radius"), float(offset))}


@register_step("reassign_jersey_logits")
def _step_reassign_jersey_logits(streams, input: str, logits: str, radius: int = 3, margin: float = 0.3,
                                 output: str | None = None) -> dict:
    """Move events to the team-mate whose slot has a clearly higher probability of the class."""
    from fpspot.post.jersey import reassign_by_logits

    return {output or input: reassign_by_logits(_events_stream(streams, input, "reassign_jersey_logits"),
                                                _logits_stream(streams, logits, "reassign_jersey_logits"),
                                                _whole(radius, "radius"), float(margin))}


@register_step("event_dst")
def _step_event_dst(streams, input: str, model: str, output: str | None = None, strength: float | str = "auto",
                    min_score: float = 0.05, nms_window: int = 12, thresholds=None, mode: str = "replace",
                    batch_size: int = 64, class_rates=None, insert: bool = True) -> dict:
    """Learned event-level DST (a model folder, see :mod:`fpspot.post.event_dst`; torch is imported on use)."""
    from fpspot.post.event_dst import EventDSTError, event_dst_step

    try:
        result = event_dst_step(_events_stream(streams, input, "event_dst"), model, strength=strength,
                                min_score=min_score, nms_window=nms_window, thresholds=thresholds, mode=mode,
                                batch_size=batch_size, class_rates=class_rates, insert=insert)
    except EventDSTError as err:
        raise PipelineError(f"step 'event_dst': {err}") from None
    return {output or input: result}


# --------------------------------------------------------------------------------------------- pipeline


_STREAM_FIELDS = ("input", "inputs", "output", "support", "logits", "require")  # step fields naming streams
_READ_FIELDS = ("input", "inputs", "support", "logits")  # the streams a step reads
_TOP_FIELDS = ("format", "inputs", "output", "steps", "info")  # the fields of a pipeline file


def _read_if_path(stream):
    """A prediction file's path read as a PlayByPlay; anything else as it is."""
    if isinstance(stream, (str, os.PathLike)):
        from fpspot.data.footpass import read_playbyplay

        return read_playbyplay(stream, "pred")
    return stream


@dataclass
class Pipeline:
    """Named inputs, a list of steps (each ``{"step": name, **params}``) and the output stream's name.

    ``info`` holds free-form metadata (how it was fitted, cross-validation scores); it is saved, never used.
    """

    inputs: list[str]
    steps: list[dict]
    output: str
    info: dict = field(default_factory=dict)
    source: str = field(default="pipeline", compare=False, repr=False)  # named in errors (e.g. the YAML file)

    def __post_init__(self) -> None:
        self.validate(self.source)

    def validate(self, source: str = "pipeline") -> None:
        """Check the config before anything runs: known step names, parameters each step function accepts,
        streams read only after a pipeline input or an earlier step provides them (a step writes under its
        ``output``, default its ``input``), and an ``output`` that exists. Raises :class:`PipelineError` naming
        ``source``, the step and the problem."""
        if not isinstance(self.inputs, list) or not self.inputs or not all(isinstance(n, str) for n in self.inputs):
            raise PipelineError(f"{source}: 'inputs' must be a non-empty list of names, got {self.inputs!r}")
        if not isinstance(self.output, str):
            raise PipelineError(f"{source}: 'output' must be a stream name, got {self.output!r}")
        available = list(self.inputs)
        for i, step in enumerate(self.steps):
            if not isinstance(step, dict) or "step" not in step:
                raise PipelineError(f"{source}: steps[{i}] must be a mapping with a 'step' name, got {step!r}")
            fn = STEPS.get(step["step"])
            if fn is None:
                raise PipelineError(f"{source}: steps[{i}]: unknown step {step['step']!r}; known steps: "
                                    f"{', '.join(sorted(STEPS))}")
            where = f"{source}: steps[{i}] ({step['step']})"
            params = {k: v for k, v in step.items() if k != "step"}
            try:
                inspect.signature(fn).bind({}, **params)
            except TypeError as err:
                raise PipelineError(f"{where}: bad parameters {sorted(params)}: {err}") from None
            for key in _READ_FIELDS:
                names = params.get(key)
                for name in (names if isinstance(names, list) else [] if names is None else [names]):
                    if name not in available:
                        raise PipelineError(f"{where}: {key} {name!r} is neither a pipeline input nor an earlier "
                                            f"step's output (streams so far: {', '.join(available)})")
            written = params.get("output") or params.get("input")
            if isinstance(written, str) and written not in available:
                available.append(written)
        if self.output not in available:
            raise PipelineError(f"{source}: output {self.output!r} is neither a pipeline input nor a step's output "
                                f"(streams: {', '.join(available)})")

    def apply(self, streams: Mapping[str, Stream]) -> PlayByPlay:
        """Run the steps on ``streams`` (inputs by name: a PlayByPlay, a prediction file's path, or
        ``{key: HalfLogits}``; not modified) and return the output stream.

        The output keeps every half key of the event inputs (empty halves included).
        """
        missing = [n for n in self.inputs if n not in streams]
        if missing:
            raise PipelineError(f"{self.source} needs input(s) {', '.join(missing)}; "
                                f"got {', '.join(sorted(streams)) or 'none'}")
        self.validate(self.source)  # the steps may have been edited since the pipeline was built
        given = {name: _read_if_path(stream) for name, stream in streams.items()}
        state: dict[str, Stream] = dict(given)
        for i, step in enumerate(self.steps):
            try:
                state.update(STEPS[step["step"]](state, **{k: v for k, v in step.items() if k != "step"}))
            except PipelineError:
                raise
            except (ValueError, TypeError) as err:  # a parameter's value: name the config and the step
                raise PipelineError(f"{self.source}: steps[{i}] ({step['step']}): {err}") from err
        result = state.get(self.output)
        if not isinstance(result, PlayByPlay):
            raise PipelineError(f"{self.source}: output {self.output!r} is not an event stream")
        keys = _union_keys([result] + [s for n, s in given.items() if n in self.inputs])
        return PlayByPlay("pred", keys, {k: list(result.events.get(k, [])) for k in keys})

    def then(self, other: "Pipeline") -> "Pipeline":
        """This pipeline followed by ``other``, a one-input pipeline run on this one's output.

        ``other``'s input stream is renamed to this pipeline's output and its other streams get the prefix
        ``then.`` (so they cannot clash with this pipeline's); ``info`` is this pipeline's, with ``then``
        recording the appended steps' own ``info``."""
        if len(other.inputs) != 1:
            raise PipelineError(f"then: the appended pipeline must have one input, it has {other.inputs}")

        def rename(name: str) -> str:
            return self.output if name == other.inputs[0] else f"then.{name}"

        steps = []
        for step in other.steps:
            step = dict(step)
            for key in _STREAM_FIELDS:
                if key in step:
                    step[key] = [rename(n) for n in step[key]] if isinstance(step[key], list) else rename(step[key])
            steps.append(step)
        info = {**self.info, "then": other.info} if (self.info or other.info) else {}
        return Pipeline(list(self.inputs), [dict(s) for s in self.steps] + steps, rename(other.output), info,
                        self.source)

    def to_dict(self) -> dict:
        return {"format": FORMAT, "inputs": list(self.inputs), "output": self.output,
                "steps": [dict(s) for s in self.steps], **({"info": self.info} if self.info else {})}

    def save(self, path: str | os.PathLike, header: str | None = None) -> Path:
        """Write the pipeline as YAML (atomically), after ``header`` as comment lines if given."""
        with atomic_open(path) as handle:
            if header:
                handle.write("".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()))
            yaml.safe_dump(_plain(self.to_dict()), handle, sort_keys=False, default_flow_style=None, width=110)
        return Path(path)

    @classmethod
    def from_dict(cls, obj: Mapping, source: str = "pipeline") -> "Pipeline":
        if not isinstance(obj, Mapping):
            raise PipelineError(f"{source}: a pipeline must be a mapping, got {type(obj).__name__}")
        if obj.get("format", FORMAT) != FORMAT:
            raise PipelineError(f"{source}: format {obj.get('format')!r} is not {FORMAT!r}")
        for name in ("inputs", "steps", "output"):
            if name not in obj:
                raise PipelineError(f"{source}: missing field {name!r}")
        unknown = [str(k) for k in obj if k not in _TOP_FIELDS]
        if unknown:
            hints = [f"{k!r} (did you mean {close[0]!r}?)" if (close := difflib.get_close_matches(k, _TOP_FIELDS, 1))
                     else repr(k) for k in unknown]
            raise PipelineError(f"{source}: unknown field(s) {', '.join(hints)}; a pipeline has "
                                f"{', '.join(_TOP_FIELDS)}")
        if not isinstance(obj["steps"], list):
            raise PipelineError(f"{source}: 'steps' must be a list")
        if obj.get("info") is not None and not isinstance(obj["info"], Mapping):
            raise PipelineError(f"{source}: 'info' must be a mapping")
        return cls(obj["inputs"], list(obj["steps"]), obj["output"], dict(obj.get("info") or {}), source)

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Pipeline":
        """Read a YAML pipeline; errors name the file."""
        try:
            obj = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise PipelineError(f"file {str(path)!r}: no such file") from None
        except yaml.YAMLError as err:
            raise PipelineError(f"file {str(path)!r}: not valid YAML ({err})") from None
        return cls.from_dict(obj, f"file {str(path)!r}")


def _plain(obj):
    """numpy scalars and tuples as plain YAML types."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return obj.item()
    return obj
