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

The model (every constant in :mod:`~fpga_ft.measure.resources.costs` names its origin;
``docs/estimator.md`` has the long form):

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
  (:func:`~fpga_ft.measure.resources.trees._add_span`: operand ranges from the input type and the weight codes; products
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

Modules: :mod:`~fpga_ft.measure.resources.costs` (constants, the calibration table and
unit costs, number helpers), :mod:`~fpga_ft.measure.resources.products` (per-layer product
statistics), :mod:`~fpga_ft.measure.resources.trees` (what is built: the structure and
its adder trees), :mod:`~fpga_ft.measure.resources.neuron` (one neuron as built; a
latency-strategy layer), :mod:`~fpga_ft.measure.resources.shared` (time-shared layers),
:mod:`~fpga_ft.measure.resources.estimate` (:func:`estimate_resources`,
:class:`ResourceEstimate`).
"""

from fpga_ft.measure.resources.costs import (
                                             ADDER_DELAY_NS,
                                             ADDER_DELAY_PER_BIT_NS,
                                             BRAM18_DEPTH,
                                             BRAM18_WIDTH,
                                             BRAM_MIN_REUSE,
                                             CALIBRATION_PATH,
                                             CLOCK_UNCERTAINTY,
                                             DEFAULT_CLOCK_MHZ,
                                             DSP_A_BITS,
                                             DSP_B_BITS,
                                             DSP_DELAY_NS,
                                             DSP_MIN_CSD_DIGITS,
                                             DSP_MIN_GENERIC_WEIGHT_BITS,
                                             DSP_MIN_INPUT_BITS,
                                             HLS_TO_SYNTH_FF,
                                             HLS_TO_SYNTH_LUT,
                                             MUX_INPUTS_PER_LUT,
                                             SCALE_SYNTH,
                                             VOTER_DELAY_NS,
                                             csd_digits,
                                             load_calibration,
)
from fpga_ft.measure.resources.estimate import ResourceEstimate, estimate_resources
from fpga_ft.measure.resources.neuron import neuron_lut_yosys, structure_lut_yosys
from fpga_ft.measure.resources.shared import time_shared_lut_yosys

__all__ = ["ResourceEstimate", "estimate_resources", "neuron_lut_yosys", "structure_lut_yosys", "time_shared_lut_yosys",
           "load_calibration", "csd_digits",
           "CALIBRATION_PATH",
           # the model's constants (fpga_ft.measure.resources.costs)
           "ADDER_DELAY_NS", "ADDER_DELAY_PER_BIT_NS", "BRAM18_DEPTH", "BRAM18_WIDTH", "BRAM_MIN_REUSE",
           "CLOCK_UNCERTAINTY", "DEFAULT_CLOCK_MHZ", "DSP_A_BITS", "DSP_B_BITS", "DSP_DELAY_NS", "DSP_MIN_CSD_DIGITS",
           "DSP_MIN_GENERIC_WEIGHT_BITS", "DSP_MIN_INPUT_BITS", "HLS_TO_SYNTH_FF", "HLS_TO_SYNTH_LUT",
           "MUX_INPUTS_PER_LUT", "SCALE_SYNTH", "VOTER_DELAY_NS"]
