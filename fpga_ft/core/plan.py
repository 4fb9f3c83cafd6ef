"""Protection plan: which bits and which neurons of each layer are triplicated.

YAML form::

    layers:
      fc1:
        protected_msbs: 2          # circuit level: top 2 bits of every product and
                                   # partial-sum (accumulator) word TMR'd and voted
        critical_neurons: [3, 17]  # architecture level: these outputs (channels for conv)
                                   # compute their whole dot product in three replicas

Layers not listed are unprotected. ``protected_msbs`` counts bits of the stored product /
accumulator word (``accum_t``), from the most significant (sign) bit down. A neuron-level
scheme added through :func:`fpga_ft.core.schemes.register_scheme` adds its own key (its
``plan_key``, e.g. ``duplicated_neurons: [4]``) listing the neurons it protects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Mapping

import yaml

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.layers import LayerInfo
from fpga_ft.core.outputs import write_text_atomic
from fpga_ft.core.schemes import plan_keys
from fpga_ft.core.safeyaml import load_yaml


@dataclass
class LayerProtection:
    """Protection of one layer. Units: ``protected_msbs`` in bits; neuron indices 0-based."""

    protected_msbs: int = 0
    critical_neurons: list[int] = field(default_factory=list)
    #: neurons of registered neuron-level schemes, by the scheme's plan key
    #: (``fpga_ft.core.schemes``), e.g. ``{"duplicated_neurons": [4]}``
    scheme_neurons: dict[str, list[int]] = field(default_factory=dict)

    @property
    def is_protected(self) -> bool:
        return self.protected_msbs > 0 or bool(self.critical_neurons) or any(self.scheme_neurons.values())

    def scheme_key_of(self, neuron: int) -> str | None:
        """The plan key of the registered scheme protecting ``neuron``, if any."""
        for key, neurons in self.scheme_neurons.items():
            if int(neuron) in neurons:
                return key
        return None

    def to_dict(self) -> dict:
        out: dict = {"protected_msbs": int(self.protected_msbs),
                     "critical_neurons": [int(i) for i in self.critical_neurons]}
        out.update({key: [int(i) for i in neurons] for key, neurons in self.scheme_neurons.items() if neurons})
        return out


@dataclass
class ProtectionPlan:
    """Per-layer protection, keyed by Keras layer name."""

    layers: dict[str, LayerProtection] = field(default_factory=dict)

    # ---- construction -------------------------------------------------------------
    @classmethod
    def from_dict(cls, data, source: str = "plan") -> "ProtectionPlan":
        if data is None:
            return cls()
        if not isinstance(data, Mapping):
            raise FpgaFtError(f"malformed {source}: expected a mapping with a 'layers' key")
        unknown_keys = set(data) - {"layers"}
        if unknown_keys:
            raise FpgaFtError(f"malformed {source}: unknown top-level key(s) {sorted(unknown_keys)}; expected 'layers'")
        layers_data = data.get("layers") or {}
        if not isinstance(layers_data, Mapping):
            raise FpgaFtError(f"malformed {source}: 'layers' must map layer names to settings")
        layers = {}
        for name, entry in layers_data.items():
            layers[str(name)] = _parse_layer(str(name), entry, source)
        return cls(layers)

    @classmethod
    def load(cls, path: str | Path) -> "ProtectionPlan":
        """Read a plan file (bounded YAML: no aliases, no repeated layer, see fpga_ft.core.safeyaml)."""
        path = Path(path)
        return cls.from_dict(load_yaml(path, "plan"), source=f"plan {path}")

    @classmethod
    def uniform(cls, layers: Iterable[LayerInfo], protected_msbs: int = 0,
                all_critical: bool = False) -> "ProtectionPlan":
        """The same protection on every layer (``all_critical``: every neuron fully TMR'd)."""
        return cls({
            info.name: LayerProtection(
                protected_msbs=min(protected_msbs, info.accum_type.width),
                critical_neurons=list(range(info.n_out)) if all_critical else [])
            for info in layers})

    # ---- output --------------------------------------------------------------------
    def to_dict(self) -> dict:
        return {"layers": {name: p.to_dict() for name, p in self.layers.items()
                           if p.is_protected}}

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, default_flow_style=None)

    def save(self, path: str | Path) -> None:
        """Write the plan (through a temporary file and a rename: never a partial file)."""
        write_text_atomic(path, self.to_yaml())

    # ---- queries -------------------------------------------------------------------
    def for_layer(self, name: str) -> LayerProtection:
        return self.layers.get(name, LayerProtection())

    @property
    def protected_layers(self) -> list[str]:
        return [name for name, p in self.layers.items() if p.is_protected]

    def key(self) -> str:
        """A canonical string of the plan (for caching compiled designs)."""
        items = sorted((n, p.protected_msbs, tuple(sorted(p.critical_neurons)),
                        *((key, tuple(sorted(v))) for key, v in sorted(p.scheme_neurons.items()) if v))
                       for n, p in self.layers.items() if p.is_protected)
        return repr(items)

    def validate(self, layers: Iterable[LayerInfo]) -> "ProtectionPlan":
        """Check the plan against the model's layers; raise a one-line error on the first problem."""
        infos = {info.name: info for info in layers}
        for name, prot in self.layers.items():
            info = infos.get(name)
            if info is None:
                known = ", ".join(sorted(infos)) or "none"
                raise FpgaFtError(
                    f"plan names unknown layer '{name}' (protectable layers: {known})")
            width = info.accum_type.width
            if prot.protected_msbs > width:
                raise FpgaFtError(
                    f"plan layer '{name}': protected_msbs={prot.protected_msbs} exceeds the "
                    f"{width}-bit product/accumulator word")
            unit = "channel" if info.kind.startswith("Conv") else "neuron"
            for key, neurons in (("critical", prot.critical_neurons), *prot.scheme_neurons.items()):
                for neuron in neurons:
                    if not 0 <= neuron < info.n_out:
                        raise FpgaFtError(
                            f"plan layer '{name}': {key} {unit} index {neuron} out of range "
                            f"0..{info.n_out - 1}")
        return self


def _parse_layer(name: str, entry, source: str) -> LayerProtection:
    if entry is None:
        return LayerProtection()
    if not isinstance(entry, Mapping):
        raise FpgaFtError(f"malformed {source}: layer '{name}' must be a mapping")
    unknown = set(entry) - {"protected_msbs", "critical_neurons", *plan_keys()}
    if unknown:
        raise FpgaFtError(f"malformed {source}: layer '{name}' has unknown key(s) {sorted(unknown)}")
    msbs = entry.get("protected_msbs", 0)
    if isinstance(msbs, bool) or not isinstance(msbs, int):
        raise FpgaFtError(f"malformed {source}: layer '{name}' protected_msbs must be an integer, got {msbs!r}")
    if msbs < 0:
        raise FpgaFtError(f"plan layer '{name}': protected_msbs must be >= 0, got {msbs}")
    neurons = _neuron_list(name, entry, "critical_neurons", source)
    others = {key: _neuron_list(name, entry, key, source) for key in plan_keys() if key in entry}
    seen = set(neurons)
    for key, listed in others.items():
        both = seen & set(listed)
        if both:
            raise FpgaFtError(f"plan layer '{name}': neuron {min(both)} is listed under two schemes ({key})")
        seen |= set(listed)
    return LayerProtection(protected_msbs=msbs, critical_neurons=neurons, scheme_neurons=others)


def _neuron_list(name: str, entry: Mapping, key: str, source: str) -> list[int]:
    """A layer's list of neuron indices under ``key`` (sorted, unique, >= 0)."""
    neurons = entry.get(key, []) or []
    if not isinstance(neurons, list) or any(isinstance(n, bool) or not isinstance(n, int) for n in neurons):
        raise FpgaFtError(f"malformed {source}: layer '{name}' {key} must be a list of integers")
    if len(set(neurons)) != len(neurons):
        raise FpgaFtError(f"plan layer '{name}': {key} has duplicates")
    if any(n < 0 for n in neurons):
        raise FpgaFtError(f"plan layer '{name}': {key} indices must be >= 0")
    return sorted(neurons)
