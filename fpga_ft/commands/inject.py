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
    from fpga_ft.commands._common import MODEL_HELP, add_exactness_option, add_intake_options, add_scheduler_option

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
    add_scheduler_option(parser)
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

    from fpga_ft.commands._common import open_prepared, use_scheduler
    from fpga_ft.generate.modelio import check_labels, load_data
    from fpga_ft.simulate.campaign import default_checkpoint_dir, format_sweep_table, open_subject, sweep

    use_scheduler(args)
    x, y = load_data(args.data)
    subject, x = open_subject(args.model, x, plan_path=args.plan, io_type=args.io_type,
                              prepared=lambda: open_prepared(args))
    check_labels(args.data, y, subject.design.n_outputs)

    checkpoint = None if args.no_checkpoint else (args.checkpoint_dir or default_checkpoint_dir())
    out = sys.stderr if args.json == "-" else sys.stdout
    print(f"model {subject.name}, plan {subject.plan_label}, {len(x)} samples, "
          f"{template.describe().split(' on ', 1)[1]}", file=out)
    report = sweep(subject, x, y, bers, data_path=args.data, sites=sites, mode=args.mode,
                   scrub_interval=args.scrub_interval, repeats=args.repeats, seed=args.seed, workers=args.workers,
                   confidence=args.confidence, target_halfwidth=args.target_halfwidth,
                   max_repeats=args.max_repeats, checkpoint=checkpoint,
                   progress=args.progress or sys.stderr.isatty())
    print(format_sweep_table(report.sweep), file=out)
    if args.plot:
        from fpga_ft.core.outputs import atomic_path
        from fpga_ft.simulate.campaign import plot_accuracy

        with atomic_path(args.plot) as temp:
            plot_accuracy(report.sweep, temp, title=report.title)
        print(f"plot written to {args.plot}", file=out)
    return report.to_dict()
