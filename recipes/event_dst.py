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
``final/`` (``config.json`` + ``model.safetensors``, loadable by ``fpspot.models.load_model``). The work is
done by :mod:`fpspot.pipeline.event_dst`; this script gives it the default config and training play-by-play.
"""

import sys
from pathlib import Path

from fpspot.pipeline.event_dst.run import main as run

REPO = Path(__file__).resolve().parents[1]
FOOTPASS = REPO.parent / "shared" / "data" / "footpass"
DEFAULT_CONFIG = REPO / "recipes" / "configs" / "event_dst.yaml"


def main(argv: list[str] | None = None) -> int:
    return run(argv, default_config=DEFAULT_CONFIG if DEFAULT_CONFIG.exists() else None,
               default_gt=FOOTPASS / "playbyplay_train.json", prog="recipes/event_dst.py",
               description=__doc__.splitlines()[0])


if __name__ == "__main__":
    sys.exit(main())
