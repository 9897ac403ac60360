"""Inference: batched sliding windows over whole halves (:mod:`fpspot.infer.engine`)."""
