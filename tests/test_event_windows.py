"""Event windows of the event-sequence DST: cutting, tokens with player pointers, shards, fresh noise per epoch."""

from __future__ import annotations

import numpy as np
import pytest

from fpspot.data.corrupt import CorruptionParams
from fpspot.data.event_windows import (
    NUM_INPUT_FEATURES, WindowConfig, WindowCorruptor, collate_windows, cut_windows, read_manifest, window_dataset,
    write_window_shards,
)
from fpspot.data.footpass import read_playbyplay


@pytest.fixture(scope="module")
def gt(footpass_dir):
    return read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")


@pytest.fixture(scope="module")
def corruptor():
    return WindowCorruptor(CorruptionParams.load(), seed=5)


def test_windows_cover_every_event_with_context(gt):
    cfg = WindowConfig(length=750, stride=375, margin=125)
    key = gt.keys[0]
    windows = cut_windows(key, gt.events[key], cfg)
    covered = set()
    for w in windows:
        start = w["meta"]["start_frame"]
        rel = w["gt"][:, 0]
        assert rel.min() >= 1 - cfg.margin and rel.max() <= cfg.length + cfg.margin
        for row in w["gt"][(rel >= 1) & (rel <= cfg.length)]:
            covered.add((int(row[0]) + start - 1, *map(int, row[1:])))
    assert covered == {tuple(e) for e in gt.events[key]}


def test_tokens_point_at_players(gt, corruptor):
    key = gt.keys[1]
    windows = cut_windows(key, gt.events[key])
    unknown = total = 0
    for w in windows[:40]:
        tok = corruptor(w)
        n, p = len(tok["in_cls"]), len(tok["players"])
        assert tok["in_features"].shape == (n, NUM_INPUT_FEATURES)
        assert np.all((tok["in_frame"] >= 1) & (tok["in_frame"] <= 750)) and np.all(np.diff(tok["in_frame"]) >= 0)
        # every input player is known; pointers give back (team, jersey)
        assert np.all(tok["player_known"][tok["in_player"]])
        known = int(tok["player_known"].sum())
        assert tok["player_known"].tolist() == [True] * known + [False] * (p - known)
        targets = w["gt"][(w["gt"][:, 0] >= 1) & (w["gt"][:, 0] <= 750)]
        assert len(tok["tgt_cls"]) == len(targets)
        pairs = tok["players"][tok["tgt_player"]]
        np.testing.assert_array_equal(pairs[:, 0], tok["tgt_team"])
        assert sorted(zip(tok["tgt_frame"], pairs[:, 0], pairs[:, 1], tok["tgt_cls"])) == sorted(
            map(tuple, targets[:, :4].tolist()))
        np.testing.assert_array_equal(tok["tgt_known"], tok["tgt_player"] < known)
        unknown += int((~tok["tgt_known"]).sum())
        total += len(targets)
    assert 0 < unknown < 0.3 * total  # a few targets have no input event of their player


def test_noise_depends_on_seed_epoch_and_key(gt):
    w = cut_windows(gt.keys[0], gt.events[gt.keys[0]])[3]
    c = WindowCorruptor(seed=1)
    a = c(w)
    b = WindowCorruptor(seed=1)(w)
    np.testing.assert_array_equal(a["in_features"], b["in_features"])
    c.set_epoch(1)
    assert not np.array_equal(c(w)["in_features"], a["in_features"])
    np.testing.assert_array_equal(c(w)["tgt_frame"], a["tgt_frame"])  # targets stay clean


def test_windows_round_trip_through_shards(gt, tmp_path, corruptor):
    keys = gt.keys[:2]
    manifest = write_window_shards(tmp_path, gt, keys=keys, samples_per_shard=150)
    assert read_manifest(tmp_path) == manifest
    expected = [w for k in keys for w in cut_windows(k, gt.events[k])]
    assert manifest["num_samples"] == len(expected) == sum(s["samples"] for s in manifest["shards"])
    assert len(manifest["shards"]) == -(-len(expected) // 150)
    assert sum(manifest["class_counts"]["all"].values()) == sum(len(gt.events[k]) for k in keys)
    got = list(window_dataset(tmp_path, corruptor))
    assert [g["meta"]["key"] for g in got] == [w["__key__"] for w in expected]
    for g, w in zip(got, expected):
        ref = corruptor(w)  # same seed, epoch and key: same noise after the round trip
        for name in ("in_features", "in_player", "players", "tgt_cls", "tgt_player", "tgt_frame"):
            np.testing.assert_array_equal(g[name], ref[name])


def test_window_shards_are_plain_ustar_with_stable_bytes(gt, tmp_path):
    """No pax headers to parse per member (they cost about 30 % of reading a window) and the same bytes for
    the same windows."""
    import tarfile

    for out in ("a", "b"):
        write_window_shards(tmp_path / out, gt, keys=gt.keys[:1], samples_per_shard=100)
    names = sorted(p.name for p in (tmp_path / "a").glob("*.tar"))
    assert len(names) >= 2
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()
        with tarfile.open(tmp_path / "a" / name) as tar:
            members = tar.getmembers()
            assert {m.name.split(".", 1)[1] for m in members} == {"gt.npy", "players.npy", "meta.json"}
            assert all(m.mtime == 0 and not m.pax_headers for m in members) and not tar.pax_headers


def test_collate_pads_with_masks(gt, corruptor):
    windows = cut_windows(gt.keys[2], gt.events[gt.keys[2]])[:4]
    toks = [corruptor(w) for w in windows]
    batch = collate_windows(toks)
    n_max = max(len(t["in_cls"]) for t in toks)
    assert batch["in_features"].shape == (4, n_max, NUM_INPUT_FEATURES)
    for b, t in enumerate(toks):
        assert int(batch["in_mask"][b].sum()) == len(t["in_cls"])
        assert int(batch["tgt_mask"][b].sum()) == len(t["tgt_cls"])
        assert int(batch["player_mask"][b].sum()) == len(t["players"])
        assert (batch["tgt_player"][b][~batch["tgt_mask"][b]] == -1).all()
    assert batch["in_score"].dtype.is_floating_point and batch["tgt_known"].dtype.is_floating_point is False


def test_per_input_targets_name_the_clean_event(gt):
    """in_keep events carry the class, player and frame of the ground-truth event they were made from; ghosts,
    random false positives and duplicates are not kept; strengths are drawn per window; team swaps keep
    the targets consistent; player identities are injective."""
    from fpspot.data.corrupt import PREDICTION_KINDS

    key = gt.keys[3]
    windows = cut_windows(key, gt.events[key])[:60]
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=2, strength=(0.1, 1.5, 0.5), augment=True)
    strengths, swapped, kept, total = set(), 0, 0, 0
    for w in windows:
        tok = corruptor(w)
        strengths.add(float(tok["strength"]))
        assert len(set(tok["player_id"].tolist())) == len(tok["player_id"])
        assert np.all((tok["player_id"] >= 0) & (tok["player_id"] < 64))
        np.testing.assert_array_equal(tok["in_player_id"], tok["player_id"][tok["in_player"]])
        clean = {tuple(r) for r in w["gt"][:, :4].tolist()}
        flipped = {(f, 1 - t, s, c) for f, t, s, c in clean}
        for i in range(len(tok["in_cls"])):
            kind = PREDICTION_KINDS[tok["in_kind"][i]]
            total += 1
            if not tok["in_keep"][i]:
                assert tok["in_tgt_cls"][i] == -1 and tok["in_tgt_player"][i] == -1
                continue
            kept += 1
            assert kind in ("detected", "wrong_jersey", "wrong_class", "wrong_team")
            team, shirt = tok["players"][tok["in_tgt_player"][i]]
            event = (int(tok["in_frame"][i] + tok["in_tgt_offset"][i]), int(team), int(shirt),
                     int(tok["in_tgt_cls"][i]))
            assert event in clean or event in flipped
            swapped += event not in clean
            assert tok["player_known"][tok["in_tgt_player"][i]]
            if kind == "detected":
                assert tok["in_tgt_player"][i] == tok["in_player"][i] and tok["in_tgt_cls"][i] == tok["in_cls"][i]
    assert 1.0 in strengths and len(strengths) > 10 and min(strengths) >= 0.1 and max(strengths) <= 1.5
    assert 0.2 * kept < swapped < 0.8 * kept  # about half the windows have their team labels swapped
    assert 0.2 < kept / total < 0.9


def test_insertion_targets_name_the_missed_events(gt):
    """in_ins marks the input event whose gap holds a missed ground-truth event (none of the kept inputs comes
    from it, its player is in the table): the last input at or before it, the nearest such event per anchor;
    every other missed event within reach lies farther from its anchor than the one chosen."""
    from fpspot.data.event_windows import INSERT_REACH

    key = gt.keys[1]
    windows = cut_windows(key, gt.events[key])[:40]
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=4, strength=1.0, insertions=True)
    assert "in_ins" not in WindowCorruptor(CorruptionParams.load(), seed=4, strength=1.0)(windows[0])
    inserted = 0
    for w in windows:
        tok = corruptor(w)
        length = w["meta"]["length"]
        frames = tok["in_frame"]
        assert np.all(np.diff(frames) >= 0)
        known = {tuple(p) for p, k in zip(tok["players"].tolist(), tok["player_known"]) if k}
        detected = {(int(frames[i] + tok["in_tgt_offset"][i]), *tok["players"][tok["in_tgt_player"][i]].tolist(),
                     int(tok["in_tgt_cls"][i])) for i in np.flatnonzero(tok["in_keep"])}
        missed = [tuple(int(x) for x in r[:4]) for r in w["gt"] if 1 <= r[0] <= length
                  and (int(r[1]), int(r[2])) in known and tuple(int(x) for x in r[:4]) not in detected]
        chosen = {}
        for i in np.flatnonzero(tok["in_ins"]):
            team, shirt = tok["players"][tok["in_ins_player"][i]].tolist()
            event = (int(frames[i] + tok["in_ins_offset"][i]), team, shirt, int(tok["in_ins_cls"][i]))
            assert event in missed and tok["player_known"][tok["in_ins_player"][i]]
            assert abs(int(tok["in_ins_offset"][i])) <= INSERT_REACH
            chosen[i] = abs(int(tok["in_ins_offset"][i]))
        for frame, *_ in missed:
            anchor = max(int(np.searchsorted(frames, frame, side="right")) - 1, 0)
            if abs(frame - frames[anchor]) <= INSERT_REACH:
                assert anchor in chosen and chosen[anchor] <= abs(frame - frames[anchor])
        unmarked = ~tok["in_ins"]
        assert np.all(tok["in_ins_cls"][unmarked] == -1) and np.all(tok["in_ins_player"][unmarked] == -1)
        inserted += len(chosen)
    assert inserted > 20
