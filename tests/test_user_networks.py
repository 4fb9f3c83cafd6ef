"""Issue 14, networks users bring: the zoo's residual and depthwise-separable models
(models/digits_resnet.h5, models/digits_sepconv.h5) through csim, inject, estimate and
convert, and the one-line refusals for what hls4ml 1.3 does not convert bit-exactly."""

from __future__ import annotations

import json

import pytest

from conftest import estimate_and_convert, inject_result

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.generate.modelio import load_data

ZOO = json.loads((MODELS_DIR / "zoo.json").read_text())
DATA = MODELS_DIR / "digits_img_test.npz"
#: the zoo models and their protectable (Dense/Conv) layers, in dataflow order
MODELS = {"digits_resnet": ["conv1", "block_conv1", "block_conv2", "fc_out"],
          "digits_sepconv": ["conv1", "sepconv_depthwise", "sepconv_pointwise", "fc_out"]}


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ""


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_records_the_model_bit_exact(name):
    entry = ZOO["models"][name]
    assert entry["file"] == f"{name}.h5" and entry["test_data"] == DATA.name
    assert entry["hls4ml_bit_exact"]["io_parallel"]["bit_exact_fraction"] == 1.0
    assert entry["hls4ml_bit_exact"]["io_stream"]["bit_exact_fraction"] == 1.0
    assert entry["test_accuracy"] > 0.9


@pytest.mark.parametrize("name", sorted(MODELS))
def test_zoo_model_csim_is_bit_exact_unprotected_and_protected(name):
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.bitexact import compare_outputs
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_model

    model = load_model(MODELS_DIR / f"{name}.h5")
    x, y = load_data(DATA)
    reference = model.predict(x, verbose=0)
    layers = build_design(model, None).layers
    assert [info.name for info in layers] == MODELS[name]
    plan = ProtectionPlan.uniform(layers, protected_msbs=2)
    plan.layers[layers[0].name].critical_neurons = [0, layers[0].n_out - 1]
    for candidate in (ProtectionPlan(), plan):
        comparison = compare_outputs(build_design(model, candidate).predict(x), reference, y)
        assert comparison["bit_exact_fraction"] == 1.0, comparison
        assert comparison["csim_accuracy"] == comparison["reference_accuracy"]
        assert comparison["csim_accuracy"] == pytest.approx(ZOO["models"][name]["test_accuracy"], abs=1e-6)


def test_residual_model_inject_counts_faults_at_every_site(tmp_path):
    result = inject_result(str(MODELS_DIR / "digits_resnet.h5"), tmp_path)
    assert result["clean_accuracy"] == pytest.approx(ZOO["models"]["digits_resnet"]["test_accuracy"], abs=1e-6)
    assert set(result["faults_injected"]) == {"weights", "activations", "products", "accumulators"}
    assert all(count > 0 for count in result["faults_injected"].values())
    assert result["accuracy"]["mean"] < result["clean_accuracy"]


def test_separable_model_estimate_and_convert_with_a_plan(tmp_path):
    plan = tmp_path / "plan.yml"
    plan.write_text(
        "layers:\n  conv1:\n    protected_msbs: 2\n    critical_neurons: [0, 7]\n  fc_out:\n    protected_msbs: 1\n"
    )
    rows, result, design = estimate_and_convert(str(MODELS_DIR / "digits_sepconv.h5"), plan, tmp_path)
    assert list(rows) == MODELS["digits_sepconv"]
    assert all(rows[name]["protection_LUT"] > 0 for name in ("conv1", "fc_out"))
    assert result["protected_layers"] == ["conv1", "fc_out"]
    assert result["test_vectors"]["bit_exact_fraction"] == 1.0
    # the separable convolution is two convolutions of fpga-ft's own (intake/depthwise.py):
    # no multiply-accumulate is left outside its protection and fault sites
    assert design["unprotected_arithmetic"] == []


def _small(layer_factory):
    import tensorflow as tf
    from qkeras import QActivation, quantized_bits

    i = tf.keras.layers.Input((6, 6, 2))
    x = QActivation(quantized_bits(8, 0, alpha=1))(i)
    return tf.keras.Model(i, tf.keras.layers.Flatten()(layer_factory()(x)))


@pytest.mark.parametrize(
    "factory,expected",
    [
        ("conv_bn", "(QConv2DBatchnorm): hls4ml 1.3 does not convert it bit-exactly; pass the model through"),
        ("bilinear", "(UpSampling2D): interpolation 'bilinear' is not bit-exact in hls4ml 1.3"),
    ],
)
def test_layers_hls4ml_does_not_convert_bit_exactly_are_refused_in_one_line(factory, expected):
    from qkeras import QConv2DBatchnorm, quantized_bits
    from tensorflow.keras import layers

    from fpga_ft.generate.convert import check_supported

    q = quantized_bits(6, 0, alpha=1)
    factories = {
        "conv_bn": lambda: QConv2DBatchnorm(3, 3, kernel_quantizer=q, bias_quantizer=q, name="cbn"),
        "bilinear": lambda: layers.UpSampling2D(2, interpolation="bilinear", name="up"),
    }
    with pytest.raises(FpgaFtError) as info:
        check_supported(_small(factories[factory]))
    assert expected in str(info.value) and "\n" not in str(info.value)
