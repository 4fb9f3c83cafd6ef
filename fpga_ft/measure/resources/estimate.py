"""The estimate of a design: :func:`estimate_resources` and :class:`ResourceEstimate`.

Units: ``LUT`` 6-input LUTs, ``FF`` flip-flops, ``DSP`` DSP48 slices, ``BRAM_18K`` 18 Kb
block RAMs, ``latency_cycles`` clock cycles at ``clock_mhz`` (MHz); per layer with the
protection share (replicas and voters).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.schemes import scheme_for_key
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.measure.resources.costs import (
    CLOCK_UNCERTAINTY,
    DEFAULT_CLOCK_MHZ,
    HLS_TO_SYNTH_FF,
    HLS_TO_SYNTH_LUT,
    SCALE_SYNTH,
    VOTER_DELAY_NS,
    _adder_delay,
    _costs,
    _mux_luts_per_bit,
)
from fpga_ft.measure.resources.neuron import _latency_parts
from fpga_ft.measure.resources.shared import _resource_parts
from fpga_ft.measure.resources.trees import _protection_of


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
    plain = parts_of(info, LayerProtection(), costs) if prot.is_protected else parts

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
    n_other = sum(len(v) for v in prot.scheme_neurons.values())
    if k > 0:
        ff_prot += 2.0 * k * depth * float(info.n_out - n_crit - n_other)
    if n_crit:
        ff_prot += 2.0 * depth * w * float(n_crit)
    for key, neurons in prot.scheme_neurons.items():  # registered schemes: their extra copies' registers
        ff_prot += (scheme_for_key(key, w).dot_replicas - 1) * depth * w * float(len(neurons))
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
