"""Tests for fpga_ft.generate.modelio and the bundled model zoo (models/)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.generate.modelio import check_input_shape, load_data, load_model

ZOO = json.loads((MODELS_DIR / "zoo.json").read_text())


# ----------------------------------------------------------------------------- load_data
def _npz(tmp_path, name="d.npz", **arrays):
    path = tmp_path / name
    np.savez(path, **arrays)
    return path


def test_load_data_labels(tmp_path):
    x = np.random.default_rng(0).random((5, 4))
    path = _npz(tmp_path, x=x, y=np.array([0, 1, 2, 1, 0]))
    xs, ys = load_data(path)
    assert xs.dtype == np.float32 and xs.shape == (5, 4)
    assert ys.dtype == np.int64 and ys.tolist() == [0, 1, 2, 1, 0]


def test_load_data_one_hot(tmp_path):
    y = np.eye(3)[[2, 0, 1, 1]]
    _, ys = load_data(_npz(tmp_path, x=np.zeros((4, 2)), y=y))
    assert ys.dtype == np.int64 and ys.tolist() == [2, 0, 1, 1]


def test_load_data_column_labels(tmp_path):
    _, ys = load_data(_npz(tmp_path, x=np.zeros((3, 2)), y=np.array([[1.0], [0.0], [4.0]])))
    assert ys.tolist() == [1, 0, 4]


def _err(fn, *args) -> str:
    with pytest.raises(FpgaFtError) as info:
        fn(*args)
    msg = str(info.value)
    assert "\n" not in msg
    return msg


def test_load_data_missing_file(tmp_path):
    msg = _err(load_data, tmp_path / "nope.npz")
    assert "not found" in msg and "nope.npz" in msg


def test_load_data_missing_arrays(tmp_path):
    msg = _err(load_data, _npz(tmp_path, x=np.zeros((2, 2)), labels=np.zeros(2)))
    assert "lacks" in msg and "y" in msg and "labels" in msg


def test_load_data_length_mismatch(tmp_path):
    msg = _err(load_data, _npz(tmp_path, x=np.zeros((4, 2)), y=np.zeros(3, dtype=int)))
    assert "4" in msg and "3" in msg


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_load_data_non_finite(tmp_path, bad):
    x = np.zeros((3, 2))
    x[1, 1] = bad
    msg = _err(load_data, _npz(tmp_path, x=x, y=np.zeros(3, dtype=int)))
    assert "non-finite" in msg


def test_load_data_bad_one_hot(tmp_path):
    y = np.array([[1, 0], [1, 1]])
    msg = _err(load_data, _npz(tmp_path, x=np.zeros((2, 2)), y=y))
    assert "one-hot" in msg and "row 1" in msg


def test_load_data_fractional_labels(tmp_path):
    msg = _err(load_data, _npz(tmp_path, x=np.zeros((2, 2)), y=np.array([0.5, 1.0])))
    assert "integers" in msg


def test_load_data_empty(tmp_path):
    msg = _err(load_data, _npz(tmp_path, x=np.zeros((0, 2)), y=np.zeros(0, dtype=int)))
    assert "no samples" in msg


def test_load_data_not_npz(tmp_path):
    path = tmp_path / "garbage.npz"
    path.write_text("this is not a zip file")
    assert "cannot read data" in _err(load_data, path)


def test_load_data_npy_instead_of_npz(tmp_path):
    path = tmp_path / "a.npy"
    np.save(path, np.zeros(3))
    assert "expected an .npz" in _err(load_data, path)


def test_load_data_object_array(tmp_path):
    path = tmp_path / "obj.npz"
    np.savez(path, x=np.array([{"a": 1}, None], dtype=object), y=np.zeros(2, dtype=int))
    assert "cannot read data" in _err(load_data, path)


# ---------------------------------------------------------------------------- load_model
def test_load_model_missing(tmp_path):
    msg = _err(load_model, tmp_path / "missing.h5")
    assert "not found" in msg and "missing.h5" in msg


@pytest.mark.parametrize("content", [b"", b"not an hdf5 file at all"])
def test_load_model_unreadable(tmp_path, content):
    path = tmp_path / "broken.h5"
    path.write_bytes(content)
    msg = _err(load_model, path)
    assert "cannot read model" in msg and "broken.h5" in msg


def test_load_model_plain_directory(tmp_path):
    assert "SavedModel" in _err(load_model, tmp_path)


# ------------------------------------------------------------------------ bundled models
@pytest.fixture(scope="module", params=sorted(ZOO["models"]))
def bundled(request):
    entry = ZOO["models"][request.param]
    model = load_model(MODELS_DIR / entry["file"])
    x, y = load_data(MODELS_DIR / entry["test_data"])
    return request.param, entry, model, x, y


def test_bundled_model_accuracy(bundled):
    name, entry, model, x, y = bundled
    check_input_shape(model, x)
    assert list(model.input_shape[1:]) == entry["input_shape"]
    assert model.count_params() == entry["parameters"]
    assert len(x) == entry["test_samples"]
    acc = float(np.mean(np.argmax(model.predict(x, batch_size=512, verbose=0), axis=1) == y))
    # QKeras outputs are quantized, so the accuracy is reproducible to the sample.
    assert acc == pytest.approx(entry["test_accuracy"], abs=1.5 / len(x))
    assert acc >= 0.95


def test_bundled_model_starts_with_input_quantizer(bundled):
    _, _, model, _, _ = bundled
    first = model.layers[1]
    assert type(first).__name__ == "QActivation" and first.name == "q_input"
    assert "softmax" not in str(model.layers[-1].get_config().get("activation", "")).lower()


def test_bundled_inputs_are_exact_8bit(bundled):
    _, _, _, x, _ = bundled
    assert x.min() >= 0.0 and x.max() <= 1.0 - 2.0**-7
    assert np.array_equal(x * 128, np.round(x * 128))


def test_train_test_splits_consistent():
    for a, b in (("digits_train.npz", "digits_img_train.npz"), ("digits_test.npz", "digits_img_test.npz")):
        xf, yf = load_data(MODELS_DIR / a)
        xi, yi = load_data(MODELS_DIR / b)
        assert xf.shape[1:] == (64,) and xi.shape[1:] == (8, 8, 1)
        assert np.array_equal(xf, xi.reshape(len(xi), 64)) and np.array_equal(yf, yi)
        assert set(np.unique(yf)) == set(range(10))


def test_check_input_shape_mismatch(bundled):
    _, _, model, x, _ = bundled
    wrong = np.zeros((2, 7)) if x.ndim != 2 or x.shape[1] != 7 else np.zeros((2, 8))
    msg = _err(check_input_shape, model, wrong)
    assert "(7,)" in msg and str(tuple(model.input_shape[1:])).replace(" ", "") in msg.replace(" ", "")


def test_load_model_keras_v3_format_roundtrip(tmp_path):
    """QKeras 0.9.0 cannot read its own QActivation from .keras; load_model can."""
    model = load_model(MODELS_DIR / "digits_mlp.h5")
    x, _ = load_data(MODELS_DIR / "digits_test.npz")
    path = tmp_path / "mlp.keras"
    model.save(path)
    again = load_model(path)
    assert type(again.layers[1]).__name__ == "QActivation"
    assert np.array_equal(again.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.slow
def test_bundled_mlp_bit_exact_in_hls4ml(tmp_path):
    """The product's contract: hls4ml C simulation equals QKeras on every test sample."""
    hls4ml = pytest.importorskip("hls4ml")
    model = load_model(MODELS_DIR / "digits_mlp.h5")
    x, _ = load_data(MODELS_DIR / "digits_test.npz")
    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    hm = hls4ml.converters.convert_from_keras_model(
        model, hls_config=cfg, output_dir=str(tmp_path / "prj"), backend="Vitis",
        io_type="io_parallel", bit_exact=True,
    )
    hm.compile()
    y_hls = np.asarray(hm.predict(x)).reshape(len(x), -1)
    assert np.array_equal(y_hls, model.predict(x, verbose=0))


def _hostile_lambda_model(marker):
    """A model whose Lambda layer writes ``marker`` whenever Keras runs it."""
    import tensorflow as tf

    def evil(t, path=str(marker)):
        import pathlib

        pathlib.Path(path).write_text("pwned")
        return t

    inputs = tf.keras.Input((4,))
    hidden = tf.keras.layers.Lambda(evil, name="evil_lambda")(inputs)
    return tf.keras.Model(inputs, tf.keras.layers.Dense(2, name="fc")(hidden))


@pytest.mark.parametrize("form", ["h5", "json", "keras"])
def test_hostile_lambda_runs_no_code(tmp_path, capsys, form):
    """Loading refuses a Lambda layer before Keras rebuilds it: its code never runs."""
    from fpga_ft.cli import main

    marker = tmp_path / "marker.txt"
    model = _hostile_lambda_model(marker)
    if form == "h5":
        path = tmp_path / "evil.h5"
        model.save(path)
        extra = []
    elif form == "keras":
        path = tmp_path / "evil.keras"
        model.save(path)
        extra = []
    else:
        path = tmp_path / "evil.json"
        path.write_text(model.to_json())
        weights = tmp_path / "evil_weights.h5"
        model.save_weights(weights)
        extra = ["--weights", str(weights)]
    marker.unlink(missing_ok=True)  # building the model above ran it once
    np.savez(tmp_path / "d.npz", x=np.zeros((3, 4)), y=np.zeros(3, dtype=int))
    code = main(["csim", str(path), *extra, "--data", str(tmp_path / "d.npz")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and "evil_lambda" in err[0], err
    assert not marker.exists()


@pytest.mark.parametrize("labels, expected", [
    (np.array([0, 1, 10]), "outside 0..9"),
    (np.array([0, 1, 12]), "outside 0..9"),
    (np.array([0, -1, 2]), "non-negative"),
    (np.eye(5)[[0, 1, 2]], "one-hot with 5 columns"),
    (np.eye(12)[[0, 1, 2]], "one-hot with 12 columns"),
])
@pytest.mark.parametrize("command", ["csim", "analyze", "inject"])
def test_labels_must_fit_the_model(tmp_path, capsys, labels, expected, command):
    """Labels out of range or one-hot of the wrong width are refused (one line, exit 2) by
    every command that reads data, instead of being scored as wrong answers."""
    from fpga_ft.cli import main
    from fpga_ft.core.paths import MODELS_DIR

    x, _ = load_data(MODELS_DIR / "digits_test.npz")
    data = tmp_path / "bad.npz"
    np.savez(data, x=x[:3], y=labels)
    extra = ["--ber", "1e-3"] if command == "inject" else []
    code = main([command, str(MODELS_DIR / "digits_mlp.h5"), "--data", str(data), *extra])
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and expected in err[0], err


@pytest.mark.parametrize("argv, option", [
    (["bringup", "m.h5", "--board", "zcu102", "--data", "d.npz", "-o", "kit", "--vectors", "0"], "--vectors"),
    (["bringup", "m.h5", "--board", "zcu102", "--data", "d.npz", "-o", "kit", "--vectors", "-1"], "--vectors"),
    (["demo", "--trials", "-1"], "--trials"),
    (["demo", "--trials", "x"], "--trials"),
])
def test_counts_are_checked_before_any_work(tmp_path, capsys, argv, option, monkeypatch):
    """Counts that must be >= 1 are refused at parse time: one line, exit 2, nothing written."""
    from fpga_ft.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(argv)
    err = [line for line in capsys.readouterr().err.strip().splitlines() if line]
    assert code == 2 and len(err) == 1 and err[0].startswith("error:") and option in err[0], err
    assert list(tmp_path.iterdir()) == []
