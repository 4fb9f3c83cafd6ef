"""Running chunks: in the calling process (:func:`execute_chunk`), in local worker processes
(``spawn`` pool kept for reuse, workers that die with their parent and ignore SIGINT), or as
tasks on a Dask cluster (:mod:`fpga_ft.simulate.cluster`); :func:`run_parallel` drives
either through a :class:`~fpga_ft.simulate.cluster.ChunkExecutor`."""

from __future__ import annotations

import atexit
import contextlib
import multiprocessing
import os
import signal
import sys
import threading
import time
import types
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import SITES
from fpga_ft.simulate.campaign.progress import grow_progress
from fpga_ft.simulate.cluster import ChunkExecutor, PoolExecutor, dask_executor


def execute_chunk(library, task: dict) -> dict:
    """Run one chunk on ``library``: configure with the chunk's seed, run, classify (the
    task's :class:`~fpga_ft.core.classify.OutputHead`), count."""
    library.configure(task["bers"], persistent=task["persistent"], seed=task["seed"],
                      scrub_interval=task["scrub_interval"], **task.get("faults", {}))
    outputs, injected, masked = library.run(task["x"])
    predicted = task["head"].classify(outputs)
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


_LIBRARY_LOCK = threading.Lock()
_FREE_LIBRARIES: dict = {}


def _open_library(key: tuple[str, str]):
    project_dir, library_name = key
    from fpga_ft.generate.design import open_design

    if not os.path.isdir(project_dir):
        raise FpgaFtError(f"design project {project_dir} not found on this worker ({os.uname().nodename}): "
                          "Dask workers need the fpga-ft cache on a shared file system at the same path")
    library = open_design(project_dir).library
    if library.path.name != library_name:
        raise FpgaFtError(f"design {project_dir} changed while a campaign was running")
    return library


@contextlib.contextmanager
def borrowed_library(project_dir: str, library_name: str):
    """A csim library of the design for this thread, opened once per process (the first
    handle) and cloned for each further thread running at once (a Dask worker runs tasks
    in threads; a library's fault state is global to it); handles are kept for reuse."""
    key = (project_dir, library_name)
    with _LIBRARY_LOCK:
        free = _FREE_LIBRARIES.setdefault(key, [])
        library = free.pop() if free else None
        if library is None and key not in _WORKER_LIBRARIES:
            _WORKER_LIBRARIES[key] = library = _open_library(key)
        first = _WORKER_LIBRARIES[key]
    if library is None:
        library = first.clone()
    try:
        yield library
    finally:
        with _LIBRARY_LOCK:
            _FREE_LIBRARIES[key].append(library)


def _worker_run(tasks: list[dict]) -> list[dict]:
    """Run consecutive chunks of one design (one task: one chunk locally, a few on Dask)."""
    with borrowed_library(tasks[0]["project_dir"], tasks[0]["library"]) as library:
        return [execute_chunk(library, task) for task in tasks]


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
    from it (tasks name ``fpga_ft.simulate.campaign.workers`` functions only), and re-importing it would run
    an unguarded script again or import TensorFlow in the worker. Submitting is where
    ProcessPoolExecutor spawns its processes, so submits run inside this context."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


@contextlib.contextmanager
def _sigint_blocked():
    """Block SIGINT in this thread while worker processes may be spawned. A spawned worker
    inherits the signal mask, so a Ctrl-C that reaches the process group while a worker is
    still importing (before :func:`_worker_init` ignores SIGINT) cannot make it print a
    KeyboardInterrupt traceback (measured: SIGINT to the group of ``inject --workers 2``
    under load printed one from ``spawn_main``). A SIGINT that reaches this thread meanwhile
    is delivered when the mask is restored."""
    try:
        previous = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT})
    except (AttributeError, OSError, ValueError):  # no pthread_sigmask on this platform
        previous = None
    try:
        yield
    finally:
        if previous is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, previous)


@contextlib.contextmanager
def _spawning_workers():
    """Where worker processes may be spawned (submits): the caller's ``__main__`` hidden and
    SIGINT blocked (:func:`_without_main_module`, :func:`_sigint_blocked`)."""
    with _without_main_module(), _sigint_blocked():
        yield


def shutdown_workers() -> None:
    """Stop the worker processes kept for reuse (also done at exit)."""
    while _POOLS:
        _, pool = _POOLS.popitem()
        pool.shutdown(wait=True, cancel_futures=True)


atexit.register(shutdown_workers)


def chunk_executor(workers: int, scheduler: str | None) -> ChunkExecutor:
    """The Dask cluster at ``scheduler``, else the local pool of ``workers`` processes."""
    if scheduler is not None:
        return dask_executor(scheduler)
    return PoolExecutor(_get_pool(workers), workers, _spawning_workers)


def run_parallel(executor: ChunkExecutor, task, done, finished, n_slices, repeats, max_repeats, target, decide,
                 bar) -> int:
    """Run the campaign's missing chunks on ``executor`` in chunk order, at most
    ``executor.window`` tasks pending, each of ``executor.chunks_per_task(inferences)``
    consecutive chunks (records are per chunk, so grouping never changes the numbers);
    returns the final number of repeats (``decide``)."""
    window = executor.window
    per_task = 0
    limit = max_repeats * n_slices
    horizon = repeats * n_slices  # chunks we currently intend to run
    next_index = 0
    pending = {}
    final = None
    try:
        while final is None:
            while len(pending) < window and next_index < min(horizon, limit):
                group: list[dict] = []
                while next_index < min(horizon, limit) and len(group) < max(per_task, 1):
                    if next_index not in done:
                        group.append(task(next_index, True))
                        per_task = per_task or executor.chunks_per_task(len(group[0]["x"]))
                    next_index += 1
                if group:
                    pending[executor.submit(_worker_run, group)] = group
            if not pending:
                final = decide(done)
                if final is None:  # need more repeats: extend the horizon by one repeat
                    horizon += n_slices
                    if bar is not None:
                        grow_progress(bar, horizon)
                continue
            for future in executor.wait_first(pending):
                pending.pop(future)
                for record in future.result():
                    finished(record)
            final = decide(done)
            if final is None and next_index >= horizon and target is not None:
                horizon = min(limit, horizon + n_slices)  # speculate one repeat ahead
                if bar is not None:
                    grow_progress(bar, horizon)
    except executor.lost:
        if isinstance(executor, PoolExecutor):
            _POOLS.pop(executor.slots, None)
        raise FpgaFtError("a campaign worker process died (out of memory or killed); rerun to resume "
                          "from the checkpoint") from None
    except BaseException:
        # interrupted (Ctrl-C, SIGTERM) or failed: keep (checkpoint) the chunks that finished
        for future in list(pending):
            if future.done() and not future.cancelled() and future.exception() is None:
                for record in future.result():
                    if record["chunk"] not in done:
                        finished(record)
        raise
    finally:
        for future in pending:
            future.cancel()
    return final
