"""Running the vendor tools (Vitis HLS, Vivado HLS, Vivado) on a generated project.

None of them exists on the fpga-ft developers' machines: everything here is generated and
checked for structure by the tests, and runs for real where the tools are on PATH.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError

#: backend (as in project.tcl) -> (executable, how to call it with build options)
TOOLS = {
    "vitis": "vitis-run",
    "vivado": "vivado_hls",
    "vivadoaccelerator": "vivado_hls",
}


def project_backend(project_dir: Path) -> str:
    tcl = Path(project_dir) / "project.tcl"
    if not tcl.is_file():
        raise FpgaFtError(f"not an hls4ml project (no project.tcl): {project_dir}")
    match = re.search(r'set backend "([^"]+)"', tcl.read_text())
    return match.group(1).lower() if match else "vivado"


def build_options(csim: bool, synth: bool, cosim: bool, vsynth: bool, export: bool = False) -> dict[str, int]:
    return {"reset": 1, "csim": int(csim), "synth": int(synth), "cosim": int(cosim), "validation": int(cosim),
            "export": int(export), "vsynth": int(vsynth), "fifo_opt": 0}


def build_command(project_dir: Path, options: dict[str, int]) -> list[str]:
    """The vendor command line for the project's backend (raises if the tool is missing)."""
    backend = project_backend(project_dir)
    tool = TOOLS.get(backend, "vivado_hls")
    if shutil.which(tool) is None:
        raise FpgaFtError(f"{tool} not found on PATH: install {'AMD Vitis' if tool == 'vitis-run' else 'Vivado HLS'} "
                          f"(backend '{backend}') or run `fpga-ft build` where it is installed")
    if tool == "vitis-run":
        (Path(project_dir) / "build_opt.tcl").write_text(
            "array set opt {\n" + "".join(f"    {k} {v}\n" for k, v in options.items()) + "}\n")
        return ["vitis-run", "--tcl", "build_prj.tcl", "--mode", "hls"]
    return ["vivado_hls", "-f", "build_prj.tcl", " ".join(f"{k}={v}" for k, v in options.items())]


def run_build(project_dir: Path, options: dict[str, int]) -> int:
    command = build_command(project_dir, options)
    log = Path(project_dir) / "fpgaft_build.log"
    with open(log, "w") as handle:
        process = subprocess.run(command, cwd=project_dir, stdout=handle, stderr=subprocess.STDOUT)
    return process.returncode
