"""Token-budget batches of variable-length samples (length bucketing).

A batch of ``B`` sequences padded to the longest costs ``B * max length`` tokens of compute. When lengths vary
a lot (event windows hold 5 to 50 events depending on the noise strength), random batches are mostly padding.
:func:`token_budget_batches` reads the samples in pools, sorts each pool by length, cuts it in that order into
groups whose padded size stays within ``max_tokens``, and yields the groups in random order: batches of
similar lengths with about the same number of tokens each, so the per-token weight of a loss averaged over a
batch's tokens stays what it is with random batches of a fixed size (the fairseq ``--max-tokens`` scheme).

:func:`count_batches` runs the same cutting on known lengths, to size an epoch in advance.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

T = TypeVar("T")


def _cut(lengths: Sequence[int], max_tokens: int) -> list[list[int]]:
    """Indices of ``lengths`` (sorted here by length) cut greedily into groups with ``count * longest <=
    max_tokens``; a sample longer than ``max_tokens`` forms a group of its own."""
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    groups: list[list[int]] = []
    current: list[int] = []
    for i in order:
        if current and (len(current) + 1) * max(lengths[i], 1) > max_tokens:
            groups.append(current)
            current = []
        current.append(i)
    if current:
        groups.append(current)
    return groups


def _check(max_tokens: int, pool: int) -> None:
    if max_tokens < 1:
        raise ValueError(f"token_budget_batches: max_tokens must be >= 1, got {max_tokens}")
    if pool < 1:
        raise ValueError(f"token_budget_batches: pool must be >= 1, got {pool}")


def token_budget_batches(samples: Iterable[T], max_tokens: int, *, length: Callable[[T], int], pool: int = 1024,
                         rng: random.Random | None = None) -> Iterator[list[T]]:
    """Lists of samples whose ``len(list) * max(length(s))`` is at most ``max_tokens`` (see the module
    docstring). ``pool``: samples sorted together (the last pool may be shorter); ``rng``: orders each pool's
    groups (``None``: ``random.Random(0)``). Every sample is yielded exactly once."""
    _check(max_tokens, pool)
    rng = rng if rng is not None else random.Random(0)
    buffer: list[T] = []

    def flush() -> Iterator[list[T]]:
        groups = _cut([length(s) for s in buffer], max_tokens)
        rng.shuffle(groups)
        for group in groups:
            yield [buffer[i] for i in group]

    for sample in samples:
        buffer.append(sample)
        if len(buffer) == pool:
            yield from flush()
            buffer = []
    if buffer:
        yield from flush()


def count_batches(lengths: Sequence[int], max_tokens: int, *, pool: int = 1024) -> int:
    """The number of batches :func:`token_budget_batches` makes of samples of these lengths (in this order)."""
    _check(max_tokens, pool)
    return sum(len(_cut(lengths[i:i + pool], max_tokens)) for i in range(0, len(lengths), pool))


__all__ = ["count_batches", "token_budget_batches"]
