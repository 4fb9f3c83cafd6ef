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
    mixed = ProtectionPlan.uniform(layers, protected_msbs=2)
    for info in layers:
        mixed.layers[info.name].critical_neurons = [0, info.n_out - 1]
    for plan in (ProtectionPlan(), mixed):
        design = build_design(model, plan, io_type=io_type)
        assert compare_outputs(design.predict(x), reference)["bit_exact_fraction"] == 1.0
