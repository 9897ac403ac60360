"""TAAD+GNN alone (spec §3): train -> infer -> post-process -> scores, in one run directory (``runs/taad_gnn``).

    accelerate launch recipes/taad_gnn.py                                  # built-in synthetic data, CPU
    accelerate launch --config_file launch/accelerate/cpu.yaml recipes/taad_gnn.py       # 2 CPU processes
    python recipes/taad_gnn.py --help                                      # every field and its default

Clips hold the 26 role slots (plus background clips, spec §3.1); the data, the run directory and restarts
work as in ``recipes/taad_dst.py``.
"""

from pathlib import Path

from fpspot.pipeline.run import main

if __name__ == "__main__":
    raise SystemExit(main("taad_gnn", Path(__file__).resolve().parent / "configs" / "taad_gnn.yaml",
                          description=__doc__.splitlines()[0]))
