"""The csim's raw-integer conversions (hls_templates/fpgaft_runtime.h: ``convert_raw``,
``relu_raw``, ``float_to_raw``, ``set_raw``/``to_raw``) against ap_fixed's own conversion
code, for every quantisation mode, the overflow modes the fast path takes, signed and
unsigned, negative and >W integer bits, on random words of every magnitude
(tests/cpp/raw_convert_check.cpp)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _run_check(name: str, tmp_path: Path) -> str:
    """Compile tests/cpp/NAME.cpp against hls4ml's ap_types and the csim headers, run it,
    return its output (the run must exit 0)."""
    import hls4ml

    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    exe = tmp_path / name
    subprocess.run(["g++", "-O1", "-std=c++17", "-w", f"-I{ap_types}", f"-I{ROOT / 'hls_templates'}",
                    str(ROOT / "tests" / "cpp" / f"{name}.cpp"), "-o", str(exe)], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    return run.stdout


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_raw_conversions_equal_ap_fixed(tmp_path):
    out = _run_check("raw_convert_check", tmp_path)
    checked = int(out.strip().splitlines()[-1].split()[-1])
    assert checked > 100_000  # the pairs took the raw path


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_fault_gap_sampler_is_exponential_and_geometric(tmp_path):
    """The ziggurat Exp(1) sampler behind every fault gap: a chi-square over 64 equiprobable
    bins (8M draws, 63 degrees of freedom: 99.9 % quantile 103.4), and the mean gap at three
    BERs within 4 standard errors of (1 - p) / p. A fixed seed: deterministic."""
    lines = _run_check("exponential_check", tmp_path).split("\n")
    chi2 = float(lines[0].split()[1])
    assert chi2 < 103.4, lines[0]
    gaps = [line.split() for line in lines[1:] if line.startswith("gap")]
    assert len(gaps) == 3
    for g in gaps:
        assert abs(float(g[-1])) < 4.0, " ".join(g)
