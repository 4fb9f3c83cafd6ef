"""Study storage, locking and liveness: the Optuna RDB storage (SQLite file by default, any
SQLAlchemy URL), the study lock (a file lock next to a SQLite file, ``pg_advisory_lock`` on
PostgreSQL, ``GET_LOCK`` on MySQL), worker tokens, reaping of dead workers' trials and the
heartbeat thread (every :data:`HEARTBEAT_SECONDS` seconds; stale after :data:`GRACE_SECONDS`).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import importlib.util
import inspect
import os
import socket
import threading
import warnings
from pathlib import Path
from typing import Mapping

from fpga_ft.core.cache import cache_root, file_lock
from fpga_ft.core.errors import FpgaFtError

#: File name of the default SQLite storage (in ``<design cache>/optuna/``).
STORAGE_FILE = "fpga-ft-optuna.db"
#: Seconds between heartbeats of a running trial, and how old a heartbeat may get before
#: another worker fails the trial as stale (re-queuing its parameters).
HEARTBEAT_SECONDS = 10
GRACE_SECONDS = 60
#: Retries of a killed / stale trial's parameters.
MAX_RETRIES = 2


def default_storage_url() -> str:

    directory = cache_root() / "optuna"
    directory.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{directory / STORAGE_FILE}"


def _sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.get_backend_name() == "sqlite" and u.database and u.database != ":memory:":
        return Path(u.database)
    return None


def display_url(url: str) -> str:
    """``url`` with any password hidden."""
    try:
        from sqlalchemy.engine import make_url

        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return url


POSTGRES_DRIVERS = (("psycopg", "postgresql+psycopg"), ("psycopg2", "postgresql+psycopg2"))


def normalize_url(url: str) -> str:
    """``url`` with a PostgreSQL driver that is installed: a bare ``postgresql://`` means
    psycopg 3 to SQLAlchemy 2.1 and psycopg2 to 2.0; use whichever of the two is importable."""
    from sqlalchemy.engine import make_url

    u = make_url(url)
    if u.drivername == "postgresql":
        for module, driver in POSTGRES_DRIVERS:
            if importlib.util.find_spec(module) is not None:
                return u.set(drivername=driver).render_as_string(hide_password=False)
    return url


def make_storage(url: str):
    """An Optuna RDB storage with heartbeats for ``url`` (one-line error when unusable)."""
    import optuna
    from sqlalchemy.engine import make_url

    try:
        u = make_url(url)
    except Exception:
        raise FpgaFtError(f"--storage must be an SQLAlchemy URL (sqlite:///FILE, postgresql://USER@HOST/DB), "
                          f"got {url!r}") from None
    url = normalize_url(url)
    backend = u.get_backend_name()
    engine_kwargs: dict = {}
    if backend == "sqlite":
        path = _sqlite_path(url)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        engine_kwargs = {"connect_args": {"timeout": 120}}
    else:
        engine_kwargs = {"pool_pre_ping": True}

    # Optuna >= 4.9 calls it heartbeat_stale_trial_callback, earlier versions failed_trial_callback
    parameters = inspect.signature(optuna.storages.RDBStorage.__init__).parameters
    callback = "heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in parameters \
        else "failed_trial_callback"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return optuna.storages.RDBStorage(
                url, engine_kwargs=engine_kwargs, heartbeat_interval=HEARTBEAT_SECONDS,
                grace_period=GRACE_SECONDS, **{callback: _requeue_stale})
        except ImportError as exc:
            hint = " (pip install psycopg2-binary)" if backend == "postgresql" else ""
            name = getattr(exc, "name", None) or getattr(exc.__cause__, "name", None) or "module"
            raise FpgaFtError(f"storage {display_url(url)}: missing database driver {name}{hint}") from None
        except Exception as exc:  # sqlalchemy OperationalError etc.
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise FpgaFtError(f"cannot open storage {display_url(url)}: {first}") from None


_LOCK_ENGINES: dict = {}


@contextlib.contextmanager
def study_lock(url: str, study_name: str):
    """Serialise asking for trials (and seeding) between workers of one study."""
    from sqlalchemy.engine import make_url

    backend = make_url(url).get_backend_name()
    path = _sqlite_path(url)
    if backend == "sqlite":
        if path is None:
            yield
            return
        with file_lock(path.with_name(path.name + ".lock")):
            yield
        return
    if backend in ("postgresql", "mysql"):
        import sqlalchemy
        from sqlalchemy.pool import NullPool

        engine = _LOCK_ENGINES.get(url)
        if engine is None:
            engine = _LOCK_ENGINES[url] = sqlalchemy.create_engine(normalize_url(url), poolclass=NullPool)
        key = int.from_bytes(hashlib.sha256(study_name.encode()).digest()[:8], "big", signed=True)
        with engine.connect() as conn:
            if backend == "postgresql":
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
            else:
                conn.execute(sqlalchemy.text("SELECT GET_LOCK(:k, 600)"), {"k": f"fpgaft-{key}"})
            try:
                yield
            finally:
                if backend == "postgresql":
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                else:
                    conn.execute(sqlalchemy.text("SELECT RELEASE_LOCK(:k)"), {"k": f"fpgaft-{key}"})
        return
    yield


def _proc_start(pid: int) -> str | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text.rsplit(")", 1)[1].split()[19]  # field 22: start time in clock ticks


def worker_token() -> dict:
    pid = os.getpid()
    return {"host": socket.gethostname(), "pid": pid, "start": _proc_start(pid)}


def _is_dead_here(token) -> bool:
    """True when ``token`` names a process of this host that no longer exists."""
    if not isinstance(token, Mapping) or token.get("host") != socket.gethostname():
        return False
    pid = int(token.get("pid", -1))
    if pid <= 0:
        return False
    if pid == os.getpid() and token.get("start") == _proc_start(pid):
        return False
    if Path("/proc").is_dir():
        start = _proc_start(pid)
        return start is None or (token.get("start") is not None and start != token.get("start"))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False
    return False


def _requeue(study, trial) -> None:
    """Queue a failed (killed / stale) trial's parameters again, at most MAX_RETRIES times."""
    retries = int(trial.user_attrs.get("retries", 0))
    if retries >= MAX_RETRIES or not trial.params:
        return
    attrs = {"retry_of": trial.number, "retries": retries + 1}
    if "label" in trial.user_attrs:
        attrs["label"] = trial.user_attrs["label"]
    study.enqueue_trial(dict(trial.params), user_attrs=attrs)


def _requeue_stale(study, trial) -> None:  # heartbeat_stale_trial_callback
    _requeue(study, trial)


def reap_dead_trials(study) -> list[int]:
    """Fail RUNNING trials whose worker process is gone (same host) or whose heartbeat is
    stale (any host); re-queue their parameters. Returns the numbers of the failed trials."""
    import optuna
    from optuna.trial import TrialState

    failed = []
    now = datetime.datetime.now()
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        token = trial.user_attrs.get("worker")
        # a worker killed between asking and signing its trial: no token, no heartbeat
        orphan = token is None and trial.datetime_start is not None and \
            (now - trial.datetime_start).total_seconds() > GRACE_SECONDS
        if orphan or _is_dead_here(token):
            try:
                study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
            except Exception:  # finished meanwhile by someone else
                continue
            _requeue(study, trial)
            failed.append(trial.number)
    before = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optuna.storages.fail_stale_trials(study)
    after = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
    return failed + sorted(after - before - set(failed))


class _Heartbeat:
    def __init__(self, storage, trial_id: int):
        self.storage, self.trial_id = storage, trial_id
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        while True:
            try:
                self.storage.record_heartbeat(self.trial_id)
            except Exception:  # a lost connection must not kill the evaluation
                pass
            if self.stop.wait(HEARTBEAT_SECONDS):
                return

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        self.thread.join(timeout=5)
