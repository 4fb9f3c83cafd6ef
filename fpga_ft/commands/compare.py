"""``fpga-ft compare MODEL --data D.npz --ber 1e-4 2e-4 --board NAME``: the reference experiment.

One row per protection scheme and BER: Base (unprotected), TMR-CRT1/2/3 (top 1/2/3 bits of
every product and partial sum of every layer TMR'd), TMR-FULL (every neuron triplicated),
TMR-ARCH (the least uniform fraction of critical neurons that meets the accuracy target),
TMR-ALG (coarser quantization and pruning, fine-tuned, plus the least uniform MSB protection
that meets the target; needs --train) and TMR-CL (the cross-layer optimizer). Columns:
accuracy under faults with its 95 % CI, accuracy loss vs the clean model, LUT, FF, DSP, LUT
overhead vs Base, latency overhead, and whether the scheme meets the target (accuracy CI low
>= clean - allowed loss, latency within --max-latency-overhead, fits the board).
"""

from __future__ import annotations

from pathlib import Path

from fpga_ft.core.errors import FpgaFtError


def register(subparsers):
    from fpga_ft.search import compare as C
    from fpga_ft.search import optimize as O
    from fpga_ft.search.algorithm import DEFAULT_EPOCHS

    parser = subparsers.add_parser(
        "compare",
        help="reference experiment: Base, TMR-CRT1..3, TMR-FULL, TMR-ARCH, TMR-ALG, TMR-CL at each BER",
        description=" ".join(__doc__.split("\n\n")[1].split()))
    from fpga_ft.commands._common import MODEL_HELP, add_exactness_option, add_intake_options

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP + " (--board wins over its Part/ClockPeriod/Backend)")
    add_intake_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--data", required=True, metavar="D.npz", help="test set (.npz with x, y) for the campaigns")
    parser.add_argument("--train", default=None, metavar="T.npz",
                        help="training set: enables TMR-ALG and the optimizer's algorithm knobs")
    parser.add_argument("--ber", required=True, nargs="+", metavar="B",
                        help="bit error rate(s), faults per bit per inference (e.g. 1e-4 2e-4)")
    parser.add_argument("--max-accuracy-drop", type=float, nargs="+", default=None, metavar="F",
                        help="allowed accuracy loss per BER, fraction: one value for all or one per BER "
                             "(default 0.03 for the first BER, 0.05 for the others)")
    parser.add_argument("--max-latency-overhead", type=float, default=0.10, metavar="F",
                        help="allowed latency increase vs Base, fraction (default 0.10)")
    parser.add_argument("--board", required=True, metavar="NAME",
                        help="target board (see `fpga-ft boards`); its part, clock and backend win over a config "
                             "YAML's Part/ClockPeriod/Backend")
    parser.add_argument("--trials", type=int, default=C.DEFAULT_TRIALS, metavar="N",
                        help=f"optimizer trials per BER for TMR-CL (default {C.DEFAULT_TRIALS})")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="Optuna storage of the TMR-CL studies (default: SQLite file in the fpga-ft cache)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    parser.add_argument("--repeats", type=int, default=O.DEFAULT_REPEATS, metavar="R",
                        help=f"campaign passes over the test set per design (default {O.DEFAULT_REPEATS})")
    parser.add_argument("--workers", type=int, default=1, metavar="W", help="campaign worker processes (default 1)")
    parser.add_argument("--sites", default="all", metavar="S[,S]", help="fault sites (default all)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E",
                        help=f"fine-tuning epochs of algorithm knobs (default {DEFAULT_EPOCHS})")
    parser.add_argument("--ranking", default=O.DEFAULT_RANKING, metavar="METHOD",
                        help=f"vulnerability method ranking the neurons (default {O.DEFAULT_RANKING})")
    parser.add_argument("--ranking-repeats", type=int, default=O.DEFAULT_RANKING_REPEATS, metavar="R",
                        help=f"passes per neuron of the injection ranking (default {O.DEFAULT_RANKING_REPEATS})")
    parser.add_argument("--validation-repeats", type=int, default=C.DEFAULT_VALIDATION_REPEATS, metavar="R",
                        help="passes of the independent campaign (other seed) that re-measures every chosen "
                             f"design for the table; 0: none (default {C.DEFAULT_VALIDATION_REPEATS})")
    parser.add_argument("--plot", default=None, metavar="OUT.png",
                        help="PNG: LUT overhead per scheme and BER, annotated with accuracy loss")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
    return parser


def run(args) -> dict:
    from fpga_ft.commands.optimize import make_evaluator
    from fpga_ft.core.faults import parse_ber, parse_sites
    from fpga_ft.search import compare as C
    from fpga_ft.search.optimize import fmt_ber

    bers = [parse_ber(b) for b in args.ber]
    if any(b <= 0 for b in bers):
        raise FpgaFtError("--ber values must be > 0 (faults per bit per inference)")
    drops = C.drops_for(bers, args.max_accuracy_drop)
    if any(not 0.0 <= d <= 1.0 for d in drops):
        raise FpgaFtError(f"--max-accuracy-drop values must be fractions in [0, 1], got {drops}")
    if not args.max_latency_overhead >= 0:
        raise FpgaFtError(f"--max-latency-overhead must be >= 0, got {args.max_latency_overhead}")
    for name, low in (("trials", 1), ("repeats", 1), ("workers", 1), ("seed", 0), ("epochs", 0),
                      ("ranking_repeats", 1), ("validation_repeats", 0)):
        if getattr(args, name) < low:
            raise FpgaFtError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise FpgaFtError(f"--plot needs an image file name (.png, .pdf, .svg), got {args.plot}")
    sites = parse_sites(args.sites)
    if args.storage:
        from fpga_ft.commands.optimize import check_storage_url

        check_storage_url(args.storage)
    ev = make_evaluator(args)
    from fpga_ft.cli import note_resumable
    from fpga_ft.search.optimize import default_storage_url, display_url

    storage = display_url(args.storage or default_storage_url())
    note_resumable(f"completed TMR-CL trials in the Optuna studies in {storage}")
    log = (lambda message: None) if args.quiet else None
    result = C.run_compare(ev, bers, drops, max_latency_overhead=args.max_latency_overhead, trials=args.trials,
                           storage=args.storage, seed=args.seed, sites=sites, progress=not args.quiet, log=log,
                           validation_repeats=args.validation_repeats)
    result["model"] = str(args.model)
    result["data"] = str(args.data)
    result["train"] = str(args.train) if args.train else None
    if args.plot:
        from fpga_ft.core.outputs import atomic_path

        with atomic_path(args.plot) as temp:
            C.plot_compare(temp, result, title=f"{Path(args.model).name} on {ev.board.name}: LUT overhead per "
                                               "scheme (annotated: accuracy loss, latency overhead)")
        result["plot"] = str(args.plot)
    print(C.format_table(result, markdown=args.markdown))
    for v in result["verdict"]:
        if v["tmr_cl_meets_target"]:
            rel = ("strictly below every other scheme that meets it" if v["tmr_cl_lowest_lut_overhead"]
                   else "NOT below every other scheme that meets it")
            print(f"BER {fmt_ber(v['ber'])}: TMR-CL meets the target with LUT overhead "
                  f"{v['tmr_cl_lut_overhead'] * 100:+.1f} %, {rel}"
                  + (f" (others meeting it: {', '.join(v['others_meeting_target'])})" if v["others_meeting_target"]
                     else " (no other scheme meets it)"))
        else:
            print(f"BER {fmt_ber(v['ber'])}: TMR-CL does not meet the target"
                  + (f"; schemes that do: {', '.join(v['others_meeting_target'])}" if v["others_meeting_target"]
                     else "; no scheme does"))
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds_by_scheme"].items())
    print(f"{result['seconds']:.0f} s in total ({parts})")
    return result
