"""QKeras -> hls4ml conversion with fpga-ft's protection inserted.

``convert_model`` checks the model's layers, tags every Dense/Conv1D/Conv2D layer with its
protection (hls4ml layer options ``FpgaftId``, ``FpgaftMsbs``, ``FpgaftCritical``,
``FpgaftSchemes``: ``plan_key=neuron`` of registered schemes), lets
hls4ml convert it with ``bit_exact=True`` through the fpga-ft templates, and reads the real
C++ types back into :class:`~fpga_ft.core.layers.LayerInfo` objects.
``write_project`` writes the complete HLS project plus fpga-ft's extra files.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.fixedpoint import FixedSpec, parse_type, quantize
from fpga_ft.core.layers import FixedType, LayerInfo
from fpga_ft.core.paths import HLS_TEMPLATES_DIR
from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.generate import keep_replicas
from fpga_ft.generate.modelio import outputs_are_logits
from hls_templates.templates import ATTR_ID, ATTR_STRATEGY, CONFIG_STRATEGY

PROJECT_NAME = "myproject"
WEIGHTS_FILE = "fpgaft_weights.npz"
BACKENDS = {"vitis": "Vitis", "vivado": "Vivado", "vivadoaccelerator": "VivadoAccelerator"}
IO_TYPES = ("io_parallel", "io_stream")

#: Keras layer classes fpga-ft accepts (hls4ml 1.3 converts them).
SUPPORTED_LAYERS = {
    "InputLayer", "QActivation", "Activation", "ReLU", "LeakyReLU", "ThresholdedReLU", "ELU", "PReLU",
    "Softmax", "QDense", "Dense", "QConv1D", "QConv2D", "Conv1D", "Conv2D", "MaxPooling1D",
    "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "GlobalAveragePooling1D",
    "GlobalAveragePooling2D", "GlobalMaxPooling1D", "GlobalMaxPooling2D", "BatchNormalization",
    "QBatchNormalization", "Flatten", "Reshape", "Dropout", "ZeroPadding1D", "ZeroPadding2D",
    "Add", "Concatenate", "UpSampling2D", "QDepthwiseConv2D",
    "DepthwiseConv2D", "QSeparableConv2D", "SeparableConv2D",
}
#: supported layers whose arithmetic fpga-ft does not protect (no fault sites of their own):
#: depthwise / separable convolutions reach conversion only when the intake could not rewrite
#: them as convolutions (fpga_ft/generate/intake/depthwise.py: a quantizer scale over the kernel)
NOT_PROTECTABLE_YET = {"QDepthwiseConv2D", "DepthwiseConv2D", "QSeparableConv2D", "SeparableConv2D"}
#: Keras layer classes hls4ml 1.3 has no converter for, with what to use instead
_NO_HLS4ML_HANDLER = {
    # measured: hls4ml 1.3 has no converter for QDenseBatchnorm / QDepthwiseConv2DBatchnorm, and
    # convert_from_keras_model(bit_exact=True) raises "Layer Conv2DBatchnorm is not supported for
    # pad_arrs" on QConv2DBatchnorm. The intake (prepare_model, hence every command) folds all three
    # into the plain layer bit for bit (generate/intake/fold.py); only a model given to the library
    # unprepared reaches this.
    cls: "hls4ml 1.3 does not convert it bit-exactly; pass the model through fpga_ft.generate.intake."
         "prepare_model (every fpga-ft command does), which folds the batch normalization into the layer"
    for cls in ("QDenseBatchnorm", "QConv2DBatchnorm", "QDepthwiseConv2DBatchnorm")
}
#: Keras layer classes whose dot products fpga-ft can protect.
PROTECTABLE_LAYERS = {"QDense", "Dense", "QConv1D", "QConv2D", "Conv1D", "Conv2D"}
_HLS_KIND = {"Dense": "Dense", "Conv1D": "Conv1D", "PointwiseConv1D": "Conv1D", "Conv2D": "Conv2D",
             "PointwiseConv2D": "Conv2D", "Conv2DBatchnorm": "Conv2D"}


@dataclass
class ConvertedModel:
    """An hls4ml model graph with fpga-ft protection, and what it protects."""

    hls_model: object
    keras_model: object
    layers: list[LayerInfo]
    plan: ProtectionPlan
    backend: str
    io_type: str
    part: str
    clock_period_ns: float
    bit_exact: bool
    board: str | None = None
    output_dir: Path | None = None
    extra: dict = field(default_factory=dict)

    @property
    def n_inputs(self) -> int:
        return int(np.prod(self.keras_model.input_shape[1:]))

    @property
    def n_outputs(self) -> int:
        return int(np.prod(self.keras_model.output_shape[1:]))


def check_supported(model) -> list[str]:
    """Raise a one-line error for the first layer fpga-ft cannot handle; return protectable names."""
    if len(model.inputs) != 1 or len(model.outputs) != 1:
        raise FpgaFtError(f"model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                          "fpga-ft supports single-input, single-output models")
    protectable = []
    for layer in model.layers:
        cls = layer.__class__.__name__
        if cls in _NO_HLS4ML_HANDLER:
            raise FpgaFtError(f"unsupported layer '{layer.name}' ({cls}): {_NO_HLS4ML_HANDLER[cls]}")
        if cls.startswith("UpSampling") and getattr(layer, "interpolation", "nearest") != "nearest":
            raise FpgaFtError(f"unsupported layer '{layer.name}' ({cls}): interpolation "
                              f"'{layer.interpolation}' is not bit-exact in hls4ml 1.3; use 'nearest'")
        if cls not in SUPPORTED_LAYERS:
            raise FpgaFtError(
                f"unsupported layer '{layer.name}' ({cls}): fpga-ft supports Dense, Conv1D, Conv2D, "
                "DepthwiseConv2D, SeparableConv2D (QKeras or Keras), activations, pooling, BatchNormalization, "
                "Add, Concatenate, UpSampling, ZeroPadding, Flatten/Reshape, Dropout")
        if cls in PROTECTABLE_LAYERS:
            if getattr(layer, "data_format", "channels_last") == "channels_first":
                raise FpgaFtError(f"layer '{layer.name}' ({cls}) uses channels_first; use channels_last")
            protectable.append(layer.name)
    if not protectable:
        raise FpgaFtError("model has no Dense or Conv layer to protect")
    return protectable


def _precision(p) -> FixedType:
    width = int(p.width)
    integer = int(getattr(p, "integer", width))
    return FixedType(width=width, integer=integer, signed=bool(p.signed))


def _on_grid(values: np.ndarray, t: FixedType) -> np.ndarray:
    """``values`` as the C++ type ``t`` holds them: unchanged when already on its grid (a
    quantized model), else truncated and wrapped as an ``ap_fixed`` initialiser does
    (AP_TRN, AP_WRAP): float weights allowed with ``--allow-inexact``."""
    scaled = values * 2.0 ** t.fractional
    if np.array_equal(scaled, np.rint(scaled)):
        return values
    return quantize(values, FixedSpec(t.width, t.integer, bool(t.signed)))  # TRN, WRAP: the defaults


def _depthwise_multiplier(node) -> int:
    """``m`` when the node is a depthwise convolution the intake rewrote (its Keras kernel
    carries the ``BlockDiagonal`` constraint, :mod:`fpga_ft.generate.intake.depthwise`), else 0."""
    keras_model = node.model.config.get_config_value("KerasModel")
    try:
        constraint = getattr(keras_model.get_layer(node.name), "kernel_constraint", None)
    except (AttributeError, ValueError):  # no Keras model, or no layer of that name (hls4ml's own nodes)
        return 0
    return int(constraint.multiplier) if type(constraint).__name__ == "BlockDiagonal" else 0


def layer_info(node, io_type: str) -> LayerInfo:
    """The :class:`LayerInfo` of one tagged hls4ml Dense/Conv node (real C++ types, weights
    in the order of the generated weight array: ``weights[i * n_out + j]``)."""
    kind = _HLS_KIND.get(node.class_name)
    if kind is None:
        raise FpgaFtError(f"layer '{node.name}' became hls4ml {node.class_name}, which fpga-ft cannot protect")
    if kind == "Dense":
        n_in, n_out, positions = node.get_attr("n_in"), node.get_attr("n_out"), 1
    else:
        n_in = node.get_attr("n_chan") * node.get_attr("filt_width") * node.get_attr("filt_height", 1)
        n_out = node.get_attr("n_filt")
        positions = node.get_attr("out_width") * node.get_attr("out_height", 1)
    weight_type = _precision(node.get_weights("weight").type.precision)
    bias_type = _precision(node.get_weights("bias").type.precision)
    weights = _on_grid(np.asarray(node.get_weights("weight").data, dtype=float).reshape(n_in, n_out), weight_type)
    biases = _on_grid(np.asarray(node.get_weights("bias").data, dtype=float).reshape(n_out), bias_type)
    return LayerInfo(
        name=node.name, kind=kind, index=node.index, n_in=int(n_in), n_out=int(n_out),
        n_positions=int(positions), n_input_words=int(node.get_input_variable().size()),
        input_type=_precision(node.get_input_variable().type.precision),
        weight_type=weight_type, bias_type=bias_type,
        accum_type=_precision(node.get_attr("accum_t").precision),
        result_type=_precision(node.get_output_variable().type.precision),
        reuse_factor=int(node.get_attr("reuse_factor", 1)),
        strategy=str(node.get_attr(ATTR_STRATEGY, None) or node.get_attr("strategy", "latency")).lower(),
        io_type=io_type,
        weights=weights, biases=biases,
        depthwise_multiplier=_depthwise_multiplier(node))


def describe_layers(hls_model, keras_model=None) -> list[LayerInfo]:
    """The protectable layers of a converted (tagged) hls4ml model, in dataflow order."""
    io_type = hls_model.config.get_config_value("IOType")
    nodes = [node for node in hls_model.get_layers() if node.get_attr(ATTR_ID, None) is not None]
    # the tags number the layers in the model's dataflow order, the order of the csim's fault
    # stream; hls4ml's node indices are not (a 1x1 convolution it replaces gets a new, larger one)
    nodes.sort(key=lambda node: int(node.get_attr(ATTR_ID)))
    return [layer_info(node, io_type) for node in nodes]


def _resize_kif(layer):
    """hls4ml 1.3's bit-exact precision pass has no rule for Resize (``UpSampling``): a
    nearest-neighbour upsampling repeats each input word, so each output word has its
    source word's sign/integer/fraction bits."""
    from hls4ml.model.optimizer.passes.bit_exact import get_input_layers, produce_kif

    if layer.get_attr("algorithm", "nearest") != "nearest":
        raise FpgaFtError(f"layer '{layer.name}': only nearest-neighbour UpSampling is bit-exact")
    kifs = produce_kif(get_input_layers(layer)[0])
    if layer.get_attr("in_height") is None:
        factors = (layer.get_attr("out_width") // layer.get_attr("in_width"),)
    else:
        factors = (layer.get_attr("out_height") // layer.get_attr("in_height"),
                   layer.get_attr("out_width") // layer.get_attr("in_width"))
    out = []
    for arr in kifs:
        for axis, factor in enumerate(factors):
            arr = np.repeat(arr, factor, axis=axis)
        out.append(arr)
    return tuple(out)


def _zero_padding_kif(layer):
    """hls4ml 1.3's bit-exact pass has no rule for ZeroPadding either: the input words keep
    their bits, the padding words are the constant 0 (no sign, integer or fraction bit)."""
    from hls4ml.model.optimizer.passes.bit_exact import get_input_layers, pad_arrs, produce_kif

    return pad_arrs(layer, 0, *produce_kif(get_input_layers(layer)[0]))


_DOT_CLASSES = ("Dense", "Conv1D", "Conv2D", "PointwiseConv1D", "PointwiseConv2D", "DepthwiseConv1D",
                "DepthwiseConv2D")


def unprotected_arithmetic(hls_model) -> list[dict]:
    """The multiply-accumulate layers of a converted model that fpga-ft neither protects nor
    injects faults into (the depthwise and pointwise halves of a separable convolution, a
    depthwise convolution): ``{"layer", "kind", "macs"}``, ``macs`` per inference."""
    out = []
    for node in hls_model.get_layers():
        kind = node.class_name
        if kind not in _DOT_CLASSES or node.get_attr(ATTR_ID, None) is not None:
            continue
        if kind == "Dense":
            macs = node.get_attr("n_in") * node.get_attr("n_out")
        else:
            positions = node.get_attr("out_width") * node.get_attr("out_height", 1)
            window = node.get_attr("n_chan") * node.get_attr("filt_width") * node.get_attr("filt_height", 1)
            macs = positions * window * (1 if kind.startswith("Depthwise") else node.get_attr("n_filt"))
        out.append({"layer": node.name, "kind": kind, "macs": int(macs)})
    return out


def _align_resize_types(hls_model) -> None:
    """hls4ml's ``resize_nearest`` takes one data type for its input and output, but the
    bit-exact pass gives the output a type without the input's rounding/overflow modes:
    the output gets the input's precision (the same values: a resize copies words)."""
    for node in hls_model.get_layers():
        if node.class_name.endswith("Resize"):
            node.get_output_variable().type.precision = node.get_input_variable().type.precision


def _register_bit_exact_rules() -> None:
    """Add fpga-ft's rules to hls4ml's bit-exact pass (through its ``singledispatch``)."""
    from hls4ml.model.layers import Resize, ZeroPadding1D, ZeroPadding2D
    from hls4ml.model.optimizer.passes import bit_exact

    for cls, rule in ((Resize, _resize_kif), (ZeroPadding1D, _zero_padding_kif), (ZeroPadding2D, _zero_padding_kif)):
        if cls not in bit_exact._produce_kif.registry:
            bit_exact._produce_kif.register(cls, rule)


@contextlib.contextmanager
def _quiet():
    """hls4ml prints its whole config; keep the console for our own messages."""
    buffer = io.StringIO()
    with warnings.catch_warnings(), contextlib.redirect_stdout(buffer):
        warnings.simplefilter("ignore")
        logging.getLogger("tensorflow").setLevel(logging.ERROR)
        yield buffer


def resolve_backend(backend: str | None, board=None, config_backend: str | None = None) -> str:
    """hls4ml backend name: ``backend`` (explicit), else the board's, else the config's,
    else Vitis."""
    if backend is None:
        if board is not None:
            backend = "vivado" if board.backend.lower() == "vivado" else "vitis"
        else:
            backend = config_backend or "vitis"
    name = BACKENDS.get(str(backend).lower())
    if name is None:
        raise FpgaFtError(f"unknown backend '{backend}' (known: {', '.join(BACKENDS)})")
    return name


#: bumped when how a user's hls4ml config is merged changes (part of design cache keys)
HLS_CONFIG_MERGE_VERSION = 1

NOT_BIT_EXACT_WARNING = ("warning: model input is not quantized (no QActivation(quantized_bits) after Input): "
                         "converted without hls4ml bit_exact; csim may differ from QKeras")


def _merge_layer(target: dict, entry: dict, model_level: bool = False) -> None:
    """Merge one user config entry into an hls4ml layer (or ``Model``) config; user values
    win. A layer's ``Precision`` string replaces its precisions (hls4ml reads it as that
    layer's default for every type); a ``Model`` ``Precision`` string is the model default."""
    for key, value in entry.items():
        current = target.get(key)
        if key == "Precision" and isinstance(value, str) and model_level:
            target[key] = {**current, "default": value} if isinstance(current, dict) else value
        elif key == "Precision" and isinstance(value, dict) and isinstance(current, dict):
            target[key] = {**current, **value}
        else:
            target[key] = value


def _same_values(config_type: str, quantizer_type: str) -> bool:
    """Whether a config result type gives a quantized activation the same outputs as the
    type hls4ml derives from its QKeras quantizer: same LSB, rounding and largest value,
    both saturating, and no smaller lowest value."""
    try:
        user, quant = parse_type(config_type), parse_type(quantizer_type)
    except FpgaFtError:
        return False
    return (user.fractional == quant.fractional and user.rounding == quant.rounding
            and user.saturation != "WRAP" and quant.saturation != "WRAP"
            and user.max_value == quant.max_value and user.min_value <= quant.min_value)


def _quantizer_wins(name: str, layer, entry: dict, auto: dict, conflicts: list[str]) -> dict:
    """A QActivation's result type is its QKeras quantizer's (the model is the reference):
    a config result precision that would change its outputs is dropped, with a warning."""
    precision = entry.get("Precision")
    given = precision.get("result") if isinstance(precision, dict) else precision
    derived = (auto.get("Precision") or {}).get("result") if isinstance(auto.get("Precision"), dict) else None
    if not isinstance(given, str) or given.strip().lower() == "auto" or not isinstance(derived, str) \
            or derived.strip().lower() == "auto" or _same_values(given, derived):
        return entry
    activation = getattr(layer, "activation", None)
    conflicts.append(f"warning: config gives '{name}' result {given}, but its QKeras quantizer {activation} "
                     f"produces {derived} (different rounding or range): the quantizer's type is used so the "
                     "design matches the QKeras model bit for bit")
    entry = dict(entry)
    if isinstance(precision, dict):
        entry["Precision"] = {k: v for k, v in precision.items() if k != "result"}
    else:
        entry.pop("Precision")
    return entry


def build_hls_config(model, protectable: list[str], plan: ProtectionPlan, *, backend_name: str,
                     hls_config=None, reuse_factor: int | None = None) -> tuple[dict, list[str]]:
    """hls4ml's per-layer config of ``model`` (``granularity="name"``) with the user's
    config merged in (user values win), ``reuse_factor`` (explicit) on every layer, and
    fpga-ft's tags. Returns ``(config, warnings)``."""
    import hls4ml

    user = hls_config
    default_rf = reuse_factor or (user.model.get("ReuseFactor") if user is not None else None) or 1
    config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend=backend_name,
                                                  default_reuse_factor=int(default_rf))
    layer_cfgs = config["LayerName"]
    conflicts: list[str] = []
    if user is not None:
        _merge_layer(config["Model"], user.model, model_level=True)
        if user.layer_type:
            for layer in model.layers:
                cls = type(layer).__name__
                for key in (cls, cls[1:] if cls.startswith("Q") else None):
                    if key in user.layer_type and layer.name in layer_cfgs:
                        _merge_layer(layer_cfgs[layer.name], user.layer_type[key])
        unknown = [name for name in user.layer_name if name not in layer_cfgs]
        if unknown:
            raise FpgaFtError(f"config {user.path or ''} HLSConfig.LayerName names unknown layer '{unknown[0]}' "
                              f"(layers: {', '.join(layer_cfgs)})")
        quantized = {layer.name: layer for layer in model.layers if type(layer).__name__ == "QActivation"}
        for name, entry in user.layer_name.items():
            if name in quantized:
                entry = _quantizer_wins(name, quantized[name], entry, layer_cfgs[name], conflicts)
            _merge_layer(layer_cfgs[name], entry)
    if reuse_factor:
        config["Model"]["ReuseFactor"] = int(reuse_factor)
        for layer_cfg in layer_cfgs.values():
            if "ReuseFactor" in layer_cfg:
                layer_cfg["ReuseFactor"] = int(reuse_factor)
    warnings_out = list(conflicts)
    model_strategy = str(config["Model"].get("Strategy") or "Latency")
    for name, layer_cfg in layer_cfgs.items():
        if name not in protectable:
            layer_cfg["FpgaftModel"] = 1  # lets the csim use fpga-ft's fast ReLU
    for index, name in enumerate(protectable):
        layer_cfg = layer_cfgs.setdefault(name, {})
        protection = plan.for_layer(name)
        strategy = str(layer_cfg.get("Strategy") or model_strategy)
        if strategy.lower() not in ("latency", "resource"):
            raise FpgaFtError(f"layer '{name}': Strategy {strategy} is not supported by fpga-ft (Latency or "
                              "Resource; ReuseFactor sets the sharing)")
        # hls4ml is asked for its Latency weight layout (what fpga-ft's csim reads); the
        # user's strategy and reuse factor select fpga-ft's synthesis kernel: a layer with
        # Strategy Resource or ReuseFactor > 1 is built time-shared (fpga_ft.core.structure)
        layer_cfg["Strategy"] = "Latency"
        layer_cfg[CONFIG_STRATEGY] = strategy.lower()
        layer_cfg["FpgaftId"] = index
        layer_cfg["FpgaftMsbs"] = int(protection.protected_msbs)
        layer_cfg["FpgaftCritical"] = [int(i) for i in protection.critical_neurons]
        layer_cfg["FpgaftSchemes"] = [f"{key}={int(i)}" for key, neurons in sorted(protection.scheme_neurons.items())
                                      for i in neurons]
    return config, warnings_out


def convert_model(model, plan: ProtectionPlan | None = None, *, board=None, backend: str | None = None,
                  io_type: str | None = None, output_dir: str | os.PathLike | None = None,
                  reuse_factor: int | None = None, part: str | None = None,
                  clock_period_ns: float | None = None, hls_config=None, warn: bool = True) -> ConvertedModel:
    """Convert a QKeras model (object, path or :class:`fpga_ft.generate.intake.PreparedModel`) with
    ``plan`` inserted; validate the plan.

    ``hls_config`` (:class:`fpga_ft.generate.intake.UserHlsConfig`, taken from a path's or prepared
    model's config when not given) is honoured: per-layer precisions, strategy, reuse factor,
    io type, part, clock, backend; the arguments given here win over it. ``board`` (a
    :class:`fpga_ft.core.boards.Board`) sets the part, clock and backend unless given.
    ``warn``: print conversion warnings (the design cache prints them itself).
    """
    from fpga_ft.generate.intake import check_quantizers, conversion_model

    model, hls_config = conversion_model(model, hls_config)
    user = hls_config
    io_type = io_type or (user.io_type if user is not None else None) or "io_parallel"
    if io_type not in IO_TYPES:
        raise FpgaFtError(f"unknown io_type '{io_type}' (known: {', '.join(IO_TYPES)})")
    if reuse_factor is not None and int(reuse_factor) < 1:
        raise FpgaFtError(f"reuse factor must be >= 1, got {reuse_factor}")
    plan = plan or ProtectionPlan()
    check_quantizers(model)
    protectable = check_supported(model)
    unknown = [name for name in plan.layers if name not in protectable]
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    for name in unknown:
        if f"{name}_depthwise" in protectable:  # a separable convolution (intake/depthwise.py)
            raise FpgaFtError(f"plan names layer '{name}', a separable convolution converted as its two halves: "
                              f"name {name}_depthwise and/or {name}_pointwise (protectable layers: "
                              f"{', '.join(protectable)})")
        if kinds.get(name) in NOT_PROTECTABLE_YET:
            raise FpgaFtError(f"layer {name} ({kinds[name]}) is not protectable: its quantizer's scale spans the "
                              "whole kernel, so the intake kept it as hls4ml converts it (use alpha=1 to protect "
                              f"it; protectable layers: {', '.join(protectable)})")
    if unknown:
        raise FpgaFtError(f"plan names unknown layer '{unknown[0]}' (protectable layers: {', '.join(protectable)})")
    backend_name = resolve_backend(backend, board, user.backend if user is not None else None)
    if board is not None:
        part = part or board.part
        clock_period_ns = clock_period_ns or board.clock_period_ns
    if user is not None:
        part = part or user.part
        clock_period_ns = clock_period_ns or user.clock_period_ns
    part = part or "xcvu13p-flga2577-2-e"
    clock_period_ns = float(clock_period_ns or 5.0)

    import hls4ml

    import hls_templates

    hls_templates.register()
    _register_bit_exact_rules()
    if output_dir is None:
        import tempfile

        output_dir = tempfile.mkdtemp(prefix="fpgaft_prj_")
    with _quiet():
        config, notes = build_hls_config(model, protectable, plan, backend_name=backend_name, hls_config=user,
                                         reuse_factor=reuse_factor)
        kwargs = dict(hls_config=config, output_dir=str(output_dir), backend=backend_name, io_type=io_type,
                      part=part, clock_period=clock_period_ns, project_name=PROJECT_NAME)
        if backend_name == "VivadoAccelerator":
            if board is None:
                raise FpgaFtError("the VivadoAccelerator backend needs --board")
            kwargs["board"] = board.key  # hls4ml's supported_boards.json names (pynq-z2, zcu102, alveo-u250)
        bit_exact = True
        try:
            hls_model = hls4ml.converters.convert_from_keras_model(model, bit_exact=True, **kwargs)
        except FpgaFtError:
            raise
        except Exception as exc:  # hls4ml raises plain Exceptions for unsupported chains
            if "input layer chain" not in str(exc):
                raise FpgaFtError(f"hls4ml could not convert the model: {str(exc).splitlines()[0]}") from None
            # bit_exact needs a quantizer right after the input; fall back and say so
            bit_exact = False
            hls_model = hls4ml.converters.convert_from_keras_model(model, **kwargs)
    _align_resize_types(hls_model)
    if not bit_exact:
        notes.append(NOT_BIT_EXACT_WARNING)
    if warn:
        for line in notes:
            print(line, file=sys.stderr)
    layers = describe_layers(hls_model, model)
    plan.validate(layers)
    return ConvertedModel(hls_model=hls_model, keras_model=model, layers=layers, plan=plan,
                          backend=backend_name, io_type=io_type, part=part, clock_period_ns=clock_period_ns,
                          bit_exact=bit_exact, board=getattr(board, "key", None), output_dir=Path(output_dir),
                          extra={"warnings": notes, "input_quantization": _inserted_input_type(model, user),
                                 "unprotected_arithmetic": unprotected_arithmetic(hls_model)})


def _inserted_input_type(model, user) -> str | None:
    """The type raw inputs are quantized to before a model the intake gave an input
    quantizer (:func:`fpga_ft.generate.intake.prepare_model`); None for other models."""
    from fpga_ft.generate.intake import INPUT_QUANTIZER_NAME

    if user is None or INPUT_QUANTIZER_NAME not in [layer.name for layer in model.layers]:
        return None
    names = getattr(model, "input_names", None) or []
    return user.result_precision(names[0]) if names else None


def write_project(converted: ConvertedModel, x: np.ndarray | None = None,
                  golden: np.ndarray | None = None) -> Path:
    """Write the HLS project: hls4ml's files, fpga-ft's headers (copied by hls4ml as
    registered sources), the keep-replicas constraints, the csim bridge, the plan, and test
    vectors (``tb_data/``) when ``x`` is given (``golden``: expected outputs)."""
    with _quiet():
        converted.hls_model.write()
    out = Path(converted.output_dir)
    template = (HLS_TEMPLATES_DIR / "fpgaft_bridge.cpp.in").read_text()
    bridge = (template.replace("@PROJECT@", PROJECT_NAME)
              .replace("@N_IN@", str(converted.n_inputs)).replace("@N_OUT@", str(converted.n_outputs)))
    (out / "fpgaft_bridge.cpp").write_text(bridge)
    replicas = keep_replicas.write_constraints(out, converted)
    converted.plan.save(out / "fpgaft_plan.yml")
    meta = {
        "board": converted.board, "part": converted.part, "backend": converted.backend,
        "io_type": converted.io_type, "clock_period_ns": converted.clock_period_ns,
        "bit_exact_conversion": converted.bit_exact, "project_name": PROJECT_NAME,
        "conversion_warnings": list(converted.extra.get("warnings", [])),
        # raw inputs are quantized to this type first (None: the model quantizes its input)
        "input_quantization": converted.extra.get("input_quantization"),
        "n_inputs": converted.n_inputs, "n_outputs": converted.n_outputs,
        # the csim outputs are logits (no final softmax/sigmoid): classes by fpga_ft.core.classify
        "output_logits": outputs_are_logits(converted.keras_model),
        "protected_layers": converted.plan.protected_layers,
        # multiply-accumulate layers outside fpga-ft's protection and fault sites (docs/networks.md)
        "unprotected_arithmetic": list(converted.extra.get("unprotected_arithmetic", [])),
        "layers": [info.to_dict() for info in converted.layers],
        # minimum kept replica instances per layer and module stem (fpgaft_check_replicas.tcl)
        "replica_instances": replicas,
        "replica_instances_total": keep_replicas.totals(replicas),
    }
    (out / "fpgaft_design.json").write_text(json.dumps(meta, indent=2) + "\n")
    # exact quantized weights of each protectable layer (resource estimate, analyses)
    arrays = {}
    for info in converted.layers:
        arrays[f"{info.index}_weights"] = info.weights
        arrays[f"{info.index}_biases"] = info.biases
    np.savez(out / WEIGHTS_FILE, **arrays)
    if x is not None:
        write_test_vectors(out, x, golden)
    return out


def write_test_vectors(project_dir: Path, x: np.ndarray, golden: np.ndarray | None) -> None:
    """hls4ml's testbench format: one sample per line, space-separated values."""
    tb = Path(project_dir) / "tb_data"
    tb.mkdir(parents=True, exist_ok=True)
    flat = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    np.savetxt(tb / "tb_input_features.dat", flat, fmt="%.17g")
    if golden is not None:
        np.savetxt(tb / "tb_output_predictions.dat", np.asarray(golden, dtype=np.float64).reshape(len(x), -1),
                   fmt="%.17g")
