"""Issue 14: the MNIST-size CNN of the zoo (models/mnist_cnn.h5) and its shipped MNIST subset."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.generate.modelio import load_data

ROOT = Path(__file__).resolve().parent.parent
ZOO = json.loads((MODELS_DIR / "zoo.json").read_text())
#: Published MD5s of the official MNIST files (yann.lecun.com/exdb/mnist).
PUBLISHED_MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
#: Test images the csim check runs (the first ones of mnist_test.npz).
N_CSIM = 50


def _source(name: str) -> dict:
    with np.load(MODELS_DIR / name, allow_pickle=False) as npz:
        return {"index": npz["index"], "meta": json.loads(str(npz["source"][0]))}


def test_shipped_subset_is_mnist_scaled_exactly_and_disjoint():
    test, train = _source("mnist_test.npz"), _source("mnist_train.npz")
    for name, src in (("mnist_test.npz", test), ("mnist_train.npz", train)):
        x, y = load_data(MODELS_DIR / name)
        assert x.shape == (src["meta"]["samples"], 28, 28, 1) and len(y) == len(x) == len(src["index"])
        assert x.min() == 0.0 and x.max() == 1.0 - 2.0**-7  # MNIST has full-scale pixels (255 -> 127/128)
        assert np.array_equal(x * 128, np.round(x * 128))  # exact in ap_fixed<8,1>
        counts = np.bincount(y, minlength=10)
        assert len(counts) == 10 and counts.min() >= 0.07 * len(y)  # every digit, stratified
        for file, md5 in src["meta"]["files"].items():
            assert PUBLISHED_MD5[file] == md5
    if train["meta"]["files"] == test["meta"]["files"]:  # both drawn from t10k: no image in both
        assert not np.intersect1d(test["index"], train["index"]).size
    total = sum((MODELS_DIR / n).stat().st_size for n in ("mnist_test.npz", "mnist_train.npz"))
    assert total < 1_500_000


def test_zoo_records_the_mnist_model_and_its_data():
    entry, data = ZOO["models"]["mnist_cnn"], ZOO["mnist_dataset"]
    assert entry["input_shape"] == [28, 28, 1] and entry["test_data"] == "mnist_test.npz"
    assert entry["test_samples"] == _source("mnist_test.npz")["meta"]["samples"]
    assert entry["hls4ml_bit_exact"]["io_parallel"]["bit_exact_fraction"] == 1.0
    assert entry["hls4ml_bit_exact"]["io_stream"]["bit_exact_fraction"] == 1.0
    assert all(PUBLISHED_MD5[f] == md5 for f, md5 in data["md5"].items())


def test_subset_script_rejects_a_file_that_is_not_official(tmp_path, monkeypatch):
    """make_mnist_subset checks every official file's MD5 before reading it."""
    monkeypatch.syspath_prepend(str(ROOT / "scripts"))  # it imports train_models beside it
    spec = importlib.util.spec_from_file_location("make_mnist_subset", ROOT / "scripts" / "make_mnist_subset.py")
    mod = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, spec.name, mod)  # dataclasses look their module up there
    spec.loader.exec_module(mod)
    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(b"not mnist")
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"")
    with pytest.raises(mod.SubsetError, match="is not the published 9fb629c4"):
        mod.make_subsets(tmp_path, tmp_path / "out", origin="test")
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(b"")
    with pytest.raises(mod.SubsetError, match="without its pair"):
        mod.make_subsets(tmp_path, tmp_path / "out", origin="test")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
@pytest.mark.parametrize("protected_msbs", [0, 2])
def test_mnist_cnn_csim_is_bit_exact(protected_msbs):
    """The csim (unprotected, and with the 2 top bits of every layer triplicated) equals
    QKeras's logits on the first 50 test images, and so does its accuracy."""
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.bitexact import compare_outputs
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_model

    model = load_model(MODELS_DIR / "mnist_cnn.h5")
    x, y = load_data(MODELS_DIR / "mnist_test.npz")
    x, y = x[:N_CSIM], y[:N_CSIM]
    plan = None
    if protected_msbs:
        plan = ProtectionPlan.uniform(build_design(model, None).layers, protected_msbs=protected_msbs)
    design = build_design(model, plan)
    comparison = compare_outputs(design.predict(x), model.predict(x, verbose=0), y)
    assert comparison["bit_exact_fraction"] == 1.0, comparison
    assert comparison["csim_accuracy"] == comparison["reference_accuracy"] >= 0.9
