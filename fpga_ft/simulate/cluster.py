"""Where independent work units (campaign chunks, oracle batches) run: a local process pool
or a Dask distributed cluster, chosen once per command.

``--scheduler tcp://HOST:PORT`` (or ``$FPGA_FT_SCHEDULER``) names a running Dask scheduler;
:func:`select_scheduler` checks the address and connects before any work starts (a bad
address is one :class:`~fpga_ft.core.errors.FpgaFtError` line), and every campaign of the
command then submits its chunks there as tasks. Without a scheduler, chunks run in this
process (one worker) or in a local ``spawn`` process pool
(:mod:`fpga_ft.simulate.campaign.workers`).

Both are driven through :class:`ChunkExecutor`: ``submit(fn, *args)`` returns a future,
``wait_first(futures)`` the ones finished, ``slots`` how many run at once (pool processes,
or the Dask workers' threads). Results never depend on the executor: each chunk draws its
faults from its own seed (:func:`fpga_ft.simulate.campaign.layout.chunk_seed`).

The design library reaches Dask workers by path: a task names the design's project
directory and library file, which must be on a file system every worker mounts at the
same path (the fpga-ft cache, ``$FPGA_FT_CACHE``); a worker opens each design once and
keeps it (:func:`fpga_ft.simulate.campaign.workers.borrowed_library`). docs/cluster.md.

Needs the extra ``fpga-ft[dask]`` (``distributed``), imported only when a scheduler is used.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
from concurrent.futures import FIRST_COMPLETED, Executor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any, Callable, ContextManager, Iterable, Protocol

from fpga_ft.core.errors import FpgaFtError

#: Environment variable naming the Dask scheduler when ``--scheduler`` is not given.
SCHEDULER_ENV = "FPGA_FT_SCHEDULER"
#: Seconds to wait for the scheduler to answer when connecting.
CONNECT_TIMEOUT_SECONDS = 10.0
#: Tasks kept pending per Dask worker thread (see :class:`DaskExecutor`).
DASK_TASKS_PER_SLOT = 4
#: Inferences a Dask task aims at: consecutive chunks are grouped up to this many, so that a
#: task's work (~10 ms and more) outweighs its round trip through the scheduler.
DASK_TASK_INFERENCES = 4096

_ADDRESS = re.compile(r"^(tcp|tls)://(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(\d{1,5})$")
_selected: str | None = None
_CLIENTS: dict[str, Any] = {}


class ChunkExecutor(Protocol):
    """What runs chunks: ``slots`` at once, futures with ``done``/``result``/``cancel``."""

    slots: int
    #: tasks kept pending at once (enough to hide the round trip to a worker)
    window: int
    #: exceptions meaning a worker died (the campaign stops, resumable from its checkpoint)
    lost: tuple[type[BaseException], ...]

    def chunks_per_task(self, inferences: int) -> int:
        """Consecutive chunks of ``inferences`` each to send as one task."""
        ...

    def submit(self, fn: Callable, *args) -> Any: ...

    def wait_first(self, futures: Iterable) -> set: ...


@dataclass
class PoolExecutor:
    """A local :class:`concurrent.futures.Executor` (the campaign's process pool);
    ``submitting`` wraps each submit (the pool spawns its processes there)."""

    pool: Executor
    slots: int
    submitting: Callable[[], ContextManager] = contextlib.nullcontext
    lost: tuple[type[BaseException], ...] = (BrokenProcessPool,)

    @property
    def window(self) -> int:
        return 2 * self.slots

    def chunks_per_task(self, inferences: int) -> int:
        return 1

    def submit(self, fn: Callable, *args):
        with self.submitting():
            return self.pool.submit(fn, *args)

    def wait_first(self, futures: Iterable) -> set:
        done, _ = wait(list(futures), return_when=FIRST_COMPLETED)
        return set(done)


@dataclass
class DaskExecutor:
    """Tasks on a Dask distributed cluster (``client``: a connected ``distributed.Client``).
    Tasks are impure (``pure=False``): two chunks with equal inputs are still two tasks.
    A task's round trip (client, scheduler, worker and back) takes milliseconds, as long as
    a small chunk runs: a task holds up to :data:`DASK_TASK_INFERENCES` inferences of
    consecutive chunks, and :data:`DASK_TASKS_PER_SLOT` tasks per worker thread are kept
    pending."""

    client: Any
    slots: int = field(init=False)
    lost: tuple[type[BaseException], ...] = field(init=False)

    def __post_init__(self) -> None:
        from distributed.scheduler import KilledWorker

        threads = sum(self.client.nthreads().values())
        self.slots = max(1, int(threads))
        self.lost = (KilledWorker,)

    @property
    def window(self) -> int:
        return DASK_TASKS_PER_SLOT * self.slots

    def chunks_per_task(self, inferences: int) -> int:
        return max(1, DASK_TASK_INFERENCES // max(1, int(inferences)))

    def submit(self, fn: Callable, *args):
        return self.client.submit(fn, *args, pure=False)

    def wait_first(self, futures: Iterable) -> set:
        from distributed import wait as dask_wait

        with self.client.as_current():  # the client is not the process's default one
            return set(dask_wait(list(futures), return_when="FIRST_COMPLETED").done)


def check_address(address: str, source: str = "--scheduler") -> str:
    """``address`` if it is a Dask scheduler address ``tcp://HOST:PORT`` (or ``tls://``),
    else an FpgaFtError naming ``source`` (the option or variable it came from)."""
    text = str(address).strip()
    match = _ADDRESS.match(text)
    if match is None or not 0 < int(match.group(3)) < 65536:
        raise FpgaFtError(f"{source} must be a Dask scheduler address tcp://HOST:PORT, got {address!r}")
    return text


def resolve_scheduler(scheduler: str | None = None) -> str | None:
    """The scheduler to use: ``scheduler`` if given, else the one :func:`select_scheduler`
    chose, else ``$FPGA_FT_SCHEDULER``, else None (local)."""
    if scheduler:
        return check_address(scheduler)
    if _selected:
        return _selected
    env = os.environ.get(SCHEDULER_ENV, "").strip()
    return check_address(env, SCHEDULER_ENV) if env else None


def select_scheduler(scheduler: str | None) -> str | None:
    """Choose, once for this process (a command), where chunks run: ``scheduler`` or
    ``$FPGA_FT_SCHEDULER`` (connected now, so a bad address fails before any work), or
    local (None). Returns the address chosen."""
    global _selected
    _selected = None
    address = resolve_scheduler(scheduler)
    if address is not None:
        dask_client(address)
    _selected = address
    return address


def dask_client(address: str):
    """A connected ``distributed.Client`` for ``address`` (one per address and process)."""
    address = check_address(address)
    client = _CLIENTS.get(address)
    if client is not None and client.status == "running":
        return client
    try:
        from distributed import Client
    except ImportError:
        raise FpgaFtError("--scheduler needs Dask distributed: pip install 'fpga-ft[dask]'") from None
    try:
        client = Client(address, timeout=CONNECT_TIMEOUT_SECONDS, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise FpgaFtError(f"cannot reach the Dask scheduler at {address} ({reason[:160]})") from None
    _CLIENTS[address] = client
    return client


def dask_executor(address: str) -> DaskExecutor:
    """A :class:`DaskExecutor` on the scheduler at ``address``; an FpgaFtError when the
    cluster has no worker."""
    executor = DaskExecutor(dask_client(address))
    if not executor.client.nthreads():
        raise FpgaFtError(f"the Dask scheduler at {address} has no workers")
    return executor


def close_clients() -> None:
    """Close the Dask clients of this process (also done at exit); the cluster stays up."""
    global _selected
    _selected = None
    while _CLIENTS:
        _, client = _CLIENTS.popitem()
        with contextlib.suppress(Exception):
            client.close()


atexit.register(close_clients)
