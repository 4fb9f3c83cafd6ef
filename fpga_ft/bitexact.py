"""Comparing C-simulation outputs with the QKeras model: the bit-exactness contract."""

from __future__ import annotations

import numpy as np


def compare_outputs(csim: np.ndarray, reference: np.ndarray, labels: np.ndarray | None = None) -> dict:
    """Share of samples whose csim output equals the reference exactly (every value),
    the largest absolute difference, and both top-1 accuracies when labels are given."""
    reference = np.asarray(reference)
    csim = np.asarray(csim, dtype=reference.dtype).reshape(reference.shape)
    n = len(reference)
    same = np.all(csim.reshape(n, -1) == reference.reshape(n, -1), axis=1)
    result = {
        "bit_exact_fraction": float(np.mean(same)),
        "max_abs_difference": float(np.max(np.abs(csim.astype(float) - reference.astype(float)))) if n else 0.0,
        "csim_accuracy": None,
        "reference_accuracy": None,
    }
    if labels is not None:
        result["csim_accuracy"] = float(np.mean(csim.reshape(n, -1).argmax(1) == labels))
        result["reference_accuracy"] = float(np.mean(reference.reshape(n, -1).argmax(1) == labels))
    return result
