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


def run(args) -> dict:
    from fpga_ft.measure.reports import format_report_table, read_project_report, read_report_file

    target = Path(args.project_dir)
    if target.is_file():
        report = read_report_file(target)
    elif target.is_dir():
        report = read_project_report(target)
    elif target.exists():
        raise FpgaFtError(f"{target} is neither a project directory nor a report file")
    else:
        raise FpgaFtError(f"project directory {target} not found")
    print(format_report_table(report))
    if args.modules and report.modules:
        width = max(len(m.name) for m in report.modules)
        print()
        print(f"{'module'.ljust(width)}  {'LUT':>8}  {'FF':>8}  {'DSP':>5}  {'BRAM_18K':>8}  latency")
        for m in report.modules:
            latency = "-" if m.latency_worst_cycles is None else f"{m.latency_worst_cycles:,}"
            print(f"{m.name.ljust(width)}  {m.lut:>8,}  {m.ff:>8,}  {m.dsp:>5,}  {m.bram_18k:>8,}  {latency}")
    return report.to_dict()
