"""Vivado HLS / Vitis HLS C-synthesis reports (``csynth.xml`` / ``<top>_csynth.xml``, root
``<profile>``): :func:`parse_csynth_xml`. These are *estimates* made before RTL synthesis.

Units: LUT, FF, DSP, BRAM_18K (18Kb halves), URAM counts; latencies and intervals in clock
cycles; clock periods in ns.
"""

from __future__ import annotations

from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.measure.reports.reading import (_float_or_none, _hls_tool_name, _int_or_none, _parse_xml, _read_resources,
                                             _to_ns)
from fpga_ft.measure.reports.records import CsynthReport, InstanceReport, ModuleReport


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
        out.append(InstanceReport(path=path, module=module, depth=depth,
                                  multipliers=sum(1 for b in binds if b.startswith("mul_"))))
        _walk_instances(node.find("InstancesList"), path, depth + 1, out)
