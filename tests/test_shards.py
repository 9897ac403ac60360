"""Clip shards: synth -> shard -> load round trip against the ground truth and the tactical file, manifest,
frames, planning rules, determinism and errors."""

from __future__ import annotations

import json
import tarfile
from collections import Counter

import numpy as np
import pytest
from data_fixtures import SYNTH_HW, gnn_shards, shard_keys, synth_dir, taad_shards  # noqa: F401
from same_video import same_video

from fpspot.data.footpass import FormatError, read_playbyplay, read_tactical
from fpspot.data.layout import DatasetLayout
from fpspot.data.loader import eval_loader
from fpspot.data.shards import ShardConfig, ShardSetWriter, plan_clips, read_manifest, write_clip_shards
from fpspot.data.tracks import HalfRows, dilate_labels, roi_to_frame
from fpspot.data.video import VideoReader
from fpspot.schema import ACTION_CLASSES, DUMMY_PLAYER_ID, MISSING_FILL, Col

ROI = [Col.ROI_X, Col.ROI_Y, Col.ROI_WIDTH, Col.ROI_HEIGHT]


@pytest.fixture(scope="module")
def truth(synth_dir):  # noqa: F811
    layout = DatasetLayout(synth_dir)
    return read_playbyplay(layout.ground_truth("train"), "gt"), read_tactical(layout.tactical("train"))


def _clips(shard_dir):
    for batch in eval_loader(shard_dir, batch_size=4, num_workers=0):
        for b, meta in enumerate(batch["meta"]):
            yield {k: v[b].numpy() for k, v in batch.items() if k != "meta"}, meta


def _row(rows, frame, team, shirt):
    hit = rows[(rows[:, Col.FRAME] == frame) & (rows[:, Col.LEFT_TO_RIGHT] == team)
               & (rows[:, Col.SHIRT_NUMBER] == shirt)]
    assert len(hit) == 1
    return hit[0]


def test_slot_clips_round_trip(gnn_shards, truth):  # noqa: F811
    gt, tables = truth
    sampled = Counter()
    backgrounds = 0
    for clip, meta in _clips(gnn_shards):
        key, start, length = meta["key"], meta["start_frame"], meta["num_frames"]
        rows = tables[key]
        assert clip["video"].shape == (3, length, *SYNTH_HW)
        expected = np.zeros((26, length), np.int64)
        for event in gt.events[key]:
            if start <= event.frame < start + length:
                row = _row(rows, event.frame, event.team, event.shirt)
                slot = int(event.team * 13 + row[Col.ROLE_ID] - 1)
                if event.bbox and roi_to_frame(row[ROI], 1.125, SYNTH_HW)[1]:
                    expected[slot, event.frame - start] = event.cls
        np.testing.assert_array_equal(clip["labels_sharp"], expected)  # every labelled event: right slot and frame
        np.testing.assert_array_equal(clip["labels"], dilate_labels(expected))
        # rois, masks and node features of every slot come from the tactical rows
        window = rows[(rows[:, Col.FRAME] >= start) & (rows[:, Col.FRAME] < start + length)]
        slot = (window[:, Col.LEFT_TO_RIGHT] * 13 + window[:, Col.ROLE_ID] - 1).astype(int)
        t = (window[:, Col.FRAME] - start).astype(int)
        rois, valid = roi_to_frame(window[:, ROI], 1.125, SYNTH_HW)
        np.testing.assert_array_equal(clip["masks"][slot, t], valid.astype(np.float32))
        np.testing.assert_array_equal(clip["rois"][slot, t], rois)
        cols = [Col.LEFT_TO_RIGHT, Col.SHIRT_NUMBER, Col.X_POS, Col.Y_POS, Col.X_SPEED, Col.Y_SPEED]
        np.testing.assert_allclose(clip["nodes"][slot, t], window[:, cols].astype(np.float32))
        empty = np.ones((26, length), bool)
        empty[slot, t] = False
        assert np.all(clip["nodes"][empty] == MISSING_FILL) and np.all(clip["masks"][empty] == 0)
        if meta["source"] == "event":
            event = meta["event"]
            position = event["frame"] - start
            assert 16 <= position <= 35
            gt_event = next(e for e in gt.events[key] if e.frame == event["frame"])
            actor = meta["actor"]
            role = _row(rows, gt_event.frame, gt_event.team, gt_event.shirt)[Col.ROLE_ID]
            assert actor == gt_event.team * 13 + role - 1
            assert clip["labels_sharp"][actor, position] == gt_event.cls == event["cls"]
            assert meta["jerseys"][actor] == gt_event.shirt and clip["nodes"][actor, position, 0] == gt_event.team
            sampled[(key, event["frame"])] += 1
        else:
            backgrounds += 1
    # every box-visible event of the split is sampled once (the per-class cap is above every class count)
    visible = Counter((k, e.frame) for k in gt.keys for e in gt.events[k] if e.bbox)
    assert sampled == visible
    assert backgrounds == 3 * len(gt.keys)


def test_tracklet_clips_round_trip(taad_shards, truth):  # noqa: F811
    gt, tables = truth
    count = 0
    for clip, meta in _clips(taad_shards):
        key, start, length = meta["key"], meta["start_frame"], meta["num_frames"]
        rows = tables[key]
        event = meta["event"]
        gt_event = next(e for e in gt.events[key] if e.frame == event["frame"])
        position = event["frame"] - start
        assert 16 <= position <= 35 and meta["actor"] == 4 and clip["rois"].shape == (5, length, 4)
        assert clip["labels_sharp"][4, position] == gt_event.cls and meta["jerseys"][4] == gt_event.shirt
        assert meta["player_ids"][4] == _row(rows, gt_event.frame, gt_event.team, gt_event.shirt)[Col.PLAYER_ID]
        window = rows[(rows[:, Col.FRAME] >= start) & (rows[:, Col.FRAME] < start + length)]
        for m, pid in enumerate(meta["player_ids"]):
            if pid == DUMMY_PLAYER_ID:
                assert clip["masks"][m].sum() == 0 and np.all(clip["nodes"][m] == MISSING_FILL)
                continue
            mine = window[window[:, Col.PLAYER_ID] == pid]
            t = (mine[:, Col.FRAME] - start).astype(int)
            rois, valid = roi_to_frame(mine[:, ROI], 1.125, SYNTH_HW)
            assert valid.any()  # tracks are players with a box in the clip
            np.testing.assert_array_equal(clip["rois"][m, t], rois)
            labels = np.zeros(length, np.int64)
            labels[t] = np.where(valid, np.nan_to_num(mine[:, Col.CLS]), 0)
            np.testing.assert_array_equal(clip["labels_sharp"][m], labels)  # other players' events too
        count += 1
    assert count == sum(1 for k in gt.keys for e in gt.events[k] if e.bbox)


def test_manifest_counts(taad_shards, gnn_shards, truth):  # noqa: F811
    gt, _ = truth
    for shard_dir in (taad_shards, gnn_shards):
        manifest = read_manifest(shard_dir)
        assert manifest["split"] == "train" and manifest["config"]["frame_hw"] == list(SYNTH_HW)
        assert manifest["num_samples"] == sum(s["samples"] for s in manifest["shards"]) == len(shard_keys(shard_dir))
        assert len(manifest["shards"]) > 2 and all(0 < s["samples"] <= manifest["config"]["samples_per_shard"]
                                                   for s in manifest["shards"])
        events = [e for k in gt.keys for e in gt.events[k]]
        assert manifest["class_counts"]["all"] == {
            n: sum(e.cls == c for e in events) for c, n in enumerate(ACTION_CLASSES, 1)}
        assert manifest["class_counts"]["box_visible"] == {
            n: sum(e.cls == c and e.bbox for e in events) for c, n in enumerate(ACTION_CLASSES, 1)}
    assert read_manifest(gnn_shards)["kind"] == "taad_gnn" and read_manifest(taad_shards)["config"]["num_tracks"] == 5


def test_shard_frames_are_the_video_frames(taad_shards, synth_dir):  # noqa: F811
    clip, meta = next(_clips(taad_shards))
    with VideoReader(DatasetLayout(synth_dir).video(meta["game"])) as reader:
        source = reader.clip(meta["start_frame"], meta["start_frame"] + meta["num_frames"])
    shard = np.moveaxis(clip["video"], 0, -1)
    error = np.abs(shard.astype(int) - source.astype(int))
    assert error.mean() < 3.0  # one more H.264 generation (CRF 23)


def test_planning_rules(synth_dir):  # noqa: F811
    layout = DatasetLayout(synth_dir)
    halves = {k: HalfRows(v, k) for k, v in read_tactical(layout.tactical("train")).items()}
    config = ShardConfig(per_class_cap=2, draws=3, frame_hw=SYNTH_HW, seed=4)
    plans = plan_clips(halves, config)
    per_draw = Counter(plan.cls for plan in plans)
    assert all(n <= 2 * 3 for n in per_draw.values()) and per_draw[1] == per_draw[2] == 6
    for plan in plans:
        assert 16 <= plan.frame - plan.start <= 35
        rows = halves[plan.key].window(plan.frame, 1)
        actor = rows[rows[:, Col.PLAYER_ID] == plan.player_id][0]
        assert actor[Col.CLS] == plan.cls and np.isfinite(actor[Col.ROI_X])  # box-visible actors only
    assert [p.sample_key for p in plans] == [p.sample_key for p in plan_clips(halves, config)]
    assert len({p.sample_key for p in plans}) == len(plans)


def _members(path) -> dict[str, bytes]:
    with tarfile.open(path) as tar:
        return {m.name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_same_config_same_shards(synth_dir, tmp_path):  # noqa: F811
    """Two writes with one config: the same shards and members, byte for byte except the clips' mp4, whose
    libx264 bytes may differ now and then (tests/same_video.py); most clips are byte-identical."""
    config = ShardConfig(per_class_cap=3, frame_hw=SYNTH_HW, samples_per_shard=2, seed=2)
    manifests = [write_clip_shards(synth_dir, "val", tmp_path / name, config) for name in ("a", "b")]
    assert manifests[0] == manifests[1] and len(manifests[0]["shards"]) >= 2
    videos = identical = 0
    for shard in manifests[0]["shards"]:
        first, second = (_members(tmp_path / name / shard["name"]) for name in ("a", "b"))
        assert list(first) == list(second)
        for member, data in first.items():
            if member.endswith(".mp4"):
                videos += 1
                identical += same_video(data, second[member], member)
            else:
                assert data == second[member], member
    assert videos >= 4 and identical >= videos / 2


def test_errors(synth_dir, taad_shards, tmp_path):  # noqa: F811
    with pytest.raises(FormatError, match="holds 'train' shards"):
        write_clip_shards(synth_dir, "val", taad_shards, ShardConfig(frame_hw=SYNTH_HW))
    with pytest.raises(FormatError, match="no tactical file for split 'challenge'"):
        write_clip_shards(synth_dir, "challenge", tmp_path / "c", ShardConfig(frame_hw=SYNTH_HW))
    with pytest.raises(RuntimeError), ShardSetWriter(tmp_path / "w", "train", 2) as writer:
        writer.write({"__key__": "a", "x.json": {"v": 1}})
        raise RuntimeError("interrupted")
    assert not list((tmp_path / "w").iterdir())  # nothing half-written is left
    with pytest.raises(ValueError, match="must not contain"):
        ShardSetWriter(tmp_path / "w", "train").write({"__key__": "a.b", "x.json": {}})
    with pytest.raises(ValueError, match="taad"):
        ShardConfig(kind="dst")
    assert json.loads((taad_shards / "manifest.json").read_text())["format"] == "fpspot-shards/1"


def test_encode_clip_applies_extra_encoder_options():
    from fpspot.data.video import available_codec, decode_clip, encode_clip

    if available_codec() != "libx264":
        pytest.skip("this PyAV build has no libx264")
    ramp = np.linspace(0, 255, 32 * 48 * 3).reshape(32, 48, 3)
    frames = np.stack([np.roll(ramp, 3 * t, axis=1) for t in range(8)]).astype(np.uint8)
    default = encode_clip(frames)
    tuned = encode_clip(frames, encoder_options={"x264-params": "threads=1:mbtree=0"})
    # x264 writes its settings into the stream: the option reached the encoder, the defaults stayed otherwise
    assert b"mbtree=1" in default and b"mbtree=0" in tuned and b"threads=1 " in tuned
    assert np.abs(decode_clip(tuned).astype(int) - frames).mean() < 8


def test_shard_command_writes_what_the_library_writes(synth_dir, tmp_path, capsys):  # noqa: F811
    """``fpspot shard`` passes each option to the writer (``--include-no-box`` -> ``require_box=False``): the
    same manifest as ``write_clip_shards`` with that config; a bad ``--size`` stops with its reason."""
    from fpspot.cli import main as cli_main

    config = ShardConfig(per_class_cap=3, frame_hw=SYNTH_HW, samples_per_shard=2, seed=2, require_box=False,
                         clip_len=40, tracklets=4)
    assert cli_main(["shard", "--data", str(synth_dir), "--split", "val", "--out", str(tmp_path / "cli"),
                     "--size", "x".join(map(str, SYNTH_HW)), "--per-class-cap", "3", "--samples-per-shard", "2",
                     "--seed", "2", "--include-no-box", "--clip-len", "40", "--tracklets", "4"]) == 0
    written = read_manifest(tmp_path / "cli")
    assert written == write_clip_shards(synth_dir, "val", tmp_path / "lib", config)
    assert written["config"]["require_box"] is False and written["config"]["clip_len"] == 40
    assert f"wrote {written['num_samples']} taad clips in {len(written['shards'])} shards" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli_main(["shard", "--data", str(synth_dir), "--split", "val", "--out", str(tmp_path / "odd"),
                  "--size", "175x320"])
    assert "height and width must be positive and even" in capsys.readouterr().err
    assert not (tmp_path / "odd").exists()
