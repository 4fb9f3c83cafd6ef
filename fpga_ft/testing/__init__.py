"""fpga-ft for users' own test suites: the ``fpga_ft`` pytest fixture
(:mod:`fpga_ft.testing.pytest_plugin`, registered through the ``pytest11`` entry point) and
the reliability assertions behind it (:mod:`fpga_ft.testing.tester`).

``from fpga_ft.testing import FpgaFtTester, ReliabilityResult`` works; the names are loaded
on first use, so that pytest loading the plugin (every pytest run in an environment with
fpga-ft installed) does not import the simulation stage.
"""

from __future__ import annotations

__all__ = ["FpgaFtTester", "ReliabilityResult", "QUICK_REPEATS", "QUICK_MAX_SAMPLES"]


def __getattr__(name: str):
    if name in __all__:
        from fpga_ft.testing import tester

        return getattr(tester, name)
    raise AttributeError(f"module 'fpga_ft.testing' has no attribute {name!r}")
