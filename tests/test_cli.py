"""The ``fpspot`` dispatcher: a user error (bad file, bad option, missing model or split) prints one line
``fpspot COMMAND: error: MESSAGE`` on stderr and exits with status 2; a bug keeps its traceback;
``FPSPOT_TRACEBACK=1`` shows the traceback of user errors too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fpspot.cli import main

GT = "playbyplay_val_g18_g24.json"
BAD_CLASS = "file {path!r}, key 'game_18_H1', event 5: class must be in 1..8, got 12"


def _bad_class_file(footpass_dir: Path, tmp_path: Path) -> Path:
    """The released TAAD predictions with event 5 of game_18_H1 in class 12."""
    obj = json.loads((footpass_dir / "playbyplay_TAAD_val_g18_g24.json").read_text())
    obj["events"]["game_18_H1"][5][3] = 12
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(obj))
    return path


def _error_line(capsys: pytest.CaptureFixture, command: str) -> str:
    """The message of the one ``fpspot COMMAND: error:`` line on stderr."""
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    prefix = f"fpspot {command}: error: "
    assert lines[0].startswith(prefix), err
    return lines[0][len(prefix):]


def test_bad_event_is_one_line(footpass_dir, tmp_path, capsys):
    bad = _bad_class_file(footpass_dir, tmp_path)
    assert main(["evaluate", str(bad), str(footpass_dir / GT)]) == 2
    assert _error_line(capsys, "evaluate") == BAD_CLASS.format(path=str(bad))


@pytest.mark.parametrize("content, problem", [
    (None, "no such file"),
    ('{"keys": ["game_18_H1"], "events": {"game_18_H1": [[1, 0,', "not valid JSON"),
    ("directory", "cannot read"),
])
def test_unreadable_prediction_file_is_one_line(footpass_dir, tmp_path, capsys, content, problem):
    path = tmp_path / "pred.json"
    if content == "directory":
        path.mkdir()
    elif content is not None:
        path.write_text(content)
    assert main(["evaluate", str(path), str(footpass_dir / GT)]) == 2
    message = _error_line(capsys, "evaluate")
    assert message.startswith(f"file {str(path)!r}: {problem}"), message


@pytest.mark.usefixtures("fresh_accelerate_state")
def test_missing_model_is_one_line(tmp_path, capsys):
    missing = tmp_path / "models" / "nope"
    assert main(["infer", "--model", str(missing), "--data", str(tmp_path), "--out", str(tmp_path / "p.json")]) == 2
    assert _error_line(capsys, "infer") == f"{missing}: no config.json (not a folder written by save_pretrained)"


def test_missing_split_is_one_line(tmp_path, capsys):
    data = tmp_path / "data"
    assert main(["synth", "--out", str(data), "--games", "2", "--minutes", "0.1", "--size", "32x56"]) == 0
    capsys.readouterr()
    assert main(["shard", "--data", str(data), "--split", "nope", "--out", str(tmp_path / "shards")]) == 2
    assert _error_line(capsys, "shard") == f"file {str(data / 'data' / 'nope_tactical_data.h5')!r}: no tactical " \
                                           "file for split 'nope'"


@pytest.mark.parametrize("options, message", [
    (["--val-games", "5", "--games", "3"], "3 games cannot hold 5 val and 0 challenge games and a train split"),
    (["--games", "0"], "games must be at least 1, got 0"),
    (["--minutes", "0"], "minutes must be at least 0.087"),
    (["--minutes", "0.05"], "minutes must be at least 0.087"),
    (["--class-balance", "-1"], "class_balance must be >= 0 and finite, got -1.0"),
])
def test_bad_synth_settings_are_one_line(tmp_path, capsys, options, message):
    out = tmp_path / "synth"
    assert main(["synth", "--out", str(out), *options]) == 2
    assert _error_line(capsys, "synth").startswith(message)
    assert not out.exists()  # checked before anything is written


@pytest.mark.parametrize("option, value", [("--delta", "-3"), ("--threshold", "2"), ("--threshold", "-0.1"),
                                           ("--threshold", "nan")])
def test_evaluate_rejects_a_negative_delta_and_a_threshold_outside_0_1(footpass_dir, capsys, option, value):
    pred = footpass_dir / "playbyplay_TAAD_val_g18_g24.json"
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", str(pred), str(footpass_dir / GT), option, value])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert f"argument {option}" in err and value in err


def _raise(error: BaseException):
    def run(args) -> int:
        raise error
    return run


def _numpy_value_error(args) -> int:
    np.pad(np.zeros((1, 0)), [(0, 0), (1, 1)], mode="edge")  # a ValueError raised inside numpy: a bug
    return 0


def _unpacking_error(args) -> int:
    first, second = [1, 2, 3]  # a ValueError raised outside fpspot's modules (here: this test's): a bug
    return first + second


def _deliberate_value_error(args) -> int:
    from fpspot.data.synth import class_balance_factors

    class_balance_factors(-2.0)  # fpspot raises ValueError with a message for the user
    return 0


@pytest.mark.parametrize("run, error", [(_raise(RuntimeError("boom")), RuntimeError),
                                        (_raise(KeyError("k")), KeyError),
                                        (_numpy_value_error, ValueError),
                                        (_unpacking_error, ValueError)])
def test_bugs_keep_their_traceback(monkeypatch, run, error):
    import fpspot.eval.cli

    monkeypatch.setattr(fpspot.eval.cli, "run", run)
    with pytest.raises(error):
        main(["evaluate", "p.json", "g.json"])


def test_a_value_error_fpspot_raises_is_one_line(monkeypatch, capsys):
    import fpspot.eval.cli

    monkeypatch.setattr(fpspot.eval.cli, "run", _deliberate_value_error)
    assert main(["evaluate", "p.json", "g.json"]) == 2
    assert _error_line(capsys, "evaluate") == "class_balance must be >= 0 and finite, got -2.0"


def test_traceback_on_request(footpass_dir, tmp_path, monkeypatch, capsys):
    from fpspot.data.footpass import FormatError

    monkeypatch.setenv("FPSPOT_TRACEBACK", "1")
    with pytest.raises(FormatError, match="class must be in 1..8, got 12"):
        main(["evaluate", str(_bad_class_file(footpass_dir, tmp_path)), str(footpass_dir / GT)])
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "FPSPOT_TRACEBACK=1" in capsys.readouterr().out


def test_console_output_and_exit_status(footpass_dir, tmp_path):
    """The installed command as a user runs it: one line on stderr, nothing on stdout, status 2."""
    bad = _bad_class_file(footpass_dir, tmp_path)
    env = {k: v for k, v in os.environ.items() if k != "FPSPOT_TRACEBACK"}
    done = subprocess.run([sys.executable, "-m", "fpspot.cli", "evaluate", str(bad), str(footpass_dir / GT)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr == f"fpspot evaluate: error: {BAD_CLASS.format(path=str(bad))}\n"


def test_bad_batch_size_is_one_line(tmp_path, capsys):
    assert main(["infer", "--model", str(tmp_path), "--data", str(tmp_path), "--out", str(tmp_path / "p.json"),
                 "--batch-size", "0"]) == 2
    assert _error_line(capsys, "infer") == "--batch-size must be at least 1, got 0"
