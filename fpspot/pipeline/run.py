"""The recipes' pipeline: stages from the data to the scored predictions, restartable (see
:mod:`fpspot.pipeline.stages`), in one run directory (:mod:`fpspot.pipeline.layout`).

``run_pipeline(config, with_dst=True)`` (``recipes/taad_dst.py``)::

    data         synthetic games (main dataset + calibration games), when data.dir is empty   main process
    shards       clip shards of the training split for the frame model (and the GNN model)     main process
    train_frame  the frame model (TAAD or TAAD+GNN); best on the calibration halves             every process
    train_gnn    the TAAD+GNN model whose logits the DST fuses (when configured)                every process
    infer_frame  per-frame logits + NMS events of the train, calibration and evaluation halves  every process
    dst_windows  per-half DST inputs of the training halves                                      main process
    train_dst    the DST on random windows; best on the calibration halves                      every process
    infer_dst    DST events of the calibration and evaluation halves                            every process
    post         post-processing fitted on the calibration halves, applied to the evaluation    main process
    baselines    untrained frame model and class priors on the evaluation halves                every process
    score        metrics_<split>.json, plots, summary                                           main process

``with_dst=False`` (``recipes/taad.py``, ``recipes/taad_gnn.py``) stops the model side after ``infer_frame``
(the training halves are not inferred) and fits the post-processing on the frame model's events alone.
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from fpspot.pipeline import steps
from fpspot.pipeline.baselines import prior_scores, untrained_scores
from fpspot.pipeline.config import PipelineConfig, fingerprint, result_settings
from fpspot.pipeline.layout import HalfSet, RunLayout
from fpspot.pipeline.report import build_summary, format_summary, plot_training, write_summary
from fpspot.pipeline.stages import Stage, StageRunner, pipeline_state, stage_summary
from fpspot.train.config import ConfigError, config_to_dict, save_config
from fpspot.utils.threads import cpu_threads_per_process


def half_sets(config: PipelineConfig, run: RunLayout) -> tuple[HalfSet, HalfSet | None, list[HalfSet]]:
    """``(train, calibration or None, evaluation sets)`` of a run."""
    data = config.data
    for key, folder in (("data.dir", data.dir), ("data.calib_dir", data.calib_dir)):
        if folder and not Path(folder).is_dir():
            raise ConfigError(f"{key}: {folder!r} is not a folder (a FOOTPASS-format dataset: videos/, data/, "
                              "playbyplay_GT/)")
    root = Path(data.dir) if data.dir else run.synth_dir
    train = HalfSet("train", root, data.train_split)
    calib = None
    if data.calib_dir:
        calib = HalfSet("calib", Path(data.calib_dir), data.calib_split)
    elif config.synthetic and data.synth.calib_games > 0:
        calib = HalfSet("calib", run.calib_synth_dir, "train")
    names = list(dict.fromkeys(data.eval_splits))
    if not names:
        raise ConfigError("data.eval_splits: at least one split to score")
    if "calib" in names or (data.train_split in names):
        raise ConfigError(f"data.eval_splits {names}: the training split and 'calib' are not evaluation splits "
                          "(eval.train_split scores the training halves)")
    evals = [HalfSet(name, root, name) for name in names]
    return train, calib, evals


def run_location(path: str | Path, root: Path) -> str:
    """Where ``path`` is, for fingerprints: ``run:<relative path>`` inside the run directory ``root`` (so that a
    moved or renamed run folder keeps its stages), else the resolved absolute path (so that a relative and an
    absolute spelling of one folder agree)."""
    resolved, base = Path(path).resolve(), root.resolve()
    return f"run:{resolved.relative_to(base)}" if resolved.is_relative_to(base) else str(resolved)


def check_resume(resume: str, stage_dir: Path, section: str) -> None:
    """Refuse ``<section>.train.resume=PATH`` inside the stage's own folder: a changed setting deletes that
    folder before the stage reruns (the checkpoint would be lost), and an interrupted stage resumes from its
    last checkpoint by itself (``resume: auto``)."""
    if resume in ("auto", "none"):
        return
    if Path(resume).resolve().is_relative_to(stage_dir.resolve()):
        raise ConfigError(f"{section}.train.resume: {resume!r} is inside this run's {section} folder, which a changed "
                          "setting deletes before retraining; an interrupted stage resumes from its last checkpoint "
                          "by itself (resume: auto); to start other settings from this checkpoint, copy it out of "
                          "the run folder and give that path")


def run_pipeline(config: PipelineConfig, with_dst: bool = True) -> dict:
    """Run (or resume) the pipeline of ``config``; returns the summary (also ``<run>/summary.json``) after
    printing the official table of the final predictions and the comparison table on the main process."""
    state = pipeline_state()  # first: later process_state() calls (inference) share it
    run = RunLayout(config.run_dir)
    if with_dst and config.dst is None:
        raise ConfigError("this recipe needs a dst section (recipes/configs/taad_dst.yaml has one)")
    dst = config.dst if with_dst else None
    gnn = config.gnn if dst is not None else None
    fused = gnn is not None
    train, calib, evals = half_sets(config, run)
    for name, section in [("frame", config.frame), ("gnn", gnn), ("dst", dst)]:
        if section is not None:
            check_resume(section.train.resume, run.trainer(name), name)
    if state.is_main_process:
        run.root.mkdir(parents=True, exist_ok=True)
        save_config(config, run.config_file, header=f"resolved config of the run {config.name} "
                    f"({time.strftime('%Y-%m-%d %H:%M:%S')})")
    state.print(f"run directory {run.root} ({state.num_processes} process(es), {state.device})")
    scored = evals + ([train] if config.eval.train_split else [])
    runner = StageRunner(run.root, state)
    order: list[str] = []

    def do(stage: Stage):
        order.append(stage.name)
        return runner.run(stage)

    # ---------------------------------------------------------------- data
    def stage(name: str, settings: dict, body, outputs=(), main_only: bool = False) -> Stage:
        """A stage whose fingerprint hashes ``settings`` (kept in its record to say what changed); upstream
        stages enter as ``after: {stage: fingerprint}``."""
        plain = config_to_dict(settings)
        return Stage(name, fingerprint(plain), body, outputs=outputs, main_only=main_only, settings=plain)

    def where(path) -> str:
        return run_location(path, run.root)

    if config.synthetic:
        data_stage = stage("data", {"synth": config.data.synth},
                           lambda: steps.generate_data(config.data.synth, run, state.print),
                           outputs=[run.synth_dir, run.calib_synth_dir], main_only=True)
        do(data_stage)
        data_fp = data_stage.fingerprint
    else:
        data_fp = fingerprint({"dir": where(config.data.dir), "calib_split": config.data.calib_split,
                               "calib_dir": where(config.data.calib_dir) if config.data.calib_dir else ""})
    calib_fp = fingerprint({"data": data_fp, "calib": None if calib is None else [where(calib.data_dir), calib.split]})

    # ---------------------------------------------------------------- frame model(s)
    frame_models = [("frame", config.frame)] + ([("gnn", gnn)] if gnn is not None else [])
    train_fps = {}
    for name, section in frame_models:
        shard_stage = stage("shards" if name == "frame" else "shards_gnn",
                            {"after": {"data": data_fp}, "split": train.split, "arch": section.arch,
                             "frame_hw": section.frame_hw, "shards": section.shards},
                            lambda s=section, n=name: steps.write_shards(s, train, run.shards(n)),
                            outputs=[run.shards(name)], main_only=True)
        do(shard_stage)
        train_stage = stage(f"train_{name}",
                            {"after": {shard_stage.name: shard_stage.fingerprint, "calib": calib_fp},
                             "seed": config.seed, "arch": section.arch, "model": section.model,
                             "loader": section.loader, "train": result_settings(section.train, "train"),
                             "infer": result_settings(section.infer, "infer")},
                            lambda s=section, n=name: steps.train_frame_model(s, run.shards(n), run.trainer(n), calib,
                                                                              config.seed, hparams=config),
                            outputs=[run.trainer(name)])
        do(train_stage)
        train_fps[train_stage.name] = train_stage.fingerprint

    infer_sets = ([train] if dst is not None or config.eval.train_split else []) + ([calib] if calib else []) + evals
    infer_stage = stage("infer_frame", {"after": train_fps, "infer": result_settings(config.frame.infer, "infer"),
                                        "sets": [[s.name, where(s.data_dir), s.split] for s in infer_sets]},
                        lambda: steps.frame_inference(config.frame, run.model_dir("frame"), infer_sets, run,
                                                      run.model_dir("gnn") if fused else None),
                        outputs=[run.root / "logits" / "frame",
                                 *[run.raw_predictions("frame", s.name) for s in infer_sets]])
    do(infer_stage)
    infer_fp = infer_stage.fingerprint

    # ---------------------------------------------------------------- DST
    models = [config.frame.arch]  # post-processing streams: the frame model's events (and the DST's)
    model_fp = infer_fp
    if dst is not None:
        windows_stage = stage("dst_windows", {"after": {"infer_frame": infer_fp}, "dtype": dst.windows.dtype},
                              lambda: steps.write_windows(dst, train, run, fused),
                              outputs=[run.dst_windows("train")], main_only=True)
        do(windows_stage)
        dst_stage = stage("train_dst", {"after": {"dst_windows": windows_stage.fingerprint, "calib": calib_fp},
                                        "seed": config.seed, "model": dst.model, "windows": dst.windows,
                                        "train": result_settings(dst.train, "train")},
                          lambda: steps.train_dst(dst, run, calib, config.seed, fused, hparams=config),
                          outputs=[run.trainer("dst")])
        do(dst_stage)
        dst_sets = ([calib] if calib else []) + scored
        dst_infer_stage = stage("infer_dst", {"after": {"train_dst": dst_stage.fingerprint},
                                              "sets": [s.name for s in dst_sets]},
                                lambda: steps.dst_inference(dst, dst_sets, run, fused),
                                outputs=[run.raw_predictions("dst", s.name) for s in dst_sets])
        do(dst_infer_stage)
        model_fp = dst_infer_stage.fingerprint
        models.append("dst")

    # ---------------------------------------------------------------- post-processing, baselines, scores
    def post() -> dict:
        steps.fit_post(config.post, models, calib, run)
        return steps.apply_post(models, scored, run)

    post_stage = stage("post", {"after": {"models": model_fp, "infer_frame": infer_fp}, "post": config.post,
                                "models": models, "scored": [s.name for s in scored]}, post,
                       outputs=[run.post_pipeline, *[run.predictions(s.name) for s in scored]], main_only=True)
    post_info = do(post_stage)

    baselines: dict = {}
    if config.eval.baselines:
        def run_baselines() -> dict:
            untrained = untrained_scores(config.frame.arch, config.frame.model, config.seed, evals,
                                         config.frame.infer.scheme, config.frame.infer.batch_size or None)
            out = {}
            for half_set in evals:
                out[half_set.name] = {"untrained": untrained[half_set.name],
                                      "prior": prior_scores(train, half_set, config.eval.prior_seeds)}
                if state.is_main_process:
                    import json

                    from fpspot.utils.atomic import atomic_open

                    with atomic_open(run.baselines(half_set.name)) as handle:
                        json.dump(out[half_set.name], handle, indent=1)
            return out

        baselines = do(stage("baselines", {"after": {"data": data_fp}, "seed": config.seed, "arch": config.frame.arch,
                                           "model": config.frame.model,
                                           "infer": result_settings(config.frame.infer, "infer"),
                                           "prior_seeds": config.eval.prior_seeds, "sets": [s.name for s in evals]},
                             run_baselines, outputs=[run.baselines(s.name) for s in evals]))

    def score() -> dict:
        scores = steps.score_sets(scored, run, models, config.eval.plots)
        if config.eval.plots:
            plot_training(run, [name for name, _ in frame_models] + (["dst"] if dst is not None else []),
                          run.plot("training"))
        return scores

    scores = do(stage("score", {"after": {"post": post_stage.fingerprint}, "plots": config.eval.plots,
                                "train_split": config.eval.train_split}, score,
                      outputs=[*[run.metrics(s.name) for s in scored], run.root / "plots"], main_only=True))

    summary = build_summary(scores, baselines, stage_summary(runner, order), post_info,
                            steps.config_summary(config))
    if state.is_main_process:
        write_summary(run, summary)
        from fpspot.eval import evaluate

        for half_set in evals:
            state.print(f"\n=== {config.name}: final predictions on the {half_set.name} halves "
                        f"({run.predictions(half_set.name)}) ===")
            state.print(evaluate(run.predictions(half_set.name), half_set.ground_truth).table())
        state.print(format_summary(summary))
        state.print(f"\nrun directory: {run.root}  (tensorboard --logdir {run.root})")
        state.print("  " + ", ".join(str(path.relative_to(run.root)) for path in (
            *[run.predictions(s.name) for s in scored], *[run.metrics(s.name) for s in scored], run.summary,
            *[run.model_dir(name) for name in [n for n, _ in frame_models] + (["dst"] if dst is not None else [])])))
    state.wait_for_everyone()
    return summary


def main(recipe: str, default_config: str | Path, argv=None, description: str | None = None) -> int:
    """Command line of a recipe: parse ``[--config FILE] [--key=value ...]``, check the recipe's needs, run,
    and end the process group."""
    from fpspot.train.config import parse_config

    config = parse_config(PipelineConfig, argv, default_config=default_config, prog=f"recipes/{recipe}.py",
                          description=description)
    import torch

    torch.set_num_threads(cpu_threads_per_process(config.cpu_threads))
    if recipe == "taad_gnn" and config.frame.arch != "taad_gnn":
        config = replace(config, frame=replace(config.frame, arch="taad_gnn"))
    if recipe == "taad" and config.frame.arch != "taad":
        raise SystemExit(f"recipes/taad.py: frame.arch is {config.frame.arch!r}; use recipes/taad_gnn.py for a "
                         "TAAD+GNN model")
    state = pipeline_state()
    try:
        run_pipeline(config, with_dst=recipe == "taad_dst")
    except KeyboardInterrupt:
        state.print(f"recipes/{recipe}.py: interrupted; run the same command again to resume (finished stages are "
                    "skipped, training restarts from its last checkpoint)", file=sys.stderr)
        return 130
    except Exception as err:
        from fpspot.cli import exit_on_user_error

        return exit_on_user_error(f"recipes/{recipe}.py", err, state.print)
    finally:
        state.destroy_process_group()
    return 0


__all__ = ["half_sets", "main", "run_pipeline"]
