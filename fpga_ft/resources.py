"""Offline FPGA resource and latency estimate of a (protected) hls4ml design.

:func:`estimate_resources` costs every Dense / Conv layer of a model from its
:class:`~fpga_ft.layers.LayerInfo` (operand widths, quantized weights, reuse factor,
strategy, io type) and the TMR that a :class:`~fpga_ft.plan.ProtectionPlan` adds, without
any vendor tool. Units: ``LUT`` = 6-input LUTs, ``FF`` = flip-flops, ``DSP`` = DSP48 slices,
``BRAM_18K`` = 18 Kb block RAMs, ``latency_cycles`` = clock cycles at ``clock_mhz``.
The figures mean *Vivado post-synthesis* counts of the hls4ml layers (activations, softmax,
FIFOs and the AXI wrapper are not counted); ``target="hls"`` gives the scale of a Vivado /
Vitis HLS C-synthesis estimate instead.

The model (every constant below names its origin; ``docs/estimator.md`` has the long form):

* **Primitive costs** come from real synthesis with Yosys 0.23 ``synth_xilinx -family xc7``
  (``scripts/calibrate_yosys.py`` -> ``fpga_ft/data/resource_calibration.json``, read once):
  a W-bit adder is ``a*W + b`` LUTs, a multiplication by a constant with ``t`` non-zero
  canonical-signed-digit (CSD) digits is ``a*(t-1)*Wa + b*(t-1)`` LUTs (t = 1 is a shift:
  free; a zero weight: free), a generic ``Wa x Ww`` multiplier ``a*Wa*Ww + b*(Wa+Ww) + c``,
  a 2-of-3 voter 1 LUT per bit, a ``k``-bit slice adder with carry-in ``a*k + b`` (one
  replica of a protected partial-sum slice), and the cone of the top ``k`` bits of a
  product is the whole multiplier (measured fraction 1.0 for every k, width and constant:
  a top bit depends on every partial product and carry).
* **DSP or fabric** (the binding Vivado/Vitis HLS makes for a constant product, as read
  off published reports with their weights): a product goes to a DSP48 when its constant
  has ``>= DSP_MIN_CSD_DIGITS`` (3) CSD digits and the activation is ``>= DSP_MIN_INPUT_BITS``
  (8) bits wide; otherwise it is shift-and-add logic. A generic (non-constant) product
  goes to a DSP when ``Wa >= 8`` and ``Ww >= 5`` (a generic Ww-bit operand can carry 3 CSD
  digits from 5 bits on). Products wider than 25x18 bits use several DSP48s.
* **Adders**: each neuron adds its non-zero products and its bias into ``accum_t``
  (W = ``accum_type.width`` bits): one W-bit adder per non-zero product.
* **Reuse factor R**, latency strategy (weights are constants): HLS's
  ``ALLOCATION ... mul limit`` caps the DSP-bound products at hls4ml's ``multiplier_limit
  = ceil(n_in*n_out/R) - floor(n_zeros/R)``; the DSPs beyond it are time-shared (input
  muxes added), the fabric products and adders stay unrolled. Resource strategy: weights
  live in memory (not constants), ``ceil(n_in*n_out/R)`` generic multipliers, each fed by
  an R:1 input mux and accumulating into its neuron; weights in BRAM when ``R >=
  BRAM_MIN_REUSE``.
* **Convolutions**: the dot-product hardware of one output pixel (``n_in x n_out``) is
  instantiated once per layer and used ``n_positions`` times (hls4ml's default
  ParallelizationFactor 1: ``n_partitions = n_positions``); io_parallel adds the im2col
  input multiplexer (``n_in`` words, ``n_positions``:1) and registers the whole output.
* **Protection** (the hardware of ``hls_templates/fpgaft_tmr.h``): ``protected_msbs = k``
  adds, for every non-zero product of a non-critical neuron, two replicas of its top-k
  cone (= the whole product, see above; two more DSPs for a DSP product) and ``k`` voter
  LUTs; and for every partial sum ``a + p`` (one per non-zero product) two extra ``k``-bit
  slice adders with carry-in and ``k`` voter LUTs. The kernel's partial sum is a split
  adder (``tmr_add``): the low ``W-k`` bits are added once, unprotected, and their carry
  into bit ``W-k`` feeds three kept replicas of the top ``k``-bit slice
  (``fpgaft_tmr_rk_add_msbs``), voted; the low part plus replica 0 is the W-bit adder the
  unprotected design already has, so the main adder stays ``W`` bits and only two slices
  are extra (``k == W``: three full W-bit adders, voted). Per protected word pair
  (product + partial sum): ``2*g*mult + 2*slice(k) + 2k`` LUTs. A critical neuron computes
  its whole dot product three times (its products, adders and DSPs x3) and votes its W-bit
  output. A critical neuron is *not* also bit-level protected (the kernel skips that): it
  trades ``2*slice(k) + 2k`` LUTs per product for ``2*W`` replica adder LUTs per product
  plus ``W`` voters per neuron (the product replicas are the same, the product cone being
  the whole multiplier). With slices of ``k`` LUTs, per neuron of ``P`` non-zero products,
  full TMR minus bit-level = ``2*s*(W-k)*P + W - 2*k*P`` (``s = SCALE_SYNTH``): going
  critical costs more than the bit-level protection it replaces for small ``k`` and less
  from ``k ~ (2*s*W + W/P) / (2*s + 2)`` (about ``0.4 W``) on; at ``k = W`` always less
  (for a neuron with at least one non-zero product).
  The estimate reflects that.
* **Absolute scale**: Vivado reaches about 0.63x the Yosys LUT count on this arithmetic
  (it packs adder chains and shift-adds tighter). The estimate is
  ``LUT = SCALE_SYNTH * LUT_yosys`` (voters exact, 1 LUT per bit); ``SCALE_SYNTH`` is fitted
  to published Vivado synthesis reports (see its comment) and ``target="hls"`` divides by
  the published Vivado / HLS-estimate ratio ``HLS_TO_SYNTH_LUT``.
* **Latency**: per layer ``ceil(path / usable clock)`` cycles, path = multiplier delay +
  adder-tree depth ``ceil(log2(terms))`` x adder delay; plus ``II - 1`` where the
  initiation interval II is how many DSP-bound products share one multiplier (at most R;
  resource strategy: R); times ``n_positions`` for convolutions. Protection adds voter delay
  (``VOTER_DELAY_NS`` per level) to that path: with ``protected_msbs`` the product vote and
  one vote per level of the balanced tree of voted adds (``tmr_tree`` in fpgaft_tmr.h);
  critical neurons only: one vote at the output. Cycles grow only when the path overflows.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpga_ft.errors import FpgaFtError
from fpga_ft.layers import LayerInfo
from fpga_ft.plan import LayerProtection, ProtectionPlan

#: The calibration table written by ``scripts/calibrate_yosys.py`` (shipped with the package).
CALIBRATION_PATH = Path(__file__).resolve().parent / "data" / "resource_calibration.json"

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
#: 16->5, Glorot weights: 0.76), thaarres/dnd_hls4ml (QDense 98->20->1, 4-bit weights:
#: 0.50) and seanlipps/ECE226_CoDesign model_1 (Conv1D + Dense, trained weights: 0.67).
#: Leave-one-out, each of the three is predicted within 0.77-1.41x (scripts/check_estimator.py).
#: Below 1 because Vivado packs adder chains and shift-add products tighter than Yosys's
#: LUT mapping (Yosys adders are 1 LUT/bit, its constant products ~2 LUT/bit per extra
#: digit). The chain of shared/notes/resource-facts.md (Yosys/HLS 2-2.7 for a generic
#: multiplier, HLS/Vivado 1.7-2.2) would give 0.22; it holds for generic multipliers, which
#: io_parallel hls4ml designs (constant weights) hardly contain.
SCALE_SYNTH = 0.63
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
    """Fitted Yosys unit costs (LUT) from the calibration table."""

    gen_a: float
    gen_b: float
    gen_c: float
    const_a: float
    const_b: float
    add_a: float
    add_b: float
    slice_a: float
    slice_b: float
    cone_g0: float
    cone_g1: float
    voter: float

    def generic_mult(self, wa: int, ww: int) -> float:
        return max(0.0, self.gen_a * wa * ww + self.gen_b * (wa + ww) + self.gen_c)

    def const_mult(self, wa: int, digits: np.ndarray | float) -> np.ndarray | float:
        t1 = np.maximum(np.asarray(digits, dtype=float) - 1.0, 0.0)
        return np.maximum(self.const_a * t1 * wa + self.const_b * t1, 0.0)

    def adder(self, w: int) -> float:
        return max(0.0, self.add_a * w + self.add_b)

    def adder_slice_cin(self, k: int) -> float:
        """One replica of a protected partial-sum slice: a k-bit adder with carry-in."""
        return max(0.0, self.slice_a * k + self.slice_b)

    def mult_cone_fraction(self, wa: int, ww: int, w: int, k: int) -> float:
        wp = max(1, wa + ww)
        k_eff = max(1, min(wp, k - (w - wp)))
        return float(min(1.0, max(0.0, self.cone_g0 + self.cone_g1 * k_eff / wp)))


@functools.cache
def _costs() -> _Costs:
    m = load_calibration()["models"]
    g = m["mult_generic_lut"]["coef"]
    c = m["mult_const_lut"]["coef"]
    a = m["adder_lut"]["coef"]
    f = m["mult_msbs_fraction"]["coef"]
    sa, sb = _slice_cin_coef(m, a)
    return _Costs(g["a"], g["b"], g["c"], c["a"], c["b"], a["a"], a["b"],
                  sa, sb, f["g0"], f["g1"], m["voter_lut"]["coef"]["a"])


def _slice_cin_coef(models: dict, adder_coef: dict) -> tuple[float, float]:
    """(a, b) of ``LUT = a*k + b`` for a k-bit slice adder with carry-in.

    The calibration's fit (``adder_slice_cin_lut``) when present; else a least-squares fit
    of its measured units (``adder_slice_cin_measured``); else, for a table measured before
    those units existed, the plain adder model at width k (Yosys measures both at 1 LUT/bit).
    """
    fit = models.get("adder_slice_cin_lut")
    if fit:
        return float(fit["coef"]["a"]), float(fit["coef"]["b"])
    pts = models.get("adder_slice_cin_measured") or []
    if len({p["k"] for p in pts}) >= 2:
        ks = np.array([[p["k"], 1.0] for p in pts], dtype=float)
        ys = np.array([p["LUT"] for p in pts], dtype=float)
        coef, *_ = np.linalg.lstsq(ks, ys, rcond=None)
        return float(coef[0]), float(coef[1])
    return float(adder_coef["a"]), float(adder_coef["b"])


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
@dataclass
class _Products:
    """Per-neuron counts (floats when the weights are unknown): what the layer multiplies."""

    nonzero: np.ndarray     # non-zero products per neuron
    dsp_products: np.ndarray  # products bound to DSP per neuron
    dsp_slices: np.ndarray    # DSP48 slices of those products per neuron
    fabric_lut: np.ndarray    # Yosys LUTs of the fabric products per neuron
    max_digits: int           # CSD digits of the most complex fabric product
    n_zeros: int              # zero weights (for hls4ml's multiplier_limit)
    known_weights: bool


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
        fabric = np.where(nonzero & ~to_dsp, costs.const_mult(wa, digits), 0.0)
        fab_digits = digits[nonzero & ~to_dsp]
        return _Products(
            nonzero=nonzero.sum(axis=0).astype(float),
            dsp_products=to_dsp.sum(axis=0).astype(float),
            dsp_slices=slices.sum(axis=0).astype(float),
            fabric_lut=fabric.sum(axis=0).astype(float),
            max_digits=int(fab_digits.max()) if fab_digits.size else 1,
            n_zeros=int((~nonzero).sum()),
            known_weights=True)
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


def _protection_of(plan: ProtectionPlan | None, info: LayerInfo) -> LayerProtection:
    if plan is None:
        return LayerProtection()
    prot = plan.for_layer(info.name)
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


def _adder_delay(w: int) -> float:
    return ADDER_DELAY_NS + ADDER_DELAY_PER_BIT_NS * w


def _layer(info: LayerInfo, prot: LayerProtection, clock_mhz: float) -> dict:
    if info.kind not in ("Dense", "Conv1D", "Conv2D"):
        raise FpgaFtError(f"layer '{info.name}': cannot estimate kind '{info.kind}' "
                          "(Dense, Conv1D, Conv2D only)")
    if info.n_in <= 0 or info.n_out <= 0:
        raise FpgaFtError(f"layer '{info.name}': n_in and n_out must be positive")
    costs = _costs()
    wa, ww, w = info.input_type.width, info.weight_type.width, info.accum_type.width
    wr = info.result_type.width
    r = max(1, int(info.reuse_factor))
    positions = max(1, int(info.n_positions))
    is_conv = info.kind.startswith("Conv")
    resource = str(info.strategy).lower() == "resource"
    crit = np.zeros(info.n_out, dtype=bool)
    crit[prot.critical_neurons] = True
    k = prot.protected_msbs

    lut_mult = lut_add = lut_mux = 0.0          # base Yosys LUTs
    ff_shared = 0.0
    rep_lut = 0.0                               # protection replicas (Yosys LUTs)
    voters = 0.0                                # protection voters (LUTs, exact)
    dsp = rep_dsp = 0.0
    bram = 0
    depth_terms = 1
    mult_delay = 0.0

    if not resource:
        pr = _products(info)
        add_per_neuron = pr.nonzero * costs.adder(w)        # products + bias into accum_t
        mult_lut_n = pr.fabric_lut
        lut_mult = float(mult_lut_n.sum())
        lut_add = float(add_per_neuron.sum())
        dsp_need = float(pr.dsp_slices.sum())
        n_mul = float(pr.dsp_products.sum())            # products HLS keeps as `mul`
        limit = math.ceil(info.n_in * info.n_out / r) - (pr.n_zeros // r)
        limit = max(1, limit)
        share = max(1.0, n_mul / limit) if n_mul > 0 else 1.0
        dsp = dsp_need / share
        if share > 1.0:                                      # time-shared DSPs: input muxes
            lut_mux += dsp * (wa * _mux_luts_per_bit(share) + ww * math.ceil(share / 64.0))
            ff_shared = dsp * (wa + ww)                      # operand/result registers
        # protection ------------------------------------------------------------------
        nc = ~crit
        if k > 0 and nc.any():
            # per non-zero product: two top-k product cones + k voters; per partial sum
            # (one per non-zero product): two k-bit slice adders with carry-in + k voters
            # (the low W-k bits and slice replica 0 are the W-bit adder counted above)
            g = costs.mult_cone_fraction(wa, ww, w, k)
            slice_add = costs.adder_slice_cin(k)
            rep_lut += 2.0 * (g * float(mult_lut_n[nc].sum()) + slice_add * float(pr.nonzero[nc].sum()))
            voters += 2.0 * k * costs.voter * float(pr.nonzero[nc].sum())  # product + sum words
            dsp_frac = float(pr.dsp_slices[nc].sum()) / dsp_need if dsp_need else 0.0
            rep_dsp += 2.0 * dsp * dsp_frac
        if crit.any():
            rep_lut += 2.0 * float(mult_lut_n[crit].sum() + add_per_neuron[crit].sum())
            voters += w * costs.voter * int(crit.sum())
            dsp_frac = float(pr.dsp_slices[crit].sum()) / dsp_need if dsp_need else 0.0
            rep_dsp += 2.0 * dsp * dsp_frac
        depth_terms = int(math.ceil(float(pr.nonzero.max()))) + 1 if pr.nonzero.size else 1
        if dsp_need > 0:
            mult_delay = DSP_DELAY_NS
        if pr.max_digits > 1:
            mult_delay = max(mult_delay, math.ceil(math.log2(pr.max_digits)) * _adder_delay(wa + ww))
        # II: the DSP-bound products (HLS keeps them as `mul` operations; the <= 2-digit
        # ones become shift-adds) pass through `limit` multipliers one after another.
        ii = max(1, min(r, math.ceil(share - 1e-9)))
        n_products = float(pr.nonzero.sum())
        n_dsp_products = float(pr.dsp_products.sum())
        known = pr.known_weights
    else:
        n_mult = math.ceil(info.n_in * info.n_out / r)
        generic_dsp = wa >= DSP_MIN_INPUT_BITS and ww >= DSP_MIN_GENERIC_WEIGHT_BITS
        per_dsp = _dsp_per_product(wa, ww) if generic_dsp else 0
        dsp = float(n_mult * per_dsp)
        lut_mult = 0.0 if generic_dsp else n_mult * costs.generic_mult(wa, ww)
        lut_add = n_mult * costs.adder(w)
        lut_mux = n_mult * wa * _mux_luts_per_bit(r)
        if r >= BRAM_MIN_REUSE:
            bram = math.ceil(n_mult * ww / BRAM18_WIDTH) * math.ceil(r / BRAM18_DEPTH)
        elif r > 1:
            lut_mux += n_mult * ww * math.ceil(r / 64.0)     # weight ROM in LUTs
        frac_crit = float(crit.sum()) / info.n_out
        if k > 0 and frac_crit < 1.0:
            g = costs.mult_cone_fraction(wa, ww, w, k)
            rest = 1.0 - frac_crit                          # share of non-critical neurons
            rep_lut += 2.0 * rest * (g * lut_mult + n_mult * costs.adder_slice_cin(k))
            voters += 2.0 * k * costs.voter * n_mult * rest
            rep_dsp += 2.0 * dsp * rest
        if frac_crit > 0:
            rep_lut += 2.0 * frac_crit * (lut_mult + lut_add)
            voters += w * costs.voter * int(crit.sum())
            rep_dsp += 2.0 * dsp * frac_crit
        depth_terms = 2
        mult_delay = DSP_DELAY_NS if generic_dsp else 2 * _adder_delay(wa + ww)
        ii = r
        n_products = float(n_mult)
        n_dsp_products = float(n_mult if generic_dsp else 0)
        known = info.weights is not None

    # convolution data movement -------------------------------------------------------
    ff_extra = 0.0
    if is_conv:
        if info.io_type == "io_parallel":
            lut_mux += info.n_in * wa * _mux_luts_per_bit(positions)      # im2col select
            ff_extra += positions * info.n_out * wr                          # output array
        else:
            ff_extra += info.n_in * wa                                       # window registers

    # latency ---------------------------------------------------------------------------
    clock_ns = 1000.0 / clock_mhz
    usable = clock_ns * (1.0 - CLOCK_UNCERTAINTY)
    tree_levels = max(1, math.ceil(math.log2(max(2, depth_terms))))
    path = mult_delay + tree_levels * _adder_delay(w)
    protected = k > 0 or bool(crit.any())
    if k > 0 and (~crit).any():
        # fpgaft_tmr.h: the product is voted, then a balanced tree of voted (split) adds
        path += VOTER_DELAY_NS * (1 + tree_levels)
    elif protected:
        path += VOTER_DELAY_NS  # critical neurons only: one vote at the neuron output
    depth = max(1, math.ceil(path / usable))
    if resource:
        layer_latency = depth + r
    else:
        layer_latency = depth + (ii - 1)
    if is_conv:
        layer_latency = positions * ii + depth

    # registers -------------------------------------------------------------------------
    ff_base = info.n_in * wa + depth * info.n_out * w + ff_extra + ff_shared
    ff_prot = 0.0
    if k > 0:
        ff_prot += 2.0 * k * depth * float((~crit).sum())
    if crit.any():
        ff_prot += 2.0 * depth * w * float(crit.sum())
    if protected:
        ff_prot += info.n_out * w                                          # voted outputs

    base_lut_y = lut_mult + lut_add + lut_mux
    return {
        "name": info.name,
        "kind": info.kind,
        "_base_lut_yosys": base_lut_y,
        "_replica_lut_yosys": rep_lut,
        "_voter_lut": voters,
        "_ff_base": ff_base,
        "_ff_prot": ff_prot,
        "DSP_base": dsp,
        "DSP_prot": rep_dsp,
        "BRAM_18K": int(bram),
        "latency_cycles": int(layer_latency),
        "ii": int(ii),
        "products_nonzero": n_products,
        "products_dsp": n_dsp_products,
        "weights_known": bool(known),
    }


def estimate_resources(layers: list[LayerInfo], plan: ProtectionPlan | None = None,
                       clock_mhz: float | None = None, *, target: str = "synth") -> ResourceEstimate:
    """Estimate LUT / FF / DSP / BRAM_18K and latency of the protectable layers.

    Args:
        layers: the model's Dense / Conv layers (``fpga_ft.convert.describe_layers``); pass
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


__all__ = ["ResourceEstimate", "estimate_resources", "load_calibration", "csd_digits",
           "CALIBRATION_PATH"]
