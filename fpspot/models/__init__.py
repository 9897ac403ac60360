"""fpspot models: TAAD, TAAD+GNN, DST and the event DST built from :mod:`fpspot.models.blocks`, and their zoo.

* :func:`build` ``(name, **config)`` a new model (an unknown config key raises ``TypeError``); :func:`list_models`
  the registered names;
* :func:`load_model` ``(dir)`` a model written by ``model.save_pretrained(dir)``.
"""

from __future__ import annotations

from fpspot.models.base import SpotterModel
from fpspot.models.zoo import ModelLoadError, build, list_models, load_model, register_model

__all__ = ["ModelLoadError", "SpotterModel", "build", "list_models", "load_model", "register_model"]
