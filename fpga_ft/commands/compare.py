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

    parser = subparsers.add_parser(
        "compare",
        help="reference experiment: Base, TMR-CRT1..3, TMR-FULL, TMR-ARCH, TMR-ALG, TMR-CL at each BER",
        description=" ".join(__doc__.split("\n\n")[1].split()))
    from fpga_ft.commands._common import add_search_options

    add_search_options(parser, "compare")
    parser.add_argument("--validation-repeats", type=int, default=C.DEFAULT_VALIDATION_REPEATS, metavar="R",
                        help="passes of the independent campaign (other seed) that re-measures every chosen "
                             f"design for the table; 0: none (default {C.DEFAULT_VALIDATION_REPEATS})")
    parser.add_argument("--plot", default=None, metavar="OUT.png",
                        help="PNG: LUT overhead per scheme and BER, annotated with accuracy loss")
    parser.add_argument("--markdown", action="store_true", help="print the tables as Markdown")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.set_defaults(func=run)
    return parser


def check_args(args) -> tuple:
    """(BERs, accuracy-loss targets, fault sites, objective) of the arguments, checked before any work."""
    from fpga_ft.commands._common import check_search_args
    from fpga_ft.core.faults import parse_ber
    from fpga_ft.search import compare as C

    bers = [parse_ber(b) for b in args.ber]
    if any(b <= 0 for b in bers):
        raise FpgaFtError("--ber values must be > 0 (faults per bit per inference)")
    drops = C.drops_for(bers, args.max_accuracy_drop)
    if any(not 0.0 <= d <= 1.0 for d in drops):
        raise FpgaFtError(f"--max-accuracy-drop values must be fractions in [0, 1], got {drops}")
    if not args.max_latency_overhead >= 0:
        raise FpgaFtError(f"--max-latency-overhead must be >= 0, got {args.max_latency_overhead}")
    sites, objective = check_search_args(args, (("trials", 1), ("repeats", 1), ("workers", 1), ("seed", 0),
                                                ("epochs", 0), ("ranking_repeats", 1), ("validation_repeats", 0)))
    return bers, drops, sites, objective


def run(args) -> dict:
    from fpga_ft.commands._common import make_evaluator
    from fpga_ft.search import compare as C

    bers, drops, sites, objective = check_args(args)
    ev = make_evaluator(args)
    from fpga_ft.cli import note_resumable
    from fpga_ft.search.optimize import default_storage_url, display_url

    storage = display_url(args.storage or default_storage_url())
    note_resumable(f"completed TMR-CL trials in the Optuna studies in {storage}")
    log = (lambda message: None) if args.quiet else None
    result = C.run_compare(ev, bers, drops, max_latency_overhead=args.max_latency_overhead, trials=args.trials,
                           storage=args.storage, seed=args.seed, sites=sites, progress=not args.quiet, log=log,
                           validation_repeats=args.validation_repeats, objective=objective)
    write_outputs(result, args.model, args.data, args.train, plot=args.plot, board_name=ev.board.name)
    print(report_text(result, markdown=args.markdown))
    return result


def write_outputs(result: dict, model, data, train=None, *, plot=None, board_name: str = "") -> dict:
    """Add the command's inputs to :func:`~fpga_ft.search.compare.run_compare`'s result (in
    place: ``model``, ``data``, ``train``, ``plot``) and write the plot when asked."""
    from fpga_ft.search import compare as C

    result["model"] = str(model)
    result["data"] = str(data)
    result["train"] = str(train) if train else None
    if plot:
        from fpga_ft.core.outputs import atomic_path

        with atomic_path(plot) as temp:
            C.plot_compare(temp, result, title=f"{Path(model).name} on {board_name}: LUT overhead per "
                                               "scheme (annotated: accuracy loss, latency overhead)")
        result["plot"] = str(plot)
    return result


def report_text(result: dict, markdown: bool = False) -> str:
    """What the command prints: the tables, the verdict per BER, the time per scheme."""
    from fpga_ft.search import compare as C

    lines = [C.format_table(result, markdown=markdown), *verdict_lines(result)]
    parts = ", ".join(f"{k} {v:.0f} s" for k, v in result["seconds_by_scheme"].items())
    lines.append(f"{result['seconds']:.0f} s in total ({parts})")
    return "\n".join(lines)


def verdict_lines(result: dict) -> list[str]:
    """One line per BER: does TMR-CL meet the target, and is it strictly cheaper (LUT) than
    every other scheme that meets it (``fpga-ft demo``'s report shows them too)."""
    from fpga_ft.search.optimize import fmt_ber

    lines = []
    for v in result["verdict"]:
        if v["tmr_cl_meets_target"]:
            rel = ("strictly below every other scheme that meets it" if v["tmr_cl_lowest_lut_overhead"]
                   else "NOT below every other scheme that meets it")
            lines.append(f"BER {fmt_ber(v['ber'])}: TMR-CL meets the target with LUT overhead "
                         f"{v['tmr_cl_lut_overhead'] * 100:+.1f} %, {rel}"
                         + (f" (others meeting it: {', '.join(v['others_meeting_target'])})"
                            if v["others_meeting_target"] else " (no other scheme meets it)"))
        else:
            lines.append(f"BER {fmt_ber(v['ber'])}: TMR-CL does not meet the target"
                         + (f"; schemes that do: {', '.join(v['others_meeting_target'])}"
                            if v["others_meeting_target"] else "; no scheme does"))
    return lines
