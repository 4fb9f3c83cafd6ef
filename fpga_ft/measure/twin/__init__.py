"""Structural Verilog twin of one neuron's protected dot product, its cost and a fault proof.

The twin is generated from :class:`fpga_ft.core.structure.NeuronStructure` only (its
``scheme``, ``terms``, balanced ``tree``, ``adds()``, ``nodes()``): this module adds no
description of its own of what a protection structure is, only how to write it in Verilog.

Arithmetic (bit for bit the HLS C++; widths in bits; ``W`` = ``accum_t`` width,
``k`` = ``protected_msbs``, ``L = W - k`` low bits):

* input ``x_i``: the raw integer of ``input_t`` (``Wa`` bits, signed or unsigned, ``Fa``
  fractional bits), packed little-end first into one bus ``x[i*Wa +: Wa]``;
* product with weight code ``c`` (raw ``weight_t`` integer, ``Fw`` fractional bits): the
  exact ``x_i * c``, rescaled to ``accum_t``'s ``Facc`` fractional bits by
  ``shift = Fa + Fw - Facc`` (``shift > 0``: arithmetic shift right = truncation toward
  -inf, AP_TRN; ``shift < 0``: shift left), wrapped to ``W`` bits (AP_WRAP);
* bias: its ``Term.code`` is already the raw ``accum_t`` value;
* every add is modulo ``2^W``; so the neuron output equals
  ``(sum of wrapped products + bias) mod 2^W`` whatever the tree (:func:`reference_output`).

Schemes, as Verilog (module names from :func:`fpga_ft.core.structure.module_stem`):

``BitTMR(k)``
    Per product three kept modules (``(* keep_hierarchy *)``), one per (replica, code):
    ``fpgaft_tmr_r0_mul_c<code>`` outputs the whole W-bit word, ``..._r1_...`` and
    ``..._r2_...`` only its top ``k`` bits (``c`` negative: ``m5`` for -5). An add:
    ``{carry, low} = left.low + right.low`` on ``L`` bits at the top level (single), then
    three kept lane modules ``fpgaft_tmr_r<r>_add_<va><vb>`` (``va``/``vb`` = 1 when that
    operand is an add) with ``y = opL_r + opR_r + carry (mod 2^k)``, where ``opX_r`` is the
    bitwise 2-of-3 majority of X's three lanes (voter inside lane r's module) when X is an
    add, else X's lane r (a product's replica r, the bias's constant top bits). Output
    ``{maj(root lanes), root.low}`` by one single voter. ``k == W``: no low part, no carry.
``FullTMR``
    Three kept modules ``fpgaft_tmr_r<r>_dot_n<J>``, each the whole tree over W-bit words
    with its own constants, voted bitwise by one W-bit voter.
``Unprotected``
    The same tree of W-bit products and adds, nothing kept. Like the FullTMR replicas'
    insides, each product and add is an instance of a plain operator module
    (``fpgaft_mul_c<code>``, ``fpgaft_add_w<W>``; see :meth:`Twin._word_tree`).

Fault injection: a second variant of the top (``<top>_fi``, and for FullTMR its own dot
modules ``..._fi``: the replicas are distinct modules, so each carries its own site ids)
has an input ``fsel = {group, node, bit}``. Every bit of every node of
:meth:`NeuronStructure.nodes` is one *site* (:class:`Site`); ``node`` numbers the
(node instance, node class) pairs of a proof *group* from 1 (0: no fault), ``bit`` the
bit within the class. The node's word is XORed, where its logic drives it (a module
output, a low sum, the carry, the voter), with ``(fnode == id) ? 1 << bit : 0`` (one XOR
per node class). Groups: the masked sites of each replica (FullTMR dot-product replica
``r<r>``; BitTMR lane replica ``lane<r>``), then all unmasked sites.

Proof (:func:`prove_masked`): Yosys ``sat -prove`` on a miter of the clean twin (gold)
and the fault twin (gate), flattened, before technology mapping, one SAT instance per
masked group with ``fsel``'s group field a constant and the rest free: every masked site
of the group at once, for all inputs. BitTMR uses the cut-point variant of the miter
(sound decomposition, argued in :func:`prove_masked`). :func:`simulate` (Icarus Verilog)
finds a witness input for every unmasked site (a single flip of a low bit, a carry, a
voter output or an unprotected word changes the modulo-2^W sum, so the first vector
already differs). Measured on fc1 neuron 0 of models/digits_mlp.h5 (61 products, W=17,
two cores shared with other jobs): k=2 three groups of 244 sites, 5 s each; k=17 three
groups of 2,074 sites, 8-26 s each (a single monolithic miter of all 6,222 sites timed
out after 300 s); FullTMR three groups of 2,074 sites, 8-12 s each.

Time-shared layers (:class:`UnitTwin`, :func:`verify_time_shared`; a layer whose
:class:`~fpga_ft.core.structure.LayerStructure` has ``reuse_factor > 0``): no neuron has a dot
product of its own; ``n_units`` shared MAC units serve them all, each a generic multiplier
(the weight from the unit's ROM is an operand) and an adder into the neuron's accumulator.
The twin is one MAC *unit* (BitTMR: kept ``fpgaft_tmr_r<r>_smul`` replicas, the single low
adder, kept lanes ``fpgaft_tmr_r<r>_add_10`` voting the accumulator's lanes), proved on a
chain of two MAC steps and the output voter (a lane fault of the first step is voted out
by the second step's read, one of the second by the output voter), and the whole *layer*
built from it for the cost (R-cycle counter, per unit its weight ROM and R:1 input select,
per neuron its accumulator register and output voter). Measured (Yosys 0.23, LUT cells):
Dense 16->8, R=4, 8-bit signed inputs and weights, W=20, k=2: unit 522 LUT protected,
185 unprotected (x2.82); layer 17,275 = 32 x 522 + 361 feeds + 210 glue (6,443
unprotected). Dense 32->10, R=8, 6-bit unsigned inputs, 6-bit weights, W=17, k=3: unit
224 / 84 (x2.67); layer 10,229 = 40 x 224 + 1,006 + 263 (4,537 unprotected).

Costs (:func:`synthesize`): ``synth_xilinx -family xc7 -nodsp -noiopad`` with hierarchy
(kept modules survive; each instance counted by ``stat -top``), LUT = LUT1..LUT6 cells.
fc1 neuron 0: unprotected 1,592 LUT, BitTMR k=2 3,287 (1,484 flattened without keep:
the replicas merge), FullTMR 4,793 = 3 x 1,592 + 17 voter LUTs.

Modules: :mod:`~fpga_ft.measure.twin.arithmetic` (the arithmetic and its Python
reference), :mod:`~fpga_ft.measure.twin.verilog` (Verilog text helpers),
:mod:`~fpga_ft.measure.twin.sites` (fault sites and their instrumentation),
:mod:`~fpga_ft.measure.twin.neuron` (:class:`Twin`), :mod:`~fpga_ft.measure.twin.unit`
(:class:`UnitTwin`, the layer twin and its cost), :mod:`~fpga_ft.measure.twin.tools`
(Yosys / Icarus runners, :func:`synthesize`), :mod:`~fpga_ft.measure.twin.proof`
(:func:`prove_masked`, :func:`simulate`), :mod:`~fpga_ft.measure.twin.verify`
(:func:`verify_neuron`, :func:`verify_time_shared`).
"""

from fpga_ft.measure.twin.arithmetic import Arithmetic, SharedArithmetic, random_inputs, reference_output, to_signed
from fpga_ft.measure.twin.neuron import Twin
from fpga_ft.measure.twin.proof import SAT_TIMEOUT_S, prove_masked, simulate
from fpga_ft.measure.twin.sites import Site
from fpga_ft.measure.twin.tools import SYNTH, find_tool, synthesize
from fpga_ft.measure.twin.unit import UnitTwin, simulate_layer, unit_cost
from fpga_ft.measure.twin.verify import CROSS_CHECK_SITES, verify_neuron, verify_time_shared

__all__ = ["Arithmetic", "Site", "Twin", "reference_output", "random_inputs", "to_signed", "synthesize",
           "prove_masked", "simulate", "verify_neuron", "find_tool", "SYNTH", "SAT_TIMEOUT_S",
           "SharedArithmetic", "UnitTwin", "simulate_layer", "unit_cost", "verify_time_shared",
           "CROSS_CHECK_SITES"]
