"""The event DST recipe's data settings for the benchmarks, read from ``recipes/configs/event_dst.yaml``.

The benchmarks that time the recipe's data path or training step (``corruption_speed.py``,
``event_dst_batching.py``, ``train_step_speed.py``) build their windows and corruptor here, so that they
follow the recipe's config (window, stride and margin; noise strengths; augmentation; player table size)
instead of repeating its values. Not a benchmark itself: imported by them (they run as scripts from this
folder).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from fpspot.data.corrupt import CorruptionParams
from fpspot.data.event_windows import WindowConfig, WindowCorruptor

REPO = Path(__file__).resolve().parents[1]
RECIPE_CONFIG = REPO / "recipes" / "configs" / "event_dst.yaml"


def recipe_config(path: str | Path = RECIPE_CONFIG) -> dict[str, Any]:
    """The recipe's YAML config as a dict (sections ``model``, ``data``, ``train`` ...)."""
    path = Path(path)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    for section, keys in (("data", ("window", "stride", "margin", "strength", "augment", "max_tokens")),
                          ("model", ("max_players",))):
        missing = [k for k in keys if k not in config.get(section, {})]
        if missing:
            raise KeyError(f"{path}: section {section!r} lacks {missing}")
    return config


def recipe_window_config(config: dict[str, Any]) -> WindowConfig:
    """The training windows' length, stride and margin (``data.window``, ``data.stride``, ``data.margin``)."""
    data = config["data"]
    return WindowConfig(int(data["window"]), int(data["stride"]), int(data["margin"]))


def recipe_corruptor(config: dict[str, Any], seed: int = 0) -> WindowCorruptor:
    """The recipe's training corruptor: the packaged noise model, ``data.strength`` (a ``[low, high,
    p_fitted]`` range or ``[strength]``), ``data.augment`` and ``model.max_players``, as
    ``recipes/event_dst.py`` builds it."""
    strength = config["data"]["strength"]
    strength = tuple(float(s) for s in strength) if len(strength) == 3 else float(strength[0])
    return WindowCorruptor(CorruptionParams.load(), seed=seed, strength=strength,
                           augment=bool(config["data"]["augment"]), max_players=int(config["model"]["max_players"]))
