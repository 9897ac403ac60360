"""Jersey assignment and re-assignment.

The slot -> jersey table itself (tactical rows, forward then backward fill, spec §2.5, which follows
substitutions and role changes) is :func:`fpspot.data.footpass.slot_jersey_table`; events made from logits
take their shirt from it (:func:`fpspot.post.peaks.logits_to_events`). This module moves an event to
another player of the same team when the evidence supports it:

* :func:`reassign_by_support`: another model has an event of the same team, class and time (within
  ``window``) for another shirt with score ``>= min_support_score``, and none for this event's shirt;
* :func:`reassign_by_logits`: another slot of the same team has a clearly higher probability of the
  event's class around its frame than the event's own slot (by ``margin``).
"""

from __future__ import annotations

import numpy as np

from fpspot.data.footpass import PlayByPlay
from fpspot.post.events import GroupIndex, map_halves
from fpspot.post.peaks import as_numpy_logits
from fpspot.schema import NUM_ROLES, Prediction


def slot_of_event(jerseys: np.ndarray, team: int, shirt: int, frame: int) -> int | None:
    """The role slot of ``(team, shirt)`` at ``frame`` in a ``(26, T)`` jersey table (None if absent)."""
    if not 0 <= frame < jerseys.shape[1] or team not in (0, 1):
        return None
    column = jerseys[team * NUM_ROLES:(team + 1) * NUM_ROLES, frame]
    hits = np.flatnonzero(column == shirt)
    return int(team * NUM_ROLES + hits[0]) if hits.size else None


def reassign_events_by_support(events: list[Prediction], support: list[Prediction], window: int = 12,
                               min_support_score: float = 0.8, max_score: float = 1.0) -> list[Prediction]:
    """Give an event the shirt another model saw for the same team, class and time.

    An event (score ``<= max_score``) with no ``support`` event of its own (team, shirt, class) within
    ``window`` frames takes the shirt of the best ``support`` event of the same team and class with
    another shirt within ``window`` whose score is at least ``min_support_score``. Frames, classes and
    scores are unchanged.
    """
    index = GroupIndex(support)
    out = []
    for e in map(Prediction._make, events):
        if e.score <= max_score and not index.near((e.team, e.shirt, e.cls), e.frame, window):
            others = [support[i] for i in index.near_other_shirts(e.team, e.shirt, e.cls, e.frame, window)]
            others = [o for o in others if o[4] >= min_support_score]
            if others:
                best = max(others, key=lambda o: (o[4], -abs(o[0] - e.frame)))
                e = e._replace(shirt=int(best[2]))
        out.append(e)
    return out


def reassign_by_support(pbp: PlayByPlay, support: PlayByPlay, window: int = 12, min_support_score: float = 0.8,
                        max_score: float = 1.0) -> PlayByPlay:
    """:func:`reassign_events_by_support` on every half."""
    return map_halves(lambda key, events: reassign_events_by_support(
        events, list(support.events.get(key, [])), window, min_support_score, max_score), pbp)


def reassign_events_by_logits(events: list[Prediction], logits, jerseys, start_frame: int = 0, radius: int = 3,
                              margin: float = 0.3) -> list[Prediction]:
    """Move an event to the team-mate whose slot has the highest probability of the event's class.

    For each event, the peak probability of its class within ``+-radius`` frames is compared over the 13
    slots of its team; if another slot's peak beats the event's own slot's by more than ``margin``, the
    event takes that slot's shirt at the event frame. logits ``(9, 26, T)``, jerseys ``(26, T)``, frame
    ``i`` = video frame ``start_frame + i``.
    """
    x = as_numpy_logits(logits)
    jerseys = np.asarray(jerseys)
    num_frames = x.shape[-1]
    out = []
    for e in map(Prediction._make, events):
        t = e.frame - start_frame
        lo, hi = max(0, t - radius), min(num_frames, t + radius + 1)
        if lo >= hi or e.team not in (0, 1):
            out.append(e)
            continue
        slots = slice(e.team * NUM_ROLES, (e.team + 1) * NUM_ROLES)
        seg = np.asarray(x[:, slots, lo:hi], dtype=np.float64)  # (9, 13, w)
        prob = np.exp(seg - seg.max(axis=0, keepdims=True))
        peak = (prob[e.cls] / prob.sum(axis=0)).max(axis=1)  # (13,)
        own = slot_of_event(jerseys, e.team, e.shirt, t)
        own_peak = peak[own - e.team * NUM_ROLES] if own is not None else 0.0
        best = int(np.argmax(peak))
        shirt = int(jerseys[e.team * NUM_ROLES + best, t]) if 0 <= t < num_frames else -1
        if peak[best] - own_peak > margin and shirt >= 0 and shirt != e.shirt:
            e = e._replace(shirt=shirt)
        out.append(e)
    return out


def reassign_by_logits(pbp: PlayByPlay, logits: dict, radius: int = 3, margin: float = 0.3) -> PlayByPlay:
    """:func:`reassign_events_by_logits` on every half with logits (``{key: HalfLogits}``)."""
    def run(key, events):
        half = logits.get(key)
        if half is None:
            return events
        return reassign_events_by_logits(events, half.logits, half.jerseys, half.start_frame, radius, margin)

    return map_halves(run, pbp)
