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
"""

from __future__ import annotations

import concurrent.futures as cf
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.structure import (
    KIND_ADD,
    KIND_DOT,
    KIND_MUL,
    KIND_SMUL,
    REPLICAS,
    BitTMR,
    FullTMR,
    LayerStructure,
    NeuronStructure,
    NodeClass,
    Unprotected,
    layer_structure,
    module_stem,
)

#: Yosys synthesis command of every cost figure (``{top}``, ``{flatten}`` filled in).
SYNTH = "synth_xilinx -top {top} -family xc7 -nodsp -noiopad{flatten}"
#: Default per-SAT-instance timeout of :func:`prove_masked` (seconds).
SAT_TIMEOUT_S = 300
#: Masked sites (evenly spaced) that :func:`verify_neuron` also simulates, as a sanity
#: check of the proof (a proved site must never differ).
CROSS_CHECK_SITES = 512


# ---------------------------------------------------------------------------------------
# Arithmetic and its Python reference
# ---------------------------------------------------------------------------------------
def _int_range(width: int, signed: bool) -> tuple[int, int]:
    """Smallest and largest raw integer of a ``width``-bit word."""
    if signed:
        return -(1 << (width - 1)), (1 << (width - 1)) - 1
    return 0, (1 << width) - 1


@dataclass(frozen=True)
class Arithmetic:
    """Fixed-point arithmetic of one layer's dot products (all widths in bits).

    Attributes:
        in_width: ``Wa``, width of the raw input integer.
        in_signed: input type signed (``ap_fixed``) or unsigned (``ap_ufixed``).
        shift: ``Fa + Fw - Facc`` (fractional bits of input + weight - accumulator); > 0
            truncates the product (arithmetic shift right), < 0 shifts it left.
        width: ``W``, the ``accum_t`` width: every product and partial sum wraps to it.
    """

    in_width: int
    in_signed: bool
    shift: int
    width: int

    @classmethod
    def of_layer(cls, info) -> "Arithmetic":
        """The arithmetic of a :class:`~fpga_ft.core.layers.LayerInfo`."""
        return cls(int(info.input_type.width), bool(info.input_type.signed),
                   int(info.input_type.fractional + info.weight_type.fractional - info.accum_type.fractional),
                   int(info.accum_type.width))

    @property
    def input_range(self) -> tuple[int, int]:
        """Smallest and largest raw input integer."""
        return _int_range(self.in_width, self.in_signed)

    def rescale(self, exact):
        """Exact product(s) -> accumulator units (not yet wrapped); Python ints or object arrays."""
        return exact >> self.shift if self.shift >= 0 else exact << -self.shift


def reference_output(structure: NeuronStructure, arith: Arithmetic, x) -> np.ndarray:
    """The neuron's output word for raw inputs ``x`` (shape ``(vectors, n_in)``), as W-bit
    patterns ``0 .. 2^W-1`` (object array of Python ints): the sum modulo ``2^W`` of the
    wrapped products and the bias, independent of the adder tree."""
    x = np.asarray(x, dtype=object).reshape(len(x), -1)
    acc = np.zeros(len(x), dtype=object)
    for t in structure.terms:
        acc = acc + (t.code if t.is_bias else arith.rescale(x[:, t.input] * t.code))
    return acc % (1 << arith.width)


def to_signed(pattern: int, width: int) -> int:
    """A ``width``-bit two's complement pattern as a signed integer."""
    pattern = int(pattern) & ((1 << width) - 1)
    return pattern - (1 << width) if pattern >> (width - 1) else pattern


def random_inputs(arith: Arithmetic, n_in: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` raw input vectors (int64, shape ``(count, n_in)``): all-minimum, all-maximum,
    zero and alternating extremes first, then uniform random codes."""
    lo, hi = arith.input_range
    rng = np.random.default_rng(seed)
    fixed = [np.full(n_in, lo), np.full(n_in, hi), np.zeros(n_in, dtype=np.int64),
             np.where(np.arange(n_in) % 2 == 0, lo, hi)]
    rows = fixed[:count] + [rng.integers(lo, hi + 1, size=n_in) for _ in range(max(0, count - len(fixed)))]
    return np.asarray(rows, dtype=np.int64).reshape(count, n_in)


# ---------------------------------------------------------------------------------------
# Fault sites
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Site:
    """One fault site: bit ``bit`` (0 = the class's lowest, at word position
    ``cls.lsb + bit``) of node instance ``node`` of class ``cls``; ``id`` is the value of
    the fault twin's ``fsel`` input that flips it."""

    id: int
    node: str
    cls: NodeClass
    bit: int

    @property
    def label(self) -> str:
        """``p3.lane1[0]``, ``s5.carry[0]``, ``r2.s4.replica[16]``, ``out.voter[1]``."""
        return f"{self.node}.{self.cls.name.split('.', 1)[1]}[{self.bit}]"


@dataclass
class _Val:
    """Verilog expressions of one BitTMR tree node: ``low`` (L bits, None when k == W),
    ``lanes`` (three k-bit expressions), ``is_add``."""

    low: str | None = None
    lanes: tuple[str, str, str] | None = None
    is_add: bool = False


def _ident(text: str) -> str:
    return re.sub(r"\W", "_", str(text))


def _lit(width: int, value: int) -> str:
    return f"{width}'h{int(value) & ((1 << width) - 1):x}"


def _maj(a: str, b: str, c: str) -> str:
    return f"(({a}) & ({b})) | (({a}) & ({c})) | (({b}) & ({c}))"


def _code_tag(code: int) -> str:
    return f"c{code}" if code >= 0 else f"m{-code}"


def _rescaled(p: str, a: Arithmetic) -> str:
    """The W-bit word of the sign-extended exact product ``{p}_e`` (at least ``W + shift``
    bits): rescaled to accum_t (AP_TRN: arithmetic shift right) and wrapped (AP_WRAP)."""
    w = a.width
    if a.shift >= 0:
        return f"{p}_e[{a.shift + w - 1}:{a.shift}]"
    if -a.shift >= w:
        return f"{w}'h0"
    return f"{{{p}_e[{w - 1 + a.shift}:0], {-a.shift}'h0}}"


def _lane_module(name: str, k: int, low_bits: int, va: bool, vb: bool, cut: bool = False) -> str:
    """A kept lane module: ``y = a + b (+ ci) mod 2^k``; a voted operand (``va``/``vb``)
    enters as its three lanes, majority-voted inside (``cut``: the voter's output leaves on
    ``<op>o`` and the adder reads the cut input ``<op>z`` instead, see :func:`prove_masked`)."""
    ports, lines = [], []
    for op, voted in (("a", va), ("b", vb)):
        if voted and cut:  # cut point: the voter is observed, the adder takes the cut input
            ports += [f"input [{k - 1}:0] {op}{r}" for r in REPLICAS]
            ports += [f"input [{k - 1}:0] {op}z", f"output [{k - 1}:0] {op}o"]
            lines.append(f"  assign {op}o = {_maj(f'{op}0', f'{op}1', f'{op}2')};  // voter (observed)")
            lines.append(f"  wire [{k - 1}:0] {op}v = {op}z;  // cut")
        elif voted:
            ports += [f"input [{k - 1}:0] {op}{r}" for r in REPLICAS]
            lines.append(f"  wire [{k - 1}:0] {op}v = {_maj(f'{op}0', f'{op}1', f'{op}2')};  // voter")
        else:
            ports.append(f"input [{k - 1}:0] {op}")
            lines.append(f"  wire [{k - 1}:0] {op}v = {op};")
    if low_bits:
        ports.append("input ci")
    ports.append(f"output [{k - 1}:0] y")
    total = "av + bv + ci" if low_bits else "av + bv"
    return (f"(* keep_hierarchy *)\nmodule {name} ({', '.join(ports)});\n"
            + "\n".join(lines) + f"\n  assign y = {total};\nendmodule\n")


# ---------------------------------------------------------------------------------------
# The twin
# ---------------------------------------------------------------------------------------
class _FaultSites:
    """Fault sites of a twin and their instrumentation (shared by :class:`Twin` and
    :class:`UnitTwin`): the proof groups, the ``fsel`` encoding and the per-node XORs.
    Needs ``self.structure.scheme`` (the node classes) and ``self._fault_on`` /
    ``self._used`` (generation state)."""

    def _init_sites(self, nodes: list[tuple[str, NodeClass]]) -> None:
        # Proof groups (see prove_masked): the masked nodes of each replica (a FullTMR
        # dot-product replica, "r<r>." prefix of the node name; else the replica of the
        # node class, a BitTMR lane), then the unmasked nodes.
        groups: dict[str, list] = {}
        for name, cls in nodes:
            if cls.masked:
                m = re.match(r"(r\d+)\.", name)
                key = m.group(1) if m else ("" if cls.replica is None else f"lane{cls.replica}")
                groups.setdefault(key, []).append((name, cls))
        self.groups: list[str] = list(groups)
        groups["unmasked"] = [nc for nc in nodes if not nc[1].masked]
        # fsel = {group, node, bit}: node = 1-based index of the (node, class) pair in its
        # group (0: no fault), bit = bit within the class. Selections that name no site
        # (node 0, past the group's end, bit >= the class's bits) inject nothing.
        self.bit_bits = max(1, (max(c.bits for _, c in nodes) - 1).bit_length()) if nodes else 1
        self.node_bits = max(1, max(len(g) for g in groups.values()).bit_length())
        self.group_bits = max(1, len(self.groups).bit_length())
        self.index_bits = self.node_bits + self.bit_bits
        self.fsel_width = self.group_bits + self.index_bits
        self.sites: list[Site] = []
        self.group_sites: list[list[Site]] = []
        self._node_sel: dict[tuple[str, NodeClass], int] = {}
        for g, members in enumerate(groups.values()):
            sites: list[Site] = []
            for j, (name, cls) in enumerate(members, start=1):
                sel = (g << self.node_bits) | j
                self._node_sel[(name, cls)] = sel
                sites += [Site((sel << self.bit_bits) | b, name, cls, b) for b in range(cls.bits)]
            self.group_sites.append(sites)
            self.sites += sites
        self.n_masked = sum(1 for s in self.sites if s.cls.masked)

    def _fault_decl(self) -> str:
        """Fault-select decoding shared by the node XORs of a fault module."""
        fs, bb = self.fsel_width, self.bit_bits
        nbits = max((c.bits for _, c in self._node_sel), default=1)
        return (f"  wire [{fs - bb - 1}:0] fnode = fsel[{fs - 1}:{bb}];\n"
                f"  wire [{nbits - 1}:0] fbit = {nbits}'d1 << fsel[{bb - 1}:0];\n")

    # ---- fault instrumentation ---------------------------------------------------------
    def _cls(self, word: str, role: str, replica: int | None) -> NodeClass | None:
        s = self.structure.scheme
        pool = {"product": s.product_nodes, "sum": s.sum_nodes, "output": s.output_nodes}[word]()
        found = [c for c in pool if c.role == role and c.replica == replica]
        return found[0] if found else None

    def _fault(self, node: str, classes: Iterable[NodeClass | None], base: int, width: int) -> str | None:
        """XOR vector (Verilog concatenation, ``width`` bits, MSB first) flipping the bit of
        the site selected by ``fsel`` among ``classes`` of ``node``, which together cover
        word bits ``[base, base+width)``; ``None`` in the clean twin."""
        if not self._fault_on:
            return None
        parts: list[tuple[int, int, str]] = []
        for cls in classes:
            if cls is None:
                continue
            sel = self._node_sel[(node, cls)]
            self._used.add((node, cls))
            hit = f"(fnode == {self.fsel_width - self.bit_bits}'h{sel:x})"
            parts.append((cls.lsb, cls.bits, f"({hit} ? fbit[{cls.bits - 1}:0] : {cls.bits}'d0)"))
        parts.sort()
        pos = base
        for lsb, bits, _ in parts:
            if lsb != pos:
                raise AssertionError(f"node {node}: classes do not tile word bits [{base}, {base + width})")
            pos += bits
        if pos != base + width:
            raise AssertionError(f"node {node}: word bits [{base}, {base + width}) not all nodes")
        return "{" + ", ".join(p for _, _, p in reversed(parts)) + "}"

    @staticmethod
    def _xor(expr: str, fault: str | None) -> str:
        return expr if fault is None else f"{expr} ^ {fault}"


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


# ---------------------------------------------------------------------------------------
# Time-shared layers: the twin of one shared MAC unit, and of the whole layer for its cost
# ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class SharedArithmetic(Arithmetic):
    """:class:`Arithmetic` of a time-shared layer, whose weight is an operand of a generic
    multiplier: ``w_width`` (``Ww``, bits) and ``w_signed`` of ``weight_t``. The ROM holds
    the raw weight codes; the product is ``x * w`` rescaled and wrapped exactly as a
    constant product (:func:`_rescaled`)."""

    w_width: int
    w_signed: bool

    @classmethod
    def of_layer(cls, info) -> "SharedArithmetic":
        a = Arithmetic.of_layer(info)
        return cls(a.in_width, a.in_signed, a.shift, a.width, int(info.weight_type.width),
                   bool(info.weight_type.signed))

    @property
    def weight_range(self) -> tuple[int, int]:
        """Smallest and largest raw weight integer."""
        return _int_range(self.w_width, self.w_signed)


def _generic_product_lines(p: str, xexpr: str, wexpr: str, a: SharedArithmetic) -> list[str]:
    """Verilog defining ``wire [W-1:0] {p}_w``: the generic product ``x * w`` (both
    operands variable; an unsigned operand zero-extended by one bit), rescaled and wrapped."""
    wx = a.in_width + (0 if a.in_signed else 1)
    ww = a.w_width + (0 if a.w_signed else 1)
    pw = wx + ww
    ext = max(pw, a.width + max(a.shift, 0))
    xs = xexpr if a.in_signed else f"{{1'b0, {xexpr}}}"
    ws = wexpr if a.w_signed else f"{{1'b0, {wexpr}}}"
    return [f"  wire signed [{wx - 1}:0] {p}_xs = {xs};",
            f"  wire signed [{ww - 1}:0] {p}_ws = {ws};",
            f"  wire signed [{pw - 1}:0] {p}_m = {p}_xs * {p}_ws;",
            f"  wire signed [{ext - 1}:0] {p}_e = {p}_m;",
            f"  wire [{a.width - 1}:0] {p}_w = {_rescaled(p, a)};"]


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


def _run_icarus(files: dict[str, str], top: str, prefix: str, workdir, iverilog: str,
                timeout: float | None) -> str:
    """Write ``files`` (``twin.v``, testbench ``tb.v`` with module ``fpgaft_tb``, data) into a
    temporary directory, compile with Icarus and run; returns the simulation's stdout."""
    vvp = shutil.which("vvp", path=os.path.dirname(iverilog) or None) or "vvp"
    with tempfile.TemporaryDirectory(prefix=prefix, dir=workdir) as tmp:
        tmp = Path(tmp)
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
        proc = _run([iverilog, "-g2005", "-o", "sim.vvp", "-s", "fpgaft_tb", "twin.v", "tb.v"], tmp, timeout)
        if proc.returncode != 0:
            raise FpgaFtError(f"iverilog failed on {top}: {(proc.stderr or proc.stdout).strip()[:500]}")
        proc = _run([vvp, "-n", "sim.vvp"], tmp, timeout)
        if proc.returncode != 0:
            raise FpgaFtError(f"vvp failed on {top}: {(proc.stderr or proc.stdout).strip()[:500]}")
    return proc.stdout


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


# ---------------------------------------------------------------------------------------
# Tools
# ---------------------------------------------------------------------------------------
def find_tool(name: str) -> str:
    """Path of ``name`` on PATH, or a one-line :class:`FpgaFtError`."""
    path = shutil.which(name)
    if not path:
        raise FpgaFtError(f"{name} not found on PATH (Debian: apt-get install {name})")
    return path


def _run(cmd: Sequence[str], cwd: Path, timeout: float | None = None) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(list(cmd), cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise TimeoutError(f"{cmd[0]} timed out after {timeout:g} s") from exc


def _yosys_error(proc: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln]
    tail = (proc.stderr or proc.stdout).strip().splitlines()
    return lines[-1].strip() if lines else (tail[-1] if tail else f"exit status {proc.returncode}")


# ---------------------------------------------------------------------------------------
# Synthesis
# ---------------------------------------------------------------------------------------
def _read_stat_json(text: str) -> dict:
    """Yosys 0.23's ``stat -json -top`` writes, for a hierarchy deeper than one level,
    plain-text lines (``   module_name   count``) into its JSON; drop them."""
    keep = [line for line in text.splitlines() if line.strip()[:1] in ('"', "{", "}", "[", "]", "")]
    return json.loads("\n".join(keep))


def synthesize(source: str, top: str, *, keep: bool = True, workdir: str | os.PathLike | None = None,
               yosys: str = "yosys", timeout: float | None = 3600) -> dict:
    """Synthesise ``source`` with Yosys ``synth_xilinx -family xc7 -nodsp -noiopad`` for
    7-series cells; ``keep``: hierarchy kept (kept modules survive, counted per instance),
    else ``keep_hierarchy`` removed and the design flattened (replicas may merge).

    Returns ``{"lut": LUT1..LUT6 cells of the whole design, "carry4", "inv", "ff" (FD*
    flip-flops), "cells" (by type), "instances" (submodule cells of the top by module
    name), "modules" (per module its own ``lut``/``ff``, submodules excluded),
    "hier_instances" (instances of each module in the whole hierarchy), "seconds"}``."""
    with tempfile.TemporaryDirectory(prefix="fpgaft_twin_syn_", dir=workdir) as tmp:
        tmp = Path(tmp)
        (tmp / "twin.v").write_text(source, encoding="utf-8")
        unkeep = "" if keep else "setattr -mod -unset keep_hierarchy *; "
        script = (f"read_verilog twin.v; hierarchy -top {top}; {unkeep}"
                  + SYNTH.format(top=top, flatten="" if keep else " -flatten")
                  + f"; tee -q -o stat.json stat -json -top {top}")
        start = time.perf_counter()
        proc = _run([yosys, "-q", "-p", script], tmp, timeout)
        if proc.returncode != 0 or not (tmp / "stat.json").is_file():
            raise FpgaFtError(f"yosys synthesis of {top} failed: {_yosys_error(proc)}")
        stat = _read_stat_json((tmp / "stat.json").read_text(encoding="utf-8"))
    design = stat.get("design") or next(iter(stat["modules"].values()))
    cells = dict(design.get("num_cells_by_type", {}))
    top_cells = stat["modules"].get(f"\\{top}", {}).get("num_cells_by_type", {})
    instances = {name.lstrip("\\"): n for name, n in top_cells.items() if name.lstrip("\\").startswith("fpgaft_")}
    own = {name.lstrip("\\"): dict(m.get("num_cells_by_type", {})) for name, m in stat["modules"].items()}
    return {"lut": int(sum(n for c, n in cells.items() if c.startswith("LUT"))),
            "carry4": int(cells.get("CARRY4", 0)), "inv": int(cells.get("INV", 0)),
            "ff": int(sum(n for c, n in cells.items() if c.startswith("FD"))),
            "cells": cells, "instances": instances,
            "modules": {name: {"lut": int(sum(n for c, n in mc.items() if c.startswith("LUT"))),
                               "ff": int(sum(n for c, n in mc.items() if c.startswith("FD")))}
                        for name, mc in own.items()},
            "hier_instances": _hier_instances(own, top),
            "seconds": round(time.perf_counter() - start, 2)}


def _hier_instances(own: dict[str, dict], top: str) -> dict[str, int]:
    """Instances of every module in the whole hierarchy under ``top`` (from the per-module
    cell counts of ``stat``: a module's cells that name another module are its instances)."""
    counts: dict[str, int] = {}

    def walk(name: str, mult: int) -> None:
        for cell, n in own.get(name, {}).items():
            sub = cell.lstrip("\\")
            if sub in own:
                counts[sub] = counts.get(sub, 0) + mult * int(n)
                walk(sub, mult * int(n))
    walk(top, 1)
    return counts


# ---------------------------------------------------------------------------------------
# Fault proof (Yosys SAT) and simulation (Icarus Verilog)
# ---------------------------------------------------------------------------------------
def _proof_module(twin: Twin, group: int, excluded: Iterable[int] = (), cut: bool = False) -> str:
    """Miter of the clean twin (gold) and the fault twin (gate) for proof group ``group``:
    ``fsel = {group, fi}`` with ``fi`` free; ``ok`` must hold for every ``x`` and ``fi``
    (and, ``cut``: every cut value ``z``, shared by both halves; the observed voters
    ``v`` must agree too)."""
    fs, ib, w = twin.fsel_width, twin.index_bits, twin.width
    size = len(twin.group_sites[group])
    skip = "".join(f" || (fsel == {fs}'h{i:x})" for i in excluded)
    suffix, zin, zc, same = "", "", "", "(yf == yg)"
    if cut:
        suffix, zin = "_cut", f", input [{twin.cut_width - 1}:0] z"
        zc, same = ", .z(z)", "(yf == yg) && (vf == vg)"
    return (f"module fpgaft_proof (input [{twin.bus_width - 1}:0] x{zin}, input [{ib - 1}:0] fi, output ok);\n"
            f"  wire [{fs - 1}:0] fsel = {{{fs - ib}'d{group}, fi}};\n"
            f"  wire [{w - 1}:0] yg, yf;\n"
            + (f"  wire [{twin.observed_width - 1}:0] vg, vf;\n" if cut else "")
            + f"  {twin.top}{suffix} u_gold (.x(x){zc}, .y(yg){', .v(vg)' if cut else ''});\n"
            f"  {twin.top_fi}{suffix} u_gate (.x(x){zc}, .fsel(fsel), .y(yf){', .v(vf)' if cut else ''});\n"
            f"  // proved: for every input and every site of group {group} ({size} sites), the outputs agree\n"
            f"  assign ok = 1'b0{skip} || {same};\n"
            "endmodule\n")


def prove_masked(twin: Twin, *, workdir: str | os.PathLike | None = None, yosys: str = "yosys",
                 timeout: float = SAT_TIMEOUT_S, max_counterexamples: int = 16, cut: bool | None = None,
                 progress: Callable[[str], None] | None = None) -> dict:
    """Prove with Yosys ``sat -prove`` that every masked site is masked for all inputs.

    One SAT instance per proof group (:attr:`Twin.groups`: all masked sites of a BitTMR
    neuron at once; one per replica for FullTMR), ``fsel`` tied to the group's prefix and
    its index ``fi`` free over the group's sites. Flow: ``hierarchy; proc; setattr -mod
    -unset keep_hierarchy *; flatten; opt; sat -prove ok 1 -timeout T``.

    Why this is sound and fast: the miter is an exact copy of the two designs; ``opt``
    only rewrites it into an equivalent netlist. With the group prefix a constant, every
    comparator ``fsel == id`` of another group folds to 0, its XOR disappears, and
    ``opt_merge`` merges the gate's fault-free logic with the gold's (identical cells on
    identical inputs): the low-part adders of BitTMR, the other two replicas of FullTMR,
    all constant multipliers. Grouping FullTMR sites by replica is a case split of the
    single-fault hypothesis (a fault is in exactly one replica), so the groups together
    cover every masked site; each group's proof is then immediate (two of the three
    replicas are the gold's own cells).

    Grouping BitTMR sites by lane replica is the same case split: with the fault in lane
    ``r``, every lane ``r' != r`` of a product-only add merges with the gold's.

    Cut points (``cut``; default: for BitTMR twins with a voted partial sum). Without them
    the solver must show that the gate's whole adder tree above a corrected lane equals
    the gold's (copies that ``opt`` cannot merge, because the voters' inputs differ
    structurally). Measured on fc1 neuron 0 of digits_mlp (61 products, W=17), Yosys CPU
    time per SAT run: k=2, 1.7 s per lane group with or without cuts; k=17, one group of
    all 6,222 masked sites without cuts: timeout at 300 s; per lane group: 18 s without
    cuts, 6 s with. The cut variant (:meth:`Twin.modules` ``cut=True``) makes every voter
    of a partial sum a cut point: the voter's output is observed (output ``v``), and the
    adder after it reads a free input ``z`` instead, the same ``z`` for the three voters of
    one operand and for gold and gate. The proof obligation becomes: for all ``x``, ``z``
    and masked sites, gate and gold agree on ``y`` and on every observed voter. Soundness
    (the usual cut-point argument): take ``z*`` = the real gold voter values; the gold cut
    twin with ``z*`` computes exactly the real gold twin (each voter is fed its own value).
    By induction in topological order, each voter of the real faulty twin sees the same
    inputs as in the cut twin with ``z*`` (its upstream voters equal the gold values by
    the induction hypothesis), hence outputs what the cut gate voter outputs, which the
    proof equates with the gold voter, i.e. ``z*``; finally the real ``y`` is computed from
    those voter values exactly as the cut twin's ``y``, which equals gold's. Each
    obligation is local (the k-bit lanes between two levels of voters), so the SAT time no
    longer grows with the depth of the tree.

    A counterexample names one site (``fi``); it is excluded and the group re-proved (at
    most ``max_counterexamples`` times), so every masked site ends up proved or refuted.
    (With cut points, a counterexample may in principle use ``z`` values no real circuit
    produces; the caller confirms refutations by simulation.)

    Returns ``{"status": "proved" | "refuted" | "timeout" | "none", "refuted": [site ids],
    "timed_out": [site ids not settled by SAT], "groups": [per-group dicts], "method",
    "seconds": wall time of all runs, "runs", "timeout_s"}``."""
    if cut is None:
        cut = isinstance(twin.structure.scheme, BitTMR) and bool(twin.cut_slots())
    say = progress or (lambda msg: None)
    out = {"status": "none", "refuted": [], "timed_out": [], "groups": [], "seconds": 0.0, "runs": 0,
           "timeout_s": timeout, "method": "cut-point miter (partial-sum voters)" if cut else "miter"}
    if twin.n_masked == 0:
        return out
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="fpgaft_twin_sat_", dir=workdir) as tmp:
        tmp = Path(tmp)
        (tmp / "twin.v").write_text(twin.verilog_both(cut), encoding="utf-8")
        for g, label in enumerate(twin.groups):
            refuted: list[int] = []
            g_start, status = time.perf_counter(), None
            size = len(twin.group_sites[g])
            while status is None:
                (tmp / "proof.v").write_text(_proof_module(twin, g, refuted, cut), encoding="utf-8")
                script = ("read_verilog twin.v proof.v; hierarchy -top fpgaft_proof; proc; "
                          "setattr -mod -unset keep_hierarchy *; flatten; opt; "
                          f"sat -prove ok 1 -timeout {int(max(1, timeout))} -show fi")
                out["runs"] += 1
                try:
                    proc = _run([yosys, "-p", script], tmp, timeout + 300)
                    log = proc.stdout + proc.stderr
                except TimeoutError:
                    proc, log = None, "TIMEOUT"
                if "TIMEOUT" in log:
                    status = "timeout"
                elif "SUCCESS!" in log:
                    status = "refuted" if refuted else "proved"
                else:
                    m = re.search(r"\\fi\s+(\d+)\s", log)
                    if "FAIL!" not in log or not m:
                        raise FpgaFtError(f"yosys SAT proof of {twin.top} failed: {_yosys_error(proc)}")
                    refuted.append((g << twin.index_bits) | int(m.group(1)))
                    if len(refuted) >= max_counterexamples:
                        status = "refuted (stopped)"
            seconds = time.perf_counter() - g_start
            say(f"yosys sat: group {label or 'all'} ({size} masked sites): {status} in {seconds:.1f} s")
            out["groups"].append({"group": label or "all", "sites": size, "status": status,
                                  "refuted": len(refuted), "seconds": round(seconds, 2)})
            out["refuted"] += refuted
            if status in ("timeout", "refuted (stopped)"):  # not settled by SAT: simulate them
                out["timed_out"] += [s.id for s in twin.group_sites[g] if s.id not in refuted]
    statuses = {grp["status"] for grp in out["groups"]}
    out["status"] = ("timeout" if "timeout" in statuses else
                     "refuted" if out["refuted"] else "proved")
    out["seconds"] = round(time.perf_counter() - start, 2)
    return out


def _pack(row: Sequence[int], width: int) -> int:
    mask, bus = (1 << width) - 1, 0
    for i, v in enumerate(row):
        bus |= (int(v) & mask) << (i * width)
    return bus


def simulate(twin: Twin, x: np.ndarray, fault_ids: Sequence[int] = (), *, stop_at_first: bool = True,
             workdir: str | os.PathLike | None = None, iverilog: str = "iverilog",
             timeout: float | None = 3600) -> dict:
    """Simulate the twin with Icarus Verilog on raw input vectors ``x`` (``(V, n_in)``).

    Returns ``{"outputs": clean twin outputs (W-bit patterns, one per vector),
    "differs": {site id: vectors on which the fault twin with that fault differs from the
    clean twin}, "tried": {site id: vectors tried}}``; with ``stop_at_first`` a site's
    vectors stop at its first differing one (a witness)."""
    x = np.asarray(x, dtype=np.int64).reshape(-1, twin.n_in)
    nx, w, fs = twin.bus_width, twin.width, twin.fsel_width
    ids = [int(i) for i in fault_ids]
    fault = bool(ids)
    tb = ["module fpgaft_tb;",
          f"  reg [{nx - 1}:0] vec [0:{len(x) - 1}];",
          f"  reg [{nx - 1}:0] x;",
          f"  wire [{w - 1}:0] yg;",
          f"  {twin.top} u_gold (.x(x), .y(yg));",
          "  integer i, j, nd, nt;"]
    if fault:
        tb += [f"  reg [{fs - 1}:0] sel [0:{len(ids) - 1}];", f"  reg [{fs - 1}:0] fsel;",
               f"  wire [{w - 1}:0] yf;", f"  {twin.top_fi} u_gate (.x(x), .fsel(fsel), .y(yf));"]
    tb += ["  initial begin", '    $readmemh("vec.hex", vec);']
    tb += ["    for (i = 0; i < %d; i = i + 1) begin x = vec[i]; #1; $display(\"Y %%h\", yg); end" % len(x)]
    if fault:
        stop = "nd == 0" if stop_at_first else "1"
        tb += ['    $readmemh("sel.hex", sel);',
               f"    for (j = 0; j < {len(ids)}; j = j + 1) begin",
               "      fsel = sel[j]; nd = 0; nt = 0;",
               f"      for (i = 0; i < {len(x)} && ({stop}); i = i + 1) begin",
               "        x = vec[i]; #1; nt = nt + 1; if (yf !== yg) nd = nd + 1;",
               "      end",
               '      $display("S %0d %0d %0d", sel[j], nd, nt);',
               "    end"]
    tb += ["    $finish;", "  end", "endmodule"]
    pack = getattr(twin, "pack", None) or (lambda row: _pack(row, twin.arith.in_width))
    files = {"twin.v": twin.verilog_both() if fault else twin.verilog(False), "tb.v": "\n".join(tb) + "\n",
             "vec.hex": "".join(f"{pack(r):x}\n" for r in x)}
    if fault:
        files["sel.hex"] = "".join(f"{i:x}\n" for i in ids)
    stdout = _run_icarus(files, twin.top, "fpgaft_twin_sim_", workdir, iverilog, timeout)
    outputs, differs, tried = [], {}, {}
    for line in stdout.splitlines():
        parts = line.split()
        if parts[:1] == ["Y"]:
            if re.search(r"[xXzZ]", parts[1]):
                raise FpgaFtError(f"twin {twin.top} output is undefined ({parts[1]}) in simulation")
            outputs.append(int(parts[1], 16))
        elif parts[:1] == ["S"]:
            differs[int(parts[1])], tried[int(parts[1])] = int(parts[2]), int(parts[3])
    if len(outputs) != len(x) or len(differs) != len(ids):
        raise FpgaFtError(f"simulation of {twin.top} printed {len(outputs)} outputs / {len(differs)} faults "
                          f"for {len(x)} vectors / {len(ids)} faults")
    return {"outputs": np.asarray(outputs, dtype=object), "differs": differs, "tried": tried}


# ---------------------------------------------------------------------------------------
# The whole verification of one neuron
# ---------------------------------------------------------------------------------------
def _class_key(cls: NodeClass) -> str:
    return cls.name


def _simulate_sites(twin, x, workdir, iverilog, say) -> tuple[dict, dict, float]:
    """Icarus runs of :func:`verify_neuron` / :func:`verify_time_shared`: the clean twin on
    every vector with a witness search for every unmasked site, and up to
    :data:`CROSS_CHECK_SITES` masked sites on two vectors (a cross-check of the proof)."""
    t0 = time.perf_counter()
    unmasked_ids = [s.id for s in twin.sites if not s.cls.masked]
    masked_ids = [s.id for s in twin.sites if s.cls.masked]
    sim = simulate(twin, x, unmasked_ids, stop_at_first=True, workdir=workdir, iverilog=iverilog)
    sample = masked_ids[::max(1, -(-len(masked_ids) // CROSS_CHECK_SITES))]
    cross = simulate(twin, x[:2], sample, stop_at_first=False, workdir=workdir,
                     iverilog=iverilog) if sample else {"differs": {}, "tried": {}}
    sim_seconds = time.perf_counter() - t0
    say(f"iverilog: {len(x)} vectors; witnesses for {len(unmasked_ids)} unmasked sites, "
        f"{len(sample)} of {len(masked_ids)} masked sites cross-checked on 2 vectors, in {sim_seconds:.1f} s")
    return sim, cross, sim_seconds


def _fallback(twin, x, proof: dict, sat_timeout: float, workdir, iverilog, say) -> dict:
    """Simulation of the masked sites SAT did not settle or refuted (see :func:`verify_neuron`)."""
    timed_out, refuted = set(proof["timed_out"]), set(proof["refuted"])
    fallback = {"differs": {}, "tried": {}}
    if timed_out or refuted:
        if timed_out:
            say(f"SAT did not settle {len(timed_out)} masked sites (timeout {sat_timeout:g} s): "
                f"simulating them on {len(x)} vectors instead (not a proof)")
        if refuted:
            say(f"SAT refuted {len(refuted)} sites the structure calls masked: confirming by simulation")
        fallback = simulate(twin, x, sorted(timed_out | refuted), stop_at_first=True, workdir=workdir,
                            iverilog=iverilog)
    return fallback


def _classify_sites(twin, proof: dict, sim: dict, cross: dict, fallback: dict, n_vectors: int):
    """Per site: unmasked or masked, and the method that settled it. Returns
    ``(found_unmasked sites, {node class name: set of methods})``."""
    timed_out, refuted = set(proof["timed_out"]), set(proof["refuted"])
    found_unmasked: list[Site] = []
    method_of: dict[str, set] = {}
    for s in twin.sites:
        key = _class_key(s.cls)
        if s.cls.masked:
            if s.id in refuted:  # not proved masked: unmasked (confirmed or not by simulation)
                found_unmasked.append(s)
                confirmed = "iverilog-witness" if fallback["differs"].get(s.id) else "no iverilog witness"
                method_of.setdefault(key, set()).add(f"yosys-sat-counterexample ({confirmed})")
            elif s.id in timed_out:
                method_of.setdefault(key, set()).add(f"iverilog-simulation ({n_vectors} vectors; SAT timed out)")
                if fallback["differs"].get(s.id):
                    found_unmasked.append(s)
            else:
                method_of.setdefault(key, set()).add("yosys-sat-proof")
                if cross["differs"].get(s.id):
                    raise FpgaFtError(f"internal: site {s.label} proved masked but differs in simulation")
        else:
            if sim["differs"].get(s.id):
                found_unmasked.append(s)
                method_of.setdefault(key, set()).add("iverilog-witness")
            else:
                method_of.setdefault(key, set()).add(f"iverilog-no-witness ({n_vectors} vectors)")
    return found_unmasked, method_of


def _count_stems(counts: dict[str, int], kinds: Sequence[str]) -> dict[str, int]:
    """Counts of module names (``fpgaft_tmr_r1_add_10`` -> n) summed per replica-module stem
    of ``kinds`` (``fpgaft_tmr_r1_add``); other names are left out."""
    stem = re.compile(rf"(fpgaft_tmr_r\d_(?:{'|'.join(kinds)}))")
    out: dict[str, int] = {}
    for name, n in counts.items():
        m = stem.match(name)
        if m:
            out[m.group(1)] = out.get(m.group(1), 0) + n
    return out


@dataclass
class _Verdict:
    """What one verification found: the clean twin against the reference arithmetic, the
    sites found unmasked against the structure's claim, and every failure so far."""

    twin: object
    mismatches: int
    found_unmasked: list
    method_of: dict
    expected: list
    found: list
    failures: list

    def check_modules(self, structure_instances: dict, structure_distinct: dict) -> tuple[dict, dict]:
        """Generated kept instances / distinct modules against the structure's (non-zero
        entries); returns the generated ones."""
        instances, distinct = self.twin.module_instances(), self.twin.distinct_modules()
        if instances != {k: v for k, v in structure_instances.items() if v}:
            self.failures.append(f"generated instances {instances} != structure {structure_instances}")
        if distinct != {k: v for k, v in structure_distinct.items() if v}:
            self.failures.append(f"generated distinct modules {distinct} != structure {structure_distinct}")
        return instances, distinct

    def check_netlist(self, netlist_counts: dict, kinds: Sequence[str], instances: dict) -> dict:
        """Kept replica instances that survived synthesis (``netlist_counts``: Yosys's
        instances per module name), summed per stem of ``kinds``, against ``instances``."""
        found = _count_stems(netlist_counts, kinds)
        if found != instances:
            self.failures.append(f"kept instances after synthesis {found} != generated {instances}")
        return found

    def report(self, proof: dict, exposed: dict, simulation: dict, instances: dict, netlist_instances,
               distinct: dict, t_start: float) -> dict:
        """The fields every ``fpga-ft verify`` result shares (from ``nodes`` to ``failures``)."""
        n_sites = len(self.twin.sites)
        return {
            "nodes": n_sites,
            "faults_tried": n_sites,
            "faults_masked": n_sites - len(self.found_unmasked),
            "unmasked_nodes": self.found,
            "csim_unprotected_bits": self.expected,
            "csim_exposed_bits": exposed,
            "methods": {k: " + ".join(sorted(v)) for k, v in self.method_of.items()},
            "sat": {k: v for k, v in proof.items() if k not in ("refuted", "timed_out")}
            | {"refuted": len(proof["refuted"]), "not_settled": len(proof["timed_out"])},
            "simulation": simulation,
            "module_instances": instances,
            "netlist_instances": netlist_instances,
            "distinct_modules": distinct,
            "seconds": round(time.perf_counter() - t_start, 2),
            "ok": not self.failures,
            "failures": self.failures,
        }


def _site_verdict(twin, proof, sim, cross, fallback, x, ref, what: str) -> _Verdict:
    """Compare a twin's clean simulation with ``ref`` and its masked / unmasked sites with
    the structure's claim."""
    mismatches = int(sum(1 for a, b in zip(sim["outputs"], ref) if int(a) != int(b)))
    found_unmasked, method_of = _classify_sites(twin, proof, sim, cross, fallback, len(x))
    expected = sorted(s.label for s in twin.sites if not s.cls.masked)
    found = sorted(s.label for s in found_unmasked)
    failures = []
    if found != expected:
        extra = sorted(set(found) - set(expected))
        missing = sorted(set(expected) - set(found))
        failures.append(f"unmasked nodes differ from the structure's: {len(extra)} unexpected "
                        f"({', '.join(extra[:5])}), {len(missing)} not witnessed ({', '.join(missing[:5])})")
    if mismatches:
        failures.append(f"{what} differs from the reference arithmetic on {mismatches}/{len(x)} vectors")
    return _Verdict(twin, mismatches, found_unmasked, method_of, expected, found, failures)


def _verifier_start(progress):
    """(say, start time, yosys path, iverilog path) of a verification run: the progress
    callback (or a no-op), ``time.perf_counter()`` at the start, and the tools (an
    FpgaFtError naming the missing one)."""
    return progress or (lambda msg: None), time.perf_counter(), find_tool("yosys"), find_tool("iverilog")


def verify_neuron(info, protection, neuron: int, *, workdir: str | os.PathLike | None = None,
                  sat_timeout: float = SAT_TIMEOUT_S, vectors: int = 64, seed: int = 0,
                  synth: bool = True, progress: Callable[[str], None] | None = None,
                  structure: NeuronStructure | None = None) -> dict:
    """Generate, synthesise, prove and simulate the twin of neuron ``neuron`` of layer
    ``info`` (:class:`~fpga_ft.core.layers.LayerInfo` with weights) under ``protection``
    (:class:`~fpga_ft.core.plan.LayerProtection`).

    Steps (Yosys jobs in parallel, two at a time): cost of the clean twin with hierarchy
    kept (``yosys_lut``), flattened without keep (``yosys_lut_no_keep``) and of the
    unprotected twin of the same terms (``yosys_lut_unprotected``); the SAT proof of all
    masked sites (:func:`prove_masked`); an Icarus simulation on ``vectors`` raw input
    vectors checking the clean twin bit for bit against :func:`reference_output` and
    finding a witness for every unmasked site (plus two vectors on up to
    :data:`CROSS_CHECK_SITES` masked sites as a cross-check of the proof; the sites SAT did
    not settle, on all vectors, reported as simulated, not proved; SAT counterexamples are
    confirmed by simulation too). ``structure`` replaces the neuron's
    :class:`NeuronStructure` (a what-if claim to check; tests use it to make sure a false
    claim fails).

    Returns the JSON dict of ``fpga-ft verify`` (LUT counts in LUT1..LUT6 cells, times in
    seconds); ``ok`` is False (with ``failures``) when the unmasked sites found differ
    from the structure's, the twin is not bit-exact, or kept instances did not survive."""
    if structure is None and getattr(info, "time_shared", False):
        # a time-shared layer has no per-neuron dot product: its shared MAC unit is verified
        return verify_time_shared(info, protection, neuron, workdir=workdir, sat_timeout=sat_timeout,
                                  vectors=vectors, seed=seed, synth=synth, progress=progress)
    say, t_start, yosys, iverilog = _verifier_start(progress)
    if structure is None:
        layer = layer_structure(info, protection)
        if not 0 <= int(neuron) < len(layer.neurons):
            raise FpgaFtError(f"neuron {neuron} out of range 0..{len(layer.neurons) - 1} of layer '{info.name}'")
        structure = layer.neurons[int(neuron)]
    arith = Arithmetic.of_layer(info)
    twin = Twin(structure, arith, info.n_in)
    plain = Twin(NeuronStructure(structure.layer, structure.neuron, Unprotected(arith.width), structure.terms),
                 arith, info.n_in)
    n_sites, n_masked = len(twin.sites), twin.n_masked
    say(f"twin of {info.name}[{neuron}]: {structure.scheme.name}, {structure.n_products} products, "
        f"{structure.n_sums} adds, W={arith.width}, {n_sites} node bits ({n_masked} masked)")

    x = random_inputs(arith, twin.n_in, max(4, int(vectors)), seed)
    jobs: dict[str, cf.Future] = {}
    workers = max(1, min(2, os.cpu_count() or 1))
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        jobs["sat"] = pool.submit(prove_masked, twin, workdir=workdir, yosys=yosys, timeout=sat_timeout,
                                  progress=say)
        if synth:
            clean = twin.verilog(False)
            jobs["keep"] = pool.submit(synthesize, clean, twin.top, keep=True, workdir=workdir, yosys=yosys)
            jobs["no_keep"] = pool.submit(synthesize, clean, twin.top, keep=False, workdir=workdir, yosys=yosys)
            jobs["plain"] = pool.submit(synthesize, plain.verilog(False), plain.top, keep=True,
                                        workdir=workdir, yosys=yosys)
        say(f"yosys: SAT proof of the masked sites{' and 3 syntheses' if synth else ''} running "
            f"({workers} at a time)")
        sim, cross, sim_seconds = _simulate_sites(twin, x, workdir, iverilog, say)
        results = {}
        for name, fut in jobs.items():
            results[name] = fut.result()
            if name != "sat":
                say(f"yosys synth_xilinx ({name}): {results[name]['lut']} LUT in {results[name]['seconds']:.1f} s")
    proof = results["sat"]
    fallback = _fallback(twin, x, proof, sat_timeout, workdir, iverilog, say)

    # -- bit-exactness of the clean twin; masked / unmasked per site and the method that settled it
    ref = reference_output(structure, arith, x)
    verdict = _site_verdict(twin, proof, sim, cross, fallback, x, ref, "twin output")
    failures = verdict.failures
    instances, distinct = verdict.check_modules(structure.instances(),
                                                {k: len(v) for k, v in structure.distinct_modules().items()})
    exposed = structure.exposed_bits()
    if sum(exposed.values()) != n_sites:
        failures.append(f"structure exposes {sum(exposed.values())} bits to the csim but lists {n_sites} node bits")
    netlist_instances = None
    if synth:
        netlist_instances = verdict.check_netlist(results["keep"]["instances"], (KIND_MUL, KIND_ADD, KIND_DOT),
                                                  instances)

    estimate, estimate_note = None, None
    try:
        from fpga_ft.measure import resources

        fn = getattr(resources, "neuron_lut_yosys", None)
        if fn is None:
            estimate_note = "fpga_ft.measure.resources.neuron_lut_yosys not available"
        else:
            estimate = fn(info, protection, int(neuron))
    except Exception as exc:  # the estimator is another module's; never fail verification on it
        estimate_note = f"estimate failed: {exc}"

    result = {
        "layer": info.name,
        "neuron": int(neuron),
        "scheme": structure.scheme.name,
        "width": arith.width,
        "protected_msbs": twin.k if isinstance(structure.scheme, BitTMR) else None,
        "arithmetic": {"input_width": arith.in_width, "input_signed": arith.in_signed,
                       "product_shift": arith.shift, "accum_width": arith.width},
        "n_products": structure.n_products,
        "n_sums": structure.n_sums,
        "yosys_lut": results["keep"]["lut"] if synth else None,
        "yosys_lut_no_keep": results["no_keep"]["lut"] if synth else None,
        "yosys_lut_unprotected": results["plain"]["lut"] if synth else None,
        "yosys_carry4": results["keep"]["carry4"] if synth else None,
        "estimate_lut": estimate,
        **verdict.report(proof, exposed, {"vectors": int(len(x)), "bit_exact_mismatches": verdict.mismatches,
                                          "seconds": round(sim_seconds, 2)},
                         instances, netlist_instances, distinct, t_start),
    }
    if estimate_note:
        result["estimate_note"] = estimate_note
    if synth:
        result["synth_seconds"] = {k: results[k]["seconds"] for k in ("keep", "no_keep", "plain")}
    return result


# ---------------------------------------------------------------------------------------
# The whole verification of a time-shared layer
# ---------------------------------------------------------------------------------------
def _plain_layer(structure):
    """The same time-shared layer unprotected (the base cost)."""
    neurons = tuple(NeuronStructure(n.layer, n.neuron, Unprotected(n.scheme.width), n.terms) for n in structure.neurons)
    return LayerStructure(structure.name, neurons, structure.n_positions, structure.reuse_factor)


def verify_time_shared(info, protection, neuron: int | None = None, *, workdir: str | os.PathLike | None = None,
                       sat_timeout: float = SAT_TIMEOUT_S, vectors: int = 64, seed: int = 0, synth: bool = True,
                       progress: Callable[[str], None] | None = None, structure=None,
                       layer_vectors: int = 8) -> dict:
    """Generate, prove, simulate and synthesise the twin of a time-shared layer ``info``
    (``LayerInfo.time_shared``: a reuse factor above 1) under
    ``protection`` (:class:`UnitTwin`; critical neurons have no time-shared form:
    :func:`~fpga_ft.core.structure.layer_structure` refuses them).

    * proof: :func:`prove_masked` on the 2-step MAC chain, one SAT run per lane replica,
      for all data words, weight words and (agreeing) accumulator values; the unmasked
      classes (product low bits, partial-sum low bits and carry, output voter) get an
      Icarus witness; the chain is checked bit for bit against :meth:`UnitTwin.reference`;
    * the node bits per MAC step must be those the csim exposes per product and partial
      sum of every neuron (``n_in`` of each, then the output voter);
    * cost: the layer twin (:meth:`UnitTwin.layer_verilog`) protected and unprotected,
      ``synth_xilinx -nodsp`` with hierarchy (:func:`synthesize`, :func:`unit_cost`):
      LUT = n_units x unit + feeds (every unit's R:1 weight ROM and input select) + glue
      (accumulator start muxes, output voters, counter); FF = the accumulator registers
      (BitTMR: W-k low + 3k lane bits per neuron) + the counter. Both layer twins are
      simulated for ``R`` clock edges on ``layer_vectors`` input vectors and compared with
      :func:`reference_output` of every neuron;
    * the estimate's figure (:func:`fpga_ft.measure.resources.time_shared_lut_yosys`, Yosys scale,
      all fabric: the convention of :func:`verify_neuron`) and its ratio to the twin's.

    ``neuron`` (optional) only selects which units the report lists as serving it: the
    unit is shared by every neuron. ``structure`` replaces the layer's
    :class:`~fpga_ft.core.structure.LayerStructure` (a what-if claim to check).

    Returns the JSON dict of ``fpga-ft verify`` for a time-shared layer (``time_shared``
    true); ``ok`` is False (with ``failures``) when the unmasked sites differ from the
    structure's, a twin is not bit-exact, or kept instances do not match the structure's."""
    say, t_start, yosys, iverilog = _verifier_start(progress)
    if structure is None:
        structure = layer_structure(info, protection)
    if not structure.time_shared:
        raise FpgaFtError(f"layer '{info.name}' is not time-shared (ReuseFactor 1): "
                          "verify it per neuron")
    n_out = len(structure.neurons)
    if neuron is not None and not 0 <= int(neuron) < n_out:
        raise FpgaFtError(f"neuron {neuron} out of range 0..{n_out - 1} of layer '{info.name}'")
    arith = SharedArithmetic.of_layer(info)
    twin = UnitTwin(structure, arith)
    plain = UnitTwin(_plain_layer(structure), arith) if twin.protected else twin
    scheme = structure.scheme
    n_sites, n_masked = len(twin.sites), twin.n_masked
    say(f"twin of {info.name}: time-shared, {structure.n_in}x{n_out} products on {structure.n_units} MAC units "
        f"(R={structure.reuse_factor}), {scheme.name}, W={arith.width}; MAC chain of {twin.steps} steps: "
        f"{n_sites} node bits ({n_masked} masked)")

    x = twin.random_inputs(max(4, int(vectors)), seed)
    xl = random_inputs(arith, structure.n_in, max(2, int(layer_vectors)), seed + 1)
    jobs: dict[str, cf.Future] = {}
    workers = max(1, min(2, os.cpu_count() or 1))
    with cf.ThreadPoolExecutor(max_workers=workers) as pool:
        jobs["sat"] = pool.submit(prove_masked, twin, workdir=workdir, yosys=yosys, timeout=sat_timeout,
                                  progress=say)
        if synth:
            jobs["layer"] = pool.submit(synthesize, twin.layer_verilog(), twin.layer_top, keep=True,
                                        workdir=workdir, yosys=yosys)
            if plain is not twin:
                jobs["plain"] = pool.submit(synthesize, plain.layer_verilog(), plain.layer_top, keep=True,
                                            workdir=workdir, yosys=yosys)
        say(f"yosys: SAT proof of the masked sites{f' and {len(jobs) - 1} layer syntheses' if synth else ''} "
            f"running ({workers} at a time)")
        sim, cross, sim_seconds = _simulate_sites(twin, x, workdir, iverilog, say)
        t0 = time.perf_counter()
        ref_layer = np.stack([reference_output(n, arith, xl) for n in structure.neurons], axis=1)
        layer_mismatches = {}
        for tw in dict.fromkeys((twin, plain)):
            out = simulate_layer(tw, xl, workdir=workdir, iverilog=iverilog)
            layer_mismatches[tw.layer_top] = int(sum(1 for a, b in zip(out.reshape(-1), ref_layer.reshape(-1))
                                                     if int(a) != int(b)))
        say(f"iverilog: layer twin{'s' if len(layer_mismatches) > 1 else ''} run {structure.reuse_factor} cycles "
            f"on {len(xl)} vectors in {time.perf_counter() - t0:.1f} s")
        results = {}
        for name, fut in jobs.items():
            results[name] = fut.result()
            if name != "sat":
                say(f"yosys synth_xilinx ({name}): {results[name]['lut']} LUT, {results[name]['ff']} FF "
                    f"in {results[name]['seconds']:.1f} s")
    proof = results["sat"]
    fallback = _fallback(twin, x, proof, sat_timeout, workdir, iverilog, say)

    ref = twin.reference(x)
    verdict = _site_verdict(twin, proof, sim, cross, fallback, x, ref, "MAC chain output")
    failures = verdict.failures
    for top, bad in layer_mismatches.items():
        if bad:
            failures.append(f"layer twin {top} differs from the reference on {bad}/{ref_layer.size} words")
    # the csim's exposure: per neuron n_in products and n_in partial sums (+ the output voter)
    per_step = scheme.product_bits + scheme.sum_bits
    if n_sites != twin.steps * per_step + scheme.output_bits:
        failures.append(f"the MAC chain has {n_sites} node bits, the scheme {twin.steps} x {per_step} "
                        f"+ {scheme.output_bits}")
    n_in = structure.n_in
    want = {"products": n_in * scheme.product_bits, "accumulators": n_in * scheme.sum_bits + scheme.output_bits}
    off = [n.neuron for n in structure.neurons if n.exposed_bits() != want]
    if off:
        failures.append(f"neurons {off[:5]} expose other bits than n_in MAC steps + the output voter ({want})")
    instances, distinct = verdict.check_modules(structure.instances(), structure.distinct_modules())
    netlist_instances = cost = cost_plain = None
    if synth:
        netlist_instances = verdict.check_netlist(results["layer"]["hier_instances"], (KIND_SMUL, KIND_ADD),
                                                  instances)
        cost = unit_cost(twin, results["layer"])
        cost_plain = unit_cost(plain, results["plain"]) if plain is not twin else cost
        if cost["n_units"] != structure.n_units:
            failures.append(f"the synthesised layer has {cost['n_units']} MAC units, the structure {structure.n_units}")

    estimate, estimate_note = None, None
    try:
        from fpga_ft.measure import resources

        estimate = resources.time_shared_lut_yosys(info, protection)
    except Exception as exc:  # the estimator is another module's; never fail verification on it
        estimate_note = f"estimate failed: {exc}"

    def ratio(a, b):
        return round(float(a) / float(b), 3) if a is not None and b else None

    units_of = None
    if neuron is not None:
        units_of = sorted({u for row in structure.schedule() for u, slot in enumerate(row)
                           if slot is not None and slot[0] == int(neuron)})
    est = estimate or {}
    result = {
        "layer": info.name,
        "neuron": None if neuron is None else int(neuron),
        "time_shared": True,
        "scheme": scheme.name,
        "width": arith.width,
        "protected_msbs": twin.k if twin.protected else None,
        "reuse_factor": structure.reuse_factor,
        "n_in": n_in,
        "n_out": n_out,
        "n_units": structure.n_units,
        "units_of_neuron": units_of,
        "arithmetic": {"input_width": arith.in_width, "input_signed": arith.in_signed,
                       "weight_width": arith.w_width, "weight_signed": arith.w_signed,
                       "product_shift": arith.shift, "accum_width": arith.width},
        "unit": {"steps_proved": twin.steps,
                 "yosys_lut": cost["unit_lut"] if cost else None,
                 "yosys_lut_unprotected": cost_plain["unit_lut"] if cost else None,
                 "protected_over_unprotected": ratio(cost["unit_lut"], cost_plain["unit_lut"]) if cost else None,
                 "estimate_lut": est.get("unit_lut"),
                 "estimate_lut_unprotected": est.get("unit_lut_unprotected"),
                 "estimate_over_yosys": ratio(est.get("unit_lut"), cost["unit_lut"]) if cost else None},
        "yosys_lut": cost["lut"] if cost else None,
        "yosys_lut_unprotected": cost_plain["lut"] if cost else None,
        "yosys_ff": cost["ff"] if cost else None,
        "yosys_ff_unprotected": cost_plain["ff"] if cost else None,
        "yosys_carry4": cost["carry4"] if cost else None,
        "yosys_breakdown": cost,
        "yosys_breakdown_unprotected": cost_plain,
        "estimate_lut": est.get("lut"),
        "estimate_lut_unprotected": est.get("lut_unprotected"),
        "estimate_over_yosys": ratio(est.get("lut"), cost["lut"]) if cost else None,
        "estimate": estimate,
        "protection_lut": (cost["lut"] - cost_plain["lut"]) if cost else None,
        "estimate_protection_lut": (est["lut"] - est["lut_unprotected"]) if estimate else None,
        **verdict.report(proof, want, {"vectors": int(len(x)), "bit_exact_mismatches": verdict.mismatches,
                                       "layer_vectors": int(len(xl)), "layer_mismatches": layer_mismatches,
                                       "seconds": round(sim_seconds, 2)},
                         instances, netlist_instances, distinct, t_start),
    }
    if estimate_note:
        result["estimate_note"] = estimate_note
    if synth:
        result["synth_seconds"] = {k: v["seconds"] for k, v in results.items() if k != "sat"}
    return result


__all__ = ["Arithmetic", "Site", "Twin", "reference_output", "random_inputs", "to_signed", "synthesize",
           "prove_masked", "simulate", "verify_neuron", "find_tool", "SYNTH", "SAT_TIMEOUT_S",
           "SharedArithmetic", "UnitTwin", "simulate_layer", "unit_cost", "verify_time_shared"]
