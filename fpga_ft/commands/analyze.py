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

Sampling: by default every loss estimate (a neuron of the oracle, a bit position) is
sampled adaptively, in batches of random test images, until its 95 % interval is tight
enough for its use (``--tolerance``, ``--bit-tolerance``; see ``docs/vulnerability.md``);
``--repeats`` / ``--bit-repeats`` give the fixed number of passes instead.
``--budget-seconds S`` plans the work to fit S seconds: coarse estimates of every neuron and
bit first, refined while time remains; what could not be done is reported. Progress bars
(stderr, with ETA) show on a terminal unless ``--json -`` or ``--quiet``.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import replace
from pathlib import Path

from fpga_ft.commands._common import positive_int
from fpga_ft.core.errors import FpgaFtError


def register(subparsers):
    from fpga_ft.measure import vulnerability as V

    parser = subparsers.add_parser(
        "analyze",
        help="vulnerability analysis: neuron and bit-position rankings, checked against fault injection",
        description=__doc__.split("\n\n")[1].replace("\n", " "))
    from fpga_ft.commands._common import MODEL_HELP, add_exactness_option, add_intake_options

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
                        help=f"hessian: Rademacher vectors (default {V.DEFAULT_HUTCHINSON_SAMPLES})")
    parser.add_argument("--threads", type=positive_int, default=None, metavar="N",
                        help="threads measuring the injection and bit estimates at once, each with its "
                             "own copy of the csim library (default: the CPUs this process may use); "
                             "results do not depend on it")
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
    parser.add_argument("--progress", action="store_true",
                        help="progress bars with ETA on stderr (default: when stderr is a terminal and the JSON "
                             "does not go to stdout)")
    parser.add_argument("--quiet", action="store_true", help="no progress bars")
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
    for name in ("repeats", "bit_repeats", "max_repeats", "bit_max_repeats", "hutchinson_samples", "batch_size"):
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


def _usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask; the machine's count elsewhere)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def run(args) -> dict:
    import sys

    from fpga_ft.measure import vulnerability as V
    from fpga_ft.measure.vulnerability import sampling as VS
    from fpga_ft.simulate.campaign import progress_wanted

    began = VS._clock()
    msbs = _check(args)
    deadline = None if args.budget_seconds is None else began + args.budget_seconds
    from fpga_ft.commands._common import load_model_and_data
    from fpga_ft.generate.design import build_design

    seconds: dict[str, float] = {}
    start = time.perf_counter()
    model, x, y, x_train, y_train, prepared = load_model_and_data(
        args.model, args.data, args.train, weights=args.weights, input_precision=args.input_precision,
        with_prepared=True, args=args)
    seconds["load"] = time.perf_counter() - start
    start = time.perf_counter()
    design = build_design(model, hls_config=prepared.hls_config)
    seconds["design"] = time.perf_counter() - start
    layers = design.layers
    if not layers:
        raise FpgaFtError(f"model {args.model} has no Dense/Conv layer to analyse")

    progress = False if args.quiet else progress_wanted(args.progress, args.json)
    threads = args.threads or _usable_cpus()
    inj_sampling = V.Sampling(repeats=args.repeats, max_repeats=args.max_repeats, rel_tol=args.tolerance_pair[0],
                              abs_tol=args.tolerance_pair[1], confidence=args.confidence, resolve_ranks=True,
                              threads=threads)
    bit_sampling = V.Sampling(repeats=args.bit_repeats, max_repeats=args.bit_max_repeats,
                              rel_tol=args.bit_tolerance_pair[0], abs_tol=args.bit_tolerance_pair[1],
                              confidence=args.confidence, threads=threads)
    inputs = V.AnalysisInputs(design=design, x=x, y=y, model=model, x_train=x_train, y_train=y_train,
                              ber=args.ber, repeats=args.repeats, seed=args.seed, batch_size=args.batch_size,
                              hutchinson_samples=args.hutchinson_samples, progress=progress,
                              sampling=inj_sampling)
    methods = V.method_names() if args.method == "all" else [args.method]
    results = {}
    # the fast methods first: under a budget, the fault-injection analyses share what is left
    for name in sorted(methods, key=lambda m: m == "injection"):
        if name == "injection" and deadline is not None:
            n_neurons = sum(i.n_out for i in layers)
            n_bits = 0 if args.no_bits else 2 * sum(i.accum_type.width for i in layers)
            share = n_neurons / (n_neurons + n_bits)
            inputs.sampling = replace(inj_sampling, deadline=VS._clock() + share * max(deadline - VS._clock(), 0.0))
        results[name] = V.compute_scores(name, inputs)
        seconds[name] = results[name].seconds
    results = {m: results[m] for m in methods}

    bits = knees = None
    if not args.no_bits:
        bits = V.bit_analysis(design, x, y, ber=args.bit_ber, seed=args.seed, progress=progress,
                              sampling=replace(bit_sampling, deadline=deadline), knee_threshold=args.knee_threshold)
        seconds["bits"] = bits.seconds
        knees = V.find_knees(bits, args.knee_threshold)

    primary = "injection" if "injection" in results else methods[0]
    secondary = results["injection"].details.get("output_error") if primary == "injection" else None
    ranked = V.rank_neurons(results[primary].scores, secondary, layers)
    for entry in ranked:
        name, j = entry["layer"], entry["index"]
        entry["score"] = _num(entry["score"])
        entry["scores"] = {m: _num(r.scores[name][j]) for m, r in results.items()}
        if "injection" in results:
            details = results["injection"].details
            entry["output_error"] = _num(details["output_error"][name][j])
            entry["loss_se"] = _num(details["loss_se"][name][j])
            entry["loss_ci"] = [_num(v) for v in details["loss_ci"][name][j]]
            entry["inferences"] = int(details["inferences"][name][j])
            entry["status"] = details["status"][name][j]

    validation = {}
    fast = [m for m in methods if m != "injection"]
    if "injection" in results and fast:
        validation = V.validate_methods({m: results[m].scores for m in fast}, results["injection"].scores, layers)

    inj = results["injection"].details if "injection" in results else None
    sampling = {}
    if inj is not None:
        sampling["injection"] = inj["sampling"]
    if bits is not None:
        sampling["bits"] = bits.sampling
    result = {
        "model": str(args.model),
        "data": str(args.data),
        "train": str(args.train) if args.train else None,
        "methods": methods,
        "primary": primary,
        "injection": None if inj is None else {
            "ber": args.ber, "ber_units": "faults per bit per inference", "sites": ["products", "accumulators"],
            "repeats": args.repeats, "seed": args.seed, "clean_accuracy": inj["clean_accuracy"],
            "score": "accuracy loss (fraction) vs the fault-free design; tie-break: mean |output error|",
            "sampling": inj["sampling"]},
        "layers": [{"name": i.name, "kind": i.kind, "n_out": i.n_out, "accum_width": i.accum_type.width}
                   for i in layers],
        "neurons": ranked,
        "bits": [] if bits is None else bits.rows,
        "bit_analysis": None if bits is None else {
            "ber": bits.ber, "ber_units": "probability that the exposed bit of a word flips, per word per inference",
            "repeats": bits.repeats, "clean_accuracy": bits.clean_accuracy, "sites": bits.sites,
            "sampling": bits.sampling},
        "knee": knees or {},
        "validation": validation,
        "sampling": sampling,
        "seconds": seconds,
        "intake": prepared.describe(),
    }
    if deadline is not None:
        result["budget"] = _budget_report(args.budget_seconds, VS._clock() - began, sampling, result)

    if args.plan_out:
        plan = V.plan_from_scores(results[primary].scores, layers, args.critical_fraction, msbs, knees=knees,
                                  budget=args.budget, secondary=secondary)
        plan.save(args.plan_out)
        result["plan"] = {"path": str(args.plan_out), "from": primary, "critical_fraction": args.critical_fraction,
                          "budget": args.budget, "msbs": msbs, **plan.to_dict()}
    if args.plot:
        from fpga_ft.core.outputs import atomic_path

        with atomic_path(args.plot) as temp:
            V.plot_analysis(temp, layers, {m: r.scores for m, r in results.items()}, bits, knees,
                            title=f"{Path(args.model).name}: vulnerability "
                                  + (f"(injection BER {args.ber:g} on one neuron's products + partial sums)"
                                     if "injection" in results else f"({primary})"))
        result["plot"] = str(args.plot)
    seconds["total"] = VS._clock() - began
    print(_summary(result, layers), file=sys.stderr if args.json == "-" else sys.stdout)
    return result


def _num(value):
    """JSON-safe float: None for NaN (an estimate the time budget left unmeasured)."""
    value = float(value)
    return None if math.isnan(value) else value


def _incomplete(rows: list[dict], kind: str) -> list[str]:
    """Compact list of the estimates that did not reach their target, with the widest
    interval half-width among them, e.g. 'fc1 products bits 0-5: budget (+-1.2 pp)'."""
    def widest(items):
        hws = [(r[hi] - r[lo]) / 2 for r in items for lo, hi in [_ci_keys(r)] if r.get(lo) is not None]
        return f" (+-{max(hws) * 100:.2g} pp)" if hws else ""

    out, run = [], []

    def flush():
        if not run:
            return
        first, last = run[0], run[-1]
        if kind == "bits":
            span = f"bit {first['bit']}" if len(run) == 1 else f"bits {first['bit']}-{last['bit']}"
            out.append(f"{first['layer']} {first['site']} {span}: {first['status']}{widest(run)}")
        else:
            ids = ", ".join(f"#{r['index']}" for r in run[:6]) + (", ..." if len(run) > 6 else "")
            out.append(f"{first['layer']}: {len(run)} neuron{'s' * (len(run) > 1)} {first['status']} ({ids})"
                       f"{widest(run)}")
        run.clear()

    if kind != "bits":  # neurons: one line per layer and status
        rows = [r for r in rows if r["status"] not in ("target", "resolved", "fixed")]
    for row in rows:
        if row["status"] in ("target", "resolved", "fixed"):
            flush()
            continue
        if run:
            prev = run[-1]
            same = prev["layer"] == row["layer"] and prev["status"] == row["status"]
            if kind == "bits":
                same = same and prev["site"] == row["site"] and prev["bit"] == row["bit"] - 1
            if not same:
                flush()
        run.append(row)
    flush()
    return out


def _ci_keys(row) -> tuple[str, str]:
    return ("ci_low", "ci_high") if "ci_low" in row else ("_lo", "_hi")


def _budget_report(budget: float, elapsed: float, sampling: dict, result: dict) -> dict:
    order = {info["name"]: i for i, info in enumerate(result["layers"])}
    neurons = sorted(({**e, "_lo": e["loss_ci"][0], "_hi": e["loss_ci"][1]} for e in result["neurons"]
                      if "status" in e), key=lambda e: (order[e["layer"]], e["index"]))
    bits = sorted(result["bits"], key=lambda r: (order[r["layer"]], r["site"], r["bit"]))
    not_done = {"injection": _incomplete(neurons, "neurons"), "bits": _incomplete(bits, "bits")}
    return {"seconds": budget, "elapsed": elapsed, "met": elapsed <= budget,
            "status": {k: v["status"] for k, v in sampling.items()},
            "not_done": {k: v for k, v in not_done.items() if v},
            "note": "statuses: target = interval within tolerance, resolved = rank settled, cap = most passes "
                    "reached, budget = still open when time ran out (its interval is reported), not measured = "
                    "no time for a first estimate (score null)"}


def _fmt(value, digits=3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.{digits}f}"


def _score_text(entry, primary) -> str:
    if entry["score"] is None:
        return f"#{entry['index']} -"
    if primary == "injection":
        return f"#{entry['index']} {entry['score'] * 100:.2f} %"
    return f"#{entry['index']} {entry['score']:.3g}"


def _sampling_line(label: str, s: dict) -> str:
    status = ", ".join(f"{n} {k}" for k, n in s["status"].items())
    if s["mode"] == "fixed":
        head = f"{label}: fixed {s['repeats']} passes of {s['test_samples']} samples, {s['inferences']:,} inferences"
    else:
        head = (f"{label}: {s['rule']}; {s['inferences']:,} inferences ({s['inferences_min']:,}-"
                f"{s['inferences_max']:,} per estimate; {s['fixed_design_inferences']:,} for the fixed "
                f"{s['max_repeats']} passes)")
    stab = s.get("stability", {})
    parts = []
    if stab.get("split_half_spearman") is not None:
        per = ", ".join(f"{g} {_fmt(v, 2)}" for g, v in stab.get("split_half_spearman_per_group", {}).items())
        parts.append(f"split-half Spearman {_fmt(stab['split_half_spearman'], 2)} pooled ({per})")
    knee = stab.get("knee_split_half")
    if knee and knee.get("layers"):
        parts.append(f"knees from the two halves: equal in {knee['layers_agreeing']} of {knee['layers']} layers, "
                     f"within one bit in {knee['layers_within_one_bit']}")
    lines = [f"{head}; {status}"]
    if s["mode"] == "adaptive":
        lines.append(f"  why: {s['why']}; tolerance: {s.get('tolerance_reason', '-')}")
    if parts:
        lines.append("  stability: " + "; ".join(parts))
    return "\n".join(lines)


def _summary(result: dict, layers) -> str:
    lines = []
    primary = result["primary"]
    unit = "accuracy loss" if primary == "injection" else f"{primary} score"
    inj = result.get("injection")
    if inj:
        lines.append(f"injection oracle: BER {inj['ber']:g} on one neuron's products + partial sums, "
                     f"clean accuracy {inj['clean_accuracy'] * 100:.2f} %")
    lines.append(f"most vulnerable neurons ({unit}):")
    for info in layers:
        top = [e for e in result["neurons"] if e["layer"] == info.name][:5]
        lines.append(f"  {info.name:<10} " + ", ".join(_score_text(e, primary) for e in top))
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
    for key, label in (("injection", "injection sampling"), ("bits", "bit sampling")):
        if key in result.get("sampling", {}):
            lines.append(_sampling_line(label, result["sampling"][key]))
    if "budget" in result:
        b = result["budget"]
        lines.append(f"budget {b['seconds']:g} s: {'met' if b['met'] else 'exceeded'} ({b['elapsed']:.1f} s)")
        for key, items in b["not_done"].items():
            shown = "; ".join(items[:8]) + (f"; ... ({len(items) - 8} more)" if len(items) > 8 else "")
            lines.append(f"  not done ({key}): {shown}")
    lines.append("seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in result["seconds"].items()))
    if "plan" in result:
        lines.append(f"plan written to {result['plan']['path']}")
    return "\n".join(lines)
