"""Fault-injection campaigns: many inferences under a fault model, with a confidence interval.

:func:`run_campaign` runs ``repeats`` passes over a test set through the compiled C
simulation with faults drawn at one BER, and reports the accuracy (correct / inferences
over all passes) with the Wilson score interval computed on the misclassification count
(:mod:`fpga_ft.core.stats`). :func:`run_sweep` does it for several BERs.

Work units ("chunks") are (repeat r, slice s of the test set); chunk ``i = r * n_slices + s``
draws its faults from its own seed, derived from (seed, BER, i) with numpy's SeedSequence,
and calls ``CsimLibrary.configure`` with it before running (which also zeroes the
counters and scrubs the weight memories). The outcome of a chunk therefore depends only on
the campaign's arguments, never on which process runs it, the number of workers or the
order chunks finish in; aggregation is by chunk index. Early stopping
(``target_halfwidth``) is decided on complete prefixes of repeats, in repeat order, so
it is deterministic too.

Persistent mode: each chunk starts with scrubbed weights, and slices are multiples of
``scrub_interval`` inferences (``scrub_interval = 0``: one slice per pass), so weights are
scrubbed at the start of every pass over the test set and then every ``scrub_interval``
inferences; the last period of a pass is shorter when the test set size is not a multiple
of the interval.

Workers (``workers > 1``) are processes from a ``spawn`` ProcessPoolExecutor (kept for
reuse across campaigns); each opens the design with :func:`fpga_ft.generate.design.open_design`
(no TensorFlow) once and caches its library. ``workers = 1`` runs in the calling process.
Workers die with their parent: on Linux the kernel sends them SIGTERM when it exits
(``PR_SET_PDEATHSIG``), elsewhere (and as a fallback) a watchdog thread exits the worker
once its parent process is gone. Workers ignore SIGINT: Ctrl-C reaches the whole process
group, and the parent stops them (:func:`shutdown_workers`).

Checkpoints: every finished chunk is appended (one JSON line, flushed and fsynced) to
``<checkpoint>/<key>.jsonl``, where ``key`` hashes the design, the data, the fault model,
the seed and the repeat settings. Rerunning the same campaign reuses those chunks: a
campaign killed at any moment ends, when rerun, with exactly the numbers of an
uninterrupted run (a torn last line is ignored and cut off).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import signal
import struct
import sys
import threading
import time
import types
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

import numpy as np

from fpga_ft.core.cache import cache_root, data_fingerprint
from fpga_ft.core.classify import classify
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import DEFAULT_SCRUB_INTERVAL, SITES, FaultModel
from fpga_ft.core.stats import accuracy_interval, halfwidth

__all__ = [
    "CampaignResult", "run_campaign", "run_sweep", "chunk_seed", "campaign_key",
    "design_fingerprint", "default_checkpoint_dir", "shutdown_workers", "DEFAULT_CHUNK_SIZE", "progress_bar",
    "set_progress_total", "progress_wanted",
]

DEFAULT_CHUNK_SIZE = 512  # target inferences per chunk (slices of a pass are near-equal)
CHECKPOINT_FORMAT = 1
CI_METHOD = "wilson"
#: checkpoint files campaigns of this process used (an interrupted command names them)
CHECKPOINTS_USED: set = set()


# ------------------------------------------------------------------------------------------
# Result
# ------------------------------------------------------------------------------------------
@dataclass
class CampaignResult:
    """Outcome of one campaign (one BER). Accuracies are fractions in [0, 1]; ``seconds``
    is the wall time of the call; fault counters are flips summed over all chunks."""

    ber: float
    clean_accuracy: float
    accuracy_mean: float
    ci_low: float
    ci_high: float
    inferences: int
    errors: int
    faults_injected: dict
    faults_masked: dict
    seconds: float
    repeats: int
    seed: int
    sites: tuple
    mode: str
    confidence: float
    stopped_early: bool
    # extras
    scrub_interval: int = 0
    output_changed: int | None = None  # inferences whose class differs from the fault-free one
    repeat_accuracies: list = field(default_factory=list)
    max_repeats: int = 0
    target_halfwidth: float | None = None
    chunk_size: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    checkpoint: str | None = None
    key: str = ""

    @property
    def correct(self) -> int:
        return self.inferences - self.errors

    @property
    def ci_halfwidth(self) -> float:
        return halfwidth((self.ci_low, self.ci_high))

    @property
    def fault_model(self) -> FaultModel:
        return FaultModel(ber=self.ber, sites=self.sites, mode=self.mode, scrub_interval=self.scrub_interval)

    def to_dict(self) -> dict:
        return {
            "ber": self.ber,
            "clean_accuracy": self.clean_accuracy,
            "accuracy": {"mean": self.accuracy_mean, "ci_low": self.ci_low, "ci_high": self.ci_high,
                         "confidence": self.confidence,
                         "method": f"{CI_METHOD} score interval on the misclassification count"},
            "inferences": self.inferences,
            "errors": self.errors,
            "faults_injected": dict(self.faults_injected),
            "faults_masked": dict(self.faults_masked),
            "seconds": self.seconds,
            "repeats": self.repeats,
            "seed": self.seed,
            "sites": list(self.sites),
            "mode": self.mode,
            "scrub_interval": self.scrub_interval,
            "confidence": self.confidence,
            "stopped_early": self.stopped_early,
            "output_changed": self.output_changed,
            "repeat_accuracies": list(self.repeat_accuracies),
            "max_repeats": self.max_repeats,
            "target_halfwidth": self.target_halfwidth,
            "chunk_size": self.chunk_size,
            "chunks": self.chunks,
            "resumed_chunks": self.resumed_chunks,
            "inferences_per_second": self.inferences / self.seconds if self.seconds > 0 else None,
            "checkpoint": self.checkpoint,
            "key": self.key,
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CampaignResult":
        acc = data["accuracy"]
        return cls(
            ber=float(data["ber"]), clean_accuracy=float(data["clean_accuracy"]), accuracy_mean=float(acc["mean"]),
            ci_low=float(acc["ci_low"]), ci_high=float(acc["ci_high"]), inferences=int(data["inferences"]),
            errors=int(data["errors"]), faults_injected=dict(data["faults_injected"]),
            faults_masked=dict(data["faults_masked"]), seconds=float(data["seconds"]), repeats=int(data["repeats"]),
            seed=int(data["seed"]), sites=tuple(data["sites"]), mode=data["mode"],
            confidence=float(data["confidence"]), stopped_early=bool(data["stopped_early"]),
            scrub_interval=int(data.get("scrub_interval", 0)), output_changed=data.get("output_changed"),
            repeat_accuracies=list(data.get("repeat_accuracies", [])), max_repeats=int(data.get("max_repeats", 0)),
            target_halfwidth=data.get("target_halfwidth"), chunk_size=int(data.get("chunk_size", 0)),
            chunks=int(data.get("chunks", 0)), resumed_chunks=int(data.get("resumed_chunks", 0)),
            checkpoint=data.get("checkpoint"), key=data.get("key", ""))


# ------------------------------------------------------------------------------------------
# Determinism: seeds, layout, keys
# ------------------------------------------------------------------------------------------
def _u32_words(value: int) -> list[int]:
    return [value & 0xFFFFFFFF, (value >> 32) & 0xFFFFFFFF]


def chunk_seed(seed: int, ber: float, index: int) -> int:
    """The 64-bit csim seed of chunk ``index`` of a campaign at ``ber`` with ``seed``
    (numpy SeedSequence over fixed-width words of the three values)."""
    ber_bits = struct.unpack("<Q", struct.pack("<d", float(ber)))[0]
    entropy = [*_u32_words(int(seed)), *_u32_words(ber_bits), *_u32_words(int(index))]
    return int(np.random.SeedSequence(entropy).generate_state(1, dtype=np.uint64)[0])


def _slices(n: int, fault_model: FaultModel, chunk_size: int) -> list[tuple[int, int]]:
    """Sample slices of one pass over the data (the same for every repeat)."""
    count = max(1, math.ceil(n / chunk_size))
    bounds = [i * n // count for i in range(count + 1)]
    if fault_model.persistent:
        # slice starts on scrub boundaries (0: one slice per pass); with interval 1 the
        # layout, hence every flip, is the transient one
        interval = fault_model.scrub_interval
        if interval == 0:
            return [(0, n)]
        bounds = sorted({0, n, *(min(n, interval * round(b / interval)) for b in bounds[1:-1])})
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def design_fingerprint(design) -> str:
    """What defines a design's behaviour: its metadata, plan and compiled library (whose
    name hashes the generated C++ sources, weights included)."""
    digest = hashlib.sha256()
    digest.update(json.dumps(design.meta, sort_keys=True).encode())
    digest.update(design.plan.key().encode())
    digest.update(design.library.path.name.encode())
    return digest.hexdigest()[:20]


def campaign_key(design_fp: str, data_fp: str, fault_model: FaultModel, seed: int, repeats: int,
                 target_halfwidth, max_repeats: int, confidence: float, chunk_size: int) -> str:
    source = json.dumps({
        "format": CHECKPOINT_FORMAT, "design": design_fp, "data": data_fp, "fault_model": fault_model.to_dict(),
        "seed": int(seed), "repeats": int(repeats), "target_halfwidth": target_halfwidth,
        "max_repeats": int(max_repeats), "confidence": float(confidence) if target_halfwidth else None,
        "chunk_size": int(chunk_size),
    }, sort_keys=True)
    return hashlib.sha256(source.encode()).hexdigest()[:24]


def default_checkpoint_dir() -> Path:
    """``<design cache>/campaigns`` (``$FPGA_FT_CACHE`` or ``~/.cache/fpga-ft``)."""
    return cache_root() / "campaigns"


# ------------------------------------------------------------------------------------------
# Checkpoint file
# ------------------------------------------------------------------------------------------
class _Checkpoint:
    """Append-only JSON-lines record of finished chunks of one campaign."""

    def __init__(self, path: Path, key: str, header: dict):
        self.path = path
        self.key = key
        self.header = header
        self._fd: int | None = None

    def load(self) -> dict[int, dict]:
        """Finished chunks by index. Lines that do not parse (a torn last line after a
        kill), or that belong to another campaign, are ignored; a torn tail is cut off so
        that the next append starts on a fresh line."""
        done: dict[int, dict] = {}
        if not self.path.is_file():
            return done
        data = self.path.read_bytes()
        end = data.rfind(b"\n") + 1
        if end < len(data):  # torn last line: never completed, drop it
            with open(self.path, "r+b") as handle:
                handle.truncate(end)
                handle.flush()
                os.fsync(handle.fileno())
        for raw in data[:end].split(b"\n"):
            try:
                record = json.loads(raw)
            except ValueError:
                continue
            if isinstance(record, dict) and record.get("key") == self.key and isinstance(record.get("chunk"), int):
                done[record["chunk"]] = record
        return done

    def append(self, record: dict) -> None:
        if self._fd is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            new = not self.path.exists() or self.path.stat().st_size == 0
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            if new:
                self._write({"key": self.key, "campaign": self.header})
        self._write({"key": self.key, **record})

    def _write(self, record: dict) -> None:
        line = (json.dumps(record, separators=(",", ":")) + "\n").encode()
        os.write(self._fd, line)  # one write per line (O_APPEND), then fsync
        os.fsync(self._fd)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def _checkpoint_path(checkpoint, key: str) -> Path | None:
    if checkpoint is None or checkpoint is False:
        return None
    if checkpoint is True:
        return default_checkpoint_dir() / f"{key}.jsonl"
    path = Path(checkpoint)
    if path.suffix == ".jsonl":
        return path
    return path / f"{key}.jsonl"


# ------------------------------------------------------------------------------------------
# Running chunks (in process or in worker processes)
# ------------------------------------------------------------------------------------------
def _execute(library, task: dict) -> dict:
    """Run one chunk on ``library``: configure with the chunk's seed, run, count."""
    library.configure(task["bers"], persistent=task["persistent"], seed=task["seed"],
                      scrub_interval=task["scrub_interval"])
    outputs, injected, masked = library.run(task["x"])
    predicted = classify(outputs)
    clean = task["clean"]
    return {
        "chunk": task["chunk"],
        "n": int(len(predicted)),
        "correct": int(np.count_nonzero(predicted == task["y"])),
        "changed": None if clean is None else int(np.count_nonzero(predicted != clean)),
        "injected": [int(injected[s]) for s in SITES],
        "masked": [int(masked[s]) for s in SITES],
    }


_WORKER_LIBRARIES: dict = {}
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
WATCHDOG_SECONDS = 0.5


def _die_with_parent(parent_pid: int, spawned_by_main_thread: bool) -> None:
    """Make this worker exit when its parent process does.

    Linux: ``prctl(PR_SET_PDEATHSIG, SIGTERM)`` (SIGTERM's default action ends the worker at
    once, whatever it runs). The kernel sends it when the *thread* that spawned the worker
    exits, so it is set only for workers spawned by the main thread (the process's
    lifetime). Everywhere: a daemon thread polls ``os.getppid()`` and exits the worker
    when it no longer names the parent (the worker was re-parented)."""
    if sys.platform.startswith("linux") and spawned_by_main_thread:
        try:
            import ctypes

            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
        except (OSError, AttributeError):
            pass

    def watchdog() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_SECONDS)
        os._exit(143)

    if os.getppid() != parent_pid:  # the parent died before the prctl above took effect
        os._exit(143)
    threading.Thread(target=watchdog, name="fpgaft-parent-watchdog", daemon=True).start()


def _worker_init(parent_pid: int | None = None, spawned_by_main_thread: bool = True) -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C: the parent stops the workers
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    if parent_pid is not None:
        _die_with_parent(parent_pid, spawned_by_main_thread)


def _worker_library(project_dir: str, library_name: str):
    key = (project_dir, library_name)
    library = _WORKER_LIBRARIES.get(key)
    if library is None:
        from fpga_ft.generate.design import open_design

        library = open_design(project_dir).library
        if library.path.name != library_name:
            raise FpgaFtError(f"design {project_dir} changed while a campaign was running")
        _WORKER_LIBRARIES[key] = library
    return library


def _worker_run(task: dict) -> dict:
    return _execute(_worker_library(task["project_dir"], task["library"]), task)


def _worker_probe() -> dict:
    """What a worker process has loaded (tests check that TensorFlow is not)."""
    return {"pid": os.getpid(), "tensorflow": "tensorflow" in sys.modules,
            "libraries": [name for _, name in _WORKER_LIBRARIES]}


_POOLS: dict[int, ProcessPoolExecutor] = {}


def _get_pool(workers: int) -> ProcessPoolExecutor:
    pool = _POOLS.get(workers)
    if pool is None:
        context = multiprocessing.get_context("spawn")
        main_thread = threading.current_thread() is threading.main_thread()
        pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_worker_init,
                                   initargs=(os.getpid(), main_thread))
        _POOLS[workers] = pool
    return pool


@contextlib.contextmanager
def _without_main_module():
    """Hide the caller's ``__main__`` while worker processes may be spawned.

    A ``spawn`` child normally re-imports the parent's main script; workers need nothing
    from it (tasks name ``fpga_ft.simulate.campaign`` functions only), and re-importing it would run
    an unguarded script again or import TensorFlow in the worker. Submitting is where
    ProcessPoolExecutor spawns its processes, so submits run inside this context."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def shutdown_workers() -> None:
    """Stop the worker processes kept for reuse (also done at exit)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_workers)


# ------------------------------------------------------------------------------------------
# Inputs
# ------------------------------------------------------------------------------------------
def _as_design(design):
    if isinstance(design, (str, os.PathLike)):
        from fpga_ft.generate.design import open_design

        return open_design(design)
    if not hasattr(design, "library") or not hasattr(design, "project_dir"):
        raise FpgaFtError(f"expected an fpga-ft Design or project directory, got {type(design).__name__}")
    return design


def _prepare_data(design, x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 1 or len(x) == 0:
        raise FpgaFtError("no samples to run (x is empty)")
    x = np.ascontiguousarray(x.reshape(len(x), -1))
    if x.shape[1] != design.n_inputs:
        raise FpgaFtError(f"input shape mismatch: samples have {x.shape[1]} values, the design expects "
                          f"{design.n_inputs}")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise FpgaFtError(f"x has {len(x)} samples but y has {len(y)} labels")
    n_classes = max(2, design.n_outputs)
    if y.min() < 0 or y.max() >= n_classes:
        raise FpgaFtError(f"labels must be in 0..{n_classes - 1} for a design with {design.n_outputs} outputs, "
                          f"got {int(y.min())}..{int(y.max())}")
    return x, y


_CLEAN_CACHE: dict = {}


def _clean_predictions(design, x: np.ndarray, data_fp: str) -> np.ndarray:
    """Fault-free classes (csim at BER 0), cached per (library, data)."""
    library = design.library
    key = (str(library.path), data_fp)
    predicted = _CLEAN_CACHE.get(key)
    if predicted is None:
        library.configure((0.0, 0.0, 0.0, 0.0))
        outputs, _, _ = library.run(x)
        predicted = classify(outputs)
        if len(_CLEAN_CACHE) >= 32:
            _CLEAN_CACHE.pop(next(iter(_CLEAN_CACHE)))
        _CLEAN_CACHE[key] = predicted
    return predicted


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise FpgaFtError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------
# Campaign
# ------------------------------------------------------------------------------------------
def run_campaign(design, x, y, fault_model: FaultModel, *, repeats: int = 10, seed: int = 0, workers: int = 1,
                 confidence: float = 0.95, target_halfwidth: float | None = None, max_repeats: int | None = None,
                 checkpoint=None, progress: bool = False, clean_accuracy: float | None = None,
                 chunk_size: int | None = None) -> CampaignResult:
    """Run ``repeats`` passes over (x, y) under ``fault_model``; return accuracy and CI.

    Args:
        design: a :class:`~fpga_ft.generate.design.Design` (or its project directory).
        x, y: inputs (N, ...) in the model's units and class labels (N,).
        fault_model: BER (faults per bit per inference), sites, mode, scrub interval.
        repeats: passes over the data set (minimum, with ``target_halfwidth``).
        seed: campaign seed (>= 0); chunk seeds derive from (seed, BER, chunk index).
        workers: processes (1: run here).
        confidence: level of the Wilson interval on the misclassification count.
        target_halfwidth: keep adding passes until the interval's half-width is at most
            this (accuracy fraction), up to ``max_repeats`` (default max(100, 10*repeats)).
        checkpoint: None (off), True (``default_checkpoint_dir()``), a directory (file
            ``<key>.jsonl`` in it) or a ``.jsonl`` file.
        progress: tqdm progress bar on stderr.
        clean_accuracy: reported as the clean accuracy if given; otherwise the accuracy of
            the fault-free csim (BER 0). That pass runs once per design and data set
            (cached in this process); ``output_changed`` compares against it.
        chunk_size: target inferences per work unit (default 512; part of the key).
    """
    start = time.perf_counter()
    if not isinstance(fault_model, FaultModel):
        raise FpgaFtError(f"fault_model must be a FaultModel, got {type(fault_model).__name__}")
    repeats = _check_int("repeats", repeats, 1)
    workers = _check_int("workers", workers, 1)
    seed = _check_int("seed", seed, 0)
    if seed >= 2**64:
        raise FpgaFtError(f"seed must be < 2^64, got {seed}")
    chunk_size = _check_int("chunk size", DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size, 1)
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise FpgaFtError(f"confidence must be in (0, 1), got {confidence}")
    if target_halfwidth is not None:
        target_halfwidth = float(target_halfwidth)
        if not 0.0 < target_halfwidth <= 0.5:
            raise FpgaFtError(f"target half-width must be in (0, 0.5] (accuracy fraction), got {target_halfwidth}")
        max_repeats = max(100, 10 * repeats) if max_repeats is None else \
            _check_int("max repeats", max_repeats, 1)
        if max_repeats < repeats:
            raise FpgaFtError(f"max repeats ({max_repeats}) must be >= repeats ({repeats})")
    else:
        max_repeats = repeats

    design = _as_design(design)
    x, y = _prepare_data(design, x, y)
    library = design.library
    data_fp = data_fingerprint(x, y)
    clean = _clean_predictions(design, x, data_fp)
    if clean_accuracy is None:
        clean_accuracy = float(np.mean(clean == y))

    slices = _slices(len(x), fault_model, chunk_size)
    n_slices = len(slices)
    key = campaign_key(design_fingerprint(design), data_fp, fault_model, seed, repeats, target_halfwidth,
                       max_repeats, confidence, chunk_size)
    ckpt_path = _checkpoint_path(checkpoint, key)
    ckpt = None
    done: dict[int, dict] = {}
    if ckpt_path is not None:
        CHECKPOINTS_USED.add(Path(ckpt_path).resolve())
        ckpt = _Checkpoint(ckpt_path, key, {
            "design": str(design.project_dir), "fault_model": fault_model.to_dict(), "seed": seed,
            "repeats": repeats, "target_halfwidth": target_halfwidth, "max_repeats": max_repeats,
            "chunk_size": chunk_size, "samples": len(x), "data": data_fp})
        limit = max_repeats * n_slices
        for index, record in ckpt.load().items():
            if 0 <= index < limit and record.get("n") == _slice_len(slices, index):
                done[index] = record
    resumed = len(done)

    bers = fault_model.bers()
    persistent = fault_model.persistent
    scrub = fault_model.scrub_interval if persistent else 0

    def task(index: int, for_worker: bool) -> dict:
        a, b = slices[index % n_slices]
        item = {"chunk": index, "bers": bers, "persistent": persistent, "scrub_interval": scrub,
                "seed": chunk_seed(seed, fault_model.ber, index), "x": x[a:b], "y": y[a:b], "clean": clean[a:b]}
        if for_worker:
            item["project_dir"] = str(design.project_dir)
            item["library"] = library.path.name
        return item

    decide = _Stopper(n_slices, repeats, max_repeats, target_halfwidth, confidence)
    final_repeats = decide(done)
    bar = None
    if progress:
        bar = progress_bar(total=repeats * n_slices, initial=min(resumed, repeats * n_slices),
                           desc=f"BER {fault_model.ber:g}", unit="chunk", enabled=True)

    def finished(record: dict) -> None:
        done[record["chunk"]] = record
        if ckpt is not None:
            ckpt.append(record)
        if bar is not None:
            bar.update(1)

    try:
        if final_repeats is None and workers == 1:
            index = 0
            while final_repeats is None:
                if index not in done:
                    finished(_execute(library, task(index, False)))
                index += 1
                if index % n_slices == 0:
                    final_repeats = decide(done)
                    if final_repeats is None and bar is not None:
                        _grow(bar, index + n_slices)
        elif final_repeats is None:
            final_repeats = _run_parallel(workers, task, done, finished, n_slices, repeats, max_repeats,
                                          target_halfwidth, decide, bar)
    finally:
        if ckpt is not None:
            ckpt.close()
        if bar is not None:
            bar.close()

    used = [done[i] for i in range(final_repeats * n_slices)]
    inferences = sum(r["n"] for r in used)
    correct = sum(r["correct"] for r in used)
    changed = None if any(r.get("changed") is None for r in used) else sum(r["changed"] for r in used)
    accuracy, low, high = accuracy_interval(correct, inferences, confidence, CI_METHOD)
    repeat_acc = []
    for r in range(final_repeats):
        part = used[r * n_slices:(r + 1) * n_slices]
        repeat_acc.append(sum(c["correct"] for c in part) / sum(c["n"] for c in part))
    return CampaignResult(
        ber=fault_model.ber, clean_accuracy=float(clean_accuracy), accuracy_mean=accuracy, ci_low=low, ci_high=high,
        inferences=inferences, errors=inferences - correct,
        faults_injected={s: sum(r["injected"][i] for r in used) for i, s in enumerate(SITES)},
        faults_masked={s: sum(r["masked"][i] for r in used) for i, s in enumerate(SITES)},
        seconds=time.perf_counter() - start, repeats=final_repeats, seed=seed, sites=fault_model.sites,
        mode=fault_model.mode, confidence=confidence,
        stopped_early=target_halfwidth is not None and final_repeats < max_repeats,
        scrub_interval=fault_model.scrub_interval, output_changed=changed, repeat_accuracies=repeat_acc,
        max_repeats=max_repeats, target_halfwidth=target_halfwidth, chunk_size=chunk_size,
        chunks=len(used), resumed_chunks=resumed, checkpoint=str(ckpt_path) if ckpt_path else None, key=key)


def progress_bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", enabled: bool | None = None,
                 initial: int = 0, leave: bool = False, unit_scale: bool = False):
    """The one progress bar of fpga-ft's campaigns and analyses: tqdm on stderr, with count,
    rate and ETA (tqdm's remaining-time estimate from the measured rate; when the total is
    revised, as adaptive sampling does after every round, :func:`set_progress_total` moves
    the ETA with it). ``enabled``: True / False, or None to show it only when stderr is a
    terminal (never when the output is piped). ``unit_scale``: 12.3k instead of 12345."""
    from tqdm import tqdm

    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, leave=leave,
                dynamic_ncols=True, disable=disable, unit_scale=unit_scale)


def set_progress_total(bar, total: int) -> None:
    """Revise a bar's total (and so its ETA) when the planned work changes."""
    if bar is not None and not getattr(bar, "disable", False) and int(total) != bar.total:
        bar.total = int(total)
        bar.refresh()


def progress_wanted(requested: bool | None, json_out: str | None) -> bool:
    """Command-line default of the progress bars: shown with ``--progress``; otherwise only
    when stderr is a terminal and the JSON result does not go to stdout (``--json -``)."""
    if requested:
        return True
    return bool(sys.stderr.isatty()) and json_out != "-"


def _slice_len(slices, index: int) -> int:
    a, b = slices[index % len(slices)]
    return b - a


def _grow(bar, total: int) -> None:
    if total > bar.total:
        set_progress_total(bar, total)


class _Stopper:
    """Decides how many repeats the campaign ends with, looking only at complete prefixes
    of repeats in order (never at which chunks happen to be finished beyond them), so the
    answer is the same for any schedule. Incremental: finished chunks only accumulate."""

    def __init__(self, n_slices: int, repeats: int, max_repeats: int, target, confidence: float):
        self.n_slices, self.repeats, self.max_repeats = n_slices, repeats, max_repeats
        self.target, self.confidence = target, confidence
        self.completed = self.correct = self.total = 0

    def __call__(self, done: dict) -> int | None:
        """Final number of repeats, or None while more chunks are needed."""
        while self.completed < self.max_repeats:
            base = self.completed * self.n_slices
            records = [done.get(base + s) for s in range(self.n_slices)]
            if any(record is None for record in records):
                return None
            self.correct += sum(record["correct"] for record in records)
            self.total += sum(record["n"] for record in records)
            self.completed += 1
            if self.completed < self.repeats:
                continue
            if self.target is None or self.completed >= self.max_repeats:
                return self.completed
            _, low, high = accuracy_interval(self.correct, self.total, self.confidence, CI_METHOD)
            if halfwidth((low, high)) <= self.target:
                return self.completed
        return self.max_repeats


def _run_parallel(workers, task, done, finished, n_slices, repeats, max_repeats, target, decide, bar) -> int:
    pool = _get_pool(workers)
    window = 2 * workers
    limit = max_repeats * n_slices
    horizon = repeats * n_slices  # chunks we currently intend to run
    next_index = 0
    pending = {}
    final = None
    try:
        while final is None:
            while len(pending) < window and next_index < min(horizon, limit):
                if next_index not in done:
                    item = task(next_index, True)
                    with _without_main_module():
                        pending[pool.submit(_worker_run, item)] = next_index
                next_index += 1
            if not pending:
                final = decide(done)
                if final is None:  # need more repeats: extend the horizon by one repeat
                    horizon += n_slices
                    if bar is not None:
                        _grow(bar, horizon)
                continue
            finished_futures, _ = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished_futures:
                pending.pop(future)
                finished(future.result())
            final = decide(done)
            if final is None and next_index >= horizon and target is not None:
                horizon = min(limit, horizon + n_slices)  # speculate one repeat ahead
                if bar is not None:
                    _grow(bar, horizon)
    except BrokenProcessPool:
        _POOLS.pop(workers, None)
        raise FpgaFtError("a campaign worker process died (out of memory or killed); rerun to resume "
                          "from the checkpoint") from None
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or failed: keep (checkpoint) the chunks that finished
        for future, index in list(pending.items()):
            if future.done() and not future.cancelled() and future.exception() is None and index not in done:
                finished(future.result())
        raise
    finally:
        for future in pending:
            future.cancel()
    return final


def run_sweep(design, x, y, bers: Iterable[float], sites=SITES, mode: str = "transient",
              scrub_interval: int = DEFAULT_SCRUB_INTERVAL, **kw) -> list[CampaignResult]:
    """:func:`run_campaign` at every BER of ``bers`` (same sites, mode, seed and options;
    the fault-free pass runs once)."""
    models = [FaultModel(ber=ber, sites=sites, mode=mode, scrub_interval=scrub_interval) for ber in bers]
    if not models:
        raise FpgaFtError("no BER given")
    design = _as_design(design)
    return [run_campaign(design, x, y, model, **kw) for model in models]
