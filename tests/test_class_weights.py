"""Class-weight schemes on the real FOOTPASS train counts of box-visible events (spec §1.4: n x bbox%), read
from a shard manifest written by the shard writer; expected values computed by hand from the documented
formula ``w_c = f * r_c / mean(r)``, ``r_c = (N_max / N_c) ** p``, background ``b``."""

from __future__ import annotations

import json

import pytest
import torch

from fpspot.data.shards import write_manifest
from fpspot.schema import ACTION_CLASSES, CLASSES
from fpspot.train.class_weights import (
    class_weights_from_manifest,
    compute_class_weights,
    counts_from_manifest,
    format_class_weights,
)

#: FOOTPASS train, box-visible events: drive, pass, cross, throw-in, shot, header, tackle, block
BOX_VISIBLE = [30477, 37144, 1519, 754, 889, 2426, 174, 994]
ALL_EVENTS = [35527, 45621, 2156, 1730, 1097, 3642, 285, 1269]

# sqrt_inv_freq, TAAD: r = sqrt(37144 / N)
#   = 1.10397, 1, 4.94499, 7.01873, 6.46388, 3.91290, 14.61066, 6.11295;
# mean(r) = 45.16809 / 8 = 5.64601; w = 0.95 * r / 5.64601
SQRT_TAAD = [0.05, 0.18575, 0.16826, 0.83205, 1.18097, 1.08762, 0.65839, 2.45839, 1.02857]
# inv_freq, TAAD: r = 37144 / N = 1.21876, 1, 24.45293, 49.26260, 41.78178, 15.31080, 213.47126, 37.36821;
# mean(r) = 47.98329; w = 0.95 * r / 47.98329
INV_TAAD = [0.05, 0.02413, 0.01980, 0.48413, 0.97533, 0.82722, 0.30313, 4.22642, 0.73984]


@pytest.fixture
def shard_dir(tmp_path):
    counts = {"all": dict(zip(ACTION_CLASSES, ALL_EVENTS)),
              "box_visible": dict(zip(ACTION_CLASSES, BOX_VISIBLE))}
    write_manifest(tmp_path, "taad", "train", [{"name": "train-000000.tar", "samples": 3674}], counts,
                   {"clip_len": 50})
    return tmp_path


def test_none_and_baseline_are_the_spec_values():
    assert compute_class_weights("none").tolist() == [1.0] * 9
    assert compute_class_weights("baseline", kind="taad").tolist() == pytest.approx([0.05] + [0.95] * 8)
    gnn = compute_class_weights("baseline", kind="taad_gnn")
    assert gnn.tolist() == pytest.approx([1 / 161] + [20 / 161] * 8)


def test_frequency_schemes_on_the_real_box_visible_counts(shard_dir):
    assert counts_from_manifest(shard_dir) == BOX_VISIBLE  # box-visible by default
    assert counts_from_manifest(shard_dir / "manifest.json", subset="all") == ALL_EVENTS
    sqrt = class_weights_from_manifest("sqrt_inv_freq", shard_dir, kind="taad")
    inv = class_weights_from_manifest("inv_freq", shard_dir, kind="taad")
    assert sqrt.dtype == torch.float32 and sqrt.shape == (9,)
    assert sqrt.tolist() == pytest.approx(SQRT_TAAD, abs=1e-5)
    assert inv.tolist() == pytest.approx(INV_TAAD, abs=1e-5)
    for weights in (sqrt, inv):
        assert weights[1:].mean().item() == pytest.approx(0.95)  # the baseline's loss scale
        order = sorted(range(8), key=lambda c: BOX_VISIBLE[c])  # rarer class -> larger weight
        assert all(weights[1 + a] > weights[1 + b] for a, b in zip(order, order[1:]))
    # TAAD+GNN: same shape, the focal alpha's scale (background 1/161, mean foreground 20/161)
    gnn = compute_class_weights("sqrt_inv_freq", BOX_VISIBLE, kind="taad_gnn")
    assert gnn[0].item() == pytest.approx(1 / 161)
    assert gnn[1:].tolist() == pytest.approx((sqrt[1:] * (20 / 161) / 0.95).tolist(), rel=1e-6)


def test_a_class_without_events_gets_the_largest_weight():
    counts = list(BOX_VISIBLE)
    counts[6] = 0  # no tackle
    weights = compute_class_weights("sqrt_inv_freq", counts)
    rarest_counted = 1 + min((c for c in range(8) if counts[c]), key=lambda c: counts[c])  # throw-in
    assert CLASSES[rarest_counted] == "throw-in"
    assert weights[7].item() == pytest.approx(weights[rarest_counted].item()) == weights[1:].max().item()
    assert weights[1:].mean().item() == pytest.approx(0.95)


def test_bad_inputs_are_clear_errors(shard_dir):
    with pytest.raises(ValueError, match="every action class has 0 events"):
        compute_class_weights("inv_freq", [0] * 8)
    with pytest.raises(ValueError, match="expected 8 action-class counts"):
        compute_class_weights("inv_freq", [1] * 9)
    with pytest.raises(ValueError, match="needs the class counts"):
        compute_class_weights("sqrt_inv_freq")
    with pytest.raises(ValueError, match="unknown class-weight scheme 'sqrt'.*sqrt_inv_freq"):
        compute_class_weights("sqrt", BOX_VISIBLE)
    with pytest.raises(ValueError, match="unknown model kind 'dst'"):
        compute_class_weights("baseline", kind="dst")
    manifest = json.loads((shard_dir / "manifest.json").read_text())
    del manifest["class_counts"]["box_visible"]["tackle"]
    (shard_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"manifest\.json: class_counts\.box_visible: missing .* tackle"):
        counts_from_manifest(shard_dir)
    with pytest.raises(ValueError, match="no 'visible' counts"):
        counts_from_manifest(manifest, subset="visible")
    assert class_weights_from_manifest("baseline", None).tolist() == pytest.approx([0.05] + [0.95] * 8)


def test_weights_table_lists_every_class_with_count_and_weight():
    weights = torch.tensor(SQRT_TAAD)
    table = format_class_weights(weights, BOX_VISIBLE, title="class weights (sqrt_inv_freq)").splitlines()
    assert table[0] == "class weights (sqrt_inv_freq)" and len(table) == 11
    rows = {line.split()[0]: line.split()[1:] for line in table[2:]}
    assert list(rows) == list(CLASSES)
    assert rows["background"] == ["-", "0.0500"]
    assert rows["tackle"] == ["174", "2.4584"] and rows["pass"] == ["37144", "0.1683"]
