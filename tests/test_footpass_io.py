"""Readers, writers and slot tables of the FOOTPASS formats."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, TextIO

import numpy as np
import pytest

from fpspot.data.footpass import (
    FormatError,
    TacticalFile,
    read_playbyplay,
    read_tactical,
    slot_jersey_table,
    write_playbyplay,
    write_tactical,
)
from fpspot.schema import Col, GTEvent, Prediction, parse_half_key, slot_of, team_role_of

GOOD_PRED = {"keys": ["game_1_H1", "game_1_H2"],
             "events": {"game_1_H1": [[10, 0, 7, 2, 0.9], [40, 1, 9, 1, 0.3]], "game_1_H2": [[90, 1, 4, 5, 0.5]]}}


def _write(tmp_path, obj, name="pred.json") -> str:
    path = tmp_path / name
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return str(path)


def test_real_files_load(footpass_dir):
    gt = read_playbyplay(footpass_dir / "playbyplay_train.json")
    assert gt.kind == "gt" and len(gt.keys) == 96 and len(gt) == 91_327
    assert isinstance(gt.events["game_10_H1"][0], GTEvent)
    pred = read_playbyplay(footpass_dir / "playbyplay_DST_val_g18_g24.json")
    assert pred.kind == "pred" and isinstance(pred.events["game_18_H1"][0], Prediction)


def test_round_trip_keeps_every_key(tmp_path):
    """Read then write gives back the same object, keys without events included, and no temporary file is left
    after a successful write (interrupted writes: test_write_killed_partway_keeps_the_previous_file)."""
    obj = {**GOOD_PRED, "keys": GOOD_PRED["keys"] + ["game_2_H1"], "events": {**GOOD_PRED["events"], "game_2_H1": []}}
    pbp = read_playbyplay(_write(tmp_path, obj))
    out = write_playbyplay(tmp_path / "out.json", pbp)
    again = json.loads(out.read_text())
    assert again == obj
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_writer_writes_keys_without_events(tmp_path):
    pbp = read_playbyplay(_write(tmp_path, GOOD_PRED))
    pbp.events.pop("game_1_H2")
    again = json.loads(write_playbyplay(tmp_path / "o.json", pbp).read_text())
    assert again["keys"] == ["game_1_H1", "game_1_H2"] and again["events"]["game_1_H2"] == []


def test_invalid_events_are_rejected_before_writing(tmp_path: Path) -> None:
    """Events that could not be read back are refused (FormatError) before anything is written: the previous file
    is untouched and no temporary file is created."""
    target = tmp_path / "out.json"
    target.write_text("previous")
    bad = {"keys": ["game_1_H1"], "events": {"game_1_H1": [[1, 0, 7, 9, 0.5]]}}
    with pytest.raises(FormatError):
        write_playbyplay(target, bad)
    assert target.read_text() == "previous"
    assert sorted(os.listdir(tmp_path)) == ["out.json"]


def test_write_killed_partway_keeps_the_previous_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """write_playbyplay interrupted after json.dump has written part of the file (half of the serialised JSON,
    then a failure): the previous file is byte-identical, no temporary file is left, and it still reads."""
    import fpspot.data.footpass as footpass

    target = write_playbyplay(tmp_path / "out.json", GOOD_PRED)
    before = target.read_bytes()
    bigger = {"keys": ["game_1_H1"], "events": {"game_1_H1": [[f, 0, 7, 2, 0.5] for f in range(5000)]}}

    def half_then_fail(obj: dict, handle: TextIO, **kwargs: Any) -> None:
        text = json.dumps(obj, **kwargs)
        handle.write(text[: len(text) // 2])
        handle.flush()
        raise OSError("No space left on device")

    monkeypatch.setattr(footpass.json, "dump", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_playbyplay(target, bigger)
    monkeypatch.undo()
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["out.json"]
    assert read_playbyplay(target).keys == GOOD_PRED["keys"]


def _bad(events: list, keys=("game_1_H1",)) -> dict:
    return {"keys": list(keys), "events": {"game_1_H1": events}}


@pytest.mark.parametrize(
    "content, key, index, problem",
    [
        ("{not json", None, None, "not valid JSON"),
        ({"events": {}}, None, None, "missing top-level field 'keys'"),
        ({"keys": []}, None, None, "missing top-level field 'events'"),
        ({"keys": ["game_1_H1", "game_1_H2"], "events": {"game_1_H1": []}}, "game_1_H2", None, "absent from 'events'"),
        (_bad([[1, 0, 7, 2, 0.5], [1, 0, 7, 2]]), "game_1_H1", 1, "has 4 fields"),
        (_bad([[1, 0, 7, 2, 0.5], "x"]), "game_1_H1", 1, "must be a list"),
        (_bad([[1, 0, "7", 2, 0.5]]), "game_1_H1", 0, "shirt must be a number"),
        (_bad([[1, 0, 7, 2, 0.5], [5, 0, 7, 9, 0.5]]), "game_1_H1", 1, "class must be in 1..8"),
        (_bad([[1, 0, 7, 0, 0.5]]), "game_1_H1", 0, "class must be in 1..8"),
        (_bad([[1, 0, 7, 2, 1.5]]), "game_1_H1", 0, "score must be in [0, 1]"),
        (_bad([[1, 0, 7, 2, -0.1]]), "game_1_H1", 0, "score must be in [0, 1]"),
        ('{"keys": ["game_1_H1"], "events": {"game_1_H1": [[1, 0, 7, 2, NaN]]}}', "game_1_H1", 0, "score is NaN"),
        ('{"keys": ["game_1_H1"], "events": {"game_1_H1": [[NaN, 0, 7, 2, 0.5]]}}', "game_1_H1", 0, "frame is nan"),
        (_bad([[3, 0, 7, 2, 0.5], [-4, 0, 7, 2, 0.5]]), "game_1_H1", 1, "negative frame"),
        (_bad([[3, 2, 7, 2, 0.5]]), "game_1_H1", 0, "team must be 0 or 1"),
        ('{"keys": ["game_1_H1"], "events": {"game_1_H1": [], "game_1_H1": []}}', "game_1_H1", None, "duplicate key"),
        ({"keys": ["game_1_H1", "game_1_H1"], "events": {"game_1_H1": []}}, "game_1_H1", None, "listed twice"),
        ({"keys": ["game_1_H1"], "events": {"game_1_H1": [], "game_1_H2": [[1, 0, 7, 2, 0.5]]}}, None, None,
         "half 'game_1_H2' is under 'events' but not listed in 'keys' (1 event)"),
    ],
)
def test_malformed_prediction_files(tmp_path, content, key, index, problem):
    path = _write(tmp_path, content)
    with pytest.raises(FormatError) as err:
        read_playbyplay(path, kind="pred")
    message = str(err.value)
    assert path in message and problem in message
    if key is not None:
        assert f"key {key!r}" in message
    if index is not None:
        assert f"event {index}" in message


def test_malformed_ground_truth(tmp_path):
    path = _write(tmp_path, {"keys": ["game_1_H1"], "events": {"game_1_H1": [[1, 0, 7, 2, 1, 0], [2, 0, 7, 2, 2, 0]]}})
    with pytest.raises(FormatError, match=r"key 'game_1_H1', event 1: bbox and replay must be 0 or 1"):
        read_playbyplay(path, kind="gt")
    with pytest.raises(FormatError, match=r"event 0: event has 5 fields; ground-truth events have 6"):
        read_playbyplay(_write(tmp_path, GOOD_PRED), kind="gt")


def _tactical(frames: int = 6) -> np.ndarray:
    rows = []
    for f in range(frames):
        for team in (0, 1):
            for role in (1, 2):
                rows.append([f, 100 + team * 100 + role, team, 10 * team + role, role, 0.5, 0.5, 0, 0,
                             100.0, 200.0, 30.0, 60.0, 0])
    return np.asarray(rows, dtype=np.float64)


def test_tactical_round_trip_and_validation(tmp_path):
    table = _tactical()
    path = write_tactical(tmp_path / "t.h5", {"game_3_H1": table, "game_3_H2": table[:, :13]})
    with TacticalFile(path) as tf:
        assert tf.keys() == ["game_3_H1", "game_3_H2"]
        assert tf.has_labels("game_3_H1") and not tf.has_labels("game_3_H2")
    back = read_tactical(path)
    np.testing.assert_array_equal(back["game_3_H1"], table)
    assert back["game_3_H2"].shape == (table.shape[0], 13)
    with pytest.raises(FormatError, match=r"key 'game_3_H1'.*\(N, 14\) or \(N, 13\)"):
        write_tactical(tmp_path / "bad.h5", {"game_3_H1": table[:, :12]})
    assert not (tmp_path / "bad.h5").exists()
    with pytest.raises(FormatError, match=r"no such dataset"):
        TacticalFile(path).read("game_4_H1")
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(FormatError, match=r"junk.h5.*not a readable HDF5 file"):
        TacticalFile(tmp_path / "junk.h5")


def test_tactical_write_killed_partway_keeps_the_previous_file(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """write_tactical interrupted after its first half's dataset was written into the HDF5 file (the second
    create_dataset fails): the previous tactical file is byte-identical, no temporary file is left, and it still
    reads back its own tables."""
    import h5py

    table = _tactical()
    target = write_tactical(tmp_path / "t.h5", {"game_3_H1": table})
    before = target.read_bytes()
    real_create = h5py.Group.create_dataset
    created: list[str] = []

    def first_then_fail(self: h5py.Group, name: str, *args: Any, **kwargs: Any) -> h5py.Dataset:
        if created:
            raise OSError("No space left on device")
        created.append(name)
        return real_create(self, name, *args, **kwargs)

    monkeypatch.setattr(h5py.Group, "create_dataset", first_then_fail)
    with pytest.raises(OSError, match="No space left"):
        write_tactical(target, {"game_5_H1": _tactical(50), "game_5_H2": _tactical(50)})
    monkeypatch.undo()
    assert created == ["game_5_H1"]  # the failure came after a dataset was written
    assert target.read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["t.h5"]
    np.testing.assert_array_equal(read_tactical(target)["game_3_H1"], table)


def test_slot_jersey_table_fills_and_follows_substitutions():
    rows = _tactical(frames=10)
    # No shirt known for team 0 / role 2 before frame 4, then a substitution at frame 7 (shirt 2 -> 22).
    sel = (rows[:, Col.LEFT_TO_RIGHT] == 0) & (rows[:, Col.ROLE_ID] == 2)
    rows[sel & (rows[:, Col.FRAME] < 4), Col.SHIRT_NUMBER] = np.nan
    rows[sel & (rows[:, Col.FRAME] >= 7), Col.SHIRT_NUMBER] = 22
    # A duplicate row for (team 1, role 1, frame 5): the last row wins.
    dup = rows[(rows[:, Col.LEFT_TO_RIGHT] == 1) & (rows[:, Col.ROLE_ID] == 1) & (rows[:, Col.FRAME] == 5)].copy()
    dup[:, Col.SHIRT_NUMBER] = 99
    rows = np.vstack([rows, dup])
    table = slot_jersey_table(rows, 10)
    assert table.shape == (26, 10)
    lb = slot_of(0, 2)
    assert list(table[lb]) == [2, 2, 2, 2, 2, 2, 2, 22, 22, 22]  # backward fill, then substitution
    assert table[slot_of(1, 1), 5] == 99 and table[slot_of(1, 1), 4] == 11
    assert (table[slot_of(0, 5)] == -1).all()  # never seen
    window = slot_jersey_table(rows, 3, start_frame=6)
    assert list(window[lb]) == [2, 22, 22]


def test_schema_slots_and_keys():
    assert [slot_of(t, r) for t, r in [(0, 1), (0, 13), (1, 1), (1, 13)]] == [0, 12, 13, 25]
    assert all(team_role_of(slot_of(t, r)) == (t, r) for t in (0, 1) for r in range(1, 14))
    assert parse_half_key("game_18_H2") == (18, 2)
    with pytest.raises(ValueError):
        parse_half_key("game_18_H3")


def test_written_files_get_the_usual_permissions(tmp_path):
    mask = os.umask(0o022)
    try:
        path = write_playbyplay(tmp_path / "p.json", GOOD_PRED)
    finally:
        os.umask(mask)
    assert (path.stat().st_mode & 0o777) == 0o644


def test_halves_missing_from_keys_are_named_not_dropped(tmp_path):
    """Every half under 'events' but not in 'keys' is named (none is silently dropped), empty ones included; the
    writer refuses such a mapping too."""
    obj = {"keys": ["game_1_H1"], "events": {"game_1_H1": [], "game_2_H1": [[1, 0, 7, 2, 0.5]], "game_1_H2": []}}
    path = _write(tmp_path, obj)
    with pytest.raises(FormatError, match=r"halves 'game_1_H2', 'game_2_H1' are under 'events' but not listed in "
                                          r"'keys' \(1 event\)") as err:
        read_playbyplay(path)
    assert str(err.value).startswith(f"file {path!r}: ")
    with pytest.raises(FormatError, match="not listed in 'keys'"):
        write_playbyplay(tmp_path / "out.json", obj)
    assert not (tmp_path / "out.json").exists()


def test_real_and_written_files_list_every_half_in_keys(footpass_dir, tmp_path):
    """The released files, and what the synthetic generator and the writer produce, pass the keys check."""
    from fpspot.data.synth import SynthConfig, generate_dataset

    for name in ("playbyplay_train.json", "playbyplay_val_g18_g24.json", "playbyplay_TAAD_val_g18_g24.json",
                 "playbyplay_DST_val_g18_g24.json"):
        pbp = read_playbyplay(footpass_dir / name)
        assert read_playbyplay(write_playbyplay(tmp_path / name, pbp)).keys == pbp.keys
    layout = generate_dataset(tmp_path / "synth", SynthConfig(games=2, minutes=0.1, size=(32, 56), seed=1))
    for split in ("train", "val"):
        assert read_playbyplay(layout.ground_truth(split), "gt").keys


def test_unreadable_file_names_the_file(tmp_path):
    folder = tmp_path / "pred.json"
    folder.mkdir()
    with pytest.raises(FormatError, match=rf"file {str(folder)!r}: cannot read"):
        read_playbyplay(folder)
    latin = tmp_path / "latin.json"
    latin.write_bytes(b'{"keys": ["caf\xe9"]}')
    with pytest.raises(FormatError, match=rf"file {str(latin)!r}: not UTF-8 text"):
        read_playbyplay(latin)


def test_ground_truth_class_rates_of_a_file(footpass_dir):
    """``ground_truth_class_rates`` takes a play-by-play path (str or Path) as the README says, or a PlayByPlay."""
    from fpspot.post.event_dst import ground_truth_class_rates

    path = footpass_dir / "playbyplay_train.json"
    rates = ground_truth_class_rates(read_playbyplay(path, "gt"))
    assert ground_truth_class_rates(path) == ground_truth_class_rates(str(path)) == rates
    one_half = ground_truth_class_rates(read_playbyplay(path), ["game_10_H1"])
    assert ground_truth_class_rates(path, ["game_10_H1"]) == one_half != rates
    with pytest.raises(FormatError, match="no such file"):
        ground_truth_class_rates(footpass_dir / "nope.json")
