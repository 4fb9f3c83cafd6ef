"""Read real Vivado HLS / Vitis HLS and Vivado reports (resource figures from the tools).

Nobody needs Xilinx tools to *read* these files: users who ran ``fpga-ft build DIR --synth``
(or hls4ml's ``build(synth=True, vsynth=True)``) where Vitis/Vivado is installed hand the
project directory over, and this package extracts the figures.

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
  directory (a :class:`ProjectReport`, whose ``figures`` are a
  :class:`~fpga_ft.core.resources.ResourceFigures`); :func:`read_report_file` reads one named file.

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

The package, one module per section:

* :mod:`.records`: the report records (:class:`CsynthReport`, :class:`UtilizationReport`,
  :class:`ProjectReport`, ...);
* :mod:`.reading`: the bounded, safe file and number readers shared by the parsers;
* :mod:`.csynth`: :func:`parse_csynth_xml`;
* :mod:`.vivado`: :func:`parse_vivado_utilization`;
* :mod:`.discovery`: :func:`find_reports`, :func:`read_project_report`, :func:`read_report_file`,
  :func:`format_report_table`.
"""

from __future__ import annotations

from fpga_ft.measure.reports.csynth import parse_csynth_xml
from fpga_ft.measure.reports.discovery import find_reports, format_report_table, read_project_report, read_report_file
from fpga_ft.measure.reports.records import (RESOURCE_KEYS, CsynthReport, InstanceReport, ModuleReport, ProjectReport,
                                             ReportFiles, UtilizationReport)
from fpga_ft.measure.reports.vivado import parse_vivado_utilization

__all__ = [
    "CsynthReport", "InstanceReport", "ModuleReport", "ProjectReport", "ReportFiles", "UtilizationReport",
    "RESOURCE_KEYS", "find_reports", "format_report_table", "parse_csynth_xml",
    "parse_vivado_utilization", "read_project_report", "read_report_file",
]
