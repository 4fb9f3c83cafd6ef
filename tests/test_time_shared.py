"""Time-shared layers (hls4ml ``ReuseFactor > 1``, either strategy): fpga-ft builds
them as shared MAC units (fpga_ft/core/structure.py ``LayerStructure``), protected or not.

The csim stays bit-exact and exposes exactly the structure's words (every product, zeros
included, and one partial sum per product); the generated synthesis C++ (kept generic
multiplier replicas, lanes, the R-cycle loop) computes the golden outputs when run in
software; critical neurons, which have no time-shared form, are refused with one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import build_tiny_qdense

from fpga_ft.cli import main
from fpga_ft.core.faults import SITES, exposed_bits
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.structure import KIND_ADD, KIND_SMUL, REPLICAS, design_structures, module_stem

ROOT = Path(__file__).resolve().parent.parent
CNN_YAML = ROOT / "tests" / "fixtures" / "hls4ml_examples" / "qkeras_mnist_cnn_config.yml"
N_IN, N_OUT, REUSE = 10, 3, 4


def _tiny_model():
    # zero weights still have a (shared) multiplier
    return build_tiny_qdense(N_IN, N_OUT, zero_fraction=0.25)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    from fpga_ft.generate.design import build_design

    model = _tiny_model()
    plan = ProtectionPlan({"fc": LayerProtection(2)})
    design = build_design(model, plan, output_dir=tmp_path_factory.mktemp("ts") / "prj", reuse_factor=REUSE)
    x = np.random.default_rng(1).uniform(-1, 1, (300, N_IN))
    return model, design, x


def test_time_shared_structure_and_csim_bit_exact(tiny):
    model, design, x = tiny
    info = design.layers[0]
    assert info.time_shared and info.reuse_factor == REUSE
    [structure] = design_structures(design.layers, design.plan)
    units = -(-N_IN * N_OUT // REUSE)
    assert structure.n_units == units
    # every product exists (zeros too), the accumulator starts at the bias: n_in partial sums
    assert all(n.n_products == N_IN and n.n_sums == N_IN for n in structure.neurons)
    # protection replicates the units (three of each), not the products
    assert structure.instances() == {module_stem(kind, r): units for kind in (KIND_SMUL, KIND_ADD) for r in REPLICAS}
    sched = structure.schedule()
    assert sorted(q for row in sched for q in row if q is not None) == \
        [(j, i) for j in range(N_OUT) for i in range(N_IN)]
    lib = design.library
    lib.configure()
    out = lib.run(x)[0]
    np.testing.assert_array_equal(out, model.predict(x, verbose=0))


def test_time_shared_csim_consumes_the_structures_bits(tiny):
    """Flips drawn at a BER land at the rate the structure's exposed bits give (z-test),
    and a forced flip on the last exposed bit (the output voter) changes the output."""
    _, design, x = tiny
    bits = exposed_bits(design.layers, design.plan)
    W, k = design.layers[0].accum_type.width, 2
    assert bits["products"] == N_OUT * N_IN * (W + 2 * k)
    assert bits["accumulators"] == N_OUT * (N_IN * (W + 2 * k + 1) + k)
    lib = design.library
    n, ber = 3000, 0.01
    for site in ("products", "accumulators"):
        bers = [0.0] * 4
        bers[SITES.index(site)] = ber
        lib.configure(bers, seed=5)
        _, injected, masked = lib.run(np.resize(x, (n, N_IN)))
        expected = ber * bits[site] * n
        assert abs(injected[site] - expected) < 4 * np.sqrt(expected), (site, injected[site], expected)
        assert 0 < masked[site] < injected[site]
    lib.configure()
    clean = lib.run(x[:1])[0]
    lib.configure()
    lib.force_next_flip("accumulators", bits["accumulators"] - 1)
    flipped, injected, _ = lib.run(x[:1])
    assert injected["accumulators"] == 1 and not np.array_equal(flipped, clean)


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
@pytest.mark.parametrize("reuse, plan_text", [
    (REUSE, "layers:\n  fc:\n    protected_msbs: 2\n"),          # time-shared, protected
    (REUSE, "layers: {}\n"),                                       # time-shared, unprotected
    (1, "layers:\n  fc:\n    protected_msbs: 3\n    critical_neurons: [1]\n"),  # latency (issue 10)
])
def test_synthesis_cpp_computes_the_golden_outputs(tmp_path, reuse, plan_text):
    """The C++ HLS synthesises (no FPGAFT_CSIM) run in software equals the golden outputs."""
    from fpga_ft.deploy.bringup import run_testbench_with_gxx

    model = _tiny_model()
    model.save(tmp_path / "tiny.h5")
    rng = np.random.default_rng(2)
    np.savez(tmp_path / "d.npz", x=rng.uniform(-1, 1, (40, N_IN)).astype(np.float32), y=rng.integers(0, N_OUT, 40))
    (tmp_path / "plan.yml").write_text(plan_text)
    # the reuse factor comes from a user's hls4ml config, as published models carry it
    (tmp_path / "config.yml").write_text(f"KerasH5: tiny.h5\nHLSConfig:\n  Model:\n    Precision: ap_fixed<16,6>\n"
                                         f"    ReuseFactor: {reuse}\n")
    out = tmp_path / "kit"
    assert main(["bringup", str(tmp_path / "config.yml"), "--board", "zcu104", "--plan", str(tmp_path / "plan.yml"),
                 "--data", str(tmp_path / "d.npz"), "-o", str(out),
                 "--ber", "1e-3", "--repeats", "1", "--vectors", "40"]) == 0
    params = (out / "hls" / "firmware" / "parameters.h").read_text()
    if reuse > 1:
        assert "FpgaftReuse: for (unsigned c = 0; c < 4; c++)" in params
        assert ("fpgaft::tmr_mac<2" in params) == ("protected_msbs" in plan_text)
    log = run_testbench_with_gxx(out / "hls", synthesis=True)
    assert "fault-free: 0 of 40 samples differ" in log, log


def test_critical_neurons_on_a_time_shared_layer_refused(tmp_path, capsys):
    _tiny_model().save(tmp_path / "tiny.h5")
    (tmp_path / "plan.yml").write_text("layers:\n  fc:\n    critical_neurons: [0]\n")
    status = main(["estimate", str(tmp_path / "tiny.h5"), "--plan", str(tmp_path / "plan.yml"),
                   "--reuse-factor", "2", "--board", "zcu104"])
    err = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(err) == 1
    assert err[0].startswith("error: layer 'fc': critical_neurons need Strategy: Latency and ReuseFactor 1"), err


def test_published_cnn_io_stream_reuse_4_protected_bit_exact(tmp_path, capsys):
    """qkeras_mnist_cnn from its hls4ml config (io_stream) with every layer at ReuseFactor 4
    and a protected convolution: time-shared units, csim bit-exact on the pre-softmax tensor."""
    import json

    data = tmp_path / "img.npz"
    rng = np.random.default_rng(3)
    np.savez(data, x=rng.uniform(0, 1, (16, 28, 28, 1)).astype(np.float32), y=rng.integers(0, 10, 16))
    (tmp_path / "plan.yml").write_text("layers:\n  q_conv2d_1:\n    protected_msbs: 2\n")
    out = tmp_path / "csim.json"
    status = main(["csim", str(CNN_YAML), "--data", str(data), "--reuse-factor", "4", "--plan",
                   str(tmp_path / "plan.yml"), "--no-head-check", "--json", str(out)])
    assert status == 0, capsys.readouterr().err
    result = json.loads(out.read_text())
    assert result["bit_exact_fraction"] == 1.0, result
    meta = json.loads((Path(result["project_dir"]) / "fpgaft_design.json").read_text())
    assert meta["io_type"] == "io_stream"
    assert {layer["reuse_factor"] for layer in meta["layers"]} == {4}
    params = (Path(result["project_dir"]) / "firmware" / "parameters.h").read_text()
    assert params.count("FpgaftReuse: for (unsigned c = 0; c < 4; c++)") == len(meta["layers"])
    assert "fpgaft::tmr_mac<2" in params
