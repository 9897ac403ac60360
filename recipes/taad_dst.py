"""The main job: TAAD (or TAAD+GNN) -> per-frame logits -> DST -> post-processing -> scores, in one run directory.

    accelerate launch recipes/taad_dst.py                                        # built-in synthetic data, CPU
    accelerate launch --config_file launch/accelerate/cpu.yaml recipes/taad_dst.py          # 2 CPU processes
    accelerate launch recipes/taad_dst.py --config recipes/configs/taad_dst_gpu.yaml --data.dir DATA
    python recipes/taad_dst.py --help                                            # every field and its default

Without arguments it generates small synthetic games (``runs/taad_dst/data``), shards them, trains a tiny
TAAD, infers per-frame logits on the training, calibration and validation halves, trains a small DST on
the training halves' logits, decodes, fits the post-processing on the held-out calibration games, and
writes ``predictions_val.json``, ``metrics_val.json``, plots and TensorBoard logs into ``runs/taad_dst``,
then prints the F1 table. Run it again to resume: finished stages are skipped, an interrupted one restarts
(training from its last checkpoint). Any field can be overridden: ``--frame.train.epochs=3``, ``--name=x``.
Stages and run directory: ``fpspot/pipeline/run.py`` and ``fpspot/pipeline/layout.py``.
"""

from pathlib import Path

from fpspot.pipeline.run import main

if __name__ == "__main__":
    raise SystemExit(main("taad_dst", Path(__file__).resolve().parent / "configs" / "taad_dst.yaml",
                          description=__doc__.splitlines()[0]))
