"""Safe reading of report files: a size cap (:data:`MAX_REPORT_BYTES` bytes), numbers and
resource counts from report text, HLS tool names, times to ns, and XML parsed only with
:mod:`defusedxml` (DTDs, entities and external references refused). Every bad input raises
:class:`~fpga_ft.core.errors.FpgaFtError` with a one-line message naming the file.
"""

from __future__ import annotations

import re
import stat
import xml.etree.ElementTree as _std_et
from pathlib import Path

import defusedxml
import defusedxml.ElementTree as safe_et

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.measure.reports.records import RESOURCE_KEYS

#: Reports larger than this (bytes) are refused: real csynth.xml files are a few MB at most.
MAX_REPORT_BYTES = 256 * 1024 * 1024


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
        number = _float_of(value, path, tag)
        if not number.is_integer():
            raise FpgaFtError(f"csynth report {path}: <{tag}> is not a whole number ({value[:40]!r})") from None
        return int(number)


def _float_or_none(text: str | None, path: Path, tag: str) -> float | None:
    value = _number_text(text)
    return None if value is None else _float_of(value, path, tag)


def _float_of(value: str, path: Path, tag: str) -> float:
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
