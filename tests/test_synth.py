"""The synthetic match generator: measured statistics, what real data has, flags as the spec defines them,
the class cue at the actor, the FOOTPASS layout, and "same seed, same bytes"."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from data_fixtures import SYNTH_HW, synth_dir  # noqa: F401 - session fixture
from same_video import same_video

from fpspot.data import synth
from fpspot.data.footpass import PlayByPlay, read_playbyplay, read_tactical
from fpspot.data.layout import DatasetLayout
from fpspot.data.synth import (
    CLASS_FREQUENCY, HALF_BREAK, PitchRenderer, SynthConfig, generate_dataset, generate_game,
    measure_event_statistics,
)
from fpspot.schema import NUM_ACTIONS, Col, half_key

#: Per-class tolerance of generated class frequencies: |f - p| <= Z_TOL * sqrt(p (1 - p) / n).
Z_TOL = 4.0


@pytest.fixture(scope="module")
def halves():
    """8 games x 10 minutes without video (about 1,800 events)."""
    config = SynthConfig(games=8, minutes=10, seed=5)
    return [half for game in range(8) for half in generate_game(game, config, None)]


def _pbp(halves) -> PlayByPlay:
    return PlayByPlay("gt", [h.key for h in halves], {h.key: h.events for h in halves})


def _within(freq: np.ndarray, ref: np.ndarray, n: int) -> np.ndarray:
    return np.abs(freq - ref) <= Z_TOL * np.sqrt(ref * (1 - ref) / n)


def test_constants_are_the_statistics_of_the_real_training_file(footpass_dir):
    path = footpass_dir / "playbyplay_train.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    measured = measure_event_statistics(read_playbyplay(path, "gt"))
    for name, value in measured.items():
        constant = getattr(synth, name.upper())
        assert [list(row) if isinstance(row, tuple) else row for row in constant] == value, name


def test_event_chain_reproduces_the_class_frequencies():
    # the stationary distribution of the measured transition counts is the measured class distribution
    transitions = np.asarray(synth.TRANSITIONS, np.float64)
    transitions /= transitions.sum(axis=1, keepdims=True)
    values, vectors = np.linalg.eig(transitions.T)
    stationary = np.real(vectors[:, np.argmin(np.abs(values - 1))])
    stationary /= stationary.sum()
    np.testing.assert_allclose(stationary, CLASS_FREQUENCY, atol=1e-3)


def _class_shares(class_balance: float, seed: int = 3, frames: int = 400_000) -> np.ndarray:
    _, cls, _, _ = synth.sample_event_chain(frames, np.random.default_rng(seed), class_balance=class_balance)
    return np.bincount(cls, minlength=NUM_ACTIONS + 1)[1:] / len(cls)


def test_class_balance_flattens_the_class_mix():
    # 0 is the default chain, draw for draw; 0.75 gives every class a share of 2-25 % (about 10,000 events)
    default = synth.sample_event_chain(50_000, np.random.default_rng(1))
    explicit = synth.sample_event_chain(50_000, np.random.default_rng(1), class_balance=0.0)
    for a, b in zip(default, explicit):
        np.testing.assert_array_equal(a, b)
    measured, flat = _class_shares(0.0), _class_shares(0.75)
    assert measured.min() < 0.01 and measured.max() > 0.4
    assert 0.02 < flat.min() and flat.max() < 0.25, flat
    with pytest.raises(ValueError, match="class_balance"):
        synth.class_balance_factors(-0.5)


def test_generated_class_frequencies_within_tolerance(halves):
    stats = measure_event_statistics(_pbp(halves))
    counts = np.asarray(stats["class_counts"])
    n = int(counts.sum())
    assert n > 1500
    freq = counts / n
    assert _within(freq, np.asarray(CLASS_FREQUENCY), n).all(), (freq.round(4), CLASS_FREQUENCY)
    assert (counts > 0).all()  # even tackles (0.3 %) occur
    # box and replay rates over all events, spacing of events (real: 81.4 %, 9.4 %, median gap 37)
    assert abs(sum(stats["bbox_counts"]) / n - 0.8144) < 0.05
    assert abs(sum(stats["replay_counts"]) / n - 0.0938) < 0.02
    gaps = np.concatenate([np.diff([e.frame for e in h.events]) for h in halves])
    assert 32 <= np.median(gaps) <= 42 and gaps.min() >= 1
    # throw-ins are mostly in replays, shots almost never (spec §1.4 table)
    rates = np.asarray(stats["replay_counts"]) / counts
    assert rates[3] > 0.3 and rates[4] < 0.05


def test_generated_class_frequencies_match_the_real_file(halves, footpass_dir):
    path = footpass_dir / "playbyplay_train.json"
    if not path.is_file():
        pytest.skip(f"{path} not present")
    real = np.asarray(measure_event_statistics(read_playbyplay(path, "gt"))["class_counts"], np.float64)
    counts = np.asarray(measure_event_statistics(_pbp(halves))["class_counts"])
    assert _within(counts / counts.sum(), real / real.sum(), int(counts.sum())).all()


def test_flags_and_labels_follow_the_tables(halves):
    for half in halves:
        rows = half.rows
        by_frame = rows[:, Col.FRAME].astype(np.int64)
        for event in half.events:
            at_frame = rows[by_frame == event.frame]
            mine = (at_frame[:, Col.LEFT_TO_RIGHT] == event.team) & (at_frame[:, Col.SHIRT_NUMBER] == event.shirt)
            actor = at_frame[mine]
            assert len(actor) == 1, (half.key, event)
            assert actor[0, Col.CLS] == event.cls
            assert event.bbox == int(np.isfinite(actor[0, Col.ROI_X]))
            assert event.replay == int(not np.isfinite(at_frame[:, Col.ROI_X]).any())
        assert (rows[:, Col.CLS] > 0).sum() == len(half.events)


def test_what_real_data_has(halves):
    substitutions = gaps = 0
    live_no_box = sum(e.bbox == 0 and e.replay == 0 for h in halves for e in h.events)
    replays = sum(e.replay for h in halves for e in h.events)
    for half in halves:
        rows = half.rows
        assert rows.shape[1] == 14
        frames = np.unique(rows[:, Col.FRAME])
        assert len(rows) == 22 * len(frames) and np.array_equal(frames, np.arange(frames[0], frames[-1] + 1))
        assert np.all((rows[:, Col.X_POS] >= 0) & (rows[:, Col.X_POS] <= 1))
        assert np.all((rows[:, Col.Y_POS] >= 0) & (rows[:, Col.Y_POS] <= 1))
        assert np.isfinite(rows[:, [Col.X_SPEED, Col.Y_SPEED]]).all()
        slot = (rows[:, Col.LEFT_TO_RIGHT] * 13 + rows[:, Col.ROLE_ID] - 1).astype(int)
        for s in np.unique(slot):
            shirts = rows[slot == s, Col.SHIRT_NUMBER]
            substitutions += int((np.diff(shirts) != 0).sum())  # a slot's jersey changes mid-half
        # tracklet gaps: >= 50 frames without a box while the player is in full view and the play is live
        x, y, w, h = np.moveaxis(half.boxes, -1, 0)
        in_view = (x >= 0) & (y >= 0) & (x + w <= 1920) & (y + h <= 1080)
        lost = (in_view & ~half.visible & ~half.replay).reshape(-1, half.replay.size).astype(np.int8)
        for track in lost:
            edges = np.flatnonzero(np.diff(np.concatenate([[0], track, [0]])))
            gaps += int(np.any(edges[1::2] - edges[::2] >= 50))
    assert substitutions >= 5 and gaps >= 20 and live_no_box >= 20 and replays >= 20


def test_sides_swap_and_frames_continue(halves):
    for first, second in zip(halves[::2], halves[1::2]):
        ids = {h.key: {t: set(h.rows[h.rows[:, Col.LEFT_TO_RIGHT] == t, Col.PLAYER_ID].astype(int) // 100)
                       for t in (0, 1)} for h in (first, second)}
        assert ids[first.key] == {0: {1}, 1: {2}} and ids[second.key] == {0: {2}, 1: {1}}  # club A: team 0 then 1
        assert second.rows[:, Col.FRAME].min() == first.rows[:, Col.FRAME].max() + 1 + HALF_BREAK
        keeper = first.rows[(first.rows[:, Col.ROLE_ID] == 1)]
        assert keeper[keeper[:, Col.LEFT_TO_RIGHT] == 0, Col.X_POS].mean() < 0.2  # team 0 defends x = 0


def test_possession_chains(halves):
    other_team = total = touchline = throw_ins = 0
    for half in halves:
        ev = half.half_events
        for i in range(1, len(ev.frame)):
            if ev.cls[i] in (7, 8):  # tackles and blocks come from the other team
                total += 1
                other_team += ev.team[i] != ev.team[i - 1]
        for frame, cls, team, role in zip(ev.frame, ev.cls, ev.team, ev.role):
            if cls == 4:
                throw_ins += 1
                y = half.positions[team, role - 1, frame, 1]
                touchline += y < 0.03 or y > 0.97
    assert total > 20 and other_team / total > 0.9
    assert throw_ins > 10 and touchline == throw_ins


def test_class_cue_is_drawn_at_the_actor(monkeypatch):
    config = SynthConfig(games=1, minutes=0.6, size=SYNTH_HW, seed=2)
    half = generate_game(0, config, None)[0]
    frames = np.asarray(list(PitchRenderer(SYNTH_HW).render(half)))
    monkeypatch.setattr(synth, "CUE_WEIGHTS", (0.0,) * 5)
    plain = np.asarray(list(PitchRenderer(SYNTH_HW).render(half)))
    ev = half.half_events
    sx, sy = SYNTH_HW[1] / 1920, SYNTH_HW[0] / 1080
    checked = set()
    for i, (frame, cls, team, role) in enumerate(zip(ev.frame, ev.cls, ev.team, ev.role)):
        isolated = np.all(np.abs(np.delete(ev.frame, i) - frame) > 4)
        x, y, w, h = half.boxes[team, role - 1, frame] * [sx, sy, sx, sy]
        inside = (x - 0.5 * w > 2 and x + 1.5 * w < SYNTH_HW[1] - 2
                  and y - 0.5 * h > 2 and y + 1.5 * h < SYNTH_HW[0] - 2)
        if half.replay[frame] or not isolated or not inside:
            continue
        diff = np.abs(frames[frame].astype(int) - plain[frame].astype(int)).sum(-1) > 0
        rows, cols = np.nonzero(diff)
        assert rows.size, (frame, cls)
        # the cue lies at the actor's box (a bar 0.3 w wider than the box on each side, 0.22 h thick) ...
        assert cols.min() >= x - 0.3 * w - 0.22 * h - 2 and cols.max() <= x + 1.3 * w + 0.22 * h + 2
        assert rows.min() >= y - 0.22 * h - 2 and rows.max() <= y + 1.22 * h + 2
        # ... symmetric about its centre, so a horizontal flip keeps the cue of the class
        assert abs((cols.min() + cols.max() + 1) / 2 - (x + w / 2)) <= 1.5
        # and it fades: the cue is weaker 2 frames before the event
        before = np.abs(frames[frame - 2].astype(int) - plain[frame - 2].astype(int)).sum()
        assert before < np.abs(frames[frame].astype(int) - plain[frame].astype(int)).sum()
        checked.add(int(cls))
    assert {1, 2} <= checked


def _digest(root) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*"))
            if p.is_file()}


def test_same_seed_same_data(tmp_path):
    """Same seed: the same files, byte for byte except the videos, whose libx264 bytes may differ now and then
    (tests/same_video.py); another seed changes every file but the split list."""
    config = SynthConfig(games=2, minutes=0.25, size=(88, 160), seed=3)
    reseeded = SynthConfig(games=2, minutes=0.25, size=(88, 160), seed=4)
    first, second, other = (generate_dataset(tmp_path / name, c).root
                            for name, c in (("a", config), ("b", config), ("c", reseeded)))
    a, b, c = _digest(first), _digest(second), _digest(other)
    assert set(a) == set(b) == {"splits.json", "videos/game_0.mp4", "videos/game_1.mp4", "data/train_tactical_data.h5",
                                "data/val_tactical_data.h5", "playbyplay_GT/playbyplay_train.json",
                                "playbyplay_GT/playbyplay_val.json"}
    for name in a:
        if name.endswith(".mp4"):
            same_video((first / name).read_bytes(), (second / name).read_bytes(), name)
        else:
            assert a[name] == b[name], name
    assert all(c[name] != a[name] for name in a if name != "splits.json")


def test_dataset_in_the_release_layout(synth_dir):  # noqa: F811
    layout = DatasetLayout(synth_dir)
    assert json.loads(layout.splits_file.read_text()) == {"train": [0, 1], "val": [2]}
    for split, games in layout.splits().items():
        gt = read_playbyplay(layout.ground_truth(split), "gt")
        tables = read_tactical(layout.tactical(split))
        assert gt.keys == list(tables) == [half_key(g, h) for g in games for h in (1, 2)]
        for key, rows in tables.items():
            events = gt.events[key]
            assert [e.frame for e in events] == sorted({e.frame for e in events})  # sorted, no duplicate frames
            assert all(1 <= e.cls <= NUM_ACTIONS for e in events)
            assert rows[:, Col.FRAME].min() <= events[0].frame and events[-1].frame <= rows[:, Col.FRAME].max()
    from fpspot.data.video import VideoReader

    with VideoReader(layout.video(0)) as reader:
        last = int(read_tactical(layout.tactical("train"), ["game_0_H2"])["game_0_H2"][:, Col.FRAME].max())
        assert reader.num_frames == last + 1
        assert reader.clip(0, 1).shape == (1, *SYNTH_HW, 3)


def test_synth_command_writes_what_the_library_writes(tmp_path, capsys):
    """``fpspot synth`` passes each option to the generator: the same files as ``generate_dataset`` with that
    config (byte for byte but the videos, see test_same_seed_same_data), a challenge split without ground truth
    and without the label columns."""
    from fpspot.cli import main as cli_main

    config = SynthConfig(games=3, minutes=0.25, size=(88, 160), seed=3, val_games=1, challenge_games=1)
    assert cli_main(["synth", "--out", str(tmp_path / "cli"), "--games", "3", "--minutes", "0.25", "--size",
                     "88x160", "--seed", "3", "--val-games", "1", "--challenge-games", "1"]) == 0
    assert "wrote 3 games (train: [0], val: [1], challenge: [2])" in capsys.readouterr().out
    library = generate_dataset(tmp_path / "lib", config).root
    cli, lib = _digest(tmp_path / "cli"), _digest(library)
    assert set(cli) == set(lib) and "data/challenge_tactical_data.h5" in cli
    assert not any("challenge" in name for name in cli if name.startswith("playbyplay_GT"))
    for name in cli:
        if name.endswith(".mp4"):
            same_video((tmp_path / "cli" / name).read_bytes(), (library / name).read_bytes(), name)
        else:
            assert cli[name] == lib[name], name
    layout = DatasetLayout(tmp_path / "cli")
    assert json.loads(layout.splits_file.read_text()) == {"train": [0], "val": [1], "challenge": [2]}
    assert all(rows.shape[1] == Col.CLS for rows in read_tactical(layout.tactical("challenge")).values())


@pytest.mark.parametrize("settings, message", [
    ({"games": 0}, "games must be at least 1, got 0"),
    ({"games": -2}, "games must be at least 1, got -2"),
    ({"minutes": 0}, r"minutes must be at least 0.087 \(65 frames per half, so that every half has an event\), "
                     "got 0"),
    ({"minutes": 0.08}, "minutes must be at least 0.087"),
    ({"minutes": float("nan")}, "minutes must be at least 0.087"),
    ({"minutes": float("inf")}, "minutes must be finite"),
    ({"size": (0, 64)}, r"size must be \(height, width\), both positive and even, got \(0, 64\)"),
    ({"size": (33, 64)}, r"size must be \(height, width\), both positive and even"),
    ({"size": (32,)}, r"size must be \(height, width\)"),
    ({"val_games": -1}, "val_games must be >= 0, got -1"),
    ({"challenge_games": -1}, "challenge_games must be >= 0, got -1"),
    ({"gop": 0}, "gop must be at least 1, got 0"),
    ({"crf": 60}, r"crf must be in 0..51, got 60"),
    ({"class_balance": -0.5}, "class_balance must be >= 0 and finite, got -0.5"),
    ({"games": 3, "val_games": 5}, "3 games cannot hold 5 val and 0 challenge games and a train split"),
])
def test_bad_settings_are_refused_by_name(tmp_path, settings, message):
    with pytest.raises(ValueError, match=message):
        SynthConfig(**settings)


def test_shortest_game_has_an_event_in_every_half():
    """The shortest game the settings allow (0.087 minutes: 65 frames per half) has events in both halves."""
    config = SynthConfig(games=1, minutes=0.087, seed=0)
    for seed in range(20):
        config.seed = seed
        halves = generate_game(0, config, None)
        assert [h.rows[:, Col.FRAME].size // 22 for h in halves] == [65, 65]
        assert all(h.events for h in halves)
