"""The csim library reports its fault sites (``fpgaft_n_sites``, ``fpgaft_site_name``); fpga-ft
sizes its ctypes arrays from them and refuses a library whose sites differ from ``SITES``."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import SITES
from fpga_ft.simulate.csim import library_sites


class _StubLibrary:
    """Stands in for a loaded csim library reporting ``names`` as its sites."""

    def __init__(self, names):
        encoded = [n.encode() for n in names]
        self.fpgaft_n_sites = lambda: len(encoded)
        self.fpgaft_site_name = lambda i: encoded[i] if 0 <= i < len(encoded) else None


def test_sites_must_equal_core_sites_in_order():
    assert library_sites(_StubLibrary(SITES), "stub.so") == tuple(SITES)
    for names in ([SITES[1], SITES[0], *SITES[2:]], [*SITES, "luts"], SITES[:3]):
        with pytest.raises(FpgaFtError, match="stub.so: the csim library's fault sites .* differ from"):
            library_sites(_StubLibrary(names), "stub.so")


def test_a_built_library_reports_the_sites_and_counts_per_site(bundled):
    from fpga_ft.generate.design import build_design

    model, x, _, _ = bundled("mlp")
    lib = build_design(model).library
    assert lib.sites == tuple(SITES)
    raw = lib._lib
    assert raw.fpgaft_n_sites() == len(SITES)
    assert [raw.fpgaft_site_name(i).decode() for i in range(len(SITES))] == list(SITES)
    assert raw.fpgaft_site_name(len(SITES)) is None and raw.fpgaft_site_name(-1) is None
    assert ctypes.sizeof(lib._counters_type) == 2 * len(SITES) * ctypes.sizeof(ctypes.c_ulonglong)
    lib.configure(bers=[1e-3] * len(SITES), seed=1)
    _, injected, masked = lib.run(x[:50])
    assert list(injected) == list(masked) == list(SITES) and all(v > 0 for v in injected.values())
    with pytest.raises(FpgaFtError, match="5 BERs given, the csim library has 4 fault sites"):
        lib.configure(bers=[0.0] * (len(SITES) + 1))
    lib.configure()
    out, injected, _ = lib.run(x[:50])
    assert not any(injected.values()) and np.isfinite(out).all()
