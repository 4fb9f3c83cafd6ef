"""The ``fpga-ft`` command line.

Each sub-command lives in ``fpga_ft/commands/<name>.py`` and provides
``register(subparsers)``; the parser it adds sets ``func`` to a callable taking the parsed
arguments and returning a JSON-serialisable dict. This module adds ``--json OUT`` to every
command, writes that dict there (``-`` for stdout), and turns :class:`FpgaFtError` into
``error: ...`` on stderr with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import warnings

from fpga_ft.errors import FpgaFtError

#: Sub-command modules under fpga_ft.commands, in the order ``--help`` lists them.
COMMANDS = (
    "demo",
    "convert",
    "csim",
    "build",
    "inject",
    "analyze",
    "report",
    "estimate",
    "optimize",
    "compare",
    "bringup",
    "boards",
    "verify",
)


class _Parser(argparse.ArgumentParser):
    """argparse that reports usage errors in the project's one-line style (exit 2)."""

    def error(self, message):  # noqa: D401 - argparse API
        raise FpgaFtError(f"{self.prog}: {message}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="fpga-ft", description=__doc__.split("\n\n")[0])
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"fpga_ft.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fpga_ft.commands.{name}":
                continue  # command not built yet
            raise
        command_parser = module.register(sub)
        command_parser.add_argument(
            "--json", metavar="OUT", default=None,
            help="write the machine-readable result to OUT ('-' for stdout)")
    return parser


def write_json(result: dict, out: str) -> None:
    """Write ``result`` as indented JSON to ``out`` ('-' = stdout)."""
    text = json.dumps(result, indent=2, sort_keys=False, default=json_default)
    if out == "-":
        sys.stdout.write(text + "\n")
        return
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    with open(out, "w", encoding="utf-8") as handle:
        handle.write(text + "\n")


def json_default(value):
    """``json.dumps`` default for numpy scalars/arrays, paths and objects with ``to_dict``."""
    from pathlib import Path

    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.simplefilter("ignore")  # third-party deprecation noise; fpga-ft prints its own warnings
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        if args.version:
            from fpga_ft import __version__

            print(__version__)
            return 0
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        result = args.func(args)
        if args.json and result is not None:
            write_json(result, args.json)
        return 0
    except FpgaFtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted (checkpointed work, if any, resumes on rerun)", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
