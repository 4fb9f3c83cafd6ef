"""Model intake: what ``MODEL`` names, the user's hls4ml config, and the model fpga-ft converts.

``MODEL`` may be

* a full Keras 2 model: ``.h5`` (or ``.keras`` written by Keras 2, or a SavedModel directory);
* an architecture ``.json`` with its weights: ``--weights W.h5``, else the sibling
  ``<stem>_weights.h5`` (the layout of hls4ml's example models);
* an **hls4ml config YAML** (``.yml`` / ``.yaml``): ``KerasJson`` + ``KerasH5`` (weights), or
  ``KerasH5`` alone (a full model), or ``KerasModel`` (a full model file), paths relative to
  the YAML's directory; its ``HLSConfig`` (``Model`` and ``LayerName`` precisions,
  ``Strategy``, ``ReuseFactor``, ``LayerType``), ``IOType``, ``Part``, ``ClockPeriod`` and
  ``Backend`` are read into a :class:`UserHlsConfig` that the conversion honours.

:func:`open_model` resolves and loads it once and returns a :class:`PreparedModel`: the
Keras model fpga-ft converts and compares with (the user's model, or a copy of it with an
input quantizer inserted and/or its final softmax removed, see below), the config, and how
to turn raw data into the model's input words.

Input quantizer: hls4ml's bit-exact conversion needs ``QActivation(quantized_bits(...))``
right after ``Input``. When a model lacks it, the input type comes from ``--input-precision``,
else the config's input layer ``Precision: result``, else the config's model default
precision, else hls4ml's default ``ap_fixed<16,6>``; the data is quantized to that type
(as ``ap_fixed`` converts a double: its rounding and overflow modes, default AP_TRN /
AP_WRAP) and a copy of the model gets ``QActivation(quantized_bits(W, I-1, alpha=1))`` after
the input (the identity on such data), so the QKeras reference and hls4ml see the same words.

Non-exact head: hls4ml computes softmax (and sigmoid / tanh) with lookup tables that are
not bit-exact. When the model ends with one, the copy ends before it: the csim and QKeras
are compared on the tensor before the head and classes are taken by argmax, which a
softmax (a monotone function) does not change.
"""

from __future__ import annotations

import json
import sys
import zipfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.fixedpoint import FixedSpec, _qkeras_bits, parse_type, quantize_float32, quantized_bits_repr
from fpga_ft.core.safeyaml import load_yaml, read_bounded

__all__ = ["ModelSource", "UserHlsConfig", "PreparedModel", "resolve_source", "read_hls_config",
           "load_keras_model", "prepare_model", "open_model", "check_quantizers", "HLS_DEFAULT_PRECISION"]

#: hls4ml's model default precision (``convert_from_keras_model`` without a config)
HLS_DEFAULT_PRECISION = "ap_fixed<16,6>"
MAX_CONFIG_BYTES = 1_000_000
MAX_JSON_BYTES = 20_000_000
CONFIG_SUFFIXES = (".yml", ".yaml")
#: final activations hls4ml computes with lookup tables (not bit-exact); all monotone, so
#: argmax before them is argmax after them
TABLE_HEADS = ("softmax", "sigmoid", "tanh")
#: top-level keys of an hls4ml config that fpga-ft reads or may ignore (fpga-ft decides them)
_CONFIG_KEYS_USED = {"KerasJson", "KerasH5", "KerasModel", "HLSConfig", "IOType", "Part", "ClockPeriod", "Backend"}
_CONFIG_KEYS_IGNORED = {"OutputDir", "ProjectName", "InputData", "OutputPredictions", "Board", "ClockUncertainty",
                        "Stamp", "WriterConfig", "Version", "AcceleratorConfig", "Namespace", "WriteWeightsTxt",
                        "WriteTar", "TBFiles"}
_STRATEGIES = {"latency", "resource", "resource_unrolled", "distributed_arithmetic", "da", "stable", "legacy",
               "argmax"}
_BACKENDS = {"vivado": "vivado", "vitis": "vitis", "vivadoaccelerator": "vivadoaccelerator"}
INPUT_QUANTIZER_NAME = "fpgaft_input_quantizer"


# --------------------------------------------------------------------------- the config
@dataclass(frozen=True)
class UserHlsConfig:
    """What an hls4ml config YAML asks for (validated). ``None``: not given.

    ``model``, ``layer_name`` and ``layer_type`` are ``HLSConfig``'s ``Model``, ``LayerName``
    and ``LayerType`` (hls4ml spelling: ``Precision`` as a type string or a dict with
    ``weight``/``bias``/``result``/``accum``/..., ``ReuseFactor``, ``Strategy``, ...), with
    ``Trace`` keys dropped. ``backend`` is a key of :data:`fpga_ft.generate.convert.BACKENDS`.
    """

    path: str | None = None
    backend: str | None = None
    part: str | None = None
    clock_period_ns: float | None = None
    io_type: str | None = None
    model: dict = field(default_factory=dict)
    layer_name: dict = field(default_factory=dict)
    layer_type: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"path": self.path, "backend": self.backend, "part": self.part,
                "clock_period_ns": self.clock_period_ns, "io_type": self.io_type, "model": self.model,
                "layer_name": self.layer_name, "layer_type": self.layer_type}

    def key(self) -> dict:
        """What changes the converted design (for cache keys): everything but the path."""
        data = self.to_dict()
        data.pop("path")
        return data

    @property
    def is_empty(self) -> bool:
        return not any(v for k, v in self.key().items())

    def layer(self, name: str) -> dict:
        return dict(self.layer_name.get(name, {}))

    def result_precision(self, name: str) -> str | None:
        """The ``result`` precision the config gives layer ``name`` (None: none or 'auto')."""
        precision = self.layer_name.get(name, {}).get("Precision")
        if isinstance(precision, dict):
            precision = precision.get("result")
        if precision is None or str(precision).strip().lower() == "auto":
            return None
        return str(precision)

    def model_precision(self) -> str | None:
        precision = self.model.get("Precision")
        if isinstance(precision, dict):
            precision = precision.get("default")
        if precision is None or str(precision).strip().lower() == "auto":
            return None
        return str(precision)

    def without_layers(self, names) -> "UserHlsConfig":
        names = set(names)
        return replace(self, layer_name={k: v for k, v in self.layer_name.items() if k not in names})

    def with_layer(self, name: str, entry: dict) -> "UserHlsConfig":
        layers = dict(self.layer_name)
        layers[name] = _merge(layers.get(name, {}), entry)
        return replace(self, layer_name=layers)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml_config(path: Path) -> dict:
    """Size-bounded, alias-free ``safe_load`` of an hls4ml config file (a mapping)."""
    data = load_yaml(path, "config", max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(data, dict):
        raise FpgaFtError(f"config {path} must be a YAML mapping (hls4ml config), got {type(data).__name__}")
    return data


def _check_precision(value, where: str):
    if isinstance(value, dict):
        for key, item in value.items():
            _check_precision(item, f"{where}.{key}")
        return
    if not isinstance(value, str):
        raise FpgaFtError(f"{where}: precision must be a type string such as 'ap_fixed<16,6>', got {value!r}")
    if value.strip().lower() == "auto":
        return
    parse_type(value, where)


def _check_layer_entry(entry, where: str) -> dict:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise FpgaFtError(f"{where} must be a mapping, got {entry!r}")
    out = {}
    for key, value in entry.items():
        if key in ("Trace", "TraceOutput"):
            continue  # fpga-ft's projects carry no trace outputs
        if key == "Precision":
            if value is None:
                continue
            _check_precision(value, f"{where}.Precision")
        elif key == "ReuseFactor":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FpgaFtError(f"{where}.ReuseFactor must be an integer >= 1, got {value!r}")
        elif key == "Strategy":
            if not isinstance(value, str) or value.strip().lower() not in _STRATEGIES:
                raise FpgaFtError(f"{where}.Strategy {value!r} unknown (hls4ml strategies: Latency, Resource, "
                                  "Resource_Unrolled, distributed_arithmetic)")
        out[key] = value
    return out


def parse_hls_config(data: dict, path: str | None = None) -> UserHlsConfig:
    """Validate the fields of an hls4ml config mapping into a :class:`UserHlsConfig`."""
    where = path or "config"
    unknown = [k for k in data if k not in _CONFIG_KEYS_USED | _CONFIG_KEYS_IGNORED]
    for other in ("OnnxModel", "PytorchModel"):
        if other in data:
            raise FpgaFtError(f"config {where} describes a {other[:-5]} model ({other}); fpga-ft converts "
                              "QKeras models only (KerasJson + KerasH5, KerasH5 or KerasModel)")
    if unknown:
        raise FpgaFtError(f"config {where}: unknown key '{unknown[0]}' (hls4ml keys fpga-ft reads: "
                          f"{', '.join(sorted(_CONFIG_KEYS_USED))})")
    backend = data.get("Backend")
    if backend is not None:
        if not isinstance(backend, str) or backend.strip().lower() not in _BACKENDS:
            raise FpgaFtError(f"config {where}: Backend {backend!r} is not supported by fpga-ft "
                              "(Vivado, Vitis, VivadoAccelerator)")
        backend = _BACKENDS[backend.strip().lower()]
    io_type = data.get("IOType")
    if io_type is not None and io_type not in ("io_parallel", "io_stream"):
        raise FpgaFtError(f"config {where}: IOType {io_type!r} unknown (io_parallel, io_stream)")
    part = data.get("Part")
    if part is not None and (not isinstance(part, str) or not part.strip()):
        raise FpgaFtError(f"config {where}: Part must be a part name string, got {part!r}")
    clock = data.get("ClockPeriod")
    if clock is not None:
        if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not 0 < float(clock) < 1e6:
            raise FpgaFtError(f"config {where}: ClockPeriod must be a positive number of ns, got {clock!r}")
        clock = float(clock)
    hls = data.get("HLSConfig")
    if hls is None:
        hls = {}
    if not isinstance(hls, dict):
        raise FpgaFtError(f"config {where}: HLSConfig must be a mapping")
    extra = [k for k in hls if k not in ("Model", "LayerName", "LayerType")]
    if extra:
        raise FpgaFtError(f"config {where}: HLSConfig.{extra[0]} is not supported by fpga-ft "
                          "(it reads Model, LayerName, LayerType)")
    model = _check_layer_entry(hls.get("Model"), f"{where}: HLSConfig.Model")
    groups = {}
    for group in ("LayerName", "LayerType"):
        entries = hls.get(group) or {}
        if not isinstance(entries, dict):
            raise FpgaFtError(f"config {where}: HLSConfig.{group} must be a mapping of names to settings")
        groups[group] = {str(name): _check_layer_entry(entry, f"{where}: HLSConfig.{group}.{name}")
                         for name, entry in entries.items()}
    return UserHlsConfig(path=path, backend=backend, part=part, clock_period_ns=clock, io_type=io_type,
                         model=model, layer_name=groups["LayerName"], layer_type=groups["LayerType"])


def read_hls_config(path) -> UserHlsConfig:
    """Read and validate an hls4ml config YAML (the HLS settings only; see :func:`resolve_source`)."""
    path = Path(path)
    return parse_hls_config(read_yaml_config(path), str(path))


# --------------------------------------------------------------------------- the source
@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from. ``kind``: ``model`` (a full model file or SavedModel),
    ``json`` (architecture + weights) or ``config`` (an hls4ml config YAML naming one of
    those). ``model_file`` is set for full models, ``architecture`` + ``weights`` otherwise."""

    path: Path
    kind: str
    model_file: Path | None = None
    architecture: Path | None = None
    weights: Path | None = None
    config: UserHlsConfig | None = None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "kind": self.kind,
                "model_file": None if self.model_file is None else str(self.model_file),
                "architecture": None if self.architecture is None else str(self.architecture),
                "weights": None if self.weights is None else str(self.weights),
                "config": None if self.config is None else self.config.path}


def _keras3_version(path: Path) -> str | None:
    """The Keras version that wrote a ``.keras`` zip if it is 3.x or later, else None."""
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json")[:100_000])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    version = str(meta.get("keras_version", ""))
    try:
        return version if int(version.split(".")[0]) >= 3 else None
    except ValueError:
        return None


def _check_h5_full_model(path: Path) -> None:
    """One-line error when an .h5 holds only weights (``save_weights``), not a model."""
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            has_config = "model_config" in handle.attrs
            weights_only = not has_config and ("layer_names" in handle.attrs or "model_weights" not in handle)
    except Exception:  # noqa: BLE001 - not HDF5: let the Keras loader say what it is
        return
    if not has_config and weights_only:
        raise FpgaFtError(f"{path} holds only weights (no model architecture): give the architecture "
                          f"JSON as MODEL with --weights {path}, or an hls4ml config YAML naming both")


def _model_file(path: Path) -> None:
    """Checks on a full-model path before Keras reads it."""
    if not path.exists():
        raise FpgaFtError(f"model file not found: {path}")
    if path.is_dir():
        return
    if path.stat().st_size == 0:
        raise FpgaFtError(f"cannot read model {path}: file is empty")
    if path.suffix.lower() == ".keras":
        version = _keras3_version(path)
        if version is not None:
            raise FpgaFtError(
                f"{path} was saved by Keras {version}: Keras 3 files are not supported by hls4ml 1.3's QKeras "
                "path (fpga-ft runs TensorFlow 2.14 / Keras 2); re-save the model with TensorFlow 2.14 / Keras 2 "
                "as .h5 (model.save('model.h5')), or give a Keras 2 architecture JSON with its weights "
                "(MODEL.json --weights W.h5)")
    if path.suffix.lower() in (".h5", ".hdf5"):
        _check_h5_full_model(path)


def _sibling_weights(architecture: Path) -> Path | None:
    candidate = architecture.with_name(f"{architecture.stem}_weights.h5")
    return candidate if candidate.is_file() else None


def resolve_source(path, weights=None) -> ModelSource:
    """What ``MODEL`` (and ``--weights``) name; reads and validates a config YAML.

    Raises:
        FpgaFtError: missing file, config without a Keras model or with bad values, weights
            given where they do not apply, a Keras 3 ``.keras`` file, a weights-only ``.h5``.
    """
    p = Path(path)
    w = Path(weights) if weights else None
    if not p.exists():
        raise FpgaFtError(f"model file not found: {p}")
    if w is not None and not w.is_file():
        raise FpgaFtError(f"weights file not found: {w}")
    suffix = p.suffix.lower()
    if p.is_file() and suffix in CONFIG_SUFFIXES:
        data = read_yaml_config(p)
        config = parse_hls_config(data, str(p))
        base = p.parent

        def named(key):
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise FpgaFtError(f"config {p}: {key} must be a file path, got {value!r}")
            given = Path(value)
            if given.is_absolute():
                candidates = [given]
            else:  # the YAML's directory first, then the working directory (hls4ml's convention)
                candidates = [base / given, Path.cwd() / given]
            for target in candidates:
                if target.exists():
                    return target
            tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
            raise FpgaFtError(f"config {p}: {key} file not found: {tried}")

        arch, h5, full = named("KerasJson"), named("KerasH5"), named("KerasModel")
        if arch is not None:
            if w is not None and h5 is not None:
                raise FpgaFtError(f"config {p} names its weights (KerasH5); drop --weights or KerasH5")
            weights_path = w or h5 or _sibling_weights(arch)
            if weights_path is None:
                raise FpgaFtError(f"config {p}: KerasJson {arch.name} needs weights (KerasH5, --weights, or a "
                                  f"sibling {arch.stem}_weights.h5)")
            return ModelSource(path=p, kind="config", architecture=arch, weights=weights_path, config=config)
        model_file = full or h5
        if model_file is None:
            raise FpgaFtError(f"config {p} names no Keras model: it needs KerasJson (+ KerasH5), KerasH5 or "
                              "KerasModel")
        if w is not None:
            raise FpgaFtError("--weights applies to a .json architecture (or a config with KerasJson), "
                              f"not to the full model {model_file}")
        _model_file(model_file)
        return ModelSource(path=p, kind="config", model_file=model_file, config=config)
    if p.is_file() and suffix == ".json":
        weights_path = w or _sibling_weights(p)
        if weights_path is None:
            raise FpgaFtError(f"model architecture {p} needs its weights: --weights W.h5 "
                              f"(no sibling {p.stem}_weights.h5)")
        return ModelSource(path=p, kind="json", architecture=p, weights=weights_path)
    if w is not None:
        raise FpgaFtError(f"--weights applies to a .json architecture or an hls4ml config, not to {p}")
    _model_file(p)
    return ModelSource(path=p, kind="model", model_file=p)


# --------------------------------------------------------------------------- loading
def load_keras_model(source: ModelSource):
    """The Keras model a :class:`ModelSource` names (uncompiled, QKeras objects registered)."""
    from fpga_ft.generate.modelio import (_first_line, _load_model_file, _quiet_tensorflow, custom_objects,
                                          refuse_code_layers)

    if source.model_file is not None:
        return _load_model_file(source.model_file)
    tf = _quiet_tensorflow()
    arch = source.architecture
    raw = read_bounded(arch, MAX_JSON_BYTES, "model architecture")
    try:
        refuse_code_layers(json.loads(raw), arch)
    except ValueError as exc:
        raise FpgaFtError(f"model architecture {arch} is not JSON: {_first_line(exc)}") from None
    try:
        model = tf.keras.models.model_from_json(raw.decode("utf-8"), custom_objects=custom_objects())
    except Exception as exc:  # noqa: BLE001 - keras raises many unrelated types
        raise FpgaFtError(f"cannot build model from {arch}: {_first_line(exc)}") from None
    try:
        model.load_weights(str(source.weights))
    except Exception as exc:  # noqa: BLE001
        raise FpgaFtError(f"cannot load weights {source.weights} into {arch}: {_first_line(exc)}") from None
    if not isinstance(model, tf.keras.Model):
        raise FpgaFtError(f"cannot read model {arch}: it holds a {type(model).__name__}, not a Keras model")
    return model


# --------------------------------------------------------------------------- quantizer checks
_PO2 = ("quantized_po2", "quantized_relu_po2")
_QUANTIZER_KEYS = ("kernel_quantizer", "bias_quantizer", "depthwise_quantizer", "pointwise_quantizer",
                   "recurrent_quantizer", "activation")


def _quantizer_text(value) -> str | None:
    if isinstance(value, dict) and "class_name" in value:
        args = ", ".join(f"{k}={v}" for k, v in (value.get("config") or {}).items()
                         if k in ("bits", "max_value", "integer"))
        return f"{value['class_name']}({args})"
    if isinstance(value, str):
        return value
    name = type(value).__name__
    if name.startswith("quantized"):
        return str(value)
    return None


_BINARY = ("binary", "stochastic_binary", "bernoulli")


def _quantizer_uses(model):
    """(layer, key, quantizer text, quantizer) of every quantizer in ``model`` (the
    quantizer as configured: a QKeras object, a config dict or a string)."""
    for layer in model.layers:
        try:
            config = layer.get_config()
        except Exception:  # noqa: BLE001 - layers without a config have no quantizers
            continue
        for key in _QUANTIZER_KEYS:
            if key == "activation":
                if type(layer).__name__ != "QActivation":
                    continue
                value = getattr(layer, "activation", None)
            else:
                value = config.get(key)
            text = _quantizer_text(value)
            if text:
                yield layer, key, text, value


def _po2_uses(model):
    """(layer, key, quantizer text) of every power-of-two quantizer in ``model``."""
    for layer, key, text, _ in _quantizer_uses(model):
        if text.strip().startswith(_PO2):
            yield layer, key, text


def _negative_slope(value) -> float:
    if isinstance(value, dict):
        return float((value.get("config") or {}).get("negative_slope") or 0.0)
    return float(getattr(value, "negative_slope", 0.0) or 0.0)


def check_quantizers(model, allow_po2_weights: bool = False) -> None:
    """Refuse, with one line naming the layer and quantizer, what fpga-ft cannot simulate
    bit-exactly: power-of-two quantizers (hls4ml turns them into exponent types that
    fpga-ft's csim kernels do not implement), binary quantizers (hls4ml builds 1-bit
    XNOR types: measured 2 % bit-exact on a QDense with ``binary(alpha=1)`` weights) and
    ``quantized_relu`` with a negative slope (hls4ml 1.3 fails to convert it). Ternary
    weights and ``quantized_tanh`` activations are exact (measured 100 %) and pass.
    ``allow_po2_weights``: power-of-two weights and biases pass (:func:`prepare_model`
    converts them to an exact fixed-point type)."""
    for layer, key, text, value in _quantizer_uses(model):
        name = text.strip().split("(")[0]
        where = f"layer '{layer.name}' ({type(layer).__name__}) uses {key} {text}"
        if name in _BINARY:
            raise FpgaFtError(f"{where}: binary quantizers are not supported (hls4ml builds them as 1-bit "
                              "XNOR types that fpga-ft's C-simulation and protection kernels do not implement, "
                              "so results would not be bit-exact); use ternary or quantized_bits")
        if name == "quantized_relu" and _negative_slope(value) != 0.0:
            raise FpgaFtError(f"{where}: quantized_relu with a negative slope is not supported (hls4ml 1.3 "
                              "cannot convert it); use negative_slope=0 or a separate quantized_bits activation")
        if not text.strip().startswith(_PO2):
            continue
        if allow_po2_weights and key in ("kernel_quantizer", "bias_quantizer"):
            continue
        what = ("power-of-two activations are not supported" if key == "activation" else
                "power-of-two quantizers are not supported here (fpga-ft's intake converts po2 weights of "
                "Dense/Conv layers to an exact fixed-point type; pass the model through fpga_ft.generate.intake."
                "prepare_model or the CLI)")
        raise FpgaFtError(
            f"{where}: {what} (hls4ml makes them exponent types, which fpga-ft's C-simulation and protection "
            "kernels do not implement); use quantized_bits")


def _po2_weight_types(model) -> dict:
    """Per layer with power-of-two weights/biases: ``{key: (quantized values, FixedSpec)}``,
    the spec being the narrowest signed ap_fixed that holds every value exactly."""
    out: dict = {}
    for layer, key, _ in _po2_uses(model):
        if key not in ("kernel_quantizer", "bias_quantizer"):
            continue
        variable = layer.kernel if key == "kernel_quantizer" else getattr(layer, "bias", None)
        quantizer = getattr(layer, f"{key}_internal", None)
        if variable is None or quantizer is None:
            raise FpgaFtError(f"layer '{layer.name}': cannot read its power-of-two {key.split('_')[0]} values")
        values = np.asarray(quantizer(variable), dtype=np.float64)
        nonzero = np.abs(values[values != 0])
        if nonzero.size == 0:
            spec = FixedSpec(width=2, integer=2)
        else:
            exponents = np.log2(nonzero)
            if not np.all(exponents == np.round(exponents)):
                raise FpgaFtError(f"layer '{layer.name}': its {key} values are not powers of two")
            high, low = int(exponents.max()), int(exponents.min())
            integer = max(high + 2, 1)  # sign bit + room for +2^high
            fractional = max(-low, 0)
            spec = FixedSpec(width=integer + fractional, integer=integer)
        out.setdefault(layer.name, {})[key] = (values, spec)
    return out


# --------------------------------------------------------------------------- preparation
@dataclass
class PreparedModel:
    """The model fpga-ft converts and compares with, and how it was derived.

    Attributes:
        model: the Keras model to convert and to compute the reference with (the user's
            model, or an edited copy).
        original: the model as loaded.
        source: where it came from (None for a model object).
        hls_config: the config to honour for ``model`` (the user's, with the removed head's
            entries dropped and the chosen input precision set), or None.
        input_type: the type raw data is quantized to before it enters ``model`` (None: the
            model quantizes its own input).
        input_origin: where ``input_type`` came from.
        inserted_quantizer: the QActivation added after the input (text), or None.
        head: the removed final activation: ``{"layer", "activation", "compared_layer"}``.
        full_model: ``model`` with its head (None when nothing was removed).
        full_hls_config: the config for ``full_model``.
        notes: one-line messages every command prints (``note:`` / ``warning:``).
        inexact_layers: layers with float weights the user allowed (``--allow-inexact``,
            see :func:`fpga_ft.generate.bitexact.check_exact`): results are not bit-exact.
    """

    model: object
    original: object
    source: ModelSource | None = None
    po2_weights: dict = field(default_factory=dict)
    hls_config: UserHlsConfig | None = None
    input_type: FixedSpec | None = None
    input_origin: str | None = None
    inserted_quantizer: str | None = None
    head: dict | None = None
    full_model: object = None
    full_hls_config: UserHlsConfig | None = None
    notes: list = field(default_factory=list)
    inexact_layers: list = field(default_factory=list)

    @property
    def compared_tensor(self) -> str:
        if self.head is not None:
            return f"pre-{self.head['activation']} (layer {self.head['compared_layer']})"
        return f"model output (layer {self.model.layers[-1].name})"

    def prepare_inputs(self, x: np.ndarray) -> np.ndarray:
        """Raw data -> the model's input words (float32; quantized to ``input_type`` if set)."""
        x = np.asarray(x, dtype=np.float32)
        if self.input_type is None:
            return x
        return quantize_float32(x, self.input_type, "input")

    def reference(self, x: np.ndarray, prepared: bool = True) -> np.ndarray:
        """QKeras outputs of ``model`` (the tensor the csim is compared on)."""
        x = x if prepared else self.prepare_inputs(x)
        return self.model.predict(x, verbose=0)

    def announce(self, stream=None) -> None:
        for line in self.notes:
            print(line, file=stream or sys.stderr)

    def describe(self) -> dict:
        """JSON-ready summary of the intake (commands put it under ``intake``)."""
        return {
            "source": None if self.source is None else self.source.to_dict(),
            "input_quantization": None if self.input_type is None else {
                "type": self.input_type.c_type(), "from": self.input_origin,
                "rounding": f"AP_{self.input_type.rounding}", "overflow": f"AP_{self.input_type.saturation}",
                "inserted": self.inserted_quantizer},
            "removed_head": self.head,
            "po2_weights": self.po2_weights or None,
            "compared_tensor": self.compared_tensor,
            "inexact_layers": list(self.inexact_layers),
        }


def _input_layer_name(model) -> str:
    names = getattr(model, "input_names", None) or [model.inputs[0].name.split(":")[0]]
    return names[0]


def _input_consumers(model, input_name: str) -> list:
    """Layers fed directly by the model input."""
    consumers = []
    for layer in model.layers:
        if type(layer).__name__ == "InputLayer":
            continue
        for node in getattr(layer, "_inbound_nodes", []):
            inbound = node.inbound_layers
            inbound = inbound if isinstance(inbound, (list, tuple)) else [inbound]
            if any(getattr(l, "name", None) == input_name for l in inbound):
                consumers.append(layer)
                break
    return consumers


def _is_input_quantizer(layer) -> bool:
    if type(layer).__name__ != "QActivation":
        return False
    quantizer = getattr(layer, "quantizer", None) or getattr(layer, "activation", None)
    return type(quantizer).__name__ == "quantized_bits"


def _layer_activation(layer) -> str | None:
    """The activation a layer applies, by name (None when it has none)."""
    cls = type(layer).__name__
    if cls == "Softmax":
        return "softmax"
    act = getattr(layer, "activation", None)
    if act is None:
        return None
    name = getattr(act, "__name__", None) or str(act)
    return str(name).lower()


def _find_head(model) -> dict | None:
    """The model's final table-based activation (softmax, sigmoid, tanh), if any."""
    outputs = model.outputs
    if len(outputs) != 1:
        return None
    history = getattr(outputs[0], "_keras_history", None)
    last = history.layer if history is not None else model.layers[-1]
    act = _layer_activation(last)
    if act not in TABLE_HEADS:
        return None
    cls = type(last).__name__
    if cls in ("Activation", "Softmax", "QActivation"):
        node = last._inbound_nodes[0]
        inbound = node.inbound_layers
        inbound = inbound if isinstance(inbound, (list, tuple)) else [inbound]
        if len(inbound) != 1 or type(inbound[0]).__name__ == "InputLayer":
            return None
        return {"layer": last.name, "activation": act, "compared_layer": inbound[0].name, "embedded": False}
    # an activation built into the last layer (Dense(..., activation='softmax'))
    return {"layer": last.name, "activation": act, "compared_layer": last.name, "embedded": True}


def quantized_bits_for(spec: FixedSpec):
    """The QKeras ``quantized_bits`` quantizer whose values are exactly ``spec``'s range
    (``keep_negative`` for signed types; QKeras's ``integer`` excludes the sign bit),
    with ``alpha=1``. On data already quantized to ``spec`` it is the identity."""
    from qkeras import quantized_bits

    bits, integer = _qkeras_bits(spec)
    return quantized_bits(bits, integer, keep_negative=spec.signed, alpha=1)


def _edit_model(model, quantizer_spec: FixedSpec | None, head: dict | None, po2: dict | None = None):
    """A copy of ``model`` (fresh layers, same weights) with a QActivation after the input,
    without its final activation, and/or with power-of-two weight quantizers replaced by the
    ``quantized_bits`` of an exact fixed-point type (``po2``: see :func:`_po2_weight_types`;
    the copy's weights are the quantized values, so its outputs are the original's)."""
    from fpga_ft.generate.modelio import _quiet_tensorflow, custom_objects

    tf = _quiet_tensorflow()
    functional = tf.keras.Model(model.inputs, model.outputs, name=model.name)
    config = functional.get_config()
    layers = config["layers"]
    input_name = config["input_layers"][0][0]
    if quantizer_spec is not None:
        from qkeras import QActivation

        qlayer = QActivation(quantized_bits_for(quantizer_spec), name=INPUT_QUANTIZER_NAME)
        entry = tf.keras.layers.serialize(qlayer)
        entry["name"] = INPUT_QUANTIZER_NAME
        entry["config"]["trainable"] = False
        entry["inbound_nodes"] = [[[input_name, 0, 0, {}]]]
        for layer in layers:
            for node in layer.get("inbound_nodes", []):
                for ref in node:
                    if ref[0] == input_name:
                        ref[0] = INPUT_QUANTIZER_NAME
        position = next(i for i, layer in enumerate(layers) if layer["name"] == input_name) + 1
        layers.insert(position, entry)
        for out in config["output_layers"]:
            if out[0] == input_name:
                out[0] = INPUT_QUANTIZER_NAME
    for name, keys in (po2 or {}).items():
        entry = next(layer for layer in layers if layer["name"] == name)
        for key, (_, spec) in keys.items():
            bits, integer = _qkeras_bits(spec)
            entry["config"][key] = {"class_name": "quantized_bits",
                                    "config": {"bits": bits, "integer": integer, "symmetric": 0, "alpha": 1,
                                               "keep_negative": True, "use_stochastic_rounding": False}}
    if head is not None:
        if head["embedded"]:
            entry = next(layer for layer in layers if layer["name"] == head["layer"])
            entry["config"]["activation"] = "linear"
        else:
            entry = next(layer for layer in layers if layer["name"] == head["layer"])
            source = entry["inbound_nodes"][0][0]
            layers.remove(entry)
            config["output_layers"] = [[source[0], source[1], source[2]]]
    try:
        copy = tf.keras.Model.from_config(config, custom_objects=custom_objects())
    except Exception as exc:  # noqa: BLE001
        raise FpgaFtError(f"cannot copy model {model.name} to insert an input quantizer / remove its head: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    for layer in copy.layers:
        if layer.name == INPUT_QUANTIZER_NAME or not layer.weights:
            continue
        layer.set_weights(model.get_layer(layer.name).get_weights())
        for key, (values, _) in (po2 or {}).get(layer.name, {}).items():
            variable = layer.kernel if key == "kernel_quantizer" else layer.bias
            variable.assign(values.astype(np.float32))
    return copy


def _choose_input_type(model, config: UserHlsConfig | None, input_precision: str | None):
    """(FixedSpec, origin text) of the input words of a model without an input quantizer."""
    input_name = _input_layer_name(model)
    if input_precision:
        return parse_type(input_precision, "--input-precision"), "--input-precision"
    if config is not None:
        text = config.result_precision(input_name)
        if text is not None:
            return parse_type(text, f"config input layer {input_name} Precision"), \
                f"config (layer {input_name} Precision result)"
        text = config.model_precision()
        if text is not None:
            return parse_type(text, "config HLSConfig.Model.Precision"), "config (HLSConfig.Model Precision)"
    return parse_type(HLS_DEFAULT_PRECISION), "hls4ml's default precision"


def prepare_model(model, *, source: ModelSource | None = None, hls_config: UserHlsConfig | None = None,
                  input_precision: str | None = None) -> PreparedModel:
    """Derive the model fpga-ft converts from ``model`` (see the module docstring)."""
    from fpga_ft.generate.convert import check_supported

    check_quantizers(model, allow_po2_weights=True)
    check_supported(model)
    notes: list[str] = []
    po2 = _po2_weight_types(model)
    for name, keys in po2.items():
        types = ", ".join(f"{key.split('_')[0]} {spec.c_type()}" for key, (_, spec) in keys.items())
        notes.append(f"note: layer '{name}' has power-of-two (quantized_po2) weights: converted with the exact "
                     f"fixed-point type that holds all of them ({types}; a copy of the model with quantized_bits of "
                     "that type and the same values), not hls4ml's exponent type (its shift units); with "
                     "ReuseFactor 1 synthesis sees constant powers of two, i.e. shifts")
    input_name = _input_layer_name(model)
    consumers = _input_consumers(model, input_name)
    quantized = len(consumers) == 1 and _is_input_quantizer(consumers[0])
    spec = origin = inserted = None
    if quantized:
        if input_precision:
            notes.append(f"note: --input-precision ignored: the model quantizes its input itself "
                         f"({consumers[0].name})")
    else:
        spec, origin = _choose_input_type(model, hls_config, input_precision)
        inserted = f"QActivation({quantized_bits_repr(spec)})"
        level = "warning" if origin == "hls4ml's default precision" else "note"
        hint = " (set it with --input-precision or the config's input layer Precision)" if level == "warning" else ""
        notes.append(f"{level}: model input has no quantizer: inputs are quantized to {spec.c_type()} from "
                     f"{origin}{hint}, and a copy of the model with {inserted} after the input is converted "
                     "and used as the QKeras reference")
    head = _find_head(model)
    if head is not None:
        notes.append(f"note: the final {head['activation']} ('{head['layer']}') is computed by hls4ml with lookup "
                     f"tables (not bit-exact): csim and QKeras are compared on its input (layer "
                     f"'{head['compared_layer']}'), classes by argmax")
    config = hls_config
    if spec is not None:
        config = (config or UserHlsConfig()).with_layer(input_name, {"Precision": {"result": spec.c_type()}})
    edited = model
    full = None
    if spec is not None or head is not None or po2:
        edited = _edit_model(model, spec, head, po2)
        if head is not None:
            full = _edit_model(model, spec, None, po2) if (spec is not None or po2) else model
    full_config = config
    if head is not None and config is not None:
        # the head's own entry (or, for Dense(..., activation='softmax'), the entry of the
        # activation layer hls4ml splits off it) names a layer the copy no longer has
        config = config.without_layers([f"{head['layer']}_{head['activation']}"] if head["embedded"]
                                       else [head["layer"]])
    return PreparedModel(model=edited, original=model, source=source,
                         po2_weights={name: {key: spec.c_type() for key, (_, spec) in keys.items()}
                                      for name, keys in po2.items()},
                         hls_config=config, input_type=spec,
                         input_origin=origin, inserted_quantizer=inserted, head=head, full_model=full,
                         full_hls_config=full_config, notes=notes)


def open_model(path, *, weights=None, input_precision: str | None = None, announce: bool = True) -> PreparedModel:
    """Resolve, load and prepare ``MODEL``; print its notes (stderr) unless ``announce`` is False."""
    from fpga_ft.generate.design import reset_announcements

    if input_precision is not None:
        parse_type(input_precision, "--input-precision")  # cheap check before TensorFlow
    reset_announcements()  # a command opens its model once: its design warnings print again
    source = resolve_source(path, weights)
    model = load_keras_model(source)
    prepared = prepare_model(model, source=source, hls_config=source.config, input_precision=input_precision)
    if announce:
        prepared.announce()
    return prepared

