"""The protection-scheme registry: fpga-ft's own schemes and one added from a test through
``fpga_ft.core.schemes.register_scheme`` alone pass the conformance class
(``fpga_ft.testing.scheme_conformance``)."""

from __future__ import annotations

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.schemes import NeuronScheme, register_scheme, registered_schemes, unregister_scheme
from fpga_ft.core.structure import NodeClass
from fpga_ft.testing.scheme_conformance import SchemeConformance


class DuplicatedNeuron(NeuronScheme):
    """Duplication with comparison and recomputation: two kept copies of the neuron's dot
    product (``fpgaft_tmr_r0_dot``, ``fpgaft_tmr_r1_dot``, each with its own constants); when
    they disagree the neuron is computed again (the recomputation taken as fault-free), so
    a single flip anywhere in a copy is masked at the cost of a retry; two copies wrong
    alike pass unseen."""

    name = "duplicated"
    plan_key = "duplicated_neurons"
    dot_replicas = 2
    dsp_copies = 2.0
    csim_kernel = "fpgaft_test_dwc::dot"
    csim_source = """
namespace fpgaft_test_dwc {
template <class data_T, class CONFIG_T>
int64_t dot(const int64_t *x, const int64_t *w, const int64_t *b, const fpgaft::rt::NeuronTerms &nt, unsigned j,
            int bits, int bit) {
    fpgaft::rt::SiteState *site = fpgaft::rt::state().site;
    const uint64_t p0 = site[fpgaft::rt::PRODUCTS].injected, a0 = site[fpgaft::rt::ACCUMULATORS].injected;
    const int64_t r0 = fpgaft::dot_plain_raw<data_T, CONFIG_T>(x, w, b, nt, j, bits, bit);
    const int64_t r1 = fpgaft::dot_plain_raw<data_T, CONFIG_T>(x, w, b, nt, j, bits, bit);
    if (r0 == r1)
        return r0;
    site[fpgaft::rt::PRODUCTS].masked += site[fpgaft::rt::PRODUCTS].injected - p0; // detected: recomputed
    site[fpgaft::rt::ACCUMULATORS].masked += site[fpgaft::rt::ACCUMULATORS].injected - a0;
    return fpgaft::dot_plain_raw<data_T, CONFIG_T>(x, w, b, nt, j, 0, -1);
}
} // namespace fpgaft_test_dwc
"""

    def product_nodes(self):
        return (NodeClass("product", "replica", None, self.width, 0, True),)

    def sum_nodes(self):
        return (NodeClass("sum", "replica", None, self.width, 0, True),)

    def word_failure_probability(self, p):
        return 1.0 - (1.0 - float(p) ** 2) ** self.width

    def module_instances(self, neuron):
        return {f"fpgaft_tmr_r{r}_dot": 1 for r in (0, 1)} if neuron.n_products else {}

    def module_keys(self, neuron):
        return {f"fpgaft_tmr_r{r}_dot": {(neuron.layer, neuron.neuron)} for r in (0, 1)} if neuron.n_products else {}

    def hls_definitions(self, neuron, config):
        from hls_templates.emit_cpp import dot_specialisation

        return dot_specialisation(neuron, config)

    def hls_neuron(self, neuron, config):
        j, c = neuron.neuron, config
        call = "fpgaft::fpgaft_tmr_r{r}_dot<" + f"{j}, data_T, {c}>(data)"
        return [
            f"    {{ // neuron {j}: duplicated, compared; recomputed on a mismatch",
            f"        acc_t r0 = {call.format(r=0)};",
            f"        acc_t r1 = {call.format(r=1)};",
            f"        res[{j}] = nnet::cast<data_T, res_T, {c}>(r0 == r1 ? r0 : {call.format(r=0)});",
            "    }",
        ]

    def neuron_lut(self, base, voter_lut):
        return base, self.width * voter_lut  # a second copy; a W-bit comparator


@pytest.fixture(scope="module", autouse=True)
def _registered():
    register_scheme(DuplicatedNeuron)
    yield
    unregister_scheme(DuplicatedNeuron)


class TestBitTMRConformance(SchemeConformance):
    scheme = "protected_msbs: 2"

    def protection(self, neurons):
        # bit-level TMR covers a whole layer: on when any neuron is asked for
        return LayerProtection(protected_msbs=2 if neurons else 0)

    def test_cost_is_monotone_in_the_neurons_covered(self, conformance_case):
        """Per layer: monotone in the protected bits k instead."""
        from fpga_ft.measure.resources import estimate_resources

        _, design, _ = conformance_case
        luts = [
            estimate_resources(design.layers, ProtectionPlan({"fc": LayerProtection(protected_msbs=k)})).LUT
            for k in (0, 1, 2, 4, 8)
        ]
        assert all(a < b for a, b in zip(luts, luts[1:])), luts


class TestFullTMRConformance(SchemeConformance):
    scheme = "critical_neurons"

    def protection(self, neurons):
        return LayerProtection(critical_neurons=list(neurons))


class TestDuplicatedNeuronConformance(SchemeConformance):
    scheme = "duplicated_neurons (registered in this test)"

    def protection(self, neurons):
        return LayerProtection(scheme_neurons={"duplicated_neurons": list(neurons)})


def test_registered_scheme_comes_from_the_plan_yaml(tmp_path):
    assert "duplicated_neurons" in registered_schemes()
    path = tmp_path / "plan.yml"
    path.write_text("layers:\n  fc:\n    protected_msbs: 2\n    duplicated_neurons: [1, 3]\n")
    plan = ProtectionPlan.load(path)
    assert plan.for_layer("fc").scheme_neurons == {"duplicated_neurons": [1, 3]}
    assert plan.for_layer("fc").scheme_key_of(3) == "duplicated_neurons"
    path.write_text("layers:\n  fc:\n    critical_neurons: [1]\n    duplicated_neurons: [1]\n")
    with pytest.raises(FpgaFtError, match="listed under two schemes"):
        ProtectionPlan.load(path)
    path.write_text("layers:\n  fc:\n    tripled_neurons: [1]\n")
    with pytest.raises(FpgaFtError, match="unknown key"):
        ProtectionPlan.load(path)


def test_registry_refuses_a_clash_and_the_twin_refuses_a_registered_scheme():
    class Other(DuplicatedNeuron):
        name = "other"

    with pytest.raises(ValueError, match="already registered"):
        register_scheme(Other)

    class Builtin(DuplicatedNeuron):
        plan_key = "critical_neurons"

    with pytest.raises(ValueError, match="fpga-ft's own"):
        register_scheme(Builtin)
    from fpga_ft.core.structure import NeuronStructure, Term
    from fpga_ft.measure.twin.arithmetic import Arithmetic
    from fpga_ft.measure.twin.neuron import Twin

    ns = NeuronStructure("fc", 0, DuplicatedNeuron(16), (Term(0, 3), Term(1, -2)))
    with pytest.raises(FpgaFtError, match="no structural twin"):
        Twin(ns, Arithmetic.__new__(Arithmetic))
    assert np.isclose(DuplicatedNeuron(16).word_failure_probability(1e-3), 16e-6, rtol=1e-3)


def test_schemes_of_installed_packages_come_from_entry_points(monkeypatch):
    from importlib.metadata import EntryPoint

    from fpga_ft.core import schemes

    class Entry(DuplicatedNeuron):
        plan_key = "entry_point_neurons"

    good = EntryPoint("entry", f"{__name__}:_ENTRY", schemes.ENTRY_POINT_GROUP)
    broken = EntryPoint("broken", "no_such_module_xyz:Scheme", schemes.ENTRY_POINT_GROUP)
    monkeypatch.setattr(schemes, "_entry_points_loaded", False)
    monkeypatch.setattr(schemes, "entry_points", lambda group: [good] if group == schemes.ENTRY_POINT_GROUP else [])
    monkeypatch.setitem(globals(), "_ENTRY", Entry)
    try:
        assert "entry_point_neurons" in schemes.plan_keys()
        assert ProtectionPlan.from_dict({"layers": {"fc": {"entry_point_neurons": [0]}}}).for_layer("fc").is_protected
        monkeypatch.setattr(schemes, "_entry_points_loaded", False)
        monkeypatch.setattr(schemes, "entry_points", lambda group: [broken])
        with pytest.raises(FpgaFtError, match="scheme entry point 'broken'"):
            schemes.registered_schemes()
    finally:
        unregister_scheme(Entry)
