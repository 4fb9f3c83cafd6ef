"""``fpga-ft inject MODEL --data D.npz --ber B [B ...]``: fault-injection campaigns.

Builds (or reuses from the design cache) the model's design with the protection plan,
then for every BER runs ``--repeats`` passes over the data set through the bit-exact C
simulation with bit flips at the chosen sites, and reports the accuracy with its Wilson
confidence interval (on the misclassification count), the clean (fault-free) accuracy
and the flips injected and masked per site. BER is in faults per bit per inference.
Campaigns are checkpointed (default: ``<design cache>/campaigns``): an interrupted run
resumes where it stopped and ends with the same numbers. MODEL may also be an fpga-ft
project directory (no TensorFlow needed then).
"""

from __future__ import annotations

import sys
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import BER_UNITS, DEFAULT_SCRUB_INTERVAL, MODES, SITES, FaultModel, parse_ber, parse_sites

IO_TYPES = ("io_parallel", "io_stream")


def register(subparsers):
    parser = subparsers.add_parser(
        "inject",
        help="fault-injection campaign: accuracy vs bit error rate",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    from fpga_ft.commands._common import MODEL_HELP, add_exactness_option, add_intake_options

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP + "; or an fpga-ft project directory")
    add_intake_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--data", required=True, metavar="D.npz", help=".npz with arrays x (inputs) and y (labels)")
    parser.add_argument("--ber", required=True, nargs="+", metavar="B",
                        help=f"bit error rate(s) in [0, 1] ({BER_UNITS})")
    parser.add_argument("--sites", default=",".join(SITES),
                        help=f"comma-separated fault sites (default: all = {','.join(SITES)})")
    parser.add_argument("--mode", default="transient", choices=MODES,
                        help="transient flips, or persistent weight flips until a scrub (default: transient)")
    parser.add_argument("--scrub-interval", type=int, default=DEFAULT_SCRUB_INTERVAL, metavar="N",
                        help=f"persistent mode: inferences between weight scrubs (default {DEFAULT_SCRUB_INTERVAL}; "
                             "0 = once per pass over the data)")
    parser.add_argument("--plan", default=None, metavar="PLAN.yml", help="protection plan (default: unprotected)")
    parser.add_argument("--repeats", type=int, default=10, metavar="R",
                        help="passes over the data set per BER (minimum with --target-halfwidth; default 10)")
    parser.add_argument("--max-repeats", type=int, default=None, metavar="R",
                        help="cap on passes with --target-halfwidth (default max(100, 10 x repeats))")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="campaign seed (default 0)")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="worker processes (default 1)")
    parser.add_argument("--confidence", type=float, default=0.95, metavar="C",
                        help="confidence level of the interval (default 0.95)")
    parser.add_argument("--target-halfwidth", type=float, default=None, metavar="H",
                        help="add passes until the interval half-width is <= H (accuracy fraction, e.g. 0.01)")
    parser.add_argument("--checkpoint-dir", default=None, metavar="DIR",
                        help="where campaign checkpoints go (default: <design cache>/campaigns)")
    parser.add_argument("--no-checkpoint", action="store_true", help="do not checkpoint")
    parser.add_argument("--io-type", default=None, choices=IO_TYPES,
                        help="hls4ml io type (default: the config YAML's IOType, else io_parallel)")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="plot accuracy vs BER to OUT.png")
    parser.add_argument("--progress", action="store_true", help="progress bar on stderr (default: when stderr is a terminal)")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    # cheap checks first: a bad BER or site fails before TensorFlow is loaded
    bers = [parse_ber(b) for b in args.ber]
    sites = parse_sites(args.sites)
    template = FaultModel(ber=0.0, sites=sites, mode=args.mode, scrub_interval=args.scrub_interval)
    for name in ("repeats", "workers"):
        if getattr(args, name) < 1:
            raise FpgaFtError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise FpgaFtError(f"--seed must be >= 0, got {args.seed}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
        raise FpgaFtError(f"--plot needs an image file name (.png, .pdf, .svg), got {args.plot}")

    from fpga_ft.generate.modelio import check_labels, load_data

    x, y = load_data(args.data)
    design, model_name, plan, plan_label, x, intake = _design(args, x)
    check_labels(args.data, y, design.n_outputs)

    from fpga_ft.simulate.campaign import default_checkpoint_dir, run_sweep

    checkpoint = None if args.no_checkpoint else (args.checkpoint_dir or default_checkpoint_dir())
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"model {model_name}, plan {plan_label}, {len(x)} samples, {template.describe().split(' on ', 1)[1]}",
          file=out)
    results = run_sweep(design, x, y, bers, sites=sites, mode=args.mode, scrub_interval=args.scrub_interval,
                        repeats=args.repeats, seed=args.seed, workers=args.workers, confidence=args.confidence,
                        target_halfwidth=args.target_halfwidth, max_repeats=args.max_repeats,
                        checkpoint=checkpoint, progress=args.progress or sys.stderr.isatty())
    print(_table(results), file=out)
    if args.plot:
        from fpga_ft.core.outputs import atomic_path

        with atomic_path(args.plot) as temp:
            plot_accuracy(results, temp, title=f"{model_name} - plan: {plan_label}")
        print(f"plot written to {args.plot}", file=out)
    fault_model = template.to_dict()
    fault_model.pop("ber")
    fault_model["bers"] = bers
    return {
        "model": str(args.model),
        "plan": {"path": args.plan, "label": plan_label, **plan.to_dict()},
        "design": str(design.project_dir),
        "data": {"path": str(args.data), "samples": int(len(x))},
        "intake": intake,
        "fault_model": fault_model,
        "results": [r.to_dict() for r in results],
    }


def _design(args, x):
    """(design, model name, plan, plan label, x as the design's input words, intake
    summary) from a model file or a project directory."""
    from fpga_ft.core.plan import ProtectionPlan

    model_path = Path(args.model)
    if model_path.is_dir() and (model_path / "fpgaft_design.json").is_file():
        from fpga_ft.generate.design import open_design

        if args.plan:
            raise FpgaFtError("--plan cannot be used with a project directory (its plan is fixed at build time)")
        design = open_design(model_path)
        n_values = int(x[0].size)
        if n_values != design.n_inputs:
            raise FpgaFtError(f"input shape mismatch: data samples have {n_values} values but design "
                              f"{model_path} expects {design.n_inputs}")
        plan = design.plan
        label = "unprotected" if not plan.protected_layers else f"{model_path / 'fpgaft_plan.yml'}"
        input_type = design.meta.get("input_quantization")
        x = design.prepare_inputs(x)  # quantized like the project's model input, if it was
        return design, model_path.name, plan, label, x, {"project": str(model_path), "input_quantization": input_type}

    plan = ProtectionPlan.load(args.plan) if args.plan else ProtectionPlan()
    from fpga_ft.commands._common import open_prepared
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import check_input_shape

    prepared = open_prepared(args)
    check_input_shape(prepared.model, x)
    x = prepared.prepare_inputs(x)
    design = build_design(prepared.model, plan, io_type=args.io_type, hls_config=prepared.hls_config)
    label = Path(args.plan).name if args.plan else "unprotected"
    return design, model_path.name, plan, label, x, prepared.describe()


def _pct(value: float) -> str:
    return f"{100 * value:.2f}%"


def _table(results) -> str:
    header = ["BER", "accuracy", f"{int(round(100 * results[0].confidence))}% CI", "clean", "inferences",
              "repeats", *[f"{s} inj/masked" for s in SITES], "time"]
    rows = []
    for r in results:
        rows.append([f"{r.ber:.3g}", _pct(r.accuracy_mean), f"{_pct(r.ci_low)} .. {_pct(r.ci_high)}",
                     _pct(r.clean_accuracy), f"{r.inferences:,}", str(r.repeats),
                     *[f"{r.faults_injected[s]:,}/{r.faults_masked[s]:,}" for s in SITES], f"{r.seconds:.2f} s"])
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]

    def line(cells):
        return "  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(header), line(["-" * w for w in widths]), *map(line, rows)])


def plot_accuracy(results, out: str, title: str = "") -> None:
    """Accuracy vs BER (log x axis), CI error bars, clean accuracy as a dashed line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    points = sorted((r for r in results if r.ber > 0), key=lambda r: r.ber)
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    if points:
        bers = [r.ber for r in points]
        means = [r.accuracy_mean for r in points]
        errors = [[r.accuracy_mean - r.ci_low for r in points], [r.ci_high - r.accuracy_mean for r in points]]
        conf = int(round(100 * points[0].confidence))
        ax.errorbar(bers, means, yerr=errors, marker="o", capsize=3, label=f"under faults ({conf}% CI)")
        ax.set_xscale("log")
    clean = results[0].clean_accuracy
    ax.axhline(clean, linestyle="--", color="gray", label=f"clean ({100 * clean:.1f}%)")
    ax.set_xlabel(f"bit error rate ({BER_UNITS})")
    ax.set_ylabel("accuracy (fraction correct)")
    ax.set_ylim(0.0, 1.02)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="lower left")
    fig.tight_layout()
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
