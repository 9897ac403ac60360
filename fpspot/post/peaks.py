"""Per-frame logits to events (spec §2.5): softmax, argmax, per (slot, class) greedy temporal NMS.

The baseline's procedure, for one half with logits ``(9, 26, T)``:

1. ``p = softmax_float64(logits)`` over the 9 classes; ``cls = argmax p``, ``score = max p`` per (slot, frame);
2. for each slot ``m`` and class ``c`` in 1..8, the candidate frames are those with ``cls == c``; greedily
   keep the best remaining candidate and drop every other candidate with ``|t - t0| <= window`` (25);
3. each kept frame becomes ``Prediction(frame, team = m // 13, shirt = jerseys[m, t], c, score)``.

:func:`logits_to_events` does this without a Python loop over candidates (see :func:`greedy_nms_1d`);
:func:`logits_to_events_reference` is a direct statement of the loop, kept for tests and benchmarks. Ties
(equal scores inside a window) go to the earlier frame in both (a stable sort; the baseline's
``np.argsort(-s)`` leaves that order unspecified). Alternatives: :func:`soft_nms_events` (Gaussian
score decay) and :func:`smoothed_peak_events` (Gaussian smoothing of each class's probability, then peaks).
"""

from __future__ import annotations

import math

import numpy as np

from fpspot.schema import NUM_ACTIONS, NUM_CLASSES, NUM_ROLES, NUM_SLOTS, Prediction

__all__ = [
    "as_numpy_logits",
    "class_probabilities",
    "class_probability_segment",
    "greedy_nms_1d",
    "logits_to_events",
    "logits_to_events_reference",
    "smoothed_peak_events",
    "soft_nms_events",
    "top_class_scores",
]


def as_numpy_logits(logits, name: str = "logits") -> np.ndarray:
    """``(9, 26, T)`` logits (numpy array or torch tensor) as a float numpy array (dtype kept, no copy).

    Every float dtype converts exactly to float64, so argmax on the original dtype equals argmax in float64.
    """
    if hasattr(logits, "detach"):  # torch.Tensor, without importing torch
        logits = logits.detach().to("cpu")
        logits = (logits.float() if logits.dtype.is_floating_point and logits.element_size() < 4 else logits).numpy()
    array = np.asarray(logits)
    if array.ndim != 3 or array.shape[0] != NUM_CLASSES or array.shape[1] != NUM_SLOTS:
        raise ValueError(f"{name} must have shape (9, 26, T), got {tuple(array.shape)}")
    if not np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float64)
    return array


def _check_jerseys(jerseys, num_frames: int) -> np.ndarray:
    table = np.asarray(jerseys)
    if table.shape != (NUM_SLOTS, num_frames):
        raise ValueError(f"jerseys must have shape (26, T) = (26, {num_frames}) like the logits, got {table.shape}")
    return table.astype(np.int64, copy=False)


def class_probabilities(logits) -> np.ndarray:
    """Softmax over the class axis in float64: ``(9, 26, T)`` logits -> ``(9, 26, T)`` probabilities."""
    x = as_numpy_logits(logits).astype(np.float64)
    e = np.exp(x - x.max(axis=0, keepdims=True))
    return e / e.sum(axis=0, keepdims=True)


def class_probability_segment(x: np.ndarray, cls: int, slot: int, start: int, stop: int) -> np.ndarray:
    """Float64 softmax probability of class ``cls`` for one slot over frames ``start:stop`` of ``(9, 26, T)``
    logits ``x`` (cheap: only that segment is exponentiated)."""
    seg = np.asarray(x[:, slot, start:stop], dtype=np.float64)
    e = np.exp(seg - seg.max(axis=0, keepdims=True))
    return e[cls] / e.sum(axis=0)


_CHUNK = 1 << 18  # candidate cells per softmax chunk (9 x 2^18 float64 = 19 MB)


def _action_candidates(logits) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """The (slot, frame) cells whose argmax class is an action: ``(slot, frame, cls, score, T)``.

    ``cls`` is the argmax (first maximum on ties, as ``np.argmax``) and ``score`` the max float64 softmax
    probability, both evaluated only at those cells: a cell is a candidate iff its background logit is
    below the maximum, and on real logits few cells are. Float dtypes convert exactly to float64, so the
    argmax on the original dtype is the float64 argmax.
    """
    x = as_numpy_logits(logits)
    num_frames = x.shape[-1]
    # Reduction over the leading axis = elementwise maxima of contiguous planes (fast, unlike argmax).
    cells = np.flatnonzero(x[0] < x[1:].max(axis=0))
    slot, frame = np.divmod(cells, num_frames)
    flat = x.reshape(NUM_CLASSES, -1)
    cls = np.empty(cells.size, dtype=np.int64)
    score = np.empty(cells.size, dtype=np.float64)
    for lo in range(0, cells.size, _CHUNK):  # bounded float64 temporaries however many candidates there are
        cols = np.take(flat, cells[lo:lo + _CHUNK], axis=1).astype(np.float64)  # (9, chunk)
        cls[lo:lo + _CHUNK] = cols.argmax(axis=0)
        e = np.exp(cols - cols.max(axis=0, keepdims=True))
        score[lo:lo + _CHUNK] = (e / e.sum(axis=0, keepdims=True)).max(axis=0)
    return slot, frame, cls, score, num_frames


def top_class_scores(logits) -> tuple[np.ndarray, np.ndarray]:
    """``(cls, score)``, both ``(26, T)``: argmax class and max float64 softmax probability per (slot, frame).

    The softmax is only evaluated where the argmax is an action (the score of background cells is never
    used); background cells get class 0 and score 0.
    """
    slot, frame, c, s, num_frames = _action_candidates(logits)
    cls = np.zeros((NUM_SLOTS, num_frames), dtype=np.int64)
    score = np.zeros((NUM_SLOTS, num_frames), dtype=np.float64)
    cls[slot, frame], score[slot, frame] = c, s
    return cls, score


def _local_maxima(key: np.ndarray, score: np.ndarray, window: int) -> np.ndarray:
    """Which entries beat every other entry with ``|key - key_i| <= window``.

    ``key`` is sorted ascending. Higher score wins; equal scores go to the smaller key (earlier frame).
    The loop runs over the offset to the neighbour (at most ``window`` steps), each step vectorised
    over the pairs still inside the window.
    """
    n = key.size
    is_max = np.ones(n, dtype=bool)
    left = np.arange(n - 1)
    offset = 1
    while left.size:
        right = left + offset
        inside = right < n
        left, right = left[inside], right[inside]
        inside = key[right] - key[left] <= window
        left, right = left[inside], right[inside]
        if not left.size:
            break
        s_left, s_right = score[left], score[right]
        is_max[right[s_left >= s_right]] = False
        is_max[left[s_right > s_left]] = False
        offset += 1
    return is_max


def _near_any(key: np.ndarray, anchors: np.ndarray, window: int) -> np.ndarray:
    """For each ``key``, whether some ``anchors`` entry (sorted) lies within ``window``."""
    if anchors.size == 0:
        return np.zeros(key.size, dtype=bool)
    pos = np.searchsorted(anchors, key)
    after = anchors[np.minimum(pos, anchors.size - 1)]
    before = anchors[np.maximum(pos - 1, 0)]
    return (np.abs(after - key) <= window) | (np.abs(key - before) <= window)


def greedy_nms_1d(row: np.ndarray, time: np.ndarray, score: np.ndarray, window: int) -> np.ndarray:
    """Greedy temporal NMS within each row; returns a keep mask over the inputs.

    Equivalent to: per row, sort by score (descending, ties by time), keep the best remaining entry and
    drop every remaining entry with ``|t - t0| <= window``. Computed in rounds: an undecided entry that
    beats every undecided neighbour within the window is kept (everything that beats it was dropped by a
    kept entry), and the undecided entries within the window of a newly kept one are dropped. Each round
    keeps at least the best undecided entry; on real logits two or three rounds settle everything.

    row, time: int arrays (n,); score: float (n,). Inputs are not modified.
    """
    row = np.asarray(row, dtype=np.int64)
    time = np.asarray(time, dtype=np.int64)
    score = np.asarray(score, dtype=np.float64)
    n = row.size
    keep = np.zeros(n, dtype=bool)
    if n == 0:
        return keep
    if window < 0:
        raise ValueError(f"window must be >= 0, got {window}")
    span = int(time.max() - min(time.min(), 0)) + 2 * window + 2  # rows never meet within the window
    key = row * span + time
    order = np.argsort(key, kind="stable")
    key, score_sorted = key[order], score[order]
    undecided = np.arange(n)
    while undecided.size:
        winners = _local_maxima(key[undecided], score_sorted[undecided], window)
        kept = undecided[winners]
        keep[order[kept]] = True
        rest = undecided[~winners]
        undecided = rest[~_near_any(key[rest], key[kept], window)]
    return keep


def _events(slot, frame, cls, score, jerseys: np.ndarray, start_frame: int) -> list[Prediction]:
    order = np.lexsort((frame, -score))  # score descending, as the released files
    slot, frame, cls, score = slot[order], frame[order], cls[order], score[order]
    columns = ((frame + start_frame).tolist(), (slot // NUM_ROLES).tolist(), jerseys[slot, frame].tolist(),
               cls.tolist(), score.tolist())  # plain Python ints and floats
    return list(map(Prediction._make, zip(*columns)))


def logits_to_events(logits, jerseys, start_frame: int = 0, method: str = "nms", window: int = 25,
                     **options) -> list[Prediction]:
    """Events of one half from its per-frame logits.

    logits: ``(9, 26, T)`` raw logits (numpy or torch); frame ``i`` of the array is video frame
    ``start_frame + i``. jerseys: ``(26, T)`` int slot -> shirt table on the same frames
    (:func:`fpspot.data.footpass.slot_jersey_table`). ``method``: ``"nms"`` (the baseline, spec §2.5),
    ``"soft_nms"`` (:func:`soft_nms_events`) or ``"peaks"`` (:func:`smoothed_peak_events`); ``options``
    go to the chosen method. Returns predictions sorted by score, descending.
    """
    if method == "soft_nms":
        return soft_nms_events(logits, jerseys, start_frame=start_frame, window=window, **options)
    if method == "peaks":
        return smoothed_peak_events(logits, jerseys, start_frame=start_frame, window=window, **options)
    if method != "nms":
        raise ValueError(f"unknown method {method!r}; expected 'nms', 'soft_nms' or 'peaks'")
    if options:
        raise TypeError(f"method 'nms' takes no options, got {sorted(options)}")
    slot, frame, c, s, num_frames = _action_candidates(logits)
    jerseys = _check_jerseys(jerseys, num_frames)
    keep = greedy_nms_1d(slot * NUM_ACTIONS + c - 1, frame, s, window)
    return _events(slot[keep], frame[keep], c[keep], s[keep], jerseys, start_frame)


def logits_to_events_reference(logits, jerseys, start_frame: int = 0, window: int = 25) -> list[Prediction]:
    """A direct statement of the spec's loop (§2.5), for tests and benchmarks. Slow.

    Same output as :func:`logits_to_events` with ``method="nms"``.
    """
    p = class_probabilities(logits)
    cls, score = p.argmax(axis=0), p.max(axis=0)
    jerseys = _check_jerseys(jerseys, cls.shape[1])
    slots, frames, classes, scores = [], [], [], []
    for m in range(NUM_SLOTS):
        for c in range(1, NUM_ACTIONS + 1):
            candidates = np.flatnonzero(cls[m] == c)
            order = candidates[np.argsort(-score[m, candidates], kind="stable")]
            while order.size:
                t0 = order[0]
                slots.append(m), frames.append(t0), classes.append(c), scores.append(score[m, t0])
                order = order[np.abs(order - t0) > window]
    return _events(np.asarray(slots, dtype=np.int64), np.asarray(frames, dtype=np.int64),
                   np.asarray(classes, dtype=np.int64), np.asarray(scores, dtype=np.float64), jerseys, start_frame)


def soft_nms_events(logits, jerseys, start_frame: int = 0, window: int = 25, sigma: float = 10.0,
                    min_score: float = 0.15) -> list[Prediction]:
    """Gaussian soft-NMS per (slot, class) on the argmax candidates.

    Repeatedly take the best remaining candidate, then multiply the score of every remaining candidate
    within ``window`` frames by ``1 - exp(-(dt / sigma)^2)`` (so close duplicates die, farther ones are
    only damped); candidates whose score falls under ``min_score`` are dropped. Only candidates that start
    at or above ``min_score`` are considered.
    """
    cls, score = top_class_scores(logits)
    jerseys = _check_jerseys(jerseys, cls.shape[1])
    slot, frame = np.nonzero((cls > 0) & (score >= min_score))
    c = cls[slot, frame]
    s = score[slot, frame].copy()
    row = slot * NUM_ACTIONS + c - 1
    order = np.lexsort((frame, row))
    row, frame, s, slot, c = row[order], frame[order], s[order], slot[order], c[order]
    bounds = np.flatnonzero(np.diff(row)) + 1
    out = [[], [], [], []]
    for lo, hi in zip(np.r_[0, bounds], np.r_[bounds, row.size]):
        times, scores = frame[lo:hi], s[lo:hi].copy()
        alive = np.ones(times.size, dtype=bool)
        while alive.any():
            best = int(np.flatnonzero(alive)[np.argmax(scores[alive])])
            out[0].append(slot[lo]), out[1].append(times[best]), out[2].append(c[lo]), out[3].append(scores[best])
            alive[best] = False
            near = alive & (np.abs(times - times[best]) <= window)
            dt = (times[near] - times[best]) / sigma
            scores[near] *= 1.0 - np.exp(-dt * dt)
            alive &= scores >= min_score
    arrays = [np.asarray(v, dtype=t) for v, t in zip(out, (np.int64, np.int64, np.int64, np.float64))]
    return _events(*arrays, jerseys, start_frame)


def _gaussian_smooth(prob: np.ndarray, sigma: float) -> np.ndarray:
    """Smooth ``(..., T)`` along time with a Gaussian of std ``sigma`` frames (edges: renormalised)."""
    if sigma <= 0:
        return prob.copy()
    radius = max(1, int(math.ceil(3 * sigma)))
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    flat = prob.reshape(-1, prob.shape[-1])
    length = flat.shape[-1]
    size = length + 2 * radius
    nfft = 1 << int(math.ceil(math.log2(size + kernel.size)))
    spectrum = np.fft.rfft(kernel, nfft)
    smoothed = np.fft.irfft(np.fft.rfft(flat, nfft, axis=-1) * spectrum, nfft, axis=-1)[:, radius:radius + length]
    norm = np.convolve(np.ones(length), kernel, mode="same")  # < 1 near the edges
    return (smoothed / norm).reshape(prob.shape)


def smoothed_peak_events(logits, jerseys, start_frame: int = 0, window: int = 25, sigma: float = 2.0,
                         min_score: float = 0.15) -> list[Prediction]:
    """Peaks of each class's smoothed probability per slot (not restricted to argmax frames).

    ``p_c`` (softmax) is smoothed along time with a Gaussian of std ``sigma`` frames; the frames with a
    smoothed probability ``>= min_score`` that are local maxima are candidates, reduced by greedy NMS with
    ``window``. Score = smoothed probability at the peak.
    """
    prob = class_probabilities(logits)[1:]  # (8, 26, T)
    jerseys = _check_jerseys(jerseys, prob.shape[-1])
    smooth = _gaussian_smooth(prob, sigma)
    padded = np.pad(smooth, ((0, 0), (0, 0), (1, 1)), constant_values=-np.inf)
    peak = (smooth >= min_score) & (smooth >= padded[..., :-2]) & (smooth >= padded[..., 2:])
    c, slot, frame = np.nonzero(peak)
    s = smooth[c, slot, frame]
    keep = greedy_nms_1d(slot * NUM_ACTIONS + c, frame, s, window)
    return _events(slot[keep], frame[keep], c[keep] + 1, s[keep], jerseys, start_frame)
