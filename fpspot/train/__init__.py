"""Training pieces: losses (:mod:`fpspot.train.losses`), class-weight schemes, the Accelerate trainer.

Kept light: nothing is imported here, import the submodules you need.
"""
