"""``fpga-ft analyze MODEL --data D.npz``: which neurons and which bits matter under faults.

Scores every output neuron (Dense) / output channel (Conv) of the protectable layers by
one or all vulnerability methods: ``injection`` (the oracle: bit-exact C-simulation fault
injection confined to one neuron, accuracy loss at --ber on its products and partial sums),
and the fast TensorFlow methods ``gradient``, ``gradient_range``, ``taylor``, ``taylor_act``,
``hessian`` (Hutchinson) and ``activation``. Then measures the accuracy loss when only
one bit position of the product / partial-sum words of a layer is exposed, for every bit,
and finds the knee (lowest bit whose loss exceeds 10 % of the layer's largest loss). With
the oracle and fast methods both run, reports each fast method's Spearman rank correlation
with the oracle and the share of the oracle's loss in its top 10 % of neurons.
``--plan-out`` writes a protection plan from the primary ranking.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

from fpga_ft.errors import FpgaFtError


def register(subparsers):
    from fpga_ft import vulnerability as V

    parser = subparsers.add_parser(
        "analyze",
        help="vulnerability analysis: neuron and bit-position rankings, checked against fault injection",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    from fpga_ft.commands._common import add_intake_options, MODEL_HELP

    parser.add_argument("model", metavar="MODEL", help=MODEL_HELP)
    add_intake_options(parser)
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
    parser.add_argument("--repeats", type=int, default=V.DEFAULT_REPEATS, metavar="R",
                        help=f"passes over the test set per neuron (default {V.DEFAULT_REPEATS})")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="seed (default 0)")
    parser.add_argument("--bit-ber", type=float, default=V.DEFAULT_BIT_BER, metavar="B",
                        help="bit analysis: probability that the one exposed bit of a word flips, per word per "
                             f"inference (default {V.DEFAULT_BIT_BER:g})")
    parser.add_argument("--bit-repeats", type=int, default=V.DEFAULT_BIT_REPEATS, metavar="R",
                        help=f"bit analysis: passes over the test set per bit (default {V.DEFAULT_BIT_REPEATS})")
    parser.add_argument("--no-bits", action="store_true", help="skip the bit-position analysis")
    parser.add_argument("--knee-threshold", type=float, default=V.KNEE_THRESHOLD, metavar="F",
                        help=f"knee: lowest bit whose loss exceeds F x the layer's largest bit loss "
                             f"(default {V.KNEE_THRESHOLD:g})")
    parser.add_argument("--hutchinson-samples", type=int, default=V.DEFAULT_HUTCHINSON_SAMPLES, metavar="N",
                        help=f"hessian: Rademacher vectors (default {V.DEFAULT_HUTCHINSON_SAMPLES})")
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
    parser.add_argument("--progress", action="store_true", help="progress bars on stderr")
    parser.set_defaults(func=run)
    return parser


def _check(args):
    if not 0.0 < args.ber <= 1.0:
        raise FpgaFtError(f"--ber must be in (0, 1] (faults per bit per inference), got {args.ber}")
    if not 0.0 < args.bit_ber <= 1.0:
        raise FpgaFtError(f"--bit-ber must be in (0, 1], got {args.bit_ber}")
    for name in ("repeats", "bit_repeats", "hutchinson_samples", "batch_size"):
        if getattr(args, name) < 1:
            raise FpgaFtError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    if args.seed < 0:
        raise FpgaFtError(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 <= args.critical_fraction <= 1.0:
        raise FpgaFtError(f"--critical-fraction must be in [0, 1], got {args.critical_fraction}")
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


def run(args) -> dict:
    from fpga_ft import vulnerability as V

    msbs = _check(args)
    from fpga_ft.design import build_design
    from fpga_ft.commands._common import load_model_and_data

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    model, x, y, x_train, y_train, prepared = load_model_and_data(
        args.model, args.data, args.train, weights=args.weights, input_precision=args.input_precision,
        with_prepared=True)
    seconds["load"] = time.perf_counter() - start
    start = time.perf_counter()
    design = build_design(model, hls_config=prepared.hls_config)
    seconds["design"] = time.perf_counter() - start
    layers = design.layers
    if not layers:
        raise FpgaFtError(f"model {args.model} has no Dense/Conv layer to analyse")

    progress = True if args.progress else False
    inputs = V.AnalysisInputs(design=design, x=x, y=y, model=model, x_train=x_train, y_train=y_train,
                              ber=args.ber, repeats=args.repeats, seed=args.seed, batch_size=args.batch_size,
                              hutchinson_samples=args.hutchinson_samples, progress=progress)
    methods = V.method_names() if args.method == "all" else [args.method]
    results = {}
    for name in methods:
        results[name] = V.compute_scores(name, inputs)
        seconds[name] = results[name].seconds

    bits = knees = None
    if not args.no_bits:
        bits = V.bit_analysis(design, x, y, ber=args.bit_ber, repeats=args.bit_repeats, seed=args.seed,
                              progress=progress)
        seconds["bits"] = bits.seconds
        knees = V.find_knees(bits, args.knee_threshold)

    primary = "injection" if "injection" in results else methods[0]
    secondary = results["injection"].details.get("output_error") if primary == "injection" else None
    ranked = V.rank_neurons(results[primary].scores, secondary, layers)
    for entry in ranked:
        name, j = entry["layer"], entry["index"]
        entry["scores"] = {m: float(r.scores[name][j]) for m, r in results.items()}
        if "injection" in results:
            details = results["injection"].details
            entry["output_error"] = float(details["output_error"][name][j])
            entry["loss_se"] = float(details["loss_se"][name][j])

    validation = {}
    fast = [m for m in methods if m != "injection"]
    if "injection" in results and fast:
        validation = V.validate_methods({m: results[m].scores for m in fast}, results["injection"].scores, layers)

    result = {
        "model": str(args.model),
        "data": str(args.data),
        "train": str(args.train) if args.train else None,
        "methods": methods,
        "primary": primary,
        "injection": None if "injection" not in results else {
            "ber": args.ber, "ber_units": "faults per bit per inference", "sites": ["products", "accumulators"],
            "repeats": args.repeats, "seed": args.seed,
            "clean_accuracy": results["injection"].details["clean_accuracy"],
            "score": "accuracy loss (fraction) vs the fault-free design; tie-break: mean |output error|"},
        "layers": [{"name": i.name, "kind": i.kind, "n_out": i.n_out, "accum_width": i.accum_type.width}
                   for i in layers],
        "neurons": ranked,
        "bits": [] if bits is None else bits.rows,
        "bit_analysis": None if bits is None else {
            "ber": bits.ber, "ber_units": "probability that the exposed bit of a word flips, per word per inference",
            "repeats": bits.repeats, "clean_accuracy": bits.clean_accuracy, "sites": bits.sites},
        "knee": knees or {},
        "validation": validation,
        "seconds": seconds,
        "intake": prepared.describe(),
    }

    if args.plan_out:
        plan = V.plan_from_scores(results[primary].scores, layers, args.critical_fraction, msbs, knees=knees,
                                  budget=args.budget, secondary=secondary)
        plan.save(args.plan_out)
        result["plan"] = {"path": str(args.plan_out), "from": primary, "critical_fraction": args.critical_fraction,
                          "budget": args.budget, "msbs": msbs, **plan.to_dict()}
    if args.plot:
        V.plot_analysis(args.plot, layers, {m: r.scores for m, r in results.items()}, bits, knees,
                        title=f"{Path(args.model).name}: vulnerability "
                              + (f"(injection BER {args.ber:g} on one neuron's products + partial sums)"
                                 if "injection" in results else f"({primary})"))
        result["plot"] = str(args.plot)
    print(_summary(result, layers))
    return result


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _summary(result: dict, layers) -> str:
    lines = []
    primary = result["primary"]
    unit = "accuracy loss" if primary == "injection" else f"{primary} score"
    inj = result.get("injection")
    if inj:
        lines.append(f"injection oracle: BER {inj['ber']:g} on one neuron's products + partial sums, "
                     f"{inj['repeats']} passes, clean accuracy {inj['clean_accuracy'] * 100:.2f} %")
    lines.append(f"most vulnerable neurons ({unit}):")
    for info in layers:
        top = [e for e in result["neurons"] if e["layer"] == info.name][:5]
        cells = ", ".join(f"#{e['index']} {e['score'] * 100:.2f} %" if primary == "injection"
                          else f"#{e['index']} {e['score']:.3g}" for e in top)
        lines.append(f"  {info.name:<10} {cells}")
    if result["knee"]:
        lines.append("bit-position knee (lowest bit with loss > "
                     f"{next(iter(result['knee'].values()))['threshold']:g} x max):")
        for name, k in result["knee"].items():
            sites = ", ".join(f"{s} {v['knee']}" for s, v in k["per_site"].items())
            lines.append(f"  {name:<10} knee bit {k['knee']} of {k['width']} -> protect {k['protected_msbs']} MSBs"
                         f" ({sites})")
    if result["validation"]:
        lines.append(f"{'method':<15} {'spearman':>9} {'top10 share':>12}   per-layer spearman")
        for m, v in result["validation"].items():
            per = ", ".join(f"{k} {_fmt(s, 2)}" for k, s in v["spearman_per_layer"].items())
            lines.append(f"{m:<15} {_fmt(v['spearman']):>9} {_fmt(v['top10_loss_share']):>12}   {per}")
    lines.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result["seconds"].items()))
    if "plan" in result:
        lines.append(f"plan written to {result['plan']['path']}")
    return "\n".join(lines)
