"""Transformer encoder-decoder with a KV cache, sinusoidal positions and multi-stream input fusion.

:class:`Seq2Seq` computes exactly what ``nn.Transformer(d_model, nhead, num_encoder_layers,
num_decoder_layers, dim_feedforward, dropout, batch_first=True)`` computes with its defaults (ReLU,
post-LN, LayerNorm eps 1e-5, a final LayerNorm after the encoder and after the decoder, Xavier-uniform
initialisation of every matrix), and its ``state_dict`` has the same names and shapes, so weights move
between the two with ``load_state_dict``. In training, the residual and feed-forward dropouts are
:class:`~fpspot.models.blocks.dropout.Dropout` (the same distribution, a cheaper mask on CPU, another random
stream). Attention is written out with ``F.scaled_dot_product_attention`` so that the decoder can run
incrementally:

* :meth:`Seq2Seq.encode` ``(src (B, S, D), src_pad_mask (B, S)) -> memory (B, S, D)``;
* :meth:`Seq2Seq.decode` ``(tgt (B, L, D), memory, memory_pad_mask, tgt_pad_mask) -> (B, L, D)`` with a
  causal self-attention; with a :class:`DecoderCache` (:meth:`Seq2Seq.new_cache`) only the new positions
  are fed: the cross-attention keys/values of the memory are computed once, the self-attention
  keys/values of earlier positions are kept per layer, and the result equals a full recomputation.

Tokens are arbitrary embeddings: callers add positions themselves (:class:`SinusoidalPositions`, over
any integer positions, e.g. frame indices) and build embeddings from several per-token streams with
:class:`InputFusion` (one projection per named stream, summed). Padding masks are ``True`` at padding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn
from torch.utils.checkpoint import checkpoint

from fpspot.models.blocks.dropout import Dropout

__all__ = ["Attention", "DecoderCache", "DecoderLayer", "EncoderLayer", "InputFusion", "Seq2Seq",
           "SinusoidalPositions", "attention_mask"]


def attention_mask(key_pad_mask: torch.Tensor | None, num_queries: int, num_keys: int, causal: bool,
                   offset: int = 0, device: torch.device | None = None) -> torch.Tensor | None:
    """Boolean "may attend" mask for ``F.scaled_dot_product_attention``, or ``None`` when all is allowed.

    key_pad_mask: ``(B, num_keys)`` bool, True at padding keys. causal: query ``i`` (absolute position
    ``offset + i``) sees keys ``0 .. offset + i``. Returns ``(B | 1, 1, num_queries, num_keys)``. A query
    row that would see no key at all (a fully padded sequence) is opened to every key, so attention stays
    finite; its output is meaningless and must be ignored by the caller (it is a padding position).
    """
    allowed = None
    if causal and num_queries > 1:
        q = torch.arange(num_queries, device=device)[:, None] + offset
        k = torch.arange(num_keys, device=device)[None, :]
        allowed = (k <= q)[None, None]
    if key_pad_mask is not None:
        keep = rearrange(~key_pad_mask.bool(), "b k -> b 1 1 k")
        allowed = keep if allowed is None else allowed & keep
    if allowed is not None:
        allowed = allowed | ~allowed.any(dim=-1, keepdim=True)
    return allowed


class Attention(nn.Module):
    """Multi-head attention with the parameter layout of ``nn.MultiheadAttention``.

    ``in_proj_weight`` ``(3D, D)`` (query, key, value rows), ``in_proj_bias`` ``(3D,)``, ``out_proj``
    ``Linear(D, D)``. Attention-weight dropout ``dropout`` in training, as ``nn.MultiheadAttention``.
    """

    def __init__(self, d_model: int, nhead: int, dropout: float = 0.0):
        super().__init__()
        if d_model % nhead:
            raise ValueError(f"d_model ({d_model}) must be divisible by nhead ({nhead})")
        self.d_model, self.nhead, self.dropout = d_model, nhead, dropout
        self.in_proj_weight = nn.Parameter(torch.empty(3 * d_model, d_model))
        self.in_proj_bias = nn.Parameter(torch.zeros(3 * d_model))
        self.out_proj = nn.Linear(d_model, d_model)
        nn.init.xavier_uniform_(self.in_proj_weight)
        nn.init.zeros_(self.out_proj.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return rearrange(x, "b l (h e) -> b h l e", h=self.nhead)

    def project_qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Self-attention projections of ``x`` ``(B, L, D)``: three ``(B, H, L, D/H)``."""
        q, k, v = F.linear(x, self.in_proj_weight, self.in_proj_bias).chunk(3, dim=-1)
        return self._heads(q), self._heads(k), self._heads(v)

    def project_q(self, x: torch.Tensor) -> torch.Tensor:
        d = self.d_model
        return self._heads(F.linear(x, self.in_proj_weight[:d], self.in_proj_bias[:d]))

    def project_kv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Key and value projections of ``x`` ``(B, S, D)`` (the memory of a cross-attention)."""
        d = self.d_model
        k, v = F.linear(x, self.in_proj_weight[d:], self.in_proj_bias[d:]).chunk(2, dim=-1)
        return self._heads(k), self._heads(v)

    def attend(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        """``(B, H, Lq, E)`` queries over ``(B, H, Lk, E)`` keys/values -> ``(B, Lq, D)`` (after ``out_proj``)."""
        p = self.dropout if self.training else 0.0
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=p)
        return self.out_proj(rearrange(out, "b h l e -> b l (h e)"))


class EncoderLayer(nn.Module):
    """Post-LN encoder layer, as ``nn.TransformerEncoderLayer`` (ReLU): ``(B, S, D) -> (B, S, D)``."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = Attention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        q, k, v = self.self_attn.project_qkv(x)
        x = self.norm1(x + self.dropout1(self.self_attn.attend(q, k, v, mask)))
        return self.norm2(x + self.dropout2(self.linear2(self.dropout(F.relu(self.linear1(x))))))


class DecoderLayer(nn.Module):
    """Post-LN decoder layer, as ``nn.TransformerDecoderLayer`` (ReLU), with an optional KV cache."""

    def __init__(self, d_model: int, nhead: int, dim_feedforward: int, dropout: float):
        super().__init__()
        self.self_attn = Attention(d_model, nhead, dropout)
        self.multihead_attn = Attention(d_model, nhead, dropout)
        self.linear1 = nn.Linear(d_model, dim_feedforward)
        self.dropout = Dropout(dropout)
        self.linear2 = nn.Linear(dim_feedforward, d_model)
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1 = Dropout(dropout)
        self.dropout2 = Dropout(dropout)
        self.dropout3 = Dropout(dropout)

    def forward(self, x: torch.Tensor, self_mask: torch.Tensor | None, cross_k: torch.Tensor,
                cross_v: torch.Tensor, cross_mask: torch.Tensor | None,
                past: tuple[torch.Tensor, torch.Tensor] | None = None
                ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """x: ``(B, L_new, D)``; cross_k/v: ``(B, H, S, E)`` memory projections; past: cached self-attention
        keys/values ``(B, H, L_past, E)``. Returns the output and the self keys/values up to ``L_past + L_new``."""
        q, k, v = self.self_attn.project_qkv(x)
        if past is not None:
            k, v = torch.cat([past[0], k], dim=2), torch.cat([past[1], v], dim=2)
        x = self.norm1(x + self.dropout1(self.self_attn.attend(q, k, v, self_mask)))
        q = self.multihead_attn.project_q(x)
        x = self.norm2(x + self.dropout2(self.multihead_attn.attend(q, cross_k, cross_v, cross_mask)))
        x = self.norm3(x + self.dropout3(self.linear2(self.dropout(F.relu(self.linear1(x))))))
        return x, (k, v)


@dataclass
class DecoderCache:
    """State of an incremental decode: per layer the memory's cross-attention keys/values ``(B, H, S, E)``
    (computed once) and the self-attention keys/values of the positions decoded so far ``(B, H, L, E)``."""

    cross: list[tuple[torch.Tensor, torch.Tensor]]
    memory_pad_mask: torch.Tensor | None
    self_kv: list[tuple[torch.Tensor, torch.Tensor] | None] = field(default_factory=list)
    tgt_pad_mask: torch.Tensor | None = None  # (B, length): padding flags of the cached positions
    length: int = 0


class Seq2Seq(nn.Module):
    """Encoder-decoder equivalent to ``nn.Transformer(..., batch_first=True)`` with a decoder KV cache.

    Attribute ``grad_checkpointing``: recompute each layer's activations in backward (non-reentrant).
    """

    def __init__(self, d_model: int = 512, nhead: int = 8, num_encoder_layers: int = 6, num_decoder_layers: int = 6,
                 dim_feedforward: int = 2048, dropout: float = 0.1):
        super().__init__()
        self.d_model, self.nhead = d_model, nhead
        self.encoder = nn.Module()
        self.encoder.layers = nn.ModuleList(
            EncoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_encoder_layers))
        self.encoder.norm = nn.LayerNorm(d_model)
        self.decoder = nn.Module()
        self.decoder.layers = nn.ModuleList(
            DecoderLayer(d_model, nhead, dim_feedforward, dropout) for _ in range(num_decoder_layers))
        self.decoder.norm = nn.LayerNorm(d_model)
        self.grad_checkpointing = False
        for p in self.parameters():  # as nn.Transformer._reset_parameters
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def _checkpointed(self) -> bool:
        return self.grad_checkpointing and self.training and torch.is_grad_enabled()

    def encode(self, src: torch.Tensor, src_pad_mask: torch.Tensor | None = None) -> torch.Tensor:
        """src: ``(B, S, D)`` token embeddings; src_pad_mask: ``(B, S)`` True at padding. Returns ``(B, S, D)``."""
        mask = attention_mask(src_pad_mask, src.shape[1], src.shape[1], causal=False, device=src.device)
        x = src
        for layer in self.encoder.layers:
            x = checkpoint(layer, x, mask, use_reentrant=False) if self._checkpointed() else layer(x, mask)
        return self.encoder.norm(x)

    def new_cache(self, memory: torch.Tensor, memory_pad_mask: torch.Tensor | None = None) -> DecoderCache:
        """An empty decoder cache over ``memory`` ``(B, S, D)`` (cross keys/values of every layer computed now)."""
        cross = [layer.multihead_attn.project_kv(memory) for layer in self.decoder.layers]
        return DecoderCache(cross, memory_pad_mask, [None] * len(self.decoder.layers))

    def decode(self, tgt: torch.Tensor, memory: torch.Tensor | None = None,
               memory_pad_mask: torch.Tensor | None = None, tgt_pad_mask: torch.Tensor | None = None,
               cache: DecoderCache | None = None) -> torch.Tensor:
        """Causal decoder over ``tgt`` ``(B, L, D)`` attending to ``memory`` ``(B, S, D)``; returns ``(B, L, D)``.

        tgt_pad_mask: ``(B, L)`` True at padding positions of ``tgt``. With ``cache``, ``tgt`` holds only the
        new positions (``memory`` and ``memory_pad_mask`` come from the cache) and the cache is updated in place.
        """
        if cache is None:
            if memory is None:
                raise ValueError("decode needs memory (or a cache made by new_cache)")
            work = self.new_cache(memory, memory_pad_mask)
        else:
            work = cache
        offset = work.length
        new = tgt.shape[1]
        pads = tgt_pad_mask
        if work.tgt_pad_mask is not None or (tgt_pad_mask is not None and offset > 0):
            none = tgt.new_zeros(tgt.shape[0], offset + new, dtype=torch.bool)
            old = work.tgt_pad_mask if work.tgt_pad_mask is not None else none[:, :offset]
            cur = tgt_pad_mask if tgt_pad_mask is not None else none[:, offset:]
            pads = torch.cat([old, cur.bool()], dim=1)
        self_mask = attention_mask(pads, new, offset + new, causal=True, offset=offset, device=tgt.device)
        cross_mask = attention_mask(work.memory_pad_mask, new, work.cross[0][0].shape[2] if work.cross else 0,
                                    causal=False, device=tgt.device)
        x = tgt
        for i, layer in enumerate(self.decoder.layers):
            cross_k, cross_v = work.cross[i]
            if self._checkpointed() and cache is None:
                x, kv = checkpoint(layer, x, self_mask, cross_k, cross_v, cross_mask, None, use_reentrant=False)
            else:
                x, kv = layer(x, self_mask, cross_k, cross_v, cross_mask, work.self_kv[i])
            work.self_kv[i] = kv
        work.length = offset + new
        work.tgt_pad_mask = pads
        return self.decoder.norm(x)

    def forward(self, src: torch.Tensor, tgt: torch.Tensor, src_pad_mask: torch.Tensor | None = None,
                tgt_pad_mask: torch.Tensor | None = None, memory_pad_mask: torch.Tensor | None = None
                ) -> torch.Tensor:
        """Teacher-forced pass: ``decode(tgt, encode(src))`` -> ``(B, L, D)``.

        As in ``nn.Transformer``, the memory is not masked unless ``memory_pad_mask`` is given.
        """
        memory = self.encode(src, src_pad_mask)
        return self.decode(tgt, memory, memory_pad_mask, tgt_pad_mask)


class SinusoidalPositions(nn.Module):
    """Sinusoidal embedding of arbitrary (integer or real) positions: ``(...) -> (..., D)`` float32.

    ``pe[2i] = sin(p * w_i)``, ``pe[2i+1] = cos(p * w_i)``, ``w_i = base ** (-2i / D)``. The DST uses
    ``base = 1000`` on frame indices (spec §4.1); ``base = 10000`` is the usual token-position choice.
    """

    def __init__(self, d_model: int, base: float = 10000.0):
        super().__init__()
        if d_model % 2:
            raise ValueError(f"d_model must be even for sinusoidal positions, got {d_model}")
        self.d_model, self.base = d_model, float(base)
        freq = torch.exp(torch.arange(0, d_model, 2, dtype=torch.float32) * (-math.log(self.base) / d_model))
        self.register_buffer("freq", freq, persistent=False)

    def forward(self, positions: torch.Tensor) -> torch.Tensor:
        angle = positions.to(torch.float32)[..., None] * self.freq
        return rearrange(torch.stack([angle.sin(), angle.cos()], dim=-1), "... d two -> ... (d two)")


class InputFusion(nn.Module):
    """Per-token embedding from several named streams, each with its own projection, summed.

    dense: ``{name: features}``, each a ``Linear(features, D)`` over a ``(B, S, features)`` float stream;
    categorical: ``{name: vocabulary}``, each an embedding of a ``(B, S)`` int64 stream (a ``Linear`` over a
    one-hot of the same size is the same function; the table is initialised like that ``Linear``).
    ``forward(streams)`` takes a mapping holding at least every configured stream (others are ignored) and
    returns ``(B, S, D)``. A model built with or without an optional stream only differs by one projection.
    """

    def __init__(self, d_model: int, dense: Mapping[str, int] | None = None,
                 categorical: Mapping[str, int] | None = None):
        super().__init__()
        dense, categorical = dict(dense or {}), dict(categorical or {})
        if not dense and not categorical:
            raise ValueError("InputFusion needs at least one stream")
        if set(dense) & set(categorical):
            raise ValueError(f"streams named twice: {sorted(set(dense) & set(categorical))}")
        self.d_model = d_model
        self.dense = nn.ModuleDict({name: nn.Linear(n, d_model) for name, n in dense.items()})
        self.categorical = nn.ModuleDict({name: nn.Embedding(n, d_model) for name, n in categorical.items()})
        for name, emb in self.categorical.items():
            bound = 1.0 / math.sqrt(categorical[name])
            nn.init.uniform_(emb.weight, -bound, bound)

    @property
    def streams(self) -> list[str]:
        return [*self.dense, *self.categorical]

    def forward(self, streams: Mapping[str, torch.Tensor]) -> torch.Tensor:
        missing = [name for name in self.streams if name not in streams]
        if missing:
            raise KeyError(f"InputFusion: missing stream(s) {missing}; expects {self.streams}")
        out = None
        for name, proj in self.dense.items():
            x = streams[name]
            if x.shape[-1] != proj.in_features:
                raise ValueError(f"InputFusion: stream {name!r} has {x.shape[-1]} features, "
                                 f"expected {proj.in_features}")
            y = proj(x)
            out = y if out is None else out + y
        for name, emb in self.categorical.items():
            y = emb(streams[name])
            out = y if out is None else out + y
        return out
