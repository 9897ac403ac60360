"""The trainer in one process on a small real model (conv backbone with BatchNorm, temporal head, dropout,
class-weighted loss inside forward): parameter groups and schedule, the freeze schedule, TensorBoard logs
and exports, exact resume after a kill, NaN handling, and the configuration files and command line."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

sys.path.insert(0, str(Path(__file__).parent / "scripts"))

from harness import reset_accelerate  # noqa: E402
from tiny_spotter import ClipSource, ScriptConfig, TinySpotter, make_clips, validation_loss  # noqa: E402

from fpspot.train.class_weights import compute_class_weights  # noqa: E402
from fpspot.train.config import (  # noqa: E402
    ConfigError,
    TrainConfig,
    apply_overrides,
    config_to_dict,
    load_config,
    parse_config,
    save_config,
)
from fpspot.train.trainer import (  # noqa: E402
    NonFiniteLossError,
    Trainer,
    WarmupStepDecay,
    build_optimizer,
    list_checkpoints,
    param_groups,
    resolve_mixed_precision,
)

#: 44 samples in batches of 4 -> 11 micro-batches per epoch, 6 optimizer steps (the last one partial)
BASE = dict(epochs=2, batch_size=4, grad_accum=2, lr_head=5e-3, lr_backbone=2e-3, weight_decay=1e-2,
            warmup_steps=3, decay_epochs=[1], decay_gamma=0.5, freeze_backbone_epochs=0, checkpoint_every=4,
            checkpoint_keep=2, log_every=2, best_metric="val_loss", best_mode="min", seed=3)


pytestmark = pytest.mark.usefixtures("fresh_accelerate_state")


def _fit(run_dir: Path, *, on_step_end=None, nan_at=None, model_seed: int = 0, num_samples: int = 44,
         source_cls=None, **train):
    """Train a fresh TinySpotter (init from ``model_seed``) on in-memory clips -> (trainer, result)."""
    reset_accelerate()
    config = TrainConfig(**{**BASE, "run_dir": str(run_dir), **train})
    torch.manual_seed(model_seed)
    model = TinySpotter()
    val = make_clips(18, seed=99)
    source = (source_cls or ClipSource)(num_samples, config.batch_size, seed=0, nan_at=nan_at)
    trainer = Trainer(model, config, source,
                      evaluate=lambda m: {"val_loss": validation_loss(m, val), "f1": {"pass": 0.5}},
                      class_weights=compute_class_weights("baseline"), on_step_end=on_step_end)
    return trainer, trainer.fit()


def _kill_after_step_9(trainer) -> None:
    """``on_step_end`` that interrupts the run after optimizer step 9 (mid-epoch 2), as a kill would."""
    if trainer.global_step == 9:
        raise KeyboardInterrupt("simulated kill after step 9")


def _state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


# ------------------------------------------------------------------------------- groups and schedule


def test_param_groups_split_backbone_head_and_exempt_biases_and_norms():
    model = TinySpotter(norm="batch")
    groups = {g["name"]: g for g in param_groups(model, lr_head=1e-3, lr_backbone=5e-5, weight_decay=1e-4)}
    names = {k: set(g["param_names"]) for k, g in groups.items()}
    assert names == {
        "backbone": {"backbone.0.weight", "backbone.3.weight"},
        "backbone_no_decay": {"backbone.1.weight", "backbone.1.bias", "backbone.3.bias"},
        "head": {"head.0.weight", "classifier.weight"},
        "head_no_decay": {"head.1.weight", "head.1.bias", "classifier.bias"},
    }
    settings = {k: (g["lr"], g["weight_decay"]) for k, g in groups.items()}
    assert settings == {"backbone": (5e-5, 1e-4), "backbone_no_decay": (5e-5, 0.0), "head": (1e-3, 1e-4),
                        "head_no_decay": (1e-3, 0.0)}
    every = [n for n, p in model.named_parameters()]
    assert sorted(n for s in names.values() for n in s) == sorted(every)  # each parameter exactly once


def test_optimizer_is_fused_adamw_on_cpu_float_parameters_and_foreach_otherwise():
    config = TrainConfig(**{**BASE, "run_dir": "unused"})
    optimizer = build_optimizer(TinySpotter(), config)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["fused"] is True
    double = TinySpotter().to(torch.float64)
    assert build_optimizer(double, config).defaults["fused"] is True  # any float dtype
    on_meta = TinySpotter().to("meta")  # a device without the fused kernel
    assert not build_optimizer(on_meta, config).defaults["fused"]


def test_warmup_reaches_full_rate_and_decays_by_epoch():
    params = [torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))]
    optimizer = torch.optim.AdamW([{"params": [params[0]], "lr": 1e-3}, {"params": [params[1]], "lr": 5e-5}])
    schedule = WarmupStepDecay(optimizer, warmup_steps=4, decay_epochs=[2, 3], gamma=0.1)
    rates = [[g["lr"] for g in optimizer.param_groups]]
    for _ in range(5):
        optimizer.step()
        schedule.step()
        rates.append([g["lr"] for g in optimizer.param_groups])
    head = [r[0] for r in rates]
    assert head == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3, 1e-3, 1e-3])  # (step + 1) / 4, then full
    assert [r[1] for r in rates][-1] == pytest.approx(5e-5)
    schedule.set_epoch(1)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-3)
    schedule.set_epoch(2)
    assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([1e-4, 5e-6])
    schedule.set_epoch(3)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(1e-5)

    # the baseline's bug froze the factor at 0.14 (spec 2.3); this schedule reaches 1 after warmup_steps
    def fresh():
        return torch.optim.AdamW([torch.nn.Parameter(torch.zeros(1))], lr=1e-3)

    assert WarmupStepDecay(fresh(), 50).factor(step=49) == 1.0
    restored = WarmupStepDecay(fresh(), 4, [2, 3], 0.1)
    restored.load_state_dict(schedule.state_dict())
    assert (restored.epoch, restored.last_epoch) == (3, 5)


def test_mixed_precision_auto_choice():
    assert resolve_mixed_precision("auto", cuda=False, launcher="bf16") == "no"  # CPU: full fp32
    assert resolve_mixed_precision("auto", cuda=True, launcher="fp16") == "fp16"  # the launcher's choice
    assert resolve_mixed_precision("auto", cuda=True, launcher="no") in ("bf16", "fp16")
    assert resolve_mixed_precision("bf16", cuda=False) == "bf16"  # explicit settings pass


# ------------------------------------------------------------------------------------ freeze schedule


def test_frozen_backbone_does_not_change_then_trains(tmp_path):
    seen = []

    def record(trainer):
        model = trainer.unwrapped_model
        seen.append({"epoch": trainer.state.epoch, "state": _state(model),
                     "lr": {g["name"]: (g["lr"], g["weight_decay"]) for g in trainer.optimizer.param_groups}})

    torch.manual_seed(0)
    initial = _state(TinySpotter())  # _fit builds the same model from seed 0
    # 20 clips in batches of 4, accumulation 2: 3 optimizer steps per epoch (the last one partial)
    trainer, result = _fit(tmp_path / "run", on_step_end=record, num_samples=20, epochs=3,
                           freeze_backbone_epochs=2, decay_epochs=[], warmup_steps=0, checkpoint_every=0)
    assert result.global_step == 9 and [s["epoch"] for s in seen] == [0] * 3 + [1] * 3 + [2] * 3
    learned = [k for k in initial if "running" not in k and "num_batches" not in k]  # not BN statistics
    backbone_weights = [k for k in learned if k.startswith("backbone.")]
    head_weights = [k for k in learned if not k.startswith("backbone.")]
    for snap in seen[:6]:  # epochs 1-2: the backbone is frozen, BN statistics still move, the head trains
        assert all(torch.equal(snap["state"][k], initial[k]) for k in backbone_weights)
        assert not torch.equal(snap["state"]["backbone.1.running_mean"], initial["backbone.1.running_mean"])
        assert all(not torch.equal(snap["state"][k], initial[k]) for k in head_weights)
    epoch3 = seen[6]["state"]
    assert all(not torch.equal(epoch3[k], seen[5]["state"][k]) for k in backbone_weights)
    rates = seen[0]["lr"]
    assert rates == {"backbone": (2e-3, 1e-2), "backbone_no_decay": (2e-3, 0.0), "head": (5e-3, 1e-2),
                     "head_no_decay": (5e-3, 0.0)}


# --------------------------------------------------------------------------- logs, exports and resume


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """Two uninterrupted epochs (checkpoints at steps 4, 6 (epoch end), 8 and 12)."""
    reset_accelerate()
    run_dir = tmp_path_factory.mktemp("reference") / "run"
    trainer, result = _fit(run_dir)
    state = _state(trainer.unwrapped_model)
    reset_accelerate()
    return run_dir, result, state


def test_run_logs_tensorboard_scalars_and_exports_models(reference_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, result, state = reference_run
    assert result.global_step == 12 and result.epochs_completed == 2
    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    expected = {"train/loss", "train/ce", "train/grad_norm", "lr/backbone", "lr/head", "perf/samples_per_s",
                "perf/data_wait_fraction", "perf/epoch_s", "memory/peak_rss_mib", "val/val_loss", "val/f1/pass",
                "class_weights/pass", "class_weights/background"}
    assert expected <= scalars, expected - scalars
    assert "class_weights_table/text_summary" in events.Tags()["tensors"]  # the text table
    lr_head = {e.step: e.value for e in events.Scalars("lr/head")}
    assert lr_head[2] == pytest.approx(5e-3 * 2 / 3)  # step 2 ran with the warmup factor (1 + 1) / 3
    assert lr_head[8] == pytest.approx(5e-3 * 0.5)  # epoch 2: decayed by gamma
    wait = [e.value for e in events.Scalars("perf/data_wait_fraction")]
    assert all(0 <= w < 1 for w in wait)
    epoch_times = {e.step: e.value for e in events.Scalars("perf/epoch_s")}  # one per epoch, at its last step
    assert sorted(epoch_times) == [6, 12] and all(0 < t < 600 for t in epoch_times.values())
    assert [e.value for e in events.Scalars("class_weights/background")] == [pytest.approx(0.05)]
    # checkpoints: the last two kept, complete, with the trainer's counters
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000008", "step_000012"]
    counters = json.loads((run_dir / "checkpoints" / "step_000008" / "trainer_state.json").read_text())
    assert (counters["epoch"], counters["batches_done"], counters["global_step"]) == (1, 4, 8)
    assert not list((run_dir / "checkpoints").glob(".*"))  # no temporary folder left
    # exports: final = the trained model; best = the better of the two evaluations, with its metrics
    final = load_file(str(run_dir / "final" / "model.safetensors"))
    assert all(torch.equal(final[k], state[k]) for k in state)
    info = json.loads((run_dir / "best" / "metrics.json").read_text())
    scores = [h["val_loss"] for h in result.history]
    assert len(scores) == 2 and info["metrics"]["val_loss"] == min(scores) == result.best_score
    assert json.loads((run_dir / "final" / "config.json").read_text())["config"]["norm"] == "batch"
    assert yaml.safe_load((run_dir / "train_config.yaml").read_text())["grad_accum"] == 2


def test_resume_after_kill_matches_uninterrupted_run(reference_run, tmp_path):
    ref_dir, ref_result, ref_state = reference_run
    run_dir = tmp_path / "run"

    with pytest.raises(KeyboardInterrupt):
        _fit(run_dir, on_step_end=_kill_after_step_9)
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000006", "step_000008"]
    # resume from step 8 (mid-epoch 2) with a differently initialised model: load_state replaces everything
    trainer, result = _fit(run_dir, model_seed=123)
    state = _state(trainer.unwrapped_model)
    assert result.global_step == 12
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state), \
        max((state[k].float() - ref_state[k].float()).abs().max().item() for k in ref_state)
    assert result.best_score == ref_result.best_score
    assert [h["step"] for h in result.history] == [6, 12]  # the history survived the restart


class StartBatchSource(ClipSource):
    """A source that, like fpspot's loaders, can start an epoch after ``start_batch`` batches."""

    calls: list[tuple[int, int]] = []

    def __call__(self, epoch: int, start_batch: int = 0):
        StartBatchSource.calls.append((epoch, start_batch))
        return list(super().__call__(epoch))[start_batch:]


def test_resume_passes_start_batch_to_loaders_that_take_it(reference_run, tmp_path):
    ref_state = reference_run[2]
    run_dir = tmp_path / "run"

    with pytest.raises(KeyboardInterrupt):
        _fit(run_dir, on_step_end=_kill_after_step_9, source_cls=StartBatchSource)
    StartBatchSource.calls = []
    trainer, result = _fit(run_dir, model_seed=123, source_cls=StartBatchSource)
    resumed_epoch, start = StartBatchSource.calls[0]
    assert resumed_epoch == 1 and start > 0  # mid-epoch 2: the consumed batches were not asked for again
    assert result.global_step == 12
    state = _state(trainer.unwrapped_model)
    assert all(torch.equal(state[k], ref_state[k]) for k in ref_state)


def test_fresh_start_refuses_a_run_folder_with_checkpoints(reference_run):
    run_dir = reference_run[0]
    reset_accelerate()
    trainer = Trainer(TinySpotter(), TrainConfig(**{**BASE, "run_dir": str(run_dir), "resume": "none"}),
                      ClipSource(44, 4))
    with pytest.raises(ValueError, match=r"has checkpoints \(latest step_000012\).*train\.resume=auto"):
        trainer.fit()


# ----------------------------------------------------------------------------------- weight average


@pytest.fixture(scope="module")
def ema_run(tmp_path_factory):
    """The reference run with ``ema_decay=0.7``, recording the trained weights after every optimizer step."""
    reset_accelerate()
    run_dir = tmp_path_factory.mktemp("ema") / "run"
    trained = []
    trainer, result = _fit(run_dir, ema_decay=0.7, on_step_end=lambda t: trained.append(_state(t.unwrapped_model)))
    average = _state(trainer.ema.module)
    loss_of_average = validation_loss(trainer.ema.module, make_clips(18, seed=99))
    loss_of_trained = validation_loss(trainer.unwrapped_model, make_clips(18, seed=99))
    reset_accelerate()
    return run_dir, result, trained, average, (loss_of_average, loss_of_trained)


def test_weight_average_is_the_warmed_up_ema_of_the_steps_and_is_evaluated_and_exported(ema_run, reference_run):
    run_dir, result, trained, average, (loss_of_average, loss_of_trained) = ema_run
    assert len(trained) == result.global_step == 12
    # the trained weights are those of the run without the average: it only watches
    assert all(torch.equal(trained[-1][k], reference_run[2][k]) for k in trained[-1])
    expected = {k: v.clone() for k, v in trained[0].items()}  # the first update copies
    for n, weights in enumerate(trained[1:], start=1):
        decay = min(0.7, (1 + n) / (10 + n))
        for k, v in weights.items():
            expected[k] = expected[k] * decay + v * (1 - decay) if v.is_floating_point() else v.clone()
    for k, v in expected.items():
        assert torch.allclose(average[k], v, rtol=1e-5, atol=1e-6), k
    assert not torch.allclose(average["classifier.weight"], trained[-1]["classifier.weight"])
    # evaluate() got the average, and best/ and final/ hold it
    assert result.history[-1]["val_loss"] == pytest.approx(loss_of_average, rel=1e-6)
    assert loss_of_average != pytest.approx(loss_of_trained, rel=1e-6)
    final = load_file(str(run_dir / "final" / "model.safetensors"))
    assert all(torch.equal(final[k], average[k]) for k in average)
    assert (run_dir / "checkpoints" / "step_000012" / "ema.safetensors").is_file()


def test_weight_average_resumes_exactly_after_a_kill(ema_run, tmp_path):
    average = ema_run[3]
    run_dir = tmp_path / "run"

    with pytest.raises(KeyboardInterrupt):
        _fit(run_dir, ema_decay=0.7, on_step_end=_kill_after_step_9)
    trainer, result = _fit(run_dir, ema_decay=0.7, model_seed=123)  # resumes from step 8
    assert result.global_step == 12 and int(trainer.ema.n_averaged) == 12
    resumed = _state(trainer.ema.module)
    assert all(torch.equal(resumed[k], average[k]) for k in average), \
        max((resumed[k].float() - average[k].float()).abs().max().item() for k in average)


def test_weight_average_decay_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match=r"ema_decay: must be in \[0, 1\)"):
        TrainConfig(ema_decay=1.0)


# ----------------------------------------------------------------------------------------- NaN loss


def test_nan_loss_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
    run_dir = tmp_path / "run"
    states = {}

    def record(trainer):
        states[trainer.global_step] = _state(trainer.unwrapped_model)

    # batch 8 of epoch 1 (index 7) carries NaN inputs: it belongs to optimizer step 4 (batches 7-8)
    with pytest.raises(NonFiniteLossError) as err:
        _fit(run_dir, on_step_end=record, nan_at=(0, 7), checkpoint_every=2)
    message = str(err.value)
    assert "optimizer step 4 (epoch 1, batch 8 of 11)" in message
    assert str(run_dir / "checkpoints" / "step_000002") in message
    assert sorted(states) == [1, 2, 3]  # step 4 was never applied
    assert [p.name for p in list_checkpoints(run_dir)] == ["step_000002"]
    saved = load_file(str(run_dir / "checkpoints" / "step_000002" / "model.safetensors"))
    assert all(torch.equal(saved[k], states[2][k]) for k in states[2])
    # the checkpoint loads (accelerator.load_state) and reproduces the state of step 2
    trainer, result = _fit(run_dir, max_steps=2, model_seed=7)
    assert result.global_step == 2
    restored = _state(trainer.unwrapped_model)
    assert all(torch.equal(restored[k], states[2][k]) for k in states[2])


def test_missing_best_metric_is_a_clear_error(tmp_path):
    reset_accelerate()
    config = TrainConfig(**{**BASE, "run_dir": str(tmp_path / "run"), "epochs": 1, "best_metric": "macro_f1"})
    trainer = Trainer(TinySpotter(), config, ClipSource(8, 4), evaluate=lambda m: {"micro_f1": 0.3})
    with pytest.raises(KeyError, match="macro_f1.*micro_f1"):
        trainer.fit()


# ------------------------------------------------------------------------------- a registered fpspot model


@pytest.mark.slow
def test_trains_the_registered_taad_model_through_its_hooks(tmp_path):
    """The real TAAD (tiny X3D) through the trainer: class weights, checkpointing, frozen first epoch."""
    import fpspot.models as models

    if "taad" not in models.list_models():
        pytest.skip("the TAAD model is not registered in this tree")
    reset_accelerate()
    cls = models.zoo.model_class("taad")
    config = cls.tiny_config()
    torch.manual_seed(0)
    model = models.build("taad", **config)
    initial = _state(model)

    def batches(epoch):  # 2 deterministic micro-batches per epoch
        return [cls.example_batch(config, 1, torch.Generator().manual_seed(10 * epoch + i), num_frames=4)
                for i in range(2)]

    seen = []
    train = TrainConfig(**{**BASE, "run_dir": str(tmp_path / "run"), "batch_size": 1, "grad_accum": 2,
                           "freeze_backbone_epochs": 1, "warmup_steps": 0, "grad_checkpointing": True,
                           "checkpoint_every": 0, "class_weights": "sqrt_inv_freq"})
    weights = compute_class_weights("sqrt_inv_freq", [30477, 37144, 1519, 754, 889, 2426, 174, 994])
    trainer = Trainer(model, train, batches, class_weights=weights,
                      on_step_end=lambda t: seen.append(_state(t.unwrapped_model)))
    assert trainer.unwrapped_model.grad_checkpointing is True
    assert torch.equal(trainer.unwrapped_model.class_weights, weights)
    result = trainer.fit()
    assert result.global_step == 2 and len(seen) == 2
    weights_only = [k for k in initial if initial[k].is_floating_point() and "running" not in k]
    backbone = [k for k in weights_only if k.startswith("backbone.")]
    head = [k for k in weights_only if not k.startswith("backbone.")]
    assert backbone and head
    assert all(torch.equal(seen[0][k], initial[k]) for k in backbone)  # epoch 1: frozen
    assert any(not torch.equal(seen[0][k], initial[k]) for k in head)
    assert any(not torch.equal(seen[1][k], seen[0][k]) for k in backbone)  # epoch 2: fine-tuned
    reloaded = models.load_model(tmp_path / "run" / "final")
    assert all(torch.equal(v, seen[1][k]) for k, v in _state(reloaded).items())


# --------------------------------------------------------------------------------------- configuration


def test_yaml_config_with_overrides_and_errors_naming_file_and_key(tmp_path):
    path = tmp_path / "recipe.yaml"
    path.write_text("num_samples: 64\nmodel: {norm: group}\ntrain:\n  epochs: 3\n  lr_head: 2.0e-4\n"
                    "  decay_epochs: [1, 2]\n  mixed_precision: bf16\n")
    overrides = ["--train.lr_head=1e-3", "train.decay_epochs=4,5", "model.dropout=0"]
    config = load_config(ScriptConfig, path, overrides)
    assert (config.num_samples, config.train.epochs, config.train.lr_head) == (64, 3, 1e-3)
    assert config.train.decay_epochs == [4, 5] and config.train.mixed_precision == "bf16"
    assert config.model == {"norm": "group", "dropout": 0}
    assert config.train.batch_size == 4  # the script's default survives a partial file
    saved = save_config(config, tmp_path / "saved.yaml")
    assert load_config(ScriptConfig, saved) == config

    path.write_text("train:\n  lr_hed: 1.0e-3\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml.*train\.lr_hed: unknown key; did you mean 'lr_head"):
        load_config(ScriptConfig, path)
    path.write_text("train:\n  epochs: many\n")
    with pytest.raises(ConfigError, match=r"recipe\.yaml.*train\.epochs: expected an integer, got 'many'"):
        load_config(ScriptConfig, path)
    with pytest.raises(ConfigError, match=r"command line: train\.warmup: unknown key"):
        apply_overrides(ScriptConfig(), ["train.warmup=3"])
    with pytest.raises(ConfigError, match=r"train\.epochs: must be >= 1"):
        apply_overrides(ScriptConfig(), ["train.epochs=0"])
    with pytest.raises(ConfigError, match=r"train\.mixed_precision: expected one of"):
        apply_overrides(ScriptConfig(), {"train.mixed_precision": "fp8"})


def test_yaml_config_on_a_base_file(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "base.yaml").write_text("num_samples: 64\nmodel: {norm: group, dropout: 0.1}\n"
                                        "train: {epochs: 3, decay_epochs: [1, 2]}\n")
    child = tmp_path / "configs" / "child.yaml"
    child.write_text("base: ../base.yaml\nmodel: {dropout: 0.0}\ntrain: {decay_epochs: [2]}\n")
    config = load_config(ScriptConfig, child)
    assert config.num_samples == 64 and config.train.epochs == 3  # from the base
    assert config.model == {"norm": "group", "dropout": 0.0}  # mappings merge key by key
    assert config.train.decay_epochs == [2]  # lists replace

    (tmp_path / "base.yaml").write_text("base: configs/child.yaml\n")
    with pytest.raises(ConfigError, match=r"includes itself"):
        load_config(ScriptConfig, child)
    child.write_text("base: ../missing.yaml\n")
    with pytest.raises(ConfigError, match=r"missing\.yaml'?: no such file"):
        load_config(ScriptConfig, child)


def test_command_line(tmp_path, capsys):
    path = tmp_path / "base.yaml"
    save_config(ScriptConfig(num_samples=12), path)
    argv = ["--config", str(path), "--train.epochs", "5", "train.grad_checkpointing=true",
            "--train.run_dir=/tmp/x y", "--train.decay_epochs=[3, 4]"]
    config = parse_config(ScriptConfig, argv)
    assert (config.num_samples, config.train.epochs, config.train.grad_checkpointing) == (12, 5, True)
    assert config.train.run_dir == "/tmp/x y" and config.train.decay_epochs == [3, 4]
    with pytest.raises(SystemExit) as done:
        parse_config(ScriptConfig, ["--config", str(path), "--train.lr_head=3e-4", "--print-config"])
    assert done.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    assert printed["train"]["lr_head"] == 3e-4 and printed == config_to_dict(
        apply_overrides(ScriptConfig(num_samples=12), ["train.lr_head=3e-4"]))
    with pytest.raises(SystemExit) as done:
        parse_config(ScriptConfig, ["--help"], prog="taad.py")
    assert done.value.code == 0 and "--train.lr_backbone" in capsys.readouterr().out
    with pytest.raises(SystemExit) as done:
        parse_config(ScriptConfig, ["--train.epoch=3"], prog="taad.py")
    assert done.value.code == 2
    error = capsys.readouterr().err
    assert "taad.py: error: command line: train.epoch: unknown key; did you mean 'epochs'" in error
