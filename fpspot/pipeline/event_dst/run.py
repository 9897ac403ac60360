"""The event DST recipe's order of work (``recipes/event_dst.py`` calls :func:`main`): read the config, split
the games, write the shards, train with the project's trainer and the held-out evaluation, export the release
folder; or, with ``export.model``, only fit the pipelines of an existing model."""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import asdict
from pathlib import Path

from fpspot.pipeline.event_dst.config import RecipeConfig
from fpspot.pipeline.event_dst.data import (WindowBatches, prepare_shards, split_keys, strength_table,
                                            training_corruptor, window_config)
from fpspot.pipeline.event_dst.heldout import HeldOut
from fpspot.pipeline.event_dst.release import export_release
from fpspot.train.config import ConfigError, parse_config


def main(argv: list[str] | None = None, *, default_config: str | Path | None = None, default_gt: str | Path = "",
         prog: str = "recipes/event_dst.py", description: str = "Train the event-sequence DST.") -> int:
    """Run the recipe with command-line ``argv`` over ``default_config`` (a YAML file; ``None``: the dataclass
    defaults); ``default_gt`` is the training play-by-play when ``data.gt`` is empty. Returns the exit code; an
    error in the input prints one line (:func:`fpspot.cli.exit_on_user_error`)."""
    config = parse_config(RecipeConfig, argv, default_config=default_config, prog=prog, description=description)
    try:
        return _run(config, default_gt)
    except Exception as err:
        from fpspot.cli import exit_on_user_error

        return exit_on_user_error(prog, err)


def _run(config: RecipeConfig, default_gt: str | Path) -> int:
    config.data.gt = config.data.gt or str(default_gt)
    if not config.data.gt:
        raise ConfigError("data.gt: no training play-by-play given (set data.gt=PATH)")
    import torch

    from fpspot.data.corrupt import CorruptionParams
    from fpspot.data.footpass import read_playbyplay
    from fpspot.models import build
    from fpspot.train.trainer import Trainer, make_accelerator
    from fpspot.utils.threads import cpu_threads_per_process

    torch.set_num_threads(cpu_threads_per_process(config.cpu_threads))
    started = time.perf_counter()
    data = config.data
    gt = read_playbyplay(data.gt, "gt")
    train_keys, held_keys = split_keys(gt, data.holdout_games)
    params = CorruptionParams.load(data.corruption or None)
    if config.export.model:  # no training: fit the pipelines of an existing model
        release = export_release(Path(config.train.run_dir), gt, held_keys, params, config,
                                 model_dir=config.export.model)
        print(f"release folder: {release} ({(time.perf_counter() - started) / 60:.1f} min)")
        return 0
    accelerator = make_accelerator(config.train)
    with accelerator.main_process_first():
        manifest = prepare_shards(data, gt, train_keys)
    table = strength_table(gt, train_keys[::6], params)
    accelerator.print(f"{len(train_keys)} training halves ({manifest['num_samples']} windows in "
                      f"{len(manifest['shards'])} shards), {len(held_keys)} held-out halves; strength -> events "
                      f"per minute: {table}; setup {time.perf_counter() - started:.0f} s")
    model = build("event_dst", window=data.window, strength_density=table, **asdict(config.model))
    corruptor = training_corruptor(config, params)
    estimate = None
    if data.max_tokens > 0:
        from fpspot.data.event_windows import iter_windows

        estimate = list(itertools.islice(iter_windows(gt.subset(train_keys), window_config(data)),
                                         0, None, max(1, manifest["num_samples"] // data.bucket_estimate)))
    batches = WindowBatches(data, manifest, corruptor, config.train.batch_size, accelerator.process_index,
                            accelerator.num_processes, config.train.seed, estimate)
    if data.max_tokens > 0:
        accelerator.print(f"token-budget batches of <= {data.max_tokens} input events: {len(batches)} per epoch "
                          f"and process")
    weights = counts = None
    if config.train.class_weights != "none":
        from fpspot.train.class_weights import class_weights_from_manifest, counts_from_manifest

        weights = class_weights_from_manifest(config.train.class_weights, manifest, kind="taad", subset="all")
        counts = counts_from_manifest(manifest, "all")
    trainer = Trainer(model, config.train, batches, evaluate=HeldOut(gt, held_keys, params, config.eval),
                      accelerator=accelerator, hparams=config, class_weights=weights, class_counts=counts)
    result = trainer.fit()
    if config.export.enabled and accelerator.is_main_process:
        release = export_release(Path(config.train.run_dir), gt, held_keys, params, config, accelerator.print)
        accelerator.print(f"release folder: {release} (copy it to recipes/pretrained/event_dst/)")
    accelerator.wait_for_everyone()
    accelerator.print(f"done in {(time.perf_counter() - started) / 60:.1f} min: best {config.train.best_metric} "
                      f"{result.best_score} (epoch {trainer.state.best_epoch}); best model {result.best_dir}; "
                      "last metrics "
                      f"{json.dumps({k: v for k, v in result.last_metrics.items() if isinstance(v, float)})}")
    accelerator.end_training()
    return 0
