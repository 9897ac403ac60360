"""The ``fpspot`` command. Each subcommand lives in its own module, imported only when it runs.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

#: name -> (module, one-line help). Modules are imported lazily so ``fpspot --help`` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("fpspot.eval.cli", "score predictions with the official FOOTPASS matcher"),
    "synth": ("fpspot.data.synth_cli", "write a synthetic FOOTPASS dataset (videos, tactical HDF5, play-by-play)"),
    "shard": ("fpspot.data.shard_cli", "write WebDataset shards and a manifest from a FOOTPASS-format dataset"),
    "infer": ("fpspot.infer.cli", "run a trained model over whole halves and write predictions"),
    "post": ("fpspot.post.cli", "post-process predictions (gating, refinement, jersey, ensembles); 'post fit'"),
}


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fpspot", description="Player-centric ball-action spotting (FOOTPASS).")
    from fpspot import __version__

    parser.add_argument("--version", action="version", version=f"fpspot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    if command not in COMMANDS:
        command = None
    parser = _parser(command)
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
