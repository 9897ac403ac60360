"""TAAD and TAAD+GNN models: shapes, the losses of spec §2.3 / §3.4, frozen backbone, backbone weights."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from fpspot.models import build, load_model
from fpspot.models.taad import TAAD
from fpspot.models.taad_gnn import TAADGNN
from fpspot.train.losses import focal_loss, masked_weighted_cross_entropy


def _batch(cls, batch_size=2, seed=0, **kwargs):
    return cls.example_batch(cls.tiny_config(), batch_size, torch.Generator().manual_seed(seed), **kwargs)


@pytest.fixture
def taad():
    """A fresh tiny TAAD per test (tests change its class weights and mode)."""
    torch.manual_seed(0)
    return build("taad", **TAAD.tiny_config())


@pytest.fixture
def gnn():
    """A fresh tiny TAAD+GNN per test (tests change its epoch and mode)."""
    torch.manual_seed(0)
    return build("taad_gnn", **TAADGNN.tiny_config())


def test_example_batches_are_realistic():
    for cls, tracks in ((TAAD, 5), (TAADGNN, 26)):
        batch = _batch(cls, 3)
        height, width = cls.tiny_config()["frame_hw"]
        assert batch["video"].dtype == torch.uint8 and batch["video"].shape == (3, 3, 8, height, width)
        rois, masks, labels, nodes = batch["rois"], batch["masks"], batch["labels"], batch["nodes"]
        assert rois.shape == (3, tracks, 8, 4) and masks.shape == labels.shape == (3, tracks, 8)
        valid = masks.bool()
        assert 0 < masks.mean() < 1
        assert (rois[..., 0] >= 0).all() and (rois[..., 2] <= width).all() and (rois[..., 3] <= height).all()
        assert ((rois[..., 2] - rois[..., 0])[valid] >= 2).all() and (rois[~valid] == 0).all()
        assert ((labels > 0) & ~valid).sum() == 0 and (labels > 0).any()
        assert (batch["labels_sharp"] > 0).sum(dim=(1, 2)).tolist() == [1, 1, 1]
        assert nodes.shape == (3, tracks, 8, 6) and (nodes == -15).any() and (nodes != -15).any()


@pytest.mark.parametrize("cls", [TAAD, TAADGNN])
def test_logits_shape_and_inference_with_26_slots(cls, taad, gnn):
    model = taad if cls is TAAD else gnn
    model.eval()
    with torch.no_grad():
        out = model({k: v for k, v in _batch(cls, num_tracks=26, num_frames=12).items()
                     if k not in ("labels", "labels_sharp")})
    assert set(out) == {"logits"}
    assert out["logits"].shape == (2, 9, 26, 12)


def test_taad_loss_is_the_masked_weighted_ce_of_the_spec(taad):
    batch = _batch(TAAD)
    out = taad(batch)
    logits, labels, masks = out["logits"], batch["labels"], batch["masks"]
    weights = torch.tensor([0.05] + [0.95] * 8)
    per_element = torch.stack([
        -F.log_softmax(logits[b, :, m, t], dim=0)[labels[b, m, t]] * masks[b, m, t] * weights[labels[b, m, t]]
        for b in range(2) for m in range(5) for t in range(8)])
    torch.testing.assert_close(out["loss"], per_element.sum() / (2 * 5 * 8))  # mean over ALL elements
    # masked elements do not count: changing their labels leaves the loss unchanged
    relabelled = dict(batch, labels=torch.where(masks.bool(), labels, 3))
    torch.testing.assert_close(taad.compute_loss(out, relabelled)["loss"], out["loss"])
    taad.set_class_weights(None)
    unweighted = taad.compute_loss(out, batch)["loss"]
    torch.testing.assert_close(unweighted, masked_weighted_cross_entropy(logits, labels, masks))


def test_gnn_focal_loss_gamma_schedule_and_no_mask(gnn):
    batch = _batch(TAADGNN)
    out = gnn(batch)
    logits, labels = out["logits"].detach(), batch["labels"]
    alpha = torch.tensor([1 / 161] + [20 / 161] * 8)
    prob = F.softmax(logits, dim=1).gather(1, labels[:, None]).squeeze(1)

    def expected(gamma):
        return 100 * (alpha[labels] * (1 - prob) ** gamma * -prob.log()).mean()

    gnn.set_epoch(0)
    torch.testing.assert_close(gnn.compute_loss({"logits": logits}, batch)["loss"], expected(1.0))
    gnn.set_epoch(1)
    assert gnn.focal_gamma == 1.0
    gnn.set_epoch(2)
    torch.testing.assert_close(gnn.compute_loss({"logits": logits}, batch)["loss"], expected(1.25))
    # unmasked as the baseline: labels of masked elements count
    relabelled = dict(batch, labels=torch.where(batch["masks"].bool(), labels, 3))
    assert (gnn.compute_loss({"logits": logits}, relabelled)["loss"]
            != gnn.compute_loss({"logits": logits}, batch)["loss"])


def test_focal_loss_with_gamma_0_is_weighted_ce():
    logits = torch.randn(2, 9, 4, 6)
    labels = torch.randint(0, 9, (2, 4, 6))
    alpha = torch.rand(9)
    torch.testing.assert_close(focal_loss(logits, labels, alpha, gamma=0.0, scale=1.0),
                               masked_weighted_cross_entropy(logits, labels, None, alpha))
    with pytest.raises(ValueError, match="labels"):
        focal_loss(logits, labels[:, :3])
    with pytest.raises(ValueError, match="9 entries"):
        masked_weighted_cross_entropy(logits, labels, None, torch.ones(8))


@pytest.mark.parametrize("name", ["taad", "taad_gnn"])
def test_frozen_backbone_gets_no_gradient_but_batchnorm_statistics_move(name):
    torch.manual_seed(0)
    cls = TAAD if name == "taad" else TAADGNN
    model = build(name, **cls.tiny_config())
    model.set_backbone_frozen(True)
    before = {k: v.clone() for k, v in model.backbone.state_dict().items()}
    model(_batch(cls))["loss"].backward()
    assert all(p.grad is None for p in model.backbone.parameters())
    assert all(p.requires_grad for p in model.backbone.parameters())  # requires_grad untouched
    assert all(p.grad is not None for n, p in model.named_parameters() if not n.startswith("backbone."))
    after = model.backbone.state_dict()
    assert not torch.equal(after["blocks.0.norm.running_mean"], before["blocks.0.norm.running_mean"])
    assert after["blocks.4.res_blocks.0.branch2.norm_c.num_batches_tracked"] == 1
    model.set_backbone_frozen(False)
    model.zero_grad()
    model(_batch(cls))["loss"].backward()
    assert all(p.grad is not None for p in model.backbone.parameters())


def test_video_must_be_uint8(taad):
    batch = _batch(TAAD)
    batch["video"] = batch["video"].float()
    with pytest.raises(TypeError, match="uint8"):
        taad(batch)


def test_backbone_weights_load_at_construction_and_are_not_needed_to_reload(tmp_path):
    source = build("taad", **TAAD.tiny_config())
    state = {k: v + 0.5 if v.is_floating_point() else v for k, v in source.backbone.state_dict().items()}
    state["blocks.5.proj.weight"] = torch.zeros(400, 2048)  # a head, dropped on load
    pyth = tmp_path / "X3D_TINY.pyth"
    torch.save({"model_state": state}, pyth)
    model = build("taad", **TAAD.tiny_config(), backbone_weights=str(pyth))
    assert torch.equal(model.backbone.state_dict()["blocks.2.res_blocks.0.branch2.conv_b.weight"],
                       state["blocks.2.res_blocks.0.branch2.conv_b.weight"])
    model.save_pretrained(tmp_path / "saved")
    assert json.loads((tmp_path / "saved" / "config.json").read_text())["config"]["backbone_weights"] is None
    pyth.unlink()
    loaded = load_model(tmp_path / "saved")
    assert torch.equal(loaded.backbone.state_dict()["blocks.2.res_blocks.0.branch2.conv_b.weight"],
                       state["blocks.2.res_blocks.0.branch2.conv_b.weight"])
    assert model.config["backbone_weights"] == str(pyth)


def test_unknown_backbone_fails():
    with pytest.raises(ValueError, match="unknown backbone 'x3d_xxl'"):
        build("taad", backbone="x3d_xxl")


@pytest.mark.parametrize("cls", [TAAD, TAADGNN])
def test_a_misspelt_setting_fails_instead_of_building_the_default(cls):
    """A typo is neither stored in the config nor ignored, whether the model is built or constructed."""
    name = cls.model_name
    with pytest.raises(TypeError, match="'backbon'"):
        cls(backbon="x3d_tiny", frame_hw=[64, 112])
    with pytest.raises(TypeError, match=rf"^{name}: unknown setting 'backbon' \(did you mean 'backbone'\?\)"):
        build(name, backbon="x3d_tiny", frame_hw=[64, 112])
    with pytest.raises(TypeError, match=rf"^{name}: unknown settings 'backbon' \(did you mean 'backbone'\?\), "
                                        r"'zzz'; "):
        build(name, backbon="x3d_tiny", frame_hw=[64, 112], zzz=1)


def test_settings_of_taad_gnn_are_not_taad_settings():
    with pytest.raises(TypeError, match=r"^taad_gnn: unknown setting 'k_neighbours' \(did you mean 'k_neighbors'\?\)"):
        build("taad_gnn", k_neighbours=4)
    with pytest.raises(TypeError, match=r"^taad: unknown setting 'k_neighbors'; taad takes: backbone, "):
        build("taad", k_neighbors=4)


def test_listing_models_does_not_import_torch_geometric():
    code = ("import sys, fpspot.models; fpspot.models.list_models(); "
            "print('torch_geometric' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
