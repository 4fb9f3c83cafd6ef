"""The package layout (issue 13): a light ``fpga_ft.core`` and stages above it, and a library
that never imports the command line.

* every ``fpga_ft.core`` module imports in a fresh interpreter without TensorFlow, Keras,
  QKeras or hls4ml;
* no ``fpga_ft.core`` module imports another stage or a TensorFlow-family package, not even
  inside a function (parsed, so that lazy imports count too);
* no module of the library (all of ``fpga_ft`` except ``cli.py`` and ``commands/``) imports
  ``fpga_ft.cli`` or ``fpga_ft.commands``;
* every package under ``fpga_ft/`` is in the wheel's package list (``pyproject.toml``).
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "fpga_ft"
HEAVY = ("tensorflow", "hls4ml", "qkeras", "keras")
STAGES = ("generate", "simulate", "measure", "search", "deploy", "testing")


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


def _imported(path: Path) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, at any depth."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = _module_name(path) if path.name == "__init__.py" else _module_name(path).rpartition(".")[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against the module's package
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                module = ".".join([*base, *([node.module] if node.module else [])])
            else:
                module = node.module or ""
            found.append((node.lineno, module))
            # ``from fpga_ft import cli`` / ``from fpga_ft.search import optimize``
            found += [(node.lineno, f"{module}.{alias.name}") for alias in node.names]
    return found


def _is_under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_core_imports_without_tensorflow_or_hls4ml():
    core = [_module_name(p) for p in _modules(PACKAGE / "core")]
    assert "fpga_ft.core.structure" in core and "fpga_ft.core.faults" in core
    script = (
        "import importlib, json, sys\n"
        f"for name in {core!r}:\n"
        "    importlib.import_module(name)\n"
        f"print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in {HEAVY!r})))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    loaded = json.loads(run.stdout.strip().splitlines()[-1])
    assert loaded == [], f"importing fpga_ft.core loads {loaded}"


@pytest.mark.parametrize("path", _modules(PACKAGE / "core"), ids=lambda p: p.name)
def test_core_imports_no_stage_and_no_tensorflow(path):
    bad = []
    for line, module in _imported(path):
        if module.split(".")[0] in HEAVY:
            bad.append(f"line {line}: {module}")
        elif _is_under(module, "fpga_ft") and not (_is_under(module, "fpga_ft.core") or module == "fpga_ft"):
            bad.append(f"line {line}: {module}")
    assert not bad, f"{path.relative_to(ROOT)} imports outside the core: {bad}"


def test_structure_imports_only_numpy_stdlib_and_core():
    allowed_third_party = {"numpy"}
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = [f"line {line}: {module}" for line, module in _imported(PACKAGE / "core" / "structure.py")
           if module.split(".")[0] not in stdlib | allowed_third_party and not _is_under(module, "fpga_ft.core")
           and module != "fpga_ft"]
    assert not bad, bad


def test_library_never_imports_the_cli():
    cli_side = [PACKAGE / "cli.py", *_modules(PACKAGE / "commands")]
    library = [p for p in _modules(PACKAGE) if p not in cli_side]
    assert len(library) > 30
    bad = [f"{p.relative_to(ROOT)} line {line}: {module}" for p in library for line, module in _imported(p)
           if _is_under(module, "fpga_ft.cli") or _is_under(module, "fpga_ft.commands")]
    assert not bad, bad


def test_no_module_left_at_the_top_level():
    """The top level holds the package marker, the CLI and the stage packages only."""
    top = sorted(p.name for p in PACKAGE.glob("*.py"))
    assert top == ["__init__.py", "cli.py"], top
    for stage in ("core", *STAGES):
        assert (PACKAGE / stage / "__init__.py").is_file(), stage


def test_every_package_is_in_the_wheel():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    listed = set(config["tool"]["setuptools"]["packages"])
    packages = {_module_name(p) for p in PACKAGE.rglob("__init__.py") if "_bundled" not in p.parts}
    assert packages <= listed, f"missing from [tool.setuptools] packages: {sorted(packages - listed)}"
    assert config["project"]["entry-points"]["pytest11"]["fpga_ft"] == "fpga_ft.testing.pytest_plugin"
