"""The csim's block engine (docs/csim.md) against the scalar kernels it replaces: the same
seed gives the same outputs and the same flip and mask counters, sample for sample, with
and without faults and with a fault scope. ``-DFPGAFT_CSIM_SCALAR`` builds the reference:
every neuron through its scalar kernel, convolutions pixel by pixel, hls4ml's own input
conversion."""

from __future__ import annotations

import numpy as np
import pytest

from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.generate.design import build_design
from fpga_ft.simulate.csim import CsimLibrary, build_library, target_flags


def _runs(lib: CsimLibrary, x: np.ndarray) -> list:
    runs = []
    for ber in (0.0, 1e-4, 1e-3):
        lib.configure((ber,) * 4, seed=11)
        runs.append(lib.run(x))
    lib.configure((1e-3,) * 4, persistent=True, seed=12, scrub_interval=7)
    runs.append(lib.run(x))
    lib.configure((3e-3,) * 4, seed=14, mbu=((1, 0.6), (2, 0.3), (4, 0.1)))  # bursts
    runs.append(lib.run(x))
    lib.configure((1e-2,) * 4, seed=13)
    lib.set_scope(0, 1, -1)
    runs.append(lib.run(x))
    lib.set_scope()
    return runs


@pytest.mark.parametrize("name,msbs", [("mlp", 2), ("cnn", 2), ("mlp", 1), ("cnn", 5)])
def test_block_engine_equals_scalar_kernels(bundled, name, msbs):
    model, x, _, _ = bundled(name)
    probe = build_design(model)
    layers = probe.layers
    # every kind of neuron: bit-level TMR (1 bit to most of the word), full TMR (critical),
    # plain; the sparse path's lane, carry and low-bit corrections and its give-ups
    plan = ProtectionPlan({layers[0].name: LayerProtection(msbs, [0, 3]), layers[-1].name: LayerProtection(0, [1])})
    design = build_design(model, plan)
    path, _ = build_library(design.project_dir, extra_flags=("-DFPGAFT_CSIM_SCALAR",))
    scalar = CsimLibrary(path, design.n_inputs, design.n_outputs)
    x = x[:200]
    engine_runs, scalar_runs = _runs(design.library, x), _runs(scalar, x)
    assert sum(engine_runs[2][1].values()) > 0  # faults were drawn
    for (y_e, inj_e, mask_e), (y_s, inj_s, mask_s) in zip(engine_runs, scalar_runs):
        assert np.array_equal(y_e, y_s)
        assert inj_e == inj_s and mask_e == mask_s


def test_native_flags_name_the_cpu(monkeypatch):
    """-march=native is tied to what g++ expands it to here; FPGA_FT_CSIM_NATIVE=0 is portable."""
    flags, identity = target_flags()
    assert ("-march=native" in flags) == identity.startswith("-march=")
    target_flags.cache_clear()
    monkeypatch.setenv("FPGA_FT_CSIM_NATIVE", "0")
    try:
        assert target_flags() == ((), "portable")
    finally:
        target_flags.cache_clear()


@pytest.mark.parametrize("isa_flags", [("-mno-avx512f",), ("-mno-avx2", "-mno-avx512f")])
def test_clean_pass_variants_agree(bundled, isa_flags):
    """The clean pass has a 16-bit-pair multiply-add path for AVX-512BW and for AVX2 and a
    32-bit loop without them (docs/csim.md): a build without AVX-512 (and one without AVX2
    either) gives the same outputs and counters as this machine's build, with faults."""
    if "-march=native" not in target_flags()[0]:
        pytest.skip("portable build: the variants are the same code")
    model, x, _, _ = bundled("cnn")
    design = build_design(model, ProtectionPlan.uniform(build_design(model).layers, protected_msbs=2))
    path, _ = build_library(design.project_dir, extra_flags=isa_flags)
    other = CsimLibrary(path, design.n_inputs, design.n_outputs)
    x = x[:200]
    for (y_a, inj_a, mask_a), (y_b, inj_b, mask_b) in zip(_runs(design.library, x), _runs(other, x)):
        assert np.array_equal(y_a, y_b)
        assert inj_a == inj_b and mask_a == mask_b


def test_csim_top_makes_layer_arrays_static():
    """The csim's copy of the top function: each layer output array hls4ml declares and
    partitions becomes static; the port arrays, an alias and anything without its
    ARRAY_PARTITION pragma stay as written."""
    from fpga_ft.simulate.csim import csim_top_source

    top = (
        "void myproject(\n    x_in_t x_in[8*8*1],\n    result_t layer15_out[10]\n) {\n"
        "    #pragma HLS ARRAY_PARTITION variable=layer15_out complete dim=0\n"
        "    conv1_t layer3_out[8*8*8];\n"
        "    #pragma HLS ARRAY_PARTITION variable=layer3_out complete dim=0\n\n"
        "    ap_fixed<16,6> layer5_out[N_LAYER_5];\n"
        "    #pragma HLS ARRAY_PARTITION variable=layer5_out complete dim=0\n"
        "    pool_t scratch[4];\n"
        "    auto& layer14_out = layer5_out;\n"
        "    hls::stream<layer2_t> layer2_out(\"layer2_out\");\n"
        "}\n")
    out = csim_top_source(top)
    assert "    static conv1_t layer3_out[8*8*8];\n" in out
    assert "    static ap_fixed<16,6> layer5_out[N_LAYER_5];\n" in out
    assert out.count("static") == 2
    assert out.replace("static ", "") == top
