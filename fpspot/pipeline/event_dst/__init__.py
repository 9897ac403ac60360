"""The event DST recipe's workflow (``recipes/event_dst.py``, issue 8): configuration
(:mod:`~fpspot.pipeline.event_dst.config`), training data (:mod:`~fpspot.pipeline.event_dst.data`), held-out
scoring (:mod:`~fpspot.pipeline.event_dst.heldout`), the release folder and its two fitted pipelines
(:mod:`~fpspot.pipeline.event_dst.release`) and the order of work (:mod:`~fpspot.pipeline.event_dst.run`).

The pieces are reusable on their own, e.g. to fit the pipelines of a model for another spotter's noise::

    from fpspot.pipeline.event_dst.release import export_release

Importing this package is light: torch and the models are imported where they are used.
"""
