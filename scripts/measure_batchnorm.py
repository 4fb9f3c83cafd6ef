"""Measure how bit-exact the C simulation is on models with batch normalization
(docs/networks.md, "Batch normalization").

    python scripts/measure_batchnorm.py [--samples 20000] [--seed 3]

Each model takes 8x8x1 inputs on the 8-bit input grid (uniform in [0, 1), seed ``--seed``),
has random batch-normalization parameters and moving statistics (gamma in [0.5, 2], beta and
mean N(0, 0.3), variance in [0.2, 3]) and is untrained. For each, the script prepares it as
every command does (:func:`fpga_ft.generate.intake.prepare_model`: folds what it folds), builds
the unprotected design, runs the csim on the inputs and compares it with the **user's** model
(Keras ``predict``), bit for bit. The bit-exactness check (``--allow-inexact``) is not applied:
the figures are what a user who passes it gets.

Models:

* ``folded``: QConv2DBatchnorm -> QDepthwiseConv2DBatchnorm -> QDenseBatchnorm -> QDense
  (folded by the intake);
* ``float_bn/<tail>``: QDense(16) then a Keras ``BatchNormalization``, then ``<tail>``:
  nothing (``bn_out``: the batch normalization is the output), a QDense(10)
  (``dense_after``), or ``quantized_relu(6, 2)`` and a QDense(10) (``relu6``);
* ``qbn/<tail>``: the same with a ``QBatchNormalization`` whose four parameters are quantized.

Prints one line per model: the share of samples whose outputs are all equal and the largest
absolute difference.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def _q(bits, integer=0):
    from qkeras import quantized_bits

    return quantized_bits(bits, integer, alpha=1)


def _batchnorm_weights(layer, rng, with_iteration: bool) -> None:
    """Random gamma, beta, moving mean and variance (and bias) of a batch normalization or a
    folded layer."""
    bn = getattr(layer, "batchnorm", layer)
    channels = int(bn.moving_mean.shape[0])
    stats = [rng.uniform(0.5, 2.0, channels), rng.normal(0, 0.3, channels)]
    moving = [rng.normal(0, 0.3, channels), rng.uniform(0.2, 3.0, channels)]
    if not with_iteration:
        layer.set_weights([w.astype(np.float32) for w in stats + moving])
        return
    weights = [layer.get_weights()[0], rng.normal(0, 0.2, channels)] + stats + [np.array(5)] + moving
    layer.set_weights([np.asarray(w, dtype=layer.weights[i].dtype.as_numpy_dtype) for i, w in enumerate(weights)])


def folded_model(rng):
    import tensorflow as tf
    from qkeras import QActivation, QConv2DBatchnorm, QDense, QDepthwiseConv2DBatchnorm, quantized_relu

    from fpga_ft.generate.modelio import custom_objects

    inputs = tf.keras.Input((8, 8, 1))
    x = QActivation(_q(8))(inputs)
    x = QConv2DBatchnorm(4, 3, kernel_quantizer=_q(6), bias_quantizer=_q(10, 4), name="cbn")(x)
    x = QActivation(quantized_relu(6, 2))(x)
    x = QDepthwiseConv2DBatchnorm(3, depthwise_quantizer=_q(6), bias_quantizer=_q(10, 4), name="dwbn")(x)
    x = tf.keras.layers.Flatten()(QActivation(quantized_relu(6, 2))(x))
    x = custom_objects()["QDenseBatchnorm"](16, kernel_quantizer=_q(6), bias_quantizer=_q(10, 4), name="dbn")(x)
    x = QDense(10, kernel_quantizer=_q(6), bias_quantizer=_q(8, 3))(QActivation(quantized_relu(6, 2))(x))
    model = tf.keras.Model(inputs, x)
    for name in ("cbn", "dwbn", "dbn"):
        _batchnorm_weights(model.get_layer(name), rng, with_iteration=True)
    return model


def batchnorm_after_dense(rng, quantized: bool, tail: str):
    import tensorflow as tf
    from qkeras import QActivation, QBatchNormalization, QDense, quantized_relu

    inputs = tf.keras.Input((8, 8, 1))
    x = tf.keras.layers.Flatten()(QActivation(_q(8))(inputs))
    x = QDense(16, kernel_quantizer=_q(6), bias_quantizer=_q(8, 3))(x)
    if quantized:
        bn = QBatchNormalization(
            gamma_quantizer=_q(6, 2),
            beta_quantizer=_q(6, 2),
            mean_quantizer=_q(6, 2),
            variance_quantizer=_q(8, 4),
            name="bn",
        )
    else:
        bn = tf.keras.layers.BatchNormalization(name="bn")
    x = bn(x)
    if tail == "relu6":
        x = QActivation(quantized_relu(6, 2))(x)
    if tail != "bn_out":
        x = QDense(10, kernel_quantizer=_q(6), bias_quantizer=_q(6))(x)
    model = tf.keras.Model(inputs, x)
    _batchnorm_weights(model.get_layer("bn"), rng, with_iteration=False)
    return model


def measure(model, x) -> tuple[float, float]:
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import prepare_model

    prepared = prepare_model(model)
    reference = model.predict(x, verbose=0, batch_size=2048)
    csim = np.asarray(build_design(prepared.model, None).predict(x)).reshape(reference.shape)
    same = np.all((csim == reference).reshape(len(x), -1), axis=1)
    return float(same.mean()), float(np.max(np.abs(csim.astype(np.float64) - reference)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    import tensorflow as tf

    rng = np.random.default_rng(args.seed)
    x = np.minimum(np.round(rng.uniform(0, 1, (args.samples, 8, 8, 1)) * 128) / 128, 127 / 128).astype(np.float32)
    cases = [("folded", lambda: folded_model(rng))]
    for quantized, label in ((False, "float_bn"), (True, "qbn")):
        for tail in ("bn_out", "dense_after", "relu6"):
            cases.append((f"{label}/{tail}", lambda q=quantized, t=tail: batchnorm_after_dense(rng, q, t)))
    print(f"{args.samples} samples, seed {args.seed}")
    print(f"{'model':<22} {'bit-exact':>10} {'max |diff|':>12}")
    for name, build in cases:
        tf.keras.utils.set_random_seed(1)
        fraction, diff = measure(build(), x)
        print(f"{name:<22} {fraction:>10.4f} {diff:>12.3g}")


if __name__ == "__main__":
    main()
