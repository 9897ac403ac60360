"""The contract every fpspot model follows, so one trainer, one inference engine and one zoo serve them all.

A model is an ``nn.Module`` built from keyword arguments (its *config*, JSON-serialisable) and:

* ``forward(batch) -> dict``: ``batch`` is a dict of tensors (see each model's docstring for the keys and
  shapes). The output holds the model's predictions (``"logits"`` ``(B, 9, M, T)`` for TAAD and TAAD+GNN)
  and, when the batch carries targets, ``"loss"`` (a scalar) plus its named components, computed by
  :meth:`compute_loss` with the class weights the model was given. Computing the loss inside ``forward``
  keeps DDP and DeepSpeed engines (which only wrap ``forward``) in charge of the whole step.
* ``set_class_weights(weights)``: per-class loss weights (a non-persistent buffer: they are training
  settings, not model state).
* ``set_grad_checkpointing(enable)``: activation checkpointing per residual block (no-op for models
  without a backbone or for blocks that need no gradient).
* ``set_backbone_frozen(frozen)``: run the backbone without gradients (BatchNorm statistics still update,
  as in the baseline's frozen epochs). Parameters keep ``requires_grad``, so a DDP or DeepSpeed wrapper
  built before unfreezing still reduces their gradients afterwards; the trainer enables
  ``find_unused_parameters`` while any epoch is frozen.
* ``set_epoch(epoch)``: hook for epoch-dependent losses (the GNN's focal gamma); default no-op.
* parameters of the video backbone live under the attribute ``backbone`` (names start with
  ``"backbone."``): the trainer gives them their own learning rate.
* ``save_pretrained(dir)`` / :func:`fpspot.models.load_model` (``config.json`` + ``model.safetensors``).
* ``tiny_config()`` and ``example_batch(config, batch_size)``: a small configuration and a realistic batch
  with targets, so the zoo tests run over every registered model (in the manner of timm).
* the config keys are the keyword parameters of ``__init__`` (:meth:`SpotterModel.config_keys`); an
  ``__init__`` that takes ``**config`` passes the rest on to its parent's, and a key that no ``__init__``
  names is refused (:meth:`SpotterModel.check_config`), never stored and ignored.
* ``input_kind``: what ``forward`` reads: ``"video"`` (clip batches of video and boxes, run over whole halves
  by :mod:`fpspot.infer`), ``"frame_logits"`` (the DST: a frame model's per-frame logits) or ``"events"``
  (the event DST: a spotter's events).
"""

from __future__ import annotations

import difflib
import inspect
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import nn

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "model.safetensors"


class SpotterModel(nn.Module):
    """Base class of the registered models (see the module docstring for the contract)."""

    #: registry name, set by :func:`fpspot.models.zoo.register_model`
    model_name: ClassVar[str] = ""
    #: what ``forward`` reads: ``"video"``, ``"frame_logits"`` or ``"events"`` (see the module docstring)
    input_kind: ClassVar[str] = "video"

    def __init__(self, **config: Any):
        super().__init__()
        self.config: dict[str, Any] = dict(config)
        self.grad_checkpointing = False
        self.backbone_frozen = False
        self.register_buffer("class_weights", torch.ones(0), persistent=False)

    # ------------------------------------------------------------------------------------------- config

    @classmethod
    def config_keys(cls) -> frozenset[str] | None:
        """The config keys ``cls(**config)`` takes: the keyword parameters of ``__init__`` of ``cls`` and of
        its parents, as far as each ``__init__`` passes ``**config`` on; ``None`` when every ``__init__`` up to
        :class:`SpotterModel` takes ``**config`` (any key)."""
        keys: set[str] = set()
        for klass in cls.__mro__:
            if klass is SpotterModel:
                return None
            init = klass.__dict__.get("__init__")
            if init is None:
                continue
            params = list(inspect.signature(init).parameters.values())[1:]  # without self
            keys.update(p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY))
            if not any(p.kind is p.VAR_KEYWORD for p in params):
                return frozenset(keys)
        return None

    @classmethod
    def check_config(cls, config: dict[str, Any]) -> None:
        """Raise ``TypeError`` naming the model, every key of ``config`` it does not take, the likely intended
        key of each (``difflib``) and the keys it takes."""
        known = cls.config_keys()
        unknown = sorted(set(config) - known) if known is not None else []
        if not unknown:
            return
        name = cls.model_name or cls.__name__

        def describe(key: str) -> str:
            close = difflib.get_close_matches(key, sorted(known), n=1)
            return f"{key!r} (did you mean {close[0]!r}?)" if close else repr(key)

        plural = "s" if len(unknown) > 1 else ""
        raise TypeError(f"{name}: unknown setting{plural} {', '.join(map(describe, unknown))}; "
                        f"{name} takes: {', '.join(sorted(known))}")

    # ----------------------------------------------------------------------------------- training hooks

    def set_class_weights(self, weights: Sequence[float] | torch.Tensor | None) -> None:
        """Per-class loss weights ``(num_classes,)``; ``None`` or empty: unweighted."""
        if weights is None:
            weights = torch.ones(0)
        weights = torch.as_tensor(weights, dtype=torch.float32, device=self.class_weights.device)
        self.class_weights = weights

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        """Recompute activations in backward, block by block. Subclasses with blocks override and call super."""
        self.grad_checkpointing = bool(enable)

    def set_backbone_frozen(self, frozen: bool = True) -> None:
        """Run the video backbone without gradients (BatchNorm statistics still update in train mode)."""
        self.backbone_frozen = bool(frozen)

    def set_epoch(self, epoch: int) -> None:
        """Called by the trainer at the start of every epoch (0-based). Default: nothing."""

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        """A small configuration of this model that runs a training step on a CPU in about a second."""
        raise NotImplementedError

    @classmethod
    def example_batch(cls, config: dict[str, Any], batch_size: int = 2,
                      generator: torch.Generator | None = None) -> dict[str, Any]:
        """A batch with targets that ``cls(**config)`` accepts (random but well-formed values)."""
        raise NotImplementedError

    def compute_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"loss": scalar, **components}`` of ``outputs`` against the targets in ``batch``."""
        raise NotImplementedError

    # --------------------------------------------------------------------------------- save and load

    def save_pretrained(self, directory: str | os.PathLike) -> Path:
        """Write ``config.json`` (``{"model": name, "config": {...}}``) and ``model.safetensors``, atomically."""
        from safetensors.torch import save_file

        from fpspot import __version__
        from fpspot.utils.atomic import atomic_open, atomic_path

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        with atomic_path(directory / WEIGHTS_NAME) as tmp:
            save_file(state, str(tmp), metadata={"model": self.model_name, "format": "pt"})
        with atomic_open(directory / CONFIG_NAME) as handle:
            json.dump({"model": self.model_name, "config": self.config_to_save(), "fpspot_version": __version__},
                      handle, indent=1, sort_keys=True)
        return directory

    def config_to_save(self) -> dict[str, Any]:
        """The config written to ``config.json`` (override to drop construction-only fields)."""
        return dict(self.config)

    def num_parameters(self, trainable_only: bool = False) -> int:
        return sum(p.numel() for p in self.parameters() if p.requires_grad or not trainable_only)
