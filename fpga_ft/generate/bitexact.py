"""Comparing C-simulation outputs with the QKeras model: the bit-exactness contract.

The reference is the QKeras model fpga-ft converted (:class:`fpga_ft.generate.intake.PreparedModel`):
when the user's model ends with a lookup-table softmax / sigmoid / tanh, that is the model
without it, so ``bit_exact_fraction`` compares the tensor before the head (the comparison
says which: ``compared_tensor``) and :func:`head_class_changes` reports separately how
often hls4ml's table head changes the class.

The contract holds only for models whose arithmetic is fixed-point by construction:
:func:`float_weight_layers` lists the layers that break it (float weights, biases or
parameters, which hls4ml rounds to some precision while QKeras computes with the floats),
and :func:`check_exact` refuses such a model unless the user allows inexact results."""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
import time

import numpy as np

from fpga_ft.core.cache import cache_root, file_lock, model_fingerprint
from fpga_ft.core.classify import OutputHead
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.generate.modelio import outputs_are_logits

#: Keras layers whose weights are always float (hls4ml rounds them; QKeras does not)
_FLOAT_LAYERS = {"Dense": "weights", "Conv1D": "weights", "Conv2D": "weights", "DepthwiseConv1D": "weights",
                 "DepthwiseConv2D": "weights", "SeparableConv1D": "weights", "SeparableConv2D": "weights",
                 "Conv2DTranspose": "weights", "BatchNormalization": "parameters", "PReLU": "weights (alpha)"}
#: QKeras layers with quantizer arguments: (weight quantizer, bias quantizer or None)
_QUANTIZED_LAYERS = {"QDense": ("kernel_quantizer", "bias_quantizer"),
                     "QConv1D": ("kernel_quantizer", "bias_quantizer"),
                     "QConv2D": ("kernel_quantizer", "bias_quantizer"),
                     "QDenseBatchnorm": ("kernel_quantizer", "bias_quantizer"),
                     "QConv2DBatchnorm": ("kernel_quantizer", "bias_quantizer"),
                     "QDepthwiseConv2D": ("depthwise_quantizer", "bias_quantizer"),
                     "QSeparableConv2D": ("depthwise_quantizer", "bias_quantizer"),
                     "QSeparableConv1D": ("depthwise_quantizer", "bias_quantizer")}
#: QKeras layers with a second weight quantizer
_SECOND_WEIGHT_QUANTIZER = {"QSeparableConv2D": "pointwise_quantizer", "QSeparableConv1D": "pointwise_quantizer"}
_BATCHNORM_QUANTIZERS = ("gamma_quantizer", "beta_quantizer", "mean_quantizer", "variance_quantizer")
ALLOW_INEXACT_OPTION = "--allow-inexact"


def float_weight_layers(model) -> list[dict]:
    """The layers of a Keras model that are not bit-exact by construction: ``{"layer",
    "class", "what"}`` for each layer with float weights, biases or parameters (a Keras
    Dense/Conv/BatchNormalization/PReLU, a QKeras layer without its weight or bias
    quantizer, any QBatchNormalization). Empty for a fully quantized model."""
    found = []
    for layer in model.layers:
        cls = type(layer).__name__
        if not layer.weights:
            continue
        what = None
        if cls in _FLOAT_LAYERS:
            what = f"float {_FLOAT_LAYERS[cls]} (Keras {cls}: no quantizer)"
        elif cls in _QUANTIZED_LAYERS:
            try:
                config = layer.get_config()
            except Exception:  # noqa: BLE001 - a layer without a config: judge by attributes
                config = {}
            weight_key, bias_key = _QUANTIZED_LAYERS[cls]
            second = _SECOND_WEIGHT_QUANTIZER.get(cls)
            if not (config.get(weight_key) or getattr(layer, f"{weight_key}_internal", None)):
                what = f"float weights (no {weight_key})"
            elif second and not config.get(second):
                what = f"float weights (no {second})"
            elif (bias_key and config.get("use_bias", True) and getattr(layer, "bias", None) is not None
                  and not (config.get(bias_key) or getattr(layer, f"{bias_key}_internal", None))):
                what = f"float biases (no {bias_key})"
        elif cls == "QBatchNormalization":
            try:
                config = layer.get_config()
            except Exception:  # noqa: BLE001
                config = {}
            missing = [key for key in _BATCHNORM_QUANTIZERS if not config.get(key)]
            # even fully quantized it is not exact: hls4ml 1.3 computes its scale from the
            # unquantized gamma and variance, QKeras divides by sqrt(variance) in float32
            # (measured 0 % bit-exact, docs/networks.md "Batch normalization")
            what = (f"float parameters (no {', '.join(missing)})" if missing else
                    "a batch normalization hls4ml 1.3 computes from its unquantized gamma and variance "
                    "(QKeras from the quantized ones, in float32)")
        if what is not None:
            found.append({"layer": layer.name, "class": cls, "what": what})
    return found


def _describe(entry: dict) -> str:
    return f"layer '{entry['layer']}' ({entry['class']}) has {entry['what']}"


def check_exact(model, allow_inexact: bool, label: str = "model", stream=None) -> list[dict]:
    """Refuse a model that is not bit-exact by construction (see :func:`float_weight_layers`)
    with one line naming the first such layer, unless ``allow_inexact``: then print one
    warning line (stderr) and return the layers (the caller marks its results inexact)."""
    found = float_weight_layers(model)
    if not found:
        return []
    first = _describe(found[0])
    more = ""
    if len(found) > 1:
        more = " (also " + ", ".join(f"'{e['layer']}'" for e in found[1:5]) + (", ..." if len(found) > 5 else "") + ")"
    if not allow_inexact:
        raise FpgaFtError(f"{label} is not bit-exact by construction: {first}{more}: quantize it with QKeras "
                          f"quantized_bits or pass {ALLOW_INEXACT_OPTION}")
    print(f"warning: {ALLOW_INEXACT_OPTION}: results are NOT bit-exact: {first}{more}, which hls4ml rounds to a "
          "fixed-point type while QKeras computes with the floats", file=stream or sys.stderr)
    return found


def compare_outputs(csim: np.ndarray, reference: np.ndarray, labels: np.ndarray | None = None,
                    compared_tensor: str | None = None, head: OutputHead | None = None) -> dict:
    """Share of samples whose csim output equals the reference exactly (every value),
    the largest absolute difference, and both top-1 accuracies when labels are given.

    ``compared_tensor`` names what the outputs are (e.g. ``"pre-softmax (layer dense_3)"``,
    :attr:`fpga_ft.generate.intake.PreparedModel.compared_tensor`) and is passed through.
    Classes follow from the outputs by ``head`` (default: logits, see :mod:`fpga_ft.core.classify`)."""
    reference = np.asarray(reference)
    csim = np.asarray(csim, dtype=reference.dtype).reshape(reference.shape)
    n = len(reference)
    same = np.all(csim.reshape(n, -1) == reference.reshape(n, -1), axis=1)
    result = {
        "bit_exact_fraction": float(np.mean(same)),
        "max_abs_difference": float(np.max(np.abs(csim.astype(float) - reference.astype(float)))) if n else 0.0,
        "csim_accuracy": None,
        "reference_accuracy": None,
    }
    if compared_tensor is not None:
        result["compared_tensor"] = compared_tensor
    if labels is not None:
        head = head or OutputHead(int(np.prod(reference.shape[1:], dtype=np.int64)))
        result["csim_accuracy"] = float(np.mean(head.classify(csim) == labels))
        result["reference_accuracy"] = float(np.mean(head.classify(reference) == labels))
    return result


def head_class_changes(prepared, x: np.ndarray, pre_head: np.ndarray, labels: np.ndarray | None = None, *,
                       board=None, backend: str | None = None, io_type: str | None = None,
                       reuse_factor: int | None = None, use_cache: bool = True) -> dict | None:
    """How often hls4ml's lookup-table head (softmax, sigmoid, tanh) changes the class.

    The full model (``prepared.full_model``: with its head) is converted like the design
    and run once through hls4ml's own ``compile()`` / ``predict()`` (the synthesis C++,
    lookup tables included); its classes are compared with those of ``pre_head`` (the
    bit-exact logits before the head, e.g. the csim's), both by :mod:`fpga_ft.core.classify`. ``x``: the model's input words
    (already quantized). Returns None when the model has no such head. The result is
    cached by model, config, conversion settings and data.
    """
    if prepared.head is None or prepared.full_model is None:
        return None
    from fpga_ft.generate.convert import HLS_CONFIG_MERGE_VERSION, convert_model

    x = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    n = len(x)
    config = prepared.full_hls_config
    key_data = {"model": model_fingerprint(prepared.full_model), "config": None if config is None else config.key(),
                "board": getattr(board, "key", None), "backend": backend, "io_type": io_type,
                "reuse": reuse_factor, "x": hashlib.sha256(x.tobytes()).hexdigest(), "shape": list(x.shape),
                "version": 1, "merge": HLS_CONFIG_MERGE_VERSION}
    key = hashlib.sha256(json.dumps(key_data, sort_keys=True).encode()).hexdigest()[:20]
    path = cache_root() / "heads" / f"{key}.npy"
    start = time.perf_counter()
    cached = False
    with file_lock(cache_root() / "locks" / f"head_{key}.lock"):
        if use_cache and path.is_file():
            table_out = np.load(path)
            cached = True
        else:
            with tempfile.TemporaryDirectory(prefix="fpgaft_head_") as tmp:
                converted = convert_model(prepared.full_model, None, board=board, backend=backend, io_type=io_type,
                                          reuse_factor=reuse_factor, hls_config=config, output_dir=tmp, warn=False)
                import contextlib
                import io

                with contextlib.redirect_stdout(io.StringIO()):
                    converted.hls_model.compile()
                    table_out = np.asarray(converted.hls_model.predict(x), dtype=np.float64).reshape(n, -1)
            if use_cache:
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, table_out)
    n_outputs = table_out.shape[1]
    table_class = OutputHead(n_outputs, outputs_are_logits(prepared.full_model)).classify(table_out)
    pre_class = OutputHead(n_outputs, logits=True).classify(np.asarray(pre_head))
    changes = int(np.count_nonzero(table_class != pre_class))
    result = {
        "layer": prepared.head["layer"],
        "activation": prepared.head["activation"],
        "method": f"hls4ml compile()/predict() of the full model (with its lookup-table {prepared.head['activation']}),"
                  " argmax compared with the argmax of the bit-exact pre-head outputs",
        "samples": n,
        "class_changes": changes,
        "class_change_fraction": changes / n if n else 0.0,
        "accuracy_with_table_head": None if labels is None else float(np.mean(table_class == labels)),
        "cached": cached,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return result
