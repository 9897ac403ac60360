"""``fpspot.infer(model, data, ...)`` and ``fpspot infer`` end to end on a tiny synthetic dataset.

The model is a small real conv model with the clip-batch contract (``tests/scripts/infer_testlib.py``)
saved and loaded through the zoo, the data a synthetic FOOTPASS-format folder (mp4 + tactical HDF5).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parent / "scripts"))
from infer_testlib import (  # noqa: E402
    SYNTH_HW, PixelSpotter, copy_dataset, corrupt_frame, pixel_model_registered, synth_dataset,
)

import fpspot  # noqa: E402
from fpspot.data.footpass import read_playbyplay  # noqa: E402
from fpspot.data.video import VideoError  # noqa: E402
from fpspot.infer.api import (  # noqa: E402
    STACK_FILE, FrameModels, HalfSource, Stack, infer, load_logits, load_stack, resolve_model, save_stack,
)
from fpspot.infer.sources import dataset_halves  # noqa: E402
from fpspot.models import ModelLoadError  # noqa: E402


@pytest.fixture(autouse=True, scope="module")
def one_thread_and_test_model():
    """One intra-op thread (the tests are small; avoids oversubscribing the cores under xdist) and the test
    model in the zoo, for this module only."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    with pixel_model_registered():
        yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return synth_dataset(tmp_path_factory.getbasetemp() / "infer_synth")


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory) -> Path:
    return PixelSpotter(frame_hw=SYNTH_HW).save_pretrained(tmp_path_factory.mktemp("model"))


def _logits(folder: Path, keys=("game_1_H1", "game_1_H2")) -> dict[str, np.ndarray]:
    out = {}
    for key in keys:
        stored, logits = load_logits(folder / f"{key}.safetensors")
        assert stored == key
        out[key] = logits
    return out


def _same_events(a, b, keys) -> None:
    for key in keys:
        ea = sorted(a.events[key], key=lambda e: (e.frame, e.team, e.shirt, e.cls))
        eb = sorted(b.events[key], key=lambda e: (e.frame, e.team, e.shirt, e.cls))
        assert [(e.frame, e.team, e.shirt, e.cls) for e in ea] == [(e.frame, e.team, e.shirt, e.cls) for e in eb]
        np.testing.assert_allclose([e.score for e in ea], [e.score for e in eb], rtol=1e-5)


@pytest.fixture(scope="module")
def reference(synth, model_dir, tmp_path_factory):
    """The val predictions, logits and JSON of the saved model, run one window at a time."""
    folder = tmp_path_factory.mktemp("reference")
    pred = infer(model_dir, synth, split="val", batch_size=1, logits_dir=folder / "logits",
                 output=folder / "pred.json", show_progress=False)
    return pred, _logits(folder / "logits"), folder / "pred.json"


def test_batched_equals_unbatched_and_any_batch_size(synth, model_dir, reference, tmp_path):
    ref_pred, ref, _ = reference
    for key, logits in ref.items():
        assert logits.shape == (9, 26, {"game_1_H1": 375, "game_1_H2": 800}[key]) and logits.dtype == np.float32
        first = dataset_halves(synth, keys=[key])[0].first
        assert (logits[..., :first] == 0).all() and (np.abs(logits[..., first:]).sum(axis=(0, 1)) > 0).all()
    assert sum(len(v) for v in ref_pred.events.values()) > 0
    for batch_size in (3, 16):
        pred = infer(model_dir, synth, split="val", batch_size=batch_size, device="cpu",
                     logits_dir=tmp_path / str(batch_size), show_progress=False)
        logits = _logits(tmp_path / str(batch_size))
        for key in ref:
            np.testing.assert_allclose(logits[key], ref[key], rtol=1e-5, atol=1e-6)
        _same_events(pred, ref_pred, ref)


def test_long_window_mode_batched_and_against_the_overlap_scheme(synth, model_dir, reference, tmp_path):
    key = "game_1_H2"
    for batch_size in (1, 4):
        infer(model_dir, synth, keys=[key], scheme="long", batch_size=batch_size,
              logits_dir=tmp_path / str(batch_size), show_progress=False)
    long, long4 = (_logits(tmp_path / str(b), [key])[key] for b in (1, 4))
    np.testing.assert_allclose(long4, long, rtol=1e-5, atol=1e-6)
    # The model's receptive field is +-1 frame: the long mode (25-frame margins) sees every frame's whole
    # context, the overlap scheme averages in window edges that lack it, so they differ there only.
    overlap = reference[1][key]
    first = dataset_halves(synth, keys=[key])[0].first
    differs = np.flatnonzero(~np.isclose(overlap, long, atol=1e-5).all(axis=(0, 1)))
    assert differs.size and set((differs - first) % 25) <= {0, 24}  # windows start every 25 frames from first


def test_output_json_has_every_key_even_without_events(synth, tmp_path):
    silent = PixelSpotter(frame_hw=SYNTH_HW, background_bias=100.0)  # always background: no event at all
    pred = infer(silent, synth, split="val", output=tmp_path / "pred.json", show_progress=False)
    written = read_playbyplay(tmp_path / "pred.json", "pred")
    assert pred.keys == written.keys == ["game_1_H1", "game_1_H2"]
    assert json.loads((tmp_path / "pred.json").read_text())["events"] == {k: [] for k in pred.keys}


def test_half_without_a_visible_player_is_listed_without_events(synth, model_dir, tmp_path):
    from fpspot.data.footpass import read_tactical, write_tactical
    from fpspot.data.layout import DatasetLayout
    from fpspot.schema import Col

    data = copy_dataset(synth, tmp_path / "data")
    path = DatasetLayout(data).tactical("val")
    tables = read_tactical(path)
    tables["game_1_H2"][:, Col.ROI_X:Col.ROI_HEIGHT + 1] = np.nan  # a half that is all replay
    write_tactical(path, tables)
    empty = dataset_halves(data, keys=["game_1_H2"])[0]
    assert empty.num_frames == 0
    pred = infer(model_dir, data, split="val", output=tmp_path / "pred.json", show_progress=False)
    written = read_playbyplay(tmp_path / "pred.json", "pred")
    assert written.keys == ["game_1_H1", "game_1_H2"] and written.events["game_1_H2"] == []
    assert len(pred.events["game_1_H1"]) > 0


def test_predictions_are_the_baseline_events_of_the_logits(synth, reference):
    from fpspot.post.peaks import logits_to_events

    pred, logits, output = reference
    written = read_playbyplay(output, "pred")
    assert written.keys == pred.keys == ["game_1_H1", "game_1_H2"]
    for key in pred.keys:
        source = dataset_halves(synth, keys=[key], frame_hw=SYNTH_HW)[0].load()
        expected = logits_to_events(logits[key], source.jerseys)
        assert pred.events[key] == expected and len(written.events[key]) == len(expected) > 0
        assert all(source.first <= e.frame <= source.last for e in expected)


def test_fpspot_infer_is_callable_as_the_issue_writes_it(synth, model_dir, reference, tmp_path):
    import h5py

    import fpspot.infer.engine  # noqa: F401  (importing a module of the package must not hide the function)

    assert callable(fpspot.infer) and fpspot.infer.engine.run_half
    pred = fpspot.infer(model_dir, synth, split="val", batch_size=4, device="cpu", output=tmp_path / "a.json",
                        logits_dir=tmp_path / "logits", logits_h5=tmp_path / "preds_val.h5", show_progress=False)
    _same_events(pred, reference[0], pred.keys)
    assert read_playbyplay(tmp_path / "a.json").keys == ["game_1_H1", "game_1_H2"]
    from fpspot.infer import infer as function

    assert function is infer
    with h5py.File(tmp_path / "preds_val.h5") as h5:  # the logits gathered for the baseline's tools
        assert sorted(h5) == ["game_1_H1", "game_1_H2"]
        for key, logits in _logits(tmp_path / "logits").items():
            np.testing.assert_array_equal(h5[key][()], logits)
    with pytest.raises(ValueError, match="pass logits_dir too"):
        infer(model_dir, synth, logits_h5=tmp_path / "x.h5")


def test_model_object_and_explicit_halves(synth, model_dir, reference):
    model = fpspot.load_model(model_dir)
    halves = [h.load() for h in dataset_halves(synth, split="val", frame_hw=SYNTH_HW)]
    assert all(isinstance(h, HalfSource) for h in halves)
    by_object = infer(model, halves[::-1], show_progress=False)
    assert by_object.keys == ["game_1_H2", "game_1_H1"]  # the order given
    _same_events(by_object, reference[0], by_object.keys)


def test_interrupted_run_leaves_no_output(synth, tmp_path):
    from fpspot.infer.engine import EngineConfig

    h1 = dataset_halves(synth, split="train")[0]
    calls_h1 = -(-len(EngineConfig().plan(h1.first, h1.last)) // 2)  # batches of 2 windows in game_0_H1

    class Failing(PixelSpotter):
        calls = 0

        def forward(self, batch):
            Failing.calls += 1
            if Failing.calls == calls_h1 + 3:
                raise RuntimeError("simulated failure in the middle of the second half")
            return super().forward(batch)

    out = tmp_path / "out"
    with pytest.raises(RuntimeError, match="simulated failure"):
        infer(Failing(frame_hw=SYNTH_HW), synth, split="train", batch_size=2, output=out / "pred.json",
              logits_dir=out / "logits", show_progress=False)
    assert not (out / "pred.json").exists()
    files = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert files == ["logits/game_0_H1.safetensors"]  # the finished half only; no temporary files


def test_errors_name_the_half(synth, model_dir, tmp_path):
    from fpspot.data.footpass import FormatError

    data = copy_dataset(synth, tmp_path / "data")
    (data / "videos" / "game_0.mp4").unlink()
    with pytest.raises(FormatError, match=r"game_0\.mp4', key 'game_0_H1': no such video file"):
        infer(model_dir, data, output=tmp_path / "pred.json", show_progress=False)
    assert not (tmp_path / "pred.json").exists()

    corrupt_frame(data / "videos" / "game_1.mp4", 600)
    with pytest.raises(VideoError, match=r"game_1_H2 \(video .*game_1\.mp4\): decoding failed"):
        infer(model_dir, data, keys=["game_1_H2"], output=tmp_path / "pred.json", show_progress=False)
    assert not (tmp_path / "pred.json").exists()


def test_cli_writes_predictions_that_evaluate_scores(synth, model_dir, reference, tmp_path, capsys):
    from fpspot.cli import main
    from fpspot.eval import evaluate

    pred = tmp_path / "pred.json"
    assert main(["infer", "--model", str(model_dir), "--data", str(synth), "--split", "val", "--out", str(pred),
                 "--batch-size", "4", "--scheme", "overlap", "--logits-dir", str(tmp_path / "logits"),
                 "--device", "cpu", "--no-progress"]) == 0
    assert "for 2 halves" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "logits").iterdir()) == [
        "game_1_H1.safetensors", "game_1_H2.safetensors"]
    _same_events(read_playbyplay(pred, "pred"), reference[0], reference[0].keys)

    gt = synth / "playbyplay_GT" / "playbyplay_val.json"
    assert main(["evaluate", str(pred), str(gt), "--json", str(tmp_path / "scores.json")]) == 0
    assert "Micro F1" in capsys.readouterr().out
    scores = json.loads((tmp_path / "scores.json").read_text())
    assert json.dumps(scores, sort_keys=True) == json.dumps(evaluate(str(pred), str(gt)).to_json(), sort_keys=True)


# ------------------------------------------------------------------------------------------------ stacks


def _dst(use_gnn_logits: bool):
    from fpspot.models import build

    torch.manual_seed(0)
    return build("dst", window=64, d_model=32, nhead=4, num_encoder_layers=1, num_decoder_layers=1,
                 dim_feedforward=64, dropout=0.0, use_gnn_logits=use_gnn_logits, max_events=12)


def test_stack_folder_and_tuples_resolve(model_dir, tmp_path):
    frame, gnn, dst = PixelSpotter(frame_hw=SYNTH_HW), PixelSpotter(frame_hw=SYNTH_HW, seed=1), _dst(True)
    folder = save_stack(tmp_path / "stack", frame, dst, gnn)
    assert json.loads((folder / STACK_FILE).read_text()) == {
        "format": "fpspot-stack/1", "frame_model": "taad", "dst": "dst", "gnn_model": "taad_gnn"}
    stack = resolve_model(folder)
    assert isinstance(stack, Stack) and isinstance(stack.frame_pass(), FrameModels)
    torch.testing.assert_close(stack.gnn_model.state_dict(), gnn.state_dict())
    torch.testing.assert_close(stack.dst.state_dict(), dst.state_dict())
    assert resolve_model((model_dir, _dst(False))).gnn_model is None
    assert isinstance(resolve_model((model_dir, gnn, dst)), Stack)
    assert isinstance(resolve_model(model_dir), PixelSpotter)
    with pytest.raises(ValueError, match="fuses GNN logits .* needs a gnn_model"):
        resolve_model((model_dir, dst))
    with pytest.raises(ValueError, match="must run on the same frames"):
        resolve_model((model_dir, PixelSpotter(frame_hw=(44, 80)), dst))
    spec = json.loads((folder / STACK_FILE).read_text())
    (folder / STACK_FILE).write_text(json.dumps({**spec, "frame_model": "../x"}))
    with pytest.raises(ModelLoadError, match="'frame_model' must name a sub-folder"):
        load_stack(folder)
    (folder / STACK_FILE).write_text(json.dumps({k: v for k, v in spec.items() if k != "gnn_model"}))
    with pytest.raises(ModelLoadError, match="stack.json: the DST model fuses GNN logits"):
        load_stack(folder)
    (folder / STACK_FILE).write_text(json.dumps({**spec, "format": "other"}))
    with pytest.raises(ModelLoadError, match="stack.json: expected"):
        resolve_model(folder)


@pytest.mark.parametrize("with_gnn", [False, True], ids=["taad+dst", "taad+gnn+dst"])
def test_stack_runs_the_frame_models_then_dst_per_half(synth, reference, tmp_path, with_gnn):
    from fpspot.infer.dst import dst_half_events

    frame, gnn, dst = PixelSpotter(frame_hw=SYNTH_HW), PixelSpotter(frame_hw=SYNTH_HW, seed=1), _dst(with_gnn)
    folder = save_stack(tmp_path / "stack", frame, dst, gnn if with_gnn else None)
    pred = infer(folder, synth, split="val", logits_dir=tmp_path / "logits", output=tmp_path / "pred.json",
                 show_progress=False)
    # the frame models' logits are those each model gives alone (one shared pass over the video)
    frame_logits = _logits(tmp_path / "logits")
    for key, logits in reference[1].items():  # the reference model has the frame model's weights
        np.testing.assert_allclose(frame_logits[key], logits, rtol=1e-5, atol=1e-6)
    if with_gnn:
        infer(gnn, synth, split="val", logits_dir=tmp_path / "gnn_alone", show_progress=False)
        gnn_logits = _logits(tmp_path / "logits" / "gnn")
        for key, logits in _logits(tmp_path / "gnn_alone").items():
            np.testing.assert_allclose(gnn_logits[key], logits, rtol=1e-5, atol=1e-6)
    # the events are the DST's over those logits, with jerseys from the slot table
    for key in pred.keys:
        source = dataset_halves(synth, keys=[key], frame_hw=SYNTH_HW)[0].load()
        expected = dst_half_events(dst, source.rows, frame_logits[key], source.jerseys,
                                   gnn_logits=gnn_logits[key] if with_gnn else None, device="cpu")
        assert pred.events[key] == expected
    assert pred.events != reference[0].events  # not the NMS events of the frame model
    assert read_playbyplay(tmp_path / "pred.json").keys == ["game_1_H1", "game_1_H2"]


# ---------------------------------------------------------------------------------------- non-video models


def _event_dst():
    from fpspot.models import build
    from fpspot.models.zoo import model_class

    return build("event_dst", **model_class("event_dst").tiny_config())


@pytest.mark.parametrize("kind", ["event_dst", "dst"])
def test_non_video_models_are_refused_before_any_data_is_read(kind, tmp_path):
    from fpspot.infer.api import UnsupportedModelError

    folder = (_event_dst() if kind == "event_dst" else _dst(False)).save_pretrained(tmp_path / kind)
    with pytest.raises(UnsupportedModelError) as err:  # the data folder does not even exist
        infer(folder, tmp_path / "no_data", output=tmp_path / "pred.json", show_progress=False)
    message = str(err.value)
    assert message.startswith(f"{folder}: model {kind!r} is ")
    assert "fpspot.infer runs video models (taad, taad_gnn, test_pixel) and TAAD+DST stacks" in message
    if kind == "event_dst":
        assert "`fpspot post`" in message and "event_dst" in message and "pipeline.yaml" in message
    else:
        assert "save_stack" in message and "(frame_model, dst)" in message
    assert not (tmp_path / "pred.json").exists()


def test_cli_refuses_an_event_dst_model_before_reading_data(tmp_path):
    """``fpspot infer`` raises the error (the ``fpspot`` command prints user errors as one line)."""
    import argparse

    from fpspot.infer import cli
    from fpspot.infer.api import UnsupportedModelError

    parser = argparse.ArgumentParser()
    cli.add_arguments(parser)
    folder = _event_dst().save_pretrained(tmp_path / "event_dst")
    args = parser.parse_args(["--model", str(folder), "--data", str(tmp_path / "no_data"), "--out", "p.json"])
    with pytest.raises(UnsupportedModelError) as err:
        cli.run(args)
    assert str(err.value).startswith(f"{folder}: model 'event_dst' is an event-sequence model")
    assert "use `fpspot post` with an event_dst pipeline step" in str(err.value)


def test_stacks_of_the_wrong_kinds_of_models_are_refused(model_dir, tmp_path):
    from fpspot.infer.api import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=r"the stack's dst must be a dst model .*, got model 'event_dst'"):
        resolve_model((model_dir, _event_dst()))
    with pytest.raises(UnsupportedModelError, match=r"stack's frame_model must be a video model .*, got model 'dst'"):
        save_stack(tmp_path / "stack", _dst(False), _dst(False))
    assert not (tmp_path / "stack").exists()
    with pytest.raises(UnsupportedModelError, match=r"^the EventDST object: model 'event_dst' is an event-sequence"):
        infer(_event_dst(), tmp_path / "no_data", show_progress=False)
