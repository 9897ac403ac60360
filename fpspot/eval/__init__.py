"""Evaluation: the official FOOTPASS matcher (:func:`evaluate`) and its reports."""

from fpspot.eval.metric import Report, evaluate

__all__ = ["Report", "evaluate"]
