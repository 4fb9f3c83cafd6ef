"""The views of fpga_ft/core/structure.py agree: for every node class of every scheme, a flip on
that node in the csim changes (or keeps) the neuron's output exactly as the Yosys proof on
the structural twin says for the same node class."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import build_tiny_qdense, needs_yosys_tools

from fpga_ft.core.exposure import node_offset
from fpga_ft.core.faults import exposed_bits
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.structure import design_structures

pytestmark = pytest.mark.yosys

N_IN, N_OUT, INFERENCES = 10, 3, 6


@pytest.fixture(scope="module")
def tiny_design(tmp_path_factory):
    """QDense(3) on 10 inputs, linear output (result_t == accum_t: the csim output is the
    accumulator); neuron 0 and 2 bit-level TMR (k = 2), neuron 1 critical."""
    from fpga_ft.generate.design import build_design

    model = build_tiny_qdense(N_IN, N_OUT)
    plan = ProtectionPlan({"fc": LayerProtection(2, [1])})
    design = build_design(model, plan, output_dir=tmp_path_factory.mktemp("tiny") / "prj")
    info = design.layers[0]
    assert info.result_type == info.accum_type
    x = np.random.default_rng(8).uniform(-1, 1, (INFERENCES, N_IN))
    return design, x


def _csim_changes(design, x, site: str, offset: int) -> bool:
    """Flip the bit at ``offset`` (from the start of an inference) in every inference, one
    inference at a time; True when some inference's output changed."""
    lib = design.library
    lib.configure()
    clean = lib.run(x)[0]
    per_inference = exposed_bits(design.layers, design.plan)[site]
    changed = False
    for i in range(len(x)):
        lib.configure()
        lib.force_next_flip(site, i * per_inference + offset)
        out, injected, _ = lib.run(x)
        assert injected[site] == 1
        changed |= not np.array_equal(out, clean)
    return changed


def _word_bits(nodes):
    """(node class, first bit in the word) for each class of a word layout."""
    start, out = 0, []
    for cls in nodes:
        out.append((cls, start))
        start += cls.bits
    return out


def _class_of(label: str) -> str:
    """``p3.lane1[0]`` -> ``product.lane1``, ``r2.s4.replica[16]`` -> ``sum.replica``,
    ``out.voter[1]`` -> ``output.voter`` (the twin's site labels)."""
    parts = label.split("[")[0].split(".")
    node, role = parts[-2], parts[-1]
    word = "output" if node == "out" else "product" if node.startswith("p") else "sum"
    return f"{word}.{role}"


@needs_yosys_tools
@pytest.mark.parametrize("neuron", [0, 1])
def test_csim_flips_agree_with_the_sat_proof(tiny_design, neuron, tmp_path):
    from fpga_ft.measure.twin import verify_neuron

    design, x = tiny_design
    info = design.layers[0]
    protection = design.plan.for_layer("fc")
    result = verify_neuron(info, protection, neuron, workdir=tmp_path, synth=False)
    assert result["ok"], result.get("failures")
    unmasked_classes = {_class_of(label) for label in result["unmasked_nodes"]}

    structure = design_structures(design.layers, design.plan)[0].neurons[neuron]
    scheme = structure.scheme
    checked = 0
    for site, words, layout in (("products", [0, structure.n_products - 1], scheme.product_nodes()),
                                ("accumulators", [0, structure.n_sums - 1], scheme.sum_nodes()),
                                ("accumulators", ["output"], scheme.output_nodes())):
        for word in words:
            replicas = range(3) if scheme.dot_replicas == 3 and word != "output" else (0,)
            for replica in replicas:
                base = node_offset(design.layers, design.plan, 0, neuron, site, word, replica=replica)
                for cls, first in _word_bits(layout):
                    twin_masked = cls.name not in unmasked_classes
                    assert twin_masked == cls.masked, (cls.name, "twin disagrees with the structure")
                    for bit in {0, cls.bits - 1}:
                        changed = _csim_changes(design, x, site, base + first + bit)
                        assert changed == (not twin_masked), (cls.name, word, replica, bit)
                        checked += 1
    assert checked >= 8
