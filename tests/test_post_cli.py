"""``fpspot post``: fit on one real game and apply to the other through the CLI; the committed pipeline
applies; malformed prediction files give errors naming the file and the key."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fpspot.cli import main
from fpspot.data.footpass import FormatError, read_playbyplay, write_playbyplay
from fpspot.eval.metric import evaluate
from fpspot.post.pipeline import Pipeline

REPO = Path(__file__).resolve().parents[1]
GT, TAAD, DST = "playbyplay_val_g18_g24.json", "playbyplay_TAAD_val_g18_g24.json", "playbyplay_DST_val_g18_g24.json"


def _split(footpass_dir: Path, tmp_path: Path, game: int) -> dict[str, Path]:
    """The ground truth and both released prediction files restricted to one game, in ``tmp_path``."""
    out = {}
    for name, file in (("gt", GT), ("taad", TAAD), ("dst", DST)):
        pbp = read_playbyplay(footpass_dir / file)
        path = tmp_path / f"{name}_g{game}.json"
        write_playbyplay(path, pbp.subset([k for k in pbp.keys if k.startswith(f"game_{game}_")]))
        out[name] = path
    return out


def test_fit_on_one_game_apply_to_the_other(footpass_dir, tmp_path, capsys):
    g18, g24 = _split(footpass_dir, tmp_path, 18), _split(footpass_dir, tmp_path, 24)
    config = tmp_path / "pipe.yaml"
    assert main(["post", "fit", "--gt", str(g18["gt"]), "--pred", f"taad={g18['taad']}", f"dst={g18['dst']}",
                 "--offset", "dst=-1", "--out", str(config)]) == 0
    pipe = Pipeline.load(config)
    assert pipe.inputs == ["taad", "dst"] and pipe.info["fitted_on"] == ["game_18_H1", "game_18_H2"]
    out = tmp_path / "out.json"
    assert main(["post", "--config", str(config), "--pred", f"taad={g24['taad']}", "--pred", f"dst={g24['dst']}",
                 "--out", str(out)]) == 0
    result = read_playbyplay(out)
    assert result.keys == ["game_24_H1", "game_24_H2"]
    fused, dst = evaluate(result, g24["gt"]), evaluate(g24["dst"], g24["gt"])
    assert fused.micro_f1 > dst.micro_f1 + 0.01 and fused.macro_f1 > dst.macro_f1
    assert "wrote" in capsys.readouterr().out


def test_fit_then_the_released_event_dst_filter(footpass_dir, tmp_path, capsys):
    """``fpspot post fit --then pipeline_dst.yaml``: the fitted steps, then the event DST filter, which only
    removes events; ``--then`` without ``fit`` is an error."""
    g18, g24 = _split(footpass_dir, tmp_path, 18), _split(footpass_dir, tmp_path, 24)
    released = REPO / "recipes" / "pretrained" / "event_dst" / "pipeline_dst.yaml"
    plain, chained = tmp_path / "plain.yaml", tmp_path / "chained.yaml"
    common = ["post", "fit", "--gt", str(g18["gt"]), "--pred", f"taad={g18['taad']}", f"dst={g18['dst']}",
              "--offset", "dst=-1"]
    assert main([*common, "--out", str(plain)]) == 0
    assert main([*common, "--then", str(released), "--out", str(chained)]) == 0
    pipe = Pipeline.load(chained)
    assert pipe.steps[:-1] == Pipeline.load(plain).steps and pipe.steps[-1]["step"] == "event_dst"
    assert pipe.steps[-1]["input"] == "fused" and "calibration_before_then" in pipe.info
    outs = {}
    for name, config in (("plain", plain), ("chained", chained)):
        outs[name] = tmp_path / f"{name}.json"
        assert main(["post", "--config", str(config), "--pred", f"taad={g24['taad']}", "--pred", f"dst={g24['dst']}",
                     "--out", str(outs[name])]) == 0
    plain_out, chained_out = read_playbyplay(outs["plain"]), read_playbyplay(outs["chained"])
    for key in plain_out.keys:
        assert set(chained_out.events[key]) <= set(plain_out.events[key])
    assert sum(map(len, chained_out.events.values())) < sum(map(len, plain_out.events.values()))
    assert main(["post", "--config", str(plain), "--then", str(released), "--pred", f"taad={g24['taad']}",
                 "--pred", f"dst={g24['dst']}", "--out", str(tmp_path / "x.json")]) == 2
    assert "--then: option(s) of 'fpspot post fit'" in capsys.readouterr().err


def test_committed_pipeline_applies_and_keeps_every_key(footpass_dir, tmp_path):
    config = REPO / "recipes" / "configs" / "post_footpass_val.yaml"
    dst = read_playbyplay(footpass_dir / DST)
    extra = tmp_path / "dst_extra_key.json"  # an input half with no events must stay in the output
    write_playbyplay(extra, {"keys": dst.keys + ["game_47_H1"],
                             "events": {**dst.to_json()["events"], "game_47_H1": []}})
    out = tmp_path / "out.json"
    assert main(["post", "--config", str(config), "--pred", f"taad={footpass_dir / TAAD}", f"dst={extra}",
                 "--out", str(out)]) == 0
    result = json.loads(out.read_text())
    assert result["keys"] == dst.keys + ["game_47_H1"] and result["events"]["game_47_H1"] == []
    with pytest.warns(UserWarning, match="1 predicted half.*not in the ground truth.*game_47_H1"):
        scored = evaluate(out, footpass_dir / GT)
    assert scored.micro_f1 > evaluate(footpass_dir / DST, footpass_dir / GT).micro_f1


def _write(path: Path, obj) -> Path:
    path.write_text(json.dumps(obj))
    return path


def test_malformed_prediction_files_name_file_and_key(tmp_path, capsys):
    good = _write(tmp_path / "good.json", {"keys": ["game_1_H1"], "events": {"game_1_H1": [[10, 0, 7, 2, 0.9]]}})
    bad = _write(tmp_path / "bad.json", {"keys": ["game_1_H1", "game_1_H2"],
                                         "events": {"game_1_H1": [], "game_1_H2": [[10, 0, 7, 2, 1.7]]}})
    missing = _write(tmp_path / "missing.json", {"keys": ["game_1_H1"], "events": {}})
    config = tmp_path / "p.yaml"
    Pipeline(["a", "b"], [{"step": "fuse", "inputs": ["a", "b"], "output": "f"}], "f").save(config)
    for path, key, problem in ((bad, "game_1_H2", "score"), (missing, "game_1_H1", "absent")):
        code = main(["post", "--config", str(config), "--pred", f"a={good}", f"b={path}",
                     "--out", str(tmp_path / "o.json")])
        err = capsys.readouterr().err
        assert code == 2 and str(path) in err and key in err and problem in err
        with pytest.raises(FormatError, match=key):
            read_playbyplay(path)
    code = main(["post", "--config", str(config), "--pred", f"a={good}", "--out", str(tmp_path / "o.json")])
    assert code == 2 and "needs input(s) b" in capsys.readouterr().err
    code = main(["post", "--config", str(config), "--pred", "nameless", "--out", str(tmp_path / "o.json")])
    assert code == 2 and "NAME=VALUE" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()


def test_options_that_would_be_ignored_are_refused(footpass_dir, tmp_path, capsys):
    """Applying a pipeline refuses the options of fitting (they would do nothing) and predictions the pipeline has
    no input for (a misspelt name); fitting refuses --config and predictions that share no half with the ground
    truth (it used to fit every threshold on nothing and exit 0). Nothing is written."""
    g18, g24 = _split(footpass_dir, tmp_path, 18), _split(footpass_dir, tmp_path, 24)
    config = REPO / "recipes" / "pretrained" / "event_dst" / "pipeline.yaml"  # one input: taad
    out = tmp_path / "o.json"
    apply = ["post", "--config", str(config), "--pred", f"taad={g18['taad']}", "--out", str(out)]
    for extra, message in ((["--offset", "dst=-1"], "--offset: option(s) of 'fpspot post fit'"),
                           (["--objective", "macro", "--gt", str(g18["gt"])], "--gt, --objective: option(s)"),
                           (["--pred", f"dst={g18['dst']}"], "--pred dst: not an input of")):
        assert main([*apply, *extra]) == 2
        assert message in capsys.readouterr().err
    fit = ["post", "fit", "--gt", str(g24["gt"]), "--pred", f"taad={g18['taad']}", "--out", str(out)]
    assert main(fit) == 2
    assert "predictions 'taad' share no half with the ground truth" in capsys.readouterr().err
    assert main([*fit[:-2], "--config", str(config), "--out", str(out)]) == 2
    assert "--config is the pipeline to apply" in capsys.readouterr().err
    assert not out.exists()
