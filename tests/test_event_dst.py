"""The event-sequence DST (issue 8): the model learns to clean noisy windows, the inference path over halves,
the ``event_dst`` pipeline step and the released model applied to the real TAAD predictions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from overfit import fit_batch

from fpspot.data.corrupt import CorruptionParams, corrupt_playbyplay
from fpspot.data.event_windows import WindowConfig, WindowCorruptor, collate_windows, cut_windows, half_windows
from fpspot.data.footpass import PlayByPlay, read_playbyplay, write_playbyplay
from fpspot.eval import evaluate
from fpspot.models import build
from fpspot.models.event_dst import synthetic_half
from fpspot.post.event_dst import (denoise_half, estimate_strength, events_per_minute, expected_f1_cuts,
                                   ground_truth_class_rates, nms_events, play_minutes)
from fpspot.post.pipeline import Pipeline, PipelineError
from fpspot.schema import Prediction

REPO = Path(__file__).resolve().parents[1]
RELEASED = REPO / "recipes" / "pretrained" / "event_dst"
TINY = {"window": 750, "d_model": 48, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 1,
        "dim_feedforward": 96, "dropout": 0.0, "max_players": 32, "max_offset": 30}


pytestmark = pytest.mark.usefixtures("one_thread")


def _synthetic_gt(seed: int = 0, halves: int = 2, events: int = 300) -> PlayByPlay:
    rng = np.random.default_rng(seed)
    keys = [f"game_{h + 1}_H1" for h in range(halves)]
    return PlayByPlay("gt", keys, {k: [tuple(e) for e in synthetic_half(rng, events)] for k in keys})


def test_overfits_a_tiny_set():
    """A handful of noisy windows (fixed noise): after training, the kept events are the clean events."""
    gt = _synthetic_gt(halves=1, events=80)
    windows = cut_windows(gt.keys[0], gt.events[gt.keys[0]], WindowConfig(750, 750, 125))[:4]
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=3, max_players=TINY["max_players"])
    batch = collate_windows([corruptor(w) for w in windows])
    valid = batch["in_mask"]
    keep = batch["in_keep"] & valid
    assert 0.2 < float(keep.sum() / valid.sum()) < 0.8  # the input really is noisy
    torch.manual_seed(0)
    model = build("event_dst", **TINY)
    fit_batch(model, batch, steps=250, lr=3e-3)
    model.eval()
    targets = {k: batch[k] for k in ("in_keep", "in_tgt_cls", "in_tgt_player", "in_tgt_offset")}
    out = model.predict({k: v for k, v in batch.items() if k not in targets})
    kept = (out["keep_prob"] > 0.5) & valid
    assert torch.equal(kept, keep)
    assert torch.equal(out["cls"][keep], targets["in_tgt_cls"][keep])
    reachable = keep & (targets["in_tgt_player"] >= 0)
    assert torch.equal(out["player"][reachable], targets["in_tgt_player"][reachable])
    in_range = keep & (targets["in_tgt_offset"].abs() <= TINY["max_offset"])  # the jitter tail is out of reach
    assert int(in_range.sum()) >= int(keep.sum()) - 4
    assert (out["offset"][in_range] - targets["in_tgt_offset"][in_range]).abs().max() <= 2
    assert float(out["score"][keep].min()) > 0.5 > float(out["score"][valid & ~keep].max())


def test_insertion_heads_overfit_a_tiny_set():
    """With insertion heads, the model learns where the missed events are (the gap after an input event), their
    class, player and frame, without losing the per-event decisions."""
    gt = _synthetic_gt(halves=1, events=80)
    windows = cut_windows(gt.keys[0], gt.events[gt.keys[0]], WindowConfig(750, 750, 125))[:4]
    corruptor = WindowCorruptor(CorruptionParams.load(), seed=3, max_players=TINY["max_players"], insertions=True)
    batch = collate_windows([corruptor(w) for w in windows])
    config = {**TINY, "insert_offset": 60}
    valid = batch["in_mask"]
    allowed = (batch["player_known"] & batch["player_mask"]).gather(1, batch["in_ins_player"].clamp(min=0))
    insert = batch["in_ins"] & valid & (batch["in_ins_offset"].abs() <= config["insert_offset"]) & allowed
    assert 5 <= int(insert.sum()) < 0.5 * int(valid.sum())
    torch.manual_seed(0)
    model = build("event_dst", **config)
    fit_batch(model, batch, steps=300, lr=3e-3)
    model.eval()
    out = model.predict({k: v for k, v in batch.items() if k not in ("in_keep", "in_ins")})
    assert torch.equal((out["ins_keep_prob"] > 0.5) & valid, insert)
    assert torch.equal(out["ins_cls"][insert], batch["in_ins_cls"][insert])
    assert torch.equal(out["ins_player"][insert], batch["in_ins_player"][insert])
    assert (out["ins_offset"][insert] - batch["in_ins_offset"][insert]).abs().max() <= 2
    keep = batch["in_keep"] & valid
    assert torch.equal((out["keep_prob"] > 0.5) & valid, keep)


def test_insertions_join_the_output_in_replace_mode_only(tmp_path):
    """A model whose insertion heads always fire: replace mode adds one event per input event (frame = input
    frame + offset, a player of the input), ``insert: false`` and filter mode add none; a saved model keeps
    its insertion heads."""
    gt = _synthetic_gt(halves=1, events=120)
    inputs = corrupt_playbyplay(gt, seed=2).events[gt.keys[0]]
    torch.manual_seed(0)
    model = build("event_dst", **{**TINY, "insert_offset": 20}).eval()
    with torch.no_grad():
        model.insert_head.bias[0] = 20.0  # P(a missed event after every input) ~ 1
    model.save_pretrained(tmp_path / "m")
    shirts = {(e.team, e.shirt) for e in inputs}
    plain, details = denoise_half(model, inputs, strength=1.0, min_score=0.0, nms_window=0, insert=False,
                                  return_details=True)
    assert len(plain) == len(inputs) and "ins_score" not in details
    both, details = denoise_half(model, inputs, strength=1.0, min_score=0.0, nms_window=0, return_details=True)
    assert len(both) == 2 * len(inputs)
    assert np.all(details["ins_keep_prob"] > 0.99) and np.all(np.abs(details["ins_offset"]) <= 20)
    inserted = {(int(e[0] + details["ins_offset"][i]), int(details["ins_team"][i]), int(details["ins_shirt"][i]),
                 int(details["ins_cls"][i])) for i, e in enumerate(inputs)}
    assert inserted <= {(e.frame, e.team, e.shirt, e.cls) for e in both}
    assert all((e.team, e.shirt) in shirts and 1 <= e.cls <= 8 for e in both)
    kept = denoise_half(model, inputs, strength=1.0, min_score=0.0, mode="filter")
    assert len(kept) == len(inputs)
    pipe = Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": str(tmp_path / "m"),
                                "min_score": 0.0, "nms_window": 0, "strength": 1.0}], "taad")
    assert len(pipe.apply({"taad": PlayByPlay("pred", gt.keys, {gt.keys[0]: inputs})}).events[gt.keys[0]]) == \
        2 * len(inputs)
    with pytest.raises(PipelineError, match="insert must be true or false"):
        Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": str(tmp_path / "m"),
                             "insert": "yes"}], "taad").apply({"taad": PlayByPlay("pred", gt.keys, {})})


def test_half_windows_decide_every_event_once():
    rng = np.random.default_rng(1)
    frames = np.sort(rng.integers(0, 20_000, 600))
    events = [Prediction(int(f), int(rng.integers(2)), int(rng.integers(1, 30)), int(rng.integers(1, 9)),
                         float(rng.random())) for f in frames]
    windows = half_windows(events, 750)
    owned = np.concatenate([w["source"][w["owned"]] for w in windows])
    assert sorted(owned.tolist()) == list(range(len(events)))
    for w in windows:
        start = w["meta"]["start_frame"]
        rel = w["in_frame"]
        assert rel.min() >= 1 and rel.max() <= 750 and np.all(np.diff(rel) >= 0)
        np.testing.assert_array_equal(rel + start - 1, frames[w["source"]])
        mid = rel[w["owned"]]
        first, last = w is windows[0], w is windows[-1]
        assert (first or mid.min() >= 1 + 187) and (last or mid.max() < 1 + 187 + 375)  # central half only
        np.testing.assert_array_equal(w["players"][w["in_player"]][:, 1], [events[i].shirt for i in w["source"]])
    assert half_windows([], 750) == []


def test_nms_and_strength_estimate():
    events = [Prediction(100, 0, 7, 2, 0.9), Prediction(108, 0, 7, 2, 0.5), Prediction(130, 0, 7, 2, 0.4),
              Prediction(104, 0, 8, 2, 0.3), Prediction(104, 0, 7, 1, 0.3)]
    kept = nms_events(events, 12)
    assert sorted(kept) == sorted([events[0], events[2], events[3], events[4]])
    assert nms_events(events, 0) == events
    table = [[0.1, 18.0], [0.5, 26.0], [1.0, 37.0]]
    dense = [Prediction(f, 0, 1, 1, 0.9) for f in range(0, 25 * 60 * 10, 25 * 60 // 37)]  # ~37 per minute
    assert events_per_minute(dense) == pytest.approx(37, rel=0.03)
    assert estimate_strength(dense, table) == pytest.approx(1.0, abs=0.05)
    assert estimate_strength(dense[::2], table) == pytest.approx(0.1 + 0.4 * (18.5 - 18) / 8, abs=0.05)
    assert estimate_strength(dense, None) == 1.0


def test_denoise_half_keeps_valid_events(tmp_path):
    """An untrained model through the whole inference path: valid events only, every key kept."""
    gt = _synthetic_gt(halves=2, events=120)
    pred = corrupt_playbyplay(gt, seed=2)
    pred = PlayByPlay("pred", [*pred.keys, "game_9_H2"], {**pred.events, "game_9_H2": []})
    torch.manual_seed(0)
    model = build("event_dst", **TINY).eval()
    model.save_pretrained(tmp_path / "m")
    pipe = Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": str(tmp_path / "m"),
                                "min_score": 0.0, "nms_window": 0, "strength": 1.0}], "taad")
    out = pipe.apply({"taad": pred})
    assert out.keys == pred.keys and out.events["game_9_H2"] == []
    for key in gt.keys:
        shirts = {(e.team, e.shirt) for e in pred.events[key]}
        assert len(out.events[key]) == len(pred.events[key])  # nothing dropped at min score 0 without NMS
        for e in out.events[key]:
            assert 1 <= e.cls <= 8 and e.frame >= 0 and 0.0 <= e.score <= 1.0 and (e.team, e.shirt) in shirts
    # the model's decisions line up with the input events
    events, details = denoise_half(model, pred.events[gt.keys[0]], strength=1.0, min_score=0.0, nms_window=0,
                                   return_details=True)
    inputs = pred.events[gt.keys[0]]
    assert details["score"].shape == (len(inputs),)
    assert np.all(details["strength"] == 1.0)
    # per-class thresholds: the events at or above their class's cut survive, rescaled onto [0.15, 1]
    cuts = {c: float(np.quantile(details["score"], q)) for c, q in zip(range(1, 9), np.linspace(0.2, 0.8, 8))}
    gated = denoise_half(model, inputs, strength=1.0, min_score=0.0, nms_window=0, thresholds=cuts)
    expected = sorted(details["score"][i] for i in range(len(inputs))
                      if details["score"][i] >= cuts[int(details["cls"][i])])
    assert len(gated) == len(expected)
    assert sorted(e.score for e in gated) == pytest.approx(sorted(
        0.15 + 0.85 * (s - cuts[int(details["cls"][i])]) / (1 - cuts[int(details["cls"][i])])
        for i, s in enumerate(details["score"]) if s >= cuts[int(details["cls"][i])]))
    # filter mode: the input events themselves, minus those the model scores under the cut
    kept = denoise_half(model, inputs, strength=1.0, min_score=0.0, thresholds=0.5 * details["score"].max(),
                        mode="filter")
    assert set(kept) <= set(inputs) and len(kept) == int((details["score"] >= 0.5 * details["score"].max()).sum())
    assert 0 < len(kept) < len(inputs)


def _realised_f1(hits: np.ndarray, kept: np.ndarray, num_true: int) -> float:
    tp = int((hits & kept).sum())
    return 2 * tp / (int(kept.sum()) + num_true)


def test_expected_f1_cuts_on_calibrated_scores():
    """With calibrated scores (each event is a true positive with probability = its score), the auto cuts keep
    every event of an under-detected class, prune an over-detected one, and beat both keeping everything and a
    fixed 0.5 cut in realised F1."""
    rng = np.random.default_rng(0)
    under = rng.uniform(0.1, 0.3, 5)     # class 7: 5 weak detections of 13 true events
    over = rng.uniform(0.0, 0.7, 200)    # class 1: 200 detections, ~70 of them true, plus 20 true events missed
    missed = 20
    scores = np.concatenate([under, over])
    classes = np.concatenate([np.full(5, 7), np.full(200, 1)])
    rates = {c: 1.0 for c in range(1, 9)} | {7: 1.3, 1: (over.sum() + missed) / 10}
    cuts = expected_f1_cuts(scores, classes, rates, minutes=10.0)
    assert cuts[7] == pytest.approx(under.min())  # nothing removed where the spotter already under-detects
    assert 0.1 < cuts[1] < 0.5 and cuts[2] == 0.0  # the weak tail of the over-detected class goes
    # brute force: the cut maximises 2 * sum(kept scores) / (kept + expected)
    ranked = np.sort(over)[::-1]
    best = max(range(1, 201), key=lambda k: 2 * ranked[:k].sum() / (k + over.sum() + missed))
    assert cuts[1] == ranked[best - 1]
    auto, everything, fixed = [], [], []
    for _ in range(200):
        hits = rng.random(over.size) < over
        num_true = int(hits.sum()) + missed
        auto.append(_realised_f1(hits, over >= cuts[1], num_true))
        everything.append(_realised_f1(hits, np.ones(over.size, bool), num_true))
        fixed.append(_realised_f1(hits, over >= 0.5, num_true))
    assert np.mean(auto) > np.mean(everything) + 0.02 and np.mean(auto) > np.mean(fixed) + 0.02


def test_ground_truth_class_rates_on_the_real_training_file(footpass_dir):
    gt = read_playbyplay(footpass_dir / "playbyplay_train.json", "gt")
    key = gt.keys[0]
    one = ground_truth_class_rates(gt, [key])
    passes = sum(1 for e in gt.events[key] if e.cls == 2)
    assert one["pass"] == pytest.approx(passes / play_minutes(gt.events[key]), abs=1e-4)
    rates = ground_truth_class_rates(gt)
    assert list(rates) == ["drive", "pass", "cross", "throw-in", "shot", "header", "tackle", "block"]
    assert 15 < sum(rates.values()) < 25 and rates["pass"] > rates["drive"] > rates["header"] > rates["tackle"] > 0
    with pytest.raises(ValueError, match="every class needs ground-truth events"):
        ground_truth_class_rates(PlayByPlay("gt", ["game_1_H1"], {"game_1_H1": gt.events[key][:3]}))


def test_auto_thresholds_through_the_step(tmp_path):
    """``thresholds: auto`` keeps, per half and class, the events at or above the expected-F1 cut of the model's
    scores (filter mode: unchanged input events; replace mode: rescaled onto [0.15, 1])."""
    gt = _synthetic_gt(halves=1, events=150)
    inputs = corrupt_playbyplay(gt, seed=4).events[gt.keys[0]]
    torch.manual_seed(0)
    model = build("event_dst", **TINY).eval()
    rates = {c: 2.0 for c in range(1, 9)}
    _, details = denoise_half(model, inputs, strength=1.0, min_score=0.0, nms_window=0, return_details=True)
    cuts = expected_f1_cuts(details["score"], np.asarray([e.cls for e in inputs]), rates, play_minutes(inputs))
    kept = denoise_half(model, inputs, strength=1.0, min_score=0.0, mode="filter", thresholds="auto",
                        class_rates=rates)
    assert sorted(kept) == sorted(e for i, e in enumerate(inputs) if details["score"][i] >= cuts[e.cls])
    assert 0 < len(kept) < len(inputs)
    replaced = denoise_half(model, inputs, strength=1.0, min_score=0.0, nms_window=0, thresholds="auto",
                            class_rates=rates)
    assert 0 < len(replaced) < len(inputs) and all(0.15 <= e.score <= 1.0 for e in replaced)
    model.save_pretrained(tmp_path / "m")
    pred = PlayByPlay("pred", gt.keys, {gt.keys[0]: inputs})
    for option, message in (({}, "thresholds 'auto' needs class_rates"),
                            ({"class_rates": {"drive": 1.0}}, "class_rates has no value for class"),
                            ({"class_rates": {**{c: 1.0 for c in range(1, 8)}, 8: 0.0}}, "class_rates must be > 0")):
        with pytest.raises(PipelineError, match=message):
            Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": str(tmp_path / "m"), "mode": "filter",
                                 "thresholds": "auto", **option}], "taad").apply({"taad": pred})
    with pytest.raises(PipelineError, match="thresholds must be a number, a mapping class -> number or 'auto'"):
        Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": str(tmp_path / "m"),
                             "thresholds": "best"}], "taad").apply({"taad": pred})


def test_bad_model_paths_are_named(tmp_path):
    pred = PlayByPlay("pred", ["game_1_H1"], {"game_1_H1": [Prediction(10, 0, 3, 2, 0.9)]})

    def run(model):
        Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": model}], "taad").apply({"taad": pred})

    missing = str(tmp_path / "nowhere")
    with pytest.raises(PipelineError, match=f"event_dst model '{missing}': no such folder"):
        run(missing)
    other = tmp_path / "other"
    build("dst", window=16, d_model=16, nhead=2, num_encoder_layers=1, num_decoder_layers=1,
          dim_feedforward=16).save_pretrained(other)
    with pytest.raises(PipelineError, match=f"event_dst model '{other}': holds a 'dst' model"):
        run(str(other))
    broken = tmp_path / "broken"
    build("event_dst", **TINY).save_pretrained(broken)
    (broken / "config.json").write_text(json.dumps({"model": "event_dst", "config": {**TINY, "d_model": 64}}))
    with pytest.raises(PipelineError, match=f"(?s)event_dst model '{broken}'.*shape mismatch"):
        run(str(broken))
    good = tmp_path / "good"
    build("event_dst", **TINY).save_pretrained(good)
    for option, message in (({"strength": "loud"}, "strength must be a number, 'taad' or 'auto', got 'loud'"),
                            ({"mode": "merge"}, "mode must be 'replace' or 'filter', got 'merge'"),
                            ({"thresholds": {"drive": 0.3}}, "thresholds has no value for class"),
                            ({"thresholds": 1.5}, r"thresholds must be in \[0, 1\)")):
        with pytest.raises(PipelineError, match=message):
            Pipeline(["taad"], [{"step": "event_dst", "input": "taad", "model": str(good), **option}],
                     "taad").apply({"taad": pred})


@pytest.mark.slow
def test_released_model_on_real_taad_predictions(footpass_dir, tmp_path):
    """``fpspot post --config recipes/pretrained/event_dst/pipeline.yaml`` on the released TAAD file: every key
    kept, only valid events, and better F1 than its input."""
    from fpspot.cli import main

    if not (RELEASED / "model.safetensors").is_file():
        pytest.skip("the released event DST is not in recipes/pretrained/event_dst")
    taad_path = footpass_dir / "playbyplay_TAAD_val_g18_g24.json"
    out_path = tmp_path / "clean.json"
    assert main(["post", "--config", str(RELEASED / "pipeline.yaml"), "--pred", f"taad={taad_path}",
                 "--out", str(out_path)]) == 0
    raw = json.loads(taad_path.read_text())
    taad = read_playbyplay(taad_path, "pred")
    clean = read_playbyplay(out_path, "pred")
    assert clean.keys == taad.keys == raw["keys"]
    for key in taad.keys:
        shirts = {(e.team, e.shirt) for e in taad.events[key]}
        assert clean.events[key]
        for e in clean.events[key]:
            assert 1 <= e.cls <= 8 and e.frame >= 0 and 0.15 <= e.score <= 1.0 and (e.team, e.shirt) in shirts
    gt = footpass_dir / "playbyplay_val_g18_g24.json"
    before, after = evaluate(taad, gt), evaluate(clean, gt)
    assert after.macro_f1 > before.macro_f1 + 0.05 and after.micro_f1 > before.micro_f1 + 0.05
    write_playbyplay(tmp_path / "again.json", clean)  # the output is a valid prediction file


def test_released_dst_pipeline_on_a_real_file_subset(footpass_dir, tmp_path):
    """``pipeline_dst.yaml`` (filter mode, thresholds auto) on the first 10 minutes of every half of the released
    TAAD+DST file: every key kept, only input events (unchanged), a few of them removed."""
    from fpspot.cli import main
    from fpspot.schema import ACTION_CLASSES

    if not (RELEASED / "model.safetensors").is_file():
        pytest.skip("the released event DST is not in recipes/pretrained/event_dst")
    dst = read_playbyplay(footpass_dir / "playbyplay_DST_val_g18_g24.json", "pred")
    subset = PlayByPlay("pred", [*dst.keys, "game_99_H1"],
                        {**{k: [e for e in dst.events[k] if e.frame < dst.events[k][0].frame + 25 * 600]
                            for k in dst.keys}, "game_99_H1": []})
    in_path, out_path = tmp_path / "dst.json", tmp_path / "clean.json"
    write_playbyplay(in_path, subset)
    assert main(["post", "--config", str(RELEASED / "pipeline_dst.yaml"), "--pred", f"taad={in_path}",
                 "--out", str(out_path)]) == 0
    clean = read_playbyplay(out_path, "pred")
    assert clean.keys == subset.keys and clean.events["game_99_H1"] == []
    step = Pipeline.load(RELEASED / "pipeline_dst.yaml").steps[0]
    assert step["thresholds"] == "auto" and set(step["class_rates"]) == set(ACTION_CLASSES)
    removed = 0
    for key in subset.keys:
        inputs = subset.events[key]
        out = clean.events[key]
        assert all(1 <= e.cls <= 8 and e.frame >= 0 and 0.0 <= e.score <= 1.0 for e in out)
        assert set(out) <= set(inputs)  # filter mode: input events, unchanged
        removed += len(inputs) - len(out)
    assert 0 < removed < 0.2 * sum(len(v) for v in subset.events.values())  # a clean spotter loses little
