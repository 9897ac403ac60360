"""Restartable stages of a run: each stage skips itself when its outputs are complete, reruns when its inputs
changed, and restarts when it was interrupted.

A stage has a name, a *fingerprint* (a hash of the config it reads and of the fingerprints of the stages it
reads from, :func:`fpspot.pipeline.config.fingerprint`), the output paths it owns inside the run directory,
and a function. Its record ``<run>/stages/<name>.json`` is written (atomically) when it starts
(``"status": "running"``) and again as the very last thing when it ends (``"done"``, with its wall time):

* record ``done`` with the same fingerprint -> the stage is skipped (its outputs are complete: every output is
  written before the record);
* record ``running`` (the run was killed) with the same fingerprint -> the stage runs again over what it left:
  its writers write temporary files and rename them, so a half-written file never exists under its final
  name, and a training stage resumes from its last checkpoint;
* a different fingerprint (a setting changed) -> the stage's outputs are deleted and it runs afresh; the
  stages after it change fingerprint too and rerun.

Processes (``accelerate launch``): ``main_only`` stages (writing data, shards, post-processing) run on the
main process first, inside Accelerate's ``main_process_first``; the other processes then find the record
``done`` and skip. The other stages (training, inference) run on every process; the main process writes the
records, and every process waits for the others at the end of each stage.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fpspot.utils.atomic import atomic_open

RECORD_FORMAT = "fpspot-stage/1"
STAGES_DIR = "stages"


@dataclass
class StageRecord:
    """What ``<run>/stages/<name>.json`` holds."""

    name: str
    fingerprint: str
    status: str  # "running" | "done"
    started: float = 0.0
    seconds: float | None = None
    attempts: int = 1
    info: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)  # what the fingerprint hashes, to say what changed

    @classmethod
    def load(cls, path: Path) -> "StageRecord | None":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}: not valid JSON ({err.msg}); delete it to rerun the stage") from None
        if obj.pop("format", None) != RECORD_FORMAT:
            raise ValueError(f"{path}: not a stage record (format {RECORD_FORMAT!r})")
        return cls(**obj)

    def save(self, path: Path) -> None:
        with atomic_open(path) as handle:
            json.dump({"format": RECORD_FORMAT, **asdict(self)}, handle, indent=1)


@dataclass
class Stage:
    """One step of a pipeline. ``run()`` returns a JSON-able dict kept in the record (``info``) or ``None``.

    outputs: paths inside the run directory that the stage owns (deleted when its fingerprint changes).
    main_only: run on the main process only (the others wait, then skip).
    settings: the JSON-able settings the fingerprint was made from, kept in the record so that a rerun can say
    which of them changed (:func:`changed_settings`).
    """

    name: str
    fingerprint: str
    run: Callable[[], dict | None]
    outputs: Sequence[Path] = ()
    main_only: bool = False
    settings: dict = field(default_factory=dict)


def _flat(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict) and obj:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            out.update(_flat(value, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: obj}


def changed_settings(old: dict, new: dict, shown: int = 4) -> str:
    """``"key: old -> new; ..."`` for the (dotted) settings that differ between two records' settings, at most
    ``shown`` of them; ``""`` when the old record has none (written before settings were kept)."""
    if not old:
        return ""
    before, after = _flat(old), _flat(new)
    keys = [k for k in sorted(set(before) | set(after)) if before.get(k, "unset") != after.get(k, "unset")]
    text = "; ".join(f"{k}: {before.get(k, 'unset')!r} -> {after.get(k, 'unset')!r}" for k in keys[:shown])
    return text + (f"; and {len(keys) - shown} more" if len(keys) > shown else "")


def pipeline_state():
    """Accelerate's ``PartialState`` for a pipeline, created as the trainer's Accelerator would create it: CPU
    processes launched together form a gloo process group (``cpu=True``; ``accelerate launch`` with a
    ``MULTI_GPU`` + ``use_cpu: true`` config does not set ``ACCELERATE_USE_CPU``, so a bare ``PartialState()``
    would leave every process alone). DeepSpeed and CUDA launches are left to Accelerate."""
    from accelerate import PartialState

    from fpspot.train.trainer import cpu_process_group

    return PartialState(cpu=cpu_process_group())


class StageRunner:
    """Runs :class:`Stage` objects in a run directory (see the module docstring).

    state: Accelerate's ``PartialState`` (default: :func:`pipeline_state`); log: a print function (default: the
    main process prints).
    """

    def __init__(self, run_dir: str | Path, state=None, log: Callable[[str], None] | None = None):
        if state is None:
            state = pipeline_state()
        self.run_dir = Path(run_dir)
        self.state = state
        self.log = log or state.print
        self.times: dict[str, float] = {}
        self.skipped: list[str] = []

    def record_path(self, name: str) -> Path:
        return self.run_dir / STAGES_DIR / f"{name}.json"

    def record(self, name: str) -> StageRecord | None:
        return StageRecord.load(self.record_path(name))

    def is_done(self, stage: Stage) -> bool:
        record = self.record(stage.name)
        return record is not None and record.status == "done" and record.fingerprint == stage.fingerprint

    def run(self, stage: Stage) -> dict | None:
        """Run (or skip) ``stage``; returns its ``info`` (the same on every process)."""
        state = self.state
        state.wait_for_everyone()  # the previous stage is over everywhere before its records are read
        record = self.record(stage.name)
        state.wait_for_everyone()  # every process read the record before the main process writes it
        if record is not None and record.status == "done" and record.fingerprint == stage.fingerprint:
            self.skipped.append(stage.name)
            self.times[stage.name] = float(record.seconds or 0.0)
            self.log(f"[stage {stage.name}] done before ({record.seconds or 0:.0f} s): skipped")
            return record.info
        if not stage.main_only:
            return self._execute(stage, record)
        with state.main_process_first():
            if state.is_main_process:
                self._execute(stage, record)
        done = self.record(stage.name)
        if done is None or done.status != "done":
            raise RuntimeError(f"stage {stage.name!r} did not complete on the main process")
        self.times[stage.name] = float(done.seconds or 0.0)
        return done.info

    def _execute(self, stage: Stage, record: StageRecord | None) -> dict:
        state, path = self.state, self.record_path(stage.name)
        attempts = 1
        if record is not None and record.fingerprint != stage.fingerprint:
            changed = changed_settings(record.settings, stage.settings)
            self.log(f"[stage {stage.name}] settings changed since the last run{f' ({changed})' if changed else ''}: "
                     "deleting its outputs and rerunning")
            if state.is_main_process:
                self._clear(stage)
            if not stage.main_only:
                state.wait_for_everyone()  # the old outputs are gone before any process starts
        elif record is not None:
            attempts = record.attempts + 1
            self.log(f"[stage {stage.name}] interrupted before (attempt {record.attempts}): restarting")
        started = time.time()
        if state.is_main_process:
            StageRecord(stage.name, stage.fingerprint, "running", started, attempts=attempts,
                        settings=stage.settings).save(path)
        self.log(f"[stage {stage.name}] running")
        began = time.perf_counter()
        info = stage.run() or {}
        seconds = time.perf_counter() - began
        self.times[stage.name] = seconds
        if not stage.main_only:
            state.wait_for_everyone()  # every process finished its share before the record says done
        if state.is_main_process:
            StageRecord(stage.name, stage.fingerprint, "done", started, seconds, attempts, info,
                        stage.settings).save(path)
        self.log(f"[stage {stage.name}] done in {seconds:.1f} s")
        return info

    def _clear(self, stage: Stage) -> None:
        root = self.run_dir.resolve()
        for output in stage.outputs:
            output = Path(output)
            resolved = output.resolve()
            if root not in resolved.parents:
                raise ValueError(f"stage {stage.name!r}: refusing to delete {output}, which is outside the run "
                                 f"directory {self.run_dir}")
            if resolved.is_dir():
                shutil.rmtree(resolved)
            elif resolved.exists():
                resolved.unlink()
        self.record_path(stage.name).unlink(missing_ok=True)


def stage_summary(runner: StageRunner, names: Sequence[str]) -> list[dict[str, Any]]:
    """``[{stage, seconds, skipped}]`` of the stages ``names`` in this run."""
    return [{"stage": n, "seconds": round(runner.times.get(n, 0.0), 1), "skipped": n in runner.skipped}
            for n in names]


__all__ = ["RECORD_FORMAT", "STAGES_DIR", "Stage", "StageRecord", "StageRunner", "changed_settings", "pipeline_state",
           "stage_summary"]
