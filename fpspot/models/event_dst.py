"""Event-sequence DST: turns any spotter's event list of a 30 s window into a cleaner one (issue 8).

It is trained on the real FOOTPASS play-by-play corrupted by :mod:`fpspot.data.corrupt` (windows and
tokens: :mod:`fpspot.data.event_windows`) and applied to a prediction file by the post-processing step
``event_dst`` (:mod:`fpspot.post.event_dst`).

Design: a non-autoregressive encoder-decoder over the input events
------------------------------------------------------------------
Both halves are the shared :class:`~fpspot.models.blocks.seq2seq.Seq2Seq` block. The encoder reads the
window's ``N`` noisy events; the decoder's queries are the same ``N`` events (a second embedding of them),
each of which attends to the whole encoded window and decides, for itself:

* ``keep``: is it the detection of a real event (not a ghost, a duplicate or a random false positive)?
* ``cls``: the event's true class (fixes wrong-class detections);
* ``player``: the true player, by *pointing* into the window's player table (jerseys are not a closed
  vocabulary; fixes wrong-jersey and wrong-team detections);
* ``offset``: ``true frame - input frame`` in ``-max_offset..max_offset`` (fixes the temporal jitter).

The output event is ``(input frame + offset, team/jersey of the pointed player, cls)`` with confidence
``score = P(keep) * P(cls) * P(player) * P(|frame error| <= 12)`` (the product of the four heads'
probabilities that the corrected event is a true positive under the official matcher, delta 12).
Corrected events that land on one another are merged by a per-(team, jersey, class) NMS after decoding
(:mod:`fpspot.post.event_dst`). The decoder's self-attention is the block's causal one (an event sees
the decisions of the earlier events), while its cross-attention and the encoder see the whole window.

Why not autoregressive (as the frame-level DST): the per-event heads give a calibrated confidence per
output event (which the official 0.15 threshold and per-class gating need), cost one decoder pass instead
of one per output event, and cannot hallucinate events. They cannot add events the spotter missed, but
that is not what limits F1 here: on held-out training halves corrupted with the TAAD noise, perfect
per-event decisions (keep exactly the detections of real events, with their true class, player and frame)
would score micro F1 0.83 / macro 0.81 without a single insertion (first corruption model), while the trained
models score about 0.54 / 0.36-0.38 -- the decisions, not the missing insertions, are the bottleneck
(``python benchmarks/event_dst_footpass.py --ceiling``). An autoregressive variant was not trained (CPU
budget); insertions from context alone would need the exact jersey and a frame within 12 of the truth.

Insertion heads (``insert_offset > 0``; off in the released model): a second set of the four heads on the same
decoder state proposes, for every input event, one *missed* event in the gap after it -- ``ins`` (is there a
ground-truth event that no input event detects, between this input event and the next one?), its class, its
player (the same pointer keys, its own query) and its offset ``-insert_offset..insert_offset`` from the input
frame -- scored like the per-event decisions (``ins_score``). Targets:
:func:`fpspot.data.event_windows.tokenize_window` (``in_ins*``). The post-processing step adds the proposals to
the corrected events before its NMS and class cuts. Measured on the TAAD noise (the released recipe with
``model.insert_offset=75``, 24 epochs): whether a missed event sits in a gap is barely predictable from the
other events (ROC AUC 0.64 on held-out windows at strength 1, highest probability 0.46), so no proposal reaches
a class cut and the held-out F1 is the same with insertions on or off. They are kept for spotters whose misses
follow the play (BENCHMARKS.md, "Event DST insertions").

What the trained model does, measured on held-out halves: it almost never changes a player or a class
(< 0.2 % of events; wrong-jersey / wrong-class / wrong-team detections are 5 % of TAAD's detections and
look like their correct neighbours), and moves ~15 % of events by a frame or two; its gain over per-class
thresholds on the input scores comes from re-scoring with the context (duplicates of the same player and
class, ghosts next to a real event, the drive -> pass -> drive grammar of possessions).

Noise strength: the corruption is drawn over a range of strengths (:func:`fpspot.data.corrupt.strength_scales`,
1 = TAAD's fitted noise, ~0.15 = the DST baseline's false-positive rate) and the strength is an input of
every token, so one model serves both noisy and clean spotters.

Tensor shapes (``B`` windows, ``N`` input events, ``P`` players of the table, ``D = d_model``)
---------------------------------------------------------------------------------------------
Batch (:func:`fpspot.data.event_windows.collate_windows`): ``in_features (B, N, 11)`` float32
``[one-hot class, team, frame / window, score]``, ``in_cls (B, N)`` int64 1..8, ``in_score (B, N)`` float32,
``in_frame (B, N)`` int64 1..window, ``in_player (B, N)``
int64 pointer, ``in_player_id (B, N)`` int64 identity ``0..max_players-1``, ``in_mask (B, N)`` bool,
``players (B, P, 2)`` int64 ``[team, jersey]``, ``player_known (B, P)`` bool (only known players can be
pointed at), ``player_id (B, P)``, ``player_mask (B, P)``, ``strength (B,)`` float32; targets:
``in_keep (B, N)`` bool, ``in_tgt_cls`` (1..8), ``in_tgt_player``, ``in_tgt_offset`` ``(B, N)`` int64.

Embeddings: each event token is ``Linear(in_features) + Linear(logit(score)) + Linear([strength,
log strength]) + Embedding(player identity) + sinusoid(frame)`` (one set for the encoder, one for the
decoder queries), ``(B, N, D)``. Player table entries are ``Linear(mean of the encoded events of that
player) + Embedding(identity) + Embedding(team)``, ``(B, P, D)``; the pointer logits are
``q(h_i) . k(p_j) / sqrt(D)``, plus a per-event learned logit on the event's own player (and on its own
class in the class head), initialised to +3: the spotter is usually right about both.

Outputs: ``keep_logit (B, N)``, ``cls_logits (B, N, 8)``, ``player_logits (B, N, P)`` (-1e4 where the
player cannot be pointed at), ``offset_logits (B, N, 2 max_offset + 1)``; with insertion heads also
``ins_logit (B, N)``, ``ins_cls_logits (B, N, 8)``, ``ins_player_logits (B, N, P)``,
``ins_offset_logits (B, N, 2 insert_offset + 1)``; without targets also the decisions ``keep_prob``,
``cls`` (1..8), ``cls_prob``, ``player`` (pointer), ``player_prob``, ``offset``, ``frame_prob``, ``score``
``(B, N)`` (and the same with the prefix ``ins_``).
With targets: ``loss = loss_keep + loss_cls + loss_player + loss_offset``: binary cross-entropy of ``keep`` over
the valid input events, and the three cross-entropies over the events to keep (offsets beyond ``max_offset`` are
ignored); with insertion heads plus ``loss_ins`` (binary cross-entropy over the valid input events) and the
three insertion cross-entropies over the input events with a missed event within ``insert_offset`` frames whose
player can be pointed at. Class weights (``set_class_weights``, 9 values background + 8 classes; the background
weight is unused) weight each input event's ``keep`` term by its input class and the class terms by the true
class.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from fpspot.models.base import SpotterModel
from fpspot.models.blocks.seq2seq import InputFusion, Seq2Seq, SinusoidalPositions
from fpspot.models.zoo import register_model
from fpspot.schema import NUM_ACTIONS, NUM_CLASSES

INPUT_KEYS = ("in_cls", "in_score", "in_features", "in_frame", "in_player", "in_player_id", "in_mask",
              "players", "player_known", "player_id", "player_mask", "strength")
TARGET_KEYS = ("in_keep", "in_tgt_cls", "in_tgt_player", "in_tgt_offset")
INSERT_TARGET_KEYS = ("in_ins", "in_ins_cls", "in_ins_player", "in_ins_offset")
NUM_FEATURES = NUM_ACTIONS + 3
MATCH_WINDOW = 12  # the official matcher's delta
OWN_PRIOR = 3.0  # initial extra logit of the input's own player and class (about 95 % of detections keep them)
NOT_A_PLAYER = -1e4  # pointer logit of table entries that cannot be pointed at (unknown players, padding)
INSERT_PRIOR = -3.0  # initial insertion logit: about one input event in eight has a missed event next to it


@register_model("event_dst")
class EventDST(SpotterModel):
    """Non-autoregressive event-sequence DST (see the module docstring)."""

    input_kind = "events"  # reads a spotter's events, not video

    def __init__(self, window: int = 750, d_model: int = 128, nhead: int = 4, num_encoder_layers: int = 3,
                 num_decoder_layers: int = 2, dim_feedforward: int = 512, dropout: float = 0.1,
                 max_players: int = 64, max_offset: int = 50, insert_offset: int = 0, pe_base: float = 10000.0,
                 strength_density: list | None = None, frame_hw: Any = None):
        super().__init__(window=window, d_model=d_model, nhead=nhead, num_encoder_layers=num_encoder_layers,
                         num_decoder_layers=num_decoder_layers, dim_feedforward=dim_feedforward, dropout=dropout,
                         max_players=max_players, max_offset=max_offset, insert_offset=insert_offset,
                         pe_base=pe_base, strength_density=strength_density, frame_hw=frame_hw)
        if window < 4 or max_players < 1 or max_offset < 1 or insert_offset < 0:
            raise ValueError(f"event_dst: window >= 4, max_players >= 1, max_offset >= 1 and insert_offset >= 0 "
                             f"needed, got {window}, {max_players}, {max_offset}, {insert_offset}")
        self.window, self.max_players, self.max_offset = int(window), int(max_players), int(max_offset)
        self.insert_offset = int(insert_offset)
        streams = {"dense": {"features": NUM_FEATURES, "score": 1, "strength": 2},
                   "categorical": {"player": self.max_players}}
        self.encoder_embedding = InputFusion(d_model, **streams)
        self.query_embedding = InputFusion(d_model, **streams)
        self.positions = SinusoidalPositions(d_model, base=pe_base)
        self.seq2seq = Seq2Seq(d_model, nhead, num_encoder_layers, num_decoder_layers, dim_feedforward, dropout)
        self.player_embedding = InputFusion(d_model, dense={"pooled": d_model},
                                            categorical={"player": self.max_players, "team": 2})
        self.keep_head = nn.Linear(d_model, 1)
        self.cls_head = nn.Linear(d_model, NUM_ACTIONS)
        self.offset_head = nn.Linear(d_model, 2 * self.max_offset + 1)
        self.pointer_query = nn.Linear(d_model, d_model)
        self.pointer_key = nn.Linear(d_model, d_model)
        # per-event logit added to the input's own player / class: the spotter is usually right about them
        self.own_head = nn.Linear(d_model, 2)
        nn.init.zeros_(self.own_head.weight)
        nn.init.constant_(self.own_head.bias, OWN_PRIOR)
        if self.insert_offset:  # the insertion heads: a missed event next to each input event
            self.insert_head = nn.Linear(d_model, 1 + NUM_ACTIONS + 2 * self.insert_offset + 1)
            nn.init.constant_(self.insert_head.bias[:1], INSERT_PRIOR)
            self.insert_pointer_query = nn.Linear(d_model, d_model)

    # ------------------------------------------------------------------------------------------ hooks

    def set_grad_checkpointing(self, enable: bool = True) -> None:
        super().set_grad_checkpointing(enable)
        self.seq2seq.grad_checkpointing = bool(enable)

    # ---------------------------------------------------------------------------------------- network

    def _check(self, batch: dict[str, Any]) -> None:
        missing = [k for k in INPUT_KEYS if k not in batch]
        if missing:
            raise KeyError(f"event_dst batch: missing {missing} (has {sorted(k for k in batch if k != 'meta')})")
        b, n = batch["in_mask"].shape
        if tuple(batch["in_features"].shape) != (b, n, NUM_FEATURES):
            raise ValueError(f"event_dst batch: 'in_features' has shape {tuple(batch['in_features'].shape)}, "
                             f"expected {(b, n, NUM_FEATURES)}")
        if tuple(batch["strength"].shape) != (b,):
            raise ValueError(f"event_dst batch: 'strength' has shape {tuple(batch['strength'].shape)}, expected {(b,)}")

    def _streams(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        mask = batch["in_mask"].bool()
        strength = batch["strength"].float().clamp(min=1e-3)
        strength = torch.stack([strength, strength.log()], dim=-1)[:, None].expand(-1, mask.shape[1], -1)
        score = batch["in_score"].float().clamp(1e-4, 1 - 1e-4)
        return {"features": batch["in_features"].float(), "strength": strength,
                "score": (score.log() - (-score).log1p())[..., None],
                "player": batch["in_player_id"].long().clamp(0, self.max_players - 1)}

    def heads(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Raw outputs ``keep_logit (B, N)``, ``cls_logits (B, N, 8)``, ``player_logits (B, N, P)``,
        ``offset_logits (B, N, 2 max_offset + 1)``."""
        self._check(batch)
        mask = batch["in_mask"].bool()
        pad = ~mask
        frame = batch["in_frame"].long().clamp(min=0)
        streams = self._streams(batch)
        positions = self.positions(frame)
        memory = self.seq2seq.encode(self.encoder_embedding(streams) + positions, pad)
        hidden = self.seq2seq.decode(self.query_embedding(streams) + positions, memory, memory_pad_mask=pad,
                                     tgt_pad_mask=pad)
        # player table embeddings: identity + team + mean of the encoded events of that player
        num_players = batch["players"].shape[1]
        pointer = batch["in_player"].long()
        onehot = F.one_hot(pointer.clamp(min=0), num_players).to(memory.dtype) * mask[..., None].to(memory.dtype)
        pooled = torch.einsum("bnp,bnd->bpd", onehot, memory) / onehot.sum(1)[..., None].clamp(min=1.0)
        players = self.player_embedding({"pooled": pooled,
                                         "player": batch["player_id"].long().clamp(0, self.max_players - 1),
                                         "team": batch["players"][..., 0].long().clamp(0, 1)})
        own = self.own_head(hidden)
        keys = self.pointer_key(players)
        scores = torch.einsum("bnd,bpd->bnp", self.pointer_query(hidden), keys)
        scores = scores / math.sqrt(hidden.shape[-1]) + own[..., :1] * onehot
        allowed = (batch["player_known"].bool() & batch["player_mask"].bool())[:, None, :]
        scores = scores.masked_fill(~allowed, NOT_A_PLAYER)
        own_cls = F.one_hot((batch["in_cls"].long() - 1).clamp(0, NUM_ACTIONS - 1), NUM_ACTIONS).to(own.dtype)
        out = {"keep_logit": self.keep_head(hidden)[..., 0],
               "cls_logits": self.cls_head(hidden) + own[..., 1:] * own_cls,
               "player_logits": scores, "offset_logits": self.offset_head(hidden)}
        if self.insert_offset:
            ins = self.insert_head(hidden)
            ins_scores = torch.einsum("bnd,bpd->bnp", self.insert_pointer_query(hidden), keys)
            ins_scores = (ins_scores / math.sqrt(hidden.shape[-1])).masked_fill(~allowed, NOT_A_PLAYER)
            out.update({"ins_logit": ins[..., 0], "ins_cls_logits": ins[..., 1:1 + NUM_ACTIONS],
                        "ins_offset_logits": ins[..., 1 + NUM_ACTIONS:], "ins_player_logits": ins_scores})
        return out

    def forward(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """With targets: the raw outputs and ``loss`` with its components; without: :meth:`predict`."""
        if not all(k in batch for k in TARGET_KEYS):
            return self.predict(batch)
        outputs = self.heads(batch)
        outputs.update(self.compute_loss(outputs, batch))
        return outputs

    # ------------------------------------------------------------------------------------------- loss

    def compute_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        mask = batch["in_mask"].bool()
        keep = batch["in_keep"].bool() & mask
        if self.class_weights.numel() not in (0, NUM_CLASSES):
            raise ValueError(f"event_dst class weights: expected 9 values (background + 8 classes), got "
                             f"{self.class_weights.numel()}")
        weight = self.class_weights[1:].to(outputs["cls_logits"].device) if self.class_weights.numel() else None
        valid = mask.float()
        if weight is not None:  # each input event weighs as its input class
            valid = valid * weight[(batch["in_cls"].long() - 1).clamp(0, NUM_ACTIONS - 1)]
        loss_keep = _weighted_bce(outputs["keep_logit"], keep, valid)
        cls_target = torch.where(keep, batch["in_tgt_cls"].long() - 1, -100)
        loss_cls = _ce(outputs["cls_logits"], cls_target, weight)
        allowed = batch["player_known"].bool() & batch["player_mask"].bool()
        safe_target, pointable = _pointer_targets(batch["in_tgt_player"], allowed)
        reachable = keep & pointable
        loss_player = _ce(outputs["player_logits"], torch.where(reachable, safe_target, -100), None)
        offset = batch["in_tgt_offset"].long()
        in_range = keep & (offset.abs() <= self.max_offset)
        loss_offset = _ce(outputs["offset_logits"], torch.where(in_range, offset + self.max_offset, -100), None)
        loss = loss_keep + loss_cls + loss_player + loss_offset
        losses = {"loss_keep": loss_keep, "loss_cls": loss_cls, "loss_player": loss_player, "loss_offset": loss_offset}
        if self.insert_offset:
            if not all(k in batch for k in INSERT_TARGET_KEYS):
                raise KeyError(f"event_dst batch: the insertion heads need the targets {list(INSERT_TARGET_KEYS)}")
            losses.update(self._insertion_loss(outputs, batch, allowed, weight))
            loss = loss + sum(v for k, v in losses.items() if k.startswith("loss_ins"))
        return {"loss": loss, **losses}

    def _insertion_loss(self, outputs: dict[str, torch.Tensor], batch: dict[str, Any], allowed: torch.Tensor,
                        weight: torch.Tensor | None) -> dict[str, torch.Tensor]:
        """Binary cross-entropy of ``ins`` over the valid input events (a missed event within
        ``insert_offset`` frames whose player can be pointed at) and the three cross-entropies over the
        insertions."""
        mask = batch["in_mask"].bool()
        offset = batch["in_ins_offset"].long()
        safe_target, pointable = _pointer_targets(batch["in_ins_player"], allowed)
        insert = batch["in_ins"].bool() & mask & (offset.abs() <= self.insert_offset) & pointable
        return {"loss_ins": _weighted_bce(outputs["ins_logit"], insert, mask.float()),
                "loss_ins_cls": _ce(outputs["ins_cls_logits"], torch.where(insert, batch["in_ins_cls"].long() - 1,
                                                                           -100), weight),
                "loss_ins_player": _ce(outputs["ins_player_logits"], torch.where(insert, safe_target, -100), None),
                "loss_ins_offset": _ce(outputs["ins_offset_logits"],
                                       torch.where(insert, offset + self.insert_offset, -100), None)}

    # -------------------------------------------------------------------------------------- inference

    @torch.no_grad()
    def predict(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """Decisions per input event, ``(B, N)`` each: ``keep_prob``, ``cls`` (1..8), ``cls_prob``, ``player``
        (pointer into the table), ``player_prob``, ``offset`` (frames), ``frame_prob`` (probability mass
        within +-12 frames of the chosen offset), ``score`` (their product); padding entries hold zeros."""
        out = self.heads(batch)
        mask = batch["in_mask"].bool()
        out.update(_decisions(out["keep_logit"], out["cls_logits"], out["player_logits"], out["offset_logits"],
                              self.max_offset, mask))
        if self.insert_offset:
            ins = _decisions(out["ins_logit"], out["ins_cls_logits"], out["ins_player_logits"],
                             out["ins_offset_logits"], self.insert_offset, mask)
            out.update({f"ins_{k}": v for k, v in ins.items()})
        return out

    # -------------------------------------------------------------------------------------- zoo hooks

    @classmethod
    def tiny_config(cls) -> dict[str, Any]:
        return {"window": 750, "d_model": 32, "nhead": 4, "num_encoder_layers": 1, "num_decoder_layers": 1,
                "dim_feedforward": 64, "dropout": 0.1, "max_players": 48, "max_offset": 30}

    @classmethod
    def example_batch(cls, config: dict[str, Any], batch_size: int = 2,
                      generator: torch.Generator | None = None) -> dict[str, Any]:
        """Windows of a synthetic FOOTPASS-like play-by-play (possession runs of drive -> pass, a few rare
        classes, box / replay flags) corrupted with the packaged TAAD noise model at random strengths."""
        from fpspot.data.event_windows import WindowConfig, WindowCorruptor, collate_windows, cut_windows

        g = generator if generator is not None else torch.Generator().manual_seed(0)
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=g))
        rng = np.random.default_rng(seed)
        length = int(config.get("window", 750))
        events = synthetic_half(rng, num_events=max(8, 24 * batch_size * length // 750))
        windows = cut_windows("game_1_H1", events, WindowConfig(length, length, length // 6))
        corruptor = WindowCorruptor(seed=seed, strength=(0.1, 1.5, 0.5), augment=True,
                                    max_players=int(config.get("max_players", 64)),
                                    insertions=int(config.get("insert_offset", 0)) > 0)
        tokens = [corruptor(w) for w in windows[:batch_size]]
        while len(tokens) < batch_size:  # very short windows: repeat with fresh noise
            corruptor.set_epoch(len(tokens))
            tokens.append(corruptor(windows[len(tokens) % len(windows)]))
        return collate_windows(tokens)


def synthetic_half(rng: np.random.Generator, num_events: int = 200, start: int = 100) -> list[tuple]:
    """A synthetic half ``(frame, team, shirt, class, bbox, replay)``: possessions of drive -> pass chains
    between team-mates, sometimes ended by a cross / shot / header / tackle / block / throw-in."""
    shirts = {0: rng.choice(np.arange(1, 40), 14, replace=False), 1: rng.choice(np.arange(1, 40), 14, replace=False)}
    events, frame, team = [], start, int(rng.integers(2))
    while len(events) < num_events:
        player = int(rng.choice(shirts[team]))
        frame += 10 + int(rng.exponential(25))
        replay = int(rng.random() < 0.05)
        box = 0 if replay else int(rng.random() < 0.85)
        events.append((frame, team, player, 1, box, replay))
        frame += 10 + int(rng.exponential(20))
        cls = int(rng.choice([2, 3, 5, 6, 4, 7, 8], p=[0.82, 0.04, 0.03, 0.05, 0.02, 0.02, 0.02]))
        events.append((frame, team, player, cls, box, replay))
        if cls != 2 or rng.random() < 0.15:
            team = 1 - team
    return events[:num_events]


def _decisions(exist_logit: torch.Tensor, cls_logits: torch.Tensor, player_logits: torch.Tensor,
               offset_logits: torch.Tensor, max_offset: int, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-event decisions ``(B, N)`` of one set of heads: ``keep_prob`` (sigmoid of ``exist_logit``),
    ``cls`` (1..8), ``cls_prob``, ``player``, ``player_prob``, ``offset``, ``frame_prob`` (probability mass
    within +-12 frames of the chosen offset) and ``score`` (their product); zeros (player -1) on padding."""
    keep_prob = exist_logit.float().sigmoid()
    cls_prob, cls = cls_logits.float().softmax(-1).max(-1)
    player_prob, player = player_logits.float().softmax(-1).max(-1)
    offset_p = offset_logits.float().softmax(-1)
    offset_idx = offset_p.argmax(-1)
    window = 2 * MATCH_WINDOW + 1
    near = F.avg_pool1d(rearrange(offset_p, "b n k -> (b n) 1 k"), window, stride=1, padding=MATCH_WINDOW,
                        count_include_pad=True) * window
    frame_prob = rearrange(near, "(b n) 1 k -> b n k", b=mask.shape[0]).gather(-1, offset_idx[..., None])[..., 0]
    score = keep_prob * cls_prob * player_prob * frame_prob
    zero = torch.zeros_like(keep_prob)
    return {"keep_prob": torch.where(mask, keep_prob, zero), "cls": torch.where(mask, cls + 1, 0),
            "cls_prob": torch.where(mask, cls_prob, zero), "player": torch.where(mask, player, -1),
            "player_prob": torch.where(mask, player_prob, zero),
            "offset": torch.where(mask, offset_idx - max_offset, 0),
            "frame_prob": torch.where(mask, frame_prob, zero), "score": torch.where(mask, score, zero)}


def _pointer_targets(target: torch.Tensor, allowed: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(B, N)`` player pointers into a ``(B, P)`` table: the pointers clamped into ``0..P-1`` and whether
    each is a real target (>= 0) at an entry that can be pointed at."""
    safe = target.long().clamp(min=0, max=allowed.shape[1] - 1)
    return safe, (target >= 0) & allowed.gather(1, safe)


def _weighted_bce(logit: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy of ``(B, N)`` logits against boolean targets, averaged with the ``(B, N)`` weights
    (0 on padding)."""
    loss = F.binary_cross_entropy_with_logits(logit.float(), target.float(), reduction="none")
    return (loss * weight).sum() / weight.sum().clamp(min=1e-6)


def _ce(logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Mean cross-entropy of ``(B, N, C)`` logits over the targets that are not -100 (0 when there are none)."""
    flat = rearrange(logits.float(), "b n c -> (b n) c")
    target = target.reshape(-1)
    if not bool((target >= 0).any()):
        return flat.sum() * 0.0
    return F.cross_entropy(flat, target, weight=weight, ignore_index=-100)


__all__ = ["EventDST", "synthetic_half"]
