"""Synthetic FOOTPASS matches: tactical HDF5, play-by-play ground truth and rendered mp4, seeded.

The generator writes a dataset in the layout of the FOOTPASS release (:mod:`fpspot.data.layout`), so every
reader, the shard writer and the inference engine run on it unchanged. It needs no real data: the event
statistics below were measured once from the real ``playbyplay_train.json`` (91,327 events, 96 halves) by
:func:`measure_event_statistics` (``python -m fpspot.data.synth --measure playbyplay_train.json`` prints
them) and are kept here as constants.

Generative model (per half, ``rng = default_rng([seed, game, half])``: a game does not depend on the others)
------------------------------------------------------------------------------------------------------------
1. **Squads.** Each club plays one of three 11-role formations (4-3-3, 3-4-3, 4-2-3-1-like) out of the 13
   FOOTPASS roles, so two slots per team never have a row. Club A is team 0 (``LEFT_TO_RIGHT``, attacks
   towards x = 1) in H1 and team 1 in H2; team ids are side-based as in the real data. Jerseys are drawn per
   club; ``PLAYER_ID`` is ``100 + jersey`` (club A) or ``200 + jersey`` (club B). ``Poisson(0.4)`` (H1) and
   ``Poisson(1.2)`` (H2) substitutions per club change a slot's player and jersey mid-half.
2. **Positions.** A play centre ``p(t)`` (smoothed random walk in [0.15, 0.85]) moves both blocks; a player
   stands at his role's formation spot compressed around ``p(t)`` plus a smooth personal drift (sum of three
   random sinusoids). Positions are pitch coordinates in [0, 1]; velocities are finite differences in pitch
   units per second. Throw-in takers walk to the touchline around their throw.
3. **Events** (possession chains). The first class follows ``FIRST_CLASS``; then class ``c'`` follows ``c``
   with probability ``TRANSITIONS[c][c']``; the actor's team is the previous team with probability
   ``SAME_TEAM[c][c'] / TRANSITIONS[c][c']`` (so receptions, drives and passes stay in a team, tackles and
   blocks come from the other team, throw-ins mostly go to the other team after the ball leaves), the same
   player with probability ``SAME_SHIRT / SAME_TEAM`` (a drive followed by the same player's pass), else a
   teammate drawn by a class x role affinity (shots by forwards, throw-ins by full-backs, ...) times the
   proximity to the ball. The gap to the next event follows the measured quantiles ``GAP_QUANTILES[c]``
   (median 37 frames). The ball is at the actor at every event frame, goes straight from one actor to the
   next, and stays at the feet of a player between two of his own events.
4. **Camera and boxes.** A broadcast camera follows the smoothed ball and shows ``0.4 x 0.7`` of the pitch;
   boxes are the players' projected rectangles in Full-HD pixels (``ROI_X, ROI_Y, ROI_WIDTH, ROI_HEIGHT``),
   NaN when the player is not fully in view, in a tracklet gap (``Poisson`` gaps of 50-150 frames, the real
   data interpolates shorter ones), or during a **replay**. Replay segments (all boxes NaN, rendered as a
   different scene) are placed around events with the measured per-class replay rate ``REPLAY_RATE``; a
   live event's actor loses his box (a gap over the event) with the rate that makes the per-class box rate
   approach ``BBOX_RATE``. ``bbox`` and ``replay`` flags of the ground truth are then read from the tables,
   exactly as defined in the spec (actor row has a box; no row of the frame has a box).
5. **Rendering** (numpy slice writes on a pre-rendered pitch, one pass per frame): striped pitch with lines,
   players as rectangles in club colours (shirt and shorts; goalkeepers in their own colour), the ball, and
   at every event a **class cue at the actor** over frames ``f-2..f+2`` with a triangular intensity peaking
   at the event frame: a bar of the class's colour (white for drive/pass/cross/throw-in, black for the
   others) placed below, above, on both sides of, or across the actor's box (drawn also when the tracker lost
   the actor: he is still on screen). The cues are symmetric about the box centre and black or white, so
   they survive horizontal flips and colour jitter, and a TAAD model can learn the class, the actor and the
   frame. Frames between the halves are dark.
6. **Files.** One mp4 per game (25 fps, ``libx264``, a keyframe every ``gop`` frames, fixed settings: same
   seed, same frames; libx264 may now and then give other bytes for them, see :mod:`fpspot.data.video`),
   the tactical HDF5 per split (14 columns; 13 for the challenge split, which has no
   ground truth), the play-by-play JSON for train and val and ``splits.json``. H2 frame numbers continue
   after H1 plus a 50-frame break.

What comes out (8 games x 10 minutes, ``tests/test_synth.py``): class frequencies within 4 binomial standard
errors of the measured ones (under 1 percentage point; the stationary distribution of ``TRANSITIONS`` equals
``CLASS_FREQUENCY`` to 1e-4), 78-79 % of events with a box (real: 81.4 %), 9-10 % in replays (real: 9.4 %;
throw-ins over 40 %, shots almost never), median gap between events 36-37 frames (real: 37), tackles and
blocks by the other team, throw-ins taken at the touchline, substitutions, tracklet gaps, actors without a
box.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from fpspot.data.footpass import PlayByPlay, write_playbyplay, write_tactical
from fpspot.data.layout import DatasetLayout
from fpspot.schema import FPS, NUM_ACTIONS, NUM_ROLES, NUM_TACTICAL_COLUMNS, VIDEO_HW, Col, GTEvent, half_key
from fpspot.utils.atomic import atomic_open

# --------------------------------------------------------------------------------- measured statistics
# Measured once from playbyplay_train.json (48 games, 96 halves, 91,327 events) with
# measure_event_statistics(); class order 1..8 = drive, pass, cross, throw-in, shot, header, tackle, block.

CLASS_COUNTS = (35527, 45621, 2156, 1730, 1097, 3642, 285, 1269)
BBOX_COUNTS = (30477, 37144, 1519, 754, 889, 2426, 174, 994)
REPLAY_COUNTS = (2823, 4466, 219, 808, 4, 162, 21, 65)
FIRST_CLASS = (44, 52, 0, 0, 0, 0, 0, 0)
#: TRANSITIONS[c][c'] = number of consecutive event pairs (c, c') in a half.
TRANSITIONS = (
    (755, 32329, 1235, 197, 643, 46, 285, 1),
    (31407, 10131, 492, 1024, 203, 1775, 0, 555),
    (422, 473, 15, 14, 131, 786, 0, 313),
    (1018, 502, 3, 6, 4, 192, 0, 3),
    (130, 534, 0, 4, 12, 15, 0, 396),
    (1286, 1218, 92, 199, 69, 769, 0, 1),
    (162, 95, 5, 22, 0, 1, 0, 0),
    (303, 287, 314, 264, 35, 58, 0, 0),
)
#: pairs of TRANSITIONS whose two events are by the same team ...
SAME_TEAM = (
    (134, 31300, 1209, 17, 636, 21, 0, 0),
    (29451, 7622, 345, 3, 173, 553, 0, 0),
    (245, 78, 15, 0, 131, 248, 0, 0),
    (976, 429, 3, 0, 3, 76, 0, 0),
    (12, 13, 0, 0, 12, 2, 0, 0),
    (745, 566, 9, 0, 36, 283, 0, 0),
    (150, 84, 0, 0, 0, 1, 0, 0),
    (137, 163, 0, 0, 0, 34, 0, 0),
)
#: ... and by the same team and jersey.
SAME_SHIRT = (
    (23, 30854, 1108, 8, 607, 13, 0, 0),
    (69, 62, 11, 2, 8, 4, 0, 0),
    (2, 4, 3, 0, 2, 0, 0, 0),
    (3, 3, 0, 0, 0, 3, 0, 0),
    (0, 4, 0, 0, 4, 0, 0, 0),
    (12, 32, 0, 0, 0, 6, 0, 0),
    (89, 51, 0, 0, 0, 1, 0, 0),
    (14, 37, 0, 0, 0, 1, 0, 0),
)
#: Frames from an event of class c to the next event: quantiles at GAP_LEVELS.
GAP_LEVELS = (0.0, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8,
              0.85, 0.9, 0.95, 0.99)
GAP_QUANTILES = (
    (1, 14, 18, 21, 23, 25, 28, 30, 33, 36, 39, 43, 49, 54, 61, 69, 80, 94, 117, 168, 770),
    (1, 15, 19, 21, 23, 25, 27, 29, 31, 32, 34, 37, 39, 42, 45, 49, 54, 62, 75, 109, 743),
    (1, 5, 11, 17, 21, 24, 27, 29, 31, 33, 35, 37, 40, 42, 45, 48, 51, 59, 80, 468, 1254),
    (4, 18, 21, 23, 25, 26, 28, 30, 32, 35, 37, 40, 42, 45, 48, 50, 53, 59, 66, 85, 427),
    (1, 2, 4, 5, 8, 10, 13, 16, 19, 23, 31, 104, 377, 506, 608, 730, 906, 1244, 1636, 1936, 2992),
    (1, 17, 22, 26, 29, 32, 35, 38, 40, 43, 46, 49, 53, 58, 63, 71, 82, 110, 334, 681, 1627),
    (1, 11, 16, 21, 23, 25, 27, 29, 31, 33, 35, 37, 38, 41, 44, 46, 52, 61, 96, 330, 715),
    (1, 15, 22, 29, 33, 39, 45, 52, 60, 74, 106, 175, 275, 391, 507, 591, 681, 764, 870, 1062, 2474),
)
CLASS_FREQUENCY = tuple(c / sum(CLASS_COUNTS) for c in CLASS_COUNTS)
BBOX_RATE = tuple(b / c for b, c in zip(BBOX_COUNTS, CLASS_COUNTS))
REPLAY_RATE = tuple(r / c for r, c in zip(REPLAY_COUNTS, CLASS_COUNTS))

# ------------------------------------------------------------------------------------ model constants

#: Formation spots (depth from own goal, lateral from the left when attacking) of roles 1..13.
ROLE_SPOTS = {
    1: (0.04, 0.50), 2: (0.26, 0.12), 3: (0.20, 0.33), 4: (0.18, 0.50), 5: (0.20, 0.67), 6: (0.50, 0.15),
    7: (0.50, 0.85), 8: (0.36, 0.50), 9: (0.58, 0.50), 10: (0.70, 0.17), 11: (0.70, 0.83), 12: (0.80, 0.50),
    13: (0.26, 0.88),
}
FORMATIONS = (
    (1, 2, 3, 5, 13, 8, 6, 7, 10, 11, 12),  # 4-3-3
    (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12),  # 3-4-3
    (1, 2, 3, 5, 13, 8, 9, 6, 7, 12, 4),  # 4-2-3-1-like with a third centre-back
)
#: Class x role affinity used to pick a new actor (rows: class 1..8, columns: role 1..13).
_DEFAULT_AFFINITY = (0.3, 1, 1, 1, 1, 1.2, 1.2, 1.2, 1.2, 1.1, 1.1, 1, 1)
ROLE_AFFINITY = {
    1: _DEFAULT_AFFINITY,
    2: _DEFAULT_AFFINITY,
    3: (0.01, 3, 0.2, 0.1, 0.2, 3, 3, 0.5, 0.5, 3, 3, 0.3, 3),
    4: (0.01, 4, 0.3, 0.1, 0.3, 2, 2, 0.3, 0.3, 1, 1, 0.2, 4),
    5: (0.01, 0.2, 0.2, 0.2, 0.2, 1, 1, 0.8, 2.5, 2.5, 2.5, 4, 0.2),
    6: (0.1, 1, 2, 2, 2, 1, 1, 1.5, 1, 1, 1, 2, 1),
    7: (0.05, 1.5, 1.5, 1.5, 1.5, 1.5, 1.5, 2, 1, 0.7, 0.7, 0.5, 1.5),
    8: (0.5, 2, 2.5, 2.5, 2.5, 1, 1, 1.5, 0.8, 0.5, 0.5, 0.3, 2),
}
#: Action cue per class: (RGB colour, placement) - placements are symmetric under horizontal flips.
CUES = {
    1: ((255, 255, 255), "below"), 2: ((255, 255, 255), "above"), 3: ((255, 255, 255), "sides"),
    4: ((255, 255, 255), "across"), 5: ((0, 0, 0), "below"), 6: ((0, 0, 0), "above"),
    7: ((0, 0, 0), "sides"), 8: ((0, 0, 0), "across"),
}
CUE_WEIGHTS = (0.35, 0.7, 1.0, 0.7, 0.35)  # frames f-2 .. f+2
CLUB_COLOURS = ((200, 30, 40), (30, 60, 200), (240, 200, 30), (240, 240, 240), (120, 30, 140), (20, 20, 20),
                (250, 120, 20), (40, 170, 220))
VIEW = (0.40, 0.70)  # fraction of the pitch (length, width) in the camera view
PLAYER_HEIGHT_PX = 84.0  # Full-HD pixels at mid-depth
HALF_BREAK = 50  # frames between the last frame of H1 and the first of H2 (kept in the video)


# ---------------------------------------------------------------------------------------- statistics


def measure_event_statistics(pbp: PlayByPlay) -> dict[str, list]:
    """The statistics this module keeps as constants, measured from a ground-truth play-by-play.

    Returns ``class_counts, bbox_counts, replay_counts, first_class`` (8 each), ``transitions, same_team,
    same_shirt`` (8 x 8, consecutive events of a half) and ``gap_quantiles`` (8 x len(GAP_LEVELS)).
    """
    c = NUM_ACTIONS
    counts, bbox, replay, first = (np.zeros(c, np.int64) for _ in range(4))
    trans, same_team, same_shirt = (np.zeros((c, c), np.int64) for _ in range(3))
    gaps: list[list[int]] = [[] for _ in range(c)]
    for key in pbp.keys:
        events = sorted(pbp.events[key], key=lambda e: e.frame)
        if events:
            first[events[0].cls - 1] += 1
        for e in events:
            counts[e.cls - 1] += 1
            bbox[e.cls - 1] += e.bbox
            replay[e.cls - 1] += e.replay
        for a, b in zip(events, events[1:]):
            i, j = a.cls - 1, b.cls - 1
            trans[i, j] += 1
            gaps[i].append(b.frame - a.frame)
            if a.team == b.team:
                same_team[i, j] += 1
                same_shirt[i, j] += a.shirt == b.shirt
    quantiles = [np.quantile(g, GAP_LEVELS).round().astype(int).tolist() if g else [1] * len(GAP_LEVELS)
                 for g in gaps]
    return {"class_counts": counts.tolist(), "bbox_counts": bbox.tolist(), "replay_counts": replay.tolist(),
            "first_class": first.tolist(), "transitions": trans.tolist(), "same_team": same_team.tolist(),
            "same_shirt": same_shirt.tolist(), "gap_quantiles": quantiles}


# ---------------------------------------------------------------------------------------- the model


@dataclass
class Squad:
    """One club in one half. ``timeline[role]``: list of ``(from_frame, player_id, shirt)`` (relative frames)."""

    club: int
    team: int
    roles: tuple[int, ...]
    timeline: dict[int, list[tuple[int, int, int]]]
    colour: tuple[int, int, int]
    shorts: tuple[int, int, int]
    keeper: tuple[int, int, int]

    def player_at(self, role: int, frame: int) -> tuple[int, int]:
        """``(player_id, shirt)`` of the player in ``role`` at a relative frame."""
        pid, shirt = self.timeline[role][0][1:]
        for start, p, s in self.timeline[role]:
            if start <= frame:
                pid, shirt = p, s
        return pid, shirt


@dataclass
class Club:
    """A club for a whole game: formation, shirts, colours, who is on the pitch (updated by substitutions)."""

    index: int
    roles: tuple[int, ...]
    on_pitch: dict[int, int]  # role -> shirt
    bench: list[int]
    colour: tuple[int, int, int]
    shorts: tuple[int, int, int]
    keeper: tuple[int, int, int]


@dataclass
class HalfEvents:
    """Events of one half, relative frames. Arrays of shape (E,)."""

    frame: np.ndarray
    cls: np.ndarray
    team: np.ndarray
    role: np.ndarray


def _make_clubs(rng: np.random.Generator) -> list[Club]:
    colours = rng.choice(len(CLUB_COLOURS), size=4, replace=False)
    clubs = []
    for index in range(2):
        roles = FORMATIONS[int(rng.integers(len(FORMATIONS)))]
        shirts = [1] + (rng.choice(np.arange(2, 100), size=17, replace=False)).tolist()
        on_pitch = {role: int(shirt) for role, shirt in zip(roles, shirts[:11])}
        colour = CLUB_COLOURS[colours[index]]
        shorts = (255, 255, 255) if sum(colour) < 450 else (20, 20, 20)
        clubs.append(Club(index, roles, on_pitch, [int(s) for s in shirts[11:]], colour, shorts,
                          CLUB_COLOURS[colours[2 + index]]))
    return clubs


def _squads_for_half(clubs: list[Club], half: int, num_frames: int, rng: np.random.Generator) -> list[Squad]:
    """Squads indexed by team (0, 1); applies this half's substitutions to the clubs."""
    squads = [None, None]
    for club in clubs:
        team = club.index if half == 1 else 1 - club.index
        base = 100 if club.index == 0 else 200
        timeline = {role: [(0, base + shirt, shirt)] for role, shirt in club.on_pitch.items()}
        subs = min(int(rng.poisson(0.4 if half == 1 else 1.2)), len(club.bench))
        outfield = [r for r in club.roles if r != 1]
        for _ in range(subs):
            role = int(rng.choice(outfield))
            frame = int(rng.integers(int(0.2 * num_frames), int(0.9 * num_frames)))
            shirt = club.bench.pop(0)
            timeline[role].append((frame, base + shirt, shirt))
            timeline[role].sort()
            club.on_pitch[role] = timeline[role][-1][2]
        squads[team] = Squad(club.index, team, club.roles, timeline, club.colour, club.shorts, club.keeper)
    return squads  # type: ignore[return-value]


def _smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Moving average along the last axis with edge padding (same length)."""
    if window <= 1:
        return values
    pad = window // 2
    padded = np.pad(values, [(0, 0)] * (values.ndim - 1) + [(pad, window - 1 - pad)], mode="edge")
    cs = np.cumsum(padded, axis=-1)
    cs = np.concatenate([np.zeros(values.shape[:-1] + (1,)), cs], axis=-1)
    return (cs[..., window:] - cs[..., :-window]) / window


def _play_centre(num_frames: int, rng: np.random.Generator) -> np.ndarray:
    steps = rng.normal(0.0, 0.004, size=num_frames)
    walk = np.empty(num_frames)
    value = rng.uniform(0.35, 0.65)
    for i, step in enumerate(steps):  # reflected random walk
        value += step
        if value < 0.15 or value > 0.85:
            value = float(np.clip(value, 0.15, 0.85))
        walk[i] = value
    return _smooth(walk[None], 75)[0]


def _anchor_positions(squads: list[Squad], centre: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Positions ``(2, 13, T, 2)`` of every role (NaN for roles a team does not play)."""
    num_frames = centre.size
    t = np.arange(num_frames) / FPS
    pos = np.full((2, NUM_ROLES, num_frames, 2), np.nan)
    for team, squad in enumerate(squads):
        for role in squad.roles:
            depth, lateral = ROLE_SPOTS[role]
            if role == 1:
                x = np.full(num_frames, 0.03 + 0.04 * centre)
            else:
                own = centre if team == 0 else 1 - centre
                x = depth * 0.6 + 0.4 * own - 0.05
            y = 0.05 + 0.9 * lateral
            amp = rng.uniform(0.01, 0.03, size=(2, 3)) * (0.3 if role == 1 else 1.0)
            period = rng.uniform(3, 15, size=(2, 3))
            phase = rng.uniform(0, 2 * np.pi, size=(2, 3))
            drift = (amp[..., None] * np.sin(2 * np.pi * t / period[..., None] + phase[..., None])).sum(1)
            x = x + drift[0]
            y = y + drift[1]
            if team == 1:
                x, y = 1 - x, 1 - y
            pos[team, role - 1, :, 0] = np.clip(x, 0.0, 1.0)
            pos[team, role - 1, :, 1] = np.clip(y, 0.0, 1.0)
    return pos


def _sample_gap(cls: int, rng: np.random.Generator) -> int:
    u = rng.uniform(0.0, GAP_LEVELS[-1])
    return max(1, int(round(np.interp(u, GAP_LEVELS, GAP_QUANTILES[cls - 1]))))


def _pick_class(row, rng: np.random.Generator) -> int:
    p = np.asarray(row, dtype=np.float64)
    return int(rng.choice(NUM_ACTIONS, p=p / p.sum())) + 1


def class_balance_factors(class_balance: float) -> np.ndarray:
    """``(8,)`` factors ``CLASS_FREQUENCY[c] ** -class_balance`` (all 1.0 for 0) that reweight the next-class
    choice: 0 keeps the measured class mix, 0.75 makes it nearly flat (stationary shares 3-21 %, tackle the
    rarest, instead of 0.3-50 %; ``tests/test_synth.py``)."""
    if not (class_balance >= 0 and math.isfinite(class_balance)):  # NaN fails too
        raise ValueError(f"class_balance must be >= 0 and finite, got {class_balance}")
    return np.asarray(CLASS_FREQUENCY, dtype=np.float64) ** -float(class_balance)


def sample_event_chain(num_frames: int, rng: np.random.Generator, first_frame: int | None = None,
                       class_balance: float = 0.0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Classes, frames and the team / same-player flags of a half's event chain (no players involved).

    ``class_balance``: exponent of :func:`class_balance_factors` (0: the measured class mix).
    Returns ``(frame, cls, same_team, same_player)``, each (E,): ``same_team[i]`` / ``same_player[i]`` say
    whether event ``i`` is by the team / player of event ``i - 1`` (False for the first event).
    """
    factors = class_balance_factors(class_balance)
    frames, classes, same_team, same_player = [], [], [], []
    frame = int(rng.integers(10, 60)) if first_frame is None else first_frame
    cls = _pick_class(np.asarray(FIRST_CLASS) * factors, rng)
    team_same, player_same = False, False
    while frame < num_frames - 5:
        frames.append(frame)
        classes.append(cls)
        same_team.append(team_same)
        same_player.append(player_same)
        nxt = _pick_class(np.asarray(TRANSITIONS[cls - 1]) * factors, rng)
        n = TRANSITIONS[cls - 1][nxt - 1]
        team_same = bool(rng.uniform() < SAME_TEAM[cls - 1][nxt - 1] / n)
        same_shirt = SAME_SHIRT[cls - 1][nxt - 1] / max(1, SAME_TEAM[cls - 1][nxt - 1])
        player_same = team_same and bool(rng.uniform() < same_shirt)
        frame += _sample_gap(cls, rng)
        cls = nxt
    return (np.asarray(frames, np.int64), np.asarray(classes, np.int64), np.asarray(same_team, bool),
            np.asarray(same_player, bool))


def _assign_actors(frames, classes, same_team, same_player, squads, anchors, rng) -> HalfEvents:
    teams = np.zeros(frames.size, np.int64)
    roles = np.zeros(frames.size, np.int64)
    team, role = int(rng.integers(2)), 0
    ball = np.array([0.5, 0.5])
    for i, (frame, cls) in enumerate(zip(frames, classes)):
        if i == 0 or not same_team[i]:
            team = int(rng.integers(2)) if i == 0 else 1 - team
        if i > 0 and same_player[i] and same_team[i]:
            pass  # same actor
        else:
            candidates = [r for r in squads[team].roles if not (i > 0 and same_team[i] and r == role)]
            where = anchors[team, np.asarray(candidates) - 1, frame]
            distance = np.linalg.norm(where - ball, axis=1)
            weight = np.asarray([ROLE_AFFINITY[int(cls)][r - 1] for r in candidates]) * np.exp(-distance / 0.15)
            role = int(candidates[int(rng.choice(len(candidates), p=weight / weight.sum()))])
        teams[i], roles[i] = team, role
        ball = anchors[team, role - 1, frame]
    return HalfEvents(frames, classes, teams, roles)


def _apply_throw_ins(pos: np.ndarray, events: HalfEvents) -> None:
    """Move throw-in takers to the nearest touchline around their throw (in place)."""
    num_frames = pos.shape[2]
    for frame, cls, team, role in zip(events.frame, events.cls, events.team, events.role):
        if cls != 4:
            continue
        t = np.arange(max(0, frame - 40), min(num_frames, frame + 16))
        ramp = np.clip(np.minimum((t - (frame - 40)) / 20.0, (frame + 15 - t) / 10.0), 0.0, 1.0)
        y = pos[team, role - 1, t, 1]
        edge = 0.0 if y[len(y) // 2] < 0.5 else 1.0
        pos[team, role - 1, t, 1] = (1 - ramp) * y + ramp * edge


def _ball_path(pos: np.ndarray, events: HalfEvents) -> np.ndarray:
    """Ball position ``(T, 2)``: at the actor at events, carried between two events of one player."""
    num_frames = pos.shape[2]
    ball = np.empty((num_frames, 2))
    if events.frame.size == 0:
        ball[:] = 0.5
        return ball
    f0 = int(events.frame[0])
    ball[:f0 + 1] = pos[events.team[0], events.role[0] - 1, f0]
    for i in range(events.frame.size):
        fa, ta, ra = int(events.frame[i]), int(events.team[i]), int(events.role[i])
        if i + 1 == events.frame.size:
            ball[fa:] = pos[ta, ra - 1, fa]
            break
        fb, tb, rb = int(events.frame[i + 1]), int(events.team[i + 1]), int(events.role[i + 1])
        if (ta, ra) == (tb, rb):
            ball[fa:fb + 1] = pos[ta, ra - 1, fa:fb + 1]
        else:
            w = np.linspace(0.0, 1.0, fb - fa + 1)[:, None]
            ball[fa:fb + 1] = (1 - w) * pos[ta, ra - 1, fa] + w * pos[tb, rb - 1, fb]
    return ball


@dataclass
class Camera:
    """Pan of the broadcast camera: view centre ``(T, 2)`` in pitch units; the view is ``VIEW`` wide."""

    centre: np.ndarray
    view: tuple[float, float] = VIEW

    def project(self, xy: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pitch ``(..., T, 2)`` -> Full-HD pixel ``(u, v)`` of the same leading shape."""
        h, w = VIDEO_HW
        u = (xy[..., 0] - self.centre[:, 0] + self.view[0] / 2) / self.view[0] * w
        v = (xy[..., 1] - self.centre[:, 1] + self.view[1] / 2) / self.view[1] * h
        return u, v


def _camera(ball: np.ndarray) -> Camera:
    centre = _smooth(ball.T, 51).T.copy()
    centre[:, 0] = np.clip(centre[:, 0], VIEW[0] / 2, 1 - VIEW[0] / 2)
    centre[:, 1] = np.clip(centre[:, 1], VIEW[1] / 2 - 0.06, 1 - VIEW[1] / 2 + 0.06)
    return Camera(centre)


def _boxes(pos: np.ndarray, camera: Camera) -> np.ndarray:
    """Projected player boxes ``(2, 13, T, 4)`` ``x, y, w, h`` in Full-HD pixels (not yet NaN-masked)."""
    u, v = camera.project(pos)
    height = PLAYER_HEIGHT_PX * (0.8 + 0.4 * np.clip(v / VIDEO_HW[0], 0, 1))
    width = 0.42 * height
    return np.stack([u - width / 2, v - height, width, height], axis=-1)


def _replay_segments(events: HalfEvents, num_frames: int, rng: np.random.Generator) -> np.ndarray:
    """Boolean ``(T,)``: frames inside a replay; each event starts one with its class's replay rate."""
    replay = np.zeros(num_frames, bool)
    f = events.frame
    for i, (frame, cls) in enumerate(zip(f, events.cls)):
        if rng.uniform() >= REPLAY_RATE[cls - 1]:
            continue
        lo = frame - int(rng.integers(10, 40))
        hi = frame + int(rng.integers(10, 40))
        if i > 0:
            lo = max(lo, (f[i - 1] + frame) // 2 + 1)
        if i + 1 < f.size:
            hi = min(hi, (frame + f[i + 1]) // 2 - 1)
        replay[max(lo, 0):min(hi, num_frames - 1) + 1] = True
    return replay


def _visibility(boxes: np.ndarray, present: np.ndarray, events: HalfEvents, replay: np.ndarray,
                rng: np.random.Generator) -> np.ndarray:
    """Boolean ``(2, 13, T)``: the player has a box (in full view, not in a gap, not in a replay)."""
    h, w = VIDEO_HW
    x, y, bw, bh = np.moveaxis(boxes, -1, 0)
    visible = present & (x >= 0) & (y >= 0) & (x + bw <= w) & (y + bh <= h)
    num_frames = boxes.shape[2]
    for team in range(2):  # tracklet gaps the real data would not interpolate (>= 50 frames)
        for role in range(NUM_ROLES):
            for _ in range(int(rng.poisson(num_frames / (FPS * 90)))):
                start = int(rng.integers(num_frames))
                visible[team, role, start:start + int(rng.integers(50, 150))] = False
    for frame, cls, team, role in zip(events.frame, events.cls, events.team, events.role):
        live_nobox = 1.0 - BBOX_RATE[cls - 1] - REPLAY_RATE[cls - 1]
        if rng.uniform() < 0.7 * live_nobox / max(1e-6, 1.0 - REPLAY_RATE[cls - 1]):
            lo = frame - int(rng.integers(10, 60))
            visible[team, role - 1, max(lo, 0):lo + int(rng.integers(50, 120))] = False
    visible[:, :, replay] = False
    return visible


@dataclass
class SynthHalf:
    """Everything generated for one half: tactical rows (absolute frames), events, and render inputs."""

    key: str
    offset: int
    rows: np.ndarray
    events: list[GTEvent]
    squads: list[Squad]
    positions: np.ndarray  # (2, 13, T, 2)
    boxes: np.ndarray  # (2, 13, T, 4) projected, Full-HD
    visible: np.ndarray  # (2, 13, T)
    replay: np.ndarray  # (T,)
    ball: np.ndarray  # (T, 2)
    camera: Camera
    half_events: HalfEvents = field(repr=False, default=None)


def generate_half(game: int, half: int, num_frames: int, offset: int, clubs: list[Club], seed: int,
                  class_balance: float = 0.0) -> SynthHalf:
    """Generate one half of ``num_frames`` frames whose first frame is video frame ``offset``
    (``class_balance``: see :func:`sample_event_chain`)."""
    rng = np.random.default_rng([seed, game, half])
    squads = _squads_for_half(clubs, half, num_frames, rng)
    centre = _play_centre(num_frames, rng)
    anchors = _anchor_positions(squads, centre, rng)
    frames, classes, same_team, same_player = sample_event_chain(num_frames, rng, class_balance=class_balance)
    events = _assign_actors(frames, classes, same_team, same_player, squads, anchors, rng)
    positions = anchors
    _apply_throw_ins(positions, events)
    ball = _ball_path(positions, events)
    camera = _camera(ball)
    boxes = _boxes(positions, camera)
    present = ~np.isnan(positions[..., 0])
    replay = _replay_segments(events, num_frames, rng)
    visible = _visibility(boxes, present, events, replay, rng)
    rows = _tactical_rows(squads, positions, boxes, visible, events, offset)
    gt = []
    for frame, cls, team, role in zip(events.frame, events.cls, events.team, events.role):
        shirt = squads[team].player_at(int(role), int(frame))[1]
        bbox = int(visible[team, role - 1, frame])
        is_replay = int(not visible[:, :, frame].any())
        gt.append(GTEvent(int(frame) + offset, int(team), int(shirt), int(cls), bbox, is_replay))
    return SynthHalf(half_key(game, half), offset, rows, gt, squads, positions, boxes, visible, replay, ball,
                     camera, events)


def _tactical_rows(squads, positions, boxes, visible, events: HalfEvents, offset: int) -> np.ndarray:
    """``(T * 22, 14)`` rows, frame-major, slot order within a frame."""
    num_frames = positions.shape[2]
    velocity = np.gradient(positions, axis=2) * FPS
    label = np.zeros((2, NUM_ROLES, num_frames), np.float64)
    label[events.team, events.role - 1, events.frame] = events.cls
    blocks = []
    for team, squad in enumerate(squads):
        for role in squad.roles:
            pid = np.empty(num_frames)
            shirt = np.empty(num_frames)
            for start, p, s in squad.timeline[role]:
                pid[start:], shirt[start:] = p, s
            roi = np.where(visible[team, role - 1, :, None], boxes[team, role - 1], np.nan)
            block = np.column_stack([
                np.arange(num_frames) + offset, pid, np.full(num_frames, team), shirt, np.full(num_frames, role),
                positions[team, role - 1], velocity[team, role - 1], np.round(roi, 1), label[team, role - 1],
            ])
            blocks.append(block)
    rows = np.stack(blocks, axis=1)  # (T, 22, 14)
    return rows.reshape(-1, NUM_TACTICAL_COLUMNS)


# ------------------------------------------------------------------------------------------ rendering


class PitchRenderer:
    """Renders frames of ``size = (H, W)`` from a :class:`SynthHalf` (numpy slice writes)."""

    def __init__(self, size: tuple[int, int]):
        self.height, self.width = size
        self.sx, self.sy = self.width / VIDEO_HW[1], self.height / VIDEO_HW[0]
        self.pitch_w = int(round(self.width / VIEW[0]))
        self.pitch_h = int(round(self.height / VIEW[1]))
        self.margin = max(self.width, self.height)
        self.texture = self._texture()

    def _texture(self) -> np.ndarray:
        m, pw, ph = self.margin, self.pitch_w, self.pitch_h
        tex = np.empty((ph + 2 * m, pw + 2 * m, 3), np.uint8)
        tex[:] = (70, 80, 70)  # stands
        xs = np.arange(pw)
        stripe = (xs * 14 // pw) % 2
        grass = np.where(stripe[:, None] == 0, np.array([40, 140, 50]), np.array([50, 160, 60])).astype(np.uint8)
        tex[m:m + ph, m:m + pw] = grass[None]
        line = (235, 235, 235)
        t = max(1, round(self.height / 180))
        tex[m:m + t, m:m + pw] = line
        tex[m + ph - t:m + ph, m:m + pw] = line
        tex[m:m + ph, m:m + t] = line
        tex[m:m + ph, m + pw - t:m + pw] = line
        tex[m:m + ph, m + pw // 2 - t // 2:m + pw // 2 - t // 2 + t] = line
        yy, xx = np.mgrid[0:ph, 0:pw]
        radius = np.hypot((xx - pw / 2) / pw * 105, (yy - ph / 2) / ph * 68)
        ring = np.abs(radius - 9.15) < 0.25 * t
        tex[m:m + ph, m:m + pw][ring] = line
        for side in (0, 1):  # penalty areas
            x0 = 0 if side == 0 else pw - int(pw * 16.5 / 105)
            x1 = x0 + int(pw * 16.5 / 105)
            y0, y1 = int(ph * (34 - 20.15) / 68), int(ph * (34 + 20.15) / 68)
            tex[m + y0:m + y0 + t, m + x0:m + x1] = line
            tex[m + y1:m + y1 + t, m + x0:m + x1] = line
            xe = x1 if side == 0 else x0
            tex[m + y0:m + y1, m + xe:m + xe + t] = line
        return tex

    def background(self, centre: np.ndarray) -> np.ndarray:
        x0 = int(round((centre[0] - VIEW[0] / 2) * self.pitch_w)) + self.margin
        y0 = int(round((centre[1] - VIEW[1] / 2) * self.pitch_h)) + self.margin
        x0 = int(np.clip(x0, 0, self.texture.shape[1] - self.width))
        y0 = int(np.clip(y0, 0, self.texture.shape[0] - self.height))
        return self.texture[y0:y0 + self.height, x0:x0 + self.width].copy()

    def _rect(self, frame: np.ndarray, x1: float, y1: float, x2: float, y2: float, colour, alpha: float = 1.0):
        a = min(max(math.floor(x1), 0), self.width)  # plain Python: called ~20 times per frame
        b = min(max(math.ceil(x2), 0), self.width)
        c = min(max(math.floor(y1), 0), self.height)
        d = min(max(math.ceil(y2), 0), self.height)
        if a >= b or c >= d:
            return
        if alpha >= 1.0:
            frame[c:d, a:b] = colour
        else:
            region = frame[c:d, a:b].astype(np.float32)
            frame[c:d, a:b] = (region * (1 - alpha) + np.asarray(colour, np.float32) * alpha).astype(np.uint8)

    def render(self, half: SynthHalf) -> Iterator[np.ndarray]:
        """Yield the ``(H, W, 3)`` uint8 frames of the half, first to last."""
        num_frames = half.positions.shape[2]
        cues: dict[int, list[tuple[int, int, int, float]]] = {}
        for e, (frame, cls, team, role) in enumerate(zip(half.half_events.frame, half.half_events.cls,
                                                          half.half_events.team, half.half_events.role)):
            for k, weight in zip(range(-2, 3), CUE_WEIGHTS):
                if 0 <= frame + k < num_frames:
                    cues.setdefault(int(frame + k), []).append((int(cls), int(team), int(role), weight))
        bu, bv = half.camera.project(half.ball[None])
        ball_r = max(1.0, 7.0 * self.sx)
        for t in range(num_frames):
            if half.replay[t]:
                yield self._replay_frame(half, t, cues.get(t, []))
                continue
            frame = self.background(half.camera.centre[t])
            order = np.argsort(half.boxes[:, :, t, 1] + half.boxes[:, :, t, 3], axis=None)  # far players first
            for flat in order:
                team, r = divmod(int(flat), NUM_ROLES)
                x, y, w, h = half.boxes[team, r, t]
                if np.isnan(x):
                    continue
                x1, y1, x2, y2 = x * self.sx, y * self.sy, (x + w) * self.sx, (y + h) * self.sy
                if x2 < 0 or x1 > self.width or y2 < 0 or y1 > self.height:
                    continue
                squad = half.squads[team]
                shirt = squad.keeper if r == 0 else squad.colour
                self._rect(frame, x1, y1, x2, y1 + 0.62 * (y2 - y1), shirt)
                self._rect(frame, x1, y1 + 0.62 * (y2 - y1), x2, y2, squad.shorts)
            u, v = bu[0, t] * self.sx, bv[0, t] * self.sy
            self._rect(frame, u - ball_r, v - ball_r, u + ball_r, v + ball_r, (250, 250, 250))
            for cls, team, role, weight in cues.get(t, []):
                x, y, w, h = half.boxes[team, role - 1, t]
                self._cue(frame, cls, x * self.sx, y * self.sy, (x + w) * self.sx, (y + h) * self.sy, weight)
            yield frame

    def _cue(self, frame, cls, x1, y1, x2, y2, weight):
        colour, place = CUES[cls]
        w, h = x2 - x1, y2 - y1
        thick = max(1.5, 0.22 * h)
        if place == "below":
            self._rect(frame, x1 - 0.3 * w, y2, x2 + 0.3 * w, y2 + thick, colour, weight)
        elif place == "above":
            self._rect(frame, x1 - 0.3 * w, y1 - thick, x2 + 0.3 * w, y1, colour, weight)
        elif place == "sides":
            self._rect(frame, x1 - thick, y1 + 0.2 * h, x1, y2 - 0.2 * h, colour, weight)
            self._rect(frame, x2, y1 + 0.2 * h, x2 + thick, y2 - 0.2 * h, colour, weight)
        else:  # across
            self._rect(frame, x1 - 0.3 * w, y1 + 0.4 * h, x2 + 0.3 * w, y1 + 0.4 * h + thick, colour, weight)

    def _replay_frame(self, half: SynthHalf, t: int, cues) -> np.ndarray:
        """A replay: a zoomed, darker scene with large player shapes and no tracked boxes."""
        frame = np.empty((self.height, self.width, 3), np.uint8)
        frame[:] = (30, 90, 40)
        frame[: self.height // 5] = (90, 90, 100)
        for cls, team, role, weight in cues:
            squad = half.squads[team]
            cx = self.width * (0.45 + 0.1 * team)
            self._rect(frame, cx - 0.06 * self.width, 0.25 * self.height, cx + 0.06 * self.width, 0.85 * self.height,
                       squad.colour)
            self._cue(frame, cls, cx - 0.06 * self.width, 0.25 * self.height, cx + 0.06 * self.width,
                      0.85 * self.height, weight)
        return frame


# ------------------------------------------------------------------------------------------ datasets


#: Frames of the shortest half: the first event falls in frames 10..59 and none in the last 5 frames.
MIN_HALF_FRAMES = 65


@dataclass
class SynthConfig:
    """What :func:`generate_dataset` writes. ``minutes``: length of a game (both halves together).

    Checked when built (``ValueError`` naming the setting): at least one game, halves of at least
    ``MIN_HALF_FRAMES`` frames (``minutes >= 0.087``), an even positive frame size, and splits that leave a
    train split.
    """

    games: int = 4
    minutes: float = 2.0
    size: tuple[int, int] = (352, 640)
    seed: int = 0
    val_games: int | None = None  # default: 1 game in 4 (at least 1 when games >= 2)
    challenge_games: int = 0
    crf: int = 23
    gop: int = 50  # keyframe interval of the game videos (x264's own default is 250)
    class_balance: float = 0.0  # 0: the measured class mix; > 0 flattens it (see class_balance_factors)

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first setting that cannot give a dataset."""
        self._check_games()
        self._check_minutes()
        self._check_video()
        class_balance_factors(self.class_balance)

    def _check_games(self) -> None:
        if self.games < 1:
            raise ValueError(f"games must be at least 1, got {self.games}")
        for name in ("val_games", "challenge_games"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        self.splits()

    def _check_video(self) -> None:
        if len(self.size) != 2 or any(int(v) != v or v <= 0 or v % 2 for v in self.size):
            raise ValueError(f"size must be (height, width), both positive and even, got {tuple(self.size)}")
        if self.gop < 1:
            raise ValueError(f"gop must be at least 1, got {self.gop}")
        if not 0 <= self.crf <= 51:
            raise ValueError(f"crf must be in 0..51, got {self.crf}")

    def _check_minutes(self) -> None:
        if math.isinf(self.minutes):
            raise ValueError(f"minutes must be finite, got {self.minutes}")
        if math.isnan(self.minutes) or game_frames(self.minutes)[0] < MIN_HALF_FRAMES:
            shortest = math.ceil(2 * MIN_HALF_FRAMES / (60 * FPS) * 1000) / 1000
            raise ValueError(f"minutes must be at least {shortest:.3f} ({MIN_HALF_FRAMES} frames per half, so that "
                             f"every half has an event), got {self.minutes:g}")

    def splits(self) -> dict[str, list[int]]:
        games = list(range(self.games))
        default_val = max(1, round(self.games / 4)) if self.games >= 2 else 0
        n_val = self.val_games if self.val_games is not None else default_val
        n_chal = self.challenge_games
        if n_val + n_chal >= self.games and self.games > 0:
            raise ValueError(f"{self.games} games cannot hold {n_val} val and {n_chal} challenge games and a "
                             "train split")
        train = games[: self.games - n_val - n_chal]
        val = games[len(train): len(train) + n_val]
        chal = games[len(train) + n_val:]
        return {"train": train, "val": val, "challenge": chal}


def game_frames(minutes: float) -> tuple[int, int]:
    """Frames of the two halves of a game of ``minutes`` (H1 gets the shorter half of an odd total)."""
    total = int(round(minutes * 60 * FPS))
    return total // 2, total - total // 2


def generate_game(game: int, config: SynthConfig, video_path: str | os.PathLike | None) -> list[SynthHalf]:
    """Generate both halves of a game and (when ``video_path`` is given) render its mp4."""
    from fpspot.data.video import VideoWriter

    h1, h2 = game_frames(config.minutes)
    clubs = _make_clubs(np.random.default_rng([config.seed, game, 0]))
    first = generate_half(game, 1, h1, 0, clubs, config.seed, config.class_balance)
    second = generate_half(game, 2, h2, h1 + HALF_BREAK, clubs, config.seed, config.class_balance)
    if video_path is not None:
        renderer = PitchRenderer(config.size)
        dark = np.full((*config.size, 3), 12, np.uint8)
        with VideoWriter(video_path, *config.size, crf=config.crf, gop=config.gop) as writer:
            writer.write_all(renderer.render(first))
            for _ in range(HALF_BREAK):
                writer.write(dark)
            writer.write_all(renderer.render(second))
    return [first, second]


def generate_dataset(out: str | os.PathLike, config: SynthConfig, progress=None) -> DatasetLayout:
    """Write a synthetic FOOTPASS-format dataset to ``out`` (see the module docstring)."""
    layout = DatasetLayout(out)
    splits = config.splits()
    for split, games in splits.items():
        if not games:
            continue
        tables: dict[str, np.ndarray] = {}
        events: dict[str, list[GTEvent]] = {}
        for game in games:
            for half in generate_game(game, config, layout.video(game)):
                rows = half.rows if split != "challenge" else half.rows[:, : Col.CLS]
                tables[half.key] = rows
                events[half.key] = half.events
            if progress is not None:
                progress(game)
        write_tactical(layout.tactical(split), tables)
        if split != "challenge":
            keys = list(tables)
            write_playbyplay(layout.ground_truth(split), PlayByPlay("gt", keys, events))
    with atomic_open(layout.splits_file) as handle:
        json.dump({k: v for k, v in splits.items() if v}, handle)
    return layout


def _main(argv: list[str] | None = None) -> int:
    import argparse

    from fpspot.data.footpass import read_playbyplay

    parser = argparse.ArgumentParser(description="print the event statistics of a ground-truth play-by-play")
    parser.add_argument("--measure", required=True, help="playbyplay_train.json")
    args = parser.parse_args(argv)
    stats = measure_event_statistics(read_playbyplay(args.measure, "gt"))
    for name, value in stats.items():
        print(f"{name.upper()} = {json.dumps(value)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(_main())


__all__ = [
    "BBOX_RATE", "CLASS_FREQUENCY", "REPLAY_RATE", "PitchRenderer", "SynthConfig", "SynthHalf", "class_balance_factors",
    "generate_dataset", "generate_game", "generate_half", "measure_event_statistics", "sample_event_chain",
]
