"""Configuration of the event DST recipe (``recipes/event_dst.py``, ``recipes/configs/event_dst.yaml``): one
dataclass per section, checked by :func:`fpspot.train.config.parse_config` (unknown keys and bad values are
errors that name the key)."""

from __future__ import annotations

from dataclasses import dataclass, field

from fpspot.train.config import ConfigError, TrainConfig


@dataclass
class ModelSection:
    """Size of :class:`fpspot.models.event_dst.EventDST` (``window`` = ``data.window``)."""

    d_model: int = 192
    nhead: int = 4
    num_encoder_layers: int = 4
    num_decoder_layers: int = 2
    dim_feedforward: int = 768
    dropout: float = 0.1
    max_players: int = 64
    max_offset: int = 50
    insert_offset: int = 0  # > 0: insertion heads that propose missed events up to this many frames away


@dataclass
class DataSection:
    """Training windows. ``gt``: the training play-by-play (empty: the ``default_gt`` that the recipe passes to
    :func:`~fpspot.pipeline.event_dst.run.main`, the FOOTPASS training play-by-play); ``holdout_games``:
    training games kept out for checkpoint selection; ``strength``: ``[low, high, p_fitted]`` of the per-window
    noise strength (strength 1 with probability ``p_fitted``, else log-uniform in ``[low, high]``);
    ``corruption``: a parameters file (empty: the packaged TAAD fit); ``shuffle``: sample shuffle buffer;
    ``num_workers``: DataLoader workers per process (they corrupt, cut and collate the batches), each
    ``prefetch_batches`` batches ahead; ``epoch_fraction``: train on this fraction of the windows per epoch
    (1: all).

    ``max_tokens``: 0 = batches of ``train.batch_size`` windows; > 0 = token-budget batches
    (:func:`fpspot.data.bucketing.token_budget_batches`): windows of similar length, sorted within pools of
    ``bucket_pool`` windows, with at most ``max_tokens`` padded input events per batch (the batch size then
    varies; the number of batches per epoch is measured on ``bucket_estimate`` corrupted training windows)."""

    gt: str = ""
    holdout_games: list[int] = field(default_factory=lambda: [3, 15, 30, 44])
    shard_dir: str = "runs/event_dst/shards"
    window: int = 750
    stride: int = 375
    margin: int = 125
    samples_per_shard: int = 500
    strength: list[float] = field(default_factory=lambda: [0.05, 1.5, 0.5])
    corruption: str = ""
    augment: bool = True
    shuffle: int = 2000
    num_workers: int = 0
    prefetch_batches: int = 2
    epoch_fraction: float = 1.0
    max_tokens: int = 0
    bucket_pool: int = 1024
    bucket_estimate: int = 2048


@dataclass
class EvalSection:
    """Held-out scoring: corruption seed, the DST-like strength also scored, decoding options."""

    seed: int = 1234
    low_strength: float = 0.15
    min_score: float = 0.05
    nms_window: int = 12
    batch_size: int = 128


@dataclass
class ExportSection:
    """The release folder written after training (``run_dir/release``): the best model plus two pipelines fitted
    on the held-out training halves only (``data.holdout_games``; never on validation games).

    ``pipeline.yaml`` (input ``taad``, a TAAD-like spotter): ``replace`` mode at model strength
    ``taad_strength`` (``taad`` = 1, ``auto`` = estimated per half from the input's event density, or a number);
    per-class thresholds on the model's score fitted on the held-out halves corrupted at strength 1 with
    ``seeds`` seeds: per class the F1-optimal one on a 0.02 grid, shrunk toward the micro-optimal shared one by
    ``shrink`` ground-truth events (:func:`fpspot.post.gating.fit_thresholds`).

    ``pipeline_dst.yaml`` (input ``taad`` holding a clean spotter's file such as TAAD+DST): ``filter`` mode at
    model strength ``dst_strength`` -- the input events are kept unchanged unless the model scores them under
    their class's threshold. ``dst_thresholds``: ``auto`` (default) writes ``thresholds: auto`` with the
    training halves' ground-truth ``class_rates``: the cuts are chosen per half and class at application time
    to maximise the expected F1 (:func:`fpspot.post.event_dst.expected_f1_cuts`), nothing is fitted on the
    held-out halves, which only report the result under each of ``dst_conditions`` (held-out halves corrupted
    with seed ``dst_seed`` at each ``[noise strength, score power]``: other noise levels and input scores
    raised to a power, since a real clean spotter matches neither the strength nor the score calibration of
    the corruption model). ``maximin``: fixed per-class thresholds, each the grid threshold whose *worst* F1
    gain over the input across the conditions is the largest; a class whose worst gain is not above
    ``dst_margin`` gets threshold 0 and is passed through unchanged.

    ``model``: export this model folder instead of training (regenerates the pipelines of a released model,
    e.g. ``export.model=recipes/pretrained/event_dst``; the release is written to ``train.run_dir/release``)."""

    enabled: bool = True
    model: str = ""
    seeds: int = 3
    shrink: float = 30.0
    taad_strength: str = "taad"
    dst_strength: float = 0.15
    dst_seed: int = 20000
    dst_thresholds: str = "auto"
    dst_margin: float = 0.01
    dst_conditions: list[list[float]] = field(default_factory=lambda: [
        [0.05, 1.0], [0.15, 1.0], [0.3, 1.0], [0.15, 0.5], [0.15, 2.0], [0.05, 0.5], [0.3, 0.5]])


@dataclass
class RecipeConfig:
    """``cpu_threads``: torch threads per process (0: the cores divided by the local processes)."""

    cpu_threads: int = 0
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    eval: EvalSection = field(default_factory=EvalSection)
    export: ExportSection = field(default_factory=ExportSection)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(
        epochs=8, batch_size=32, grad_accum=1, lr_head=7e-4, lr_backbone=5e-4, weight_decay=1e-2,
        warmup_steps=200, decay_epochs=[5, 7], decay_gamma=0.2, freeze_backbone_epochs=0, clip_grad_norm=1.0,
        class_weights="sqrt_inv_freq", run_dir="runs/event_dst", checkpoint_every=0, eval_every=1,
        best_metric="score", mixed_precision="no", log_every=20))

    def __post_init__(self) -> None:
        if self.export.dst_thresholds not in ("auto", "maximin"):
            raise ConfigError(f"export.dst_thresholds: 'auto' or 'maximin', got {self.export.dst_thresholds!r}")
        if self.cpu_threads < 0:
            raise ConfigError(f"cpu_threads: 0 (automatic) or positive, got {self.cpu_threads}")
        if self.data.num_workers < 0 or self.data.prefetch_batches < 1:
            raise ConfigError(f"data.num_workers >= 0 and data.prefetch_batches >= 1 needed, got "
                              f"{self.data.num_workers} and {self.data.prefetch_batches}")
