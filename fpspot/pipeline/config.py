"""Configuration of the recipes (``recipes/taad.py``, ``taad_gnn.py``, ``taad_dst.py``): one dataclass tree, read
from ``recipes/configs/*.yaml`` with command-line overrides of any field (:func:`fpspot.train.config.parse_config`).

::

    name: taad_dst                  run directory runs/<name> (``run_root``/``name``)
    data:      where the halves come from (a FOOTPASS-format folder, or synthetic games generated on first use)
    frame:     the frame model (TAAD or TAAD+GNN): model config, clip shards, loader, trainer, inference
    gnn:       optional second frame model (TAAD+GNN) whose logits the DST fuses (``dst.model.use_gnn_logits``)
    dst:       optional DST: model config, windows, trainer, decoding
    post:      post-processing fitted on the calibration halves
    eval:      which baselines to score, plots

Three sets of halves (:class:`HalfSet`): ``train`` (the frame model's clips, the DST's windows), ``calib``
(held out: never trained on; picks the best checkpoints and fits the post-processing) and the evaluation
splits (``data.eval_splits``, reported only). With synthetic data the calibration halves are separate games
generated with another seed (``data.synth.calib_games``); with real data give ``data.calib_dir`` /
``data.calib_split``, or leave ``calib_dir`` empty to run without calibration (last checkpoints, no fitted
post-processing).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from fpspot.schema import ACTION_CLASSES
from fpspot.train.config import ConfigError, TrainConfig, config_to_dict

FRAME_ARCHS = ("taad", "taad_gnn")
#: What the recipes' evaluations return (``fpspot.pipeline.steps.report_metrics``): the names ``best_metric`` picks.
EVAL_METRICS = ("macro_f1", "micro_f1", *(f"f1/{name}" for name in ACTION_CLASSES))
#: Trainer settings that change how a run is logged, saved, resumed or batched for inference, never the model or
#: the predictions: left out of the stage fingerprints, so changing one does not retrain (:func:`result_settings`).
BOOKKEEPING = {"train": ("log_every", "checkpoint_every", "checkpoint_keep", "resume", "run_dir"),
               "infer": ("batch_size",)}


@dataclass
class SynthSection:
    """Synthetic games written by :func:`fpspot.data.synth.generate_dataset` when ``data.dir`` is empty.

    ``games`` of the main dataset (the last ``val_games`` form the ``val`` split, the others ``train``),
    ``calib_games`` more games with seed ``seed + 1`` in a dataset of their own (their ``train`` split is the
    calibration set), ``minutes`` per game (both halves), video frame ``size`` ``[H, W]`` (render at the
    model's ``frame_hw``: no resizing, sharpest cues), ``crf`` / ``gop`` of the videos, ``class_balance``
    (0: the real class mix; 0.75: nearly flat, so that every class has events to learn from and to score;
    :func:`fpspot.data.synth.class_balance_factors`).
    """

    games: int = 6
    val_games: int = 1
    calib_games: int = 1
    minutes: float = 2.0
    size: list[int] = field(default_factory=lambda: [64, 112])
    seed: int = 0
    crf: int = 23
    gop: int = 50
    class_balance: float = 0.0

    def validate(self) -> None:
        if self.games < 2 or not 1 <= self.val_games < self.games:
            raise ConfigError(f"data.synth: need games >= 2 and 1 <= val_games < games, got games={self.games}, "
                              f"val_games={self.val_games}")
        if self.calib_games < 0 or self.minutes <= 0:
            raise ConfigError("data.synth: calib_games must be >= 0 and minutes > 0")
        if self.class_balance < 0:
            raise ConfigError(f"data.synth.class_balance: 0 (the real class mix) or more, got {self.class_balance}")
        if len(self.size) != 2 or any(v <= 0 or v % 2 for v in self.size):
            raise ConfigError(f"data.synth.size: [H, W] with positive even values, got {self.size}")


@dataclass
class DataSection:
    """``dir``: a FOOTPASS-format dataset folder; empty: synthetic games generated into ``<run>/data/synth``.
    ``train_split`` trains the models; ``eval_splits`` are scored and reported; ``calib_dir`` /
    ``calib_split``: held-out halves (empty ``calib_dir`` with synthetic data: ``<run>/data/calib``, split
    ``train``; with real data: no calibration)."""

    dir: str = ""
    train_split: str = "train"
    eval_splits: list[str] = field(default_factory=lambda: ["val"])
    calib_dir: str = ""
    calib_split: str = "train"
    synth: SynthSection = field(default_factory=SynthSection)


@dataclass
class ShardSection:
    """Clip shards of the training split (:class:`fpspot.data.shards.ShardConfig`; ``kind`` and ``frame_hw``
    follow the frame model). ``clip_len`` >= 36 (the event sits at clip positions 16..35)."""

    clip_len: int = 50
    tracklets: int = 5
    per_class_cap: int = 500
    draws: int = 1
    background_per_half: int | None = None
    samples_per_shard: int = 64
    require_box: bool = True
    seed: int = 0
    crf: int = 23


@dataclass
class LoaderSection:
    """:func:`fpspot.data.loader.train_loader` options: DataLoader ``num_workers`` per process, ``augment``
    (the default :class:`~fpspot.data.augment.AugmentConfig` or none), ``samples_per_epoch`` over all
    processes (0: one draw of the shards), ``shuffle_buffer``; ``crop_frames``: train on clips cut to this many
    frames around their labelled event (:func:`fpspot.pipeline.steps.temporal_crop`; 0: whole clips)."""

    num_workers: int = 2
    augment: bool = True
    samples_per_epoch: int = 0
    shuffle_buffer: int = 256
    crop_frames: int = 0


@dataclass
class InferSection:
    """Inference over whole halves (:func:`fpspot.infer`): window ``scheme`` (``overlap``: the baseline's
    50-frame windows every 25 frames; ``long``: 300-frame windows keeping the central 250, 1.2 backbone
    evaluations per frame instead of 2) and windows per model call (0: the scheme's default)."""

    scheme: Literal["overlap", "long"] = "overlap"
    batch_size: int = 0


@dataclass
class FrameSection:
    """A frame model (spec §2-3): ``arch`` (``taad`` | ``taad_gnn``) built with ``model`` (keyword arguments of
    :func:`fpspot.models.build`; ``frame_hw`` is the frame size of its clips and of inference), its clip
    shards, loader, trainer and inference settings."""

    arch: str = "taad"
    model: dict[str, Any] = field(default_factory=lambda: {"backbone": "x3d_s", "frame_hw": [352, 640]})
    shards: ShardSection = field(default_factory=ShardSection)
    loader: LoaderSection = field(default_factory=LoaderSection)
    train: TrainConfig = field(default_factory=TrainConfig)
    infer: InferSection = field(default_factory=InferSection)

    @property
    def frame_hw(self) -> tuple[int, int]:
        hw = self.model.get("frame_hw")
        if not (isinstance(hw, (list, tuple)) and len(hw) == 2):
            raise ConfigError(f"frame.model.frame_hw: [H, W] is required, got {hw!r}")
        return int(hw[0]), int(hw[1])

    def validate(self, where: str) -> None:
        if self.arch not in FRAME_ARCHS:
            raise ConfigError(f"{where}.arch: one of {', '.join(FRAME_ARCHS)}, got {self.arch!r}")
        self.frame_hw  # noqa: B018 - checks it
        check_model_settings(self.arch, self.model, f"{where}.model")
        check_training(self.train, f"{where}.train")
        if self.shards.clip_len < 36:
            raise ConfigError(f"{where}.shards.clip_len: at least 36 (events sit at positions 16..35), got "
                              f"{self.shards.clip_len}")
        if self.loader.crop_frames and not 8 <= self.loader.crop_frames <= self.shards.clip_len:
            raise ConfigError(f"{where}.loader.crop_frames: 0 (whole clips) or 8..clip_len, got "
                              f"{self.loader.crop_frames}")


def check_model_settings(arch: str, settings: dict[str, Any], where: str) -> None:
    """Raise :class:`ConfigError` at ``where`` for a setting the model ``arch`` does not take, or an unknown
    backbone (either would otherwise stop the run only when the model is built, after the data stages)."""
    from fpspot.models.blocks.x3d import X3D_SPECS
    from fpspot.models.zoo import model_class

    try:
        model_class(arch).check_config(settings)
    except TypeError as err:
        raise ConfigError(f"{where}: {err}") from None
    if "backbone" in settings and settings["backbone"] not in X3D_SPECS:
        raise ConfigError(f"{where}.backbone: one of {', '.join(X3D_SPECS)}, got {settings['backbone']!r}")


def check_training(train: TrainConfig, where: str) -> None:
    """Raise :class:`ConfigError` at ``where`` for a ``best_metric`` the recipes' evaluation does not return (it
    would stop the run at the first evaluation) or a ``run_dir`` (the recipe sets it: ``<run>/<model>``)."""
    if train.best_metric not in EVAL_METRICS:
        raise ConfigError(f"{where}.best_metric: one of {', '.join(EVAL_METRICS)}, got {train.best_metric!r}")
    if train.run_dir != TrainConfig.run_dir:
        raise ConfigError(f"{where}.run_dir: set by the recipe (the run folder's model folder); choose the run "
                          f"folder with run_root and name instead, got {train.run_dir!r}")


def result_settings(section: Any, kind: str) -> dict[str, Any]:
    """``section`` (a ``TrainConfig`` for ``kind="train"``, an :class:`InferSection` for ``"infer"``) as a dict
    without its :data:`BOOKKEEPING` fields: what a stage fingerprint should hash."""
    return {k: v for k, v in config_to_dict(section).items() if k not in BOOKKEEPING[kind]}


@dataclass
class DSTWindowsSection:
    """Training windows of the DST (:func:`fpspot.data.dst_windows.dst_train_loader`): ``windows_per_half``
    random windows of every training half per epoch, mirrored at random when ``augment``; ``dtype`` of the
    stored per-half arrays. The window length is ``dst.model.window``."""

    windows_per_half: int = 2000
    augment: bool = True
    dtype: Literal["float16", "float32"] = "float16"
    num_workers: int = 0


@dataclass
class DSTSection:
    """The DST (spec §4): ``model`` (keyword arguments of ``build("dst", ...)``), windows, trainer, and the
    decoding ``batch_size`` (windows per forward pass; 0: all windows of a half at once)."""

    model: dict[str, Any] = field(default_factory=lambda: {"window": 750})
    windows: DSTWindowsSection = field(default_factory=DSTWindowsSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=10, batch_size=96, grad_accum=1, lr_head=1e-4, lr_backbone=1e-4, warmup_steps=500, decay_epochs=[],
        freeze_backbone_epochs=0, clip_grad_norm=1.0, class_weights="none", checkpoint_every=1000))
    decode_batch_size: int = 0

    @property
    def window(self) -> int:
        return int(self.model.get("window", 750))

    def validate(self) -> None:
        check_model_settings("dst", self.model, "dst.model")
        check_training(self.train, "dst.train")


@dataclass
class PostSection:
    """Post-processing (:mod:`fpspot.post.fit`), fitted on the calibration halves: per-model frame offsets,
    the fusion of the DST's and the frame model's events (the ``primary`` keeps its events, the other
    confirms, re-ranks or re-assigns them) and per-class score thresholds. ``objective``: what the choices
    maximise (``micro``, ``macro``, ``macro+micro``). ``fit: false`` applies no post-processing (the primary's
    raw events)."""

    fit: bool = True
    primary: str = ""  # the frame model's arch ("taad" / "taad_gnn"), "dst", or "" (the better alone on calib)
    objective: Literal["micro", "macro", "macro+micro"] = "macro+micro"
    weights: list[float] = field(default_factory=lambda: [0.5, 0.75, 1.0])
    window: int = 12
    shrink: float = 30.0


@dataclass
class EvalSection:
    """Scoring of the evaluation splits: ``baselines`` also scores an untrained frame model and class-prior
    predictions (``prior_seeds`` random draws each); ``plots`` draws the evaluator's per-class plot and the
    training curves; ``train_split``: also score the training halves (in-sample, optimistic)."""

    baselines: bool = True
    prior_seeds: int = 3
    plots: bool = True
    train_split: bool = False


@dataclass
class PipelineConfig:
    """Everything a recipe run needs (see the module docstring). ``run_root``/``name`` is the run directory;
    ``seed`` seeds the model initialisations. ``cpu_threads``: torch's intra-op threads per process (0: the
    CPU cores this process may use divided by the processes launched on this machine; ``accelerate launch``
    otherwise sets ``OMP_NUM_THREADS=1``, which leaves a single-process CPU run on one core)."""

    name: str = "taad_dst"
    run_root: str = "runs"
    seed: int = 0
    cpu_threads: int = 0
    data: DataSection = field(default_factory=DataSection)
    frame: FrameSection = field(default_factory=FrameSection)
    gnn: FrameSection | None = None
    dst: DSTSection | None = None
    post: PostSection = field(default_factory=PostSection)
    eval: EvalSection = field(default_factory=EvalSection)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        if self.cpu_threads < 0:
            raise ConfigError(f"cpu_threads: 0 (automatic) or a positive number, got {self.cpu_threads}")
        if not self.name or "/" in self.name or self.name in (".", ".."):
            raise ConfigError(f"name: a folder name without '/', got {self.name!r}")
        self.data.synth.validate()
        self.frame.validate("frame")
        if self.gnn is not None:
            self.gnn.validate("gnn")
            if self.gnn.arch != "taad_gnn":
                raise ConfigError(f"gnn.arch: the fused model is a taad_gnn, got {self.gnn.arch!r}")
            if self.gnn.frame_hw != self.frame.frame_hw:
                raise ConfigError(f"gnn.model.frame_hw {list(self.gnn.frame_hw)} must equal frame.model.frame_hw "
                                  f"{list(self.frame.frame_hw)} (both models run on the same frames)")
        if self.dst is not None:
            self.dst.validate()
            fuses = bool(self.dst.model.get("use_gnn_logits", False))
            if fuses and self.gnn is None:
                raise ConfigError("dst.model.use_gnn_logits: true needs a gnn section (the TAAD+GNN model whose "
                                  "logits are fused)")
            if not fuses and self.gnn is not None:
                raise ConfigError("gnn is set but dst.model.use_gnn_logits is false: its logits would not be used")
        if self.post.primary not in ("", self.frame.arch, "dst"):
            raise ConfigError(f"post.primary: '', {self.frame.arch!r} (the frame model) or 'dst', got "
                              f"{self.post.primary!r}")
        if self.post.primary == "dst" and self.dst is None:
            raise ConfigError("post.primary: 'dst' needs a dst section")

    @property
    def run_dir(self) -> Path:
        return Path(self.run_root) / self.name

    @property
    def synthetic(self) -> bool:
        """Whether the data is generated (``data.dir`` empty)."""
        return not self.data.dir


def fingerprint(*parts: Any) -> str:
    """A short stable hash of config sections (dataclasses, dicts, scalars) and upstream fingerprints."""
    text = json.dumps([config_to_dict(p) for p in parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


__all__ = ["BOOKKEEPING", "DSTSection", "DSTWindowsSection", "DataSection", "EVAL_METRICS", "EvalSection",
           "FRAME_ARCHS", "FrameSection", "InferSection", "LoaderSection", "PipelineConfig", "PostSection",
           "ShardSection", "SynthSection", "check_model_settings", "check_training", "fingerprint", "result_settings"]
