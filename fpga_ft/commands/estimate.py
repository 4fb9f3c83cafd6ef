"""``fpga-ft estimate MODEL --board NAME [--plan PLAN.yml]``: offline resource estimate.

Converts the model with hls4ml (no HLS tool needed) to read each Dense/Conv layer's real
widths and quantized weights, then costs them, with the protection of the plan, with the
Yosys-calibrated model of :mod:`fpga_ft.measure.resources`. Prints a per-layer table and returns
``LUT``, ``FF``, ``DSP``, ``BRAM_18K``, ``latency_cycles``, ``per_layer``, ``utilization``
(fractions of the board) and ``source: "estimate"`` (``--json OUT`` writes them).
"""

from __future__ import annotations

import tempfile

from fpga_ft.commands._common import add_design_options, add_model_argument
from fpga_ft.core.errors import FpgaFtError


def register(subparsers):
    parser = subparsers.add_parser(
        "estimate",
        help="estimate LUT/FF/DSP/BRAM and latency of a (protected) design, no HLS tool needed",
        description="Estimate the FPGA resources (LUT, FF, DSP, 18Kb BRAM) and latency (cycles) "
                    "of the model's Dense/Conv layers with the plan's TMR, from a model "
                    "calibrated on Yosys synthesis and published Vivado reports. Activations, "
                    "softmax and I/O are not counted.")
    add_model_argument(parser)
    add_design_options(parser, board_required=True)
    parser.add_argument("--clock-mhz", type=float, default=None, metavar="F",
                        help="clock for the latency model in MHz (default: the board's)")
    parser.add_argument("--target", choices=["synth", "hls"], default="synth",
                        help="synth: Vivado post-synthesis counts (default); hls: the scale of an "
                             "HLS C-synthesis estimate")
    parser.set_defaults(func=run)
    return parser


def describe_model(model_path, plan, board, *, backend=None, io_type=None, reuse_factor=None):
    """LayerInfo of every protectable layer of ``model_path`` (a path or a
    :class:`fpga_ft.generate.intake.PreparedModel`; hls4ml conversion, no HLS)."""
    from fpga_ft.generate.convert import convert_model  # lazy: imports TensorFlow and hls4ml

    with tempfile.TemporaryDirectory(prefix="fpgaft_estimate_") as tmp:
        converted = convert_model(model_path, plan, board=board, backend=backend,
                                  io_type=io_type, reuse_factor=reuse_factor, output_dir=tmp)
        return converted.layers


def run(args) -> dict:
    from fpga_ft.core.boards import get_board
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.measure.resources import estimate_resources

    board = get_board(args.board)
    plan = ProtectionPlan.load(args.plan) if args.plan else ProtectionPlan()
    if args.reuse_factor is not None and args.reuse_factor < 1:
        raise FpgaFtError(f"--reuse-factor must be >= 1, got {args.reuse_factor}")
    clock = args.clock_mhz if args.clock_mhz is not None else board.clock_mhz
    if clock is None or not clock > 0:
        raise FpgaFtError(f"--clock-mhz must be positive, got {args.clock_mhz}")
    from fpga_ft.commands._common import open_prepared

    prepared = open_prepared(args)
    layers = describe_model(prepared, plan, board, backend=args.backend, io_type=args.io_type,
                            reuse_factor=args.reuse_factor)
    plan.validate(layers)
    est = estimate_resources(layers, plan, clock, target=args.target)
    util = est.utilization(board)
    print(_table(est, board, clock, args.target))
    return {
        "model": str(args.model),
        "board": board.key,
        "clock_mhz": clock,
        "target": args.target,
        **{key: value for key, value in est.to_dict().items() if key != "source"},  # counts, latency, per_layer
        "utilization": {k: (None if v == float("inf") else round(v, 6)) for k, v in util.items()},
        "protected_layers": plan.protected_layers,
        "source": est.source,
        "intake": prepared.describe(),
    }


def _table(est, board, clock: float, target: str) -> str:
    head = ["layer", "kind", "LUT", "FF", "DSP", "BRAM_18K", "cycles", "protection LUT"]
    rows = [[r["name"], r["kind"], f"{r['LUT']:,}", f"{r['FF']:,}", f"{r['DSP']:,}",
             str(r["BRAM_18K"]), str(r["latency_cycles"]), f"{r['protection_LUT']:,}"]
            for r in est.per_layer]
    rows.append(["total", "", f"{est.LUT:,}", f"{est.FF:,}", f"{est.DSP:,}", str(est.BRAM_18K),
                 str(est.latency_cycles), f"{sum(r['protection_LUT'] for r in est.per_layer):,}"])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]

    def line(cells):
        return "  ".join(str(c).ljust(w) if i < 2 else str(c).rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths)))

    util = est.utilization(board)
    share = ", ".join(f"{k} {v:.1%}" for k, v in util.items() if k != "URAM")
    scale = "Vivado post-synthesis" if target == "synth" else "HLS C-synthesis estimate"
    return "\n".join([line(head), line(["-" * w for w in widths])] + [line(r) for r in rows]
                     + [f"{board.name} ({board.part}) at {clock:g} MHz, {scale} scale: {share}",
                        "estimate of the Dense/Conv layers only (source: estimate)"])
