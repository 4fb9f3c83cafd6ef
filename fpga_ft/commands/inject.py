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
from fpga_ft.core.faults import (BER_UNITS, DEFAULT_SCRUB_INTERVAL, MODES, SITES, FaultModel, UpsetRate, parse_ber,
                                  parse_mbu, parse_sites)

IO_TYPES = ("io_parallel", "io_stream")


def register(subparsers):
    parser = subparsers.add_parser(
        "inject",
        help="fault-injection campaign: accuracy vs bit error rate",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    from fpga_ft.commands._common import (MODEL_HELP, add_exactness_option, add_intake_options, add_progress_options,
                                          add_scheduler_option)

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP + "; or an fpga-ft project directory")
    add_intake_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--data", required=True, metavar="D.npz", help=".npz with arrays x (inputs) and y (labels)")
    rates = parser.add_mutually_exclusive_group(required=True)
    rates.add_argument("--ber", nargs="+", metavar="B",
                       help=f"bit error rate(s) in [0, 1] ({BER_UNITS}; latched / stuck-at: per bit per "
                            "scrub interval on the weights)")
    rates.add_argument("--upset-rate", nargs="+", metavar="R",
                       help="upset rate(s) per bit per second, converted to BERs with --inference-rate "
                            "(and --scrub-period for latched / stuck-at); adds wrong outputs per hour and FIT")
    parser.add_argument("--sites", default=",".join(SITES),
                        help=f"comma-separated fault sites (default: all = {','.join(SITES)})")
    parser.add_argument("--mode", default="transient", choices=MODES,
                        help="weight faults: transient (one inference), accumulate (new flips every inference "
                             "until a scrub; alias persistent), latched (upsets held for a scrub interval: one "
                             "device), stuck-at (bits forced to 0/1 per device) (default: transient)")
    parser.add_argument("--scrub-interval", type=int, default=None, metavar="N",
                        help=f"inferences between weight scrubs, the inferences of one device in latched / "
                             f"stuck-at mode (default {DEFAULT_SCRUB_INTERVAL}, or --scrub-period x "
                             "--inference-rate; 0 = once per pass over the data)")
    parser.add_argument("--inference-rate", type=float, default=None, metavar="HZ",
                        help="inferences per second (with --upset-rate)")
    parser.add_argument("--scrub-period", type=float, default=None, metavar="S",
                        help="seconds between scrubs (with --upset-rate; latched / stuck-at: per device)")
    parser.add_argument("--mbu", default=None, metavar="SIZE:PROB,...",
                        help="multi-bit upsets: a flip event flips SIZE adjacent bits of its word with "
                             "probability PROB (e.g. 2:0.1,3:0.02)")
    parser.add_argument("--target", type=float, default=None, metavar="ACC",
                        help="target accuracy (fraction, e.g. 0.95): latched / stuck-at report the "
                             "probability that a device falls below it")
    parser.add_argument("--device-plot", default=None, metavar="OUT.png",
                        help="latched / stuck-at: histogram of the device accuracies to OUT.png")
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
    add_progress_options(parser)
    parser.set_defaults(func=run)
    return parser


def _fault_models(args, sites) -> list:
    """The fault model of every BER or upset rate given (cheap checks, before TensorFlow)."""
    mode, mbu = args.mode, parse_mbu(args.mbu)
    if args.upset_rate is None:
        if args.inference_rate is not None or args.scrub_period is not None:
            raise FpgaFtError("--inference-rate and --scrub-period go with --upset-rate")
        interval = DEFAULT_SCRUB_INTERVAL if args.scrub_interval is None else args.scrub_interval
        return [FaultModel(ber=parse_ber(b), sites=sites, mode=mode, scrub_interval=interval, mbu=mbu)
                for b in args.ber]
    if args.inference_rate is None:
        raise FpgaFtError("--upset-rate needs --inference-rate (inferences per second)")
    models = []
    for text in args.upset_rate:
        try:
            value = float(text)
        except ValueError:
            raise FpgaFtError(f"--upset-rate must be a number (upsets per bit per second), got {text!r}") from None
        rate = UpsetRate(rate=value, inference_rate=args.inference_rate, scrub_period=args.scrub_period)
        models.append(FaultModel.from_upset_rate(rate, sites=sites, mode=mode, scrub_interval=args.scrub_interval,
                                                 mbu=mbu))
    return models


def run(args) -> dict:
    # cheap checks first: a bad BER or site fails before TensorFlow is loaded
    sites = parse_sites(args.sites)
    models = _fault_models(args, sites)
    template = models[0]
    if args.target is not None and not 0.0 <= args.target <= 1.0:
        raise FpgaFtError(f"--target must be an accuracy fraction in [0, 1], got {args.target}")
    for plot in (args.plot, args.device_plot):
        if plot and Path(plot).suffix.lower() not in (".png", ".pdf", ".svg", ".jpg", ".jpeg"):
            raise FpgaFtError(f"a plot needs an image file name (.png, .pdf, .svg), got {plot}")
    for name in ("repeats", "workers"):
        if getattr(args, name) < 1:
            raise FpgaFtError(f"--{name} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise FpgaFtError(f"--seed must be >= 0, got {args.seed}")

    from fpga_ft.commands._common import open_prepared, progress_of, use_scheduler
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
    report = sweep(subject, x, y, models, data_path=args.data, sites=sites, mode=template.mode,
                   scrub_interval=template.scrub_interval, target_accuracy=args.target, repeats=args.repeats,
                   seed=args.seed, workers=args.workers,
                   confidence=args.confidence, target_halfwidth=args.target_halfwidth,
                   max_repeats=args.max_repeats, checkpoint=checkpoint,
                   progress=progress_of(args))
    print(format_sweep_table(report.sweep), file=out)
    from fpga_ft.simulate.campaign.devices import format_device_table, plot_devices

    devices = format_device_table(report.sweep)
    if devices:
        print("devices (one fault pattern each; accuracy percentiles over devices):", file=out)
        print(devices, file=out)
    if args.device_plot:
        from fpga_ft.core.outputs import atomic_path

        if not devices:
            raise FpgaFtError("--device-plot needs --mode latched or stuck-at (device statistics)")
        with atomic_path(args.device_plot) as temp:
            plot_devices(report.sweep, temp, title=report.title)
        print(f"device plot written to {args.device_plot}", file=out)
    if args.plot:
        from fpga_ft.core.outputs import atomic_path
        from fpga_ft.simulate.campaign import plot_accuracy

        with atomic_path(args.plot) as temp:
            plot_accuracy(report.sweep, temp, title=report.title)
        print(f"plot written to {args.plot}", file=out)
    return report.to_dict()
