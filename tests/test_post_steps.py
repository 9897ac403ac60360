"""Each post-processing step improves a controlled synthetic case whose answer is known; none modifies
its inputs; pipelines round-trip through YAML and reject unknown steps."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from fpspot.data.footpass import PlayByPlay, read_playbyplay, write_playbyplay
from fpspot.eval.metric import evaluate
from fpspot.post.ensemble import average_logits, fuse_events
from fpspot.post.events import HalfLogits
from fpspot.post.fit import FitOptions, cross_validate, fit_pipeline
from fpspot.post.gating import fit_thresholds, gate
from fpspot.post.jersey import reassign_by_logits, reassign_by_support
from fpspot.post.pipeline import STEPS, Pipeline, PipelineError, register_step
from fpspot.post.refine import measure_offset, refine_with_logits, shift
from fpspot.schema import GTEvent, Prediction


def synthetic_truth(games=(1, 2, 3), per_half=150, seed=0) -> PlayByPlay:
    """Ground truth: events 40..70 frames apart, shirts 1..11 per team, classes skewed like FOOTPASS."""
    rng = np.random.default_rng(seed)
    keys, events = [], {}
    for g in games:
        for h in (1, 2):
            key = f"game_{g}_H{h}"
            keys.append(key)
            frames = 100 + np.cumsum(rng.integers(40, 70, per_half))
            classes = rng.choice(np.arange(1, 9), per_half, p=[.38, .45, .04, .03, .03, .04, .015, .015])
            events[key] = [GTEvent(int(f), int(rng.integers(0, 2)), int(rng.integers(1, 12)), int(c), 1, 0)
                           for f, c in zip(frames, classes)]
    return PlayByPlay("gt", keys, events)


def noisy_model(gt: PlayByPlay, seed: int, recall=0.8, fp_rate=0.5, offset=0, jitter=2, wrong_shirt=0.0):
    """Predictions: true events kept with prob. ``recall`` (score ~ U(0.4, 1)), false ones (score
    ~ U(0.15, 0.6)) at ``fp_rate`` per true event, a constant ``offset``, some wrong shirts."""
    rng = np.random.default_rng(seed)
    events = {}
    for key in gt.keys:
        out = []
        for e in gt.events[key]:
            if rng.random() < recall:
                shirt = e.shirt if rng.random() >= wrong_shirt else (e.shirt % 11) + 1
                out.append(Prediction(e.frame + offset + int(rng.integers(-jitter, jitter + 1)), e.team, shirt, e.cls,
                                      float(rng.uniform(0.4, 1.0))))
        lo, hi = gt.events[key][0].frame, gt.events[key][-1].frame
        for _ in range(int(fp_rate * len(gt.events[key]))):
            out.append(Prediction(int(rng.integers(lo, hi)), int(rng.integers(0, 2)), int(rng.integers(1, 12)),
                                  int(rng.choice(np.arange(1, 9))), float(rng.uniform(0.15, 0.6))))
        events[key] = out
    return PlayByPlay("pred", list(gt.keys), events)


def test_gating_fitted_on_calibration_improves_fresh_data():
    gt = synthetic_truth()
    calib, fresh = noisy_model(gt, 1), noisy_model(gt, 2)
    thresholds = fit_thresholds(gt, calib, shrink=0, shared="macro")
    assert all(0.35 <= t <= 0.65 for t in thresholds.values())  # separates U(0.15, 0.6) FPs from U(0.4, 1) TPs
    before, after = evaluate(fresh, gt), evaluate(gate(fresh, thresholds), gt)
    assert after.micro_f1 > before.micro_f1 + 0.05 and after.macro_f1 > before.macro_f1 + 0.05


def test_shrinkage_pulls_rare_classes_to_the_prior():
    gt = synthetic_truth()
    calib = noisy_model(gt, 1)
    free = fit_thresholds(gt, calib, shrink=0, shared=0.15)
    shrunk = fit_thresholds(gt, calib, shrink=1e9, shared=0.15)
    assert set(shrunk.values()) == {0.15} and max(free.values()) > 0.3


def test_offset_is_measured_and_corrected():
    gt = synthetic_truth()
    late = noisy_model(gt, 3, offset=4, jitter=1, fp_rate=0.0)
    assert measure_offset(gt, late) == -4
    assert evaluate(shift(late, -4), gt, delta=1).micro_f1 > evaluate(late, gt, delta=1).micro_f1 + 0.3


def test_fusion_of_two_models_beats_each_alone():
    gt = synthetic_truth()
    a, b = noisy_model(gt, 4, recall=0.8), noisy_model(gt, 5, recall=0.8)
    fused = PlayByPlay("pred", gt.keys, {k: fuse_events([a.events[k], b.events[k]], [1, 1], window=6)
                                         for k in gt.keys})
    thresholds = fit_thresholds(gt, fused, shrink=0)
    best_alone = max(evaluate(gate(p, fit_thresholds(gt, p, shrink=0)), gt).micro_f1 for p in (a, b))
    assert evaluate(gate(fused, thresholds), gt).micro_f1 > best_alone + 0.03


def test_fuse_events_scores_frames_and_filters():
    a = [Prediction(100, 0, 5, 2, 0.8), Prediction(300, 0, 5, 2, 0.9)]
    b = [Prediction(104, 0, 5, 2, 0.4), Prediction(500, 1, 3, 1, 0.6)]
    fused = fuse_events([a, b], [1.0, 1.0], window=12)
    by_frame = {e.frame: e for e in fused}
    agreed = by_frame[101]  # score-weighted mean of 100 (0.8) and 104 (0.4): 101.33
    assert agreed.score == pytest.approx(0.6) and agreed[1:4] == (0, 5, 2)
    assert by_frame[300].score == pytest.approx(0.45) and by_frame[500].score == pytest.approx(0.3)
    assert [e.frame for e in fuse_events([a, b], min_models=2)] == [101]
    assert sorted(e.frame for e in fuse_events([a, b], require=[0])) == [101, 300]
    assert fuse_events([a, b], frame="seed", require=[0])[0].frame in (100, 300)


def test_average_logits():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(9, 26, 20)), rng.normal(size=(9, 26, 20))
    np.testing.assert_allclose(average_logits([x, y], [3, 1]), 0.75 * x + 0.25 * y, rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="align"):
        average_logits([x, y[..., :10]])


def test_logit_ensemble_recovers_events_each_model_misses():
    t = np.arange(400)
    bump = lambda c, s, f: (c, s, 6.0 * np.exp(-0.5 * ((t - f) / 3.0) ** 2))  # noqa: E731
    truth = [(2, 3, 100), (1, 16, 250)]
    rng = np.random.default_rng(1)
    models = []
    for _ in range(2):
        x = rng.normal(0, 1.2, size=(9, 26, 400))
        x[0] += 4.0
        for c, s, curve in (bump(*e) for e in truth):
            x[c, s] += curve
        models.append(x)
    from fpspot.post.peaks import logits_to_events

    jerseys = np.tile(np.arange(26)[:, None] % 13 + 1, (1, 400))

    def hits(events):
        return sum(any(e.cls == c and e.team == s // 13 and e.shirt == s % 13 + 1 and abs(e.frame - f) <= 3
                       and e.score >= 0.5 for e in events) for c, s, f in truth)

    def fps(events):
        return sum(e.score >= 0.5 for e in events) - hits(events)
    single = [fps(logits_to_events(x, jerseys)) for x in models]
    averaged = logits_to_events(average_logits(models), jerseys)
    assert hits(averaged) == 2 and fps(averaged) < min(single)


def _peak_logits(peak_frame: float, num_frames=200, slot=4, cls=2):
    t = np.arange(num_frames)
    x = np.zeros((9, 26, num_frames))
    x[0] = 3.0
    x[cls, slot] = 6.0 * np.exp(-0.5 * ((t - peak_frame) / 3.0) ** 2)
    return x


def test_refine_with_logits_moves_events_to_the_peak():
    jerseys = np.tile(np.arange(26)[:, None] % 13 + 4, (1, 200))  # slot s -> shirt s % 13 + 4: slot 4 -> 8
    logits = {"game_1_H1": HalfLogits(_peak_logits(90.0), jerseys, start_frame=1000)}
    pbp = PlayByPlay("pred", ["game_1_H1", "game_1_H2"], {"game_1_H1": [Prediction(1093, 0, 8, 2, 0.7),
                                                                        Prediction(1050, 1, 99, 2, 0.5)]})
    out = refine_with_logits(pbp, logits, radius=4)
    assert out.events["game_1_H1"] == [Prediction(1090, 0, 8, 2, 0.7), Prediction(1050, 1, 99, 2, 0.5)]
    assert out.keys == ["game_1_H1", "game_1_H2"] and out.events["game_1_H2"] == []
    # sub-frame peak at 90.4 plus a fractional offset of +0.3 rounds to 91
    logits = {"game_1_H1": HalfLogits(_peak_logits(90.4), jerseys, start_frame=1000)}
    moved = refine_with_logits(pbp, logits, radius=4, offset=0.3).events["game_1_H1"][0]
    assert moved.frame == 1091


def test_jersey_reassignment_by_support_and_by_logits():
    primary = PlayByPlay("pred", ["game_1_H1"], {"game_1_H1": [Prediction(100, 0, 7, 2, 0.6),
                                                               Prediction(300, 1, 4, 1, 0.6)]})
    support = PlayByPlay("pred", ["game_1_H1"], {"game_1_H1": [Prediction(103, 0, 9, 2, 0.9),
                                                               Prediction(301, 1, 4, 1, 0.9),
                                                               Prediction(299, 1, 6, 1, 0.95)]})
    out = reassign_by_support(primary, support, window=12, min_support_score=0.8).events["game_1_H1"]
    assert out == [Prediction(100, 0, 9, 2, 0.6), Prediction(300, 1, 4, 1, 0.6)]  # supported one stays
    assert reassign_by_support(primary, support, min_support_score=0.95).events["game_1_H1"][0].shirt == 7
    jerseys = np.tile(np.arange(26)[:, None] % 13 + 1, (1, 200))  # slot s -> shirt s % 13 + 1
    halves = {"game_1_H1": HalfLogits(_peak_logits(100.0, slot=4), jerseys)}  # slot 4 -> shirt 5
    events = PlayByPlay("pred", ["game_1_H1"], {"game_1_H1": [Prediction(101, 0, 2, 2, 0.5),
                                                              Prediction(101, 0, 5, 2, 0.5)]})
    out = reassign_by_logits(events, halves, radius=3, margin=0.3).events["game_1_H1"]
    assert [e.shirt for e in out] == [5, 5]


def test_no_step_modifies_its_inputs():
    gt = synthetic_truth(games=(1, 2))
    a, b = noisy_model(gt, 1), noisy_model(gt, 2, wrong_shirt=0.2)
    halves = {k: HalfLogits(_peak_logits(90.0, num_frames=12000), np.full((26, 12000), 8)) for k in gt.keys}
    snapshot = copy.deepcopy((gt, a, b))
    pipe = fit_pipeline(gt, {"a": a, "b": b}, FitOptions(weights=(0.5, 1.0), jersey_scores=(0.8, None)))
    pipe.apply({"a": a, "b": b})
    refine_with_logits(a, halves)
    reassign_by_logits(a, halves)
    cross_validate(gt, {"a": a, "b": b}, FitOptions(weights=(1.0,), jersey_scores=(None,)))
    assert (gt, a, b) == snapshot
    logit_before = halves[gt.keys[0]].logits.copy()
    Pipeline(["l"], [{"step": "peaks", "input": "l", "output": "e"}], "e").apply({"l": halves})
    np.testing.assert_array_equal(halves[gt.keys[0]].logits, logit_before)


def test_fitted_pipeline_improves_held_out_games_and_reports_them():
    gt = synthetic_truth(games=(1, 2, 3), seed=3)
    strong = noisy_model(gt, 10, recall=0.85, fp_rate=0.4, offset=2)
    weak = noisy_model(gt, 11, recall=0.7, fp_rate=1.0, wrong_shirt=0.1)
    cv = cross_validate(gt, {"strong": strong, "weak": weak})
    assert [r["game"] for r in cv.rows] == [1, 2, 3]
    for row in cv.rows:
        assert row["reference"] == "strong"
        assert row["macro_f1"] > row["inputs"]["strong"]["macro_f1"] + 0.02
        assert row["micro_f1"] > row["inputs"]["strong"]["micro_f1"] + 0.02
    assert "held-out game" in cv.table()
    pipe = cv.pipelines[1]
    assert pipe.info["fitted_on"] == [k for k in gt.keys if not k.startswith("game_1_")]
    assert {"step": "shift", "input": "strong", "frames": -1} in pipe.steps  # +2 measured, clipped to 1


def test_pipeline_yaml_round_trip_keys_and_errors(tmp_path):
    gt = synthetic_truth(games=(1,))
    a = noisy_model(gt, 1)
    a_with_empty = PlayByPlay("pred", a.keys + ["game_9_H1"], dict(a.events))
    pipe = Pipeline(["a"], [{"step": "shift", "input": "a", "frames": -1},
                            {"step": "gate", "input": "a", "thresholds": 0.5}], "a", {"note": "test"})
    path = pipe.save(tmp_path / "p.yaml", header="a header")
    again = Pipeline.load(path)
    assert again.to_dict() == pipe.to_dict() and path.read_text().startswith("# a header")
    out = again.apply({"a": a_with_empty})
    assert out.keys == a_with_empty.keys and out.events["game_9_H1"] == []
    assert all(e.score >= 0.5 for k in out.keys for e in out.events[k])
    with pytest.raises(PipelineError, match="unknown step 'bogus'"):
        Pipeline(["a"], [{"step": "bogus", "input": "a"}], "a")
    (tmp_path / "bad.yaml").write_text("format: fpspot-post/1\ninputs: [a]\noutput: a\nsteps:\n- {step: nope}\n")
    with pytest.raises(PipelineError, match=r"bad\.yaml.*unknown step 'nope'"):
        Pipeline.load(tmp_path / "bad.yaml")
    with pytest.raises(PipelineError, match="needs input"):
        pipe.apply({"b": a})
    with pytest.raises(PipelineError, match="bad parameters"):
        Pipeline(["a"], [{"step": "shift", "input": "a", "frame": 1}], "a").apply({"a": a})
    with pytest.raises(PipelineError, match="step 'event_dst': event_dst model 'm': no such folder"):
        Pipeline(["a"], [{"step": "event_dst", "input": "a", "model": "m"}], "a").apply({"a": a})


def test_config_errors_are_found_when_the_file_is_read(tmp_path):
    """A misspelt parameter, a stream nothing provides and an output no step writes are reported by
    ``Pipeline.load`` with the file, the step and the problem, before any step (a model, say) has run."""
    head = "format: fpspot-post/1\ninputs: [taad]\n"
    cases = {
        "typo": ("output: taad\nsteps:\n- {step: shift, input: taad, frames: -1}\n"
                 "- {step: gate, input: taad, treshold: 0.3}\n",
                 r"typo\.yaml.*steps\[1\] \(gate\): bad parameters.*treshold"),
        "stream": ("output: taad\nsteps:\n- {step: gate, input: nosuch, thresholds: 0.3}\n",
                   r"stream\.yaml.*steps\[0\] \(gate\): input 'nosuch' is neither a pipeline input"),
        "order": ("output: fused\nsteps:\n- {step: gate, input: fused, thresholds: 0.3}\n"
                  "- {step: fuse, inputs: [taad], output: fused}\n",
                  r"order\.yaml.*steps\[0\] \(gate\): input 'fused'"),
        "output": ("output: fused\nsteps:\n- {step: gate, input: taad, thresholds: 0.3}\n",
                   r"output\.yaml.*output 'fused' is neither a pipeline input nor a step's output"),
    }
    for name, (body, message) in cases.items():
        (tmp_path / f"{name}.yaml").write_text(head + body)
        with pytest.raises(PipelineError, match=message):
            Pipeline.load(tmp_path / f"{name}.yaml")
    (tmp_path / "good.yaml").write_text(head + "output: fused\nsteps:\n- {step: fuse, inputs: [taad], output: fused}\n"
                                        "- {step: gate, input: fused, thresholds: 0.3}\n")
    assert Pipeline.load(tmp_path / "good.yaml").output == "fused"
    (tmp_path / "shape.yaml").write_text("format: fpspot-post/1\ninputs: taad\noutput: taad\nsteps: []\n")
    with pytest.raises(PipelineError, match=r"shape\.yaml': 'inputs' must be a non-empty list of names, got 'taad'"):
        Pipeline.load(tmp_path / "shape.yaml")
    (tmp_path / "extra.yaml").write_text(head + "output: taad\nsteps: []\nstep: []\nthreshold: 0.5\n")
    with pytest.raises(PipelineError, match=r"extra\.yaml': unknown field\(s\) 'step' \(did you mean 'steps'\?\), "
                                            r"'threshold'"):
        Pipeline.load(tmp_path / "extra.yaml")


def test_bad_parameter_values_name_the_config_the_step_and_the_value(tmp_path):
    """Values a step cannot use stop the run with the config, the step and the value: a threshold that is not
    a number or is outside [0, 1], a fractional frame shift; a prediction file's path is read as an input."""
    gt = synthetic_truth(games=(1,))
    path = write_playbyplay(tmp_path / "a.json", noisy_model(gt, 1))
    cases = (("{step: gate, input: a, thresholds: {drive: high, pass: 0.3}}",
              r"steps\[0\] \(gate\): thresholds: the value of class 'drive' must be a number, got 'high'"),
             ("{step: gate, input: a, thresholds: 2.0}", r"steps\[0\] \(gate\): thresholds must be in \[0, 1\]"),
             ("{step: shift, input: a, frames: 2.7}", r"steps\[0\] \(shift\): frames must be a whole number, got 2.7"),
             ("{step: shift, input: a, frames: two}", r"steps\[0\] \(shift\): frames must be a whole number"))
    for step, message in cases:
        (tmp_path / "p.yaml").write_text(f"format: fpspot-post/1\ninputs: [a]\noutput: a\nsteps:\n- {step}\n")
        with pytest.raises(PipelineError, match=r"p\.yaml': " + message):
            Pipeline.load(tmp_path / "p.yaml").apply({"a": path})
    shifted = Pipeline(["a"], [{"step": "shift", "input": "a", "frames": 2.0}], "a").apply({"a": str(path)})
    assert shifted.events == shift(read_playbyplay(path), 2).events
    with pytest.raises(PipelineError, match="stream 'a' is a list, this step needs events"):
        Pipeline(["a"], [{"step": "shift", "input": "a", "frames": 1}], "a").apply({"a": [1, 2]})


def test_logit_steps_in_a_pipeline_equal_the_functions():
    """The logit-level steps run by name in a pipeline give what the functions give: average_logits over the
    halves both inputs have (the output still lists the other, empty) and peaks on the average; refine_logits
    and reassign_jersey_logits move an event that is 2 frames late and on the wrong team-mate."""
    from fpspot.post.peaks import logits_to_events

    rng = np.random.default_rng(3)
    jerseys = np.tile(np.arange(26)[:, None] % 13 + 1, (1, 200))  # slot s -> shirt s % 13 + 1
    x = {k: HalfLogits(_peak_logits(90.0 + i, slot=4) + rng.normal(0, 0.3, (9, 26, 200)), jerseys, 500)
         for i, k in enumerate(["game_1_H1", "game_1_H2"])}
    y = {"game_1_H1": HalfLogits(_peak_logits(94.0, slot=5) + rng.normal(0, 0.3, (9, 26, 200)), jerseys, 500)}
    avg = {"game_1_H1": HalfLogits(average_logits([x["game_1_H1"].logits, y["game_1_H1"].logits], [2.0, 1.0]),
                                   jerseys, 500)}  # game_1_H2 is not in y: dropped
    average = [{"step": "average_logits", "inputs": ["x", "y"], "weights": [2.0, 1.0], "output": "avg"}]
    peaks = Pipeline(["x", "y"], average + [{"step": "peaks", "input": "avg", "output": "events", "window": 25}],
                     "events").apply({"x": x, "y": y})
    assert peaks.keys == ["game_1_H1", "game_1_H2"] and peaks.events["game_1_H2"] == []
    assert peaks.events["game_1_H1"] == logits_to_events(avg["game_1_H1"].logits, jerseys, 500, "nms", 25)

    late = PlayByPlay("pred", ["game_1_H1"], {"game_1_H1": [Prediction(592, 0, 6, 2, 0.6)]})  # slot 5's shirt
    moved = Pipeline(["x", "y", "guess"], average + [
        {"step": "refine_logits", "input": "guess", "logits": "avg", "radius": 4},
        {"step": "reassign_jersey_logits", "input": "guess", "logits": "avg", "radius": 3, "margin": 0.1},
    ], "guess").apply({"x": x, "y": y, "guess": late})
    refined = refine_with_logits(late, avg, radius=4)
    expected = reassign_by_logits(refined, avg, radius=3, margin=0.1)
    assert refined.events != late.events and expected.events != refined.events  # both steps change the event
    assert moved.events["game_1_H1"] == expected.events["game_1_H1"]


def test_then_appends_a_one_input_pipeline():
    """``Pipeline.then`` runs a one-input pipeline on the output: the same events as applying the two in turn;
    the appended pipeline's own streams are renamed, so they cannot clash; fit_pipeline appends it unfitted."""
    gt = synthetic_truth(games=(1, 2), seed=5)
    a, b = noisy_model(gt, 1), noisy_model(gt, 2)
    first = Pipeline(["a", "b"], [{"step": "fuse", "inputs": ["a", "b"], "output": "fused"}], "fused", {"n": 1})
    second = Pipeline(["x"], [{"step": "shift", "input": "x", "frames": 2, "output": "fused"},
                              {"step": "gate", "input": "fused", "thresholds": 0.6}], "fused", {"m": 2})
    both = first.then(second)
    assert both.inputs == ["a", "b"] and both.output == "then.fused" and both.info == {"n": 1, "then": {"m": 2}}
    assert both.steps[1] == {"step": "shift", "input": "fused", "frames": 2, "output": "then.fused"}
    assert both.apply({"a": a, "b": b}).events == second.apply({"x": first.apply({"a": a, "b": b})}).events
    with pytest.raises(PipelineError, match="must have one input"):
        second.then(first)
    fitted = fit_pipeline(gt, {"a": a, "b": b}, FitOptions(weights=(1.0,), jersey_scores=(None,), then=second))
    alone = fit_pipeline(gt, {"a": a, "b": b}, FitOptions(weights=(1.0,), jersey_scores=(None,)))
    assert fitted.steps[:-2] == alone.steps and fitted.steps[-1]["step"] == "gate"
    assert fitted.info["calibration_before_then"] == alone.info["calibration"]
    after = evaluate(fitted.apply({"a": a, "b": b}), gt)
    assert fitted.info["calibration"] == {"macro_f1": round(after.macro_f1, 4), "micro_f1": round(after.micro_f1, 4)}


def test_register_step_extends_the_registry():
    assert "event_dst" in STEPS
    name = "test_only_drop_all"
    try:
        @register_step(name)
        def _drop(streams, input, output=None):
            src = streams[input]
            return {output or input: PlayByPlay("pred", src.keys, {})}

        with pytest.raises(ValueError, match="already registered"):
            register_step(name, _drop)
        gt = synthetic_truth(games=(1,))
        out = Pipeline(["a"], [{"step": name, "input": "a"}], "a").apply({"a": noisy_model(gt, 1)})
        assert len(out) == 0 and out.keys == gt.keys
    finally:
        STEPS.pop(name, None)
