"""Issue 7: the pytest plugin in a user's repository (examples/user_repo)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run_user_tests(tmp_path, *extra):
    env = dict(os.environ, FPGA_FT_GOLDEN_DIR=str(tmp_path / "golden"))
    cmd = [sys.executable, "-m", "pytest", str(ROOT / "examples" / "user_repo"), "-q", "-p", "no:cacheprovider",
           "--rootdir", str(ROOT / "examples" / "user_repo"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=900)


def test_user_repository_passes_and_catches_the_unreliable_plan(tmp_path):
    run = _run_user_tests(tmp_path, "--fpga-ft-quick")
    out = run.stdout + run.stderr
    assert "1 failed, 2 passed" in out, out[-3000:]
    failed = [line for line in out.splitlines() if line.startswith("FAILED")]
    assert len(failed) == 1 and failed[0].split(" ")[1].endswith("::test_unreliable_plan_is_caught"), failed
    # the message names interval, target, BER, plan, seed and a reproduce command
    line = next(line for line in out.splitlines() if line.lstrip("E ").startswith("AssertionError: fpga-ft reliability"))
    for needle in ("lower bound", "target 0.9500", "BER 0.003", "unreliable_plan.yml", "seed 0",
                   "reproduce: fpga-ft inject", "Wilson interval"):
        assert needle in line, (needle, line)
    golden = json.loads((tmp_path / "golden" / "mlp_plan_1e-4.json").read_text())
    assert golden["result"]["ber"] == 1e-4 and golden["quick"] is True


def test_golden_mode_fails_when_intervals_stop_overlapping(tmp_path):
    from fpga_ft.testing import FpgaFtTester

    tester = FpgaFtTester(quick=True)
    model, data = ROOT / "models" / "digits_mlp.h5", ROOT / "models" / "digits_test.npz"
    clean = tester.campaign(model, data=data, ber=0.0)
    golden = tmp_path / "g.json"
    assert clean.assert_matches_golden(golden) is True          # first run records
    assert clean.assert_matches_golden(golden) is False         # same interval: passes
    broken = tester.campaign(model, data=data, ber=2e-2, sites="products,accumulators")
    with pytest.raises(AssertionError, match="golden mismatch"):
        broken.assert_matches_golden(golden)
    with pytest.raises(AssertionError, match="reliability target missed"):
        broken.assert_accuracy(at_least=0.9)
