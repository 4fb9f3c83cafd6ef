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


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_raw_conversions_equal_ap_fixed(tmp_path):
    import hls4ml

    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    exe = tmp_path / "raw_convert_check"
    subprocess.run(["g++", "-O1", "-std=c++17", "-w", f"-I{ap_types}", f"-I{ROOT / 'hls_templates'}",
                    str(ROOT / "tests" / "cpp" / "raw_convert_check.cpp"), "-o", str(exe)], check=True)
    run = subprocess.run([str(exe)], capture_output=True, text=True)
    assert run.returncode == 0, run.stdout + run.stderr
    checked = int(run.stdout.strip().splitlines()[-1].split()[-1])
    assert checked > 100_000  # the pairs took the raw path
