"""The conformance test class every protection scheme passes (as Optuna's samplers and
storages pass theirs).

Subclass :class:`SchemeConformance` in a test module, set ``scheme`` (a label) and
implement :meth:`SchemeConformance.protection` (the layer protection putting the scheme on
given neurons); pytest then runs every check below on a tiny QKeras Dense layer
(``N_IN`` inputs, ``N_OUT`` neurons, linear output: the csim output is the accumulator
word), with the scheme on neurons ``SCHEME_NEURONS`` and the others unprotected:

* fault-free, the csim equals QKeras bit for bit;
* at a BER p per site, the flips the csim draws equal p x the exposed bits
  (``fpga_ft.core.faults.exposed_bits``: the scheme's node classes) within a 99.9 %
  binomial interval, site by site;
* one forced flip on a node the scheme marks ``masked`` leaves the output unchanged and
  is counted masked; one on an unmasked node changes the flipped inference's output;
* cost is monotone: LUT, FF and DSP never fall as the scheme covers more neurons, LUTs
  rise once it covers one, and the kept replica modules it declares appear in the
  synthesis C++, which g++ compiles (``-fsyntax-only``, without ``FPGAFT_CSIM``);
* the word failure probability is 0 at p = 0, rises with p, and a plan with the scheme
  survives its YAML round trip.

Built-in schemes (``protected_msbs``, ``critical_neurons``) and schemes registered with
``fpga_ft.core.schemes.register_scheme`` alike (tests/test_schemes.py).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from fpga_ft.core.plan import LayerProtection, ProtectionPlan

__all__ = ["SchemeConformance", "tiny_qdense"]

LAYER = "fc"


def tiny_qdense(n_in: int = 10, n_out: int = 3, zero_fraction: float = 0.2, seed: int = 7):
    """QDense(n_out) named ``fc`` on n_in inputs behind an 8-bit input quantizer, 6-bit
    weights and biases, linear output (result_t == accum_t); about ``zero_fraction`` of the
    weights zero."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    inp = tf.keras.Input((n_in,))
    h = QActivation(quantized_bits(8, 0, alpha=1), name="qin")(inp)
    out = QDense(
        n_out, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1), name=LAYER
    )(h)
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    w = rng.normal(0, 0.4, (n_in, n_out))
    w[rng.random((n_in, n_out)) < zero_fraction] = 0.0
    model.get_layer(LAYER).set_weights([w, rng.normal(0, 0.3, n_out)])
    return model


class SchemeConformance:
    """Checks every protection scheme passes (see the module docstring)."""

    scheme = "scheme"
    N_IN, N_OUT, INFERENCES = 12, 4, 40
    SCHEME_NEURONS = (0, 2)
    BER = 2e-3

    def protection(self, neurons: list[int]) -> LayerProtection:
        """The protection of layer ``fc`` with the scheme on ``neurons`` (others unprotected)."""
        raise NotImplementedError

    # ---- fixtures ------------------------------------------------------------------------
    @pytest.fixture(scope="class")
    def conformance_case(self, tmp_path_factory):
        from fpga_ft.generate.design import build_design

        model = tiny_qdense(self.N_IN, self.N_OUT)
        plan = ProtectionPlan({LAYER: self.protection(list(self.SCHEME_NEURONS))})
        design = build_design(model, plan, output_dir=tmp_path_factory.mktemp("conformance") / "prj")
        x = np.random.default_rng(8).uniform(-1, 1, (self.INFERENCES, self.N_IN)).astype(np.float32)
        return model, design, x

    def _plan(self, neurons) -> ProtectionPlan:
        return ProtectionPlan({LAYER: self.protection(list(neurons))})

    # ---- checks ----------------------------------------------------------------------------
    def test_fault_free_csim_is_bit_exact(self, conformance_case):
        model, design, x = conformance_case
        lib = design.library
        lib.configure()
        out, injected, _ = lib.run(x)
        assert not any(injected.values())
        np.testing.assert_array_equal(out.reshape(len(x), -1), model.predict(x, verbose=0).astype(out.dtype))

    def test_flips_counted_equal_ber_times_exposed_bits(self, conformance_case):
        from fpga_ft.core.faults import SITES, exposed_bits
        from fpga_ft.core.stats import binomial_count_interval

        _, design, x = conformance_case
        bits = exposed_bits(design.layers, design.plan)
        lib = design.library
        injected = dict.fromkeys(SITES, 0)
        runs = 5
        for seed in range(runs):
            lib.configure((self.BER,) * len(SITES), seed=seed)
            _, counts, _ = lib.run(x)
            for site in SITES:
                injected[site] += counts[site]
        for site in SITES:
            low, high = binomial_count_interval(bits[site] * runs * len(x), self.BER, 0.999)
            assert low <= injected[site] <= high, (
                self.scheme,
                site,
                injected[site],
                self.BER * bits[site] * runs * len(x),
            )

    def _words(self, design):
        """(site, bit offset of the word, node classes of the word) of the first scheme neuron."""
        from fpga_ft.core.exposure import node_offset
        from fpga_ft.core.structure import design_structures

        structures = design_structures(design.layers, design.plan)
        neuron = structures[0].neurons[self.SCHEME_NEURONS[0]]
        assert neuron.n_products >= 2, "the conformance model's scheme neuron needs two products"
        j, s = neuron.neuron, neuron.scheme
        words = [
            (
                "products",
                node_offset(design.layers, design.plan, 0, j, "products", 0, structures=structures),
                s.product_nodes(),
            ),
            (
                "accumulators",
                node_offset(design.layers, design.plan, 0, j, "accumulators", 0, structures=structures),
                s.sum_nodes(),
            ),
        ]
        if s.output_nodes():
            words.append(
                (
                    "accumulators",
                    node_offset(design.layers, design.plan, 0, j, "accumulators", "output", structures=structures),
                    s.output_nodes(),
                )
            )
        return words

    def test_one_flip_per_node_class_is_masked_or_seen_as_described(self, conformance_case):
        from fpga_ft.core.faults import exposed_bits

        _, design, x = conformance_case
        lib = design.library
        lib.configure()
        clean = lib.run(x[:1])[0]
        per_inference = exposed_bits(design.layers, design.plan)
        checked = 0
        for site, offset, nodes in self._words(design):
            start = 0
            for node in nodes:
                lib.configure()
                lib.force_next_flip(site, offset + start + node.bits - 1)  # the class's top bit
                out, injected, masked = lib.run(x[:1])
                assert injected[site] == 1 and per_inference[site] > 0
                if node.masked:
                    assert masked[site] == 1, (self.scheme, node.name)
                    np.testing.assert_array_equal(out, clean, err_msg=f"{self.scheme}: {node.name}")
                else:
                    assert masked[site] == 0, (self.scheme, node.name)
                    assert not np.array_equal(out, clean), (self.scheme, node.name)
                start += node.bits
                checked += 1
        assert checked >= 2

    def test_cost_is_monotone_in_the_neurons_covered(self, conformance_case):
        from fpga_ft.measure.resources import estimate_resources

        _, design, _ = conformance_case
        steps = [(), (0,), (0, 2), tuple(range(self.N_OUT))]
        costs = [estimate_resources(design.layers, self._plan(n)) for n in steps]
        for key in ("LUT", "FF", "DSP"):
            values = [c.to_dict()[key] for c in costs]
            assert all(a <= b + 1e-9 for a, b in zip(values, values[1:])), (self.scheme, key, values)
        luts = [c.to_dict()["LUT"] for c in costs]
        assert luts[1] > luts[0], (self.scheme, luts)

    def test_kept_modules_appear_in_the_synthesis_code(self, conformance_case):
        from fpga_ft.core.structure import design_structures
        from fpga_ft.generate.keep_replicas import expected_instances

        _, design, _ = conformance_case
        structures = design_structures(design.layers, design.plan)
        expected = expected_instances(design.layers, design.plan).get(LAYER, {})
        assert expected == {k: v for k, v in sorted(structures[0].instances().items()) if v}
        text = "\n".join(
            p.read_text()
            for p in design.project_dir.rglob("*.h")
            if p.name == "parameters.h" or p.name.startswith("fpgaft_")
        )
        for stem in expected:
            assert stem in text, (self.scheme, stem)

    def test_synthesis_code_compiles(self, conformance_case):
        """The synthesis build (no ``FPGAFT_CSIM``: the kept replica modules with constant
        weights) passes g++'s front end, templates instantiated."""
        import shutil
        import subprocess

        _, design, _ = conformance_case
        gxx = shutil.which("g++")
        if gxx is None:
            pytest.skip("needs g++")
        fw = design.project_dir / "firmware"
        run = subprocess.run(
            [gxx, "-std=c++14", "-fsyntax-only", "-w", f"-I{fw}", f"-I{fw / 'ap_types'}", str(fw / "myproject.cpp")],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert run.returncode == 0, (self.scheme, run.stderr[-3000:])

    def test_failure_probability_and_plan_round_trip(self, conformance_case):
        from fpga_ft.core.structure import design_structures

        _, design, _ = conformance_case
        scheme = design_structures(design.layers, design.plan)[0].neurons[self.SCHEME_NEURONS[0]].scheme
        probs = [scheme.word_failure_probability(p) for p in (0.0, 1e-5, 1e-3, 1e-2)]
        assert probs[0] == 0.0 and all(a < b for a, b in zip(probs[1:], probs[2:])), probs
        plan = self._plan(self.SCHEME_NEURONS)
        assert ProtectionPlan.from_dict(plan.to_dict()).key() == plan.key()
