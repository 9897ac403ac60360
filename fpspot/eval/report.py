"""Text tables and plots of an evaluation :class:`~fpspot.eval.metric.Report`."""

from __future__ import annotations

import os
import re

from fpspot.utils.atomic import atomic_path

_HEADER = ("Class     Precision     Recall      TP      FP      FN      GT   TP_bb   TP_noBB   TP_rep   TP_live"
           "   FN_bb   FN_noBB   FN_rep   FN_live   GT_bb   GT_noBB   GT_rep   GT_live")
_COLUMN_ENDS = [m.end() for m in re.finditer(r"\S+", _HEADER)][1:]  # right edge of every numeric column
_SPLITS = ("bb", "noBB", "rep", "live")


def _row(name: str, stats) -> str:
    values = [f"{stats.precision:.3f}", f"{stats.recall:.3f}", str(stats.tp), str(stats.fp), str(stats.fn),
              str(stats.gt)]
    values += [str(stats.tp_split[s]) for s in _SPLITS]
    values += [str(stats.gt_split[s] - stats.tp_split[s]) for s in _SPLITS]
    values += [str(stats.gt_split[s]) for s in _SPLITS]
    line = name
    for end, value in zip(_COLUMN_ENDS, values):
        line = line + " " * max(1, end - len(line) - len(value)) + value
    return line


def format_official_table(report) -> str:
    """The table ``evaluation.py`` prints, then micro F1 and macro F1 lines."""
    rule = "-" * len(_HEADER)
    lines = ["", "=== Aggregated Precision/Recall per Class (ALL GAMES) ===", _HEADER, rule]
    lines += [_row(name, stats) for name, stats in report.per_class.items()]
    lines += [rule, _row("OVERALL", report.overall), f"Micro F1: {report.micro_f1:.3f}"]
    lines += [f"Macro F1: {report.macro_f1:.3f}",
              f"(micro F1 {report.micro_f1:.4f}, macro F1 {report.macro_f1:.4f}, mAP11 {report.mean_ap:.4f})"]
    return "\n".join(lines)


def format_per_half(report) -> str:
    """One line per half: key and micro precision / recall / F1."""
    rows = [f"{'half':<14}{'P':>8}{'R':>8}{'F1':>8}"]
    for key, h in report.per_half.items():
        rows.append(f"{key:<14}{h['precision']:>8.3f}{h['recall']:>8.3f}{h['f1']:>8.3f}")
    return "\n".join(rows)


def plot_report(report, path: str | os.PathLike) -> None:
    """Per-class precision / recall / F1 bars and per-class precision-recall curves, saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    names = list(report.per_class)
    stats = list(report.per_class.values())
    fig, (ax_bar, ax_pr) = plt.subplots(1, 2, figsize=(14, 5))
    x = np.arange(len(names))
    for i, (label, attr) in enumerate((("precision", "precision"), ("recall", "recall"), ("F1", "f1"))):
        ax_bar.bar(x + (i - 1) * 0.27, [getattr(s, attr) for s in stats], width=0.27, label=label)
    ax_bar.set_xticks(x, names, rotation=30)
    ax_bar.set_ylim(0, 1)
    ax_bar.set_title(f"micro F1 {report.micro_f1:.3f} | macro F1 {report.macro_f1:.3f}")
    ax_bar.legend()
    pred_cls = np.concatenate([m.pred_cls for m in report.matches]) if report.matches else np.zeros(0)
    pred_score = np.concatenate([m.pred_score for m in report.matches]) if report.matches else np.zeros(0)
    pred_tp = np.concatenate([m.pred_tp for m in report.matches]) if report.matches else np.zeros(0, bool)
    for c, (name, s) in enumerate(report.per_class.items(), start=1):
        sel = pred_cls == c
        if not sel.any() or s.gt == 0:
            continue
        order = np.argsort(-pred_score[sel], kind="stable")
        hits = pred_tp[sel][order]
        cum = np.cumsum(hits)
        ax_pr.plot(cum / s.gt, cum / np.arange(1, hits.size + 1), label=f"{name} (AP {s.ap:.2f})")
    ax_pr.set_xlabel("recall")
    ax_pr.set_ylabel("precision")
    ax_pr.set_xlim(0, 1)
    ax_pr.set_ylim(0, 1)
    ax_pr.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=os.path.splitext(str(path))[1].lstrip(".") or "png", dpi=100)
    plt.close(fig)
