"""Per-layer product statistics: per neuron its non-zero products, those bound to DSP48
slices (and the slices), and the Yosys LUTs of the fabric ones, from the quantized weight
codes or, without weights, every value of the weight type taken as equally likely; and
which top bits of a product word are constant 0 (what replicas 1 and 2 of a BitTMR product
cost). Widths in bits, LUTs at Yosys scale.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.measure.resources.costs import (
    DSP_MIN_CSD_DIGITS,
    DSP_MIN_INPUT_BITS,
    _bitlen_array,
    _costs,
    _csd_array,
    _dsp_per_product,
    _uniform_weight_stats,
)

# ---------------------------------------------------------------------------------------
# Per-layer product statistics
# ---------------------------------------------------------------------------------------
#: "never": a product's top bits are not constant (see :func:`_top_zero_from`)
_NEVER = 1 << 30


def _product_shift(info: LayerInfo) -> int:
    """Bits the product ``x * w`` is shifted left to align with ``accum_t`` (negative: right,
    truncating), as hls4ml's product cast to accum_t does."""
    return info.accum_type.fractional - (info.input_type.fractional + info.weight_type.fractional)


def _top_zero_from(codes: np.ndarray, wa: int, input_signed: bool, shift: int) -> np.ndarray:
    """Per weight code, the lowest bit of the W-bit product word from which every bit is
    constant 0, or ``_NEVER``. Only an unsigned input (a ReLU output) times a positive
    constant has such bits: the product is below ``2^(Wa + bitlen(c))``. Replicas 1 and 2
    of a product whose top k bits are all constant are wires (Yosys measured 0 LUT);
    every other top-k cone is the whole multiplier (measured, sign-extension bits too)."""
    codes = np.asarray(codes, dtype=np.int64)
    out = np.full(codes.shape, _NEVER, dtype=np.int64)
    if not input_signed:
        pos = codes > 0
        out[pos] = wa + _bitlen_array(codes[pos]) + int(shift)
    return out


@dataclass
class _Products:
    """Costs of one copy of each neuron's products (per-neuron floats when the weights are
    unknown), and what replicas 1 and 2 of them cost under BitTMR."""

    nonzero: np.ndarray       # non-zero products per neuron
    dsp_products: np.ndarray  # products bound to DSP per neuron
    dsp_slices: np.ndarray    # DSP48 slices of those products per neuron
    fabric_lut: np.ndarray    # Yosys LUTs of the fabric products per neuron
    max_digits: int           # CSD digits of the most complex fabric product
    n_zeros: int              # zero weights (for hls4ml's multiplier_limit)
    known_weights: bool
    # per weight (n_in x n_out; None when unknown): fabric LUTs, DSP slices, top-zero bit
    lut_w: np.ndarray | None = None
    slices_w: np.ndarray | None = None
    top_zero_w: np.ndarray | None = None

    def replica(self, w: int, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(fabric LUTs, DSP slices) per neuron of ONE top-k product replica (1 or 2):
        every product whose top k bits are not constant (see :func:`_top_zero_from`)."""
        if self.lut_w is None:
            return self.fabric_lut, self.dsp_slices
        live = self.top_zero_w > (w - k)
        return ((self.lut_w * live).sum(axis=0).astype(float),
                (self.slices_w * live).sum(axis=0).astype(float))


def _weight_ints(info: LayerInfo) -> np.ndarray | None:
    if info.weights is None:
        return None
    w = np.asarray(info.weights, dtype=float)
    if w.size != info.n_in * info.n_out:
        raise FpgaFtError(f"layer '{info.name}': weights have {w.size} values, expected "
                          f"n_in*n_out = {info.n_in * info.n_out}")
    w = w.reshape(info.n_in, info.n_out)
    scale = 2.0 ** info.weight_type.fractional
    return np.rint(w * scale).astype(np.int64)


def _products(info: LayerInfo) -> _Products:
    """Cost of one copy of each neuron's products, from its weight codes (the same codes
    as the structure's product terms: a zero code is no term) or, without weights, from
    every value of the weight type taken as equally likely."""
    costs = _costs()
    wa, ww = info.input_type.width, info.weight_type.width
    dsp_ok_input = wa >= DSP_MIN_INPUT_BITS
    ints = _weight_ints(info)
    if ints is not None:
        digits = _csd_array(ints)
        nonzero = digits > 0
        to_dsp = nonzero & (digits >= DSP_MIN_CSD_DIGITS) & dsp_ok_input
        bitlen = _bitlen_array(ints)
        slices = np.zeros(ints.shape, dtype=np.int64)
        if to_dsp.any():
            for b in np.unique(bitlen[to_dsp]):
                slices[to_dsp & (bitlen == b)] = _dsp_per_product(wa, int(b) + 1)
        lut = np.where(nonzero & ~to_dsp, costs.const_mult(wa, digits), 0.0)
        fab_digits = digits[nonzero & ~to_dsp]
        return _Products(
            nonzero=nonzero.sum(axis=0).astype(float),
            dsp_products=to_dsp.sum(axis=0).astype(float),
            dsp_slices=slices.sum(axis=0).astype(float),
            fabric_lut=lut.sum(axis=0).astype(float),
            max_digits=int(fab_digits.max()) if fab_digits.size else 1,
            n_zeros=int((~nonzero).sum()),
            known_weights=True,
            lut_w=lut, slices_w=slices.astype(float),
            top_zero_w=_top_zero_from(ints, wa, bool(info.input_type.signed), _product_shift(info)))
    # Unknown weights: every value of the weight type equally likely (documented assumption).
    p_zero, hist = _uniform_weight_stats(ww)
    hist_a = np.asarray(hist)
    dig = np.arange(len(hist_a))
    dsp_mask = (dig >= DSP_MIN_CSD_DIGITS) if dsp_ok_input else np.zeros_like(dig, dtype=bool)
    fab_mask = (dig > 0) & ~dsp_mask
    n = info.n_in
    per = np.ones(info.n_out, dtype=float)
    p_dsp = float(hist_a[dsp_mask].sum())
    fabric_per_product = float((hist_a[fab_mask] * costs.const_mult(wa, dig[fab_mask])).sum())
    fab_digits = dig[fab_mask & (hist_a > 0)]
    return _Products(
        nonzero=per * n * (1.0 - p_zero),
        dsp_products=per * n * p_dsp,
        dsp_slices=per * n * p_dsp * _dsp_per_product(wa, ww),
        fabric_lut=per * n * fabric_per_product,
        max_digits=int(fab_digits.max()) if fab_digits.size else 1,
        n_zeros=int(round(info.n_in * info.n_out * p_zero)),
        known_weights=False)
