"""``fpga-ft optimize MODEL --data D.npz --ber B --board NAME --trials N``: cross-layer optimizer.

Searches per-layer protection (critical neurons from the vulnerability ranking, protected
MSBs) and, with --train, algorithm knobs (weight/activation bits, clip bound, pruning, with
fine-tuning) for the fewest LUTs that keep the accuracy under --ber (lower 95 % CI bound of a
fault-injection campaign) within --max-accuracy-drop of the clean unprotected design, the
latency within --max-latency-overhead of it, and the design on the board. The Optuna study
lives in --storage (default: an SQLite file in the fpga-ft cache); rerunning the command
continues it until it holds N complete trials, and several workers (also on several machines,
with a PostgreSQL --storage) can share one study.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError


def register(subparsers):
    from fpga_ft.search import optimize as O
    from fpga_ft.search.algorithm import DEFAULT_EPOCHS

    parser = subparsers.add_parser(
        "optimize",
        help="cross-layer optimizer: fewest LUTs meeting an accuracy-under-faults target (Optuna)",
        description=" ".join(__doc__.split("\n\n")[1].split()))
    from fpga_ft.commands._common import MODEL_HELP, add_exactness_option, add_intake_options

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP + " (--board wins over its Part/ClockPeriod/Backend)")
    add_intake_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--data", required=True, metavar="D.npz", help="test set (.npz with x, y) for the campaigns")
    parser.add_argument("--train", default=None, metavar="T.npz",
                        help="training set: enables the algorithm knobs (fine-tuning) and feeds the ranking")
    parser.add_argument("--ber", required=True, metavar="B",
                        help="bit error rate of the target, faults per bit per inference")
    parser.add_argument("--board", required=True, metavar="NAME",
                        help="target board (see `fpga-ft boards`); its part, clock and backend win over a config "
                             "YAML's Part/ClockPeriod/Backend")
    parser.add_argument("--max-accuracy-drop", type=float, default=0.01, metavar="F",
                        help="allowed accuracy loss vs the clean unprotected design, fraction (default 0.01)")
    parser.add_argument("--max-latency-overhead", type=float, default=0.10, metavar="F",
                        help="allowed latency increase vs the unprotected design, fraction (default 0.10)")
    parser.add_argument("--trials", type=int, required=True, metavar="N",
                        help="complete trials the study should hold (trials of earlier runs count)")
    parser.add_argument("--storage", default=None, metavar="URL",
                        help="Optuna storage, an SQLAlchemy URL (default: sqlite:///<fpga-ft cache>/optuna/"
                             f"{O.STORAGE_FILE}); postgresql://USER:PASS@HOST/DB for several machines")
    parser.add_argument("--study", default=None, metavar="NAME",
                        help="study name (default: from model fingerprint, BER, board, constraints, settings)")
    parser.add_argument("--multi-objective", action="store_true",
                        help="NSGA-II on (LUT, accuracy under BER) and report the Pareto front")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="seed of the sampler, the campaigns and the fine-tuning (default 0)")
    parser.add_argument("--repeats", type=int, default=O.DEFAULT_REPEATS, metavar="R",
                        help=f"campaign passes over the test set per candidate (default {O.DEFAULT_REPEATS})")
    parser.add_argument("--workers", type=int, default=1, metavar="W",
                        help="campaign worker processes (default 1)")
    parser.add_argument("--sites", default="all", metavar="S[,S]",
                        help="fault sites: weights, activations, products, accumulators or all (default all)")
    parser.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, metavar="E",
                        help=f"fine-tuning epochs of algorithm-knob candidates (default {DEFAULT_EPOCHS})")
    parser.add_argument("--ranking", default=O.DEFAULT_RANKING, metavar="METHOD",
                        help=f"vulnerability method that ranks the neurons (default {O.DEFAULT_RANKING}; see "
                             "`fpga-ft analyze --help`)")
    parser.add_argument("--ranking-repeats", type=int, default=O.DEFAULT_RANKING_REPEATS, metavar="R",
                        help=f"passes per neuron of the injection ranking (default {O.DEFAULT_RANKING_REPEATS})")
    parser.add_argument("--no-seed-trials", action="store_true",
                        help="do not enqueue the default seed candidates (TMR-CRT1..3, most vulnerable neurons, ...)")
    parser.add_argument("--plan-out", default=None, metavar="PLAN.yml",
                        help="write the best plan (and, with algorithm knobs, PLAN.model.h5: the retrained model)")
    parser.add_argument("--plot", default=None, metavar="OUT.png", help="PNG: LUT vs accuracy under BER, Pareto front")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(func=run)
    return parser


def check_args(args):
    from fpga_ft.core.faults import parse_ber, parse_sites

    ber = parse_ber(args.ber)
    if ber <= 0:
        raise FpgaFtError(f"--ber must be > 0 (faults per bit per inference), got {args.ber}")
    if not 0.0 <= args.max_accuracy_drop <= 1.0:
        raise FpgaFtError(f"--max-accuracy-drop must be a fraction in [0, 1], got {args.max_accuracy_drop}")
    if not args.max_latency_overhead >= 0.0:
        raise FpgaFtError(f"--max-latency-overhead must be >= 0 (fraction), got {args.max_latency_overhead}")
    for name, low in (("trials", 0), ("repeats", 1), ("workers", 1), ("seed", 0), ("epochs", 0),
                      ("ranking_repeats", 1)):
        if getattr(args, name) < low:
            raise FpgaFtError(f"--{name.replace('_', '-')} must be >= {low}, got {getattr(args, name)}")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise FpgaFtError(f"--plot needs an image file name (.png, .pdf, .svg), got {args.plot}")
    if args.storage:
        check_storage_url(args.storage)
    return ber, parse_sites(args.sites)


def check_storage_url(url: str) -> None:
    """One-line error for a --storage that is not an SQLAlchemy URL (before any work)."""
    try:
        from sqlalchemy.engine import make_url

        make_url(url)
    except Exception:
        raise FpgaFtError(f"--storage must be an SQLAlchemy URL (sqlite:///FILE, postgresql://USER@HOST/DB), "
                          f"got {url!r}") from None


def make_evaluator(args, progress: bool = False):
    from fpga_ft.commands._common import load_model_and_data
    from fpga_ft.core.boards import get_board
    from fpga_ft.measure import vulnerability as V
    from fpga_ft.search.optimize import Evaluator

    if args.ranking not in V.METHODS:
        raise FpgaFtError(f"unknown --ranking method '{args.ranking}' (known: {', '.join(V.METHODS)})")
    board = get_board(args.board)
    model, x, y, x_train, y_train, prepared = load_model_and_data(
        args.model, args.data, args.train, weights=getattr(args, "weights", None),
        input_precision=getattr(args, "input_precision", None), with_prepared=True, args=args)
    return Evaluator(model, x, y, board=board, x_train=x_train, y_train=y_train, repeats=args.repeats,
                     seed=args.seed, workers=args.workers, epochs=args.epochs, ranking=args.ranking,
                     ranking_repeats=args.ranking_repeats, model_path=str(args.model), progress=progress,
                     hls_config=prepared.hls_config)


def run(args) -> dict:
    from fpga_ft.cli import note_resumable
    from fpga_ft.core.outputs import atomic_path
    from fpga_ft.search import optimize as O

    ber, sites = check_args(args)
    ev = make_evaluator(args)
    target = O.Target(ber=ber, max_accuracy_drop=args.max_accuracy_drop,
                      max_latency_overhead=args.max_latency_overhead, sites=sites)
    storage = args.storage or O.default_storage_url()
    note_resumable(f"completed trials in the Optuna study in {O.display_url(storage)}")
    result = O.optimize(ev, target, trials=args.trials, storage=storage, study_name=args.study,
                        multi_objective=args.multi_objective, seed=args.seed, progress=not args.quiet,
                        use_default_seeds=not args.no_seed_trials)
    out = result.to_dict()
    out["dashboard"] = f"optuna-dashboard {O.display_url(storage)}"
    out["plan_out"] = out["model_out"] = out["plot"] = None
    best = result.best
    if args.plan_out:
        if best is None:
            print("warning: no feasible trial yet; --plan-out not written", file=sys.stderr)
        else:
            from fpga_ft.core.plan import ProtectionPlan

            ProtectionPlan.from_dict(best["plan"]).save(args.plan_out)
            out["plan_out"] = str(args.plan_out)
            if best.get("knobs", {}).get("layers") and best.get("model_file"):
                model_out = Path(args.plan_out).with_suffix(".model.h5")
                with atomic_path(model_out) as temp:
                    shutil.copyfile(best["model_file"], temp)
                out["model_out"] = str(model_out)
    if args.plot:
        with atomic_path(args.plot) as temp:
            O.plot_pareto(temp, result)
        out["plot"] = str(args.plot)
    print(summary(out))
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
    else:
        closest = out.get("closest")
        lines.append("best: no feasible trial" + (
            f"; closest: trial {closest['number']}, {closest['LUT']:,} LUT, accuracy CI low "
            f"{_pct(closest['accuracy']['ci_low'])}, latency {closest['latency_overhead'] * 100:+.1f} %"
            if closest else ""))
    if out["multi_objective"] or len(out["pareto"]) > 1:
        lines.append(f"Pareto front (feasible, LUT vs accuracy): {len(out['pareto'])} designs")
        for e in out["pareto"][:10]:
            lines.append(f"  trial {e['number']:>4}: {e['LUT']:>9,} LUT, accuracy {_pct(e['accuracy']['mean'])}")
    if out.get("plan_out"):
        lines.append(f"plan written to {out['plan_out']}" + (f" (model: {out['model_out']})" if out.get("model_out")
                                                             else ""))
    if out.get("plot"):
        lines.append(f"plot written to {out['plot']}")
    lines.append(f"browse: {out['dashboard']}")
    return "\n".join(lines)
