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


# ------------------------------------------------------------------------------------------- unknown settings


def _misspelt(config: dict) -> tuple[str, dict]:
    """The first key of ``config`` and ``config`` with that key misspelt (last letter dropped)."""
    key = next(iter(config))
    return key, {(k[:-1] if k == key else k): v for k, v in config.items()}


@pytest.mark.parametrize("name", MODELS)
def test_build_rejects_an_unknown_setting_naming_the_model_key_and_likely_key(name):
    key, config = _misspelt(model_class(name).tiny_config())
    with pytest.raises(TypeError) as err:
        build(name, **config)
    message = str(err.value)
    assert message.startswith(f"{name}: ") and repr(key[:-1]) in message and f"did you mean {key!r}?" in message
    with pytest.raises(TypeError, match=rf"^{name}: unknown setting 'zzz_not_a_key'; {name} takes: ") as err:
        build(name, **model_class(name).tiny_config(), zzz_not_a_key=1)
    assert "did you mean" not in str(err.value)


@pytest.mark.parametrize("name", MODELS)
def test_loading_a_config_json_with_an_unknown_key_names_the_file_and_key(name, tmp_path):
    key, config = _misspelt(model_class(name).tiny_config())
    (tmp_path / "config.json").write_text(json.dumps({"model": name, "config": config}))
    with pytest.raises(ModelLoadError) as err:
        load_model(tmp_path)
    message = str(err.value)
    assert message.startswith(f"{tmp_path / 'config.json'}: {name}: unknown setting {key[:-1]!r}")
    assert f"did you mean {key!r}?" in message


def test_the_released_event_dst_still_loads_and_overrides_are_checked():
    from pathlib import Path

    folder = Path(__file__).parents[1] / "recipes" / "pretrained" / "event_dst"
    assert load_model(folder).model_name == "event_dst"
    with pytest.raises(TypeError, match=r"^event_dst: unknown setting 'dropot' \(did you mean 'dropout'\?\)"):
        load_model(folder, dropot=0.0)
