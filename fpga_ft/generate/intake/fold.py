"""Batch normalization folded into the layer before it: QKeras's ``QConv2DBatchnorm``,
``QDepthwiseConv2DBatchnorm`` (and ``QDenseBatchnorm`` of QKeras after 0.9.0) rewritten as
the plain ``QConv2D`` / ``QDepthwiseConv2D`` / ``QDense`` that computes the same words.

What such a layer computes at inference (QKeras 0.9.0 ``qconv2d_batchnorm.py``,
``qdepthwiseconv2d_batchnorm.py``; ``training`` false, so both ``folding_mode`` values and
any ``ema_freeze_delay`` take the same branch: the moving statistics):

    inv         = rsqrt(moving_variance + epsilon) * gamma      (float32, per output channel)
    kernel_f    = inv * kernel                                   (depthwise: inv reshaped to (C, 1))
    bias_f      = inv * (bias - moving_mean) + beta              (bias = 0 without use_bias)
    y           = activation(conv(x, kernel_quantizer(kernel_f)) + bias_quantizer(bias_f))

``kernel_quantizer`` / ``bias_quantizer`` apply to the folded float values, so a plain layer
holding ``kernel_f`` and ``bias_f`` with the **same** quantizers (and ``use_bias=True``)
computes exactly these words: a quantizer whose scale depends on the values it quantizes
(``alpha='auto'``) sees the same folded values in both. :func:`fold_batchnorm` computes
``kernel_f`` / ``bias_f`` with the same TensorFlow float32 operations in the same order, so
the copy's outputs are the original's bit for bit (``tests/test_batchnorm.py`` compares them;
:func:`fold_batchnorm` also compares both models on random inputs before it returns the copy).
``momentum``, ``renorm``, ``virtual_batch_size``, ``folding_mode`` and ``ema_freeze_delay``
only change training.

Refused (one line naming the layer): a batch normalization over an axis other than the last
(channels) axis, ``center=False`` (QKeras 0.9.0 cannot run the layer: it adds ``beta``), a
depthwise ``depth_multiplier`` other than 1. A folded layer without ``bias_quantizer`` has a
float bias and is then refused by the bit-exactness check (:mod:`fpga_ft.generate.bitexact`)
like any float bias, unless ``--allow-inexact``.
"""

from __future__ import annotations

from dataclasses import dataclass

from fpga_ft.core.errors import FpgaFtError

#: folded layer class -> the plain QKeras layer it becomes, and that layer's kernel key
FOLDED_LAYERS = {
    "QConv2DBatchnorm": ("QConv2D", "kernel"),
    "QDenseBatchnorm": ("QDense", "kernel"),
    "QDepthwiseConv2DBatchnorm": ("QDepthwiseConv2D", "depthwise_kernel"),
}
#: config keys of the batch-normalization part (and QKeras's folding options), dropped from
#: the plain layer's config
_BATCHNORM_KEYS = (
    "axis",
    "momentum",
    "epsilon",
    "center",
    "scale",
    "beta_initializer",
    "gamma_initializer",
    "moving_mean_initializer",
    "moving_variance_initializer",
    "beta_regularizer",
    "gamma_regularizer",
    "beta_constraint",
    "gamma_constraint",
    "renorm",
    "renorm_clipping",
    "renorm_momentum",
    "fused",
    "virtual_batch_size",
    "adjustment",
    "ema_freeze_delay",
    "folding_mode",
)


@dataclass(frozen=True)
class FoldedLayer:
    """One layer rewritten by :func:`fold_batchnorm`.

    Attributes:
        name: the layer's name (kept by the plain layer).
        original_class: e.g. ``QConv2DBatchnorm``.
        plain_class: e.g. ``QConv2D``.
        epsilon: the batch normalization's epsilon (added to the moving variance).
        float_bias: the layer has no ``bias_quantizer``: the folded bias is a float.
    """

    name: str
    original_class: str
    plain_class: str
    epsilon: float
    float_bias: bool = False

    def note(self) -> str:
        """The one-line note every command prints (``note: folded batch normalization ...``)."""
        text = (
            f"note: folded batch normalization of layer '{self.name}' ({self.original_class}) into a "
            f"{self.plain_class} with the same quantizers (kernel * gamma / sqrt(moving_variance + "
            f"{self.epsilon:g}), bias folded with beta and moving_mean, as QKeras computes it at inference): "
            "bit-for-bit the same outputs"
        )
        if self.float_bias:
            text += "; it has no bias_quantizer, so its folded bias is float (not bit-exact)"
        return text


def _check_foldable(layer, cls: str) -> None:
    """Refuse, naming the layer, what the fold does not reproduce exactly."""
    where = f"layer '{layer.name}' ({cls})"
    bn = layer.batchnorm
    axes = list(bn.axis) if isinstance(bn.axis, (list, tuple)) else [bn.axis]
    rank = getattr(getattr(bn, "input_spec", None), "ndim", None)  # set when the layer was built
    if len(axes) != 1 or (axes[0] != -1 and (rank is None or axes[0] != rank - 1)):
        raise FpgaFtError(
            f"{where}: batch normalization over axis {bn.axis} cannot be folded into the kernel "
            "(only the last, channels axis)"
        )
    if not bn.center or getattr(bn, "beta", None) is None:
        raise FpgaFtError(
            f"{where}: center=False (no beta): QKeras 0.9 cannot run this layer at inference "
            "(it adds beta); rebuild it with center=True"
        )
    if cls == "QDepthwiseConv2DBatchnorm" and int(getattr(layer, "depth_multiplier", 1)) != 1:
        raise FpgaFtError(
            f"{where}: depth_multiplier {layer.depth_multiplier} is not converted by hls4ml 1.3 (bit-exact); use 1"
        )


def folded_weights(layer, as_tensors: bool = False) -> list:
    """``[kernel_f, bias_f]`` (numpy float32) of a QKeras ``*Batchnorm`` layer at inference,
    computed with the TensorFlow operations of the layer's ``call`` in the same order, so the
    values are bit for bit those the layer quantizes (see the module docstring).
    ``as_tensors``: TensorFlow tensors instead (inside a layer's ``call``)."""
    import tensorflow as tf

    cls = type(layer).__name__
    _, kernel_key = FOLDED_LAYERS[cls]
    bn = layer.batchnorm
    kernel = getattr(layer, kernel_key)
    bias = layer.bias if layer.use_bias else 0
    inv = tf.math.rsqrt(bn.moving_variance + bn.epsilon)
    if bn.gamma is not None:
        inv *= bn.gamma
    folded_bias = inv * (bias - bn.moving_mean) + bn.beta
    if cls == "QDepthwiseConv2DBatchnorm":
        shape = kernel.get_shape().as_list()
        inv = tf.reshape(inv, [shape[2], shape[3]])
    folded_kernel = inv * kernel
    if as_tensors:
        return [folded_kernel, folded_bias]
    return [folded_kernel.numpy(), folded_bias.numpy()]


def fold_batchnorm(model) -> tuple[object, list[FoldedLayer]]:
    """``(model, [])`` when ``model`` has no folded-batch-normalization layer, else a copy
    (fresh layers, same names) whose ``*Batchnorm`` layers are the plain layers with the
    folded weights and the same quantizers, and what was folded. Raises
    :class:`FpgaFtError` for a layer the fold would not reproduce (see the module docstring),
    and when the copy's outputs differ from the original's on random inputs."""
    found = [layer for layer in model.layers if type(layer).__name__ in FOLDED_LAYERS]
    if not found:
        return model, []
    from fpga_ft.generate.intake.edit import model_from_config
    from fpga_ft.generate.modelio import _quiet_tensorflow

    tf = _quiet_tensorflow()
    folded: dict[str, list] = {}
    done = []
    for layer in found:
        cls = type(layer).__name__
        _check_foldable(layer, cls)
        folded[layer.name] = folded_weights(layer)
        done.append(
            FoldedLayer(
                layer.name,
                cls,
                FOLDED_LAYERS[cls][0],
                float(layer.batchnorm.epsilon),
                float_bias=getattr(layer, "bias_quantizer_internal", None) is None,
            )
        )
    functional = tf.keras.Model(model.inputs, model.outputs, name=model.name)
    config = functional.get_config()
    for entry in config["layers"]:
        if entry["name"] not in folded:
            continue
        plain = FOLDED_LAYERS[entry["class_name"]][0]
        entry["class_name"] = plain
        entry.pop("module", None)  # Keras 2.14 resolves "registered_name" / "module" first
        if "registered_name" in entry:
            entry["registered_name"] = plain
        entry["config"] = {key: value for key, value in entry["config"].items() if key not in _BATCHNORM_KEYS}
        entry["config"]["use_bias"] = True  # the folded bias (beta - moving_mean * inv) is always added
    copy = model_from_config(config, model.name, "fold its batch normalization")
    for layer in copy.layers:
        if layer.name in folded:
            layer.set_weights(folded[layer.name])
        elif layer.weights:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    _check_same_outputs(model, copy, done)
    return copy, done


#: random inputs on which :func:`fold_batchnorm` compares the copy with the original
CHECK_SAMPLES = 64


def _check_same_outputs(model, copy, done: list[FoldedLayer]) -> None:
    """Refuse the fold if the copy's outputs differ from the original's on
    :data:`CHECK_SAMPLES` standard-normal inputs (any input: both compute the same function
    or not). A guard against a TensorFlow build that evaluates the fold differently; it costs
    one ``predict`` of each model."""
    shape = tuple(model.input_shape[1:]) if not isinstance(model.input_shape, list) else None
    if shape is None or any(dim is None for dim in shape):
        return
    import numpy as np

    x = np.random.default_rng(0).standard_normal((CHECK_SAMPLES, *shape)).astype(np.float32)
    expected = np.asarray(model.predict(x, verbose=0))
    got = np.asarray(copy.predict(x, verbose=0))
    differ = int(np.count_nonzero(np.any((expected != got).reshape(CHECK_SAMPLES, -1), axis=1)))
    if differ:
        names = ", ".join(f"'{layer.name}'" for layer in done)
        raise FpgaFtError(
            f"folding the batch normalization of layer(s) {names} did not reproduce the model's "
            f"outputs ({differ} of {CHECK_SAMPLES} random inputs differ); please report it"
        )
