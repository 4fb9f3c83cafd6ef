"""`fpga-ft build`: run Vitis HLS / Vivado HLS (and Vivado) on a generated project."""

from __future__ import annotations

from pathlib import Path

from fpga_ft.core.errors import FpgaFtError


def register(sub):
    parser = sub.add_parser("build", help="run the vendor HLS flow on a project (needs Vitis/Vivado on PATH)",
                            description=__doc__)
    parser.add_argument("project_dir", metavar="DIR", help="project written by `fpga-ft convert`")
    parser.add_argument("--csim", action="store_true", help="vendor C simulation (csim_design) on tb_data")
    parser.add_argument("--synth", action="store_true", help="C synthesis (csynth_design)")
    parser.add_argument("--cosim", action="store_true", help="C/RTL co-simulation and validation")
    parser.add_argument("--vsynth", action="store_true", help="Vivado logic synthesis (reads the keep-replicas XDC)")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.deploy import vendor

    project = Path(args.project_dir)
    if not project.is_dir():
        raise FpgaFtError(f"project directory not found: {project}")
    if not (args.csim or args.synth or args.cosim or args.vsynth):
        args.synth = True
    options = vendor.build_options(args.csim, args.synth, args.cosim, args.vsynth)
    command = vendor.build_command(project, options)  # raises with the missing tool's name
    print("running:", " ".join(command), f"(log: {project / 'fpgaft_build.log'})")
    status = vendor.run_build(project, options)
    if status != 0:
        raise FpgaFtError(f"vendor build failed with status {status}; see {project / 'fpgaft_build.log'}")
    result = {"project_dir": str(project), "command": command, "status": status}
    try:
        from fpga_ft.measure.reports import read_project_report

        result["report"] = read_project_report(project).to_dict()
    except FpgaFtError as exc:
        result["report"] = None
        result["report_error"] = str(exc)
    return result
