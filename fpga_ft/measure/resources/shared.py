"""Time-shared layers (reuse factor R > 1): the shared MAC units as built (unit costs in
LUTs at Yosys scale), :func:`time_shared_lut_yosys` (the layer at Yosys scale, all fabric,
for ``fpga-ft verify``), and the layer's LUTs, DSP48 slices and BRAM_18K block RAMs with
Vivado's bindings (latency: R cycles plus the pipeline depth).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.plan import LayerProtection
from fpga_ft.core.structure import (
    BitTMR,
    scheme_for,
)
from fpga_ft.measure.resources.costs import (
    BRAM18_DEPTH,
    BRAM18_WIDTH,
    BRAM_MIN_REUSE,
    DSP_DELAY_NS,
    DSP_MIN_GENERIC_WEIGHT_BITS,
    DSP_MIN_INPUT_BITS,
    _adder_delay,
    _Costs,
    _costs,
    _dsp_per_product,
    _mux_luts_per_bit,
)
from fpga_ft.measure.resources.trees import _protection_of_layer, _structure


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
