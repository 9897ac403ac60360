"""TAAD alone: train -> infer -> post-process -> scores, in one run directory (default ``runs/taad``).

    accelerate launch recipes/taad.py                                      # built-in synthetic data, CPU
    accelerate launch --config_file launch/accelerate/cpu.yaml recipes/taad.py           # 2 CPU processes
    python recipes/taad.py --help                                          # every field and its default

The data, the run directory and restarts work as in ``recipes/taad_dst.py``; the post-processing (frame
offset, per-class thresholds) is fitted on the calibration halves from the TAAD events alone.
"""

from pathlib import Path

from fpspot.pipeline.run import main

if __name__ == "__main__":
    raise SystemExit(main("taad", Path(__file__).resolve().parent / "configs" / "taad.yaml",
                          description=__doc__.splitlines()[0]))
