"""Parameters of the corruption model (:class:`CorruptionParams`: what they mean is in the package
docstring, :mod:`fpspot.data.corrupt`) and the names of its outcomes, kinds and visibility buckets."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path

import numpy as np

from fpspot.schema import NUM_ACTIONS
from fpspot.utils.atomic import atomic_open


OUTCOMES: tuple[str, ...] = ("detected", "wrong_jersey", "wrong_class", "wrong_team", "missed")
DETECTION_KINDS: tuple[str, ...] = OUTCOMES[:-1]  # predictions that detect their event (right or wrong player/class)
BUCKETS: tuple[str, ...] = ("box", "nobox", "replay")
SCORE_KINDS: tuple[str, ...] = ("detected", "wrong", "duplicate", "ghost", "random")
PREDICTION_KINDS: tuple[str, ...] = ("detected", "wrong_jersey", "wrong_class", "wrong_team", "duplicate",
                                     "ghost", "random", "carry")
QUANTILE_LEVELS = np.linspace(0.0, 1.0, 21)
TWIN_PARENTS: tuple[str, ...] = ("detected", "ghost")  # "detected": the four DETECTION_KINDS
NEIGHBOUR_FRAMES = 75  # a "neighbour" player acts within +-75 frames (3 s) of the event
PARAMS_FORMAT = "fpspot-corruption/1"
DEFAULT_PARAMS = "corruption_taad.json"


def bucket_of(event: Sequence) -> str:
    """Visibility bucket of a ground-truth event: ``replay`` | ``box`` | ``nobox``."""
    if event[5]:
        return "replay"
    return "box" if event[4] else "nobox"


@dataclass
class CorruptionParams:
    """Every parameter of the corruption model (see the module docstring for their meaning).

    Class-indexed lists have 9 entries (index = class id, entry 0 unused); confusion matrices are 9 x 9
    rows of probabilities (row = ground-truth class, column = emitted class). Histograms are
    ``{"offsets": [...], "probs": [...]}``.
    """

    outcome: dict[str, dict[str, list[float]]]  # class id (str) -> bucket -> probs over OUTCOMES
    jitter_hist: dict[str, list]
    class_confusion: list[list[float]]
    ghost_rate: list[float]
    ghost_offset_hist: dict[str, list]
    ghost_confusion: list[list[float]]
    ghost_same_team: float
    ghost_neighbour_player: float
    random_rate_per_min: list[float]
    dup_rate: list[float]
    dup_offset_hist: dict[str, list]
    score_quantiles: dict[str, dict[str, list[float]]]  # kind -> class id (str) | "all" -> 21 quantiles
    match_window: int = 12
    jitter_window: int = 50
    ghost_window: int = 25
    dup_window: int = 75
    # random false positives in bursts (absent from older files: then each one is drawn on its own)
    random_burst_size: list[float] = field(default_factory=lambda: [1.0])  # P(size = 1, 2, ...)
    random_burst_gap_hist: dict[str, list] = field(default_factory=lambda: {"offsets": [0], "probs": [1.0]})
    random_burst_same_class: float = 0.0
    random_burst_same_player: float = 0.0
    random_burst_window: int = 25
    # ghosts of an event that was detected sit relative to that detection (absent from older files: relative to
    # the event); ghost_offset_hist then holds the offsets of ghosts of missed events only
    ghost_anchor_hist: dict[str, list] | None = None
    # probability that a duplicate lands on another ground-truth event of its player (0 in older files)
    dup_at_player_event: float = 0.0
    # the spotter's own per-(team, jersey, class) NMS window in frames, applied to the corrupted output (0: none)
    spotter_nms: int = 0
    # duplicate rate factor by parent score bin {"edges": [0, ..., 1] (K + 1), "weights": K} (None: no tilt)
    dup_parent_tilt: dict | None = None
    # 21 quantiles of a duplicate's score / its parent's score (None: capped draws from score_quantiles)
    dup_score_ratio: list[float] | None = None
    # per ground-truth class id (str) a jitter histogram like jitter_hist (None: every class uses jitter_hist)
    jitter_hist_per_class: dict[str, dict[str, list]] | None = None
    # per class (9 entries) the probability that a duplicate lies after its parent (None: either side alike)
    dup_after: list[float] | None = None
    # a duplicate is never closer to its parent than this many frames (0: no limit; TAAD: 26, its 25-frame NMS)
    dup_min_gap: int = 0
    # per class (9 entries) false positives per minute of a player's own possession -- the frames between two
    # consecutive events of one player -- on that player (None: no such false positives; they are ghosts and
    # randoms); their scores are score_quantiles["carry"] (ghost scores when absent)
    carry_rate_per_min: list[float] | None = None
    # twins: another class on the same player next to a detection or a ghost (TAAD fires several classes on one
    # player at once). Per parent group (TWIN_PARENTS) 9 rates per parent class (None: no twins); the twin's class
    # from twin_confusion (9 x 9, parent class -> twin class, zero diagonal), its frame at twin_offset_hist
    # (twin - parent, -match_window..match_window) from its parent; scored as a ghost
    twin_rate: dict[str, list[float]] | None = None
    twin_confusion: list[list[float]] | None = None
    twin_offset_hist: dict[str, list] | None = None
    source: dict = field(default_factory=dict)
    format: str = PARAMS_FORMAT

    # ------------------------------------------------------------------------------------------- io
    def to_json(self) -> dict:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: Mapping, path: str | None = None) -> "CorruptionParams":
        where = f"corruption parameters {path!r}" if path else "corruption parameters"
        if not isinstance(obj, Mapping):
            raise ValueError(f"{where}: top level must be an object")
        if obj.get("format") != PARAMS_FORMAT:
            raise ValueError(f"{where}: key 'format' must be {PARAMS_FORMAT!r}, got {obj.get('format')!r}")
        names = {f for f in cls.__dataclass_fields__}
        unknown = set(obj) - names
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}")
        try:
            params = cls(**dict(obj))
        except TypeError as err:
            raise ValueError(f"{where}: {err}") from None
        params.validate(where)
        return params

    def validate(self, where: str = "corruption parameters") -> None:
        """Raise ``ValueError`` naming the key when a parameter has the wrong shape or range."""
        for c in range(1, NUM_ACTIONS + 1):
            for b in BUCKETS:
                probs = self.outcome.get(str(c), {}).get(b)
                if probs is None or len(probs) != len(OUTCOMES) or abs(sum(probs) - 1) > 1e-6 or min(probs) < 0:
                    raise ValueError(f"{where}: key 'outcome[{c}][{b}]' must be {len(OUTCOMES)} probabilities")
        for name in ("ghost_rate", "random_rate_per_min", "dup_rate"):
            values = getattr(self, name)
            if len(values) != NUM_ACTIONS + 1 or min(values) < 0:
                raise ValueError(f"{where}: key {name!r} must be 9 non-negative rates (index = class id)")
        twins = (self.twin_rate, self.twin_confusion, self.twin_offset_hist)
        if any(t is not None for t in twins) and any(t is None for t in twins):
            raise ValueError(f"{where}: keys 'twin_rate', 'twin_confusion' and 'twin_offset_hist' go together")
        if self.twin_rate is not None:
            if set(self.twin_rate) != set(TWIN_PARENTS):
                raise ValueError(f"{where}: key 'twin_rate' needs one rate list per parent group {list(TWIN_PARENTS)}")
            for group, values in self.twin_rate.items():
                if len(values) != NUM_ACTIONS + 1 or min(values) < 0:
                    raise ValueError(f"{where}: key 'twin_rate[{group}]' must be 9 non-negative rates "
                                     f"(index = class id)")
        for name in ("class_confusion", "ghost_confusion", *(("twin_confusion",) if self.twin_rate else ())):
            rows = getattr(self, name)
            if len(rows) != NUM_ACTIONS + 1 or any(len(r) != NUM_ACTIONS + 1 for r in rows):
                raise ValueError(f"{where}: key {name!r} must be a 9 x 9 matrix")
            for c in range(1, NUM_ACTIONS + 1):  # row 0 (no class) is never drawn from
                if min(rows[c]) < 0 or abs(sum(rows[c]) - 1) > 1e-6:
                    raise ValueError(f"{where}: key '{name}[{c}]' must be probabilities (>= 0, summing to 1)")
        sizes = self.random_burst_size
        if not sizes or min(sizes) < 0 or abs(sum(sizes) - 1) > 1e-6:
            raise ValueError(f"{where}: key 'random_burst_size' must be probabilities of burst sizes 1, 2, ...")
        ratio = self.dup_score_ratio
        if ratio is not None and (len(ratio) != len(QUANTILE_LEVELS) or any(b < a for a, b in zip(ratio, ratio[1:]))
                                  or ratio[0] < 0 or ratio[-1] > 1):
            raise ValueError(f"{where}: key 'dup_score_ratio' must be {len(QUANTILE_LEVELS)} ascending quantiles "
                             f"in [0, 1]")
        if self.dup_parent_tilt is not None:
            edges, weights = self.dup_parent_tilt.get("edges", []), self.dup_parent_tilt.get("weights", [])
            if (len(edges) != len(weights) + 1 or not weights or min(weights) < 0
                    or any(b < a for a, b in zip(edges, edges[1:]))):
                raise ValueError(f"{where}: key 'dup_parent_tilt' needs ascending 'edges' and one non-negative "
                                 f"weight per bin")
        if self.dup_after is not None and (len(self.dup_after) != NUM_ACTIONS + 1
                                           or not all(0.0 <= p <= 1.0 for p in self.dup_after)):
            raise ValueError(f"{where}: key 'dup_after' must be 9 probabilities (index = class id)")
        per_class = self.jitter_hist_per_class
        if per_class is not None and set(per_class) != {str(c) for c in range(1, NUM_ACTIONS + 1)}:
            raise ValueError(f"{where}: key 'jitter_hist_per_class' needs one histogram per class id '1'..'8'")
        carry = self.carry_rate_per_min
        if carry is not None and (len(carry) != NUM_ACTIONS + 1 or min(carry) < 0):
            raise ValueError(f"{where}: key 'carry_rate_per_min' must be 9 non-negative rates (index = class id)")
        if not isinstance(self.dup_min_gap, int) or not 0 <= self.dup_min_gap <= self.dup_window:
            raise ValueError(f"{where}: key 'dup_min_gap' must be frames in 0..dup_window, got {self.dup_min_gap!r}")
        if not isinstance(self.spotter_nms, int) or self.spotter_nms < 0:
            raise ValueError(f"{where}: key 'spotter_nms' must be a window in frames >= 0, got {self.spotter_nms!r}")
        for name in ("random_burst_same_class", "random_burst_same_player", "dup_at_player_event"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{where}: key {name!r} must be a probability")
        if min(self.random_burst_gap_hist.get("offsets", [-1]) or [-1]) < 0:
            raise ValueError(f"{where}: key 'random_burst_gap_hist' needs non-negative 'offsets'")
        anchored = ("ghost_anchor_hist",) if self.ghost_anchor_hist is not None else ()
        anchored += ("twin_offset_hist",) if self.twin_offset_hist is not None else ()
        hists = {name: getattr(self, name) for name in ("jitter_hist", "ghost_offset_hist", "dup_offset_hist",
                                                        "random_burst_gap_hist", *anchored)}
        hists.update({f"jitter_hist_per_class[{c}]": h for c, h in (per_class or {}).items()})
        for name, hist in hists.items():
            if len(hist.get("offsets", [])) != len(hist.get("probs", [])) or not hist["offsets"]:
                raise ValueError(f"{where}: key {name!r} needs equal-length non-empty 'offsets' and 'probs'")
            if min(hist["probs"]) < 0 or abs(sum(hist["probs"]) - 1) > 1e-6:
                raise ValueError(f"{where}: key '{name}[probs]' must be probabilities (>= 0, summing to 1)")
        for kind in (*SCORE_KINDS, *(("carry",) if "carry" in self.score_quantiles else ())):
            table = self.score_quantiles.get(kind, {})
            if "all" not in table or any(len(q) != len(QUANTILE_LEVELS) for q in table.values()):
                raise ValueError(f"{where}: key 'score_quantiles[{kind}]' needs 'all' and 21 quantiles per entry")

    def save(self, path: str | Path) -> Path:
        with atomic_open(path) as handle:
            json.dump(self.to_json(), handle, indent=1)
            handle.write("\n")
        return Path(path)

    @classmethod
    def load(cls, path: str | Path | None = None) -> "CorruptionParams":
        """Read parameters from ``path`` (default: the packaged TAAD fit)."""
        if path is None:
            text = resources.files("fpspot.data").joinpath(DEFAULT_PARAMS).read_text(encoding="utf-8")
            path = DEFAULT_PARAMS
        else:
            try:
                text = Path(path).read_text(encoding="utf-8")
            except FileNotFoundError:
                raise ValueError(f"corruption parameters {str(path)!r}: no such file") from None
        try:
            obj = json.loads(text)
        except json.JSONDecodeError as err:
            raise ValueError(f"corruption parameters {str(path)!r}: not valid JSON ({err.msg})") from None
        return cls.from_json(obj, str(path))

    # ------------------------------------------------------------------------------------ summaries
    def summary(self) -> dict[str, float]:
        """Headline figures: outcome probabilities pooled with the fitting exposure, mean rates."""
        src = self.source
        return {
            "detected_frac": src.get("counts", {}).get("detected", 0) / max(src.get("num_gt", 1), 1),
            "ghost_rate_mean": src.get("counts", {}).get("ghost", 0) / max(src.get("num_gt", 1), 1),
            "random_per_min": src.get("counts", {}).get("random", 0) / max(src.get("free_minutes", 1), 1e-9),
            "dup_per_pred": src.get("counts", {}).get("duplicate", 0) / max(src.get("num_pred", 1), 1),
        }
