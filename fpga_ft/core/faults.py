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
* **Modes** (of the weight memory; activations, products and partial sums are recomputed
  every inference, so their faults are transient in every mode):

  - ``transient``: every weight flip lasts one inference (BER per bit per inference).
  - ``accumulate`` (alias ``persistent``): new flips at the BER every inference, kept until
    a scrub every ``scrub_interval`` inferences; after i inferences a bit is flipped with
    probability (1 - (1 - 2p)^i) / 2 (:func:`accumulated_flip_probability`).
  - ``latched``: each bit is upset with probability p (the BER, per bit per scrub interval)
    once at the start of every scrub interval and held for the interval (configuration
    memory upsets until a scrub; FKeras's model of flipped weights). Each interval is one
    *device* (one fault pattern).
  - ``stuck-at``: like ``latched``, but each fault forces its bit to 0 or 1 (drawn per fault,
    equally likely): a permanent defect; each interval is one device.

* **Multi-bit upsets** (``mbu``): a flip event flips SIZE adjacent bits of its word with the
  given probability (the BER is then the rate of events per bit).
* **Upset rates** (:class:`UpsetRate`): a rate per bit per second with an inference rate and a
  scrub period gives the BER (:meth:`UpsetRate.ber`): per inference for transient and
  accumulate, per scrub interval for latched and stuck-at.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Iterable, Mapping

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.exposure import exposed_bits as count_bits

__all__ = [
    "SITES", "MODES", "FaultModel", "parse_sites", "parse_ber", "protected_bit_failure_probability",
    "protected_bit_masked_probability", "exposed_bits", "expected_flips", "UpsetRate", "parse_mbu",
    "accumulated_flip_probability", "WEIGHT_MODES", "HELD_MODES",
]

#: The fault sites, in the order of the C++ runtime's ``Site`` enum (``hls_templates/fpgaft_runtime.h``).
SITES = ("weights", "activations", "products", "accumulators")
#: Weight fault modes, in the order of the C++ runtime's ``State::weight_mode``.
WEIGHT_MODES = ("transient", "accumulate", "latched", "stuck-at")
#: Modes whose weight faults are drawn once per scrub interval and held (each interval a device).
HELD_MODES = ("latched", "stuck-at")
#: Accepted names: the weight modes and ``persistent`` (the former name of ``accumulate``).
MODES = (*WEIGHT_MODES, "persistent")
MODE_ALIASES = {"persistent": "accumulate", "stuck_at": "stuck-at", "stuckat": "stuck-at"}
DEFAULT_SCRUB_INTERVAL = 100
BER_UNITS = "faults per bit per inference"
HELD_BER_UNITS = "faults per bit per scrub interval"
MAX_BURST = 16  # the runtime's MAX_BURST: the largest multi-bit upset (adjacent bits)


def accumulated_flip_probability(p: float, inferences: int) -> float:
    """Probability that a bit is flipped after ``inferences`` inferences of ``accumulate``
    mode at BER ``p`` (each inference flips it with probability p; an even number of flips
    restores it): (1 - (1 - 2p)^i) / 2, which tends to 1/2."""
    return (1.0 - (1.0 - 2.0 * float(p)) ** int(inferences)) / 2.0


def parse_mbu(value) -> tuple[tuple[int, float], ...]:
    """Multi-bit upsets from ``"2:0.1,3:0.01"`` (SIZE:PROB, SIZE adjacent bits of one word,
    2 <= SIZE <= 16; PROB the probability that a flip event is that burst; the rest are
    single-bit flips) or pairs; ``None``/empty: single bits only. Sorted by size."""
    if value is None or value == "" or value == ():
        return ()
    items = value.split(",") if isinstance(value, str) else list(value)
    pairs: dict[int, float] = {}
    for item in items:
        try:
            size_text, prob_text = item.split(":") if isinstance(item, str) else item
            size, prob = int(size_text), float(prob_text)
        except (TypeError, ValueError):
            raise FpgaFtError(f"multi-bit upset must be SIZE:PROB (e.g. 2:0.1), got {item!r}") from None
        if not 2 <= size <= MAX_BURST:
            raise FpgaFtError(f"multi-bit upset size must be in 2..{MAX_BURST} bits, got {size}")
        if not 0.0 <= prob <= 1.0 or size in pairs:
            raise FpgaFtError(f"multi-bit upset {size}:{prob}: probability must be in [0, 1], each size once")
        pairs[size] = prob
    if sum(pairs.values()) > 1.0 + 1e-12:
        raise FpgaFtError(f"multi-bit upset probabilities add up to {sum(pairs.values()):g} > 1")
    return tuple(sorted(pairs.items()))


def _positive(name: str, value) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise FpgaFtError(f"{name} must be a number > 0, got {value!r}") from None
    if not number > 0.0 or number == float("inf"):
        raise FpgaFtError(f"{name} must be a number > 0, got {value}")
    return number


@dataclass(frozen=True)
class UpsetRate:
    """An upset rate and the time scale that turns it into a BER.

    Attributes:
        rate: upsets per bit per second (e.g. 1e-13 for SRAM at sea level; more in orbit).
        inference_rate: inferences per second the device runs.
        scrub_period: seconds between scrubs (latched, stuck-at, accumulate; each period is
            one device in the held modes); None for transient.
    """

    rate: float
    inference_rate: float
    scrub_period: float | None = None

    def __post_init__(self):
        if not 0.0 <= float(self.rate) < float("inf"):
            raise FpgaFtError(f"upset rate must be >= 0 (upsets per bit per second), got {self.rate}")
        object.__setattr__(self, "rate", float(self.rate))
        object.__setattr__(self, "inference_rate", _positive("inference rate (inferences/s)", self.inference_rate))
        if self.scrub_period is not None:
            object.__setattr__(self, "scrub_period", _positive("scrub period (s)", self.scrub_period))

    def ber(self, mode: str) -> float:
        """Probability that a bit is upset (Poisson: 1 - exp(-rate t)) per inference
        (t = 1 / inference rate; transient, accumulate) or per scrub interval (t = scrub
        period; latched, stuck-at)."""
        mode = MODE_ALIASES.get(mode, mode)
        if mode in HELD_MODES:
            if self.scrub_period is None:
                raise FpgaFtError(f"{mode} mode with an upset rate needs a scrub period (--scrub-period, s)")
            return -math.expm1(-self.rate * self.scrub_period)
        return -math.expm1(-self.rate / self.inference_rate)

    def scrub_interval(self) -> int | None:
        """Inferences per scrub period (rounded, >= 1), or None without a scrub period."""
        if self.scrub_period is None:
            return None
        return max(1, round(self.scrub_period * self.inference_rate))

    def to_dict(self, mode: str) -> dict:
        mode = MODE_ALIASES.get(mode, mode)
        return {"upset_rate": self.rate, "upset_rate_units": "upsets per bit per second",
                "inference_rate": self.inference_rate, "scrub_period": self.scrub_period,
                "ber_per": "scrub interval" if mode in HELD_MODES else "inference"}

    @classmethod
    def from_dict(cls, data: Mapping) -> "UpsetRate":
        return cls(rate=data["upset_rate"], inference_rate=data["inference_rate"],
                   scrub_period=data.get("scrub_period"))


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
    """One fault model: BER, sites, weight mode, scrub interval, multi-bit upsets.

    Attributes:
        ber: probability that a given exposed bit is upset, in [0, 1]: per bit per inference
            (transient, accumulate), per bit per scrub interval for the weights of the held
            modes (latched, stuck-at; the other sites stay per inference).
        sites: subset of :data:`SITES` exposed to faults (canonical order).
        mode: one of :data:`WEIGHT_MODES` (``persistent`` is read as ``accumulate``).
        scrub_interval: inferences between weight scrubs (accumulate, latched, stuck-at: the
            inferences of one device); 0: one scrub at the start of every pass over the data
            set (held modes: one device per pass). Ignored when transient.
        mbu: multi-bit upsets, ``((size, probability), ...)`` (:func:`parse_mbu`).
        upset_rate: the upset rate the BER was derived from (None: the BER was given).
    """

    ber: float
    sites: tuple = SITES
    mode: str = "transient"
    scrub_interval: int = DEFAULT_SCRUB_INTERVAL
    mbu: tuple = ()
    upset_rate: UpsetRate | None = None

    def __post_init__(self):
        object.__setattr__(self, "ber", parse_ber(self.ber))
        object.__setattr__(self, "sites", parse_sites(self.sites))
        mode = str(self.mode).strip().lower()
        mode = MODE_ALIASES.get(mode, mode)
        if mode not in WEIGHT_MODES:
            raise FpgaFtError(f"unknown fault mode '{self.mode}' (valid: {', '.join(MODES)})")
        object.__setattr__(self, "mode", mode)
        interval = self.scrub_interval
        if isinstance(interval, bool) or not isinstance(interval, (int, float)) or interval != int(interval) \
                or interval < 0:
            raise FpgaFtError(f"scrub interval must be an integer >= 0 (inferences), got {interval!r}")
        object.__setattr__(self, "scrub_interval", int(interval))
        object.__setattr__(self, "mbu", parse_mbu(self.mbu))
        if self.upset_rate is not None and not isinstance(self.upset_rate, UpsetRate):
            raise FpgaFtError(f"upset_rate must be an UpsetRate, got {type(self.upset_rate).__name__}")

    @classmethod
    def from_upset_rate(cls, rate: UpsetRate, sites=SITES, mode: str = "transient",
                        scrub_interval: int | None = None, mbu=()) -> "FaultModel":
        """The fault model of an upset rate: BER from :meth:`UpsetRate.ber`, the scrub
        interval from the scrub period (inferences per period) unless given."""
        interval = rate.scrub_interval() if scrub_interval is None else scrub_interval
        return cls(ber=rate.ber(mode), sites=sites, mode=mode,
                   scrub_interval=DEFAULT_SCRUB_INTERVAL if interval is None else interval, mbu=mbu,
                   upset_rate=rate)

    @property
    def persistent(self) -> bool:
        """Weight faults outlive an inference (every mode but transient)."""
        return self.mode != "transient"

    @property
    def held(self) -> bool:
        """Weight faults are drawn once per scrub interval and held: each interval is a device."""
        return self.mode in HELD_MODES

    @property
    def weight_mode(self) -> int:
        """The runtime's weight mode number (index in :data:`WEIGHT_MODES`)."""
        return WEIGHT_MODES.index(self.mode)

    def bers(self) -> tuple[float, ...]:
        """Per-site BERs in the order of :data:`SITES` (0 for sites not exposed), the
        argument of :meth:`fpga_ft.simulate.csim.CsimLibrary.configure`. In the held modes
        with an upset rate, the sites other than the weights (recomputed every inference)
        get the rate's per-inference BER; given a BER, every site gets it."""
        other = self.upset_rate.ber("transient") if self.held and self.upset_rate is not None else self.ber
        return tuple((self.ber if site == "weights" else other) if site in self.sites else 0.0 for site in SITES)

    def with_ber(self, ber: float) -> "FaultModel":
        return FaultModel(ber=ber, sites=self.sites, mode=self.mode, scrub_interval=self.scrub_interval,
                          mbu=self.mbu)

    def to_dict(self) -> dict:
        data = {"ber": self.ber, "sites": list(self.sites), "mode": self.mode,
                "scrub_interval": self.scrub_interval,
                "ber_units": HELD_BER_UNITS if self.held else BER_UNITS}
        if self.mbu:  # only when given: the JSON (and campaign keys) of single-bit models are unchanged
            data["mbu"] = [list(pair) for pair in self.mbu]
        if self.upset_rate is not None:
            data["ber_source"] = self.upset_rate.to_dict(self.mode)
        return data

    @classmethod
    def from_dict(cls, data: Mapping) -> "FaultModel":
        if not isinstance(data, Mapping) or "ber" not in data:
            raise FpgaFtError("malformed fault model: expected a mapping with at least 'ber'")
        unknown = set(data) - {"ber", "sites", "mode", "scrub_interval", "ber_units", "mbu", "ber_source"}
        if unknown:
            raise FpgaFtError(f"malformed fault model: unknown key(s) {sorted(unknown)}")
        source = data.get("ber_source")
        return cls(ber=data["ber"], sites=data.get("sites", SITES), mode=data.get("mode", "transient"),
                   scrub_interval=data.get("scrub_interval", DEFAULT_SCRUB_INTERVAL),
                   mbu=tuple(tuple(pair) for pair in data.get("mbu", ())),
                   upset_rate=UpsetRate.from_dict(source) if source else None)

    def describe(self) -> str:
        units = HELD_BER_UNITS + " for weights" if self.held else BER_UNITS
        text = f"BER {self.ber:g} ({units}) on {', '.join(self.sites)}, {self.mode}"
        if self.persistent:
            every = "device" if self.held else "scrub"
            text += f", {every} every {self.scrub_interval} inferences" if self.scrub_interval \
                else f", {every} every pass"
        if self.mbu:
            text += ", MBU " + ",".join(f"{size}:{prob:g}" for size, prob in self.mbu)
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
