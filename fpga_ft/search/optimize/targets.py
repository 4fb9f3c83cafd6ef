"""The target of a study (BER, accuracy drop, latency overhead) and a candidate's protection
(critical neurons and protected MSBs per layer).

Units: ``ber`` in faults per bit per inference; ``max_accuracy_drop`` and
``max_latency_overhead`` as fractions (0.01 = 1 percentage point, 0.10 = 10 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Mapping

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import parse_ber, parse_sites

CONSTRAINT_NAMES = ("accuracy", "latency", "fit")


@dataclass(frozen=True)
class Target:
    """The reliability / performance target of a study.

    ``ber``: faults per bit per inference; ``max_accuracy_drop``: allowed accuracy loss vs the
    clean (fault-free) unprotected design, as a fraction (0.01 = 1 percentage point), checked
    on the campaign's lower confidence bound; ``max_latency_overhead``: allowed latency
    increase vs the unprotected design, fraction."""

    ber: float
    max_accuracy_drop: float = 0.01
    max_latency_overhead: float = 0.10
    sites: tuple = ("weights", "activations", "products", "accumulators")

    def __post_init__(self):
        object.__setattr__(self, "ber", parse_ber(self.ber))
        object.__setattr__(self, "sites", parse_sites(self.sites))
        if not 0.0 <= float(self.max_accuracy_drop) <= 1.0:
            raise FpgaFtError(f"max accuracy drop must be in [0, 1] (fraction), got {self.max_accuracy_drop}")
        if not float(self.max_latency_overhead) >= 0.0:
            raise FpgaFtError(f"max latency overhead must be >= 0 (fraction), got {self.max_latency_overhead}")

    def to_dict(self) -> dict:
        return {"ber": self.ber, "max_accuracy_drop": float(self.max_accuracy_drop),
                "max_latency_overhead": float(self.max_latency_overhead), "sites": list(self.sites),
                "ber_units": "faults per bit per inference"}


@dataclass(frozen=True)
class ProtectionSpec:
    """Architecture + circuit knobs: per layer the number of critical neurons (the top of the
    vulnerability ranking) and ``protected_msbs``."""

    critical: Mapping[str, int] = field(default_factory=dict)
    msbs: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"critical": {k: int(v) for k, v in self.critical.items()},
                "msbs": {k: int(v) for k, v in self.msbs.items()}}

    @classmethod
    def uniform(cls, layers, msbs: int = 0, fraction: float = 0.0) -> "ProtectionSpec":
        return cls({i.name: int(math.ceil(fraction * i.n_out - 1e-9)) for i in layers},
                   {i.name: int(msbs) for i in layers})


def fmt_ber(ber: float) -> str:
    """A BER for people: 0.0001 -> '1e-4', 0.00025 -> '2.5e-4', 0 -> '0'."""
    if not ber:
        return "0"
    mantissa, exponent = f"{float(ber):e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent)}"
