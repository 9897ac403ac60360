"""The evaluator against the official evaluation.py output on the real released predictions."""

from __future__ import annotations

import json

import pytest

from fpspot.cli import main as cli_main
from fpspot.eval import evaluate
from fpspot.eval.metric import spec_loop_counts
from fpspot.data.footpass import read_playbyplay, write_playbyplay
from fpspot.schema import ACTION_CLASSES

# micro F1 / macro F1 of the data folder's README (official matcher, delta 12, threshold 0.15).
README_FIGURES = {"TAAD": (0.4125, 0.2498), "DST": (0.6995, 0.4762)}


def _reference_rows(path) -> dict[str, list[int]]:
    """Parse the per-class integer columns of a reference_eval_*.txt table."""
    rows = {}
    for line in path.read_text().splitlines():
        parts = line.split()
        if parts and (parts[0] in ACTION_CLASSES or parts[0] == "OVERALL"):
            rows[parts[0]] = [int(v) for v in parts[3:]]
    return rows


@pytest.mark.parametrize("model", ["TAAD", "DST"])
def test_reproduces_official_counts(footpass_dir, model):
    report = evaluate(footpass_dir / f"playbyplay_{model}_val_g18_g24.json",
                      footpass_dir / "playbyplay_val_g18_g24.json")
    reference = _reference_rows(footpass_dir / f"reference_eval_{model}_val_g18_g24.txt")
    assert set(reference) == {*ACTION_CLASSES, "OVERALL"}
    for name, stats in [*report.per_class.items(), ("OVERALL", report.overall)]:
        ours = [stats.tp, stats.fp, stats.fn, stats.gt]
        for counts in (stats.tp_split, {s: stats.gt_split[s] - stats.tp_split[s] for s in stats.gt_split},
                       stats.gt_split):
            ours += [counts[s] for s in ("bb", "noBB", "rep", "live")]
        assert ours == reference[name], name
    micro, macro = README_FIGURES[model]
    assert round(report.micro_f1, 4) == micro
    assert round(report.macro_f1, 4) == macro


@pytest.mark.parametrize("model", ["TAAD", "DST"])
def test_printed_table_is_the_official_one(footpass_dir, model):
    report = evaluate(footpass_dir / f"playbyplay_{model}_val_g18_g24.json",
                      footpass_dir / "playbyplay_val_g18_g24.json")
    reference = (footpass_dir / f"reference_eval_{model}_val_g18_g24.txt").read_text().strip()
    assert reference in report.table()


def test_matches_plain_spec_loop(footpass_dir):
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json")
    for model in ("TAAD", "DST"):
        pred = read_playbyplay(footpass_dir / f"playbyplay_{model}_val_g18_g24.json")
        report = evaluate(pred, gt)
        loop = spec_loop_counts(pred, gt)
        for c, name in enumerate(ACTION_CLASSES, start=1):
            s = report.per_class[name]
            assert (s.tp, s.fp, s.gt) == loop[c]


def test_cli_prints_figures_and_writes_json_and_plot(footpass_dir, tmp_path, capsys):
    out_json, out_png = tmp_path / "m.json", tmp_path / "m.png"
    code = cli_main(["evaluate", str(footpass_dir / "playbyplay_DST_val_g18_g24.json"),
                     str(footpass_dir / "playbyplay_val_g18_g24.json"), "--json", str(out_json),
                     "--plot", str(out_png)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "Micro F1: 0.699" in printed and "macro F1 0.4762" in printed and "micro F1 0.6995" in printed
    metrics = json.loads(out_json.read_text())
    assert set(metrics["micro"]) >= {"precision", "recall", "f1", "tp", "fp", "fn", "gt"}
    assert metrics["micro"]["tp"] == 2637 and metrics["micro"]["fp"] == 1048
    assert set(metrics["per_class"]) == set(ACTION_CLASSES)
    assert all({"precision", "recall", "f1", "tp", "fp", "fn", "gt", "ap"} <= set(v)
               for v in metrics["per_class"].values())
    assert set(metrics["per_half"]) == {"game_18_H1", "game_18_H2", "game_24_H1", "game_24_H2"}
    assert out_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_missing_half_counts_as_misses_unless_official_keys(footpass_dir):
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json")
    pred = read_playbyplay(footpass_dir / "playbyplay_DST_val_g18_g24.json").subset(["game_18_H1", "game_18_H2"])
    with pytest.warns(UserWarning, match=r"game_24_H1, game_24_H2"):
        full = evaluate(pred, gt)
    official = evaluate(pred, gt, official_keys=True)
    n_g24 = len(gt.events["game_24_H1"]) + len(gt.events["game_24_H2"])
    assert full.overall.gt == official.overall.gt + n_g24
    assert full.overall.tp == official.overall.tp
    assert full.missing_keys == ["game_24_H1", "game_24_H2"]


def test_per_half_micro_f1_is_consistent(footpass_dir):
    report = evaluate(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", footpass_dir / "playbyplay_val_g18_g24.json")
    assert sum(h["tp"] for h in report.per_half.values()) == report.overall.tp
    assert sum(h["gt"] for h in report.per_half.values()) == report.overall.gt
    # The spec's reference re-implementation prints 0.441 and 0.402 for g18 H1/H2 of the TAAD file.
    assert f"{report.per_half['game_18_H1']['f1']:.3f}" == "0.441"
    assert f"{report.per_half['game_18_H2']['f1']:.3f}" == "0.402"


def test_cli_options_reach_the_matcher(footpass_dir, tmp_path, capsys):
    """``--delta``, ``--threshold``, ``--official-keys`` and ``--per-half`` change what the command scores and
    prints: its JSON equals the library's figures with the same settings, which differ from the defaults'."""
    pred_file, gt_file = footpass_dir / "playbyplay_DST_val_g18_g24.json", footpass_dir / "playbyplay_val_g18_g24.json"
    out = tmp_path / "m.json"
    assert cli_main(["evaluate", str(pred_file), str(gt_file), "--delta", "4", "--threshold", "0.6", "--per-half",
                     "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    written = json.loads(out.read_text())
    library = evaluate(pred_file, gt_file, delta=4, threshold=0.6)
    default = evaluate(pred_file, gt_file)
    assert (written["delta"], written["threshold"]) == (4, 0.6)
    assert written["micro"]["tp"] == library.overall.tp < default.overall.tp
    assert written["micro"]["tp"] + written["micro"]["fp"] < default.overall.tp + default.overall.fp
    assert written["macro_f1"] == pytest.approx(library.macro_f1)
    for key, half in library.per_half.items():
        assert f"{key:<14}{half['precision']:>8.3f}{half['recall']:>8.3f}{half['f1']:>8.3f}" in printed

    subset = tmp_path / "g18.json"
    gt = read_playbyplay(gt_file)
    pred = read_playbyplay(pred_file)
    write_playbyplay(subset, pred.subset(["game_18_H1", "game_18_H2"]))
    assert cli_main(["evaluate", str(subset), str(gt_file), "--official-keys", "--json", str(out)]) == 0
    written = json.loads(out.read_text())
    only_g18 = evaluate(pred.subset(["game_18_H1", "game_18_H2"]), gt.subset(["game_18_H1", "game_18_H2"]))
    assert written["keys"] == ["game_18_H1", "game_18_H2"]  # the missing halves are named, not scored
    assert written["missing_keys"] == ["game_24_H1", "game_24_H2"]
    assert written["micro"]["gt"] == only_g18.overall.gt < default.overall.gt
    assert written["micro"]["tp"] == only_g18.overall.tp


def test_predicted_halves_missing_from_the_ground_truth_are_named(footpass_dir):
    """Predicted halves the ground truth does not have are ignored, as the official script does, with a warning
    that names them ("[Info] N predicted games not in GT (ignored)" there); the figures are the official ones."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json")
    pred = read_playbyplay(footpass_dir / "playbyplay_DST_val_g18_g24.json")
    with pytest.warns(UserWarning, match=r"2 predicted half\(s\) are not in the ground truth and are ignored: "
                                         r"game_24_H1, game_24_H2"):
        report = evaluate(pred, gt.subset(["game_18_H1", "game_18_H2"]))
    official = evaluate(pred.subset(["game_18_H1", "game_18_H2"]), gt.subset(["game_18_H1", "game_18_H2"]))
    assert report.to_json() == official.to_json()
    with pytest.warns(UserWarning, match="not in the ground truth"):
        evaluate(pred, gt.subset(["game_18_H1", "game_18_H2"]), official_keys=True)


def test_released_files_score_without_warnings(footpass_dir):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = evaluate(footpass_dir / "playbyplay_DST_val_g18_g24.json",
                          footpass_dir / "playbyplay_val_g18_g24.json")
    assert round(report.micro_f1, 4) == README_FIGURES["DST"][0]


@pytest.mark.parametrize("options, message", [
    ({"delta": -3}, "delta must be a number of frames >= 0, got -3"),
    ({"threshold": 2.0}, r"threshold must be in \[0, 1\], got 2.0"),
    ({"threshold": -0.1}, r"threshold must be in \[0, 1\], got -0.1"),
    ({"threshold": float("nan")}, r"threshold must be in \[0, 1\], got nan"),
])
def test_bad_delta_or_threshold_is_refused(footpass_dir, options, message):
    with pytest.raises(ValueError, match=message):
        evaluate(footpass_dir / "playbyplay_DST_val_g18_g24.json", footpass_dir / "playbyplay_val_g18_g24.json",
                 **options)
