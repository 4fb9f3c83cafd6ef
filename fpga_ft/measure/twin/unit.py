"""Time-shared layers: the twin of one shared MAC unit (:class:`UnitTwin`: the proof chain,
the unit, and the whole layer for its cost), the layer twin's Icarus run
(:func:`simulate_layer`: R clock edges per vector, W-bit output words) and its cost
figures (:func:`unit_cost`: LUT1..LUT6 cells, FD* flip-flops).
"""

from __future__ import annotations

import os
import re
import threading
from typing import Sequence

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.structure import (
    KIND_ADD,
    KIND_SMUL,
    REPLICAS,
    BitTMR,
    FullTMR,
    NodeClass,
    module_stem,
)
from fpga_ft.measure.twin.arithmetic import SharedArithmetic
from fpga_ft.measure.twin.sites import _FaultSites
from fpga_ft.measure.twin.tools import _pack, _run_icarus
from fpga_ft.measure.twin.verilog import _count_stems, _generic_product_lines, _ident, _lane_module, _lit, _maj

# ---------------------------------------------------------------------------------------
# Time-shared layers: the twin of one shared MAC unit, and of the whole layer for its cost
# ---------------------------------------------------------------------------------------


class UnitTwin(_FaultSites):
    """Verilog of the shared MAC unit of a time-shared layer
    (:class:`~fpga_ft.core.structure.LayerStructure` with ``reuse_factor > 0``), generated from
    the layer's scheme only (every unit and every neuron of such a layer has the same).

    One MAC step, ``acc' = acc + x * w`` (``x`` the data word, ``w`` the weight word of the
    unit's ROM, both operands):

    ``BitTMR(k)`` (``L = W - k``)
        three kept generic multipliers ``fpgaft_tmr_r0_smul`` (the whole W-bit product),
        ``fpgaft_tmr_r1_smul`` / ``fpgaft_tmr_r2_smul`` (its top k bits); the single
        L-bit low adder ``{carry, low} = acc.low + p.low``; three kept lanes
        ``fpgaft_tmr_r<r>_add_10`` (``VA = true, VB = false``): lane r adds the 2-of-3 vote
        of the accumulator's three lanes, product replica r's top bits and the carry.
        The accumulator is L low bits once and three k-bit lanes; the neuron's output is
        ``{maj(lanes), low}`` by one k-bit voter. As ``fpgaft::tmr_mac`` /
        ``tmr_output`` of ``hls_templates/fpgaft_tmr.h``.
    ``Unprotected``
        a generic multiplier ``fpgaft_smul`` and a W-bit adder ``fpgaft_add_w<W>``
        (plain operator modules, as :meth:`Twin._word_tree`).

    Views (all from the same step generator :meth:`_step`):

    * the *chain* (``top`` / ``top_fi``): ``steps`` MAC steps (default 2) from a common
      accumulator value, then the output voter. Its input bus ``x`` packs
      ``x0, w0, x1, w1, .., acc`` (:attr:`fields`, little-end first; ``acc`` is a W-bit
      pattern whose top bits enter all three lanes: the lanes agree, as at the start of
      every evaluation). Its fault sites are the scheme's node classes per step (``p<s>``
      the product of step s, ``s<s>`` its partial sum) and the output voter (``out``):
      exactly what the csim exposes per product, per partial sum and per neuron. With
      two steps a lane fault of step 0 meets the vote of step 1's read, one of step 1
      the output voter: :func:`prove_masked` proves every masked class for all
      ``x, w, acc``.
    * the *unit* (:meth:`mac_module`, module ``mac``): one step, the accumulator as ports
      (``al``, ``a0..a2`` in; ``yl``, ``y0..y2`` out; unprotected ``a`` / ``y``). Its
      registers are not in it: they belong to the neurons (next item).
    * the *layer* (:meth:`layer_verilog`, module ``layer_top``): the layer as
      ``hls_templates/emit_cpp.py`` ``_time_shared`` builds it: a cycle counter ``c``
      (0..R-1); per unit a *feed* module (its weight ROM and its input select, both
      R:1 functions of ``c``: HLS gives every unit its own tables) and one ``mac``
      instance; per neuron the accumulator register (L + 3k flip-flops, unprotected W),
      read as the bias at ``c == 0``, and (BitTMR) its k-bit output voter. Units are
      wired in unit order, each reading its neuron's accumulator as updated by the
      units before it in the same cycle (the C++ loop body's sequential semantics). This
      is what :func:`verify_time_shared` synthesises for the cost: ``synth_xilinx``
      with hierarchy, ``stat -top`` multiplying the one ``mac`` module by its n_units
      instances.
    """

    def __init__(self, structure, arith: SharedArithmetic, steps: int = 2):
        if not getattr(structure, "time_shared", False):
            raise FpgaFtError(f"layer '{structure.name}' is not time-shared: use Twin per neuron")
        scheme = structure.scheme
        if any(n.scheme != scheme for n in structure.neurons):
            raise FpgaFtError(f"layer '{structure.name}': the neurons of a time-shared layer share one scheme")
        if isinstance(scheme, FullTMR):
            raise FpgaFtError(f"layer '{structure.name}': FullTMR has no time-shared form")
        if scheme.width != arith.width:
            raise FpgaFtError(f"scheme width {scheme.width} != accumulator width {arith.width}")
        if int(steps) < 1:
            raise FpgaFtError("a unit chain needs at least one step")
        self.structure, self.arith, self.steps = structure, arith, int(steps)
        self.protected = isinstance(scheme, BitTMR)
        nodes: list[tuple[str, NodeClass]] = []
        for s in range(self.steps):
            nodes += [(f"p{s}", c) for c in scheme.product_nodes()]
            nodes += [(f"s{s}", c) for c in scheme.sum_nodes()]
        nodes += [("out", c) for c in scheme.output_nodes()]
        self._init_sites(nodes)
        stem = f"fpgaft_twin_{_ident(structure.name)}"
        tag = "" if self.protected else "_plain"
        self.top = f"{stem}_unit{self.steps}{tag}"
        self.top_fi = f"{self.top}_fi"
        self.mac = f"{stem}_mac{tag}"
        self.layer_top = f"{stem}_layer{tag}"
        a = arith
        #: fields of the chain's input bus: (name, bits, signed)
        self.fields: list[tuple[str, int, bool]] = []
        for s in range(self.steps):
            self.fields += [(f"x{s}", a.in_width, a.in_signed), (f"w{s}", a.w_width, a.w_signed)]
        self.fields.append(("acc", a.width, False))
        self.n_in = len(self.fields)
        self._fault_on = False
        self._used: set = set()
        self._lock = threading.Lock()
        self._cache: dict[bool, dict[str, str]] = {}

    # ---- basic facts -------------------------------------------------------------------
    @property
    def scheme(self):
        return self.structure.scheme

    @property
    def width(self) -> int:
        return self.arith.width

    @property
    def k(self) -> int:
        return self.scheme.k if self.protected else self.width

    @property
    def low_bits(self) -> int:
        return self.width - self.k

    @property
    def bus_width(self) -> int:
        return sum(bits for _, bits, _ in self.fields)

    def cut_slots(self) -> dict[int, int]:
        """No cut points: the chain is two steps deep (see :func:`prove_masked`)."""
        return {}

    def _offset(self, name: str) -> tuple[int, int]:
        pos = 0
        for n, bits, _ in self.fields:
            if n == name:
                return pos, bits
            pos += bits
        raise KeyError(name)

    def _field(self, name: str) -> str:
        pos, bits = self._offset(name)
        return f"x[{pos} +: {bits}]"

    def pack(self, row: Sequence[int]) -> int:
        """One chain input vector (a value per field) as the bus integer."""
        bus, pos = 0, 0
        for (_, bits, _), v in zip(self.fields, row):
            bus |= (int(v) & ((1 << bits) - 1)) << pos
            pos += bits
        return bus

    def random_inputs(self, count: int, seed: int = 0) -> np.ndarray:
        """``count`` chain vectors (one value per field): all minimum, all maximum, zero,
        alternating extremes, then uniform random (``acc``: any W-bit pattern)."""
        ranges = []
        for name, bits, _ in self.fields:
            ranges.append(self.arith.input_range if name.startswith("x") else
                          self.arith.weight_range if name.startswith("w") else (0, (1 << bits) - 1))
        lo = np.array([r[0] for r in ranges], dtype=np.int64)
        hi = np.array([r[1] for r in ranges], dtype=np.int64)
        alt = np.where(np.arange(len(ranges)) % 2 == 0, lo, hi)
        rng = np.random.default_rng(seed)
        fixed = [lo, hi, np.zeros(len(ranges), dtype=np.int64), alt]
        rows = fixed[:count] + [np.array([rng.integers(a, b + 1) for a, b in ranges], dtype=np.int64)
                                for _ in range(max(0, count - len(fixed)))]
        return np.asarray(rows, dtype=np.int64).reshape(count, len(ranges))

    def reference(self, x) -> np.ndarray:
        """The chain's output word (W-bit pattern) per vector: ``(acc + sum of the wrapped
        products) mod 2^W``."""
        out = []
        for row in np.asarray(x, dtype=object).reshape(-1, self.n_in):
            acc = int(row[-1])
            for s in range(self.steps):
                acc += self.arith.rescale(int(row[2 * s]) * int(row[2 * s + 1]))
            out.append(acc % (1 << self.width))
        return np.asarray(out, dtype=object)

    # ---- modules -----------------------------------------------------------------------
    def smul_name(self, replica: int | None) -> str:
        return module_stem(KIND_SMUL, replica) if replica is not None else "fpgaft_smul"

    def lane_name(self, replica: int) -> str:
        """Lane module of a MAC: the accumulator voted (VA), the product not (VB)."""
        return f"{module_stem(KIND_ADD, replica)}_10"

    @property
    def add_name(self) -> str:
        return f"fpgaft_add_w{self.width}"

    def _operator_modules(self) -> dict[str, str]:
        a, w, k = self.arith, self.width, self.k
        ports = f"input [{a.in_width - 1}:0] x, input [{a.w_width - 1}:0] w"
        body = "\n".join(_generic_product_lines("p", "x", "w", a))
        mods: dict[str, str] = {}
        if self.protected:
            for r in REPLICAS:
                out, sel = (f"[{w - 1}:0]", "p_w") if r == 0 else (f"[{k - 1}:0]", f"p_w[{w - 1}:{w - k}]")
                mods[self.smul_name(r)] = (f"(* keep_hierarchy *)\nmodule {self.smul_name(r)} ({ports}, "
                                           f"output {out} y);\n{body}\n  assign y = {sel};\nendmodule\n")
            for r in REPLICAS:
                mods[self.lane_name(r)] = _lane_module(self.lane_name(r), k, self.low_bits, True, False)
        else:
            mods[self.smul_name(None)] = (f"module {self.smul_name(None)} ({ports}, output [{w - 1}:0] y);\n"
                                          f"{body}\n  assign y = p_w;\nendmodule\n")
            mods[self.add_name] = (f"module {self.add_name} (input [{w - 1}:0] a, input [{w - 1}:0] b, "
                                   f"output [{w - 1}:0] y);\n  assign y = a + b;\nendmodule\n")
        return mods

    def _step(self, s: int, x: str, w: str, acc):
        """Lines of MAC step ``s`` (node instances ``p<s>``, ``s<s>``) on data ``x``, weight
        ``w`` and accumulator ``acc`` (BitTMR: ``(low or None, (lane0, lane1, lane2))``;
        unprotected: a W-bit expression). Returns ``(lines, new acc)``."""
        wd, k, low = self.width, self.k, self.low_bits
        n, m = f"p{s}", f"s{s}"
        lines: list[str] = []
        if not self.protected:
            c_p, c_s = self.scheme.product_nodes(), self.scheme.sum_nodes()
            lines += [f"  wire [{wd - 1}:0] {n}_w, {n};",
                      f"  {self.smul_name(None)} u_{n} (.x({x}), .w({w}), .y({n}_w));",
                      f"  assign {n} = {self._xor(f'{n}_w', self._fault(n, c_p, 0, wd))};",
                      f"  wire [{wd - 1}:0] {m}_w, {m};",
                      f"  {self.add_name} u_{m} (.a({acc}), .b({n}), .y({m}_w));",
                      f"  assign {m} = {self._xor(f'{m}_w', self._fault(m, c_s, 0, wd))};"]
            return lines, m
        acc_low, acc_lanes = acc
        c_low0, c_lane = self._cls("product", "low", 0), [self._cls("product", "lane", r) for r in REPLICAS]
        for r in REPLICAS:
            ow = wd if r == 0 else k
            faulted = self._xor(f"{n}_r{r}m[{wd - 1}:{low}]" if r == 0 and low else f"{n}_r{r}m",
                                self._fault(n, [c_lane[r]], low, k))
            if r == 0 and low:  # one XOR per node class
                faulted = f"{{{faulted}, {self._xor(f'{n}_r0m[{low - 1}:0]', self._fault(n, [c_low0], 0, low))}}}"
            lines += [f"  wire [{ow - 1}:0] {n}_r{r}m, {n}_r{r};",
                      f"  {self.smul_name(r)} u_{n}_r{r} (.x({x}), .w({w}), .y({n}_r{r}m));",
                      f"  assign {n}_r{r} = {faulted};"]
        p_lanes = (f"{n}_r0[{wd - 1}:{low}]", f"{n}_r1", f"{n}_r2")
        c_slow, c_carry = self._cls("sum", "low", None), self._cls("sum", "carry", None)
        c_slane = [self._cls("sum", "lane", r) for r in REPLICAS]
        if low:  # the single low adder; its carry out enters the three lanes
            low_sum = self._xor(f"{m}_lc[{low - 1}:0]", self._fault(m, [c_slow], 0, low))
            lines += [f"  wire [{low}:0] {m}_lc = {{1'b0, {acc_low}}} + {{1'b0, {n}_r0[{low - 1}:0]}};",
                      f"  wire [{low - 1}:0] {m}_low = {low_sum};",
                      f"  wire {m}_c = {self._xor(f'{m}_lc[{low}]', self._fault(m, [c_carry], low, 1))};"]
        for r in REPLICAS:
            conns = [f".a{q}({acc_lanes[q]})" for q in REPLICAS] + [f".b({p_lanes[r]})"]
            conns += [f".ci({m}_c)"] if low else []
            conns.append(f".y({m}_r{r}m)")
            lines += [f"  wire [{k - 1}:0] {m}_r{r}m, {m}_r{r};",
                      f"  {self.lane_name(r)} u_{m}_r{r} ({', '.join(conns)});",
                      f"  assign {m}_r{r} = {self._xor(f'{m}_r{r}m', self._fault(m, [c_slane[r]], low, k))};"]
        return lines, (f"{m}_low" if low else None, (f"{m}_r0", f"{m}_r1", f"{m}_r2"))

    def modules(self, fault: bool = False, cut: bool = False) -> dict[str, str]:
        """Module texts of the chain (``top``; ``top_fi`` with the ``fsel`` input)."""
        if cut:
            raise FpgaFtError("the unit chain has no cut-point variant")
        with self._lock:
            if fault not in self._cache:
                self._cache[bool(fault)] = self._generate(bool(fault))
            return dict(self._cache[bool(fault)])

    def _generate(self, fault: bool) -> dict[str, str]:
        self._fault_on, self._used = fault, set()
        try:
            mods = self._operator_modules()
            wd, k, low = self.width, self.k, self.low_bits
            pos, _ = self._offset("acc")
            if self.protected:  # the accumulator's lanes agree (one W-bit value)
                acc = (f"x[{pos} +: {low}]" if low else None, (f"x[{pos + low} +: {k}]",) * 3)
            else:
                acc = f"x[{pos} +: {wd}]"
            lines: list[str] = []
            for s in range(self.steps):
                body, acc = self._step(s, self._field(f"x{s}"), self._field(f"w{s}"), acc)
                lines += body
            if self.protected:
                acc_low, lanes = acc
                vote = self._xor(f"({_maj(*lanes)})",
                                 self._fault("out", [self._cls("output", "voter", None)], low, k))
                lines.append(f"  wire [{k - 1}:0] vote = {vote};  // output voter (single)")
                lines.append(f"  assign y = {{vote, {acc_low}}};" if low else "  assign y = vote;")
            else:
                lines.append(f"  assign y = {acc};")
            body = "\n".join(lines)
            if fault:
                body = self._fault_decl() + body
                missing = set(self._node_sel) - self._used
                if missing:
                    raise AssertionError(f"nodes not instrumented: {sorted(n for n, _ in missing)[:5]}")
            name = self.top_fi if fault else self.top
            fport = f", input [{self.fsel_width - 1}:0] fsel" if fault else ""
            mods[name] = (f"module {name} (input [{self.bus_width - 1}:0] x{fport}, "
                          f"output [{wd - 1}:0] y);\n{body}\nendmodule\n")
            return mods
        finally:
            self._fault_on = False

    def _header(self, what: str) -> str:
        a, st = self.arith, self.structure
        return (f"// fpga-ft structural twin: {what} of time-shared layer {st.name} ({st.n_in}x{len(st.neurons)}, "
                f"R={st.reuse_factor}, {st.n_units} MAC units), scheme {self.scheme.name}, W={a.width}, k={self.k}, "
                f"input {a.in_width} bits {'signed' if a.in_signed else 'unsigned'}, weight {a.w_width} bits "
                f"{'signed' if a.w_signed else 'unsigned'}, product shift {a.shift}\n")

    def verilog(self, fault: bool = False) -> str:
        return self._header(f"{self.steps}-step MAC chain") + "\n".join(self.modules(fault).values())

    def verilog_both(self, cut: bool = False) -> str:
        mods = dict(self.modules(False, cut))
        mods.update(self.modules(True, cut))
        return self._header(f"{self.steps}-step MAC chain") + "\n".join(mods.values())

    def mac_module(self) -> str:
        """The MAC unit: one step, accumulator in and out as ports (module ``mac``)."""
        a, wd, k, low = self.arith, self.width, self.k, self.low_bits
        ports = [f"input [{a.in_width - 1}:0] x", f"input [{a.w_width - 1}:0] w"]
        with self._lock:
            self._fault_on = False
            if self.protected:
                ports += ([f"input [{low - 1}:0] al"] if low else []) + [f"input [{k - 1}:0] a{r}" for r in REPLICAS]
                ports += ([f"output [{low - 1}:0] yl"] if low else []) + [f"output [{k - 1}:0] y{r}" for r in REPLICAS]
                body, (ol, olanes) = self._step(0, "x", "w", ("al" if low else None, ("a0", "a1", "a2")))
                body += ([f"  assign yl = {ol};"] if low else []) + [f"  assign y{r} = {olanes[r]};" for r in REPLICAS]
            else:
                ports += [f"input [{wd - 1}:0] a", f"output [{wd - 1}:0] y"]
                body, o = self._step(0, "x", "w", "a")
                body.append(f"  assign y = {o};")
        return (f"(* keep_hierarchy *)\nmodule {self.mac} ({', '.join(ports)});\n" + "\n".join(body)
                + "\nendmodule\n")

    def _parts(self) -> list[tuple[str, int, int]]:
        """The parts of an accumulator word: (name, bits, lsb in the W-bit word)."""
        if not self.protected:
            return [("w", self.width, 0)]
        low = [("l", self.low_bits, 0)] if self.low_bits else []
        return low + [(str(r), self.k, self.low_bits) for r in REPLICAS]

    @property
    def counter_bits(self) -> int:
        return max(1, (self.structure.reuse_factor - 1).bit_length())

    def feed_name(self, unit: int) -> str:
        return f"{self.layer_top}_feed_u{unit}"

    def _feed_module(self, unit: int, slots: list, codes: list[list[int]]) -> str:
        """Unit ``unit``'s weight ROM and input select: R:1 functions of the cycle ``c``
        (an idle cycle reads input 0 and weight 0, as the generated C++ tables). Its data
        input ``d`` holds the R words the unit reads, cycle 0 first (wired by the top)."""
        a, cb = self.arith, self.counter_bits
        wa, ww, r_ = a.in_width, a.w_width, len(slots)
        lines = [f"module {self.feed_name(unit)} (input [{cb - 1}:0] c, input [{r_ * wa - 1}:0] d, "
                 f"output reg [{wa - 1}:0] xs, output reg [{ww - 1}:0] ws);",
                 "  always @* begin", "    case (c)"]
        for c, slot in enumerate(slots):
            code = codes[slot[0]][slot[1]] if slot is not None else 0
            lines.append(f"      {cb}'d{c}: begin xs = d[{c * wa} +: {wa}]; ws = {_lit(ww, code)}; end")
        if r_ < (1 << cb):
            lines.append(f"      default: begin xs = {{{wa}{{1'bx}}}}; ws = {{{ww}{{1'bx}}}}; end")
        return "\n".join(lines + ["    endcase", "  end", "endmodule"]) + "\n"

    def _feed_data(self, slots: list) -> str:
        """The top's connection of a feed's ``d``: the input word of each cycle (input 0
        on an idle cycle), last cycle first (a Verilog concatenation)."""
        wa = self.arith.in_width
        return "{" + ", ".join(f"x[{(slot[1] if slot is not None else 0) * wa} +: {wa}]"
                               for slot in reversed(slots)) + "}"

    def layer_modules(self) -> dict[str, str]:
        """Module texts of the layer twin (``layer_top``: inputs ``clk``, ``x`` = the n_in
        raw inputs, ``Wa`` bits each; output ``y`` = the n_out accumulator words, W bits
        each, valid when ``c`` is back at 0 after R clock edges)."""
        st, a = self.structure, self.arith
        r_, units, cb = st.reuse_factor, st.n_units, self.counter_bits
        sched = st.schedule()
        n_out, wd = len(st.neurons), self.width
        parts = self._parts()
        codes = [[t.code for t in n.products] for n in st.neurons]
        mods = self._operator_modules()
        mods[self.mac] = self.mac_module()
        lines = [f"  reg [{cb - 1}:0] c = {cb}'d0;  // cycle 0..{r_ - 1}",
                 f"  always @(posedge clk) c <= (c == {cb}'d{r_ - 1}) ? {cb}'d0 : c + {cb}'d1;"]
        cur: list[dict[str, str]] = []
        for j, n in enumerate(st.neurons):
            if not n.terms or not n.terms[-1].is_bias:
                raise FpgaFtError(f"layer '{st.name}' neuron {j}: a time-shared neuron ends with its bias")
            bias = n.terms[-1].code & ((1 << wd) - 1)
            cur.append({})
            for part, bits, lsb in parts:
                start = _lit(bits, bias >> lsb)
                lines += [f"  reg [{bits - 1}:0] q{j}_{part} = {bits}'d0;",
                          f"  wire [{bits - 1}:0] rd{j}_{part} = (c == {cb}'d0) ? {start} : q{j}_{part};"]
                cur[j][part] = f"rd{j}_{part}"
        for u in range(units):
            slots = [sched[c][u] for c in range(r_)]
            spans: dict[int, list[int]] = {}
            for c, slot in enumerate(slots):
                if slot is not None:
                    spans.setdefault(slot[0], []).append(c)
            if not spans:
                continue
            mods[self.feed_name(u)] = self._feed_module(u, slots, codes)
            lines += [f"  wire [{a.in_width - 1}:0] xs{u};", f"  wire [{a.w_width - 1}:0] ws{u};",
                      f"  {self.feed_name(u)} u_f{u} (.c(c), .d({self._feed_data(slots)}), .xs(xs{u}), .ws(ws{u}));"]
            js = sorted(spans)
            conns = [f".x(xs{u})", f".w(ws{u})"]
            for part, bits, _ in parts:
                sel = cur[js[-1]][part]
                for j in reversed(js[:-1]):
                    sel = f"(c <= {cb}'d{spans[j][-1]}) ? {cur[j][part]} : ({sel})"
                lines += [f"  wire [{bits - 1}:0] i{u}_{part} = {sel};", f"  wire [{bits - 1}:0] o{u}_{part};"]
                pin_in, pin_out = (("a", "y") if part == "w" else ("al", "yl") if part == "l"
                                   else (f"a{part}", f"y{part}"))
                conns += [f".{pin_in}(i{u}_{part})", f".{pin_out}(o{u}_{part})"]
            lines.append(f"  {self.mac} u_m{u} ({', '.join(conns)});")
            for j in js:
                lo, hi = spans[j][0], spans[j][-1]
                cond = " && ".join(([f"c >= {cb}'d{lo}"] if lo > 0 else [])
                                   + ([f"c <= {cb}'d{hi}"] if hi < r_ - 1 else []))
                for part, bits, _ in parts:
                    name = f"a{j}_u{u}_{part}"
                    expr = f"({cond}) ? o{u}_{part} : {cur[j][part]}" if cond else f"o{u}_{part}"
                    lines.append(f"  wire [{bits - 1}:0] {name} = {expr};")
                    cur[j][part] = name
        for j in range(n_out):
            for part, _, _ in parts:
                lines.append(f"  always @(posedge clk) q{j}_{part} <= {cur[j][part]};")
            if self.protected:
                vote = _maj(f"q{j}_0", f"q{j}_1", f"q{j}_2")
                word = f"{{{vote}, q{j}_l}}" if self.low_bits else f"({vote})"
                lines.append(f"  assign y[{j * wd} +: {wd}] = {word};  // output voter of neuron {j}")
            else:
                lines.append(f"  assign y[{j * wd} +: {wd}] = q{j}_w;")
        mods[self.layer_top] = (f"module {self.layer_top} (input clk, input [{st.n_in * a.in_width - 1}:0] x, "
                                f"output [{n_out * wd - 1}:0] y);\n" + "\n".join(lines) + "\nendmodule\n")
        return mods

    def layer_verilog(self) -> str:
        return self._header("layer") + "\n".join(self.layer_modules().values())

    def module_instances(self) -> dict[str, int]:
        """Kept replica-module instances per stem in the layer twin (n_units x per unit)."""
        per_unit: dict[str, int] = {}
        for m in re.finditer(r"^\s*(fpgaft_tmr_r\d_(?:smul|add))\w* u_", self.mac_module(), re.M):
            per_unit[m.group(1)] = per_unit.get(m.group(1), 0) + 1
        return {stem: n * self.structure.n_units for stem, n in per_unit.items()}

    def distinct_modules(self) -> dict[str, int]:
        return _count_stems({name: 1 for name in self._operator_modules()}, (KIND_SMUL, KIND_ADD))


def simulate_layer(twin: UnitTwin, x: np.ndarray, *, workdir: str | os.PathLike | None = None,
                   iverilog: str = "iverilog", timeout: float | None = 3600) -> np.ndarray:
    """Run the layer twin (Icarus) for R clock edges per raw input vector (``(V, n_in)``);
    returns the accumulator words ``(V, n_out)`` (W-bit patterns, object array)."""
    st, a = twin.structure, twin.arith
    x = np.asarray(x, dtype=np.int64).reshape(-1, st.n_in)
    n_out, wd = len(st.neurons), twin.width
    nx, ny = st.n_in * a.in_width, n_out * wd
    tb = ["module fpgaft_tb;", "  reg clk = 1'b0;", f"  reg [{nx - 1}:0] vec [0:{len(x) - 1}];",
          f"  reg [{nx - 1}:0] x;", f"  wire [{ny - 1}:0] y;", f"  {twin.layer_top} u_layer (.clk(clk), .x(x), .y(y));",
          "  integer i, t;", "  initial begin", '    $readmemh("vec.hex", vec);',
          f"    for (i = 0; i < {len(x)}; i = i + 1) begin",
          "      x = vec[i];",
          f"      for (t = 0; t < {st.reuse_factor}; t = t + 1) begin #1 clk = 1'b1; #1 clk = 1'b0; end",
          '      #1 $display("Y %h", y);', "    end", "    $finish;", "  end", "endmodule"]
    stdout = _run_icarus({"twin.v": twin.layer_verilog(), "tb.v": "\n".join(tb) + "\n",
                          "vec.hex": "".join(f"{_pack(r, a.in_width):x}\n" for r in x)},
                         twin.layer_top, "fpgaft_twin_lsim_", workdir, iverilog, timeout)
    rows = []
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["Y"]:
            if re.search(r"[xXzZ]", parts[1]):
                raise FpgaFtError(f"layer twin {twin.layer_top} output is undefined ({parts[1]}) in simulation")
            bus = int(parts[1], 16)
            rows.append([(bus >> (j * wd)) & ((1 << wd) - 1) for j in range(n_out)])
    if len(rows) != len(x):
        raise FpgaFtError(f"simulation of {twin.layer_top} printed {len(rows)} outputs for {len(x)} vectors")
    return np.asarray(rows, dtype=object).reshape(len(x), n_out)


def unit_cost(twin: UnitTwin, synth: dict) -> dict:
    """The cost figures of a layer twin's synthesis (:func:`synthesize` of
    :meth:`UnitTwin.layer_verilog`, hierarchy kept), LUT1..LUT6 cells and FD* flip-flops:
    ``unit_lut`` (one ``mac`` with its kept replicas), ``n_units``, ``units_lut`` =
    ``n_units * unit_lut``, ``feed_lut`` (all units' ROM + input select), ``glue_lut`` (the
    rest: accumulator start muxes, output voters, counter), ``lut`` (the whole layer) and
    ``ff``."""
    hier, mods = synth["hier_instances"], synth["modules"]
    n_units = int(hier.get(twin.mac, 0))
    # one unit: the mac module's own cells plus its operator modules (instantiated only
    # inside it: their instances per unit are theirs over the units')
    unit = mods.get(twin.mac, {}).get("lut", 0) + sum(
        mods[m]["lut"] * hier[m] // max(1, n_units) for m in twin._operator_modules() if m in hier)
    feed = sum(mods[m]["lut"] * n for m, n in hier.items() if m.startswith(f"{twin.layer_top}_feed_u"))
    return {"unit_lut": int(unit), "n_units": n_units, "units_lut": int(n_units * unit), "feed_lut": int(feed),
            "glue_lut": int(synth["lut"] - n_units * unit - feed), "lut": synth["lut"], "ff": synth["ff"],
            "carry4": synth["carry4"]}
