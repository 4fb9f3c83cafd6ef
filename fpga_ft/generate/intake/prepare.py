"""The model fpga-ft converts: :class:`PreparedModel`, :func:`prepare_model`, :func:`open_model`."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field

import numpy as np

from fpga_ft.core.fixedpoint import FixedSpec, parse_type, quantize_float32, quantized_bits_repr
from fpga_ft.generate.intake.config import HLS_DEFAULT_PRECISION, UserHlsConfig
from fpga_ft.generate.intake.depthwise import (
    kept_layers,
    kept_note,
    rewrite_depthwise,
    rewrite_hls_config,
    rewrite_note,
    rewritten_layers,
)
from fpga_ft.generate.intake.edit import edit_model, find_head, input_consumers, input_layer_name, is_input_quantizer
from fpga_ft.generate.intake.fold import FoldedLayer, fold_batchnorm
from fpga_ft.generate.intake.quantizers import check_quantizers, po2_weight_types
from fpga_ft.generate.intake.source import ModelSource, load_keras_model, resolve_source


@dataclass
class PreparedModel:
    """The model fpga-ft converts and compares with, and how it was derived.

    Attributes:
        model: the Keras model to convert and to compute the reference with (the user's
            model, or an edited copy).
        original: the model as loaded.
        folded: the layers whose batch normalization was folded into them
            (:mod:`fpga_ft.generate.intake.fold`); ``model`` has the plain layers.
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
        rewritten_layers: each depthwise / separable convolution of ``original`` and the
            convolutions ``model`` has in its place (:mod:`.depthwise`).
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
    folded: list[FoldedLayer] = field(default_factory=list)
    rewritten_layers: dict = field(default_factory=dict)

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
            "folded_batchnorm": [{"layer": f.name, "from": f.original_class, "to": f.plain_class}
                                 for f in self.folded] or None,
            "rewritten_layers": dict(self.rewritten_layers) or None,
        }


def _choose_input_type(model, config: UserHlsConfig | None, input_precision: str | None):
    """(FixedSpec, origin text) of the input words of a model without an input quantizer."""
    input_name = input_layer_name(model)
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

    original = model
    model, folded = fold_batchnorm(model)  # QConv2DBatchnorm etc. -> QConv2D etc., bit for bit
    check_quantizers(model, allow_po2_weights=True)
    unrewritten, rewritten = model, rewritten_layers(model)
    model = rewrite_depthwise(model)  # depthwise / separable -> convolutions (intake/depthwise.py)
    hls_config = rewrite_hls_config(hls_config, rewritten)
    check_supported(model)
    notes: list[str] = [layer.note() for layer in folded]
    if rewritten:
        notes.append(rewrite_note(rewritten, unrewritten))
    kept = kept_layers(unrewritten)
    if kept:
        notes.append(kept_note(kept, unrewritten))
    po2 = po2_weight_types(model)
    for name, keys in po2.items():
        types = ", ".join(f"{key.split('_')[0]} {spec.c_type()}" for key, (_, spec) in keys.items())
        notes.append(f"note: layer '{name}' has power-of-two (quantized_po2) weights: converted with the exact "
                     f"fixed-point type that holds all of them ({types}; a copy of the model with quantized_bits of "
                     "that type and the same values), not hls4ml's exponent type (its shift units); with "
                     "ReuseFactor 1 synthesis sees constant powers of two, i.e. shifts")
    input_name = input_layer_name(model)
    consumers = input_consumers(model, input_name)
    quantized = len(consumers) == 1 and is_input_quantizer(consumers[0])
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
    head = find_head(model)
    if head is not None:
        notes.append(f"note: the final {head['activation']} ('{head['layer']}') is computed by hls4ml with lookup "
                     f"tables (not bit-exact): csim and QKeras are compared on its input (layer "
                     f"'{head['compared_layer']}'), classes by argmax (one output: > 0)")
    config = hls_config
    if spec is not None:
        config = (config or UserHlsConfig()).with_layer(input_name, {"Precision": {"result": spec.c_type()}})
    edited = model
    full = None
    if spec is not None or head is not None or po2:
        edited = edit_model(model, spec, head, po2)
        if head is not None:
            full = edit_model(model, spec, None, po2) if (spec is not None or po2) else model
    full_config = config
    if head is not None and config is not None:
        # the head's own entry (or, for Dense(..., activation='softmax'), the entry of the
        # activation layer hls4ml splits off it) names a layer the copy no longer has
        config = config.without_layers([f"{head['layer']}_{head['activation']}"] if head["embedded"]
                                       else [head["layer"]])
    return PreparedModel(model=edited, original=original, source=source,
                         po2_weights={name: {key: spec.c_type() for key, (_, spec) in keys.items()}
                                      for name, keys in po2.items()},
                         hls_config=config, input_type=spec,
                         input_origin=origin, inserted_quantizer=inserted, head=head, full_model=full,
                         full_hls_config=full_config, notes=notes, folded=folded,
                         rewritten_layers=rewritten)


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


def conversion_model(model, hls_config: UserHlsConfig | None = None) -> tuple[object, UserHlsConfig | None]:
    """(Keras model, hls4ml config) a conversion takes from ``model``: a path is opened
    (:func:`open_model`), a :class:`PreparedModel` gives its model and config (``hls_config``
    given here wins), a Keras model gets the batch-normalization fold (:mod:`.fold`) and the
    depthwise rewrite (:mod:`.depthwise`; its config translated), as :func:`prepare_model` does."""
    if isinstance(model, (str, os.PathLike)):
        model = open_model(model)
    if isinstance(model, PreparedModel):
        return model.model, hls_config if hls_config is not None else model.hls_config
    model, _ = fold_batchnorm(model)
    rewritten = rewritten_layers(model)
    if not rewritten:
        return model, hls_config
    return rewrite_depthwise(model), rewrite_hls_config(hls_config, rewritten)
