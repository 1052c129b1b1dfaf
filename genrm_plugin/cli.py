"""The ``genrm`` command line: ``genrm <command> [flags] [--config file.yaml]``.

Each command is a module in :mod:`genrm_plugin.commands` with ``HELP`` (one line) and
``main(argv) -> int`` (and ``SUBCOMMANDS`` when its first word picks a sub-command, as ``genrm eval
preference`` does); they are discovered, so adding a command means adding a file.

Errors look the same for every command: a bad flag or value, an unknown YAML key, a config
validation error, a missing or malformed input file, a used run folder print one line
``genrm <command>: error: <what, naming the flag or field, and what to do>`` and exit with status
2. ``--debug`` (anywhere on the command line) or ``GENRM_DEBUG=1`` shows the full traceback instead.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import sys

import genrm_plugin.commands as commands_pkg
from genrm_plugin.run_folder import RunFolderError

DEBUG_FLAG = "--debug"
DEBUG_ENV = "GENRM_DEBUG"
# Mistakes in what the user gave (flags, files, data, folders, endpoints, missing extras), not bugs.
USER_ERRORS = (ValueError, OSError, RunFolderError, ModuleNotFoundError)


def is_user_error(error: BaseException) -> bool:
    """Whether ``error`` reports a mistake in the user's input or setup (one line) rather than a bug."""
    if isinstance(error, USER_ERRORS):
        return True
    from genrm_plugin.backends.openai import OpenAIEndpointError  # an endpoint that refused or is unreachable

    return isinstance(error, OpenAIEndpointError)


def available_commands() -> dict[str, str]:
    """Command name -> module name (``train_x.py`` is the command ``train-x``)."""
    return {
        info.name.replace("_", "-"): f"{commands_pkg.__name__}.{info.name}"
        for info in pkgutil.iter_modules(commands_pkg.__path__)
        if not info.name.startswith("_")
    }


def _usage(commands: dict[str, str]) -> str:
    lines = ["usage: genrm <command> [flags] [--config FILE.yaml] [--debug]", "", "commands:"]
    for name, module in sorted(commands.items()):
        lines.append(f"  {name:<12} {getattr(importlib.import_module(module), 'HELP', '')}")
    lines.append("\n`genrm <command> --help` lists a command's flags.")
    return "\n".join(lines)


def error_line(prog: str, error: BaseException) -> str:
    """``<prog>: error: <message>`` on one line (an OS error as ``<file>: <reason>``)."""
    prog = getattr(error, "prog", None) or prog
    if isinstance(error, OSError) and error.filename is not None:
        message = f"{error.filename}: {error.strerror or error}"
    elif isinstance(error, ModuleNotFoundError):
        message = f"{error} (an optional dependency: install the extra that provides it, e.g. pip install 'genrm_plugin[vllm]')"
    else:
        message = str(error) or type(error).__name__
    return f"{prog}: error: {' '.join(message.split())}"


def debug_requested(argv: list[str]) -> bool:
    return DEBUG_FLAG in argv or os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debug_requested(argv)
    argv = [a for a in argv if a != DEBUG_FLAG]
    commands = available_commands()
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage(commands))
        return 0
    name, rest = argv[0], argv[1:]
    if name not in commands:
        print(f"genrm: error: unknown command {name!r}; `genrm --help` lists the commands", file=sys.stderr)
        return 2
    module = importlib.import_module(commands[name])
    prog = f"genrm {name}"
    if rest and rest[0] in getattr(module, "SUBCOMMANDS", ()):
        prog += f" {rest[0]}"
    try:
        return int(module.main(rest) or 0)
    except Exception as e:
        if debug or not is_user_error(e):
            raise
        print(error_line(prog, e), file=sys.stderr)
        return 2


if __name__ == "__main__":
    raise SystemExit(main())
