"""The registry of neuron-level protection schemes added from outside fpga-ft.

fpga-ft's own schemes (``fpga_ft.core.structure``: ``Unprotected``, ``BitTMR`` for
``protected_msbs``, ``FullTMR`` for ``critical_neurons``) are built in. A new scheme that
protects whole neurons (one dot product each: a Dense neuron or a convolution's output
channel) is one class, registered with :func:`register_scheme`, and every view reads it
from that class alone, as hls4ml's backends read registered templates:

* the plan: the scheme's ``plan_key`` becomes a layer key listing its neurons
  (``fpga_ft.core.plan``: ``layers: {fc1: {duplicated_neurons: [4]}}``);
* the structure and exposure: its node classes (:meth:`Scheme.product_nodes`,
  :meth:`Scheme.sum_nodes`, :meth:`Scheme.output_nodes`, ``dot_replicas``) say how many bits
  the C simulation exposes per word (``fpga_ft.core.exposure``);
* the C simulation: ``csim_source`` (C++ text, guarded, written once per project after
  ``fpgaft_tmr.h``) defines the function template named by ``csim_kernel``, called for
  each of the scheme's neurons with the signature of ``fpgaft::dot_plain_raw`` (raw
  integer inputs, weights, biases, the neuron's terms, the neuron index, the exposure
  arguments) and returning the raw ``accum_t`` integer;
* the synthesis C++: :meth:`NeuronScheme.hls_neuron` (the neuron's lines inside the layer's
  ``fpgaft_dense``) and :meth:`NeuronScheme.hls_definitions` (code before it);
* the keep-replicas constraints and check: :meth:`Scheme.module_instances` (kept modules
  named ``fpgaft_tmr_r<R>_<kind>``, ``fpga_ft.core.structure.module_stem``);
* the resource estimate: :meth:`NeuronScheme.neuron_lut` and ``dsp_copies``;
* the failure model: :meth:`Scheme.word_failure_probability`.

Schemes in an installed package are found through the entry-point group
``fpga_ft.schemes`` (each entry a ``NeuronScheme`` subclass), so that ``fpga-ft`` commands
read plans that use them::

    [project.entry-points."fpga_ft.schemes"]
    duplicated = "my_package.schemes:DuplicatedNeuron"

The structural twin (``fpga-ft verify``) and the optimizer's search space cover the
built-in schemes only; a registered scheme is refused there with one line.
``fpga_ft.testing.scheme_conformance.SchemeConformance`` is the test class every scheme
passes (fault-free bit-exact, flips counted = BER x exposed bits, cost monotone).
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import TYPE_CHECKING, ClassVar

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.structure import Scheme

if TYPE_CHECKING:
    from fpga_ft.core.structure import NeuronStructure

__all__ = [
    "ENTRY_POINT_GROUP",
    "NeuronScheme",
    "register_scheme",
    "unregister_scheme",
    "registered_schemes",
    "plan_keys",
    "scheme_for_key",
]


class NeuronScheme(Scheme):
    """Base of a registered neuron-level scheme (subclass it, then :func:`register_scheme`).

    Class attributes a subclass sets: ``name`` (short identifier), ``plan_key`` (the plan
    key listing its neurons), ``csim_kernel`` (a qualified C++ function template name
    ``ns::f``, instantiated as ``ns::f<data_T, CONFIG_T>``), ``csim_source`` (C++ defining
    it), ``dsp_copies`` (DSP-bound copies of each product the scheme builds). Instances
    are built with the accumulator width ``W`` in bits: ``cls(width)``."""

    plan_key: ClassVar[str] = ""
    csim_kernel: ClassVar[str] = ""
    csim_source: ClassVar[str] = ""
    dsp_copies: ClassVar[float] = 1.0

    def __init__(self, width: int):
        self.width = int(width)

    def __eq__(self, other) -> bool:
        return type(other) is type(self) and other.width == self.width

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.width))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.width})"

    # ---- synthesis C++ (``hls_templates.emit_cpp``) ----------------------------------
    def hls_neuron(self, neuron: "NeuronStructure", config: str) -> list[str]:
        """Lines of the neuron inside ``config::fpgaft_dense`` (inputs ``data``, result
        ``res``, ``acc_t`` = the accumulator type, ``W`` its width)."""
        raise NotImplementedError

    def hls_definitions(self, neuron: "NeuronStructure", config: str) -> list[str]:
        """C++ needed before ``fpgaft_dense`` for this neuron (e.g. the neuron's
        ``fpgaft_dot<J>`` specialisation, ``hls_templates.emit_cpp.dot_specialisation``)."""
        return []

    # ---- resource estimate (``fpga_ft.measure.resources``) -----------------------------
    def neuron_lut(self, base: float, voter_lut: float) -> tuple[float, float]:
        """``(added, checker)`` LUTs of one neuron at Yosys scale, given ``base``: the LUTs
        of its unprotected dot product, and ``voter_lut``: LUTs of one voted bit.
        ``added``: the copies beyond the first; ``checker``: voters / comparators."""
        raise NotImplementedError


_REGISTRY: dict[str, type[NeuronScheme]] = {}
ENTRY_POINT_GROUP = "fpga_ft.schemes"
_entry_points_loaded = False


def _load_entry_points() -> None:
    """Register the schemes of installed packages (group ``fpga_ft.schemes``), once."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        try:
            register_scheme(ep.load())
        except Exception as exc:  # a broken plugin is named, not a traceback
            raise FpgaFtError(f"scheme entry point '{ep.name}' ({ep.value}) failed: {exc}") from None


def register_scheme(cls: type[NeuronScheme]) -> type[NeuronScheme]:
    """Register a neuron-level scheme class (usable as a decorator)."""
    if not (isinstance(cls, type) and issubclass(cls, NeuronScheme)):
        raise TypeError("register_scheme takes a NeuronScheme subclass")
    for attr in ("name", "plan_key", "csim_kernel", "csim_source"):
        if not getattr(cls, attr, ""):
            raise ValueError(f"scheme {cls.__name__}: {attr} must be set")
    if cls.plan_key in ("protected_msbs", "critical_neurons"):
        raise ValueError(f"scheme {cls.__name__}: plan key {cls.plan_key!r} is fpga-ft's own")
    other = _REGISTRY.get(cls.plan_key)
    if other is not None and other is not cls:
        raise ValueError(f"plan key {cls.plan_key!r} is already registered by {other.__name__}")
    _REGISTRY[cls.plan_key] = cls
    return cls


def unregister_scheme(cls: type[NeuronScheme]) -> None:
    """Remove a registered scheme (tests)."""
    if _REGISTRY.get(cls.plan_key) is cls:
        del _REGISTRY[cls.plan_key]


def registered_schemes() -> dict[str, type[NeuronScheme]]:
    """Registered schemes by plan key (entry points included)."""
    _load_entry_points()
    return dict(_REGISTRY)


def plan_keys() -> tuple[str, ...]:
    """The plan keys of the registered schemes (entry points included)."""
    return tuple(registered_schemes())


def scheme_for_key(plan_key: str, width: int) -> NeuronScheme:
    """The registered scheme of ``plan_key`` for an accumulator of ``width`` bits."""
    cls = registered_schemes().get(plan_key)
    if cls is None:
        raise FpgaFtError(f"no protection scheme is registered for plan key '{plan_key}'")
    return cls(width)
