"""The board catalogue: one YAML file per board, from three places (first one wins a key):

1. the directories in ``$FPGA_FT_BOARDS`` (``os.pathsep``-separated, in order): your own
   boards, or a changed copy of a packaged one;
2. directories offered by installed packages through the entry-point group
   ``fpga_ft.boards`` (see :func:`entry_point_dirs`);
3. the boards packaged with fpga-ft (``boards/`` at the repository root; in an installed
   wheel ``fpga_ft/_bundled/boards``, see :mod:`fpga_ft.core.paths`).

Each file (``boards/<key>.yml``, key lower-case) holds exactly these keys::

    name: PYNQ-Z2                 # display name
    part: xc7z020clg400-1         # Vivado part string
    family: zynq7000              # free text
    clock_mhz: 100                # default clock, MHz
    backend: VivadoAccelerator    # hls4ml backend: Vitis, Vivado or VivadoAccelerator
    resources:                    # what the device offers (vendor data sheet)
      LUT: 53200                  # 6-input LUTs
      FF: 106400                  # flip-flops (registers)
      DSP: 220                    # DSP slices
      BRAM_18K: 280               # 18Kb block RAMs (2 x the 36Kb block count)
      URAM: 0                     # 288Kb UltraRAM blocks
    radiation: >-                 # radiation notes, with sources
      ...

Look-ups are case-insensitive on the file key and on ``name``.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Mapping

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import BOARDS_DIR
from fpga_ft.core.resources import RESOURCE_KEYS
from fpga_ft.core.safeyaml import load_yaml

#: Environment variable: extra board directories, searched before the packaged ones.
BOARDS_ENV = "FPGA_FT_BOARDS"
#: Entry-point group through which installed packages offer board directories.
ENTRY_POINT_GROUP = "fpga_ft.boards"

#: hls4ml 1.3 backends a board may name.
BACKENDS = ("Vitis", "Vivado", "VivadoAccelerator")
#: Top-level keys of a board file (all required, no others).
BOARD_KEYS = ("name", "part", "family", "clock_mhz", "backend", "resources", "radiation")


@dataclass(frozen=True)
class Board:
    """One FPGA board.

    ``clock_mhz`` is the default clock in MHz; ``resources`` counts what the device
    offers: ``LUT`` (LUTs), ``FF`` (flip-flops), ``DSP`` (DSP slices), ``BRAM_18K``
    (18Kb block RAMs) and ``URAM`` (288Kb UltraRAM blocks).
    """

    key: str
    name: str
    part: str
    family: str
    clock_mhz: float
    backend: str
    resources: dict[str, int] = field(hash=False)
    radiation: str

    @property
    def clock_period_ns(self) -> float:
        """Default clock period in ns (1000 / ``clock_mhz``)."""
        return 1000.0 / self.clock_mhz

    def to_dict(self) -> dict:
        """JSON-ready form: every field plus ``clock_period_ns``."""
        return {
            "key": self.key,
            "name": self.name,
            "part": self.part,
            "family": self.family,
            "clock_mhz": self.clock_mhz,
            "clock_period_ns": self.clock_period_ns,
            "backend": self.backend,
            "resources": {k: int(self.resources[k]) for k in RESOURCE_KEYS},
            "radiation": self.radiation,
        }


def load_board_file(path) -> Board:
    """Load and validate one board file; the key is the file stem, lower-cased.

    Raises :class:`FpgaFtError` (one line naming the file and the offending key) on
    unreadable or malformed YAML, missing or unknown keys, wrong types, negative counts
    or a non-positive clock.
    """
    path = Path(path)
    data = load_yaml(path, "board file")

    def fail(key: str, message: str) -> FpgaFtError:
        return FpgaFtError(f"board file {path}: key '{key}' {message}")

    if not isinstance(data, Mapping):
        raise FpgaFtError(f"board file {path}: expected a mapping with keys {', '.join(BOARD_KEYS)}")
    for key in BOARD_KEYS:
        if key not in data:
            raise fail(key, "is missing")
    unknown = sorted(str(k) for k in data if k not in BOARD_KEYS)
    if unknown:
        raise fail(unknown[0], f"is not a board key (expected {', '.join(BOARD_KEYS)})")

    for key in ("name", "part", "family", "radiation"):
        if not isinstance(data[key], str) or not data[key].strip():
            raise fail(key, "must be a non-empty string")

    clock = data["clock_mhz"]
    if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not math.isfinite(clock) or clock <= 0:
        raise fail("clock_mhz", f"must be a positive number of MHz (got {clock!r})")

    if data["backend"] not in BACKENDS:
        raise fail("backend", f"must be one of {', '.join(BACKENDS)} (got {data['backend']!r})")

    resources = data["resources"]
    if not isinstance(resources, Mapping):
        raise fail("resources", f"must be a mapping with keys {', '.join(RESOURCE_KEYS)}")
    for key in RESOURCE_KEYS:
        if key not in resources:
            raise fail(f"resources.{key}", "is missing")
        value = resources[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise fail(f"resources.{key}", f"must be a non-negative integer (got {value!r})")
    extra = sorted(str(k) for k in resources if k not in RESOURCE_KEYS)
    if extra:
        raise fail(f"resources.{extra[0]}", f"is not a resource (expected {', '.join(RESOURCE_KEYS)})")

    return Board(
        key=path.stem.lower(),
        name=data["name"].strip(),
        part=data["part"].strip(),
        family=data["family"].strip(),
        clock_mhz=float(clock),
        backend=data["backend"],
        resources={k: int(resources[k]) for k in RESOURCE_KEYS},
        radiation=" ".join(data["radiation"].split()),
    )


def env_dirs() -> list[Path]:
    """The directories named in ``$FPGA_FT_BOARDS`` (empty entries skipped); each must exist."""
    dirs = [Path(p).expanduser() for p in os.environ.get(BOARDS_ENV, "").split(os.pathsep) if p.strip()]
    for directory in dirs:
        if not directory.is_dir():
            raise FpgaFtError(f"{BOARDS_ENV}: board directory {directory} not found")
    return dirs


def entry_point_dirs() -> list[Path]:
    """Board directories offered by installed packages, in entry-point name order.

    A package declares, in its ``pyproject.toml``::

        [project.entry-points."fpga_ft.boards"]
        my_boards = "my_package:BOARDS_DIR"

    where the object is a directory of ``*.yml`` board files (``str``, ``os.PathLike`` or an
    ``importlib.resources`` path such as ``files("my_package") / "boards"``), or a callable
    without arguments returning one.
    """
    dirs = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            value = ep.load()
            if callable(value):
                value = value()
            directory = Path(str(value))
        except Exception as exc:  # a broken plugin is named, not a traceback
            raise FpgaFtError(f"board entry point '{ep.name}' ({ep.value}) failed: {exc}") from None
        if not directory.is_dir():
            raise FpgaFtError(f"board entry point '{ep.name}' ({ep.value}): {directory} is not a directory")
        dirs.append(directory)
    return dirs


def board_dirs() -> list[Path]:
    """Where boards are looked up, in precedence order: ``$FPGA_FT_BOARDS``, entry points,
    the packaged boards."""
    return [*env_dirs(), *entry_point_dirs(), BOARDS_DIR]


def _boards_in(directory: Path) -> list[Board]:
    if not directory.is_dir():
        raise FpgaFtError(f"board directory {directory} not found")
    return [load_board_file(p) for p in sorted(directory.glob("*.yml")) if p.is_file()]


def list_boards(boards_dir=None) -> list[Board]:
    """Every board, sorted by key: those in ``boards_dir`` alone when given, otherwise those
    of :func:`board_dirs` (a key found in an earlier directory hides later files of that key)."""
    directories = [Path(boards_dir)] if boards_dir is not None else board_dirs()
    found: dict[str, Board] = {}
    for directory in directories:
        for board in _boards_in(directory):
            found.setdefault(board.key, board)
    return sorted(found.values(), key=lambda b: b.key)


def get_board(name: str, boards_dir=None) -> Board:
    """The board whose key or display name equals ``name``, ignoring case.

    Unknown names raise :class:`FpgaFtError` listing the known board keys.
    """
    boards = list_boards(boards_dir)
    wanted = str(name).strip().lower()
    for board in boards:
        if board.key == wanted:
            return board
    for board in boards:
        if board.name.lower() == wanted:
            return board
    known = ", ".join(b.key for b in boards) or "none"
    raise FpgaFtError(f"unknown board '{name}' (known: {known})")


__all__ = ["BACKENDS", "BOARDS_ENV", "BOARD_KEYS", "ENTRY_POINT_GROUP", "RESOURCE_KEYS", "Board", "board_dirs",
           "entry_point_dirs", "env_dirs", "get_board", "list_boards", "load_board_file"]
