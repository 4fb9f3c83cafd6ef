"""Quantizer checks: what fpga-ft cannot simulate bit-exactly is refused
(:func:`check_quantizers`); power-of-two weights get the exact fixed-point type that holds
them (:func:`po2_weight_types`); :func:`quantized_bits_for` makes the QKeras quantizer of a type."""

from __future__ import annotations

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.fixedpoint import FixedSpec, _qkeras_bits


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


def po2_weight_types(model) -> dict:
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


def quantized_bits_for(spec: FixedSpec):
    """The QKeras ``quantized_bits`` quantizer whose values are exactly ``spec``'s range
    (``keep_negative`` for signed types; QKeras's ``integer`` excludes the sign bit),
    with ``alpha=1``. On data already quantized to ``spec`` it is the identity."""
    from qkeras import quantized_bits

    bits, integer = _qkeras_bits(spec)
    return quantized_bits(bits, integer, keep_negative=spec.signed, alpha=1)
