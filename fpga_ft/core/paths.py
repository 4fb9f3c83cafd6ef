"""Where fpga-ft's data folders are: the board files, the bundled models and data, the HLS
templates and headers. Everything the package reads from disk at run time is found here.

The repository keeps them as top-level folders (``boards/``, ``models/``, ``hls_templates/``).
A built wheel carries them inside the installed package:

* ``boards/`` and ``models/`` are mapped to ``fpga_ft/_bundled/boards`` and
  ``fpga_ft/_bundled/models`` at build time (``[tool.setuptools.package-dir]`` in
  ``pyproject.toml``: the wheel holds copies, the repository stays as it is);
* ``hls_templates`` is its own (importable) package with its headers as package data.

:func:`data_dir` prefers the installed copy (``importlib.resources`` on ``fpga_ft``) and
falls back to the checkout's top-level folder (a source tree, ``pip install -e``, or
``PYTHONPATH``), so both kinds of install read the same files through one function.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

#: The top-level data folders a wheel bundles under ``fpga_ft/_bundled/``.
DATA_FOLDERS = ("boards", "models")
BUNDLED = "_bundled"

#: The installed ``fpga_ft`` package directory (a real directory: pip unpacks wheels).
PACKAGE_DIR = Path(str(resources.files("fpga_ft")))
#: The folder holding the package: the repository root in a checkout (tests and scripts
#: read ``tests/`` and ``scripts/`` through it); ``site-packages`` in an installed package,
#: where only :func:`data_dir` and :data:`HLS_TEMPLATES_DIR` are meaningful.
ROOT = PACKAGE_DIR.parent


def data_dir(name: str) -> Path:
    """The directory of the data folder ``name`` (``"boards"`` or ``"models"``).

    Installed from a wheel: ``fpga_ft/_bundled/<name>`` inside the package; otherwise the
    checkout's ``<repository>/<name>``. The path is returned even if it does not exist (the
    reader reports a missing file with its full path)."""
    if name not in DATA_FOLDERS:
        raise ValueError(f"unknown data folder {name!r} (known: {', '.join(DATA_FOLDERS)})")
    bundled = resources.files("fpga_ft") / BUNDLED / name
    if bundled.is_dir():
        return Path(str(bundled))
    return ROOT / name


def hls_templates_dir() -> Path:
    """The ``hls_templates`` package directory (headers ``*.h``, ``*.cpp.in`` templates)."""
    return Path(str(resources.files("hls_templates")))


BOARDS_DIR = data_dir("boards")
MODELS_DIR = data_dir("models")
HLS_TEMPLATES_DIR = hls_templates_dir()
