"""Classes from a classifier's outputs: the one classification rule of fpga-ft.

A model with C > 1 outputs has C classes: the argmax (the same on logits and on
probabilities). A model with one output is a binary classifier: class 1 when the output is
above the threshold, which is 0 for logits (scores before a final sigmoid: what the csim
computes when the intake removed the model's sigmoid head, and what a model without one
outputs) and 0.5 for probabilities (a model ending in a sigmoid). :class:`OutputHead` says
which outputs a model or design has; ``fpga_ft.generate.modelio.output_head`` reads it from a
Keras model, ``Design.output_head`` from a design.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError

__all__ = ["OutputHead", "n_classes", "classify"]


def n_classes(n_outputs: int) -> int:
    """Classes of a classifier with ``n_outputs`` outputs (one output: binary, 2 classes)."""
    return 2 if int(n_outputs) == 1 else int(n_outputs)


@dataclass(frozen=True)
class OutputHead:
    """What a classifier's outputs are, and so how classes follow from them.

    Attributes:
        n_outputs: values per sample (C >= 1).
        logits: True for scores (no final softmax/sigmoid applied), False for probabilities.
    """

    n_outputs: int
    logits: bool = True

    def __post_init__(self):
        if isinstance(self.n_outputs, bool) or int(self.n_outputs) < 1:
            raise FpgaFtError(f"a classifier needs at least one output, got {self.n_outputs!r}")
        object.__setattr__(self, "n_outputs", int(self.n_outputs))
        object.__setattr__(self, "logits", bool(self.logits))

    @property
    def n_classes(self) -> int:
        """Classes: C, or 2 for one output."""
        return n_classes(self.n_outputs)

    @property
    def threshold(self) -> float:
        """One output: class 1 above this (0 for logits, 0.5 for probabilities)."""
        return 0.0 if self.logits else 0.5

    def classify(self, outputs) -> np.ndarray:
        """Predicted classes (N,) int64 of outputs (N, C) (or (N, ...) with C values per sample)."""
        outputs = np.asarray(outputs)
        outputs = outputs.reshape(len(outputs), -1)
        if outputs.shape[1] != self.n_outputs:
            raise FpgaFtError(f"outputs have {outputs.shape[1]} values per sample, expected {self.n_outputs}")
        if self.n_outputs == 1:
            return (outputs[:, 0] > self.threshold).astype(np.int64)
        return outputs.argmax(axis=1).astype(np.int64)

    def to_dict(self) -> dict:
        return {"n_outputs": self.n_outputs, "logits": self.logits}


def classify(outputs, *, logits: bool) -> np.ndarray:
    """Predicted classes (N,) of outputs (N, C): the argmax, or, when C = 1, ``output > 0``
    (``logits``) or ``output > 0.5`` (probabilities); see :class:`OutputHead`."""
    outputs = np.asarray(outputs)
    return OutputHead(int(np.prod(outputs.shape[1:], dtype=np.int64)), logits).classify(outputs)
