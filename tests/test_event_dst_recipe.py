"""``recipes/event_dst.py`` end to end at the smallest scale, on a slice of the real training play-by-play:
shards, token-budget batches sized from the estimate windows, training with a held-out evaluation per epoch,
the export of both pipelines, applying the exported pipeline to the released TAAD file through ``fpspot
post``, and a resumed run that trains only the epochs it has not trained."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from harness import recipe_module, reset_accelerate

from fpspot.data.footpass import read_playbyplay, write_playbyplay

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


@pytest.fixture
def recipe():
    with recipe_module("event_dst", "event_dst_recipe_e2e") as module:
        yield module


def _tensorboard_scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    values = []
    for events in sorted(run_dir.glob("tensorboard/events.out.tfevents.*")):
        accumulator = EventAccumulator(str(events))
        accumulator.Reload()
        if tag in accumulator.Tags()["scalars"]:
            values += [(e.step, e.value) for e in accumulator.Scalars(tag)]
    return values


@pytest.mark.slow
def test_recipe_trains_exports_and_resumes_on_real_play_by_play(recipe, footpass_dir, tmp_path):
    train = read_playbyplay(footpass_dir / "playbyplay_train.json", "gt")
    keys = [k for k in train.keys if k.split("_")[1] in ("1", "2", "3")]  # games 1, 2 train; 3 is held out
    assert len(keys) == 6
    gt_path = tmp_path / "gt.json"
    write_playbyplay(gt_path, train.subset(keys))
    run_dir = tmp_path / "run"
    common = [
        "--config", str(REPO / "recipes" / "configs" / "event_dst.yaml"),
        f"data.gt={gt_path}", "data.holdout_games=[3]", f"data.shard_dir={tmp_path / 'shards'}",
        "data.samples_per_shard=40", "data.shuffle=50", "data.max_tokens=200", "data.bucket_pool=64",
        "data.bucket_estimate=64",
        "model.d_model=32", "model.nhead=2", "model.num_encoder_layers=1", "model.num_decoder_layers=1",
        "model.dim_feedforward=64",
        "export.seeds=1", "export.dst_conditions=[[0.15,1.0],[0.3,0.5]]", "eval.batch_size=64",
        "train.warmup_steps=5", "train.decay_epochs=[]", "train.log_every=5", "train.lr_head=2e-3",
        "train.lr_backbone=2e-3", f"train.run_dir={run_dir}", "cpu_threads=1",
    ]
    assert recipe.main([*common, "train.epochs=1"]) == 0

    manifest = json.loads((tmp_path / "shards" / "manifest.json").read_text())
    assert manifest["num_samples"] > 100  # the 4 training halves' windows
    assert {p.name for p in (run_dir / "release").iterdir()} >= {"config.json", "model.safetensors",
                                                                 "pipeline.yaml", "pipeline_dst.yaml"}
    scores = _tensorboard_scalars(run_dir, "val/score")
    assert len(scores) == 1 and 0.0 < scores[0][1] < 1.0
    steps_per_epoch = scores[0][0]
    # token-budget batches of <= 200 input events (about 10 windows of ~20 events), not fixed batches of
    # train.batch_size = 32 windows (688 windows: 67 steps against 22)
    assert manifest["num_samples"] / 16 < steps_per_epoch < manifest["num_samples"] / 5

    # the exported pipeline runs through `fpspot post` (with the run's model) and keeps every half key
    from fpspot.cli import main as fpspot_main
    from fpspot.post.pipeline import Pipeline

    pipe = Pipeline.load(run_dir / "release" / "pipeline.yaml")
    assert pipe.info["fitted_on"] == ["game_3_H1", "game_3_H2"]
    pipe.steps[0]["model"] = str(run_dir / "release")
    config = tmp_path / "pipeline.yaml"
    pipe.save(config)
    taad = footpass_dir / "playbyplay_TAAD_val_g18_g24.json"
    out = tmp_path / "clean.json"
    assert fpspot_main(["post", "--config", str(config), "--pred", f"taad={taad}", "--out", str(out)]) == 0
    clean, before = read_playbyplay(out, "pred"), read_playbyplay(taad, "pred")
    assert clean.keys == before.keys
    assert 0 < sum(len(v) for v in clean.events.values()) < sum(len(v) for v in before.events.values())

    # asking for 2 epochs resumes from the checkpoint and trains only the second one
    reset_accelerate()  # a second run in this process builds its own Accelerator
    assert recipe.main([*common, "train.epochs=2", "export.enabled=false"]) == 0
    scores = _tensorboard_scalars(run_dir, "val/score")
    assert [step for step, _ in scores] == [steps_per_epoch, 2 * steps_per_epoch]

    # another spotter's noise model (data.corruption, here one without false positives) is the noise the
    # pipelines are fitted on: the held-out input is then far cleaner than under the packaged TAAD fit
    from fpspot.data.corrupt import CorruptionParams

    params = CorruptionParams.load()
    zero = [0.0] * 9
    clean_noise = dataclasses.replace(params, ghost_rate=zero, random_rate_per_min=zero, dup_rate=zero,
                                      carry_rate_per_min=zero)
    clean_noise.save(tmp_path / "clean_noise.json")
    reset_accelerate()
    assert recipe.main([*common, f"data.corruption={tmp_path / 'clean_noise.json'}",
                        f"export.model={run_dir / 'release'}", f"train.run_dir={tmp_path / 'export_clean'}"]) == 0
    held_out = {name: Pipeline.load(folder / "release" / "pipeline.yaml").info["held_out"]
                for name, folder in (("taad", run_dir), ("clean", tmp_path / "export_clean"))}
    assert held_out["taad"]["input_micro_f1"] < 0.5 < 0.6 < held_out["clean"]["input_micro_f1"], held_out


def test_training_windows_carry_insertion_targets_only_for_insertion_heads(recipe, footpass_dir):
    """``model.insert_offset > 0`` makes the recipe's corruptor add the insertion targets the heads train on."""
    from fpspot.data.corrupt import CorruptionParams
    from fpspot.data.event_windows import cut_windows
    from fpspot.pipeline.event_dst.config import RecipeConfig
    from fpspot.pipeline.event_dst.data import training_corruptor
    from fpspot.train.config import load_config

    gt = read_playbyplay(footpass_dir / "playbyplay_train.json", "gt")
    window = cut_windows(gt.keys[0], gt.events[gt.keys[0]])[5]
    config = load_config(RecipeConfig, recipe.DEFAULT_CONFIG)
    params = CorruptionParams.load()
    assert config.model.insert_offset == 0 and "in_ins" not in training_corruptor(config, params)(window)
    config.model.insert_offset = 75
    tokens = training_corruptor(config, params)(window)
    assert tokens["in_ins"].shape == tokens["in_cls"].shape and tokens["in_ins"].any()


def test_library_run_needs_a_training_play_by_play(tmp_path, capsys):
    """The workflow lives in :mod:`fpspot.pipeline.event_dst`; the recipe script only gives it the defaults. Without
    ``data.gt`` and without the recipe's default, or with a missing file, it stops with one line naming the key or
    the file (exit 2), before any work."""
    from fpspot.pipeline.event_dst.run import main

    assert main([f"train.run_dir={tmp_path / 'run'}"]) == 2
    assert capsys.readouterr().err == ("recipes/event_dst.py: error: data.gt: no training play-by-play given "
                                       "(set data.gt=PATH)\n")
    assert main([f"train.run_dir={tmp_path / 'run'}", f"data.gt={tmp_path / 'nope.json'}"]) == 2
    assert capsys.readouterr().err == f"recipes/event_dst.py: error: file '{tmp_path / 'nope.json'}': no such file\n"
    assert not (tmp_path / "run").exists()
