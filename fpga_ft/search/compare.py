"""The reference experiment: protection schemes side by side at one or more BERs.

For every BER (with its accuracy-loss target) one row per scheme:

``Base``
    no protection.
``TMR-CRT1`` / ``TMR-CRT2`` / ``TMR-CRT3``
    circuit level: the top 1 / 2 / 3 bits of every product and partial-sum word of every
    layer triplicated and voted.
``TMR-FULL``
    every neuron of every layer critical (whole design triplicated, voted per neuron).
``TMR-ARCH``
    architecture level: the same fraction of critical neurons (top of the vulnerability
    ranking) in every layer, the least fraction of :data:`ARCH_GRID` that meets the accuracy
    target (1.0 = TMR-FULL when none does).
``TMR-ALG``
    algorithm level (needs training data): the coarsest rung of :data:`ALG_LADDER`
    (uniformly fewer weight/activation bits and pruning, fine-tuned) whose clean accuracy
    stays within half the allowed loss, plus the least uniform ``protected_msbs`` that meets
    the accuracy target.
``TMR-CL``
    the cross-layer optimizer (:func:`fpga_ft.search.optimize.optimize`), seeded with the other
    schemes' choices. Its feasible trials are then confirmed cheapest first by an
    independent campaign (:mod:`fpga_ft.search.optimize.confirm`): the optimizer picks the
    cheapest design whose search campaign met the target, which is the design most likely to
    have met it by luck (the winner's curse), so the row is the cheapest one for which an
    independent campaign predicts that a further independent re-measurement (the table's
    validation) meets the target with probability >= 0.9.

The schemes are a registry (:data:`COMPARE_SCHEMES`, in the order above): a
:class:`CompareScheme` is a name and a ``run(context, target)`` that chooses and evaluates one
design for a target, and :func:`register_compare_scheme` adds one (a row per BER, after
TMR-CL unless ``before`` says otherwise)::

    crt4 = fixed_scheme(lambda layers: ProtectionSpec.uniform(layers, msbs=4))
    register_compare_scheme(CompareScheme("TMR-CRT4", crt4), before="TMR-CL")

Accuracy is measured by fault-injection campaigns (same seed for every scheme), resources and
latency as in the optimizer. A scheme *meets the target* when the campaign's lower 95 %
confidence bound is at least the clean accuracy minus the allowed loss, its latency is within
the allowed overhead of Base's, and it fits the board.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping, Sequence

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import SITES
from fpga_ft.search.algorithm import AlgorithmKnobs, LayerKnobs
from fpga_ft.search.optimize import Evaluator, Objective, ProtectionSpec, Target, fmt_ber, get_objective, optimize
from fpga_ft.search.optimize.confirm import confirm_cheapest
from fpga_ft.search.optimize.confirm import describe as describe_confirmation
from fpga_ft.search.optimize.evaluation import CONSTRAINT_FLAGS, RESULT_KEYS, Evaluation, constraint_flags

#: Fractions of critical neurons per layer tried by TMR-ARCH, ascending.
ARCH_GRID = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
#: TMR-ALG rungs, from mild to coarse: bit reductions relative to the original widths (weights
#: and biases; activations of the quantized_relu after each layer) and pruning sparsity.
ALG_LADDER = (
    {"weight_bits": -1, "activation_bits": 0, "sparsity": 0.25},
    {"weight_bits": -2, "activation_bits": 0, "sparsity": 0.5},
    {"weight_bits": -2, "activation_bits": -2, "sparsity": 0.5},
    {"weight_bits": -3, "activation_bits": -2, "sparsity": 0.7},
)
#: TMR-ALG keeps this share of the allowed accuracy loss for the faults (the rest may go to
#: the coarser model's clean accuracy).
ALG_CLEAN_SHARE = 0.5
DEFAULT_DROPS = (0.03, 0.05)
#: Passes over the test set of the independent re-measurement of every chosen design, and
#: the offset of its campaign seed from the search seed.
DEFAULT_VALIDATION_REPEATS = 30
VALIDATION_SEED_OFFSET = 1000
DEFAULT_TRIALS = 40
#: TMR-CL queues at most this share of its trials as seeds (the earlier schemes' choices first,
#: then the optimizer's default seeds); the rest go to the sampler and to the refinement of
#: the best feasible trial, which is how TMR-CL gets below the best of its seeds.
CL_SEED_SHARE = 0.5


def drops_for(bers: Sequence[float], drops: Sequence[float] | None) -> list[float]:
    """The accuracy-loss target of each BER: one value for all, one per BER, or by default
    0.03 for the first BER and 0.05 for the others (the reference experiment)."""
    if not drops:
        return [DEFAULT_DROPS[0]] + [DEFAULT_DROPS[1]] * (len(bers) - 1)
    if len(drops) == 1:
        return list(drops) * len(bers)
    if len(drops) != len(bers):
        raise FpgaFtError(f"--max-accuracy-drop takes one value or one per BER ({len(bers)}), got {len(drops)}")
    return list(drops)


#: The keys of an evaluation a compare row shows: its result keys but those the row states
#: otherwise (``feasible`` and ``constraints``: ``meets_target``, ``accuracy_ok``,
#: ``latency_ok``, ``fits``; ``seconds``: the scheme's), the utilisation (not shown), and those
#: shown only when set (:data:`_ROW_IF_SET`).
_ROW_IF_SET = ("number", "model_file", "design")
_ROW_KEYS = tuple(k for k in RESULT_KEYS
                  if k not in ("feasible", "constraints", "seconds", "utilization", *_ROW_IF_SET))


def _row(scheme: str, target: Target, entry: Evaluation | dict | None, note: str = "",
         seconds: float = 0.0) -> dict:
    """One row of the table: the scheme, the target, the evaluation's figures (``entry``: an
    :class:`Evaluation` or a study's result entry; ``None``: skipped) and its verdict."""
    row = {"scheme": scheme, "ber": target.ber, "max_accuracy_drop": target.max_accuracy_drop,
           "max_latency_overhead": target.max_latency_overhead}
    if entry is None:
        row.update({k: None for k in _ROW_KEYS})
        row.update({k: None for k in (*CONSTRAINT_FLAGS, "meets_target")})
        row.update({"skipped": True, "note": note, "seconds": round(seconds, 2)})
        return row
    if isinstance(entry, Evaluation):
        entry = entry.to_dict()
    row.update({k: entry.get(k) for k in _ROW_KEYS})
    row.update(constraint_flags(entry["constraints"]))
    row.update({"meets_target": bool(entry["feasible"]), "skipped": False, "note": note,
                "seconds": round(seconds, 2)})
    for key in _ROW_IF_SET:
        if entry.get(key) is not None:
            row[key] = entry[key]
    return row


def _alg_knobs(ev: Evaluator, rung: dict):
    knobs = {}
    for info in ev.layers0:
        k = ev.knob_infos[info.name]
        wb = max(2, (k.weight_bits or 8) + rung["weight_bits"])
        ab = None
        if k.activation is not None and rung.get("activation_bits"):
            ab = max(2, k.activation_bits + rung["activation_bits"])
            ab = max(ab, k.activation_integer + 1)
        knobs[info.name] = LayerKnobs(weight_bits=wb, bias_bits=wb, activation_bits=ab,
                                      sparsity=float(rung.get("sparsity", 0.0)))
    return AlgorithmKnobs(knobs)


def least_meeting(candidates: Sequence, evaluate: Callable[[Any], Evaluation], linear: int = 5):
    """The first of the ascending ``candidates`` whose evaluation meets the accuracy constraint:
    a linear scan over the first ``linear`` ones, then bisection (accuracy is taken as
    non-decreasing along the list). Returns (candidate, evaluation, met)."""
    seen = {}

    def check(i):
        if i not in seen:
            seen[i] = evaluate(candidates[i])
        return seen[i].accuracy_ok

    n = len(candidates)
    for i in range(min(linear, n)):
        if check(i):
            return candidates[i], seen[i], True
    if n <= linear:
        return candidates[-1], seen[n - 1], False
    lo, hi = linear - 1, n - 1  # lo fails; is hi good?
    if not check(hi):
        return candidates[hi], seen[hi], False
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if check(mid):
            hi = mid
        else:
            lo = mid
    return candidates[hi], seen[hi], True


@dataclass
class CompareContext:
    """What the schemes of one comparison share: the evaluator, the settings of the
    optimizer (TMR-CL) and, for the BER being compared, the choices of the schemes run so
    far (``chosen``: scheme name -> (AlgorithmKnobs, ProtectionSpec)) and the optimizer
    studies run (``studies``)."""

    ev: Evaluator
    trials: int = DEFAULT_TRIALS
    storage: str | None = None
    seed: int = 0
    progress: bool = True
    log: Callable[[str], None] = print
    objective: str | Objective | None = None
    confirm_repeats: int = 0
    chosen: dict = field(default_factory=dict)
    studies: list = field(default_factory=list)


@dataclass(frozen=True)
class SchemeOutcome:
    """What a scheme chose at one target: its :class:`Evaluation` (or a study entry for TMR-CL; None: skipped, ``note`` says
    why), a note for the table, the (knobs, spec) it chose (for the schemes after it) and
    extra keys of its row."""

    entry: Evaluation | dict | None
    note: str = ""
    choice: tuple | None = None
    extra: Mapping = field(default_factory=dict)


@dataclass(frozen=True)
class CompareScheme:
    """One row of the comparison per BER: ``run(context, target) -> SchemeOutcome``."""

    name: str
    run: Callable[[CompareContext, Target], SchemeOutcome]


#: The registered schemes, in the order of the table.
COMPARE_SCHEMES: dict[str, CompareScheme] = {}


def register_compare_scheme(scheme: CompareScheme, *, before: str | None = None) -> CompareScheme:
    """Add (or replace) ``scheme``; a new one goes at the end, or before the scheme named ``before``."""
    if before is not None and before not in COMPARE_SCHEMES:
        raise FpgaFtError(f"no compare scheme '{before}' (known: {', '.join(COMPARE_SCHEMES)})")
    if before is None or scheme.name in COMPARE_SCHEMES:
        COMPARE_SCHEMES[scheme.name] = scheme
        return scheme
    items = list(COMPARE_SCHEMES.items())
    at = [name for name, _ in items].index(before)
    COMPARE_SCHEMES.clear()
    COMPARE_SCHEMES.update(items[:at] + [(scheme.name, scheme)] + items[at:])
    return scheme


def fixed_scheme(spec_of: Callable[[list], ProtectionSpec]) -> Callable[[CompareContext, Target], SchemeOutcome]:
    """``run`` of a scheme that evaluates one protection of the original model,
    ``spec_of(layers)``."""

    def run(context: CompareContext, target: Target) -> SchemeOutcome:
        knobs, spec = AlgorithmKnobs(), spec_of(context.ev.layers0)
        return SchemeOutcome(context.ev.evaluate(knobs, spec, target), choice=(knobs, spec))

    return run


def _arch_scheme(context: CompareContext, target: Target) -> SchemeOutcome:
    ev, none = context.ev, AlgorithmKnobs()
    specs = [ProtectionSpec.uniform(ev.layers0, fraction=f) for f in ARCH_GRID]
    arch_spec, arch_entry, met = least_meeting(specs, lambda sp: ev.evaluate(none, sp, target), linear=2)
    fraction = ARCH_GRID[specs.index(arch_spec)]
    return SchemeOutcome(arch_entry, note=f"{fraction:g} of every layer's neurons critical"
                         + ("" if met else "; no fraction of the grid meets the accuracy target"),
                         choice=(none, arch_spec))


def _alg_scheme(context: CompareContext, target: Target) -> SchemeOutcome:
    if not context.ev.has_training_data:
        return SchemeOutcome(None, note="skipped: algorithm knobs need --train T.npz")
    alg, alg_entry, alg_note = _tmr_alg(context.ev, target)
    return SchemeOutcome(alg_entry, note=alg_note, choice=alg)


def _cl_seeds(context: CompareContext, target: Target) -> list:
    """The optimizer's first candidates: every earlier scheme's choice (TMR-CRT1..3, TMR-FULL,
    TMR-ARCH, TMR-ALG, ...) and, with TMR-ALG's knobs, those knobs with TMR-ARCH's and with
    TMR-FULL's protection. Those that met the target (their evaluations, memoized by the
    evaluator) come first, cheapest (the optimizer's objective) first, so that TMR-CL's first
    trial is the cheapest earlier design that meets the target and TMR-CL can never be worse;
    the others follow in the table's order."""
    chosen = context.chosen
    alg = chosen.get("TMR-ALG")
    seeds = [(f"compare:{name}", *choice) for name, choice in chosen.items()]
    if alg:
        seeds += [(f"compare:TMR-ALG knobs + {name}", alg[0], chosen[name][1])
                  for name in ("TMR-ARCH", "TMR-FULL") if name in chosen]
    objective = get_objective(context.objective)
    ranked = []
    for order, (label, knobs, spec) in enumerate(seeds):
        evaluation = context.ev.evaluate(knobs, spec, target)
        if evaluation.feasible:
            ranked.append(((0, objective.of(evaluation.to_dict()), order), (label, knobs, spec)))
        else:
            ranked.append(((1, 0.0, order), (label, knobs, spec)))
    return [seed for _, seed in sorted(ranked, key=lambda item: item[0])]


def _cl_scheme(context: CompareContext, target: Target) -> SchemeOutcome:
    result = optimize(context.ev, target, trials=context.trials, storage=context.storage, seed=context.seed,
                      extra_seeds=_cl_seeds(context, target), progress=context.progress, log=context.log,
                      objective=context.objective, max_seeds=max(1, int(context.trials * CL_SEED_SHARE)))
    best = result.best
    note = f"optimizer: {context.trials} trials, study {result.study_name}"
    extra: dict = {"seconds_per_trial": result.seconds_per_trial}
    if best is None:
        best = result.closest
        note += "; no feasible trial: the trial closest to the constraints is shown"
    elif context.confirm_repeats:
        confirmation = confirm_cheapest(result.entries, context.ev, target, context.confirm_repeats,
                                        objective=context.objective)
        extra["confirmation"] = confirmation.to_dict()
        for line in describe_confirmation(confirmation, context.objective):
            context.log("  TMR-CL " + line)
        if confirmation.chosen is not None:
            if confirmation.chosen is not best:
                note += (f"; trial {confirmation.chosen['number']}: the cheapest feasible trial confirmed by an "
                         "independent campaign")
            best = confirmation.chosen
        else:
            note += (f"; none of the {len(confirmation.tried)} cheapest feasible trials was confirmed by an "
                     "independent campaign: the search's best is shown")
    context.studies.append({"ber": target.ber, "study": result.study_name, "storage": result.storage,
                            "trials": result.to_dict()["trials"]["complete"],
                            "seconds_per_trial": result.seconds_per_trial,
                            "feasible": sum(1 for e in result.entries if e.get("feasible"))})
    return SchemeOutcome(best, note=note, extra=extra)


register_compare_scheme(CompareScheme("Base", fixed_scheme(lambda layers: ProtectionSpec())))
for _k in (1, 2, 3):
    register_compare_scheme(CompareScheme(f"TMR-CRT{_k}",
                                          fixed_scheme(lambda layers, k=_k: ProtectionSpec.uniform(layers, msbs=k))))
register_compare_scheme(CompareScheme("TMR-FULL", fixed_scheme(lambda layers: ProtectionSpec.uniform(layers,
                                                                                                   fraction=1.0))))
register_compare_scheme(CompareScheme("TMR-ARCH", _arch_scheme))
register_compare_scheme(CompareScheme("TMR-ALG", _alg_scheme))
register_compare_scheme(CompareScheme("TMR-CL", _cl_scheme))
#: The schemes of the reference experiment, in its order (the built-in registrations).
SCHEMES = tuple(COMPARE_SCHEMES)


def run_compare(ev: Evaluator, bers: Sequence[float], drops: Sequence[float] | None = None, *,
                max_latency_overhead: float = 0.10, trials: int = DEFAULT_TRIALS, storage: str | None = None,
                seed: int = 0, sites=None, progress: bool = True, validation_repeats: int = DEFAULT_VALIDATION_REPEATS,
                log: Callable[[str], None] | None = None, objective: str | Objective | None = None,
                schemes: Sequence[str] | None = None) -> dict:
    """Every registered scheme (or those named in ``schemes``) at every BER, in the registry's
    order. Returns ``{"rows", "baseline", "verdict", "seconds", ...}``.

    Every scheme's design is chosen with the evaluator's campaigns (seed ``ev.seed``); the
    table then re-measures each chosen design with an independent campaign
    (``validation_repeats`` passes, seed ``ev.seed + VALIDATION_SEED_OFFSET``), so that the
    reported accuracy carries no selection bias (a design picked because its search campaign
    was lucky is not credited with that luck). ``accuracy``, ``accuracy_loss``,
    ``accuracy_ok`` and ``meets_target`` are the validation figures; ``search_accuracy``
    and ``search_meets_target`` those the choice was made on (``validation_repeats=0``: no
    re-measurement). TMR-CL's row is the cheapest feasible trial that an independent
    confirmation campaign (as many passes, seed ``ev.seed + CONFIRM_SEED_OFFSET``) predicts
    to meet the target again in the validation with probability >= 0.9
    (:func:`~fpga_ft.search.optimize.confirm.confirm_cheapest`; its row's ``confirmation`` says what was tried). ``objective``: what TMR-CL's optimizer minimises (default LUT)."""
    log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    start = time.perf_counter()
    drops = drops_for(bers, drops)
    unknown = [name for name in (schemes or ()) if name not in COMPARE_SCHEMES]
    if unknown:
        raise FpgaFtError(f"unknown compare scheme {', '.join(unknown)} (known: {', '.join(COMPARE_SCHEMES)})")
    chosen_schemes = [s for name, s in COMPARE_SCHEMES.items() if schemes is None or name in schemes]
    context = CompareContext(ev, trials=trials, storage=storage, seed=seed, progress=progress, log=log,
                             objective=objective, confirm_repeats=validation_repeats)
    rows, timing = [], {}
    for ber, drop in zip(bers, drops):
        target = Target(ber=ber, max_accuracy_drop=drop, max_latency_overhead=max_latency_overhead,
                        sites=sites or SITES)
        log(f"== BER {fmt_ber(ber)}: target accuracy loss < {drop * 100:g} % (CI low), latency <= "
            f"+{max_latency_overhead * 100:g} %")

        context.chosen = {}
        for scheme in chosen_schemes:
            t0 = time.perf_counter()
            outcome = scheme.run(context, target)
            seconds = 0.0
            if outcome.entry is not None:  # a skipped scheme takes no time in the table
                seconds = time.perf_counter() - t0
                timing[scheme.name] = timing.get(scheme.name, 0.0) + seconds
            if outcome.choice is not None:
                context.chosen[scheme.name] = outcome.choice
            rows.append(_row(scheme.name, target, outcome.entry, note=outcome.note, seconds=seconds))
            rows[-1].update(outcome.extra)
            log(_line(rows[-1]))
        if validation_repeats:
            t0 = time.perf_counter()
            _validate([r for r in rows if r["ber"] == ber], ev, target, validation_repeats)
            s = time.perf_counter() - t0
            timing["validation"] = timing.get("validation", 0.0) + s
            log(f"  validation: every design re-measured with {validation_repeats} passes, seed "
                f"{ev.seed + VALIDATION_SEED_OFFSET} ({s:.0f} s)")
            for r in rows:
                if r["ber"] == ber:
                    log(_line(r))

    return {
        "board": ev.board.key,
        "clock_mhz": ev.board.clock_mhz,
        "clean_accuracy": ev.clean_accuracy,
        "bers": list(bers),
        "max_accuracy_drop": drops,
        "max_latency_overhead": max_latency_overhead,
        "trials": trials,
        "repeats": ev.repeats,
        "validation": {"repeats": validation_repeats, "seed": ev.seed + VALIDATION_SEED_OFFSET}
        if validation_repeats else None,
        "algorithm_knobs": ev.has_training_data,
        "objective": get_objective(objective).name,
        "baseline": ev.baseline(Target(ber=bers[0], sites=sites or SITES)),
        "rows": rows,
        "verdict": verdict(rows),
        "studies": context.studies,
        "ranking": {k: v for k, v in ev.ranking_info().items() if k != "scores"},
        "seconds": round(time.perf_counter() - start, 1),
        "seconds_by_scheme": {k: round(v, 1) for k, v in timing.items()},
    }


def _validate(rows: list[dict], ev: Evaluator, target: Target, repeats: int) -> None:
    """Re-measure each row's design with an independent campaign (in place)."""
    for row in rows:
        if row.get("skipped") or not row.get("design"):
            continue
        design = ev.design_of(row)
        row["design"] = str(design.project_dir)
        result = ev.campaign(design, target, repeats=repeats, seed=ev.seed + VALIDATION_SEED_OFFSET)
        row["search_accuracy"] = row["accuracy"]
        row["search_meets_target"] = row["meets_target"]
        row["accuracy"] = {"mean": result.accuracy_mean, "ci_low": result.ci_low, "ci_high": result.ci_high}
        row["accuracy_loss"] = ev.clean_accuracy - result.accuracy_mean
        row["accuracy_ok"] = result.ci_low >= ev.accuracy_floor(target)
        row["meets_target"] = bool(row["accuracy_ok"] and row["latency_ok"] and row["fits"])
        row["validation_repeats"] = repeats


def _tmr_alg(ev: Evaluator, target: Target):
    """(knobs, spec), evaluation, note of TMR-ALG."""
    floor = ev.clean_accuracy - ALG_CLEAN_SHARE * target.max_accuracy_drop
    chosen, chosen_rung, clean = None, None, None
    for index, rung in enumerate(ALG_LADDER):
        knobs = _alg_knobs(ev, rung)
        evaluation = ev.evaluate(knobs, ProtectionSpec(), target)
        if evaluation.clean_accuracy >= floor:
            chosen, chosen_rung, clean = knobs, index, evaluation.clean_accuracy
    if chosen is None:
        from fpga_ft.search.algorithm import AlgorithmKnobs

        chosen, chosen_rung, clean = AlgorithmKnobs(), None, ev.clean_accuracy
    widest = max(info.accum_type.width for info in ev.layers0)
    specs = [ProtectionSpec.uniform(ev.layers0, msbs=k) for k in range(widest + 1)]
    spec, entry, met = least_meeting(specs, lambda sp: ev.evaluate(chosen, sp, target))
    k = specs.index(spec)
    rung_text = (f"rung {chosen_rung + 1} of {len(ALG_LADDER)} ({_rung_text(ALG_LADDER[chosen_rung])}), clean "
                 f"accuracy {clean * 100:.2f} %" if chosen_rung is not None
                 else "no rung keeps the clean accuracy within half the allowed loss: original model")
    note = f"{rung_text}; {k} protected MSBs" + ("" if met else " (no MSB count meets the accuracy target)")
    return (chosen, spec), entry, note


def _rung_text(rung: dict) -> str:
    parts = [f"weights {rung['weight_bits']:+d} bits"]
    if rung.get("activation_bits"):
        parts.append(f"activations {rung['activation_bits']:+d} bits")
    parts.append(f"{rung['sparsity'] * 100:.0f} % pruned")
    return ", ".join(parts)


def verdict(rows: list[dict]) -> list[dict]:
    """Per BER: does TMR-CL meet the target, and with a LUT overhead strictly below every other
    scheme that meets it?"""
    out = []
    for ber in dict.fromkeys(r["ber"] for r in rows):
        at = [r for r in rows if r["ber"] == ber and not r.get("skipped")]
        cl = next((r for r in at if r["scheme"] == "TMR-CL"), None)
        others = [r for r in at if r["scheme"] != "TMR-CL" and r["meets_target"]]
        lowest = None
        if cl is not None and cl["meets_target"]:
            lowest = all(cl["LUT"] < r["LUT"] for r in others)
        out.append({"ber": ber, "tmr_cl_meets_target": bool(cl and cl["meets_target"]),
                    "others_meeting_target": [r["scheme"] for r in others],
                    "tmr_cl_lowest_lut_overhead": lowest,
                    "tmr_cl_lut_overhead": cl["lut_overhead"] if cl else None,
                    "best_other_lut_overhead": min((r["lut_overhead"] for r in others), default=None)})
    return out


def _pct(value, digits=1, sign=False) -> str:
    if value is None:
        return "-"
    return f"{value * 100:+.{digits}f} %" if sign else f"{value * 100:.{digits}f} %"


def _line(row: dict) -> str:
    if row.get("skipped"):
        return f"  {row['scheme']:<9} {row['note']}"
    acc = row["accuracy"]
    return (f"  {row['scheme']:<9} accuracy {acc['mean'] * 100:6.2f} % [{acc['ci_low'] * 100:.2f}, "
            f"{acc['ci_high'] * 100:.2f}]  loss {row['accuracy_loss'] * 100:+6.2f} %  LUT {row['LUT']:>8,} "
            f"({_pct(row['lut_overhead'], sign=True):>9})  latency {_pct(row['latency_overhead'], 0, True):>6}  "
            f"{'meets' if row['meets_target'] else 'misses'} target ({row['seconds']:.0f} s)")


def format_table(result: dict, markdown: bool = False) -> str:
    """The rows as a text (or Markdown) table, one block per BER."""
    head = ["scheme", "accuracy (95 % CI)", "loss", "LUT", "FF", "DSP", "LUT ovh.", "latency ovh.", "meets target"]
    lines = []
    for ber, drop in zip(result["bers"], result["max_accuracy_drop"]):
        rows = [r for r in result["rows"] if r["ber"] == ber]
        table = []
        for r in rows:
            if r.get("skipped"):
                table.append([r["scheme"], r["note"], "", "", "", "", "", "", "-"])
                continue
            acc = r["accuracy"]
            why = []
            if not r["accuracy_ok"]:
                why.append("accuracy")
            if not r["latency_ok"]:
                why.append("latency")
            if not r["fits"]:
                why.append("fit")
            interval = f"{acc['mean'] * 100:.2f} % [{acc['ci_low'] * 100:.2f}, {acc['ci_high'] * 100:.2f}]"
            table.append([r["scheme"], interval,
                          f"{r['accuracy_loss'] * 100:.2f} %", f"{r['LUT']:,}", f"{r['FF']:,}", f"{r['DSP']:,}",
                          _pct(r["lut_overhead"], sign=True), _pct(r["latency_overhead"], 0, sign=True),
                          "yes" if r["meets_target"] else "no (" + ", ".join(why) + ")"])
        title = (f"BER {fmt_ber(ber)} (faults per bit per inference), target: loss < {drop * 100:g} % (CI low), "
                 f"latency <= +{result['max_latency_overhead'] * 100:g} %, clean accuracy "
                 f"{result['clean_accuracy'] * 100:.2f} %")
        validation = result.get("validation")
        if validation:
            title += f"; accuracy re-measured: {validation['repeats']} passes, seed {validation['seed']}"
        if markdown:
            lines.append(f"**{title}**\n")
            lines.append("| " + " | ".join(head) + " |")
            lines.append("|" + "|".join("---" for _ in head) + "|")
            lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in table]
            lines.append("")
        else:
            widths = [max(len(str(c)) for c in col) for col in zip(head, *table)]
            lines.append(title)
            lines.append("  ".join(h.ljust(w) for h, w in zip(head, widths)))
            lines.append("  ".join("-" * w for w in widths))
            lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in table]
            lines.append("")
    return "\n".join(lines).rstrip()


def plot_compare(path, result: dict, title: str | None = None) -> None:
    """PNG: per BER, LUT overhead vs Base per scheme (green: meets the target, red: misses),
    each bar annotated with its accuracy loss and latency overhead."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bers = result["bers"]
    fig, axes = plt.subplots(1, len(bers), figsize=(6.2 * len(bers), 5.2), squeeze=False, layout="constrained")
    for ax, ber, drop in zip(axes[0], bers, result["max_accuracy_drop"]):
        rows = [r for r in result["rows"] if r["ber"] == ber]
        names = [r["scheme"] for r in rows]
        values = [0.0 if r.get("skipped") else r["lut_overhead"] * 100 for r in rows]
        colors = ["0.85" if r.get("skipped") else ("tab:green" if r["meets_target"] else "tab:red") for r in rows]
        bars = ax.bar(range(len(rows)), values, color=colors, edgecolor="black", linewidth=0.6)
        span = (max(values + [0]) - min(values + [0])) or 1.0
        for bar, r, v in zip(bars, rows, values):
            if r.get("skipped"):
                text = "skipped\n(no --train)"
            else:
                text = f"loss {r['accuracy_loss'] * 100:.1f} %\nlat {r['latency_overhead'] * 100:+.0f} %"
            y = v + 0.02 * span if v >= 0 else v - 0.02 * span
            ax.text(bar.get_x() + bar.get_width() / 2, y, text, ha="center", va="bottom" if v >= 0 else "top",
                    fontsize=7)
        for i, (r, v) in enumerate(zip(rows, values)):
            if not r.get("skipped") and abs(v) < 0.01 * span:  # a zero-height bar: show its colour
                ax.plot(i, 0, marker="D", markersize=8, color=colors[i], markeredgecolor="black", zorder=3)
        ax.axhline(0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(rows)))
        ax.set_xticklabels(names, rotation=30, ha="right", fontsize=9)
        ax.set_ylabel("LUT overhead vs Base (%)")
        ax.set_title(f"BER {fmt_ber(ber)}: target loss < {drop * 100:g} %, latency <= +"
                     f"{result['max_latency_overhead'] * 100:g} %", fontsize=10)
        low, high = ax.get_ylim()
        ax.set_ylim(low - 0.08 * span if low < 0 else low, high + 0.15 * span)
        ax.grid(axis="y", alpha=0.3)
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:green", label="meets target"),
                           Patch(color="tab:red", label="misses target")], fontsize=8, loc="upper left")
    fig.suptitle(title or f"{result.get('model', '')} on {result['board']}: LUT overhead of each scheme "
                          "(annotated: accuracy loss vs clean, latency overhead)", fontsize=11)
    fig.savefig(path, dpi=120)
    plt.close(fig)


__all__ = ["SCHEMES", "COMPARE_SCHEMES", "CompareScheme", "CompareContext", "SchemeOutcome", "register_compare_scheme",
           "fixed_scheme", "ARCH_GRID", "ALG_LADDER", "run_compare", "format_table", "plot_compare", "verdict",
           "least_meeting", "drops_for"]
