"""The model's graph as the intake sees it (its input, its final activation) and the edited
copy: an input quantizer inserted, the final table head removed, power-of-two weight
quantizers replaced."""

from __future__ import annotations

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.fixedpoint import FixedSpec, _qkeras_bits
from fpga_ft.generate.intake.quantizers import quantized_bits_for
from fpga_ft.generate.modelio import _quiet_tensorflow, custom_objects, layer_activation, output_layer

#: final activations hls4ml computes with lookup tables (not bit-exact); all monotone, so
#: argmax before them is argmax after them (and, for one output, > 0 before a sigmoid is
#: > 0.5 after it)
TABLE_HEADS = ("softmax", "sigmoid", "tanh")
INPUT_QUANTIZER_NAME = "fpgaft_input_quantizer"


def input_layer_name(model) -> str:
    names = getattr(model, "input_names", None) or [model.inputs[0].name.split(":")[0]]
    return names[0]


def input_consumers(model, input_name: str) -> list:
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


def is_input_quantizer(layer) -> bool:
    if type(layer).__name__ != "QActivation":
        return False
    quantizer = getattr(layer, "quantizer", None) or getattr(layer, "activation", None)
    return type(quantizer).__name__ == "quantized_bits"


def find_head(model) -> dict | None:
    """The model's final table-based activation (softmax, sigmoid, tanh), if any."""
    if len(model.outputs) != 1:
        return None
    last = output_layer(model)
    act = layer_activation(last)
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


def model_from_config(config: dict, name: str, purpose: str):
    """The model an edited functional ``config`` describes (fresh layers, weights not set);
    a one-line :class:`FpgaFtError` naming ``purpose`` when Keras cannot build it."""
    tf = _quiet_tensorflow()
    try:
        return tf.keras.Model.from_config(config, custom_objects=custom_objects())
    except Exception as exc:  # noqa: BLE001
        raise FpgaFtError(f"cannot copy model {name} to {purpose}: "
                          f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


def edit_model(model, quantizer_spec: FixedSpec | None, head: dict | None, po2: dict | None = None):
    """A copy of ``model`` (fresh layers, same weights) with a QActivation after the input,
    without its final activation, and/or with power-of-two weight quantizers replaced by the
    ``quantized_bits`` of an exact fixed-point type (``po2``: see :func:`po2_weight_types`;
    the copy's weights are the quantized values, so its outputs are the original's)."""
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
    copy = model_from_config(config, model.name, "insert an input quantizer / remove its head")
    for layer in copy.layers:
        if layer.name == INPUT_QUANTIZER_NAME or not layer.weights:
            continue
        layer.set_weights(model.get_layer(layer.name).get_weights())
        for key, (values, _) in (po2 or {}).get(layer.name, {}).items():
            variable = layer.kernel if key == "kernel_quantizer" else layer.bias
            variable.assign(values.astype(np.float32))
    return copy
