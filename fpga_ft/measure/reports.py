"""Read real Vivado HLS / Vitis HLS and Vivado reports (resource figures from the tools).

Nobody needs Xilinx tools to *read* these files: users who ran ``fpga-ft build DIR --synth``
(or hls4ml's ``build(synth=True, vsynth=True)``) where Vitis/Vivado is installed hand the
project directory over, and this module extracts the figures.

Files read
----------
* ``csynth.xml`` / ``<top>_csynth.xml`` (root ``<profile>``), written by Vivado HLS and
  Vitis HLS C synthesis under ``<prj>_prj/<solution>/syn/report/``:
  :func:`parse_csynth_xml`. These are *estimates* made before RTL synthesis.
* Vivado ``report_utilization`` text (hls4ml writes ``vivado_synth.rpt``; Vivado runs write
  ``*_utilization_synth.rpt`` and ``*_utilization_placed.rpt``):
  :func:`parse_vivado_utilization`. These are the real post-synthesis / post-implementation
  counts.
* :func:`find_reports` and :func:`read_project_report` locate and combine both for a project
  directory.

Units
-----
``LUT`` = 6-input LUTs (Vivado "Slice LUTs" / "CLB LUTs"), ``FF`` = flip-flops (registers),
``DSP`` = DSP slices (DSP48E1/DSP48E2), ``BRAM_18K`` = 18Kb block-RAM halves, ``URAM`` = 288Kb
UltraRAM blocks; latencies and intervals in clock cycles; clock periods in ns.

BRAM pitfall: Vivado counts "Block RAM Tile" in 36Kb tiles (a RAMB18 counts as 0.5 tile),
HLS counts ``BRAM_18K``. Here Vivado figures are converted to 18Kb units
(``2 x RAMB36 + RAMB18``, which equals ``2 x Block RAM Tile``) so they compare directly with
the HLS estimate; the raw tile count is kept as ``bram_tiles``.

Security: XML is parsed only with :mod:`defusedxml` (DTDs, entities and external references
refused); every bad input raises :class:`~fpga_ft.core.errors.FpgaFtError` with a one-line
message naming the file.
"""

from __future__ import annotations

import os
import re
import stat
import xml.etree.ElementTree as _std_et
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import defusedxml
import defusedxml.ElementTree as safe_et

from fpga_ft.core.errors import FpgaFtError

#: Resource kinds, in display order (same keys and order as ``fpga_ft.core.boards.RESOURCE_KEYS``).
RESOURCE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")

#: Reports larger than this (bytes) are refused: real csynth.xml files are a few MB at most.
MAX_REPORT_BYTES = 256 * 1024 * 1024

#: find_reports: how deep below the project directory to look, and how many directory
#: entries to visit at most (HLS projects hold many thousands of generated files).
MAX_SEARCH_DEPTH = 10
MAX_SEARCH_ENTRIES = 200_000

#: Directories never descended into by find_reports.
_SKIP_DIRS = {"__pycache__", "node_modules", "ap_types", "nnet_utils", "tb_data"}

NO_REPORT_HINT = "run `fpga-ft build DIR --synth` where Vitis/Vivado is installed"


# ----------------------------------------------------------------------------------------
# Data classes
# ----------------------------------------------------------------------------------------


class _Counts:
    """``resources``: the five counts ``{"LUT", "FF", "DSP", "BRAM_18K", "URAM"}`` of a
    report record (BRAM in 18 Kb units; a csynth report: of its top module)."""

    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int

    @property
    def resources(self) -> dict[str, int]:
        return {"LUT": self.lut, "FF": self.ff, "DSP": self.dsp,
                "BRAM_18K": self.bram_18k, "URAM": self.uram}


@dataclass
class ModuleReport(_Counts):
    """Figures of one HLS module (``ModuleInformation/Module`` in a csynth.xml).

    Resources in LUTs, flip-flops, DSP slices, 18Kb BRAMs and URAM blocks; latencies and
    interval in clock cycles (``None`` where the tool wrote ``undef``); clock in ns.
    """

    name: str
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int
    latency_best_cycles: int | None
    latency_worst_cycles: int | None
    interval_cycles: int | None
    estimated_clock_ns: float | None

    def to_dict(self) -> dict:
        return {
            "name": self.name,
            **self.resources,
            "latency_best_cycles": self.latency_best_cycles,
            "latency_worst_cycles": self.latency_worst_cycles,
            "interval_cycles": self.interval_cycles,
            "estimated_clock_ns": self.estimated_clock_ns,
        }


@dataclass
class InstanceReport:
    """One RTL instance in the design hierarchy (``RTLDesignHierarchy``).

    ``path`` is the slash-separated instance path below the top module; ``module`` names
    the :class:`ModuleReport` holding its figures; ``multipliers`` counts the ``mul_*``
    operator instances bound directly in it (0 when the report lists no bind instances).
    Useful to check that TMR replicas survived HLS: three replica instances, each with its
    own multipliers.
    """

    path: str
    instance: str
    module: str
    depth: int
    multipliers: int = 0
    figures: ModuleReport | None = None

    def to_dict(self) -> dict:
        """Instance fields plus its module's LUT/FF/DSP/BRAM_18K/URAM and latency (cycles),
        ``None`` where the report has no figures for that module."""
        fig = self.figures
        return {"path": self.path, "instance": self.instance, "module": self.module,
                "depth": self.depth, "multipliers": self.multipliers,
                **{k: (fig.resources[k] if fig else None) for k in RESOURCE_KEYS},
                "latency_best_cycles": fig.latency_best_cycles if fig else None,
                "latency_worst_cycles": fig.latency_worst_cycles if fig else None}


@dataclass
class CsynthReport(_Counts):
    """Top-level figures of one Vivado HLS / Vitis HLS ``csynth.xml``.

    * ``lut``, ``ff``, ``dsp``, ``bram_18k``, ``uram``: estimated LUTs, flip-flops, DSP
      slices, 18Kb block RAMs and 288Kb UltraRAMs of the top module (``dsp`` comes from tag
      ``DSP48E`` up to Vivado HLS 2020.1 and ``DSP`` from Vitis HLS 2020.2; ``dsp_tag`` says
      which). ``available`` holds the device totals the report lists, same keys.
    * latencies and intervals in clock cycles; ``None`` where the report says ``undef``
      (data-dependent loops).
    * ``target_clock_ns``, ``clock_uncertainty_ns``, ``estimated_clock_ns`` in ns.
    * ``modules`` / ``instances``: per-module figures and instance tree where the file has
      ``ModuleInformation`` / ``RTLDesignHierarchy`` (Vitis ``csynth.xml``), else empty.
    """

    file: str
    tool: str
    tool_version: str | None
    part: str | None
    product_family: str | None
    top: str | None
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int
    dsp_tag: str
    latency_best_cycles: int | None
    latency_average_cycles: int | None
    latency_worst_cycles: int | None
    interval_min_cycles: int | None
    interval_max_cycles: int | None
    target_clock_ns: float | None
    clock_uncertainty_ns: float | None
    estimated_clock_ns: float | None
    available: dict[str, int] = field(default_factory=dict)
    modules: list[ModuleReport] = field(default_factory=list)
    instances: list[InstanceReport] = field(default_factory=list)

    def summary(self) -> dict:
        """Top-level figures only (no modules/instances)."""
        return {
            "file": self.file,
            "tool": self.tool,
            "tool_version": self.tool_version,
            "part": self.part,
            "product_family": self.product_family,
            "top": self.top,
            **self.resources,
            "dsp_tag": self.dsp_tag,
            "available": dict(self.available),
            "latency_best_cycles": self.latency_best_cycles,
            "latency_average_cycles": self.latency_average_cycles,
            "latency_worst_cycles": self.latency_worst_cycles,
            "interval_min_cycles": self.interval_min_cycles,
            "interval_max_cycles": self.interval_max_cycles,
            "target_clock_ns": self.target_clock_ns,
            "clock_uncertainty_ns": self.clock_uncertainty_ns,
            "estimated_clock_ns": self.estimated_clock_ns,
        }

    def to_dict(self) -> dict:
        return {**self.summary(),
                "modules": [m.to_dict() for m in self.modules],
                "instances": [i.to_dict() for i in self.instances]}


@dataclass
class UtilizationReport(_Counts):
    """Figures of one Vivado ``report_utilization`` text file.

    * ``lut`` ("Slice LUTs" on 7-series, "CLB LUTs" on UltraScale/UltraScale+), ``ff``
      ("Slice/CLB Registers"), ``dsp`` ("DSPs", or "DSP48E1"/"DSP48E2" rows), ``uram``
      (0 if absent): counts of used sites.
    * ``bram_18k``: block RAM in 18Kb units = ``2 x RAMB36 + RAMB18`` (= 2 x "Block RAM
      Tile"); ``bram_tiles`` the raw 36Kb tile count (may be fractional, e.g. 0.5);
      ``ramb36`` and ``ramb18`` the sub-rows (``None`` if not listed).
    * ``carry8`` (UltraScale CARRY8 sites) and ``carry4`` (7-series CARRY4 primitives),
      ``None`` where the report has no such row.
    * ``available`` / ``util_percent``: the "Available" and "Util%" columns for the same
      keys (``None`` if blank).
    * ``stage``: ``"synthesis"`` (Design State "Synthesized" or "Optimized": not placed) or
      ``"implementation"`` (placed/routed); ``design_state`` verbatim; ``None`` if the
      header has no Design State line.
    """

    file: str
    tool_version: str | None
    device: str | None
    design: str | None
    design_state: str | None
    stage: str | None
    family: str
    lut: int
    ff: int
    dsp: int
    bram_18k: int
    uram: int
    bram_tiles: float | None
    ramb36: int | None
    ramb18: int | None
    carry8: int | None
    carry4: int | None
    available: dict[str, float | None] = field(default_factory=dict)
    util_percent: dict[str, float | None] = field(default_factory=dict)
    primitives: dict[str, int] = field(default_factory=dict)

    def summary(self) -> dict:
        """Figures without the primitive list."""
        return {
            "file": self.file,
            "tool": "Vivado",
            "tool_version": self.tool_version,
            "device": self.device,
            "design": self.design,
            "design_state": self.design_state,
            "stage": self.stage,
            "family": self.family,
            **self.resources,
            "bram_tiles": self.bram_tiles,
            "ramb36": self.ramb36,
            "ramb18": self.ramb18,
            "carry8": self.carry8,
            "carry4": self.carry4,
            "available": dict(self.available),
            "util_percent": dict(self.util_percent),
        }

    def to_dict(self) -> dict:
        return {**self.summary(), "primitives": dict(self.primitives)}


@dataclass
class ReportFiles:
    """What :func:`find_reports` found below a project directory.

    ``csynth``: top-level ``<top>_csynth.xml`` (or ``csynth.xml``) per HLS report directory,
    newest first; ``hierarchy``: the matching ``csynth.xml`` files (they carry the module and
    instance lists in Vitis); ``vivado``: Vivado utilization reports, newest first;
    ``truncated``: the bounded search stopped early.
    """

    project_dir: str
    csynth: list[Path] = field(default_factory=list)
    hierarchy: list[Path] = field(default_factory=list)
    vivado: list[Path] = field(default_factory=list)
    truncated: bool = False

    def __bool__(self) -> bool:
        return bool(self.csynth or self.vivado)

    def to_dict(self) -> dict:
        return {"project_dir": self.project_dir,
                "csynth": [str(p) for p in self.csynth],
                "hierarchy": [str(p) for p in self.hierarchy],
                "vivado": [str(p) for p in self.vivado],
                "truncated": self.truncated}


# ----------------------------------------------------------------------------------------
# Helpers
# ----------------------------------------------------------------------------------------


def _read_bytes(path: Path, what: str) -> bytes:
    try:
        info = path.stat()
        if stat.S_ISDIR(info.st_mode):
            raise FpgaFtError(f"cannot read {what} {path}: it is a directory")
        if not stat.S_ISREG(info.st_mode):
            raise FpgaFtError(f"cannot read {what} {path}: not a regular file")
        if info.st_size > MAX_REPORT_BYTES:
            raise FpgaFtError(f"{what} {path} is {info.st_size} bytes, over the {MAX_REPORT_BYTES} byte limit")
        with open(path, "rb") as handle:
            data = handle.read(MAX_REPORT_BYTES + 1)
        if len(data) > MAX_REPORT_BYTES:
            raise FpgaFtError(f"{what} {path} is over the {MAX_REPORT_BYTES} byte limit")
        return data
    except FpgaFtError:
        raise
    except IsADirectoryError as exc:
        raise FpgaFtError(f"cannot read {what} {path}: it is a directory") from exc
    except OSError as exc:
        raise FpgaFtError(f"cannot read {what} {path}: {exc.strerror or exc}") from exc


def _number_text(text: str | None) -> str | None:
    """A report's number text, stripped; ``None`` when absent or ``undef``/empty/``-``/``n/a``."""
    if text is None:
        return None
    value = text.strip()
    return None if value.lower() in ("", "undef", "-", "n/a") else value


def _int_or_none(text: str | None, path: Path, tag: str) -> int | None:
    """Cycle counts: integer, ``None`` for ``undef``/empty/``-``."""
    value = _number_text(text)
    if value is None:
        return None
    try:
        return int(value)
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            raise FpgaFtError(f"csynth report {path}: <{tag}> is not a number ({value[:40]!r})") from None
        if not number.is_integer():
            raise FpgaFtError(f"csynth report {path}: <{tag}> is not a whole number ({value[:40]!r})") from None
        return int(number)


def _float_or_none(text: str | None, path: Path, tag: str) -> float | None:
    value = _number_text(text)
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        raise FpgaFtError(f"csynth report {path}: <{tag}> is not a number ({value[:40]!r})") from None


def _resource_count(text: str | None, path: Path, tag: str) -> int:
    value = _int_or_none(text, path, tag)
    if value is None:
        return 0
    if value < 0:
        raise FpgaFtError(f"csynth report {path}: <{tag}> is negative ({value})")
    return value


def _read_resources(node, path: Path, where: str, required: bool) -> tuple[dict[str, int], str]:
    """LUT/FF/DSP/BRAM_18K/URAM of a ``Resources`` element; DSP48E or DSP -> ``DSP``."""
    if node is None:
        if required:
            raise FpgaFtError(f"csynth report {path}: no <{where}> section (not a C synthesis report?)")
        return {key: 0 for key in RESOURCE_KEYS}, "DSP"
    counts: dict[str, int] = {}
    dsp_tag = "DSP"
    for key in ("LUT", "FF", "BRAM_18K", "URAM"):
        child = node.find(key)
        if child is None and key in ("LUT", "FF") and required:
            raise FpgaFtError(f"csynth report {path}: <{where}> has no <{key}>")
        counts[key] = _resource_count(child.text if child is not None else None, path, key)
    dsp = node.find("DSP")
    if dsp is None:
        for tag in ("DSP48E", "DSP58E", "DSP48"):
            dsp = node.find(tag)
            if dsp is not None:
                dsp_tag = tag
                break
    counts["DSP"] = _resource_count(dsp.text if dsp is not None else None, path, dsp_tag)
    return {key: counts[key] for key in RESOURCE_KEYS}, dsp_tag


def _hls_tool_name(version: str | None) -> str:
    """"Vivado HLS" up to 2020.1, "Vitis HLS" from 2020.2 (same report format)."""
    match = re.match(r"\s*(\d{4})\.(\d+)", version or "")
    if not match:
        return "Vivado/Vitis HLS"
    year, minor = int(match.group(1)), int(match.group(2))
    return "Vitis HLS" if (year, minor) >= (2020, 2) else "Vivado HLS"


def _to_ns(value: float | None, unit: str | None) -> float | None:
    if value is None:
        return None
    factor = {"ps": 1e-3, "ns": 1.0, "us": 1e3, "ms": 1e6}.get((unit or "ns").strip().lower(), 1.0)
    return value * factor


def _parse_xml(path: Path):
    """Parse with defusedxml: DTDs, entity declarations and external references refused."""
    data = _read_bytes(path, "csynth report")
    if not data.strip():
        raise FpgaFtError(f"csynth report {path} is empty")
    try:
        return safe_et.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except defusedxml.DTDForbidden as exc:
        raise FpgaFtError(f"csynth report {path}: refused, the XML declares a DTD "
                          "(csynth.xml never does; possible XXE or entity-expansion attack)") from exc
    except defusedxml.EntitiesForbidden as exc:
        raise FpgaFtError(f"csynth report {path}: refused, the XML declares entities "
                          "(possible entity-expansion attack)") from exc
    except defusedxml.ExternalReferenceForbidden as exc:
        raise FpgaFtError(f"csynth report {path}: refused, the XML references an external resource") from exc
    except defusedxml.DefusedXmlException as exc:
        raise FpgaFtError(f"csynth report {path}: refused unsafe XML ({type(exc).__name__})") from exc
    except _std_et.ParseError as exc:
        raise FpgaFtError(f"csynth report {path}: malformed XML ({exc})") from exc
    except (ValueError, RecursionError, MemoryError) as exc:
        raise FpgaFtError(f"csynth report {path}: cannot parse XML ({type(exc).__name__})") from exc


# ----------------------------------------------------------------------------------------
# csynth.xml
# ----------------------------------------------------------------------------------------


def parse_csynth_xml(path) -> CsynthReport:
    """Parse a Vivado HLS / Vitis HLS C-synthesis report (``csynth.xml``, root ``<profile>``).

    Returns the top module's estimated LUTs, flip-flops, DSP slices (``DSP48E`` tag up to
    Vivado HLS 2020.1, ``DSP`` from Vitis HLS 2020.2, both reported as ``dsp``), 18Kb BRAMs
    and URAMs (0 if absent); best/average/worst latency and min/max interval in clock cycles
    (``None`` for ``undef``); target clock, clock uncertainty and estimated clock period in
    ns; part, product family, top name and tool version. Per-module figures and the instance
    tree are read from ``ModuleInformation`` / ``RTLDesignHierarchy`` where present.

    Raises :class:`FpgaFtError` (one line, naming the file) for unreadable, malformed or
    hostile XML (DTDs, entities, external references) and for XML that is not a csynth
    report.
    """
    path = Path(path)
    root = _parse_xml(path)
    if root.tag != "profile":
        raise FpgaFtError(f"csynth report {path}: root element is <{root.tag[:60]}>, expected <profile> "
                          "(not a Vivado/Vitis HLS csynth.xml)")

    version = root.findtext("ReportVersion/Version")
    version = version.strip() if version else None
    user = root.find("UserAssignments")
    perf = root.find("PerformanceEstimates")
    area = root.find("AreaEstimates")
    if area is None:
        raise FpgaFtError(f"csynth report {path}: no <AreaEstimates> section (not a C synthesis report?)")

    resources, dsp_tag = _read_resources(area.find("Resources"), path, "AreaEstimates/Resources", True)
    available_node = area.find("AvailableResources")
    available = (_read_resources(available_node, path, "AreaEstimates/AvailableResources", False)[0]
                 if available_node is not None else {})

    def text(node, tag):
        if node is None:
            return None
        value = node.findtext(tag)
        return value.strip() if value is not None and value.strip() else None

    unit = text(user, "unit")
    target = _to_ns(_float_or_none(text(user, "TargetClockPeriod"), path, "TargetClockPeriod"), unit)
    uncertainty = _to_ns(_float_or_none(text(user, "ClockUncertainty"), path, "ClockUncertainty"), unit)
    timing = perf.find("SummaryOfTimingAnalysis") if perf is not None else None
    estimated = _to_ns(_float_or_none(text(timing, "EstimatedClockPeriod"), path, "EstimatedClockPeriod"),
                       text(timing, "unit") or unit)
    latency = perf.find("SummaryOfOverallLatency") if perf is not None else None

    def cycles(tag):
        return _int_or_none(text(latency, tag), path, tag)

    interval_min = cycles("Interval-min")
    interval_max = cycles("Interval-max")

    modules = [_parse_module(node, path) for node in root.findall("ModuleInformation/Module")]
    instances: list[InstanceReport] = []
    top_module = root.find("RTLDesignHierarchy/TopModule")
    if top_module is not None:
        _walk_instances(top_module.find("InstancesList"), "", 1, instances)
    by_name = {m.name: m for m in modules}
    for inst in instances:
        inst.figures = by_name.get(inst.module)

    return CsynthReport(
        file=str(path),
        tool=_hls_tool_name(version),
        tool_version=version,
        part=text(user, "Part"),
        product_family=text(user, "ProductFamily"),
        top=text(user, "TopModelName"),
        lut=resources["LUT"],
        ff=resources["FF"],
        dsp=resources["DSP"],
        bram_18k=resources["BRAM_18K"],
        uram=resources["URAM"],
        dsp_tag=dsp_tag,
        latency_best_cycles=cycles("Best-caseLatency"),
        latency_average_cycles=cycles("Average-caseLatency"),
        latency_worst_cycles=cycles("Worst-caseLatency"),
        interval_min_cycles=interval_min,
        interval_max_cycles=interval_max,
        target_clock_ns=target,
        clock_uncertainty_ns=uncertainty,
        estimated_clock_ns=estimated,
        available=available,
        modules=modules,
        instances=instances,
    )


def _parse_module(node, path: Path) -> ModuleReport:
    name = (node.findtext("Name") or "").strip() or "?"
    resources, _ = _read_resources(node.find("AreaEstimates/Resources"), path,
                                   f"Module {name} Resources", False)
    latency = node.find("PerformanceEstimates/SummaryOfOverallLatency")
    timing = node.find("PerformanceEstimates/SummaryOfTimingAnalysis")

    def cycles(tag):
        return _int_or_none(latency.findtext(tag) if latency is not None else None, path, tag)

    interval = cycles("Interval-min")
    if interval is None:
        interval = cycles("PipelineInitiationInterval")
    return ModuleReport(
        name=name,
        lut=resources["LUT"], ff=resources["FF"], dsp=resources["DSP"],
        bram_18k=resources["BRAM_18K"], uram=resources["URAM"],
        latency_best_cycles=cycles("Best-caseLatency"),
        latency_worst_cycles=cycles("Worst-caseLatency"),
        interval_cycles=interval,
        estimated_clock_ns=_float_or_none(timing.findtext("EstimatedClockPeriod") if timing is not None else None,
                                          path, "EstimatedClockPeriod"),
    )


def _walk_instances(instances_list, prefix: str, depth: int, out: list[InstanceReport]) -> None:
    """Depth-first walk of ``InstancesList/Instance`` (iterative-safe: depth bounded by XML)."""
    if instances_list is None or depth > 64:
        return
    for node in instances_list.findall("Instance"):
        name = (node.findtext("InstName") or "").strip() or "?"
        module = (node.findtext("ModuleName") or "").strip() or "?"
        binds = (node.findtext("BindInstances") or "").split()
        path = f"{prefix}/{name}" if prefix else name
        out.append(InstanceReport(path=path, instance=name, module=module, depth=depth,
                                  multipliers=sum(1 for b in binds if b.startswith("mul_"))))
        _walk_instances(node.find("InstancesList"), path, depth + 1, out)


# ----------------------------------------------------------------------------------------
# Vivado report_utilization
# ----------------------------------------------------------------------------------------

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


# ----------------------------------------------------------------------------------------
# Project directories
# ----------------------------------------------------------------------------------------


def _is_vivado_report_name(name: str) -> bool:
    lower = name.lower()
    if not lower.endswith(".rpt"):
        return False
    if lower == "vivado_synth.rpt":
        return True
    if "utilization" not in lower:
        return False
    # other reports whose names contain "utilization" but have another format
    return not any(word in lower for word in ("clock_utilization", "ram_utilization", "hier"))


def _walk(project_dir: Path):
    """Bounded walk: yields (directory, file names); sets ``truncated`` via the last item."""
    visited = 0
    stack: list[tuple[Path, int]] = [(project_dir, 0)]
    while stack:
        directory, depth = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except OSError:
            continue
        visited += len(entries)
        files = []
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if depth < MAX_SEARCH_DEPTH and not entry.name.startswith(".") \
                            and entry.name not in _SKIP_DIRS:
                        stack.append((Path(entry.path), depth + 1))
                elif entry.is_file():
                    files.append(entry.name)
            except OSError:
                continue
        yield directory, files
        if visited > MAX_SEARCH_ENTRIES:
            yield None, None
            return


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


def _top_csynth(directory: Path, files: list[str]) -> tuple[Path | None, Path | None]:
    """Pick the top-level report in one ``syn/report`` directory.

    Order: ``<TopModelName>_csynth.xml`` named by ``csynth.xml``; else ``<prj>_csynth.xml``
    for an hls4ml ``<prj>_prj`` project; else ``csynth.xml``; else the only ``*_csynth.xml``;
    else the ``*_csynth.xml`` with the most LUTs (the top contains its sub-modules).
    """
    names = set(files)
    candidates = sorted(n for n in files if n.endswith("_csynth.xml"))
    hierarchy = directory / "csynth.xml" if "csynth.xml" in names else None
    if hierarchy is not None:
        try:
            top = parse_csynth_xml(hierarchy).top
        except FpgaFtError:
            top = None
        if top and f"{top}_csynth.xml" in names:
            return directory / f"{top}_csynth.xml", hierarchy
        return hierarchy, hierarchy
    for parent in directory.parents:
        if parent.name.endswith("_prj"):
            wanted = f"{parent.name[:-4]}_csynth.xml"
            if wanted in names:
                return directory / wanted, None
            break
    if len(candidates) == 1:
        return directory / candidates[0], None
    best, best_lut = None, -1
    for name in candidates:
        try:
            lut = parse_csynth_xml(directory / name).lut
        except FpgaFtError:
            continue
        if lut > best_lut:
            best, best_lut = directory / name, lut
    return best, None


def find_reports(project_dir) -> ReportFiles:
    """Locate HLS and Vivado reports below ``project_dir`` (bounded recursive search).

    HLS: ``syn/report`` directories holding ``*_csynth.xml`` / ``csynth.xml`` (hls4ml layout
    ``<prj>_prj/solution1/syn/report/<prj>_csynth.xml``; other solution names and Vitis
    layouts are found as well); only if there is none, ``*_csynth.xml`` copied anywhere
    else. Vivado: ``vivado_synth.rpt`` and ``*utilization*.rpt`` anywhere (clock/RAM/
    hierarchical utilization reports excluded). Hidden directories (``.autopilot``,
    ``.Xil``, ``.git``) are skipped; the walk stops after ``MAX_SEARCH_DEPTH`` levels or
    ``MAX_SEARCH_ENTRIES`` entries (``truncated``). Results are sorted newest first.

    Raises :class:`FpgaFtError` if ``project_dir`` is not a directory.
    """
    root = Path(project_dir)
    if not root.is_dir():
        raise FpgaFtError(f"project directory {root} not found")
    found = ReportFiles(project_dir=str(root))
    csynth: list[Path] = []
    hierarchy: list[Path] = []
    vivado: list[Path] = []
    loose: list[tuple[Path, list[str]]] = []
    for directory, files in _walk(root):
        if directory is None:
            found.truncated = True
            break
        if directory.name == "report" and directory.parent.name == "syn" and \
                any(n == "csynth.xml" or n.endswith("_csynth.xml") for n in files):
            top, hier = _top_csynth(directory, files)
            if top is not None:
                csynth.append(top)
            if hier is not None:
                hierarchy.append(hier)
        elif any(n.endswith("csynth.xml") for n in files):
            loose.append((directory, files))
        vivado.extend(directory / n for n in files if _is_vivado_report_name(n))
    if not csynth:
        # no syn/report directory: accept copied reports (e.g. hls4ml's test_report/Vivado)
        for directory, files in loose:
            names = [n for n in files if n == "csynth.xml" or n.endswith("_csynth.xml")]
            if names:
                top, hier = _top_csynth(directory, names)
                if top is not None:
                    csynth.append(top)
                if hier is not None:
                    hierarchy.append(hier)
    found.csynth = sorted(csynth, key=lambda p: (-_mtime(p), str(p)))
    found.hierarchy = sorted(hierarchy, key=lambda p: (-_mtime(p), str(p)))
    found.vivado = sorted(vivado, key=lambda p: (-_mtime(p), str(p)))
    return found


_STAGE_RANK = {"implementation": 2, "synthesis": 1, None: 0}


def _state_rank(report: UtilizationReport) -> tuple[int, int]:
    state = (report.design_state or "").lower()
    fine = 3 if "route" in state else 2 if "place" in state else 1 if "optimi" in state else 0
    return _STAGE_RANK.get(report.stage, 0), fine


def read_project_report(project_dir) -> dict:
    """Resource figures of a built project, read from the tools' reports.

    Returns ``{"source": "report", "project_dir", "hls", "vivado", "vivado_reports",
    "modules", "instances", "files", "warnings"}``:

    * ``hls``: top-level HLS estimate of the newest top ``csynth.xml`` (see
      :meth:`CsynthReport.summary`: LUT, FF, DSP, BRAM_18K, URAM, latency/interval in
      cycles, clocks in ns) or ``None``;
    * ``vivado``: the most advanced Vivado utilization report (routed > placed > optimized >
      synthesized; newest on ties), BRAM in 18Kb units, or ``None``; ``vivado_reports``: all
      that parsed;
    * ``modules`` / ``instances``: per-module figures and instance tree from the Vitis
      hierarchy ``csynth.xml`` (or the top report), empty if the report has none;
    * ``warnings``: reports that were found but could not be parsed, other solutions.

    Raises :class:`FpgaFtError` when no report is found.
    """
    found = find_reports(project_dir)
    warnings: list[str] = []
    if found.truncated:
        warnings.append(f"search stopped after {MAX_SEARCH_ENTRIES} entries / depth {MAX_SEARCH_DEPTH}; "
                        "some reports may be missing")
    if not found:
        raise FpgaFtError(f"no HLS or Vivado report found under {project_dir}; {NO_REPORT_HINT}")

    hls = None
    modules: list[dict] = []
    instances: list[dict] = []
    if found.csynth:
        top = parse_csynth_xml(found.csynth[0])
        hls = top.summary()
        if len(found.csynth) > 1:
            warnings.append("several HLS solutions found; using the newest: " + str(found.csynth[0]))
        source = top
        report_dir = found.csynth[0].parent
        hier = next((h for h in found.hierarchy if h.parent == report_dir), None)
        if not top.modules and hier is not None and hier != found.csynth[0]:
            try:
                source = parse_csynth_xml(hier)
            except FpgaFtError as exc:
                warnings.append(str(exc))
        modules = [m.to_dict() for m in source.modules]
        instances = [i.to_dict() for i in source.instances]

    parsed: list[UtilizationReport] = []
    for rpt in found.vivado:
        try:
            parsed.append(parse_vivado_utilization(rpt))
        except FpgaFtError as exc:
            warnings.append(str(exc))
    vivado = None
    if parsed:
        # stable sort keeps newest-first order among equal ranks
        best = sorted(parsed, key=_state_rank, reverse=True)[0]
        vivado = best.summary()
    if hls is None and vivado is None:
        detail = f" ({warnings[-1]})" if warnings else ""
        raise FpgaFtError(f"no readable HLS or Vivado report found under {project_dir}; "
                          f"{NO_REPORT_HINT}{detail}")
    return {
        "source": "report",
        "project_dir": str(project_dir),
        "hls": hls,
        "vivado": vivado,
        "vivado_reports": [r.summary() for r in parsed],
        "modules": modules,
        "instances": instances,
        "files": found.to_dict(),
        "warnings": warnings,
    }


def _iter_resource_rows(report: dict) -> Iterable[tuple[str, dict[str, Any]]]:
    if report.get("hls"):
        yield "HLS estimate", report["hls"]
    chosen = report.get("vivado")
    others = [r for r in report.get("vivado_reports") or [] if chosen is None or r.get("file") != chosen.get("file")]
    for fig in ([chosen] if chosen else []) + others:
        stage = fig.get("stage") or "report"
        yield f"Vivado {stage}" + ("" if fig is chosen else " (other)"), fig


def format_report_table(report: dict) -> str:
    """A short text table of :func:`read_project_report`'s result (LUT, FF, DSP, BRAM_18K,
    URAM, worst latency in cycles, clock in ns)."""
    header = ["source", "tool", *RESOURCE_KEYS, "latency", "clock"]
    rows = []
    for label, fig in _iter_resource_rows(report):
        tool = f"{fig.get('tool', '')} {fig.get('tool_version') or ''}".strip()
        latency = fig.get("latency_worst_cycles")
        clock = fig.get("estimated_clock_ns")
        rows.append([label, tool, *(f"{fig[k]:,}" for k in RESOURCE_KEYS),
                     "-" if latency is None else f"{latency:,} cyc",
                     "-" if clock is None else f"{clock:g} ns"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    numeric = set(range(2, len(header)))

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    if report.get("hls"):
        hls = report["hls"]
        lines.append(f"HLS: {hls.get('file')} (part {hls.get('part')}, target {hls.get('target_clock_ns')} ns)")
    if report.get("vivado"):
        viv = report["vivado"]
        tiles = viv.get("bram_tiles")
        tiles_text = "-" if tiles is None else f"{tiles:g}"
        lines.append(f"Vivado: {viv.get('file')} (device {viv.get('device')}, "
                     f"state {viv.get('design_state')}; BRAM_18K = 2 x {tiles_text} Block RAM tiles)")
    for warning in report.get("warnings", []):
        lines.append(f"warning: {warning}")
    return "\n".join(lines)


__all__ = [
    "CsynthReport", "InstanceReport", "ModuleReport", "ReportFiles", "UtilizationReport",
    "RESOURCE_KEYS", "find_reports", "format_report_table", "parse_csynth_xml",
    "parse_vivado_utilization", "read_project_report",
]
