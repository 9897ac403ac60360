"""Package-level behaviour: a light import, the console script, the public lazy API."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch_geometric", "deepspeed", "tensorboard")


def test_import_is_light():
    code = ("import sys, fpspot, fpspot.schema, fpspot.eval, fpspot.cli; "
            f"print([m for m in {HEAVY!r} if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_console_script_help():
    out = subprocess.run([sys.executable, "-m", "fpspot.cli", "--help"], capture_output=True, text=True, check=True)
    for command in ("evaluate", "synth", "shard", "infer", "post"):
        assert command in out.stdout


def test_lazy_api():
    import fpspot

    assert callable(fpspot.evaluate)
    assert fpspot.__version__
