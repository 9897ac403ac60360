"""FOOTPASS constants and records (spec §1).

Class ids, the 13 tactical roles, role slots (``slot = team * 13 + role - 1``, 26 slots), the columns of
the tactical HDF5 tables, half keys (``game_{id}_H{1|2}``) and the two event records: ground truth
``(frame, team, shirt, class, bbox, replay)`` and predictions ``(frame, team, shirt, class, score)``.
"""

from __future__ import annotations

import re
from enum import IntEnum
from typing import NamedTuple

#: Class id -> name. 0 is background; 1..8 are the ball actions scored by the metric.
CLASSES: tuple[str, ...] = (
    "background", "drive", "pass", "cross", "throw-in", "shot", "header", "tackle", "block",
)
ACTION_CLASSES: tuple[str, ...] = CLASSES[1:]
NUM_CLASSES = len(CLASSES)  # 9, including background
NUM_ACTIONS = len(ACTION_CLASSES)  # 8
CLASS_IDS: dict[str, int] = {name: i for i, name in enumerate(CLASSES)}

#: Role id (1..13) - 1 -> abbreviation.
ROLES: tuple[str, ...] = ("GK", "LB", "LCB", "MCB", "RCB", "LM", "RM", "DM", "AM", "LW", "RW", "CF", "RB")
NUM_ROLES = len(ROLES)  # 13
NUM_TEAMS = 2
NUM_SLOTS = NUM_TEAMS * NUM_ROLES  # 26

FPS = 25
VIDEO_HW = (1080, 1920)  # native Full-HD frame, the space of the tactical ROI columns
MODEL_HW = (352, 640)  # frames fed to the models
MISSING_FILL = -15.0  # value of node / team-vector features of a slot without a row (spec §3.1, §4.1)
DUMMY_PLAYER_ID = 300  # id of padding tracklets


class Col(IntEnum):
    """Column index of the tactical HDF5 tables (spec §1.2). Challenge files stop before ``CLS``."""

    FRAME = 0
    PLAYER_ID = 1
    LEFT_TO_RIGHT = 2
    SHIRT_NUMBER = 3
    ROLE_ID = 4
    X_POS = 5
    Y_POS = 6
    X_SPEED = 7
    Y_SPEED = 8
    ROI_X = 9
    ROI_Y = 10
    ROI_WIDTH = 11
    ROI_HEIGHT = 12
    CLS = 13


TACTICAL_COLUMNS: tuple[str, ...] = tuple(c.name for c in Col)
NUM_TACTICAL_COLUMNS = len(TACTICAL_COLUMNS)  # 14 (with labels)
NUM_TACTICAL_COLUMNS_CHALLENGE = NUM_TACTICAL_COLUMNS - 1  # 13 (no CLS)


def slot_of(team: int, role: int) -> int:
    """Role slot of ``(team in {0, 1}, role in 1..13)``: ``team * 13 + role - 1``."""
    if team not in (0, 1) or not 1 <= role <= NUM_ROLES:
        raise ValueError(f"no slot for team={team}, role={role}")
    return team * NUM_ROLES + role - 1


def team_role_of(slot: int) -> tuple[int, int]:
    """Inverse of :func:`slot_of`: ``slot -> (team, role)``."""
    if not 0 <= slot < NUM_SLOTS:
        raise ValueError(f"slot {slot} outside 0..{NUM_SLOTS - 1}")
    return slot // NUM_ROLES, slot % NUM_ROLES + 1


#: Within-team left/right role mirror as a permutation of role index (role - 1):
#: GK, LB<->RB, LCB<->RCB, MCB, LM<->RM, DM, AM, LW<->RW, CF (spec §4.4).
ROLE_LR_MIRROR: tuple[int, ...] = (0, 12, 4, 3, 2, 6, 5, 7, 8, 10, 9, 11, 1)

_HALF_KEY = re.compile(r"^game_(\d+)_H([12])$")


def half_key(game: int, half: int) -> str:
    """``game_{game}_H{half}``, the key of one half in every FOOTPASS file."""
    return f"game_{game}_H{half}"


def parse_half_key(key: str) -> tuple[int, int]:
    """``"game_18_H2" -> (18, 2)``; raises ``ValueError`` for anything else."""
    match = _HALF_KEY.match(key)
    if match is None:
        raise ValueError(f"{key!r} is not a half key of the form game_<id>_H<1|2>")
    return int(match.group(1)), int(match.group(2))


class GTEvent(NamedTuple):
    """One ground-truth action. ``bbox``: the actor has a box; ``replay``: no player visible."""

    frame: int
    team: int
    shirt: int
    cls: int
    bbox: int
    replay: int


class Prediction(NamedTuple):
    """One predicted action with its confidence in [0, 1]."""

    frame: int
    team: int
    shirt: int
    cls: int
    score: float
