"""The ``fpspot`` command. Each subcommand lives in its own module, imported only when it runs.

A subcommand module exposes ``add_arguments(parser)`` and ``run(args) -> int``.

A user error stops a subcommand with one line ``fpspot COMMAND: error: MESSAGE`` on stderr and exit status 2,
as argparse does for bad options. User errors are the library's input errors (:data:`USER_ERRORS`: a bad
file, config, pipeline or model), a file that cannot be opened, and a ``ValueError`` raised in fpspot's own
code (its checks of arguments and settings). Anything else is a bug and keeps its traceback, a ``ValueError``
raised inside numpy, torch or another library included.
``FPSPOT_TRACEBACK=1`` shows the traceback of user errors too.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable
import os
import sys

#: name -> (module, one-line help). Modules are imported lazily so ``fpspot --help`` stays fast.
COMMANDS: dict[str, tuple[str, str]] = {
    "evaluate": ("fpspot.eval.cli", "score predictions with the official FOOTPASS matcher"),
    "synth": ("fpspot.data.synth_cli", "write a synthetic FOOTPASS dataset (videos, tactical HDF5, play-by-play)"),
    "shard": ("fpspot.data.shard_cli", "write WebDataset shards and a manifest from a FOOTPASS-format dataset"),
    "infer": ("fpspot.infer.cli", "run a trained model over whole halves and write predictions"),
    "post": ("fpspot.post.cli", "post-process predictions (gating, refinement, jersey, ensembles); 'post fit'"),
}

#: Exceptions the library raises for bad input, as ``module.Class``: matched only once their module is imported
#: (an exception of a module never imported cannot have been raised), so no subcommand imports more than it uses.
USER_ERRORS = (
    "fpspot.data.footpass.FormatError",
    "fpspot.train.config.ConfigError",
    "fpspot.post.pipeline.PipelineError",
    "fpspot.post.event_dst.EventDSTError",
    "fpspot.models.zoo.ModelLoadError",
    "fpspot.infer.api.UnsupportedModelError",
    "fpspot.models.blocks.x3d.X3DWeightsError",
    "fpspot.data.video.VideoError",
    "fpspot.data.loader.ShardError",
)
#: Errors opening a path the user gave.
FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError, PermissionError)
TRACEBACK_ENV = "FPSPOT_TRACEBACK"
EPILOG = (f"Errors in the input (files, options, models) print one line 'fpspot COMMAND: error: ...' and exit with "
          f"status 2; set {TRACEBACK_ENV}=1 to see their full traceback.")


def _parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fpspot", description="Player-centric ball-action spotting (FOOTPASS).",
                                     epilog=EPILOG)
    from fpspot import __version__

    parser.add_argument("--version", action="version", version=f"fpspot {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text, epilog=EPILOG)
        if name == command:
            importlib.import_module(module).add_arguments(sp)
    return parser


def _loaded_user_errors() -> tuple[type[BaseException], ...]:
    """The classes of :data:`USER_ERRORS` whose module is imported."""
    found = []
    for name in USER_ERRORS:
        module, _, cls = name.rpartition(".")
        error = getattr(sys.modules.get(module), cls, None)
        if isinstance(error, type) and issubclass(error, BaseException):
            found.append(error)
    return tuple(found)


def _raised_by_fpspot(err: BaseException) -> bool:
    """Whether ``err`` was raised in fpspot's own code (its innermost traceback frame is an fpspot module), not
    inside numpy, torch or another library."""
    tb = err.__traceback__
    if tb is None:
        return False
    while tb.tb_next is not None:
        tb = tb.tb_next
    module = tb.tb_frame.f_globals.get("__name__", "")
    return module == "fpspot" or module.startswith("fpspot.")


def is_user_error(err: BaseException) -> bool:
    """Whether ``err`` is an error in the user's input (one line) rather than a bug (traceback); see the module
    docstring."""
    if isinstance(err, FILE_ERRORS + _loaded_user_errors()):
        return True
    return isinstance(err, ValueError) and _raised_by_fpspot(err)


def error_message(err: BaseException) -> str:
    """The message of a user error; a file error names the file as the readers do."""
    if isinstance(err, OSError) and err.filename is not None and err.strerror:
        return f"file {str(err.filename)!r}: {err.strerror}"
    return str(err)


def exit_on_user_error(prog: str, err: Exception, print_fn: Callable[..., None] = print) -> int:
    """Called with an exception caught around a command (``fpspot CMD``, a recipe): re-raise it unless it is a
    user error (:func:`is_user_error`) and ``FPSPOT_TRACEBACK`` is unset; else print ``prog: error: MESSAGE`` on
    stderr (with ``print_fn``, e.g. the main process's print) and return the exit status 2."""
    if os.environ.get(TRACEBACK_ENV, "") not in ("", "0") or not is_user_error(err):
        raise err
    print_fn(f"{prog}: error: {error_message(err)}", file=sys.stderr)
    return 2


def _run(command: str, args: argparse.Namespace) -> int:
    module = importlib.import_module(COMMANDS[command][0])
    try:
        return int(module.run(args) or 0)
    except Exception as err:
        return exit_on_user_error(f"fpspot {command}", err)


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
    return _run(args.command, args)


if __name__ == "__main__":
    sys.exit(main())
