"""The seq2seq block: equal to nn.Transformer, KV-cached decoding equal to full recomputation, padding
invariance, checkpointing, sinusoidal positions and input fusion."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from fpspot.models.blocks.seq2seq import InputFusion, Seq2Seq, SinusoidalPositions

D, H, FF = 32, 4, 64


pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(dropout: float, seed: int = 0) -> tuple[Seq2Seq, nn.Transformer]:
    torch.manual_seed(seed)
    ours = Seq2Seq(D, H, 2, 3, FF, dropout)
    ref = nn.Transformer(D, H, 2, 3, FF, dropout, batch_first=True)
    ref.load_state_dict(ours.state_dict())  # strict: same names and shapes
    return ours, ref


def _inputs(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    src = torch.randn(3, 11, D, generator=g)
    tgt = torch.randn(3, 7, D, generator=g)
    src_pad = torch.zeros(3, 11, dtype=torch.bool)
    src_pad[1, 8:] = True
    src_pad[2, 5:] = True
    tgt_pad = torch.zeros(3, 7, dtype=torch.bool)
    tgt_pad[2, 4:] = True
    return src, tgt, src_pad, tgt_pad


def _reference(ref: nn.Transformer, src, tgt, src_pad, tgt_pad):
    causal = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1]).isinf()  # bool, True = blocked
    return ref(src, tgt, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
               memory_key_padding_mask=src_pad, tgt_mask=causal, tgt_is_causal=True)


def test_state_dict_layout_and_init_match_nn_transformer():
    ours, ref = _pair(0.1)
    fresh = nn.Transformer(D, H, 2, 3, FF, 0.1, batch_first=True).state_dict()
    assert {k: v.shape for k, v in ours.state_dict().items()} == {k: v.shape for k, v in fresh.items()}
    # nn.Transformer's init: Xavier-uniform matrices, zero attention biases, LayerNorm (1, 0)
    for name, p in ours.named_parameters():
        if p.dim() > 1:
            bound = math.sqrt(6.0 / (p.shape[0] + p.shape[1]))
            assert p.abs().max() <= bound and p.abs().max() > 0.8 * bound, name
        if "in_proj_bias" in name or "attn.out_proj.bias" in name:
            assert torch.count_nonzero(p) == 0, name


def test_train_mode_outputs_and_gradients_equal_nn_transformer():
    ours, ref = _pair(0.0)
    ours.train(), ref.train()
    src, tgt, src_pad, tgt_pad = _inputs()
    y = ours(src, tgt, src_pad, tgt_pad, memory_pad_mask=src_pad)
    r = _reference(ref, src, tgt, src_pad, tgt_pad)
    valid = ~tgt_pad
    torch.testing.assert_close(y[valid], r[valid], atol=1e-5, rtol=1e-5)
    weight = torch.randn_like(y)
    (y[valid] * weight[valid]).sum().backward()
    (r[valid] * weight[valid]).sum().backward()
    ref_grads = dict(ref.named_parameters())
    for name, p in ours.named_parameters():
        torch.testing.assert_close(p.grad, ref_grads[name].grad, atol=1e-5, rtol=1e-4, msg=name)


def test_eval_mode_with_dropout_configured_equals_nn_transformer():
    ours, ref = _pair(0.1, seed=3)
    ours.eval(), ref.eval()
    src, tgt, src_pad, tgt_pad = _inputs(seed=4)
    with torch.no_grad():
        y = ours(src, tgt, src_pad, tgt_pad, memory_pad_mask=src_pad)
        r = _reference(ref, src, tgt, src_pad, tgt_pad)
        y2 = ours(src, tgt, src_pad, tgt_pad)  # the memory unmasked, as nn.Transformer's default
    # with gradients on, as under no_grad nn.Transformer's nested-tensor fast path zeroes padded memory rows
    r2 = ref(src, tgt, src_key_padding_mask=src_pad, tgt_key_padding_mask=tgt_pad,
             tgt_mask=nn.Transformer.generate_square_subsequent_mask(7).isinf(), tgt_is_causal=True).detach()
    valid = ~tgt_pad
    torch.testing.assert_close(y[valid], r[valid], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(y2[valid], r2[valid], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(y[valid], y2[valid])  # the memory mask matters


@pytest.mark.parametrize("chunks", [[1] * 7, [3, 1, 2, 1]])
def test_kv_cache_equals_full_recomputation(chunks):
    ours, _ = _pair(0.1, seed=5)
    ours.eval()
    src, tgt, src_pad, _ = _inputs(seed=6)
    with torch.no_grad():
        memory = ours.encode(src, src_pad)
        full = ours.decode(tgt, memory, memory_pad_mask=src_pad)
        cache = ours.new_cache(memory, src_pad)
        parts, pos = [], 0
        for n in chunks:
            parts.append(ours.decode(tgt[:, pos:pos + n], cache=cache))
            pos += n
    assert cache.length == tgt.shape[1]
    assert len(cache.self_kv) == 3 and cache.self_kv[0][0].shape == (3, H, 7, D // H)
    torch.testing.assert_close(torch.cat(parts, dim=1), full, atol=1e-5, rtol=1e-5)


def test_kv_cache_with_target_padding_equals_full():
    ours, _ = _pair(0.0, seed=7)
    ours.eval()
    src, tgt, src_pad, tgt_pad = _inputs(seed=8)
    tgt_pad = torch.zeros_like(tgt_pad)
    tgt_pad[0, 2] = True  # a padding position in the middle: later positions must not see it
    with torch.no_grad():
        memory = ours.encode(src, src_pad)
        full = ours.decode(tgt, memory, src_pad, tgt_pad)
        cache = ours.new_cache(memory, src_pad)
        steps = [ours.decode(tgt[:, i:i + 1], tgt_pad_mask=tgt_pad[:, i:i + 1], cache=cache) for i in range(7)]
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-5)


def test_outputs_do_not_depend_on_padded_content():
    ours, _ = _pair(0.1, seed=9)
    ours.eval()
    src, tgt, src_pad, _ = _inputs(seed=10)
    noisy = src.clone()
    noisy[src_pad] = torch.randn(int(src_pad.sum()), D) * 100
    with torch.no_grad():
        a = ours.decode(tgt, ours.encode(src, src_pad), src_pad)
        b = ours.decode(tgt, ours.encode(noisy, src_pad), src_pad)
        mem_a, mem_b = ours.encode(src, src_pad), ours.encode(noisy, src_pad)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(mem_a[~src_pad], mem_b[~src_pad], atol=1e-5, rtol=1e-5)


def test_fully_padded_sequence_stays_finite():
    ours, _ = _pair(0.0, seed=11)
    ours.eval()
    src, tgt, src_pad, _ = _inputs(seed=12)
    tgt_pad = torch.ones(3, 7, dtype=torch.bool)  # e.g. a filler window with every target masked
    with torch.no_grad():
        out = ours.decode(tgt, ours.encode(src, src_pad), src_pad, tgt_pad)
    assert torch.isfinite(out).all()


def test_grad_checkpointing_matches_plain_with_dropout():
    ours, _ = _pair(0.2, seed=13)
    ours.train()
    src, tgt, src_pad, tgt_pad = _inputs(seed=14)
    results = []
    for enable in (False, True):
        ours.grad_checkpointing = enable
        ours.zero_grad()
        torch.manual_seed(99)
        y = ours(src, tgt, src_pad, tgt_pad, memory_pad_mask=src_pad)
        y[~tgt_pad].square().sum().backward()
        results.append((y.detach(), {n: p.grad.clone() for n, p in ours.named_parameters()}))
    torch.testing.assert_close(results[0][0], results[1][0])
    for name, grad in results[0][1].items():
        torch.testing.assert_close(grad, results[1][1][name], msg=name)


def test_sinusoidal_positions_follow_the_formula():
    pe = SinusoidalPositions(8, base=1000.0)
    positions = torch.tensor([[0, 1, 750], [-1, 3, 37]])
    out = pe(positions)
    assert out.shape == (2, 3, 8)
    for p in (0, 1, 750, -1, 3, 37):
        row = out[positions == p][0]
        for i in range(4):
            w = math.exp(-2 * i * math.log(1000.0) / 8)
            assert row[2 * i].item() == pytest.approx(math.sin(p * w), abs=1e-5)
            assert row[2 * i + 1].item() == pytest.approx(math.cos(p * w), abs=1e-5)
    with pytest.raises(ValueError):
        SinusoidalPositions(7)


def test_input_fusion_equals_one_linear_over_concatenated_streams():
    torch.manual_seed(0)
    fusion = InputFusion(16, dense={"a": 5, "b": 3}, categorical={"frame": 9})
    a, b = torch.randn(2, 4, 5), torch.randn(2, 4, 3)
    frame = torch.randint(0, 9, (2, 4))
    out = fusion({"a": a, "b": b, "frame": frame, "ignored": torch.zeros(1)})
    # the baseline's single Linear over cat(a, b, one_hot(frame)) with stacked weights and summed biases
    weight = torch.cat([fusion.dense["a"].weight, fusion.dense["b"].weight, fusion.categorical["frame"].weight.T], 1)
    bias = fusion.dense["a"].bias + fusion.dense["b"].bias
    x = torch.cat([a, b, nn.functional.one_hot(frame, 9).float()], -1)
    torch.testing.assert_close(out, x @ weight.T + bias)
    with pytest.raises(KeyError, match="'b'"):
        fusion({"a": a, "frame": frame})
    with pytest.raises(ValueError, match="'a' has 4 features"):
        fusion({"a": a[..., :4], "b": b, "frame": frame})
