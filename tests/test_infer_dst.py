"""DST inference over whole synthetic halves: windows, padding, absolute frames (no +1 lag), team and jersey
from the slot table, batch-size independence, and a trained DST that reproduces the ground truth."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from data_fixtures import taad_like_logits
from overfit import fit_batch

from fpspot.data.dst_windows import dst_eval_loader, write_dst_windows
from fpspot.data.footpass import FormatError, PlayByPlay, slot_jersey_table, write_playbyplay, write_tactical
from fpspot.data.layout import DatasetLayout
from fpspot.data.synth import SynthConfig, generate_game
from fpspot.data.tracks import HalfRows
from fpspot.infer.api import save_logits
from fpspot.eval.metric import evaluate
from fpspot.infer.dst import dst_half_events, dst_predictions, window_starts
from fpspot.models import build
from fpspot.models.dst import DST
from fpspot.schema import NUM_ROLES, Col, Prediction

WINDOW = 64


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def halves() -> list[dict]:
    out = []
    for game in range(2):
        for i, half in enumerate(generate_game(game, SynthConfig(games=2, minutes=2.0, seed=5), None)):
            rows = HalfRows(half.rows, half.key)
            out.append({"key": half.key, "raw": half.rows, "rows": rows, "events": half.events,
                        "logits": taad_like_logits(half.rows, 10 * game + i),
                        "jerseys": slot_jersey_table(half.rows, rows.last + 1)})
    return out


class OracleDST(DST):
    """Test double of a perfect DST: each window's tokens are the (frame, slot, class) cells whose TAAD logit
    exceeds 6 (the event peaks), so ``dst_half_events``'s window cutting, padding, frame arithmetic and
    jersey lookup are checked independently of learning."""

    def generate(self, batch, max_events=None, use_cache=True):
        logits, frame_index = batch["logits"], batch["frame_index"]
        b, t = frame_index.shape
        steps = int(max_events or self.config["max_events"])
        out = {"action": torch.zeros(b, steps, dtype=torch.long), "slot": torch.full((b, steps), -1),
               "frame": torch.full((b, steps), -1), "score": torch.zeros(b, steps),
               "valid": torch.zeros(b, steps, dtype=torch.bool)}
        for i in range(b):
            cls, slot, frame = torch.nonzero((logits[i, 1:] > 6.0) & (frame_index[i] > 0)[None, None], as_tuple=True)
            order = torch.argsort(frame * 100 + slot)[:steps]
            n = len(order)
            out["action"][i, :n] = cls[order] + 1
            out["slot"][i, :n] = slot[order]
            out["frame"][i, :n] = frame[order] + 1
            out["score"][i, :n], out["valid"][i, :n] = 0.9, True
        return out


def _gt(half) -> list[tuple[int, int, int, int]]:
    first, last = half["rows"].first_visible, half["rows"].last_visible
    return sorted((e.frame, e.team, e.shirt, e.cls) for e in half["events"] if first <= e.frame <= last)


def _pred(events: list[Prediction]) -> list[tuple[int, int, int, int]]:
    return sorted((e.frame, e.team, e.shirt, e.cls) for e in events)


def test_window_starts_cover_the_visible_frames():
    assert window_starts(10, 10 + 3 * WINDOW - 1, WINDOW) == [10, 10 + WINDOW, 10 + 2 * WINDOW]
    assert window_starts(10, 10 + 3 * WINDOW, WINDOW)[-1] == 10 + 3 * WINDOW  # one padded frame-long window
    assert window_starts(5, 4, WINDOW) == []


def test_oracle_events_are_the_ground_truth_with_exact_frames_teams_and_jerseys(halves):
    model = OracleDST(**{**DST.tiny_config(), "window": WINDOW, "use_gnn_logits": False, "max_events": 16})
    total = 0
    for half in halves:
        assert (half["rows"].last_visible - half["rows"].first_visible + 1) % WINDOW != 0  # a padded last window
        events = dst_half_events(model, half["rows"], half["logits"], half["jerseys"])
        assert _pred(events) == _gt(half)
        assert all(isinstance(e, Prediction) and e.score == pytest.approx(0.9) for e in events)
        assert [e.frame for e in events] == sorted(e.frame for e in events)
        total += len(events)
    assert total > 50


def test_dst_predictions_of_a_split_from_logits_files(halves, tmp_path):
    """The DST stage over a dataset split from logits files: every key, scored perfect by the official
    matcher with the oracle decoder (a +1 frame lag would still pass delta = 12, so frames are compared too)."""
    layout = DatasetLayout(tmp_path)
    write_tactical(layout.tactical("val"), {h["key"]: h["raw"] for h in halves})
    gt = PlayByPlay("gt", [h["key"] for h in halves], {h["key"]: h["events"] for h in halves})
    write_playbyplay(layout.ground_truth("val"), gt)
    for h in halves:
        save_logits(tmp_path / "logits" / f"{h['key']}.safetensors", h["logits"], h["key"])
    model = OracleDST(**{**DST.tiny_config(), "window": WINDOW, "use_gnn_logits": False, "max_events": 16})
    pred = dst_predictions(model, tmp_path, "val", tmp_path / "logits")
    assert pred.keys == gt.keys
    report = evaluate(pred, gt, delta=0)
    assert report.micro_f1 == pytest.approx(1.0)
    for h in halves:
        assert _pred(pred.events[h["key"]]) == _gt(h)
    with pytest.raises(FormatError, match="no logits file"):
        dst_predictions(model, tmp_path, "val", tmp_path / "missing")


def test_slots_without_a_jersey_are_skipped(halves):
    half = halves[1]
    model = OracleDST(**{**DST.tiny_config(), "window": WINDOW, "use_gnn_logits": False, "max_events": 16})
    first_event = half["events"][0]
    slot = None
    for row in half["raw"][half["raw"][:, Col.FRAME] == first_event.frame]:
        if row[Col.CLS] > 0:
            slot = int(row[Col.LEFT_TO_RIGHT] * NUM_ROLES + row[Col.ROLE_ID] - 1)
    jerseys = half["jerseys"].copy()
    jerseys[slot] = -1
    events = dst_half_events(model, half["rows"], half["logits"], jerseys)
    expected = [e for e in _gt(half) if not (e[1] == slot // NUM_ROLES and e[2] == half["jerseys"][slot, e[0]])]
    assert _pred(events) == expected and len(expected) < len(_gt(half))


def test_results_do_not_depend_on_the_batch_size(halves):
    torch.manual_seed(0)
    model = build("dst", **{**DST.tiny_config(), "window": WINDOW, "use_gnn_logits": True, "max_events": 6}).eval()
    with torch.no_grad():  # an untrained model: make it emit valid events often
        model.slot_head.bias[26] = -50.0
        model.action_head.bias[8:] = -50.0
    half = halves[0]
    gnn = half["logits"] * 0.5
    whole = dst_half_events(model, half["rows"], half["logits"], half["jerseys"], gnn_logits=gnn)
    chunked = dst_half_events(model, half["rows"], half["logits"], half["jerseys"], gnn_logits=gnn, batch_size=5)
    assert len(whole) > 20
    assert _pred(whole) == _pred(chunked)
    np.testing.assert_allclose(sorted(e.score for e in whole), sorted(e.score for e in chunked), atol=1e-5)
    assert all(half["rows"].first_visible <= e.frame <= half["rows"].last_visible for e in whole)


def test_bad_inputs_are_named(halves):
    half = halves[0]
    model = build("dst", **{**DST.tiny_config(), "window": WINDOW, "use_gnn_logits": True})
    with pytest.raises(ValueError, match=f"{half['key']}.*GNN logits"):
        dst_half_events(model, half["rows"], half["logits"], half["jerseys"])
    plain = build("dst", **{**DST.tiny_config(), "window": WINDOW, "use_gnn_logits": False})
    with pytest.raises(ValueError, match="jerseys must have shape"):
        dst_half_events(plain, half["rows"], half["logits"], half["jerseys"][:, :100])
    with pytest.raises(ValueError, match=r"\(9, 26, T\)"):
        dst_half_events(plain, half["rows"], half["logits"][:, :5], half["jerseys"])


@pytest.mark.slow
def test_trained_dst_reproduces_the_ground_truth_of_its_half(halves, tmp_path):
    """Train a tiny DST on the inference windows of one synthetic half (written by write_dst_windows, read
    by dst_eval_loader), then decode the half with dst_half_events: the events are the ground truth, on
    the exact frames (the baseline's output would be one frame late everywhere)."""
    half = halves[2]
    layout = DatasetLayout(tmp_path)
    write_tactical(layout.tactical("train"), {half["key"]: half["raw"]})
    write_playbyplay(layout.ground_truth("train"), PlayByPlay("gt", [half["key"]], {half["key"]: half["events"]}))
    save_logits(tmp_path / "logits" / f"{half['key']}.safetensors", half["logits"], half["key"])
    write_dst_windows(tmp_path, "train", tmp_path / "logits", tmp_path / "win", dtype="float32")
    batch = next(iter(dst_eval_loader(tmp_path / "win", batch_size=64, rank=0, world_size=1, window=WINDOW)))
    assert batch["tgt_mask"].shape[0] == -(-(half["rows"].last_visible - half["rows"].first_visible + 1) // WINDOW)
    torch.manual_seed(0)
    model = build("dst", window=WINDOW, d_model=64, nhead=4, num_encoder_layers=2, num_decoder_layers=2,
                  dim_feedforward=128, dropout=0.0, max_events=12)
    losses = fit_batch(model.train(), batch, steps=250, lr=3e-3)
    events = dst_half_events(model, half["rows"], half["logits"], half["jerseys"])
    assert _pred(events) == _gt(half), (losses[-1], _pred(events), _gt(half))
