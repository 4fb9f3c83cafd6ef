"""Weight fault modes (transient, accumulate, latched, stuck-at), multi-bit upsets, upset
rates and device statistics (issue 15)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import (
    SITES,
    FaultModel,
    UpsetRate,
    accumulated_flip_probability,
    parse_mbu,
)
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.core.stats import binomial_count_interval, mean_interval, quantile_interval
from fpga_ft.simulate.campaign.layout import pass_slices

MLP_DATA = MODELS_DIR / "digits_test.npz"
K = 4  # protected MSBs of the BitTMR design of the MBU test


# ----------------------------------------------------------------------------- pure model
def test_modes_and_alias():
    assert FaultModel(1e-3, mode="persistent").mode == "accumulate"
    assert FaultModel(1e-3, mode="Stuck_At").mode == "stuck-at"
    latched = FaultModel(1e-3, mode="latched", scrub_interval=0)
    assert latched.held and latched.persistent and latched.weight_mode == 2
    assert not FaultModel(1e-3).persistent
    with pytest.raises(FpgaFtError, match="unknown fault mode"):
        FaultModel(1e-3, mode="sticky")
    # each device is one slice of its own (interval 0: the pass)
    assert pass_slices(540, latched, 512) == [(0, 540)]
    held = FaultModel(1e-3, mode="latched", scrub_interval=100)
    assert pass_slices(540, held, 512) == [(a, min(540, a + 100)) for a in range(0, 540, 100)]


def test_mbu_parsing():
    assert parse_mbu("3:0.01, 2:0.1") == ((2, 0.1), (3, 0.01))
    assert parse_mbu(None) == () and parse_mbu("") == ()
    for bad in ("2", "1:0.5", "17:0.1", "2:1.5", "2:0.6,3:0.6", "2:0.1,2:0.2"):
        with pytest.raises(FpgaFtError):
            parse_mbu(bad)
    model = FaultModel(1e-3, mbu="2:0.25")
    assert model.to_dict()["mbu"] == [[2, 0.25]]
    assert FaultModel.from_dict(model.to_dict()) == model
    assert "mbu" not in FaultModel(1e-3).to_dict()  # single-bit JSON (and campaign keys) unchanged


def test_upset_rate_conversion():
    rate = UpsetRate(rate=2e-9, inference_rate=1000.0, scrub_period=60.0)
    transient = FaultModel.from_upset_rate(rate, mode="transient")
    assert transient.ber == pytest.approx(-math.expm1(-2e-9 / 1000.0))
    latched = FaultModel.from_upset_rate(rate, mode="latched")
    assert latched.ber == pytest.approx(-math.expm1(-2e-9 * 60.0))
    assert latched.scrub_interval == 60_000  # inferences per scrub period
    # weights per interval, the recomputed sites per inference
    assert latched.bers() == (pytest.approx(latched.ber),) + (pytest.approx(transient.ber),) * (len(SITES) - 1)
    source = latched.to_dict()["ber_source"]
    assert source["ber_per"] == "scrub interval" and source["upset_rate"] == 2e-9
    assert transient.to_dict()["ber_source"]["ber_per"] == "inference"
    assert FaultModel.from_dict(json.loads(json.dumps(latched.to_dict()))) == latched
    with pytest.raises(FpgaFtError, match="scrub period"):
        UpsetRate(rate=1e-9, inference_rate=10.0).ber("latched")
    with pytest.raises(FpgaFtError):
        UpsetRate(rate=1e-9, inference_rate=0.0)


def test_accumulated_rate_formula():
    assert accumulated_flip_probability(0.01, 1) == pytest.approx(0.01)
    assert accumulated_flip_probability(0.01, 2) == pytest.approx(2 * 0.01 * 0.99)  # flipped exactly once
    assert accumulated_flip_probability(1e-3, 10**6) == pytest.approx(0.5)


def test_quantile_and_mean_intervals_cover():
    rng = np.random.default_rng(5)
    trials, hits_q, hits_m = 300, 0, 0
    for _ in range(trials):
        draws = rng.normal(0.0, 1.0, 200)
        low, high = quantile_interval(draws, 0.05, 0.95)
        hits_q += low is not None and high is not None and low <= -1.6448536 <= high
        m_low, m_high = mean_interval(draws, 0.95)
        hits_m += m_low <= 0.0 <= m_high
    assert hits_q / trials >= 0.90 and hits_m / trials >= 0.90
    assert quantile_interval(range(50), 0.01, 0.95)[0] is None  # too few devices to bound the 1st percentile


# ----------------------------------------------------------------------------- csim
@pytest.fixture(scope="module")
def env(mlp_design):
    return mlp_design


def _inside(count: int, trials: int, p: float) -> bool:
    low, high = binomial_count_interval(trials, p, 0.999)
    return low <= count <= high


def test_accumulate_matches_effective_rate(env):
    """accumulate: after i inferences the fraction of flipped weight bits is (1-(1-2p)^i)/2,
    not i p (the flips of later inferences undo earlier ones)."""
    library, x = env["plain"].library, env["x"]
    p = 0.01
    library.configure((p, 0, 0, 0), seed=11, scrub_interval=0, weight_mode="accumulate")
    done = 0
    for i in (1, 5, 20, 60):
        library.run(x[: i - done])
        done = i
        flipped, total = library.weight_flipped_bits()
        assert _inside(flipped, total, accumulated_flip_probability(p, i)), (i, flipped, total)
    assert flipped < 0.8 * i * p * total  # far from the linear i p


def test_latched_holds_and_stuck_at_forces(env):
    library, x = env["plain"].library, env["x"]
    p = 0.01
    library.configure((p, 0, 0, 0), seed=12, scrub_interval=4, weight_mode="latched")
    patterns = []
    for i in range(8):
        library.run(x[i:i + 1])
        patterns.append(library.weight_flipped_bits())
    flipped, total = patterns[0]
    assert _inside(flipped, total, p)
    assert patterns[:4] == [patterns[0]] * 4  # held for the interval (4 inferences)
    assert patterns[4:] == [patterns[4]] * 4 and patterns[4] != patterns[0]  # a new device after the scrub
    assert _inside(patterns[4][0], total, p)
    # stuck-at: half the faults force a bit to the value it has already
    library.configure((p, 0, 0, 0), seed=13, scrub_interval=0, weight_mode="stuck-at")
    library.run(x[:3])
    flipped, total = library.weight_flipped_bits()
    assert _inside(flipped, total, p / 2)


def test_latched_mean_and_device_spread(env):
    """latched at p has the transient mean (each inference sees weights flipped at p either
    way) but a device spread larger than the pass-to-pass spread of transient faults (the
    analytic expectation FKeras's model, flipped weights per device, has too)."""
    from fpga_ft.simulate.campaign import run_campaign

    plain, x, y = env["plain"], env["x"], env["y"]
    p, n = 2e-3, 40
    transient = run_campaign(plain, x, y, FaultModel(p, sites="weights"), repeats=n, seed=1)
    latched = run_campaign(plain, x, y, FaultModel(p, sites="weights", mode="latched", scrub_interval=0),
                           repeats=n, seed=1, target_accuracy=0.9)
    devices = latched.devices.to_dict()
    assert devices["count"] == n and latched.chunks == n
    assert devices["inferences_per_device"] == len(x)
    se = math.hypot(np.std(transient.repeat_accuracies, ddof=1), devices["std"]) / math.sqrt(n)
    assert abs(devices["mean"] - transient.accuracy_mean) < 4 * se
    assert devices["std"] > 1.5 * np.std(transient.repeat_accuracies, ddof=1)
    assert devices["p05"] <= devices["p50"] <= devices["max"]
    below = sum(a < 0.9 for a in latched.devices.accuracies)
    assert devices["prob_below_target"] == below / n
    assert devices["prob_below_target_ci"][0] <= below / n <= devices["prob_below_target_ci"][1]
    assert devices["mean_ci_low"] <= devices["mean"] <= devices["mean_ci_high"]
    assert latched.to_dict()["fault_model"]["ber_units"] == "faults per bit per scrub interval"


def _masked_fraction(width: int, k: int, burst: int) -> float:
    """Geometry: a flip event lands uniformly on the W + 2k exposed bits of a BitTMR product
    word (replica 0's W bits, lanes 1 and 2's top k) and flips ``burst`` adjacent bits of the
    same replica's word, clipped at its MSB. Bits of a replica's protected slice are
    outvoted (one lane wrong); replica 0's low W - k bits are single nodes."""
    masked = flipped = 0
    for pos in range(width):
        bits = range(pos, min(pos + burst, width))
        flipped += len(bits)
        masked += sum(b >= width - k for b in bits)
    for _lane in (1, 2):
        for j in range(k):
            n = min(j + burst, k) - j
            flipped += n
            masked += n
    return masked / flipped


def test_mbu_on_protected_word_geometry(env):
    """MBU of size 2 on protected_msbs products: a burst stays in one replica's word, so two
    lanes are never wrong at the same bit by one event: the vote is defeated (a flip left
    unmasked) only where the burst touches replica 0's unprotected low bits, as often as
    the geometry says."""
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.design import build_design

    plain = env["plain"]
    design = build_design(env["model"], ProtectionPlan.uniform(plain.layers, protected_msbs=K))
    library, x = design.library, env["x"]
    width = plain.layers[0].accum_type.width
    for burst, mbu in ((1, ()), (2, ((2, 1.0),))):
        library.configure((0, 0, 1e-4, 0), seed=21, weight_mode="transient", mbu=mbu)
        library.set_scope(0, -1, -1)  # the first layer's products only: one word width
        _, injected, masked = library.run(x)
        library.set_scope(-1, -1, -1)
        n = injected["products"]
        expected = _masked_fraction(width, K, burst)
        assert n > 2000
        sd = math.sqrt(expected * (1 - expected) * burst / n)  # a burst's bits share one fate
        assert abs(masked["products"] / n - expected) < 5 * sd, (burst, masked["products"], n, expected)


def test_inject_cli_latched_upset_rate(env, tmp_path):
    """``fpga-ft inject --mode latched --upset-rate``: device statistics, the BER's source,
    wrong outputs per hour, the device plot; the result's JSON round-trips."""
    from fpga_ft.cli import main
    from fpga_ft.simulate.campaign import CampaignResult

    out, plot = tmp_path / "out.json", tmp_path / "devices.png"
    code = main(["inject", str(env["plain"].project_dir), "--data", str(MLP_DATA), "--mode", "latched",
                 "--upset-rate", "2e-5", "--inference-rate", "100", "--scrub-period", "5.4", "--sites", "weights",
                 "--repeats", "12", "--target", "0.95", "--mbu", "2:0.2", "--no-checkpoint",
                 "--device-plot", str(plot), "--json", str(out)])
    assert code == 0 and plot.stat().st_size > 0
    data = json.loads(out.read_text())
    result = data["results"][0]
    assert result["fault_model"]["ber_source"]["ber_per"] == "scrub interval"
    assert result["fault_model"]["scrub_interval"] == 540 and data["fault_model"]["mbu"] == [[2, 0.2]]
    assert result["ber"] == pytest.approx(-math.expm1(-2e-5 * 5.4))
    devices = result["devices"]
    assert devices["count"] == 12 and len(devices["accuracies"]) == 12
    assert devices["target"] == 0.95 and devices["prob_below_target"] is not None
    rate = result["failure_rate"]
    assert rate["wrong_outputs_per_hour"] == pytest.approx(result["output_changed"] / result["inferences"] * 360000)
    assert rate["fit"] == pytest.approx(rate["wrong_outputs_per_hour"] * 1e9)
    again = CampaignResult.from_dict(result).to_dict()
    assert again["devices"] == devices and again["failure_rate"] == rate
    # an upset rate needs the inference rate
    assert main(["inject", str(env["plain"].project_dir), "--data", str(MLP_DATA), "--upset-rate", "1e-9"]) == 2
