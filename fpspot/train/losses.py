"""Per-frame classification losses of the baselines, as functions of logits ``(B, K, M, T)``.

* :func:`masked_weighted_cross_entropy` (TAAD, spec §2.3):
  ``mean_{b,m,t}(CE(logits, y) * mask * w[y])`` - the mean runs over all ``B*M*T`` elements, masked ones
  included, and is not normalised by the weight sum;
* :func:`focal_loss` (TAAD+GNN, spec §3.4): ``scale * mean(alpha[y] * (1 - p_y)^gamma * -log p_y)`` on fp32
  logits, optionally masked (the baseline passes no mask).

Class-weight *schemes* (baseline, inverse frequency, ...) live in :mod:`fpspot.train.class_weights`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

#: TAAD cross-entropy weights of the baseline (spec §2.3): background 0.05, each action 0.95
TAAD_CLASS_WEIGHTS = (0.05,) + (0.95,) * 8
#: TAAD+GNN focal alpha of the baseline (spec §3.4): 1/161 background, 20/161 each action
GNN_FOCAL_ALPHA = (1 / 161,) + (20 / 161,) * 8


def _check(logits: torch.Tensor, labels: torch.Tensor, weights: torch.Tensor | None) -> None:
    if logits.dim() < 2 or labels.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"labels {tuple(labels.shape)} do not match logits {tuple(logits.shape)} "
                         "(expected logits (B, K, ...) and labels (B, ...))")
    if weights is not None and weights.numel() and weights.shape != (logits.shape[1],):
        raise ValueError(f"class weights must have {logits.shape[1]} entries, got {tuple(weights.shape)}")


def masked_weighted_cross_entropy(logits: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None = None,
                                  weights: torch.Tensor | None = None) -> torch.Tensor:
    """TAAD loss: ``mean(CE(logits, labels) * mask * weights[labels])`` over every element.

    logits ``(B, K, ...)``; labels ``(B, ...)`` int64 in ``0..K-1``; mask ``(B, ...)`` (1 = valid) or None;
    weights ``(K,)``, or None / empty for 1. Returns a scalar (fp32).
    """
    _check(logits, labels, weights)
    loss = F.cross_entropy(logits.float(), labels, reduction="none")
    if weights is not None and weights.numel():
        loss = loss * weights.to(loss)[labels]
    if mask is not None:
        loss = loss * mask.to(loss)
    return loss.mean()


def focal_loss(logits: torch.Tensor, labels: torch.Tensor, alpha: torch.Tensor | None = None, gamma: float = 1.0,
               mask: torch.Tensor | None = None, scale: float = 100.0) -> torch.Tensor:
    """TAAD+GNN loss: ``scale * mean(alpha[y] * (1 - p_y)^gamma * -log p_y)`` over every element.

    logits ``(B, K, ...)`` (computed in fp32); labels ``(B, ...)``; alpha ``(K,)`` or None / empty for 1; mask
    ``(B, ...)`` multiplies the per-element loss when given (the mean still runs over all elements).
    """
    _check(logits, labels, alpha)
    log_prob = F.log_softmax(logits.float(), dim=1).gather(1, labels.unsqueeze(1)).squeeze(1)
    prob = log_prob.exp()
    loss = -log_prob * (1.0 - prob).clamp(min=0.0).pow(gamma)
    if alpha is not None and alpha.numel():
        loss = loss * alpha.to(loss)[labels]
    if mask is not None:
        loss = loss * mask.to(loss)
    return scale * loss.mean()
