"""Training throughput (clips/s) and data-wait fraction of the frame model at a recipe's config, with 1 and 2
processes (``accelerate launch``), read back from the trainer's TensorBoard scalars ``perf/samples_per_s`` and
``perf/data_wait_fraction`` (target: data wait <= 10 % of the step time).

    python benchmarks/train_throughput.py --work /tmp/recipes/throughput [--config recipes/configs/taad_dst.yaml]
                                          [--steps 12] [--processes 1,2] [--json OUT.json] [KEY=VALUE ...]

1. writes the config's synthetic data and clip shards once under ``--work`` (the pipeline's ``data`` and
   ``shards`` stages; extra ``KEY=VALUE`` arguments override the config, e.g. ``frame.loader.num_workers=2``);
2. for each process count, launches this script under ``accelerate launch`` (``launch/accelerate/cpu_single.yaml``
   for 1, ``cpu.yaml`` for 2) to train the frame model for ``--steps`` optimizer steps (no evaluation, a
   TensorBoard point every step) in a fresh run folder;
3. reads the points back and reports the median over the steps after the first ``--warmup`` (start-up:
   worker processes spawning, first shards opened).

``perf/samples_per_s`` counts the clips of all processes per second of wall time; ``perf/data_wait_fraction``
is the time the training loop waited for its next batch over the wall time (mean over processes). The
machine's load average is printed with the results: on a shared machine compare figures of one run only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
LAUNCH = {1: REPO / "launch" / "accelerate" / "cpu_single.yaml", 2: REPO / "launch" / "accelerate" / "cpu.yaml"}


def _config(path: str, overrides: list[str], work: Path):
    from fpspot.pipeline.config import PipelineConfig
    from fpspot.train.config import load_config

    return load_config(PipelineConfig, path, [f"run_root={work}", "name=data", *overrides])


def prepare(config) -> None:
    """Data and shards of ``config`` through the pipeline's own stages (skipped when done)."""
    from fpspot.pipeline import steps
    from fpspot.pipeline.config import fingerprint
    from fpspot.pipeline.layout import RunLayout
    from fpspot.pipeline.run import half_sets
    from fpspot.pipeline.stages import Stage, StageRunner

    run = RunLayout(config.run_dir)
    train, _, _ = half_sets(config, run)
    runner = StageRunner(run.root)
    data_fp = fingerprint("data", config.data.synth)
    if config.synthetic:
        runner.run(Stage("data", data_fp, lambda: steps.generate_data(config.data.synth, run),
                         outputs=[run.synth_dir, run.calib_synth_dir], main_only=True))
    runner.run(Stage("shards", fingerprint(data_fp, config.frame.shards, config.frame.arch, config.frame.frame_hw),
                     lambda: steps.write_shards(config.frame, train, run.shards("frame")),
                     outputs=[run.shards("frame")], main_only=True))


def worker(args) -> int:
    """Under ``accelerate launch``: train the frame model for ``--steps`` steps on the prepared shards."""
    from fpspot.pipeline import steps
    from fpspot.pipeline.layout import RunLayout
    from fpspot.pipeline.stages import pipeline_state

    state = pipeline_state()
    config = _config(args.config, args.overrides, Path(args.work))
    train = replace(config.frame.train, max_steps=args.steps, log_every=1, eval_every=0, checkpoint_every=0,
                    resume="none", epochs=max(config.frame.train.epochs, 1000))
    section = replace(config.frame, train=train)
    steps.train_frame_model(section, RunLayout(config.run_dir).shards("frame"), Path(args.run_dir), None, config.seed)
    state.destroy_process_group()
    return 0


def measure(args, processes: int) -> dict:
    from fpspot.pipeline.report import read_scalars

    run_dir = Path(args.work) / f"train_{processes}p"
    shutil.rmtree(run_dir, ignore_errors=True)
    cmd = ["accelerate", "launch", "--config_file", str(LAUNCH[processes]), __file__, "--worker", "--work", args.work,
           "--config", args.config, "--steps", str(args.steps), "--run-dir", str(run_dir), *args.overrides]
    env = {**os.environ, "OMP_NUM_THREADS": str(max(1, args.threads // processes))}
    began = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if out.returncode != 0:
        sys.stderr.write(out.stderr[-5000:])
        raise SystemExit(f"{processes} process(es): training failed")
    wall = time.perf_counter() - began
    scalars = read_scalars(run_dir / "tensorboard", ["perf/samples_per_s", "perf/data_wait_fraction"])
    points = {tag: [v for step, v in values if step > args.warmup] for tag, values in scalars.items()}
    if not points["perf/samples_per_s"]:
        raise SystemExit(f"{processes} process(es): no perf points after step {args.warmup} in {run_dir}")
    return {"processes": processes, "threads_per_process": int(env["OMP_NUM_THREADS"]), "steps": args.steps,
            "samples_per_s": round(statistics.median(points["perf/samples_per_s"]), 3),
            "data_wait_fraction": round(statistics.median(points["perf/data_wait_fraction"]), 4),
            "data_wait_max": round(max(points["perf/data_wait_fraction"]), 4),
            "wall_s": round(wall, 1), "load_average": os.getloadavg()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/recipes/throughput")
    parser.add_argument("--config", default=str(REPO / "recipes" / "configs" / "taad_dst.yaml"))
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2, help="steps left out of the medians")
    parser.add_argument("--processes", default="1,2")
    parser.add_argument("--threads", type=int, default=2, help="CPU threads in total (split over the processes)")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--run-dir", default=None, help=argparse.SUPPRESS)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of the recipe config")
    args = parser.parse_args(argv)
    if args.worker:
        return worker(args)
    config = _config(args.config, args.overrides, Path(args.work))
    prepare(config)
    rows = [measure(args, int(p)) for p in args.processes.split(",")]
    frame = config.frame
    print(f"frame model {frame.arch} {frame.model.get('backbone')} {frame.frame_hw[0]}x{frame.frame_hw[1]}, clips of "
          f"{frame.shards.clip_len} frames, batch {frame.train.batch_size} per process, "
          f"{frame.loader.num_workers} loader worker(s) per process")
    print(f"{'processes':>9}{'threads/proc':>14}{'clips/s':>10}{'data wait':>11}{'(max)':>8}{'wall s':>9}  load")
    for r in rows:
        print(f"{r['processes']:>9}{r['threads_per_process']:>14}{r['samples_per_s']:>10.3f}"
              f"{100 * r['data_wait_fraction']:>10.1f}%{100 * r['data_wait_max']:>7.1f}%{r['wall_s']:>9.1f}  "
              f"{' '.join(f'{v:.1f}' for v in r['load_average'])}")
    if args.json:
        Path(args.json).write_text(json.dumps({"config": args.config, "overrides": args.overrides, "rows": rows},
                                              indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
