"""Loading QKeras models and ``.npz`` data sets, with one-line :class:`FpgaFtError` messages.

TensorFlow and QKeras are imported only when a model is loaded, and TensorFlow's C++ log
is silenced first (``TF_CPP_MIN_LOG_LEVEL=3`` unless the user set it).

Units: model inputs are the raw feature values the network was trained on (for the bundled
digits data, pixel intensity / 16, in [0, 127/128]); shapes are per sample, without the
batch dimension, e.g. ``(64,)`` or ``(8, 8, 1)``. Labels are class indices 0..C-1.
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import numpy as np

from fpga_ft.core.classify import OutputHead, n_classes
from fpga_ft.core.errors import FpgaFtError

__all__ = ["load_model", "load_data", "check_input_shape", "model_input_shape", "check_labels",
           "model_n_outputs", "output_head", "outputs_are_logits", "sample_losses", "keras_loss"]


def _quiet_tensorflow():
    """Import TensorFlow with its C++ and Python logging turned down; return the module."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    import tensorflow as tf

    tf.get_logger().setLevel("ERROR")
    return tf


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def load_model(path, weights=None):
    """Load a Keras/QKeras model: a full model (``.h5``, Keras 2 ``.keras``, SavedModel
    directory), an architecture ``.json`` with its weights (``weights``, else the sibling
    ``<stem>_weights.h5``), or the model an hls4ml config YAML names (``KerasJson`` +
    ``KerasH5``, ``KerasH5`` or ``KerasModel``; its HLS settings are not applied here, see
    :func:`fpga_ft.generate.intake.open_model`).

    QKeras layers and quantizers are registered as custom objects. The model is returned
    uncompiled (no optimizer state): it is only used for inference and conversion.

    Args:
        path: file or directory (str or :class:`pathlib.Path`).
        weights: weights ``.h5`` of a ``.json`` architecture (optional).

    Returns:
        The ``keras.Model``.

    Raises:
        FpgaFtError: the path does not exist, or it cannot be read as a Keras model.
    """
    from fpga_ft.generate.intake import load_keras_model, resolve_source

    return load_keras_model(resolve_source(path, weights))


def custom_objects() -> dict:
    """The QKeras layers and quantizers Keras needs to deserialise a QKeras model."""
    try:
        from qkeras.utils import _add_supported_quantized_objects
    except ImportError as exc:  # pragma: no cover - qkeras is a hard dependency
        raise FpgaFtError(f"QKeras is not importable ({_first_line(exc)})") from exc
    from fpga_ft.generate.intake.depthwise import block_diagonal_constraint

    objects: dict = {}
    _add_supported_quantized_objects(objects)
    objects["QActivation"] = _qactivation_compat()
    if "QDenseBatchnorm" not in objects:  # QKeras 0.9.0 has none: read it (intake/qdense_batchnorm.py)
        from fpga_ft.generate.intake.qdense_batchnorm import qdense_batchnorm_class

        objects["QDenseBatchnorm"] = qdense_batchnorm_class()
    objects["BlockDiagonal"] = block_diagonal_constraint()  # kernels of rewritten depthwise convolutions
    return objects


#: Keras layer classes whose saved form carries Python code that Keras runs when it rebuilds
#: the model (Lambda: marshalled bytecode or a module function). fpga-ft never needs them.
CODE_LAYERS = ("Lambda",)


def stored_model_config(path: Path):
    """The architecture stored in a model file, read without building the model (no
    deserialised code runs): ``.h5`` (``model_config`` attribute), ``.keras`` (``config.json``),
    ``.json``; for a SavedModel directory the raw ``keras_metadata.pb`` bytes. ``None`` when
    there is nothing to read (Keras will then say what is wrong)."""
    p = Path(path)
    try:
        if p.is_dir():
            meta = p / "keras_metadata.pb"
            return meta.read_bytes() if meta.is_file() else None
        if p.suffix.lower() == ".json":
            return json.loads(p.read_text(encoding="utf-8"))
        if zipfile.is_zipfile(p):
            with zipfile.ZipFile(p) as archive:
                if "config.json" in archive.namelist():
                    return json.loads(archive.read("config.json"))
            return None
        import h5py

        with h5py.File(p, "r") as handle:
            raw = handle.attrs.get("model_config")
        if raw is None:
            return None
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else raw)
    except (OSError, ValueError, UnicodeDecodeError, zipfile.BadZipFile):
        return None


def _layers_of(config) -> list[tuple[str, str]]:
    """(layer name, class name) of every layer in a Keras model config, nested models included."""
    found: list[tuple[str, str]] = []

    def walk(node):
        if isinstance(node, dict):
            cls = node.get("class_name")
            cfg = node.get("config")
            if isinstance(cls, str) and isinstance(cfg, dict):
                found.append((str(cfg.get("name", "?")), cls))
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(config)
    return found


def refuse_code_layers(config, path) -> None:
    """Refuse, before Keras sees it, a model whose stored architecture has a layer that runs
    deserialised Python code (:data:`CODE_LAYERS`); one-line error naming the layer."""
    if config is None:
        return
    if isinstance(config, bytes):  # SavedModel metadata: JSON strings inside a protobuf
        for cls in CODE_LAYERS:
            if f'"class_name": "{cls}"'.encode() in config:
                raise FpgaFtError(f"refusing model {path}: it has a {cls} layer, whose saved Python code Keras "
                                  "would run while loading; rebuild the model without it")
        return
    for name, cls in _layers_of(config):
        if cls in CODE_LAYERS:
            raise FpgaFtError(f"refusing model {path}: layer '{name}' is a {cls}, whose saved Python code Keras "
                              "would run while loading; rebuild the model without it (fpga-ft never runs it)")


def _load_model_file(path):
    """Load a full model file or SavedModel directory (checked by the intake)."""
    p = Path(path)
    if not p.exists():
        raise FpgaFtError(f"model file not found: {p}")
    if p.is_dir() and not (p / "saved_model.pb").exists() and not (p / "saved_model.pbtxt").exists():
        raise FpgaFtError(f"cannot read model {p}: directory is not a SavedModel (no saved_model.pb)")
    if p.is_file() and p.stat().st_size == 0:
        raise FpgaFtError(f"cannot read model {p}: file is empty")

    refuse_code_layers(stored_model_config(p), p)
    tf = _quiet_tensorflow()
    try:
        model = tf.keras.models.load_model(str(p), custom_objects=custom_objects(), compile=False)
    except Exception as exc:  # h5py, keras and protobuf raise many unrelated types
        raise FpgaFtError(f"cannot read model {p}: {_first_line(exc)}") from exc
    if not isinstance(model, tf.keras.Model):
        raise FpgaFtError(f"cannot read model {p}: it holds a {type(model).__name__}, not a Keras model")
    return model


def _qactivation_compat():
    """A ``QActivation`` factory that also reads the Keras v3 ``.keras`` format.

    QKeras 0.9.0 does not deserialize the quantizer of a ``QActivation`` saved as
    ``.keras``: the layer receives the quantizer's config dict and fails. This wrapper
    turns that dict back into a quantizer and returns a plain ``QActivation``.
    """
    from qkeras import QActivation
    from qkeras.quantizers import get_quantizer

    class _QActivationCompat(QActivation):
        @classmethod
        def from_config(cls, config):
            config = dict(config)
            if isinstance(config.get("activation"), dict):
                act = dict(config["activation"])
                act.pop("module", None)
                act.pop("registered_name", None)
                config["activation"] = get_quantizer(act)
            return QActivation(**config)

    return _QActivationCompat


def load_data(path) -> tuple[np.ndarray, np.ndarray]:
    """Load an ``.npz`` data set with arrays ``x`` (inputs) and ``y`` (labels).

    Args:
        path: ``.npz`` file written by :func:`numpy.savez` / ``savez_compressed``.

    Returns:
        ``(x, y)``: ``x`` as float32 with shape (N, ...) in the model's input units (Keras
        feeds the model float32 too); ``y`` as int64 class labels of shape (N,). ``y`` may be
        stored as integer labels (N,) or one-hot (N, C); one-hot rows are turned into labels.

    Raises:
        FpgaFtError: missing or unreadable file, missing ``x`` or ``y``, no samples, ``x`` not
            numeric or not finite, ``x`` and ``y`` of different lengths, labels that are not
            non-negative integers, or a 2-D ``y`` that is not one-hot.
    """
    p = Path(path)
    if not p.exists():
        raise FpgaFtError(f"data file not found: {p}")
    if not p.is_file():
        raise FpgaFtError(f"cannot read data {p}: not a file")
    with open(p, "rb") as fh:
        magic = fh.read(6)
    if magic == b"\x93NUMPY":
        raise FpgaFtError(f"cannot read data {p}: a single .npy array, expected an .npz with arrays x and y")
    if not magic.startswith(b"PK"):
        raise FpgaFtError(f"cannot read data {p}: not an .npz (zip) file")
    try:
        with np.load(p, allow_pickle=False) as npz:
            missing = [k for k in ("x", "y") if k not in npz.files]
            if missing:
                raise FpgaFtError(
                    f"data file {p} lacks array(s) {', '.join(missing)} (has: {', '.join(npz.files) or 'none'})"
                )
            x = npz["x"]
            y = npz["y"]
    except FpgaFtError:
        raise
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise FpgaFtError(f"cannot read data {p}: {_first_line(exc)}") from exc

    if x.ndim < 1 or len(x) == 0:
        raise FpgaFtError(f"data file {p}: x has no samples (shape {x.shape})")
    if not (np.issubdtype(x.dtype, np.number) or x.dtype == np.bool_):
        raise FpgaFtError(f"data file {p}: x has non-numeric dtype {x.dtype}")
    if np.iscomplexobj(x):
        raise FpgaFtError(f"data file {p}: x is complex ({x.dtype})")
    x = x.astype(np.float32, copy=False)
    if not np.all(np.isfinite(x)):
        bad = int(np.count_nonzero(~np.isfinite(x)))
        raise FpgaFtError(f"data file {p}: x has {bad} non-finite value(s) (NaN or inf)")

    y = _labels(y, p)
    if len(y) != len(x):
        raise FpgaFtError(f"data file {p}: x has {len(x)} samples but y has {len(y)}")
    return x, y


def _labels(y: np.ndarray, p: Path) -> np.ndarray:
    """Class labels (N,) int64 from labels (N,) or (N, 1) or one-hot (N, C)."""
    if not (np.issubdtype(y.dtype, np.number) or y.dtype == np.bool_) or np.iscomplexobj(y):
        raise FpgaFtError(f"data file {p}: y has non-numeric dtype {y.dtype}")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim == 1:
        yf = y.astype(np.float64)
        if not np.all(np.isfinite(yf)) or np.any(yf != np.round(yf)) or np.any(yf < 0):
            raise FpgaFtError(f"data file {p}: y labels must be non-negative integers")
        return y.astype(np.int64)
    if y.ndim == 2:
        yf = y.astype(np.float64)
        one_hot = np.all((yf == 0) | (yf == 1), axis=1) & (yf.sum(axis=1) == 1)
        if not np.all(one_hot):
            row = int(np.argmin(one_hot))
            raise FpgaFtError(f"data file {p}: y has shape {y.shape} but row {row} is not one-hot")
        return np.argmax(yf, axis=1).astype(np.int64)
    raise FpgaFtError(f"data file {p}: y must be labels (N,) or one-hot (N, C), got shape {y.shape}")


def check_labels(path, y: np.ndarray, n_outputs: int) -> None:
    """Raise :class:`FpgaFtError` unless the labels of data file ``path`` fit a model with
    ``n_outputs`` outputs: integer labels in 0..C-1, one-hot rows of width C (C =
    :func:`n_classes`)."""
    classes = n_classes(n_outputs)
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as npz:
            shape = npz["y"].shape
    except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError):
        shape = np.shape(y)
    if len(shape) == 2 and shape[1] > 1 and shape[1] != classes:
        raise FpgaFtError(f"data file {p}: y is one-hot with {shape[1]} columns but the model has {classes} "
                          f"classes ({n_outputs} output{'s' if n_outputs != 1 else ''})")
    if len(y) and int(np.max(y)) >= classes:
        bad = int(np.count_nonzero(np.asarray(y) >= classes))
        raise FpgaFtError(f"data file {p}: {bad} label(s) outside 0..{classes - 1} (largest {int(np.max(y))}) "
                          f"for a model with {n_outputs} output{'s' if n_outputs != 1 else ''}")


def model_n_outputs(model) -> int:
    """Number of output values of a single-output Keras model (per sample)."""
    shape = model.output_shape
    if isinstance(shape, list):
        shape = shape[0]
    return int(np.prod([d for d in shape[1:] if d is not None]))


#: activations (by name, any variant: ``hard_sigmoid``, ``quantized_sigmoid``, ...) whose
#: outputs are probabilities
PROBABILITY_ACTIVATIONS = ("softmax", "sigmoid")


def output_layer(model):
    """The layer that computes a single-output Keras model's output."""
    outputs = list(getattr(model, "outputs", None) or [])
    history = getattr(outputs[0], "_keras_history", None) if len(outputs) == 1 else None
    return history.layer if history is not None else model.layers[-1]


def layer_activation(layer) -> str | None:
    """The activation a layer applies, by name in lower case (None when it has none)."""
    if type(layer).__name__ == "Softmax":
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    name = getattr(act, "__name__", None) or str(act)
    return str(name).lower()


def outputs_are_logits(model) -> bool:
    """Whether a Keras model outputs logits (scores) rather than probabilities: False when its
    output layer applies a softmax or sigmoid (a ``Softmax`` layer, an ``Activation`` /
    ``QActivation`` layer, or a layer's own ``activation``), True otherwise, e.g. for the
    intake's copy of a model without its final softmax/sigmoid, which is what the csim computes
    (:mod:`fpga_ft.generate.intake`)."""
    act = layer_activation(output_layer(model))
    return not (act is not None and any(name in act for name in PROBABILITY_ACTIVATIONS))


def output_head(model) -> OutputHead:
    """The :class:`~fpga_ft.core.classify.OutputHead` of a single-output Keras classifier:
    its output count and :func:`outputs_are_logits` (how classes follow from its outputs)."""
    return OutputHead(model_n_outputs(model), outputs_are_logits(model))


def sample_losses(tf, head: OutputHead, y, outputs):
    """Cross-entropy per sample (N,) in nats of class labels ``y`` (N,) under ``outputs``
    (N, C): sparse categorical for C > 1, binary (labels 0/1) for one output; from logits
    or probabilities as ``head`` says."""
    if head.n_outputs == 1:
        labels = tf.cast(tf.reshape(y, (-1, 1)), outputs.dtype)
        return tf.keras.losses.binary_crossentropy(labels, outputs, from_logits=head.logits)
    return tf.keras.losses.sparse_categorical_crossentropy(y, outputs, from_logits=head.logits)


def keras_loss(tf, head: OutputHead):
    """The Keras loss object training compiles with: the batch mean of :func:`sample_losses`."""
    if head.n_outputs == 1:
        return tf.keras.losses.BinaryCrossentropy(from_logits=head.logits)
    return tf.keras.losses.SparseCategoricalCrossentropy(from_logits=head.logits)


def model_input_shape(model) -> tuple:
    """Per-sample input shape of a single-input Keras model (``None`` for free dimensions)."""
    shape = model.input_shape
    if isinstance(shape, list):
        if len(shape) != 1:
            raise FpgaFtError(f"model {model.name} has {len(shape)} inputs; only single-input models are supported")
        shape = shape[0]
    return tuple(shape[1:])


def check_input_shape(model, x) -> None:
    """Raise :class:`FpgaFtError` unless ``x`` (N, ...) fits the model's per-sample input shape.

    Dimensions the model leaves free (``None``) match any size.
    """
    want = model_input_shape(model)
    got = tuple(np.shape(x)[1:])
    ok = len(got) == len(want) and all(w is None or w == g for w, g in zip(want, got))
    if not ok:
        fmt = lambda s: "(" + ", ".join("?" if d is None else str(d) for d in s) + ("," if len(s) == 1 else "") + ")"  # noqa: E731
        raise FpgaFtError(
            f"input shape mismatch: data samples have shape {fmt(got)} but model {model.name} expects {fmt(want)}"
        )
