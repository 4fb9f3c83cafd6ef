"""Verilog text helpers of the twins (widths in bits): identifiers, ``width``-bit literals,
the bitwise 2-of-3 majority, the product word rescaled to ``accum_t`` and wrapped to ``W``
bits (constant and generic products), the kept BitTMR lane module (a k-bit adder with
carry-in, its voted operands majority-voted inside) and the count of replica modules per
stem.
"""

from __future__ import annotations

import re
from typing import Sequence

from fpga_ft.core.structure import REPLICAS
from fpga_ft.measure.twin.arithmetic import Arithmetic, SharedArithmetic


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
