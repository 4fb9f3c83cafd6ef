"""The whole verification behind ``fpga-ft verify``: :func:`verify_neuron` (one neuron's
twin) and :func:`verify_time_shared` (a time-shared layer's MAC unit and the layer):
generate, prove, simulate and synthesise, then compare with the structure's claim and with
the estimate (LUT counts in LUT1..LUT6 cells, FF in flip-flops, times in seconds).
"""

from __future__ import annotations

import concurrent.futures as cf
import contextlib
import os
import time
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.structure import (
    KIND_ADD,
    KIND_DOT,
    KIND_MUL,
    KIND_SMUL,
    BitTMR,
    LayerStructure,
    NeuronStructure,
    NodeClass,
    Unprotected,
    layer_structure,
)
from fpga_ft.measure.twin.arithmetic import Arithmetic, SharedArithmetic, random_inputs, reference_output
from fpga_ft.measure.twin.neuron import Twin
from fpga_ft.measure.twin.proof import SAT_TIMEOUT_S, prove_masked, simulate
from fpga_ft.measure.twin.sites import Site
from fpga_ft.measure.twin.tools import find_tool, synthesize
from fpga_ft.measure.twin.unit import UnitTwin, simulate_layer, unit_cost
from fpga_ft.measure.twin.verilog import _count_stems

#: Masked sites (evenly spaced) that :func:`verify_neuron` also simulates, as a sanity
#: check of the proof (a proved site must never differ).
CROSS_CHECK_SITES = 512


# ---------------------------------------------------------------------------------------
# The whole verification of one neuron
# ---------------------------------------------------------------------------------------
def _class_key(cls: NodeClass) -> str:
    return cls.name


def _simulate_sites(twin, x, workdir, iverilog, say) -> tuple[dict, dict, float]:
    """Icarus runs of :func:`verify_neuron` / :func:`verify_time_shared`: the clean twin on
    every vector with a witness search for every unmasked site, and up to
    :data:`CROSS_CHECK_SITES` masked sites on two vectors (a cross-check of the proof)."""
    t0 = time.perf_counter()
    unmasked_ids = [s.id for s in twin.sites if not s.cls.masked]
    masked_ids = [s.id for s in twin.sites if s.cls.masked]
    sim = simulate(twin, x, unmasked_ids, stop_at_first=True, workdir=workdir, iverilog=iverilog)
    sample = masked_ids[::max(1, -(-len(masked_ids) // CROSS_CHECK_SITES))]
    cross = simulate(twin, x[:2], sample, stop_at_first=False, workdir=workdir,
                     iverilog=iverilog) if sample else {"differs": {}, "tried": {}}
    sim_seconds = time.perf_counter() - t0
    say(f"iverilog: {len(x)} vectors; witnesses for {len(unmasked_ids)} unmasked sites, "
        f"{len(sample)} of {len(masked_ids)} masked sites cross-checked on 2 vectors, in {sim_seconds:.1f} s")
    return sim, cross, sim_seconds


def _fallback(twin, x, proof: dict, sat_timeout: float, workdir, iverilog, say) -> dict:
    """Simulation of the masked sites SAT did not settle or refuted (see :func:`verify_neuron`)."""
    timed_out, refuted = set(proof["timed_out"]), set(proof["refuted"])
    fallback = {"differs": {}, "tried": {}}
    if timed_out or refuted:
        if timed_out:
            say(f"SAT did not settle {len(timed_out)} masked sites (timeout {sat_timeout:g} s): "
                f"simulating them on {len(x)} vectors instead (not a proof)")
        if refuted:
            say(f"SAT refuted {len(refuted)} sites the structure calls masked: confirming by simulation")
        fallback = simulate(twin, x, sorted(timed_out | refuted), stop_at_first=True, workdir=workdir,
                            iverilog=iverilog)
    return fallback


def _classify_sites(twin, proof: dict, sim: dict, cross: dict, fallback: dict, n_vectors: int):
    """Per site: unmasked or masked, and the method that settled it. Returns
    ``(found_unmasked sites, {node class name: set of methods})``."""
    timed_out, refuted = set(proof["timed_out"]), set(proof["refuted"])
    found_unmasked: list[Site] = []
    method_of: dict[str, set] = {}
    for s in twin.sites:
        key = _class_key(s.cls)
        if s.cls.masked:
            if s.id in refuted:  # not proved masked: unmasked (confirmed or not by simulation)
                found_unmasked.append(s)
                confirmed = "iverilog-witness" if fallback["differs"].get(s.id) else "no iverilog witness"
                method_of.setdefault(key, set()).add(f"yosys-sat-counterexample ({confirmed})")
            elif s.id in timed_out:
                method_of.setdefault(key, set()).add(f"iverilog-simulation ({n_vectors} vectors; SAT timed out)")
                if fallback["differs"].get(s.id):
                    found_unmasked.append(s)
            else:
                method_of.setdefault(key, set()).add("yosys-sat-proof")
                if cross["differs"].get(s.id):
                    raise FpgaFtError(f"internal: site {s.label} proved masked but differs in simulation")
        else:
            if sim["differs"].get(s.id):
                found_unmasked.append(s)
                method_of.setdefault(key, set()).add("iverilog-witness")
            else:
                method_of.setdefault(key, set()).add(f"iverilog-no-witness ({n_vectors} vectors)")
    return found_unmasked, method_of


@dataclass
class _Verdict:
    """What one verification found: the clean twin against the reference arithmetic, the
    sites found unmasked against the structure's claim, and every failure so far."""

    twin: object
    mismatches: int
    found_unmasked: list
    method_of: dict
    expected: list
    found: list
    failures: list

    def check_modules(self, structure_instances: dict, structure_distinct: dict) -> tuple[dict, dict]:
        """Generated kept instances / distinct modules against the structure's (non-zero
        entries); returns the generated ones."""
        instances, distinct = self.twin.module_instances(), self.twin.distinct_modules()
        if instances != {k: v for k, v in structure_instances.items() if v}:
            self.failures.append(f"generated instances {instances} != structure {structure_instances}")
        if distinct != {k: v for k, v in structure_distinct.items() if v}:
            self.failures.append(f"generated distinct modules {distinct} != structure {structure_distinct}")
        return instances, distinct

    def check_netlist(self, netlist_counts: dict, kinds: Sequence[str], instances: dict) -> dict:
        """Kept replica instances that survived synthesis (``netlist_counts``: Yosys's
        instances per module name), summed per stem of ``kinds``, against ``instances``."""
        found = _count_stems(netlist_counts, kinds)
        if found != instances:
            self.failures.append(f"kept instances after synthesis {found} != generated {instances}")
        return found

    def report(self, proof: dict, exposed: dict, simulation: dict, instances: dict, netlist_instances,
               distinct: dict, t_start: float) -> dict:
        """The fields every ``fpga-ft verify`` result shares (from ``nodes`` to ``failures``)."""
        n_sites = len(self.twin.sites)
        return {
            "nodes": n_sites,
            "faults_tried": n_sites,
            "faults_masked": n_sites - len(self.found_unmasked),
            "unmasked_nodes": self.found,
            "csim_unprotected_bits": self.expected,
            "csim_exposed_bits": exposed,
            "methods": {k: " + ".join(sorted(v)) for k, v in self.method_of.items()},
            "sat": {k: v for k, v in proof.items() if k not in ("refuted", "timed_out")}
            | {"refuted": len(proof["refuted"]), "not_settled": len(proof["timed_out"])},
            "simulation": simulation,
            "module_instances": instances,
            "netlist_instances": netlist_instances,
            "distinct_modules": distinct,
            "seconds": round(time.perf_counter() - t_start, 2),
            "ok": not self.failures,
            "failures": self.failures,
        }


def _site_verdict(twin, proof, sim, cross, fallback, x, ref, what: str) -> _Verdict:
    """Compare a twin's clean simulation with ``ref`` and its masked / unmasked sites with
    the structure's claim."""
    mismatches = int(sum(1 for a, b in zip(sim["outputs"], ref) if int(a) != int(b)))
    found_unmasked, method_of = _classify_sites(twin, proof, sim, cross, fallback, len(x))
    expected = sorted(s.label for s in twin.sites if not s.cls.masked)
    found = sorted(s.label for s in found_unmasked)
    failures = []
    if found != expected:
        extra = sorted(set(found) - set(expected))
        missing = sorted(set(expected) - set(found))
        failures.append(f"unmasked nodes differ from the structure's: {len(extra)} unexpected "
                        f"({', '.join(extra[:5])}), {len(missing)} not witnessed ({', '.join(missing[:5])})")
    if mismatches:
        failures.append(f"{what} differs from the reference arithmetic on {mismatches}/{len(x)} vectors")
    return _Verdict(twin, mismatches, found_unmasked, method_of, expected, found, failures)


def _verifier_start(progress):
    """(say, start time, yosys path, iverilog path) of a verification run: the progress
    callback (or a no-op), ``time.perf_counter()`` at the start, and the tools (an
    FpgaFtError naming the missing one)."""
    return progress or (lambda msg: None), time.perf_counter(), find_tool("yosys"), find_tool("iverilog")


@contextlib.contextmanager
def _proof_pool(twin, workdir, yosys: str, sat_timeout: float, say):
    """The Yosys jobs of a verification run: a pool of two workers (one on a single core)
    with the SAT proof of ``twin``'s masked sites submitted first. Yields ``(pool, jobs,
    workers)``: ``jobs`` the futures by name (``"sat"`` so far), ``workers`` the pool size."""
    workers = max(1, min(2, os.cpu_count() or 1))
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        jobs: dict[str, cf.Future] = {
            "sat": pool.submit(prove_masked, twin, workdir=workdir, yosys=yosys, timeout=sat_timeout, progress=say)}
        yield pool, jobs, workers


def verify_neuron(info, protection, neuron: int, *, workdir: str | os.PathLike | None = None,
                  sat_timeout: float = SAT_TIMEOUT_S, vectors: int = 64, seed: int = 0,
                  synth: bool = True, progress: Callable[[str], None] | None = None,
                  structure: NeuronStructure | None = None) -> dict:
    """Generate, synthesise, prove and simulate the twin of neuron ``neuron`` of layer
    ``info`` (:class:`~fpga_ft.core.layers.LayerInfo` with weights) under ``protection``
    (:class:`~fpga_ft.core.plan.LayerProtection`).

    Steps (Yosys jobs in parallel, two at a time): cost of the clean twin with hierarchy
    kept (``yosys_lut``), flattened without keep (``yosys_lut_no_keep``) and of the
    unprotected twin of the same terms (``yosys_lut_unprotected``); the SAT proof of all
    masked sites (:func:`prove_masked`); an Icarus simulation on ``vectors`` raw input
    vectors checking the clean twin bit for bit against :func:`reference_output` and
    finding a witness for every unmasked site (plus two vectors on up to
    :data:`CROSS_CHECK_SITES` masked sites as a cross-check of the proof; the sites SAT did
    not settle, on all vectors, reported as simulated, not proved; SAT counterexamples are
    confirmed by simulation too). ``structure`` replaces the neuron's
    :class:`NeuronStructure` (a what-if claim to check; tests use it to make sure a false
    claim fails).

    Returns the JSON dict of ``fpga-ft verify`` (LUT counts in LUT1..LUT6 cells, times in
    seconds); ``ok`` is False (with ``failures``) when the unmasked sites found differ
    from the structure's, the twin is not bit-exact, or kept instances did not survive."""
    if structure is None and getattr(info, "time_shared", False):
        # a time-shared layer has no per-neuron dot product: its shared MAC unit is verified
        return verify_time_shared(info, protection, neuron, workdir=workdir, sat_timeout=sat_timeout,
                                  vectors=vectors, seed=seed, synth=synth, progress=progress)
    say, t_start, yosys, iverilog = _verifier_start(progress)
    if structure is None:
        layer = layer_structure(info, protection)
        if not 0 <= int(neuron) < len(layer.neurons):
            raise FpgaFtError(f"neuron {neuron} out of range 0..{len(layer.neurons) - 1} of layer '{info.name}'")
        structure = layer.neurons[int(neuron)]
    arith = Arithmetic.of_layer(info)
    twin = Twin(structure, arith, info.n_in)
    plain = Twin(NeuronStructure(structure.layer, structure.neuron, Unprotected(arith.width), structure.terms),
                 arith, info.n_in)
    n_sites, n_masked = len(twin.sites), twin.n_masked
    say(f"twin of {info.name}[{neuron}]: {structure.scheme.name}, {structure.n_products} products, "
        f"{structure.n_sums} adds, W={arith.width}, {n_sites} node bits ({n_masked} masked)")

    x = random_inputs(arith, twin.n_in, max(4, int(vectors)), seed)
    with _proof_pool(twin, workdir, yosys, sat_timeout, say) as (pool, jobs, workers):
        if synth:
            clean = twin.verilog(False)
            jobs["keep"] = pool.submit(synthesize, clean, twin.top, keep=True, workdir=workdir, yosys=yosys)
            jobs["no_keep"] = pool.submit(synthesize, clean, twin.top, keep=False, workdir=workdir, yosys=yosys)
            jobs["plain"] = pool.submit(synthesize, plain.verilog(False), plain.top, keep=True,
                                        workdir=workdir, yosys=yosys)
        say(f"yosys: SAT proof of the masked sites{' and 3 syntheses' if synth else ''} running "
            f"({workers} at a time)")
        sim, cross, sim_seconds = _simulate_sites(twin, x, workdir, iverilog, say)
        results = {}
        for name, fut in jobs.items():
            results[name] = fut.result()
            if name != "sat":
                say(f"yosys synth_xilinx ({name}): {results[name]['lut']} LUT in {results[name]['seconds']:.1f} s")
    proof = results["sat"]
    fallback = _fallback(twin, x, proof, sat_timeout, workdir, iverilog, say)

    # -- bit-exactness of the clean twin; masked / unmasked per site and the method that settled it
    ref = reference_output(structure, arith, x)
    verdict = _site_verdict(twin, proof, sim, cross, fallback, x, ref, "twin output")
    failures = verdict.failures
    instances, distinct = verdict.check_modules(structure.instances(),
                                                {k: len(v) for k, v in structure.distinct_modules().items()})
    exposed = structure.exposed_bits()
    if sum(exposed.values()) != n_sites:
        failures.append(f"structure exposes {sum(exposed.values())} bits to the csim but lists {n_sites} node bits")
    netlist_instances = None
    if synth:
        netlist_instances = verdict.check_netlist(results["keep"]["instances"], (KIND_MUL, KIND_ADD, KIND_DOT),
                                                  instances)

    estimate, estimate_note = None, None
    try:
        from fpga_ft.measure import resources

        fn = getattr(resources, "neuron_lut_yosys", None)
        if fn is None:
            estimate_note = "fpga_ft.measure.resources.neuron_lut_yosys not available"
        else:
            estimate = fn(info, protection, int(neuron))
    except Exception as exc:  # the estimator is another module's; never fail verification on it
        estimate_note = f"estimate failed: {exc}"

    result = {
        "layer": info.name,
        "neuron": int(neuron),
        "scheme": structure.scheme.name,
        "width": arith.width,
        "protected_msbs": twin.k if isinstance(structure.scheme, BitTMR) else None,
        "arithmetic": {"input_width": arith.in_width, "input_signed": arith.in_signed,
                       "product_shift": arith.shift, "accum_width": arith.width},
        "n_products": structure.n_products,
        "n_sums": structure.n_sums,
        "yosys_lut": results["keep"]["lut"] if synth else None,
        "yosys_lut_no_keep": results["no_keep"]["lut"] if synth else None,
        "yosys_lut_unprotected": results["plain"]["lut"] if synth else None,
        "yosys_carry4": results["keep"]["carry4"] if synth else None,
        "estimate_lut": estimate,
        **verdict.report(proof, exposed, {"vectors": int(len(x)), "bit_exact_mismatches": verdict.mismatches,
                                          "seconds": round(sim_seconds, 2)},
                         instances, netlist_instances, distinct, t_start),
    }
    if estimate_note:
        result["estimate_note"] = estimate_note
    if synth:
        result["synth_seconds"] = {k: results[k]["seconds"] for k in ("keep", "no_keep", "plain")}
    return result


# ---------------------------------------------------------------------------------------
# The whole verification of a time-shared layer
# ---------------------------------------------------------------------------------------
def _plain_layer(structure):
    """The same time-shared layer unprotected (the base cost)."""
    neurons = tuple(NeuronStructure(n.layer, n.neuron, Unprotected(n.scheme.width), n.terms) for n in structure.neurons)
    return LayerStructure(structure.name, neurons, structure.n_positions, structure.reuse_factor)


def verify_time_shared(info, protection, neuron: int | None = None, *, workdir: str | os.PathLike | None = None,
                       sat_timeout: float = SAT_TIMEOUT_S, vectors: int = 64, seed: int = 0, synth: bool = True,
                       progress: Callable[[str], None] | None = None, structure=None,
                       layer_vectors: int = 8) -> dict:
    """Generate, prove, simulate and synthesise the twin of a time-shared layer ``info``
    (``LayerInfo.time_shared``: a reuse factor above 1) under
    ``protection`` (:class:`UnitTwin`; critical neurons have no time-shared form:
    :func:`~fpga_ft.core.structure.layer_structure` refuses them).

    * proof: :func:`prove_masked` on the 2-step MAC chain, one SAT run per lane replica,
      for all data words, weight words and (agreeing) accumulator values; the unmasked
      classes (product low bits, partial-sum low bits and carry, output voter) get an
      Icarus witness; the chain is checked bit for bit against :meth:`UnitTwin.reference`;
    * the node bits per MAC step must be those the csim exposes per product and partial
      sum of every neuron (``n_in`` of each, then the output voter);
    * cost: the layer twin (:meth:`UnitTwin.layer_verilog`) protected and unprotected,
      ``synth_xilinx -nodsp`` with hierarchy (:func:`synthesize`, :func:`unit_cost`):
      LUT = n_units x unit + feeds (every unit's R:1 weight ROM and input select) + glue
      (accumulator start muxes, output voters, counter); FF = the accumulator registers
      (BitTMR: W-k low + 3k lane bits per neuron) + the counter. Both layer twins are
      simulated for ``R`` clock edges on ``layer_vectors`` input vectors and compared with
      :func:`reference_output` of every neuron;
    * the estimate's figure (:func:`fpga_ft.measure.resources.time_shared_lut_yosys`, Yosys scale,
      all fabric: the convention of :func:`verify_neuron`) and its ratio to the twin's.

    ``neuron`` (optional) only selects which units the report lists as serving it: the
    unit is shared by every neuron. ``structure`` replaces the layer's
    :class:`~fpga_ft.core.structure.LayerStructure` (a what-if claim to check).

    Returns the JSON dict of ``fpga-ft verify`` for a time-shared layer (``time_shared``
    true); ``ok`` is False (with ``failures``) when the unmasked sites differ from the
    structure's, a twin is not bit-exact, or kept instances do not match the structure's."""
    say, t_start, yosys, iverilog = _verifier_start(progress)
    if structure is None:
        structure = layer_structure(info, protection)
    if not structure.time_shared:
        raise FpgaFtError(f"layer '{info.name}' is not time-shared (ReuseFactor 1): "
                          "verify it per neuron")
    n_out = len(structure.neurons)
    if neuron is not None and not 0 <= int(neuron) < n_out:
        raise FpgaFtError(f"neuron {neuron} out of range 0..{n_out - 1} of layer '{info.name}'")
    arith = SharedArithmetic.of_layer(info)
    twin = UnitTwin(structure, arith)
    plain = UnitTwin(_plain_layer(structure), arith) if twin.protected else twin
    scheme = structure.scheme
    n_sites, n_masked = len(twin.sites), twin.n_masked
    say(f"twin of {info.name}: time-shared, {structure.n_in}x{n_out} products on {structure.n_units} MAC units "
        f"(R={structure.reuse_factor}), {scheme.name}, W={arith.width}; MAC chain of {twin.steps} steps: "
        f"{n_sites} node bits ({n_masked} masked)")

    x = twin.random_inputs(max(4, int(vectors)), seed)
    xl = random_inputs(arith, structure.n_in, max(2, int(layer_vectors)), seed + 1)
    with _proof_pool(twin, workdir, yosys, sat_timeout, say) as (pool, jobs, workers):
        if synth:
            jobs["layer"] = pool.submit(synthesize, twin.layer_verilog(), twin.layer_top, keep=True,
                                        workdir=workdir, yosys=yosys)
            if plain is not twin:
                jobs["plain"] = pool.submit(synthesize, plain.layer_verilog(), plain.layer_top, keep=True,
                                            workdir=workdir, yosys=yosys)
        say(f"yosys: SAT proof of the masked sites{f' and {len(jobs) - 1} layer syntheses' if synth else ''} "
            f"running ({workers} at a time)")
        sim, cross, sim_seconds = _simulate_sites(twin, x, workdir, iverilog, say)
        t0 = time.perf_counter()
        ref_layer = np.stack([reference_output(n, arith, xl) for n in structure.neurons], axis=1)
        layer_mismatches = {}
        for tw in dict.fromkeys((twin, plain)):
            out = simulate_layer(tw, xl, workdir=workdir, iverilog=iverilog)
            layer_mismatches[tw.layer_top] = int(sum(1 for a, b in zip(out.reshape(-1), ref_layer.reshape(-1))
                                                     if int(a) != int(b)))
        say(f"iverilog: layer twin{'s' if len(layer_mismatches) > 1 else ''} run {structure.reuse_factor} cycles "
            f"on {len(xl)} vectors in {time.perf_counter() - t0:.1f} s")
        results = {}
        for name, fut in jobs.items():
            results[name] = fut.result()
            if name != "sat":
                say(f"yosys synth_xilinx ({name}): {results[name]['lut']} LUT, {results[name]['ff']} FF "
                    f"in {results[name]['seconds']:.1f} s")
    proof = results["sat"]
    fallback = _fallback(twin, x, proof, sat_timeout, workdir, iverilog, say)

    ref = twin.reference(x)
    verdict = _site_verdict(twin, proof, sim, cross, fallback, x, ref, "MAC chain output")
    failures = verdict.failures
    for top, bad in layer_mismatches.items():
        if bad:
            failures.append(f"layer twin {top} differs from the reference on {bad}/{ref_layer.size} words")
    # the csim's exposure: per neuron n_in products and n_in partial sums (+ the output voter)
    per_step = scheme.product_bits + scheme.sum_bits
    if n_sites != twin.steps * per_step + scheme.output_bits:
        failures.append(f"the MAC chain has {n_sites} node bits, the scheme {twin.steps} x {per_step} "
                        f"+ {scheme.output_bits}")
    n_in = structure.n_in
    want = {"products": n_in * scheme.product_bits, "accumulators": n_in * scheme.sum_bits + scheme.output_bits}
    off = [n.neuron for n in structure.neurons if n.exposed_bits() != want]
    if off:
        failures.append(f"neurons {off[:5]} expose other bits than n_in MAC steps + the output voter ({want})")
    instances, distinct = verdict.check_modules(structure.instances(), structure.distinct_modules())
    netlist_instances = cost = cost_plain = None
    if synth:
        netlist_instances = verdict.check_netlist(results["layer"]["hier_instances"], (KIND_SMUL, KIND_ADD),
                                                  instances)
        cost = unit_cost(twin, results["layer"])
        cost_plain = unit_cost(plain, results["plain"]) if plain is not twin else cost
        if cost["n_units"] != structure.n_units:
            failures.append(f"the synthesised layer has {cost['n_units']} MAC units, the structure {structure.n_units}")

    estimate, estimate_note = None, None
    try:
        from fpga_ft.measure import resources

        estimate = resources.time_shared_lut_yosys(info, protection)
    except Exception as exc:  # the estimator is another module's; never fail verification on it
        estimate_note = f"estimate failed: {exc}"

    def ratio(a, b):
        return round(float(a) / float(b), 3) if a is not None and b else None

    units_of = None
    if neuron is not None:
        units_of = sorted({u for row in structure.schedule() for u, slot in enumerate(row)
                           if slot is not None and slot[0] == int(neuron)})
    est = estimate or {}
    result = {
        "layer": info.name,
        "neuron": None if neuron is None else int(neuron),
        "time_shared": True,
        "scheme": scheme.name,
        "width": arith.width,
        "protected_msbs": twin.k if twin.protected else None,
        "reuse_factor": structure.reuse_factor,
        "n_in": n_in,
        "n_out": n_out,
        "n_units": structure.n_units,
        "units_of_neuron": units_of,
        "arithmetic": {"input_width": arith.in_width, "input_signed": arith.in_signed,
                       "weight_width": arith.w_width, "weight_signed": arith.w_signed,
                       "product_shift": arith.shift, "accum_width": arith.width},
        "unit": {"steps_proved": twin.steps,
                 "yosys_lut": cost["unit_lut"] if cost else None,
                 "yosys_lut_unprotected": cost_plain["unit_lut"] if cost else None,
                 "protected_over_unprotected": ratio(cost["unit_lut"], cost_plain["unit_lut"]) if cost else None,
                 "estimate_lut": est.get("unit_lut"),
                 "estimate_lut_unprotected": est.get("unit_lut_unprotected"),
                 "estimate_over_yosys": ratio(est.get("unit_lut"), cost["unit_lut"]) if cost else None},
        "yosys_lut": cost["lut"] if cost else None,
        "yosys_lut_unprotected": cost_plain["lut"] if cost else None,
        "yosys_ff": cost["ff"] if cost else None,
        "yosys_ff_unprotected": cost_plain["ff"] if cost else None,
        "yosys_carry4": cost["carry4"] if cost else None,
        "yosys_breakdown": cost,
        "yosys_breakdown_unprotected": cost_plain,
        "estimate_lut": est.get("lut"),
        "estimate_lut_unprotected": est.get("lut_unprotected"),
        "estimate_over_yosys": ratio(est.get("lut"), cost["lut"]) if cost else None,
        "estimate": estimate,
        "protection_lut": (cost["lut"] - cost_plain["lut"]) if cost else None,
        "estimate_protection_lut": (est["lut"] - est["lut_unprotected"]) if estimate else None,
        **verdict.report(proof, want, {"vectors": int(len(x)), "bit_exact_mismatches": verdict.mismatches,
                                       "layer_vectors": int(len(xl)), "layer_mismatches": layer_mismatches,
                                       "seconds": round(sim_seconds, 2)},
                         instances, netlist_instances, distinct, t_start),
    }
    if estimate_note:
        result["estimate_note"] = estimate_note
    if synth:
        result["synth_seconds"] = {k: v["seconds"] for k, v in results.items() if k != "sat"}
    return result
