"""The corruption model of the event-sequence DST (fpspot.data.corrupt)."""

from __future__ import annotations

import dataclasses
import math
from importlib import resources

import numpy as np
import pytest

from fpspot.data.corrupt import (
    BUCKETS, OUTCOMES, CorruptionParams, SamplerTables, bucket_of, corrupt_half, corrupt_playbyplay, draw_index,
    fit_corruption, half_seed, label_predictions, nms_window_of, parent_score_tilt, per_class_hists,
    player_possessions, possession_of, scaled_outcome, shrunk_fractions, strength_scales, twin_parents,
)
from fpspot.data.footpass import PlayByPlay, read_playbyplay, write_playbyplay
from fpspot.eval import evaluate
from fpspot.schema import ACTION_CLASSES, GTEvent, Prediction

# class frequencies of the 91,327 training events (drive .. block)
CLASS_PRIOR = np.array([35527, 45621, 2156, 1730, 1097, 3642, 285, 1269], dtype=float) / 91327


def synthetic_gt(seed: int, halves: int = 6, events_per_half: int = 1500) -> PlayByPlay:
    """Play-by-play with FOOTPASS-like density (~75 frames between actions), possession runs, box/replay mix."""
    rng = np.random.default_rng(seed)
    keys, events = [], {}
    for h in range(halves):
        key = f"game_{h // 2 + 1}_H{h % 2 + 1}"
        frame, team, out = 100, 0, []
        for _ in range(events_per_half):
            frame += 1 + int(rng.exponential(70))
            team = team if rng.random() < 0.8 else 1 - team
            replay = int(rng.random() < 0.06)
            box = 0 if replay else int(rng.random() < 0.88)
            out.append(GTEvent(frame, team, int(rng.integers(1, 15)), int(rng.choice(8, p=CLASS_PRIOR)) + 1,
                               box, replay))
        keys.append(key)
        events[key] = out
    return PlayByPlay("gt", keys, events)


@pytest.fixture(scope="module")
def params() -> CorruptionParams:
    return CorruptionParams.load()


@pytest.fixture(scope="module")
def synth() -> PlayByPlay:
    return synthetic_gt(0)


def test_packaged_params_are_valid(params):
    params.validate()
    assert params.source["num_gt"] == 3855
    for c in ("1", "2"):  # without a box TAAD rarely finds the event
        assert params.outcome[c]["box"][0] > params.outcome[c]["nobox"][0] + 0.3


def test_draw_index_draws_exactly_what_rng_choice_draws(params):
    """The corruption's fast categorical draw consumes the generator like ``rng.choice(n, p=p)`` and returns the
    same index, so noise drawn before and after the speed-up is identical (zero entries, unnormalised
    cumulative rounding and the packaged tables included)."""
    rng = np.random.default_rng(0)
    tables = [rng.dirichlet(np.ones(n)) for n in (1, 2, 5, 9, 101)]
    tables += [np.array([0.0, 0.3, 0.0, 0.7]), np.array([0.2, 0.0, 0.8]), np.array(params.class_confusion[3]),
               np.array(params.jitter_hist["probs"]), np.array(scaled_outcome(params.outcome["2"]["box"], 0.62))]
    for p in tables:
        fast, reference = np.random.default_rng(7), np.random.default_rng(7)
        drawn = [draw_index(fast, p) for _ in range(3000)]
        assert drawn == [int(reference.choice(len(p), p=p)) for _ in range(3000)]
        assert fast.random() == reference.random()  # the generators are in the same state
        assert all(p[i] > 0 for i in drawn)


def test_deterministic_and_seed_dependent(params, synth):
    a = corrupt_playbyplay(synth, params, seed=3)
    b = corrupt_playbyplay(synth, params, seed=3)
    c = corrupt_playbyplay(synth, params, seed=4)
    assert a.to_json() == b.to_json()
    assert a.to_json() != c.to_json()
    # a half's output does not depend on the other halves
    one = corrupt_playbyplay(synth.subset(synth.keys[:1]), params, seed=3)
    assert one.events[synth.keys[0]] == a.events[synth.keys[0]]


def test_prebuilt_tables_draw_what_per_call_tables_draw(params, synth):
    """Windows are corrupted with tables built once per parameter set: the draws must be the per-call ones,
    for every kind (the packaged fit has per-class offsets and carries) and at scaled strengths."""
    tables = SamplerTables.of(params)
    assert tables.class_jitter and tables.ghost_anchor is not None  # the per-class and anchored paths are used
    for n, key in enumerate(synth.keys[:3]):
        for fp_scale, miss_scale in ((1.0, 1.0), (0.2, 1.8), (2.5, 0.4)):
            once = corrupt_half(synth.events[key], params, half_seed(n, key), return_kinds=True,
                                fp_scale=fp_scale, miss_scale=miss_scale, tables=tables)
            per_call = corrupt_half(synth.events[key], params, half_seed(n, key), return_kinds=True,
                                    fp_scale=fp_scale, miss_scale=miss_scale)
            assert once == per_call and len(set(once[1])) >= 6


def test_output_is_a_valid_prediction_file(params, synth, tmp_path):
    pred = corrupt_playbyplay(synth.subset(synth.keys[:2]), params, seed=0)
    path = write_playbyplay(tmp_path / "pred.json", pred)
    back = read_playbyplay(path, "pred")
    assert back.keys == pred.keys
    for key in pred.keys:
        assert len(back.events[key]) == len(pred.events[key]) > 0
        assert all(isinstance(p, Prediction) and 0.0 <= p.score <= 1.0 and p.frame >= 0 for p in back.events[key])
    assert evaluate(back, synth.subset(synth.keys[:2])).overall.tp > 0


def test_sampler_follows_its_parameters(params, synth):
    """Generative kinds of the output match the parameters within 4 standard errors (binomial / Poisson)."""
    outcome_n = {}  # (class, bucket) -> [events, detected]
    kinds_count = {"ghost": 0, "duplicate": 0}
    expected_ghosts = expected_dups = 0.0
    for key in synth.keys:
        events = synth.events[key]
        preds, kinds = corrupt_half(events, params, half_seed(7, key), return_kinds=True)
        for e in events:
            cell = outcome_n.setdefault((e.cls, bucket_of(e)), [0, 0])
            cell[0] += 1
            expected_ghosts += params.ghost_rate[e.cls]
        for k in kinds:
            kinds_count[k] = kinds_count.get(k, 0) + 1
        expected_dups += sum(params.dup_rate[p.cls] for p, k in zip(preds, kinds) if k != "duplicate")
    n_events = sum(v[0] for v in outcome_n.values())
    expected_detected = sum(params.outcome[str(c)][b][0] * v[0] for (c, b), v in outcome_n.items())
    var_detected = sum(params.outcome[str(c)][b][0] * (1 - params.outcome[str(c)][b][0]) * v[0]
                       for (c, b), v in outcome_n.items())
    # detections are dropped only at frame < 0, never here (events start at frame 100 + jitter >= -50)
    assert abs(kinds_count["detected"] - expected_detected) <= 4 * math.sqrt(var_detected)
    assert abs(kinds_count["ghost"] - expected_ghosts) <= 4 * math.sqrt(expected_ghosts)
    assert abs(kinds_count["duplicate"] - expected_dups) <= 4 * math.sqrt(expected_dups)
    assert n_events == 9000


def test_refit_recovers_fitted_rates(params, synth):
    """Corrupt a long synthetic sequence, refit (no calibration), compare with the generating parameters.

    Tolerances: 4 standard errors of each estimate plus an allowance for label ambiguity, which the
    labelling cannot avoid at FOOTPASS density: a ghost landing within 12 frames of a missed event of its
    class is labelled wrong_jersey / wrong_team, and a duplicate can be absorbed as a detection. Measured
    on this density that moves detection rates of boxed events by < 0.03 and ghost rates down by < 25 %.
    """
    pred = corrupt_playbyplay(synth, params, seed=11)
    refit = fit_corruption(synth, pred, calibrate_iters=0, shrinkage=0.0)
    counts = {}
    for key in synth.keys:
        for e in synth.events[key]:
            counts[(e.cls, bucket_of(e))] = counts.get((e.cls, bucket_of(e)), 0) + 1
    for c in (1, 2):  # drive, pass: thousands of boxed events each
        p, n = params.outcome[str(c)]["box"][0], counts[(c, "box")]
        q = refit.outcome[str(c)]["box"][0]
        assert abs(q - p) <= 4 * math.sqrt(p * (1 - p) / n) + 0.03, (c, p, q)
    for c in (1, 2):
        n = sum(v for (cls, _), v in counts.items() if cls == c)
        rate = params.ghost_rate[c]
        assert rate * 0.75 - 4 * math.sqrt(rate / n) <= refit.ghost_rate[c] <= rate + 4 * math.sqrt(rate / n)
    total_random = sum(params.random_rate_per_min[1:])
    refit_random = sum(refit.random_rate_per_min[1:])
    n_random = refit.source["counts"]["random"]
    assert abs(refit_random - total_random) <= 4 * total_random / math.sqrt(n_random) + 0.1 * total_random
    p, q = params.dup_rate[1], refit.dup_rate[1]
    n = refit.source["num_pred"]
    assert abs(q - p) <= 4 * math.sqrt(p / (n * CLASS_PRIOR[0])) + 0.03

    # jitter: same spread; score medians of detections ordered above ghosts as fitted
    def sd(h):
        o, w = np.asarray(h["offsets"]), np.asarray(h["probs"])
        m = (o * w).sum()
        return math.sqrt(((o - m) ** 2 * w).sum())
    assert abs(sd(refit.jitter_hist) - sd(params.jitter_hist)) < 1.0
    for kind in ("detected", "ghost"):
        assert abs(refit.score_quantiles[kind]["all"][10] - params.score_quantiles[kind]["all"][10]) < 0.03


def test_false_positive_structure_is_reproduced(params, synth):
    """Random false positives come in bursts (several players at once, often one class) and ghosts sit next to
    the detection of their event, as in the real TAAD output: corrupting a synthetic sequence and labelling it
    gives back the burst sizes and repeat rates fitted on the real file; without those parameters it does not."""
    import copy

    target = params.source["random_bursts_observed"]
    target_size = float(np.dot(np.arange(1, len(params.random_burst_size) + 1), params.random_burst_size))
    flat = copy.deepcopy(params)
    flat.random_burst_size, flat.ghost_anchor_hist, flat.dup_at_player_event = [1.0], None, 0.0
    refits = {name: fit_corruption(synth, corrupt_playbyplay(synth, p, seed=11), calibrate_iters=0, shrinkage=0.0)
              for name, p in (("fitted", params), ("flat", flat))}
    sizes = {name: float(np.dot(np.arange(1, len(r.random_burst_size) + 1), r.random_burst_size))
             for name, r in refits.items()}
    observed = {name: r.source["random_bursts_observed"] for name, r in refits.items()}
    for key in ("random_burst_same_player", "random_burst_same_class"):
        assert abs(observed["fitted"][key] - target[key]) < 0.05, (key, observed["fitted"][key], target[key])
    assert abs(sizes["fitted"] - target_size) < 0.15
    assert observed["flat"]["random_burst_same_player"] < 0.1 and sizes["flat"] < 1.25

    def spread(hist):
        return math.sqrt(float(np.dot(np.square(hist["offsets"]), hist["probs"])))

    assert abs(spread(refits["fitted"].ghost_anchor_hist) - spread(params.ghost_anchor_hist)) < 2.0
    assert spread(refits["flat"].ghost_anchor_hist) > spread(params.ghost_anchor_hist) + 1.5


def test_class_scores_shrunk_toward_pooled():
    """A class's score quantiles are its own shrunk toward the kind's pooled ones by n / (n + score_shrinkage);
    a class under ``min_score_samples`` predictions uses the pooled ones. Controlled case: every ground-truth
    event detected exactly, at score 0.9 except blocks at 0.5."""
    gt = synthetic_gt(3, halves=2)
    pred = {k: [Prediction(e.frame, e.team, e.shirt, e.cls, 0.5 if e.cls == 8 else 0.9) for e in gt.events[k]]
            for k in gt.keys}
    counts = np.bincount([e.cls for k in gt.keys for e in gt.events[k]], minlength=9)
    assert 10 <= counts[8] and 0 < counts[7] < counts[8]
    fit = fit_corruption(gt, PlayByPlay("pred", gt.keys, pred), calibrate_iters=0, score_shrinkage=10.0,
                         min_score_samples=int(counts[7]) + 1)
    table = fit.score_quantiles["detected"]
    pooled = np.asarray(table["all"])
    assert pooled[10] == pytest.approx(0.9)  # blocks are ~1 % of the detections
    weight = counts[8] / (counts[8] + 10.0)
    np.testing.assert_allclose(table["8"], weight * 0.5 + (1 - weight) * pooled)
    assert 0.5 < table["8"][10] < 0.9
    drives = counts[1] / (counts[1] + 10.0)  # thousands of drives: their own 0.9 nearly everywhere
    np.testing.assert_allclose(table["1"], drives * 0.9 + (1 - drives) * pooled)
    assert table["1"][1:] == pytest.approx([0.9] * 20)
    assert "7" not in table  # tackles: fewer than min_score_samples, pooled
    assert fit.source["score_shrinkage"] == 10.0


def test_parent_score_tilt_on_a_controlled_case():
    """Duplicates only on parents scored above 0.8: with quintile bins of uniform parent scores the top bin
    (20 % of the parents) gets weight 5, the others 0; the weights average 1 over the parents."""
    parents = np.linspace(0.0, 1.0, 1001)[:-1]
    dup_parents = parents[parents > 0.8]
    tilt = parent_score_tilt(parents, dup_parents, bins=5)
    np.testing.assert_allclose(tilt["edges"], [0.0, 0.2, 0.4, 0.6, 0.8, 1.0], atol=1e-3)
    np.testing.assert_allclose(tilt["weights"], [0, 0, 0, 0, 5], atol=0.03)
    assert parent_score_tilt(parents, [], bins=5) is None and parent_score_tilt(parents, dup_parents, 0) is None


def test_duplicates_repeat_confident_parents_below_their_score(footpass_dir, params, synth):
    """Fitted with ``dup_tilt_bins`` on the real TAAD file, duplicates hang mostly on high-scored predictions
    (TAAD repeats its confident detections) and score their parent's score times a fitted ratio: refitting a
    corrupted sequence gives back a rising tilt, the ratio's median, and no duplicate scored like its parent;
    the packaged fit (no tilt, capped draws) scores some duplicates exactly like their parent."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    taad = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    tilted = fit_corruption(gt, taad, calibrate_iters=0, dup_tilt_bins=5)
    assert params.dup_parent_tilt is None and params.dup_score_ratio is None
    assert tilted.dup_parent_tilt["weights"][-1] > 5 * tilted.dup_parent_tilt["weights"][0]
    refit = fit_corruption(synth, corrupt_playbyplay(synth, tilted, seed=4), calibrate_iters=0, dup_tilt_bins=5)
    weights = refit.dup_parent_tilt["weights"]
    assert min(weights[-2:]) > 2 * max(weights[:2])
    assert abs(refit.dup_score_ratio[10] - tilted.dup_score_ratio[10]) < 0.04
    assert refit.dup_score_ratio[-1] < 1.0  # never the parent's own score
    capped = fit_corruption(synth, corrupt_playbyplay(synth, params, seed=4), calibrate_iters=0, dup_tilt_bins=5)
    assert capped.dup_score_ratio[-1] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="'dup_score_ratio' must be 21 ascending quantiles"):
        CorruptionParams.from_json({**params.to_json(), "dup_score_ratio": [0.5, 0.4]})
    with pytest.raises(ValueError, match="'dup_parent_tilt' needs ascending 'edges'"):
        CorruptionParams.from_json({**params.to_json(), "dup_parent_tilt": {"edges": [0, 1], "weights": [1, 2]}})


def test_per_class_offsets_shrunk_toward_pooled():
    """Per-class jitter histograms and duplicate directions: own counts plus ``pseudo_count`` pooled ones."""
    hists = per_class_hists({1: [5] * 30, 2: []}, pooled=[0] * 10 + [5] * 10, window=5, pseudo_count=10)
    assert set(hists) == {str(c) for c in range(1, 9)} and hists["1"]["offsets"] == list(range(-5, 6))
    assert hists["1"]["probs"][10] == pytest.approx((30 + 10 * 0.5) / 40)  # offset +5: own 30 + pooled 10 * 0.5
    assert hists["1"]["probs"][5] == pytest.approx(10 * 0.5 / 40)  # offset 0: pooled only
    assert hists["2"]["probs"][5] == pytest.approx(0.5)  # no values of its own: the pooled histogram
    counts = np.zeros((9, 2))
    counts[1] = [30, 10]  # class 1: 30 after, 10 before
    counts[2] = [0, 40]
    after = shrunk_fractions(counts, pseudo_count=10)
    assert after[1] == pytest.approx((30 + 10 * 0.375) / 50) and after[2] == pytest.approx(10 * 0.375 / 50)
    assert after[3] == pytest.approx(0.375) and after[0] == 0.5


def _tail_and_after(gt: PlayByPlay, pred: PlayByPlay) -> dict[int, tuple[float, float]]:
    """Per class (drive 1, pass 2): share of detections more than 12 frames late, share of duplicates after
    their parent, as the fit labels them."""
    late, dups = {1: [], 2: []}, {1: [], 2: []}
    for key in gt.keys:
        labels = label_predictions(gt.events[key], pred.events[key])
        for p, kind, off in zip(labels.predictions, labels.kinds, labels.offset):
            if p[3] in late and kind == "detected":
                late[p[3]].append(off > 12)
            if p[3] in dups and kind == "duplicate":
                dups[p[3]].append(off > 0)
    return {c: (float(np.mean(late[c])), float(np.mean(dups[c]))) for c in late}


def test_per_class_offsets_follow_taad(footpass_dir, params, synth):
    """Fitted with ``per_class_offsets`` (as the packaged fit is) on the real TAAD file, drives are found late
    more often than passes and repeated after their parent, passes before it; TAAD's NMS leaves no duplicate
    within 25 frames. A corruption drawn from that fit shows the same per-class asymmetries when labelled again;
    a fit with pooled offsets shows neither."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    taad = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    fitted = fit_corruption(gt, taad, calibrate_iters=0, per_class_offsets=30)
    pooled_fit = fit_corruption(gt, taad, calibrate_iters=0)
    assert pooled_fit.jitter_hist_per_class is None and pooled_fit.dup_after is None and pooled_fit.dup_min_gap == 0
    assert params.source["per_class_offsets"] == 30 and params.dup_min_gap == 26

    def late(hist):
        offsets, probs = np.asarray(hist["offsets"]), np.asarray(hist["probs"])
        return probs[offsets > 12].sum()

    assert late(fitted.jitter_hist_per_class["1"]) > 2 * late(fitted.jitter_hist_per_class["2"])
    assert fitted.dup_after[1] > 0.65 and fitted.dup_after[2] < 0.45 and fitted.dup_min_gap == 26
    real = _tail_and_after(gt, taad)
    per_class = _tail_and_after(gt, corrupt_playbyplay(gt, fitted, seed=3))
    pooled = _tail_and_after(gt, corrupt_playbyplay(gt, pooled_fit, seed=3))
    assert per_class[1][0] > 1.5 * per_class[2][0] and real[1][0] > 1.5 * real[2][0]
    assert pooled[1][0] < 1.5 * pooled[2][0]
    assert per_class[1][1] > pooled[1][1] and per_class[1][1] == pytest.approx(real[1][1], abs=0.05)
    assert per_class[2][1] < pooled[2][1]
    refit = fit_corruption(synth, corrupt_playbyplay(synth, fitted, seed=4), calibrate_iters=0, per_class_offsets=30)
    assert refit.dup_after[1] > 0.65
    assert late(refit.jitter_hist_per_class["1"]) > late(refit.jitter_hist_per_class["2"])
    for bad, message in (({"dup_after": [0.5] * 3}, "'dup_after' must be 9 probabilities"),
                         ({"jitter_hist_per_class": {"1": fitted.jitter_hist}}, "one histogram per class id"),
                         ({"dup_min_gap": -1}, "'dup_min_gap' must be frames")):
        with pytest.raises(ValueError, match=message):
            CorruptionParams.from_json({**fitted.to_json(), **bad})


def test_duplicates_keep_the_minimum_gap(params, synth):
    """With ``dup_min_gap`` no duplicate -- offset or on its player's other action -- lands nearer its parent
    than the gap; without it the jitter of on-action duplicates puts some closer."""
    base = dataclasses.replace(params, ghost_rate=[0.0] * 9, random_rate_per_min=[0.0] * 9, dup_rate=[0.0] + [0.5] * 8,
                               dup_at_player_event=0.8, dup_min_gap=0, carry_rate_per_min=None)

    def near_share(p: CorruptionParams) -> float:
        near = []
        for key in synth.keys:
            preds, kinds = corrupt_half(synth.events[key], p, half_seed(7, key), return_kinds=True)
            parents = [q for q, k in zip(preds, kinds) if k != "duplicate"]
            for q, k in zip(preds, kinds):
                if k == "duplicate":
                    gaps = [abs(q.frame - r.frame) for r in parents if r[1:4] == q[1:4]]
                    near.append(min(gaps) < 40)
        return float(np.mean(near))

    assert near_share(dataclasses.replace(base, dup_min_gap=40)) < 0.03 < 0.15 < near_share(base)


def test_possessions_are_runs_of_one_players_consecutive_events():
    events = [GTEvent(100, 0, 7, 2, 1, 0), GTEvent(10, 0, 7, 1, 1, 0), GTEvent(60, 0, 7, 1, 1, 0),
              GTEvent(150, 1, 4, 7, 1, 0), GTEvent(151, 1, 4, 1, 1, 0)]  # file order is not frame order
    runs = player_possessions(events)
    assert runs == {(0, 7): [(10, 60, 1), (60, 100, 2)]}  # 150 -> 151 has no frame strictly inside
    assert possession_of(runs, Prediction(30, 0, 7, 1, 0.5)) == 1
    assert possession_of(runs, Prediction(60, 0, 7, 1, 0.5)) == -1  # on an event, not inside a possession
    assert possession_of(runs, Prediction(30, 0, 8, 1, 0.5)) == -1  # another player
    assert possession_of(runs, Prediction(120, 0, 7, 1, 0.5)) == -1  # after his last event


def _carries_per_class(gt: PlayByPlay, pred: PlayByPlay) -> np.ndarray:
    counts = np.zeros(9)
    for key in gt.keys:
        labels = label_predictions(gt.events[key], pred.events[key], carry=True)
        for p, kind in zip(labels.predictions, labels.kinds):
            counts[p[3]] += kind == "carry"
    return counts


@pytest.mark.slow
def test_carry_false_positives_follow_taad(footpass_dir, params, synth):
    """TAAD fires on a player inside his own possession (mostly drives, between his reception and his next
    touch). Fitted with ``carry`` (as the packaged fit is), the corruption reproduces those false positives --
    labelled again they come out near the real counts -- where a fit without (ghosts and randoms only) makes a
    fraction of them. Generated carries lie strictly inside a possession of their player and never within
    ``dup_min_gap`` of a detection, ghost or random false positive of the same player and class."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    taad = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    fitted = fit_corruption(gt, taad, calibrate_iters=2, per_class_offsets=30, carry=True)
    plain = fit_corruption(gt, taad, calibrate_iters=0)
    assert plain.carry_rate_per_min is None and "carry" not in plain.score_quantiles
    assert params.carry_rate_per_min is not None and "carry" in params.score_quantiles
    assert int(np.argmax(fitted.carry_rate_per_min)) == 1  # drives
    real = _carries_per_class(gt, taad)
    corrupted = np.mean([_carries_per_class(gt, corrupt_playbyplay(gt, fitted, seed=s)) for s in (1, 2)], axis=0)
    pooled = _carries_per_class(gt, corrupt_playbyplay(gt, plain, seed=1))
    assert real[1] > 100 and abs(corrupted[1] - real[1]) < 0.2 * real[1] and pooled[1] < 0.5 * real[1]
    key = synth.keys[0]
    preds, kinds = corrupt_half(synth.events[key], fitted, half_seed(3, key), return_kinds=True)
    runs = player_possessions(synth.events[key])
    carries = [p for p, k in zip(preds, kinds) if k == "carry"]
    assert len(carries) > 20 and all(possession_of(runs, p) >= 0 for p in carries)
    before = [p for p, k in zip(preds, kinds) if k not in ("duplicate", "carry")]
    gaps = [abs(p.frame - q.frame) for p in carries for q in before if q[1:4] == p[1:4]]
    assert gaps and min(gaps) >= fitted.dup_min_gap == 26
    with pytest.raises(ValueError, match="'carry_rate_per_min' must be 9 non-negative rates"):
        CorruptionParams.from_json({**fitted.to_json(), "carry_rate_per_min": [1.0]})


def test_twin_parents_on_a_controlled_case():
    """A ghost is the twin of the nearest higher-scored detection or ghost of its player in another class within
    the window; never of a twin, a duplicate or a random, never in its own class or on another player."""
    P = Prediction
    preds = [P(100, 0, 7, 2, .9), P(104, 0, 7, 1, .8), P(106, 0, 7, 8, .7), P(103, 0, 7, 2, .6),  # 0..3
             P(130, 0, 7, 6, .5), P(101, 1, 7, 1, .5), P(300, 0, 9, 1, .9), P(305, 0, 9, 3, .4),  # 4..7
             P(500, 0, 4, 1, .9), P(506, 0, 4, 2, .8)]  # 8..9
    kinds = ["detected", "ghost", "ghost", "ghost", "ghost", "ghost", "random", "ghost", "ghost", "ghost"]
    assert twin_parents(preds, kinds, window=12) == [-1, 0, 0, -1, -1, -1, -1, -1, -1, 8]
    # 1, 2: twins of the detection 0 (1 is nearer to 2, but a twin is no parent); 3: 0 has its class and 1, 2 are
    # twins; 4: 30 frames away; 5: other team; 7: its neighbour is a random; 9: a twin of the ghost 8
    kinds[0] = "duplicate"  # duplicates have no twins: 1 is no twin, so it is the parent of 2 and 3
    assert twin_parents(preds, kinds, window=12)[:4] == [-1, -1, 1, 1]


def _twin_pairs(pred: PlayByPlay, window: int = 12) -> float:
    """Pairs of predictions of one player in different classes within ``window`` frames, per 1000 predictions."""
    pairs = total = 0
    for key in pred.keys:
        rows = sorted(pred.events[key])
        total += len(rows)
        for i, p in enumerate(rows):
            for q in rows[i + 1:]:
                if q[0] - p[0] > window:
                    break
                pairs += q[1:3] == p[1:3] and q[3] != p[3]
    return 1000.0 * pairs / max(total, 1)


@pytest.mark.slow
def test_twins_follow_taad(footpass_dir, synth):
    """TAAD fires several classes on one player at once: 184 pairs of one player's predictions in different
    classes within 12 frames per 1000 predictions on games 18/24, of which the packaged fit (ghosts placed one by
    one) makes under half. Fitted with ``twins``, the corrupted ground truth has as many (within 15 %), and a
    refit on a synthetic sequence corrupted with the twin parameters gives their rates and offsets back."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    taad = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    twins = fit_corruption(gt, taad, calibrate_iters=1, per_class_offsets=30, carry=True, twins=True)
    plain = fit_corruption(gt, taad, calibrate_iters=1, per_class_offsets=30, carry=True)
    assert plain.twin_rate is None and twins.source["counts"] == plain.source["counts"]  # twins are labelled ghosts
    assert sum(twins.ghost_rate) < sum(plain.ghost_rate)  # ... but fitted apart from the other ghosts
    real = _twin_pairs(taad)
    corrupted = {name: np.mean([_twin_pairs(corrupt_playbyplay(gt, p, seed=s)) for s in (1, 2)])
                 for name, p in (("twins", twins), ("plain", plain))}
    assert real > 150 and abs(corrupted["twins"] - real) < 0.15 * real, (real, corrupted)
    assert corrupted["plain"] < 0.5 * real, (real, corrupted)
    assert sum(sum(twins.source["per_class"][f"twin_{g}"]) for g in ("detected", "ghost")) > 500
    # on a synthetic sequence: generate with the fitted twins, refit without calibration, compare
    refit = fit_corruption(synth, corrupt_playbyplay(synth, twins, seed=5), calibrate_iters=0, shrinkage=0.0,
                           per_class_offsets=30, carry=True, twins=True)
    for group in ("detected", "ghost"):
        for c in (1, 2):  # drive and pass parents: hundreds of twins each
            p, q = twins.twin_rate[group][c], refit.twin_rate[group][c]
            assert abs(q - p) < 0.3 * p + 0.02, (group, c, p, q)
    offsets = np.abs(np.asarray(refit.twin_offset_hist["offsets"]))
    assert abs(np.dot(offsets, refit.twin_offset_hist["probs"]) - np.dot(offsets, twins.twin_offset_hist["probs"])) < 1
    bad = {**twins.to_json(), "twin_confusion": None}
    with pytest.raises(ValueError, match="'twin_rate', 'twin_confusion' and 'twin_offset_hist' go together"):
        CorruptionParams.from_json(bad)
    bad = {**twins.to_json(), "twin_rate": {"detected": [0.1] * 9}}
    with pytest.raises(ValueError, match="'twin_rate' needs one rate list per parent group"):
        CorruptionParams.from_json(bad)


@pytest.mark.slow
def test_packaged_fit_is_reproduced(footpass_dir, params, tmp_path):
    """``python recipes/fit_corruption.py`` with the options recorded in the packaged file gives the packaged file
    back, so the noise the released event DST was trained on can be regenerated (a changed order of random
    draws in the generator changes the calibration and fails here)."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    taad = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    src = params.source
    refit = fit_corruption(gt, taad, calibrate_iters=src["calibration"]["iters"],
                           calibrate_seeds=src["calibration"]["seeds"], spotter_nms=params.spotter_nms,
                           dup_tilt_bins=len(params.dup_parent_tilt["weights"]) if params.dup_parent_tilt else 0,
                           per_class_offsets=src.get("per_class_offsets"), carry=params.carry_rate_per_min is not None,
                           twins=params.twin_rate is not None)
    packaged, fresh = params.to_json(), refit.to_json()
    assert fresh["source"]["counts"] == packaged["source"]["counts"]
    for key in packaged:
        if key != "source":
            assert fresh[key] == packaged[key], key
    # and byte for byte: the file the recipe writes (it records the input files by name) is the packaged file,
    # every key included (the unused ones as null)
    refit.source = {**refit.source, "gt": "playbyplay_val_g18_g24.json", "pred": "playbyplay_TAAD_val_g18_g24.json"}
    packaged_file = resources.files("fpspot.data").joinpath("corruption_taad.json").read_bytes()
    assert refit.save(tmp_path / "refit.json").read_bytes() == packaged_file


def test_fit_matches_official_counts(footpass_dir):
    """On the real TAAD file the labels' ``detected`` core is the official matcher's: per class, the detections
    within the matcher's 12 frames are its true positives, and the rest of ``detected`` are the late or early
    ones (13-50 frames, the jitter window) it cannot match; every scored prediction gets one label."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    pred = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    params = fit_corruption(gt, pred, calibrate_iters=0)
    report = evaluate(pred, gt)
    within = np.zeros(9, dtype=int)
    beyond = []
    for key in gt.keys:
        labels = label_predictions(gt.events[key], pred.events[key])
        for p, kind, offset in zip(labels.predictions, labels.kinds, labels.offset):
            if kind == "detected" and abs(offset) <= 12:
                within[p[3]] += 1
            elif kind == "detected":
                beyond.append(abs(offset))
    assert within[1:].tolist() == [report.per_class[name].tp for name in ACTION_CLASSES]
    assert beyond and 12 < min(beyond) and max(beyond) <= 50
    counts = params.source["counts"]
    assert counts["detected"] == report.overall.tp + len(beyond)
    assert sum(counts.values()) == report.overall.tp + report.overall.fp
    for c in range(1, 9):
        for b in BUCKETS:
            assert len(params.outcome[str(c)][b]) == len(OUTCOMES)


def _same_group_gaps(pbp: PlayByPlay) -> np.ndarray:
    gaps = []
    for key in pbp.keys:
        groups: dict = {}
        for p in pbp.events[key]:
            groups.setdefault((p.team, p.shirt, p.cls), []).append(p.frame)
        gaps += [int(g) for frames in groups.values() for g in np.diff(sorted(frames))]
    return np.asarray(gaps)


def test_spotter_nms_window_measured_and_applied(footpass_dir, params):
    """TAAD's own 25-frame NMS (spec §2.5) is measured on the real file; with ``spotter_nms`` the corrupted
    output has no two predictions of one player and class that close, and is otherwise the same draw (a subset
    of the output without it, same seed)."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    taad = read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred")
    assert nms_window_of(taad) == 25
    plain = corrupt_playbyplay(gt, params, seed=5)
    assert (_same_group_gaps(plain) <= 25).sum() > 20  # the packaged fit has no NMS
    nms = corrupt_playbyplay(gt, dataclasses.replace(params, spotter_nms=25), seed=5)
    assert _same_group_gaps(nms).min() > 25
    for key in gt.keys:
        kept, before = nms.events[key], set(plain.events[key])
        assert set(kept) <= before and 0.9 * len(before) < len(kept) < len(before)
    with pytest.raises(ValueError, match="'spotter_nms' must be a window"):
        CorruptionParams.from_json({**params.to_json(), "spotter_nms": -1})


def test_corrupted_gt_scores_like_taad(footpass_dir, params):
    """Corrupting the real GT of games 18/24 with the packaged fit scores close to the released TAAD file."""
    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    real = evaluate(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", gt)
    runs = [evaluate(corrupt_playbyplay(gt, params, seed), gt) for seed in range(3)]
    assert abs(np.mean([r.micro_f1 for r in runs]) - real.micro_f1) < 0.03
    assert abs(np.mean([r.macro_f1 for r in runs]) - real.macro_f1) < 0.03
    # duplicates that land on another action of their player: as often as in the real file
    refit = fit_corruption(gt, corrupt_playbyplay(gt, params, 0), calibrate_iters=0)
    target = params.source["dup_at_player_event_observed"]
    assert abs(refit.source["dup_at_player_event_observed"] - target) < 0.06


def test_structure_layout_of_real_and_corrupted_files(footpass_dir, params):
    """The layout figures of ``fit_corruption.py --structure`` (:func:`fpspot.data.corrupt.structure.
    false_positive_layout`): on the real TAAD file the spotter's NMS leaves no duplicate within 12 frames of its
    parent, no duplicate is scored like its parent, and parents (TAAD's confident detections) outscore their
    duplicates; the corrupted file gets the same rows."""
    from fpspot.data.corrupt.structure import false_positive_layout

    gt = read_playbyplay(footpass_dir / "playbyplay_val_g18_g24.json", "gt")
    real = false_positive_layout(gt, read_playbyplay(footpass_dir / "playbyplay_TAAD_val_g18_g24.json", "pred"))
    corrupted = false_positive_layout(gt, corrupt_playbyplay(gt, params, 0))
    assert real["duplicate within 12 frames of its parent"] == 0.0
    assert real["same player and class <= 25 frames apart"] == 0.0
    assert real["duplicates scored exactly like their parent"] == 0.0
    assert real["score of a duplicate's parent (median)"] > real["duplicate score (median)"] + 0.15
    assert set(corrupted) == set(real)
    assert 1.0 < real["random burst size (mean)"] and 1.0 < corrupted["random burst size (mean)"]


def test_bad_params_name_the_key(params, tmp_path):
    obj = params.to_json()
    obj["ghost_rate"] = [0.1] * 3
    with pytest.raises(ValueError, match="ghost_rate"):
        CorruptionParams.from_json(obj)
    obj = params.to_json()
    obj["random_burst_size"] = [0.5, -0.1, 0.6]
    with pytest.raises(ValueError, match="random_burst_size"):
        CorruptionParams.from_json(obj)
    # the draws do not check their probabilities (draw_index), so loading does
    obj = params.to_json()
    obj["class_confusion"][4] = [0.0] * 9
    with pytest.raises(ValueError, match=r"'class_confusion\[4\]' must be probabilities"):
        CorruptionParams.from_json(obj)
    obj = params.to_json()
    obj["dup_offset_hist"]["probs"][0] -= 0.5
    with pytest.raises(ValueError, match=r"'dup_offset_hist\[probs\]' must be probabilities"):
        CorruptionParams.from_json(obj)
    with pytest.raises(ValueError, match="no such file"):
        CorruptionParams.load(tmp_path / "missing.json")


def test_sources_point_at_the_events_they_come_from(params, synth):
    """Every detection / wrong outcome / duplicate names the event it was made from; ghosts, random and carry false
    positives name none. Detections keep the event's team, jersey and class; duplicates those of a parent."""
    key = synth.keys[0]
    events = list(reversed(synth.events[key]))  # sources index the input order, whatever it is
    preds, kinds, sources = corrupt_half(events, params, half_seed(2, key), return_kinds=True, return_sources=True)
    plain = corrupt_half(events, params, half_seed(2, key))
    assert plain == preds  # asking for provenance does not change the draws
    for p, kind, src in zip(preds, kinds, sources):
        if kind in ("ghost", "random", "carry"):
            assert src == -1
            continue
        if src < 0:
            assert kind == "duplicate"  # a duplicate of a ghost, random or carry false positive
            continue
        e = events[src]
        if kind == "detected":
            assert (p.team, p.shirt, p.cls) == (e.team, e.shirt, e.cls) and abs(p.frame - e.frame) <= 50
        elif kind == "wrong_jersey":
            assert p.team == e.team and p.shirt != e.shirt and p.cls == e.cls and abs(p.frame - e.frame) <= 12
        elif kind == "wrong_class":
            assert (p.team, p.shirt) == (e.team, e.shirt) and p.cls != e.cls and abs(p.frame - e.frame) <= 12
        elif kind == "wrong_team":
            assert p.team != e.team and p.cls == e.cls
        else:
            assert kind == "duplicate" and abs(p.frame - e.frame) <= 50 + 75
    used = [s for s, k in zip(sources, kinds) if k != "duplicate" and s >= 0]
    assert len(used) == len(set(used))  # one primary detection per event at most


def test_strength_scales_false_positives_and_misses(params, synth):
    """Strength 0 leaves no ghost, random false positive or duplicate and misses 0.6x as often; strength s
    multiplies the false-positive counts by about s."""
    counts = {}
    for s in (0.0, 0.3, 1.0):
        fp, miss = strength_scales(s)
        total = {"fp": 0, "primary": 0}
        for key in synth.keys:
            _, kinds = corrupt_half(synth.events[key], params, half_seed(5, key), return_kinds=True, fp_scale=fp,
                                    miss_scale=miss)
            total["fp"] += sum(k in ("ghost", "random", "duplicate") for k in kinds)
            total["primary"] += sum(k not in ("ghost", "random", "duplicate") for k in kinds)
        counts[s] = total
    assert counts[0.0]["fp"] == 0
    assert 0.3 * 0.85 < counts[0.3]["fp"] / counts[1.0]["fp"] < 0.3 * 1.15
    n = sum(len(synth.events[k]) for k in synth.keys)
    missed = {s: 1 - counts[s]["primary"] / n for s in counts}
    assert missed[0.0] == pytest.approx(0.6 * missed[1.0], rel=0.1)
    assert scaled_outcome([0.5, 0.1, 0.1, 0.1, 0.2], 2.0) == pytest.approx([0.375, 0.075, 0.075, 0.075, 0.4])
    with pytest.raises(ValueError, match="strength"):
        strength_scales(-1)


def _fit_recipe():
    """``recipes/fit_corruption.py`` as a module."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "recipes" / "fit_corruption.py"
    spec = importlib.util.spec_from_file_location("fit_corruption_recipe", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_fit_recipe_never_writes_into_the_package(footpass_dir, tmp_path, monkeypatch, capsys):
    """Without ``--out`` the recipe writes under ``runs/`` (of the working folder), never the packaged noise model
    ``fpspot/data/corruption_taad.json``; ``--gt``, ``--pred`` and ``--out`` are documented in ``--help``."""
    recipe = _fit_recipe()
    monkeypatch.setenv("COLUMNS", "400")  # help lines unwrapped
    with pytest.raises(SystemExit):  # checked first: the recipe of before would overwrite the packaged file
        recipe.main(["--help"])
    usage = " ".join(capsys.readouterr().out.split())
    for text in ("--gt GT.json ground truth", "--pred PRED.json the spotter's predictions",
                 "--out PARAMS.json where to write the fitted parameters (default: "
                 "runs/fit_corruption/corruption.json"):
        assert text in usage, usage
    packaged = resources.files("fpspot.data").joinpath("corruption_taad.json")
    before = packaged.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert recipe.main(["--gt", str(footpass_dir / "playbyplay_val_g18_g24.json"), "--pred",
                        str(footpass_dir / "playbyplay_TAAD_val_g18_g24.json"), "--calibrate-iters", "0",
                        "--check-seeds", "0"]) == 0
    written = tmp_path / "runs" / "fit_corruption" / "corruption.json"
    assert f"wrote {written.relative_to(tmp_path)}" in capsys.readouterr().out
    assert CorruptionParams.load(written).source["gt"] == "playbyplay_val_g18_g24.json"
    assert packaged.read_bytes() == before
    assert recipe.main(["--gt", str(tmp_path / "nope.json"), "--out", str(tmp_path / "p.json")]) == 2
    missing = tmp_path / "nope.json"
    assert capsys.readouterr().err == f"recipes/fit_corruption.py: error: file '{missing}': no such file\n"
    assert not (tmp_path / "p.json").exists()
