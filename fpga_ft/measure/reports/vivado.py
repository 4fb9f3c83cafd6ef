"""Vivado ``report_utilization`` text (``vivado_synth.rpt``, ``*_utilization_synth.rpt``,
``*_utilization_placed.rpt``): :func:`parse_vivado_utilization`, the real post-synthesis /
post-implementation counts.

Units: LUT, FF, DSP counts; Block RAM converted to 18Kb units (``2 x RAMB36 + RAMB18`` =
``2 x Block RAM Tile``, the raw tile count kept as ``bram_tiles``); URAM in 288Kb blocks.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.measure.reports.reading import _read_bytes
from fpga_ft.measure.reports.records import UtilizationReport

_SECTION_RE = re.compile(r"^\s*(\d+(?:\.\d+)*)\.?\s+(\S.*?)\s*$")
_NUMBER_RE = re.compile(r"^<?\s*-?\d+(?:\.\d+)?$")


def _cells(line: str) -> list[str]:
    """Cells of a ``| a | b |`` table row (outer bars removed, text stripped)."""
    body = line.strip()
    if body.startswith("|"):
        body = body[1:]
    if body.endswith("|"):
        body = body[:-1]
    return [cell.strip() for cell in body.split("|")]


def _number(cell: str | None) -> float | None:
    if cell is None:
        return None
    value = cell.strip().replace(",", "")
    if not value or not _NUMBER_RE.match(value):
        return None
    return float(value.lstrip("<").strip())


@dataclass
class _Row:
    section: str
    used: float | None
    available: float | None
    util: float | None


def _parse_tables(lines: list[str]) -> tuple[dict[str, _Row], dict[str, int]]:
    """Site rows (first occurrence of each name in a table with a "Used" header) and the
    "Primitives" table (ref name -> used)."""
    sites: dict[str, _Row] = {}
    primitives: dict[str, int] = {}
    section = ""
    header: list[str] | None = None
    for index, raw in enumerate(lines):
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped.startswith(("|", "+")):
            header = None
            match = _SECTION_RE.match(line)
            nxt = lines[index + 1].strip() if index + 1 < len(lines) else ""
            if match and nxt and set(nxt) == {"-"}:
                section = match.group(2)
            continue
        if stripped.startswith("+"):
            continue
        cells = _cells(stripped)
        if header is None:
            header = cells
            continue
        if "Used" not in header or len(cells) != len(header):
            continue
        name = cells[0].rstrip("*").strip()
        if not name:
            continue
        used = _number(cells[header.index("Used")])
        if section.lower().startswith("primitives") and header[0] == "Ref Name":
            if used is not None and name not in primitives:
                primitives[name] = int(used)
            continue
        if header[0] == "Ref Name":  # black boxes, instantiated netlists
            continue
        if name in sites:
            continue
        available = _number(cells[header.index("Available")]) if "Available" in header else None
        util = _number(cells[header.index("Util%")]) if "Util%" in header else None
        sites[name] = _Row(section=section, used=used, available=available, util=util)
    return sites, primitives


def _header_field(lines: list[str], label: str) -> str | None:
    pattern = re.compile(r"^\|?\s*" + re.escape(label) + r"\s*:\s*(.*?)\s*$")
    for line in lines[:60]:
        match = pattern.match(line)
        if match:
            return match.group(1) or None
    return None


def _stage(design_state: str | None) -> str | None:
    if not design_state:
        return None
    state = design_state.lower()
    if any(word in state for word in ("place", "route", "physopt")):
        return "implementation"
    if "synth" in state or "optimi" in state:
        return "synthesis"
    return None


def parse_vivado_utilization(path) -> UtilizationReport:
    """Parse a Vivado ``report_utilization`` text file (post-synthesis or post-implementation).

    Understands 7-series ("Slice LUTs", "Slice Registers", "DSPs"/"DSP48E1", "Block RAM
    Tile") and UltraScale/UltraScale+ ("CLB LUTs", "CLB Registers", "CARRY8", "DSPs",
    "Block RAM Tile", "URAM") layouts. Columns are found by header name ("Used",
    "Available", "Util%"), so the "Prohibited" column of newer releases does not shift them.
    Counts: LUTs, flip-flops (registers), DSP slices, block RAM in 18Kb units
    (``2 x RAMB36 + RAMB18``; the 36Kb tile count is kept as ``bram_tiles``), URAM blocks.
    Tool version, device, design state and stage (synthesis/implementation) come from the
    header when present.

    Raises :class:`FpgaFtError` (one line, naming the file) if the file cannot be read, is
    binary, or has no recognisable LUT/register rows.
    """
    path = Path(path)
    data = _read_bytes(path, "Vivado report")
    if b"\x00" in data[:65536]:
        raise FpgaFtError(f"Vivado report {path} is a binary file, not report_utilization text")
    text = data.decode("utf-8", errors="replace")
    lines = text.splitlines()
    sites, primitives = _parse_tables(lines)

    def used(*names: str) -> tuple[str | None, float | None]:
        for name in names:
            row = sites.get(name)
            if row is not None and row.used is not None:
                return name, row.used
        return None, None

    lut_name, lut = used("CLB LUTs", "Slice LUTs")
    ff_name, ff = used("CLB Registers", "Slice Registers")
    if lut is None or ff is None:
        raise FpgaFtError(f"Vivado report {path}: no 'Slice LUTs'/'CLB LUTs' and register rows with a "
                          "'Used' column (not a report_utilization text?)")
    dsp_name, dsp = used("DSPs", "DSP48E1", "DSP48E2", "DSP58")
    _, tiles = used("Block RAM Tile")
    ramb36_name = next((n for n in sites if n.startswith("RAMB36") and "only" not in n), None)
    ramb18_name = next((n for n in sites if n.startswith("RAMB18") and "only" not in n), None)
    ramb36 = sites[ramb36_name].used if ramb36_name else None
    ramb18 = sites[ramb18_name].used if ramb18_name else None
    if ramb36 is not None and ramb18 is not None:
        bram_18k = 2 * ramb36 + ramb18
    elif tiles is not None:
        bram_18k = 2 * tiles
    else:
        bram_18k = 0.0
    _, uram = used("URAM")
    _, carry8 = used("CARRY8")

    keys = {"LUT": lut_name, "FF": ff_name, "DSP": dsp_name, "BRAM_TILE": "Block RAM Tile",
            "URAM": "URAM", "CARRY8": "CARRY8"}
    available = {k: sites[n].available for k, n in keys.items() if n in sites}
    util = {k: sites[n].util for k, n in keys.items() if n in sites}
    if "BRAM_TILE" in available and available["BRAM_TILE"] is not None:
        available["BRAM_18K"] = 2 * available["BRAM_TILE"]
        util["BRAM_18K"] = util.get("BRAM_TILE")
    available = {k: (int(v) if v is not None and float(v).is_integer() else v) for k, v in available.items()}

    version_line = _header_field(lines, "Tool Version")
    version = None
    if version_line:
        match = re.search(r"Vivado\s+v\.?\s*([0-9][0-9.]*)", version_line)
        version = match.group(1).rstrip(".") if match else version_line
    design_state = _header_field(lines, "Design State")
    family = ("UltraScale/UltraScale+" if lut_name == "CLB LUTs" else "7-series")

    return UtilizationReport(
        file=str(path),
        tool_version=version,
        device=_header_field(lines, "Device"),
        design=_header_field(lines, "Design"),
        design_state=design_state,
        stage=_stage(design_state),
        family=family,
        lut=int(lut),
        ff=int(ff),
        dsp=int(dsp) if dsp is not None else 0,
        bram_18k=int(round(bram_18k)),
        uram=int(uram) if uram is not None else 0,
        bram_tiles=tiles,
        ramb36=int(ramb36) if ramb36 is not None else None,
        ramb18=int(ramb18) if ramb18 is not None else None,
        carry8=int(carry8) if carry8 is not None else None,
        carry4=primitives.get("CARRY4"),
        available=available,
        util_percent=util,
        primitives=primitives,
    )
