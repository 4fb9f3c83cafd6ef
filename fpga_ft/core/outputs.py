"""Output locations: checked before any long work starts, written so a failure leaves nothing.

Every option that names something fpga-ft writes (``--json``, ``-o/--output-dir``,
``--plot``, ``--plan-out``, ``--checkpoint-dir``, ``--storage sqlite:///FILE``) is checked
by :func:`check_args` right after the command line is parsed, before a model is loaded:
a file output must not be a directory and its directory must exist or be creatable (no
ancestor is a file) and be writable; a directory output must not be a file and must be
creatable or writable. The checks create nothing.

Result files are written under a temporary name in their own directory and renamed into
place (:func:`atomic_path`, :func:`write_text_atomic`): an error or an interruption leaves
no partial file. Commands that write a whole directory (``convert -o``, ``bringup -o``,
``demo -o``) build it in a hidden temporary sibling, ``.NAME.fpgaft-tmp-PID``, and move it
into place at the end (:func:`staged_directory`): a failure, a signal or even SIGKILL
leaves no partial ``NAME`` (an existing ``NAME`` is untouched until the new content is
complete). What a killed run leaves (hidden ``.fpgaft-tmp-PID`` names whose process is
gone) is removed by the next run writing the same output (:func:`remove_stale_temps`).
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError

#: the file that marks a project written by fpga-ft (``fpga_ft.generate.design.DESIGN_FILE``)
PROJECT_MARKER = "fpgaft_design.json"

__all__ = ["check_output_file", "check_output_dir", "check_sqlite_url", "check_args", "atomic_path",
           "write_text_atomic", "staged_directory", "Staging", "remove_stale_temps", "PROJECT_MARKER"]


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
                check_output_file(value, option)  # a checkpoint file itself (fpga_ft.simulate.campaign)
                continue
            check_output_dir(value, option, project=getattr(args, "command", None) in PROJECT_COMMANDS)
        else:
            check_sqlite_url(str(value), option)


#: what marks a temporary name (followed by the writer's process id)
TEMP_MARK = ".fpgaft-tmp-"
#: an entry of an existing output directory moved aside while its replacement moves in
ASIDE_MARK = ".fpgaft-old-"


def _temp_name(target: Path) -> Path:
    """A hidden sibling of ``target`` with the same suffix (matplotlib picks the format by it)."""
    return target.with_name(f".{target.stem}{TEMP_MARK}{os.getpid()}{target.suffix}")


def _temp_dir_name(target: Path) -> Path:
    """A hidden sibling of ``target``; inside ``target`` when that is an existing directory
    whose parent cannot be written (the project is then assembled within it)."""
    name = f".{target.name}{TEMP_MARK}{os.getpid()}"
    if target.is_dir() and not os.access(target.parent, os.W_OK | os.X_OK):
        return target / name
    return target.with_name(name)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists (another user's)
        return True
    return True


def _stale_pid(name: str, pattern: re.Pattern) -> bool:
    """``name`` matches ``pattern`` and the process id it carries is not running (ours is)."""
    match = pattern.match(name)
    if match is None:
        return False
    pid = int(match.group(1))
    return pid != os.getpid() and not _process_alive(pid)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink()


def remove_stale_temps(target) -> list[Path]:
    """Remove what runs killed while writing ``target`` left, once process PID is gone:
    next to it ``.NAME.fpgaft-tmp-PID`` (a directory) or ``.STEM.fpgaft-tmp-PID.SUFFIX`` (a
    file); inside an existing directory ``target``, a staging directory of that name (see
    :func:`_temp_dir_name`) and entries moved aside (``.ENTRY.fpgaft-old-PID``). A name
    whose process still runs (a concurrent writer) is left alone; none of these names is
    ever read as output. Returns what was removed."""
    target = Path(target)
    name, stem, suffix = (re.escape(part) for part in (target.name, target.stem, target.suffix))
    mark = re.escape(TEMP_MARK)
    patterns = [(target.parent, re.compile(rf"^\.{name}{mark}(\d+)$")),
                (target.parent, re.compile(rf"^\.{stem}{mark}(\d+){suffix}$"))]
    if target.is_dir():
        patterns.append((target, re.compile(rf"^\.(?:.+{re.escape(ASIDE_MARK)}|{name}{mark})(\d+)$")))
    removed = []
    for directory, pattern in patterns:
        try:
            names = [entry.name for entry in os.scandir(directory)]
        except OSError:
            continue
        for entry in names:
            if _stale_pid(entry, pattern):
                _remove(directory / entry)
                removed.append(directory / entry)
    return removed


@contextlib.contextmanager
def atomic_path(path):
    """Yield a temporary path next to ``path`` to write; on success it is renamed to
    ``path`` (``os.replace``), on any error or interruption it is removed. Missing parent
    directories are created (and removed again when the write fails)."""
    target = Path(path)
    created = _make_parents(target.parent)
    remove_stale_temps(target)
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


#: text files whose content may name the directory they were written in (hls4ml_config.yml's
#: OutputDir, the JSON results and report of ``demo``)
_TEXT_SUFFIXES = (".yml", ".yaml", ".json", ".md", ".tcl", ".sh")
_MAX_TEXT_BYTES = 20_000_000
#: compiled C simulations: they read their weights from the absolute path they were built in
_PATH_BOUND_BINARIES = ("fpgaft_csim-*.so",)


@dataclass(frozen=True)
class Staging:
    """A directory being written (``path``, hidden) that becomes ``target`` on success."""

    path: Path
    target: Path

    def retarget(self, value):
        """``value`` (a result: dicts, lists, strings) with the staging path replaced by the target."""
        if isinstance(value, str):
            return value.replace(str(self.path), str(self.target))
        if isinstance(value, Path):
            return Path(self.retarget(str(value)))
        if isinstance(value, dict):
            return {key: self.retarget(item) for key, item in value.items()}
        if isinstance(value, (list, tuple)):
            return type(value)(self.retarget(item) for item in value)
        return value

    def _relocate(self) -> None:
        """Make the staged content name its final place: text files that recorded the
        staging path are rewritten; compiled C simulations bound to it are removed (the
        next csim compiles one for the final place)."""
        old, new = str(self.path), str(self.target)
        for dirpath, _, filenames in os.walk(self.path):
            for filename in filenames:
                path = Path(dirpath) / filename
                if any(path.match(pattern) for pattern in _PATH_BOUND_BINARIES):
                    path.unlink()
                    continue
                if path.suffix not in _TEXT_SUFFIXES or path.is_symlink() or \
                        path.stat().st_size > _MAX_TEXT_BYTES:
                    continue
                data = path.read_bytes()
                if old.encode() in data:
                    path.write_bytes(data.replace(old.encode(), new.encode()))

    def _install(self) -> None:
        """Move the staged directory into place: one rename for a new target; into an
        existing one, entry by entry (each a rename; a replaced directory is moved aside
        first), so files of the old directory that were not rewritten are kept, as when
        writing in place."""
        if not self.target.exists():
            os.rename(self.path, self.target)
            return
        for entry in sorted(os.listdir(self.path)):
            new, old = self.path / entry, self.target / entry
            if new.is_dir() and not new.is_symlink() and (old.exists() or old.is_symlink()):
                aside = self.target / f".{entry}{ASIDE_MARK}{os.getpid()}"
                _remove(aside)
                os.rename(old, aside)
                os.rename(new, old)
                _remove(aside)
            else:
                if old.is_dir() and not old.is_symlink():
                    shutil.rmtree(old)
                os.replace(new, old)
        self.path.rmdir()


@contextlib.contextmanager
def staged_directory(path):
    """For a command that writes a whole directory: yield a :class:`Staging` whose ``path``
    (a hidden temporary sibling of ``path``) is written instead; when the block ends
    normally, what it wrote is moved to ``path`` (see ``Staging._install``). An error or
    an interruption removes the staging directory (and the parents created for it) and
    leaves ``path`` as it was; a SIGKILL leaves only the hidden staging directory, which
    the next run removes (:func:`remove_stale_temps`)."""
    target = Path(os.path.realpath(os.path.abspath(os.path.expanduser(str(path)))))
    created = _make_parents(target.parent)
    remove_stale_temps(target)
    staging = Staging(_temp_dir_name(target), target)
    try:
        _remove(staging.path)  # an earlier run's, with our process id
        staging.path.mkdir()
        yield staging
        staging._relocate()
        staging._install()
    except BaseException:
        _remove(staging.path)
        _remove_dirs(created)
        raise
