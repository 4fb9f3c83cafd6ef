"""The fault model of fpga-ft's C-simulation fault injection, and its exposure counts.

Units and semantics (the C++ side is ``hls_templates/fpgaft_runtime.h``):

* **BER** (bit error rate) = the probability that a given stored bit flips, per bit, per
  inference. Bits flip independently of each other and of earlier inferences.
* **Sites** (where bits are exposed):

  - ``weights``: every weight and bias word of every Dense/Conv layer (plus the private
    weight copies of critical neurons); flips are drawn once per inference per layer.
  - ``activations``: the input words of every Dense/Conv layer.
  - ``products``: every product word (``accum_t`` width) of every dot product.
  - ``accumulators``: every partial-sum word (``accum_t`` width) of every dot product.

* The exposed bits of every dot product are the nodes of its protection structure
  (:mod:`fpga_ft.core.structure`): products of non-zero weights and one partial sum per term
  after the first. ``protected_msbs: k`` (BitTMR): a product exposes W + 2k bits (replica
  0's word, lanes 1 and 2's top k bits), a partial sum W + 2k + 1 (its single low bits,
  three lanes, the shared carry), each neuron its k-bit output voter. A protected bit whose
  lanes are each wrong with probability q fails with probability 3q^2 - 2q^3 (two or
  three lanes wrong at the next vote); low bits, carries and output voters are single
  nodes (unmasked). A critical neuron computes three full replicas of its dot product
  (each replica with its own weight copy), voted at the output by one W-bit voter.
* **Modes**: ``transient`` (every flip lasts one inference) or ``persistent`` (weight
  flips accumulate from inference to inference until a scrub every ``scrub_interval``
  inferences restores the pristine weights; activations, products and partial sums are
  recomputed every inference, so their faults are transient in both modes).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.exposure import exposed_bits as count_bits

__all__ = [
    "SITES", "MODES", "FaultModel", "parse_sites", "parse_ber", "protected_bit_failure_probability",
    "protected_bit_masked_probability", "exposed_bits", "expected_flips",
]

#: The fault sites, in the order of the C++ runtime's ``Site`` enum (``hls_templates/fpgaft_runtime.h``).
SITES = ("weights", "activations", "products", "accumulators")
MODES = ("transient", "persistent")
DEFAULT_SCRUB_INTERVAL = 100
BER_UNITS = "faults per bit per inference"


def parse_ber(value) -> float:
    """A BER as a float in [0, 1] (``value`` may be a number or a string like ``"1e-4"``)."""
    try:
        ber = float(value)
    except (TypeError, ValueError):
        raise FpgaFtError(f"BER must be a number in [0, 1], got {value!r}") from None
    if not (0.0 <= ber <= 1.0):  # also rejects NaN
        raise FpgaFtError(f"BER must be in [0, 1], got {value}")
    return ber


def parse_sites(value) -> tuple[str, ...]:
    """Fault sites from ``"weights,activations"``, ``"all"`` or an iterable of names.

    Returns the sites in the canonical order of :data:`SITES`, without duplicates."""
    if value is None:
        return SITES
    if isinstance(value, str):
        names = [part.strip().lower() for part in value.split(",")]
    else:
        try:
            names = [str(part).strip().lower() for part in value]
        except TypeError:
            raise FpgaFtError(f"fault sites must be a comma-separated string or a list, got {value!r}") from None
    names = [name for name in names if name]
    if not names:
        raise FpgaFtError(f"no fault site given (valid: {', '.join(SITES)})")
    if "all" in names:
        return SITES
    unknown = [name for name in names if name not in SITES]
    if unknown:
        raise FpgaFtError(f"unknown fault site '{unknown[0]}' (valid: {', '.join(SITES)}, or all)")
    return tuple(site for site in SITES if site in names)


@dataclass(frozen=True)
class FaultModel:
    """One fault model: BER (faults per bit per inference), sites, mode, scrub interval.

    Attributes:
        ber: probability that a given exposed bit flips, per bit, per inference, in [0, 1].
        sites: subset of :data:`SITES` exposed to faults (canonical order).
        mode: ``transient`` or ``persistent`` (weight flips accumulate until a scrub).
        scrub_interval: inferences between weight scrubs in persistent mode (0: scrub
            only at the start of every pass over the data set; ignored when transient).
    """

    ber: float
    sites: tuple = SITES
    mode: str = "transient"
    scrub_interval: int = DEFAULT_SCRUB_INTERVAL

    def __post_init__(self):
        object.__setattr__(self, "ber", parse_ber(self.ber))
        object.__setattr__(self, "sites", parse_sites(self.sites))
        mode = str(self.mode).strip().lower()
        if mode not in MODES:
            raise FpgaFtError(f"unknown fault mode '{self.mode}' (valid: {', '.join(MODES)})")
        object.__setattr__(self, "mode", mode)
        interval = self.scrub_interval
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval != int(interval) \
                or interval < 0:
            raise FpgaFtError(f"scrub interval must be an integer >= 0 (inferences), got {interval!r}")
        object.__setattr__(self, "scrub_interval", int(interval))

    @property
    def persistent(self) -> bool:
        return self.mode == "persistent"

    def bers(self) -> tuple[float, ...]:
        """Per-site BERs in the order of :data:`SITES` (0 for sites not exposed), the
        argument of :meth:`fpga_ft.simulate.csim.CsimLibrary.configure`."""
        return tuple(self.ber if site in self.sites else 0.0 for site in SITES)

    def with_ber(self, ber: float) -> "FaultModel":
        return FaultModel(ber=ber, sites=self.sites, mode=self.mode, scrub_interval=self.scrub_interval)

    def to_dict(self) -> dict:
        return {"ber": self.ber, "sites": list(self.sites), "mode": self.mode,
                "scrub_interval": self.scrub_interval, "ber_units": BER_UNITS}

    @classmethod
    def from_dict(cls, data: Mapping) -> "FaultModel":
        if not isinstance(data, Mapping) or "ber" not in data:
            raise FpgaFtError("malformed fault model: expected a mapping with at least 'ber'")
        unknown = set(data) - {"ber", "sites", "mode", "scrub_interval", "ber_units"}
        if unknown:
            raise FpgaFtError(f"malformed fault model: unknown key(s) {sorted(unknown)}")
        return cls(ber=data["ber"], sites=data.get("sites", SITES), mode=data.get("mode", "transient"),
                   scrub_interval=data.get("scrub_interval", DEFAULT_SCRUB_INTERVAL))

    def describe(self) -> str:
        text = f"BER {self.ber:g} ({BER_UNITS}) on {', '.join(self.sites)}, {self.mode}"
        if self.persistent:
            text += f", scrub every {self.scrub_interval} inferences" if self.scrub_interval else ", no scrub"
        return text


def protected_bit_failure_probability(p: float) -> float:
    """Probability that a TMR-protected bit is wrong after the 2-of-3 vote when each of
    its three lanes is wrong independently with probability ``p``: 3p^2 - 2p^3. (The
    shared carry and the output voter of a BitTMR word are single nodes: see
    :func:`fpga_ft.core.structure.word_failure_probability` for a whole partial sum.)"""
    p = float(p)
    return 3.0 * p * p - 2.0 * p ** 3


def protected_bit_masked_probability(p: float) -> float:
    """Probability that exactly one replica of a protected bit flips (the voter masks
    that flip; the runtime counts it in ``masked``): 3p(1-p)^2."""
    p = float(p)
    return 3.0 * p * (1.0 - p) ** 2


def exposed_bits(layers: Iterable, plan=None) -> dict[str, int]:
    """Bits exposed to faults per inference at each site (see :mod:`fpga_ft.core.exposure`,
    which mirrors the exposure order of the C++ runtime). The expected number of flips at
    a site over ``n`` inferences is BER * bits * n."""
    return count_bits(list(layers), plan)


def expected_flips(fault_model: FaultModel, layers: Iterable, plan=None, inferences: int = 1) -> dict[str, float]:
    """Expected flips drawn at each site over ``inferences`` inferences."""
    bits = exposed_bits(layers, plan)
    bers = dict(zip(SITES, fault_model.bers()))
    return {site: bers[site] * bits[site] * inferences for site in SITES}
