"""Reusable model blocks (each module documents its tensor shapes).

* :mod:`~fpspot.models.blocks.x3d`: X3D backbone (pytorchvideo state dict), activation checkpointing;
* :mod:`~fpspot.models.blocks.neck`: FPN neck to stride 8;
* :mod:`~fpspot.models.blocks.track_pool`: RoIAlign over tracklets (torchvision or pure torch);
* :mod:`~fpspot.models.blocks.temporal`: per-track temporal heads (Conv1d, Conv1d + BiGRU);
* :mod:`~fpspot.models.blocks.graph`: player kNN graph and EdgeConv encoder (torch-geometric, imported lazily);
* :mod:`~fpspot.models.blocks.seq2seq`: DST encoder-decoder.

Import the submodule you need; this package imports nothing itself.
"""
