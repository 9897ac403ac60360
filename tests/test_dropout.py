"""fpspot's Dropout: the distribution of nn.Dropout (rate, independence, scaling, gradient), seeded by torch,
identity in eval mode, and used by the seq2seq block."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from fpspot.models.blocks.dropout import Dropout, dropout, keep_mask
from fpspot.models.blocks.seq2seq import Attention, Seq2Seq


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_mask_drops_each_element_independently_with_probability_p(p):
    torch.manual_seed(0)
    keep = keep_mask((1000, 1003), p)  # an odd element count: the last random word is cut
    dropped = ~keep
    n = dropped.numel()
    sd = (p * (1 - p) / n) ** 0.5
    assert abs(dropped.float().mean().item() - p) < 5 * sd
    # the four 16-bit lanes of one random word and neighbouring rows are independent: P(both dropped) = p^2
    flat = dropped.flatten()
    for lag in (1, 2, 3, 4, 1003):
        both = (flat[:-lag] & flat[lag:]).float().mean().item()
        assert abs(both - p * p) < 5 * (p * p * (1 - p * p) / (n - lag)) ** 0.5, lag
    # every lane position within a word drops at the same rate
    lanes = dropped.flatten()[: n - n % 4].view(-1, 4).float().mean(0)
    assert (lanes - p).abs().max().item() < 5 * (p * (1 - p) / (n / 4)) ** 0.5


def test_kept_elements_are_scaled_and_the_gradient_is_the_mask():
    torch.manual_seed(1)
    x = torch.randn(64, 192, requires_grad=True)
    y = dropout(x, 0.25)
    kept = y != 0
    torch.testing.assert_close(y[kept], x[kept] / 0.75)
    y.backward(torch.full_like(y, 2.0))
    torch.testing.assert_close(x.grad, kept.float() * 2.0 / 0.75)


def test_same_seed_same_mask_and_torch_generator_drives_it():
    x = torch.randn(32, 96)
    torch.manual_seed(5)
    a = dropout(x, 0.2)
    torch.manual_seed(5)
    b = dropout(x, 0.2)
    c = dropout(x, 0.2)
    assert torch.equal(a, b)
    assert not torch.equal(b, c)


def test_module_is_identity_in_eval_mode_and_with_p_zero_and_matches_nn_dropout_api():
    x = torch.randn(8, 16)
    module = Dropout(0.4)
    assert set(module.state_dict()) == set(nn.Dropout(0.4).state_dict()) == set()
    module.eval()
    assert module(x) is x
    assert dropout(x, 0.0) is x
    assert torch.equal(dropout(x, 1.0), torch.zeros_like(x))
    with pytest.raises(ValueError, match="dropout probability"):
        Dropout(1.5)
    with pytest.raises(ValueError, match="dropout probability"):
        dropout(x, -0.1)


def test_seq2seq_layers_use_it_and_training_mode_drops():
    model = Seq2Seq(32, 4, 1, 1, 64, dropout=0.3)
    kinds = {type(m) for m in model.modules() if isinstance(m, (nn.Dropout, Dropout))}
    assert kinds == {Dropout}
    src, tgt = torch.randn(2, 5, 32), torch.randn(2, 4, 32)
    model.eval()
    reference = model(src, tgt)
    model.train()
    torch.manual_seed(0)
    assert not torch.allclose(model(src, tgt), reference)
    for m in model.modules():  # residual / feed-forward dropouts (and the attention weights') off
        if isinstance(m, Dropout):
            m.p = 0.0
        elif isinstance(m, Attention):
            m.dropout = 0.0
    torch.testing.assert_close(model(src, tgt), reference)
