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
    """Each lazy name is the real object of its module, and ``from fpspot import NAME`` works."""
    import importlib

    import fpspot
    from fpspot import evaluate, infer, load_model

    assert evaluate is fpspot.evaluate is importlib.import_module("fpspot.eval").evaluate
    assert load_model is fpspot.load_model is importlib.import_module("fpspot.models.zoo").load_model
    assert infer is fpspot.infer is sys.modules["fpspot.infer"] and callable(infer)
    assert fpspot.__version__


def test_import_does_not_import_torch():
    code = "import sys, fpspot; fpspot.__version__; dir(fpspot); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_dir_lists_the_lazy_api():
    import fpspot

    names = dir(fpspot)
    assert {"evaluate", "infer", "load_model", "__version__"} <= set(names)
    assert names == sorted(names)
