"""Every registered model (timm-style): forward + loss, backward to every parameter, checkpointing equivalence,
save/load round trip, and a clear failure when weights of another architecture are loaded."""

from __future__ import annotations

import copy
import json

import pytest
import torch

import fpspot
from fpspot.models import ModelLoadError, build, list_models, load_model
from fpspot.models.zoo import model_class

MODELS = list_models()


def _model_and_batch(name: str, seed: int = 0):
    cls = model_class(name)
    config = cls.tiny_config()
    torch.manual_seed(seed)
    model = build(name, **config)
    batch = cls.example_batch(config, 2, torch.Generator().manual_seed(seed))
    return model, batch


def _perturb(model: torch.nn.Module) -> None:
    """Move every parameter off its initial value (zero-initialised layers would otherwise block gradients)."""
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=gen, dtype=p.dtype))


def _tensors(outputs: dict) -> dict[str, torch.Tensor]:
    return {k: v for k, v in outputs.items() if isinstance(v, torch.Tensor)}


def test_models_are_registered():
    assert {"taad", "taad_gnn"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_has_finite_loss(name):
    model, batch = _model_and_batch(name)
    out = model(batch)
    assert out["loss"].dim() == 0 and torch.isfinite(out["loss"])
    for key, value in _tensors(out).items():
        assert torch.isfinite(value).all(), key
    assert model.model_name == name
    json.dumps(model.config)  # the config is JSON-serialisable


@pytest.mark.parametrize("name", MODELS)
def test_backward_reaches_every_trainable_parameter(name):
    model, batch = _model_and_batch(name)
    _perturb(model)
    model(batch)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, f"no gradient for {missing}"
    for n, p in model.named_parameters():
        assert torch.isfinite(p.grad).all(), n
        assert p.grad.abs().sum() > 0, f"zero gradient for {n}"


@pytest.mark.parametrize("name", MODELS)
def test_grad_checkpointing_equivalence(name):
    plain, batch = _model_and_batch(name)
    if not hasattr(plain, "backbone"):
        pytest.skip(f"{name} has no backbone to checkpoint")
    _perturb(plain)
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    assert ckpt.grad_checkpointing and not plain.grad_checkpointing
    outputs = {}
    for label, model in (("plain", plain), ("ckpt", ckpt)):
        torch.manual_seed(0)  # same dropout masks
        out = model(batch)
        out["loss"].backward()
        outputs[label] = _tensors(out)
    for key in outputs["plain"]:
        torch.testing.assert_close(outputs["ckpt"][key], outputs["plain"][key], msg=key)
    for (n, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=n)
    plain_buffers, ckpt_buffers = dict(plain.named_buffers()), dict(ckpt.named_buffers())
    assert any("running_mean" in k for k in plain_buffers)
    for key, value in plain_buffers.items():
        torch.testing.assert_close(ckpt_buffers[key], value, msg=key)


@pytest.mark.parametrize("name", MODELS)
def test_save_load_round_trip(name, tmp_path):
    model, batch = _model_and_batch(name)
    _perturb(model)
    model.eval()
    with torch.no_grad():
        before = _tensors(model(batch))
    model.save_pretrained(tmp_path / name)
    assert {p.name for p in (tmp_path / name).iterdir()} == {"config.json", "model.safetensors"}
    loaded = fpspot.load_model(tmp_path / name)
    assert type(loaded) is type(model) and loaded.config == {**model.config, **{
        k: None for k in ("backbone_weights",) if k in model.config}}
    loaded.eval()
    with torch.no_grad():
        after = _tensors(loaded(batch))
    for key in before:
        assert torch.equal(after[key], before[key]), key


@pytest.mark.parametrize("name", MODELS)
def test_loading_another_architecture_fails_listing_keys(name, tmp_path):
    model, _ = _model_and_batch(name)
    model.save_pretrained(tmp_path / "saved")
    other = next(m for m in MODELS if m != name)
    config_path = tmp_path / "saved" / "config.json"
    config_path.write_text(json.dumps({"model": other, "config": model_class(other).tiny_config()}))
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path / "saved")
    message = str(err.value)
    assert "model.safetensors" in message
    assert "missing (" in message or "unexpected (" in message or "shape mismatch (" in message
    own_key = next(iter(model.state_dict()))
    other_keys = set(build(other, **model_class(other).tiny_config()).state_dict())
    if own_key not in other_keys:
        assert own_key in message
