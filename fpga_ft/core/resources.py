"""Resource figures of a design, whatever measured them: :class:`ResourceFigures` and the one
list of resource kinds, :data:`RESOURCE_KEYS`.

Units: ``LUT`` 6-input LUTs, ``FF`` flip-flops (registers), ``DSP`` DSP slices (DSP48E1/E2),
``BRAM_18K`` 18 Kb block RAMs (Vivado's 36 Kb tiles count twice), ``URAM`` 288 Kb UltraRAM
blocks; ``latency_cycles`` clock cycles. The fpga-ft estimate
(:func:`fpga_ft.measure.resources.estimate_resources`), the HLS C-synthesis report and the
Vivado utilization report (:func:`fpga_ft.measure.reports.read_project_report`) all give
their counts as a :class:`ResourceFigures`; a board (:class:`fpga_ft.core.boards.Board`)
states what it offers under the same keys.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from fpga_ft.core.errors import FpgaFtError

#: Resource kinds, in display order: what a board offers and what a design uses.
RESOURCE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K", "URAM")
#: The kinds the estimator models and the optimizer checks a design's fit on (the estimator
#: places no UltraRAM).
FIT_KEYS = tuple(key for key in RESOURCE_KEYS if key != "URAM")


@dataclass(frozen=True)
class ResourceFigures:
    """What one design uses: ``LUT``, ``FF``, ``DSP``, ``BRAM_18K`` and ``URAM`` counts (units in
    the module docstring), ``latency_cycles`` (clock cycles, ``None`` when the source states
    none) and ``source``: who measured them, ``"estimate"`` (the fpga-ft estimator),
    ``"csynth"`` (an HLS C-synthesis report), ``"vivado synthesis"`` / ``"vivado
    implementation"`` (a Vivado utilization report) or ``"report"`` (vendor reports
    completed by the estimate, as the optimizer costs a candidate).

    Counts must be non-negative integers (:class:`FpgaFtError` otherwise)."""

    LUT: int
    FF: int
    DSP: int
    BRAM_18K: int
    URAM: int = 0
    latency_cycles: int | None = None
    source: str = "estimate"

    def __post_init__(self) -> None:
        for key in RESOURCE_KEYS:
            value = getattr(self, key)
            try:
                valid = not isinstance(value, bool) and int(value) == value and value >= 0
            except (TypeError, ValueError):
                valid = False
            if not valid:
                raise FpgaFtError(f"resource figure {key} must be a non-negative integer, got {value!r}")
            object.__setattr__(self, key, int(value))
        if self.latency_cycles is not None:
            object.__setattr__(self, "latency_cycles", int(self.latency_cycles))

    @classmethod
    def from_counts(
        cls, counts: Mapping[str, Any], *, latency_cycles: int | None = None, source: str
    ) -> ResourceFigures:
        """Figures from a mapping with (some of) the :data:`RESOURCE_KEYS` (a missing or
        ``None`` count is 0)."""
        return cls(
            **{key: int(counts.get(key) or 0) for key in RESOURCE_KEYS}, latency_cycles=latency_cycles, source=source
        )

    def counts(self, keys: Sequence[str] = RESOURCE_KEYS) -> dict[str, int]:
        """``{kind: count}`` for ``keys`` (default every kind, in display order)."""
        return {key: getattr(self, key) for key in keys}

    def to_dict(self) -> dict:
        """JSON form: the five counts, ``latency_cycles`` and ``source``."""
        return {**self.counts(), "latency_cycles": self.latency_cycles, "source": self.source}

    def utilization(self, board: Any, keys: Sequence[str] = RESOURCE_KEYS) -> dict[str, float]:
        """Fraction (0..1, may exceed 1) of what ``board`` offers that this design uses, per kind
        of ``keys``.

        ``board`` is a :class:`~fpga_ft.core.boards.Board` or a mapping of counts; a kind the
        board lacks (0) gives ``0.0`` when unused and ``inf`` when used.
        """
        offered = getattr(board, "resources", board)
        out = {}
        for key in keys:
            used = getattr(self, key)
            available = float(offered.get(key, 0) or 0)
            out[key] = used / available if available > 0 else (0.0 if used == 0 else math.inf)
        return out


__all__ = ["FIT_KEYS", "RESOURCE_KEYS", "ResourceFigures"]
