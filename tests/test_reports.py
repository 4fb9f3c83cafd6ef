"""Real Vivado HLS / Vitis HLS / Vivado reports (fpga_ft.measure.reports) and ``fpga-ft report``.

Every number asserted here was read off the fixture files themselves (see
tests/fixtures/reports/SOURCES.md for where each file comes from).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import sys
from pathlib import Path

import pytest

try:  # the package is not installed in the venv and pyproject sets no pytest pythonpath
    import fpga_ft  # noqa: F401
except ModuleNotFoundError:
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fpga_ft.cli import main
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.resources import ResourceFigures
from fpga_ft.measure.reports import discovery, reading
from fpga_ft.measure.reports import (
    find_reports,
    format_report_table,
    parse_csynth_xml,
    parse_vivado_utilization,
    read_project_report,
)

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "reports"
HOSTILE = FIXTURES / "hostile"

HLS4ML = FIXTURES / "fastmachinelearning-hls4ml/test/pytest/test_report/Vivado"
HLS4ML_CSYNTH = HLS4ML / "myproject_csynth.xml"
HLS4ML_VIVADO = HLS4ML / "vivado_synth.rpt"
SEAN_PRJ = FIXTURES / "seanlipps-ECE226_CoDesign/model_1/hls4ml_prj"
SEAN_REPORT_DIR = SEAN_PRJ / "myproject_prj/solution1/syn/report"
ZAKK = FIXTURES / "zakk-h-PartitionAcceleratorHLS"
SKKWAN = FIXTURES / "skkwan-phase2_bjets_hls/solution1/syn/report/csynth.xml"
DREAM = FIXTURES / ("SpAllen0726-HG-DREAM-Pulse-Detection-Project/HLS_models/myproject_prj/"
                    "solution1/syn/report/myproject_csynth.xml")


# ----------------------------------------------------------------------------------------
# Fixtures are exact copies
# ----------------------------------------------------------------------------------------


def _sources_rows():
    rows = []
    for line in (FIXTURES / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{40})` \| (\d+) \|", line)
        if match:
            rows.append((match.group(1), match.group(2), int(match.group(3))))
    return rows


def test_sources_lists_every_real_fixture():
    listed = {row[0] for row in _sources_rows()}
    on_disk = {p.relative_to(FIXTURES).as_posix() for p in FIXTURES.rglob("*")
               if p.is_file() and p.name != "SOURCES.md" and "hostile" not in p.parts}
    assert listed == on_disk
    assert len(listed) >= 6


@pytest.mark.parametrize("relpath, blob, size", _sources_rows(), ids=lambda v: str(v)[-40:])
def test_fixture_is_byte_exact_copy(relpath, blob, size):
    data = (FIXTURES / relpath).read_bytes()
    assert len(data) == size
    assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob


# ----------------------------------------------------------------------------------------
# csynth.xml
# ----------------------------------------------------------------------------------------

CSYNTH_EXPECTED = {
    # Vivado HLS 2020.1, DSP48E tag
    HLS4ML_CSYNTH: dict(
        tool="Vivado HLS", tool_version="2020.1", part="xc7z020-clg400-1", product_family="zynq",
        top="myproject", lut=2532, ff=7969, dsp=73, bram_18k=0, uram=0, dsp_tag="DSP48E",
        latency_best_cycles=10, latency_average_cycles=10, latency_worst_cycles=10,
        interval_min_cycles=8, interval_max_cycles=8,
        target_clock_ns=5.0, clock_uncertainty_ns=0.62, estimated_clock_ns=4.049,
        available={"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0}),
    # Vivado HLS 2018.2: all zeros
    SKKWAN: dict(
        tool="Vivado HLS", tool_version="2018.2", part="xcvu9p-flgc2104-2-i",
        product_family="virtexuplus", top="get_discriminant",
        lut=0, ff=0, dsp=0, bram_18k=0, uram=0, dsp_tag="DSP48E",
        latency_best_cycles=0, latency_average_cycles=0, latency_worst_cycles=0,
        interval_min_cycles=1, interval_max_cycles=1,
        target_clock_ns=3.12, clock_uncertainty_ns=0.39, estimated_clock_ns=0.0,
        available={"LUT": 1182240, "FF": 2364480, "DSP": 6840, "BRAM_18K": 4320, "URAM": 960}),
    # Vitis HLS 2020.2: DSP tag, undef latencies, hierarchy
    ZAKK / "solution1/syn/report/csynth.xml": dict(
        tool="Vitis HLS", tool_version="2020.2", part="xcvu11p-flga2577-1-e",
        product_family="virtexuplus", top="system_top",
        lut=55711, ff=19995, dsp=34, bram_18k=14, uram=0, dsp_tag="DSP",
        latency_best_cycles=None, latency_average_cycles=None, latency_worst_cycles=None,
        interval_min_cycles=None, interval_max_cycles=None,
        target_clock_ns=10.0, clock_uncertainty_ns=2.7, estimated_clock_ns=12.12,
        available={"LUT": 1296000, "FF": 2592000, "DSP": 9216, "BRAM_18K": 4032, "URAM": 960}),
    # Vitis HLS 2023.1
    DREAM: dict(
        tool="Vitis HLS", tool_version="2023.1", part="xczu49dr-ffvf1760-2-e",
        product_family="zynquplusRFSOC", top="myproject",
        lut=339116, ff=65881, dsp=29, bram_18k=332, uram=0, dsp_tag="DSP",
        latency_best_cycles=695, latency_average_cycles=695, latency_worst_cycles=695,
        interval_min_cycles=578, interval_max_cycles=578,
        target_clock_ns=5.0, clock_uncertainty_ns=1.35, estimated_clock_ns=3.649,
        available={"LUT": 425280, "FF": 850560, "DSP": 4272, "BRAM_18K": 2160, "URAM": 80}),
    # Vitis HLS 2024.1, top report and the hierarchy report of the same run
    SEAN_REPORT_DIR / "myproject_csynth.xml": dict(
        tool="Vitis HLS", tool_version="2024.1", part="xcu250-figd2104-2L-e",
        product_family="virtexuplus", top="myproject",
        lut=17966, ff=7123, dsp=467, bram_18k=29, uram=0, dsp_tag="DSP",
        latency_best_cycles=395, latency_average_cycles=395, latency_worst_cycles=395,
        interval_min_cycles=390, interval_max_cycles=390,
        target_clock_ns=5.0, clock_uncertainty_ns=1.35, estimated_clock_ns=3.53,
        available={"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_18K": 5376, "URAM": 1280}),
    SEAN_REPORT_DIR / "csynth.xml": dict(
        tool="Vitis HLS", tool_version="2024.1", part="xcu250-figd2104-2L-e",
        product_family="virtexuplus", top="myproject",
        lut=17966, ff=7123, dsp=467, bram_18k=29, uram=0, dsp_tag="DSP",
        latency_best_cycles=395, latency_average_cycles=395, latency_worst_cycles=395,
        interval_min_cycles=390, interval_max_cycles=390,
        target_clock_ns=5.0, clock_uncertainty_ns=1.35, estimated_clock_ns=3.53,
        available={"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_18K": 5376, "URAM": 1280}),
}


@pytest.mark.parametrize("path", list(CSYNTH_EXPECTED), ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_parse_csynth_xml_real_reports(path):
    report = parse_csynth_xml(path)
    expected = CSYNTH_EXPECTED[path]
    for key, value in expected.items():
        got = getattr(report, key)
        if isinstance(value, float):
            assert got == pytest.approx(value), key
        else:
            assert got == value, key
    assert report.resources == {"LUT": expected["lut"], "FF": expected["ff"], "DSP": expected["dsp"],
                                "BRAM_18K": expected["bram_18k"], "URAM": expected["uram"]}
    data = report.to_dict()
    json.dumps(data)
    assert data["LUT"] == expected["lut"] and data["DSP"] == expected["dsp"]
    assert data["file"] == str(path)


def test_csynth_without_hierarchy_has_no_modules():
    report = parse_csynth_xml(HLS4ML_CSYNTH)
    assert report.modules == [] and report.instances == []


def test_csynth_hierarchy_vitis_2020_2_with_undef():
    report = parse_csynth_xml(ZAKK / "solution1/syn/report/csynth.xml")
    assert len(report.modules) == 12
    assert len(report.instances) == 11
    modules = {m.name: m for m in report.modules}
    left = modules["p_find_left_and_right_boundaries9"]
    assert (left.lut, left.ff, left.dsp, left.bram_18k, left.uram) == (6634, 1116, 2, 0, 0)
    assert left.latency_best_cycles is None and left.latency_worst_cycles is None
    assert left.interval_cycles is None
    patch = modules["patch_buffer_add_patch2"]
    assert (patch.lut, patch.ff, patch.dsp) == (2447, 45, 0)
    assert (patch.latency_best_cycles, patch.latency_worst_cycles, patch.interval_cycles) == (40, 40, 40)
    proj = modules["straightLineProjectorFromLayerIJtoK"]
    assert (proj.lut, proj.ff, proj.latency_worst_cycles, proj.interval_cycles) == (3790, 4883, 50, 1)
    top = modules["system_top"]
    assert (top.lut, top.ff, top.dsp, top.bram_18k) == (55711, 19995, 34, 14)
    assert top.estimated_clock_ns == pytest.approx(12.12)
    strip = modules["p_shadowquilt_main_loop_make_verticle_strip"]
    assert (strip.lut, strip.ff, strip.dsp, strip.bram_18k) == (55166, 19028, 34, 12)

    first = report.instances[0]
    assert first.instance == "grp_p_shadowquilt_main_loop_make_verticle_strip_fu_283"
    assert first.module == "p_shadowquilt_main_loop_make_verticle_strip" and first.depth == 1
    deepest = max(report.instances, key=lambda i: i.depth)
    assert deepest.depth == 4
    assert deepest.path.startswith("grp_p_shadowquilt_main_loop_make_verticle_strip_fu_283/"
                                   "grp_alignedtoline_per_layer_loop3_fu_1250/")
    as_dict = first.to_dict()
    assert as_dict["LUT"] == 55166 and as_dict["latency_worst_cycles"] is None


def test_csynth_hierarchy_vitis_2024_1_hls4ml():
    report = parse_csynth_xml(SEAN_REPORT_DIR / "csynth.xml")
    assert len(report.modules) == 13
    assert len(report.instances) == 12
    modules = {m.name: m for m in report.modules}
    dense = modules["dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_mult_s"]
    assert (dense.lut, dense.ff, dense.dsp, dense.bram_18k) == (11420, 2287, 370, 0)
    assert (dense.latency_best_cycles, dense.latency_worst_cycles, dense.interval_cycles) == (1, 1, 1)
    assert dense.estimated_clock_ns == pytest.approx(3.48)
    softmax = modules["softmax_stable_array_array_ap_fixed_16_6_5_3_0_6u_softmax_config7_s"]
    assert (softmax.lut, softmax.ff, softmax.dsp, softmax.bram_18k) == (530, 257, 6, 5)
    pad = modules["zeropad1d_cl_array_array_ap_fixed_16_6_5_3_0_9u_config8_Pipeline_CopyMain"]
    assert (pad.lut, pad.ff, pad.latency_worst_cycles, pad.interval_cycles) == (75, 9, 129, 128)
    assert modules["myproject"].resources == report.resources

    multipliers = {i.module: i.multipliers for i in report.instances if i.multipliers}
    assert multipliers == {
        "dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_mult_s": 370,
        "dense_latency_wrapper_ap_fixed_ap_fixed_16_6_5_3_0_config6_s": 91,
        "softmax_stable_array_array_ap_fixed_16_6_5_3_0_6u_softmax_config7_s": 6,
    }
    conv = next(i for i in report.instances if i.module == dense.name)
    assert conv.depth == 3
    assert conv.to_dict()["DSP"] == 370


# ----------------------------------------------------------------------------------------
# Vivado report_utilization
# ----------------------------------------------------------------------------------------

UTIL_EXPECTED = {
    # 7-series, Vivado 2020.1, synthesis
    HLS4ML_VIVADO: dict(
        tool_version="2020.1", device="7z020clg400-1", design="myproject", design_state="Synthesized",
        stage="synthesis", family="7-series", lut=1526, ff=2428, dsp=66, bram_18k=0, uram=0,
        bram_tiles=0, ramb36=0, ramb18=0, carry8=None, carry4=295,
        available={"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_TILE": 140, "BRAM_18K": 280},
        util_lut=2.87),
    # UltraScale+ xcu250, RAMB18 only: 42 tiles = 84 x 18K
    FIXTURES / "fastmachinelearning-hls4ml-tutorial/pruned_cnn/vivado_synth.rpt": dict(
        tool_version="2020.1", device="xcu250figd2104-2L", design="myproject", design_state="Synthesized",
        stage="synthesis", family="UltraScale/UltraScale+", lut=123948, ff=43435, dsp=5386,
        bram_18k=84, uram=0, bram_tiles=42, ramb36=0, ramb18=84, carry8=13270, carry4=None,
        available={"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_TILE": 2688, "BRAM_18K": 5376,
                   "URAM": 1280, "CARRY8": 216000},
        util_lut=7.17),
    FIXTURES / "fastmachinelearning-hls4ml-tutorial/quantized_pruned_cnn/vivado_synth.rpt": dict(
        tool_version="2020.1", device="xcu250figd2104-2L", design="myproject", design_state="Synthesized",
        stage="synthesis", family="UltraScale/UltraScale+", lut=118931, ff=30702, dsp=353,
        bram_18k=68, uram=0, bram_tiles=34, ramb36=0, ramb18=68, carry8=14273, carry4=None,
        available={"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_TILE": 2688, "BRAM_18K": 5376,
                   "URAM": 1280, "CARRY8": 216000},
        util_lut=6.88),
    # UltraScale+ xczu9eg: half a tile
    FIXTURES / "thaarres-dnd_hls4ml/vivado_synth.rpt": dict(
        tool_version="2020.1", device="xczu9egffvb1156-2", design="myproject", design_state="Synthesized",
        stage="synthesis", family="UltraScale/UltraScale+", lut=31277, ff=4555, dsp=0,
        bram_18k=1, uram=0, bram_tiles=0.5, ramb36=0, ramb18=1, carry8=3849, carry4=None,
        available={"LUT": 274080, "FF": 548160, "DSP": 2520, "BRAM_TILE": 912, "BRAM_18K": 1824,
                   "CARRY8": 34260},
        util_lut=11.41),
    # Vivado 2022.2 with the Prohibited column
    FIXTURES / "nycu-pcs-lab-LFADs-model-template/vivado_synth.rpt": dict(
        tool_version="2022.2", device="xcu50-fsvh2104-2L-e", design="myproject", design_state="Synthesized",
        stage="synthesis", family="UltraScale/UltraScale+", lut=179437, ff=227971, dsp=2058,
        bram_18k=502, uram=0, bram_tiles=251, ramb36=248, ramb18=6, carry8=13720, carry4=None,
        available={"LUT": 871680, "FF": 1743360, "DSP": 5952, "BRAM_TILE": 1344, "BRAM_18K": 2688,
                   "URAM": 640, "CARRY8": 108960},
        util_lut=20.59),
    # Vivado 2024.1 with the Prohibited column, after opt_design and after routing
    SEAN_PRJ / "vivado_synth.rpt": dict(
        tool_version="2024.1", device="xcu250-figd2104-2L-e", design="myproject", design_state="Optimized",
        stage="synthesis", family="UltraScale/UltraScale+", lut=8565, ff=4864, dsp=467,
        bram_18k=24, uram=0, bram_tiles=12, ramb36=10, ramb18=4, carry8=790, carry4=None,
        available={"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_TILE": 2688, "BRAM_18K": 5376,
                   "URAM": 1280, "CARRY8": 216000},
        util_lut=0.50),
    SEAN_PRJ / "vivado_utilization.rpt": dict(
        tool_version="2024.1", device="xcu250-figd2104-2L-e", design="myproject", design_state="Routed",
        stage="implementation", family="UltraScale/UltraScale+", lut=7722, ff=4864, dsp=467,
        bram_18k=24, uram=0, bram_tiles=12, ramb36=10, ramb18=4, carry8=790, carry4=None,
        available={"LUT": 1728000, "FF": 3456000, "DSP": 12288, "BRAM_TILE": 2688, "BRAM_18K": 5376,
                   "URAM": 1280, "CARRY8": 216000},
        util_lut=0.45),
    # Vivado 2020.2 (Windows), synthesis and placement of the same design
    ZAKK / "tanish_v3_vivado/tanish_v3_vivado.runs/synth_1/MPSQ_utilization_synth.rpt": dict(
        tool_version="2020.2", device="xcvu19pfsvb3824-1", design="MPSQ", design_state="Synthesized",
        stage="synthesis", family="UltraScale/UltraScale+", lut=19707, ff=22184, dsp=83,
        bram_18k=38, uram=0, bram_tiles=19, ramb36=17, ramb18=4, carry8=1191, carry4=None,
        available={"LUT": 4085760, "FF": 8171520, "DSP": 3840, "BRAM_TILE": 2160, "BRAM_18K": 4320,
                   "URAM": 320, "CARRY8": 510720},
        util_lut=0.48),
    ZAKK / "tanish_v3_vivado/tanish_v3_vivado.runs/impl_1/MPSQ_utilization_placed.rpt": dict(
        tool_version="2020.2", device="xcvu19pfsvb3824-1", design="MPSQ", design_state="Fully Placed",
        stage="implementation", family="UltraScale/UltraScale+", lut=19004, ff=22091, dsp=83,
        bram_18k=38, uram=0, bram_tiles=19, ramb36=17, ramb18=4, carry8=1191, carry4=None,
        available={"LUT": 4085760, "FF": 8171520, "DSP": 3840, "BRAM_TILE": 2160, "BRAM_18K": 4320,
                   "URAM": 320, "CARRY8": 510720},
        util_lut=0.47),
}


@pytest.mark.parametrize("path", list(UTIL_EXPECTED), ids=lambda p: p.relative_to(FIXTURES).as_posix())
def test_parse_vivado_utilization_real_reports(path):
    report = parse_vivado_utilization(path)
    expected = dict(UTIL_EXPECTED[path])
    util_lut = expected.pop("util_lut")
    for key, value in expected.items():
        assert getattr(report, key) == value, key
    assert report.util_percent["LUT"] == pytest.approx(util_lut)
    # 18Kb units: 2 x RAMB36 + RAMB18 equals 2 x Block RAM Tile on every real report
    assert report.bram_18k == 2 * report.ramb36 + report.ramb18 == int(2 * report.bram_tiles)
    data = report.to_dict()
    json.dumps(data)
    assert data["tool"] == "Vivado" and data["BRAM_18K"] == expected["bram_18k"]


def test_primitives_table_is_read():
    report = parse_vivado_utilization(HLS4ML_VIVADO)
    assert report.primitives["FDRE"] == 2410
    assert report.primitives["DSP48E1"] == 66
    assert report.primitives["CARRY4"] == 295
    sean = parse_vivado_utilization(SEAN_PRJ / "vivado_synth.rpt")
    assert sean.primitives["RAMB36E2"] == 10 and sean.primitives["RAMB18E2"] == 4


def _table(header, rows):
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    sep = "+" + "+".join("-" * (w + 2) for w in widths) + "+"
    fmt = lambda cells: "| " + " | ".join(str(c).rjust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    return "\n".join([sep, fmt(header), sep, *map(fmt, rows), sep])


def test_columns_found_by_header_name_not_position(tmp_path):
    # same figures, columns in an unusual order plus an unknown extra column
    header = ["Site Type", "Available", "Util%", "Extra", "Fixed", "Used"]
    logic = _table(header, [["CLB LUTs*", 1728000, "0.50", 7, 0, 8565],
                            ["CLB Registers", 3456000, "0.14", 7, 0, 4864]])
    memory = _table(header, [["Block RAM Tile", 2688, "0.45", 7, 0, 12],
                             ["  RAMB36/FIFO*", 2688, "0.37", 7, 0, 10],
                             ["  RAMB18", 5376, "0.07", 7, 0, 4]])
    dsp = _table(header, [["DSPs", 12288, "3.80", 7, 0, 467]])
    text = ("| Design State : Routed\n\n1. CLB Logic\n------------\n\n" + logic
            + "\n\n2. BLOCKRAM\n-----------\n\n" + memory + "\n\n3. ARITHMETIC\n-------------\n\n" + dsp + "\n")
    path = tmp_path / "shuffled_utilization.rpt"
    path.write_text(text)
    report = parse_vivado_utilization(path)
    assert (report.lut, report.ff, report.dsp, report.bram_18k, report.bram_tiles) == (8565, 4864, 467, 24, 12)
    assert report.available["LUT"] == 1728000 and report.util_percent["DSP"] == pytest.approx(3.8)
    assert report.stage == "implementation"


def test_tile_count_used_when_no_sub_rows(tmp_path):
    text = ("1. Slice Logic\n--------------\n\n"
            + _table(["Site Type", "Used", "Fixed", "Available", "Util%"],
                     [["Slice LUTs", 100, 0, 53200, "0.19"], ["Slice Registers", 50, 0, 106400, "0.05"]])
            + "\n\n2. Memory\n---------\n\n"
            + _table(["Site Type", "Used", "Fixed", "Available", "Util%"], [["Block RAM Tile", "2.5", 0, 140, "1.79"]])
            + "\n")
    path = tmp_path / "old_utilization_synth.rpt"
    path.write_text(text)
    report = parse_vivado_utilization(path)
    assert report.bram_18k == 5 and report.bram_tiles == 2.5 and report.ramb36 is None
    assert report.dsp == 0 and report.uram == 0 and report.family == "7-series"
    assert report.stage is None and report.tool_version is None


# ----------------------------------------------------------------------------------------
# Hostile and malformed inputs
# ----------------------------------------------------------------------------------------

HOSTILE_FILES = sorted(HOSTILE.glob("*.xml"))


def test_hostile_fixtures_present():
    names = {p.name for p in HOSTILE_FILES}
    assert {"billion_laughs_csynth.xml", "xxe_file_csynth.xml", "external_dtd_csynth.xml"} <= names


@pytest.mark.parametrize("path", HOSTILE_FILES, ids=lambda p: p.name)
def test_hostile_xml_refused(path):
    with pytest.raises(FpgaFtError) as info:
        parse_csynth_xml(path)
    message = str(info.value)
    assert str(path) in message and "refused" in message and "\n" not in message
    assert "root:" not in message  # /etc/passwd never read


def test_hostile_xml_refused_through_cli(capsys):
    assert main(["report", str(HOSTILE / "xxe_file_csynth.xml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: csynth report ") and "Traceback" not in err


def test_entities_refused_even_without_dtd_check(tmp_path):
    # the billion-laughs DTD is refused first; entity declarations alone are refused too
    import defusedxml
    import defusedxml.ElementTree as safe_et

    with pytest.raises(defusedxml.EntitiesForbidden):
        safe_et.fromstring((HOSTILE / "billion_laughs_csynth.xml").read_bytes(), forbid_dtd=False)


MALFORMED_XML = {
    "truncated.xml": HLS4ML_CSYNTH.read_bytes()[:1500],
    "empty.xml": b"",
    "not_xml.xml": b"this is not xml at all\n",
    "wrong_root.xml": b"<report><AreaEstimates/></report>",
    "no_area.xml": b"<profile><ReportVersion><Version>2020.1</Version></ReportVersion></profile>",
    "no_lut.xml": b"<profile><AreaEstimates><Resources><FF>1</FF></Resources></AreaEstimates></profile>",
    "bad_number.xml": b"<profile><AreaEstimates><Resources><LUT>many</LUT><FF>1</FF></Resources>"
                      b"</AreaEstimates></profile>",
    "bad_latency.xml": b"<profile><PerformanceEstimates><SummaryOfOverallLatency><Best-caseLatency>1.5"
                       b"</Best-caseLatency></SummaryOfOverallLatency></PerformanceEstimates><AreaEstimates>"
                       b"<Resources><LUT>1</LUT><FF>1</FF></Resources></AreaEstimates></profile>",
    "binary.xml": bytes(range(256)) * 4,
}


@pytest.mark.parametrize("name", list(MALFORMED_XML))
def test_malformed_xml_gives_one_line_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(MALFORMED_XML[name])
    with pytest.raises(FpgaFtError) as info:
        parse_csynth_xml(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


def test_missing_and_directory_paths(tmp_path):
    with pytest.raises(FpgaFtError, match="cannot read"):
        parse_csynth_xml(tmp_path / "nope.xml")
    with pytest.raises(FpgaFtError, match="directory"):
        parse_csynth_xml(tmp_path)
    with pytest.raises(FpgaFtError, match="cannot read"):
        parse_vivado_utilization(tmp_path / "nope.rpt")


def test_oversized_report_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(reading, "MAX_REPORT_BYTES", 100)
    with pytest.raises(FpgaFtError, match="byte limit"):
        parse_csynth_xml(HLS4ML_CSYNTH)


MALFORMED_TEXT = {
    "empty.rpt": b"",
    "prose.rpt": b"Vivado finished.\nEverything fine.\n",
    "binary.rpt": b"\x00\x01\x02PK\x03\x04" * 50,
    "xml_as_rpt.rpt": HLS4ML_CSYNTH.read_bytes(),
    "no_used_column.rpt": _table(["Site Type", "SLR0", "SLR1"], [["CLB LUTs", 1, 2], ["CLB Registers", 3, 4]]).encode(),
    "garbage_numbers.rpt": _table(["Site Type", "Used", "Available"],
                                  [["CLB LUTs", "lots", 10], ["CLB Registers", "?", 10]]).encode(),
}


@pytest.mark.parametrize("name", list(MALFORMED_TEXT))
def test_malformed_utilization_gives_one_line_error(tmp_path, name):
    path = tmp_path / name
    path.write_bytes(MALFORMED_TEXT[name])
    with pytest.raises(FpgaFtError) as info:
        parse_vivado_utilization(path)
    assert str(path) in str(info.value) and "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------
# Project directories
# ----------------------------------------------------------------------------------------


def _hls4ml_project(root: Path) -> Path:
    """A directory laid out like an hls4ml Vivado-backend project after build(synth, vsynth)."""
    report_dir = root / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(HLS4ML_CSYNTH, report_dir / "myproject_csynth.xml")
    # per-function reports sit next to the top one; they must not be taken for the top
    shutil.copy(SKKWAN, report_dir / "dense_latency_ap_fixed_config2_s_csynth.xml")
    shutil.copy(HLS4ML_VIVADO, root / "vivado_synth.rpt")
    (root / "firmware").mkdir()
    (root / "firmware" / "myproject.cpp").write_text("// generated\n")
    autopilot = root / "myproject_prj" / "solution1" / ".autopilot" / "db"
    autopilot.mkdir(parents=True)
    (autopilot / "myproject.verbose.rpt").write_text("noise\n")
    shutil.copy(HOSTILE / "xxe_file_csynth.xml", autopilot / "evil_csynth.xml")  # hidden dir: never read
    (root / "hls4ml_config.yml").write_text("ProjectName: myproject\n")
    return root


def test_find_reports_hls4ml_layout(tmp_path):
    root = _hls4ml_project(tmp_path / "prj")
    found = find_reports(root)
    assert found.csynth == [root / "myproject_prj/solution1/syn/report/myproject_csynth.xml"]
    assert found.hierarchy == []
    assert found.vivado == [root / "vivado_synth.rpt"]
    assert not found.truncated and bool(found)
    json.dumps(found.to_dict())


def test_read_project_report_hls4ml_layout(tmp_path):
    root = _hls4ml_project(tmp_path / "prj")
    report = read_project_report(root)
    result = report.to_dict()
    json.dumps(result)
    assert result["source"] == "report"
    hls, viv = result["hls"], result["vivado"]
    assert (hls["LUT"], hls["FF"], hls["DSP"], hls["BRAM_18K"], hls["URAM"]) == (2532, 7969, 73, 0, 0)
    assert (hls["latency_worst_cycles"], hls["interval_min_cycles"]) == (10, 8)
    assert hls["estimated_clock_ns"] == pytest.approx(4.049) and hls["target_clock_ns"] == 5.0
    assert (viv["LUT"], viv["FF"], viv["DSP"], viv["BRAM_18K"], viv["stage"]) == (1526, 2428, 66, 0, "synthesis")
    assert result["modules"] == [] and result["instances"] == []
    assert result["warnings"] == []
    # the combined figures: the Vivado counts, the HLS latency
    assert report.figures == ResourceFigures(LUT=1526, FF=2428, DSP=66, BRAM_18K=0, URAM=0, latency_cycles=10,
                                             source="vivado synthesis")
    assert report.figures.utilization({"LUT": 1526, "FF": 0, "DSP": 132, "BRAM_18K": 0, "URAM": 0}) == \
        {"LUT": 1.0, "FF": math.inf, "DSP": 0.5, "BRAM_18K": 0.0, "URAM": 0.0}


def test_read_project_report_real_vitis_project():
    """seanlipps/ECE226_CoDesign's hls4ml project, as committed (Vitis HLS + Vivado 2024.1)."""
    result = read_project_report(FIXTURES / "seanlipps-ECE226_CoDesign").to_dict()
    assert result["hls"]["file"].endswith("myproject_prj/solution1/syn/report/myproject_csynth.xml")
    assert (result["hls"]["LUT"], result["hls"]["DSP"], result["hls"]["BRAM_18K"]) == (17966, 467, 29)
    # routed report preferred over the post-opt_design one
    assert result["vivado"]["design_state"] == "Routed"
    assert (result["vivado"]["LUT"], result["vivado"]["FF"], result["vivado"]["BRAM_18K"]) == (7722, 4864, 24)
    assert sorted(r["LUT"] for r in result["vivado_reports"]) == [7722, 8565]
    assert len(result["modules"]) == 13 and len(result["instances"]) == 12
    assert result["files"]["hierarchy"][0].endswith("report/csynth.xml")


def test_csynth_xml_alone_is_the_top(tmp_path):
    report_dir = tmp_path / "proj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(ZAKK / "solution1/syn/report/csynth.xml", report_dir / "csynth.xml")
    report = read_project_report(tmp_path / "proj")
    result = report.to_dict()
    assert result["hls"]["top"] == "system_top" and result["hls"]["LUT"] == 55711
    assert result["hls"]["latency_worst_cycles"] is None
    assert result["vivado"] is None and len(result["modules"]) == 12
    assert report.figures.LUT == 55711 and report.figures.latency_cycles is None and report.figures.source == "csynth"


def test_largest_report_taken_when_top_unknown(tmp_path):
    report_dir = tmp_path / "proj" / "sol" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(SKKWAN, report_dir / "a_csynth.xml")
    shutil.copy(DREAM, report_dir / "b_csynth.xml")
    shutil.copy(HLS4ML_CSYNTH, report_dir / "c_csynth.xml")
    found = find_reports(tmp_path / "proj")
    assert found.csynth == [report_dir / "b_csynth.xml"]


def test_copied_reports_outside_syn_report(tmp_path):
    shutil.copytree(HLS4ML, tmp_path / "copied")
    result = read_project_report(tmp_path / "copied").to_dict()
    assert result["hls"]["LUT"] == 2532 and result["vivado"]["LUT"] == 1526


def test_newest_solution_wins(tmp_path):
    root = tmp_path / "prj"
    old = root / "myproject_prj" / "solution1" / "syn" / "report"
    new = root / "myproject_prj" / "solution2" / "syn" / "report"
    old.mkdir(parents=True)
    new.mkdir(parents=True)
    shutil.copy(HLS4ML_CSYNTH, old / "myproject_csynth.xml")
    shutil.copy(DREAM, new / "myproject_csynth.xml")
    os.utime(old / "myproject_csynth.xml", (1_000_000_000, 1_000_000_000))
    os.utime(new / "myproject_csynth.xml", (1_700_000_000, 1_700_000_000))
    result = read_project_report(root).to_dict()
    assert result["hls"]["LUT"] == 339116
    assert any("several HLS solutions" in w for w in result["warnings"])


def test_vivado_only_and_bad_reports_become_warnings(tmp_path):
    root = tmp_path / "prj"
    runs = root / "prj.runs" / "impl_1"
    runs.mkdir(parents=True)
    shutil.copy(ZAKK / "tanish_v3_vivado/tanish_v3_vivado.runs/impl_1/MPSQ_utilization_placed.rpt",
                runs / "top_utilization_placed.rpt")
    (runs / "top_clock_utilization_routed.rpt").write_text("Clock Utilization Report\n")  # other format: skipped
    (runs / "broken_utilization_synth.rpt").write_text("not a table\n")
    report = read_project_report(root)
    result = report.to_dict()
    assert result["hls"] is None and result["modules"] == []
    assert (report.figures.LUT, report.figures.latency_cycles, report.figures.source) == \
        (19004, None, "vivado implementation")
    assert result["vivado"]["LUT"] == 19004 and result["vivado"]["stage"] == "implementation"
    assert len(result["warnings"]) == 1 and "broken_utilization_synth.rpt" in result["warnings"][0]
    assert not any("clock_utilization" in f for f in result["files"]["vivado"])


def test_no_report_found(tmp_path):
    (tmp_path / "firmware").mkdir()
    with pytest.raises(FpgaFtError) as info:
        read_project_report(tmp_path)
    assert str(info.value) == (f"no HLS or Vivado report found under {tmp_path}; "
                               "run `fpga-ft build DIR --synth` where Vitis/Vivado is installed")
    with pytest.raises(FpgaFtError, match="not found"):
        find_reports(tmp_path / "missing")


def test_hostile_report_in_project_is_an_error(tmp_path):
    report_dir = tmp_path / "myproject_prj" / "solution1" / "syn" / "report"
    report_dir.mkdir(parents=True)
    shutil.copy(HOSTILE / "billion_laughs_csynth.xml", report_dir / "myproject_csynth.xml")
    with pytest.raises(FpgaFtError, match="refused"):
        read_project_report(tmp_path)


def test_search_is_bounded(tmp_path, monkeypatch):
    root = _hls4ml_project(tmp_path / "prj")
    monkeypatch.setattr(discovery, "MAX_SEARCH_ENTRIES", 2)
    found = find_reports(root)
    assert found.truncated
    monkeypatch.setattr(discovery, "MAX_SEARCH_ENTRIES", 200_000)
    monkeypatch.setattr(discovery, "MAX_SEARCH_DEPTH", 1)
    found = find_reports(root)
    assert found.csynth == [] and found.vivado == [root / "vivado_synth.rpt"]


def test_format_report_table():
    text = format_report_table(read_project_report(FIXTURES / "seanlipps-ECE226_CoDesign"))
    lines = text.splitlines()
    assert lines[0].split() == ["source", "tool", "LUT", "FF", "DSP", "BRAM_18K", "URAM", "latency", "clock"]
    assert "17,966" in lines[2] and "395 cyc" in lines[2] and "3.53 ns" in lines[2]
    assert lines[3].startswith("Vivado implementation") and "7,722" in lines[3]
    assert "BRAM_18K = 2 x 12 Block RAM tiles" in text


# ----------------------------------------------------------------------------------------
# CLI
# ----------------------------------------------------------------------------------------


def test_cli_report(tmp_path, capsys):
    root = _hls4ml_project(tmp_path / "prj")
    out = tmp_path / "out" / "report.json"
    assert main(["report", str(root), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "HLS estimate" in printed and "2,532" in printed and "1,526" in printed
    data = json.loads(out.read_text())
    assert data["source"] == "report" and data["hls"]["LUT"] == 2532 and data["vivado"]["DSP"] == 66


def test_cli_report_modules_and_single_file(capsys):
    assert main(["report", str(FIXTURES / "seanlipps-ECE226_CoDesign"), "--modules"]) == 0
    printed = capsys.readouterr().out
    assert "dense_latency_ap_fixed_16_6_5_3_0_ap_fixed_16_6_5_3_0_config2_mult_s" in printed
    assert main(["report", str(SKKWAN)]) == 0
    assert "Vivado HLS 2018.2" in capsys.readouterr().out
    assert main(["report", str(HLS4ML_VIVADO), "--json", "-"]) == 0
    printed = capsys.readouterr().out
    data = json.loads(printed[printed.index("{"):])
    assert data["vivado"]["LUT"] == 1526 and data["vivado_reports"] == [data["vivado"]]
    # one named file: nothing was searched (no project_dir / truncated in "files")
    assert data["files"] == {"csynth": [], "hierarchy": [], "vivado": [str(HLS4ML_VIVADO)]}


def test_cli_report_without_reports(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: no HLS or Vivado report found under {tmp_path}; run `fpga-ft build DIR --synth`")
    assert main(["report", str(tmp_path / "missing")]) == 2
    assert "not found" in capsys.readouterr().err
