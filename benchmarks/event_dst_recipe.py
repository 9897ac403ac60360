"""The event DST recipe's data settings for the benchmarks, read from ``recipes/configs/event_dst.yaml``.

The benchmarks that time the recipe's data path or training step (``corruption_speed.py``,
``event_dst_batching.py``, ``train_step_speed.py``) build their windows and corruptor here with the recipe's own
config reader and builders (``recipes/event_dst.py``: ``RecipeConfig``, ``window_config``,
``training_corruptor``), so that they follow the recipe instead of repeating its values. Not a benchmark itself:
imported by them (they run as scripts from this folder).
"""

from __future__ import annotations

import functools
import importlib.util
import sys
from pathlib import Path

from fpspot.data.corrupt import CorruptionParams
from fpspot.data.event_windows import WindowConfig, WindowCorruptor
from fpspot.train.config import load_config

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "recipes" / "event_dst.py"
RECIPE_CONFIG = REPO / "recipes" / "configs" / "event_dst.yaml"


@functools.cache
def _recipe():
    """``recipes/event_dst.py`` as a module (registered, so its dataclasses resolve their type hints)."""
    spec = importlib.util.spec_from_file_location("event_dst_recipe_script", RECIPE)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def recipe_config(path: str | Path = RECIPE_CONFIG):
    """The recipe's config (its ``RecipeConfig`` dataclass, checked as the recipe checks it)."""
    return load_config(_recipe().RecipeConfig, path)


def recipe_window_config(config) -> WindowConfig:
    """The training windows' length, stride and margin, as the recipe cuts them."""
    return _recipe().window_config(config.data)


def recipe_corruptor(config) -> WindowCorruptor:
    """The recipe's training corruptor (the packaged noise model, its strengths, augmentation and seed)."""
    return _recipe().training_corruptor(config, CorruptionParams.load())
