"""Train the event-sequence DST (issue 8) on the real FOOTPASS training play-by-play.

    accelerate launch --config_file launch/accelerate/cpu.yaml recipes/event_dst.py      # 2 CPU processes
    python recipes/event_dst.py --config recipes/configs/event_dst.yaml train.epochs=1     # one process
    python recipes/event_dst.py --help                                                     # every option
    python recipes/event_dst.py export.model=recipes/pretrained/event_dst train.run_dir=/tmp/x  # pipelines only

What it does:

1. splits the 48 training games into training games and ``data.holdout_games`` (never trained on; they
   pick the checkpoint), and writes the clean 750-frame windows of the training halves as WebDataset
   shards (``data.shard_dir``, once; rewritten when the window settings or games change);
2. measures the density of corrupted training halves at a grid of noise strengths (the table
   ``strength_density`` that ``strength: auto`` interpolates at inference) and builds the model with it;
3. trains with the project's trainer (:class:`fpspot.train.trainer.Trainer`): every epoch each window is
   corrupted afresh (:class:`fpspot.data.event_windows.WindowCorruptor`, seed from ``(seed, epoch,
   window)``, a noise strength per window, team labels swapped at random); with ``data.max_tokens`` the
   windows are batched by length (:mod:`fpspot.data.bucketing`: about ``max_tokens`` input events per batch,
   little padding; the committed config does this, about twice as many steps per second as fixed batches of
   ``train.batch_size`` windows, ``benchmarks/event_dst_batching.py``);
4. after each epoch scores the held-out halves -- their ground truth corrupted with a fixed seed at the
   TAAD strength (1.0) and at the DST-like strength ``eval.low_strength`` -- through the inference path
   (:func:`fpspot.post.event_dst.denoise_playbyplay`) with the official matcher; ``val/score`` = the mean
   of the gated macro and micro F1 at strength 1 (per-class / shared thresholds fitted on those halves)
   picks ``best/``;
5. export (``export.enabled``, main process): ``run_dir/release`` = the best model with ``pipeline.yaml`` (TAAD-like
   input) and ``pipeline_dst.yaml`` (clean input such as TAAD+DST), both fitted on the held-out halves only
   (:class:`ExportSection`); this is what ``recipes/pretrained/event_dst/`` holds. ``export.model=FOLDER`` skips
   training and only fits the pipelines of an existing model.

The run folder (``train.run_dir``) gets TensorBoard logs, checkpoints (exact resume), ``best/`` and
``final/`` (``config.json`` + ``model.safetensors``, loadable by ``fpspot.models.load_model``).
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from fpspot.train.config import ConfigError, TrainConfig, parse_config

REPO = Path(__file__).resolve().parents[1]
FOOTPASS = REPO.parent / "shared" / "data" / "footpass"
DEFAULT_CONFIG = REPO / "recipes" / "configs" / "event_dst.yaml"


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
    """Training windows. ``gt``: the training play-by-play; ``holdout_games``: training games kept out for
    checkpoint selection; ``strength``: ``[low, high, p_fitted]`` of the per-window noise strength (strength
    1 with probability ``p_fitted``, else log-uniform in ``[low, high]``); ``corruption``: a parameters file
    (empty: the packaged TAAD fit); ``shuffle``: sample shuffle buffer; ``num_workers``: DataLoader workers
    per process (they corrupt, cut and collate the batches), each ``prefetch_batches`` batches ahead;
    ``epoch_fraction``: train on this fraction of the windows per epoch (1: all).

    ``max_tokens``: 0 = batches of ``train.batch_size`` windows; > 0 = token-budget batches
    (:func:`fpspot.data.bucketing.token_budget_batches`): windows of similar length, sorted within pools of
    ``bucket_pool`` windows, with at most ``max_tokens`` padded input events per batch (the batch size then
    varies; the number of batches per epoch is measured on ``bucket_estimate`` corrupted training windows)."""

    gt: str = str(FOOTPASS / "playbyplay_train.json")
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


# ------------------------------------------------------------------------------------------------- data


def split_keys(gt, holdout_games: list[int]) -> tuple[list[str], list[str]]:
    """``(training keys, held-out keys)`` of a play-by-play; errors name the games that are not in it."""
    games = set(gt.games())
    missing = sorted(set(holdout_games) - games)
    if missing:
        raise ValueError(f"data.holdout_games: game(s) {missing} are not in {gt.source!r} (games: {sorted(games)})")
    held = [k for k in gt.keys if int(k.split("_")[1]) in set(holdout_games)]
    return [k for k in gt.keys if k not in set(held)], held


def shard_fingerprint(cfg: DataSection, keys: list[str]) -> str:
    text = json.dumps({"gt": cfg.gt, "keys": keys, "window": cfg.window, "stride": cfg.stride, "margin": cfg.margin,
                       "samples_per_shard": cfg.samples_per_shard, "tar": "ustar"}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def window_config(cfg: DataSection):
    """The training windows' :class:`~fpspot.data.event_windows.WindowConfig` (window, stride, margin)."""
    from fpspot.data.event_windows import WindowConfig

    return WindowConfig(cfg.window, cfg.stride, cfg.margin)


def training_corruptor(config: "RecipeConfig", params):
    """The training :class:`~fpspot.data.event_windows.WindowCorruptor`: ``data.strength`` (a ``[low, high,
    p_fitted]`` range or ``[strength]``), ``data.augment``, ``model.max_players``, seeded by ``train.seed``;
    insertion targets when ``model.insert_offset > 0``."""
    from fpspot.data.event_windows import WindowCorruptor

    data = config.data
    strength = data.strength if len(data.strength) == 3 else data.strength[0]
    return WindowCorruptor(params, seed=config.train.seed, strength=strength, augment=data.augment,
                           max_players=config.model.max_players, insertions=config.model.insert_offset > 0)


def prepare_shards(cfg: DataSection, gt, keys: list[str]) -> dict:
    """The shards of ``keys`` in ``cfg.shard_dir`` (written unless a manifest with the same fingerprint exists)."""
    from fpspot.data.event_windows import read_manifest, write_window_shards

    fingerprint = shard_fingerprint(cfg, keys)
    try:
        manifest = read_manifest(cfg.shard_dir)
        if manifest.get("config", {}).get("fingerprint") == fingerprint:
            return manifest
    except ValueError:
        pass
    for old in Path(cfg.shard_dir).glob("train-*.tar"):
        old.unlink()
    manifest = write_window_shards(cfg.shard_dir, gt, window_config(cfg), keys=keys,
                                   samples_per_shard=cfg.samples_per_shard, shuffle_seed=0)
    manifest["config"]["fingerprint"] = fingerprint
    from fpspot.utils.atomic import atomic_open

    with atomic_open(Path(cfg.shard_dir) / "manifest.json") as handle:
        json.dump(manifest, handle, indent=1)
    return manifest


def strength_table(gt, keys: list[str], params, strengths=(0.05, 0.1, 0.15, 0.2, 0.3, 0.5, 0.75, 1.0, 1.25, 1.5),
                   seed: int = 7) -> list[list[float]]:
    """``[[strength, input events per minute], ...]``: mean density of corrupted halves of ``keys``."""
    from fpspot.data.corrupt import corrupt_half, half_seed, strength_scales
    from fpspot.post.event_dst import events_per_minute

    table = []
    for s in strengths:
        fp, miss = strength_scales(s)
        rates = [events_per_minute(corrupt_half(gt.events[k], params, half_seed(seed, k), fp_scale=fp,
                                                miss_scale=miss)) for k in keys]
        table.append([float(s), round(float(np.mean(rates)), 3)])
    return table


class WindowBatches:
    """``train_data(epoch)`` for the trainer: this process's share of the shards, corrupted afresh each epoch,
    batched (``train.batch_size`` windows, or token-budget batches with ``data.max_tokens``); every process
    yields the same number of batches (the smallest share decides). ``estimate``: clean training windows whose
    corrupted lengths size a token-budget epoch (the same list on every process)."""

    def __init__(self, cfg: DataSection, manifest: dict, corruptor, batch_size: int, rank: int, world: int,
                 seed: int, estimate: list[dict] | None = None):
        self.cfg, self.manifest, self.corruptor = cfg, manifest, corruptor
        self.batch_size, self.rank, self.world, self.seed = batch_size, rank, world, seed
        shards = manifest["shards"]
        if len(shards) < world * max(cfg.num_workers, 1):
            raise ValueError(f"{len(shards)} shards for {world} process(es) x {max(cfg.num_workers, 1)} worker(s): "
                             f"lower data.samples_per_shard")
        per_rank = int(min(sum(s["samples"] for s in shards[r::world]) for r in range(world)) * cfg.epoch_fraction)
        if cfg.max_tokens > 0:
            self.num_batches = int(per_rank * self.batches_per_window(estimate or []) * TOKEN_EPOCH_SAFETY)
        else:
            self.num_batches = per_rank // batch_size

    def batches_per_window(self, windows: list[dict]) -> float:
        """Token-budget batches per window, measured by packing ``windows`` corrupted with a fixed epoch."""
        import copy

        from fpspot.data.bucketing import count_batches

        if not windows:
            raise ValueError("data.max_tokens > 0 needs clean windows to size the epoch (data.bucket_estimate >= 1)")
        probe = copy.copy(self.corruptor)
        probe.set_epoch(ESTIMATE_EPOCH)
        lengths = [len(probe(w)["in_cls"]) for w in windows]
        return count_batches(lengths, self.cfg.max_tokens, pool=self.cfg.bucket_pool) / len(lengths)

    def __len__(self) -> int:
        return self.num_batches

    def __call__(self, epoch: int):
        self.corruptor.set_epoch(epoch)
        return _Epoch(lambda restart: self._batches(epoch, restart), self.num_batches)

    def _batches(self, epoch: int, restart: int):
        """One pass over this process's windows (``restart`` > 0: another shuffle of them, when a token-budget
        pass fell short of the epoch's batch count)."""
        import torch

        from fpspot.data.event_windows import collate_windows, window_dataset

        shuffle_seed = self.seed * 100_003 + epoch * 1009 + self.rank + restart * 7_919
        dataset = window_dataset(self.cfg.shard_dir, self.corruptor, shuffle=self.cfg.shuffle,
                                 shuffle_seed=shuffle_seed)
        workers = self.cfg.num_workers
        if self.cfg.max_tokens <= 0:
            return iter(torch.utils.data.DataLoader(dataset, batch_size=self.batch_size, collate_fn=collate_windows,
                                                    num_workers=workers, persistent_workers=False))
        # batches are cut and collated where the windows are made (in the workers, if any), so a worker can
        # run a whole pool ahead of training instead of handing over one window at a time
        batches = dataset.compose(functools.partial(_budget_batches, max_tokens=self.cfg.max_tokens,
                                                    pool=self.cfg.bucket_pool, seed=shuffle_seed))
        return iter(torch.utils.data.DataLoader(batches.map(collate_windows), batch_size=None, collate_fn=_as_is,
                                                num_workers=workers, persistent_workers=False,
                                                prefetch_factor=self.cfg.prefetch_batches if workers else None))


TOKEN_EPOCH_SAFETY = 0.97  # token-budget epochs stop a little short of the measured count (lengths are random)
ESTIMATE_EPOCH = 1_000_003  # corruption epoch of the windows that size a token-budget epoch (no training epoch)


def _as_is(sample):
    return sample


def _window_length(window: dict) -> int:
    return len(window["in_cls"])


def _budget_batches(windows, max_tokens: int, pool: int, seed: int):
    """Token-budget groups of a stream of tokenized windows (a pipeline stage; module level so it pickles)."""
    import random

    from fpspot.data.bucketing import token_budget_batches

    return token_budget_batches(windows, max_tokens, length=_window_length, pool=pool, rng=random.Random(seed))


class _Epoch:
    """The first ``length`` batches of ``passes(0)``, then of ``passes(1)`` ... if a pass runs short (every
    process must yield the same count), with a length (the trainer shows progress with it)."""

    def __init__(self, passes, length: int):
        self.passes, self.length = passes, length

    def __len__(self) -> int:
        return self.length

    def __iter__(self):
        def chained():
            for restart in itertools.count():
                empty = True
                for batch in self.passes(restart):
                    empty = False
                    yield batch
                if empty:
                    raise RuntimeError("event DST training data: a pass over this process's shards yielded no batch")

        return itertools.islice(chained(), self.length)


# ------------------------------------------------------------------------------------------- evaluation


GATE_GRID = tuple(float(x) for x in np.round(np.arange(0.02, 0.961, 0.02), 2))


def gated_f1(gt, pred, grid=GATE_GRID) -> dict:
    """F1 of ``pred`` after the best threshold per class (``gated_macro_f1``, with the thresholds) and the best
    shared threshold (``gated_micro_f1``), fitted on ``gt`` itself (in-sample; compares checkpoints)."""
    from fpspot.post.gating import threshold_curves

    curves = threshold_curves(gt, pred, grid)
    f1, micro = curves.f1(), curves.micro_f1()
    return {"gated_macro_f1": float(f1.max(1).mean()), "gated_micro_f1": float(micro.max()),
            "thresholds": [float(curves.grid[i]) for i in f1.argmax(1)],
            "shared_threshold": float(curves.grid[int(micro.argmax())])}


class HeldOut:
    """``evaluate(model)`` for the trainer: held-out halves corrupted once (fixed seed) at strength 1 and at
    ``eval.low_strength``, denoised through the inference path and scored with the official matcher, as is
    (``macro_f1``, ``micro_f1``) and after per-class / shared thresholds fitted on them (``gated_*``).
    ``score`` (the selection metric) = mean of gated macro and gated micro F1 at strength 1."""

    def __init__(self, gt, keys: list[str], params, cfg: EvalSection):
        from fpspot.data.corrupt import corrupt_playbyplay

        self.gt = gt.subset(keys)
        self.cfg = cfg
        self.inputs = {"taad": corrupt_playbyplay(self.gt, params, cfg.seed, strength=1.0),
                       "low": corrupt_playbyplay(self.gt, params, cfg.seed + 1, strength=cfg.low_strength)}

    def __call__(self, model) -> dict:
        from fpspot.eval import evaluate
        from fpspot.post.event_dst import denoise_playbyplay

        out: dict = {}
        for name, pred in self.inputs.items():
            strength = 1.0 if name == "taad" else self.cfg.low_strength
            clean = denoise_playbyplay(model, pred, strength=strength, min_score=self.cfg.min_score,
                                       nms_window=self.cfg.nms_window, batch_size=self.cfg.batch_size)
            before, after = evaluate(pred, self.gt), evaluate(clean, self.gt)
            gated, gated_in = gated_f1(self.gt, clean), gated_f1(self.gt, pred)
            prefix = "" if name == "taad" else f"{name}_"
            out.update({f"{prefix}macro_f1": after.macro_f1, f"{prefix}micro_f1": after.micro_f1,
                        f"{prefix}gated_macro_f1": gated["gated_macro_f1"],
                        f"{prefix}gated_micro_f1": gated["gated_micro_f1"],
                        f"{prefix}input_macro_f1": before.macro_f1, f"{prefix}input_micro_f1": before.micro_f1,
                        f"{prefix}input_gated_macro_f1": gated_in["gated_macro_f1"],
                        f"{prefix}input_gated_micro_f1": gated_in["gated_micro_f1"]})
            out[f"{prefix}per_class_f1"] = {c: s.f1 for c, s in after.per_class.items()}
        out["score"] = 0.5 * (out["gated_macro_f1"] + out["gated_micro_f1"])
        return out


# ------------------------------------------------------------------------------------------------ export


PIPELINE_HEADER = """Event-sequence DST (issue 8) applied to one prediction file named '{input}' ({what}).
Model: trained on the FOOTPASS training play-by-play (Ochin et al., CVIU 2026; annotations CC BY-NC 4.0)
corrupted by the TAAD noise model. {fitted}
Every choice was made on TRAINING games (held out: {games}), never on validation games.
Apply (from the repository root): fpspot post --config {path} --pred {input}=PRED.json --out OUT.json"""


DST_FITTED = {
    "auto": "Filter mode, thresholds auto: per half and class, the input events the model scores best\n"
            "are kept, as many as maximise the expected F1 given the class's ground-truth events per minute of play\n"
            "in the training halves (class_rates).",
    "maximin": "Filter mode: per-class maximin thresholds over {n} noise-strength / score-power\n"
               "conditions; classes without a worst-case gain above {margin} pass through unchanged."}


def _model_scored(model, pred, strength, cfg: EvalSection, mode: str):
    """``(model output with min_score 0, input events re-scored by the model)`` of one half."""
    from fpspot.post.event_dst import denoise_half
    from fpspot.schema import Prediction

    clean, details = denoise_half(model, pred, strength=strength, min_score=0.0, nms_window=cfg.nms_window,
                                  batch_size=cfg.batch_size, return_details=True)
    rescored = [Prediction(*(int(x) for x in e[:4]), float(np.clip(details["score"][i], 0.0, 1.0)))
                for i, e in enumerate(pred)]
    return clean if mode == "replace" else rescored


def _held_out_figures(pipe, model, noisy, truth) -> dict:
    """Macro / micro F1 of ``noisy`` before and after ``pipe`` (with the in-memory model: the release folder
    is not in place yet)."""
    from fpspot.eval import evaluate
    from fpspot.post.pipeline import Pipeline

    in_memory = Pipeline(pipe.inputs, [{**pipe.steps[0], "model": model}], pipe.output)
    before, after = evaluate(noisy, truth), evaluate(in_memory.apply({"taad": noisy}), truth)
    return {"input_macro_f1": round(before.macro_f1, 4), "input_micro_f1": round(before.micro_f1, 4),
            "macro_f1": round(after.macro_f1, 4), "micro_f1": round(after.micro_f1, 4)}


def fit_taad_pipeline(model, gt, keys: list[str], params, cfg: "RecipeConfig", model_path: str):
    """``pipeline.yaml``: ``replace`` mode, per-class thresholds on the model's score fitted on ``keys``
    corrupted at strength 1 with ``export.seeds`` seeds (each seed's halves are separate calibration halves)."""
    from fpspot.data.corrupt import corrupt_playbyplay
    from fpspot.data.footpass import PlayByPlay
    from fpspot.post.gating import fit_thresholds
    from fpspot.post.pipeline import Pipeline

    strength = cfg.export.taad_strength
    strength = strength if strength in ("taad", "auto") else float(strength)
    truth, noisy, scored = {}, {}, {}
    for seed in range(cfg.export.seeds):
        pred = corrupt_playbyplay(gt.subset(keys), params, 10_000 + seed, strength=1.0)
        for k in keys:
            name = f"{k}#{seed}"
            truth[name], noisy[name] = gt.events[k], pred.events[k]
            scored[name] = _model_scored(model, pred.events[k], strength, cfg.eval, "replace")
    names = list(truth)
    truth, noisy, scored = (PlayByPlay(kind, names, d)
                            for kind, d in (("gt", truth), ("pred", noisy), ("pred", scored)))
    thresholds = fit_thresholds(truth, scored, GATE_GRID, shrink=cfg.export.shrink, shared="micro")
    step = {"step": "event_dst", "input": "taad", "model": model_path, "strength": strength, "mode": "replace",
            "min_score": cfg.eval.min_score, "nms_window": cfg.eval.nms_window, "thresholds": thresholds}
    pipe = Pipeline(["taad"], [step], "taad")
    pipe.info = {"fitted_on": keys, "corruption_seeds": cfg.export.seeds, "strength": 1.0,
                 "held_out": _held_out_figures(pipe, model, noisy, truth)}
    return pipe


def _dst_conditions(truth, params, exp: "ExportSection"):
    """The held-out halves corrupted under each ``[strength, score power]`` of ``exp.dst_conditions``."""
    from fpspot.data.corrupt import corrupt_playbyplay
    from fpspot.data.footpass import PlayByPlay
    from fpspot.schema import Prediction

    for strength, power in exp.dst_conditions:
        pred = corrupt_playbyplay(truth, params, exp.dst_seed, strength=float(strength))
        yield (strength, power), PlayByPlay("pred", pred.keys, {
            k: [Prediction(e.frame, e.team, e.shirt, e.cls, float(e.score) ** power) for e in pred.events[k]]
            for k in pred.keys})


def _maximin_thresholds(model, truth, inputs: list, cfg: "RecipeConfig") -> tuple[dict, dict]:
    """Per class the grid threshold with the largest worst F1 gain over ``inputs`` (0 = pass through when that
    gain is not above ``export.dst_margin``); returns ``(thresholds, worst gains)``."""
    from fpspot.data.footpass import PlayByPlay
    from fpspot.post.gating import threshold_curves
    from fpspot.schema import ACTION_CLASSES

    grid = (0.0, *GATE_GRID)  # 0 = keep every input event of the class
    gains = []
    for pred in inputs:
        scored = PlayByPlay("pred", truth.keys, {k: _model_scored(model, pred.events[k], cfg.export.dst_strength,
                                                                  cfg.eval, "filter") for k in truth.keys})
        f1 = threshold_curves(truth, scored, grid).f1()  # (8, G); column 0 = the input unchanged
        gains.append(f1 - f1[:, :1])
    worst = np.stack(gains).min(0)  # (8, G): worst gain over the conditions
    thresholds, worst_gain = {}, {}
    for c, name in enumerate(ACTION_CLASSES):
        j = int(np.argmax(worst[c]))
        thresholds[name] = float(grid[j]) if worst[c, j] > cfg.export.dst_margin else 0.0
        worst_gain[name] = round(float(worst[c, j]), 4) if thresholds[name] > 0 else 0.0
    return thresholds, worst_gain


def fit_dst_pipeline(model, gt, keys: list[str], params, cfg: "RecipeConfig", model_path: str):
    """``pipeline_dst.yaml``: ``filter`` mode with ``thresholds: auto`` and the training halves' class rates, or
    per-class maximin thresholds over ``export.dst_conditions`` (``export.dst_thresholds``, see
    :class:`ExportSection`); either way the held-out figures under every condition go into ``info``."""
    from fpspot.post.event_dst import ground_truth_class_rates
    from fpspot.post.pipeline import Pipeline

    exp = cfg.export
    truth = gt.subset(keys)
    conditions = list(_dst_conditions(truth, params, exp))
    step = {"step": "event_dst", "input": "taad", "model": model_path, "strength": exp.dst_strength, "mode": "filter",
            "min_score": 0.0}
    info = {"fitted_on": keys, "conditions": [list(c) for c in exp.dst_conditions], "corruption_seed": exp.dst_seed,
            "strength": exp.dst_strength}
    if exp.dst_thresholds == "auto":
        training = [k for k in gt.keys if k not in set(keys)]
        step.update(thresholds="auto", class_rates=ground_truth_class_rates(gt, training))
        del info["fitted_on"]  # nothing is fitted on the held-out halves
        info.update(class_rates_from=f"{len(training)} training halves (all but the held-out ones)", reported_on=keys)
    else:
        thresholds, worst_gain = _maximin_thresholds(model, truth, [pred for _, pred in conditions], cfg)
        step["thresholds"] = thresholds
        info.update(margin=exp.dst_margin, passthrough=[n for n, t in thresholds.items() if t == 0.0],
                    worst_class_gain=worst_gain)
    pipe = Pipeline(["taad"], [step], "taad")
    info["held_out"] = {f"strength {s:g} score^{p:g}": _held_out_figures(pipe, model, pred, truth)
                        for (s, p), pred in conditions}
    pipe.info = info
    return pipe


def export_release(run_dir: Path, gt, keys: list[str], params, config: "RecipeConfig", print_fn=print,
                   model_dir: str | Path | None = None) -> Path:
    """``run_dir/release``: the model (``model_dir``, else the run's ``best/`` or ``final/``) as ``config.json``
    + ``model.safetensors``, with ``pipeline.yaml`` and ``pipeline_dst.yaml`` fitted on the held-out training
    halves ``keys``."""
    import shutil

    from fpspot.models import load_model

    source = Path(model_dir) if model_dir else (run_dir / "best" if (run_dir / "best").is_dir() else run_dir / "final")
    out = run_dir / "release"
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "model.safetensors", "metrics.json"):
        if (source / name).is_file() and (source / name).resolve() != (out / name).resolve():
            shutil.copy2(source / name, out / name)
    model = load_model(out).eval()
    model_path = "recipes/pretrained/event_dst"
    games = sorted({int(k.split("_")[1]) for k in keys})
    exp = config.export
    for file, what, fit, fitted in (
            ("pipeline.yaml", "a TAAD-like spotter", fit_taad_pipeline,
             f"Per-class thresholds on the model's score fitted at noise strength 1 ({exp.seeds} corruption seeds)."),
            ("pipeline_dst.yaml", "a clean spotter such as TAAD+DST", fit_dst_pipeline,
             DST_FITTED[exp.dst_thresholds].format(n=len(exp.dst_conditions), margin=exp.dst_margin))):
        pipe = fit(model, gt, keys, params, config, model_path)
        header = PIPELINE_HEADER.format(input="taad", what=what, fitted=fitted, games=games,
                                        path=f"{model_path}/{file}")
        pipe.save(out / file, header=header)
        print_fn(f"{file}: {pipe.steps[0]['thresholds']}; held-out {pipe.info['held_out']}")
    return out


# ------------------------------------------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> int:
    config = parse_config(RecipeConfig, argv, default_config=DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None,
                          prog="recipes/event_dst.py", description=__doc__.splitlines()[0])
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


if __name__ == "__main__":
    sys.exit(main())
