"""What is built, read from :mod:`fpga_ft.core.structure`: the protection a plan gives a
layer, the layer's (cached) :class:`~fpga_ft.core.structure.LayerStructure`, and each
neuron's adder tree read off it: its adds by number of voted (partial-sum) operands, its
depth in adds, and the columns (bits, about one LUT each) its plain adds span.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.structure import (
    Add,
    LayerStructure,
    NeuronStructure,
    Term,
    Unprotected,
    layer_structure,
)
from fpga_ft.measure.resources.products import _weight_ints

# ---------------------------------------------------------------------------------------
# What is built: read from fpga_ft.core.structure
# ---------------------------------------------------------------------------------------
#: layer_structure results by (weights, biases, types, protection): the optimizer asks for
#: the same layer under many plans, and building the terms of a big layer takes a while.
_STRUCTURES: "OrderedDict[tuple, LayerStructure]" = OrderedDict()
_STRUCTURES_MAX = 64


def _array_digest(a) -> str:
    if a is None:
        return "-"
    arr = np.ascontiguousarray(np.asarray(a, dtype=float))
    return hashlib.sha1(arr.tobytes() + str(arr.shape).encode()).hexdigest()


def _structure(info: LayerInfo, prot: LayerProtection) -> LayerStructure | None:
    """``layer_structure(info, prot)``, cached; ``None`` when the weights are unknown.

    Known weights without biases: the biases are taken as non-zero (one ``accum_t`` add
    each, as in a design whose biases are not given). Weights off the weight type's grid
    are rounded to it first (the same codes as :func:`_products`)."""
    if info.weights is None:
        return None
    key = (info.name, info.kind, info.n_in, info.n_out, info.n_positions, _array_digest(info.weights),
           _array_digest(info.biases), repr(info.input_type), repr(info.weight_type), repr(info.bias_type),
           repr(info.accum_type), int(prot.protected_msbs), tuple(sorted(int(j) for j in prot.critical_neurons)),
           tuple(sorted((k, tuple(v)) for k, v in prot.scheme_neurons.items() if v)),
           bool(info.time_shared), int(info.reuse_factor))
    got = _STRUCTURES.get(key)
    if got is not None:
        _STRUCTURES.move_to_end(key)
        return got
    changes = {}
    if info.biases is None:
        lsb = 2.0 ** -min(info.bias_type.fractional, info.accum_type.fractional)
        changes["biases"] = np.full(info.n_out, lsb)
    ints = _weight_ints(info)
    scale = 2.0 ** info.weight_type.fractional
    if not np.array_equal(ints / scale, np.asarray(info.weights, dtype=float).reshape(ints.shape)):
        # weights off the weight type's grid (not from a quantized model): the codes the
        # estimate uses everywhere, rounded as _weight_ints rounds them
        changes["weights"] = ints / scale
    src = dataclasses.replace(info, **changes) if changes else info
    got = layer_structure(src, prot)
    _STRUCTURES[key] = got
    if len(_STRUCTURES) > _STRUCTURES_MAX:
        _STRUCTURES.popitem(last=False)
    return got


@dataclass(frozen=True)
class _Tree:
    """The adds of a neuron's tree by number of partial-sum (voted) operands, its depth,
    and ``add_bits``: the bits (columns) the tree's plain adds span, summed over its adds
    (see :func:`_add_span`)."""

    adds_by_voted: tuple[int, int, int]
    depth: int
    add_bits: float = 0.0

    @property
    def n_adds(self) -> int:
        return sum(self.adds_by_voted)


@dataclass(frozen=True)
class _Operand:
    """What is known of an add operand, in ``accum_t`` LSB units: the integer range of its
    value and how many of its low bits are constant zero (``tz``)."""

    lo: int
    hi: int
    tz: int

    def width(self) -> int:
        """Significant bits: unsigned when the range is non-negative, else two's complement
        (the bits above are zero or sign extension)."""
        if self.lo >= 0:
            return max(1, int(self.hi).bit_length())
        return max(int(-self.lo - 1).bit_length(), int(self.hi).bit_length()) + 1


def _trailing_zeros(code: int) -> int:
    code = abs(int(code))
    return (code & -code).bit_length() - 1 if code else 0


def _wrapped(op: _Operand, w: int) -> _Operand:
    """``op`` as a W-bit word: a range that does not fit wraps, so every bit is live."""
    top = (1 << w) - 1 if op.lo >= 0 else (1 << (w - 1)) - 1
    if op.lo < -(1 << (w - 1)) or op.hi > top:
        return _Operand(-(1 << (w - 1)), (1 << (w - 1)) - 1, min(op.tz, w))
    return op


def _leaf(t: Term, x_lo: int, x_hi: int, shift: int, w: int) -> _Operand:
    """The operand a term feeds into the tree: the bias constant, or ``x * code`` aligned to
    ``accum_t`` (shifted left, or right with truncation as hls4ml's cast), for inputs
    ``x`` in ``[x_lo, x_hi]`` (input codes)."""
    c = int(t.code)
    if t.is_bias:
        return _wrapped(_Operand(c, c, _trailing_zeros(c)), w)
    a, b = x_lo * c, x_hi * c
    lo, hi = min(a, b), max(a, b)
    if shift >= 0:
        lo, hi = lo << shift, hi << shift
    else:
        lo, hi = lo >> -shift, hi >> -shift
    return _wrapped(_Operand(lo, hi, max(0, _trailing_zeros(c) + shift)), w)


def _add_span(a: _Operand, b: _Operand, w: int) -> tuple[int, _Operand]:
    """(columns, sum) of one plain W-bit add ``a + b`` of a neuron's tree: the columns its
    carry chain keeps, each about one LUT (``_Costs.adders``).

    Columns run from the lowest bit either operand may set (below it both are constant 0)
    up to one above the wider operand's significant bits when both operands are
    non-negative (the rest is constant 0), else up to W: in whole adder trees Yosys does
    not trim sign-extension columns. Chosen against Yosys 0.23 ``synth_xilinx`` of twins
    (flattened, W = 17): trees of 16 and 64 products of 2-bit unsigned or 8-bit signed
    inputs by codes +-1, +-4, alternating signs and generic constants, estimate / Yosys
    0.71-1.46 except alternating +-1 on 2-bit inputs (2.06 at 64 products: sums near zero,
    which Yosys trims further); a 784-product po2 neuron of ``qkeras_mnist_dense``
    (q_dense_2 neuron 0) 1.17, its codes all made positive 1.32, all negative 0.89. The
    full-width rule before (every add W columns) gave 1.58 on that neuron and 3.5 on the
    positive one; trimming sign extension as single adds allow measured 0.35-0.45."""
    top_a = a.width() + 1 if a.lo >= 0 else w
    top_b = b.width() + 1 if b.lo >= 0 else w
    bits = max(0, min(w, max(top_a, top_b)) - min(a.tz, b.tz))
    return bits, _wrapped(_Operand(a.lo + b.lo, a.hi + b.hi, min(a.tz, b.tz)), w)


def _code_range(width: int, signed: bool) -> tuple[int, int]:
    """Integer range of the codes of a ``width``-bit fixed-point type."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


def _input_range(info: LayerInfo) -> tuple[int, int]:
    """Integer range of the layer's input codes (``input_t``)."""
    return _code_range(info.input_type.width, bool(info.input_type.signed))


def _read_tree(ns: NeuronStructure, x_range: tuple[int, int] | None = None, shift: int = 0) -> _Tree:
    """Count the adds of ``ns.tree`` by how many of their operands are partial sums, its
    depth in adds, and the bits its plain adds span for inputs in ``x_range`` (input codes;
    ``None``: every add full width), products aligned by ``shift`` bits."""
    counts = [0, 0, 0]
    w = ns.scheme.width
    bits = 0

    def walk(node) -> tuple[int, _Operand | None]:
        nonlocal bits
        if not isinstance(node, Add):
            return 0, (_leaf(node, x_range[0], x_range[1], shift, w) if x_range is not None else None)
        dl, left = walk(node.left)
        dr, right = walk(node.right)
        counts[isinstance(node.left, Add) + isinstance(node.right, Add)] += 1
        if left is None or right is None:
            bits += w
            return 1 + max(dl, dr), None
        b, total = _add_span(left, right, w)
        bits += b
        return 1 + max(dl, dr), total
    depth = walk(ns.tree)[0] if ns.tree is not None else 0
    return _Tree(tuple(counts), depth, float(bits))


@functools.lru_cache(maxsize=4096)
def _tree_of_size(n_terms: int, width: int, x_range: tuple[int, int], code: int, shift: int) -> _Tree:
    """:func:`_read_tree` of a neuron of ``n_terms`` terms whose weights are unknown: every
    product ``x * code`` (the caller passes the weight type's largest magnitude: the widest
    operands). The structure's balanced tree depends only on the number of terms, so the
    reading is cached by it; it is still the structure's own tree."""
    terms = tuple(Term(i, code) for i in range(max(0, int(n_terms))))
    return _read_tree(NeuronStructure("", 0, Unprotected(width), terms), x_range, shift)


def _protection_of_layer(prot: LayerProtection, info: LayerInfo) -> LayerProtection:
    k = int(prot.protected_msbs)
    if k < 0:
        raise FpgaFtError(f"plan layer '{info.name}': protected_msbs must be >= 0, got {k}")
    k = min(k, info.accum_type.width)
    crit = sorted({int(j) for j in prot.critical_neurons})
    others = {key: sorted({int(j) for j in v}) for key, v in prot.scheme_neurons.items() if v}
    for key, listed in (("critical", crit), *others.items()):
        bad = [j for j in listed if not 0 <= j < info.n_out]
        if bad:
            raise FpgaFtError(f"plan layer '{info.name}': {key} index {bad[0]} out of range "
                              f"0..{info.n_out - 1}")
    return LayerProtection(protected_msbs=k, critical_neurons=crit, scheme_neurons=others)


def _protection_of(plan: ProtectionPlan | None, info: LayerInfo) -> LayerProtection:
    if plan is None:
        return LayerProtection()
    return _protection_of_layer(plan.for_layer(info.name), info)
