"""Models fpga-ft has never seen: other layer names, widths, Conv1D, strides, padding,
pointwise convolutions, average pooling. Fault-free csim must stay bit-exact."""

import numpy as np
import pytest

from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.generate.bitexact import compare_outputs
from fpga_ft.generate.design import build_design


def _randomize(model, rng):
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            layer.set_weights([rng.uniform(-1, 1, w.shape) for w in weights])
    return model


def _mixed_plan(layers) -> ProtectionPlan:
    """Every layer bit-level protected (k = 2) with its first and last neuron critical."""
    mixed = ProtectionPlan.uniform(layers, protected_msbs=2)
    for info in layers:
        mixed.layers[info.name].critical_neurons = sorted({0, info.n_out - 1})
    return mixed


def conv1d_model(rng):
    import tensorflow as tf
    from qkeras import QActivation, QConv1D, QDense, quantized_bits, quantized_relu
    from tensorflow.keras import layers

    i = layers.Input((16, 3), name="sig")
    x = QActivation(quantized_bits(10, 2, alpha=1), name="qin")(i)
    x = QConv1D(5, 3, kernel_quantizer=quantized_bits(4, 0, alpha=1), bias_quantizer=quantized_bits(4, 0, alpha=1),
                name="c1d")(x)
    x = QActivation(quantized_relu(5, 1), name="r1")(x)
    x = layers.MaxPooling1D(2, name="mp")(x)
    x = QConv1D(4, 1, kernel_quantizer=quantized_bits(8, 1, alpha=1), bias_quantizer=quantized_bits(8, 1, alpha=1),
                name="pointwise")(x)
    x = QActivation(quantized_relu(7, 2), name="r2")(x)
    x = layers.Flatten(name="fl")(x)
    x = QDense(3, kernel_quantizer=quantized_bits(7, 0, alpha=1), bias_quantizer=quantized_bits(7, 0, alpha=1),
               name="head")(x)
    return _randomize(tf.keras.Model(i, x), rng), rng.uniform(-2, 2, (48, 16, 3)).astype("float32")


def conv2d_model(rng):
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, quantized_bits, quantized_relu
    from tensorflow.keras import layers

    i = layers.Input((10, 10, 2))
    x = QActivation(quantized_bits(6, 0, alpha=1))(i)
    x = QConv2D(6, (3, 3), strides=(2, 2), padding="same", kernel_quantizer=quantized_bits(5, 0, alpha=1),
                bias_quantizer=quantized_bits(5, 0, alpha=1))(x)
    x = QActivation(quantized_relu(4, 0))(x)
    x = layers.AveragePooling2D(2)(x)
    x = QConv2D(3, (1, 1), kernel_quantizer=quantized_bits(3, 0, alpha=1), bias_quantizer=quantized_bits(3, 0, alpha=1))(x)
    x = QActivation(quantized_relu(6, 2))(x)
    x = layers.GlobalAveragePooling2D()(x)
    x = QDense(4, kernel_quantizer=quantized_bits(9, 1, alpha=1), bias_quantizer=quantized_bits(9, 1, alpha=1))(x)
    return _randomize(tf.keras.Model(i, x), rng), rng.uniform(-1, 1, (48, 10, 10, 2)).astype("float32")


@pytest.mark.parametrize("factory", [conv1d_model, conv2d_model])
@pytest.mark.parametrize("io_type", ["io_parallel", "io_stream"])
def test_unseen_models_are_bit_exact_with_and_without_protection(factory, io_type):
    model, x = factory(np.random.RandomState(1))
    reference = model.predict(x, verbose=0)
    layers = build_design(model, None, io_type=io_type).layers
    mixed = _mixed_plan(layers)
    for plan in (ProtectionPlan(), mixed):
        design = build_design(model, plan, io_type=io_type)
        assert compare_outputs(design.predict(x), reference)["bit_exact_fraction"] == 1.0


# issue 14: networks users bring (residual Add / Concatenate, depthwise and separable
# convolutions, UpSampling2D, ZeroPadding2D, global pooling), odd widths, one binary output
def _q(bits, integer=0):
    from qkeras import quantized_bits

    return quantized_bits(bits, integer, alpha=1)


def residual_model(rng):
    """A ResNet-style block (conv - relu - conv, plus the skip) with 5 channels, 7-bit
    weights and one output (a binary logit). Global average pooling over 8x8 (a power of
    two: over 7x7 QKeras's float mean is itself off the fixed-point grid, hls4ml's is not)."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, quantized_relu
    from tensorflow.keras import layers

    i = layers.Input((8, 8, 1))
    x = QActivation(_q(9, 1), name="qin")(i)
    x = QConv2D(5, 3, padding="same", kernel_quantizer=_q(7), bias_quantizer=_q(7), name="stem")(x)
    skip = QActivation(quantized_relu(5, 1), name="r0")(x)
    y = QConv2D(5, 3, padding="same", kernel_quantizer=_q(7), bias_quantizer=_q(7), name="b1")(skip)
    y = QActivation(quantized_relu(5, 1), name="r1")(y)
    y = QConv2D(5, 3, padding="same", kernel_quantizer=_q(7), bias_quantizer=_q(7), name="b2")(y)
    x = layers.Add(name="add")([skip, y])
    x = QActivation(quantized_relu(7, 3), name="r2")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = QDense(1, kernel_quantizer=_q(7), bias_quantizer=_q(7), name="binary")(x)
    return _randomize(tf.keras.Model(i, x), rng), rng.uniform(-2, 2, (40, 8, 8, 1)).astype("float32")


def concat_model(rng):
    """Two branches (3x3 conv, and a 1x1 conv on it) concatenated on the channel axis."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, quantized_relu
    from tensorflow.keras import layers

    i = layers.Input((6, 6, 2))
    x = QActivation(_q(8), name="qin")(i)
    a = QConv2D(3, 3, padding="same", kernel_quantizer=_q(5), bias_quantizer=_q(5), name="ca")(x)
    a = QActivation(quantized_relu(6, 2), name="ra")(a)
    b = QConv2D(2, 1, kernel_quantizer=_q(6), bias_quantizer=_q(6), name="cb")(a)
    b = QActivation(quantized_relu(4, 1), name="rb")(b)
    x = layers.Concatenate(name="cat")([a, b])
    x = layers.Flatten(name="fl")(x)
    x = QDense(3, kernel_quantizer=_q(7), bias_quantizer=_q(7), name="head")(x)
    return _randomize(tf.keras.Model(i, x), rng), rng.uniform(-1, 1, (40, 6, 6, 2)).astype("float32")


def separable_model(rng):
    """QSeparableConv2D and QDepthwiseConv2D between protectable layers."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, QDepthwiseConv2D, QSeparableConv2D, quantized_relu
    from tensorflow.keras import layers

    i = layers.Input((8, 8, 1))
    x = QActivation(_q(8), name="qin")(i)
    x = QConv2D(3, 3, kernel_quantizer=_q(6), bias_quantizer=_q(6), name="c1")(x)
    x = QActivation(quantized_relu(6, 2), name="r1")(x)
    x = QSeparableConv2D(5, 3, depthwise_quantizer=_q(6), pointwise_quantizer=_q(5),
                         bias_quantizer=_q(6), name="sep")(x)
    x = QActivation(quantized_relu(5, 2), name="r2")(x)
    x = QDepthwiseConv2D(2, depthwise_quantizer=_q(7, 1), bias_quantizer=_q(7), name="dw")(x)
    x = QActivation(quantized_relu(6, 2), name="r3")(x)
    x = layers.Flatten(name="fl")(x)
    x = QDense(3, kernel_quantizer=_q(7), bias_quantizer=_q(7), name="head")(x)
    return _randomize(tf.keras.Model(i, x), rng), rng.uniform(-1, 1, (40, 8, 8, 1)).astype("float32")


def resampling_model(rng):
    """UpSampling2D (nearest), ZeroPadding2D and GlobalMaxPooling2D around a convolution."""
    import tensorflow as tf
    from qkeras import QActivation, QConv2D, QDense, quantized_relu
    from tensorflow.keras import layers

    i = layers.Input((4, 3, 2))
    x = QActivation(_q(8), name="qin")(i)
    x = layers.UpSampling2D((2, 3), name="up")(x)
    x = layers.ZeroPadding2D(((1, 0), (0, 2)), name="pad")(x)
    x = QConv2D(3, 3, kernel_quantizer=_q(6), bias_quantizer=_q(6), name="c1")(x)
    x = QActivation(quantized_relu(6, 2), name="r1")(x)
    x = layers.GlobalMaxPooling2D(name="gmp")(x)
    x = QDense(2, kernel_quantizer=_q(7), bias_quantizer=_q(7), name="head")(x)
    return _randomize(tf.keras.Model(i, x), rng), rng.uniform(-1, 1, (40, 4, 3, 2)).astype("float32")


@pytest.mark.parametrize("factory,io_type", [
    (residual_model, "io_parallel"), (residual_model, "io_stream"), (concat_model, "io_parallel"),
    (separable_model, "io_parallel"), (separable_model, "io_stream"), (resampling_model, "io_parallel"),
])
def test_users_networks_are_bit_exact_with_and_without_protection(factory, io_type):
    """Every protectable layer (Dense/Conv, and the convolutions a depthwise or separable
    one becomes: fpga_ft/generate/intake/depthwise.py) listed in dataflow order; the csim
    equals QKeras bit for bit, unprotected and protected."""
    from fpga_ft.generate.intake.depthwise import rewritten_layers

    model, x = factory(np.random.RandomState(3))
    reference = model.predict(x, verbose=0)
    layers = build_design(model, None, io_type=io_type).layers
    halves = rewritten_layers(model)
    dots = [name for layer in model.layers if type(layer).__name__ in ("QConv2D", "QDense") or layer.name in halves
            for name in halves.get(layer.name, [layer.name])]
    assert [info.name for info in layers] == dots
    mixed = _mixed_plan(layers)
    for plan in (ProtectionPlan(), mixed):
        design = build_design(model, plan, io_type=io_type)
        assert compare_outputs(design.predict(x), reference)["bit_exact_fraction"] == 1.0


@pytest.mark.parametrize("factory,io_type", [
    (residual_model, "io_parallel"), (conv1d_model, "io_stream"),
    *(pytest.param(f, io, marks=pytest.mark.slow) for f, io in [
        (conv1d_model, "io_parallel"), (conv2d_model, "io_parallel"), (conv2d_model, "io_stream"),
        (residual_model, "io_stream"), (concat_model, "io_parallel"), (separable_model, "io_parallel"),
        (separable_model, "io_stream"), (resampling_model, "io_parallel")]),
])
def test_synthesis_cpp_is_bit_exact_with_every_layer_protected(factory, io_type, tmp_path):
    """The C++ HLS synthesises (constant-weight kept replica modules, lane adders, critical
    neurons' private copies; no FPGAFT_CSIM), built by hls4ml's own compile() and run by its
    predict(), equals QKeras bit for bit."""
    import contextlib
    import io

    from fpga_ft.generate.convert import convert_model

    model, x = factory(np.random.RandomState(3))
    reference = model.predict(x, verbose=0)
    layers = build_design(model, None, io_type=io_type).layers
    converted = convert_model(model, _mixed_plan(layers), io_type=io_type, output_dir=tmp_path / "prj")
    with contextlib.redirect_stdout(io.StringIO()):
        converted.hls_model.compile()
    out = np.asarray(converted.hls_model.predict(np.ascontiguousarray(x))).reshape(len(x), -1)
    assert compare_outputs(out, reference.reshape(len(x), -1))["bit_exact_fraction"] == 1.0
