"""Shared test set-up: a design cache that survives between local runs (fresh in CI)."""

import os
import tempfile
from pathlib import Path

os.environ.setdefault("FPGA_FT_CACHE", str(Path(tempfile.gettempdir()) / "fpga-ft-test-cache"))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import pytest  # noqa: E402

from fpga_ft.core.paths import MODELS_DIR  # noqa: E402

BUNDLED = {
    "mlp": (MODELS_DIR / "digits_mlp.h5", MODELS_DIR / "digits_test.npz"),
    "cnn": (MODELS_DIR / "digits_cnn.h5", MODELS_DIR / "digits_img_test.npz"),
}


@pytest.fixture(scope="session")
def bundled():
    """name -> (keras model, x_test, y_test, qkeras outputs) for the bundled MLP and CNN."""
    from fpga_ft.generate.modelio import load_data, load_model

    cache = {}

    def get(name):
        if name not in cache:
            model_path, data_path = BUNDLED[name]
            model = load_model(model_path)
            x, y = load_data(data_path)
            cache[name] = (model, x, y, model.predict(x, verbose=0))
        return cache[name]

    return get


@pytest.fixture(scope="session")
def mlp_design(bundled):
    """The bundled digits MLP, its unprotected design and test set: ``{"model", "plain", "x", "y"}``."""
    from fpga_ft.generate.design import build_design

    model, x, y, _ = bundled("mlp")
    return {"model": model, "plain": build_design(model), "x": x, "y": y}


def mlp_evaluator(board: str = "zcu102"):
    """An optimizer Evaluator of the bundled digits MLP on its test data (2 repeats, seed 0)."""
    from fpga_ft.generate.modelio import load_data, load_model
    from fpga_ft.search.optimize import Evaluator

    model_path, data_path = BUNDLED["mlp"]
    x, y = load_data(data_path)
    return Evaluator(load_model(model_path), x, y, board=board, repeats=2, seed=0, model_path=str(model_path))


def build_tiny_qdense(n_in: int = 10, n_out: int = 3, zero_fraction: float = 0.2, seed: int = 7):
    """QDense(n_out) named ``fc`` on n_in inputs (``fpga_ft.testing.scheme_conformance.tiny_qdense``)."""
    from fpga_ft.testing.scheme_conformance import tiny_qdense

    return tiny_qdense(n_in, n_out, zero_fraction, seed)


def needs_yosys_tools(fn):
    """Mark a test ``yosys`` and skip it unless yosys and iverilog are on PATH."""
    import shutil

    have = bool(shutil.which("yosys") and shutil.which("iverilog"))
    fn = pytest.mark.yosys(fn)
    return pytest.mark.skipif(not have, reason="needs yosys and iverilog on PATH")(fn)


def estimate_and_convert(model: str, plan, tmp_path) -> tuple[dict, dict, dict]:
    """``fpga-ft estimate`` and ``fpga-ft convert`` of ``model`` with the plan file ``plan``
    (board ZCU102, the digits image test set for the test vectors), both asserted to exit 0:
    (estimate rows by layer name, convert's JSON, the project's fpgaft_design.json)."""
    import json

    from fpga_ft.cli import main
    from fpga_ft.core.paths import MODELS_DIR

    estimate, converted, project = tmp_path / "estimate.json", tmp_path / "convert.json", tmp_path / "prj"
    assert main(["estimate", model, "--board", "zcu102", "--plan", str(plan), "--json", str(estimate)]) == 0
    rows = {row["name"]: row for row in json.loads(estimate.read_text())["per_layer"]}
    data = str(MODELS_DIR / "digits_img_test.npz")
    args = ["convert", model, "--board", "zcu102", "--plan", str(plan), "--data", data, "-o", str(project)]
    assert main([*args, "--json", str(converted)]) == 0
    design = json.loads((project / "fpgaft_design.json").read_text())
    return rows, json.loads(converted.read_text()), design


def inject_result(model: str, tmp_path, *options: str, data: str | None = None) -> dict:
    """``fpga-ft inject MODEL`` at BER 1e-4, one repeat, no checkpoint (the digits image test
    set unless ``data``), plus ``options``, asserted to exit 0: its first result (JSON)."""
    import json

    from fpga_ft.cli import main
    from fpga_ft.core.paths import MODELS_DIR

    out = tmp_path / "inject.json"
    data = data or str(MODELS_DIR / "digits_img_test.npz")
    args = ["inject", model, "--data", data, "--ber", "1e-4", "--repeats", "1", "--no-checkpoint", *options]
    assert main([*args, "--json", str(out)]) == 0
    return json.loads(out.read_text())["results"][0]
