"""Report files of a project directory: :func:`find_reports` (a bounded walk:
:data:`MAX_SEARCH_DEPTH` levels, :data:`MAX_SEARCH_ENTRIES` entries), :func:`read_project_report`
(the HLS estimate and the Vivado counts combined), :func:`read_report_file` (one named report)
and :func:`format_report_table`.

Units as in :mod:`fpga_ft.measure.reports.records` (resource counts, BRAM_18K in 18Kb units,
latencies in clock cycles, clock periods in ns).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.measure.reports.csynth import parse_csynth_xml
from fpga_ft.measure.reports.records import (RESOURCE_KEYS, CsynthReport, ProjectReport, ReportFiles,
                                             UtilizationReport)
from fpga_ft.measure.reports.vivado import parse_vivado_utilization

#: find_reports: how deep below the project directory to look, and how many directory
#: entries to visit at most (HLS projects hold many thousands of generated files).
MAX_SEARCH_DEPTH = 10
MAX_SEARCH_ENTRIES = 200_000

#: Directories never descended into by find_reports.
_SKIP_DIRS = {"__pycache__", "node_modules", "ap_types", "nnet_utils", "tb_data"}

NO_REPORT_HINT = "run `fpga-ft build DIR --synth` where Vitis/Vivado is installed"


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


def read_project_report(project_dir) -> ProjectReport:
    """Resource figures of a built project, read from the tools' reports.

    Returns a :class:`ProjectReport` (``to_dict()``: ``{"source": "report", "project_dir",
    "hls", "vivado", "vivado_reports", "modules", "instances", "files", "warnings"}``):

    * ``hls``: top-level HLS estimate of the newest top ``csynth.xml`` (a :class:`CsynthReport`:
      LUT, FF, DSP, BRAM_18K, URAM, latency/interval in cycles, clocks in ns) or ``None``;
    * ``vivado``: the most advanced Vivado utilization report (routed > placed > optimized >
      synthesized; newest on ties), BRAM in 18Kb units, or ``None``; ``vivado_reports``: all
      that parsed;
    * ``modules`` / ``instances``: per-module figures and instance tree from the Vitis
      hierarchy ``csynth.xml`` (or the top report), empty if the report has none;
    * ``warnings``: reports that were found but could not be parsed, other solutions;
    * ``figures``: the design's counts and latency (:class:`~fpga_ft.core.resources.ResourceFigures`).

    Raises :class:`FpgaFtError` when no report is found.
    """
    found = find_reports(project_dir)
    report = ProjectReport(project_dir=str(project_dir), files=found)
    if found.truncated:
        report.warnings.append(f"search stopped after {MAX_SEARCH_ENTRIES} entries / depth {MAX_SEARCH_DEPTH}; "
                               "some reports may be missing")
    if not found:
        raise FpgaFtError(f"no HLS or Vivado report found under {project_dir}; {NO_REPORT_HINT}")

    if found.csynth:
        top = parse_csynth_xml(found.csynth[0])
        report.hls = top
        if len(found.csynth) > 1:
            report.warnings.append("several HLS solutions found; using the newest: " + str(found.csynth[0]))
        source = top
        report_dir = found.csynth[0].parent
        hier = next((h for h in found.hierarchy if h.parent == report_dir), None)
        if not top.modules and hier is not None and hier != found.csynth[0]:
            try:
                source = parse_csynth_xml(hier)
            except FpgaFtError as exc:
                report.warnings.append(str(exc))
        report.modules, report.instances = list(source.modules), list(source.instances)

    for rpt in found.vivado:
        try:
            report.vivado_reports.append(parse_vivado_utilization(rpt))
        except FpgaFtError as exc:
            report.warnings.append(str(exc))
    if report.vivado_reports:
        # stable sort keeps newest-first order among equal ranks
        report.vivado = sorted(report.vivado_reports, key=_state_rank, reverse=True)[0]
    if report.hls is None and report.vivado is None:
        detail = f" ({report.warnings[-1]})" if report.warnings else ""
        raise FpgaFtError(f"no readable HLS or Vivado report found under {project_dir}; "
                          f"{NO_REPORT_HINT}{detail}")
    return report


def read_report_file(path) -> ProjectReport:
    """One named report file as a :class:`ProjectReport`: a ``csynth.xml`` (``*.xml``) or a
    Vivado utilization report (``*.rpt``, ``*.txt``); ``project_dir`` is its directory.

    Raises :class:`FpgaFtError` for another file name or a report that does not parse.
    """
    path = Path(path)
    name = path.name.lower()
    if name.endswith(".xml"):
        hls = parse_csynth_xml(path)
        return ProjectReport(project_dir=str(path.parent), hls=hls, modules=list(hls.modules),
                             instances=list(hls.instances),
                             files=ReportFiles(project_dir=str(path.parent), csynth=[path], searched=False))
    if name.endswith(".rpt") or name.endswith(".txt"):
        vivado = parse_vivado_utilization(path)
        return ProjectReport(project_dir=str(path.parent), vivado=vivado, vivado_reports=[vivado],
                             files=ReportFiles(project_dir=str(path.parent), vivado=[path], searched=False))
    raise FpgaFtError(f"{path}: not a report (expected a directory, a csynth.xml or a .rpt file)")


def _iter_resource_rows(report: ProjectReport) -> Iterable[tuple[str, CsynthReport | UtilizationReport]]:
    if report.hls is not None:
        yield "HLS estimate", report.hls
    chosen = report.vivado
    others = [r for r in report.vivado_reports if chosen is None or r.file != chosen.file]
    for fig in ([chosen] if chosen is not None else []) + others:
        stage = fig.stage or "report"
        yield f"Vivado {stage}" + ("" if fig is chosen else " (other)"), fig


def format_report_table(report: ProjectReport) -> str:
    """A short text table of :func:`read_project_report`'s result (LUT, FF, DSP, BRAM_18K,
    URAM, worst latency in cycles, clock in ns)."""
    header = ["source", "tool", *RESOURCE_KEYS, "latency", "clock"]
    rows = []
    for label, fig in _iter_resource_rows(report):
        tool = f"{fig.tool if isinstance(fig, CsynthReport) else 'Vivado'} {fig.tool_version or ''}".strip()
        latency = fig.latency_worst_cycles if isinstance(fig, CsynthReport) else None
        clock = fig.estimated_clock_ns if isinstance(fig, CsynthReport) else None
        rows.append([label, tool, *(f"{n:,}" for n in fig.resources.values()),
                     "-" if latency is None else f"{latency:,} cyc",
                     "-" if clock is None else f"{clock:g} ns"])
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    numeric = set(range(2, len(header)))

    def line(cells):
        return "  ".join(str(c).rjust(w) if i in numeric else str(c).ljust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    lines = [line(header), line(["-" * w for w in widths]), *map(line, rows)]
    if report.hls is not None:
        hls = report.hls
        lines.append(f"HLS: {hls.file} (part {hls.part}, target {hls.target_clock_ns} ns)")
    if report.vivado is not None:
        viv = report.vivado
        tiles_text = "-" if viv.bram_tiles is None else f"{viv.bram_tiles:g}"
        lines.append(f"Vivado: {viv.file} (device {viv.device}, "
                     f"state {viv.design_state}; BRAM_18K = 2 x {tiles_text} Block RAM tiles)")
    for warning in report.warnings:
        lines.append(f"warning: {warning}")
    return "\n".join(lines)
