"""``fpspot.infer`` under ``accelerate launch`` with 2 CPU processes: halves are shared out, the predictions
are gathered and equal the single-process ones."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from harness import launch_two_cpu_processes

SCRIPTS = Path(__file__).parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
from infer_testlib import SYNTH_HW, PixelSpotter, pixel_model_registered, synth_dataset  # noqa: E402

from fpspot.data.footpass import read_playbyplay  # noqa: E402
from fpspot.infer.api import infer, load_logits  # noqa: E402


@pytest.mark.slow
@pytest.mark.distributed
def test_two_processes_share_the_halves_and_match_one_process(tmp_path_factory, tmp_path):
    data = synth_dataset(tmp_path_factory.getbasetemp() / "infer_synth")
    with pixel_model_registered():
        model_dir = PixelSpotter(frame_hw=SYNTH_HW).save_pretrained(tmp_path / "model")
        single = infer(model_dir, data, batch_size=3, logits_dir=tmp_path / "single", show_progress=False)
    out = tmp_path / "out"
    out.mkdir()
    done = launch_two_cpu_processes(SCRIPTS / "infer_distributed.py", model_dir, data, out)
    assert done.returncode == 0, done.stderr[-4000:]

    ranks = [json.loads((out / f"rank{i}.json").read_text()) for i in range(2)]
    assert [r["world_size"] for r in ranks] == [2, 2] and ranks[0]["device"].startswith("cpu")
    keys = ["game_0_H1", "game_0_H2", "game_1_H1", "game_1_H2"]
    assert all(r["ran"] for r in ranks)  # both processes got halves ...
    assert sorted(ranks[0]["ran"] + ranks[1]["ran"]) == keys  # ... each half ran exactly once
    assert ranks[0]["pred"] == ranks[1]["pred"] and all(r["output_exists"] for r in ranks)  # gathered everywhere

    written = read_playbyplay(out / "pred.json", "pred")
    assert written.keys == single.keys == keys
    for key in keys:
        _, two = load_logits(out / "logits" / f"{key}.safetensors")
        _, one = load_logits(tmp_path / "single" / f"{key}.safetensors")
        np.testing.assert_allclose(two, one, rtol=1e-5, atol=1e-6)
        got = [(e.frame, e.team, e.shirt, e.cls) for e in written.events[key]]
        assert got == [(e.frame, e.team, e.shirt, e.cls) for e in single.events[key]] and got
        np.testing.assert_allclose([e.score for e in written.events[key]], [e.score for e in single.events[key]],
                                   rtol=1e-5)
