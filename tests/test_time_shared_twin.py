"""The Yosys twin of a time-shared layer's MAC unit (fpga_ft.measure.twin.UnitTwin,
verify_time_shared) and the estimate of such a layer (fpga_ft.measure.resources).

Issue 11: a Resource-strategy (time-shared) protected layer: the estimate and the
``fpga-ft verify`` twin agree within 25 %, and its protection costs about 3x the shared
MAC units, not 3x every product.

Tests marked ``yosys`` need Debian's ``yosys`` and ``iverilog`` on PATH and skip without
them (about 60 s together on two shared cores); the others only generate Verilog or read
the estimate.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from conftest import needs_yosys_tools as _tools
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import FixedType, LayerInfo
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.structure import (KIND_ADD, KIND_SMUL, REPLICAS, BitTMR, LayerStructure, NeuronStructure,
                                    layer_structure, module_stem)
from fpga_ft.measure import resources
from fpga_ft.measure.resources.costs import _costs
from fpga_ft.measure.twin import (SharedArithmetic, UnitTwin, prove_masked, simulate, simulate_layer, synthesize,
                                  unit_cost, verify_time_shared)


def ts_layer(n_in=16, n_out=8, reuse=4, it=FixedType(8, 1), wt=FixedType(8, 1), acc=FixedType(20, 6),
             seed=0, strategy="resource") -> LayerInfo:
    """A Dense LayerInfo with random exact quantized weights (a fifth of them zero: a zero
    weight still has its slot on a shared multiplier) and biases, built without hls4ml."""
    rng = np.random.default_rng(seed)
    codes = rng.integers(-(2 ** (wt.width - 1)), 2 ** (wt.width - 1), size=(n_in, n_out))
    codes[rng.random((n_in, n_out)) < 0.2] = 0
    b = rng.integers(-(2 ** (wt.width - 1)), 2 ** (wt.width - 1), n_out)
    return LayerInfo(name="fc_ts", kind="Dense", index=2, n_in=n_in, n_out=n_out, n_positions=1,
                     n_input_words=n_in, input_type=it, weight_type=wt, bias_type=wt, accum_type=acc,
                     result_type=it, reuse_factor=reuse, strategy=strategy,
                     weights=codes / 2.0 ** wt.fractional, biases=b / 2.0 ** wt.fractional)


#: (id, layer kwargs, protected_msbs): the two shapes of issue 11.
SHAPES = [
    # 8-bit signed inputs and weights, W = 20: 32 units
    ("dense16x8_r4_k2", {}, 2),
    # 6-bit unsigned (ReLU) inputs, 6-bit weights, W = 17: 40 units
    ("dense32x10_r8_k3", {"n_in": 32, "n_out": 10, "reuse": 8, "it": FixedType(6, 0, False),
                          "wt": FixedType(6, 1), "acc": FixedType(17, 6), "seed": 1}, 3),
]

MASKED = {"product.lane0", "product.lane1", "product.lane2", "sum.lane0", "sum.lane1", "sum.lane2"}
UNMASKED = {"product.low0", "sum.low", "sum.carry", "output.voter"}


def _unit(info, k):
    st = layer_structure(info, LayerProtection(k))
    return st, UnitTwin(st, SharedArithmetic.of_layer(info))


# ---------------------------------------------------------------------------------------
# generation and estimate only (no tools)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", SHAPES, ids=[c[0] for c in SHAPES])
def test_unit_twin_follows_the_structure(case):
    _, kwargs, k = case
    info = ts_layer(**kwargs)
    st, ut = _unit(info, k)
    assert st.time_shared and ut.protected and ut.k == k
    scheme = st.scheme
    # kept modules: per unit three generic multiplier replicas and three lanes
    assert ut.module_instances() == {k_: v for k_, v in st.instances().items() if v} == {
        module_stem(kind, r): st.n_units for kind in (KIND_SMUL, KIND_ADD) for r in REPLICAS}
    assert ut.distinct_modules() == st.distinct_modules()
    # the chain's node bits: per MAC step what the csim exposes per product and partial sum
    # of every neuron (n_in of each), then the output voter
    per_step = scheme.product_bits + scheme.sum_bits
    assert len(ut.sites) == ut.steps * per_step + scheme.output_bits
    for n in st.neurons:
        assert n.exposed_bits() == {"products": st.n_in * scheme.product_bits,
                                    "accumulators": st.n_in * scheme.sum_bits + scheme.output_bits}
    assert {s.cls.name for s in ut.sites if s.cls.masked} == MASKED
    assert {s.cls.name for s in ut.sites if not s.cls.masked} == UNMASKED
    assert ut.groups == ["lane0", "lane1", "lane2"]
    text = ut.verilog_both()  # raises if a node is not instrumented
    wa, ww = info.input_type.width, info.weight_type.width
    for r in REPLICAS:  # the weight is an operand of every replica
        assert f"module fpgaft_tmr_r{r}_smul (input [{wa - 1}:0] x, input [{ww - 1}:0] w" in text
    assert "fpgaft_tmr_r0_add_10 (input" in text  # lanes: accumulator voted, product not
    layer = ut.layer_verilog()
    assert layer.count(f"{ut.mac} u_m") == st.n_units


def test_critical_neurons_have_no_time_shared_form():
    info = ts_layer()
    crit = LayerProtection(2, [0])
    with pytest.raises(FpgaFtError, match="critical_neurons need"):
        layer_structure(info, crit)
    with pytest.raises(FpgaFtError, match="critical_neurons need"):
        resources.time_shared_lut_yosys(info, crit)
    with pytest.raises(FpgaFtError, match="critical_neurons need"):
        resources.estimate_resources([info], ProtectionPlan({info.name: crit}))
    unknown = dataclasses.replace(info, weights=None, biases=None)
    with pytest.raises(FpgaFtError, match="critical_neurons need"):
        resources.estimate_resources([unknown], ProtectionPlan({info.name: crit}))


def test_estimate_protection_scales_with_units_not_products():
    """The same 16x8 layer (128 products) at R = 2, 4, 8: 64, 32, 16 units. The protection
    share is n_units x (protected unit - unprotected unit) + per neuron the lanes' 2k
    register bits behind the start mux and the k-bit output voter: halving the units
    halves it, the products stay 128."""
    k, costs = 2, _costs()
    prev = None
    for r in (2, 4, 8):
        info = ts_layer(reuse=r)
        est = resources.time_shared_lut_yosys(info, LayerProtection(k))
        assert est["n_units"] == 128 // r == layer_structure(info, LayerProtection(k)).n_units
        per_unit = est["unit_lut"] - est["unit_lut_unprotected"]
        protection = est["lut"] - est["lut_unprotected"]
        assert protection == pytest.approx(est["n_units"] * per_unit + info.n_out * 3 * k)
        # about 3x the MAC unit: two more multipliers (the top-k cone is the whole multiplier)
        assert 2.0 <= est["unit_lut"] / est["unit_lut_unprotected"] <= 4.5
        assert per_unit == pytest.approx(2 * costs.generic_mult(8, 8) + costs.low_adder(18)
                                         + 3 * costs.lane(2, 1) - costs.adder(20))
        if prev is not None:
            assert protection < 0.55 * prev
        prev = protection


def test_estimate_of_the_layer_is_the_time_shared_model():
    """estimate_resources of a time-shared layer: at Yosys scale its LUTs are those of
    time_shared_lut_yosys (6-bit activations: no DSP; R < 16: ROMs in LUTs), arithmetic
    scaled by SCALE_SYNTH and voters not; with DSP-bound generic multipliers (8 x 8) one
    DSP per unit, three per protected unit."""
    s = resources.SCALE_SYNTH
    info = ts_layer(**SHAPES[1][1])
    for k in (0, 1, 3, 17):
        yo = resources.time_shared_lut_yosys(info, LayerProtection(k))
        row = resources.estimate_resources([info], ProtectionPlan({info.name: LayerProtection(k)})).per_layer[0]
        assert row["DSP"] == 0
        assert row["voter_LUT"] == round(yo["voter_lut"])
        assert row["LUT"] == pytest.approx(s * (yo["lut"] - yo["voter_lut"]) + yo["voter_lut"], abs=1.0), k
    info = ts_layer()
    n_units = 32
    plain = resources.estimate_resources([info]).per_layer[0]
    prot = resources.estimate_resources([info], ProtectionPlan({info.name: LayerProtection(2)})).per_layer[0]
    assert (plain["DSP"], prot["DSP"]) == (n_units, 3 * n_units)
    assert plain["ii"] == 4 and plain["products_nonzero"] == n_units


# ---------------------------------------------------------------------------------------
# simulation, proof and cost (yosys + iverilog)
# ---------------------------------------------------------------------------------------
@_tools
def test_unit_and_layer_twins_are_bit_exact():
    """The 2-step chain and the whole layer twin against the arithmetic; on a layer whose
    units switch neuron (and one idles), the twin's glue is what the estimate counts."""
    info = ts_layer(n_in=6, n_out=3, reuse=4)  # 18 products on 5 units: a unit spans two neurons
    st, ut = _unit(info, 2)
    glue = unit_cost(ut, synthesize(ut.layer_verilog(), ut.layer_top))["glue_lut"]
    est = resources.time_shared_lut_yosys(info, LayerProtection(2))
    assert glue == pytest.approx(est["glue_lut"] + ut.counter_bits, abs=3)  # counter: not estimated
    for k in (0, 2, 20):
        st, ut = _unit(info, k)
        x = ut.random_inputs(60, seed=2)
        out = simulate(ut, x)["outputs"]
        assert [int(v) for v in out] == [int(v) for v in ut.reference(x)], k
        xl = np.random.default_rng(3).integers(-128, 128, size=(6, info.n_in))
        got = simulate_layer(ut, xl)
        for j, n in enumerate(st.neurons):  # the layer twin computes every neuron's sum
            want = [(int(n.terms[-1].code) + sum(int(row[i]) * int(t.code) for i, t in enumerate(n.products)))
                    % (1 << 20) for row in xl]
            assert [int(v) for v in got[:, j]] == want, (k, j)


@_tools
@pytest.mark.parametrize("case", SHAPES, ids=[c[0] for c in SHAPES])
def test_verify_time_shared_layer(case):
    """Proof classes, estimate vs twin within 25 %, protected unit ~3x the unprotected one
    (~20-30 s each on two shared cores)."""
    from fpga_ft.commands.verify import _summary

    _, kwargs, k = case
    info = ts_layer(**kwargs)
    r = verify_time_shared(info, LayerProtection(k), 0, vectors=16)
    assert r["ok"], r["failures"]
    # proof classes: every lane (product and partial sum) proved masked by SAT for all
    # x, w and accumulator values; low bits, carry and output voter witnessed unmasked
    assert r["sat"]["status"] == "proved"
    assert [(g["group"], g["status"]) for g in r["sat"]["groups"]] == [
        (f"lane{q}", "proved") for q in REPLICAS]
    assert {c for c, m in r["methods"].items() if m == "yosys-sat-proof"} == MASKED
    assert {c for c, m in r["methods"].items() if m == "iverilog-witness"} == UNMASKED
    assert r["unmasked_nodes"] == r["csim_unprotected_bits"]
    assert r["simulation"]["bit_exact_mismatches"] == 0 and not any(r["simulation"]["layer_mismatches"].values())
    # kept modules survive synthesis, n_units of each
    n_units = r["n_units"]
    assert r["netlist_instances"] == {module_stem(kind, q): n_units for kind in (KIND_SMUL, KIND_ADD) for q in REPLICAS}
    # cost: the layer is n_units x the unit + feeds + glue; registers as the structure says
    unit, b = r["unit"], r["yosys_breakdown"]
    assert b["n_units"] == n_units and b["units_lut"] == n_units * unit["yosys_lut"]
    w, n_out = r["width"], r["n_out"]
    counter = max(1, (r["reuse_factor"] - 1).bit_length())
    assert r["yosys_ff"] == n_out * (w + 2 * k) + counter and r["yosys_ff_unprotected"] == n_out * w + counter
    assert 2.0 <= unit["protected_over_unprotected"] <= 4.5
    # protection ~ n_units x (protected unit - unprotected unit), not n_in * n_out products
    per_unit = unit["yosys_lut"] - unit["yosys_lut_unprotected"]
    assert r["protection_lut"] == pytest.approx(n_units * per_unit, rel=0.05)
    # the estimate (Yosys scale, all fabric) against the twin
    assert abs(r["estimate_over_yosys"] - 1.0) <= 0.25, (r["estimate_lut"], r["yosys_lut"])
    assert abs(unit["estimate_over_yosys"] - 1.0) <= 0.25, (unit["estimate_lut"], unit["yosys_lut"])
    assert abs(r["estimate_lut_unprotected"] / r["yosys_lut_unprotected"] - 1.0) <= 0.25
    text = _summary(r)
    assert "OK" in text and f"{n_units} MAC units" in text


@dataclasses.dataclass(frozen=True)
class _CarryClaimedMasked(BitTMR):
    """A false claim: the shared carry into the lanes is masked."""

    def sum_nodes(self):
        return tuple(dataclasses.replace(n, masked=True) if n.role == "carry" else n for n in super().sum_nodes())


@_tools
def test_false_masking_claim_is_refuted():
    info = ts_layer(n_in=4, n_out=2, reuse=2)
    st = layer_structure(info, LayerProtection(2))
    lie = _CarryClaimedMasked(st.scheme.width, st.scheme.k)
    lying = LayerStructure(st.name, tuple(NeuronStructure(n.layer, n.neuron, lie, n.terms) for n in st.neurons),
                           st.n_positions, st.reuse_factor)
    ut = UnitTwin(lying, SharedArithmetic.of_layer(info))
    carries = {s.id for s in ut.sites if s.cls.role == "carry"}
    proof = prove_masked(ut)
    assert proof["status"] == "refuted" and set(proof["refuted"]) == carries
    r = verify_time_shared(info, LayerProtection(2), synth=False, vectors=8, structure=lying)
    assert not r["ok"] and "unmasked nodes differ" in r["failures"][0]


@_tools
def test_cli_verify_time_shared_conv(tmp_path, capsys):
    """`fpga-ft verify --reuse-factor 4` on conv1 of digits_cnn (3x3x1 kernel, 8 channels:
    72 products on 18 units, some switching channel): the MAC unit is verified (~10 s)."""
    import json

    from fpga_ft.cli import main
    from fpga_ft.core.paths import MODELS_DIR

    plan = tmp_path / "plan.yml"
    plan.write_text("layers:\n  conv1:\n    protected_msbs: 2\n", encoding="utf-8")
    out = tmp_path / "v.json"
    code = main(["verify", str(MODELS_DIR / "digits_cnn.h5"), "--plan", str(plan), "--layer", "conv1",
                 "--neuron", "5", "--reuse-factor", "4", "--vectors", "16", "--json", str(out)])
    r = json.loads(out.read_text())
    assert code == 0 and r["ok"] and r["time_shared"], r["failures"]
    assert (r["n_units"], r["reuse_factor"], r["scheme"]) == (18, 4, "bit_tmr")
    assert r["sat"]["status"] == "proved" and r["units_of_neuron"] == [11, 12, 13]
    assert abs(r["estimate_over_yosys"] - 1.0) <= 0.25
    text = capsys.readouterr().out
    assert "18 MAC units" in text and "MAC unit, Yosys LUT" in text and "OK:" in text
