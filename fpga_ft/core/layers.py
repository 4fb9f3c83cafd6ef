"""What the toolkit knows about each protectable (Dense / Conv1D / Conv2D) layer.

:class:`LayerInfo` is read off the hls4ml graph after conversion (see
``fpga_ft.generate.convert.describe_layers``), so widths are the real ap_fixed widths of the
generated C++. Every other part of the toolkit (plan validation, fault-site counts,
resource estimates, the optimizer) works from this one description.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

PROTECTABLE_KINDS = ("Dense", "Conv1D", "Conv2D")


@dataclass(frozen=True)
class FixedType:
    """An ``ap_fixed<width, integer>`` / ``ap_ufixed`` / ``ap_int`` type: widths in bits."""

    width: int
    integer: int
    signed: bool = True

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    def to_dict(self) -> dict:
        return {"width": self.width, "integer": self.integer, "signed": self.signed}

    @classmethod
    def from_dict(cls, data: dict) -> "FixedType":
        return cls(int(data["width"]), int(data["integer"]), bool(data.get("signed", True)))


@dataclass
class LayerInfo:
    """One protectable layer of a converted model.

    Attributes:
        name: Keras layer name (the key used in protection plans).
        kind: ``Dense``, ``Conv1D`` or ``Conv2D``.
        index: hls4ml node index (``config<index>``, ``w<index>`` in the generated C++).
        n_in: fan-in of one dot product (inputs per neuron; ``n_chan * kernel`` for conv).
        n_out: neurons (Dense) or output channels (Conv).
        n_positions: dot-product evaluations per neuron per inference (1 for Dense, the
            number of output pixels for Conv).
        n_input_words: words of the layer's input tensor (activations stored before it).
        input_type, weight_type, bias_type, accum_type, result_type: the real C++ types.
            Products and partial sums are stored in ``accum_type`` (as hls4ml does).
        reuse_factor: hls4ml reuse factor (multipliers are shared this many times).
        strategy: hls4ml strategy (``latency`` / ``resource``).
        io_type: ``io_parallel`` or ``io_stream``.
        weights: quantized weights, shape ``(n_in, n_out)`` (exact values as floats).
        biases: quantized biases, shape ``(n_out,)``.
        depthwise_multiplier: 0 for an ordinary layer; ``m`` for a depthwise convolution the
            intake rewrote as a convolution with a block-diagonal kernel (``m`` output channels
            per input channel, :mod:`fpga_ft.generate.intake.depthwise`): its weight memory
            holds only the depthwise words, not the block-diagonal zeros.
    """

    name: str
    kind: str
    index: int
    n_in: int
    n_out: int
    n_positions: int
    n_input_words: int
    input_type: FixedType
    weight_type: FixedType
    bias_type: FixedType
    accum_type: FixedType
    result_type: FixedType
    reuse_factor: int = 1
    strategy: str = "latency"
    io_type: str = "io_parallel"
    weights: np.ndarray | None = field(default=None, repr=False, compare=False)
    biases: np.ndarray | None = field(default=None, repr=False, compare=False)
    depthwise_multiplier: int = 0

    @property
    def time_shared(self) -> bool:
        """The layer's multipliers are time-shared (a reuse factor above 1, with either
        strategy): fpga-ft builds it as ``ceil(n_in * n_out / reuse_factor)`` shared MAC units
        (see :class:`fpga_ft.core.structure.LayerStructure`). ``Strategy: Resource`` with reuse
        factor 1 shares nothing (one product per multiplier): built like Latency."""
        return int(self.reuse_factor) > 1

    @property
    def macs(self) -> int:
        """Multiply-accumulates per inference."""
        return self.n_in * self.n_out * self.n_positions

    @property
    def stored_weights_per_neuron(self) -> int:
        """Words of one neuron's weight column that exist in the weight memory: ``n_in``, or
        for a rewritten depthwise convolution its kernel taps (the column's block-diagonal
        words: ``n_in * m / n_out``)."""
        if self.depthwise_multiplier:
            return self.n_in * self.depthwise_multiplier // self.n_out
        return self.n_in

    @property
    def product_bits(self) -> int:
        """Width in bits of one stored product / partial-sum word (``accum_t``)."""
        return self.accum_type.width

    def to_dict(self, with_weights: bool = False) -> dict:
        data = {
            "name": self.name,
            "kind": self.kind,
            "index": self.index,
            "n_in": self.n_in,
            "n_out": self.n_out,
            "n_positions": self.n_positions,
            "n_input_words": self.n_input_words,
            "input_type": self.input_type.to_dict(),
            "weight_type": self.weight_type.to_dict(),
            "bias_type": self.bias_type.to_dict(),
            "accum_type": self.accum_type.to_dict(),
            "result_type": self.result_type.to_dict(),
            "reuse_factor": self.reuse_factor,
            "strategy": self.strategy,
            "io_type": self.io_type,
        }
        if self.depthwise_multiplier:
            data["depthwise_multiplier"] = self.depthwise_multiplier
        if with_weights and self.weights is not None:
            data["weights"] = np.asarray(self.weights).tolist()
            data["biases"] = np.asarray(self.biases).tolist()
        return data

    @classmethod
    def from_dict(cls, data: dict) -> "LayerInfo":
        kwargs = dict(data)
        for key in ("input_type", "weight_type", "bias_type", "accum_type", "result_type"):
            kwargs[key] = FixedType.from_dict(kwargs[key])
        if "weights" in kwargs:
            kwargs["weights"] = np.asarray(kwargs["weights"], dtype=float)
            kwargs["biases"] = np.asarray(kwargs["biases"], dtype=float)
        return cls(**kwargs)
