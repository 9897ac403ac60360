"""Every YAML file in ``recipes/configs/`` loads against the code that reads it (litgpt's ``config_hub`` test):
the recipe configs as :class:`fpspot.pipeline.config.PipelineConfig` with every model they name built from
its section, the event-DST config by its recipe's dataclasses, post-processing pipelines by
:class:`fpspot.post.pipeline.Pipeline`. A new YAML file without a reader here fails the test."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fpspot.pipeline.config import PipelineConfig
from fpspot.train.config import ConfigError, config_to_dict, load_config, parse_config, read_config_file

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "recipes" / "configs"
RECIPE_CONFIGS = ("taad.yaml", "taad_gnn.yaml", "taad_dst.yaml", "taad_dst_gpu.yaml", "taad_gnn_dst.yaml")
ALL_CONFIGS = sorted(p.name for p in CONFIGS.glob("*.yaml"))


def _kind(name: str) -> str:
    text = (CONFIGS / name).read_text()
    if name in RECIPE_CONFIGS:
        return "recipe"
    if name == "event_dst.yaml":
        return "event_dst"
    if yaml.safe_load(text).get("format") == "fpspot-post/1":
        return "post"
    return "unknown"


def test_every_config_has_a_reader():
    kinds = {name: _kind(name) for name in ALL_CONFIGS}
    assert set(RECIPE_CONFIGS) <= set(kinds), f"recipe configs missing from {CONFIGS}"
    unknown = [n for n, k in kinds.items() if k == "unknown"]
    assert not unknown, f"no test reads {unknown}: add their reader to tests/test_config_hub.py"


@pytest.mark.parametrize("name", RECIPE_CONFIGS)
def test_recipe_config_loads_and_builds_its_models(name):
    from fpspot.models import build

    config = load_config(PipelineConfig, CONFIGS / name)
    raw = read_config_file(CONFIGS / name)  # with its base file merged in, if it names one
    # every key written in the file survives the round trip (nothing silently dropped or renamed)
    resolved = config_to_dict(config)

    def same(written, got, where):
        if isinstance(written, dict):
            for key, value in written.items():
                assert key in got, f"{name}: {where}{key} is not a field"
                same(value, got[key], f"{where}{key}.")
        else:
            assert written == got or (isinstance(written, (int, float)) and float(written) == float(got)), \
                f"{name}: {where[:-1]} is {got!r}, the file says {written!r}"

    same(raw, resolved, "")
    frame = build(config.frame.arch, **config.frame.model)
    assert list(frame.config["frame_hw"]) == list(config.frame.frame_hw)
    if config.gnn is not None:
        assert build(config.gnn.arch, **config.gnn.model).config["frame_hw"] == frame.config["frame_hw"]
    if config.dst is not None:
        dst = build("dst", **config.dst.model)
        assert dst.config["window"] == config.dst.window
        assert bool(dst.config["use_gnn_logits"]) == (config.gnn is not None)
    expected_arch = "taad_gnn" if name == "taad_gnn.yaml" else "taad"
    assert config.frame.arch == expected_arch
    assert (config.dst is not None) == (name.startswith("taad_dst") or name == "taad_gnn_dst.yaml")
    assert (config.gnn is not None) == (name == "taad_gnn_dst.yaml")


def test_recipe_configs_use_the_cpu_sizes_by_default():
    """The configs the recipes run without arguments are the laptop ones: tiny backbone, small frames."""
    for name in ("taad.yaml", "taad_gnn.yaml", "taad_dst.yaml"):
        config = load_config(PipelineConfig, CONFIGS / name)
        assert config.frame.model["backbone"] == "x3d_tiny"
        assert config.frame.frame_hw == tuple(config.data.synth.size), name
        assert config.data.dir == "", f"{name}: the default run generates its synthetic data"


def test_event_dst_config_loads_with_its_recipe():
    from fpspot.pipeline.event_dst.config import RecipeConfig

    config = load_config(RecipeConfig, CONFIGS / "event_dst.yaml")
    with pytest.raises(ConfigError, match="export.dst_thresholds: 'auto' or 'maximin', got 'best'"):
        load_config(RecipeConfig, CONFIGS / "event_dst.yaml", ["export.dst_thresholds=best"])
    assert config.data.window > 0 and config.train.epochs > 0 and config.export.dst_thresholds == "auto"


@pytest.mark.parametrize("name", [n for n in ALL_CONFIGS if _kind(n) == "post"])
def test_post_pipeline_config_loads(name):
    from fpspot.post.pipeline import Pipeline

    pipeline = Pipeline.load(CONFIGS / name)
    assert pipeline.steps and pipeline.output


def test_override_and_errors_name_the_key():
    config = parse_config(PipelineConfig, ["--frame.train.epochs=7", "dst.model.window=120"],
                          default_config=CONFIGS / "taad_dst.yaml")
    assert config.frame.train.epochs == 7 and config.dst.window == 120
    with pytest.raises(ConfigError, match="frame.train.epoch"):
        parse_config(PipelineConfig, ["--frame.train.epoch=7"], default_config=CONFIGS / "taad_dst.yaml",
                     exit_on_error=False)
    with pytest.raises(ConfigError, match="use_gnn_logits"):
        parse_config(PipelineConfig, ["--dst.model.use_gnn_logits=true"], default_config=CONFIGS / "taad_dst.yaml",
                     exit_on_error=False)
    with pytest.raises(ConfigError, match="clip_len"):
        parse_config(PipelineConfig, ["--frame.shards.clip_len=30"], default_config=CONFIGS / "taad.yaml",
                     exit_on_error=False)
    # the model sections are free mappings passed to build(): a misspelt setting is refused when the config is
    # read, not when the model is built after the data stages
    for override, message in (("--frame.model.backbon=x3d_s", r"frame\.model: taad: unknown setting 'backbon' "
                                                              r"\(did you mean 'backbone'\?\)"),
                              ("--dst.model.windw=5", r"dst\.model: dst: unknown setting 'windw'")):
        with pytest.raises(ConfigError, match=message):
            parse_config(PipelineConfig, [override], default_config=CONFIGS / "taad_dst.yaml", exit_on_error=False)


def test_choice_spelled_as_a_yaml_boolean_is_read_as_the_choice():
    # YAML 1.1 reads a bare `no` as false: `train.mixed_precision=no` must still mean the choice 'no'
    from fpspot.pipeline.event_dst.config import RecipeConfig

    config = load_config(RecipeConfig, CONFIGS / "event_dst.yaml", ["train.mixed_precision=no"])
    assert config.train.mixed_precision == "no"
    assert load_config(RecipeConfig, CONFIGS / "event_dst.yaml",
                       ["train.mixed_precision=bf16"]).train.mixed_precision == "bf16"
    with pytest.raises(ConfigError, match="train.mixed_precision: expected one of .*got True"):
        load_config(RecipeConfig, CONFIGS / "event_dst.yaml", ["train.mixed_precision=yes"])


@pytest.mark.parametrize("recipe", ["taad", "taad_gnn", "taad_dst"])
def test_recipe_script_prints_its_config(recipe, tmp_path):
    out = subprocess.run([sys.executable, str(REPO / "recipes" / f"{recipe}.py"), "--print-config", "--name=x"],
                         capture_output=True, text=True, check=True, cwd=tmp_path, timeout=120).stdout
    (tmp_path / "printed.yaml").write_text(out)
    printed = load_config(PipelineConfig, tmp_path / "printed.yaml")
    assert printed == load_config(PipelineConfig, CONFIGS / f"{recipe}.yaml", ["name=x"])


def test_help_lists_every_field_with_the_recipe_values(capsys):
    """``--help`` of the main recipe shows the values of its config file (not the code's defaults) and the
    fields of optional sections (``dst``: set in the file; ``gnn``: null, listed with its code defaults)."""
    with pytest.raises(SystemExit) as done:
        parse_config(PipelineConfig, ["--help"], default_config=CONFIGS / "taad_dst.yaml", prog="taad_dst.py")
    assert done.value.code == 0
    out = capsys.readouterr().out
    config = load_config(PipelineConfig, CONFIGS / "taad_dst.yaml")
    rows = {line.split()[0]: line for line in out.splitlines() if line.startswith("  --")}
    assert rows["--frame.train.epochs"].endswith(f"(default: {config.frame.train.epochs})")
    assert rows["--frame.model"].endswith(f"(default: {config.frame.model!r})")
    assert rows["--dst.train.lr_head"].endswith(f"(default: {config.dst.train.lr_head!r})")
    assert rows["--dst.windows.windows_per_half"].endswith(f"(default: {config.dst.windows.windows_per_half})")
    assert "FrameSection | null" in rows["--gnn"] and "--gnn.train.epochs" in rows
