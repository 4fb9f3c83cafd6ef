"""Fault proof and fault simulation of a twin: :func:`prove_masked` (Yosys ``sat -prove`` on
a miter of the clean and the fault twin, one SAT instance per proof group, timeouts and
times in seconds) and :func:`simulate` (Icarus Verilog: outputs as W-bit patterns, per
fault site the vectors on which it changes the output).
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.structure import BitTMR
from fpga_ft.measure.twin.neuron import Twin
from fpga_ft.measure.twin.tools import _pack, _run, _run_icarus, _yosys_error

#: Default per-SAT-instance timeout of :func:`prove_masked` (seconds).
SAT_TIMEOUT_S = 300


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
