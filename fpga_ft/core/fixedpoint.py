"""hls4ml / Vivado fixed-point type strings, and quantizing data to them exactly.

``parse_type("ap_fixed<16,6,AP_RND,AP_SAT>")`` reads the type strings hls4ml configs carry
(``ap_fixed``, ``ap_ufixed``, ``ap_int``, ``ap_uint`` and hls4ml's short forms ``fixed``,
``ufixed``, ``int``, ``uint``; quantization and overflow modes with or without the ``AP_``
prefix). ``quantize`` maps float data to the values such a type holds, as the C++
conversion ``ap_fixed<...>(double)`` does: rounding of the bits below the LSB (default
``AP_TRN``, towards minus infinity; ``ap_int`` / ``ap_uint`` truncate towards zero, as C++
converts a double to an integer) then overflow handling (default ``AP_WRAP``, two's
complement wrap-around). :func:`quantized_bits_repr` names the QKeras quantizer whose output
set is that type's (used to mark a model's input as quantized without changing the values);
the quantizer itself is made by :func:`fpga_ft.generate.intake.quantized_bits_for` (QKeras
is imported in the generate stage only).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from fpga_ft.core.errors import FpgaFtError

#: Vivado quantization (rounding) modes, applied to the bits below the LSB.
ROUNDING_MODES = ("TRN", "TRN_ZERO", "RND", "RND_ZERO", "RND_MIN_INF", "RND_INF", "RND_CONV")
#: Vivado overflow modes (AP_WRAP_SM is not supported).
SATURATION_MODES = ("WRAP", "SAT", "SAT_ZERO", "SAT_SYM")

_TYPE_RE = re.compile(r"^\s*(ap_)?(fixed|ufixed|int|uint)\s*<\s*([^<>]*)>\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class FixedSpec:
    """One fixed-point type: ``width`` bits, ``integer`` of them above the binary point
    (including the sign bit when ``signed``), with its rounding and overflow modes."""

    width: int
    integer: int
    signed: bool = True
    rounding: str = "TRN"
    saturation: str = "WRAP"

    @property
    def fractional(self) -> int:
        return self.width - self.integer

    @property
    def lsb(self) -> float:
        return 2.0 ** -self.fractional

    @property
    def min_value(self) -> float:
        low = -(2.0 ** (self.integer - 1)) if self.signed else 0.0
        if self.signed and self.saturation == "SAT_SYM":
            low += self.lsb
        return low

    @property
    def max_value(self) -> float:
        top = self.integer - 1 if self.signed else self.integer
        return 2.0 ** top - self.lsb

    def c_type(self) -> str:
        """The Vivado spelling, e.g. ``ap_fixed<16,6>`` or ``ap_ufixed<8,0,AP_RND,AP_SAT>``."""
        if self.integer == self.width and self.rounding == "TRN_ZERO" and self.saturation == "WRAP":
            return f"ap_int<{self.width}>" if self.signed else f"ap_uint<{self.width}>"
        base = "ap_fixed" if self.signed else "ap_ufixed"
        modes = ""
        if self.rounding != "TRN" or self.saturation != "WRAP":
            modes = f",AP_{self.rounding}" + ("" if self.saturation == "WRAP" else f",AP_{self.saturation}")
        return f"{base}<{self.width},{self.integer}{modes}>"

    def __str__(self) -> str:
        return self.c_type()


def parse_type(text: str, what: str = "precision") -> FixedSpec:
    """Parse an hls4ml / Vivado fixed-point or integer type string (one-line error otherwise)."""
    if not isinstance(text, str):
        raise FpgaFtError(f"{what}: expected a type string such as 'ap_fixed<16,6>', got {text!r}")
    match = _TYPE_RE.match(text)
    if match is None:
        raise FpgaFtError(f"{what}: cannot read type {text!r} (expected ap_fixed<W,I[,Q[,O]]>, ap_ufixed<...>, "
                          "ap_int<W> or ap_uint<W>)")
    kind = match.group(2).lower()
    args = [a.strip() for a in match.group(3).split(",")]
    signed = kind in ("fixed", "int")
    try:
        width = int(args[0])
        if kind in ("int", "uint"):  # C++ converts a double to an integer towards zero
            if len(args) != 1:
                raise ValueError
            integer, modes = width, ["TRN_ZERO"]
        else:
            if len(args) < 2:
                raise ValueError
            integer, modes = int(args[1]), args[2:]
    except ValueError:
        raise FpgaFtError(f"{what}: cannot read type {text!r} (expected ap_fixed<W,I[,Q[,O]]>, ap_int<W>)") from None
    if width < 1 or width > 128:
        raise FpgaFtError(f"{what}: width of {text!r} must be between 1 and 128 bits")
    rounding, saturation = "TRN", "WRAP"
    if len(modes) > 3:
        raise FpgaFtError(f"{what}: too many parameters in {text!r}")
    if modes:
        rounding = _mode(modes[0], ROUNDING_MODES, text, what, "quantization")
    if len(modes) > 1:
        saturation = _mode(modes[1], SATURATION_MODES, text, what, "overflow")
    if len(modes) > 2:
        try:
            n_bits = int(modes[2])
        except ValueError:
            raise FpgaFtError(f"{what}: saturation bits of {text!r} must be an integer") from None
        if n_bits != 0:
            raise FpgaFtError(f"{what}: {text!r}: saturation bits N != 0 are not supported")
    return FixedSpec(width=width, integer=integer, signed=signed, rounding=rounding, saturation=saturation)


def _mode(token: str, known: tuple, text: str, what: str, kind: str) -> str:
    name = token.strip().upper()
    if name.startswith("AP_"):
        name = name[3:]
    if name not in known:
        raise FpgaFtError(f"{what}: unsupported {kind} mode {token!r} in {text!r} "
                          f"(supported: {', '.join('AP_' + k for k in known)})")
    return name


def _round(v: np.ndarray, mode: str) -> np.ndarray:
    """Integer-valued float64 from v (float64, in LSB units) with a Vivado rounding mode."""
    if mode == "TRN":
        return np.floor(v)
    if mode == "TRN_ZERO":
        return np.trunc(v)
    if mode == "RND":  # half towards +inf
        return np.floor(v + 0.5)
    if mode == "RND_MIN_INF":  # half towards -inf
        return np.ceil(v - 0.5)
    if mode == "RND_ZERO":  # half towards zero
        return np.where(v >= 0, np.ceil(v - 0.5), np.floor(v + 0.5))
    if mode == "RND_INF":  # half away from zero
        return np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))
    if mode == "RND_CONV":  # half to even
        return np.rint(v)
    raise FpgaFtError(f"unsupported rounding mode {mode}")  # pragma: no cover - parse_type checks


def quantize(x, spec: FixedSpec) -> np.ndarray:
    """Values of ``spec`` that ``spec(x)`` holds (float64, same shape), as ap_fixed converts a
    double: round the bits below the LSB with ``spec.rounding``, then handle overflow with
    ``spec.saturation``. Exact for widths up to 53 bits."""
    if spec.width > 53:
        raise FpgaFtError(f"cannot quantize data to {spec.c_type()}: wider than 53 bits")
    v = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(v)):
        raise FpgaFtError("cannot quantize non-finite input values (NaN or inf)")
    f = spec.fractional
    r = _round(np.ldexp(v, f), spec.rounding)  # integer codes (exact: scaling by 2^f)
    lo = -(2.0 ** (spec.width - 1)) if spec.signed else 0.0
    hi = (2.0 ** (spec.width - 1) if spec.signed else 2.0 ** spec.width) - 1.0
    if spec.saturation == "WRAP":
        span = 2.0 ** spec.width
        r = np.mod(r - lo, span) + lo  # exact on integer-valued floats
    elif spec.saturation == "SAT":
        r = np.clip(r, lo, hi)
    elif spec.saturation == "SAT_SYM":
        r = np.clip(r, -hi if spec.signed else lo, hi)
    elif spec.saturation == "SAT_ZERO":
        r = np.where((r < lo) | (r > hi), 0.0, r)
    return np.ldexp(r, -f)


def quantize_float32(x, spec: FixedSpec, what: str = "input") -> np.ndarray:
    """:func:`quantize` returned as float32 (what models and the csim bridge take); a one-line
    error when a quantized value is not exactly a float32 (types wider than 24 bits)."""
    q = quantize(x, spec)
    out = q.astype(np.float32)
    if not np.array_equal(out.astype(np.float64), q):
        raise FpgaFtError(f"{what} type {spec.c_type()} has values float32 cannot hold exactly "
                          "(fpga-ft feeds float32 inputs: use at most 24 bits)")
    return out


def _qkeras_bits(spec: FixedSpec) -> tuple[int, int]:
    """(bits, integer) of the quantized_bits for ``spec``. QKeras needs integer >= 0: a type
    with fewer integer bits gets a wider quantizer with the same LSB (a superset of its
    values, so still the identity on data quantized to ``spec``)."""
    integer = spec.integer - 1 if spec.signed else spec.integer
    if integer >= 0:
        return spec.width, integer
    return spec.width - integer, 0


def quantized_bits_repr(spec: FixedSpec) -> str:
    bits, integer = _qkeras_bits(spec)
    return f"quantized_bits({bits}, {integer}, alpha=1" + ("" if spec.signed else ", keep_negative=False") + ")"
