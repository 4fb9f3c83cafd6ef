"""``fpga-ft analyze MODEL --data D.npz``: which neurons and which bits matter under faults.

Scores every output neuron (Dense) / output channel (Conv) of the protectable layers by
one or all vulnerability methods: ``injection`` (the oracle: bit-exact C-simulation fault
injection confined to one neuron, accuracy loss at --ber on its products and partial sums),
and the fast TensorFlow methods ``gradient``, ``gradient_range``, ``taylor``, ``taylor_act``,
``hessian`` (Hutchinson, sampled until its ranking is stable), ``hessian_eig`` (FKeras's
Hessian eigenvector ranking) and ``activation``. Then measures the accuracy loss when only
one bit position of the product / partial-sum words of a layer is exposed, for every bit,
and finds the knee (lowest bit whose loss exceeds 10 % of the layer's largest loss). With
the oracle and fast methods both run, reports each fast method's Spearman rank correlation
with the oracle and the share of the oracle's loss in its top 10 % of neurons, next to the
oracle's own run-to-run agreement (a second run with another seed: the noise ceiling).
``--plan-out`` writes a protection plan from the primary ranking.

Sampling: by default every loss estimate (a neuron of the oracle, a bit position) is
sampled adaptively, in batches of random test images, until its 95 % interval is tight
enough for its use (``--tolerance``, ``--bit-tolerance``; see ``docs/vulnerability.md``);
``--repeats`` / ``--bit-repeats`` give the fixed number of passes instead.
``--budget-seconds S`` plans the work to fit S seconds: coarse estimates of every neuron and
bit first, refined while time remains; what could not be done is reported. Progress bars
(stderr, with ETA) show on a terminal unless ``--json -`` or ``--quiet``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from fpga_ft.commands._common import add_progress_options, positive_int, progress_of
from fpga_ft.core.errors import FpgaFtError


def register(subparsers):
    from fpga_ft.measure import vulnerability as V

    parser = subparsers.add_parser(
        "analyze",
        help="vulnerability analysis: neuron and bit-position rankings, checked against fault injection",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    from fpga_ft.commands._common import MODEL_HELP, add_exactness_option, add_intake_options, add_scheduler_option

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    add_intake_options(parser)
    add_exactness_option(parser)
    parser.add_argument("--data", required=True, metavar="D.npz",
                        help="test set (.npz with x, y): fault injection and, without --train, the fast methods")
    parser.add_argument("--train", default=None, metavar="T.npz",
                        help="data for the gradient/Taylor/Hessian/activation methods (default: --data)")
    parser.add_argument("--method", default="injection", choices=[*V.method_names(), "all"],
                        help="vulnerability method (default injection; 'all' runs every method and validates "
                             "the fast ones against injection)")
    parser.add_argument("--ber", type=float, default=V.DEFAULT_BER, metavar="B",
                        help=f"injection BER on one neuron's product and partial-sum words, faults per bit per "
                             f"inference (default {V.DEFAULT_BER:g})")
    parser.add_argument("--repeats", type=int, default=None, metavar="R",
                        help="injection: exactly R passes over the test set per neuron (the fixed design); default: "
                             "adaptive sampling, see --tolerance")
    parser.add_argument("--max-repeats", type=int, default=V.DEFAULT_REPEATS, metavar="R",
                        help=f"injection, adaptive: at most R passes per neuron (default {V.DEFAULT_REPEATS})")
    parser.add_argument("--tolerance", default=_tol_text(V.DEFAULT_TOLERANCE), metavar="REL[,ABS]",
                        help="injection, adaptive: a neuron's loss is sampled until its interval half-width is <= "
                             "max(ABS, REL x the layer's largest neuron loss) or its interval overlaps no other "
                             f"neuron's of the layer (default {_tol_text(V.DEFAULT_TOLERANCE)})")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    parser.add_argument("--bit-ber", type=float, default=V.DEFAULT_BIT_BER, metavar="B",
                        help="bit analysis: probability that the one exposed bit of a word flips, per word per "
                             f"inference (default {V.DEFAULT_BIT_BER:g})")
    parser.add_argument("--bit-repeats", type=int, default=None, metavar="R",
                        help="bit analysis: exactly R passes over the test set per bit position; default: adaptive, "
                             "see --bit-tolerance")
    parser.add_argument("--bit-max-repeats", type=int, default=V.DEFAULT_BIT_REPEATS, metavar="R",
                        help=f"bit analysis, adaptive: at most R passes per bit position (default "
                             f"{V.DEFAULT_BIT_REPEATS})")
    parser.add_argument("--bit-tolerance", default=_tol_text(V.DEFAULT_BIT_TOLERANCE), metavar="REL[,ABS]",
                        help="bit analysis, adaptive: a bit's loss is sampled until its interval half-width is <= "
                             "max(ABS, REL x the largest bit loss of its layer and site) (default "
                             f"{_tol_text(V.DEFAULT_BIT_TOLERANCE)})")
    parser.add_argument("--confidence", type=float, default=V.DEFAULT_CONFIDENCE, metavar="C",
                        help=f"confidence level of the loss intervals (default {V.DEFAULT_CONFIDENCE:g})")
    parser.add_argument("--budget-seconds", type=float, default=None, metavar="S",
                        help="fit the analysis in about S seconds from the start of the command: coarse estimates "
                             "of every neuron and bit first, refined while time remains; what could not be done "
                             "is reported (needs adaptive sampling: no --repeats/--bit-repeats)")
    parser.add_argument("--no-bits", action="store_true", help="skip the bit-position analysis")
    parser.add_argument("--knee-threshold", type=float, default=V.KNEE_THRESHOLD, metavar="F",
                        help=f"knee: lowest bit whose loss exceeds F x the layer's largest bit loss "
                             f"(default {V.KNEE_THRESHOLD:g})")
    parser.add_argument("--hutchinson-samples", type=int, default=V.DEFAULT_HUTCHINSON_SAMPLES, metavar="N",
                        help=f"hessian: at most N Rademacher vectors, each on one mini-batch (default "
                             f"{V.DEFAULT_HUTCHINSON_SAMPLES}); it stops earlier once its ranking is stable")
    parser.add_argument("--hessian-stability", type=float, default=V.DEFAULT_HESSIAN_STABILITY, metavar="S",
                        help="hessian: stop when the predicted seed-to-seed Spearman of every layer's ranking "
                             f"reaches S (default {V.DEFAULT_HESSIAN_STABILITY:g})")
    parser.add_argument("--eigenvectors", type=int, default=V.DEFAULT_EIGENVECTORS, metavar="K",
                        help=f"hessian_eig: top-K Hessian eigenvectors per layer (default {V.DEFAULT_EIGENVECTORS})")
    parser.add_argument("--no-ceiling", action="store_true",
                        help="with the oracle and fast methods: skip the second oracle run (another seed) that "
                             "measures the oracle's own run-to-run Spearman, the noise ceiling of the validation")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="threads measuring the injection and bit estimates at once, each with its "
                             "own copy of the csim library (default: the CPUs this process may use); "
                             "results do not depend on it")
    add_scheduler_option(parser)
    parser.add_argument("--batch-size", type=int, default=V.DEFAULT_BATCH_SIZE, metavar="N",
                        help=f"TensorFlow batch size (default {V.DEFAULT_BATCH_SIZE})")
    parser.add_argument("--plot", default=None, metavar="OUT.png",
                        help="PNG: neuron score heat maps and bit-position loss bars per layer")
    parser.add_argument("--plan-out", default=None, metavar="PLAN.yml",
                        help="write a protection plan from the primary ranking")
    parser.add_argument("--critical-fraction", type=float, default=0.1, metavar="F",
                        help="--plan-out: share of neurons made critical (full TMR), default 0.1")
    parser.add_argument("--budget", choices=["layer", "model"], default="layer",
                        help="--plan-out: ceil(F x n_out) per layer (default) or ceil(F x all neurons) "
                             "over the whole model")
    parser.add_argument("--msbs", default="0", metavar="K|knee",
                        help="--plan-out: protected MSBs per word, an integer or 'knee' (W - knee, from the "
                             "bit analysis); default 0")
    add_progress_options(parser)
    parser.set_defaults(func=run)
    return parser


def _tol_text(tol) -> str:
    return f"{tol[0]:g},{tol[1]:g}"


def _parse_tolerance(text: str, option: str, default: tuple) -> tuple[float, float]:
    parts = [t.strip() for t in str(text).split(",")]
    try:
        values = [float(t) for t in parts if t]
    except ValueError:
        raise FpgaFtError(f"{option} must be REL or REL,ABS (fractions), got {text!r}") from None
    if not 1 <= len(values) <= 2:
        raise FpgaFtError(f"{option} must be REL or REL,ABS (fractions), got {text!r}")
    rel, abs_ = values[0], values[1] if len(values) == 2 else default[1]
    if not (0.0 <= rel < 1.0 and 0.0 <= abs_ < 1.0) or (rel == 0 and abs_ == 0):
        raise FpgaFtError(f"{option}: REL and ABS must be fractions in [0, 1), not both 0, got {text!r}")
    return rel, abs_


def _check(args):
    from fpga_ft.measure import vulnerability as V

    if not 0.0 < args.ber <= 1.0:
        raise FpgaFtError(f"--ber must be in (0, 1] (faults per bit per inference), got {args.ber}")
    if not 0.0 < args.bit_ber <= 1.0:
        raise FpgaFtError(f"--bit-ber must be in (0, 1], got {args.bit_ber}")
    for name in ("repeats", "bit_repeats", "max_repeats", "bit_max_repeats", "hutchinson_samples", "batch_size",
                 "eigenvectors"):
        if getattr(args, name) is not None and getattr(args, name) < 1:
            raise FpgaFtError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    args.tolerance_pair = _parse_tolerance(args.tolerance, "--tolerance", V.DEFAULT_TOLERANCE)
    args.bit_tolerance_pair = _parse_tolerance(args.bit_tolerance, "--bit-tolerance", V.DEFAULT_BIT_TOLERANCE)
    if not 0.0 < args.confidence < 1.0:
        raise FpgaFtError(f"--confidence must be in (0, 1), got {args.confidence}")
    if args.budget_seconds is not None:
        if not args.budget_seconds > 0:
            raise FpgaFtError(f"--budget-seconds must be > 0, got {args.budget_seconds}")
        fixed = [o for o, v in (("--repeats", args.repeats), ("--bit-repeats", args.bit_repeats)) if v is not None]
        if fixed:
            raise FpgaFtError(f"--budget-seconds plans the number of inferences itself; drop {' and '.join(fixed)} "
                              "(or drop the budget for exactly that many passes)")
    if args.seed < 0:
        raise FpgaFtError(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 <= args.critical_fraction <= 1.0:
        raise FpgaFtError(f"--critical-fraction must be in [0, 1], got {args.critical_fraction}")
    if not 0.0 < args.hessian_stability < 1.0:
        raise FpgaFtError(f"--hessian-stability must be in (0, 1), got {args.hessian_stability}")
    if not 0.0 < args.knee_threshold < 1.0:
        raise FpgaFtError(f"--knee-threshold must be in (0, 1), got {args.knee_threshold}")
    msbs = args.msbs.strip().lower()
    if msbs != "knee":
        try:
            msbs = int(msbs)
        except ValueError:
            raise FpgaFtError(f"--msbs must be an integer or 'knee', got {args.msbs!r}") from None
        if msbs < 0:
            raise FpgaFtError(f"--msbs must be >= 0, got {msbs}")
    elif args.no_bits and args.plan_out:
        raise FpgaFtError("--msbs knee needs the bit analysis (drop --no-bits)")
    if args.plot and Path(args.plot).suffix.lower() not in (".png", ".pdf", ".svg"):
        raise FpgaFtError(f"--plot needs an image file name (.png, .pdf, .svg), got {args.plot}")
    return msbs


#: options passed to :class:`~fpga_ft.measure.vulnerability.analysis.AnalysisSettings` as they are
SETTINGS = ("ber", "repeats", "max_repeats", "seed", "bit_ber", "bit_repeats", "bit_max_repeats", "confidence",
            "budget_seconds", "knee_threshold", "hutchinson_samples", "hessian_stability", "eigenvectors", "threads",
            "batch_size")


def run(args) -> dict:
    import sys
    import time

    from fpga_ft.commands._common import load_model_and_data, use_scheduler
    from fpga_ft.core.outputs import atomic_path
    from fpga_ft.measure.vulnerability import analysis as VA
    from fpga_ft.measure.vulnerability import report as VR
    from fpga_ft.measure.vulnerability import sampling as VS

    began, cpu_began = VS._clock(), time.process_time()
    msbs = _check(args)
    use_scheduler(args)
    start, cpu_start = time.perf_counter(), time.process_time()
    _, x, y, x_train, y_train, prepared = load_model_and_data(
        args.model, args.data, args.train, weights=args.weights, input_precision=args.input_precision,
        with_prepared=True, args=args)
    loaded = {"load": time.perf_counter() - start}
    loaded_cpu = {"load": time.process_time() - cpu_start}
    settings = VA.AnalysisSettings(
        **{name: getattr(args, name) for name in SETTINGS}, tolerance=args.tolerance_pair,
        bit_tolerance=args.bit_tolerance_pair, bits=not args.no_bits, ceiling=not args.no_ceiling,
        progress=progress_of(args))
    report = VA.analyze(
        prepared, x, y, x_train=x_train, y_train=y_train, methods="all" if args.method == "all" else [args.method],
        settings=settings, plan=VR.PlanRequest(args.critical_fraction, msbs, args.budget) if args.plan_out else None,
        sources=VR.AnalysisSources(str(args.model), str(args.data), str(args.train) if args.train else None),
        started=began, seconds=loaded, cpu_seconds=loaded_cpu)
    if report.plan is not None:
        report.plan.plan.save(args.plan_out)
        report = replace(report, plan=replace(report.plan, path=str(args.plan_out)))
    if args.plot:
        with atomic_path(args.plot) as temp:
            VR.plot_report(report, temp)
        report = replace(report, plot=str(args.plot))
    report = replace(report, seconds={**report.seconds, "total": VS._clock() - began},
                     cpu_seconds={**(report.cpu_seconds or {}), "total": time.process_time() - cpu_began})
    print(VR.summary_text(report), file=sys.stderr if args.json == "-" else sys.stdout)
    return report.to_dict()
