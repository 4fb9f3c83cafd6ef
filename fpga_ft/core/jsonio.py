"""JSON for fpga-ft's results: the ``default`` hook that ``json.dumps`` uses everywhere
(``--json`` output of the commands, the optimizer's stored settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

__all__ = ["json_default"]


def json_default(value):
    """``json.dumps`` default for numpy scalars/arrays, paths and objects with ``to_dict``."""
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    if hasattr(value, "to_dict"):
        return value.to_dict()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
