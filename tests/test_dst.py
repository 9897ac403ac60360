"""The DST model: shapes, loss (valid-token normalisation, class weights), padding masks, KV-cached greedy
decoding, the GNN stream, learning on a tiny batch and exact decoding of an overfitted set."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from overfit import fit_batch

from fpspot.models import build, load_model
from fpspot.models.dst import DST, EOS, NEUTRAL_SLOT


pytestmark = pytest.mark.usefixtures("one_thread")


def _config(**changes):
    return {**DST.tiny_config(), **changes}


def _peaked(batch: dict, height: float = 6.0) -> dict:
    """Make the TAAD logits informative: a peak of each target event's class at its slot and frame."""
    batch = dict(batch)
    logits = batch["logits"].clone() * 0.3
    for b in range(logits.shape[0]):
        targets = (batch[k][b] for k in ("tgt_action", "tgt_slot", "tgt_frame", "tgt_mask"))
        for a, s, f, ok in zip(*targets):
            if ok and a < 8:
                logits[b, a + 1, s, f - 1] += height
    batch["logits"] = logits
    if "gnn_logits" in batch:
        batch["gnn_logits"] = logits + 0.1 * torch.randn_like(logits)
    return batch


def _targets(batch: dict, b: int) -> list[tuple[int, int, int]]:
    n = int(batch["tgt_mask"][b].sum())
    return [(int(batch["tgt_action"][b, i]) + 1, int(batch["tgt_slot"][b, i]), int(batch["tgt_frame"][b, i]))
            for i in range(1, n - 1)]


def _decoded(out: dict, b: int) -> list[tuple[int, int, int]]:
    return [(int(out["action"][b, i]), int(out["slot"][b, i]), int(out["frame"][b, i]))
            for i in range(out["valid"].shape[1]) if out["valid"][b, i]]


def test_registered_and_full_size_parameter_count():
    model = build("dst")
    assert model.model_name == "dst" and isinstance(model, DST)
    # spec §4.3: 45,521,685 parameters (one-hot Linear == embedding; three heads == 37 + 752 outputs)
    assert model.num_parameters() == 45_521_685
    assert build("dst", use_gnn_logits=True).num_parameters() == 45_521_685 + 234 * 512 + 512


def test_forward_shapes_and_loss_components():
    config = _config()
    model = build("dst", **config)
    batch = DST.example_batch(config, batch_size=3)
    out = model(batch)
    length = batch["tgt_action"].shape[1] - 1
    assert out["action_logits"].shape == (3, length, 10)
    assert out["slot_logits"].shape == (3, length, 27)
    assert out["frame_logits"].shape == (3, length, config["window"] + 2)
    assert torch.isfinite(out["loss"])
    torch.testing.assert_close(out["loss"], out["loss_action"] + out["loss_slot"] + out["loss_frame"])


def test_loss_is_the_mean_over_valid_target_tokens():
    config = _config(dropout=0.0)
    model = build("dst", **config).eval()
    batch = DST.example_batch(config, batch_size=3, generator=torch.Generator().manual_seed(4))
    out = model(batch)
    valid = batch["tgt_mask"][:, 1:]
    expected = {}
    terms = (("action", "tgt_action", 0.05), ("slot", "tgt_slot", 0.05), ("frame", "tgt_frame", 0.0))
    for name, key, smoothing in terms:
        logits = out[f"{name}_logits"][valid]
        expected[name] = F.cross_entropy(logits, batch[key][:, 1:][valid], label_smoothing=smoothing)
        torch.testing.assert_close(out[f"loss_{name}"], expected[name])
    # longer padding (another batch layout of the same windows) leaves the loss unchanged
    longer = dict(batch)
    for key in ("tgt_action", "tgt_slot", "tgt_frame", "tgt_mask"):
        longer[key] = torch.cat([batch[key], torch.zeros_like(batch[key][:, :5])], dim=1)
    torch.testing.assert_close(model(longer)["loss"], out["loss"])


def test_class_weights_weight_the_action_term_only():
    config = _config(dropout=0.0)
    model = build("dst", **config).eval()
    batch = DST.example_batch(config, batch_size=3, generator=torch.Generator().manual_seed(5))
    plain = model(batch)
    weights = torch.tensor([0.5, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])  # background + 8 classes
    model.set_class_weights(weights)
    weighted = model(batch)
    valid = batch["tgt_mask"][:, 1:]
    token_weights = torch.cat([weights[1:], torch.ones(2)])  # SOS / EOS keep weight 1
    expected = F.cross_entropy(plain["action_logits"][valid], batch["tgt_action"][:, 1:][valid], weight=token_weights,
                               label_smoothing=0.05)
    torch.testing.assert_close(weighted["loss_action"], expected)
    torch.testing.assert_close(weighted["loss_slot"], plain["loss_slot"])
    model.set_class_weights([1.0] * 4)
    with pytest.raises(ValueError, match="9 .* or 10"):
        model(batch)


# Initialisation of the untrained models whose greedy decoding below runs several steps in every window (with
# most seeds some window stops at once, or emits only invalid tokens, and a comparison of decodings covers little).
DECODING_SEED = 24


@pytest.mark.parametrize("frame_head", ["linear", "pointer"])
def test_padding_frames_do_not_change_outputs(frame_head):
    """Values of 1000 in the padding frames of the last window change neither the teacher-forced frame logits
    nor the greedy decoding, which decodes at least 8 valid events in each window (of ``max_events = 12``)."""
    config = _config(frame_head=frame_head)
    torch.manual_seed(DECODING_SEED)
    model = build("dst", **config).eval()
    batch = DST.example_batch(config, batch_size=2)
    pad = batch["frame_index"] < 0
    assert pad[-1].any()
    noisy = dict(batch)
    for key in ("teamvec", "logits", "gnn_logits"):
        noisy[key] = batch[key].clone()
        noisy[key][pad[:, None, None, :].expand_as(noisy[key])] = 1000.0
    with torch.no_grad():
        a, b = model(batch), model(noisy)
        ga, gb = model.generate(batch), model.generate(noisy)
    torch.testing.assert_close(a["frame_logits"], b["frame_logits"], atol=1e-5, rtol=1e-5)
    assert ga["valid"].sum(dim=1).min() >= 8, ga["valid"].sum(dim=1).tolist()
    for key in ga:
        torch.testing.assert_close(ga[key], gb[key])


@pytest.mark.parametrize("frame_head", ["linear", "pointer"])
def test_generate_with_kv_cache_equals_full_recomputation(frame_head):
    """Greedy decoding with the decoder's KV cache gives the events and scores of recomputing the whole decoder
    every step, over windows that each decode at least 8 valid events of ``max_events = 10`` (so the cached
    keys/values of up to 9 earlier steps are used)."""
    config = _config(max_events=10, frame_head=frame_head)
    torch.manual_seed(DECODING_SEED)
    model = build("dst", **config).eval()
    batch = DST.example_batch(config, batch_size=4, generator=torch.Generator().manual_seed(7))
    full = model.generate(batch, use_cache=False)
    assert full["action"].shape == (4, 10)
    assert full["valid"].sum(dim=1).min() >= 8, full["valid"].sum(dim=1).tolist()
    assert full["valid"][:, -1].any()  # the last step decoded a valid event
    cached = model.generate(batch, use_cache=True)
    for key in ("action", "slot", "frame", "valid"):
        assert torch.equal(cached[key], full[key]), (key, cached[key].tolist(), full[key].tolist())
    torch.testing.assert_close(cached["score"], full["score"])


def test_gnn_stream_is_required_and_used():
    config = _config(use_gnn_logits=True, dropout=0.0)
    torch.manual_seed(0)  # fixed: with about 1 initialisation in 300 the loss moves by only ~5e-6 relative
    model = build("dst", **config).eval()
    batch = DST.example_batch(config, batch_size=2, generator=torch.Generator().manual_seed(0))
    without = {k: v for k, v in batch.items() if k != "gnn_logits"}
    with pytest.raises(KeyError, match="gnn_logits"):
        model(without)
    changed = dict(batch, gnn_logits=batch["gnn_logits"] + 1.0)
    assert not torch.allclose(model(batch)["loss"], model(changed)["loss"])
    gnn = batch["gnn_logits"].clone().requires_grad_(True)
    model(dict(batch, gnn_logits=gnn))["loss"].backward()
    assert gnn.grad.abs().sum() > 0  # the loss depends on the stream
    plain = build("dst", **_config(use_gnn_logits=False))
    assert "gnn_logits" not in plain.streams and "encoder_embedding.dense.gnn_logits.weight" not in plain.state_dict()


def test_bad_window_shapes_are_named():
    config = _config()
    model = build("dst", **config)
    batch = DST.example_batch(dict(config, window=config["window"] + 8), batch_size=1)
    with pytest.raises(ValueError, match="window is 64"):
        model(batch)
    batch = DST.example_batch(config, batch_size=1)
    batch["logits"] = batch["logits"][:, :, :13]
    with pytest.raises(ValueError, match="'logits' has shape"):
        model(batch)


def test_gnn_fused_dst_trains_on_a_tiny_batch():
    torch.manual_seed(0)
    config = _config(use_gnn_logits=True, dropout=0.0)
    model = build("dst", **config).train()
    batch = _peaked(DST.example_batch(config, batch_size=4, generator=torch.Generator().manual_seed(1)))
    losses = fit_batch(model, batch, steps=30, lr=2e-3)
    assert losses[-1] < 0.5 * losses[0], losses
    # every stream's projection learned something
    for name in ("teamvec", "logits", "gnn_logits"):
        assert model.encoder_embedding.dense[name].weight.grad.abs().sum() > 0


@pytest.mark.parametrize("frame_head", ["linear", "pointer"])
def test_overfitted_model_decodes_the_targets_exactly(tmp_path, frame_head):
    torch.manual_seed(0)
    config = _config(use_gnn_logits=False, dropout=0.0, d_model=64, dim_feedforward=128, frame_head=frame_head)
    model = build("dst", **config).train()
    batch = _peaked(DST.example_batch(config, batch_size=6, generator=torch.Generator().manual_seed(2)))
    fit_batch(model, batch, steps=200, lr=3e-3)
    model.eval()
    out = model.generate({k: batch[k] for k in ("teamvec", "logits", "frame_index")})
    for b in range(6):
        assert _decoded(out, b) == _targets(batch, b), b
        assert out["score"][b][out["valid"][b]].min() > 0.5
    # the decoding stops at EOS: nothing valid after the events
    for b in range(6):
        assert int(out["valid"][b].sum()) == len(_targets(batch, b))
    # the same through forward() without targets, and after a save / load round trip
    reloaded = load_model(model.save_pretrained(tmp_path / "dst")).eval()
    again = reloaded({k: batch[k] for k in ("teamvec", "logits", "frame_index")})
    for key in ("action", "slot", "frame", "valid"):
        assert torch.equal(again[key], out[key])


def test_window_without_eos_keeps_its_events():
    """A decoder that never emits EOS within max_events keeps every decoded event (the baseline dropped
    the window). Force it: a model whose action head never prefers EOS or SOS."""
    config = _config(max_events=5, dropout=0.0)
    model = build("dst", **config).eval()
    with torch.no_grad():
        model.action_head.bias[EOS] = -1e4
        model.action_head.bias[EOS - 1] = -1e4
        model.slot_head.bias[NEUTRAL_SLOT] = -1e4
        model.frame_head.bias.zero_()
        model.frame_head.bias[10] = 1e4  # always frame 10 (a valid frame)
    out = model.generate(DST.example_batch(config, batch_size=2))
    assert out["valid"].all()
    assert (out["frame"] == 10).all() and ((out["action"] >= 1) & (out["action"] <= 8)).all()
