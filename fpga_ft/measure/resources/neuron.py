"""One neuron as built, at Yosys scale (LUT = 6-input LUTs before ``SCALE_SYNTH``, all
fabric): :func:`structure_lut_yosys`, :func:`neuron_lut_yosys`; and a latency-strategy
layer neuron by neuron: its LUTs, DSP48 slices, registers of shared DSPs and scheduling
figures (initiation interval in cycles, delays in ns).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.plan import LayerProtection
from fpga_ft.core.schemes import NeuronScheme
from fpga_ft.core.structure import (
    BitTMR,
    FullTMR,
    NeuronStructure,
    Unprotected,
    scheme_for,
)
from fpga_ft.measure.resources.costs import DSP_DELAY_NS, _adder_delay, _Costs, _costs, _csd_array, _mux_luts_per_bit
from fpga_ft.measure.resources.products import _product_shift, _Products, _products, _top_zero_from
from fpga_ft.measure.resources.trees import (
    _code_range,
    _input_range,
    _protection_of_layer,
    _read_tree,
    _structure,
    _Tree,
    _tree_of_size,
)


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
    if isinstance(scheme, NeuronScheme):  # a registered scheme costs itself from the plain neuron
        added, checker = scheme.neuron_lut(base, costs.voter)
        return _NeuronLut(base, float(added), float(checker))
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
    schemes = [scheme_for(info.accum_type.width, prot.protected_msbs, j in crit, prot.scheme_key_of(j))
               for j in range(info.n_out)]
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
        elif isinstance(scheme, NeuronScheme):
            dsp_prot += scheme.dsp_copies * float(pr.dsp_slices[j])
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
        "full_tmr": any(isinstance(s, (FullTMR, NeuronScheme)) for s in nn.schemes),
        "n_products": float(pr.nonzero.sum()), "n_dsp_products": float(pr.dsp_products.sum()),
        "known": pr.known_weights,
    }
