"""Where the files of a FOOTPASS-format dataset live (spec §1.1); real and synthetic datasets alike.

```
ROOT/
  splits.json                              {"train": [game ids], "val": [...], "challenge": [...]}
  videos/game_{id}.mp4                     one video per game, both halves, absolute frame numbers
  data/{split}_tactical_data.h5            one dataset per half key, (N, 14) or (N, 13) floats
  playbyplay_GT/playbyplay_{split}.json    ground truth (absent for the challenge split)
```

Without ``splits.json`` the split of a game is read from the tactical files that hold its halves.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

from fpspot.data.footpass import FormatError, TacticalFile, iter_half_keys
from fpspot.schema import parse_half_key

SPLITS = ("train", "val", "challenge")


@dataclass(frozen=True)
class DatasetLayout:
    """Paths of a FOOTPASS-format dataset rooted at ``root``."""

    root: Path

    def __init__(self, root: str | os.PathLike):
        object.__setattr__(self, "root", Path(root))

    def video(self, game: int) -> Path:
        return self.root / "videos" / f"game_{game}.mp4"

    def tactical(self, split: str) -> Path:
        return self.root / "data" / f"{split}_tactical_data.h5"

    def ground_truth(self, split: str) -> Path:
        return self.root / "playbyplay_GT" / f"playbyplay_{split}.json"

    @property
    def splits_file(self) -> Path:
        return self.root / "splits.json"

    def splits(self) -> dict[str, list[int]]:
        """``{split: [game ids]}`` from ``splits.json``, or from the tactical files present."""
        if self.splits_file.is_file():
            try:
                obj = json.loads(self.splits_file.read_text())
            except json.JSONDecodeError as err:
                raise FormatError(self.splits_file, f"not valid JSON ({err.msg})") from None
            if not isinstance(obj, dict) or not all(isinstance(v, list) for v in obj.values()):
                raise FormatError(self.splits_file, "must map split names to lists of game ids")
            return {split: [int(g) for g in games] for split, games in obj.items()}
        found = {}
        for split in SPLITS:
            if self.tactical(split).is_file():
                with TacticalFile(self.tactical(split)) as tf:
                    found[split] = sorted({parse_half_key(k)[0] for k in tf.keys()})
        if not found:
            raise FormatError(self.root, "no splits.json and no data/{split}_tactical_data.h5: not a FOOTPASS dataset")
        return found

    def half_keys(self, split: str) -> list[str]:
        """Half keys of ``split`` present in its tactical file, in natural order."""
        path = self.tactical(split)
        if not path.is_file():
            raise FormatError(path, f"no tactical file for split {split!r}")
        with TacticalFile(path) as tf:
            return list(iter_half_keys(tf.keys()))
