"""X3D backbone: stage shapes, pytorchvideo checkpoint format, activation checkpointing."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

from fpspot.models.blocks import x3d as x3d_module
from fpspot.models.blocks.x3d import X3D, X3DWeightsError, load_pytorchvideo_x3d, x3d

# ------------------------------------------------------------------ the public pytorchvideo checkpoint layout
# An independent statement of pytorchvideo's ``create_x3d`` state dict (pytorchvideo 0.1.5, X3D_S.pyth /
# X3D_M.pyth / X3D_L.pyth): key names and shapes, written from the published architecture, not from our module.


def _bn(prefix: str, channels: int) -> dict[str, tuple[int, ...]]:
    return {f"{prefix}.weight": (channels,), f"{prefix}.bias": (channels,), f"{prefix}.running_mean": (channels,),
            f"{prefix}.running_var": (channels,), f"{prefix}.num_batches_tracked": ()}


def pytorchvideo_x3d_layout(depth_factor: float, with_head: bool = True) -> dict[str, tuple[int, ...]]:
    def round_width(width, multiplier, divisor=8):
        width *= multiplier
        out = max(divisor, int(width + divisor / 2) // divisor * divisor)
        return out + divisor if out < 0.9 * width else out

    keys = {"blocks.0.conv.conv_t.weight": (24, 3, 1, 3, 3), "blocks.0.conv.conv_xy.weight": (24, 1, 5, 1, 1)}
    keys.update(_bn("blocks.0.norm", 24))
    dim_in = 24
    for stage, (base_depth, width) in enumerate(zip((1, 2, 5, 3), (24, 48, 96, 192)), start=1):
        inner = int(2.25 * width)
        for i in range(math.ceil(depth_factor * base_depth)):
            p = f"blocks.{stage}.res_blocks.{i}"
            block_in = dim_in if i == 0 else width
            if i == 0:
                keys[f"{p}.branch1_conv.weight"] = (width, block_in, 1, 1, 1)
                if block_in != width:
                    keys.update(_bn(f"{p}.branch1_norm", width))
            keys[f"{p}.branch2.conv_a.weight"] = (inner, block_in, 1, 1, 1)
            keys.update(_bn(f"{p}.branch2.norm_a", inner))
            keys[f"{p}.branch2.conv_b.weight"] = (inner, 1, 3, 3, 3)
            keys.update(_bn(f"{p}.branch2.norm_b.0", inner))
            if i % 2 == 0:
                se = round_width(inner, 0.0625)
                keys.update({f"{p}.branch2.norm_b.1.block.0.weight": (se, inner, 1, 1, 1),
                             f"{p}.branch2.norm_b.1.block.0.bias": (se,),
                             f"{p}.branch2.norm_b.1.block.2.weight": (inner, se, 1, 1, 1),
                             f"{p}.branch2.norm_b.1.block.2.bias": (inner,)})
            keys[f"{p}.branch2.conv_c.weight"] = (width, inner, 1, 1, 1)
            keys.update(_bn(f"{p}.branch2.norm_c", width))
        dim_in = width
    if with_head:
        keys["blocks.5.pool.pre_conv.weight"] = (432, 192, 1, 1, 1)
        keys.update(_bn("blocks.5.pool.pre_norm", 432))
        keys["blocks.5.pool.post_conv.weight"] = (2048, 432, 1, 1, 1)
        keys.update({"blocks.5.proj.weight": (400, 2048), "blocks.5.proj.bias": (400,)})
    return keys


def random_state(layout: dict[str, tuple[int, ...]], seed: int = 0) -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    state = {}
    for key, shape in layout.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(1000, dtype=torch.long)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        elif key.endswith("running_mean"):
            state[key] = 0.1 * torch.randn(shape, generator=gen)
        elif ".norm" in key and key.endswith(".weight") or key.endswith("pre_norm.weight"):
            state[key] = 0.5 + torch.rand(shape, generator=gen)
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            state[key] = torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    return state


def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor, depths: tuple[int, ...]) -> torch.Tensor:
    """X3D trunk in eval mode from the pytorchvideo layer semantics, with functional ops only."""

    def bn(h, p):
        return F.batch_norm(h, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"],
                            state[f"{p}.bias"], training=False, eps=1e-5)

    h = F.conv3d(x, state["blocks.0.conv.conv_t.weight"], stride=(1, 2, 2), padding=(0, 1, 1))
    h = F.conv3d(h, state["blocks.0.conv.conv_xy.weight"], padding=(2, 0, 0), groups=24)
    h = F.relu(bn(h, "blocks.0.norm"))
    for stage, depth in enumerate(depths, start=1):
        for i in range(depth):
            p = f"blocks.{stage}.res_blocks.{i}"
            stride = (1, 2, 2) if i == 0 else (1, 1, 1)
            b = F.relu(bn(F.conv3d(h, state[f"{p}.branch2.conv_a.weight"]), f"{p}.branch2.norm_a"))
            inner = b.shape[1]
            b = bn(F.conv3d(b, state[f"{p}.branch2.conv_b.weight"], stride=stride, padding=1, groups=inner),
                   f"{p}.branch2.norm_b.0")
            if f"{p}.branch2.norm_b.1.block.0.weight" in state:
                s = b.mean(dim=(2, 3, 4), keepdim=True)
                s = F.relu(F.conv3d(s, state[f"{p}.branch2.norm_b.1.block.0.weight"],
                                    state[f"{p}.branch2.norm_b.1.block.0.bias"]))
                b = b * torch.sigmoid(F.conv3d(s, state[f"{p}.branch2.norm_b.1.block.2.weight"],
                                               state[f"{p}.branch2.norm_b.1.block.2.bias"]))
            b = b * torch.sigmoid(b)
            b = bn(F.conv3d(b, state[f"{p}.branch2.conv_c.weight"]), f"{p}.branch2.norm_c")
            shortcut = h
            if f"{p}.branch1_conv.weight" in state:
                shortcut = F.conv3d(h, state[f"{p}.branch1_conv.weight"], stride=stride)
            if f"{p}.branch1_norm.weight" in state:
                shortcut = bn(shortcut, f"{p}.branch1_norm")
            h = F.relu(shortcut + b)
    return h


# ------------------------------------------------------------------------------------------------ tests

@pytest.mark.parametrize("variant, depth_factor, num_params", [("x3d_s", 2.2, 2_006_130), ("x3d_m", 2.2, 2_006_130),
                                                               ("x3d_l", 5.0, 4_365_240)])
def test_state_dict_is_the_pytorchvideo_layout(variant, depth_factor, num_params):
    """Key names and shapes equal pytorchvideo's create_x3d without the head; parameter count as pytorchvideo's
    (2,006,130 for the X3D-S/M trunk, 4,365,240 for X3D-L, counted on pytorchvideo 0.1.5)."""
    own = {k: tuple(v.shape) for k, v in X3D(variant).state_dict().items()}
    assert own == pytorchvideo_x3d_layout(depth_factor, with_head=False)
    assert sum(p.numel() for p in X3D(variant).parameters()) == num_params


def test_stage_shapes():
    model = X3D("x3d_tiny").eval()
    with torch.no_grad():
        res2, res3, res4, res5 = model(torch.randn(2, 3, 8, 64, 96))
    assert res2.shape == (2, 24, 8, 16, 24)
    assert res3.shape == (2, 48, 8, 8, 12)
    assert res4.shape == (2, 96, 8, 4, 6)
    assert res5.shape == (2, 192, 8, 2, 3)
    with torch.no_grad():  # sizes not divisible by 32: every halving rounds up, T never strides
        shapes = [f.shape[2:] for f in model(torch.randn(1, 3, 5, 70, 100))]
    assert shapes == [(5, 18, 25), (5, 9, 13), (5, 5, 7), (5, 3, 4)]


def test_loads_pytorchvideo_checkpoint_and_matches_reference(tmp_path):
    """A ``.pyth`` in the public format (``model_state`` with the head ``blocks.5``, plus other entries) loads and
    the trunk computes what the reference statement of the architecture computes."""
    state = random_state(pytorchvideo_x3d_layout(2.2))
    path = tmp_path / "X3D_S.pyth"
    torch.save({"model_state": state, "epoch": 300, "cfg": "kinetics"}, path)
    model = x3d("x3d_s", weights=path).eval()
    x = torch.randn(1, 3, 3, 32, 64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        out = model(x)[-1]
        expected = reference_forward(state, x, (3, 5, 11, 7))
    assert out.shape == (1, 192, 3, 1, 2)
    torch.testing.assert_close(out, expected, rtol=1e-4, atol=1e-5)
    assert torch.equal(model.state_dict()["blocks.4.res_blocks.6.branch2.conv_c.weight"],
                       state["blocks.4.res_blocks.6.branch2.conv_c.weight"])


def test_wrong_variant_fails_listing_keys(tmp_path):
    path = tmp_path / "X3D_S.pyth"
    torch.save({"model_state": random_state(pytorchvideo_x3d_layout(2.2))}, path)
    with pytest.raises(X3DWeightsError) as err:
        load_pytorchvideo_x3d(X3D("x3d_l"), path)
    message = str(err.value)
    assert str(path) in message and "missing (" in message
    assert "blocks.1.res_blocks.3.branch2.conv_a.weight" in message
    layout = pytorchvideo_x3d_layout(2.2, with_head=False)
    layout["blocks.1.res_blocks.0.branch2.conv_a.weight"] = (60, 24, 1, 1, 1)
    torch.save({"model_state": random_state(layout)}, path)
    with pytest.raises(X3DWeightsError, match=r"shape mismatch \(1\): blocks\.1\.res_blocks\.0\.branch2\.conv_a"):
        load_pytorchvideo_x3d(X3D("x3d_s"), path)


def test_bad_files_fail_clearly(tmp_path):
    with pytest.raises(X3DWeightsError, match="no such file"):
        load_pytorchvideo_x3d(X3D("x3d_tiny"), tmp_path / "missing.pyth")
    garbage = tmp_path / "garbage.pyth"
    garbage.write_bytes(b"not a checkpoint")
    with pytest.raises(X3DWeightsError, match="garbage.pyth: not a readable torch checkpoint"):
        load_pytorchvideo_x3d(X3D("x3d_tiny"), garbage)
    listing = tmp_path / "list.pyth"
    torch.save({"model_state": [1, 2]}, listing)
    with pytest.raises(X3DWeightsError, match="model_state"):
        load_pytorchvideo_x3d(X3D("x3d_tiny"), listing)


def _train_step(model: X3D, x: torch.Tensor) -> torch.Tensor:
    out = model(x)
    loss = sum((f * torch.linspace(-1, 1, f.shape[1])[None, :, None, None, None]).square().mean() for f in out)
    loss.backward()
    return out[-1].detach()


def _perturbed_tiny() -> X3D:
    torch.manual_seed(0)
    model = X3D("x3d_tiny")
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.1 * torch.randn_like(p))
    return model


def test_checkpointing_matches_plain_step_including_batchnorm_stats():
    plain = _perturbed_tiny()
    ckpt = copy.deepcopy(plain)
    ckpt.set_grad_checkpointing(True)
    x = torch.randn(2, 3, 4, 32, 48, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(_train_step(ckpt, x), _train_step(plain, x))
    for (name, a), b in zip(plain.named_parameters(), ckpt.parameters()):
        torch.testing.assert_close(b.grad, a.grad, msg=name)
    plain_state, ckpt_state = plain.state_dict(), ckpt.state_dict()
    for key in plain_state:
        assert torch.equal(ckpt_state[key], plain_state[key]), key
    assert plain_state["blocks.1.res_blocks.0.branch2.norm_a.num_batches_tracked"] == 1


def test_naive_checkpointing_would_count_batchnorm_twice(monkeypatch):
    """The same step without the running-statistics guard updates BatchNorm twice: the guard is what keeps
    the statistics equal above."""
    monkeypatch.setattr(x3d_module, "_frozen_running_stats", lambda norms: x3d_module.contextlib.nullcontext())
    model = _perturbed_tiny()
    model.set_grad_checkpointing(True)
    _train_step(model, torch.randn(1, 3, 4, 32, 48))
    assert model.state_dict()["blocks.1.res_blocks.0.branch2.norm_a.num_batches_tracked"] == 2


def test_checkpointing_is_a_no_op_without_gradients(monkeypatch):
    calls = []
    real = x3d_module.checkpoint

    def counting(*args, **kwargs):
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(x3d_module, "checkpoint", counting)
    model = X3D("x3d_tiny")
    model.set_grad_checkpointing(True)
    x = torch.randn(1, 3, 4, 32, 48)
    model(x)
    assert len(calls) == 1 + 4  # stem + one residual block per stage
    calls.clear()
    with torch.no_grad():
        model(x)
    assert not calls
    model.requires_grad_(False)  # frozen backbone parameters, input without grad
    model(x)
    assert not calls
