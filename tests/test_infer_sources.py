"""Halves of a FOOTPASS-format dataset folder as inference sources, on a tiny synthetic dataset.

Checks what a half is made of (frames from the mp4 at the model's size, the 26 slots' window inputs and the
jersey table, all from the tactical rows), which halves a split / key selection gives, and that every kind
of broken input (missing video, video shorter than the tactical data, corrupt frame) names the half.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from infer_testlib import SYNTH_HW, copy_dataset, corrupt_frame, synth_dataset, truncate_video  # noqa: E402

from fpspot.data.footpass import FormatError, read_tactical, slot_jersey_table  # noqa: E402
from fpspot.data.layout import DatasetLayout  # noqa: E402
from fpspot.data.tracks import HalfRows, slot_window  # noqa: E402
from fpspot.data.video import VideoError, VideoReader  # noqa: E402
from fpspot.infer.sources import DatasetHalf, dataset_halves, open_halves  # noqa: E402


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_dataset(tmp_path_factory.getbasetemp() / "infer_synth")


def test_halves_of_splits_and_keys(synth):
    every = dataset_halves(synth, frame_hw=SYNTH_HW)
    assert [h.key for h in every] == ["game_0_H1", "game_0_H2", "game_1_H1", "game_1_H2"]
    assert [h.split for h in every] == ["train", "train", "val", "val"]
    val = dataset_halves(synth, split="val", frame_hw=SYNTH_HW)
    assert [h.key for h in val] == ["game_1_H1", "game_1_H2"]
    assert dataset_halves(synth, split=["val", "train"])[0].key == "game_1_H1"
    picked = dataset_halves(synth, keys=["game_1_H2", "game_0_H1"])
    assert [h.key for h in picked] == ["game_1_H2", "game_0_H1"]
    tables = read_tactical(DatasetLayout(synth).tactical("val"))
    for half in val:  # the engine runs from the first to the last frame with a visible player (spec §2.4)
        rows = HalfRows(tables[half.key], half.key)
        assert (half.first, half.last) == (rows.first_visible, rows.last_visible)
        assert half.video == synth / "videos" / "game_1.mp4" and half.num_frames == half.last + 1 - half.first
    assert val[1].first > val[0].last  # H2 frames continue after H1 in the game's video


def test_unknown_split_or_key_names_the_file_or_the_key(synth):
    with pytest.raises(FormatError, match=r"challenge_tactical_data\.h5.*no tactical file for split 'challenge'"):
        dataset_halves(synth, split="challenge")
    with pytest.raises(FormatError, match=r"game_7_H1.*none of the tactical files read.*val_tactical_data\.h5"):
        dataset_halves(synth, split="val", keys=["game_1_H1", "game_7_H1"])
    with pytest.raises(FormatError, match="not a FOOTPASS dataset"):
        dataset_halves(synth / "videos")


def test_loaded_half_streams_frames_slots_and_jerseys(synth):
    half = dataset_halves(synth, split="val", keys=["game_1_H2"], frame_hw=SYNTH_HW)[0]
    source = half.load()
    rows = read_tactical(DatasetLayout(synth).tactical("val"), ["game_1_H2"])["game_1_H2"]
    # frames: the video's frames first..last, in order
    frames = list(source.frames())
    assert len(frames) == half.last + 1 - half.first and frames[0].shape == (*SYNTH_HW, 3)
    with VideoReader(half.video) as reader:
        np.testing.assert_array_equal(frames[0], next(reader.frames(half.first)))
        np.testing.assert_array_equal(frames[-1], next(reader.frames(half.last)))
    # window inputs: the 26 role slots of the rows in that window, mapped to the model's frame size
    got = source.window_inputs(half.first + 30, 50)
    want = slot_window(rows, half.first + 30, 50, SYNTH_HW)
    for name in ("rois", "masks", "nodes"):
        np.testing.assert_array_equal(got[name], want[name])
    assert got["rois"].shape == (26, 50, 4) and got["masks"].sum() > 0
    # jerseys: the baseline's slot table over frames 0..last
    np.testing.assert_array_equal(source.jerseys, slot_jersey_table(rows, half.last + 1))
    assert source.rows.key == "game_1_H2" and len(source.rows.rows) == len(rows)


def test_frames_and_boxes_follow_the_model_frame_size(synth):
    half = dataset_halves(synth, split="val", frame_hw=(44, 80))[0]
    source = half.load()
    frame = next(iter(source.frames()))
    assert frame.shape == (44, 80, 3)
    big = dataset_halves(synth, split="val", frame_hw=SYNTH_HW)[0].load().window_inputs(half.first, 25)
    small = source.window_inputs(half.first, 25)
    valid = small["masks"] > 0
    assert valid.any() and small["rois"][valid][:, 2].max() <= 80 and big["rois"][valid][:, 2].max() > 80


def test_explicit_halves_are_taken_as_given(synth):
    halves = dataset_halves(synth, frame_hw=SYNTH_HW)
    assert open_halves(halves, keys=["game_1_H1"]) == [halves[2]]
    assert open_halves(halves[0]) == [halves[0]]
    with pytest.raises(ValueError, match="listed twice"):
        open_halves([halves[0], halves[0]])
    with pytest.raises(ValueError, match="split selects halves of a dataset folder"):
        open_halves(halves, split="val")
    with pytest.raises(TypeError, match="dataset folder or a list of HalfSource"):
        open_halves([1, 2])


def test_missing_video_names_the_half_and_the_file(synth, tmp_path):
    data = copy_dataset(synth, tmp_path / "data")
    (data / "videos" / "game_1.mp4").unlink()
    assert [h.key for h in dataset_halves(data, split="train")] == ["game_0_H1", "game_0_H2"]
    with pytest.raises(FormatError, match=r"game_1\.mp4', key 'game_1_H1': no such video file"):
        dataset_halves(data, split="val")


def test_video_shorter_than_the_tactical_data_names_the_half(synth, tmp_path):
    data = copy_dataset(synth, tmp_path / "data")
    truncate_video(data / "videos" / "game_1.mp4", 600)
    with pytest.raises(FormatError, match=r"game_1\.mp4', key 'game_1_H2': the video has 600 frames \(0\.\.599\) "
                                          r"but the tactical data has visible players up to frame \d+"):
        dataset_halves(data, split="val")
    assert len(dataset_halves(data, split="val", keys=["game_1_H1"])) == 1  # H1 is whole


def test_video_ending_early_while_streaming_names_the_half(synth):
    # Frame counts in a container can be absent; the stream itself then reports the early end.
    half = dataset_halves(synth, split="val", keys=["game_1_H2"])[0]
    beyond = DatasetHalf(half.key, half.split, half.tactical, half.video, half.first, 900, half.frame_hw)
    with pytest.raises(VideoError, match=r"game_1_H2 \(video .*game_1\.mp4\): the video ends before frame 800"):
        for _ in beyond.load().frames():
            pass


def test_corrupt_frame_names_the_half(synth, tmp_path):
    data = copy_dataset(synth, tmp_path / "data")
    corrupt_frame(data / "videos" / "game_1.mp4", 600)  # a frame of H2 (frames 425..799)
    halves = dataset_halves(data, split="val", frame_hw=SYNTH_HW)  # the container itself still opens
    with pytest.raises(VideoError, match=r"game_1_H2 \(video .*game_1\.mp4\): decoding failed at frame 6\d\d"):
        for _ in halves[1].load().frames():
            pass
