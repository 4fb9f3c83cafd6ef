"""Tests for fpga_ft.core.faults (fault model, exposure counts) and fpga_ft.core.stats (intervals,
sample size), including the injector's flip counts against the fault model's theory."""

from __future__ import annotations

import dataclasses
import math
import os

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import (
    SITES,
    FaultModel,
    exposed_bits,
    parse_ber,
    parse_sites,
    protected_bit_failure_probability,
    protected_bit_masked_probability,
)
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.core.stats import (
    accuracy_interval,
    binomial_count_interval,
    binomial_interval,
    clopper_pearson_interval,
    halfwidth,
    leveugle_sample_size,
    wilson_interval,
    z_value,
)


def _err(fn, *args, **kwargs) -> str:
    with pytest.raises(FpgaFtError) as info:
        fn(*args, **kwargs)
    message = str(info.value)
    assert "\n" not in message
    return message


# ----------------------------------------------------------------------------- FaultModel
@pytest.mark.parametrize("bad", [-0.1, 1.5, 2, float("nan"), "abc"])
def test_ber_out_of_range(bad):
    message = _err(FaultModel, bad)
    assert message.startswith("BER must be")
    if isinstance(bad, (int, float)) and not math.isnan(bad):
        assert message == f"BER must be in [0, 1], got {bad}"


def test_ber_edges_and_strings():
    assert FaultModel(0).ber == 0.0 and FaultModel(1).ber == 1.0
    assert parse_ber("1e-4") == 1e-4


def test_sites_parsing():
    assert parse_sites("weights,activations") == ("weights", "activations")
    assert parse_sites("accumulators, weights") == ("weights", "accumulators")  # canonical order
    assert parse_sites("all") == SITES
    assert parse_sites(["products", "products"]) == ("products",)
    message = _err(parse_sites, "weights,flux")
    assert "unknown fault site 'flux'" in message
    for site in SITES:
        assert site in message
    assert "no fault site" in _err(parse_sites, " , ")
    assert "unknown fault site" in _err(FaultModel, 1e-3, sites="bogus")


def test_fault_model_fields():
    model = FaultModel(1e-3, sites="products,accumulators", mode="persistent", scrub_interval=50)
    assert model.bers() == (0.0, 0.0, 1e-3, 1e-3)
    assert model.persistent
    assert FaultModel.from_dict(model.to_dict()) == model
    assert model.to_dict()["ber_units"] == "faults per bit per inference"
    assert FaultModel(1e-5).bers() == (1e-5,) * 4
    assert FaultModel(1e-5).scrub_interval == 100  # default
    assert "unknown fault mode" in _err(FaultModel, 1e-3, mode="sticky")
    assert "scrub interval" in _err(FaultModel, 1e-3, scrub_interval=-1)
    assert "unknown key" in _err(FaultModel.from_dict, {"ber": 0.1, "rate": 2})
    with pytest.raises(dataclasses.FrozenInstanceError):
        model.ber = 0.5  # frozen


def test_protected_bit_probabilities():
    for p in (0.0, 1e-4, 0.05, 0.5, 1.0):
        assert protected_bit_failure_probability(p) == pytest.approx(3 * p**2 - 2 * p**3)
    # Monte Carlo: 2-of-3 vote of independently flipped replicas
    rng = np.random.default_rng(1)
    p = 0.1
    flips = rng.random((400_000, 3)) < p
    failed = flips.sum(axis=1) >= 2
    masked = flips.sum(axis=1) == 1
    assert failed.mean() == pytest.approx(protected_bit_failure_probability(p), rel=0.03)
    assert masked.mean() == pytest.approx(protected_bit_masked_probability(p), rel=0.01)


# ----------------------------------------------------------------------------- stats
def test_wilson_known_values():
    low, high = wilson_interval(5, 10, 0.95)
    assert (low, high) == pytest.approx((0.2366, 0.7634), abs=1e-4)
    low, high = wilson_interval(0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(0.2775, abs=1e-4)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(0.7225, abs=1e-4)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    assert z_value(0.95) == pytest.approx(1.959964, abs=1e-6)
    assert "invalid binomial counts" in _err(wilson_interval, 5, 3)
    assert "confidence" in _err(wilson_interval, 1, 3, 1.5)


def test_clopper_pearson_known_values():
    low, high = clopper_pearson_interval(0, 10, 0.95)
    assert low == 0.0 and high == pytest.approx(1 - 0.025 ** (1 / 10), abs=1e-9)
    low, high = clopper_pearson_interval(5, 10, 0.95)
    assert (low, high) == pytest.approx((0.1871, 0.8129), abs=1e-4)
    # exact interval contains Wilson's for moderate counts
    wl, wh = wilson_interval(37, 400)
    cl, ch = binomial_interval(37, 400, method="clopper-pearson")
    assert cl <= wl and ch >= wh
    assert "unknown interval method" in _err(binomial_interval, 1, 2, method="bayes")


def test_accuracy_interval_is_on_error_count():
    accuracy, low, high = accuracy_interval(450, 500)
    err_low, err_high = wilson_interval(50, 500)
    assert accuracy == 0.9
    assert (low, high) == pytest.approx((1 - err_high, 1 - err_low))
    assert halfwidth((low, high)) == pytest.approx((high - low) / 2)


def test_wilson_coverage():
    rng = np.random.default_rng(7)
    n, p = 400, 0.9
    counts = rng.binomial(n, p, size=4000)
    covered = np.mean([wilson_interval(int(k), n)[0] <= p <= wilson_interval(int(k), n)[1] for k in counts])
    assert 0.93 <= covered <= 0.97


def test_leveugle_sample_size():
    # n = N / (1 + e^2 (N - 1) / (t^2 p (1 - p)))
    t = z_value(0.95)
    expected = 10_000 / (1 + 0.01**2 * 9_999 / (t * t * 0.25))
    assert leveugle_sample_size(10_000, 0.01, 0.95) == math.ceil(expected)
    # huge population: the infinite-population limit t^2 p (1-p) / e^2 = 9604 at 1 %, 95 %
    assert leveugle_sample_size(10**12, 0.01, 0.95) == 9604
    # 99 % confidence, 1 % margin, worst-case p: 16,588 for an infinite population
    assert leveugle_sample_size(10**12, 0.01, 0.99) == 16588
    assert leveugle_sample_size(50, 0.01) <= 50
    assert leveugle_sample_size(10**6, 0.01, p=0.1) < leveugle_sample_size(10**6, 0.01, p=0.5)
    assert "margin" in _err(leveugle_sample_size, 100, 0.0)


def test_binomial_count_interval():
    low, high = binomial_count_interval(1_000_000, 1e-3, 0.999)
    assert low < 1000 < high
    assert high - low == pytest.approx(2 * 3.29 * math.sqrt(1000 * 0.999), rel=0.05)


# ----------------------------------------------------------------------------- designs
@pytest.fixture(scope="module")
def designs(tmp_path_factory):
    """Compiled designs (the cache dir is shared by the session's test modules)."""
    previous = os.environ.get("FPGA_FT_CACHE")
    if not previous:
        os.environ["FPGA_FT_CACHE"] = str(tmp_path_factory.getbasetemp() / "fpga_ft_cache")
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_data, load_model

    mlp = load_model(MODELS_DIR / "digits_mlp.h5")
    cnn = load_model(MODELS_DIR / "digits_cnn.h5")
    plain = build_design(mlp)
    mixed_plan = ProtectionPlan.from_dict({"layers": {
        "fc1": {"protected_msbs": 3},
        "fc2": {"protected_msbs": 1, "critical_neurons": [0, 5, 31]},
        "fc3": {"critical_neurons": list(range(10))}}})
    cnn_plan = ProtectionPlan.from_dict({"layers": {
        "conv1": {"protected_msbs": 2, "critical_neurons": [1]},
        "conv2": {"critical_neurons": [0, 15]},
        "fc_out": {"protected_msbs": 4}}})
    result = {
        "mlp": plain,
        "mlp_mixed": build_design(mlp, mixed_plan),
        "mlp_full": build_design(mlp, ProtectionPlan.uniform(plain.layers, protected_msbs=64)),
        "cnn_mixed": build_design(cnn, cnn_plan),
        "mlp_data": load_data(MODELS_DIR / "digits_test.npz"),
        "cnn_data": load_data(MODELS_DIR / "digits_img_test.npz"),
    }
    yield result
    if not previous:
        os.environ.pop("FPGA_FT_CACHE", None)


def test_exposed_bits_formula(designs):
    """Products of non-zero weights, one partial sum per term after the first (the bias,
    when non-zero, is a term), W bits each unprotected; full TMR of every bit: 3W, no carry,
    plus a W-bit output voter per neuron."""
    from fpga_ft.core.structure import design_structures

    layers = designs["mlp"].layers
    bits = exposed_bits(layers)
    assert bits["weights"] == sum(l.n_in * l.n_out * l.weight_type.width + l.n_out * l.bias_type.width
                                  for l in layers)
    assert bits["activations"] == sum(l.n_input_words * l.input_type.width for l in layers)
    nonzero = sum(int(np.count_nonzero(l.weights)) * l.accum_type.width for l in layers)
    assert bits["products"] == nonzero < sum(l.n_in * l.n_out * l.accum_type.width for l in layers)
    sums = sum(n.n_sums * l.accum_type.width for l, s in zip(layers, design_structures(layers, None))
               for n in s.neurons)
    assert bits["accumulators"] == sums
    full = exposed_bits(layers, designs["mlp_full"].plan)
    voters = sum(l.accum_type.width * sum(1 for j in range(l.n_out) if np.any(l.weights[:, j])) for l in layers)
    assert full["products"] == 3 * bits["products"] and full["weights"] == bits["weights"]
    assert full["accumulators"] == 3 * bits["accumulators"] + voters


@pytest.mark.parametrize("name", ["mlp", "mlp_mixed", "cnn_mixed"])
def test_flips_match_ber_times_exposed_bits(designs, name):
    """Flips drawn per site over many inferences = BER x exposed bits, within the
    binomial interval (99.9 %)."""
    design = designs[name]
    x, _ = designs["cnn_data" if name.startswith("cnn") else "mlp_data"]
    bits = exposed_bits(design.layers, design.plan)
    ber = 1e-3
    library = design.library
    injected = dict.fromkeys(SITES, 0)
    inferences = 0
    for seed in range(2):
        library.configure((ber,) * 4, seed=seed)
        _, counts, _ = library.run(x)
        inferences += len(x)
        for site in SITES:
            injected[site] += counts[site]
    for site in SITES:
        trials = bits[site] * inferences
        low, high = binomial_count_interval(trials, ber, 0.999)
        assert low <= injected[site] <= high, (site, injected[site], ber * trials)
    # one site at a time: the others stay silent
    library.configure((0.0, 0.0, ber, 0.0), seed=3)
    _, counts, masked = library.run(x[:50])
    assert counts["weights"] == counts["activations"] == counts["accumulators"] == 0 < counts["products"]
    assert all(v == 0 for k, v in masked.items() if k != "products")


def test_protected_words_fail_only_at_second_order(designs):
    """Every product bit protected (protected_msbs = accumulator width), products only:
    each product is three lanes of W bits that enter the next add unvoted and are voted by
    the add after it. A flip is masked unless another lane of the same product is also
    corrupted (and then only when the two corruptions overlap after the additions), so the
    masked fraction is at least (1-p)^(2W) and failures are of second order."""
    design = designs["mlp_full"]
    x, _ = designs["mlp_data"]
    p = 0.01
    library = design.library
    library.configure((0.0, 0.0, p, 0.0), seed=11)
    n = 40
    _, injected, masked = library.run(x[:n])
    lane_bits = n * sum(int(np.count_nonzero(l.weights)) * l.n_positions * l.accum_type.width
                        for l in design.layers)
    assert exposed_bits(design.layers, design.plan)["products"] * n == 3 * lane_bits
    low, high = binomial_count_interval(3 * lane_bits, p, 0.999)
    assert low <= injected["products"] <= high
    clean_others = (1 - p) ** (2 * max(l.accum_type.width for l in design.layers))
    low, _ = binomial_count_interval(injected["products"], clean_others, 0.999)
    assert masked["products"] >= low
    assert 0 < injected["products"] - masked["products"]  # two corrupted lanes can outvote the third
    assert (injected["products"] - masked["products"]) / injected["products"] < 1 - clean_others + 0.01
    assert protected_bit_failure_probability(p) == pytest.approx(3 * p**2 - 2 * p**3)
