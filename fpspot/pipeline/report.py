"""The end of a run: ``summary.json`` (F1 of the final predictions, of each model alone and of the baselines,
stage times), the table printed at the end of every run, and the training curves read back from TensorBoard."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fpspot.pipeline.layout import RunLayout
from fpspot.utils.atomic import atomic_open

ROW_NAMES = {"final": "final predictions", "taad": "TAAD alone (NMS)", "taad_gnn": "TAAD+GNN alone (NMS)",
             "dst": "DST alone",
             "untrained": "untrained frame model"}


def build_summary(scores: Mapping[str, Any], baselines: Mapping[str, Any], stages: Sequence[Mapping[str, Any]],
                  post: Mapping[str, Any] | None, settings: Mapping[str, Any]) -> dict:
    """``summary.json``: per split, macro / micro F1 rows (final, each model, untrained, class priors)."""
    splits = {}
    for split, entry in scores.items():
        rows = dict(entry["rows"])
        base = baselines.get(split, {})
        if "untrained" in base:
            rows["untrained"] = {k: base["untrained"][k] for k in ("macro_f1", "micro_f1")}
        for rule, row in base.get("prior", {}).get("rules", {}).items():
            rows[f"prior_{rule}"] = row
        if "prior" in base:
            rows["prior_best"] = dict(base["prior"]["rules"][base["prior"]["best"]], rule=base["prior"]["best"])
        splits[split] = {"halves": entry["halves"], "events": entry["events"], "rows": rows}
    return {"format": "fpspot-run-summary/1", "settings": dict(settings), "post": dict(post or {}),
            "splits": splits, "stages": list(stages),
            "total_seconds": round(sum(s["seconds"] for s in stages if not s.get("skipped")), 1)}


def write_summary(run: RunLayout, summary: Mapping[str, Any]) -> Path:
    with atomic_open(run.summary) as handle:
        json.dump(summary, handle, indent=1)
    return run.summary


def _label(name: str, row: Mapping[str, Any], post: Mapping[str, Any]) -> str:
    if name == "final":
        steps = ", ".join(post.get("steps") or []) or "none"
        return f"final predictions (post: {steps}; primary {post.get('primary')})"
    if name.startswith("prior_"):
        rule = row.get("rule") if name == "prior_best" else name[len("prior_"):]
        return f"class prior, best rule ({rule})" if name == "prior_best" else f"class prior, {rule}"
    return ROW_NAMES.get(name, name)


def format_summary(summary: Mapping[str, Any]) -> str:
    """The comparison table (per split) and the stage times."""
    lines = []
    post = summary.get("post", {})
    for split, entry in summary["splits"].items():
        labels = {name: _label(name, row, post) for name, row in entry["rows"].items()}
        width = max(len(label) for label in labels.values()) + 2
        lines += ["", f"F1 on the {split} halves ({entry['halves']} halves, {entry['events']} events)",
                  f"  {'':<{width}}{'macro F1':>10}{'micro F1':>10}"]
        for name, row in entry["rows"].items():
            lines.append(f"  {labels[name]:<{width}}{row['macro_f1']:>10.4f}{row['micro_f1']:>10.4f}")
    lines += ["", "stage times (s):"]
    for stage in summary["stages"]:
        note = " (done before, skipped)" if stage.get("skipped") else ""
        lines.append(f"  {stage['stage']:<14}{stage['seconds']:>9.1f}{note}")
    lines.append(f"  {'total':<14}{summary['total_seconds']:>9.1f} (stages run now)")
    return "\n".join(lines)


def read_scalars(tensorboard_dir: Path, tags: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
    """``{tag: [(step, value), ...]}`` of the scalars ``tags`` in a TensorBoard folder (all event files)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    out: dict[str, dict[int, float]] = {tag: {} for tag in tags}
    for path in sorted(Path(tensorboard_dir).rglob("events.out.tfevents.*")):
        acc = EventAccumulator(str(path), size_guidance={"scalars": 0})
        acc.Reload()
        available = set(acc.Tags().get("scalars", []))
        for tag in tags:
            if tag in available:
                out[tag].update({e.step: e.value for e in acc.Scalars(tag)})
    return {tag: sorted(values.items()) for tag, values in out.items()}


def plot_training(run: RunLayout, models: Sequence[str], path: Path) -> Path | None:
    """Training loss and calibration macro / micro F1 per evaluation of each trained model, one column per
    model, from their TensorBoard logs. ``None`` when there is nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fpspot.utils.atomic import atomic_path

    curves = {m: read_scalars(run.trainer(m) / "tensorboard", ["train/loss", "val/macro_f1", "val/micro_f1"])
              for m in models if (run.trainer(m) / "tensorboard").is_dir()}
    if not any(any(v) for c in curves.values() for v in c.values()):
        return None
    fig, axes = plt.subplots(2, len(curves), figsize=(5 * len(curves), 6), squeeze=False)
    for column, (model, series) in enumerate(curves.items()):
        loss = series["train/loss"]
        axes[0, column].plot([s for s, _ in loss], [v for _, v in loss])
        axes[0, column].set_title(f"{model}: training loss")
        axes[0, column].set_xlabel("optimizer step")
        for tag in ("val/macro_f1", "val/micro_f1"):
            points = series[tag]
            axes[1, column].plot([s for s, _ in points], [v for _, v in points], marker="o", label=tag[4:])
        axes[1, column].set_title(f"{model}: F1 on the calibration halves")
        axes[1, column].set_xlabel("optimizer step")
        axes[1, column].set_ylim(0, 1)
        axes[1, column].legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)
    return path


__all__ = ["build_summary", "format_summary", "plot_training", "read_scalars", "write_summary"]
