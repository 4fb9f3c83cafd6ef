"""csim fault regression tests, as a user writes them."""

from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
MODEL = HERE.parent.parent / "models" / "digits_mlp.h5"
DATA = HERE.parent.parent / "models" / "digits_test.npz"


def test_reliability(fpga_ft):
    r = fpga_ft.campaign(MODEL, data=DATA, plan=HERE / "plan.yml", ber=1e-4)
    r.assert_accuracy(at_least=0.90, confidence=0.95)  # on the interval's lower bound


def test_reliability_matches_golden(fpga_ft, tmp_path_factory):
    golden = Path(__import__("os").environ.get("FPGA_FT_GOLDEN_DIR", HERE / "golden")) / "mlp_plan_1e-4.json"
    r = fpga_ft.campaign(MODEL, data=DATA, plan=HERE / "plan.yml", ber=1e-4, seed=7)
    r.assert_matches_golden(golden, update=fpga_ft.update_golden)


def test_unreliable_plan_is_caught(fpga_ft):
    # fails on purpose: at BER 3e-3 on products and accumulators a 1-bit plan is too weak
    r = fpga_ft.campaign(MODEL, data=DATA, plan=HERE / "unreliable_plan.yml", ber=3e-3,
                         sites="products,accumulators")
    r.assert_accuracy(at_least=0.95, confidence=0.95)
