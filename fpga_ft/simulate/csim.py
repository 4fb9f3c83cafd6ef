"""The fpga-ft C simulation: compile a generated project with the fault hooks, run batches.

The library is built from the project's own ``firmware/myproject.cpp`` (hls4ml's code with
fpga-ft's kernels; compiled as :func:`csim_top_source` rewrites it) and ``fpgaft_bridge.cpp``
with ``-DFPGAFT_CSIM``: the only build that defines that macro. Samples run in one C++ call
per batch (no Python per sample).
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import SITES, WEIGHT_MODES

CSIM_MACRO = "FPGAFT_CSIM"
CXXFLAGS = ["-O3", "-fPIC", "-fvisibility=hidden", "-std=c++17", "-fno-gnu-unique", "-w", "-DFPGAFT_AP_PRIVATE"]
#: ``FPGA_FT_CSIM_NATIVE=0`` builds portable libraries (no ``-march=native``).
NATIVE_ENV = "FPGA_FT_CSIM_NATIVE"


@functools.lru_cache(maxsize=1)
def target_flags() -> tuple[tuple[str, ...], str]:
    """The g++ flags that tune the csim for this CPU, and the CPU's identity for the cache key.

    ``-march=native`` (the block engine's clean pass then uses AVX2/AVX-512 where the CPU
    has them) with ``-ffp-contract=off`` (no fused multiply-add: the float <-> ap_fixed
    conversions stay those of the portable build), when g++ accepts it and
    ``FPGA_FT_CSIM_NATIVE`` is not ``0``. The identity is what g++ expands ``-march=native``
    to on this machine (the -march value and every -m feature switch), so a library built
    on one CPU is never loaded on a CPU that lacks its instructions: another CPU gets
    another library name. Otherwise: no flag (portable x86-64 / generic code)."""
    if os.environ.get(NATIVE_ENV, "1").strip() == "0":
        return (), "portable"
    try:
        probe = subprocess.run(["g++", "-march=native", "-E", "-v", "-"], input="", capture_output=True,
                               text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return (), "portable"
    cc1 = next((line for line in probe.stderr.splitlines() if "cc1" in line and "-march=" in line), "")
    if probe.returncode != 0 or not cc1:
        return (), "portable"
    identity = cc1[cc1.index("-march="):].strip()
    return ("-march=native", "-ffp-contract=off"), identity


#: hls4ml's layer output arrays in the top function: ``type name[size];`` followed by the
#: ARRAY_PARTITION pragma hls4ml writes for that array.
_LAYER_ARRAY = re.compile(r"^([ \t]+)([A-Za-z_][^;\n#]*[ \t](\w+)\[[^\]\n]+\];)([ \t]*\n[ \t]*#pragma HLS ARRAY_PARTITION "
                          r"variable=\3\b)", re.M)
_STATIC_ARRAY = r"\1static \2\4"
#: Name of the top function as the csim compiles it (next to firmware/, see csim_top_source).
CSIM_TOP = "fpgaft_csim_top.cpp"


def csim_top_source(text: str) -> str:
    """The top function's source as the csim compiles it: hls4ml's layer output arrays are
    ``static`` (constructed once per process rather than per inference: ap_fixed's
    constructor clears a volatile word per element, which costs more than a small layer).
    Values are those of the original: every hls4ml layer writes its whole output array
    before the next layer reads it, and a fresh ap_fixed array holds no defined value."""
    return _LAYER_ARRAY.sub(_STATIC_ARRAY, text)


def _write_csim_top(project_dir: Path) -> None:
    """Write :data:`CSIM_TOP` from firmware/myproject.cpp (only when it changed)."""
    target = project_dir / CSIM_TOP
    text = csim_top_source((project_dir / "firmware" / "myproject.cpp").read_text())
    if not target.is_file() or target.read_text() != text:
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(text)
        os.replace(tmp, target)  # atomic: a concurrent builder reads the old or the new copy


def _sources(project_dir: Path) -> list[Path]:
    """The csim's top function (:data:`CSIM_TOP`), the AXI wrapper of VivadoAccelerator
    projects if any, our bridge."""
    axi = project_dir / "firmware" / "myproject_axi.cpp"
    return [project_dir / CSIM_TOP, *([axi] if axi.is_file() else []), project_dir / "fpgaft_bridge.cpp"]


def _source_hash(project_dir: Path, extra_flags=()) -> str:
    digest = hashlib.sha256()
    for path in sorted(project_dir.glob("firmware/**/*")):
        if path.is_file() and path.suffix in (".h", ".cpp", ".txt"):
            digest.update(str(path.relative_to(project_dir)).encode())
            digest.update(path.read_bytes())
    digest.update((project_dir / "fpgaft_bridge.cpp").read_bytes())
    # myproject.cpp is hashed above; its csim copy also depends on the rewrite
    digest.update(f"{_LAYER_ARRAY.pattern} -> {_STATIC_ARRAY}".encode())
    digest.update(repr([p.name for p in _sources(project_dir)]).encode())
    digest.update(" ".join([*CXXFLAGS, *extra_flags]).encode())
    digest.update(target_flags()[1].encode())
    # the library reads its weights from this directory (WEIGHTS_DIR): a moved project recompiles
    digest.update(str(project_dir.resolve()).encode())
    return digest.hexdigest()[:16]


def build_library(project_dir: str | os.PathLike, force: bool = False,
                  extra_flags: tuple[str, ...] = ()) -> tuple[Path, float]:
    """Compile the csim shared library; returns (path, seconds spent compiling; 0 if cached).

    ``extra_flags``: additional g++ flags (tests use ``-DFPGAFT_CSIM_TYPED`` to force the
    generic ap_fixed kernel instead of the native-integer one). The CPU flags of
    :func:`target_flags` come first."""
    project_dir = Path(project_dir).resolve()
    if shutil.which("g++") is None:
        raise FpgaFtError("g++ not found on PATH: the C simulation needs a C++ compiler")
    for source in (project_dir / "firmware" / "myproject.cpp", *_sources(project_dir)[1:]):
        if not source.is_file():
            raise FpgaFtError(f"not an fpga-ft project (missing {source.name}): {project_dir}")
    library = project_dir / f"fpgaft_csim-{_source_hash(project_dir, extra_flags)}.so"
    if library.is_file() and not force:
        return library, 0.0
    start = time.perf_counter()
    _write_csim_top(project_dir)
    weights_dir = f'"{project_dir / "firmware" / "weights"}"'
    common = ["g++", *CXXFLAGS, *target_flags()[0], *extra_flags, f"-D{CSIM_MACRO}", f"-DWEIGHTS_DIR={weights_dir}",
              f"-I{project_dir / 'firmware' / 'ap_types'}", f"-I{project_dir / 'firmware'}", f"-I{project_dir}"]
    sources = _sources(project_dir)
    objects = [project_dir / f"fpgaft_{i}.o" for i in range(len(sources))]

    def compile_one(pair):
        source, obj = pair
        return subprocess.run([*common, "-c", str(source), "-o", str(obj)], cwd=project_dir,
                              capture_output=True, text=True)

    with ThreadPoolExecutor(max_workers=2) as pool:
        results = list(pool.map(compile_one, zip(sources, objects)))
    for result in results:
        if result.returncode != 0:
            first = next((line for line in result.stderr.splitlines() if "error" in line), result.stderr[:200])
            (project_dir / "fpgaft_csim_build.log").write_text(result.stderr)
            raise FpgaFtError(f"csim compile failed ({first.strip()}); full log: "
                              f"{project_dir / 'fpgaft_csim_build.log'}")
    tmp = library.with_suffix(f".{os.getpid()}.tmp")
    link = subprocess.run(["g++", "-shared", "-Wl,--no-undefined", *map(str, objects), "-o", str(tmp)], cwd=project_dir,
                          capture_output=True, text=True)
    for obj in objects:
        obj.unlink(missing_ok=True)
    if link.returncode != 0:
        raise FpgaFtError(f"csim link failed: {link.stderr.strip().splitlines()[-1]}")
    os.replace(tmp, library)  # atomic: concurrent builders never see a half-written library
    return library, time.perf_counter() - start


#: Version of the C interface of ``fpgaft_bridge.cpp`` this module drives (2: the library
#: reports its fault sites; 3: ``fpgaft_configure_faults``, ``fpgaft_weight_flipped_bits``).
ABI_VERSION = 3


def library_sites(lib: ctypes.CDLL, name: str) -> tuple[str, ...]:
    """The fault sites a loaded csim library reports (``fpgaft_n_sites``,
    ``fpgaft_site_name``), checked to equal :data:`fpga_ft.core.faults.SITES` in order: the
    BERs passed to ``fpgaft_configure`` and the counters of ``fpgaft_run_batch`` are indexed
    by site number on both sides."""
    lib.fpgaft_n_sites.restype = ctypes.c_int
    lib.fpgaft_site_name.argtypes = [ctypes.c_int]
    lib.fpgaft_site_name.restype = ctypes.c_char_p
    sites = tuple((lib.fpgaft_site_name(i) or b"?").decode() for i in range(int(lib.fpgaft_n_sites())))
    if sites != tuple(SITES):
        raise FpgaFtError(f"{name}: the csim library's fault sites ({', '.join(sites) or 'none'}) differ from "
                          f"fpga_ft.core.faults.SITES ({', '.join(SITES)}); rebuild the design with this fpga-ft")
    return sites


class CsimLibrary:
    """ctypes handle on one compiled design. Not thread-safe (the fault state is global to
    the library); use one process per worker."""

    def __init__(self, library: str | os.PathLike, n_inputs: int, n_outputs: int):
        self.path = Path(library)
        self.n_inputs = int(n_inputs)
        self.n_outputs = int(n_outputs)
        self._lib = ctypes.CDLL(str(self.path))
        version = getattr(self._lib, "fpgaft_abi_version", None)  # None: a library older than the ABI check
        if version is None or version() != ABI_VERSION:
            raise FpgaFtError(f"{self.path}: csim library of another fpga-ft version; convert the design again "
                              "with this fpga-ft")
        self.sites = library_sites(self._lib, self.path.name)
        self._bers_type = ctypes.c_double * len(self.sites)
        self._counters_type = ctypes.c_ulonglong * (2 * len(self.sites))
        self._lib.fpgaft_configure.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_int,
                                               ctypes.c_ulonglong, ctypes.c_longlong]
        self._lib.fpgaft_configure_faults.argtypes = [ctypes.POINTER(ctypes.c_double), ctypes.c_int,
                                                      ctypes.c_ulonglong, ctypes.c_longlong,
                                                      ctypes.POINTER(ctypes.c_double), ctypes.c_int]
        self._lib.fpgaft_weight_flipped_bits.argtypes = [ctypes.POINTER(ctypes.c_longlong)]
        self._lib.fpgaft_force_next_flip.argtypes = [ctypes.c_int, ctypes.c_longlong]
        self._lib.fpgaft_set_scope.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        # x and y by address (float32 arrays checked in run): no ctypes pointer objects per batch
        self._lib.fpgaft_run_batch.argtypes = [
            ctypes.c_void_p, ctypes.c_void_p, ctypes.c_longlong,
            ctypes.c_longlong, ctypes.c_longlong, ctypes.POINTER(ctypes.c_ulonglong)]
        self._lib.fpgaft_run_batch.restype = ctypes.c_int
        self.configure()

    def clone(self) -> "CsimLibrary":
        """A second, independent handle on the same design (its own fault state), for a
        second thread: the library file is copied to a private temporary name and loaded
        from there (``dlopen`` of the same path would share the globals), then the copy's
        name is removed (the mapping stays). ctypes releases the GIL during calls, so two
        clones run in parallel."""
        import shutil
        import tempfile

        fd, name = tempfile.mkstemp(prefix="fpgaft_clone_", suffix=self.path.suffix)
        os.close(fd)
        try:
            shutil.copyfile(self.path, name)
            twin = CsimLibrary(name, self.n_inputs, self.n_outputs)
        finally:
            os.unlink(name)
        twin.path = self.path
        return twin

    def configure(self, bers=(0.0, 0.0, 0.0, 0.0), persistent: bool = False, seed: int = 0,
                  scrub_interval: int = 0, weight_mode: str | None = None, mbu=()) -> None:
        """Set BER per site (order of :data:`SITES`, missing trailing sites 0), mode and seed.
        Resets the counters and scrubs every weight memory.

        ``weight_mode``: one of :data:`fpga_ft.core.faults.WEIGHT_MODES` (default: ``accumulate``
        if ``persistent`` else ``transient``); the weights' BER is per scrub interval in the
        held modes (latched, stuck-at), else per inference. ``mbu``: multi-bit upsets,
        ``((size, probability), ...)`` (:func:`fpga_ft.core.faults.parse_mbu`)."""
        bers = [float(b) for b in bers]
        if len(bers) > len(self.sites):
            raise FpgaFtError(f"{len(bers)} BERs given, the csim library has {len(self.sites)} fault sites "
                              f"({', '.join(self.sites)})")
        values = self._bers_type(*bers)
        mode = WEIGHT_MODES.index(weight_mode) if weight_mode is not None else int(bool(persistent))
        table = [0.0] * max((size for size, _ in mbu), default=0)
        for size, prob in mbu:
            table[size - 1] = float(prob)
        if table:
            table[0] = 1.0 - sum(table[1:])
        self._lib.fpgaft_configure_faults(values, mode, int(seed) & (2**64 - 1), int(scrub_interval),
                                          (ctypes.c_double * max(1, len(table)))(*table), len(table))

    def weight_flipped_bits(self) -> tuple[int, int]:
        """Test-only: (weight bits now differing from their pristine value, weight bits in
        all) over replica 0's weight and bias arrays of every layer run so far."""
        out = (ctypes.c_longlong * 2)()
        self._lib.fpgaft_weight_flipped_bits(out)
        return int(out[0]), int(out[1])

    def set_scope(self, layer: int = -1, neuron: int = -1, bit: int = -1) -> None:
        """Confine faults to the products/partial sums of protectable layer number ``layer``
        (-1: no scope), neuron/channel ``neuron`` (-1: all) and bit ``bit`` (0 = LSB; -1: all
        bits). While a scope is active, weights and activations are not exposed."""
        self._lib.fpgaft_set_scope(int(layer), int(neuron), int(bit))

    def force_next_flip(self, site: str, skip_bits: int) -> None:
        """Test-only: the next flip at ``site`` falls after exactly ``skip_bits`` exposed bits."""
        self._lib.fpgaft_force_next_flip(self.sites.index(site), int(skip_bits))

    def run(self, x: np.ndarray) -> tuple[np.ndarray, dict, dict]:
        """Run every sample of ``x``; returns (outputs (N, n_outputs), injected, masked) with
        the counters accumulated since the last :meth:`configure`."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float32).reshape(len(x), -1))
        if x.shape[1] != self.n_inputs:
            raise FpgaFtError(f"input has {x.shape[1]} values per sample, the design expects {self.n_inputs}")
        y = np.empty((len(x), self.n_outputs), dtype=np.float32)  # every value written by the batch
        counters = self._counters_type()
        status = self._lib.fpgaft_run_batch(x.ctypes.data, y.ctypes.data, len(x), self.n_inputs, self.n_outputs,
                                            counters)
        if status != 0:
            raise FpgaFtError(f"{self.path.name}: batch call rejected the input/output sizes")
        n = len(self.sites)
        injected = {site: int(counters[i]) for i, site in enumerate(self.sites)}
        masked = {site: int(counters[n + i]) for i, site in enumerate(self.sites)}
        return y, injected, masked
