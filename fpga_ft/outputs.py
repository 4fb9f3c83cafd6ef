"""Output locations: checked before any long work starts, written so a failure leaves nothing.

Every option that names something fpga-ft writes (``--json``, ``-o/--output-dir``,
``--plot``, ``--plan-out``, ``--checkpoint-dir``, ``--storage sqlite:///FILE``) is checked
by :func:`check_args` right after the command line is parsed, before a model is loaded:
a file output must not be a directory and its directory must exist or be creatable (no
ancestor is a file) and be writable; a directory output must not be a file and must be
creatable or writable. The checks create nothing.

Result files are written under a temporary name in their own directory and renamed into
place (:func:`atomic_path`, :func:`write_text_atomic`): an error or an interruption leaves
no partial file. Output directories are removed again when the command that created them
fails (:func:`fresh_directory`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from fpga_ft.errors import FpgaFtError

#: the file that marks a project written by fpga-ft (``fpga_ft.design.DESIGN_FILE``)
PROJECT_MARKER = "fpgaft_design.json"

__all__ = ["check_output_file", "check_output_dir", "check_sqlite_url", "check_args", "atomic_path",
           "write_text_atomic", "fresh_directory", "PROJECT_MARKER"]


def _existing_ancestor(path: Path, option: str, shown: str) -> Path:
    """The nearest existing ancestor of ``path`` (itself excluded); refuse one that is a file."""
    current = path.parent
    while not current.exists():
        if current.parent == current:
            break
        current = current.parent
    if not current.is_dir():
        raise FpgaFtError(f"{option} {shown}: {current} is a file, not a directory; choose a path in a directory")
    return current


def _writable_dir(directory: Path, option: str, shown: str) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FpgaFtError(f"{option} {shown}: directory {directory} is not writable; choose a writable location")


def check_output_file(path, option: str) -> Path:
    """Refuse (one line naming ``option`` and the path) a file output that cannot be
    written: an existing directory, a path below a file, an unwritable directory."""
    shown = str(path)
    if not shown.strip():
        raise FpgaFtError(f"{option}: empty file name")
    target = Path(os.path.abspath(os.path.expanduser(shown)))
    if target.is_dir():
        raise FpgaFtError(f"{option} {shown} is a directory; give a file path")
    if target.exists() and not target.is_file():
        raise FpgaFtError(f"{option} {shown} exists and is not a regular file")
    _writable_dir(_existing_ancestor(target, option, shown), option, shown)
    return target


def check_output_dir(path, option: str, *, project: bool = False) -> Path:
    """Refuse a directory output that is an existing file, lies below a file, or is not
    writable. ``project``: also refuse an existing, non-empty directory that is not a
    project written by fpga-ft (``fpgaft_design.json``): a project is written into its
    directory and would mix with other files; a previous fpga-ft project is rebuilt."""
    shown = str(path)
    if not shown.strip():
        raise FpgaFtError(f"{option}: empty directory name")
    target = Path(os.path.abspath(os.path.expanduser(shown)))
    if target.exists():
        if not target.is_dir():
            raise FpgaFtError(f"{option} {shown} is a file, not a directory; choose a directory path")
        _writable_dir(target, option, shown)
        if project and not (target / PROJECT_MARKER).is_file() and any(target.iterdir()):
            raise FpgaFtError(f"{option} {shown} exists, is not empty and is not an fpga-ft project (no "
                              f"{PROJECT_MARKER}); choose a new or empty directory")
        return target
    _writable_dir(_existing_ancestor(target, option, shown), option, shown)
    return target


def _sqlite_file(url: str) -> str | None:
    """The database file of an ``sqlite:///FILE`` URL (None: in memory or not SQLite)."""
    try:
        from sqlalchemy.engine import make_url

        parsed = make_url(url)
    except Exception:  # noqa: BLE001 - check_storage_url reports malformed URLs
        return None
    if not parsed.drivername.startswith("sqlite"):
        return None
    database = parsed.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return database


def check_sqlite_url(url: str, option: str = "--storage") -> None:
    """For an ``sqlite:///FILE`` storage URL: the database file must be creatable or
    writable (its directory exists or can be created)."""
    database = _sqlite_file(url)
    if database is None:
        return
    target = Path(os.path.abspath(os.path.expanduser(database)))
    if target.is_dir():
        raise FpgaFtError(f"{option} {url}: {database} is a directory; name an SQLite file")
    _writable_dir(_existing_ancestor(target, option, url), option, url)
    if target.exists() and not os.access(target, os.W_OK):
        raise FpgaFtError(f"{option} {url}: the database file {database} is not writable")


#: (argparse attribute, option text, kind) of every output option of the sub-commands
OUTPUT_OPTIONS = (
    ("json", "--json", "file"),
    ("plot", "--plot", "file"),
    ("plan_out", "--plan-out", "file"),
    ("checkpoint_dir", "--checkpoint-dir", "dir"),
    ("output_dir", "-o/--output-dir", "dir"),
    ("storage", "--storage", "storage"),
)
#: commands whose ``-o`` is an fpga-ft project directory (see :func:`check_output_dir`)
PROJECT_COMMANDS = ("convert",)


def check_args(args) -> None:
    """Check every output option given on the command line (before any work starts)."""
    for attr, option, kind in OUTPUT_OPTIONS:
        value = getattr(args, attr, None)
        if value is None or value is False:
            continue
        if kind == "file":
            if attr == "json" and value == "-":
                continue
            check_output_file(value, option)
        elif kind == "dir":
            if attr == "checkpoint_dir" and getattr(args, "no_checkpoint", False):
                continue
            if attr == "checkpoint_dir" and Path(str(value)).suffix == ".jsonl":
                check_output_file(value, option)  # a checkpoint file itself (fpga_ft.campaign)
                continue
            check_output_dir(value, option, project=getattr(args, "command", None) in PROJECT_COMMANDS)
        else:
            check_sqlite_url(str(value), option)


def _temp_name(target: Path) -> Path:
    """A hidden sibling of ``target`` with the same suffix (matplotlib picks the format by it)."""
    return target.with_name(f".{target.stem}.fpgaft-tmp-{os.getpid()}{target.suffix}")


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path`` to write; on success it is renamed to
    ``path`` (``os.replace``), on any error or interruption it is removed. Missing parent
    directories are created (and removed again when the write fails)."""
    target = Path(path)
    created = _make_parents(target.parent)
    temp = _temp_name(target)
    try:
        yield temp
        os.replace(temp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            temp.unlink()
        _remove_dirs(created)
        raise


def write_text_atomic(path, text: str, encoding: str = "utf-8") -> None:
    """Write ``text`` to ``path`` through a temporary file and a rename."""
    with atomic_path(path) as temp:
        with open(temp, "w", encoding=encoding) as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; return those created, deepest first."""
    missing = []
    current = Path(os.path.abspath(directory))
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FpgaFtError(f"cannot create directory {directory}: {exc.strerror or exc}") from None
    return missing


def _remove_dirs(created: list[Path]) -> None:
    for directory in created:  # deepest first; only if still empty
        with contextlib.suppress(OSError):
            directory.rmdir()


@contextlib.contextmanager
def fresh_directory(path):
    """For a command that writes a whole directory: when ``path`` did not exist before and
    the block fails or is interrupted, remove what was written (the directory and the
    parents created for it); an existing directory is left as it is."""
    target = Path(os.path.abspath(path))
    existed = target.exists()
    missing = []
    current = target.parent
    while not current.exists() and current.parent != current:
        missing.append(current)
        current = current.parent
    try:
        yield target
    except BaseException:
        if not existed:
            shutil.rmtree(target, ignore_errors=True)
            _remove_dirs(missing)
        raise
