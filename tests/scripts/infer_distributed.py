"""Run ``fpspot.infer`` under ``accelerate launch`` (tests/test_infer_distributed.py).

Usage: ``accelerate launch --config_file CFG infer_distributed.py MODEL_DIR DATA_DIR OUT_DIR``. Every process
writes ``OUT_DIR/rank{i}.json`` with the world size, the halves it ran and the predictions it got back;
the main process writes ``OUT_DIR/pred.json``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from infer_testlib import PixelSpotter  # noqa: E402

from fpspot.models import register_model  # noqa: E402

import fpspot  # noqa: E402
from fpspot.infer.api import nms_events, process_state  # noqa: E402


def main(model_dir: str, data_dir: str, out_dir: str) -> None:
    register_model("test_pixel")(PixelSpotter)  # the model saved by the test
    state = process_state()  # as fpspot.infer creates it (a bare PartialState() would ignore ACCELERATE_USE_CPU)
    ran: list[str] = []

    def to_events(logits, half):
        ran.append(half.key)
        return nms_events(logits, half)

    out = Path(out_dir)
    pred = fpspot.infer(model_dir, data_dir, batch_size=3, output=out / "pred.json", logits_dir=out / "logits",
                        to_events=to_events)
    with open(out / f"rank{state.process_index}.json", "w") as handle:
        json.dump({"world_size": state.num_processes, "device": str(state.device), "ran": ran,
                   "pred": pred.to_json(), "output_exists": (out / "pred.json").is_file()}, handle)


if __name__ == "__main__":
    main(*sys.argv[1:4])
