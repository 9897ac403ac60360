"""The recipes' pipeline: restartable stages (skip, restart after a crash, rerun after a settings change, two
processes), the class-prior baselines on synthetic halves, and the whole pipeline end to end at the smallest
scale (slow): every artefact of the run directory, metrics equal to ``fpspot.evaluate`` of the predictions,
and a second run that skips every stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fpspot.pipeline.config import PipelineConfig, fingerprint
from fpspot.pipeline.stages import Stage, StageRecord, StageRunner
from fpspot.train.config import ConfigError, load_config
from fpspot.utils.atomic import atomic_open

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def _runner(tmp_path: Path) -> StageRunner:
    from accelerate import PartialState

    return StageRunner(tmp_path / "run", PartialState(cpu=True), log=lambda message: None)


class Counter:
    """A stage body writing ``n`` numbered files ``part_{i}.txt`` (1000 characters each), each atomically.

    Like a training stage resuming from its last checkpoint, it keeps the parts an earlier attempt finished and
    writes only the missing ones. ``fail_at``: the first call is killed halfway through writing that part (500
    characters written, then ``KeyboardInterrupt``). Each call records what it found in ``out`` when it started
    (``found``: name -> content) and which parts it wrote (``wrote``).
    """

    def __init__(self, out: Path, n: int = 3, fail_at: int | None = None, tag: str = "a"):
        self.out, self.n, self.fail_at, self.tag, self.calls = out, n, fail_at, tag, 0
        self.found: list[dict[str, str]] = []
        self.wrote: list[list[str]] = []

    def text(self, i: int) -> str:
        """The content of part ``i``."""
        return f"{self.tag}{i}" * 500

    def __call__(self) -> dict:
        self.calls += 1
        self.found.append({p.name: p.read_text() for p in sorted(self.out.iterdir())} if self.out.is_dir() else {})
        self.wrote.append([])
        for i in range(self.n):
            path = self.out / f"part_{i}.txt"
            if path.exists():
                continue
            with atomic_open(path) as handle:
                text = self.text(i)
                handle.write(text[:500])
                if i == self.fail_at:
                    self.fail_at = None  # fails once, like a killed process
                    raise KeyboardInterrupt("killed")
                handle.write(text[500:])
            self.wrote[-1].append(path.name)
        return {"parts": self.n}


# ------------------------------------------------------------------------------------------------ stages


def test_a_done_stage_is_skipped(tmp_path):
    runner = _runner(tmp_path)
    body = Counter(runner.run_dir / "out")
    stage = Stage("write", "fp1", body, outputs=[runner.run_dir / "out"])
    assert runner.run(stage) == {"parts": 3}
    again = _runner(tmp_path)
    assert again.run(stage) == {"parts": 3}
    assert body.calls == 1 and again.skipped == ["write"]
    record = StageRecord.load(again.record_path("write"))
    assert record.status == "done" and record.fingerprint == "fp1" and record.seconds >= 0


def test_a_killed_stage_restarts_and_completes(tmp_path: Path) -> None:
    """A stage killed halfway through writing its third file leaves the two finished files whole, no partial or
    temporary file, and a "running" record. Restarted, it keeps what the first attempt finished (the two files
    are there, unchanged, when the second attempt starts, which then writes only the missing parts), is recorded
    done after 2 attempts, and is skipped afterwards."""
    runner = _runner(tmp_path)
    out = runner.run_dir / "out"
    body = Counter(out, n=4, fail_at=2)
    stage = Stage("write", "fp", body, outputs=[out])
    with pytest.raises(KeyboardInterrupt):
        runner.run(stage)
    finished = {"part_0.txt": body.text(0), "part_1.txt": body.text(1)}
    assert {p.name: p.read_text() for p in out.iterdir()} == finished  # hidden temporary files included
    assert StageRecord.load(runner.record_path("write")).status == "running"
    restarted = _runner(tmp_path)
    assert restarted.run(stage) == {"parts": 4}
    assert body.found[1] == finished, "the restart deleted or changed what the interrupted attempt had finished"
    assert body.wrote == [["part_0.txt", "part_1.txt"], ["part_2.txt", "part_3.txt"]]
    record = StageRecord.load(restarted.record_path("write"))
    assert record.status == "done" and record.attempts == 2 and body.calls == 2
    assert {p.name: p.read_text() for p in out.iterdir()} == {f"part_{i}.txt": body.text(i) for i in range(4)}
    assert _runner(tmp_path).run(stage) == {"parts": 4} and body.calls == 2  # and now it is skipped


@pytest.mark.parametrize("first", ["done", "killed"])
def test_a_changed_setting_deletes_the_outputs_and_reruns(tmp_path: Path, first: str) -> None:
    """When the fingerprint changed since a finished or an interrupted run, the stage's outputs are deleted
    before it runs (it starts from an empty folder, so keeps nothing of the old settings), and it is recorded
    as a first attempt with the new fingerprint."""
    runner = _runner(tmp_path)
    out = runner.run_dir / "out"
    old = Stage("write", fingerprint({"n": 3}), Counter(out, n=3, fail_at=2 if first == "killed" else None),
                outputs=[out])
    if first == "killed":
        with pytest.raises(KeyboardInterrupt):
            runner.run(old)
    else:
        runner.run(old)
    left = ["part_0.txt", "part_1.txt"] + ([] if first == "killed" else ["part_2.txt"])
    assert sorted(p.name for p in out.iterdir()) == left
    body = Counter(out, n=2, tag="b")
    runner = _runner(tmp_path)
    runner.run(Stage("write", fingerprint({"n": 2}), body, outputs=[out]))
    assert body.calls == 1 and runner.skipped == []
    assert body.found == [{}], "the old outputs were still there when the changed stage started"
    assert {p.name: p.read_text() for p in out.iterdir()} == {"part_0.txt": body.text(0), "part_1.txt": body.text(1)}
    record = StageRecord.load(runner.record_path("write"))
    assert record.status == "done" and record.fingerprint == fingerprint({"n": 2}) and record.attempts == 1


def test_a_changed_stage_says_which_setting_changed(tmp_path: Path) -> None:
    """The record keeps the settings a stage was fingerprinted from; a rerun with other settings names the ones
    that changed (nested keys dotted, upstream stages under ``after``) before deleting the outputs."""
    from accelerate import PartialState

    from fpspot.pipeline.stages import changed_settings

    logged: list[str] = []
    out = tmp_path / "run" / "out"
    first = {"after": {"shards": "0a1b"}, "train": {"epochs": 3, "lr": 0.1}, "seed": 0}
    second = {"after": {"shards": "0a1b"}, "train": {"epochs": 5, "lr": 0.1}, "seed": 0}
    for settings in (first, second):
        runner = StageRunner(tmp_path / "run", PartialState(cpu=True), log=logged.append)
        runner.run(Stage("write", fingerprint(settings), Counter(out, n=1), outputs=[out], settings=settings))
    assert StageRecord.load(runner.record_path("write")).settings == second
    assert "[stage write] settings changed since the last run (train.epochs: 3 -> 5): deleting its outputs" \
        in "\n".join(logged)
    assert changed_settings(first, {**second, "after": {"shards": "ffff"}, "new": 1}) == \
        "after.shards: '0a1b' -> 'ffff'; new: 'unset' -> 1; train.epochs: 3 -> 5"
    assert changed_settings({}, second) == ""  # a record written before settings were kept


def test_bookkeeping_settings_do_not_change_a_fingerprint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """How a run is logged, checkpointed, resumed or batched for inference leaves the stage fingerprints alone
    (changing them must not retrain); the number of epochs or the inference scheme changes them. A run folder's
    own paths are fingerprinted relative to it, other paths resolved."""
    from dataclasses import replace

    from fpspot.pipeline.config import InferSection, result_settings
    from fpspot.pipeline.run import run_location
    from fpspot.train.config import TrainConfig

    train, infer = TrainConfig(), InferSection()
    same = replace(train, log_every=7, checkpoint_every=3, checkpoint_keep=5, resume="none")
    assert fingerprint(result_settings(same, "train")) == fingerprint(result_settings(train, "train"))
    assert fingerprint(result_settings(replace(train, epochs=3), "train")) != \
        fingerprint(result_settings(train, "train"))
    assert result_settings(replace(infer, batch_size=2), "infer") == result_settings(infer, "infer")
    assert result_settings(replace(infer, scheme="long"), "infer") != result_settings(infer, "infer")
    root = tmp_path / "runs" / "tiny"
    assert run_location(root / "data" / "synth", root) == "run:data/synth"
    assert run_location(tmp_path / "runs" / "moved" / "data" / "synth", tmp_path / "runs" / "moved") == \
        "run:data/synth"
    monkeypatch.chdir(tmp_path)
    assert run_location("footpass", root) == run_location(tmp_path / "footpass", root) == str(tmp_path / "footpass")


def test_recipe_user_errors_are_one_line_and_write_nothing(tmp_path: Path, capsys, monkeypatch) -> None:
    """A missing data folder stops the recipe with one line naming the key (exit 2), before the run folder is
    made; an interrupted run says how to resume (exit 130)."""
    from fpspot.pipeline import run as pipeline_run

    code = pipeline_run.main("taad_dst", CONFIGS / "taad_dst.yaml",
                             [f"--run_root={tmp_path / 'runs'}", f"--data.dir={tmp_path / 'nope'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err == [f"recipes/taad_dst.py: error: data.dir: '{tmp_path / 'nope'}' is not a folder "
                                 "(a FOOTPASS-format dataset: videos/, data/, playbyplay_GT/)"]
    assert not (tmp_path / "runs").exists()

    def interrupted(config, with_dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(pipeline_run, "run_pipeline", interrupted)
    code = pipeline_run.main("taad_dst", CONFIGS / "taad_dst.yaml", [f"--run_root={tmp_path / 'runs'}"])
    assert code == 130 and "interrupted; run the same command again to resume" in capsys.readouterr().err


def test_recipe_training_settings_fail_when_read():
    """A best_metric the recipes' evaluation does not return, a run_dir (the recipe sets it) or an unknown
    backbone stop the config, not the run after its data stages; EVAL_METRICS are what the evaluation returns."""
    from fpspot.eval.metric import evaluate
    from fpspot.pipeline.config import EVAL_METRICS
    from fpspot.pipeline.steps import report_metrics
    from fpspot.schema import GTEvent
    from fpspot.data.footpass import PlayByPlay

    gt = PlayByPlay("gt", ["game_1_H1"], {"game_1_H1": [GTEvent(10, 0, 7, 2, 1, 0)]})
    metrics = report_metrics(evaluate(PlayByPlay("pred", ["game_1_H1"], {}), gt))
    flat = [f"{k}/{c}" for k, v in metrics.items() if isinstance(v, dict) for c in v] + \
        [k for k, v in metrics.items() if not isinstance(v, dict)]
    assert sorted(flat) == sorted(EVAL_METRICS)
    for override, message in (("frame.train.best_metric=maco_f1", "frame.train.best_metric: one of macro_f1"),
                              ("dst.train.best_metric=loss", "dst.train.best_metric: one of macro_f1"),
                              ("frame.train.run_dir=/tmp/x", "frame.train.run_dir: set by the recipe"),
                              ("frame.model.backbone=x3d_xxl", "frame.model.backbone: one of x3d_s")):
        with pytest.raises(ConfigError, match=message):
            load_config(PipelineConfig, CONFIGS / "taad_dst.yaml", [override])


def test_a_stage_never_deletes_outside_the_run_directory(tmp_path):
    runner = _runner(tmp_path)
    outside = tmp_path / "user_data"
    outside.mkdir()
    runner.run(Stage("write", "a", Counter(runner.run_dir / "out"), outputs=[outside]))
    with pytest.raises(ValueError, match="outside the run directory"):
        _runner(tmp_path).run(Stage("write", "b", Counter(runner.run_dir / "out"), outputs=[outside]))
    assert outside.is_dir()


def test_fingerprints_follow_the_settings():
    a = load_config(PipelineConfig, CONFIGS / "taad_dst.yaml")
    b = load_config(PipelineConfig, CONFIGS / "taad_dst.yaml", ["dst.train.epochs=9"])
    assert fingerprint(a.frame) == fingerprint(b.frame)
    assert fingerprint(a.dst) != fingerprint(b.dst)
    assert fingerprint(a.dst) == fingerprint(load_config(PipelineConfig, CONFIGS / "taad_dst.yaml").dst)


STAGES_SCRIPT = """
import json, os, sys
from pathlib import Path
from fpspot.pipeline.stages import Stage, StageRunner, pipeline_state

state = pipeline_state()
run = Path(sys.argv[1])
runner = StageRunner(run, state, log=lambda m: None)
log = run / f"calls_{state.process_index}.txt"

def body(name):
    def fn():
        with open(log, "a") as handle:
            handle.write(name + "\\n")
        return {"by": state.process_index, "world": state.num_processes}
    return fn

first = runner.run(Stage("prepare", "p", body("prepare"), main_only=True))
second = runner.run(Stage("work", "w", body("work")))
result = {"rank": state.process_index, "world": state.num_processes, "prepare": first, "work": second,
          "skipped": runner.skipped}
(run / f"result_{state.process_index}.json").write_text(json.dumps(result))  # a file each: stdout lines interleave
state.destroy_process_group()
"""


@pytest.mark.distributed
@pytest.mark.slow
def test_stages_under_two_processes(tmp_path):
    """A main-only stage runs once (on the main process) and every process gets its record; an every-process
    stage runs on both; a second launch skips both."""
    script = tmp_path / "stages_script.py"
    script.write_text(textwrap.dedent(STAGES_SCRIPT))
    cmd = ["accelerate", "launch", "--config_file", str(REPO / "launch" / "accelerate" / "cpu.yaml"), str(script),
           str(tmp_path / "run")]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch():
        for old in (tmp_path / "run").glob("result_*.json"):
            old.unlink()
        out = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        return [json.loads(path.read_text()) for path in sorted((tmp_path / "run").glob("result_*.json"))]

    results = launch()
    assert sorted(r["rank"] for r in results) == [0, 1] and all(r["world"] == 2 for r in results)
    assert all(r["prepare"] == {"by": 0, "world": 2} for r in results)  # ran on the main process only
    assert {r["work"]["by"] for r in results} == {0, 1}
    assert (tmp_path / "run" / "calls_0.txt").read_text().split() == ["prepare", "work"]
    assert (tmp_path / "run" / "calls_1.txt").read_text().split() == ["work"]
    again = launch()
    assert all(r["skipped"] == ["prepare", "work"] for r in again)
    assert (tmp_path / "run" / "calls_1.txt").read_text().split() == ["work"]


# ------------------------------------------------------------------------------------------ clip batches


def _clip_batch(events: dict[int, int], num_frames: int = 36, tracks: int = 2):
    """A clip batch whose clip ``b`` has a sharp label at frame ``events[b]`` (no label when absent)."""
    import torch

    from fpspot.data.tracks import dilate_labels

    b = max(events) + 1
    sharp = torch.zeros(b, tracks, num_frames, dtype=torch.long)
    for clip, frame in events.items():
        if frame is not None:
            sharp[clip, tracks - 1, frame] = 3
    frames = torch.arange(num_frames, dtype=torch.float32)
    video = (frames.view(1, 1, -1, 1, 1) + torch.zeros(b, 3, num_frames, 4, 6)).to(torch.uint8)
    rois = frames.view(1, 1, -1, 1).expand(b, tracks, num_frames, 4).clone()
    return {"video": video, "rois": rois, "masks": torch.ones(b, tracks, num_frames),
            "labels": torch.from_numpy(dilate_labels(sharp.numpy())), "labels_sharp": sharp,
            "nodes": rois[..., :1].expand(b, tracks, num_frames, 6).clone(),
            "meta": [{"key": f"clip{i}"} for i in range(b)]}


def test_temporal_crop_keeps_the_event_with_context():
    import torch

    from fpspot.pipeline.steps import ClipBatches, temporal_crop

    batch = _clip_batch({0: 16, 1: 35, 2: 0, 3: None})
    for seed in range(20):
        out = temporal_crop(batch, 12, np.random.default_rng(seed), margin=2)
        assert out["video"].shape == (4, 3, 12, 4, 6)
        for b, meta in enumerate(out["meta"]):
            start = meta["crop_start"]
            assert 0 <= start <= 36 - 12
            # every field is cut at the same frames: the frame numbers written into video, rois, nodes agree
            assert torch.equal(out["video"][b, 0, :, 0, 0].long(), torch.arange(start, start + 12))
            assert torch.equal(out["rois"][b, 0, :, 0], torch.arange(start, start + 12, dtype=torch.float32))
            assert torch.equal(out["nodes"][b, 1, :, 0], torch.arange(start, start + 12, dtype=torch.float32))
            assert torch.equal(out["labels_sharp"][b], batch["labels_sharp"][b, :, start:start + 12])
        starts = [m["crop_start"] for m in out["meta"]]
        assert 16 - 12 + 1 + 2 <= starts[0] <= 16 - 2  # event at 16 with 2 frames of context each side
        assert starts[1] == 36 - 12 and starts[2] == 0  # events at the clip's ends: as much context as there is
        assert out["labels_sharp"][:3].gt(0).any(dim=(1, 2)).all()
    batches = list(ClipBatches([batch, batch], crop_frames=12, seed=1, epoch=0))
    again = list(ClipBatches([batch, batch], crop_frames=12, seed=1, epoch=0))
    assert [m["crop_start"] for b in batches for m in b["meta"]] == [m["crop_start"] for b in again for m in b["meta"]]
    assert all(b["video"].is_contiguous() for b in batches)
    assert temporal_crop(batch, 36, np.random.default_rng(0)) is batch


# ------------------------------------------------------------------------------------------ configuration


def test_half_sets_of_a_synthetic_run(tmp_path):
    from fpspot.pipeline.layout import RunLayout
    from fpspot.pipeline.run import half_sets

    config = load_config(PipelineConfig, CONFIGS / "taad_dst.yaml", [f"run_root={tmp_path}"])
    run = RunLayout(config.run_dir)
    train, calib, evals = half_sets(config, run)
    assert (train.data_dir, train.split) == (run.synth_dir, "train")
    assert (calib.data_dir, calib.split) == (run.calib_synth_dir, "train")
    assert [(e.data_dir, e.split) for e in evals] == [(run.synth_dir, "val")]
    (tmp_path / "footpass").mkdir()
    no_calib = load_config(PipelineConfig, CONFIGS / "taad_dst.yaml", [f"data.dir={tmp_path / 'footpass'}"])
    assert half_sets(no_calib, run)[1] is None
    with pytest.raises(ConfigError, match="eval_splits"):
        half_sets(load_config(PipelineConfig, CONFIGS / "taad_dst.yaml", ["data.eval_splits=[train]"]), run)


# ------------------------------------------------------------------------------------------ baselines


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    from fpspot.data.synth import SynthConfig, generate_dataset

    out = tmp_path_factory.mktemp("synth")
    generate_dataset(out, SynthConfig(games=3, minutes=1.0, size=(32, 56), val_games=1, seed=5))
    return out


def test_class_priors_follow_the_training_statistics(tiny_dataset):
    from fpspot.data.footpass import TacticalFile, read_playbyplay
    from fpspot.data.tracks import HalfRows
    from fpspot.pipeline.baselines import DENSE_STEP, prior_predictions, prior_scores, training_statistics
    from fpspot.pipeline.layout import HalfSet
    from fpspot.schema import Col

    train, val = HalfSet("train", tiny_dataset, "train"), HalfSet("val", tiny_dataset, "val")
    frequencies, rate = training_statistics(train)
    gt = read_playbyplay(train.ground_truth, "gt")
    counts = np.bincount([e.cls for v in gt.events.values() for e in v], minlength=9)[1:]
    np.testing.assert_allclose(frequencies, counts / counts.sum())
    assert 0.005 < rate < 0.05  # tens of events per minute at 25 fps

    freq = prior_predictions(val, "frequency", frequencies, rate, seed=0)
    dense = prior_predictions(val, "dense", frequencies, rate, seed=0)
    with TacticalFile(val.layout.tactical("val")) as tf:
        for key in val.keys():
            rows = HalfRows(tf.read(key), key)
            span = rows.last_visible - rows.first_visible + 1
            assert abs(len(freq.events[key]) - rate * span) <= 1
            assert len(dense.events[key]) == -(-span // DENSE_STEP)
            boxed = {(int(r[Col.FRAME]), int(r[Col.LEFT_TO_RIGHT]), int(r[Col.SHIRT_NUMBER]))
                     for r in rows.rows if np.isfinite(r[Col.ROI_X])}
            assert all((e.frame, e.team, e.shirt) in boxed for e in freq.events[key] + dense.events[key])
    majority = int(np.argmax(frequencies)) + 1
    assert {e.cls for v in dense.events.values() for e in v} == {majority}
    scores = prior_scores(train, val, seeds=2)
    assert set(scores["rules"]) == {"frequency", "majority", "dense"}
    assert scores["best"] in scores["rules"]
    assert all(0 <= r["macro_f1"] < 0.2 for r in scores["rules"].values())


def test_cpu_threads_follow_the_setting_and_the_local_processes(monkeypatch):
    """``cpu_threads: 0`` shares this process's cores among the processes launched on the machine (plain
    ``accelerate launch`` sets OMP_NUM_THREADS=1, which would leave one process on one core); a positive
    setting wins; a negative one is a config error naming the key."""
    from fpspot.utils.threads import cpu_threads_per_process

    cores = len(os.sched_getaffinity(0))
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    assert cpu_threads_per_process(0) == cores
    monkeypatch.setenv("LOCAL_WORLD_SIZE", str(cores * 4))
    assert cpu_threads_per_process(0) == 1
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert cpu_threads_per_process(3) == 3
    with pytest.raises(ValueError, match="cpu_threads"):
        cpu_threads_per_process(-2)
    with pytest.raises(ConfigError, match="cpu_threads"):
        PipelineConfig(cpu_threads=-1)


# -------------------------------------------------------------------------------------------- end to end


TINY = [
    "--name=tiny", "--data.synth.games=2", "--data.synth.minutes=0.3", "--data.synth.calib_games=1",
    "--frame.shards.clip_len=36", "--frame.shards.per_class_cap=3", "--frame.shards.draws=1",
    "--frame.loader.num_workers=0", "--frame.train.epochs=1", "--frame.train.max_steps=2", "--frame.train.batch_size=2",
    "--dst.model.window=120", "--dst.windows.windows_per_half=4", "--dst.train.batch_size=4", "--dst.train.epochs=1",
    "--eval.prior_seeds=1",
]


@pytest.mark.slow
def test_pipeline_end_to_end_and_restart(tmp_path):
    """The main job at the smallest scale: every artefact, metrics equal to fpspot.evaluate of the predictions
    file, and a second run that skips every stage."""
    import fpspot
    from fpspot.data.footpass import read_playbyplay

    cmd = [sys.executable, str(REPO / "recipes" / "taad_dst.py"), *TINY]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    first = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert first.returncode == 0, first.stderr[-4000:]
    run = tmp_path / "runs" / "tiny"
    for path in ["config.yaml", "predictions_val.json", "metrics_val.json", "baselines_val.json", "summary.json",
                 "plots/val.png", "plots/training.png", "post/pipeline.yaml", "frame/best/config.json",
                 "frame/final/model.safetensors", "dst/final/config.json", "dst_windows/train/manifest.json",
                 "shards/frame/manifest.json", "data/synth/splits.json", "data/calib/splits.json",
                 "predictions/frame_val.json", "predictions/dst_val.json", "predictions/frame_calib.json"]:
        assert (run / path).is_file(), path
    assert list((run / "frame" / "tensorboard").rglob("events.out.tfevents.*"))
    assert list((run / "dst" / "tensorboard").rglob("events.out.tfevents.*"))
    gt = run / "data" / "synth" / "playbyplay_GT" / "playbyplay_val.json"
    keys = read_playbyplay(gt, "gt").keys
    assert sorted(read_playbyplay(run / "predictions_val.json", "pred").keys) == sorted(keys)
    assert sorted(p.stem for p in (run / "logits" / "frame" / "train").glob("*.safetensors")) == \
        sorted(read_playbyplay(run / "data" / "synth" / "playbyplay_GT" / "playbyplay_train.json", "gt").keys)
    metrics = json.loads((run / "metrics_val.json").read_text())
    assert metrics == json.loads(json.dumps(fpspot.evaluate(run / "predictions_val.json", gt).to_json()))
    summary = json.loads((run / "summary.json").read_text())
    rows = summary["splits"]["val"]["rows"]
    assert {"final", "taad", "dst", "untrained", "prior_best"} <= set(rows)
    assert rows["final"] == {"macro_f1": round(metrics["macro_f1"], 4), "micro_f1": round(metrics["micro"]["f1"], 4)}
    stages = [s["stage"] for s in summary["stages"]]
    assert stages == ["data", "shards", "train_frame", "infer_frame", "dst_windows", "train_dst", "infer_dst", "post",
                      "baselines", "score"]
    assert not any(s["skipped"] for s in summary["stages"])
    assert "Macro F1:" in first.stdout and "class prior" in first.stdout

    second = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert second.returncode == 0, second.stderr[-4000:]
    again = json.loads((run / "summary.json").read_text())
    assert all(s["skipped"] for s in again["stages"])
    assert json.loads((run / "metrics_val.json").read_text()) == metrics
    assert "Macro F1:" in second.stdout


@pytest.mark.slow
def test_pipeline_with_gnn_logits_fused_into_the_dst(tmp_path):
    """Extension 2 end to end at the smallest scale (``recipes/configs/taad_gnn_dst.yaml``): a TAAD+GNN model
    trained beside the TAAD, its per-frame logits written for every half and fused into the DST as a third
    stream, and scored predictions with every key."""
    import fpspot
    from fpspot.data.footpass import read_playbyplay
    from fpspot.infer.api import load_logits

    gnn_tiny = ["--gnn.shards.clip_len=36", "--gnn.shards.per_class_cap=3", "--gnn.shards.draws=1",
                "--gnn.shards.background_per_half=1", "--gnn.loader.num_workers=0", "--gnn.train.epochs=1",
                "--gnn.train.max_steps=2", "--gnn.train.batch_size=2", "--eval.baselines=false", "--eval.plots=false"]
    cmd = [sys.executable, str(REPO / "recipes" / "taad_dst.py"), "--config", str(CONFIGS / "taad_gnn_dst.yaml"),
           *TINY, *gnn_tiny]
    env = {**os.environ, "OMP_NUM_THREADS": "2"}
    done = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, env=env, timeout=900)
    assert done.returncode == 0, done.stderr[-4000:]
    run = tmp_path / "runs" / "tiny"
    summary = json.loads((run / "summary.json").read_text())
    stages = [s["stage"] for s in summary["stages"]]
    assert stages[:5] == ["data", "shards", "train_frame", "shards_gnn", "train_gnn"]
    assert json.loads((run / "gnn" / "final" / "config.json").read_text())["model"] == "taad_gnn"
    assert json.loads((run / "dst" / "final" / "config.json").read_text())["config"]["use_gnn_logits"] is True
    train_keys = read_playbyplay(run / "data" / "synth" / "playbyplay_GT" / "playbyplay_train.json", "gt").keys
    for key in train_keys:  # both streams for every training half: the DST windows read them
        main_key, main = load_logits(run / "logits" / "frame" / "train" / f"{key}.safetensors")
        gnn_key, gnn = load_logits(run / "logits" / "frame" / "train" / "gnn" / f"{key}.safetensors")
        assert main_key == gnn_key == key and main.shape == gnn.shape and main.shape[:2] == (9, 26)
        assert not np.allclose(np.asarray(main), np.asarray(gnn))  # two different models
    gt = run / "data" / "synth" / "playbyplay_GT" / "playbyplay_val.json"
    assert sorted(read_playbyplay(run / "predictions_val.json", "pred").keys) == \
        sorted(read_playbyplay(gt, "gt").keys)
    metrics = json.loads((run / "metrics_val.json").read_text())
    assert metrics == json.loads(json.dumps(fpspot.evaluate(run / "predictions_val.json", gt).to_json()))
