#!/usr/bin/env python
"""Retrain the model zoo (``models/``) reproducibly: the digits models and the MNIST CNN.

Writes, under ``--out-dir`` (default: the repository's ``models/``):

* ``digits_train.npz`` / ``digits_test.npz``: ``x`` float32 (N, 64), ``y`` int64 labels 0..9.
* ``digits_img_train.npz`` / ``digits_img_test.npz``: the same samples as (N, 8, 8, 1).
* ``digits_mlp.h5``: QKeras MLP 64-32-32-10 (logits, no softmax).
* ``digits_cnn.h5``: QKeras CNN on 8x8x1 images (logits, no softmax).
* ``mnist_cnn.h5``: QKeras CNN on 28x28x1 MNIST images (logits, no softmax).
* ``digits_resnet.h5``: QKeras residual CNN on the 8x8x1 digits (a block with ``Add``).
* ``digits_sepconv.h5``: QKeras depthwise-separable CNN on the 8x8x1 digits (``QSeparableConv2D``).
* ``zoo.json``: one entry per model (files, shapes, measured accuracy, parameters, seed,
  epochs, bit-exactness against hls4ml C simulation).

Data: the 1797 8x8 images of scikit-learn's ``load_digits`` (offline, shipped with
scikit-learn), stratified 70/30 split with a fixed seed. Pixel intensities 0..16 are divided
by 16 and clipped to at most 1 - 2**-7 = 127/128, the largest value of the signed 8-bit
fixed-point input with 0 integer bits (``quantized_bits(8, 0)`` = ``ap_fixed<8,1>``); every
pixel value k/16 is therefore exactly representable.

MNIST: ``mnist_cnn`` trains on the shipped ``mnist_train.npz`` and is measured on
``mnist_test.npz`` (both written by ``scripts/make_mnist_subset.py`` from the official MNIST
files, MD5-checked). With ``--mnist-dir`` naming a directory that holds all four official
files, it trains on the full official training set (60,000 images, same scaling) instead.
``--only NAME`` (repeatable) retrains only the named models; the other entries of
``zoo.json`` are kept.

Unless ``--no-verify`` is given, both models are converted with hls4ml (Vitis backend,
``bit_exact=True``) for ``io_parallel`` and ``io_stream``, compiled (g++) and the C-simulation
logits are compared with QKeras's on every test sample; the fractions go into ``zoo.json``.

Run from the repository root::

    python scripts/train_models.py

Takes about a minute of training plus four hls4ml compiles on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("PYTHONHASHSEED", "0")

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent

SEED = 20240611
#: Largest input value: 8-bit signed fixed point, 0 integer bits (ap_fixed<8,1>).
X_MAX = 1.0 - 2.0**-7
TEST_FRACTION = 0.30

WEIGHT_BITS = 6
RELU_BITS = 6
#: Integer bits of the 6-bit ReLU (range [0, 2**RELU_INT) in steps of 2**(RELU_INT-6)).
RELU_INT = 0
INPUT_BITS = 8

#: conv1 padding: "same" keeps 8x8 -> pool 4x4 -> conv2 2x2x16 (64 features to fc_out).
CNN_CONV1_PADDING = "same"

MLP_EPOCHS = 80
CNN_EPOCHS = 80
BATCH_SIZE = 32
LEARNING_RATE = 3e-3

#: MNIST CNN: epochs over the shipped 4,000-image subset (about 5 s each on one core).
MNIST_EPOCHS = 30
MODEL_NAMES = ("digits_mlp", "digits_cnn", "mnist_cnn", "digits_resnet", "digits_sepconv")
#: models trained on the 8x8x1 digits images
DIGITS_IMAGE_MODELS = ("digits_cnn", "digits_resnet", "digits_sepconv")


# --------------------------------------------------------------------------------------
# determinism
# --------------------------------------------------------------------------------------
def seed_everything(seed: int):
    """Seed python, numpy and TensorFlow; make TF ops deterministic and single-threaded."""
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.random.set_seed(seed)
    try:
        tf.config.threading.set_intra_op_parallelism_threads(1)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:  # already initialised (only when imported twice in one process)
        pass
    tf.config.experimental.enable_op_determinism()


# --------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------
def make_data(seed: int):
    """Return (x_train, y_train, x_test, y_test) as (N, 8, 8, 1) float32 / int64 arrays."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = np.minimum(digits.images / 16.0, X_MAX).astype(np.float32)[..., np.newaxis]
    y = digits.target.astype(np.int64)
    x_tr, x_te, y_tr, y_te = train_test_split(
        x, y, test_size=TEST_FRACTION, stratify=y, random_state=seed, shuffle=True
    )
    return x_tr, y_tr, x_te, y_te


def save_npz(path: Path, **arrays):
    """np.savez_compressed with fixed zip timestamps, so retraining gives identical bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, buf.getvalue())


# --------------------------------------------------------------------------------------
# models
# --------------------------------------------------------------------------------------
def _quantizers():
    from qkeras import quantized_bits, quantized_relu

    wq = quantized_bits(WEIGHT_BITS, 0, alpha=1)
    bq = quantized_bits(WEIGHT_BITS, 0, alpha=1)
    relu = quantized_relu(RELU_BITS, RELU_INT)
    inq = quantized_bits(INPUT_BITS, 0, alpha=1)
    return wq, bq, relu, inq


def build_mlp(seed: int):
    """QKeras MLP 64-32-32-10 with an 8-bit input quantizer; outputs logits."""
    from tensorflow import keras
    from qkeras import QActivation, QDense

    wq, bq, relu, inq = _quantizers()
    init = keras.initializers.GlorotUniform

    inp = keras.Input((64,), name="x_in")
    h = QActivation(inq, name="q_input")(inp)
    h = QDense(32, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init(seed + 1), name="fc1")(h)
    h = QActivation(relu, name="relu1")(h)
    h = QDense(32, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init(seed + 2), name="fc2")(h)
    h = QActivation(relu, name="relu2")(h)
    out = QDense(10, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init(seed + 3), name="fc3")(h)
    return keras.Model(inp, out, name="digits_mlp")


def _qconv3x3(h, filters: int, padding: str, init_seed: int, name: str):
    """A QConv2D 3x3 with the zoo's weight/bias quantizers and a seeded Glorot initializer."""
    from tensorflow import keras
    from qkeras import QConv2D

    wq, bq, _, _ = _quantizers()
    init = keras.initializers.GlorotUniform(init_seed)
    return QConv2D(
        filters, (3, 3), padding=padding, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init, name=name
    )(h)


def build_cnn(seed: int):
    """QKeras CNN on 8x8x1: conv(8,3x3) - relu - maxpool 2 - conv(16,3x3) - relu - dense 10."""
    from tensorflow import keras
    from qkeras import QActivation, QDense

    wq, bq, relu, inq = _quantizers()
    init = keras.initializers.GlorotUniform

    inp = keras.Input((8, 8, 1), name="x_in")
    h = QActivation(inq, name="q_input")(inp)
    h = _qconv3x3(h, 8, CNN_CONV1_PADDING, seed + 11, "conv1")
    h = QActivation(relu, name="relu1")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool1")(h)
    h = _qconv3x3(h, 16, "valid", seed + 12, "conv2")
    h = QActivation(relu, name="relu2")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    out = QDense(10, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init(seed + 13), name="fc_out")(h)
    return keras.Model(inp, out, name="digits_cnn")


def build_resnet(seed: int):
    """QKeras residual CNN on 8x8x1: conv(8) - relu - [conv(8) - relu - conv(8)] + skip - relu
    - maxpool 2 - dense 10 (3x3 convolutions, 'same' padding; the block adds its input)."""
    from tensorflow import keras
    from qkeras import QActivation, QDense

    wq, bq, relu, inq = _quantizers()
    inp = keras.Input((8, 8, 1), name="x_in")
    h = QActivation(inq, name="q_input")(inp)
    h = _qconv3x3(h, 8, "same", seed + 31, "conv1")
    skip = QActivation(relu, name="relu1")(h)
    h = _qconv3x3(skip, 8, "same", seed + 32, "block_conv1")
    h = QActivation(relu, name="block_relu1")(h)
    h = _qconv3x3(h, 8, "same", seed + 33, "block_conv2")
    h = keras.layers.Add(name="block_add")([skip, h])
    h = QActivation(relu, name="block_relu2")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool1")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    init = keras.initializers.GlorotUniform(seed + 34)
    out = QDense(10, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init, name="fc_out")(h)
    return keras.Model(inp, out, name="digits_resnet")


def build_sepconv(seed: int):
    """QKeras depthwise-separable CNN on 8x8x1: conv(8, 3x3, same) - relu - separable conv
    (depthwise 3x3 on 8 channels, pointwise 8 -> 16) - relu - maxpool 2 - dense 10."""
    from tensorflow import keras
    from qkeras import QActivation, QDense, QSeparableConv2D

    wq, bq, relu, inq = _quantizers()
    init = keras.initializers.GlorotUniform
    inp = keras.Input((8, 8, 1), name="x_in")
    h = QActivation(inq, name="q_input")(inp)
    h = _qconv3x3(h, 8, "same", seed + 41, "conv1")
    h = QActivation(relu, name="relu1")(h)
    h = QSeparableConv2D(16, (3, 3), depthwise_quantizer=wq, pointwise_quantizer=wq, bias_quantizer=bq,
                         depthwise_initializer=init(seed + 42), pointwise_initializer=init(seed + 43),
                         name="sepconv")(h)
    h = QActivation(relu, name="relu2")(h)
    h = keras.layers.MaxPooling2D((2, 2), name="pool1")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    out = QDense(10, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init(seed + 44), name="fc_out")(h)
    return keras.Model(inp, out, name="digits_sepconv")


def build_mnist_cnn(seed: int):
    """QKeras CNN on 28x28x1: [conv(16,3x3) - relu - maxpool 2] x 2 - dense 10 (logits).

    Shapes: 28x28x1 -> conv1 26x26x16 -> pool1 13x13x16 -> conv2 11x11x16 -> pool2 5x5x16
    -> flatten 400 -> fc_out 10; 6,490 parameters, 380,128 multiply-accumulates per image.
    """
    from tensorflow import keras
    from qkeras import QActivation, QDense

    wq, bq, relu, inq = _quantizers()
    init = keras.initializers.GlorotUniform

    inp = keras.Input((28, 28, 1), name="x_in")
    h = QActivation(inq, name="q_input")(inp)
    for i in (1, 2):
        h = _qconv3x3(h, 16, "valid", seed + 20 + i, f"conv{i}")
        h = QActivation(relu, name=f"relu{i}")(h)
        h = keras.layers.MaxPooling2D((2, 2), name=f"pool{i}")(h)
    h = keras.layers.Flatten(name="flatten")(h)
    out = QDense(10, kernel_quantizer=wq, bias_quantizer=bq, kernel_initializer=init(seed + 23), name="fc_out")(h)
    return keras.Model(inp, out, name="mnist_cnn")


def train(model, x, y, epochs: int, seed: int):
    """Adam (cosine-decayed learning rate) + sparse categorical cross-entropy on logits."""
    import tensorflow as tf
    from tensorflow import keras

    steps = epochs * int(np.ceil(len(x) / BATCH_SIZE))
    lr = keras.optimizers.schedules.CosineDecay(LEARNING_RATE, decay_steps=steps, alpha=0.02)
    model.compile(
        optimizer=keras.optimizers.Adam(lr),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )
    tf.random.set_seed(seed)
    ds = (
        tf.data.Dataset.from_tensor_slices((x, y))
        .shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
        .batch(BATCH_SIZE)
    )
    model.fit(ds, epochs=epochs, verbose=0)
    return model


def accuracy(model, x, y) -> float:
    logits = model.predict(x, batch_size=256, verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == y))


def load_npz(path: Path):
    """(x, y, source) of a shipped MNIST subset; ``source`` is its JSON record (a dict)."""
    with np.load(path, allow_pickle=False) as npz:
        return npz["x"], npz["y"], json.loads(str(npz["source"][0]))


def mnist_data(out: Path, mnist_dir: Path | None):
    """Training and test data of ``mnist_cnn`` and a description of the training data.

    Test: the shipped ``mnist_test.npz``. Training: the full official training set when
    ``mnist_dir`` holds all four official files (MD5-checked), else ``mnist_train.npz``.
    """
    x_te, y_te, test_src = load_npz(out / "mnist_test.npz")
    if mnist_dir is not None:
        from make_mnist_subset import TRAIN_FILES, load_split, scale

        train = load_split(mnist_dir, TRAIN_FILES)
        trained_on = {"data": "official MNIST training set (60,000 images, MD5-checked)", "files": train.files}
        return scale(train.images), train.labels, x_te, y_te, trained_on, test_src
    x_tr, y_tr, train_src = load_npz(out / "mnist_train.npz")
    trained_on = {"data": f"mnist_train.npz ({len(x_tr)} images from the {train_src['drawn_from']})"}
    return x_tr, y_tr, x_te, y_te, trained_on, test_src


def mnist_dataset_entry(test_src: dict, train_src: dict | None) -> dict:
    """The ``mnist_dataset`` record of zoo.json: origin, MD5s, split and scaling."""
    return {
        "name": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), 28x28 images, 10 classes",
        "origin": test_src["origin"],
        "md5": {**(train_src or {}).get("files", {}), **test_src["files"]},
        "test_data": f"mnist_test.npz: {test_src['samples']} images of the {test_src['drawn_from']}, "
        f"stratified, seed {test_src['seed']}",
        "train_data": (
            f"mnist_train.npz: {train_src['samples']} images of the {train_src['drawn_from']}, "
            f"stratified, seed {train_src['seed']}"
        )
        if train_src
        else None,
        "scaling": test_src["scaling"],
        "rebuild": "python scripts/make_mnist_subset.py --mnist-dir DIR --origin TEXT",
    }


# --------------------------------------------------------------------------------------
# hls4ml verification
# --------------------------------------------------------------------------------------
def verify_bit_exact(model, x, io_type: str) -> dict:
    """Convert with hls4ml (Vitis, bit_exact=True), compile, compare logits with QKeras.

    Returns the fraction of samples whose full logit vector is identical, the largest
    absolute difference and the compile time in seconds.
    """
    import hls4ml

    cfg = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
    with tempfile.TemporaryDirectory(prefix=f"fpgaft_{model.name}_{io_type}_") as tmp:
        hm = hls4ml.converters.convert_from_keras_model(
            model,
            hls_config=cfg,
            output_dir=str(Path(tmp) / "prj"),
            backend="Vitis",
            io_type=io_type,
            bit_exact=True,
        )
        t0 = time.perf_counter()
        hm.compile()
        compile_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        y_hls = np.asarray(hm.predict(np.ascontiguousarray(x)), dtype=np.float64)
        predict_s = time.perf_counter() - t0
    y_k = np.asarray(model.predict(x, batch_size=256, verbose=0), dtype=np.float64)
    n = len(x)
    y_hls = y_hls.reshape(n, -1)
    y_k = y_k.reshape(n, -1)
    same = np.all(y_hls == y_k, axis=1)
    return {
        "io_type": io_type,
        "bit_exact_fraction": float(np.mean(same)),
        "max_abs_diff": float(np.max(np.abs(y_hls - y_k))),
        "argmax_agreement": float(np.mean(np.argmax(y_hls, 1) == np.argmax(y_k, 1))),
        "compile_seconds": round(compile_s, 2),
        "predict_seconds": round(predict_s, 2),
    }


# --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelSpec:
    """One zoo model to train: builder, epochs, its .npz file names and its data."""

    name: str
    builder: object  # seed -> keras.Model
    epochs: int
    files: tuple[str, str]  # (train, test) .npz names in the output directory
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    trained_on: str | None = None  # what the model trained on, when not simply files[0]


def model_entry(
    name: str, model, files: tuple[str, str], acc: tuple[float, float], n_te: int, cmd: str, seed: int, epochs: int
) -> dict:
    """One model's zoo.json entry (without the hls4ml check): files, shapes, measured accuracy."""
    return {
        "file": f"{name}.h5",
        "train_data": files[0],
        "test_data": files[1],
        "input_shape": list(model.input_shape[1:]),
        "output": "logits (10 classes, no softmax)",
        "layers": [layer.name for layer in model.layers],
        "quantization": {
            "input": f"quantized_bits({INPUT_BITS},0,alpha=1)",
            "weights_biases": f"quantized_bits({WEIGHT_BITS},0,alpha=1)",
            "activations": f"quantized_relu({RELU_BITS},{RELU_INT})",
        },
        "test_accuracy": round(acc[1], 6),
        "train_accuracy": round(acc[0], 6),
        "test_samples": int(n_te),
        "parameters": int(model.count_params()),
        "training_command": cmd,
        "seed": seed,
        "epochs": epochs,
        "batch_size": BATCH_SIZE,
        "optimizer": f"Adam, lr {LEARNING_RATE} cosine-decayed; SparseCategoricalCrossentropy(from_logits=True)",
    }


def training_command(args) -> str:
    """The command line that reproduces this run (defaults left out)."""
    cmd = "python scripts/train_models.py"
    if args.seed != SEED or args.mlp_epochs != MLP_EPOCHS or args.cnn_epochs != CNN_EPOCHS:
        cmd += f" --seed {args.seed} --mlp-epochs {args.mlp_epochs} --cnn-epochs {args.cnn_epochs}"
    if args.mnist_epochs != MNIST_EPOCHS:
        cmd += f" --mnist-epochs {args.mnist_epochs}"
    if args.mnist_dir is not None:
        cmd += " --mnist-dir DIR"
    return cmd


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out-dir", type=Path, default=ROOT / "models")
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--mlp-epochs", type=int, default=MLP_EPOCHS)
    ap.add_argument("--cnn-epochs", type=int, default=CNN_EPOCHS)
    ap.add_argument("--mnist-epochs", type=int, default=MNIST_EPOCHS)
    ap.add_argument(
        "--mnist-dir",
        type=Path,
        default=None,
        help="directory with the four official MNIST files: train mnist_cnn on all 60,000 images",
    )
    ap.add_argument(
        "--only",
        action="append",
        choices=MODEL_NAMES,
        help="retrain only this model (repeatable); the other zoo.json entries are kept",
    )
    ap.add_argument("--no-verify", action="store_true", help="skip the hls4ml bit-exactness check")
    args = ap.parse_args(argv)

    seed_everything(args.seed)
    out = args.out_dir
    out.mkdir(parents=True, exist_ok=True)
    names = args.only or list(MODEL_NAMES)
    zoo_path = out / "zoo.json"
    zoo = json.loads(zoo_path.read_text()) if args.only and zoo_path.exists() else {"models": {}}
    old_models = zoo.get("models", {})
    zoo["models"] = {}
    cmd = training_command(args)

    specs = []
    if {"digits_mlp", *DIGITS_IMAGE_MODELS} & set(names):
        x_tr, y_tr, x_te, y_te = make_data(args.seed)
        n_tr, n_te = len(x_tr), len(x_te)
        save_npz(out / "digits_train.npz", x=x_tr.reshape(n_tr, 64), y=y_tr)
        save_npz(out / "digits_test.npz", x=x_te.reshape(n_te, 64), y=y_te)
        save_npz(out / "digits_img_train.npz", x=x_tr, y=y_tr)
        save_npz(out / "digits_img_test.npz", x=x_te, y=y_te)
        print(f"data: {n_tr} train / {n_te} test samples (stratified, seed {args.seed})")
        zoo["dataset"] = {
            "name": "scikit-learn load_digits (UCI optdigits, test subset), 8x8 images, 10 classes",
            "samples": int(n_tr + n_te),
            "split": f"stratified {1 - TEST_FRACTION:.0%}/{TEST_FRACTION:.0%}, random_state={args.seed}",
            "scaling": "pixel / 16, clipped to <= 127/128 (exact in ap_fixed<8,1>)",
        }
        flat_tr, flat_te = x_tr.reshape(n_tr, 64), x_te.reshape(n_te, 64)
        specs += [
            ModelSpec(
                "digits_mlp",
                build_mlp,
                args.mlp_epochs,
                ("digits_train.npz", "digits_test.npz"),
                flat_tr,
                y_tr,
                flat_te,
                y_te,
            ),
            ModelSpec(
                "digits_cnn",
                build_cnn,
                args.cnn_epochs,
                ("digits_img_train.npz", "digits_img_test.npz"),
                x_tr,
                y_tr,
                x_te,
                y_te,
            ),
        ]
        image_files = ("digits_img_train.npz", "digits_img_test.npz")
        specs += [
            ModelSpec("digits_resnet", build_resnet, args.cnn_epochs, image_files, x_tr, y_tr, x_te, y_te),
            ModelSpec("digits_sepconv", build_sepconv, args.cnn_epochs, image_files, x_tr, y_tr, x_te, y_te),
        ]
    if "mnist_cnn" in names:
        try:
            mx_tr, my_tr, mx_te, my_te, trained_on, test_src = mnist_data(out, args.mnist_dir)
        except Exception as exc:  # SubsetError (bad official files) or a missing shipped subset
            print(f"error: MNIST data: {exc}", file=sys.stderr)
            return 2
        train_src = None if args.mnist_dir is not None else load_npz(out / "mnist_train.npz")[2]
        zoo["mnist_dataset"] = mnist_dataset_entry(test_src, train_src)
        print(f"mnist: {len(mx_tr)} train / {len(mx_te)} test images; training on {trained_on['data']}")
        files = ("mnist_train.npz", "mnist_test.npz")
        specs.append(
            ModelSpec(
                "mnist_cnn", build_mnist_cnn, args.mnist_epochs, files, mx_tr, my_tr, mx_te, my_te, trained_on["data"]
            )
        )

    ok = True
    for spec in specs:
        if spec.name not in names:
            continue
        name, epochs, xtr, ytr, xte, yte = spec.name, spec.epochs, spec.x_train, spec.y_train, spec.x_test, spec.y_test
        seed_everything(args.seed)
        t0 = time.perf_counter()
        model = train(spec.builder(args.seed), xtr, ytr, epochs, args.seed)
        train_s = time.perf_counter() - t0
        acc_tr = accuracy(model, xtr, ytr)
        acc = accuracy(model, xte, yte)
        model.save(out / f"{name}.h5", include_optimizer=False)
        print(
            f"{name}: {model.count_params()} parameters, {epochs} epochs in {train_s:.1f} s, "
            f"train accuracy {acc_tr:.4f}, test accuracy {acc:.4f}"
        )
        entry = model_entry(name, model, spec.files, (acc_tr, acc), len(xte), cmd, args.seed, epochs)
        if spec.trained_on is not None:
            entry["trained_on"] = spec.trained_on
            entry["train_seconds"] = round(train_s, 1)
        if not args.no_verify:
            checks = {}
            for io_type in ("io_parallel", "io_stream"):
                r = verify_bit_exact(model, xte, io_type)
                checks[io_type] = {k: r[k] for k in ("bit_exact_fraction", "max_abs_diff", "argmax_agreement")}
                print(
                    f"  hls4ml {io_type}: bit-exact on {r['bit_exact_fraction']:.2%} of {len(xte)} test samples "
                    f"(max |diff| {r['max_abs_diff']:g}), compile {r['compile_seconds']:.1f} s, "
                    f"predict {r['predict_seconds']:.2f} s"
                )
                ok &= r["bit_exact_fraction"] == 1.0
            entry["hls4ml_bit_exact"] = {
                "settings": "hls4ml 1.3.0, backend Vitis, granularity name, bit_exact=True",
                **checks,
            }
        zoo["models"][name] = entry

    # keep entries of models not retrained now, in the zoo's order
    zoo["models"] = {
        n: zoo["models"].get(n, old_models.get(n)) for n in MODEL_NAMES if n in zoo["models"] or n in old_models
    }
    head = {k: zoo[k] for k in ("dataset", "mnist_dataset") if k in zoo}
    zoo = {**head, **{k: v for k, v in zoo.items() if k not in head}}
    zoo_path.write_text(json.dumps(zoo, indent=2) + "\n")
    print(f"wrote {zoo_path}")
    if not ok:
        print("error: a model is not bit-exact under hls4ml", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
