"""The event DST recipe's data settings for the benchmarks, read from ``recipes/configs/event_dst.yaml``.

The benchmarks that time the recipe's data path or training step (``corruption_speed.py``,
``event_dst_batching.py``, ``train_step_speed.py``) build their windows and corruptor here with the recipe's own
config reader and builders (:mod:`fpspot.pipeline.event_dst`: ``RecipeConfig``, ``window_config``,
``training_corruptor``), so that they follow the recipe instead of repeating its values. Not a benchmark itself:
imported by them (they run as scripts from this folder).
"""

from __future__ import annotations

from pathlib import Path

from fpspot.data.corrupt import CorruptionParams
from fpspot.data.event_windows import WindowConfig, WindowCorruptor
from fpspot.pipeline.event_dst.config import RecipeConfig
from fpspot.pipeline.event_dst.data import training_corruptor, window_config
from fpspot.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
RECIPE_CONFIG = REPO / "recipes" / "configs" / "event_dst.yaml"


def recipe_config(path: str | Path = RECIPE_CONFIG) -> RecipeConfig:
    """The recipe's config (its ``RecipeConfig`` dataclass, checked as the recipe checks it)."""
    return load_config(RecipeConfig, path)


def recipe_window_config(config: RecipeConfig) -> WindowConfig:
    """The training windows' length, stride and margin, as the recipe cuts them."""
    return window_config(config.data)


def recipe_corruptor(config: RecipeConfig) -> WindowCorruptor:
    """The recipe's training corruptor (the packaged noise model, its strengths, augmentation and seed)."""
    return training_corruptor(config, CorruptionParams.load())
