"""The work of each pipeline stage: data, clip shards, frame-model training, inference, DST windows, DST
training and decoding, post-processing and scoring. Every function here is one stage's body; the order, the
fingerprints and the restart logic live in :mod:`fpspot.pipeline.run` and :mod:`fpspot.pipeline.stages`.

Functions marked *every process* are called on all processes of an ``accelerate launch`` (training: DDP;
inference: the halves are shared out and the results gathered); the others run on the main process only.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from fpspot.pipeline.config import FRAME_ARCHS, DSTSection, FrameSection, PipelineConfig, PostSection, SynthSection
from fpspot.pipeline.layout import HalfSet, RunLayout
from fpspot.utils.atomic import atomic_open

# ------------------------------------------------------------------------------------------------ data


def synth_config(section: SynthSection, *, calibration: bool = False):
    """The :class:`fpspot.data.synth.SynthConfig` of the main dataset or of the calibration games."""
    from fpspot.data.synth import SynthConfig

    if calibration:  # other games (seed + 1), all in their "train" split: never trained on by this run
        return SynthConfig(games=section.calib_games, minutes=section.minutes, size=tuple(section.size),
                           seed=section.seed + 1, val_games=0, crf=section.crf, gop=section.gop,
                           class_balance=section.class_balance)
    return SynthConfig(games=section.games, minutes=section.minutes, size=tuple(section.size), seed=section.seed,
                       val_games=section.val_games, crf=section.crf, gop=section.gop,
                       class_balance=section.class_balance)


def generate_data(section: SynthSection, run: RunLayout, log=print) -> dict:
    """Write the synthetic main dataset (train + val) and the calibration games. Main process."""
    from fpspot.data.synth import generate_dataset

    info = {}
    targets = [("synth", run.synth_dir, synth_config(section))]
    if section.calib_games > 0:
        targets.append(("calib", run.calib_synth_dir, synth_config(section, calibration=True)))
    for name, out, config in targets:
        generate_dataset(out, config, progress=lambda game, name=name: log(f"  {name}: game {game} written"))
        info[name] = config.splits()
    return info


def write_shards(section: FrameSection, data: HalfSet, out_dir: Path, progress=None) -> dict:
    """Clip shards of ``data`` for the frame model (``kind`` = its arch, ``frame_hw`` = its frames). Main process."""
    from fpspot.data.shards import ShardConfig, write_clip_shards

    s = section.shards
    config = ShardConfig(kind=section.arch, clip_len=s.clip_len, frame_hw=section.frame_hw, tracklets=s.tracklets,
                         per_class_cap=s.per_class_cap, draws=s.draws, background_per_half=s.background_per_half,
                         samples_per_shard=s.samples_per_shard, require_box=s.require_box, seed=s.seed, crf=s.crf)
    manifest = write_clip_shards(data.data_dir, data.split, out_dir, config, progress=progress)
    return {"num_samples": manifest["num_samples"], "shards": len(manifest["shards"]),
            "class_counts": manifest["class_counts"]["box_visible"]}


# -------------------------------------------------------------------------------------------- training


CLIP_TRACK_FIELDS = ("rois", "masks", "labels", "labels_sharp", "nodes")  # (B, M, T, ...) fields of a clip batch


def temporal_crop(batch: dict, length: int, rng: np.random.Generator, margin: int = 2) -> dict:
    """Cut every clip of a batch to ``length`` frames: around one of its labelled frames (chosen at random,
    with ``margin`` frames of context on both sides where the clip allows), anywhere in a clip without a
    label. ``video (B, 3, T, H, W)`` and the ``(B, M, T, ...)`` track fields are cut alike; each clip's
    ``meta`` gets ``crop_start``. A training clip costs in proportion to its frames, and the labelled frames
    are the informative ones, so shorter clips around them learn faster per second of compute."""
    video = batch["video"]
    num_frames = video.shape[2]
    if length >= num_frames:
        return batch
    labelled = (batch["labels_sharp"] > 0).any(dim=1)  # (B, T)
    starts = []
    for b in range(video.shape[0]):
        frames = torch.nonzero(labelled[b]).flatten().tolist()
        if frames:
            event = frames[int(rng.integers(len(frames)))]
            lo = min(max(event + margin - length + 1, 0), num_frames - length)
            hi = max(min(event - margin, num_frames - length), lo)
            starts.append(int(rng.integers(lo, hi + 1)))
        else:
            starts.append(int(rng.integers(0, num_frames - length + 1)))
    out = dict(batch)
    out["video"] = torch.stack([video[b, :, s:s + length] for b, s in enumerate(starts)])
    for name in CLIP_TRACK_FIELDS:
        if name in batch:
            out[name] = torch.stack([batch[name][b, :, s:s + length] for b, s in enumerate(starts)])
    if "meta" in batch:
        out["meta"] = [{**meta, "crop_start": s} for meta, s in zip(batch["meta"], starts)]
    return out


class ClipBatches:
    """The training batches of one epoch as the model wants them: ``video`` contiguous (the loader yields a
    channels-last-3d view; on CPU the backward pass of the 3D convolutions is about 8x slower on that
    layout) and, with ``crop_frames``, clips cut by :func:`temporal_crop` (seeded by ``(seed, epoch, batch
    index)``, so a resumed epoch cuts the same windows). Keeps ``len()``."""

    def __init__(self, loader, crop_frames: int = 0, seed: int = 0, epoch: int = 0):
        self.loader, self.crop_frames, self.seed, self.epoch = loader, crop_frames, seed, epoch

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self) -> Iterator[dict]:
        for index, batch in enumerate(self.loader):
            if self.crop_frames:
                batch = temporal_crop(batch, self.crop_frames, np.random.default_rng([self.seed, self.epoch, index]))
            batch["video"] = batch["video"].contiguous()
            yield batch


def report_metrics(report) -> dict[str, Any]:
    """The figures a trainer logs from an evaluation :class:`~fpspot.eval.metric.Report`."""
    return {"macro_f1": report.macro_f1, "micro_f1": report.micro_f1,
            "f1": {name: stats.f1 for name, stats in report.per_class.items()}}


def frame_evaluator(section: FrameSection, calib: HalfSet):
    """``evaluate(model)`` for the trainer: the model over every calibration half (shared out over
    processes), the baseline's NMS events, the official metric. Every process."""
    from fpspot.eval import evaluate
    from fpspot.infer.api import DEFAULT_BATCH_SIZE, predict_halves
    from fpspot.infer.engine import EngineConfig
    from fpspot.infer.sources import dataset_halves

    halves = dataset_halves(calib.data_dir, calib.split, frame_hw=section.frame_hw)
    engine = EngineConfig(scheme=section.infer.scheme,
                          batch_size=section.infer.batch_size or DEFAULT_BATCH_SIZE[section.infer.scheme])

    def run(model: torch.nn.Module) -> dict:
        pred = predict_halves(model, halves, engine, show_progress=False)
        return report_metrics(evaluate(pred, calib.ground_truth))

    return run


def _finish_trackers(trainer) -> None:
    """End the trainer's TensorBoard writers without ``end_training`` (which would also end the process
    group the next stages still use)."""
    for tracker in trainer.accelerator.trackers:
        tracker.finish()
    trainer.accelerator.trackers = []


def _reset_accelerator_state() -> None:
    """Let the next stage build its own Accelerator (its own accumulation, prepared model); the process
    group and the device (``PartialState``) are kept."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=False)
    GradientState._reset_state()


def _fit(model, config, train_data, evaluate, class_weights, class_counts, hparams) -> dict:
    """Train ``model`` with a fresh Accelerator (the process group is kept) and return the stage's record info:
    steps, epochs, best score and the evaluation history. Every process."""
    from fpspot.train.trainer import Trainer

    _reset_accelerator_state()
    trainer = Trainer(model, config, train_data, evaluate, class_weights=class_weights, class_counts=class_counts,
                      hparams=hparams)
    try:
        result = trainer.fit()
    finally:
        _finish_trackers(trainer)
    return {"steps": result.global_step, "epochs": result.epochs_completed, "best_score": result.best_score,
            "history": result.history}


def train_frame_model(section: FrameSection, shard_dir: Path, out_dir: Path, calib: HalfSet | None, seed: int,
                      hparams: Any = None) -> dict:
    """Train the frame model on the clip shards; the best checkpoint on the calibration halves (macro F1) is
    exported to ``out_dir/best``, the last to ``out_dir/final``. Resumes from ``out_dir/checkpoints``. Every
    process."""
    from fpspot.data.augment import AugmentConfig
    from fpspot.data.loader import train_loader
    from fpspot.data.shards import read_manifest
    from fpspot.pipeline.stages import pipeline_state
    from fpspot.models import build
    from fpspot.train.class_weights import class_weights_from_manifest, counts_from_manifest

    state = pipeline_state()
    manifest = read_manifest(shard_dir)
    config = replace(section.train, run_dir=str(out_dir))
    torch.manual_seed(seed)
    model = build(section.arch, **section.model)
    weights = class_weights_from_manifest(config.class_weights, manifest, kind=section.arch)
    loader = section.loader
    augment = AugmentConfig() if loader.augment else None

    def train_data(epoch: int) -> ClipBatches:
        clips = train_loader(shard_dir, batch_size=config.batch_size, epoch=epoch, seed=config.seed,
                             num_workers=loader.num_workers, augment=augment,
                             samples_per_epoch=loader.samples_per_epoch or None, shuffle_buffer=loader.shuffle_buffer,
                             rank=state.process_index, world_size=state.num_processes)
        return ClipBatches(clips, loader.crop_frames, seed=config.seed + 7919 * state.process_index, epoch=epoch)

    evaluate = frame_evaluator(section, calib) if calib is not None else None
    return _fit(model, config, train_data, evaluate, weights, counts_from_manifest(manifest), hparams)


# ------------------------------------------------------------------------------------------- inference


def _nms_first_model(logits, half):
    """Events of the first model of a :class:`~fpspot.infer.api.FrameModels` pass (the baseline's NMS)."""
    from fpspot.infer.api import nms_events
    from fpspot.schema import NUM_CLASSES

    return nms_events(logits[:NUM_CLASSES], half)


def frame_inference(section: FrameSection, model_dir: Path, sets: Sequence[HalfSet], run: RunLayout,
                    gnn_dir: Path | None = None) -> dict:
    """Per-half logits (``logits/frame/<set>/``, with a GNN model also ``logits/frame/<set>/gnn/``) and the
    frame model's NMS events (``predictions/frame_<set>.json``) of every set; both models run in one pass over
    the video. A set whose predictions file exists is done (it is written after all its logits). Every
    process (halves shared out, events gathered); the main process writes the predictions."""
    from fpspot.data.footpass import write_playbyplay
    from fpspot.infer.api import DEFAULT_BATCH_SIZE, FrameModels, predict_halves
    from fpspot.infer.engine import EngineConfig
    from fpspot.infer.sources import dataset_halves
    from fpspot.models import load_model
    from fpspot.pipeline.stages import pipeline_state

    state = pipeline_state()
    model = load_model(model_dir)
    to_events = None
    if gnn_dir is not None:
        model = FrameModels(main=model, gnn=load_model(gnn_dir))
        to_events = _nms_first_model
    engine = EngineConfig(scheme=section.infer.scheme,
                          batch_size=section.infer.batch_size or DEFAULT_BATCH_SIZE[section.infer.scheme])
    info = {}
    for half_set in sets:
        output = run.raw_predictions("frame", half_set.name)
        if output.is_file():
            continue
        halves = dataset_halves(half_set.data_dir, half_set.split, frame_hw=section.frame_hw)
        pred = predict_halves(model, halves, engine, logits_dir=run.logits("frame", half_set.name), to_events=to_events)
        if state.is_main_process:
            write_playbyplay(output, pred)
        state.wait_for_everyone()
        info[half_set.name] = {"halves": len(pred.keys), "events": sum(len(v) for v in pred.events.values())}
    return info


# ----------------------------------------------------------------------------------------------- DST


def gnn_logits_dir(run: RunLayout, set_name: str, fused: bool) -> Path | None:
    return run.logits("frame", set_name) / "gnn" if fused else None


def write_windows(section: DSTSection, train: HalfSet, run: RunLayout, fused: bool) -> dict:
    """Per-half DST inputs of the training halves (``dst_windows/train``). Main process."""
    from fpspot.data.dst_windows import write_dst_windows

    manifest = write_dst_windows(train.data_dir, train.split, run.logits("frame", train.name), run.dst_windows("train"),
                                 gnn_logits_dir=gnn_logits_dir(run, train.name, fused), dtype=section.windows.dtype)
    return {"halves": manifest["num_halves"], "class_counts": manifest["class_counts"]["all"]}


def dst_evaluator(section: DSTSection, calib: HalfSet, run: RunLayout, fused: bool):
    """``evaluate(model)``: the DST decoded over the calibration halves from their logits files, official
    metric. Every process (halves shared out)."""
    from fpspot.eval import evaluate
    from fpspot.infer.dst import dst_predictions

    def run_eval(model: torch.nn.Module) -> dict:
        pred = dst_predictions(model, calib.data_dir, calib.split, run.logits("frame", calib.name),
                               gnn_logits_dir(run, calib.name, fused), batch_size=section.decode_batch_size or None)
        return report_metrics(evaluate(pred, calib.ground_truth))

    return run_eval


def train_dst(section: DSTSection, run: RunLayout, calib: HalfSet | None, seed: int, fused: bool,
              hparams: Any = None) -> dict:
    """Train the DST on random windows of the training halves; best on the calibration halves. Every process."""
    from fpspot.data.dst_windows import DSTInputs, dst_train_loader
    from fpspot.pipeline.stages import pipeline_state
    from fpspot.models import build
    from fpspot.train.class_weights import compute_class_weights, counts_from_manifest

    state = pipeline_state()
    inputs = DSTInputs(run.dst_windows("train"))
    config = replace(section.train, run_dir=str(run.trainer("dst")))
    torch.manual_seed(seed)
    model = build("dst", **section.model)
    counts = counts_from_manifest(inputs.manifest, "all")
    weights = None if config.class_weights == "none" else compute_class_weights(config.class_weights, counts)
    windows = section.windows

    def train_data(epoch: int):
        return dst_train_loader(inputs, config.batch_size, epoch, config.seed, rank=state.process_index,
                                world_size=state.num_processes, window=section.window,
                                windows_per_half=windows.windows_per_half, augment=windows.augment,
                                num_workers=windows.num_workers)

    evaluate = dst_evaluator(section, calib, run, fused) if calib is not None else None
    return _fit(model, config, train_data, evaluate, weights, counts, hparams)


def dst_inference(section: DSTSection, sets: Sequence[HalfSet], run: RunLayout, fused: bool) -> dict:
    """The DST's events of every set (``predictions/dst_<set>.json``) from the frame logits files. Every
    process (halves shared out, events gathered); the main process writes."""
    from fpspot.data.footpass import write_playbyplay
    from fpspot.pipeline.stages import pipeline_state
    from fpspot.infer.dst import dst_predictions
    from fpspot.models import load_model

    state = pipeline_state()
    model = load_model(run.model_dir("dst"))
    info = {}
    for half_set in sets:
        output = run.raw_predictions("dst", half_set.name)
        if output.is_file():
            continue
        pred = dst_predictions(model, half_set.data_dir, half_set.split, run.logits("frame", half_set.name),
                               gnn_logits_dir(run, half_set.name, fused), batch_size=section.decode_batch_size or None)
        if state.is_main_process:
            write_playbyplay(output, pred)
        state.wait_for_everyone()
        info[half_set.name] = {"halves": len(pred.keys), "events": sum(len(v) for v in pred.events.values())}
    return info


# ------------------------------------------------------------------------------------ post-processing


def read_streams(run: RunLayout, models: Sequence[str], set_name: str) -> dict:
    from fpspot.data.footpass import read_playbyplay

    return {name: read_playbyplay(run.raw_predictions(stream_file(name), set_name), "pred") for name in models}


def stream_file(name: str) -> str:
    """Post-processing stream name (the frame model's arch, or ``dst``) -> raw predictions file prefix."""
    return "frame" if name in FRAME_ARCHS else name


def fit_post(section: PostSection, models: Sequence[str], calib: HalfSet | None, run: RunLayout):
    """The post-processing pipeline (saved to ``post/pipeline.yaml``): fitted on the calibration halves by
    :func:`fpspot.post.fit.fit_pipeline`, or no step at all (the primary model's events) without them or
    with ``post.fit: false``. Main process."""
    from fpspot.data.footpass import read_playbyplay
    from fpspot.post.fit import FitOptions, fit_pipeline
    from fpspot.post.pipeline import Pipeline

    names = list(models)
    primary = section.primary or None
    if section.fit and calib is not None:
        options = FitOptions(primary=primary, weights=tuple(section.weights), window=section.window,
                             shrink=section.shrink, objective=section.objective)
        pipeline = fit_pipeline(read_playbyplay(calib.ground_truth, "gt"), read_streams(run, names, calib.name),
                                options)
        header = (f"Fitted by the recipe on the calibration halves ({calib.data_dir}, split {calib.split}); "
                  f"inputs: {', '.join(names)}")
    else:
        chosen = primary or names[-1]
        pipeline = Pipeline(names, [], chosen, {"fitted_on": [], "primary": chosen})
        header = ("No post-processing fitted (no calibration halves or post.fit: false): "
                  f"the {chosen} events as they are")
    pipeline.save(run.post_pipeline, header=header)
    return pipeline


def apply_post(models: Sequence[str], sets: Sequence[HalfSet], run: RunLayout) -> dict:
    """``predictions_<split>.json`` of every evaluation set: the fitted pipeline applied to the raw model
    predictions. Main process."""
    from fpspot.data.footpass import write_playbyplay
    from fpspot.post.pipeline import Pipeline

    pipeline = Pipeline.load(run.post_pipeline)
    info = {"primary": pipeline.info.get("primary"), "steps": [s["step"] for s in pipeline.steps]}
    for half_set in sets:
        pred = pipeline.apply(read_streams(run, models, half_set.name))
        write_playbyplay(run.predictions(half_set.name), pred)
    return info


# --------------------------------------------------------------------------------------------- scoring


def score_sets(sets: Sequence[HalfSet], run: RunLayout, models: Sequence[str], plots: bool) -> dict:
    """``metrics_<split>.json`` (the evaluator's ``--json`` format) and ``plots/<split>.png`` of the final
    predictions, and macro / micro F1 of each model's raw predictions. Main process."""
    from fpspot.eval import evaluate
    from fpspot.eval.report import plot_report

    out = {}
    for half_set in sets:
        report = evaluate(run.predictions(half_set.name), half_set.ground_truth)
        with atomic_open(run.metrics(half_set.name)) as handle:
            json.dump(report.to_json(), handle, indent=2)
        if plots:
            plot_report(report, run.plot(half_set.name))
        rows = {"final": _f1(report)}
        for name in models:
            rows[name] = _f1(evaluate(run.raw_predictions(stream_file(name), half_set.name), half_set.ground_truth))
        out[half_set.name] = {"halves": len(report.keys), "events": report.overall.gt, "rows": rows}
    return out


def _f1(report) -> dict[str, float]:
    return {"macro_f1": round(report.macro_f1, 4), "micro_f1": round(report.micro_f1, 4)}


def config_summary(config: PipelineConfig) -> dict[str, Any]:
    """A few settings worth showing next to the F1 table."""
    return {"frame": f"{config.frame.arch} {config.frame.model.get('backbone', '')} "
                     f"{'x'.join(str(v) for v in config.frame.frame_hw)}",
            "dst": None if config.dst is None else f"window {config.dst.window}, "
                                                   f"d_model {config.dst.model.get('d_model', 512)}"}


def mapping_rows(table: Mapping[str, Mapping[str, float]]) -> list[tuple[str, float, float]]:
    return [(name, row["macro_f1"], row["micro_f1"]) for name, row in table.items()]


__all__ = ["ClipBatches", "apply_post", "dst_evaluator", "dst_inference", "fit_post", "frame_evaluator",
           "frame_inference", "generate_data", "read_streams", "report_metrics", "score_sets", "synth_config",
           "train_dst", "train_frame_model", "write_shards", "write_windows"]
