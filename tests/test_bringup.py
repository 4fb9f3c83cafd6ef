"""Issue 7: `fpga-ft bringup` output for two boards, checked for structure."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.cli import main
from fpga_ft.deploy.bringup import run_testbench_with_gxx
from fpga_ft.generate.design import open_design

ROOT = Path(__file__).resolve().parent.parent
MODEL, DATA = ROOT / "models" / "digits_mlp.h5", ROOT / "models" / "digits_test.npz"


@pytest.mark.parametrize("board, part, mhz, script, backend", [
    ("pynq-z2", "xc7z020clg400-1", 100, "build_bitstream.sh", "VivadoAccelerator"),
    ("kv260", "xck26-sfvc784-2LV-c", 200, "export_ip.sh", "Vitis"),
])
def test_bringup_kit_structure(tmp_path, board, part, mhz, script, backend):
    plan = tmp_path / "plan.yml"
    plan.write_text("layers:\n  fc1:\n    protected_msbs: 2\n    critical_neurons: [3, 17]\n  fc3:\n    protected_msbs: 3\n")
    out = tmp_path / "kit"
    assert main(["bringup", str(MODEL), "--board", board, "--plan", str(plan), "--data", str(DATA), "-o", str(out),
                 "--ber", "1e-3", "--repeats", "1", "--vectors", "40", "--json", str(tmp_path / "b.json")]) == 0
    summary = json.loads((tmp_path / "b.json").read_text())
    assert summary["board"] == board and summary["part"] == part and summary["backend"] == backend
    # written in a hidden sibling and moved into place: the results name the final place
    assert summary["output_dir"] == str(out.resolve()) and summary["hls_project"] == str(out.resolve() / "hls")
    assert not list(tmp_path.glob(".*fpgaft-tmp*"))
    assert "fpgaft-tmp" not in (out / "hls" / "hls4ml_config.yml").read_text()
    for name in ("BRINGUP.md", script, "check_outputs.py", "vectors/inputs.dat", "vectors/golden_outputs.dat",
                 "hls/fpgaft_tb.cpp", "hls/fpgaft_csim_faults.tcl", "hls/fpgaft_keep_replicas.xdc",
                 "hls/fpgaft_check_replicas.tcl", "hls/tb_data/tb_input_features.dat"):
        assert (out / name).is_file(), name
    if backend == "VivadoAccelerator":
        assert (out / "hls" / "design.tcl").is_file()  # hls4ml's block design for the board
    project_tcl = (out / "hls" / "project.tcl").read_text()
    assert f'set part "{part}"' in project_tcl
    assert re.search(r"set clock_period ([\d.]+)", project_tcl).group(1) in (str(1000 / mhz), f"{1000 / mhz:g}")
    # the fault-injecting Tcl is csim only
    fault_tcl = (out / "hls" / "fpgaft_csim_faults.tcl").read_text()
    assert "csim_design" in fault_tcl and "csynth_design" not in fault_tcl and "-DFPGAFT_CSIM" in fault_tcl
    for tcl in (out / "hls").glob("*.tcl"):
        if tcl.name != "fpgaft_csim_faults.tcl":
            assert "FPGAFT_CSIM" not in tcl.read_text(), tcl.name
    # vectors equal the bit-exact csim outputs of the generated design
    inputs = np.loadtxt(out / "vectors" / "inputs.dat")
    golden = np.loadtxt(out / "vectors" / "golden_outputs.dat")
    assert inputs.shape == (40, 64) and golden.shape == (40, 10)
    np.testing.assert_array_equal(open_design(out / "hls").predict(inputs), golden)
    # checklist carries measured reliability, estimated resources and the commands
    text = (out / "BRINGUP.md").read_text()
    r = summary["reliability"][0]
    assert f"| 0.001 | {r['clean_accuracy']:.4f} | {r['accuracy']['mean']:.4f} |" in text
    assert f"LUT {summary['resources']['LUT']:,}" in text and f"./{script}" in text
    assert "python check_outputs.py" in text


def test_generated_testbench_runs_and_check_script_works(tmp_path):
    import subprocess
    import sys

    out = tmp_path / "kit"
    assert main(["bringup", str(MODEL), "--board", "zcu104", "--data", str(DATA), "-o", str(out),
                 "--ber", "1e-3", "--repeats", "1", "--vectors", "30"]) == 0
    log = run_testbench_with_gxx(out / "hls", ber=1e-3, seed=1)
    assert "fault-free: 0 of 30 samples differ" in log and "flips injected" in log
    golden = np.loadtxt(out / "vectors" / "golden_outputs.dat")
    np.savetxt(tmp_path / "good.dat", golden)
    bad = golden.copy()
    bad[3, 0] += 1.0
    np.savetxt(tmp_path / "bad.dat", bad)
    check = [sys.executable, str(out / "check_outputs.py")]
    assert subprocess.run(check + [str(tmp_path / "good.dat")], capture_output=True).returncode == 0
    failing = subprocess.run(check + [str(tmp_path / "bad.dat")], capture_output=True, text=True)
    assert failing.returncode == 1 and "sample 3" in failing.stdout
