"""Tests of the offline resource estimator (fpga_ft.measure.resources) and its Yosys calibration."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import FixedType, LayerInfo
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.structure import Add, layer_structure
from fpga_ft.measure import resources
from fpga_ft.core.resources import ResourceFigures
from fpga_ft.measure.resources import (ResourceEstimate, csd_digits, estimate_resources, load_calibration,
                                       neuron_lut_yosys)
from fpga_ft.measure.resources.costs import _costs
from fpga_ft.measure.resources.trees import _add_span, _Operand, _read_tree

ROOT = Path(__file__).resolve().parent.parent


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def layer(name="fc1", n_in=16, n_out=8, wa=8, ww=6, acc=18, weights="random", kind="Dense",
          positions=1, reuse=1, strategy="latency", io="io_parallel", seed=0, wi=1):
    """A LayerInfo with exact quantized weights (``weights``: array of integers, "random" or None)."""
    wt = FixedType(ww, wi)
    if isinstance(weights, str) and weights == "random":
        rng = np.random.default_rng(seed)
        ints = rng.integers(-(2 ** (ww - 1)), 2 ** (ww - 1), size=(n_in, n_out))
    elif weights is None:
        ints = None
    else:
        ints = np.asarray(weights, dtype=np.int64).reshape(n_in, n_out)
    w = None if ints is None else ints / 2.0 ** wt.fractional
    return LayerInfo(name=name, kind=kind, index=2, n_in=n_in, n_out=n_out, n_positions=positions,
                     n_input_words=n_in * positions, input_type=FixedType(wa, 2), weight_type=wt,
                     bias_type=wt, accum_type=FixedType(acc, 6), result_type=FixedType(wa, 2),
                     reuse_factor=reuse, strategy=strategy, io_type=io, weights=w,
                     biases=None if w is None else np.zeros(n_out))


def plan_for(info, k=0, critical=()):
    return ProtectionPlan({info.name: LayerProtection(protected_msbs=k, critical_neurons=list(critical))})


def est(info, k=0, critical=(), **kw):
    return estimate_resources([info], plan_for(info, k, critical), **kw)


LAYERS = {
    "dense8x6": lambda: layer(),
    "dense16x16": lambda: layer(n_in=12, n_out=6, wa=16, ww=16, acc=24, wi=6),
    "dense4bit": lambda: layer(n_in=24, n_out=5, wa=6, ww=4, acc=12),
    "no_weights": lambda: layer(weights=None, wa=10, ww=8, acc=20),
    "conv2d": lambda: layer(name="conv1", kind="Conv2D", n_in=27, n_out=8, positions=36, acc=16),
    "reuse4": lambda: layer(n_in=32, n_out=16, wa=12, ww=10, acc=22, reuse=4),
    "resource16": lambda: layer(n_in=32, n_out=16, wa=16, ww=16, acc=24, wi=6, reuse=16,
                                strategy="resource"),
}


def structure_of(info, k=0, critical=()):
    return layer_structure(info, LayerProtection(protected_msbs=k, critical_neurons=list(critical)))


def tree_counts(ns):
    """Adds of a neuron's tree by number of partial-sum operands (read off the structure)."""
    counts = [0, 0, 0]
    for a in ns.adds():
        counts[isinstance(a.left, Add) + isinstance(a.right, Add)] += 1
    return counts


def calibrate_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("calibrate_yosys", ROOT / "scripts" / "calibrate_yosys.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ---------------------------------------------------------------------------------------
# calibration table
# ---------------------------------------------------------------------------------------
def test_calibration_json_loads_and_is_cached():
    cal = load_calibration()
    assert cal is load_calibration()  # functools.cache: read once
    assert cal["yosys_version"].startswith("Yosys ")
    for key in ("mult_generic_lut", "mult_const_lut", "adder_lut", "adder_msbs_lut",
                "adder_slice_cin_lut", "adder_slice_cin_measured", "mult_msbs_fraction",
                "voter_lut", "yosys_dsp_inference", "lane_lut", "lane_measured",
                "low_adder_cout_lut", "low_adder_cout_measured", "mult_const_word_measured",
                "mult_const_word_topk_measured"):
        assert key in cal["models"], key
    assert cal["models"]["voter_lut"]["coef"]["a"] == pytest.approx(1.0)
    assert cal["models"]["adder_lut"]["coef"]["a"] == pytest.approx(1.0, abs=0.05)
    # a lane without voters is a k-bit adder with carry-in: k LUTs
    lanes = {(p["k"], p["voted"]): p["LUT"] for p in cal["models"]["lane_measured"]}
    assert {k for k, _ in lanes} >= {1, 2, 4, 8, 16, 32}
    assert all(lanes[(k, 0)] == k for k, v in lanes if v == 0)
    # voters inside a lane cost at most one LUT per voted bit
    assert all(lanes[(k, 0)] <= lanes[(k, v)] <= lanes[(k, 0)] + v * k for k, v in lanes)
    kinds = {p["kind"] for p in cal["points"]}
    assert {"mult_generic", "mult_const", "adder", "voter", "mac", "mac_full_tmr", "mult_dsp",
            "lane", "low_adder_cout", "mult_const_word", "neuron"} <= kinds
    assert all({"LUT", "FF", "DSP", "CARRY4"} <= set(p) for p in cal["points"])
    assert cal["models"]["mult_generic_lut"]["rms_residual_lut"] < 25


def test_calibration_file_is_shipped_in_the_package():
    assert resources.CALIBRATION_PATH == ROOT / "fpga_ft" / "data" / "resource_calibration.json"
    json.loads(resources.CALIBRATION_PATH.read_text())


def test_measured_full_tmr_mac_is_three_copies_plus_voters():
    """The calibration's own full-TMR MAC = 3 x single MAC + W voter LUTs (within 2%)."""
    checks = load_calibration()["composed_checks"]["mac_full_tmr"]
    assert checks
    for row in checks:
        assert row["LUT"] == pytest.approx(row["three_macs_plus_voters"], rel=0.02)
        assert row["FF"] == 3 * row["w"]


def test_product_replica_top_bits_cost_the_whole_multiplier():
    """Replicas 1 and 2 compute only the top k bits of a product: measured, that cone is the
    whole constant multiplier (negative constants included)."""
    rows = load_calibration()["models"]["mult_const_word_topk_measured"]
    assert rows
    assert all(r["fraction"] == pytest.approx(1.0, abs=0.05) for r in rows if r["word_LUT"])


def test_neuron_model_matches_measured_twins():
    """Whole-neuron Yosys twins (synthetic and models/digits_mlp.h5, unprotected, BitTMR at
    several k, FullTMR) against structure_lut_yosys: within 25% (the verify criterion).

    Rows of ``calibrate_yosys.v_neuron`` (one cell per product and per add, as HLS emits
    them): all schemes. Rows of ``fpga_ft.measure.twin`` (when it was importable at calibration
    time): its BitTMR twin is the same circuit; its plain dot products (Unprotected and the
    FullTMR replicas) are one flat sum that Yosys maps through a ``$macc`` compressor tree
    (1.25-1.36x the per-operator circuit), which the estimator does not model (Vivado maps
    HLS's binary operators one by one): those rows are recorded, not asserted."""
    rows = load_calibration()["composed_checks"]["neuron"]
    own = [r for r in rows if r["twin"] == "calibrate_yosys.v_neuron"]
    assert {r["scheme"] for r in own} == {"none", "bit_tmr", "full_tmr"}
    for r in own:
        assert r["model_LUT"] == pytest.approx(r["LUT"], rel=0.25), r
    for r in rows:
        if r["twin"] == "fpga_ft.measure.twin" and r["scheme"] == "bit_tmr":
            assert r["model_LUT"] == pytest.approx(r["LUT"], rel=0.25), r
    # the stored reference neuron: fc1 neuron 0 of the bundled MLP
    fc1 = {(r["scheme"], r["k"]): r for r in own if r["layer"] == "fc1" and r["neuron"] == 0}
    assert fc1[("none", 0)]["LUT"] == pytest.approx(1582, rel=0.05)
    assert fc1[("bit_tmr", 2)]["LUT"] == pytest.approx(3435, rel=0.10)
    assert fc1[("bit_tmr", 2)]["model_LUT"] == pytest.approx(3435, rel=0.10)


def test_stored_neuron_twins_are_rebuilt_by_the_model():
    """structure_lut_yosys of each stored twin's structure equals the stored model figure
    (the stored rows are the estimator's own numbers, not a copy of another model)."""
    cal = calibrate_module()
    for p in load_calibration()["points"]:
        if p["kind"] != "neuron":
            continue
        spec = p["params"]
        ns = cal.structure_of(spec)
        row = next(r for r in load_calibration()["composed_checks"]["neuron"]
                   if r["layer"] == spec["layer"] and r["scheme"] == spec["scheme"] and r["k"] == spec["k"]
                   and r["neuron"] == spec["neuron"] and r["twin"] == "calibrate_yosys.v_neuron")
        got = resources.structure_lut_yosys(ns, spec["wa"], spec["ww"], input_signed=spec["in_signed"],
                                            product_shift=spec["lshift"] - spec["rshift"])
        assert got == pytest.approx(row["model_LUT"], abs=0.1)


# ---------------------------------------------------------------------------------------
# one neuron as built (Yosys scale)
# ---------------------------------------------------------------------------------------
def test_neuron_lut_yosys_composition():
    """Unprotected = products + (terms-1) adds of the columns they span (W for a signed
    input); BitTMR = 3 x products + per add a (W-k)-bit low adder and three lanes (voting
    the partial-sum operands) + k output voter bits; FullTMR = 3 x unprotected + W voter
    bits."""
    info = layer(n_in=16, n_out=3, wa=8, ww=6, acc=17, seed=4)
    info.biases = np.array([0.0, 0.5, 0.0])           # neuron 1 has a bias term
    costs = _costs()
    w = info.accum_type.width
    for j in range(info.n_out):
        ns0 = structure_of(info).neurons[j]
        codes = [t.code for t in ns0.products]
        prod = sum(float(costs.const_mult(8, csd_digits(c))) for c in codes)
        # signed inputs: every operand is sign-extended, every add spans its W columns less
        # the low columns both operands hold at zero (even weight codes)
        low_zero = [min(_tz(a.left), _tz(a.right)) for a in ns0.adds()]
        plain = prod + costs.adders(ns0.n_sums * w - sum(low_zero), ns0.n_sums)
        assert ns0.n_sums == len(ns0.terms) - 1
        assert neuron_lut_yosys(info, LayerProtection(), j) == pytest.approx(plain)
        assert neuron_lut_yosys(info, LayerProtection(0, [j]), j) == pytest.approx(3 * plain + w)
        for k in (1, 2, 5, w):
            ns = structure_of(info, k).neurons[j]
            counts = tree_counts(ns)
            adds = sum(n * (costs.low_adder(w - k) + 3 * costs.lane(k, v)) for v, n in enumerate(counts))
            assert neuron_lut_yosys(info, LayerProtection(k), j) == pytest.approx(3 * prod + adds + k)
    # the bias is a term: one add more than the zero-bias neurons of the same weights
    assert structure_of(info).neurons[1].n_sums == structure_of(info).neurons[1].n_products


def _tz(node) -> int:
    """Constant-zero low bits of a tree node of a shift-0 layer: a term's code's trailing
    zeros, an add's the smaller of its operands'."""
    from fpga_ft.core.structure import Add
    if isinstance(node, Add):
        return min(_tz(node.left), _tz(node.right))
    c = abs(int(node.code))
    return (c & -c).bit_length() - 1 if c else 0


def test_add_columns_follow_operand_ranges():
    """An add of the tree spans the columns where its operands may be live: zero-extended
    (non-negative) operands to one above the wider one's bits, sign-extended ones to W;
    low columns where both are constant 0 are not built."""
    op, span = _Operand, _add_span
    assert span(op(0, 3, 0), op(0, 3, 0), 17)[0] == 3                # 2-bit unsigned: 2 bits + carry
    assert span(op(0, 255, 0), op(0, 3, 0), 17)[0] == 9
    assert span(op(-4, 3, 0), op(0, 3, 0), 17)[0] == 17              # sign extension to W
    assert span(op(0, 3 << 4, 4), op(0, 3 << 6, 6), 17)[0] == 9 - 4  # low 4 columns both zero
    bits, total = span(op(0, 3, 0), op(-8, 0, 3), 17)
    assert (total.lo, total.hi, total.tz) == (-8, 3, 0)
    assert span(op(0, (1 << 17) - 1, 0), op(0, 1, 0), 17)[1].lo < 0      # out of range: wraps
    # a po2 neuron of unsigned 2-bit inputs: positive codes cost fewer add columns than
    # negative ones (sign extension), and both fewer than W per add
    pos = layer(n_in=64, n_out=1, wa=2, weights=np.full((64, 1), 4), acc=17)
    pos.input_type = FixedType(2, 0, signed=False)
    neg = dataclasses.replace(pos, weights=-pos.weights)
    lut_pos, lut_neg = (neuron_lut_yosys(x, LayerProtection(), 0) for x in (pos, neg))
    assert lut_pos < lut_neg < 63 * _costs().adder(17)


def test_neuron_lut_yosys_edge_cases():
    zero = layer(n_in=4, n_out=2, weights=np.zeros((4, 2), int))
    for prot in (LayerProtection(), LayerProtection(3), LayerProtection(0, [1])):
        assert neuron_lut_yosys(zero, prot, 1) == 0.0        # a constant: no hardware
    one = layer(n_in=4, n_out=1, weights=[[0], [5], [0], [0]], acc=16)
    costs = _costs()
    p = float(costs.const_mult(8, csd_digits(5)))
    assert neuron_lut_yosys(one, LayerProtection(), 0) == pytest.approx(p)
    assert neuron_lut_yosys(one, LayerProtection(2), 0) == pytest.approx(3 * p + 2)   # no add
    assert neuron_lut_yosys(one, LayerProtection(0, [0]), 0) == pytest.approx(3 * p + 16)
    with pytest.raises(FpgaFtError):
        neuron_lut_yosys(one, LayerProtection(), 1)
    with pytest.raises(FpgaFtError):
        neuron_lut_yosys(layer(weights=None), LayerProtection(), 0)


def test_neuron_lut_yosys_grows_with_k_and_zero_weights_are_free():
    info = LAYERS["dense8x6"]()
    prev = neuron_lut_yosys(info, LayerProtection(), 0)
    for k in range(1, info.accum_type.width + 1):
        cur = neuron_lut_yosys(info, LayerProtection(k), 0)
        assert cur > prev, k
        prev = cur
    rng = np.random.default_rng(7)
    small = rng.integers(-20, 20, size=(6, 2))
    padded = np.zeros((12, 2), dtype=int)
    padded[1::2] = small
    a = layer(n_in=6, n_out=2, weights=small)
    b = layer(n_in=12, n_out=2, weights=padded)
    for prot in (LayerProtection(), LayerProtection(3), LayerProtection(0, [0])):
        assert neuron_lut_yosys(a, prot, 0) == neuron_lut_yosys(b, prot, 0)


# ---------------------------------------------------------------------------------------
# protection cost of layers
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(LAYERS))
def test_more_protected_bits_never_cost_less(name):
    """LUT, DSP and the protection share never fall as k grows. FF neither, except from
    k = 0 to 1 on a layer whose DSPs are time-shared (R > 1): the protected products are
    kept modules that are not shared, so the sharing's operand registers go away."""
    info = LAYERS[name]()
    w = info.accum_type.width
    shared = False  # R > 1 layers are time-shared units: protection never removes sharing
    for critical in ((), (0,)) if not info.time_shared else ((),):
        prev = None
        for k in range(0, w + 1):
            e = est(info, k, critical)
            cur = (e.LUT, e.DSP, e.per_layer[0]["protection_LUT"], e.FF)
            if prev is not None:
                n = 3 if (shared and k == 1) else 4
                assert all(c >= p for c, p in zip(cur[:n], prev[:n])), (name, critical, k, prev, cur)
            prev = cur
    assert est(info, w).LUT > est(info, 0).LUT


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_more_critical_neurons_never_cost_less(name):
    """Without bit-level protection (k = 0), every added critical neuron costs LUTs.

    With bit-level protection a critical neuron *replaces* its BitTMR: at k = 1 full TMR
    (two more W-bit adders per add + W voters) still costs more than BitTMR (a (W-1)-bit
    low adder and three 1-bit lanes per add + 1 voter); at k = W it costs less (BitTMR's
    lanes are then three W-bit adders per add plus the voters of every partial-sum
    operand, full TMR votes once per neuron). The product replicas are the same in both.
    """
    info = LAYERS[name]()
    if info.time_shared:  # no critical-neuron form on shared MAC units: refused
        with pytest.raises(FpgaFtError, match="critical_neurons need Strategy: Latency and ReuseFactor 1"):
            est(info, 0, [0])
        return
    shared = False
    prev = est(info)
    for n in range(1, info.n_out + 1):
        cur = est(info, 0, range(n))
        assert cur.DSP >= prev.DSP, (name, n)
        if shared:
            assert cur.LUT > prev.LUT or cur.DSP > prev.DSP, (name, n)
        else:
            assert cur.LUT > prev.LUT and cur.FF >= prev.FF, (name, n)
            assert cur.per_layer[0]["protection_LUT"] > prev.per_layer[0]["protection_LUT"]
        prev = cur
    prev = est(info, 1)
    for n in range(1, info.n_out + 1):
        cur = est(info, 1, range(n))
        assert cur.LUT > prev.LUT, (name, n)
        assert cur.DSP >= prev.DSP, (name, n)
        if n < info.n_out:  # the last one removes the per-level votes from the path
            assert cur.FF >= prev.FF, (name, n)
        prev = cur
    w = info.accum_type.width
    prev = est(info, w)
    for n in range(1, info.n_out + 1):
        cur = est(info, w, range(n))
        assert cur.LUT < prev.LUT, (name, n)
        assert cur.DSP == prev.DSP, (name, n)
        prev = cur


@pytest.mark.parametrize("name", ["dense8x6", "dense16x16", "conv2d"])
def test_any_protection_costs_more_than_none(name):
    info = LAYERS[name]()
    base = est(info)
    for k in (1, 3):
        for critical in ((), (0,), tuple(range(info.n_out))):
            e = est(info, k, critical)
            assert e.LUT > base.LUT and e.DSP >= base.DSP and e.FF > base.FF


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_critical_neuron_replaces_its_bit_level_tmr(name):
    """A critical neuron is FullTMR *instead of* BitTMR (the structure gives it one scheme):
    with every neuron critical, protected_msbs adds nothing; BitTMR at k = 1 is cheaper
    than full TMR and at k = W dearer; the crossover lies in between."""
    info = LAYERS[name]()
    if info.time_shared:  # no critical-neuron form on shared MAC units: refused
        with pytest.raises(FpgaFtError, match="critical_neurons need"):
            est(info, 1, [0])
        return
    w, n = info.accum_type.width, info.n_out
    all_crit = est(info, 0, range(n))
    for k in (1, w // 2, w):
        with_k = est(info, k, range(n))
        assert (with_k.LUT, with_k.FF, with_k.DSP) == (all_crit.LUT, all_crit.FF, all_crit.DSP)
    bit_w, bit_1 = est(info, w), est(info, 1)
    assert bit_1.LUT < all_crit.LUT
    assert all_crit.LUT < bit_w.LUT
    assert all_crit.DSP == bit_w.DSP == bit_1.DSP
    assert all_crit.per_layer[0]["voter_LUT"] == w * n
    crossover = next(k for k in range(1, w + 1) if est(info, k).LUT > all_crit.LUT)
    assert 1 < crossover < w, (name, crossover)


def test_layer_lut_is_the_sum_of_its_neurons_as_built():
    """At scale 1 the layer's LUTs are the sum of neuron_lut_yosys over its neurons (no DSP
    products: 6-bit activations), arithmetic scaled by SCALE_SYNTH and voters not."""
    info = layer(n_in=20, n_out=6, wa=6, ww=6, acc=16, seed=5)
    info.biases = np.linspace(-1, 1, 6)
    s = resources.SCALE_SYNTH
    for k, crit in ((0, ()), (1, ()), (3, (2,)), (0, (0, 5)), (16, ())):
        prot = LayerProtection(k, list(crit))
        row = estimate_resources([info], plan_for(info, k, crit)).per_layer[0]
        assert row["DSP"] == 0
        total = sum(neuron_lut_yosys(info, prot, j) for j in range(info.n_out))
        voters = row["voter_LUT"]
        assert row["LUT"] == pytest.approx(s * (total - voters) + voters, abs=1.0), (k, crit)


def test_voters_as_built():
    """Voter LUTs: per protected neuron the k-bit output voter, plus the lanes' voter share
    (lane(k, v) - lane(k, 0), three lanes per add); a neuron with a single term has no add,
    only its output voter; a critical neuron votes W bits once."""
    costs = _costs()
    single = layer(n_in=3, n_out=4, acc=18, weights=[[3, 0, 0, 5], [0, 7, 0, 0], [0, 0, 11, 0]])
    for k in (1, 2, 5):
        assert est(single, k).per_layer[0]["voter_LUT"] == k * 4
    assert est(single, 0, [0, 2]).per_layer[0]["voter_LUT"] == 2 * 18
    info = LAYERS["dense8x6"]()
    for k in (1, 2, 5):
        expected = 0.0
        for ns in structure_of(info, k).neurons:
            counts = tree_counts(ns)
            expected += k + sum(3 * n * (costs.lane(k, v) - costs.lane(k, 0)) for v, n in enumerate(counts))
        assert est(info, k).per_layer[0]["voter_LUT"] == round(expected)


def test_full_tmr_is_three_copies_plus_output_voters():
    for name in ("dense8x6", "dense16x16", "dense4bit", "no_weights"):
        info = LAYERS[name]()
        base = est(info).per_layer[0]
        full = est(info, 0, range(info.n_out)).per_layer[0]
        w = info.accum_type.width
        assert full["voter_LUT"] == w * info.n_out
        assert full["replica_LUT"] == pytest.approx(2 * base["LUT"], abs=2)
        assert full["LUT"] == pytest.approx(3 * base["LUT"] + w * info.n_out, abs=3)
        assert full["DSP"] == 3 * base["DSP"]
    for row in load_calibration()["composed_checks"]["mac_full_tmr"]:
        ratio = (row["LUT"] - row["w"]) / (row["three_macs_plus_voters"] - row["w"])
        assert ratio == pytest.approx(1.0, abs=0.02)


def test_protected_dsp_products_get_replica_dsps():
    info = layer(n_in=4, n_out=2, wa=16, ww=16, acc=24, wi=6, weights=[[11, 13], [21, 3], [0, 45], [1, 85]])
    base = est(info)
    assert base.DSP == 5  # 11, 13, 21, 45, 85 have >= 3 CSD digits
    assert est(info, 1).DSP == 15
    assert est(info, 0, [1]).DSP == 5 + 2 * 3  # neuron 1: 13, 45, 85


def test_reuse_factor_shares_protected_units_not_products():
    """R > 1: ceil(n_in*n_out/R) shared MAC units (generic multipliers, one DSP each here).
    Bit-level protection triplicates the units' multipliers (3x the units' DSPs, whatever
    k), so its cost follows the number of units, not the number of products; critical
    neurons have no time-shared form."""
    info = layer(n_in=32, n_out=16, wa=16, ww=16, acc=24, wi=6, seed=3)
    one_copy = est(info).DSP                                  # R = 1: a DSP per non-zero product
    info.reuse_factor = 8
    units = math.ceil(32 * 16 / 8)
    shared = est(info)
    assert shared.DSP == units and shared.per_layer[0]["ii"] == 8 and shared.DSP < one_copy / 4
    for k in (1, 4):
        assert est(info, k).DSP == 3 * units
    prot8 = est(info, 4).per_layer[0]["protection_LUT"]
    info.reuse_factor = 4
    prot4 = est(info, 4).per_layer[0]["protection_LUT"]
    assert 1.7 < prot4 / prot8 < 2.3                          # twice the units, about twice the cost
    with pytest.raises(FpgaFtError, match="critical_neurons need"):
        est(info, 0, [0])


# DSP binding, reuse, zero weights
# ---------------------------------------------------------------------------------------
def test_csd_digits():
    assert [csd_digits(x) for x in (0, 1, 2, 3, 7, 11, 13, 21, 45, 85, -7, 255)] == \
        [0, 1, 1, 2, 2, 3, 3, 3, 4, 4, 2, 2]


def test_dsp_threshold_behaviour():
    def dsp(ints, wa, ww=16, acc=32):
        return est(layer(n_in=len(ints), n_out=1, wa=wa, ww=ww, acc=acc, wi=8, weights=ints)).DSP

    assert resources.DSP_MIN_CSD_DIGITS == 3 and resources.DSP_MIN_INPUT_BITS == 8
    two_digit = [3, 5, 7, 6, 12, 255, -7, 1 << 10]
    three_digit = [11, 13, 21, 19, 43, 27]
    assert dsp(two_digit, 16) == 0            # shift-and-add in fabric
    assert dsp(three_digit, 16) == len(three_digit)
    assert dsp(three_digit, 8) == len(three_digit)
    assert dsp(three_digit, 7) == 0           # narrow activations stay in fabric
    # fabric products cost LUTs, DSP products do not
    fab = est(layer(n_in=6, n_out=1, wa=16, ww=16, acc=32, wi=8, weights=two_digit[:6]))
    on_dsp = est(layer(n_in=6, n_out=1, wa=16, ww=16, acc=32, wi=8, weights=three_digit))
    assert fab.DSP == 0 and on_dsp.DSP == 6
    # a product wider than the 25 x 18 DSP48 ports needs several slices
    weight = [(1 << 22) - 0b1010101]                       # 23-bit signed constant
    assert est(layer(n_in=1, n_out=1, wa=16, ww=24, acc=48, wi=12, weights=weight)).DSP == 1  # 23x16 fits 25x18
    assert est(layer(n_in=1, n_out=1, wa=20, ww=24, acc=48, wi=12, weights=weight)).DSP == 2  # 23x20 does not


def test_generic_multipliers_use_dsp_from_8x5_bits():
    def dsp(wa, ww):
        return est(layer(n_in=8, n_out=4, wa=wa, ww=ww, acc=24, wi=1, strategy="resource", reuse=2)).DSP

    assert dsp(8, 5) == 16 and dsp(16, 16) == 16
    assert dsp(7, 16) == 0 and dsp(16, 4) == 0


def test_reuse_factor_reduces_multipliers():
    info = layer(n_in=32, n_out=16, wa=16, ww=16, acc=24, wi=6, seed=3)
    n_dsp = est(info).DSP
    assert n_dsp > 100
    prev_dsp, prev_lat = None, None
    for r in (1, 2, 4, 8, 16, 64):
        info.reuse_factor = r
        e = est(info)
        # R = 1: one DSP per non-zero product; R > 1: one per shared unit (zeros included)
        assert e.DSP == (n_dsp if r == 1 else math.ceil(info.n_in * info.n_out / r)), r
        if prev_dsp is not None:
            assert e.DSP <= prev_dsp and e.latency_cycles >= prev_lat
        prev_dsp, prev_lat = e.DSP, e.latency_cycles
    assert prev_dsp < n_dsp / 8
    assert est(info).per_layer[0]["ii"] > 1
    # resource strategy: R = 1 shares nothing (built like Latency), R > 1 shared units
    assert est(layer(n_in=32, n_out=16, wa=16, ww=16, acc=24, wi=6, strategy="resource", reuse=1,
                     seed=3)).DSP == n_dsp
    for r in (4, 32):
        info = layer(n_in=32, n_out=16, wa=16, ww=16, acc=24, wi=6, strategy="resource", reuse=r)
        assert est(info).DSP == math.ceil(32 * 16 / r)
    assert est(layer(n_in=32, n_out=16, wa=16, ww=16, acc=24, wi=6, strategy="resource",
                     reuse=32)).BRAM_18K > 0


def test_zero_weights_cost_nothing():
    zero = layer(n_in=16, n_out=4, wa=16, ww=16, acc=24, wi=6, weights=np.zeros((16, 4), int))
    e = est(zero).per_layer[0]
    assert e["LUT"] == 0 and e["DSP"] == 0 and e["products_nonzero"] == 0
    assert est(zero, 8).per_layer[0]["protection_LUT"] == 0
    # zero rows cost the same LUT/DSP as no rows at all
    rng = np.random.default_rng(7)
    small = rng.integers(-200, 200, size=(6, 3))
    padded = np.zeros((12, 3), dtype=int)
    padded[::2] = small
    a = est(layer(n_in=6, n_out=3, wa=12, ww=10, acc=24, wi=1, weights=small))
    b = est(layer(n_in=12, n_out=3, wa=12, ww=10, acc=24, wi=1, weights=padded))
    assert (a.LUT, a.DSP) == (b.LUT, b.DSP)
    assert est(layer(n_in=6, n_out=3, wa=12, ww=10, acc=24, wi=1, weights=small), 4).LUT == \
        est(layer(n_in=12, n_out=3, wa=12, ww=10, acc=24, wi=1, weights=padded), 4).LUT
    # a power-of-two weight is a shift: a single one costs nothing, two cost their adder
    assert est(layer(n_in=1, n_out=1, wa=16, ww=16, acc=24, wi=6, weights=[64])).LUT == 0
    two = est(layer(n_in=2, n_out=1, wa=16, ww=16, acc=24, wi=6, weights=[64, -4]))
    assert two.LUT == round(_costs().adder(24) * resources.SCALE_SYNTH)
    # protected: zero rows still cost nothing (no product, no add, no replica)
    for k, crit in ((3, ()), (0, (1,)), (2, (0,))):
        assert est(layer(n_in=6, n_out=3, wa=12, ww=10, acc=24, wi=1, weights=small), k, crit).LUT == \
            est(layer(n_in=12, n_out=3, wa=12, ww=10, acc=24, wi=1, weights=padded), k, crit).LUT


# ---------------------------------------------------------------------------------------
# widths, latency, API
# ---------------------------------------------------------------------------------------
def test_cost_grows_with_operand_widths():
    prev = 0
    for wa in (4, 6, 8, 12, 16):
        e = est(layer(n_in=16, n_out=8, wa=wa, ww=6, acc=24, seed=1))
        assert e.LUT + 60 * e.DSP >= prev
        prev = e.LUT + 60 * e.DSP
    narrow = est(layer(n_in=16, n_out=8, wa=8, ww=6, acc=12, seed=1)).LUT
    wide = est(layer(n_in=16, n_out=8, wa=8, ww=6, acc=32, seed=1)).LUT
    assert wide > narrow


def test_latency_model():
    info = LAYERS["dense8x6"]()
    base = est(info)
    assert base.latency_cycles >= 1
    # protection adds voter delay to the pipeline path: never fewer cycles, more only when
    # the voters (product vote + one per adder-tree level) overflow the stages' slack
    bit_level, critical = est(info, 2).latency_cycles, est(info, 0, [1]).latency_cycles
    assert base.latency_cycles <= critical <= bit_level
    slow = 1000.0  # MHz: a 1 ns clock has no slack, every voter level costs cycles
    assert est(info, 2, clock_mhz=slow).latency_cycles > est(info, clock_mhz=slow).latency_cycles
    # one vote per level of the deepest tree (lanes vote partial sums from the second
    # level on, the output voter closes the root)
    levels = max(_read_tree(ns).depth for ns in structure_of(info, 2).neurons)
    assert levels == math.ceil(math.log2(max(len(ns.terms) for ns in structure_of(info).neurons)))
    extra_ns = resources.VOTER_DELAY_NS * levels
    usable = 1.0 * (1 - resources.CLOCK_UNCERTAINTY)
    assert est(info, 2, clock_mhz=slow).latency_cycles - est(info, clock_mhz=slow).latency_cycles <= \
        math.ceil(extra_ns / usable) + 1
    assert est(info, clock_mhz=500).latency_cycles >= est(info, clock_mhz=100).latency_cycles
    conv = LAYERS["conv2d"]()
    assert est(conv).latency_cycles >= conv.n_positions
    two = estimate_resources([LAYERS["dense8x6"](), layer(name="fc2", n_in=8, n_out=4)])
    assert two.latency_cycles == sum(r["latency_cycles"] for r in two.per_layer)


def test_estimate_object_and_utilization():
    class Board:
        resources = {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0}

    e = estimate_resources([LAYERS["dense8x6"](), LAYERS["conv2d"]()])
    assert isinstance(e, ResourceEstimate) and e.source == "estimate"
    d = e.to_dict()
    assert list(d) == ["LUT", "FF", "DSP", "BRAM_18K", "latency_cycles", "per_layer", "source"]
    assert isinstance(e, ResourceFigures) and e.URAM == 0
    assert e.figures == ResourceFigures(LUT=e.LUT, FF=e.FF, DSP=e.DSP, BRAM_18K=e.BRAM_18K,
                                        latency_cycles=e.latency_cycles, source="estimate")
    assert set(d) >= {"LUT", "FF", "DSP", "BRAM_18K", "latency_cycles", "per_layer", "source"}
    assert d["LUT"] == sum(r["LUT"] for r in d["per_layer"])
    json.dumps(d)
    for row in d["per_layer"]:
        assert {"name", "LUT", "FF", "DSP", "BRAM_18K", "latency_cycles", "protection_LUT"} <= set(row)
    u = e.utilization(Board())
    assert u["LUT"] == pytest.approx(e.LUT / 53200)
    assert u["URAM"] == 0.0 and set(u) == {"LUT", "FF", "DSP", "BRAM_18K", "URAM"}
    hls = estimate_resources([LAYERS["dense8x6"]()], target="hls")
    assert hls.LUT > estimate_resources([LAYERS["dense8x6"]()]).LUT


def test_resource_figures_one_key_list_and_bad_counts():
    from fpga_ft.core import boards, resources as core_resources
    from fpga_ft.measure import reports

    assert boards.RESOURCE_KEYS is core_resources.RESOURCE_KEYS is reports.RESOURCE_KEYS
    assert core_resources.FIT_KEYS == ("LUT", "FF", "DSP", "BRAM_18K")
    fig = ResourceFigures.from_counts({"LUT": 10, "DSP": None}, latency_cycles=3, source="csynth")
    assert fig.to_dict() == {"LUT": 10, "FF": 0, "DSP": 0, "BRAM_18K": 0, "URAM": 0, "latency_cycles": 3,
                             "source": "csynth"}
    assert fig.utilization({"LUT": 20}, keys=("LUT", "FF")) == {"LUT": 0.5, "FF": 0.0}
    for bad in (-1, 1.5, "many", True):
        with pytest.raises(FpgaFtError, match="LUT must be a non-negative integer"):
            ResourceFigures(LUT=bad, FF=0, DSP=0, BRAM_18K=0)


def test_utilization_with_catalogue_board():
    from fpga_ft.core.boards import get_board

    board = get_board("pynq-z2")
    e = estimate_resources([LAYERS["dense8x6"]()])
    u = e.utilization(board)
    assert u["DSP"] == pytest.approx(e.DSP / board.resources["DSP"])


def test_errors_are_one_line_fpgaft_errors():
    info = LAYERS["dense8x6"]()
    with pytest.raises(FpgaFtError):
        estimate_resources([info], target="vivado")
    with pytest.raises(FpgaFtError):
        estimate_resources([info], clock_mhz=0)
    with pytest.raises(FpgaFtError):
        estimate_resources([info], ProtectionPlan({"nope": LayerProtection(1, [])}))
    with pytest.raises(FpgaFtError):
        estimate_resources([info], plan_for(info, 0, [99]))
    bad = layer()
    bad.kind = "LSTM"
    with pytest.raises(FpgaFtError):
        estimate_resources([bad])


def test_estimate_command_registers_its_parser():
    import argparse

    from fpga_ft.commands import estimate

    sub = argparse.ArgumentParser().add_subparsers()
    parser = estimate.register(sub)
    args = parser.parse_args(["m.h5", "--board", "pynq-z2", "--plan", "p.yml"])
    assert args.func is estimate.run and args.board == "pynq-z2" and args.plan == "p.yml"


def test_estimate_cli_on_bundled_mlp(tmp_path):
    from fpga_ft.cli import main
    from fpga_ft.core.paths import MODELS_DIR

    plan = tmp_path / "plan.yml"
    plan.write_text("layers:\n  fc2:\n    protected_msbs: 2\n    critical_neurons: [0]\n")
    out = tmp_path / "est.json"
    assert main(["estimate", str(MODELS_DIR / "digits_mlp.h5"), "--board", "pynq-z2",
                 "--plan", str(plan), "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["source"] == "estimate"
    for key in ("LUT", "FF", "DSP", "BRAM_18K", "per_layer", "utilization", "latency_cycles"):
        assert key in data
    rows = {r["name"]: r for r in data["per_layer"]}
    assert rows["fc2"]["protection_LUT"] > 0 and rows["fc1"]["protection_LUT"] == 0
    assert data["utilization"]["LUT"] == pytest.approx(data["LUT"] / 53200, rel=1e-4)


# ---------------------------------------------------------------------------------------
# a real Yosys run against the table
# ---------------------------------------------------------------------------------------
def _yosys_luts(tmp_path: Path, verilog: str) -> dict:
    (tmp_path / "u.v").write_text(verilog)
    script = ("read_verilog u.v; synth_xilinx -top top -family xc7 -nodsp -flatten -noiopad; "
              "tee -q -o s.json stat -json -top top")
    subprocess.run(["yosys", "-q", "-p", script], cwd=tmp_path, check=True, capture_output=True,
                   timeout=240)
    cells = json.loads((tmp_path / "s.json").read_text())["design"]["num_cells_by_type"]
    return {"LUT": sum(v for k, v in cells.items() if k.startswith("LUT")), "cells": cells}


@pytest.mark.yosys
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)")
def test_real_yosys_matches_calibration_table(tmp_path):
    cal = load_calibration()
    # a 2-of-3 voter: exactly 1 LUT per bit, as the table says
    k = 6
    voter = ("module top(input [5:0] a, input [5:0] b, input [5:0] c, output [5:0] y);\n"
             "  assign y = (a & b) | (a & c) | (b & c);\nendmodule\n")
    got = _yosys_luts(tmp_path, voter)["LUT"]
    assert got == round(cal["models"]["voter_lut"]["coef"]["a"] * k) == k
    mod = calibrate_module()
    stored = next(p for p in cal["points"] if p["kind"] == "mac" and p["params"] == {"wa": 4, "ww": 4, "w": 12})
    measured = _yosys_luts(tmp_path, mod.v_mac(4, 4, 12))["LUT"]
    assert measured == stored["LUT"]
    adder = _yosys_luts(tmp_path, mod.v_adder(10))["LUT"]
    assert adder == round(_costs().adder(10))
    # the lane units of the structure: the table's figures reproduce
    for k, v in ((2, 1), (5, 2)):
        got = _yosys_luts(tmp_path, mod.v_lane(k, v))["LUT"]
        assert got == pytest.approx(_costs().lane(k, v), abs=1), (k, v)
    got = _yosys_luts(tmp_path, mod.v_low_adder(11))["LUT"]
    assert got == pytest.approx(_costs().low_adder(11), abs=1)


def _yosys_neuron_luts(tmp_path: Path, verilog: str) -> int:
    """LUTs of a structural neuron twin (text stat: nested kept modules break Yosys 0.23's
    JSON), via the calibration script's own synthesis routine."""
    mod = calibrate_module()
    unit = {"kind": "neuron", "params": {}, "verilog": verilog, "dsp": False, "text_stat": True}
    return mod.synthesize(unit, "yosys", mod.yosys_version("yosys"), use_cache=False)["LUT"]


@pytest.mark.yosys
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys not installed (apt-get install yosys)")
def test_neuron_lut_yosys_against_yosys_synthesis(tmp_path):
    """neuron_lut_yosys of a small neuron within 25% of Yosys synthesis of its structure
    (written by the calibration script's v_neuron from fpga_ft.core.structure): unprotected,
    BitTMR k = 2 and FullTMR."""
    mod = calibrate_module()
    info = layer(n_in=12, n_out=2, wa=8, ww=6, acc=16, seed=11)
    info.biases = np.array([0.25, 0.0])
    for prot in (LayerProtection(), LayerProtection(2), LayerProtection(0, [0])):
        ns = layer_structure(info, prot).neurons[0]
        got = _yosys_neuron_luts(tmp_path, mod.v_neuron(ns, 8))
        model = neuron_lut_yosys(info, prot, 0)
        assert model == pytest.approx(got, rel=0.25), (prot, got, model)
