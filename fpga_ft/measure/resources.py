"""Offline FPGA resource and latency estimate of a (protected) hls4ml design.

:func:`estimate_resources` costs every Dense / Conv layer of a model from its
:class:`~fpga_ft.core.layers.LayerInfo` (operand widths, quantized weights, reuse factor,
strategy, io type) and the TMR that a :class:`~fpga_ft.core.plan.ProtectionPlan` adds, without
any vendor tool. Units: ``LUT`` = 6-input LUTs, ``FF`` = flip-flops, ``DSP`` = DSP48 slices,
``BRAM_18K`` = 18 Kb block RAMs, ``latency_cycles`` = clock cycles at ``clock_mhz``.
The figures mean *Vivado post-synthesis* counts of the hls4ml layers (activations, softmax,
FIFOs and the AXI wrapper are not counted); ``target="hls"`` gives the scale of a Vivado /
Vitis HLS C-synthesis estimate instead. :func:`neuron_lut_yosys` gives the LUTs of one
neuron's dot product as built, at the scale of Yosys (all fabric), for ``fpga-ft verify``;
:func:`time_shared_lut_yosys` those of a time-shared layer.

The model (every constant below names its origin; ``docs/estimator.md`` has the long form):

* **What is built** is read from :mod:`fpga_ft.core.structure` (``layer_structure``): per
  neuron its scheme (Unprotected / BitTMR / FullTMR), its terms (non-zero products, plus
  the bias when non-zero) and the balanced tree of ``terms - 1`` adds over them, with the
  number of partial-sum (voted) operands of every add. Nothing here re-derives those.
* **Primitive costs** come from real synthesis with Yosys 0.23 ``synth_xilinx -family xc7``
  (``scripts/calibrate_yosys.py`` -> ``fpga_ft/data/resource_calibration.json``, read once):
  a W-bit adder ``a*W + b`` LUTs; a product by a constant with ``t`` non-zero
  canonical-signed-digit (CSD) digits ``a*(t-1)*Wa + b*(t-1)`` (t = 1 is a shift: free; a
  zero weight has no hardware); a generic ``Wa x Ww`` multiplier ``a*Wa*Ww + b*(Wa+Ww) + c``;
  a 2-of-3 voter 1 LUT per bit; and the units of the protected structure: the single low
  adder of a protected add (``W-k`` bits with carry out) and one *lane* (a k-bit adder with
  carry-in holding the 2-of-3 voters of its 0, 1 or 2 partial-sum operands), measured as
  built. The top-k bits of a product cost the whole multiplier (measured fraction 1.0).
* **DSP or fabric** (the binding Vivado/Vitis HLS makes for a constant product, as read
  off published reports with their weights): a product goes to a DSP48 when its constant
  has ``>= DSP_MIN_CSD_DIGITS`` (3) CSD digits and the activation is ``>= DSP_MIN_INPUT_BITS``
  (8) bits wide; otherwise it is shift-and-add logic. A generic (non-constant) product
  goes to a DSP when ``Wa >= 8`` and ``Ww >= 5``. Products wider than 25x18 bits use
  several DSP48s.
* **Unprotected neuron** (hls4ml's arithmetic): its constant products and ``terms - 1``
  adds of up to W bits (W = ``accum_type.width``), each costed by the columns it spans
  (:func:`_add_span`: operand ranges from the input type and the weight codes; products
  of an unsigned input by positive constants and their sums are zero-extended, so their
  adds are narrower; a power-of-two product is a shift, its add is not free).
* **BitTMR neuron** (``protected_msbs = k``): every non-zero product is three kept
  constant multipliers (replica 0 the W-bit word, replicas 1 and 2 its top k bits, whose
  cone is the whole multiplier; a DSP-bound product: one DSP per replica); every add is a
  single ``(W-k)``-bit low adder with carry out plus three lanes (k-bit adder with carry-in
  and the k-bit voters of each partial-sum operand inside); one k-bit output voter.
* **FullTMR neuron** (critical): three kept replicas of the unprotected dot product (own
  constants, own DSPs) and one W-bit output voter.
* **Time-shared layers** (``LayerInfo.time_shared``: reuse factor R > 1, either
  strategy; ``LayerStructure.reuse_factor > 0``): fpga-ft builds them as
  ``n_units = ceil(n_in*n_out/R)`` shared MAC units (read off the structure), R cycles.
  Per unit a generic ``Wa x Ww`` multiplier (the weight is an operand, read from the
  unit's ROM) and a W-bit adder into the neuron's accumulator; its feed: an R:1 input
  select (``Wa * ceil((R-1)/3)`` LUTs) and the R-word weight ROM (``Ww * ceil(R/64)``
  LUTs; block RAM when ``R >= BRAM_MIN_REUSE``); per neuron the accumulator's start mux
  (one LUT per register bit: it reads the bias at cycle 0), and one more per register
  bit wherever a unit's run of cycles on a neuron is not all R cycles (it switches
  neuron or idles: a select of what the accumulator takes). BitTMR protects the *units*,
  not the products: per unit three generic multiplier replicas (replicas 1 and 2 the
  top-k cone, the whole multiplier; DSP-bound: one DSP each), one ``(W-k)``-bit low
  adder and three lanes that vote the accumulator's lanes (lane(k, 1)); per neuron
  ``W-k + 3k`` register bits behind the start mux and one k-bit output voter. So the
  protection costs about 3x the MAC units whatever ``n_in*n_out``; critical neurons have
  no time-shared form (``layer_structure`` refuses them). :func:`time_shared_lut_yosys`
  gives the layer at Yosys scale, all fabric, for ``fpga-ft verify`` (twin:
  ``fpga_ft.measure.twin.UnitTwin``). A layer with R = 1 (either strategy) is built per neuron
  (above); HLS's ``ALLOCATION`` limit (hls4ml's ``multiplier_limit``) then covers every
  product, nothing is shared.
* **Convolutions**: the dot-product hardware of one output pixel (``n_in x n_out``) is
  instantiated once per layer and used ``n_positions`` times (hls4ml's default
  ParallelizationFactor 1); io_parallel adds the im2col input multiplexer (``n_in`` words,
  ``n_positions``:1) and registers the whole output.
* **Absolute scale**: Vivado reaches about 0.65x the Yosys LUT count on this arithmetic.
  The estimate is ``LUT = SCALE_SYNTH * LUT_yosys`` for arithmetic and replicas, voters at
  1 LUT per voted bit unscaled (the lanes' voter share: lane(k, v) - lane(k, 0));
  ``target="hls"`` divides by the published Vivado / HLS-estimate ratio ``HLS_TO_SYNTH_LUT``.
* **Latency**: per layer ``ceil(path / usable clock)`` cycles, path = multiplier delay +
  adder-tree depth (of the structure's tree) x adder delay; plus ``II - 1`` where the
  initiation interval II is how many DSP-bound products of unprotected neurons share one
  multiplier; a time-shared layer: ``depth + R``, its path one multiply and one add (the
  units that add into the same accumulator in the same cycle are not modelled as a
  chain); times ``n_positions`` for convolutions.
  Protection adds voter delay (``VOTER_DELAY_NS``): BitTMR one vote per tree level (the
  lanes vote their partial-sum operands from the second level on, the output voter closes
  the root; products enter unvoted); critical neurons only: one vote at the output.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import json
import math
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.paths import PACKAGE_DIR
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.core.structure import (Add, BitTMR, FullTMR, LayerStructure, NeuronStructure, Term, Unprotected,
                                    layer_structure, scheme_for)

#: The calibration table written by ``scripts/calibrate_yosys.py`` (shipped with the package).
CALIBRATION_PATH = (PACKAGE_DIR / "data" / "resource_calibration.json").resolve()

# ---------------------------------------------------------------------------------------
# Constants and where they come from
# ---------------------------------------------------------------------------------------
#: DSP binding of a constant product: CSD digits of the constant from which Vivado/Vitis HLS
#: binds the product to a DSP48. Read off published csynth reports whose weights are public
#: (counted with the weights of the same commit): ArgyKokk/hls4ml_MLP_estimator jet_tagging
#: DSP_reuse1 (Vitis 2021.1, 8-bit x 8-bit): 247/275/202/85 DSP vs 296/294/210/85 products
#: with >= 3 digits; seanlipps/ECE226_CoDesign model_1 (Vitis 2024.1, 16 x 16): 370 and 91
#: DSP vs 374 and 91; hls4ml test_report (Vivado HLS 2020.1, 16 x 16 Glorot weights): 73 DSP
#: vs 73 (one draw). Products of <= 2 digits (4-bit weights, thaarres/dnd_hls4ml) use none.
DSP_MIN_CSD_DIGITS = 3
#: Narrowest activation (bits) bound to a DSP: 8-bit activations x 8-bit weights use DSPs
#: (ArgyKokk jet_tagging, ap_ufixed<8,0> inputs of fc2..output), 6-bit ones do not
#: (hls4ml-tutorial part4 model_3, ap_ufixed<6,0> x 6-bit weights: 0 DSP); the threshold
#: lies in 7..8 bits.
DSP_MIN_INPUT_BITS = 8
#: Generic (non-constant) multiplier: DSP when Wa >= DSP_MIN_INPUT_BITS and Ww >= this.
#: A generic Ww-bit operand reaches 3 CSD digits from 5 bits on (same rule as constants).
DSP_MIN_GENERIC_WEIGHT_BITS = 5
#: DSP48E1/E2 multiplier port widths (Xilinx UG479 / UG579): signed 25 x 18 bits.
DSP_A_BITS, DSP_B_BITS = 25, 18

#: Vivado post-synthesis LUTs per Yosys LUT of the same arithmetic. Fitted (geometric mean
#: of published / estimate-at-scale-1) over the three Vivado synthesis reports whose design
#: and weights are known or exactly described: hls4ml test/pytest/test_report/Vivado (Dense
#: 16->5, Glorot weights: 0.79), thaarres/dnd_hls4ml (QDense 98->20->1, 4-bit weights:
#: 0.50) and seanlipps/ECE226_CoDesign model_1 (Conv1D + Dense, trained weights: 0.69).
#: Leave-one-out, each of the three is predicted within 0.75-1.47x (scripts/check_estimator.py).
#: (Refitted from 0.63 when the adds became the structure's ``terms - 1`` per neuron: one
#: add less for a neuron whose bias is zero, as in those three designs.)
#: Below 1 because Vivado packs adder chains and shift-add products tighter than Yosys's
#: LUT mapping (Yosys adders are 1 LUT/bit, its constant products ~2 LUT/bit per extra
#: digit). The chain of shared/notes/resource-facts.md (Yosys/HLS 2-2.7 for a generic
#: multiplier, HLS/Vivado 1.7-2.2) would give 0.22; it holds for generic multipliers, which
#: io_parallel hls4ml designs (constant weights) hardly contain.
SCALE_SYNTH = 0.65
#: Vivado post-synthesis LUT / HLS C-synthesis LUT estimate of the same design, geometric
#: mean of the published pairs (shared/notes/resource-facts.md): hls4ml test_report
#: 1,526/2,532 = 0.60, hls4ml-tutorial pruned_cnn 123,948/245,466 = 0.50 and
#: quantized_pruned_cnn 118,931/263,280 = 0.45, thaarres/dnd_hls4ml 31,277/59,561 = 0.53,
#: seanlipps/ECE226_CoDesign 8,565/17,966 = 0.48 -> 0.51.
HLS_TO_SYNTH_LUT = 0.51
#: Vivado FF / HLS FF estimate, same pairs (2,428/7,969, 43,435/52,549, 30,702/43,847,
#: 4,555/4,561, 4,864/7,123): geometric mean 0.65.
HLS_TO_SYNTH_FF = 0.65

#: Resource strategy keeps weights in block RAM from this reuse factor on (hls4ml partitions
#: the weight array by ceil(n_in*n_out/R); below ~16 words per bank Vivado maps the banks to
#: LUTs/registers). Approximate.
BRAM_MIN_REUSE = 16
#: Bits of one BRAM_18K in its widest true-dual-port shape (512 x 36, UG473/UG573).
BRAM18_WIDTH, BRAM18_DEPTH = 36, 512
#: 6-input LUTs per bit of an s:1 multiplexer: one LUT6 reduces 4 inputs to 1 (3 per LUT).
MUX_INPUTS_PER_LUT = 3

#: Default clock when none is given: hls4ml's default ClockPeriod 5 ns.
DEFAULT_CLOCK_MHZ = 200.0
#: Share of the clock period HLS schedules into: hls4ml's default ClockUncertainty for the
#: Vitis backend is 27% (12.5% for Vivado); we use 27%.
CLOCK_UNCERTAINTY = 0.27
#: Delays (ns) of the scheduling model, round numbers of the order Vivado/Vitis HLS uses for
#: UltraScale+/7-series at speed grade -2: W-bit carry-chain adder 0.8 + 0.03*W; DSP48
#: multiply (no internal register) 2.6; a fabric shift-add product adds one adder delay per
#: doubling of its CSD digits.
ADDER_DELAY_NS = 0.8
ADDER_DELAY_PER_BIT_NS = 0.03
DSP_DELAY_NS = 2.6
#: Delay (ns) of a bitwise 2-of-3 voter: one LUT3 level plus local routing, the order of a
#: 7-series / UltraScale+ LUT-plus-net delay at speed grade -2 (a round number, not fitted).
VOTER_DELAY_NS = 0.5


# ---------------------------------------------------------------------------------------
# Calibration table
# ---------------------------------------------------------------------------------------
@functools.cache
def load_calibration(path: str | None = None) -> dict:
    """The Yosys calibration table (``fpga_ft/data/resource_calibration.json``), read once."""
    p = Path(path) if path else CALIBRATION_PATH
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FpgaFtError(f"resource calibration table missing: {p} "
                          "(regenerate with scripts/calibrate_yosys.py)") from None
    except ValueError:
        raise FpgaFtError(f"resource calibration table is not valid JSON: {p}") from None
    if "models" not in data:
        raise FpgaFtError(f"resource calibration table has no 'models': {p}")
    return data


@dataclass(frozen=True)
class _Costs:
    """Yosys unit costs (LUT) from the calibration table."""

    gen_a: float
    gen_b: float
    gen_c: float
    const_a: float
    const_b: float
    add_a: float
    add_b: float
    cone_g0: float
    cone_g1: float
    voter: float
    #: lane(k, v) = lane_a[v]*k + lane_b[v] (v = voted operands 0, 1, 2), the linear fit of
    #: the measured lanes (a fit, not the points: Yosys maps a few small lanes unevenly,
    #: e.g. k = 2 with two voted operands 6 LUTs like k = 3; the fit keeps cost monotone in k)
    lane_a: tuple[float, float, float]
    lane_b: tuple[float, float, float]
    #: low adder with carry out: low_a*bits + low_b
    low_a: float
    low_b: float

    def generic_mult(self, wa: int, ww: int) -> float:
        return max(0.0, self.gen_a * wa * ww + self.gen_b * (wa + ww) + self.gen_c)

    def const_mult(self, wa: int, digits: np.ndarray | float) -> np.ndarray | float:
        t1 = np.maximum(np.asarray(digits, dtype=float) - 1.0, 0.0)
        return np.maximum(self.const_a * t1 * wa + self.const_b * t1, 0.0)

    def adder(self, w: int) -> float:
        return max(0.0, self.add_a * w + self.add_b)

    def adders(self, bits: float, n: int) -> float:
        """``n`` adds spanning ``bits`` columns in all (``adder`` summed over them)."""
        return max(0.0, self.add_a * bits + self.add_b * n) if n else 0.0

    def lane(self, k: int, voted: int) -> float:
        """One lane of a protected add: a k-bit adder with carry-in whose ``voted`` operands
        (0, 1 or 2: those that are partial sums) are voted 2-of-3 inside it."""
        return max(0.0, self.lane_a[voted] * k + self.lane_b[voted])

    def low_adder(self, bits: int) -> float:
        """The single low part of a protected add: a ``bits``-bit adder with carry out."""
        if bits <= 0:
            return 0.0
        return max(0.0, self.low_a * bits + self.low_b)

    def mult_cone_fraction(self, wa: int, ww: int, w: int, k: int) -> float:
        wp = max(1, wa + ww)
        k_eff = max(1, min(wp, k - (w - wp)))
        return float(min(1.0, max(0.0, self.cone_g0 + self.cone_g1 * k_eff / wp)))


def _costs_from_models(m: dict) -> _Costs:
    """:class:`_Costs` from a calibration table's ``models`` (the estimator's and the
    calibration script's one reading of it)."""
    g = m["mult_generic_lut"]["coef"]
    c = m["mult_const_lut"]["coef"]
    a = m["adder_lut"]["coef"]
    f = m["mult_msbs_fraction"]["coef"]
    vot = m["voter_lut"]["coef"]["a"]
    lane = m.get("lane_lut")
    if lane:
        la = tuple(float(lane["coef"][f"a{v}"]) for v in range(3))
        lb = tuple(float(lane["coef"][f"b{v}"]) for v in range(3))
    else:
        # a table measured before the lane unit existed: a k-bit slice adder with carry-in
        # plus one LUT per voted bit
        s = (m.get("adder_slice_cin_lut") or m["adder_lut"])["coef"]
        la = tuple(float(s["a"]) + v * vot for v in range(3))
        lb = (float(s["b"]),) * 3
    low = m.get("low_adder_cout_lut")
    if low:
        lo_a, lo_b = float(low["coef"]["a"]), float(low["coef"]["b"])
    else:
        lo_a, lo_b = float(a["a"]), float(a["b"])
    return _Costs(g["a"], g["b"], g["c"], c["a"], c["b"], a["a"], a["b"], f["g0"], f["g1"], vot,
                  la, lb, lo_a, lo_b)


@functools.cache
def _costs() -> _Costs:
    return _costs_from_models(load_calibration()["models"])


# ---------------------------------------------------------------------------------------
# Number helpers
# ---------------------------------------------------------------------------------------
def csd_digits(n: int) -> int:
    """Non-zero digits of the canonical signed-digit (non-adjacent) form of ``|n|``."""
    n, count = abs(int(n)), 0
    while n:
        if n & 1:
            count += 1
            n = n - 1 if (n & 3) == 1 else n + 1
        n >>= 1
    return count


def _csd_array(ints: np.ndarray) -> np.ndarray:
    values, inverse = np.unique(np.abs(ints.astype(np.int64)), return_inverse=True)
    digits = np.array([csd_digits(v) for v in values], dtype=np.int64)
    return digits[inverse].reshape(ints.shape)


def _bitlen_array(ints: np.ndarray) -> np.ndarray:
    a = np.abs(ints.astype(np.int64))
    out = np.zeros(a.shape, dtype=np.int64)
    nz = a > 0
    out[nz] = np.floor(np.log2(a[nz])).astype(np.int64) + 1
    return out


def _dsp_per_product(wa: int, wb: int) -> int:
    """DSP48 slices one wa x wb product needs (25 x 18 signed ports, UG479)."""
    big, small = max(wa, wb), min(wa, wb)
    if big <= DSP_A_BITS and small <= DSP_B_BITS:
        return 1
    return math.ceil(big / (DSP_A_BITS - 1)) * math.ceil(small / (DSP_B_BITS - 1))


def _mux_luts_per_bit(inputs: float) -> float:
    return math.ceil(max(0.0, inputs - 1.0) / MUX_INPUTS_PER_LUT)


@functools.cache
def _uniform_weight_stats(width: int) -> tuple[float, tuple[float, ...]]:
    """Zero fraction and CSD-digit histogram of all ``width``-bit signed integers.

    Used when a layer has no weights: every representable value equally likely.
    """
    width = max(1, min(int(width), 20))
    vals = np.arange(-(1 << (width - 1)), 1 << (width - 1), dtype=np.int64)
    digits = _csd_array(vals)
    hist = np.bincount(digits, minlength=12).astype(float) / len(vals)
    return float(hist[0]), tuple(hist.tolist())


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


# ---------------------------------------------------------------------------------------
# One neuron as built, at Yosys scale
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _NeuronLut:
    """Yosys LUTs of one neuron: ``base`` its unprotected dot product, ``replica`` what the
    protection adds besides voters, ``voter`` the voters (1 LUT per voted bit)."""

    base: float
    replica: float
    voter: float

    @property
    def total(self) -> float:
        return self.base + self.replica + self.voter


def _neuron_lut(scheme, tree: _Tree, n_products: float, product_lut: float, costs: _Costs,
                replica_lut: float | None = None) -> _NeuronLut:
    """The LUTs of one neuron's dot product as built (Yosys scale).

    ``product_lut``: the fabric LUTs of one copy of its products (DSP-bound ones excluded
    by the caller when they go to DSPs); ``replica_lut``: those of one top-k replica
    (BitTMR replicas 1 and 2; default the whole products: the measured cone)."""
    w = scheme.width
    base = product_lut + costs.adders(tree.add_bits, tree.n_adds)
    if n_products <= 0:  # a constant: no hardware, no voter
        return _NeuronLut(0.0, 0.0, 0.0)
    if isinstance(scheme, FullTMR):
        return _NeuronLut(base, 2.0 * base, w * costs.voter)
    if isinstance(scheme, BitTMR):
        k = scheme.k
        lane0 = costs.lane(k, 0)
        adds = tree.n_adds * (costs.low_adder(scheme.low_bits) + 3.0 * lane0)
        rep = product_lut if replica_lut is None else replica_lut
        built = product_lut + 2.0 * rep + adds
        votes = sum(3.0 * n * max(0.0, costs.lane(k, v) - lane0) for v, n in enumerate(tree.adds_by_voted))
        return _NeuronLut(base, built - base, votes + k * costs.voter)
    return _NeuronLut(base, 0.0, 0.0)


def structure_lut_yosys(ns: NeuronStructure, input_width: int, weight_width: int,
                        costs: _Costs | None = None, *, input_signed: bool = True,
                        product_shift: int = 0) -> float:
    """Yosys LUTs of one neuron's dot product as built, all fabric: :func:`neuron_lut_yosys`
    for a :class:`~fpga_ft.core.structure.NeuronStructure` (``costs``: a calibration's unit
    costs, default the shipped table; ``input_signed``/``product_shift``: the input type's
    signedness and the product's alignment to accum_t, which decide whether a product's
    top bits are constant)."""
    costs = costs or _costs()
    codes = np.array([t.code for t in ns.products], dtype=np.int64)
    lut = np.asarray(costs.const_mult(input_width, _csd_array(codes)), dtype=float) if codes.size else np.zeros(0)
    replica = None
    if isinstance(ns.scheme, BitTMR) and codes.size:
        k, w = ns.scheme.k, ns.scheme.width
        cone = costs.mult_cone_fraction(input_width, weight_width, w, k)
        live = _top_zero_from(codes, input_width, input_signed, product_shift) > (w - k)
        replica = cone * float(lut[live].sum())
    tree = _read_tree(ns, _code_range(input_width, input_signed), product_shift)
    return _neuron_lut(ns.scheme, tree, ns.n_products, float(lut.sum()), costs, replica).total


def neuron_lut_yosys(info: LayerInfo, protection: LayerProtection | None, neuron: int) -> float:
    """LUTs of neuron ``neuron``'s dot product as built, at Yosys scale (before
    ``SCALE_SYNTH``), all fabric (every product in LUTs, as ``synth_xilinx -nodsp``).

    Reads the neuron's structure (``fpga_ft.core.structure.layer_structure(info, protection)``):
    Unprotected = its constant products + ``terms - 1`` adds (their columns); BitTMR = three
    copies of every product + per add a (W-k)-bit low adder and three lanes (voters of the
    partial-sum operands inside) + a k-bit output voter; FullTMR = three plain copies + a
    W-bit voter. A neuron without non-zero products is a constant: 0. ``fpga-ft verify``
    compares it with Yosys synthesis of the twin."""
    prot = protection if protection is not None else LayerProtection()
    if not 0 <= int(neuron) < info.n_out:
        raise FpgaFtError(f"layer '{info.name}': neuron {neuron} out of range 0..{info.n_out - 1}")
    if info.weights is None:
        raise FpgaFtError(f"layer '{info.name}': neuron_lut_yosys needs the quantized weights")
    if info.time_shared:
        raise FpgaFtError(f"layer '{info.name}' is time-shared: its neurons share MAC units "
                          "(see time_shared_lut_yosys)")
    ns = _structure(info, _protection_of_layer(prot, info)).neurons[int(neuron)]
    return structure_lut_yosys(ns, info.input_type.width, info.weight_type.width,
                               input_signed=bool(info.input_type.signed), product_shift=_product_shift(info))


# ---------------------------------------------------------------------------------------
# The estimate
# ---------------------------------------------------------------------------------------
@dataclass
class ResourceEstimate:
    """Resources and latency of the protectable layers of a design.

    Units: ``LUT`` 6-input LUTs, ``FF`` flip-flops, ``DSP`` DSP48 slices, ``BRAM_18K``
    18 Kb block RAMs, ``latency_cycles`` clock cycles. ``per_layer`` holds one dict per
    layer with the same keys plus the protection share (``protection_LUT`` = LUTs of the
    replicas and voters, ``voter_LUT``, ``protection_FF``, ``protection_DSP``).
    ``source`` is ``"estimate"`` (this module) or ``"report"`` (read from a vendor report).
    """

    LUT: int
    FF: int
    DSP: int
    BRAM_18K: int
    latency_cycles: int
    per_layer: list[dict] = field(default_factory=list)
    source: str = "estimate"

    def to_dict(self) -> dict:
        return {"LUT": int(self.LUT), "FF": int(self.FF), "DSP": int(self.DSP),
                "BRAM_18K": int(self.BRAM_18K), "latency_cycles": int(self.latency_cycles),
                "per_layer": [dict(x) for x in self.per_layer], "source": self.source}

    def utilization(self, board) -> dict:
        """Fraction (0..1, may exceed 1) of each resource of ``board`` this design uses.

        ``board.resources`` maps ``LUT``, ``FF``, ``DSP``, ``BRAM_18K``, ``URAM`` to counts;
        a resource the board lacks (0) gives ``0.0`` when unused and ``inf`` when used.
        """
        res = getattr(board, "resources", board)
        used = {"LUT": self.LUT, "FF": self.FF, "DSP": self.DSP, "BRAM_18K": self.BRAM_18K,
                "URAM": 0}
        out = {}
        for key in ("LUT", "FF", "DSP", "BRAM_18K", "URAM"):
            avail = float(res.get(key, 0) or 0)
            if avail > 0:
                out[key] = used[key] / avail
            else:
                out[key] = 0.0 if used[key] == 0 else math.inf
        return out


def _protection_of_layer(prot: LayerProtection, info: LayerInfo) -> LayerProtection:
    k = int(prot.protected_msbs)
    if k < 0:
        raise FpgaFtError(f"plan layer '{info.name}': protected_msbs must be >= 0, got {k}")
    k = min(k, info.accum_type.width)
    crit = sorted({int(j) for j in prot.critical_neurons})
    bad = [j for j in crit if not 0 <= j < info.n_out]
    if bad:
        raise FpgaFtError(f"plan layer '{info.name}': critical index {bad[0]} out of range "
                          f"0..{info.n_out - 1}")
    return LayerProtection(protected_msbs=k, critical_neurons=crit)


def _protection_of(plan: ProtectionPlan | None, info: LayerInfo) -> LayerProtection:
    if plan is None:
        return LayerProtection()
    return _protection_of_layer(plan.for_layer(info.name), info)


def _adder_delay(w: int) -> float:
    return ADDER_DELAY_NS + ADDER_DELAY_PER_BIT_NS * w


@dataclass
class _Neurons:
    """Per-neuron scheme and tree of a layer, from its structure (or, without weights, the
    expected tree of the expected number of terms)."""

    schemes: list
    trees: list[_Tree]


def _neurons(info: LayerInfo, prot: LayerProtection, pr: _Products) -> _Neurons:
    ls = _structure(info, prot)
    if ls is not None:
        for ns, nz in zip(ls.neurons, pr.nonzero):
            if ns.n_products != int(nz):
                raise FpgaFtError(f"layer '{info.name}' neuron {ns.neuron}: the structure has "
                                  f"{ns.n_products} products, the weights {int(nz)} non-zero")
        x_range, shift = _input_range(info), _product_shift(info)
        return _Neurons([ns.scheme for ns in ls.neurons], [_read_tree(ns, x_range, shift) for ns in ls.neurons])
    # Unknown weights: the expected non-zero products, plus a bias taken as non-zero.
    crit = set(prot.critical_neurons)
    schemes = [scheme_for(info.accum_type.width, prot.protected_msbs, j in crit) for j in range(info.n_out)]
    widest = max(1, _code_range(info.weight_type.width, bool(info.weight_type.signed))[1])
    trees = [_tree_of_size(int(round(float(nz))) + 1, info.accum_type.width, _input_range(info), widest,
                           _product_shift(info)) for nz in pr.nonzero]
    return _Neurons(schemes, trees)


def _latency_parts(info: LayerInfo, prot: LayerProtection, costs: _Costs) -> dict:
    """Yosys LUTs, DSPs and scheduling figures of a latency-strategy layer as built."""
    wa, ww, w = info.input_type.width, info.weight_type.width, info.accum_type.width
    r = max(1, int(info.reuse_factor))
    pr = _products(info)
    nn = _neurons(info, prot, pr)
    unprot = np.array([isinstance(s, Unprotected) for s in nn.schemes])
    k = int(prot.protected_msbs)
    rep_lut, rep_slices = pr.replica(w, k) if k else (pr.fabric_lut, pr.dsp_slices)
    cone = costs.mult_cone_fraction(wa, ww, w, k) if k else 1.0
    base = replica = voters = 0.0
    dsp_prot = 0.0
    for j, (scheme, tree) in enumerate(zip(nn.schemes, nn.trees)):
        part = _neuron_lut(scheme, tree, float(pr.nonzero[j]), float(pr.fabric_lut[j]), costs,
                           cone * float(rep_lut[j]))
        base, replica, voters = base + part.base, replica + part.replica, voters + part.voter
        if isinstance(scheme, BitTMR):     # replica 0 whole, 1 and 2 where their top bits live
            dsp_prot += float(pr.dsp_slices[j]) + 2.0 * float(rep_slices[j])
        elif isinstance(scheme, FullTMR):
            dsp_prot += 3.0 * float(pr.dsp_slices[j])
    # DSPs: the unprotected neurons' DSP products are `mul` operations ALLOCATION limits
    # to hls4ml's multiplier_limit (time-shared beyond it); the kept replica modules of
    # protected neurons (three per product, or three dot products) are not reached by it.
    n_mul = float(pr.dsp_products[unprot].sum())
    limit = max(1, math.ceil(info.n_in * info.n_out / r) - (pr.n_zeros // r))
    share = max(1.0, n_mul / limit) if n_mul > 0 else 1.0
    dsp_unprot = float(pr.dsp_slices[unprot].sum())
    dsp_shared = dsp_unprot / share
    mux = ff_shared = 0.0
    if share > 1.0:                                          # time-shared DSPs: input muxes
        mux = dsp_shared * (wa * _mux_luts_per_bit(share) + ww * math.ceil(share / 64.0))
        ff_shared = dsp_shared * (wa + ww)                  # operand/result registers
    mult_delay = DSP_DELAY_NS if float(pr.dsp_slices.sum()) > 0 else 0.0
    if pr.max_digits > 1:
        mult_delay = max(mult_delay, math.ceil(math.log2(pr.max_digits)) * _adder_delay(wa + ww))
    return {
        "lut": base + replica + mux, "voters": voters, "dsp": dsp_shared + dsp_prot,
        "ff_shared": ff_shared,
        # II: the unprotected DSP-bound products pass through `limit` multipliers in turn
        "ii": max(1, min(r, math.ceil(share - 1e-9))),
        "depth_adds": max((t.depth for t in nn.trees), default=0),
        "mult_delay": mult_delay,
        "bit_tmr": any(isinstance(s, BitTMR) for s in nn.schemes),
        "full_tmr": any(isinstance(s, FullTMR) for s in nn.schemes),
        "n_products": float(pr.nonzero.sum()), "n_dsp_products": float(pr.dsp_products.sum()),
        "known": pr.known_weights,
    }


@dataclass(frozen=True)
class _SharedUnits:
    """A time-shared layer as built (``fpga_ft.core.structure.LayerStructure`` with
    ``reuse_factor > 0``), unit costs at Yosys scale (LUT), every multiplier in fabric.

    ``k`` = 0: unprotected. Per unit: a generic ``Wa x Ww`` multiplier (``mult``) and a
    W-bit adder; BitTMR: three multiplier replicas (replicas 1 and 2 the top-k cone,
    ``cone`` x the multiplier), the (W-k)-bit low adder and three lanes that vote the
    accumulator's lanes (``lane1`` = lane(k, 1), of which ``lane1 - lane0`` is the voter).
    Per unit its *feed*: the R:1 input select (``select``) and the R-word weight ROM
    (``rom``, in LUTs). Per neuron: the accumulator's start mux (the bias at cycle 0;
    one LUT per register bit: W, BitTMR W-k + 3k) and, BitTMR, the k-bit output voter.
    Per ``partial_spans`` (a unit's run of cycles on one neuron that is not all R cycles:
    the unit switches neuron, or idles at the end) one LUT per register bit selecting
    what that accumulator takes (measured on the twin: exactly that, the read select of
    the unit merging into it)."""

    n_units: int
    n_out: int
    w: int
    k: int
    mult: float
    cone: float
    adder: float
    low_adder: float
    lane0: float
    lane1: float
    voter: float
    select: float
    rom: float
    partial_spans: int = 0

    @property
    def unit_plain(self) -> float:
        return self.mult + self.adder

    @property
    def unit(self) -> float:
        """One MAC unit as built (with the lanes' voters)."""
        if not self.k:
            return self.unit_plain
        return self.mult * (1.0 + 2.0 * self.cone) + self.low_adder + 3.0 * self.lane1

    @property
    def unit_voters(self) -> float:
        return 3.0 * max(0.0, self.lane1 - self.lane0) if self.k else 0.0

    @property
    def start_mux(self) -> float:
        return float(self.w + 2 * self.k) if self.k else float(self.w)

    @property
    def acc_select(self) -> float:
        """The accumulator selects of units that switch neuron (or idle), all units."""
        return self.partial_spans * self.start_mux

    @property
    def glue_plain(self) -> float:
        return self.n_out * float(self.w) + self.partial_spans * float(self.w)

    @property
    def glue(self) -> float:
        """Per-neuron logic outside the units: start muxes, accumulator selects, voters."""
        return self.n_out * (self.start_mux + self.out_voter) + self.acc_select

    @property
    def out_voter(self) -> float:
        return self.k * self.voter


def _shared_units(info: LayerInfo, prot: LayerProtection, costs: _Costs) -> _SharedUnits:
    """Read a time-shared layer's units off its structure (``n_units``, scheme); without
    weights the same formula (``ceil(n_in * n_out / R)``) and the plan's scheme. Critical
    neurons have no time-shared form: :func:`~fpga_ft.core.structure.layer_structure` raises
    (and so does this without weights, with the same words)."""
    wa, ww, w = info.input_type.width, info.weight_type.width, info.accum_type.width
    r = max(1, int(info.reuse_factor))
    ls = _structure(info, prot)
    if ls is not None:
        n_units, scheme = ls.n_units, ls.scheme
    else:
        n_units = -(-info.n_in * info.n_out // r)
        if prot.critical_neurons:
            raise FpgaFtError(f"layer '{info.name}': critical_neurons need Strategy: Latency and ReuseFactor 1 (its "
                              f"{info.n_in * info.n_out} products share {n_units} MAC units); protect it with "
                              "protected_msbs, or convert it with ReuseFactor 1")
        scheme = scheme_for(w, prot.protected_msbs, False)
    k = scheme.k if isinstance(scheme, BitTMR) else 0
    return _SharedUnits(
        n_units=int(n_units), n_out=int(info.n_out), w=int(w), k=int(k),
        mult=costs.generic_mult(wa, ww),
        cone=costs.mult_cone_fraction(wa, ww, w, k) if k else 1.0,
        adder=costs.adder(w), low_adder=costs.low_adder(w - k) if k else 0.0,
        lane0=costs.lane(k, 0) if k else 0.0, lane1=costs.lane(k, 1) if k else 0.0,
        voter=costs.voter,
        select=float(wa * _mux_luts_per_bit(r)),
        rom=float(ww * math.ceil(r / 64.0)) if r > 1 else 0.0,
        partial_spans=_partial_spans(info.n_in, info.n_out, r))


@functools.lru_cache(maxsize=1024)
def _partial_spans(n_in: int, n_out: int, r: int) -> int:
    """Runs of cycles a unit spends on one neuron that are not all its R cycles, over the
    units of ``LayerStructure.schedule()`` (unit u computes products u*R .. u*R+R-1 of
    the neuron-major order, neuron = product // n_in): the unit switches neuron inside
    its R cycles, or idles at the end of the last one."""
    n = n_in * n_out
    n_units = -(-n // r)
    first = np.arange(n_units, dtype=np.int64) * r
    last = np.minimum(first + r - 1, n - 1)
    spans = last // n_in - first // n_in + 1
    full = (first // n_in == last // n_in) & (first + r - 1 < n)
    return int(spans.sum() - full.sum())


def time_shared_lut_yosys(info: LayerInfo, protection: LayerProtection | None = None) -> dict:
    """LUTs of a time-shared layer as built, at Yosys scale (before ``SCALE_SYNTH``), all
    fabric (every generic multiplier and every weight ROM in LUTs, as ``synth_xilinx
    -nodsp`` of ``fpga_ft.measure.twin.UnitTwin``'s layer twin, which ``fpga-ft verify`` compares
    with ``lut``).

    Returns ``{"n_units", "unit_lut" (one MAC unit as built, lane voters included),
    "unit_lut_unprotected", "units_lut" (n_units x unit), "feed_lut" (every unit's input
    select + weight ROM), "glue_lut" (accumulator start muxes and selects, output
    voters), "lut"
    (the layer), "lut_unprotected", "voter_lut" (every voter: lanes' and outputs')}``."""
    prot = _protection_of_layer(protection if protection is not None else LayerProtection(), info)
    if not info.time_shared:
        raise FpgaFtError(f"layer '{info.name}' is not time-shared (ReuseFactor 1): "
                          "see neuron_lut_yosys")
    su = _shared_units(info, prot, _costs())
    feed = su.n_units * (su.select + su.rom)
    glue, glue_plain = su.glue, su.glue_plain
    return {"n_units": su.n_units, "unit_lut": su.unit, "unit_lut_unprotected": su.unit_plain,
            "units_lut": su.n_units * su.unit, "feed_lut": feed, "glue_lut": glue,
            "lut": su.n_units * su.unit + feed + glue,
            "lut_unprotected": su.n_units * su.unit_plain + feed + glue_plain,
            "voter_lut": su.n_units * su.unit_voters + su.n_out * su.out_voter}


def _resource_parts(info: LayerInfo, prot: LayerProtection, costs: _Costs) -> dict:
    """A time-shared layer as built (:class:`_SharedUnits`), with Vivado's bindings: a
    generic multiplier goes to a DSP when ``Wa >= 8`` and ``Ww >= 5`` (BitTMR: one per
    replica, the top-k cone being the whole multiplier), the weight ROMs to block RAM
    from ``R >= BRAM_MIN_REUSE``. ``lut`` excludes the voters (``voters``)."""
    wa, ww = info.input_type.width, info.weight_type.width
    r = max(1, int(info.reuse_factor))
    su = _shared_units(info, prot, costs)
    n = su.n_units
    generic_dsp = wa >= DSP_MIN_INPUT_BITS and ww >= DSP_MIN_GENERIC_WEIGHT_BITS
    per_dsp = _dsp_per_product(wa, ww) if generic_dsp else 0
    mult = 0.0 if generic_dsp else su.mult
    bram = 0
    rom = su.rom
    if r >= BRAM_MIN_REUSE:
        bram = math.ceil(n * ww / BRAM18_WIDTH) * math.ceil(r / BRAM18_DEPTH)
        rom = 0.0
    if su.k:
        unit = mult * (1.0 + 2.0 * su.cone) + su.low_adder + 3.0 * su.lane0
        voters = n * su.unit_voters + su.n_out * su.out_voter
        dsp = 3.0 * n * per_dsp
    else:
        unit, voters, dsp = mult + su.adder, 0.0, float(n * per_dsp)
    return {
        "lut": n * (unit + su.select + rom) + su.n_out * su.start_mux + su.acc_select, "voters": voters,
        "dsp": dsp,
        "ff_shared": 0.0, "ii": r, "depth_adds": 1,
        "bram": bram,
        "mult_delay": DSP_DELAY_NS if generic_dsp else 2 * _adder_delay(wa + ww),
        "bit_tmr": su.k > 0, "full_tmr": False,
        "n_products": float(n), "n_dsp_products": float(n if generic_dsp else 0),
        "known": info.weights is not None,
    }


def _layer(info: LayerInfo, prot: LayerProtection, clock_mhz: float) -> dict:
    if info.kind not in ("Dense", "Conv1D", "Conv2D"):
        raise FpgaFtError(f"layer '{info.name}': cannot estimate kind '{info.kind}' "
                          "(Dense, Conv1D, Conv2D only)")
    if info.n_in <= 0 or info.n_out <= 0:
        raise FpgaFtError(f"layer '{info.name}': n_in and n_out must be positive")
    costs = _costs()
    wa, w = info.input_type.width, info.accum_type.width
    wr = info.result_type.width
    r = max(1, int(info.reuse_factor))
    positions = max(1, int(info.n_positions))
    is_conv = info.kind.startswith("Conv")
    shared = bool(info.time_shared)  # R > 1: built as shared MAC units (LayerInfo.time_shared)
    k = prot.protected_msbs
    n_crit = len(prot.critical_neurons)
    parts_of = _resource_parts if shared else _latency_parts
    parts = parts_of(info, prot, costs)
    # the same layer unprotected: the protection share is the difference to it
    plain = parts_of(info, LayerProtection(), costs) if (k > 0 or n_crit) else parts

    # convolution data movement (the same with and without protection) -----------------
    lut_conv = ff_extra = 0.0
    if is_conv:
        if info.io_type == "io_parallel":
            lut_conv = info.n_in * wa * _mux_luts_per_bit(positions)          # im2col select
            ff_extra = positions * info.n_out * wr                               # output array
        else:
            ff_extra = info.n_in * wa                                            # window registers

    # latency ---------------------------------------------------------------------------
    clock_ns = 1000.0 / clock_mhz
    usable = clock_ns * (1.0 - CLOCK_UNCERTAINTY)
    tree_levels = max(1, int(parts["depth_adds"]))
    path = parts["mult_delay"] + tree_levels * _adder_delay(w)
    protected = parts["bit_tmr"] or parts["full_tmr"]
    if parts["bit_tmr"]:
        # BitTMR: one vote per tree level (lanes vote their partial-sum operands from the
        # second level on; the output voter after the root)
        path += VOTER_DELAY_NS * tree_levels
    elif protected:
        path += VOTER_DELAY_NS  # critical neurons only: one vote at the neuron output
    depth = max(1, math.ceil(path / usable))
    ii = int(parts["ii"])
    if shared:
        layer_latency = depth + r
    else:
        layer_latency = depth + (ii - 1)
    if is_conv:
        layer_latency = positions * ii + depth

    # registers -------------------------------------------------------------------------
    ff_base = info.n_in * wa + depth * info.n_out * w + ff_extra + plain["ff_shared"]
    ff_prot = parts["ff_shared"] - plain["ff_shared"]
    if k > 0:
        ff_prot += 2.0 * k * depth * float(info.n_out - n_crit)
    if n_crit:
        ff_prot += 2.0 * depth * w * float(n_crit)
    if protected:
        ff_prot += info.n_out * w                                          # voted outputs

    return {
        "name": info.name,
        "kind": info.kind,
        "_base_lut_yosys": plain["lut"] + lut_conv,
        "_replica_lut_yosys": parts["lut"] - plain["lut"],
        "_voter_lut": parts["voters"],
        "_ff_base": ff_base,
        "_ff_prot": ff_prot,
        "DSP_base": plain["dsp"],
        "DSP_prot": parts["dsp"] - plain["dsp"],
        "BRAM_18K": int(parts.get("bram", 0)),
        "latency_cycles": int(layer_latency),
        "ii": ii,
        "products_nonzero": parts["n_products"],
        "products_dsp": parts["n_dsp_products"],
        "weights_known": bool(parts["known"]),
    }


def estimate_resources(layers: list[LayerInfo], plan: ProtectionPlan | None = None,
                       clock_mhz: float | None = None, *, target: str = "synth") -> ResourceEstimate:
    """Estimate LUT / FF / DSP / BRAM_18K and latency of the protectable layers.

    Args:
        layers: the model's Dense / Conv layers (``fpga_ft.generate.convert.describe_layers``); pass
            ``weights`` (exact quantized values, shape ``(n_in, n_out)``) for a faithful
            count: zero weights cost nothing and each constant's CSD digits set its cost and
            its DSP binding. Without weights every value of ``weight_type`` is taken as
            equally likely (a pessimistic default for trained, mostly small weights).
        plan: protection plan (``None`` = unprotected).
        clock_mhz: clock frequency in MHz for the latency model (default 200 MHz, hls4ml's
            5 ns default).
        target: ``"synth"`` (default) for Vivado post-synthesis counts, ``"hls"`` for the
            scale of an HLS C-synthesis estimate (``*_csynth.xml``).

    Returns:
        :class:`ResourceEstimate`; ``per_layer[i]`` has ``name``, ``kind``, ``LUT``, ``FF``,
        ``DSP``, ``BRAM_18K``, ``latency_cycles`` and the protection share
        ``protection_LUT`` (replicas + voters), ``replica_LUT``, ``voter_LUT``,
        ``protection_FF`` and ``protection_DSP``, plus ``ii`` (initiation interval, cycles),
        ``products_nonzero`` / ``products_dsp`` (per layer, one pixel for convolutions) and
        ``weights_known``.
    """
    if target not in ("synth", "hls"):
        raise FpgaFtError(f"unknown estimate target '{target}' (synth or hls)")
    clock = DEFAULT_CLOCK_MHZ if clock_mhz is None else float(clock_mhz)
    if not clock > 0 or math.isinf(clock):
        raise FpgaFtError(f"clock must be a positive frequency in MHz, got {clock_mhz}")
    lut_scale = SCALE_SYNTH if target == "synth" else SCALE_SYNTH / HLS_TO_SYNTH_LUT
    ff_scale = 1.0 if target == "synth" else 1.0 / HLS_TO_SYNTH_FF
    voter_scale = 1.0 if target == "synth" else 1.0 / HLS_TO_SYNTH_LUT
    names = [info.name for info in layers]
    if len(set(names)) != len(names):
        raise FpgaFtError("layer names must be unique")
    if plan is not None:
        plan.validate(layers)

    per_layer: list[dict] = []
    totals = {"LUT": 0, "FF": 0, "DSP": 0, "BRAM_18K": 0, "latency_cycles": 0}
    for info in layers:
        raw = _layer(info, _protection_of(plan, info), clock)
        base_lut = raw["_base_lut_yosys"] * lut_scale
        replica = raw["_replica_lut_yosys"] * lut_scale
        voter = raw["_voter_lut"] * voter_scale
        lut = int(round(base_lut + replica + voter))
        ff = int(round((raw["_ff_base"] + raw["_ff_prot"]) * ff_scale))
        dsp = int(math.ceil(raw["DSP_base"] + raw["DSP_prot"] - 1e-9))
        row = {
            "name": raw["name"], "kind": raw["kind"],
            "LUT": lut, "FF": ff, "DSP": dsp, "BRAM_18K": raw["BRAM_18K"],
            "latency_cycles": raw["latency_cycles"],
            "protection_LUT": int(round(replica + voter)),
            "replica_LUT": int(round(replica)),
            "voter_LUT": int(round(voter)),
            "protection_FF": int(round(raw["_ff_prot"] * ff_scale)),
            "protection_DSP": int(math.ceil(raw["DSP_prot"] - 1e-9)),
            "ii": raw["ii"],
            "products_nonzero": round(raw["products_nonzero"], 1),
            "products_dsp": round(raw["products_dsp"], 1),
            "weights_known": raw["weights_known"],
        }
        per_layer.append(row)
        for key in totals:
            totals[key] += row[key]
    return ResourceEstimate(LUT=totals["LUT"], FF=totals["FF"], DSP=totals["DSP"],
                            BRAM_18K=totals["BRAM_18K"], latency_cycles=totals["latency_cycles"],
                            per_layer=per_layer, source="estimate")


__all__ = ["ResourceEstimate", "estimate_resources", "neuron_lut_yosys", "structure_lut_yosys", "time_shared_lut_yosys",
           "load_calibration", "csd_digits",
           "CALIBRATION_PATH"]
