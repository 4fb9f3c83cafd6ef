"""``fpga-ft optimize MODEL --data D.npz --ber B --board NAME --trials N``: cross-layer optimizer.

Searches per-layer protection (critical neurons from the vulnerability ranking, protected
MSBs) and, with --train, algorithm knobs (weight/activation bits, clip bound, pruning, with
fine-tuning) for the fewest LUTs (or the least of another --objective) that keep the accuracy under --ber (lower 95 % CI bound of a
fault-injection campaign) within --max-accuracy-drop of the clean unprotected design, the
latency within --max-latency-overhead of it, and the design on the board. The plan written
is the cheapest feasible trial that an independent campaign confirms (--confirm-repeats). The Optuna study
lives in --storage (default: an SQLite file in the fpga-ft cache); rerunning the command
continues it until it holds N complete trials, and several workers (also on several machines,
with a PostgreSQL --storage) can share one study.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.search.optimize.confirm import CONFIRM_PASS_PROBABILITY, DEFAULT_CONFIRM_REPEATS


def register(subparsers):
    parser = subparsers.add_parser(
        "optimize",
        help="cross-layer optimizer: fewest LUTs meeting an accuracy-under-faults target (Optuna)",
        description=" ".join(__doc__.split("\n\n")[1].split()))
    from fpga_ft.commands._common import add_search_options

    def study_options(parser):
        parser.add_argument("--study", default=None, metavar="NAME",
                            help="study name (default: from model fingerprint, BER, board, constraints, settings)")
        parser.add_argument("--multi-objective", action="store_true",
                            help="NSGA-II on (LUT, accuracy under BER) and report the Pareto front")

    add_search_options(parser, "optimize", between=study_options)
    parser.add_argument("--no-seed-trials", action="store_true",
                        help="do not enqueue the default seed candidates (TMR-CRT1..3, most vulnerable neurons, ...)")
    parser.add_argument("--confirm-repeats", type=int, default=DEFAULT_CONFIRM_REPEATS, metavar="R",
                        help="re-measure the feasible trials cheapest first with an independent campaign of R passes "
                             "(another seed) and write the first that predicts a further independent campaign to "
                             f"meet the target with probability >= {CONFIRM_PASS_PROBABILITY:g}: the search's "
                             "cheapest feasible trial is the one most likely to have met it by luck; 0: write the "
                             f"search's best (default {DEFAULT_CONFIRM_REPEATS}; single-objective studies)")
    parser.add_argument("--plan-out", default=None, metavar="PLAN.yml",
                        help="write the chosen plan (and, with algorithm knobs, PLAN.model.h5: the retrained model)")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="PNG: LUT vs accuracy under BER, Pareto front")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def check_args(args):
    """(BER, fault sites, objective) of the arguments, checked before any work."""
    from fpga_ft.commands._common import check_search_args
    from fpga_ft.core.faults import parse_ber

    ber = parse_ber(args.ber)
    if ber <= 0:
        raise FpgaFtError(f"--ber must be > 0 (faults per bit per inference), got {args.ber}")
    if not 0.0 <= args.max_accuracy_drop <= 1.0:
        raise FpgaFtError(f"--max-accuracy-drop must be a fraction in [0, 1], got {args.max_accuracy_drop}")
    if not args.max_latency_overhead >= 0.0:
        raise FpgaFtError(f"--max-latency-overhead must be >= 0 (fraction), got {args.max_latency_overhead}")
    sites, objective = check_search_args(args, (("trials", 0), ("repeats", 1), ("workers", 1), ("seed", 0),
                                                ("epochs", 0), ("ranking_repeats", 1), ("confirm_repeats", 0)))
    return ber, sites, objective


def run(args) -> dict:
    from fpga_ft.cli import note_resumable
    from fpga_ft.commands._common import make_evaluator
    from fpga_ft.search import optimize as O

    ber, sites, objective = check_args(args)
    ev = make_evaluator(args)
    target = O.Target(ber=ber, max_accuracy_drop=args.max_accuracy_drop,
                      max_latency_overhead=args.max_latency_overhead, sites=sites)
    storage = args.storage or O.default_storage_url()
    note_resumable(f"completed trials in the Optuna study in {O.display_url(storage)}")
    result = O.optimize(ev, target, trials=args.trials, storage=storage, study_name=args.study,
                        multi_objective=args.multi_objective, seed=args.seed, progress=not args.quiet,
                        use_default_seeds=not args.no_seed_trials, objective=objective)
    confirmation = confirm_choice(result, ev, target, args.confirm_repeats, objective)
    out = write_outputs(result, storage, plan_out=args.plan_out, plot=args.plot, confirmation=confirmation)
    print(summary(out))
    return out


def confirm_choice(result, ev, target, repeats: int, objective=None):
    """The confirmation of a single-objective study's choice (None: ``repeats`` 0, a
    multi-objective study or no feasible trial); what it tried goes to stderr."""
    from fpga_ft.search.optimize.confirm import confirm_cheapest, describe

    if not repeats or result.multi_objective or result.best is None:
        return None
    confirmation = confirm_cheapest(result.entries, ev, target, repeats, objective=objective)
    for line in describe(confirmation, objective):
        print(line, file=sys.stderr)
    return confirmation


def write_outputs(result, storage: str, plan_out=None, plot=None, confirmation=None) -> dict:
    """Write the chosen plan (and its retrained model) to ``plan_out`` and the Pareto plot to
    ``plot`` when given; returns the command's JSON: the result's ``to_dict()`` with the
    dashboard command, the files written, the ``confirmation`` (None: none was run) and
    ``chosen`` (the trial whose plan is written: the confirmed one, else the search's best)."""
    from fpga_ft.core.outputs import atomic_path
    from fpga_ft.search import optimize as O
    from fpga_ft.search.optimize.results import public_entry

    out = result.to_dict()
    out["dashboard"] = f"optuna-dashboard {O.display_url(storage)}"
    out["plan_out"] = out["model_out"] = out["plot"] = None
    best = result.best
    out["confirmation"] = None if confirmation is None else confirmation.to_dict()
    if confirmation is not None and confirmation.chosen is not None:
        best = confirmation.chosen
    elif confirmation is not None:
        print(f"warning: none of the {len(confirmation.tried)} cheapest feasible trials was confirmed by an "
              "independent campaign; the search's best is the chosen plan", file=sys.stderr)
    out["chosen"] = public_entry(best)
    if plan_out:
        if best is None:
            print("warning: no feasible trial yet; --plan-out not written", file=sys.stderr)
        else:
            from fpga_ft.core.plan import ProtectionPlan

            ProtectionPlan.from_dict(best["plan"]).save(plan_out)
            out["plan_out"] = str(plan_out)
            if best.get("knobs", {}).get("layers") and best.get("model_file"):
                model_out = Path(plan_out).with_suffix(".model.h5")
                with atomic_path(model_out) as temp:
                    shutil.copyfile(best["model_file"], temp)
                out["model_out"] = str(model_out)
    if plot:
        with atomic_path(plot) as temp:
            O.plot_pareto(temp, result)
        out["plot"] = str(plot)
    return out


def _pct(value, digits=2) -> str:
    return "-" if value is None else f"{value * 100:.{digits}f} %"


def describe_entry(entry: dict) -> str:
    spec = entry.get("spec") or {}
    layers = []
    for name, s in spec.items():
        parts = []
        if s.get("critical"):
            parts.append(f"{s['critical']} critical ({s['critical_fraction'] * 100:.0f} %)")
        if s.get("msbs"):
            parts.append(f"{s['msbs']} MSBs")
        knobs = (entry.get("knobs") or {}).get("layers", {}).get(name)
        if knobs:
            parts.append(", ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in knobs.items()))
        layers.append(f"{name}: {'; '.join(parts) if parts else 'unprotected'}")
    return " | ".join(layers)


def summary(out: dict) -> str:
    from fpga_ft.search.optimize import fmt_ber

    lines = []
    base = out["baseline"]
    target = out.get("target") or {}
    lines.append(f"study {out['study']} in {out['storage']}")
    lines.append(f"target: BER {fmt_ber(target.get('ber'))} (faults per bit per inference), accuracy CI low >= clean "
                 f"- {_pct(target.get('max_accuracy_drop'))}, latency <= "
                 f"+{_pct(target.get('max_latency_overhead'), 0)}, "
                 "fits the board")
    if out["objective"][0] != "LUT (minimise)":
        lines.append(f"objective: {out['objective'][0]}")
    lines.append(f"baseline (unprotected): {base['LUT']:,} LUT, {base['FF']:,} FF, {base['DSP']:,} DSP, "
                 f"{base['latency_cycles']} cycles ({base.get('source', 'estimate')}); clean accuracy "
                 f"{_pct(base['clean_accuracy'])}, under faults {_pct(base['accuracy']['mean'])}")
    trials = out["trials"]
    lines.append(f"trials: {trials['complete']} complete of {trials['requested']} requested "
                 f"({trials['count']} in the study, {trials['feasible']} feasible, {trials['run_here']} run now); "
                 f"{out['seconds_per_trial'] or 0:.1f} s per trial")
    best = out["best"]
    if best:
        lines.append(f"best: trial {best['number']}: {best['LUT']:,} LUT ({best['lut_overhead'] * 100:+.1f} %), "
                     f"{best['FF']:,} FF, {best['DSP']:,} DSP, {best['latency_cycles']} cycles "
                     f"({best['latency_overhead'] * 100:+.1f} %), accuracy {_pct(best['accuracy']['mean'])} "
                     f"[{_pct(best['accuracy']['ci_low'])}, {_pct(best['accuracy']['ci_high'])}]")
        lines.append(f"  {describe_entry(best)}")
        confirmation, chosen = out.get("confirmation"), out.get("chosen")
        if confirmation and chosen:
            mark = {t["number"]: t for t in confirmation["tried"]}.get(chosen["number"])
            lines.append(f"chosen: trial {chosen['number']}: {chosen['LUT']:,} LUT "
                         f"({chosen['lut_overhead'] * 100:+.1f} %), "
                         + (f"confirmed by an independent campaign ({confirmation['repeats']} passes, seed "
                            f"{confirmation['seed']}): accuracy {_pct(mark['mean'])}, CI low {_pct(mark['ci_low'])}"
                            if mark and mark["confirmed"] else
                            f"not confirmed ({len(confirmation['tried'])} trials tried): the search's best"))
            if chosen["number"] != best["number"]:
                lines.append(f"  {describe_entry(chosen)}")
    else:
        closest = out.get("closest")
        lines.append("best: no feasible trial" + (
            f"; closest: trial {closest['number']}, {closest['LUT']:,} LUT, accuracy CI low "
            f"{_pct(closest['accuracy']['ci_low'])}, latency {closest['latency_overhead'] * 100:+.1f} %"
            if closest else ""))
    if out["multi_objective"] or len(out["pareto"]) > 1:
        lines.append(f"Pareto front (feasible, {out['objective'][0].replace(' (minimise)', '')} vs accuracy): "
                     f"{len(out['pareto'])} designs")
        for e in out["pareto"][:10]:
            lines.append(f"  trial {e['number']:>4}: {e['LUT']:>9,} LUT, accuracy {_pct(e['accuracy']['mean'])}")
    if out.get("plan_out"):
        lines.append(f"plan written to {out['plan_out']}" + (f" (model: {out['model_out']})" if out.get("model_out")
                                                             else ""))
    if out.get("plot"):
        lines.append(f"plot written to {out['plot']}")
    lines.append(f"browse: {out['dashboard']}")
    return "\n".join(lines)
