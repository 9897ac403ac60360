"""Data: FOOTPASS formats, the synthetic match generator, WebDataset shards and loaders."""
