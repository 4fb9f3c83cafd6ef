"""The twin of one neuron's protected dot product (:class:`Twin`), generated from its
:class:`~fpga_ft.core.structure.NeuronStructure`: BitTMR (kept product replicas, single
low adders, kept k-bit lanes), FullTMR (three kept dot products, one W-bit voter) and
Unprotected (plain operator modules); clean, with fault injection (``fsel``), and (BitTMR)
with cut points for the proof. Widths in bits; the arithmetic and the layout of each
scheme are described in :mod:`fpga_ft.measure.twin`.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.structure import (
    KIND_ADD,
    KIND_DOT,
    KIND_MUL,
    REPLICAS,
    BitTMR,
    FullTMR,
    NeuronStructure,
    Unprotected,
    module_stem,
)
from fpga_ft.measure.twin.arithmetic import Arithmetic
from fpga_ft.measure.twin.sites import _FaultSites
from fpga_ft.measure.twin.verilog import _code_tag, _ident, _lane_module, _lit, _maj, _rescaled


@dataclass
class _Val:
    """Verilog expressions of one BitTMR tree node: ``low`` (L bits, None when k == W),
    ``lanes`` (three k-bit expressions), ``is_add``."""

    low: str | None = None
    lanes: tuple[str, str, str] | None = None
    is_add: bool = False


# ---------------------------------------------------------------------------------------
# The twin
# ---------------------------------------------------------------------------------------


class Twin(_FaultSites):
    """Verilog of one :class:`NeuronStructure` (see the module docstring).

    Attributes:
        structure, arith: what is generated.
        n_in: inputs of the bus ``x`` (``n_in * Wa`` bits).
        sites: every fault site, group by group (masked groups first, unmasked last).
        groups: labels of the masked proof groups (``lane0``.., ``r0``..; ``group_sites[g]``
            their sites; the last entry of ``group_sites`` holds the unmasked sites).
        n_masked: number of masked sites (bits).
        fsel_width: width of the fault twin's ``fsel`` input = ``group_bits + node_bits +
            bit_bits`` (bits); ``index_bits = node_bits + bit_bits``.
        top, top_fi: module names of the clean twin and of the fault-injection twin.
    """

    def __init__(self, structure: NeuronStructure, arith: Arithmetic, n_in: int | None = None):
        if not isinstance(structure.scheme, (Unprotected, BitTMR, FullTMR)):
            raise FpgaFtError(f"layer '{structure.layer}' neuron {structure.neuron}: scheme "
                              f"'{structure.scheme.name}' has no structural twin (fpga-ft verify covers "
                              "protected_msbs and critical_neurons)")
        if structure.scheme.width != arith.width:
            raise FpgaFtError(f"scheme width {structure.scheme.width} != accumulator width {arith.width}")
        self.structure, self.arith = structure, arith
        used = max((t.input for t in structure.products), default=-1) + 1
        self.n_in = max(int(n_in or 0), used, 1)
        nodes = structure.nodes()
        if len(set(nodes)) != len(nodes):
            raise FpgaFtError("NeuronStructure.nodes() lists a node twice")
        self._init_sites(nodes)
        self.top = f"fpgaft_twin_{_ident(structure.layer)}_n{structure.neuron}"
        self.top_fi = f"{self.top}_fi"
        self._fault_on = False  # generation state; modules() holds _lock while it is used
        self._used: set = set()
        self._lock = threading.Lock()
        self._cache: dict[tuple[bool, bool], dict[str, str]] = {}

    # ---- basic facts -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.arith.width

    @property
    def bus_width(self) -> int:
        """Width of the input bus ``x`` in bits."""
        return self.n_in * self.arith.in_width

    @property
    def k(self) -> int:
        s = self.structure.scheme
        return s.k if isinstance(s, BitTMR) else self.width

    @property
    def low_bits(self) -> int:
        return self.width - self.k

    def _x(self, i: int) -> str:
        return f"x[{i * self.arith.in_width} +: {self.arith.in_width}]"

    # ---- products --------------------------------------------------------------------
    def _product_lines(self, p: str, xexpr: str, code: int) -> list[str]:
        """Verilog defining ``wire [W-1:0] {p}_w``: ``x * code`` rescaled and wrapped."""
        a, w = self.arith, self.width
        wx = a.in_width + (0 if a.in_signed else 1)
        pw = wx + abs(int(code)).bit_length() + 1
        ext = max(pw, w + max(a.shift, 0))
        xs = xexpr if a.in_signed else f"{{1'b0, {xexpr}}}"
        lines = [f"  wire signed [{wx - 1}:0] {p}_xs = {xs};",
                 f"  wire signed [{pw - 1}:0] {p}_k = {_lit(pw, code)};  // code {code}",
                 f"  wire signed [{pw - 1}:0] {p}_m = {p}_xs * {p}_k;",
                 f"  wire signed [{ext - 1}:0] {p}_e = {p}_m;"]
        return lines + [f"  wire [{w - 1}:0] {p}_w = {_rescaled(p, a)};"]

    def mul_name(self, replica: int, code: int) -> str:
        return f"{module_stem(KIND_MUL, replica)}_{_code_tag(code)}"

    def _mul_module(self, replica: int, code: int) -> str:
        w, k = self.width, self.k
        out = f"[{w - 1}:0]" if replica == 0 else f"[{k - 1}:0]"
        body = self._product_lines("p", "x", code)
        sel = "p_w" if replica == 0 else f"p_w[{w - 1}:{w - k}]"
        return (f"(* keep_hierarchy *)\nmodule {self.mul_name(replica, code)} "
                f"(input [{self.arith.in_width - 1}:0] x, output {out} y);\n"
                + "\n".join(body) + f"\n  assign y = {sel};\nendmodule\n")

    # ---- BitTMR lanes -----------------------------------------------------------------
    def add_name(self, replica: int, va: bool, vb: bool) -> str:
        return f"{module_stem(KIND_ADD, replica)}_{int(va)}{int(vb)}"

    def _add_module(self, replica: int, va: bool, vb: bool, cut: bool = False) -> str:
        name = self.add_name(replica, va, vb) + ("_cut" if cut else "")
        return _lane_module(name, self.k, self.low_bits, va, vb, cut)

    def cut_slots(self) -> dict[int, int]:
        """Cut-point slot of every add that is an operand of another add (``Add.index`` ->
        slot; its ``k``-bit cut input is ``z[slot*k +: k]``)."""
        voted = [a for a in self.structure.adds() if a is not self.structure.tree]
        return {a.index: i for i, a in enumerate(voted)}

    def _bit_tmr_top(self, fault: bool, cut: bool = False) -> tuple[str, dict[str, str]]:
        s, w, k, low = self.structure, self.width, self.k, self.low_bits
        mods: dict[str, str] = {}
        lines: list[str] = []
        vals: dict[int, _Val] = {}
        slots, observed = self.cut_slots(), []
        c_low0, c_lane = self._cls("product", "low", 0), [self._cls("product", "lane", r) for r in REPLICAS]
        for t in s.products:
            n = f"p{t.input}"
            for r in REPLICAS:
                name = self.mul_name(r, t.code)
                if name not in mods:
                    mods[name] = self._mul_module(r, t.code)
                ow = w if r == 0 else k
                faulted = self._xor(f"{n}_r{r}m[{w - 1}:{low}]" if r == 0 and low else f"{n}_r{r}m",
                                    self._fault(n, [c_lane[r]], low, k))
                if r == 0 and low:  # one XOR per node class, so that constants fold per class
                    faulted = f"{{{faulted}, {self._xor(f'{n}_r0m[{low - 1}:0]', self._fault(n, [c_low0], 0, low))}}}"
                lines += [f"  wire [{ow - 1}:0] {n}_r{r}m, {n}_r{r};",
                          f"  {name} u_{n}_r{r} (.x({self._x(t.input)}), .y({n}_r{r}m));",
                          f"  assign {n}_r{r} = {faulted};"]
            vals[id(t)] = _Val(low=f"{n}_r0[{low - 1}:0]" if low else None,
                               lanes=(f"{n}_r0[{w - 1}:{low}]", f"{n}_r1", f"{n}_r2"))
        for t in s.terms:
            if t.is_bias:
                pattern = t.code & ((1 << w) - 1)
                vals[id(t)] = _Val(low=_lit(low, pattern) if low else None,
                                   lanes=(_lit(k, pattern >> low),) * 3)
        c_slow, c_carry = self._cls("sum", "low", None), self._cls("sum", "carry", None)
        c_slane = [self._cls("sum", "lane", r) for r in REPLICAS]
        for a in s.adds():
            n = f"s{a.index}"
            va, vb = vals[id(a.left)], vals[id(a.right)]
            if low:  # the single low adder; its carry out enters the three lanes
                low_sum = self._xor(f"{n}_lc[{low - 1}:0]", self._fault(n, [c_slow], 0, low))
                carry = self._xor(f"{n}_lc[{low}]", self._fault(n, [c_carry], low, 1))
                lines += [f"  wire [{low}:0] {n}_lc = {{1'b0, {va.low}}} + {{1'b0, {vb.low}}};",
                          f"  wire [{low - 1}:0] {n}_low = {low_sum};",
                          f"  wire {n}_c = {carry};"]
            for r in REPLICAS:
                name = self.add_name(r, va.is_add, vb.is_add) + ("_cut" if cut else "")
                if name not in mods:
                    mods[name] = self._add_module(r, va.is_add, vb.is_add, cut)
                conns = []
                for op, v, child in (("a", va, a.left), ("b", vb, a.right)):
                    if v.is_add:
                        conns += [f".{op}{q}({v.lanes[q]})" for q in REPLICAS]
                        if cut:
                            obs = f"{n}_r{r}_{op}o"
                            lines.append(f"  wire [{k - 1}:0] {obs};")
                            conns += [f".{op}z(z[{slots[child.index] * k} +: {k}])", f".{op}o({obs})"]
                            observed.append(obs)
                    else:
                        conns.append(f".{op}({v.lanes[r]})")
                if low:
                    conns.append(f".ci({n}_c)")
                conns.append(f".y({n}_r{r}m)")
                lines += [f"  wire [{k - 1}:0] {n}_r{r}m, {n}_r{r};",
                          f"  {name} u_{n}_r{r} ({', '.join(conns)});",
                          f"  assign {n}_r{r} = {self._xor(f'{n}_r{r}m', self._fault(n, [c_slane[r]], low, k))};"]
            vals[id(a)] = _Val(low=f"{n}_low" if low else None, lanes=(f"{n}_r0", f"{n}_r1", f"{n}_r2"),
                               is_add=True)
        root = vals[id(s.tree)]
        vote = self._xor(f"({_maj(*root.lanes)})", self._fault("out", [self._cls("output", "voter", None)], low, k))
        lines.append(f"  wire [{k - 1}:0] vote = {vote};  // output voter (single)")
        lines.append(f"  assign y = {{vote, {root.low}}};" if low else "  assign y = vote;")
        if cut:
            lines.append(f"  assign v = {{{', '.join(reversed(observed))}}};" if observed else "  assign v = 1'b0;")
        return "\n".join(lines), mods

    # ---- W-bit word trees (FullTMR replicas, Unprotected) -----------------------------
    def word_mul_name(self, code: int) -> str:
        return f"fpgaft_mul_{_code_tag(code)}"

    @property
    def word_add_name(self) -> str:
        return f"fpgaft_add_w{self.width}"

    def _word_tree(self, prefix: str, mods: dict[str, str]) -> tuple[list[str], str]:
        """Lines computing the tree over W-bit words; returns (lines, root expression) and
        adds the operator modules to ``mods``. Node instance names are ``prefix + p<i>`` /
        ``prefix + s<index>``.

        Every product and every add is an instance of a plain (not kept) operator module,
        ``fpgaft_mul_c<code>`` / ``fpgaft_add_w<W>``, as HLS writes one operator per
        operation: synthesised with hierarchy, each add is one carry-chain adder (as in
        the BitTMR twin's split adders) instead of Yosys's ``alumacc`` fusing the whole
        tree and its constant products into one carry-save ``$macc``, which Yosys maps to
        about 35% more LUTs (2,122 vs 1,5xx for fc1 neuron 0 of digits_mlp)."""
        s, w = self.structure, self.width
        scheme = s.scheme
        c_p, c_s = scheme.product_nodes(), scheme.sum_nodes()
        lines: list[str] = []
        vals: dict[int, str] = {}
        if s.n_sums and self.word_add_name not in mods:
            mods[self.word_add_name] = (f"module {self.word_add_name} (input [{w - 1}:0] a, input [{w - 1}:0] b, "
                                        f"output [{w - 1}:0] y);\n  assign y = a + b;\nendmodule\n")
        for t in s.terms:
            if t.is_bias:
                vals[id(t)] = _lit(w, t.code)
                continue
            n, name = f"p{t.input}", self.word_mul_name(t.code)
            if name not in mods:
                mods[name] = (f"module {name} (input [{self.arith.in_width - 1}:0] x, output [{w - 1}:0] y);\n"
                              + "\n".join(self._product_lines("p", "x", t.code)) + "\n  assign y = p_w;\nendmodule\n")
            lines += [f"  wire [{w - 1}:0] {n}_w, {n};",
                      f"  {name} u_{n} (.x({self._x(t.input)}), .y({n}_w));",
                      f"  assign {n} = {self._xor(f'{n}_w', self._fault(prefix + n, c_p, 0, w))};"]
            vals[id(t)] = n
        for a in s.adds():
            n = f"s{a.index}"
            lines += [f"  wire [{w - 1}:0] {n}_w, {n};",
                      f"  {self.word_add_name} u_{n} (.a({vals[id(a.left)]}), .b({vals[id(a.right)]}), .y({n}_w));",
                      f"  assign {n} = {self._xor(f'{n}_w', self._fault(prefix + n, c_s, 0, w))};"]
            vals[id(a)] = n
        return lines, vals[id(s.tree)]

    def dot_name(self, replica: int, fault: bool = False) -> str:
        return f"{module_stem(KIND_DOT, replica)}_n{self.structure.neuron}" + ("_fi" if fault else "")

    def _full_tmr_top(self, fault: bool) -> tuple[str, dict[str, str]]:
        w = self.width
        mods: dict[str, str] = {}
        fport = f", input [{self.fsel_width - 1}:0] fsel" if fault else ""
        for r in REPLICAS:
            body, root = self._word_tree(f"r{r}.", mods)
            mods[self.dot_name(r, fault)] = (
                f"(* keep_hierarchy *)\nmodule {self.dot_name(r, fault)} "
                f"(input [{self.bus_width - 1}:0] x{fport}, output [{w - 1}:0] y);\n"
                + (self._fault_decl() if fault else "")
                + "\n".join(body) + f"\n  assign y = {root};\nendmodule\n")
        fconn = ", .fsel(fsel)" if fault else ""
        lines = [f"  wire [{w - 1}:0] d{r};\n  {self.dot_name(r, fault)} u_d{r} (.x(x){fconn}, .y(d{r}));"
                 for r in REPLICAS]
        vote = self._xor(f"({_maj('d0', 'd1', 'd2')})",
                         self._fault("out", [self._cls("output", "voter", None)], 0, w))
        lines.append(f"  assign y = {vote};  // output voter (single)")
        return "\n".join(lines), mods

    # ---- whole design ----------------------------------------------------------------
    @property
    def cut_width(self) -> int:
        """Width of the cut-point input ``z`` of the cut variant (bits, at least 1)."""
        return max(1, len(self.cut_slots()) * self.k)

    @property
    def observed_width(self) -> int:
        """Width of the cut variant's observed-voter output ``v`` (3 voters per cut, bits)."""
        return max(1, 3 * len(self.cut_slots()) * self.k)

    def modules(self, fault: bool = False, cut: bool = False) -> dict[str, str]:
        """Verilog module texts by name: the kept modules, then the top (``top`` clean,
        ``top_fi`` with the ``fsel`` input). Modules common to both variants (BitTMR's
        product and lane modules: faults sit on their outputs, in the top) have the same
        name and text in both.

        ``cut`` (BitTMR only; proof use, see :func:`prove_masked`): the same twin with every
        voter of a partial sum made a cut point: the voter's output leaves on ``v``, the
        adder after it takes ``z`` instead; names get a ``_cut`` suffix."""
        if cut and not isinstance(self.structure.scheme, BitTMR):
            raise FpgaFtError("cut-point variant exists for BitTMR twins only")
        key = (bool(fault), bool(cut))
        with self._lock:  # thread-safe (verify_neuron generates from several threads), memoised
            if key not in self._cache:
                self._cache[key] = self._generate(*key)
            return dict(self._cache[key])

    def _generate(self, fault: bool, cut: bool) -> dict[str, str]:
        s = self.structure
        self._fault_on, self._used = fault, set()
        try:
            mods: dict[str, str] = {}
            if s.n_products == 0:
                const = s.terms[0].code if s.terms else 0
                body = f"  assign y = {_lit(self.width, const)};  // no product: a constant"
            elif isinstance(s.scheme, BitTMR):
                body, mods = self._bit_tmr_top(fault, cut)
            elif isinstance(s.scheme, FullTMR):
                body, mods = self._full_tmr_top(fault)
            elif isinstance(s.scheme, Unprotected):
                lines, root = self._word_tree("", mods)
                body = "\n".join(lines + [f"  assign y = {root};"])
            else:
                raise FpgaFtError(f"no twin for scheme {s.scheme.name!r}")
            if fault:
                body = self._fault_decl() + body
                missing = set(self._node_sel) - self._used
                if missing:
                    raise AssertionError(f"nodes not instrumented: {sorted(n for n, _ in missing)[:5]}")
            name = (self.top_fi if fault else self.top) + ("_cut" if cut else "")
            fport = f", input [{self.fsel_width - 1}:0] fsel" if fault else ""
            if cut:
                fport += f", input [{self.cut_width - 1}:0] z, output [{self.observed_width - 1}:0] v"
                if s.n_products == 0:
                    body += "\n  assign v = 1'b0;"
            mods[name] = (f"module {name} (input [{self.bus_width - 1}:0] x{fport}, "
                          f"output [{self.width - 1}:0] y);\n{body}\nendmodule\n")
            return mods
        finally:
            self._fault_on = False

    def verilog(self, fault: bool = False) -> str:
        """One variant as a Verilog source."""
        return self._header() + "\n".join(self.modules(fault).values())

    def verilog_both(self, cut: bool = False) -> str:
        """Clean and fault twins in one source (shared modules once)."""
        mods = dict(self.modules(False, cut))
        mods.update(self.modules(True, cut))
        return self._header() + "\n".join(mods.values())

    def _header(self) -> str:
        s, a = self.structure, self.arith
        return (f"// fpga-ft structural twin: layer {s.layer} neuron {s.neuron}, scheme {s.scheme.name}, "
                f"W={a.width}, k={self.k}, input {a.in_width} bits {'signed' if a.in_signed else 'unsigned'}, "
                f"product shift {a.shift}, {s.n_products} products\n")

    def module_instances(self) -> dict[str, int]:
        """Kept module instances per stem in the generated clean twin (counted in its text)."""
        top = self.modules(False)[self.top]
        counts: dict[str, int] = {}
        for m in re.finditer(r"^\s*(fpgaft_tmr_r\d_(?:mul|add|dot))\w* u_", top, re.M):
            counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return counts

    def distinct_modules(self) -> dict[str, int]:
        """Distinct kept modules per stem in the generated clean twin."""
        counts: dict[str, int] = {}
        for name in self.modules(False):
            m = re.match(r"(fpgaft_tmr_r\d_(?:mul|add|dot))_", name)
            if m:
                counts[m.group(1)] = counts.get(m.group(1), 0) + 1
        return counts
