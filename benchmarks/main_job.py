"""The main job, timed: ``accelerate launch recipes/taad_dst.py`` from an empty working directory, then its wall
time, the time of every stage, macro / micro F1 on the synthetic validation halves of the trained pipeline,
of each model alone, of the untrained frame model and of the class priors, and the calibration F1 after each
training epoch (target: the whole job in at most 15 minutes on 2 cores).

    python benchmarks/main_job.py --work /tmp/recipes/main_job [--launch-config launch/accelerate/cpu_single.yaml]
                                  [--json OUT.json] [-- KEY=VALUE ...]

The run directory is ``--work/runs/<name>`` (deleted first unless ``--keep``). The machine's load average
before and after the run is printed: on a shared machine the times are upper bounds.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def stage_histories(run_dir: Path) -> dict[str, list[dict]]:
    """Calibration metrics after each evaluation of each trained model (from the stage records)."""
    out = {}
    for name in ("train_frame", "train_gnn", "train_dst"):
        path = run_dir / "stages" / f"{name}.json"
        if path.is_file():
            out[name] = json.loads(path.read_text()).get("info", {}).get("history", [])
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/recipes/main_job")
    parser.add_argument("--launch-config", default=None,
                        help="accelerate config file (default: none, i.e. `accelerate launch recipes/taad_dst.py`)")
    parser.add_argument("--name", default="taad_dst")
    parser.add_argument("--keep", action="store_true", help="keep an existing run directory (resume / skip)")
    parser.add_argument("--json", default=None)
    parser.add_argument("overrides", nargs="*", help="KEY=VALUE overrides of recipes/configs/taad_dst.yaml")
    args = parser.parse_args(argv)
    work = Path(args.work)
    run_dir = work / "runs" / args.name
    if not args.keep:
        shutil.rmtree(run_dir, ignore_errors=True)
    work.mkdir(parents=True, exist_ok=True)
    cmd = ["accelerate", "launch"] + (["--config_file", args.launch_config] if args.launch_config else []) + \
          [str(REPO / "recipes" / "taad_dst.py"), f"--name={args.name}", *args.overrides]
    load_before = os.getloadavg()
    began = time.perf_counter()
    log = work / f"{args.name}.log"
    with open(log, "w") as handle:
        code = subprocess.run(cmd, cwd=work, stdout=handle, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - began
    load_after = os.getloadavg()
    if code != 0:
        sys.stderr.write(log.read_text()[-5000:])
        raise SystemExit(f"the main job failed (exit code {code}); log: {log}")
    summary = json.loads((run_dir / "summary.json").read_text())
    result = {"command": " ".join(cmd), "wall_s": round(wall, 1), "load_before": load_before, "load_after": load_after,
              "stages": summary["stages"], "splits": summary["splits"], "histories": stage_histories(run_dir)}
    print(f"command: {result['command']}  (cwd {work})")
    print(f"wall time {wall:.1f} s = {wall / 60:.1f} min; load average before {load_before[0]:.2f}, after "
          f"{load_after[0]:.2f}")
    print("\n| stage | seconds |\n|---|---:|")
    for stage in summary["stages"]:
        print(f"| {stage['stage']} | {stage['seconds']:.1f} |")
    for split, entry in summary["splits"].items():
        print(f"\n{split}: {entry['halves']} halves, {entry['events']} events\n| predictions | macro F1 | micro F1 |\n"
              "|---|---:|---:|")
        for name, row in entry["rows"].items():
            print(f"| {name}{' (' + row['rule'] + ')' if 'rule' in row else ''} | {row['macro_f1']:.4f} | "
                  f"{row['micro_f1']:.4f} |")
    for name, history in result["histories"].items():
        if history:
            print(f"\n{name}: calibration F1 per evaluation\n"
                  "| epoch | step | macro F1 | micro F1 |\n|---:|---:|---:|---:|")
            for h in history:
                print(f"| {h['epoch']} | {h['step']} | {h.get('macro_f1', float('nan')):.4f} | "
                      f"{h.get('micro_f1', float('nan')):.4f} |")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
