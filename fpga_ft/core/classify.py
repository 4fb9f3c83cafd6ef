"""Classes from a classifier's outputs, and how many classes a number of outputs means.

A model with one output is a binary classifier (its output thresholded at 0.5); a model
with C > 1 outputs has C classes (the argmax).
"""

from __future__ import annotations

import numpy as np

__all__ = ["n_classes", "classify"]


def n_classes(n_outputs: int) -> int:
    """Classes of a classifier with ``n_outputs`` outputs (one output: binary, 2 classes)."""
    return 2 if int(n_outputs) == 1 else int(n_outputs)


def classify(outputs: np.ndarray) -> np.ndarray:
    """Predicted classes (N,) of outputs (N, C): the argmax, or ``output > 0.5`` when C = 1."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > 0.5).astype(np.int64)
    return outputs.argmax(axis=1)
