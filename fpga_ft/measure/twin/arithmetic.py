"""Arithmetic of a twin's dot products and its Python reference (widths in bits).

:class:`Arithmetic`: one layer's input width ``Wa`` and signedness, product shift
``Fa + Fw - Facc`` and accumulator width ``W``; :class:`SharedArithmetic`: a time-shared
layer's, with the weight operand's width ``Ww``. :func:`reference_output` is the neuron's
output word (the sum of the wrapped products and the bias modulo ``2^W``);
:func:`random_inputs` draws raw input vectors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpga_ft.core.structure import NeuronStructure


# ---------------------------------------------------------------------------------------
# Arithmetic and its Python reference
# ---------------------------------------------------------------------------------------
def _int_range(width: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest raw integer of a ``width``-bit word."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


@dataclass(frozen=True)
class Arithmetic:
    """Fixed-point arithmetic of one layer's dot products (all widths in bits).

    Attributes:
        in_width: ``Wa``, width of the raw input integer.
        in_signed: input type signed (``ap_fixed``) or unsigned (``ap_ufixed``).
        shift: ``Fa + Fw - Facc`` (fractional bits of input + weight - accumulator); > 0
            truncates the product (arithmetic shift right), < 0 shifts it left.
        width: ``W``, the ``accum_t`` width: every product and partial sum wraps to it.
    """

    in_width: int
    in_signed: bool
    shift: int
    width: int

    @classmethod
    def of_layer(cls, info) -> "Arithmetic":
        """The arithmetic of a :class:`~fpga_ft.core.layers.LayerInfo`."""
        return cls(int(info.input_type.width), bool(info.input_type.signed),
                   int(info.input_type.fractional + info.weight_type.fractional - info.accum_type.fractional),
                   int(info.accum_type.width))

    @property
    def input_range(self) -> tuple[int, int]:
        """Smallest and largest raw input integer."""
        return _int_range(self.in_width, self.in_signed)

    def rescale(self, exact):
        """Exact product(s) -> accumulator units (not yet wrapped); Python ints or object arrays."""
        return exact >> self.shift if self.shift >= 0 else exact << -self.shift


def reference_output(structure: NeuronStructure, arith: Arithmetic, x) -> np.ndarray:
    """The neuron's output word for raw inputs ``x`` (shape ``(vectors, n_in)``), as W-bit
    patterns ``0 .. 2^W-1`` (object array of Python ints): the sum modulo ``2^W`` of the
    wrapped products and the bias, independent of the adder tree."""
    x = np.asarray(x, dtype=object).reshape(len(x), -1)
    acc = np.zeros(len(x), dtype=object)
    for t in structure.terms:
        acc = acc + (t.code if t.is_bias else arith.rescale(x[:, t.input] * t.code))
    return acc % (1 << arith.width)


def to_signed(pattern: int, width: int) -> int:
    """A ``width``-bit two's complement pattern as a signed integer."""
    pattern = int(pattern) & ((1 << width) - 1)
    return pattern - (1 << width) if pattern >> (width - 1) else pattern


def random_inputs(arith: Arithmetic, n_in: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` raw input vectors (int64, shape ``(count, n_in)``): all-minimum, all-maximum,
    zero and alternating extremes first, then uniform random codes."""
    lo, hi = arith.input_range
    rng = np.random.default_rng(seed)
    fixed = [np.full(n_in, lo), np.full(n_in, hi), np.zeros(n_in, dtype=np.int64),
             np.where(np.arange(n_in) % 2 == 0, lo, hi)]
    rows = fixed[:count] + [rng.integers(lo, hi + 1, size=n_in) for _ in range(max(0, count - len(fixed)))]
    return np.asarray(rows, dtype=np.int64).reshape(count, n_in)


@dataclass(frozen=True)
class SharedArithmetic(Arithmetic):
    """:class:`Arithmetic` of a time-shared layer, whose weight is an operand of a generic
    multiplier: ``w_width`` (``Ww``, bits) and ``w_signed`` of ``weight_t``. The ROM holds
    the raw weight codes; the product is ``x * w`` rescaled and wrapped exactly as a
    constant product (:func:`_rescaled`)."""

    w_width: int
    w_signed: bool

    @classmethod
    def of_layer(cls, info) -> "SharedArithmetic":
        a = Arithmetic.of_layer(info)
        return cls(a.in_width, a.in_signed, a.shift, a.width, int(info.weight_type.width),
                   bool(info.weight_type.signed))

    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest raw weight integer."""
        return _int_range(self.w_width, self.w_signed)
