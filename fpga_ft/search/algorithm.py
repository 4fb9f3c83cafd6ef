"""Algorithm-level knobs: per-layer precision, activation clipping and weight pruning.

Given a QKeras model and training data, :func:`apply_knobs` rebuilds the model with, for each
protectable (Dense / Conv1D / Conv2D) layer,

* ``weight_bits`` / ``bias_bits``: the kernel and bias quantizers become
  ``quantized_bits(bits, integer, alpha=1)`` (the original ``integer`` and options are kept;
  a plain Keras layer becomes its QKeras counterpart with ``quantized_bits(bits, 0, alpha=1)``);
* ``activation_bits`` / ``clip_integer``: the ``quantized_relu`` that follows the layer (a
  ``QActivation`` fed by it, or the layer's own fused activation) becomes
  ``quantized_relu(bits, integer)``: outputs are clipped to [0, 2^integer) with
  ``bits - integer`` fractional bits;
* ``sparsity``: the fraction of the layer's kernel weights forced to zero (lowest magnitude),
  with tensorflow-model-optimization's ``prune_low_magnitude`` and a ``ConstantSparsity``
  schedule during fine-tuning; the wrappers are stripped afterwards.

The original float weights are copied into the rebuilt model, which is then fine-tuned
(quantization-aware: QKeras quantizers in the forward pass, straight-through gradients) for a
few epochs with fixed seeds and TensorFlow's deterministic ops. The result is a plain QKeras
model (no pruning wrappers) that starts with the same input ``QActivation``, so hls4ml's
``bit_exact`` conversion applies unchanged. Every layer keeps its name, so protection plans
and vulnerability rankings of the original model still apply.

Retrained models are cached on disk under ``fpga_ft.core.cache.cache_root()/retrained/<key>.h5``
(plus ``<key>.json`` with the knobs and training figures), where the key hashes the original
model's architecture and weights, the knobs, the training data, the epochs and the other
training settings: the same request never trains twice (also across processes: a file lock
serialises concurrent requests).
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import math
import os
import time
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from fpga_ft.core.cache import cache_root, data_hash, file_lock, model_fingerprint
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.generate.modelio import _quiet_tensorflow, custom_objects, keras_loss, load_model, output_head

__all__ = [
    "LayerKnobs", "AlgorithmKnobs", "KnobInfo", "describe_knobs", "apply_knobs", "retrain_key",
    "layers_with_weights", "DEFAULT_EPOCHS", "DEFAULT_LEARNING_RATE", "DEFAULT_BATCH_SIZE",
]

#: Fine-tuning epochs after the knobs are applied.
DEFAULT_EPOCHS = 3
#: Adam learning rate of the fine-tuning (small: the weights start trained).
DEFAULT_LEARNING_RATE = 1e-3
DEFAULT_BATCH_SIZE = 32
#: Version of the retraining recipe (part of the cache key: bump when the recipe changes).
RECIPE_VERSION = 1

_Q_CLASS = {"Dense": "QDense", "Conv1D": "QConv1D", "Conv2D": "QConv2D"}
_PROTECTABLE = {"Dense": "Dense", "QDense": "Dense", "Conv1D": "Conv1D", "QConv1D": "Conv1D",
                "Conv2D": "Conv2D", "QConv2D": "Conv2D"}
_LINEAR = (None, "linear", "None")


# ----------------------------------------------------------------------------- knobs
@dataclass(frozen=True)
class LayerKnobs:
    """Algorithm knobs of one Dense/Conv layer (``None`` / 0: keep the original).

    Units: bit widths in bits; ``clip_integer`` is the integer-bit count of the following
    ``quantized_relu`` (clip bound 2^clip_integer); ``sparsity`` a fraction in [0, 1)."""

    weight_bits: int | None = None
    bias_bits: int | None = None
    activation_bits: int | None = None
    clip_integer: int | None = None
    sparsity: float = 0.0

    def is_identity(self) -> bool:
        return (self.weight_bits is None and self.bias_bits is None and self.activation_bits is None
                and self.clip_integer is None and not self.sparsity)

    def to_dict(self) -> dict:
        return {k: v for k, v in (("weight_bits", self.weight_bits), ("bias_bits", self.bias_bits),
                                  ("activation_bits", self.activation_bits), ("clip_integer", self.clip_integer),
                                  ("sparsity", float(self.sparsity) if self.sparsity else None))
                if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "LayerKnobs":
        data = dict(data or {})
        unknown = set(data) - {"weight_bits", "bias_bits", "activation_bits", "clip_integer", "sparsity"}
        if unknown:
            raise FpgaFtError(f"unknown algorithm knob(s) {sorted(unknown)}")

        def as_int(key):
            value = data.get(key)
            if value is None:
                return None
            if isinstance(value, bool) or int(value) != value:
                raise FpgaFtError(f"algorithm knob {key} must be an integer, got {value!r}")
            return int(value)

        return cls(weight_bits=as_int("weight_bits"), bias_bits=as_int("bias_bits"),
                   activation_bits=as_int("activation_bits"), clip_integer=as_int("clip_integer"),
                   sparsity=float(data.get("sparsity") or 0.0))


@dataclass(frozen=True)
class AlgorithmKnobs:
    """Per-layer :class:`LayerKnobs`, keyed by Keras layer name (layers not named: unchanged)."""

    layers: Mapping[str, LayerKnobs] = field(default_factory=dict)

    def for_layer(self, name: str) -> LayerKnobs:
        return self.layers.get(name, LayerKnobs())

    def is_identity(self) -> bool:
        return all(k.is_identity() for k in self.layers.values())

    def to_dict(self) -> dict:
        return {"layers": {name: k.to_dict() for name, k in sorted(self.layers.items()) if not k.is_identity()}}

    def key(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping | None) -> "AlgorithmKnobs":
        if not data:
            return cls()
        if not isinstance(data, Mapping) or set(data) - {"layers"}:
            raise FpgaFtError("malformed algorithm knobs: expected a mapping with a 'layers' key")
        return cls({str(n): LayerKnobs.from_dict(v) for n, v in (data.get("layers") or {}).items()})


@dataclass(frozen=True)
class KnobInfo:
    """What the original model has at one protectable layer (the knobs' starting point)."""

    name: str
    kind: str                      # Dense / Conv1D / Conv2D
    weight_bits: int | None        # None: float (no quantizer)
    weight_integer: int
    bias_bits: int | None
    activation: str | None         # name of the quantized_relu layer after it ('' = fused), None: none
    activation_bits: int | None
    activation_integer: int | None

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _import_keras():
    tf = _quiet_tensorflow()
    return tf


def _quantizer_config(value) -> tuple[str, dict] | None:
    """(class name, config) of a serialized QKeras quantizer (dict or string), else None."""
    if value is None or value in _LINEAR:
        return None
    from qkeras.quantizers import get_quantizer

    try:
        if isinstance(value, Mapping):
            value = {"class_name": value["class_name"], "config": dict(value.get("config") or {})}
        q = get_quantizer(value)
    except Exception:  # not a QKeras quantizer (e.g. 'relu', 'softmax')
        return None
    if q is None or not hasattr(q, "get_config"):
        return None
    return type(q).__name__, dict(q.get_config())


def _layer_configs(config: dict) -> list[dict]:
    return config["layers"]


def _consumers(model) -> dict[str, list]:
    """Keras layer name -> layers that read its output (live graph; functional or Sequential)."""
    out: dict[str, list] = {layer.name: [] for layer in model.layers}
    for layer in model.layers:
        for node in getattr(layer, "outbound_nodes", None) or getattr(layer, "_outbound_nodes", None) or []:
            target = getattr(node, "outbound_layer", None) or getattr(node, "layer", None)
            if target is not None and target.name in out:
                out[layer.name].append(target)
    return out


def describe_knobs(model) -> dict[str, KnobInfo]:
    """The protectable layers of ``model`` and their current precision / activation."""
    consumers = _consumers(model)
    infos: dict[str, KnobInfo] = {}
    for layer in model.layers:
        kind = _PROTECTABLE.get(type(layer).__name__)
        if kind is None:
            # subclasses (e.g. QKeras compat wrappers) of the protectable kinds
            for base in type(layer).__mro__[1:]:
                if base.__name__ in _PROTECTABLE:
                    kind = _PROTECTABLE[base.__name__]
                    break
        if kind is None:
            continue
        cfg = layer.get_config()
        kq = _quantizer_config(cfg.get("kernel_quantizer"))
        bq = _quantizer_config(cfg.get("bias_quantizer"))
        weight_bits = int(kq[1]["bits"]) if kq and kq[0] == "quantized_bits" else None
        weight_integer = int(kq[1].get("integer", 0)) if kq and kq[0] == "quantized_bits" else 0
        bias_bits = int(bq[1]["bits"]) if bq and bq[0] == "quantized_bits" else None
        act_name = act_bits = act_int = None
        fused = _quantizer_config(cfg.get("activation"))
        if fused and fused[0] == "quantized_relu":
            act_name, act_bits, act_int = "", int(fused[1]["bits"]), int(fused[1]["integer"])
        elif cfg.get("activation") in _LINEAR:
            nxt = consumers.get(layer.name, [])
            if len(nxt) == 1 and type(nxt[0]).__name__ == "QActivation":
                q = _quantizer_config(nxt[0].get_config().get("activation"))
                if q and q[0] == "quantized_relu":
                    act_name, act_bits, act_int = nxt[0].name, int(q[1]["bits"]), int(q[1]["integer"])
        infos[layer.name] = KnobInfo(layer.name, kind, weight_bits, weight_integer, bias_bits, act_name,
                                     act_bits, act_int)
    return infos


def validate_knobs(knobs: AlgorithmKnobs, infos: Mapping[str, KnobInfo]) -> None:
    """One-line error on knobs that name unknown layers or are out of range."""
    for name, k in knobs.layers.items():
        info = infos.get(name)
        if info is None:
            raise FpgaFtError(f"algorithm knobs name unknown layer '{name}' (layers: {', '.join(infos)})")
        for key in ("weight_bits", "bias_bits"):
            value = getattr(k, key)
            if value is not None and not 2 <= value <= 32:
                raise FpgaFtError(f"layer '{name}': {key} must be in 2..32, got {value}")
        if (k.activation_bits is not None or k.clip_integer is not None) and info.activation is None:
            raise FpgaFtError(f"layer '{name}' is not followed by a quantized_relu: no activation knobs")
        bits = k.activation_bits if k.activation_bits is not None else info.activation_bits
        integer = k.clip_integer if k.clip_integer is not None else info.activation_integer
        if k.activation_bits is not None and not 2 <= k.activation_bits <= 32:
            raise FpgaFtError(f"layer '{name}': activation_bits must be in 2..32, got {k.activation_bits}")
        # QKeras 0.9 quantized_relu computes 2**integer in int32: integer must be >= 0
        if integer is not None and bits is not None and not 0 <= integer < bits:
            raise FpgaFtError(f"layer '{name}': clip_integer must be in 0..{bits - 1} (clip bound 2^integer), "
                              f"got {integer}")
        if not 0.0 <= k.sparsity < 1.0:
            raise FpgaFtError(f"layer '{name}': sparsity must be in [0, 1), got {k.sparsity}")


# ----------------------------------------------------------------------------- cache
def retrain_key(model, knobs: AlgorithmKnobs, x_train, y_train, *, epochs: int, seed: int,
                learning_rate: float, batch_size: int) -> str:
    source = json.dumps({"model": model_fingerprint(model), "knobs": knobs.to_dict(),
                         "data": data_hash(x_train, y_train), "epochs": int(epochs), "seed": int(seed),
                         "lr": float(learning_rate), "batch": int(batch_size), "recipe": RECIPE_VERSION},
                        sort_keys=True)
    return hashlib.sha256(source.encode()).hexdigest()[:20]


def retrained_dir() -> Path:
    path = cache_root() / "retrained"
    path.mkdir(parents=True, exist_ok=True)
    return path


# ----------------------------------------------------------------------------- rebuilding
def _set_quantizer_bits(value, bits: int, default_integer: int = 0) -> dict:
    parsed = _quantizer_config(value)
    if parsed and parsed[0] == "quantized_bits":
        cfg = dict(parsed[1])
        cfg["bits"] = int(bits)
        cfg["integer"] = min(int(cfg.get("integer", 0)), int(bits) - 1)
    else:
        cfg = {"bits": int(bits), "integer": int(default_integer), "symmetric": 0, "alpha": 1,
               "keep_negative": True}
    return {"class_name": "quantized_bits", "config": cfg}


def _relu_quantizer(value, bits: int | None, integer: int | None) -> dict:
    parsed = _quantizer_config(value)
    cfg = dict(parsed[1]) if parsed else {}
    if bits is not None:
        cfg["bits"] = int(bits)
    if integer is not None:
        cfg["integer"] = int(integer)
    return {"class_name": "quantized_relu", "config": cfg}


def rebuild(model, knobs: AlgorithmKnobs):
    """A new (untrained) model with the knobs' quantizers and the original weights (float)."""
    tf = _import_keras()
    infos = describe_knobs(model)
    validate_knobs(knobs, infos)
    config = copy.deepcopy(model.get_config())
    by_name = {c["config"]["name"]: c for c in _layer_configs(config)}
    for name, k in knobs.layers.items():
        info = infos[name]
        entry = by_name[name]
        cfg = entry["config"]
        if k.weight_bits is not None or k.bias_bits is not None:
            if entry["class_name"] in _Q_CLASS:  # plain Keras layer: becomes its QKeras form
                entry["class_name"] = _Q_CLASS[entry["class_name"]]
            if k.weight_bits is not None:
                cfg["kernel_quantizer"] = _set_quantizer_bits(cfg.get("kernel_quantizer"), k.weight_bits,
                                                              info.weight_integer)
            bias_bits = k.bias_bits if k.bias_bits is not None else k.weight_bits
            if bias_bits is not None and cfg.get("use_bias", True):
                cfg["bias_quantizer"] = _set_quantizer_bits(cfg.get("bias_quantizer"), bias_bits, 0)
        if k.activation_bits is not None or k.clip_integer is not None:
            if info.activation == "":
                cfg["activation"] = _relu_quantizer(cfg.get("activation"), k.activation_bits, k.clip_integer)
            else:
                act_cfg = by_name[info.activation]["config"]
                act_cfg["activation"] = _relu_quantizer(act_cfg.get("activation"), k.activation_bits,
                                                        k.clip_integer)
    objects = custom_objects()
    with tf.keras.utils.custom_object_scope(objects):
        new = model.__class__.from_config(config, custom_objects=objects)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            new.get_layer(layer.name).set_weights(weights)
    return new


@contextlib.contextmanager
def _deterministic(tf, seed: int):
    tf.keras.utils.set_random_seed(int(seed))
    enable = getattr(tf.config.experimental, "enable_op_determinism", None)
    if enable is not None:
        enable()
    try:
        yield
    finally:
        # TF 2.14 has no public switch back; restore the flag it reads (private, best effort)
        try:
            from tensorflow.python.framework import config as tf_config

            tf_config.disable_op_determinism()
        except Exception:  # pragma: no cover - other TF versions
            pass


def _fine_tune(tf, model, knobs: AlgorithmKnobs, x, y, *, epochs: int, seed: int, learning_rate: float,
               batch_size: int):
    """Quantization-aware fine-tuning with pruning wrappers where asked; returns the history."""
    prune_layers = {name: k.sparsity for name, k in knobs.layers.items() if k.sparsity > 0}
    trained = model
    callbacks = []
    if prune_layers:
        import tensorflow_model_optimization as tfmot

        sparsity = tfmot.sparsity.keras

        def wrap(layer):
            if layer.name in prune_layers:
                return sparsity.prune_low_magnitude(
                    layer, pruning_schedule=sparsity.ConstantSparsity(prune_layers[layer.name], begin_step=0,
                                                                      frequency=1))
            return layer

        trained = tf.keras.models.clone_model(model, clone_function=wrap)
        callbacks.append(sparsity.UpdatePruningStep())
    trained.compile(optimizer=tf.keras.optimizers.Adam(learning_rate),
                    loss=keras_loss(tf, output_head(model)),
                    metrics=["accuracy"])
    history = {}
    if epochs > 0:
        history = trained.fit(x, y, batch_size=batch_size, epochs=int(epochs), shuffle=True, verbose=0,
                              callbacks=callbacks).history
    if prune_layers:
        import tensorflow_model_optimization as tfmot

        stripped = tfmot.sparsity.keras.strip_pruning(trained)
        for layer in stripped.layers:
            weights = layer.get_weights()
            if weights:
                model.get_layer(layer.name).set_weights(weights)
        # the mask is applied in every forward pass; make sure the final kernels carry it
        for name, s in prune_layers.items():
            layer = model.get_layer(name)
            weights = layer.get_weights()
            kernel = weights[0]
            k = int(math.floor(s * kernel.size))
            if k > 0 and float(np.mean(kernel == 0)) < s - 1e-9:
                threshold = np.sort(np.abs(kernel).reshape(-1))[k - 1]
                kernel = np.where(np.abs(kernel) <= threshold, 0.0, kernel).astype(kernel.dtype)
                layer.set_weights([kernel, *weights[1:]])
    return {k: [float(v) for v in vals] for k, vals in history.items()}


def _clean_copy(tf, model):
    """A fresh model from ``model``'s config with its weights (no training state)."""
    objects = custom_objects()
    with tf.keras.utils.custom_object_scope(objects):
        fresh = model.__class__.from_config(model.get_config(), custom_objects=objects)
    for layer in model.layers:
        weights = layer.get_weights()
        if weights:
            fresh.get_layer(layer.name).set_weights(weights)
    return fresh


@dataclass
class RetrainResult:
    """A retrained model and what made it. ``path`` is the cached ``.h5``."""

    model: object
    path: Path | None
    key: str
    knobs: AlgorithmKnobs
    info: dict

    @property
    def cached(self) -> bool:
        return bool(self.info.get("cached"))


def apply_knobs(model, knobs: AlgorithmKnobs, x_train, y_train, *, epochs: int = DEFAULT_EPOCHS, seed: int = 0,
                learning_rate: float = DEFAULT_LEARNING_RATE, batch_size: int = DEFAULT_BATCH_SIZE,
                cache: bool = True) -> RetrainResult:
    """Rebuild ``model`` with ``knobs``, copy its weights and fine-tune it on the training data.

    Args:
        model: a QKeras model (object or path).
        knobs: per-layer :class:`LayerKnobs`; identity knobs return ``model`` unchanged.
        x_train, y_train: training inputs and integer labels.
        epochs: fine-tuning epochs (0: only requantize and prune).
        seed: seed of every random choice (Python, NumPy, TensorFlow, shuffling).
        cache: read/write ``cache_root()/retrained``.

    Returns:
        :class:`RetrainResult` with the plain QKeras model, its cached file and ``info``
        (``train_accuracy`` after fine-tuning, ``sparsity`` per layer as achieved, ``seconds``).
    """
    if isinstance(model, (str, os.PathLike)):
        model = load_model(model)
    if not isinstance(knobs, AlgorithmKnobs):
        knobs = AlgorithmKnobs.from_dict(knobs)
    validate_knobs(knobs, describe_knobs(model))
    if knobs.is_identity():
        return RetrainResult(model, None, "identity", knobs, {"cached": True, "identity": True})
    if x_train is None or y_train is None:
        raise FpgaFtError("algorithm knobs need training data (--train T.npz)")
    if int(epochs) < 0:
        raise FpgaFtError(f"epochs must be >= 0, got {epochs}")
    x_train = np.asarray(x_train, dtype=np.float32)
    y_train = np.asarray(y_train).reshape(-1).astype(np.int64)
    key = retrain_key(model, knobs, x_train, y_train, epochs=epochs, seed=seed, learning_rate=learning_rate,
                      batch_size=batch_size)
    directory = retrained_dir()
    path = directory / f"{key}.h5"
    meta_path = directory / f"{key}.json"

    with file_lock(directory / "locks" / f"{key}.lock") if cache else contextlib.nullcontext():
        if cache and path.is_file() and meta_path.is_file():
            info = json.loads(meta_path.read_text())
            info["cached"] = True
            return RetrainResult(load_model(path), path, key, knobs, info)
        tf = _import_keras()
        start = time.perf_counter()
        with _deterministic(tf, seed):
            rebuilt = rebuild(model, knobs)
            history = _fine_tune(tf, rebuilt, knobs, x_train, y_train, epochs=int(epochs), seed=seed,
                                 learning_rate=learning_rate, batch_size=batch_size)
            final = _clean_copy(tf, rebuilt)
        logits = final.predict(x_train, batch_size=256, verbose=0)
        train_acc = float(np.mean(output_head(final).classify(logits) == y_train))
        achieved = {}
        for name in knobs.layers:
            kernel = final.get_layer(name).get_weights()[0]
            achieved[name] = float(np.mean(kernel == 0))
        info = {"key": key, "knobs": knobs.to_dict(), "epochs": int(epochs), "seed": int(seed),
                "learning_rate": float(learning_rate), "batch_size": int(batch_size),
                "train_accuracy": train_acc, "kernel_zero_fraction": achieved,
                "history": history, "seconds": time.perf_counter() - start, "recipe": RECIPE_VERSION}
        if cache:
            tmp = path.with_suffix(f".tmp{os.getpid()}.h5")
            with warnings.catch_warnings():  # Keras' "HDF5 is a legacy format" notice
                warnings.simplefilter("ignore")
                final.save(tmp, include_optimizer=False)
            os.replace(tmp, path)
            meta_tmp = meta_path.with_suffix(f".tmp{os.getpid()}")
            meta_tmp.write_text(json.dumps(info, indent=2) + "\n")
            os.replace(meta_tmp, meta_path)
        info["cached"] = False
        return RetrainResult(final, path if cache else None, key, knobs, info)


# ----------------------------------------------------------------------------- weights for estimates
def layers_with_weights(layers, model) -> list:
    """``layers`` (:class:`~fpga_ft.core.layers.LayerInfo`) with the exact quantized weights and
    biases of ``model`` attached (what hls4ml writes as constants), so that the resource
    estimate sees zero weights and each constant's CSD digits. Layers whose Keras layer has
    no kernel quantizer get the float weights (hls4ml then quantizes them to
    ``weight_type``; the estimate rounds them the same way)."""
    names = {layer.name: layer for layer in model.layers}
    out = []
    for info in layers:
        layer = names.get(info.name)
        if layer is None or info.weights is not None:
            out.append(info)
            continue
        weights = layer.get_weights()
        kernel = weights[0]
        bias = weights[1] if len(weights) > 1 else np.zeros(info.n_out, dtype=np.float32)
        kq = getattr(layer, "kernel_quantizer_internal", None)
        bq = getattr(layer, "bias_quantizer_internal", None)
        if kq is not None:
            kernel = np.asarray(kq(kernel.astype(np.float32)))
        if bq is not None:
            bias = np.asarray(bq(bias.astype(np.float32)))
        if kernel.size != info.n_in * info.n_out:
            out.append(info)
            continue
        out.append(replace(info, weights=np.asarray(kernel, dtype=float).reshape(info.n_in, info.n_out),
                           biases=np.asarray(bias, dtype=float).reshape(info.n_out)))
    return out
