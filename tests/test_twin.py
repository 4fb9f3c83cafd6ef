"""Tests of the structural Verilog twin (fpga_ft.measure.twin) and of `fpga-ft verify`.

Tests marked ``yosys`` need Debian's ``yosys`` and ``iverilog`` on PATH and skip without
them; the others only generate Verilog.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import needs_yosys_tools as _tools
from fpga_ft.cli import main
from fpga_ft.core.layers import FixedType, LayerInfo
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.core.plan import LayerProtection
from fpga_ft.core.structure import BitTMR, NeuronStructure, layer_structure
from fpga_ft.measure.twin import (Arithmetic, Twin, prove_masked, random_inputs, reference_output, simulate,
                                  verify_neuron)


# ---------------------------------------------------------------------------------------
# hand-built layers
# ---------------------------------------------------------------------------------------
def make_layer(n_in=5, n_out=2, it=FixedType(8, 1), wt=FixedType(6, 1), bt=FixedType(6, 1),
               acc=FixedType(17, 5), seed=0, zero_bias=False, weights=None) -> LayerInfo:
    """A Dense LayerInfo with exact quantized weights/biases (random codes, some zero)."""
    rng = np.random.default_rng(seed)
    if weights is None:
        codes = rng.integers(-(2 ** (wt.width - 1)), 2 ** (wt.width - 1), size=(n_in, n_out))
        codes[0, 0] = 0  # a pruned (zero) weight
    else:
        codes = np.asarray(weights).reshape(n_in, n_out)
    b_codes = np.zeros(n_out) if zero_bias else rng.integers(-(2 ** (bt.width - 1)), 2 ** (bt.width - 1), n_out)
    return LayerInfo(name="fc_t", kind="Dense", index=2, n_in=n_in, n_out=n_out, n_positions=1,
                     n_input_words=n_in, input_type=it, weight_type=wt, bias_type=bt, accum_type=acc,
                     result_type=it, weights=codes / 2.0 ** wt.fractional,
                     biases=b_codes / 2.0 ** bt.fractional)


def float_reference(info: LayerInfo, j: int, x_raw: np.ndarray) -> list[int]:
    """Output word of neuron j (W-bit pattern) from the float weights/biases, independent of
    the twin's integer reference: floor(x*w * 2^Facc) wrapped, summed, plus the bias cast
    to accum_t with truncation, modulo 2^W (all exact in float64 at these widths)."""
    acc, it, bt = info.accum_type, info.input_type, info.bias_type
    w = np.asarray(info.weights)[:, j]
    bias = float(np.asarray(info.biases)[j])
    b_raw = int(np.floor(bias * 2.0 ** bt.fractional))
    b_acc = int(np.floor(b_raw * 2.0 ** (acc.fractional - bt.fractional)))
    out = []
    for row in x_raw:
        total = b_acc
        for i, xv in enumerate(row):
            if w[i] != 0:
                total += int(np.floor(float(xv) / 2.0 ** it.fractional * w[i] * 2.0 ** acc.fractional))
        out.append(total % (1 << acc.width))
    return out


#: (id, layer kwargs, protection): BitTMR k=1, 2, W, FullTMR, Unprotected; signed and
#: unsigned inputs; product shift 0, negative (acc has more fractional bits than x*w) and
#: positive (truncation).
CASES = [
    ("bit_tmr_k1", {}, LayerProtection(1)),
    ("bit_tmr_k2_unsigned_shift_neg", {"it": FixedType(6, 0, False), "acc": FixedType(20, 4)}, LayerProtection(2)),
    ("bit_tmr_kW_shift_pos", {"acc": FixedType(12, 5)}, LayerProtection(12)),
    ("full_tmr_unsigned", {"it": FixedType(5, 1, False)}, LayerProtection(2, [0, 1])),
    ("unprotected_shift_pos", {"acc": FixedType(14, 6), "zero_bias": True}, LayerProtection(0)),
    ("bit_tmr_single_product", {"n_in": 1, "zero_bias": True, "weights": [[5, -7]]}, LayerProtection(3)),
]


def _twin(info, protection, j):
    st = layer_structure(info, protection).neurons[j]
    return st, Twin(st, Arithmetic.of_layer(info), info.n_in)


# ---------------------------------------------------------------------------------------
# generation only (no tools)
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_generated_twin_matches_structure(case):
    _, kwargs, protection = case
    info = make_layer(**kwargs)
    for j in range(info.n_out):
        st, twin = _twin(info, protection, j)
        assert twin.module_instances() == {k: v for k, v in st.instances().items() if v}
        assert twin.distinct_modules() == {k: len(v) for k, v in st.distinct_modules().items() if v}
        assert len(twin.sites) == sum(c.bits for _, c in st.nodes())
        assert sorted(s.label for s in twin.sites if not s.cls.masked) == sorted(
            f"{n}.{c.name.split('.', 1)[1]}[{b}]" for n, c in st.nodes() if not c.masked for b in range(c.bits))
        twin.verilog_both()  # raises if a node of nodes() is not instrumented
        if isinstance(st.scheme, BitTMR):
            twin.verilog_both(cut=True)
        assert len({s.id for s in twin.sites}) == len(twin.sites) and 0 not in {s.id for s in twin.sites}


def test_integer_reference_matches_float_reference():
    for _, kwargs, protection in CASES:
        info = make_layer(**kwargs)
        x = random_inputs(Arithmetic.of_layer(info), info.n_in, 50, seed=3)
        for j in range(info.n_out):
            st, _ = _twin(info, protection, j)
            assert list(reference_output(st, Arithmetic.of_layer(info), x)) == float_reference(info, j, x)


def test_constant_neuron_has_no_nodes():
    info = make_layer(n_in=3, n_out=1, weights=np.zeros((3, 1), dtype=int))
    st, twin = _twin(info, LayerProtection(2), 0)
    assert st.n_products == 0 and twin.sites == [] and twin.module_instances() == {}
    assert "no product" in twin.verilog()


# ---------------------------------------------------------------------------------------
# simulation and proof (yosys + iverilog)
# ---------------------------------------------------------------------------------------
@_tools
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_twin_is_bit_exact(case):
    """iverilog output of the clean twin == the float reference on random vectors."""
    _, kwargs, protection = case
    info = make_layer(**kwargs)
    x = random_inputs(Arithmetic.of_layer(info), info.n_in, 100, seed=7)
    for j in range(info.n_out):
        _, twin = _twin(info, protection, j)
        out = simulate(twin, x)["outputs"]
        assert [int(v) for v in out] == float_reference(info, j, x)


@_tools
@pytest.mark.parametrize("case", CASES, ids=[c[0] for c in CASES])
def test_masked_and_unmasked_sets_equal_structure(case):
    _, kwargs, protection = case
    info = make_layer(**kwargs)
    result = verify_neuron(info, protection, 1 if info.n_out > 1 else 0, synth=False, vectors=16)
    assert result["ok"], result["failures"]
    assert result["unmasked_nodes"] == result["csim_unprotected_bits"]
    assert result["faults_masked"] == result["nodes"] - len(result["csim_unprotected_bits"])
    for cls, method in result["methods"].items():
        masked = not (cls.endswith((".low", ".low0", ".carry", ".voter", ".word")))
        assert method == ("yosys-sat-proof" if masked else "iverilog-witness"), (cls, method)


@dataclasses.dataclass(frozen=True)
class _CarryClaimedMasked(BitTMR):
    """A false claim: the shared carry into the lanes is masked."""

    def sum_nodes(self):
        return tuple(dataclasses.replace(n, masked=True) if n.role == "carry" else n
                     for n in super().sum_nodes())


def _lying(st: NeuronStructure) -> NeuronStructure:
    return NeuronStructure(st.layer, st.neuron, _CarryClaimedMasked(st.scheme.width, st.scheme.k), st.terms)


@_tools
def test_false_masking_claim_is_refuted():
    info = make_layer(n_in=4, n_out=1)
    st, _ = _twin(info, LayerProtection(2), 0)
    lie = _lying(st)
    twin = Twin(lie, Arithmetic.of_layer(info), info.n_in)
    proof = prove_masked(twin)
    carries = {s.id for s in twin.sites if s.cls.role == "carry"}
    assert proof["status"] == "refuted" and set(proof["refuted"]) == carries
    result = verify_neuron(info, LayerProtection(2), 0, synth=False, vectors=8, structure=lie)
    assert not result["ok"] and "unmasked nodes differ" in result["failures"][0]
    assert sorted(result["unmasked_nodes"]) == sorted(result["csim_unprotected_bits"]
                                                      + [s.label for s in twin.sites if s.id in carries])


# ---------------------------------------------------------------------------------------
# fpga-ft verify on the bundled models
# ---------------------------------------------------------------------------------------
def _plan(tmp_path: Path, text: str) -> str:
    path = tmp_path / "plan.yml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def _verify(tmp_path, model, plan_text, layer, neuron, *extra):
    out = tmp_path / "v.json"
    code = main(["verify", str(MODELS_DIR / model), "--plan", _plan(tmp_path, plan_text), "--layer", layer,
                 "--neuron", str(neuron), "--json", str(out), *extra])
    return code, (json.loads(out.read_text()) if out.exists() else None)


@_tools
def test_verify_fc1_neuron0_k2(tmp_path, capsys):
    """fc1 neuron 0 of digits_mlp (61 products, W=17), k=2: ~35 s on two cores."""
    code, r = _verify(tmp_path, "digits_mlp.h5", "layers:\n  fc1:\n    protected_msbs: 2\n", "fc1", 0)
    assert code == 0 and r["ok"], r["failures"]
    assert abs(r["yosys_lut"] - 3435) <= 0.25 * 3435
    assert abs(r["yosys_lut_unprotected"] - 1582) <= 0.25 * 1582
    assert r["yosys_lut_no_keep"] < 0.6 * r["yosys_lut"]  # without keep the replicas merge away
    assert r["unmasked_nodes"] == r["csim_unprotected_bits"] and r["sat"]["status"] == "proved"
    assert r["netlist_instances"] == r["module_instances"] == {
        f"fpgaft_tmr_r{q}_{kind}": 61 for q in range(3) for kind in ("mul", "add")}
    assert r["scheme"] == "bit_tmr" and r["nodes"] == r["faults_tried"]
    assert "OK" in capsys.readouterr().out


@_tools
@pytest.mark.slow
def test_verify_fc1_critical_neuron(tmp_path):
    """A FullTMR neuron costs 3 x its unprotected twin + W voter LUTs (~50 s)."""
    code, r = _verify(tmp_path, "digits_mlp.h5",
                      "layers:\n  fc1:\n    protected_msbs: 2\n    critical_neurons: [0]\n", "fc1", 0)
    assert code == 0 and r["ok"], r["failures"]
    assert r["scheme"] == "full_tmr"
    assert abs(r["yosys_lut"] - (3 * r["yosys_lut_unprotected"] + r["width"])) <= 0.05 * r["yosys_lut"]
    assert set(r["unmasked_nodes"]) == set(r["csim_unprotected_bits"]) == {
        f"out.voter[{b}]" for b in range(r["width"])}


@_tools
def test_verify_conv_channels(tmp_path):
    """conv1 of digits_cnn (3x3x1 kernel, 8 channels): a BitTMR channel and a critical one."""
    plan = "layers:\n  conv1:\n    protected_msbs: 2\n    critical_neurons: [1]\n"
    code, r = _verify(tmp_path, "digits_cnn.h5", plan, "conv1", 0)
    assert code == 0 and r["ok"] and r["scheme"] == "bit_tmr", r["failures"]
    assert r["yosys_lut"] > 1.5 * r["yosys_lut_unprotected"]
    code, r = _verify(tmp_path, "digits_cnn.h5", plan, "conv1", 1)
    assert code == 0 and r["ok"] and r["scheme"] == "full_tmr", r["failures"]
    assert abs(r["yosys_lut"] - (3 * r["yosys_lut_unprotected"] + r["width"])) <= 0.05 * r["yosys_lut"]


@_tools
def test_verify_fails_on_false_claim(tmp_path, monkeypatch, capsys):
    """Exit status 1 (and the JSON still written) when the structure's claim is wrong."""
    import fpga_ft.measure.twin as twin_module

    real = twin_module.verify_neuron

    def lying_verify(info, protection, neuron, **kw):
        st = layer_structure(info, protection).neurons[neuron]
        return real(info, protection, neuron, **kw, structure=_lying(st))

    monkeypatch.setattr(twin_module, "verify_neuron", lying_verify)
    with pytest.raises(SystemExit) as exc:
        _verify(tmp_path, "digits_cnn.h5", "layers:\n  conv1:\n    protected_msbs: 2\n", "conv1", 0,
                "--no-synth", "--vectors", "8")
    assert exc.value.code == 1
    assert "verify failed: unmasked nodes differ" in capsys.readouterr().err
    r = json.loads((tmp_path / "v.json").read_text())
    assert not r["ok"]


@_tools
@pytest.mark.parametrize("layer,neuron,message", [
    ("nope", 0, "unknown layer 'nope'"),
    ("conv1", 8, "channel 8 out of range 0..7"),
    ("flatten", 0, "no dot product"),
])
def test_verify_bad_input(tmp_path, capsys, layer, neuron, message):
    code = main(["verify", str(MODELS_DIR / "digits_cnn.h5"), "--layer", layer, "--neuron", str(neuron)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and message in err and "\n" not in err


def test_verify_without_yosys(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    code = main(["verify", str(MODELS_DIR / "digits_cnn.h5"), "--layer", "conv1", "--neuron", "0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err == "error: yosys not found on PATH (Debian: apt-get install yosys)"
