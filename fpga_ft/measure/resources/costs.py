"""Constants of the resource estimate (each names its origin), the Yosys calibration table
and the unit costs read from it, and number helpers.

Units: LUT = 6-input LUTs at Yosys scale (before ``SCALE_SYNTH``), widths in bits, delays
in ns, clocks in MHz. The helpers count canonical-signed-digit (CSD) digits and bit lengths
of weight codes, DSP48 slices per product and LUTs per bit of a multiplexer.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import PACKAGE_DIR

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


def _adder_delay(w: int) -> float:
    return ADDER_DELAY_NS + ADDER_DELAY_PER_BIT_NS * w
