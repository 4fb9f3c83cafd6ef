"""Issue 14: batch normalization users bring. QKeras's folded layers (``QConv2DBatchnorm``,
``QDepthwiseConv2DBatchnorm``, and ``QDenseBatchnorm`` of QKeras after 0.9.0) are folded by
the intake into the plain layers bit for bit (fpga_ft/generate/intake/fold.py); a float
``BatchNormalization`` after a QDense stays refused (docs/networks.md).

The models are small and untrained: their batch-normalization parameters and moving
statistics are set to random, non-trivial values with ``set_weights``. The data is the
bundled 8x8 digits; labels only feed the accuracy figures."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fpga_ft.cli import main
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.generate.modelio import load_data

DATA = MODELS_DIR / "digits_img_test.npz"
FOLDED = {
    "cbn": ("QConv2DBatchnorm", "QConv2D"),
    "dwbn": ("QDepthwiseConv2DBatchnorm", "QDepthwiseConv2D"),
    "dbn": ("QDenseBatchnorm", "QDense"),
}


def _cli(args, capsys):
    """(exit status, stdout, stderr) of one fpga-ft command run in-process."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def _randomize_batchnorm(model, seed: int) -> None:
    """Non-trivial gamma, beta, moving mean and variance (and bias) for every folded layer."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if type(layer).__name__ not in {original for original, _ in FOLDED.values()}:
            continue
        channels = int(layer.batchnorm.moving_mean.shape[0])
        weights = [layer.get_weights()[0]]
        if layer.use_bias:
            weights.append(rng.normal(0, 0.2, channels).astype(np.float32))
        weights += [
            rng.uniform(0.5, 2.0, channels).astype(np.float32),  # gamma
            rng.normal(0, 0.3, channels).astype(np.float32),  # beta
            np.array(5, dtype=np.int64),  # iteration (training only)
            rng.normal(0, 0.3, channels).astype(np.float32),  # moving mean
            rng.uniform(0.2, 3.0, channels).astype(np.float32),
        ]  # moving variance
        layer.set_weights(weights)


def batchnorm_model(alpha=1, conv_bias_quantizer: bool = True, conv_use_bias: bool = True, seed: int = 0):
    """8x8x1 -> QConv2DBatchnorm 'cbn' -> QDepthwiseConv2DBatchnorm 'dwbn' -> QDenseBatchnorm
    'dbn' -> QDense 'fc' (10 logits), quantized ReLUs between them."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2DBatchnorm, QDense, QDepthwiseConv2DBatchnorm, quantized_bits, quantized_relu

    from fpga_ft.generate.modelio import custom_objects

    qdense_batchnorm = custom_objects()["QDenseBatchnorm"]
    tf.keras.utils.set_random_seed(seed)

    def q(bits, integer, a=1):
        return quantized_bits(bits, integer, alpha=a)

    inputs = tf.keras.Input((8, 8, 1))
    x = QActivation(q(8, 0), name="q_in")(inputs)
    x = QConv2DBatchnorm(
        4,
        3,
        kernel_quantizer=q(6, 0, alpha),
        use_bias=conv_use_bias,
        bias_quantizer=q(10, 4) if conv_bias_quantizer else None,
        name="cbn",
    )(x)
    x = QActivation(quantized_relu(6, 2), name="relu1")(x)
    x = QDepthwiseConv2DBatchnorm(3, depthwise_quantizer=q(6, 0, alpha), bias_quantizer=q(10, 4), name="dwbn")(x)
    x = QActivation(quantized_relu(6, 2), name="relu2")(x)
    x = tf.keras.layers.Flatten()(x)
    x = qdense_batchnorm(16, kernel_quantizer=q(6, 0, alpha), bias_quantizer=q(10, 4), name="dbn")(x)
    x = QActivation(quantized_relu(6, 2), name="relu3")(x)
    x = QDense(10, kernel_quantizer=q(6, 0), bias_quantizer=q(8, 3), name="fc")(x)
    model = tf.keras.Model(inputs, x)
    _randomize_batchnorm(model, seed)
    return model


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("bn") / "bn.h5"
    batchnorm_model().save(path)
    return path


@pytest.mark.parametrize("alpha,conv_use_bias", [(1, True), (1, False), ("auto", True), ("auto_po2", True)])
def test_fold_is_bit_for_bit_the_original_layers(alpha, conv_use_bias):
    """The edited copy computes the original's outputs exactly, on random inputs of the input
    grid, with every alpha (the quantizer sees the same folded kernel in both) and without
    a conv bias (the folded bias is added all the same)."""
    from fpga_ft.generate.intake import prepare_model
    from fpga_ft.generate.intake.fold import folded_weights

    model = batchnorm_model(alpha, conv_use_bias=conv_use_bias)
    prepared = prepare_model(model)
    assert prepared.original is model
    # a folded QDepthwiseConv2D then takes the depthwise rewrite (intake/depthwise.py), a QConv2D,
    # unless its quantizer's scale spans the kernel (alpha='auto'...): then it stays as it is
    from fpga_ft.generate.intake.depthwise import kept_layers
    from fpga_ft.generate.intake.fold import fold_batchnorm

    kept = kept_layers(fold_batchnorm(model)[0])
    assert alpha != 1 or not kept
    assert {layer.name: type(layer).__name__ for layer in prepared.model.layers if layer.name in FOLDED} == {
        name: "QConv2D" if plain == "QDepthwiseConv2D" and name not in kept else plain
        for name, (_, plain) in FOLDED.items()
    }
    assert [(f.name, f.original_class, f.plain_class) for f in prepared.folded] == [
        (name, original, plain) for name, (original, plain) in FOLDED.items()
    ]
    rng = np.random.default_rng(1)
    x = (np.floor(rng.uniform(0, 1, (4000, 8, 8, 1)) * 128) / 128).astype(np.float32)
    expected = model.predict(x, verbose=0)
    assert len(np.unique(expected, axis=0)) > len(x) // 2  # the outputs are not trivial
    assert np.array_equal(prepared.model.predict(x, verbose=0), expected)
    # the folded values are the textbook fold (to float32 rounding)
    layer = model.get_layer("cbn")
    kernel_f, bias_f = folded_weights(layer)
    bn = [
        w.numpy().astype(np.float64)
        for w in (
            layer.batchnorm.gamma,
            layer.batchnorm.beta,
            layer.batchnorm.moving_mean,
            layer.batchnorm.moving_variance,
        )
    ]
    inv = bn[0] / np.sqrt(bn[3] + layer.batchnorm.epsilon)
    bias = layer.bias.numpy() if conv_use_bias else 0.0
    np.testing.assert_allclose(kernel_f, layer.kernel.numpy() * inv, rtol=1e-6)
    np.testing.assert_allclose(bias_f, inv * (bias - bn[2]) + bn[1], rtol=1e-5, atol=1e-6)


def test_csim_is_bit_exact_with_the_original_model(saved_model, tmp_path, capsys):
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.bitexact import compare_outputs
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import open_model

    status, _, err = _cli(["csim", saved_model, "--data", DATA, "--json", tmp_path / "csim.json"], capsys)
    assert status == 0, err
    result = json.loads((tmp_path / "csim.json").read_text())
    assert result["bit_exact_fraction"] == 1.0 and not result["inexact"]
    assert result["intake"]["folded_batchnorm"] == [
        {"layer": name, "from": original, "to": plain} for name, (original, plain) in FOLDED.items()
    ]
    for name, (original, plain) in FOLDED.items():
        assert f"note: folded batch normalization of layer '{name}' ({original}) into a {plain}" in err
    # the design against the user's (unfolded) model, unprotected and protected
    prepared = open_model(saved_model, announce=False)
    x, y = load_data(DATA)
    reference = prepared.original.predict(x, verbose=0)
    layers = build_design(prepared.model, None).layers
    assert [info.name for info in layers] == ["cbn", "dwbn", "dbn", "fc"]  # dwbn through the depthwise rewrite
    for plan in (ProtectionPlan(), ProtectionPlan.uniform(layers, protected_msbs=2)):
        comparison = compare_outputs(build_design(prepared.model, plan).predict(x), reference, y)
        assert comparison["bit_exact_fraction"] == 1.0, comparison


def test_inject_and_estimate_run_on_the_folded_model(saved_model, tmp_path, capsys):
    status, _, err = _cli(
        [
            "inject",
            saved_model,
            "--data",
            DATA,
            "--ber",
            "1e-3",
            "--repeats",
            "1",
            "--no-checkpoint",
            "--json",
            tmp_path / "inject.json",
        ],
        capsys,
    )
    assert status == 0, err
    result = json.loads((tmp_path / "inject.json").read_text())["results"][0]
    assert all(count > 0 for count in result["faults_injected"].values())
    status, _, err = _cli(["estimate", saved_model, "--board", "zcu102", "--json", tmp_path / "estimate.json"], capsys)
    assert status == 0, err
    rows = json.loads((tmp_path / "estimate.json").read_text())["per_layer"]
    assert [row["name"] for row in rows] == ["cbn", "dwbn", "dbn", "fc"]


def test_folded_layer_without_bias_quantizer_is_refused_unless_allowed(tmp_path, capsys):
    """Its folded bias is a float: refused in one line (exit 2), like any float bias."""
    path = tmp_path / "float_bias.h5"
    batchnorm_model(conv_bias_quantizer=False).save(path)
    status, _, err = _cli(["csim", path, "--data", DATA], capsys)
    assert status == 2
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "layer 'cbn'" in errors[0] and "float biases (no bias_quantizer)" in errors[0]
    assert "its folded bias is float" in err  # the fold's note says why
    status, _, err = _cli(["csim", path, "--data", DATA, "--allow-inexact", "--json", tmp_path / "csim.json"], capsys)
    assert status == 0, err
    assert json.loads((tmp_path / "csim.json").read_text())["inexact"] is True


def test_fold_refuses_what_it_would_not_reproduce():
    from qkeras import QDepthwiseConv2DBatchnorm

    from fpga_ft.generate.intake.fold import _check_foldable

    import tensorflow as tf

    layer = QDepthwiseConv2DBatchnorm(3, depth_multiplier=2, name="dw2")
    layer(tf.zeros((1, 8, 8, 2)))  # builds the layer and its batch normalization
    with pytest.raises(FpgaFtError) as info:
        _check_foldable(layer, "QDepthwiseConv2DBatchnorm")
    assert "layer 'dw2' (QDepthwiseConv2DBatchnorm): depth_multiplier 2" in str(info.value)
    assert "\n" not in str(info.value)


def test_float_batchnormalization_after_a_qdense_stays_refused(tmp_path, capsys):
    """hls4ml 1.3 does not fuse it into a quantized QDense and computes it in fixed point,
    while QKeras computes it in float32: not bit-exact by construction (docs/networks.md)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Flatten()(QActivation(quantized_bits(8, 0, alpha=1))(inputs))
    x = QDense(8, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1))(x)
    x = tf.keras.layers.BatchNormalization(name="bn")(x)
    path = tmp_path / "float_bn.h5"
    tf.keras.Model(inputs, x).save(path)
    status, _, err = _cli(["csim", path, "--data", DATA], capsys)
    assert status == 2
    assert "layer 'bn' (BatchNormalization) has float parameters" in err


def test_quantized_batchnormalization_is_not_taken_as_exact():
    """Fully quantized, it still is not bit-exact: hls4ml 1.3 builds its scale from the
    unquantized gamma and variance (docs/networks.md)."""
    import tensorflow as tf
    from qkeras import QActivation, QBatchNormalization, QDense, quantized_bits

    from fpga_ft.generate.bitexact import float_weight_layers

    q = quantized_bits(6, 2, alpha=1)
    inputs = tf.keras.Input((8,))
    x = QDense(4, kernel_quantizer=q, bias_quantizer=q)(QActivation(quantized_bits(8, 0, alpha=1))(inputs))
    x = QBatchNormalization(gamma_quantizer=q, beta_quantizer=q, mean_quantizer=q, variance_quantizer=q, name="qbn")(x)
    found = float_weight_layers(tf.keras.Model(inputs, x))
    assert [(entry["layer"], entry["class"]) for entry in found] == [("qbn", "QBatchNormalization")]
    assert "unquantized gamma and variance" in found[0]["what"]


def test_a_fold_that_changes_the_outputs_is_refused(monkeypatch):
    """The intake compares the folded copy with the original on random inputs."""
    from fpga_ft.generate.intake import fold, prepare_model

    model = batchnorm_model()
    exact = fold.folded_weights
    monkeypatch.setattr(fold, "folded_weights", lambda layer: [values * 1.5 for values in exact(layer)])
    with pytest.raises(FpgaFtError) as info:
        prepare_model(model)
    assert "did not reproduce the model's outputs" in str(info.value) and "'cbn'" in str(info.value)


def test_convert_with_a_plan_protects_the_folded_layers(saved_model, tmp_path, capsys):
    plan = tmp_path / "plan.yml"
    plan.write_text(
        "layers:\n  cbn:\n    protected_msbs: 2\n  dbn:\n    protected_msbs: 1\n    critical_neurons: [0]\n"
    )
    out = tmp_path / "convert.json"
    args = ["convert", saved_model, "--board", "zcu102", "--plan", plan, "--data", DATA, "-o", tmp_path / "prj"]
    status, _, err = _cli([*args, "--json", out], capsys)
    assert status == 0, err
    result = json.loads(out.read_text())
    assert result["protected_layers"] == ["cbn", "dbn"]
    assert result["test_vectors"]["bit_exact_fraction"] == 1.0
