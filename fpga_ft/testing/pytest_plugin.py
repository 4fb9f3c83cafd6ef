"""pytest plugin (entry point ``pytest11``): the ``fpga_ft`` fixture for csim fault
regression tests in users' own repositories. See :mod:`fpga_ft.testing.tester`.

Options: ``--fpga-ft-quick`` shrinks campaigns (1 repeat, at most 200 samples) for
pre-commit use; ``--fpga-ft-update-golden`` rewrites golden files.
"""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("fpga-ft")
    group.addoption("--fpga-ft-quick", action="store_true", default=False,
                    help="fpga-ft: shrink fault campaigns (1 repeat, <= 200 samples) for quick checks")
    group.addoption("--fpga-ft-update-golden", action="store_true", default=False,
                    help="fpga-ft: rewrite golden campaign files instead of comparing")


@pytest.fixture(scope="session")
def _fpga_ft_session(request):
    from fpga_ft.testing.tester import FpgaFtTester

    return FpgaFtTester(quick=request.config.getoption("--fpga-ft-quick"),
                        update_golden=request.config.getoption("--fpga-ft-update-golden"))


@pytest.fixture
def fpga_ft(_fpga_ft_session):
    """Run reliability campaigns: ``fpga_ft.campaign(model, data=..., plan=..., ber=...)``."""
    return _fpga_ft_session
