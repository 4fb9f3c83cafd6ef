"""The ``fpga-ft`` command line.

Each sub-command lives in ``fpga_ft/commands/<name>.py`` and provides
``register(subparsers)``; the parser it adds sets ``func`` to a callable taking the parsed
arguments and returning a JSON-serialisable dict. This module adds ``--json OUT`` to every
command, writes that dict there (``-`` for stdout), and turns :class:`FpgaFtError` into
``error: ...`` on stderr with exit status 2.

Before a command runs, every output location it was given is checked
(:func:`fpga_ft.core.outputs.check_args`). SIGINT (Ctrl-C) and SIGTERM stop a command the same
clean way: campaign workers are stopped, finished work stays checkpointed, one ``error:``
line says what to rerun, and the exit status is 130 (SIGINT) or 143 (SIGTERM).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import shlex
import signal
import sys
import warnings

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.outputs import check_args, write_text_atomic

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
    """Write ``result`` as indented JSON to ``out`` ('-' = stdout), through a temporary
    file in the same directory and a rename: never a partial file."""
    from fpga_ft.core.jsonio import json_default

    text = json.dumps(result, indent=2, sort_keys=False, default=json_default)
    if out == "-":
        sys.stdout.write(text + "\n")
        return
    write_text_atomic(out, text + "\n")


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised in the main thread: unwinds like Ctrl-C (exit status 143)."""


#: what an interrupted command leaves for its rerun (commands add to it, see note_resumable)
_RESUMABLE: list[str] = []
_DEPTH = 0  # main() nesting (an in-process caller running main() inside a command)


def note_resumable(what: str) -> None:
    """Record that rerunning the current command continues ``what`` (e.g. an Optuna study):
    an interruption then prints the command to rerun."""
    if what not in _RESUMABLE:
        _RESUMABLE.append(what)


def forget_resumable(containing: str) -> None:
    """Drop the notes that name ``containing`` (e.g. a directory removed on failure)."""
    _RESUMABLE[:] = [note for note in _RESUMABLE if containing not in note]


def _on_sigterm(signum, frame):  # noqa: ARG001 - signal handler API
    raise Terminated()


def _install_sigterm() -> tuple[bool, object]:
    """SIGTERM -> :class:`Terminated` in the main thread: (installed, previous handler)."""
    try:
        return True, signal.signal(signal.SIGTERM, _on_sigterm)
    except ValueError:  # not the main thread: leave signals alone
        return False, None


def _interrupted(exc: KeyboardInterrupt, argv: list[str] | None) -> int:
    """Stop the workers, then one line: what was kept and the command that resumes it."""
    terminated = isinstance(exc, Terminated)
    try:  # a second signal must not turn the clean exit into a traceback
        previous = {signum: signal.signal(signum, signal.SIG_IGN) for signum in (signal.SIGINT, signal.SIGTERM)}
    except ValueError:  # not the main thread
        previous = {}
    try:
        campaign = sys.modules.get("fpga_ft.simulate.campaign")
        if campaign is not None:
            try:
                campaign.shutdown_workers()  # waits for the chunks running now (well under a second)
            except Exception:  # noqa: BLE001 - best effort while exiting
                pass
        kept = list(_RESUMABLE)
        directories = sorted({str(path.parent) for path in getattr(campaign, "CHECKPOINTS_USED", ())})
        if directories:
            kept.insert(0, f"campaign checkpoints in {', '.join(directories)}")
        what = "SIGTERM" if terminated else "SIGINT (Ctrl-C)"
        if kept:
            words = ["fpga-ft", *(sys.argv[1:] if argv is None else argv)]
            print(f"error: interrupted by {what}; finished work is kept ({'; '.join(kept)}); rerun to resume: "
                  f"{shlex.join(words)}", file=sys.stderr)
        else:
            print(f"error: interrupted by {what}; no result was written and there is nothing to resume",
                  file=sys.stderr)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, signal.SIG_DFL if handler is None else handler)
    return 143 if terminated else 130


def run(argv: list[str]) -> int:
    """Parse and run one command (its --json written), printing nothing of its own: a
    user error raises :class:`FpgaFtError`, an interruption ``KeyboardInterrupt``. Returns
    the exit status of a command that ends normally. :func:`main` is this plus the
    reporting; ``fpga-ft demo`` runs its steps through it."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.version:
        from fpga_ft import __version__

        print(__version__)
        return 0
    if not getattr(args, "func", None):
        parser.print_help()
        return 2

    check_args(args)  # every output location, before any work
    result = args.func(args)
    if isinstance(result, dict) and getattr(args, "allow_inexact", None) is not None:
        # commands whose results rest on bit-exactness say whether they are (None: not
        # checked, e.g. a project directory)
        layers = getattr(args, "inexact_layers", None)
        result["inexact"] = None if layers is None else bool(layers)
    if args.json and result is not None:
        write_json(result, args.json)
    return 0


def main(argv: list[str] | None = None) -> int:
    global _DEPTH
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.simplefilter("ignore")  # third-party deprecation noise; fpga-ft prints its own warnings
    nested = _DEPTH > 0
    installed, previous = (False, None) if nested else _install_sigterm()
    if not nested:
        _RESUMABLE.clear()
        getattr(sys.modules.get("fpga_ft.simulate.campaign"), "CHECKPOINTS_USED", set()).clear()
    _DEPTH += 1
    try:
        return run(argv)
    except FpgaFtError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        if nested:
            raise  # the outermost main() reports it
        return _interrupted(exc, argv)
    finally:
        _DEPTH -= 1
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
