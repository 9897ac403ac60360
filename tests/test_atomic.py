"""Atomic writes (``fpspot.utils.atomic``): a write interrupted partway, after some bytes have been written,
leaves the previous file byte-identical (or no file at all when there was none) and no temporary file beside
it; a finished write replaces the file whole. Also through a real writer: ``save_pretrained`` killed inside
``safetensors``' ``save_file``."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fpspot.utils.atomic import atomic_open, atomic_path

PREVIOUS = b'{"previous": "whole file"}\n'


class Killed(BaseException):
    """What a killed writer raises (a ``BaseException`` like ``KeyboardInterrupt``, not an ``Exception``)."""


def _folder(path: Path) -> list[str]:
    """Every name in the folder of ``path``, hidden ones (temporary files) included."""
    return sorted(os.listdir(path.parent))


@pytest.mark.parametrize("error", [OSError("No space left on device"), Killed("killed")])
def test_atomic_open_interrupted_after_writing_keeps_the_previous_file(tmp_path: Path, error: BaseException) -> None:
    """Bytes written inside ``atomic_open`` go to a temporary ``.<name>.*.tmp`` file, not to the target: while
    the block runs the target still holds its previous bytes; when the block raises (an error or a kill) after
    writing, the target is byte-identical to before and the temporary file is gone."""
    target = tmp_path / "out.json"
    target.write_bytes(PREVIOUS)
    with pytest.raises(type(error)):
        with atomic_open(target) as handle:
            handle.write('{"new": "' + "x" * 100_000)
            handle.flush()
            assert target.read_bytes() == PREVIOUS  # the new bytes are elsewhere
            temporary = [name for name in _folder(target) if name != "out.json"]
            assert len(temporary) == 1 and temporary[0].startswith(".out.json.") and temporary[0].endswith(".tmp")
            assert (tmp_path / temporary[0]).stat().st_size > 100_000
            raise error
    assert target.read_bytes() == PREVIOUS
    assert _folder(target) == ["out.json"]


def test_atomic_path_interrupted_after_writing_keeps_the_previous_file(tmp_path: Path) -> None:
    """``atomic_path`` (for writers that need a path): the writer's partial bytes land in the temporary path;
    on an exception the target is byte-identical to before and no temporary file is left."""
    target = tmp_path / "weights.bin"
    target.write_bytes(PREVIOUS)
    with pytest.raises(OSError, match="disk full"):
        with atomic_path(target) as tmp:
            with open(tmp, "wb") as handle:
                handle.write(b"\0" * 4096)
            raise OSError("disk full")
    assert target.read_bytes() == PREVIOUS
    assert _folder(target) == ["weights.bin"]


def test_an_interrupted_first_write_leaves_no_file(tmp_path: Path) -> None:
    """With no previous file, an interrupted binary write leaves nothing at all under the final name (no empty
    or half-written file), and no temporary file."""
    target = tmp_path / "sub" / "new.bin"
    with pytest.raises(Killed):
        with atomic_open(target, "wb") as handle:
            handle.write(b"half" * 1000)
            raise Killed("killed")
    assert not target.exists()
    assert _folder(target) == []


def test_a_finished_write_replaces_the_file_whole(tmp_path: Path) -> None:
    """A write that completes replaces the previous content entirely (no leftover bytes of the longer previous
    file) and leaves no temporary file."""
    target = tmp_path / "out.json"
    target.write_bytes(PREVIOUS * 10)
    with atomic_open(target) as handle:
        handle.write("short")
    assert target.read_text() == "short"
    assert _folder(target) == ["out.json"]


def test_save_pretrained_killed_inside_save_file_keeps_the_previous_model(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``SpotterModel.save_pretrained`` over a saved model, with safetensors' ``save_file`` writing half of
    the new weights and then failing: ``model.safetensors`` and ``config.json`` are byte-identical to the
    previous save, no temporary file is left, and the previous model still loads."""
    import safetensors.torch
    import torch

    from fpspot.models import build, load_model

    config = {"window": 16, "d_model": 16, "nhead": 2, "num_encoder_layers": 1, "num_decoder_layers": 1,
              "dim_feedforward": 16}
    torch.manual_seed(0)
    folder = build("dst", **config).save_pretrained(tmp_path / "model")
    before = {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))}
    assert sorted(before) == ["config.json", "model.safetensors"]

    def half_then_fail(tensors: dict, filename: str, metadata: dict | None = None) -> None:
        data = safetensors.torch.save(tensors, metadata=metadata)
        with open(filename, "wb") as handle:
            handle.write(data[: len(data) // 2])
        raise OSError("No space left on device")

    torch.manual_seed(1)
    other = build("dst", **{**config, "d_model": 32})
    monkeypatch.setattr(safetensors.torch, "save_file", half_then_fail)
    with pytest.raises(OSError, match="No space left"):
        other.save_pretrained(folder)
    assert {name: (folder / name).read_bytes() for name in sorted(os.listdir(folder))} == before
    monkeypatch.undo()
    assert load_model(folder).config["d_model"] == 16
