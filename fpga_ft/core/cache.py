"""fpga-ft's on-disk cache and the fingerprints that key it.

Everything fpga-ft caches lives under :func:`cache_root` (``$FPGA_FT_CACHE``, default
``~/.cache/fpga-ft``): compiled designs (``designs/``), table-head checks (``heads/``),
retrained models (``retrained/``), campaign checkpoints (``campaigns/``), neuron rankings
(``rankings/``) and the optimizer's default study database (``optuna/``). Whoever builds a
cached entry holds :func:`file_lock` on it, so concurrent processes build it once.

The fingerprints are plain hashes (numpy and hashlib only; a Keras model is read through
its ``to_json`` and ``get_weights``, without importing TensorFlow). :func:`data_hash` and
:func:`data_fingerprint` hash the same kind of data differently: each keys caches written
by earlier versions (retrained models and optimizer studies; campaign checkpoints), so
neither is changed here.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV", "cache_root", "file_lock", "model_fingerprint", "data_hash", "data_fingerprint"]

CACHE_ENV = "FPGA_FT_CACHE"


def cache_root() -> Path:
    root = Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "fpga-ft")
    root.mkdir(parents=True, exist_ok=True)
    return root


@contextlib.contextmanager
def file_lock(path: Path):
    """Exclusive advisory lock on ``path`` (created) for the ``with`` block: one process at a
    time builds a cached design or retrains a model."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def model_fingerprint(model) -> str:
    """SHA-256 of a Keras model's architecture and weights (hex, 16 chars)."""
    digest = hashlib.sha256(model.to_json().encode())
    for weights in model.get_weights():
        digest.update(np.ascontiguousarray(weights).tobytes())
    return digest.hexdigest()[:16]


def data_hash(x, y) -> str:
    """Hash of training / evaluation data (shapes, dtypes, values; hex, 16 chars): keys
    retrained models and optimizer studies."""
    digest = hashlib.sha256()
    for arr in (np.ascontiguousarray(np.asarray(x, dtype=np.float32)), np.ascontiguousarray(np.asarray(y))):
        digest.update(str(arr.shape).encode())
        digest.update(str(arr.dtype).encode())
        digest.update(arr.tobytes())
    return digest.hexdigest()[:16]


def data_fingerprint(x: np.ndarray, y: np.ndarray) -> str:
    """Hash of a campaign's inputs (float32) and labels (int64) (hex, 20 chars): keys
    campaign checkpoints."""
    digest = hashlib.sha256()
    digest.update(repr(x.shape).encode())
    digest.update(np.ascontiguousarray(x, dtype=np.float32).tobytes())
    digest.update(np.ascontiguousarray(y, dtype=np.int64).tobytes())
    return digest.hexdigest()[:20]
