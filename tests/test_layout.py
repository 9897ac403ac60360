"""Dataset layout discovery."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpspot.data.footpass import FormatError, write_tactical
from fpspot.data.layout import DatasetLayout


def _table(frame0):
    return np.array([[frame0, 101, 0, 7, 1, .5, .5, 0, 0, 10, 10, 20, 40, 0]], dtype=np.float64)


def test_splits_from_tactical_files_and_from_splits_json(tmp_path):
    layout = DatasetLayout(tmp_path)
    write_tactical(layout.tactical("train"), {"game_10_H2": _table(9), "game_10_H1": _table(0), "game_2_H1": _table(0)})
    write_tactical(layout.tactical("val"), {"game_18_H1": _table(0)})
    assert layout.splits() == {"train": [2, 10], "val": [18]}
    assert layout.half_keys("train") == ["game_2_H1", "game_10_H1", "game_10_H2"]
    layout.splits_file.write_text(json.dumps({"train": [10], "val": [18]}))
    assert layout.splits() == {"train": [10], "val": [18]}
    assert layout.video(10).name == "game_10.mp4"
    assert layout.ground_truth("val").as_posix().endswith("playbyplay_GT/playbyplay_val.json")


def test_not_a_dataset(tmp_path):
    with pytest.raises(FormatError, match="not a FOOTPASS dataset"):
        DatasetLayout(tmp_path).splits()
    (tmp_path / "splits.json").write_text("{oops")
    with pytest.raises(FormatError, match=r"splits.json.*not valid JSON"):
        DatasetLayout(tmp_path).splits()
