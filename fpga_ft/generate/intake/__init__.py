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
are compared on the tensor before the head, which is then logits: classes follow from them
by the one rule of :mod:`fpga_ft.core.classify` (argmax, which a softmax does not change;
for one output ``> 0``, which is a sigmoid's ``> 0.5``).

Folded batch normalization: QKeras's ``QConv2DBatchnorm``, ``QDepthwiseConv2DBatchnorm`` and
``QDenseBatchnorm`` (which hls4ml 1.3 does not convert bit-exactly) become, in the copy, the
plain ``QConv2D`` / ``QDepthwiseConv2D`` / ``QDense`` with the folded kernel and bias and the same
quantizers: the same outputs bit for bit (:mod:`.fold`, docs/networks.md).

The package, one module per section:

* :mod:`.config`: :class:`UserHlsConfig`, :func:`read_hls_config`, :func:`parse_hls_config`;
* :mod:`.source`: :class:`ModelSource`, :func:`resolve_source`, :func:`load_keras_model`;
* :mod:`.quantizers`: :func:`check_quantizers`, power-of-two weight types, :func:`quantized_bits_for`;
* :mod:`.edit`: the model's input and final table head (``find_head``), the edited copy;
* :mod:`.fold`: batch normalization folded into the layer before it (``QConv2DBatchnorm``,
  ``QDepthwiseConv2DBatchnorm``, ``QDenseBatchnorm`` -> the plain layers, bit for bit);
* :mod:`.qdense_batchnorm`: reading ``QDenseBatchnorm`` (QKeras after 0.9.0) with QKeras 0.9.0;
* :mod:`.depthwise`: depthwise / separable convolutions rewritten as ordinary convolutions
  (block-diagonal kernels), so that they have fault sites, protection and an estimate;
* :mod:`.prepare`: :class:`PreparedModel`, :func:`prepare_model`, :func:`open_model`,
  :func:`conversion_model`.
"""

from __future__ import annotations

from fpga_ft.generate.intake.config import HLS_DEFAULT_PRECISION, UserHlsConfig, parse_hls_config, read_hls_config
from fpga_ft.generate.intake.edit import INPUT_QUANTIZER_NAME, TABLE_HEADS
from fpga_ft.generate.intake.prepare import PreparedModel, conversion_model, open_model, prepare_model
from fpga_ft.generate.intake.quantizers import check_quantizers, quantized_bits_for
from fpga_ft.generate.intake.source import ModelSource, load_keras_model, resolve_source

__all__ = ["ModelSource", "UserHlsConfig", "PreparedModel", "resolve_source", "read_hls_config",
           "parse_hls_config", "load_keras_model", "prepare_model", "open_model", "conversion_model", "check_quantizers",
           "quantized_bits_for", "HLS_DEFAULT_PRECISION", "INPUT_QUANTIZER_NAME", "TABLE_HEADS"]
