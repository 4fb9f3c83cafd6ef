"""The external tools of the twins: finding Yosys and Icarus Verilog, running them
(timeouts in seconds), and Yosys synthesis (:func:`synthesize`: ``synth_xilinx -family xc7
-nodsp -noiopad``; LUT = LUT1..LUT6 cells, FF = FD* flip-flops, times in seconds).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Sequence

from fpga_ft.core.errors import FpgaFtError

#: Yosys synthesis command of every cost figure (``{top}``, ``{flatten}`` filled in).
SYNTH = "synth_xilinx -top {top} -family xc7 -nodsp -noiopad{flatten}"


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


def _pack(row: Sequence[int], width: int) -> int:
    mask, bus = (1 << width) - 1, 0
    for i, v in enumerate(row):
        bus |= (int(v) & mask) << (i * width)
    return bus


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
