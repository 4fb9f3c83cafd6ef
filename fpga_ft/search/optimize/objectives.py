"""Optimizer objectives: the one number a study minimises (registry).

An objective maps a candidate's *figures* to a float, lower is better. The figures
(:data:`FIGURE_KEYS`) are ``LUT`` (6-input LUTs), ``FF`` (flip-flops), ``DSP`` (DSP48 slices),
``BRAM_18K`` (18 Kb block RAMs) and ``latency_cycles`` (clock cycles), from the vendor reports
when a design has them, else from the estimator. Built in:

* ``LUT`` (the default), ``FF``, ``DSP``, ``BRAM_18K``: that resource count;
* ``weighted:LUT=1,DSP=100,FF=0.5``: a weighted sum of figures (any of :data:`FIGURE_KEYS`);
* ``module:function``: a user function ``f(figures: Mapping[str, float]) -> float``, imported
  with :mod:`importlib` (an attribute ``unit`` on the function names its unit); the module may
  also hold an :class:`Objective`.

A new named objective::

    from fpga_ft.search.optimize.objectives import register_objective

    @register_objective("LUT+FF", unit="cells")
    def lut_plus_ff(figures):
        return figures["LUT"] + figures["FF"]

after which ``fpga-ft optimize --objective LUT+FF`` (and ``compare``) minimise it. The
objective's name is part of the study's settings and default name (unless it is the default
``LUT``, so that existing studies continue), so results of different objectives never mix.
The objective value of a completed trial is its first Optuna value.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from fpga_ft.core.errors import FpgaFtError

#: Figures an objective may use (units in the module docstring).
FIGURE_KEYS = ("LUT", "FF", "DSP", "BRAM_18K", "latency_cycles")
DEFAULT_OBJECTIVE = "LUT"
WEIGHTED_PREFIX = "weighted:"


@dataclass(frozen=True)
class Objective:
    """One optimizer objective.

    Attributes:
        name: how ``--objective`` names it (and the study records it).
        unit: unit of its value (e.g. ``"LUT"``, ``"DSP"``, ``"weighted resources"``).
        value: figures (``{key: float}`` for the keys of :data:`FIGURE_KEYS` a candidate
            has) -> value, lower is better.
    """

    name: str
    unit: str
    value: Callable[[Mapping[str, float]], float]

    def of(self, entry: Any) -> float:
        """The objective value of an evaluation entry, a baseline, a per-layer row or a
        resource estimate (:func:`figures_of`). A value that is not a finite number is an
        error (one line)."""
        try:
            result = float(self.value(figures_of(entry)))
        except KeyError as exc:
            raise FpgaFtError(f"objective '{self.name}' needs figure {exc} (known: {', '.join(FIGURE_KEYS)})") from None
        except (TypeError, ValueError) as exc:
            raise FpgaFtError(f"objective '{self.name}' did not return a number: {exc}") from None
        if not math.isfinite(result):
            raise FpgaFtError(f"objective '{self.name}' returned {result} (a finite number is needed)")
        return result

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_OBJECTIVE

    @property
    def label(self) -> str:
        """``"<name> (minimise)"``, as the result JSON's ``objective`` lists it."""
        return f"{self.name} (minimise)"


#: Registered objectives by name, in registration order.
OBJECTIVES: dict[str, Objective] = {}


def register_objective(
    name: str, value: Callable[[Mapping[str, float]], float] | None = None, *, unit: str | None = None
):
    """Register ``value`` as objective ``name`` (``unit`` default: the name); without
    ``value``, a decorator. Returns the function (decorator form) or the :class:`Objective`."""
    if not name or ":" in name:
        raise FpgaFtError(f"objective name must be non-empty and without ':', got {name!r}")

    def add(function):
        OBJECTIVES[name] = Objective(name=name, unit=unit or name, value=function)
        return function

    if value is None:
        return add
    add(value)
    return OBJECTIVES[name]


def figures_of(entry: Any) -> dict[str, float]:
    """The figures of ``entry``: a mapping (evaluation dict, baseline, per-layer row), an
    object with the figures as attributes (a resource estimate) or with a ``figures``
    attribute holding either. The one place an objective reads a candidate."""
    source = getattr(entry, "figures", entry)
    out = {}
    for key in FIGURE_KEYS:
        value = source.get(key) if isinstance(source, Mapping) else getattr(source, key, None)
        if value is not None:
            out[key] = float(value)
    return out


def fmt_value(value: float) -> str:
    """An objective value for people: ``1,234`` for a whole number, else 4 significant digits."""
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _figure_key(text: str, spec: str) -> str:
    for key in FIGURE_KEYS:
        if key.lower() == text.strip().lower():
            return key
    raise FpgaFtError(f"--objective {spec}: unknown figure '{text.strip()}' (known: {', '.join(FIGURE_KEYS)})")


def weighted(weights: Mapping[str, float]) -> Objective:
    """The weighted sum of figures, e.g. ``{"LUT": 1, "DSP": 100}`` (name
    ``weighted:LUT=1,DSP=100``)."""
    weights = {_figure_key(k, "weighted"): float(w) for k, w in weights.items()}
    if not weights or not all(math.isfinite(w) for w in weights.values()):
        raise FpgaFtError(f"weighted objective needs finite weights, got {weights}")
    name = WEIGHTED_PREFIX + ",".join(f"{k}={w:g}" for k, w in weights.items())
    return Objective(
        name=name, unit="weighted resources", value=lambda figures: sum(w * figures[k] for k, w in weights.items())
    )


def _parse_weighted(spec: str) -> Objective:
    weights: dict[str, float] = {}
    for part in spec[len(WEIGHTED_PREFIX) :].split(","):
        key, sep, number = part.partition("=")
        if not sep or not key.strip():
            raise FpgaFtError(f"--objective {spec}: expected weighted:KEY=W[,KEY=W...], e.g. weighted:LUT=1,DSP=100")
        try:
            weights[_figure_key(key, spec)] = float(number)
        except ValueError:
            raise FpgaFtError(f"--objective {spec}: weight of {key.strip()} is not a number: {number!r}") from None
    return weighted(weights)


def _import_function(spec: str) -> Objective:
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise FpgaFtError(f"--objective {spec}: expected module:function")
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # noqa: BLE001 - any import failure is the user's one line
        raise FpgaFtError(
            f"--objective {spec}: cannot import module '{module_name}' "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    found = getattr(module, attr, None)
    if isinstance(found, Objective):
        return found
    if not callable(found):
        raise FpgaFtError(f"--objective {spec}: module '{module_name}' has no function '{attr}'")
    return Objective(name=spec, unit=str(getattr(found, "unit", "user units")), value=found)


def get_objective(spec: str | Objective | None = None) -> Objective:
    """The objective ``spec`` names: a registered name (case-insensitive), ``weighted:K=W,...``
    or ``module:function``; an :class:`Objective` is returned as is, None is the default.
    Anything else is an :class:`FpgaFtError` (one line)."""
    if isinstance(spec, Objective):
        return spec
    text = DEFAULT_OBJECTIVE if spec is None else str(spec).strip()
    if text in OBJECTIVES:
        return OBJECTIVES[text]
    for name, objective in OBJECTIVES.items():
        if name.lower() == text.lower():
            return objective
    if text.lower().startswith(WEIGHTED_PREFIX):
        return _parse_weighted(text)
    if ":" in text:
        return _import_function(text)
    raise FpgaFtError(
        f"unknown --objective '{text}' (known: {', '.join(OBJECTIVES)}, weighted:KEY=W[,KEY=W...], module:function)"
    )


for _key in ("LUT", "FF", "DSP", "BRAM_18K"):
    register_objective(_key, lambda figures, _key=_key: figures[_key], unit=_key)

__all__ = [
    "Objective",
    "OBJECTIVES",
    "FIGURE_KEYS",
    "DEFAULT_OBJECTIVE",
    "register_objective",
    "get_objective",
    "figures_of",
    "weighted",
    "fmt_value",
]
