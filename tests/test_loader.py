"""The streaming clip loaders and the clip augmentations: batch contract, exactly-once evaluation, determinism
and resume, data split over ranks, flips (slot permutation), geometry, box jitter, colour, corrupt shards."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import tarfile
from itertools import islice

import numpy as np
import pytest
import torch
from data_fixtures import SYNTH_HW, gnn_shards, shard_keys, synth_dir, taad_shards, val_shards  # noqa: F401

from fpspot.data.augment import (
    AugmentConfig, ClipAugment, FrameAugmenter, X_MIRROR_SLOTS, augment_tracks, augment_video, sample_augment,
)
from fpspot.data.loader import (
    CorruptShardWarning, ShardError, decode_sample, eval_loader, read_shard, resolve_world, train_loader,
)
from fpspot.data.shards import CLIP_FIELDS, ShardSetWriter, read_manifest, write_manifest
from fpspot.data.tracks import roi_to_frame
from fpspot.data.video import VideoError, decode_clip
from fpspot.schema import MISSING_FILL

H, W = SYNTH_HW
OFF = dict(flip_p=0.0, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, scale=0.0, translate=0.0,
           box_jitter=0.0)  # every augmentation off


def _raw_samples(shard_dir, n=None):
    manifest = read_manifest(shard_dir)
    out = []
    for shard in manifest["shards"]:
        out.extend(read_shard(str(shard_dir / shard["name"]), shard["samples"], strict=True, required=CLIP_FIELDS))
        if n is not None and len(out) >= n:
            break
    return out[:n]


def _keys(batches):
    return [m["sample_key"] for b in batches for m in b["meta"]]


# ============================================================================================ contract


@pytest.mark.parametrize("shards, tracks", [("taad_shards", 5), ("gnn_shards", 26)])
def test_batches_follow_the_clip_batch_contract(shards, tracks, request):
    shard_dir = request.getfixturevalue(shards)
    loader = train_loader(shard_dir, batch_size=3, epoch=0, num_workers=0, samples_per_epoch=6)
    batches = list(loader)
    assert len(loader) == len(batches) == 2
    batch = batches[0]
    assert set(batch) == {"video", "rois", "masks", "nodes", "labels", "labels_sharp", "meta"}
    assert batch["video"].shape == (3, 3, 50, H, W) and batch["video"].dtype == torch.uint8
    assert batch["video"].permute(0, 2, 3, 4, 1).is_contiguous()  # channels-last view, no copy in the workers
    assert batch["rois"].shape == (3, tracks, 50, 4) and batch["rois"].dtype == torch.float32
    assert batch["masks"].shape == (3, tracks, 50) and batch["masks"].dtype == torch.float32
    assert batch["nodes"].shape == (3, tracks, 50, 6) and batch["nodes"].dtype == torch.float32
    for name in ("labels", "labels_sharp"):
        assert batch[name].shape == (3, tracks, 50) and batch[name].dtype == torch.int64
    masks = batch["masks"].bool()
    assert set(batch["masks"].unique().tolist()) <= {0.0, 1.0}
    assert torch.all(batch["labels_sharp"][~masks] == 0)
    rois = batch["rois"][masks]
    assert torch.all(rois[:, 0] >= 0) and torch.all(rois[:, 2] <= W) and torch.all(rois[:, 3] <= H)
    assert torch.all(rois[:, 2] - rois[:, 0] >= 2) and torch.all(rois[:, 3] - rois[:, 1] >= 2)
    assert len(batch["meta"]) == 3 and all("augment" in m and "sample_key" in m for m in batch["meta"])


# ======================================================================================= distribution


@pytest.mark.parametrize("world_size, num_workers", [(1, 0), (2, 2), (3, 0)])
def test_eval_yields_every_sample_exactly_once(val_shards, world_size, num_workers):  # noqa: F811
    keys = []
    for rank in range(world_size):
        loader = eval_loader(val_shards, batch_size=2, num_workers=num_workers, rank=rank, world_size=world_size)
        batches = list(loader)
        assert len(batches) == len(loader)
        assert all("augment" not in m for b in batches for m in b["meta"])
        keys += _keys(batches)
    expected = shard_keys(val_shards)
    assert len(expected) >= 12 and sorted(keys) == sorted(expected)  # exactly once over ranks and workers


def _fingerprint(batches):
    return [(tuple(m["sample_key"] for m in b["meta"]), int(b["video"].sum()), float(b["rois"].sum()),
             float(b["nodes"].sum())) for b in batches]


def test_train_loader_is_deterministic_and_resumes(gnn_shards):  # noqa: F811
    def run(**kw):
        args = dict(batch_size=2, epoch=0, seed=3, num_workers=2, samples_per_epoch=10, shuffle_buffer=8) | kw
        loader = train_loader(gnn_shards, **args)
        batches = list(loader)
        assert len(batches) == len(loader)
        return batches

    first = run()
    assert len(first) == 5  # workers make 3 and 2 batches
    again = run()
    assert _fingerprint(again) == _fingerprint(first)  # same call, same batches, same order
    # a resumed run skips the first k batches: by iterating (islice) or with start_batch (nothing decoded)
    assert _fingerprint(islice(again, 3, None)) == _fingerprint(run(start_batch=3)) == _fingerprint(first)[3:]
    assert _keys(run(epoch=1)) != _keys(first)


def test_train_data_is_split_over_ranks(gnn_shards):  # noqa: F811
    per_rank = []
    for rank in range(2):
        loader = train_loader(gnn_shards, batch_size=2, epoch=0, num_workers=0, samples_per_epoch=16, rank=rank,
                              world_size=2)
        batches = list(loader)
        assert len(loader) == len(batches) == 4  # the same count on every process
        per_rank.append(_keys(batches))
    assert not set(per_rank[0]) & set(per_rank[1])  # the ranks read different shards: data split, not copied
    assert resolve_world(None, None) == (0, 1)
    with pytest.raises(ValueError, match="rank 2"):
        resolve_world(2, 2)
    with pytest.raises(ValueError, match="cannot give"):
        train_loader(gnn_shards, batch_size=64, epoch=0, samples_per_epoch=100, rank=0, world_size=2)


# ====================================================================================== augmentation


def test_a_single_shard_is_still_split(taad_shards, tmp_path):  # noqa: F811
    # merge every sample into one shard: 2 processes x 2 workers must still read different samples
    merged = tmp_path / "one"
    raws = _raw_samples(taad_shards)
    with ShardSetWriter(merged, "train", samples_per_shard=len(raws)) as writer:
        for raw in raws:
            writer.write({k: v for k, v in raw.items() if k != "__url__"})
        shards = writer.close()
    write_manifest(merged, "taad", "train", shards, {"all": {}}, {"draws": 1})
    seen = []
    for rank in range(2):
        loader = train_loader(merged, batch_size=2, epoch=0, num_workers=2, samples_per_epoch=16, rank=rank,
                              world_size=2, augment=None)
        seen.append(_keys(list(loader)))
    assert len(seen[0]) == len(seen[1]) == 8 and not set(seen[0]) & set(seen[1])
    assert len(set(seen[0])) == 8


def test_mirror_permutation_is_the_spec_x_mirror():
    assert X_MIRROR_SLOTS == (13, 25, 17, 16, 15, 19, 18, 20, 21, 23, 22, 24, 14,
                              0, 12, 4, 3, 2, 6, 5, 7, 8, 10, 9, 11, 1)
    assert all(X_MIRROR_SLOTS[X_MIRROR_SLOTS[s]] == s for s in range(26))


def _decode_pair(raw, slot_tracks, **config):
    plain = decode_sample(raw, slot_tracks=slot_tracks)
    flipped = decode_sample(raw, slot_tracks=slot_tracks, augment=AugmentConfig(**(OFF | config)),
                            rng=np.random.default_rng(0))
    return plain, flipped


def test_flip_of_slot_clips_permutes_slots(gnn_shards):  # noqa: F811
    raw = next(r for r in _raw_samples(gnn_shards) if json.loads(r["meta.json"])["source"] == "event")
    plain, flipped = _decode_pair(raw, True, flip_p=1.0)
    assert flipped["meta"]["augment"]["flip"]
    perm = list(X_MIRROR_SLOTS)
    # the video is mirrored
    assert np.abs(flipped["video"].astype(int) - plain["video"][:, :, ::-1].astype(int)).mean() < 1.0
    # slot m of the flipped clip is old slot perm[m], mirrored: boxes, masks, labels
    np.testing.assert_array_equal(flipped["masks"], plain["masks"][perm])
    np.testing.assert_array_equal(flipped["labels_sharp"], plain["labels_sharp"][perm])
    np.testing.assert_array_equal(flipped["labels"], plain["labels"][perm])
    old = plain["rois"][perm]
    valid = flipped["masks"].astype(bool)
    mirrored = np.stack([W - old[..., 2], old[..., 1], W - old[..., 0], old[..., 3]], axis=-1)
    np.testing.assert_allclose(flipped["rois"][valid], mirrored[valid])
    # the actor's label moves to the mirrored slot and its team flips
    actor, event = plain["meta"]["actor"], plain["meta"]["event"]
    t = event["frame"] - plain["meta"]["start_frame"]
    new_actor = flipped["meta"]["actor"]
    assert new_actor == X_MIRROR_SLOTS[actor] and new_actor // 13 == 1 - actor // 13
    assert flipped["labels_sharp"][new_actor, t] == event["cls"] == plain["labels_sharp"][actor, t]
    assert flipped["nodes"][new_actor, t, 0] == 1 - plain["nodes"][actor, t, 0] == new_actor // 13
    assert flipped["meta"]["jerseys"][new_actor] == plain["meta"]["jerseys"][actor]
    assert flipped["meta"]["event"]["slot"] == new_actor and plain["meta"]["event"]["slot"] == actor
    # node features: x -> 1 - x, vx -> -vx for slots with a row; y, vy, shirt unchanged; -15 stays -15
    nodes, before = flipped["nodes"], plain["nodes"][perm]
    present = before[..., 0] != MISSING_FILL
    np.testing.assert_allclose(nodes[..., 2][present], 1 - before[..., 2][present], atol=1e-6)
    np.testing.assert_allclose(nodes[..., 4][present], -before[..., 4][present])
    np.testing.assert_array_equal(nodes[..., [1, 3, 5]], before[..., [1, 3, 5]])
    assert np.all(nodes[~present] == MISSING_FILL)
    # every slot with a row still means team * 13 + role - 1: its team feature is m // 13
    slots = np.broadcast_to(np.arange(26)[:, None], present.shape)
    assert np.all(nodes[..., 0][present] == slots[present] // 13)
    # the pixels of each box are the mirrored pixels of the original box
    m, t = np.argwhere(valid)[0]
    x1, y1, x2, y2 = flipped["rois"][m, t].astype(int)
    ox1, oy1, ox2, oy2 = plain["rois"][perm[m], t].astype(int)
    np.testing.assert_allclose(flipped["video"][t, y1:y2, x1:x2].mean((0, 1)),
                               plain["video"][t, oy1:oy2, ox1:ox2].mean((0, 1)), atol=3)


def test_flip_of_tracklet_clips_keeps_the_order(taad_shards):  # noqa: F811
    raw = _raw_samples(taad_shards, 1)[0]
    plain, flipped = _decode_pair(raw, False, flip_p=1.0)
    np.testing.assert_array_equal(flipped["labels_sharp"], plain["labels_sharp"])
    valid = plain["masks"].astype(bool)
    np.testing.assert_allclose(flipped["rois"][valid][:, [0, 2]], W - plain["rois"][valid][:, [2, 0]])
    present = plain["nodes"][..., 0] != MISSING_FILL
    np.testing.assert_array_equal(flipped["nodes"][..., 0][present], 1 - plain["nodes"][..., 0][present])
    assert flipped["meta"]["actor"] == plain["meta"]["actor"] == 4


def test_scale_translate_crop_move_boxes_with_the_pixels(taad_shards):  # noqa: F811
    raw = _raw_samples(taad_shards, 2)[1]
    plain = decode_sample(raw, slot_tracks=False)
    checked = 0
    for seed in range(4):
        aug = decode_sample(raw, slot_tracks=False, augment=AugmentConfig(**(OFF | dict(scale=0.1, translate=0.1))),
                            rng=np.random.default_rng(seed))
        scaled_hw, offset = aug["meta"]["augment"]["scaled_hw"], aug["meta"]["augment"]["offset"]
        assert scaled_hw != [H, W] or offset != [0, 0]
        for m, t in np.argwhere(aug["masks"] > 0)[::7]:
            x1, y1, x2, y2 = aug["rois"][m, t]
            ox1, oy1, ox2, oy2 = plain["rois"][m, t]
            fx, fy = scaled_hw[1] / W, scaled_hw[0] / H
            if x1 > 0 and y1 > 0 and x2 < W and y2 < H:  # not clipped: the box is the mapped box
                np.testing.assert_allclose([x1, y1, x2, y2], [ox1 * fx + offset[1], oy1 * fy + offset[0],
                                                              ox2 * fx + offset[1], oy2 * fy + offset[0]], atol=1e-4)
                new = aug["video"][t, int(y1):int(y2), int(x1):int(x2)].reshape(-1, 3).mean(0)
                old = plain["video"][t, int(oy1):int(oy2), int(ox1):int(ox2)].reshape(-1, 3).mean(0)
                assert np.abs(new - old).max() < 25
                checked += 1
        # labels survive only where the box does
        assert np.all(aug["labels_sharp"][aug["masks"] == 0] == 0)
        assert np.all(np.isin(aug["labels_sharp"][aug["masks"] > 0], [0, *np.unique(plain["labels_sharp"])]))
    assert checked >= 10


def test_boxes_that_leave_the_frame_lose_mask_and_label(taad_shards):  # noqa: F811
    raw = _raw_samples(taad_shards, 1)[0]
    arrays = decode_sample(raw, slot_tracks=False)
    shifted = ClipAugment(frame_hw=SYNTH_HW, scaled_hw=SYNTH_HW, offset=(0, W - 40))  # only 40 px stay in view
    out = augment_tracks(arrays, shifted, slot_tracks=False)
    inside = arrays["rois"][..., 0] + (W - 40) <= W - 2  # boxes whose left edge stays >= 2 px inside
    assert out["masks"].sum() < arrays["masks"].sum()
    assert np.all(out["masks"][~inside] == 0) and np.all(out["labels_sharp"][out["masks"] == 0] == 0)
    assert np.all(out["rois"][out["masks"] > 0][:, 2] <= W)
    gone = augment_tracks(arrays, ClipAugment(frame_hw=SYNTH_HW, scaled_hw=SYNTH_HW, offset=(0, W)), False)
    assert gone["masks"].sum() == 0 and gone["labels"].sum() == 0 and gone["rois"].sum() == 0
    video = augment_video(arrays["video"], shifted)
    assert np.all(video[:, :, :W - 40] == 0) and np.array_equal(video[:, :, W - 40:], arrays["video"][:, :, :40])


def test_box_enlargement_jitter_per_tracklet(gnn_shards):  # noqa: F811
    raw = _raw_samples(gnn_shards, 1)[0]
    boxes = np.load(io.BytesIO(raw["boxes.npy"]))
    plain = decode_sample(raw, slot_tracks=True)
    aug = sample_augment(AugmentConfig(**(OFF | dict(box_jitter=0.125))), np.random.default_rng(2), SYNTH_HW, 26)
    assert np.all(np.abs(aug.coeffs - 1.125) <= 0.125) and np.unique(aug.coeffs).size == 26
    out = augment_tracks({**plain, "boxes": boxes}, aug, slot_tracks=True)
    expected, valid = roi_to_frame(boxes, aug.coeffs[:, None], SYNTH_HW)
    np.testing.assert_array_equal(out["masks"], (valid & (plain["masks"] > 0)).astype(np.float32))
    np.testing.assert_array_equal(out["rois"][out["masks"] > 0], expected[out["masks"] > 0])
    both = (out["masks"] > 0) & (plain["masks"] > 0) & (aug.coeffs > 1.2)[:, None]  # tracks enlarged the most
    width = lambda r: (r[..., 2] - r[..., 0])[both]  # noqa: E731
    assert both.any() and width(out["rois"]).mean() > width(plain["rois"]).mean()


def test_colour_jitter_fused_path_matches_the_reference(taad_shards):  # noqa: F811
    raw = _raw_samples(taad_shards, 1)[0]
    plain = decode_clip(raw["video.mp4"])
    for seed in range(3):
        aug = sample_augment(AugmentConfig(), np.random.default_rng(seed), SYNTH_HW, 5)
        fused = decode_clip(raw["video.mp4"], transform=FrameAugmenter(aug))
        reference = augment_video(plain, aug)
        assert np.abs(fused.astype(int) - reference.astype(int)).mean() < 3.0
    bright = ClipAugment(frame_hw=SYNTH_HW, brightness=1.2)
    assert decode_clip(raw["video.mp4"], transform=FrameAugmenter(bright)).mean() > plain.mean() + 5
    grey = ClipAugment(frame_hw=SYNTH_HW, saturation=0.0)
    out = decode_clip(raw["video.mp4"], transform=FrameAugmenter(grey)).astype(int)
    assert np.abs(out - out.mean(-1, keepdims=True)).mean() < 2  # no colour left
    rotated = decode_clip(raw["video.mp4"], transform=FrameAugmenter(ClipAugment(frame_hw=SYNTH_HW, hue=0.25)))
    luma = np.array([0.299, 0.587, 0.114])
    assert np.abs(rotated.astype(int) - plain.astype(int)).mean() > 10  # colours move round the hue circle ...
    assert abs((rotated @ luma).mean() - (plain @ luma).mean()) < 4  # ... brightness stays
    same = ClipAugment(frame_hw=SYNTH_HW)
    assert np.array_equal(decode_clip(raw["video.mp4"], transform=FrameAugmenter(same)), plain)


# ============================================================================================== errors


def _copy(shard_dir, tmp_path):
    out = tmp_path / "shards"
    shutil.copytree(shard_dir, out)
    return out, read_manifest(out)


def test_truncated_shard_is_skipped_in_training_and_fatal_in_eval(taad_shards, tmp_path):  # noqa: F811
    shards, manifest = _copy(taad_shards, tmp_path)
    victim = shards / manifest["shards"][1]["name"]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) * 2 // 5])
    loader = train_loader(shards, batch_size=2, epoch=0, num_workers=0, samples_per_epoch=manifest["num_samples"])
    lost = rf"lists {manifest['shards'][1]['samples']} samples, \d+ lost"
    with pytest.warns(CorruptShardWarning, match=rf"{victim.name}.*{lost}"):
        batches = list(loader)
    assert len(batches) == len(loader)  # iteration went on with the other shards
    with pytest.raises(ShardError, match=victim.name):
        list(eval_loader(shards, batch_size=2, num_workers=0))


def test_truncated_shard_warning_names_the_loss_under_workers(taad_shards, tmp_path):  # noqa: F811
    shards, manifest = _copy(taad_shards, tmp_path)
    victim = shards / manifest["shards"][0]["name"]
    expected = manifest["shards"][0]["samples"]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    with pytest.warns(CorruptShardWarning) as caught:
        kept = list(read_shard(str(victim), expected, strict=False, required=CLIP_FIELDS))
    assert 0 < len(kept) < expected and f"{expected - len(kept)} lost" in str(caught[0].message)
    # DataLoader workers print the warning on stderr (pytest cannot record warnings of forked workers: run it apart)
    script = ("from fpspot.data.loader import train_loader\n"
              f"loader = train_loader({str(shards)!r}, batch_size=2, epoch=0, num_workers=2)\n"
              "assert len(list(loader)) == len(loader)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert f"{victim}" in done.stderr and f"{expected - len(kept)} lost" in done.stderr


def _drop_field(shard_dir, tmp_path, field, replacement=None):
    """Copy the shards; in the second sample of the first shard, drop ``field`` (or replace its bytes)."""
    shards, manifest = _copy(shard_dir, tmp_path)
    victim = shards / manifest["shards"][0]["name"]
    with tarfile.open(victim) as tar:
        members = [(m, tar.extractfile(m).read()) for m in tar.getmembers()]
    key = sorted({m.name.split(".", 1)[0] for m, _ in members})[1]
    with tarfile.open(victim, "w") as tar:
        for member, payload in members:
            if member.name == f"{key}.{field}":
                if replacement is None:
                    continue
                member.size, payload = len(replacement), replacement
            tar.addfile(member, io.BytesIO(payload))
    return shards, victim, key


def test_undecodable_video_is_skipped_in_training_and_fatal_in_eval(taad_shards, tmp_path):  # noqa: F811
    shards, victim, key = _drop_field(taad_shards, tmp_path, "video.mp4", replacement=b"\x00not an mp4" * 100)
    n = read_manifest(shards)["num_samples"]
    loader = train_loader(shards, batch_size=2, epoch=0, num_workers=0, samples_per_epoch=n, augment=None)
    with pytest.warns(CorruptShardWarning, match=rf"{victim.name}: sample '{key}': cannot decode"):
        batches = list(loader)
    assert len(batches) == len(loader) and key not in _keys(batches)
    with pytest.raises(VideoError, match=rf"{victim.name}: sample '{key}'"):
        list(eval_loader(shards, batch_size=2, num_workers=0))


def test_missing_field_is_an_error_naming_shard_and_key(taad_shards, tmp_path):  # noqa: F811
    shards, victim, key = _drop_field(taad_shards, tmp_path, "nodes.npy")
    n = read_manifest(shards)["num_samples"]
    with pytest.raises(ShardError, match=rf"{victim.name}: sample '{key}' has no field 'nodes.npy'"):
        list(eval_loader(shards, batch_size=2, num_workers=0))
    with pytest.raises(ShardError, match=rf"{victim.name}: sample '{key}' has no field 'nodes.npy'"):
        list(train_loader(shards, batch_size=2, epoch=0, num_workers=2, samples_per_epoch=n, shuffle_buffer=n))
