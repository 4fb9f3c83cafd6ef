"""Packaging (issue 13): the data folders are found in a wheel and in a checkout, and every
file the package reads at run time is covered by pyproject's package data. The full check
(wheel -> fresh venv -> `fpga-ft boards`/`fpga-ft demo` elsewhere) is scripts/check_wheel.sh,
run by CI."""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

import pytest

from fpga_ft.core import paths

REPO = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())
SETUPTOOLS = PYPROJECT["tool"]["setuptools"]


class _FakeResources:
    def __init__(self, package_dir: Path):
        self.package_dir = package_dir

    def files(self, name):
        return self.package_dir


def test_checkout_data_dirs_are_the_top_level_folders():
    assert paths.data_dir("boards") == paths.BOARDS_DIR == REPO / "boards"
    assert paths.data_dir("models") == paths.MODELS_DIR == REPO / "models"
    assert paths.HLS_TEMPLATES_DIR == REPO / "hls_templates"
    assert (paths.HLS_TEMPLATES_DIR / "fpgaft_bridge.cpp.in").is_file()


def test_installed_copy_is_preferred(tmp_path, monkeypatch):
    (tmp_path / "_bundled" / "boards").mkdir(parents=True)
    monkeypatch.setattr(paths, "resources", _FakeResources(tmp_path))
    assert paths.data_dir("boards") == tmp_path / "_bundled" / "boards"
    assert paths.data_dir("models") == paths.ROOT / "models"  # not bundled there: the checkout's


def test_unknown_data_folder_is_refused():
    with pytest.raises(ValueError, match="unknown data folder 'docs'"):
        paths.data_dir("docs")


def _covered(package: str, directory: Path) -> list[str]:
    """Files of ``directory`` (a package's source folder) that no package-data pattern ships."""
    patterns = SETUPTOOLS["package-data"].get(package, [])
    return sorted(p.name for p in directory.iterdir()
                  if p.is_file() and p.suffix != ".py" and not any(fnmatch.fnmatch(p.name, pat) for pat in patterns))


@pytest.mark.parametrize("folder", paths.DATA_FOLDERS)
def test_every_data_file_ships_in_the_wheel(folder):
    package = f"fpga_ft.{paths.BUNDLED}.{folder}"
    assert package in SETUPTOOLS["packages"]
    assert SETUPTOOLS["package-dir"][package] == folder
    assert _covered(package, REPO / folder) == []


@pytest.mark.parametrize("package, directory", [("hls_templates", "hls_templates"), ("fpga_ft.data", "fpga_ft/data")])
def test_every_template_and_table_ships_in_the_wheel(package, directory):
    assert package in SETUPTOOLS["packages"]
    assert _covered(package, REPO / directory) == []
