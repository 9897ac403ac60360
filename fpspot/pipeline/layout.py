"""The run directory of a recipe (``runs/<name>``) and the sets of halves a run reads.

::

    runs/<name>/
      config.yaml                       the resolved config of the run (written at every start)
      stages/<stage>.json               stage records: fingerprint, status, wall time (fpspot.pipeline.stages)
      data/synth/  data/calib/          generated synthetic datasets (when data.dir is empty)
      shards/frame/  shards/gnn/        clip shards of the training split (+ manifest.json)
      frame/  gnn/  dst/                trainer folders: tensorboard/, checkpoints/, best/, final/, train_config.yaml
      logits/frame/<set>/<key>.safetensors   per-half (9, 26, N) logits of the frame model (gnn/: TAAD+GNN)
      dst_windows/train/                per-half DST inputs (fpspot.data.dst_windows)
      predictions/<model>_<set>.json    raw predictions of each model (frame: NMS events; dst: decoded events)
      post/pipeline.yaml                post-processing fitted on the calibration halves
      predictions_<split>.json          final predictions (challenge format, every half key)
      metrics_<split>.json              the evaluator's --json output for them
      baselines_<split>.json            untrained model and class-prior baselines on the same halves
      plots/<split>.png                 the evaluator's per-class plot; plots/training.png: training curves
      summary.json                      F1 table and stage times (printed at the end of every run)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from fpspot.data.layout import DatasetLayout


@dataclass(frozen=True)
class HalfSet:
    """A named set of halves: split ``split`` of the dataset folder ``data_dir``."""

    name: str
    data_dir: Path
    split: str

    @property
    def layout(self) -> DatasetLayout:
        return DatasetLayout(self.data_dir)

    @property
    def ground_truth(self) -> Path:
        return self.layout.ground_truth(self.split)

    def keys(self) -> list[str]:
        return self.layout.half_keys(self.split)


class RunLayout:
    """Paths inside a run directory (see the module docstring)."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def config_file(self) -> Path:
        return self.root / "config.yaml"

    @property
    def synth_dir(self) -> Path:
        return self.root / "data" / "synth"

    @property
    def calib_synth_dir(self) -> Path:
        return self.root / "data" / "calib"

    def shards(self, model: str) -> Path:
        return self.root / "shards" / model

    def trainer(self, model: str) -> Path:
        return self.root / model

    def model_dir(self, model: str) -> Path:
        """The trained model to use: ``best/`` when the trainer selected one, else ``final/``."""
        best = self.trainer(model) / "best"
        return best if (best / "config.json").is_file() else self.trainer(model) / "final"

    def logits(self, model: str, set_name: str) -> Path:
        return self.root / "logits" / model / set_name

    def dst_windows(self, set_name: str) -> Path:
        return self.root / "dst_windows" / set_name

    def raw_predictions(self, model: str, set_name: str) -> Path:
        return self.root / "predictions" / f"{model}_{set_name}.json"

    @property
    def post_pipeline(self) -> Path:
        return self.root / "post" / "pipeline.yaml"

    def predictions(self, split: str) -> Path:
        return self.root / f"predictions_{split}.json"

    def metrics(self, split: str) -> Path:
        return self.root / f"metrics_{split}.json"

    def baselines(self, split: str) -> Path:
        return self.root / f"baselines_{split}.json"

    def plot(self, name: str) -> Path:
        return self.root / "plots" / f"{name}.png"

    @property
    def summary(self) -> Path:
        return self.root / "summary.json"


__all__ = ["HalfSet", "RunLayout"]
