#!/usr/bin/env python
"""Calibrate the offline resource estimator on real logic synthesis with Yosys.

Generates small Verilog units for the primitives the estimator (``fpga_ft/measure/resources/``)
costs, synthesises each one with Yosys for Xilinx 7-series, fits per-primitive cost
models and writes them, with every measured point, to
``fpga_ft/data/resource_calibration.json`` (the file the estimator reads at run time;
Yosys is not needed at run time).

Primitives (operand widths in bits):

* ``mult_generic``  signed Wa x Ww multiplier, both operands variable (Wa 4..16, Ww 2..16);
* ``mult_const``    Wa-bit signed input times a constant (the io_parallel hls4ml case);
* ``adder``         W-bit adder, W-bit result (an ``accum_t += product`` step);
* ``adder_msbs``    the cone of the top k bits of a W-bit sum computed from the full
                    operands (the whole adder: for reference; the kernel no longer
                    replicates a partial sum this way);
* ``adder_slice_cin`` a k-bit slice adder with carry-in, ``a_top + p_top + carry`` (a lane
                    without voters; k up to W);
* ``mult_msbs``     the cone of the top k bits of the W-bit product word (what product
                    replicas 1 and 2 compute), generic and constant;
* ``voter``         k-bit bitwise 2-of-3 majority;
* ``mac``           registered ``acc <= acc + a*b`` (W-bit accumulator);
* ``mac_tmr_k``     the *former* protected MAC (product voted on its own, split add with a
                    shared carry and one voter per word): kept as measured data only; the
                    structure built now is measured by the next units;
* ``lane``          one lane of a protected add as built (``fpgaft_tmr_r<R>_add``): a k-bit
                    adder with carry-in whose 0, 1 or 2 partial-sum operands are voted 2-of-3
                    inside it;
* ``low_adder_cout`` the single low part of a protected add: an l-bit adder with carry out;
* ``mult_const_word`` one kept product replica as built (``fpgaft_tmr_r0_mul``): Wa-bit
                    input times a signed constant code (a parameter inside the module), the
                    W-bit accum_t word; ``mult_const_word_topk`` its top k bits (replicas 1, 2);
* ``neuron``        whole-neuron twins of the structure (``v_neuron``, from
                    ``fpga_ft.core.structure``): a synthetic 16-input neuron and neurons of
                    ``models/digits_mlp.h5`` (unprotected, BitTMR at several k, FullTMR),
                    compared with ``fpga_ft.measure.resources.structure_lut_yosys``;
* ``mac_full_tmr``  three ``(* keep_hierarchy *)`` MAC instances and a W-bit voter;
* ``adder_tree`` / ``dot_const``  n-input sums and constant-weight dot products, to check
                    that the per-primitive costs add up;
* ``mult_dsp``      generic multipliers synthesised *with* DSP48E1 inference, to record
                    from which operand widths Yosys uses a DSP.

Every unit is synthesised with::

    yosys -q -p "read_verilog u.v; synth_xilinx -top top -family xc7 -nodsp -flatten
                 -noiopad; tee -q -o s.json stat -json -top top"

(``-nodsp`` dropped for ``mult_dsp``), through ``subprocess`` with an argument list, in a
temporary directory, two units at a time. ``stat`` is given ``-top top`` so that units with
kept sub-modules report the whole hierarchy (its ``design`` totals); the neuron units also
write the text report and read its design-hierarchy totals (Yosys 0.23's JSON is invalid
when kept modules nest two levels, as in a full-TMR neuron). LUTs are LUT1..LUT6
cells (MUXF7/MUXF8 and CARRY4 are recorded separately, as Vivado reports them separately
too; so are INV cells, which Yosys uses e.g. to negate through a CARRY4 chain and Vivado
folds into LUTs); FF = FD* cells; DSP = DSP48E1 cells.

Results are cached per unit (key: SHA-256 of the Verilog, the Yosys command and the Yosys
version) under ``$XDG_CACHE_HOME/fpga-ft/yosys`` (default ``~/.cache/fpga-ft/yosys``), so a
second run takes seconds. A cold run of the 489 units takes about 30 minutes on 2 cores (66 min of Yosys time).

Usage (from the repository root)::

    python scripts/calibrate_yosys.py                 # measure (or reuse cache), fit, write JSON
    python scripts/calibrate_yosys.py --no-cache      # re-synthesise everything
    python scripts/calibrate_yosys.py --quick         # a reduced grid (for a smoke test)
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import datetime as _dt
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fpga_ft.measure.resources import csd_digits  # noqa: E402  (one definition of the CSD count)

ROOT = Path(__file__).resolve().parent.parent
OUT_JSON = ROOT / "fpga_ft" / "data" / "resource_calibration.json"
FAMILY = "xc7"
SYNTH_NODSP = "synth_xilinx -top top -family xc7 -nodsp -flatten -noiopad"
SYNTH_DSP = "synth_xilinx -top top -family xc7 -flatten -noiopad"
TIMEOUT_S = 300


# ----------------------------------------------------------------------------------------
# Verilog generators. Every unit has a module named ``top``.
# ----------------------------------------------------------------------------------------
def _sv(n: int) -> str:
    """A signed bus declaration ``signed [n-1:0]``."""
    return f"signed [{n - 1}:0]"


def v_mult_generic(wa: int, ww: int) -> str:
    return (f"module top(input {_sv(wa)} a, input {_sv(ww)} b, output {_sv(wa + ww)} y);\n"
            f"  assign y = a * b;\nendmodule\n")


def _const_expr(c: int, wc: int) -> str:
    return f"{wc}'sd{c}" if c >= 0 else f"-{wc}'sd{-c}"


def _const_width(c: int) -> int:
    return max(2, abs(c).bit_length() + 1)


def v_mult_const(wa: int, c: int) -> str:
    wc = _const_width(c)
    return (f"module top(input {_sv(wa)} a, output {_sv(wa + wc)} y);\n"
            f"  wire {_sv(wc)} k = {_const_expr(c, wc)};\n"
            f"  assign y = a * k;\nendmodule\n")


def v_adder(w: int) -> str:
    return (f"module top(input {_sv(w)} a, input {_sv(w)} b, output {_sv(w)} y);\n"
            f"  assign y = a + b;\nendmodule\n")


def v_adder_msbs(w: int, k: int) -> str:
    return (f"module top(input {_sv(w)} a, input {_sv(w)} b, output [{k - 1}:0] y);\n"
            f"  wire {_sv(w)} s = a + b;\n"
            f"  assign y = s[{w - 1}:{w - k}];\nendmodule\n")


def v_adder_slice_cin(k: int) -> str:
    """A k-bit slice adder with carry-in (the cheaper replica: carry taken from the main copy)."""
    return (f"module top(input [{k - 1}:0] a, input [{k - 1}:0] b, input ci, output [{k - 1}:0] y);\n"
            f"  assign y = a + b + ci;\nendmodule\n")


def v_mult_msbs(wa: int, ww: int, w: int, k: int) -> str:
    """Top k bits of the product cast to a W-bit word (sign-extended or wrapped)."""
    return (f"module top(input {_sv(wa)} a, input {_sv(ww)} b, output [{k - 1}:0] y);\n"
            f"  wire {_sv(wa + ww)} p = a * b;\n"
            f"  wire {_sv(w)} pw = p;\n"
            f"  assign y = pw[{w - 1}:{w - k}];\nendmodule\n")


def v_mult_const_msbs(wa: int, c: int, w: int, k: int) -> str:
    wc = _const_width(c)
    return (f"module top(input {_sv(wa)} a, output [{k - 1}:0] y);\n"
            f"  wire {_sv(wc)} kc = {_const_expr(c, wc)};\n"
            f"  wire {_sv(wa + wc)} p = a * kc;\n"
            f"  wire {_sv(w)} pw = p;\n"
            f"  assign y = pw[{w - 1}:{w - k}];\nendmodule\n")


def v_voter(k: int) -> str:
    return (f"module top(input [{k - 1}:0] a, input [{k - 1}:0] b, input [{k - 1}:0] c, "
            f"output [{k - 1}:0] y);\n"
            f"  assign y = (a & b) | (a & c) | (b & c);\nendmodule\n")


def v_mac(wa: int, ww: int, w: int) -> str:
    return (f"module top(input clk, input {_sv(wa)} a, input {_sv(ww)} b, output {_sv(w)} q);\n"
            f"  reg {_sv(w)} acc = 0;\n"
            f"  wire {_sv(wa + ww)} p = a * b;\n"
            f"  wire {_sv(w)} pw = p;\n"
            f"  always @(posedge clk) acc <= acc + pw;\n"
            f"  assign q = acc;\nendmodule\n")


def v_mac_tmr_k(wa: int, ww: int, w: int, k: int) -> str:
    """MAC whose top k product and partial-sum bits are triplicated and voted: the *former*
    protected structure (kept as measured data; :func:`v_neuron` builds the current one).

    Mirrored the former ``dense_tmr_hw`` / ``tmr_add`` of ``fpgaft_tmr.h``. Product: three
    kept instances (``fpgaft_tmr_r0_mul``, the full word, and two ``fpgaft_tmr_rk_mul_msbs``
    replicas of its top-k cone), top k bits voted. Partial sum ``acc + pw``, a split adder:
    the low ``W-k`` bits are added once, in the top module (single, unprotected); their
    carry-out into bit ``W-k`` feeds three kept replicas (``fpgaft_tmr_rk_add_msbs`` r0, r1,
    r2) of a k-bit slice adder with carry-in (``a_top + p_top + carry``), whose results are
    voted bitwise 2-of-3. ``k == W``: no low part; three full W-bit adders with carry-in 0
    (the kernel passes the constant 0 to the kept replicas), voted.
    """
    lo = w - k
    low_p = f", pw0[{lo - 1}:0]" if lo > 0 else ""
    if lo > 0:
        low_add = (f"  wire [{lo}:0] low = {{1'b0, acc[{lo - 1}:0]}} + {{1'b0, pw[{lo - 1}:0]}};\n"
                   f"  wire cy = low[{lo}];\n")
        low_s = f", low[{lo - 1}:0]"
    else:
        low_add = "  wire cy = 1'b0;\n"
        low_s = ""
    return f"""(* keep_hierarchy *)
module prod_full(input {_sv(wa)} a, input {_sv(ww)} b, output {_sv(w)} y);
  wire {_sv(wa + ww)} p = a * b;
  assign y = p;
endmodule
(* keep_hierarchy *)
module prod_hi(input {_sv(wa)} a, input {_sv(ww)} b, output [{k - 1}:0] y);
  wire {_sv(wa + ww)} p = a * b;
  wire {_sv(w)} pw = p;
  assign y = pw[{w - 1}:{lo}];
endmodule
(* keep_hierarchy *)
module sum_slice(input [{k - 1}:0] x, input [{k - 1}:0] z, input ci, output [{k - 1}:0] y);
  assign y = x + z + ci;
endmodule
module top(input clk, input {_sv(wa)} a, input {_sv(ww)} b, output {_sv(w)} q);
  reg {_sv(w)} acc = 0;
  wire {_sv(w)} pw0;
  wire [{k - 1}:0] p1, p2, t0, t1, t2;
  prod_full r0(a, b, pw0);
  prod_hi r1(a, b, p1);
  prod_hi r2(a, b, p2);
  wire [{k - 1}:0] ph = pw0[{w - 1}:{lo}];
  wire [{k - 1}:0] pv = (ph & p1) | (ph & p2) | (p1 & p2);
  wire {_sv(w)} pw = {{pv{low_p}}};
{low_add}  sum_slice s0(acc[{w - 1}:{lo}], pw[{w - 1}:{lo}], cy, t0);
  sum_slice s1(acc[{w - 1}:{lo}], pw[{w - 1}:{lo}], cy, t1);
  sum_slice s2(acc[{w - 1}:{lo}], pw[{w - 1}:{lo}], cy, t2);
  wire [{k - 1}:0] sv = (t0 & t1) | (t0 & t2) | (t1 & t2);
  always @(posedge clk) acc <= {{sv{low_s}}};
  assign q = acc;
endmodule
"""


def v_mac_full_tmr(wa: int, ww: int, w: int) -> str:
    return f"""(* keep_hierarchy *)
module mac(input clk, input {_sv(wa)} a, input {_sv(ww)} b, output {_sv(w)} q);
  reg {_sv(w)} acc = 0;
  wire {_sv(wa + ww)} p = a * b;
  wire {_sv(w)} pw = p;
  always @(posedge clk) acc <= acc + pw;
  assign q = acc;
endmodule
module top(input clk, input {_sv(wa)} a, input {_sv(ww)} b, output {_sv(w)} q);
  wire {_sv(w)} q0, q1, q2;
  mac m0(clk, a, b, q0);
  mac m1(clk, a, b, q1);
  mac m2(clk, a, b, q2);
  assign q = (q0 & q1) | (q0 & q2) | (q1 & q2);
endmodule
"""


def v_adder_tree(n: int, w: int) -> str:
    ins = ", ".join(f"input {_sv(w)} x{i}" for i in range(n))
    expr = " + ".join(f"x{i}" for i in range(n))
    return f"module top({ins}, output {_sv(w)} y);\n  assign y = {expr};\nendmodule\n"


def v_dot_const(wa: int, consts: list[int], w: int) -> str:
    n = len(consts)
    ins = ", ".join(f"input {_sv(wa)} x{i}" for i in range(n))
    lines = [f"module top({ins}, output {_sv(w)} y);"]
    terms = []
    for i, c in enumerate(consts):
        wc = _const_width(c)
        lines.append(f"  wire {_sv(wc)} k{i} = {_const_expr(c, wc)};")
        lines.append(f"  wire {_sv(wa + wc)} p{i} = x{i} * k{i};")
        lines.append(f"  wire {_sv(w)} q{i} = p{i};")
        terms.append(f"q{i}")
    lines.append(f"  assign y = {' + '.join(terms)};")
    lines.append("endmodule")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------------------
# The protection structure as built (fpga_ft/core/structure.py, hls_templates/fpgaft_tmr.h)
# ----------------------------------------------------------------------------------------
def _vote(a: str, b: str, c: str) -> str:
    return f"(({a} & {b}) | ({a} & {c}) | ({b} & {c}))"


def _lane_body(k: int, va: bool, vb: bool) -> str:
    """Body of one lane of a protected partial sum (``fpgaft_tmr_r<R>_add<K, VA, VB>``): a
    k-bit adder with carry-in; an operand that is a partial sum is voted 2-of-3 inside the
    lane (own, x, y: the three lanes of it), a product operand enters as the lane's own
    replica (x, y unused)."""
    a = _vote("a_own", "a_x", "a_y") if va else "a_own"
    b = _vote("b_own", "b_x", "b_y") if vb else "b_own"
    return (f"(input [{k - 1}:0] a_own, input [{k - 1}:0] a_x, input [{k - 1}:0] a_y, "
            f"input [{k - 1}:0] b_own, input [{k - 1}:0] b_x, input [{k - 1}:0] b_y, input ci, "
            f"output [{k - 1}:0] y);\n"
            f"  wire [{k - 1}:0] a = {a};\n  wire [{k - 1}:0] b = {b};\n"
            f"  assign y = a + b + ci;\nendmodule\n")


def v_lane(k: int, voted: int) -> str:
    """One lane module with ``voted`` (0, 1, 2) voted operands, as the unit ``top``."""
    return "module top" + _lane_body(k, voted >= 2, voted >= 1)


def v_low_adder(l: int) -> str:
    """The single low part of a protected partial sum: an l-bit adder with carry out."""
    return (f"module top(input [{l - 1}:0] a, input [{l - 1}:0] b, output [{l - 1}:0] s, output co);\n"
            f"  assign {{co, s}} = {{1'b0, a}} + {{1'b0, b}};\nendmodule\n")


def _product_module(name: str, wa: int, w: int, top_k: int | None, rshift: int = 0, lshift: int = 0,
                    in_signed: bool = True, keep: bool = True) -> str:
    """A kept constant multiplier ``accum_t(x * C)`` (``fpgaft_tmr_r<R>_mul``): the weight
    code C is a parameter (a compile-time constant inside the module), the product is
    aligned to accum_t (``rshift`` / ``lshift`` fractional bits) and wrapped to W bits; the
    output is the whole W-bit word, or its top ``top_k`` bits (replicas 1 and 2)."""
    xs = "$signed(x)" if in_signed else "$signed({1'b0, x})"
    pw = w + rshift
    out = f"[{w - 1}:0] y" if top_k is None else f"[{top_k - 1}:0] y"
    sel = "pw" if top_k is None else f"pw[{w - 1}:{w - top_k}]"
    attr = "(* keep_hierarchy *)\n" if keep else ""
    return (f"{attr}module {name} #(parameter integer C = 0) (input [{wa - 1}:0] x, output {out});\n"
            f"  localparam signed [{pw - 1}:0] CW = C;\n"
            f"  wire signed [{pw - 1}:0] p = {xs} * CW;\n"
            f"  wire [{w - 1}:0] pw = (p >>> {rshift}) << {lshift};\n"
            f"  assign y = {sel};\nendmodule\n")


def v_mult_const_word(wa: int, c: int, w: int, top_k: int | None = None) -> str:
    """One product replica as built: Wa-bit signed input times the constant code c, as a
    W-bit accum_t word (replica 0) or its top k bits (replicas 1, 2)."""
    return (_product_module("mulc", wa, w, top_k)
            + f"module top(input [{wa - 1}:0] x, output [{(top_k or w) - 1}:0] y);\n"
              f"  mulc #(.C({c})) m(.x(x), .y(y));\nendmodule\n")


def v_neuron(ns, wa: int, rshift: int = 0, lshift: int = 0, in_signed: bool = True) -> str:
    """Structural Verilog of one neuron's dot product as built, from its
    :class:`fpga_ft.core.structure.NeuronStructure` (the same tree the HLS templates wire).

    * BitTMR: per non-zero product three kept constant multipliers (``fpgaft_tmr_r0_mul``
      the W-bit word, ``r1``/``r2`` its top k bits); per add of the balanced tree a single
      (W-k)-bit low adder with carry out (in the top module) and three kept lane modules
      (``fpgaft_tmr_r<R>_add_<VA><VB>``: k-bit adder with carry-in, voting the operands that
      are partial sums); the root's lanes voted by one k-bit output voter. The bias (when
      non-zero) is a constant leaf, the same top bits in every lane.
    * FullTMR: three kept replica modules ``fpgaft_tmr_r<R>_dot`` of the plain dot product
      (own constants), voted by one W-bit voter.
    * Unprotected: the plain dot product. HLS emits one binary operator per product and per
      add (Vivado keeps them so); Yosys would merge a flat sum of products into one
      ``$macc`` compressor tree (1.5-1.8x dearer, see ``dot_const``), so every constant
      product and every W-bit add of a plain dot product is its own kept module here.
    """
    from fpga_ft.core.structure import Add, BitTMR, FullTMR

    s, w = ns.scheme, ns.scheme.width
    prods = ns.products
    ports = ", ".join(f"input [{wa - 1}:0] x{t.input}" for t in prods)
    mods: list[str] = []
    body: list[str] = []
    if not prods:
        raise ValueError("a neuron without non-zero products has no hardware")

    def plain_dot(name: str, keep: bool) -> str:
        lines = [("(* keep_hierarchy *)\n" if keep else "") + f"module {name}({ports}, output [{w - 1}:0] y);"]
        for t in ns.terms:
            if t.is_bias:
                lines.append(f"  wire [{w - 1}:0] bias = {w}'d{t.code & ((1 << w) - 1)};")
            else:
                lines.append(f"  wire [{w - 1}:0] p{t.input};")
                lines.append(f"  fpgaft_cmul #(.C({t.code})) m{t.input}(.x(x{t.input}), .y(p{t.input}));")

        def ref(node):
            if isinstance(node, Add):
                return f"s{node.index}"
            return "bias" if node.is_bias else f"p{node.input}"
        for a in ns.adds():
            lines.append(f"  wire [{w - 1}:0] s{a.index};")
            lines.append(f"  fpgaft_addw u{a.index}(.a({ref(a.left)}), .b({ref(a.right)}), .y(s{a.index}));")
        lines.append(f"  assign y = {ref(ns.tree)};\nendmodule\n")
        return "\n".join(lines)

    plain_parts = (_product_module("fpgaft_cmul", wa, w, None, rshift, lshift, in_signed)
                   + f"(* keep_hierarchy *)\nmodule fpgaft_addw(input [{w - 1}:0] a, input [{w - 1}:0] b, "
                     f"output [{w - 1}:0] y);\n  assign y = a + b;\nendmodule\n")
    if isinstance(s, FullTMR):
        mods.append(plain_parts)
        conns = ", ".join(f".x{t.input}(x{t.input})" for t in prods)
        body.append(f"module top({ports}, output [{w - 1}:0] y);")
        body.append(f"  wire [{w - 1}:0] d0, d1, d2;")
        for r in range(3):
            mods.append(plain_dot(f"fpgaft_tmr_r{r}_dot", True))
            body.append(f"  fpgaft_tmr_r{r}_dot u{r}({conns}, .y(d{r}));")
        body.append(f"  assign y = {_vote('d0', 'd1', 'd2')};\nendmodule\n")
        return "\n".join(mods + body)
    if not isinstance(s, BitTMR):
        return plain_parts + plain_dot("top", False)

    k, lo = s.k, s.low_bits
    for r in range(3):
        mods.append(_product_module(f"fpgaft_tmr_r{r}_mul", wa, w, None if r == 0 else k, rshift, lshift,
                                    in_signed))
    kinds = sorted({(isinstance(a.left, Add), isinstance(a.right, Add)) for a in ns.adds()})
    for r in range(3):
        for va, vb in kinds:
            mods.append(f"(* keep_hierarchy *)\nmodule fpgaft_tmr_r{r}_add_{int(va)}{int(vb)}"
                        + _lane_body(k, va, vb))
    body.append(f"module top({ports}, output [{w - 1}:0] y);")

    def operand(node):
        """(low bits, [lane 0, 1, 2 top bits]) of a tree node."""
        if isinstance(node, Add):
            j = node.index
            return (f"s{j}_lo" if lo else None), [f"s{j}_t{r}" for r in range(3)]
        if node.is_bias:
            raw = node.code & ((1 << w) - 1)
            return (f"{lo}'d{raw & ((1 << lo) - 1)}" if lo else None), [f"{k}'d{raw >> lo}"] * 3
        i = node.input
        return (f"p{i}_0[{lo - 1}:0]" if lo else None), [f"p{i}_0[{w - 1}:{lo}]", f"p{i}_1", f"p{i}_2"]

    for t in prods:
        i = t.input
        body.append(f"  wire [{w - 1}:0] p{i}_0;\n  wire [{k - 1}:0] p{i}_1, p{i}_2;")
        for r in range(3):
            body.append(f"  fpgaft_tmr_r{r}_mul #(.C({t.code})) m{i}_{r}(.x(x{i}), .y(p{i}_{r}));")
    for a in ns.adds():
        j = a.index
        (la, ta), (lb, tb) = operand(a.left), operand(a.right)
        if lo:
            body.append(f"  wire [{lo}:0] s{j}_w = {{1'b0, {la}}} + {{1'b0, {lb}}};")
            body.append(f"  wire [{lo - 1}:0] s{j}_lo = s{j}_w[{lo - 1}:0];")
            ci = f"s{j}_w[{lo}]"
        else:
            ci = "1'b0"
        body.append(f"  wire [{k - 1}:0] s{j}_t0, s{j}_t1, s{j}_t2;")
        kind = f"{int(isinstance(a.left, Add))}{int(isinstance(a.right, Add))}"
        for r in range(3):
            x, y = [q for q in range(3) if q != r]
            body.append(f"  fpgaft_tmr_r{r}_add_{kind} l{j}_{r}(.a_own({ta[r]}), .a_x({ta[x]}), .a_y({ta[y]}), "
                        f".b_own({tb[r]}), .b_x({tb[x]}), .b_y({tb[y]}), .ci({ci}), .y(s{j}_t{r}));")
    root = ns.tree
    if isinstance(root, Add):
        _, t = operand(root)
        low = f", s{root.index}_lo" if lo else ""
        body.append(f"  assign y = {{{_vote(*t)}{low}}};")
    else:  # a single product: its three replicas voted
        i = root.input
        low = f", p{i}_0[{lo - 1}:0]" if lo else ""
        body.append(f"  assign y = {{{_vote(f'p{i}_0[{w - 1}:{lo}]', f'p{i}_1', f'p{i}_2')}{low}}};")
    body.append("endmodule\n")
    return "\n".join(mods + body)


# ----------------------------------------------------------------------------------------
# Number helpers shared with the fit (same definitions as fpga_ft/measure/resources/costs.py).
# ----------------------------------------------------------------------------------------
def popcount(n: int) -> int:
    return bin(abs(int(n))).count("1")




def odd_part(n: int) -> int:
    n = abs(int(n))
    while n and n % 2 == 0:
        n //= 2
    return n


# ----------------------------------------------------------------------------------------
# The measurement grid
# ----------------------------------------------------------------------------------------
CONSTANTS = [1, 3, 5, 7, 11, 13, 21, 27, 45, 85, 93, 107, 171, 219, 365, 731]
NEG_CONSTANTS = [-1, -3, -7, -45, -107]


def build_grid(quick: bool = False) -> list[dict]:
    units: list[dict] = []

    def add(kind: str, verilog: str, dsp: bool = False, **params):
        units.append({"kind": kind, "params": params, "verilog": verilog, "dsp": dsp})

    wa_list = [4, 8, 16] if quick else [4, 6, 8, 10, 12, 16]
    ww_list = [2, 4, 8, 16] if quick else [2, 4, 6, 8, 12, 16]
    for wa in wa_list:
        for ww in ww_list:
            add("mult_generic", v_mult_generic(wa, ww), wa=wa, ww=ww)
    for wa in ([8, 16] if quick else [4, 8, 12, 16]):
        for c in (CONSTANTS[::3] if quick else CONSTANTS):
            add("mult_const", v_mult_const(wa, c), wa=wa, c=c, popcount=popcount(c),
                csd=csd_digits(c))
        for c in ([] if quick else NEG_CONSTANTS):
            if wa in (8, 16):
                add("mult_const_neg", v_mult_const(wa, c), wa=wa, c=c, popcount=popcount(c),
                    csd=csd_digits(c))
    for w in ([8, 16, 32] if quick else [4, 8, 12, 16, 20, 24, 32]):
        add("adder", v_adder(w), w=w)
    for w, ks in ([(16, [1, 4, 16])] if quick else [(16, [1, 2, 4, 8, 16]), (24, [1, 4, 12, 24])]):
        for k in ks:
            add("adder_msbs", v_adder_msbs(w, k), w=w, k=k)
    for k in ([1, 4, 20] if quick else [1, 2, 4, 8, 16, 20, 36]):
        add("adder_slice_cin", v_adder_slice_cin(k), k=k)
    prod_cones = [(8, 8, 20, [1, 2, 4, 8, 12, 16, 20]), (16, 16, 36, [1, 4, 8, 16, 32]),
                  (8, 4, 16, [1, 4, 8, 12, 16])]
    if quick:
        prod_cones = [(8, 8, 20, [1, 4, 20])]
    for wa, ww, w, ks in prod_cones:
        for k in ks:
            add("mult_msbs", v_mult_msbs(wa, ww, w, k), wa=wa, ww=ww, w=w, k=k)
    for wa, c, w, ks in ([] if quick else [(8, 107, 20, [1, 2, 4, 8, 12, 20]),
                                           (16, 45, 28, [1, 4, 8, 16, 28])]):
        for k in ks:
            add("mult_const_msbs", v_mult_const_msbs(wa, c, w, k), wa=wa, c=c, w=w, k=k,
                csd=csd_digits(c))
    for k in ([1, 8, 32] if quick else [1, 2, 4, 8, 16, 32]):
        add("voter", v_voter(k), k=k)
    for wa, ww, w in ([(8, 8, 20)] if quick else [(4, 4, 12), (8, 4, 16), (8, 8, 20), (12, 12, 28), (16, 16, 36)]):
        add("mac", v_mac(wa, ww, w), wa=wa, ww=ww, w=w)
    for wa, ww, w, ks in ([(8, 8, 20, [2, 20])] if quick else
                          [(8, 8, 20, [1, 2, 4, 10, 20]), (16, 16, 36, [4, 18]), (8, 4, 16, [2, 8])]):
        for k in ks:
            add("mac_tmr_k", v_mac_tmr_k(wa, ww, w, k), wa=wa, ww=ww, w=w, k=k)
    for wa, ww, w in ([(8, 8, 20)] if quick else [(4, 4, 12), (8, 8, 20), (16, 16, 36)]):
        add("mac_full_tmr", v_mac_full_tmr(wa, ww, w), wa=wa, ww=ww, w=w)
    for n, w in ([(8, 16)] if quick else [(4, 8), (8, 8), (8, 16), (16, 16)]):
        add("adder_tree", v_adder_tree(n, w), n=n, w=w)
    rng = np.random.default_rng(20240611)
    dots = [(8, 16, 6, 8)] if quick else [(8, 20, 6, 8), (16, 24, 8, 16), (6, 16, 4, 8)]
    for wa, w, wbits, n in dots:
        lim = 2 ** (wbits - 1)
        consts = [int(c) for c in rng.integers(-lim, lim, size=n)]
        add("dot_const", v_dot_const(wa, consts, w), wa=wa, w=w, n=n, consts=consts,
            csd=[csd_digits(c) for c in consts])
    dsp_pairs = [(8, 8), (16, 16)] if quick else [
        (2, 16), (3, 16), (4, 4), (4, 16), (6, 6), (8, 8), (9, 9), (10, 10), (12, 12),
        (16, 6), (16, 7), (16, 16), (18, 25), (25, 18), (27, 20), (32, 32)]
    for wa, ww in dsp_pairs:
        add("mult_dsp", v_mult_generic(wa, ww), dsp=True, wa=wa, ww=ww)

    # --- the protection structure as built (fpga_ft/core/structure.py) ---------------------------
    for k in ([1, 2, 4, 8] if quick else LANE_KS):
        for voted in (0, 1, 2):
            add("lane", v_lane(k, voted), k=k, voted=voted)
    for l in ([1, 8, 15] if quick else LOW_WIDTHS):
        add("low_adder_cout", v_low_adder(l), l=l)
    for wa in ([8] if quick else [4, 8, 16]):
        codes = [c for c in range(-32, 32) if c] if not quick else [-17, -8, -3, 3, 11, 22]
        for c in codes:
            add("mult_const_word", v_mult_const_word(wa, c, wa + 8), wa=wa, c=c, w=wa + 8,
                csd=csd_digits(c))
    for c in ([] if quick else WORD_TOPK_CODES):
        for k in (1, 2, 4):
            add("mult_const_word_topk", v_mult_const_word(8, c, 16, k), wa=8, c=c, w=16, k=k,
                csd=csd_digits(c))
    for unit in neuron_units(quick):
        units.append(unit)
    return units


#: lane widths k and low-adder widths measured (the structure's units)
LANE_KS = [1, 2, 3, 4, 5, 6, 8, 12, 16, 20, 24, 32]
LOW_WIDTHS = [1, 2, 4, 8, 12, 15, 16, 20, 24, 32]
#: constants whose top-k product replica is measured against the whole word (cone fraction)
WORD_TOPK_CODES = [-19, -17, -9, -5, -3, -1, -16, 3, 11, 22]
#: whole-neuron twins of models/digits_mlp.h5: (layer, neuron, [(protected_msbs, critical)])
NEURON_CASES = [("fc1", 0, [(0, False), (1, False), (2, False), (3, False), (4, False), (8, False),
                            (17, False), (0, True)]),
                ("fc2", 0, [(0, False), (2, False), (4, False), (8, False), (0, True)])]


def neuron_spec(ns, wa: int, ww: int, in_signed: bool, rshift: int, lshift: int) -> dict:
    """The parameters that rebuild a neuron unit without the model (stored with the point)."""
    s = ns.scheme
    return {"layer": ns.layer, "neuron": ns.neuron, "scheme": s.name, "w": s.width,
            "k": getattr(s, "k", 0), "wa": wa, "ww": ww, "in_signed": in_signed, "rshift": rshift,
            "lshift": lshift, "terms": [[t.input, t.code] for t in ns.terms]}


def structure_of(spec: dict):
    """A :class:`fpga_ft.core.structure.NeuronStructure` from :func:`neuron_spec` parameters."""
    from fpga_ft.core.structure import NeuronStructure, Term, scheme_for

    terms = tuple(Term(None if i is None else int(i), int(c)) for i, c in spec["terms"])
    scheme = scheme_for(spec["w"], spec["k"], spec["scheme"] == "full_tmr")
    return NeuronStructure(spec["layer"], spec["neuron"], scheme, terms)


def _synthetic_neuron_specs() -> list[dict]:
    """A small neuron with random 6-bit weights (no model needed): 16 inputs, 8-bit input,
    W = 16, a zero bias (so 15 adds) and about a sixth of the weights zero."""
    rng = np.random.default_rng(7)
    codes = [int(c) if rng.random() > 0.17 else 0 for c in rng.integers(-32, 32, size=16)]
    terms = [[i, c] for i, c in enumerate(codes) if c]
    out = []
    for k, crit in ((0, False), (1, False), (4, False), (0, True)):
        out.append({"layer": "synthetic", "neuron": 0, "scheme": "full_tmr" if crit else ("bit_tmr" if k else "none"),
                    "w": 16, "k": k, "wa": 8, "ww": 6, "in_signed": True, "rshift": 0, "lshift": 0, "terms": terms})
    return out


def _model_neuron_specs() -> list[dict]:
    """Neuron units of models/digits_mlp.h5 (hls4ml conversion; skipped if unavailable)."""
    model = ROOT / "models" / "digits_mlp.h5"
    try:
        from fpga_ft.core.plan import LayerProtection
        from fpga_ft.core.structure import layer_structure
        from fpga_ft.generate.convert import convert_model

        layers = {info.name: info for info in convert_model(str(model), None).layers}
    except Exception as exc:  # noqa: BLE001 - the calibration still runs without them
        print(f"  (neuron units of {model.name} skipped: {exc})", file=sys.stderr)
        return []
    out = []
    for name, j, cases in NEURON_CASES:
        info = layers[name]
        prod_frac = info.input_type.fractional + info.weight_type.fractional
        shift = info.accum_type.fractional - prod_frac
        for k, crit in cases:
            ns = layer_structure(info, LayerProtection(protected_msbs=k, critical_neurons=[j] if crit else []))
            out.append(neuron_spec(ns.neurons[j], info.input_type.width, info.weight_type.width,
                                   bool(info.input_type.signed),
                                   max(0, -shift), max(0, shift)))
    return out


def v_twin(spec: dict) -> str | None:
    """The Verilog of ``fpga_ft.measure.twin`` (the twin ``fpga-ft verify`` synthesises, written by
    another module) for the same neuron, wrapped in a ``top``; ``None`` if unavailable."""
    try:
        from fpga_ft.measure.twin import Arithmetic, Twin
    except ImportError:
        return None
    ns = structure_of(spec)
    n_in = max(t.input for t in ns.products) + 1
    twin = Twin(ns, Arithmetic(spec["wa"], spec["in_signed"], spec["rshift"] - spec["lshift"], spec["w"]), n_in)
    bus = n_in * spec["wa"]
    return (twin.verilog(False) + f"\nmodule top(input [{bus - 1}:0] x, output [{spec['w'] - 1}:0] y);\n"
            f"  {twin.top} u(.x(x), .y(y));\nendmodule\n")


def neuron_units(quick: bool = False) -> list[dict]:
    specs = _synthetic_neuron_specs() + ([] if quick else _model_neuron_specs())
    units = []
    for spec in specs:
        v = v_neuron(structure_of(spec), spec["wa"], spec["rshift"], spec["lshift"], spec["in_signed"])
        units.append({"kind": "neuron", "params": spec, "verilog": v, "dsp": False, "text_stat": True})
        tv = None if quick else v_twin(spec)
        if tv is not None:
            units.append({"kind": "twin_neuron", "params": spec, "verilog": tv, "dsp": False, "text_stat": True})
    return units


# ----------------------------------------------------------------------------------------
# Synthesis with cache
# ----------------------------------------------------------------------------------------
def yosys_version(yosys: str) -> str:
    out = subprocess.run([yosys, "-V"], capture_output=True, text=True, check=True, timeout=60)
    return out.stdout.strip()


def _cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "fpga-ft" / "yosys"


def _script(dsp: bool, text_stat: bool = False) -> str:
    synth = SYNTH_DSP if dsp else SYNTH_NODSP
    # Yosys 0.23 writes invalid JSON for `stat -json -top` when kept modules nest two levels
    # (the full-TMR neuron: dot replicas holding kept products and adders); those units also
    # write the text report, whose design-hierarchy totals are read instead.
    extra = "; tee -q -o s.txt stat -top top" if text_stat else ""
    return f"read_verilog u.v; {synth}; tee -q -o s.json stat -json -top top{extra}"


def _cells_from_text(txt: str) -> dict:
    """Cell counts of the whole hierarchy from a text ``stat -top`` report."""
    part = txt.rsplit("=== design hierarchy ===", 1)[-1]
    cells: dict = {}
    lines = part.split("Number of cells:", 1)[1].splitlines()[1:]
    for line in lines:
        bits = line.split()
        if len(bits) != 2 or not bits[1].isdigit():
            break
        cells[bits[0]] = int(bits[1])
    return cells


def synthesize(unit: dict, yosys: str, version: str, use_cache: bool = True) -> dict:
    """Synthesise one unit (or read its cached result); returns cell counts."""
    script = _script(unit["dsp"], unit.get("text_stat", False))
    key = hashlib.sha256(f"{version}\n{script}\n{unit['verilog']}".encode()).hexdigest()
    cache = _cache_dir() / f"{key}.json"
    if use_cache and cache.is_file():
        try:
            return json.loads(cache.read_text())
        except (OSError, ValueError):
            pass
    with tempfile.TemporaryDirectory(prefix="fpgaft_yosys_") as tmp:
        Path(tmp, "u.v").write_text(unit["verilog"])
        t0 = time.monotonic()
        proc = subprocess.run([yosys, "-q", "-p", script], cwd=tmp, capture_output=True,
                              text=True, timeout=TIMEOUT_S)
        seconds = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"yosys failed on {unit['kind']} {unit['params']}:\n{proc.stderr[-2000:]}")
        if unit.get("text_stat"):
            cells = _cells_from_text(Path(tmp, "s.txt").read_text())
        else:
            stat = json.loads(Path(tmp, "s.json").read_text())
            cells = (stat.get("design") or stat["modules"]["\\top"])["num_cells_by_type"]
    result = {
        "LUT": sum(v for k, v in cells.items() if k.startswith("LUT")),
        "CARRY4": cells.get("CARRY4", 0),
        "MUXF7": cells.get("MUXF7", 0),
        "MUXF8": cells.get("MUXF8", 0),
        "INV": cells.get("INV", 0),
        "FF": sum(v for k, v in cells.items() if k.startswith("FD")),
        "DSP": sum(v for k, v in cells.items() if k.startswith("DSP48")),
        "cells": cells,
        "seconds": round(seconds, 2),
    }
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        cache.write_text(json.dumps(result))
    except OSError:
        pass
    return result


def measure(units: list[dict], yosys: str, version: str, jobs: int, use_cache: bool) -> list[dict]:
    points: list[dict | None] = [None] * len(units)
    with cf.ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(synthesize, u, yosys, version, use_cache): i for i, u in enumerate(units)}
        done = 0
        for fut in cf.as_completed(futures):
            i = futures[fut]
            res = fut.result()
            points[i] = {"kind": units[i]["kind"], "params": units[i]["params"],
                         "dsp_inference": units[i]["dsp"],
                         **{k: res[k] for k in ("LUT", "CARRY4", "MUXF7", "MUXF8", "FF", "DSP")},
                         "INV": res.get("INV", 0),
                         "synth_seconds": res["seconds"]}
            done += 1
            if done % 20 == 0 or done == len(units):
                print(f"  {done}/{len(units)} units", file=sys.stderr, flush=True)
    return points  # type: ignore[return-value]


# ----------------------------------------------------------------------------------------
# Fits
# ----------------------------------------------------------------------------------------
def _lstsq(rows: list[list[float]], ys: list[float], names: list[str], form: str,
           labels: list[str]) -> dict:
    a = np.asarray(rows, dtype=float)
    y = np.asarray(ys, dtype=float)
    coef, *_ = np.linalg.lstsq(a, y, rcond=None)
    pred = a @ coef
    res = y - pred
    rel = np.where(y > 0, np.abs(res) / np.maximum(y, 1.0), 0.0)
    return {
        "form": form,
        "coef": {n: round(float(c), 5) for n, c in zip(names, coef)},
        "n_points": int(len(y)),
        "rms_residual_lut": round(float(np.sqrt(np.mean(res ** 2))), 3),
        "max_abs_residual_lut": round(float(np.max(np.abs(res))), 3),
        "max_rel_residual": round(float(np.max(rel)), 4),
        "residuals": [{"point": lab, "measured": float(m), "fit": round(float(p), 2)}
                      for lab, m, p in zip(labels, y, pred)],
    }


def fit_all(points: list[dict]) -> dict:
    by = lambda kind: [p for p in points if p["kind"] == kind]  # noqa: E731
    models: dict = {}

    g = by("mult_generic")
    models["mult_generic_lut"] = _lstsq(
        [[p["params"]["wa"] * p["params"]["ww"], p["params"]["wa"] + p["params"]["ww"], 1] for p in g],
        [p["LUT"] for p in g], ["a", "b", "c"], "LUT = a*Wa*Ww + b*(Wa+Ww) + c",
        [f"{p['params']['wa']}x{p['params']['ww']}" for p in g])

    c = by("mult_const")
    # t = non-zero digits of the constant's canonical signed-digit (CSD/NAF) form: each
    # digit beyond the first is one shifted add/subtract; a power of two (t = 1) is a wire
    # shift and costs nothing (measured 0). CSD predicts Yosys's cost better than the plain
    # binary digit count (both fits are kept; the estimator uses the CSD one).
    labels = [f"{p['params']['wa']}b*{p['params']['c']}" for p in c]
    models["mult_const_lut"] = _lstsq(
        [[(p["params"]["csd"] - 1) * p["params"]["wa"], p["params"]["csd"] - 1] for p in c],
        [p["LUT"] for p in c], ["a", "b"],
        "LUT = a*(t-1)*Wa + b*(t-1), t = non-zero CSD digits of the constant", labels)
    models["mult_const_lut_popcount"] = _lstsq(
        [[(p["params"]["popcount"] - 1) * p["params"]["wa"], p["params"]["popcount"] - 1] for p in c],
        [p["LUT"] for p in c], ["a", "b"],
        "LUT = a*(t-1)*Wa + b*(t-1), t = non-zero binary digits (alternative, not used)", labels)
    neg = by("mult_const_neg")
    if neg:
        models["mult_const_neg_measured"] = [
            {"wa": p["params"]["wa"], "c": p["params"]["c"], "LUT": p["LUT"]} for p in neg]

    a = by("adder")
    models["adder_lut"] = _lstsq([[p["params"]["w"], 1] for p in a], [p["LUT"] for p in a],
                                 ["a", "b"], "LUT = a*W + b", [f"W={p['params']['w']}" for p in a])
    models["adder_carry4"] = {"form": "CARRY4 = ceil(W/4)",
                              "measured": [{"w": p["params"]["w"], "CARRY4": p["CARRY4"]} for p in a]}

    am = by("adder_msbs")
    models["adder_msbs_lut"] = _lstsq(
        [[p["params"]["w"], p["params"]["k"], 1] for p in am], [p["LUT"] for p in am],
        ["a", "b", "c"], "LUT(top-k cone of a W-bit sum) = a*W + b*k + c",
        [f"W={p['params']['w']},k={p['params']['k']}" for p in am])

    # Product cone: fraction of the full multiplier the top-k bits need, against the
    # position of the lowest voted bit inside the real product (bits above Wa+Ww are
    # sign copies of the product MSB).
    full = {(p["params"]["wa"], p["params"]["ww"]): p["LUT"] for p in g}
    cone_rows, cone_y, cone_lab = [], [], []
    for p in by("mult_msbs"):
        wa, ww, w, k = (p["params"][x] for x in ("wa", "ww", "w", "k"))
        ref = full.get((wa, ww))
        if not ref:
            continue
        k_eff = max(1, min(wa + ww, k - (w - (wa + ww))))
        cone_rows.append([1.0, k_eff / (wa + ww)])
        cone_y.append(p["LUT"] / ref)
        cone_lab.append(f"{wa}x{ww} W={w} k={k}")
    models["mult_msbs_fraction"] = _lstsq(
        cone_rows, cone_y, ["g0", "g1"],
        "LUT(top-k cone)/LUT(multiplier) = g0 + g1*k_eff/(Wa+Ww), k_eff = max(1, k-(W-Wa-Ww)); "
        "values above 1 are clipped at 1 by the estimator", cone_lab)
    models["mult_msbs_fraction"]["note"] = "residuals are in units of the fraction, not LUTs"

    cm = by("mult_const_msbs")
    if cm:
        rows = []
        for p in cm:
            wa, cc, w, k = (p["params"][x] for x in ("wa", "c", "w", "k"))
            ref = next((q["LUT"] for q in c if q["params"]["wa"] == wa and q["params"]["c"] == cc), None)
            rows.append({"wa": wa, "c": cc, "w": w, "k": k, "LUT": p["LUT"], "full_LUT": ref,
                         "fraction": round(p["LUT"] / ref, 3) if ref else None})
        models["mult_const_msbs_measured"] = rows

    sc = by("adder_slice_cin")
    if sc:
        models["adder_slice_cin_measured"] = [{"k": p["params"]["k"], "LUT": p["LUT"]} for p in sc]
        # A lane without voters (the estimator's fallback for a table without lane units).
        models["adder_slice_cin_lut"] = _lstsq(
            [[p["params"]["k"], 1] for p in sc], [p["LUT"] for p in sc], ["a", "b"],
            "LUT(k-bit slice adder with carry-in) = a*k + b",
            [f"k={p['params']['k']}" for p in sc])

    v = by("voter")
    models["voter_lut"] = _lstsq([[p["params"]["k"]] for p in v], [p["LUT"] for p in v], ["a"],
                                 "LUT = a*k (one LUT3 per voted bit)",
                                 [f"k={p['params']['k']}" for p in v])

    at = by("adder_tree")
    if at:
        models["adder_tree_check"] = [
            {"n": p["params"]["n"], "w": p["params"]["w"], "LUT": p["LUT"],
             "n_minus_1_adders_fit": round((p["params"]["n"] - 1) * (models["adder_lut"]["coef"]["a"] * p["params"]["w"]
                                                                      + models["adder_lut"]["coef"]["b"]), 1)}
            for p in at]

    # --- the protection structure as built ------------------------------------------------
    ln = by("lane")
    if ln:
        models["lane_measured"] = [{"k": p["params"]["k"], "voted": p["params"]["voted"], "LUT": p["LUT"],
                                    "CARRY4": p["CARRY4"]} for p in ln]
        coef, resid = {}, []
        for v in (0, 1, 2):
            pts = [p for p in ln if p["params"]["voted"] == v]
            f = _lstsq([[p["params"]["k"], 1] for p in pts], [p["LUT"] for p in pts], ["a", "b"],
                       "", [f"k={p['params']['k']},v={v}" for p in pts])
            coef[f"a{v}"], coef[f"b{v}"] = f["coef"]["a"], f["coef"]["b"]
            resid += f["residuals"]
        res = np.array([r["measured"] - r["fit"] for r in resid])
        models["lane_lut"] = {
            "form": "LUT(lane: k-bit adder with carry-in, v of its operands voted 2-of-3 inside) "
                    "= a_v*k + b_v (the estimator uses the fit)",
            "coef": coef, "n_points": len(resid),
            "rms_residual_lut": round(float(np.sqrt(np.mean(res ** 2))), 3),
            "max_abs_residual_lut": round(float(np.max(np.abs(res))), 3), "residuals": resid}
    lo = by("low_adder_cout")
    if lo:
        models["low_adder_cout_measured"] = [{"l": p["params"]["l"], "LUT": p["LUT"], "CARRY4": p["CARRY4"]}
                                             for p in lo]
        models["low_adder_cout_lut"] = _lstsq(
            [[p["params"]["l"], 1] for p in lo], [p["LUT"] for p in lo], ["a", "b"],
            "LUT(l-bit low adder with carry out) = a*l + b", [f"l={p['params']['l']}" for p in lo])
    cw = by("mult_const_word")
    if cw:
        cc = models["mult_const_lut"]["coef"]
        rows, by_wa = [], {}
        for p in cw:
            wa, cst, t = p["params"]["wa"], p["params"]["c"], p["params"]["csd"]
            model = max(0.0, cc["a"] * (t - 1) * wa + cc["b"] * (t - 1))
            rows.append({"wa": wa, "c": cst, "csd": t, "LUT": p["LUT"], "INV": p.get("INV", 0),
                         "mult_const_lut_model": round(model, 2)})
            agg = by_wa.setdefault(wa, [0.0, 0.0, 0])
            agg[0] += p["LUT"]
            agg[1] += model
            agg[2] += 1
        models["mult_const_word_measured"] = rows
        models["mult_const_word_check"] = [
            {"wa": wa, "codes": n, "sum_LUT_measured": m, "sum_LUT_mult_const_model": round(f, 1),
             "ratio_model_over_measured": round(f / max(1.0, m), 3)} for wa, (m, f, n) in sorted(by_wa.items())]
        models["mult_const_word_lut"] = _lstsq(
            [[(p["params"]["csd"] - 1) * p["params"]["wa"], p["params"]["csd"] - 1] for p in cw],
            [p["LUT"] for p in cw], ["a", "b"],
            "LUT(kept product replica, signed constant, W-bit word) = a*(t-1)*Wa + b*(t-1) "
            "(for the record; the estimator uses mult_const_lut)",
            [f"{p['params']['wa']}b*{p['params']['c']}" for p in cw])
    tk = by("mult_const_word_topk")
    if tk and cw:
        word = {(p["params"]["wa"], p["params"]["c"]): p["LUT"] for p in cw}
        models["mult_const_word_topk_measured"] = [
            {"wa": p["params"]["wa"], "c": p["params"]["c"], "k": p["params"]["k"], "LUT": p["LUT"],
             "word_LUT": word.get((p["params"]["wa"], p["params"]["c"])),
             "fraction": (round(p["LUT"] / word[(p["params"]["wa"], p["params"]["c"])], 3)
                          if word.get((p["params"]["wa"], p["params"]["c"])) else None)} for p in tk]

    # DSP inference threshold of Yosys (for the record; the estimator follows the HLS rule).
    models["yosys_dsp_inference"] = [
        {"wa": p["params"]["wa"], "ww": p["params"]["ww"], "DSP48E1": p["DSP"], "LUT": p["LUT"]}
        for p in by("mult_dsp")]
    return models


def composed_checks(points: list[dict], models: dict) -> dict:
    """Compare composite units with the sum of their fitted parts."""
    gen = models["mult_generic_lut"]["coef"]
    add = models["adder_lut"]["coef"]
    cst = models["mult_const_lut"]["coef"]
    mult = lambda wa, ww: gen["a"] * wa * ww + gen["b"] * (wa + ww) + gen["c"]  # noqa: E731
    adder = lambda w: add["a"] * w + add["b"]  # noqa: E731
    macs = {(p["params"]["wa"], p["params"]["ww"], p["params"]["w"]): p for p in points if p["kind"] == "mac"}
    out: dict = {"mac": [], "mac_tmr_k": [], "mac_full_tmr": [], "dot_const": []}
    for (wa, ww, w), p in macs.items():
        out["mac"].append({"wa": wa, "ww": ww, "w": w, "LUT": p["LUT"], "FF": p["FF"],
                           "parts_fit": round(mult(wa, ww) + adder(w), 1)})
    for p in points:
        if p["kind"] == "mac_tmr_k":
            # the former structure (product voted on its own, then a split add whose carry
            # and voter were shared): measured for the record, no longer built or modelled
            wa, ww, w, k = (p["params"][x] for x in ("wa", "ww", "w", "k"))
            base = macs.get((wa, ww, w))
            if not base:
                continue
            out["mac_tmr_k"].append({
                "wa": wa, "ww": ww, "w": w, "k": k, "LUT": p["LUT"], "FF": p["FF"],
                "base_mac_LUT": base["LUT"], "measured_extra": p["LUT"] - base["LUT"],
                "note": "former structure, not built any more"})
        elif p["kind"] == "mac_full_tmr":
            wa, ww, w = (p["params"][x] for x in ("wa", "ww", "w"))
            base = macs.get((wa, ww, w))
            if not base:
                continue
            out["mac_full_tmr"].append({
                "wa": wa, "ww": ww, "w": w, "LUT": p["LUT"], "FF": p["FF"],
                "three_macs_plus_voters": 3 * base["LUT"] + w,
                "ratio_to_single": round(p["LUT"] / base["LUT"], 3)})
        elif p["kind"] == "dot_const":
            wa, w, consts = p["params"]["wa"], p["params"]["w"], p["params"]["consts"]
            terms = [csd_digits(x) for x in consts if x]
            cm = sum(cst["a"] * (t - 1) * wa + cst["b"] * (t - 1) for t in terms)
            model = cm + (len(terms) - 1) * adder(w)
            out["dot_const"].append({"wa": wa, "w": w, "consts": consts, "LUT": p["LUT"],
                                     "parts_fit": round(model, 1),
                                     "ratio_fit_over_measured": round(model / max(1, p["LUT"]), 3)})
    out["neuron"] = neuron_checks(points, models)
    return out


def neuron_checks(points: list[dict], models: dict) -> list[dict]:
    """Whole-neuron twins against the estimator's figure for the same structure
    (``fpga_ft.measure.resources.structure_lut_yosys`` with this table's unit costs)."""
    from fpga_ft.measure import resources
    from fpga_ft.measure.resources.costs import _costs_from_models

    costs = _costs_from_models(models)
    rows = []
    for p in points:
        if p["kind"] not in ("neuron", "twin_neuron"):
            continue
        spec = p["params"]
        ns = structure_of(spec)
        model = resources.structure_lut_yosys(ns, spec["wa"], spec.get("ww", 6), costs,
                                              input_signed=spec["in_signed"],
                                              product_shift=spec["lshift"] - spec["rshift"])
        rows.append({"twin": "fpga_ft.measure.twin" if p["kind"] == "twin_neuron" else "calibrate_yosys.v_neuron",
                     "layer": spec["layer"], "neuron": spec["neuron"], "scheme": spec["scheme"], "k": spec["k"],
                     "w": spec["w"], "wa": spec["wa"], "products": ns.n_products, "adds": ns.n_sums,
                     "LUT": p["LUT"], "INV": p.get("INV", 0), "CARRY4": p["CARRY4"],
                     "model_LUT": round(model, 1), "ratio_model_over_measured": round(model / max(1, p["LUT"]), 3)})
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(OUT_JSON), help="calibration JSON to write")
    ap.add_argument("--jobs", type=int, default=2, help="parallel Yosys runs (default 2)")
    ap.add_argument("--no-cache", action="store_true", help="ignore cached results")
    ap.add_argument("--quick", action="store_true", help="reduced grid (smoke test)")
    ap.add_argument("--yosys", default=shutil.which("yosys") or "yosys", help="yosys binary")
    args = ap.parse_args(argv)
    if not shutil.which(args.yosys) and not Path(args.yosys).is_file():
        print("error: yosys not found (Debian: apt-get install -y yosys)", file=sys.stderr)
        return 2
    version = yosys_version(args.yosys)
    units = build_grid(args.quick)
    print(f"{version}: {len(units)} units, {args.jobs} at a time", file=sys.stderr)
    t0 = time.monotonic()
    points = measure(units, args.yosys, version, args.jobs, not args.no_cache)
    models = fit_all(points)
    checks = composed_checks(points, models)
    data = {
        "schema": 1,
        "description": "Yosys-measured unit costs (Xilinx 7-series cells) and fitted cost models "
                       "for fpga_ft.measure.resources; LUT = LUT1..LUT6 cells.",
        "generated": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "yosys_version": version,
        "yosys_command_nodsp": f'yosys -q -p "{_script(False)}"',
        "yosys_command_dsp": f'yosys -q -p "{_script(True)}"',
        "family": FAMILY,
        "grid": "quick" if args.quick else "full",
        "models": models,
        "composed_checks": checks,
        "points": points,
        "wall_seconds": round(time.monotonic() - t0, 1),
        "synth_seconds_sum": round(sum(p["synth_seconds"] for p in points), 1),
        "jobs": args.jobs,
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(data, indent=1) + "\n")
    m = models
    print(f"wrote {out} ({len(points)} points, {data['wall_seconds']} s this run; Yosys time "
          f"{data['synth_seconds_sum']} s over {args.jobs} jobs when nothing is cached)")
    print(f"  mult_generic  {m['mult_generic_lut']['form']}: {m['mult_generic_lut']['coef']} "
          f"(rms {m['mult_generic_lut']['rms_residual_lut']} LUT)")
    print(f"  mult_const    {m['mult_const_lut']['form']}: {m['mult_const_lut']['coef']} "
          f"(rms {m['mult_const_lut']['rms_residual_lut']} LUT)")
    print(f"  adder         {m['adder_lut']['coef']} (rms {m['adder_lut']['rms_residual_lut']})")
    print(f"  adder_msbs    {m['adder_msbs_lut']['coef']} (rms {m['adder_msbs_lut']['rms_residual_lut']})")
    print(f"  slice+cin     {m['adder_slice_cin_lut']['coef']} (rms {m['adder_slice_cin_lut']['rms_residual_lut']})")
    print(f"  mult cone     {m['mult_msbs_fraction']['coef']} (rms {m['mult_msbs_fraction']['rms_residual_lut']})")
    print(f"  voter         {m['voter_lut']['coef']}")
    for row in checks["mac_full_tmr"]:
        print(f"  full TMR MAC {row['wa']}x{row['ww']}/{row['w']}: {row['LUT']} LUT = "
              f"{row['ratio_to_single']} x single ({row['three_macs_plus_voters']} = 3x+W)")
    if "lane_lut" in m:
        print(f"  lane          {m['lane_lut']['coef']} (rms {m['lane_lut']['rms_residual_lut']})")
    if "low_adder_cout_lut" in m:
        print(f"  low adder     {m['low_adder_cout_lut']['coef']} (rms {m['low_adder_cout_lut']['rms_residual_lut']})")
    for row in m.get("mult_const_word_check", []):
        print(f"  product replica {row['wa']}-bit x {row['codes']} signed codes: model/measured "
              f"{row['ratio_model_over_measured']}")
    for row in checks["neuron"]:
        print(f"  {row['twin']:24s} {row['layer']}[{row['neuron']}] {row['scheme']} k={row['k']}: {row['LUT']} LUT "
              f"measured, {row['model_LUT']} model ({row['ratio_model_over_measured']})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
