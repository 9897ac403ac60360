"""DST windows from synthetic halves: stored arrays, targets equal to the ground-truth play-by-play, the four
mirrors of spec §4.4, and deterministic, process-disjoint loaders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import taad_like_logits

from fpspot.data.dst_windows import (
    MIRRORS,
    SLOT_PERMUTATIONS,
    DSTInputs,
    dst_eval_loader,
    dst_train_loader,
    eval_plan,
    read_dst_manifest,
    train_plan,
    write_dst_windows,
)
from fpspot.data.footpass import (
    FormatError,
    PlayByPlay,
    read_playbyplay,
    slot_jersey_table,
    write_playbyplay,
    write_tactical,
)
from fpspot.data.layout import DatasetLayout
from fpspot.data.synth import SynthConfig, generate_game
from fpspot.data.tracks import HalfRows, teamvec_window
from fpspot.infer.api import save_logits
from fpspot.schema import MISSING_FILL, NUM_ROLES, ROLE_LR_MIRROR

WINDOW = 64


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> dict:
    """Two synthetic games (four halves of 1500 frames) in the FOOTPASS layout, per-half TAAD-like and GNN-like
    logits files, and the DST inputs written from them."""
    root = tmp_path_factory.mktemp("dst_synth")
    layout = DatasetLayout(root)
    tables, events = {}, {}
    for game in range(2):
        for half in generate_game(game, SynthConfig(games=2, minutes=2.0, seed=3), None):
            tables[half.key], events[half.key] = half.rows, half.events
    write_tactical(layout.tactical("train"), tables)
    write_playbyplay(layout.ground_truth("train"), PlayByPlay("gt", list(tables), events))
    for i, (key, rows) in enumerate(tables.items()):
        logits = taad_like_logits(rows, i)
        save_logits(root / "logits" / f"{key}.safetensors", logits, key)
        save_logits(root / "gnn" / f"{key}.safetensors", logits + np.float32(0.25), key)
    manifest = write_dst_windows(root, "train", root / "logits", root / "win", gnn_logits_dir=root / "gnn")
    return {"root": root, "tables": tables, "manifest": manifest, "inputs": root / "win"}


def _meta(loader) -> list[tuple]:
    return [(m["key"], m["start"], m["mirror"], m["padding"]) for batch in loader for m in batch["meta"]]


# ------------------------------------------------------------------------------------------ storage


def test_stored_arrays_match_the_tactical_rows_and_logits(dataset):
    manifest = read_dst_manifest(dataset["inputs"])
    assert manifest["kind"] == "dst" and manifest["config"]["gnn_logits"] and manifest["config"]["dtype"] == "float16"
    assert [h["key"] for h in manifest["halves"]] == list(dataset["tables"])
    gt = read_playbyplay(DatasetLayout(dataset["root"]).ground_truth("train"))
    counts = np.zeros(8, int)
    for events in gt.events.values():
        for e in events:
            counts[e.cls - 1] += 1
    assert list(manifest["class_counts"]["all"].values()) == counts.tolist()
    inputs = DSTInputs(dataset["inputs"])
    for h, half in enumerate(manifest["halves"]):
        rows = HalfRows(dataset["tables"][half["key"]])
        first, last = inputs.span(h)
        assert (first, last) == (rows.first_visible, rows.last_visible)
        teamvec = inputs.array(h, "teamvec")
        assert teamvec.dtype == np.float16 and teamvec.shape == (last - first + 1, 5, 26)
        expected = teamvec_window(rows.rows, first, 200)
        stored = np.moveaxis(teamvec[:200].astype(np.float32), 0, 2)
        np.testing.assert_allclose(stored, expected, atol=2e-3, rtol=1e-3)
        logits = taad_like_logits(dataset["tables"][half["key"]], h)[..., first:first + 200]
        np.testing.assert_allclose(np.moveaxis(inputs.array(h, "logits")[:200].astype(np.float32), 0, 2), logits,
                                   atol=1e-2, rtol=2e-3)


def test_missing_logits_file_names_the_half(dataset, tmp_path):
    (tmp_path / "logits").mkdir()
    with pytest.raises(FormatError, match="game_0_H1.*no logits file"):
        write_dst_windows(dataset["root"], "train", tmp_path / "logits", tmp_path / "out")
    assert not (tmp_path / "out" / "manifest.json").exists()
    with pytest.raises(FormatError, match="no manifest.json"):
        DSTInputs(tmp_path / "out")


# ------------------------------------------------------------------------------------------ targets


def test_window_targets_equal_the_ground_truth_events(dataset):
    """Decode each training window's target sequence back to (frame, team, shirt, class) and compare with
    the play-by-play JSON (an independent source: the synthetic generator's ground truth)."""
    inputs = DSTInputs(dataset["inputs"])
    gt = read_playbyplay(DatasetLayout(dataset["root"]).ground_truth("train"))
    tables = {key: slot_jersey_table(rows, HalfRows(rows).last + 1) for key, rows in dataset["tables"].items()}
    plan = train_plan(inputs, WINDOW, 40, epoch=0, seed=1, augment=False)
    seen_events = 0
    for h, start, mirror, _ in plan:
        assert mirror == 0
        sample = inputs.window(int(h), int(start), WINDOW)
        key = sample["meta"]["key"]
        actions, slots, frames = sample["tgt_action"], sample["tgt_slot"], sample["tgt_frame"]
        assert actions[0] == 8 and slots[0] == 26 and frames[0] == 0  # SOS
        assert actions[-1] == 9 and slots[-1] == 26  # EOS
        decoded = [(int(start) + int(f) - 1, int(s) // 13, int(tables[key][s, int(start) + f - 1]), int(a) + 1)
                   for a, s, f in zip(actions[1:-1], slots[1:-1], frames[1:-1])]
        expected = [(e.frame, e.team, e.shirt, e.cls) for e in gt.events[key] if start <= e.frame < start + WINDOW]
        assert decoded == expected
        assert frames[-1] == (frames[-2] + 1 if len(decoded) else WINDOW + 1)
        assert list(frames[1:-1]) == sorted(frames[1:-1])
        seen_events += len(decoded)
    assert seen_events > 20


def test_slot_permutations_are_the_spec_arrays_and_the_schema_role_mirror():
    for i in range(26):
        team, role = divmod(i, NUM_ROLES)
        assert SLOT_PERMUTATIONS["x"][i] == (1 - team) * NUM_ROLES + ROLE_LR_MIRROR[role]
        assert SLOT_PERMUTATIONS["y"][i] == team * NUM_ROLES + ROLE_LR_MIRROR[role]
        assert SLOT_PERMUTATIONS["xy"][i] == (1 - team) * NUM_ROLES + role
    for perm in SLOT_PERMUTATIONS.values():
        assert sorted(perm) == list(range(26))


@pytest.mark.parametrize("mirror", MIRRORS)
def test_mirror_moves_logit_peaks_team_vectors_and_event_slots_together(dataset, mirror):
    inputs = DSTInputs(dataset["inputs"])
    # windows holding events, from every half
    checked = 0
    for h in range(len(inputs)):
        events = inputs.array(h, "events")
        first, last = inputs.span(h)
        for frame in events[:3, 0]:
            start = int(np.clip(frame - WINDOW // 2, first, last - WINDOW + 1))
            plain = inputs.window(h, start, WINDOW)
            flipped = inputs.window(h, start, WINDOW, mirror)
            perm = SLOT_PERMUTATIONS[mirror]
            inverse = np.argsort(perm)
            assert list(flipped["tgt_slot"][1:-1]) == [inverse[s] for s in plain["tgt_slot"][1:-1]]
            assert np.array_equal(flipped["tgt_frame"], plain["tgt_frame"])
            assert np.array_equal(flipped["tgt_action"], plain["tgt_action"])
            # the class peak of each event sits at the event's (new) slot, in both logit streams
            for a, s, f in zip(flipped["tgt_action"][1:-1], flipped["tgt_slot"][1:-1], flipped["tgt_frame"][1:-1]):
                for stream in ("logits", "gnn_logits"):
                    assert int(np.argmax(flipped[stream][a + 1, :, f - 1])) == s
            # team vectors: old slot s is new slot inverse[s]; coordinates flipped except the -15 fill
            old, new = plain["teamvec"], flipped["teamvec"][:, inverse]
            missing = old == MISSING_FILL
            assert np.array_equal(new == MISSING_FILL, missing)
            flips = {"none": (), "x": (0, 2), "y": (1, 3), "xy": (0, 1, 2, 3)}[mirror]
            for channel in range(5):
                ok = ~missing[channel]
                if channel in flips:
                    want = 1.0 - old[channel][ok] if channel < 2 else -old[channel][ok]
                else:
                    want = old[channel][ok]
                np.testing.assert_allclose(new[channel][ok], want, atol=1e-6)
            checked += 1
    assert checked >= 8


def test_x_mirror_keeps_the_attacking_geometry_consistent(dataset):
    """After an X mirror the team that had the ball's side swaps: old team-0 players (left, x) are new
    team-1 players at 1 - x, so the mean x of each new team is the mirror of the other old team's."""
    inputs = DSTInputs(dataset["inputs"])
    plain = inputs.window(0, inputs.span(0)[0], WINDOW)
    flipped = inputs.window(0, inputs.span(0)[0], WINDOW, "x")

    def mean_x(teamvec, team):
        x = teamvec[0, team * 13:(team + 1) * 13]
        return x[x != MISSING_FILL].mean()

    assert mean_x(flipped["teamvec"], 1) == pytest.approx(1.0 - mean_x(plain["teamvec"], 0), abs=1e-5)
    assert mean_x(flipped["teamvec"], 0) == pytest.approx(1.0 - mean_x(plain["teamvec"], 1), abs=1e-5)


def test_window_past_the_end_is_padded(dataset):
    inputs = DSTInputs(dataset["inputs"])
    first, last = inputs.span(1)
    start = last - 9  # 10 valid frames
    sample = inputs.window(1, start, WINDOW)
    assert list(sample["frame_index"][:10]) == list(range(1, 11)) and (sample["frame_index"][10:] == -1).all()
    assert (sample["teamvec"][..., 10:] == MISSING_FILL).all() and (sample["logits"][..., 10:] == 0).all()
    assert (sample["tgt_frame"][1:-1] <= 10).all()


# ------------------------------------------------------------------------------------------ loaders


def test_train_loader_is_deterministic_and_fresh_each_epoch(dataset):
    kwargs = dict(batch_size=4, seed=7, rank=0, world_size=1, window=WINDOW, windows_per_half=10)
    a = list(dst_train_loader(dataset["inputs"], epoch=0, **kwargs))
    b = list(dst_train_loader(dataset["inputs"], epoch=0, **kwargs))
    c = list(dst_train_loader(dataset["inputs"], epoch=1, **kwargs))
    assert len(a) == len(dst_train_loader(dataset["inputs"], epoch=0, **kwargs)) == 40 // 4
    for x, y in zip(a, b):
        assert x["meta"] == y["meta"]
        for key in ("teamvec", "logits", "gnn_logits", "frame_index", "tgt_action", "tgt_slot", "tgt_frame",
                    "tgt_mask"):
            assert torch.equal(x[key], y[key]), key
    assert [m for x in a for m in x["meta"]] != [m for x in c for m in x["meta"]]
    metas = [m for x in a for m in x["meta"]]
    keys = [m["key"] for m in metas]
    assert all(keys.count(k) == 10 for k in set(keys)) and len(set(keys)) == 4  # windows_per_half of every half
    assert {m["mirror"] for m in metas} == set(MIRRORS)
    batch = a[0]
    assert batch["teamvec"].shape == (4, 5, 26, WINDOW) and batch["teamvec"].dtype == torch.float32
    assert batch["gnn_logits"].shape == (4, 9, 26, WINDOW)
    assert batch["tgt_mask"][:, 0].all() and batch["tgt_mask"].sum(1).min() >= 2


def test_train_loader_splits_global_batches_over_processes(dataset):
    kwargs = dict(epoch=2, seed=3, window=WINDOW, windows_per_half=7)  # 28 windows
    single = _meta(dst_train_loader(dataset["inputs"], batch_size=6, rank=0, world_size=1, **kwargs))
    ranks = [_meta(dst_train_loader(dataset["inputs"], batch_size=3, rank=r, world_size=2, **kwargs)) for r in (0, 1)]
    assert len(single) == 24 and len(ranks[0]) == len(ranks[1]) == 12  # 4 global batches of 6, remainder dropped
    assert not set(ranks[0]) & set(ranks[1])
    merged = []
    for k in range(4):  # global batch k = rank 0's batch k then rank 1's batch k: independent of the world size
        merged += ranks[0][3 * k:3 * k + 3] + ranks[1][3 * k:3 * k + 3]
    assert merged == single


def test_train_loader_resumes_inside_an_epoch(dataset):
    kwargs = dict(batch_size=2, epoch=5, seed=0, rank=1, world_size=2, window=WINDOW, windows_per_half=5)
    full = list(dst_train_loader(dataset["inputs"], **kwargs))
    tail = list(dst_train_loader(dataset["inputs"], start_batch=3, **kwargs))
    assert len(tail) == len(full) - 3
    for x, y in zip(full[3:], tail):
        assert x["meta"] == y["meta"] and torch.equal(x["logits"], y["logits"])


def test_train_loader_with_workers_gives_the_same_batches(dataset):
    kwargs = dict(batch_size=4, epoch=0, seed=11, rank=0, world_size=1, window=WINDOW, windows_per_half=3)
    plain = list(dst_train_loader(dataset["inputs"], **kwargs))
    workers = list(dst_train_loader(dataset["inputs"], num_workers=2, **kwargs))
    for x, y in zip(plain, workers, strict=True):
        assert x["meta"] == y["meta"] and torch.equal(x["teamvec"], y["teamvec"])


@pytest.mark.parametrize("world_size", [1, 3])
def test_eval_loader_gives_each_window_once_over_processes(dataset, world_size):
    inputs = DSTInputs(dataset["inputs"])
    plan = eval_plan(inputs, WINDOW)
    expected = {(inputs.halves[h]["key"], int(s)) for h, s, _, _ in plan}
    assert len(expected) == len(plan) == sum(-(-h["num_frames"] // WINDOW) for h in inputs.halves)
    loaders = [dst_eval_loader(inputs, batch_size=5, rank=r, world_size=world_size, window=WINDOW)
               for r in range(world_size)]
    assert len({len(loader) for loader in loaders}) == 1  # same number of batches on every process
    real = []
    for loader in loaders:
        for batch in loader:
            for i, meta in enumerate(batch["meta"]):
                assert meta["mirror"] == "none"
                if meta["padding"]:
                    assert not batch["tgt_mask"][i].any()
                else:
                    real.append((meta["key"], meta["start"]))
    assert sorted(real) == sorted(expected) and len(real) == len(expected)
    # the last window of each half ends in padding frames
    last = dst_eval_loader(inputs, batch_size=len(plan), rank=0, world_size=1, window=WINDOW)
    batch = next(iter(last))
    assert (batch["frame_index"] == -1).any(dim=1).sum() == sum(h["num_frames"] % WINDOW != 0 for h in inputs.halves)


def test_loader_raises_when_an_epoch_has_no_full_batch(dataset):
    with pytest.raises(ValueError, match="raise windows_per_half"):
        dst_train_loader(dataset["inputs"], batch_size=8, epoch=0, seed=0, rank=0, world_size=2, window=WINDOW,
                         windows_per_half=1)


def test_inputs_without_gnn_logits(dataset, tmp_path):
    write_dst_windows(dataset["root"], "train", Path(dataset["root"]) / "logits", tmp_path / "win",
                      keys=["game_1_H2"], dtype="float32")
    inputs = DSTInputs(tmp_path / "win")
    assert len(inputs) == 1 and not inputs.has_gnn and inputs.array(0, "logits").dtype == np.float32
    batch = next(iter(dst_eval_loader(inputs, batch_size=2, rank=0, world_size=1, window=WINDOW)))
    assert "gnn_logits" not in batch and batch["logits"].shape == (2, 9, 26, WINDOW)
