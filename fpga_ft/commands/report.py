"""``fpga-ft report PROJECT_DIR``: resource figures from real Vitis/Vivado reports.

Reads the HLS estimate (``*_csynth.xml``) and, if present, Vivado utilization reports
(``vivado_synth.rpt``, ``*utilization*.rpt``) below PROJECT_DIR, prints a short table
(LUTs, flip-flops, DSPs, 18Kb BRAMs, URAMs, worst-case latency in cycles, estimated clock in
ns) and returns the figures (``--json OUT`` writes them). PROJECT_DIR may also be a single
``csynth.xml`` or ``.rpt`` file.
"""

from __future__ import annotations

from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.measure.reports import (
    format_report_table,
    parse_csynth_xml,
    parse_vivado_utilization,
    read_project_report,
)


def register(subparsers):
    parser = subparsers.add_parser(
        "report",
        help="read HLS and Vivado resource reports of a built project",
        description="Read the Vivado/Vitis HLS csynth.xml estimate and Vivado utilization "
                    "reports (vivado_synth.rpt, *utilization*.rpt) of a built project and show "
                    "LUT, FF, DSP, BRAM_18K (18Kb units), URAM, latency (cycles) and clock (ns).")
    parser.add_argument("project_dir", metavar="PROJECT_DIR",
                        help="hls4ml/fpga-ft project directory (or one csynth.xml / .rpt file)")
    parser.add_argument("--modules", action="store_true",
                        help="also list the per-module HLS figures (Vitis hierarchy reports)")
    parser.set_defaults(func=run)
    return parser


def _single_file(path: Path) -> dict:
    name = path.name.lower()
    if name.endswith(".xml"):
        hls = parse_csynth_xml(path)
        return {"source": "report", "project_dir": str(path.parent), "hls": hls.summary(),
                "vivado": None, "vivado_reports": [],
                "modules": [m.to_dict() for m in hls.modules],
                "instances": [i.to_dict() for i in hls.instances],
                "files": {"csynth": [str(path)], "hierarchy": [], "vivado": []}, "warnings": []}
    if name.endswith(".rpt") or name.endswith(".txt"):
        viv = parse_vivado_utilization(path).summary()
        return {"source": "report", "project_dir": str(path.parent), "hls": None, "vivado": viv,
                "vivado_reports": [viv], "modules": [], "instances": [],
                "files": {"csynth": [], "hierarchy": [], "vivado": [str(path)]}, "warnings": []}
    raise FpgaFtError(f"{path}: not a report (expected a directory, a csynth.xml or a .rpt file)")


def run(args) -> dict:
    target = Path(args.project_dir)
    if target.is_file():
        result = _single_file(target)
    elif target.is_dir():
        result = read_project_report(target)
    elif target.exists():
        raise FpgaFtError(f"{target} is neither a project directory nor a report file")
    else:
        raise FpgaFtError(f"project directory {target} not found")
    print(format_report_table(result))
    if args.modules and result["modules"]:
        width = max(len(m["name"]) for m in result["modules"])
        print()
        print(f"{'module'.ljust(width)}  {'LUT':>8}  {'FF':>8}  {'DSP':>5}  {'BRAM_18K':>8}  latency")
        for m in result["modules"]:
            latency = "-" if m["latency_worst_cycles"] is None else f"{m['latency_worst_cycles']:,}"
            print(f"{m['name'].ljust(width)}  {m['LUT']:>8,}  {m['FF']:>8,}  {m['DSP']:>5,}  "
                  f"{m['BRAM_18K']:>8,}  {latency}")
    return result
