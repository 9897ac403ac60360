"""The plain training loop the model tests use to overfit one fixed batch."""

from __future__ import annotations

import torch


def fit_batch(model: torch.nn.Module, batch: dict, steps: int, lr: float) -> list[float]:
    """``steps`` AdamW steps at ``lr`` on ``model(batch)["loss"]`` (the model's mode is left as it is);
    returns the loss of every step."""
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        loss = model(batch)["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
