"""DST: denoising sequence transduction from per-frame TAAD logits to an event sequence (spec §4).

Encoder: one token per frame of a window of ``T`` frames (750 = 30 s). Its embedding is the sum of one
projection per input stream (:class:`~fpspot.models.blocks.seq2seq.InputFusion`):

* ``teamvec`` ``(B, 5, 26, T)`` -> ``(B, T, 130)`` (feature = channel * 26 + slot, spec §4.1);
* ``logits`` ``(B, 9, 26, T)`` raw TAAD logits -> ``(B, T, 234)`` (feature = class * 26 + slot);
* ``gnn_logits`` ``(B, 9, 26, T)`` when ``use_gnn_logits`` (extension 2: the GNN stream fused in);
* the relative frame index ``1..T`` (padding -> ``T + 1``) through an embedding of ``T + 2`` rows. The
  baseline concatenates a one-hot of the same size before one big ``Linear``; a ``Linear`` over a one-hot is
  an embedding lookup, so this is the same function at a fraction of the cost;

plus a sinusoidal embedding of the frame index with base 1000 (spec §4.1). Frames with
``frame_index == -1`` are padding: masked in the encoder's self-attention and in the decoder's
cross-attention (the baseline masks only the encoder; with both masks the outputs do not depend on what
the padded frames contain).

Decoder: one token per event, ``(action, slot, frame)`` with ``action`` 0..7 = class - 1, 8 = SOS,
9 = EOS; ``slot`` 0..25, 26 = neutral (SOS/EOS); ``frame`` 0..T+1 (0 for SOS). The token embedding is
the sum of three embeddings (``action`` 10, ``slot`` 27, ``frame`` T+2) plus the same sinusoidal
embedding of its frame. Heads: ``action`` (10), ``slot`` (27), ``frame`` (T + 2).

Frame head (``frame_head``): ``"linear"`` is the baseline's ``Linear(d, T + 2)``: the decoder state must
name an absolute frame number, which the model learns slowly (it has to map "the encoder token that holds
this event" to a class id over hundreds of frames). ``"pointer"`` scores every encoder frame token against
the decoder state instead, ``logit[t] = <W_q h, W_k m_t> / sqrt(d)`` for frames ``1..T`` (padding frames
excluded), plus a learned logit for the two special tokens 0 (SOS) and ``T + 1`` (EOS / after the end): a
pointer network over the window's own frames, so the frame decision is made where the evidence is.

Training batch (keys of the DST batch contract): ``teamvec``, ``logits``, [``gnn_logits``],
``frame_index`` ``(B, T)`` int64 (1..T, -1 padding) and the target sequence ``tgt_action``, ``tgt_slot``,
``tgt_frame``, ``tgt_mask`` ``(B, L)`` with SOS first and EOS last; teacher forcing feeds ``[:, :-1]`` and
predicts ``[:, 1:]``. Loss = CE(action, label smoothing 0.05) + CE(slot, 0.05) + CE(frame), each
averaged over the **valid target tokens** (the baseline divides by ``B x (L - 1)`` including padding, which
makes the loss depend on how long the longest sequence of the batch is).

Decoding (:meth:`DST.generate`): greedy, with a KV cache; per window it stops at the first EOS (or SOS),
and a window that never emits EOS within ``max_events`` steps keeps its events (the baseline drops the
whole window). Relative frame ``r`` (1..T) is absolute frame ``start + r - 1`` (the baseline adds ``r`` and
so is one frame late, spec §4.5).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from fpspot.data.dst_windows import pad_targets
from fpspot.models.base import SpotterModel
from fpspot.models.blocks.seq2seq import InputFusion, Seq2Seq, SinusoidalPositions
from fpspot.models.zoo import register_model
from fpspot.schema import MISSING_FILL, NUM_ACTIONS, NUM_CLASSES, NUM_SLOTS

SOS = NUM_ACTIONS  # 8
EOS = NUM_ACTIONS + 1  # 9
NUM_ACTION_TOKENS = NUM_ACTIONS + 2  # 10
NEUTRAL_SLOT = NUM_SLOTS  # 26
NUM_SLOT_TOKENS = NUM_SLOTS + 1  # 27
TEAMVEC_CHANNELS = 5
TARGET_KEYS = ("tgt_action", "tgt_slot", "tgt_frame", "tgt_mask")


@register_model("dst")
class DST(SpotterModel):
    """The DST of spec §4.3 (about 45.5 M parameters at the default size); see the module docstring."""

    input_kind = "frame_logits"  # reads a frame model's per-frame logits

    def __init__(self, window: int = 750, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6,
                 num_decoder_layers: int = 6, dim_feedforward: int = 2048, dropout: float = 0.1,
                 use_gnn_logits: bool = False, max_events: int = 25, label_smoothing: float = 0.05,
                 pe_base: float = 1000.0, frame_head: str = "linear", frame_hw: Any = None):
        super().__init__(window=window, d_model=d_model, nhead=nhead, num_encoder_layers=num_encoder_layers,
                         num_decoder_layers=num_decoder_layers, dim_feedforward=dim_feedforward, dropout=dropout,
                         use_gnn_logits=use_gnn_logits, max_events=max_events, label_smoothing=label_smoothing,
                         pe_base=pe_base, frame_head=frame_head, frame_hw=frame_hw)
        if window < 1:
            raise ValueError(f"window must be positive, got {window}")
        if frame_head not in ("linear", "pointer"):
            raise ValueError(f"frame_head must be 'linear' or 'pointer', got {frame_head!r}")
        self.window = int(window)
        self.num_frame_tokens = self.window + 2  # 0 = SOS, 1..T frames, T + 1 = after the end / padding
        dense = {"teamvec": TEAMVEC_CHANNELS * NUM_SLOTS, "logits": NUM_CLASSES * NUM_SLOTS}
        if use_gnn_logits:
            dense["gnn_logits"] = NUM_CLASSES * NUM_SLOTS
        self.encoder_embedding = InputFusion(d_model, dense=dense, categorical={"frame": self.num_frame_tokens})
        self.decoder_embedding = InputFusion(d_model, categorical={
            "action": NUM_ACTION_TOKENS, "slot": NUM_SLOT_TOKENS, "frame": self.num_frame_tokens})
        self.positions = SinusoidalPositions(d_model, base=pe_base)
        self.seq2seq = Seq2Seq(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout)
        self.action_head = nn.Linear(d_model, NUM_ACTION_TOKENS)
        self.slot_head = nn.Linear(d_model, NUM_SLOT_TOKENS)
        if frame_head == "linear":
            self.frame_head = nn.Linear(d_model, self.num_frame_tokens)
        else:
            self.frame_query = nn.Linear(d_model, d_model)
            self.frame_key = nn.Linear(d_model, d_model)
            self.frame_special = nn.Linear(d_model, 2)  # logits of frame tokens 0 and T + 1

    # ------------------------------------------------------------------------------------------ hooks

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        super().set_grad_checkpointing(enable)
        self.seq2seq.grad_checkpointing = bool(enable)

    @property
    def streams(self) -> list[str]:
        """Names of the dense encoder streams (``teamvec``, ``logits`` and maybe ``gnn_logits``)."""
        return list(self.encoder_embedding.dense)

    # ---------------------------------------------------------------------------------------- encoder

    def _check_inputs(self, batch: dict[str, Any]) -> tuple[int, int]:
        for key in (*self.streams, "frame_index"):
            if key not in batch:
                raise KeyError(f"DST batch: missing {key!r} (has {sorted(k for k in batch if k != 'meta')})")
        b, t = batch["frame_index"].shape
        if t > self.window:
            raise ValueError(f"DST batch: frame_index covers {t} frames, the model's window is {self.window}")
        shapes = {"teamvec": (b, TEAMVEC_CHANNELS, NUM_SLOTS, t), "logits": (b, NUM_CLASSES, NUM_SLOTS, t),
                  "gnn_logits": (b, NUM_CLASSES, NUM_SLOTS, t)}
        for key in self.streams:
            if tuple(batch[key].shape) != shapes[key]:
                raise ValueError(f"DST batch: {key!r} has shape {tuple(batch[key].shape)}, expected {shapes[key]}")
        return b, t

    def encode(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(memory (B, T, D), pad_mask (B, T))`` of the encoder; ``pad_mask`` True at padding frames."""
        self._check_inputs(batch)
        frame_index = batch["frame_index"].long()
        pad = frame_index < 0
        frame = torch.where(pad, self.window + 1, frame_index)
        streams = {key: rearrange(batch[key].float(), "b c s t -> b t (c s)") for key in self.streams}
        streams["frame"] = frame
        x = self.encoder_embedding(streams) + self.positions(frame)
        return self.seq2seq.encode(x, pad), pad

    # ---------------------------------------------------------------------------------------- decoder

    def embed_tokens(self, action: torch.Tensor, slot: torch.Tensor, frame: torch.Tensor) -> torch.Tensor:
        """Decoder token embeddings ``(B, L, D)`` of ``(B, L)`` int64 action / slot / frame tokens."""
        return self.decoder_embedding({"action": action, "slot": slot, "frame": frame}) + self.positions(frame)

    def frame_keys(self, memory: torch.Tensor) -> torch.Tensor | None:
        """Pointer keys ``(B, T, D)`` of the encoder frames (``None`` for the linear frame head)."""
        return self.frame_key(memory) if self.config["frame_head"] == "pointer" else None

    def heads(self, hidden: torch.Tensor, keys: torch.Tensor | None = None,
              pad: torch.Tensor | None = None) -> dict[str, torch.Tensor]:
        """``action_logits (B, L, 10)``, ``slot_logits (B, L, 27)``, ``frame_logits (B, L, T_model + 2)`` of
        decoder states ``hidden (B, L, D)``; the pointer head needs ``keys`` (:meth:`frame_keys`) and the
        encoder's ``pad (B, T)`` mask."""
        out = {"action_logits": self.action_head(hidden), "slot_logits": self.slot_head(hidden)}
        if self.config["frame_head"] == "linear":
            out["frame_logits"] = self.frame_head(hidden)
            return out
        states = hidden if hidden.dim() == 3 else hidden[:, None]  # (B, D) during decoding
        b, l, d = states.shape
        t = keys.shape[1]
        scores = torch.einsum("bld,btd->blt", self.frame_query(states), keys) / d ** 0.5
        scores = scores.masked_fill(pad[:, None, :], -1e4)
        special = self.frame_special(states)
        beyond = scores.new_full((b, l, self.window - t), -1e4)  # a shorter batch than the model's window
        frame_logits = torch.cat([special[..., :1], scores, beyond, special[..., 1:]], dim=-1)
        out["frame_logits"] = frame_logits if hidden.dim() == 3 else frame_logits[:, 0]
        return out

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """With targets: teacher-forced logits ``action_logits (B, L-1, 10)``, ``slot_logits (B, L-1, 27)``,
        ``frame_logits (B, L-1, T+2)`` and ``loss``, ``loss_action``, ``loss_slot``, ``loss_frame``.
        Without targets: the greedy decoding of :meth:`generate`."""
        if not all(key in batch for key in TARGET_KEYS):
            return self.generate(batch)
        memory, pad = self.encode(batch)
        mask = batch["tgt_mask"].bool()
        tokens = [batch[k][:, :-1].long().clamp(min=0) for k in ("tgt_action", "tgt_slot", "tgt_frame")]
        hidden = self.seq2seq.decode(self.embed_tokens(*tokens), memory, memory_pad_mask=pad,
                                     tgt_pad_mask=~mask[:, :-1])
        outputs = self.heads(hidden, self.frame_keys(memory), pad)
        outputs.update(self.compute_loss(outputs, batch))
        return outputs

    def _action_weights(self, device) -> torch.Tensor | None:
        w = self.class_weights
        if w.numel() == 0:
            return None
        if w.numel() == NUM_CLASSES:  # background + 8 classes, as for TAAD: classes keep theirs, SOS/EOS get 1
            return torch.cat([w[1:], w.new_ones(2)]).to(device)
        if w.numel() == NUM_ACTION_TOKENS:
            return w.to(device)
        raise ValueError(f"DST class weights: expected 9 (background + classes) or 10 (action tokens) values, "
                         f"got {w.numel()}")

    def compute_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Sum of the three cross-entropies over the valid target tokens ``tgt_mask[:, 1:]`` (see module doc)."""
        valid = batch["tgt_mask"][:, 1:].bool()
        smoothing = float(self.config["label_smoothing"])
        terms = {
            "loss_action": _masked_ce(outputs["action_logits"], batch["tgt_action"][:, 1:], valid,
                                      self._action_weights(valid.device), smoothing),
            "loss_slot": _masked_ce(outputs["slot_logits"], batch["tgt_slot"][:, 1:], valid, None, smoothing),
            "loss_frame": _masked_ce(outputs["frame_logits"], batch["tgt_frame"][:, 1:], valid, None, 0.0),
        }
        terms["loss"] = terms["loss_action"] + terms["loss_slot"] + terms["loss_frame"]
        return terms

    # ---------------------------------------------------------------------------------------- decoding

    @torch.no_grad()
    def generate(self, batch: dict[str, Any], max_events: int | None = None, use_cache: bool = True
                 ) -> dict[str, torch.Tensor]:
        """Greedy decoding of every window of ``batch`` (at most ``max_events`` events each).

        Returns ``(B, S)`` tensors, ``S = max_events``: ``action`` int64 class id 1..8, ``slot`` 0..25,
        ``frame`` relative frame 1..T (absolute = window start + frame - 1), ``score`` float32 (max softmax of
        the action head), ``valid`` bool. A decoded token is valid when no EOS/SOS came before it or at it,
        its slot is not the neutral slot and its frame is a non-padding frame 1..T; invalid entries hold
        action 0, slot -1, frame -1, score 0. ``use_cache=False`` recomputes the whole decoder every step
        (the baseline's way, kept for tests and benchmarks); both give the same result.
        """
        steps = int(self.config["max_events"] if max_events is None else max_events)
        memory, pad = self.encode(batch)
        b, t = pad.shape
        device = memory.device
        action = torch.full((b, 1), SOS, dtype=torch.long, device=device)
        slot = torch.full((b, 1), NEUTRAL_SLOT, dtype=torch.long, device=device)
        frame = torch.zeros((b, 1), dtype=torch.long, device=device)
        cache = self.seq2seq.new_cache(memory, pad) if use_cache else None
        keys = self.frame_keys(memory)
        history: list[torch.Tensor] = []
        out = {"action": torch.zeros((b, steps), dtype=torch.long, device=device),
               "slot": torch.full((b, steps), -1, dtype=torch.long, device=device),
               "frame": torch.full((b, steps), -1, dtype=torch.long, device=device),
               "score": torch.zeros((b, steps), dtype=torch.float32, device=device),
               "valid": torch.zeros((b, steps), dtype=torch.bool, device=device)}
        done = torch.zeros(b, dtype=torch.bool, device=device)
        valid_frames = torch.cat([~pad, pad.new_zeros(b, 1)], dim=1)  # index r - 1 for r in 1..T (+1 guard)
        for step in range(steps):
            token = self.embed_tokens(action, slot, frame)
            if use_cache:
                hidden = self.seq2seq.decode(token, cache=cache)[:, -1]
            else:
                history.append(token)
                hidden = self.seq2seq.decode(torch.cat(history, dim=1), memory, memory_pad_mask=pad)[:, -1]
            logits = self.heads(hidden, keys, pad)
            probs = logits["action_logits"].float().softmax(dim=-1)
            score, a = probs.max(dim=-1)
            s = logits["slot_logits"].argmax(dim=-1)
            f = logits["frame_logits"].argmax(dim=-1)
            done = done | (a >= SOS)
            in_window = (f >= 1) & (f <= t)
            frame_ok = in_window & valid_frames.gather(1, (f - 1).clamp(0, t)[:, None])[:, 0]
            ok = ~done & (s != NEUTRAL_SLOT) & frame_ok
            out["action"][:, step] = torch.where(ok, a + 1, 0)
            out["slot"][:, step] = torch.where(ok, s, -1)
            out["frame"][:, step] = torch.where(ok, f, -1)
            out["score"][:, step] = torch.where(ok, score, 0.0)
            out["valid"][:, step] = ok
            if bool(done.all()):
                break
            action, slot, frame = a[:, None], s[:, None], f[:, None]
        return out

    # -------------------------------------------------------------------------------------- zoo hooks

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"window": 64, "d_model": 32, "nhead": 4, "num_encoder_layers": 2, "num_decoder_layers": 2,
                "dim_feedforward": 64, "dropout": 0.1, "use_gnn_logits": True, "max_events": 12}

    @classmethod
    def example_batch(cls, config: dict[str, Any], batch_size: int = 2,
                      generator: torch.Generator | None = None) -> dict[str, Any]:
        """Random but well-formed DST batch: the last window (when ``B > 1``) ends in padding frames, two
        slots of each team have no rows (-15), targets are sorted events with SOS and EOS."""
        g = generator if generator is not None else torch.Generator().manual_seed(0)
        t = int(config.get("window", 750))
        b = batch_size
        teamvec = torch.rand(b, TEAMVEC_CHANNELS, NUM_SLOTS, t, generator=g)
        teamvec[:, 2:4] = teamvec[:, 2:4] * 2 - 1
        teamvec[:, 4] = (teamvec[:, 4] > 0.3).float()
        teamvec[:, :, [11, 12, 24, 25]] = MISSING_FILL
        frame_index = torch.arange(1, t + 1).repeat(b, 1)
        lengths = [t] * b
        if b > 1:
            lengths[-1] = max(1, t - t // 4)
            frame_index[-1, lengths[-1]:] = -1
        batch: dict[str, Any] = {
            "teamvec": teamvec,
            "logits": torch.randn(b, NUM_CLASSES, NUM_SLOTS, t, generator=g) * 2,
            "frame_index": frame_index,
        }
        if config.get("use_gnn_logits", False):
            batch["gnn_logits"] = torch.randn(b, NUM_CLASSES, NUM_SLOTS, t, generator=g) * 2
        sequences = []
        for i in range(b):
            n = int(torch.randint(0, min(6, lengths[i]) + 1, (1,), generator=g))
            frames = torch.sort(torch.randperm(lengths[i], generator=g)[:n] + 1).values
            actions = torch.randint(0, NUM_ACTIONS, (n,), generator=g)
            slots = torch.randint(0, NUM_SLOTS, (n,), generator=g)
            eos_frame = int(frames[-1]) + 1 if n else t + 1
            sequences.append(([SOS, *actions.tolist(), EOS], [NEUTRAL_SLOT, *slots.tolist(), NEUTRAL_SLOT],
                              [0, *frames.tolist(), eos_frame]))
        batch.update(pad_targets(sequences))
        return batch


def _masked_ce(logits: torch.Tensor, target: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor | None,
               smoothing: float) -> torch.Tensor:
    """Cross-entropy of ``(B, L, C)`` logits against ``(B, L)`` targets averaged over ``valid`` tokens
    (weighted: divided by the summed weights of the valid targets, as ``F.cross_entropy``'s mean)."""
    target = torch.where(valid, target.long(), 0)
    per_token = F.cross_entropy(rearrange(logits.float(), "b l c -> (b l) c"), target.reshape(-1), weight=weight,
                                label_smoothing=smoothing, reduction="none")
    valid = valid.reshape(-1).to(per_token.dtype)
    norm = (weight[target.reshape(-1)] * valid).sum() if weight is not None else valid.sum()
    return (per_token * valid).sum() / norm.clamp(min=1e-12 if weight is not None else 1.0)
