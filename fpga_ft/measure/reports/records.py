"""The report records: what the parsers return (:class:`CsynthReport`, :class:`ModuleReport`,
:class:`InstanceReport`, :class:`UtilizationReport`), what :func:`~fpga_ft.measure.reports.find_reports`
finds (:class:`ReportFiles`) and what :func:`~fpga_ft.measure.reports.read_project_report`
combines (:class:`ProjectReport`, whose :attr:`~ProjectReport.figures` are a
:class:`~fpga_ft.core.resources.ResourceFigures`).

Units: ``LUT`` = 6-input LUTs, ``FF`` = flip-flops, ``DSP`` = DSP slices, ``BRAM_18K`` = 18Kb
block-RAM halves (Vivado's 36Kb tiles converted: ``2 x Block RAM Tile``), ``URAM`` = 288Kb
UltraRAM blocks; latencies and intervals in clock cycles; clock periods in ns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.resources import RESOURCE_KEYS, ResourceFigures


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

    def figures(self, source: str, latency_cycles: int | None = None) -> ResourceFigures:
        """The five counts as :class:`~fpga_ft.core.resources.ResourceFigures` (latency in cycles)."""
        return ResourceFigures.from_counts(self.resources, latency_cycles=latency_cycles, source=source)


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
    module: str
    depth: int
    multipliers: int = 0
    figures: ModuleReport | None = None

    @property
    def instance(self) -> str:
        """The instance's own name (the last component of ``path``)."""
        return self.path.rsplit("/", 1)[-1]

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
    ``truncated``: the bounded search stopped early. ``searched`` is False for one report
    file named by the user (nothing was searched: ``to_dict`` then has no ``project_dir``
    and ``truncated``).
    """

    project_dir: str
    csynth: list[Path] = field(default_factory=list)
    hierarchy: list[Path] = field(default_factory=list)
    vivado: list[Path] = field(default_factory=list)
    truncated: bool = False
    searched: bool = True

    def __bool__(self) -> bool:
        return bool(self.csynth or self.vivado)

    def to_dict(self) -> dict:
        lists = {"csynth": [str(p) for p in self.csynth],
                 "hierarchy": [str(p) for p in self.hierarchy],
                 "vivado": [str(p) for p in self.vivado]}
        if not self.searched:
            return lists
        return {"project_dir": self.project_dir, **lists, "truncated": self.truncated}


@dataclass
class ProjectReport:
    """The reports of one built project, combined (:func:`~fpga_ft.measure.reports.read_project_report`).

    * ``hls``: the top-level HLS estimate (newest top ``csynth.xml``) or ``None``;
    * ``vivado``: the most advanced Vivado utilization report (routed > placed > optimized >
      synthesized; newest on ties) or ``None``; ``vivado_reports``: all that parsed;
    * ``modules`` / ``instances``: per-module figures and instance tree from the Vitis
      hierarchy ``csynth.xml`` (or the top report), empty if the report has none;
    * ``files``: what was found; ``warnings``: reports found but not parsed, other solutions.

    :attr:`figures` are the design's counts; ``to_dict()`` is the JSON of ``fpga-ft report``.
    """

    project_dir: str
    files: ReportFiles
    hls: CsynthReport | None = None
    vivado: UtilizationReport | None = None
    vivado_reports: list[UtilizationReport] = field(default_factory=list)
    modules: list[ModuleReport] = field(default_factory=list)
    instances: list[InstanceReport] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def figures(self) -> ResourceFigures:
        """The counts of the most advanced report (Vivado, else the HLS estimate; BRAM in 18 Kb
        units) with the HLS worst-case latency in cycles (``None`` without an HLS report or
        when it says ``undef``); ``source`` ``"vivado synthesis"``, ``"vivado
        implementation"`` (``"vivado report"`` when the report states no design state) or
        ``"csynth"``."""
        latency = self.hls.latency_worst_cycles if self.hls is not None else None
        if self.vivado is not None:
            return self.vivado.figures(f"vivado {self.vivado.stage or 'report'}", latency)
        if self.hls is None:
            raise FpgaFtError(f"no HLS or Vivado report under {self.project_dir}: no resource figures")
        return self.hls.figures("csynth", latency)

    def to_dict(self) -> dict:
        return {
            "source": "report",
            "project_dir": self.project_dir,
            "hls": self.hls.summary() if self.hls is not None else None,
            "vivado": self.vivado.summary() if self.vivado is not None else None,
            "vivado_reports": [r.summary() for r in self.vivado_reports],
            "modules": [m.to_dict() for m in self.modules],
            "instances": [i.to_dict() for i in self.instances],
            "files": self.files.to_dict(),
            "warnings": list(self.warnings),
        }
