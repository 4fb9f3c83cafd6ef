"""The user's hls4ml config YAML: :class:`UserHlsConfig`, read and validated (the HLS
settings only; which model it names is :mod:`.source`'s)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.fixedpoint import parse_type
from fpga_ft.core.safeyaml import load_yaml

#: hls4ml's model default precision (``convert_from_keras_model`` without a config)
HLS_DEFAULT_PRECISION = "ap_fixed<16,6>"
MAX_CONFIG_BYTES = 1_000_000
CONFIG_SUFFIXES = (".yml", ".yaml")
#: top-level keys of an hls4ml config that fpga-ft reads or may ignore (fpga-ft decides them)
_CONFIG_KEYS_USED = {"KerasJson", "KerasH5", "KerasModel", "HLSConfig", "IOType", "Part", "ClockPeriod", "Backend"}
_CONFIG_KEYS_IGNORED = {"OutputDir", "ProjectName", "InputData", "OutputPredictions", "Board", "ClockUncertainty",
                        "Stamp", "WriterConfig", "Version", "AcceleratorConfig", "Namespace", "WriteWeightsTxt",
                        "WriteTar", "TBFiles"}
_STRATEGIES = {"latency", "resource", "resource_unrolled", "distributed_arithmetic", "da", "stable", "legacy",
               "argmax"}
_BACKENDS = {"vivado": "vivado", "vitis": "vitis", "vivadoaccelerator": "vivadoaccelerator"}


@dataclass(frozen=True)
class UserHlsConfig:
    """What an hls4ml config YAML asks for (validated). ``None``: not given.

    ``model``, ``layer_name`` and ``layer_type`` are ``HLSConfig``'s ``Model``, ``LayerName``
    and ``LayerType`` (hls4ml spelling: ``Precision`` as a type string or a dict with
    ``weight``/``bias``/``result``/``accum``/..., ``ReuseFactor``, ``Strategy``, ...), with
    ``Trace`` keys dropped. ``backend`` is a key of :data:`fpga_ft.generate.convert.BACKENDS`.
    """

    path: str | None = None
    backend: str | None = None
    part: str | None = None
    clock_period_ns: float | None = None
    io_type: str | None = None
    model: dict = field(default_factory=dict)
    layer_name: dict = field(default_factory=dict)
    layer_type: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"path": self.path, "backend": self.backend, "part": self.part,
                "clock_period_ns": self.clock_period_ns, "io_type": self.io_type, "model": self.model,
                "layer_name": self.layer_name, "layer_type": self.layer_type}

    def key(self) -> dict:
        """What changes the converted design (for cache keys): everything but the path."""
        data = self.to_dict()
        data.pop("path")
        return data

    @property
    def is_empty(self) -> bool:
        return not any(v for k, v in self.key().items())

    def layer(self, name: str) -> dict:
        return dict(self.layer_name.get(name, {}))

    def result_precision(self, name: str) -> str | None:
        """The ``result`` precision the config gives layer ``name`` (None: none or 'auto')."""
        precision = self.layer_name.get(name, {}).get("Precision")
        if isinstance(precision, dict):
            precision = precision.get("result")
        if precision is None or str(precision).strip().lower() == "auto":
            return None
        return str(precision)

    def model_precision(self) -> str | None:
        precision = self.model.get("Precision")
        if isinstance(precision, dict):
            precision = precision.get("default")
        if precision is None or str(precision).strip().lower() == "auto":
            return None
        return str(precision)

    def without_layers(self, names) -> "UserHlsConfig":
        names = set(names)
        return replace(self, layer_name={k: v for k, v in self.layer_name.items() if k not in names})

    def with_layer(self, name: str, entry: dict) -> "UserHlsConfig":
        layers = dict(self.layer_name)
        layers[name] = _merge(layers.get(name, {}), entry)
        return replace(self, layer_name=layers)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = value
    return out


def read_yaml_config(path: Path) -> dict:
    """Size-bounded, alias-free ``safe_load`` of an hls4ml config file (a mapping)."""
    data = load_yaml(path, "config", max_bytes=MAX_CONFIG_BYTES)
    if not isinstance(data, dict):
        raise FpgaFtError(f"config {path} must be a YAML mapping (hls4ml config), got {type(data).__name__}")
    return data


def _check_precision(value, where: str):
    if isinstance(value, dict):
        for key, item in value.items():
            _check_precision(item, f"{where}.{key}")
        return
    if not isinstance(value, str):
        raise FpgaFtError(f"{where}: precision must be a type string such as 'ap_fixed<16,6>', got {value!r}")
    if value.strip().lower() == "auto":
        return
    parse_type(value, where)


def _check_layer_entry(entry, where: str) -> dict:
    if entry is None:
        return {}
    if not isinstance(entry, dict):
        raise FpgaFtError(f"{where} must be a mapping, got {entry!r}")
    out = {}
    for key, value in entry.items():
        if key in ("Trace", "TraceOutput"):
            continue  # fpga-ft's projects carry no trace outputs
        if key == "Precision":
            if value is None:
                continue
            _check_precision(value, f"{where}.Precision")
        elif key == "ReuseFactor":
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise FpgaFtError(f"{where}.ReuseFactor must be an integer >= 1, got {value!r}")
        elif key == "Strategy":
            if not isinstance(value, str) or value.strip().lower() not in _STRATEGIES:
                raise FpgaFtError(f"{where}.Strategy {value!r} unknown (hls4ml strategies: Latency, Resource, "
                                  "Resource_Unrolled, distributed_arithmetic)")
        out[key] = value
    return out


def parse_hls_config(data: dict, path: str | None = None) -> UserHlsConfig:
    """Validate the fields of an hls4ml config mapping into a :class:`UserHlsConfig`."""
    where = path or "config"
    unknown = [k for k in data if k not in _CONFIG_KEYS_USED | _CONFIG_KEYS_IGNORED]
    for other in ("OnnxModel", "PytorchModel"):
        if other in data:
            raise FpgaFtError(f"config {where} describes a {other[:-5]} model ({other}); fpga-ft converts "
                              "QKeras models only (KerasJson + KerasH5, KerasH5 or KerasModel)")
    if unknown:
        raise FpgaFtError(f"config {where}: unknown key '{unknown[0]}' (hls4ml keys fpga-ft reads: "
                          f"{', '.join(sorted(_CONFIG_KEYS_USED))})")
    backend = data.get("Backend")
    if backend is not None:
        if not isinstance(backend, str) or backend.strip().lower() not in _BACKENDS:
            raise FpgaFtError(f"config {where}: Backend {backend!r} is not supported by fpga-ft "
                              "(Vivado, Vitis, VivadoAccelerator)")
        backend = _BACKENDS[backend.strip().lower()]
    io_type = data.get("IOType")
    if io_type is not None and io_type not in ("io_parallel", "io_stream"):
        raise FpgaFtError(f"config {where}: IOType {io_type!r} unknown (io_parallel, io_stream)")
    part = data.get("Part")
    if part is not None and (not isinstance(part, str) or not part.strip()):
        raise FpgaFtError(f"config {where}: Part must be a part name string, got {part!r}")
    clock = data.get("ClockPeriod")
    if clock is not None:
        if isinstance(clock, bool) or not isinstance(clock, (int, float)) or not 0 < float(clock) < 1e6:
            raise FpgaFtError(f"config {where}: ClockPeriod must be a positive number of ns, got {clock!r}")
        clock = float(clock)
    hls = data.get("HLSConfig")
    if hls is None:
        hls = {}
    if not isinstance(hls, dict):
        raise FpgaFtError(f"config {where}: HLSConfig must be a mapping")
    extra = [k for k in hls if k not in ("Model", "LayerName", "LayerType")]
    if extra:
        raise FpgaFtError(f"config {where}: HLSConfig.{extra[0]} is not supported by fpga-ft "
                          "(it reads Model, LayerName, LayerType)")
    model = _check_layer_entry(hls.get("Model"), f"{where}: HLSConfig.Model")
    groups = {}
    for group in ("LayerName", "LayerType"):
        entries = hls.get(group) or {}
        if not isinstance(entries, dict):
            raise FpgaFtError(f"config {where}: HLSConfig.{group} must be a mapping of names to settings")
        groups[group] = {str(name): _check_layer_entry(entry, f"{where}: HLSConfig.{group}.{name}")
                         for name, entry in entries.items()}
    return UserHlsConfig(path=path, backend=backend, part=part, clock_period_ns=clock, io_type=io_type,
                         model=model, layer_name=groups["LayerName"], layer_type=groups["LayerType"])


def read_hls_config(path) -> UserHlsConfig:
    """Read and validate an hls4ml config YAML (the HLS settings only; see :func:`resolve_source`)."""
    path = Path(path)
    return parse_hls_config(read_yaml_config(path), str(path))
