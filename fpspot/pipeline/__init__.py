"""The recipes' pipeline (``recipes/taad.py``, ``recipes/taad_gnn.py``, ``recipes/taad_dst.py``): configuration
(:mod:`~fpspot.pipeline.config`), restartable stages (:mod:`~fpspot.pipeline.stages`), the run directory
(:mod:`~fpspot.pipeline.layout`), the stage bodies (:mod:`~fpspot.pipeline.steps`), baselines
(:mod:`~fpspot.pipeline.baselines`), the summary (:mod:`~fpspot.pipeline.report`) and the order of the stages
(:mod:`~fpspot.pipeline.run`). The event DST recipe (``recipes/event_dst.py``) has its own workflow in
:mod:`fpspot.pipeline.event_dst`.

Importing this package is light: torch and the models are imported by the stages that need them.
"""

from fpspot.pipeline.config import PipelineConfig

__all__ = ["PipelineConfig", "run_pipeline"]


def __getattr__(name: str):
    if name == "run_pipeline":
        from fpspot.pipeline.run import run_pipeline

        return run_pipeline
    raise AttributeError(f"module 'fpspot.pipeline' has no attribute {name!r}")
