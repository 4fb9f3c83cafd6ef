"""A compiled fpga-ft design: HLS project + csim library, cached by what defines it.

``build_design`` converts a model with a plan, writes the project and compiles the csim
library, caching the result under ``$FPGA_FT_CACHE`` (default ``~/.cache/fpga-ft``) keyed
by the model's architecture and weights, the plan, backend, io type, part, clock, reuse
factor and fpga-ft's own C++ sources: a repeated design is never converted or compiled
twice. ``open_design`` reopens a project without TensorFlow (what worker processes do).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fpga_ft.core import structure
from fpga_ft.core.cache import cache_root, file_lock, model_fingerprint
from fpga_ft.core.schemes import registered_schemes
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.classify import OutputHead
from fpga_ft.core.fixedpoint import parse_type, quantize_float32
from fpga_ft.core.layers import PROTECTABLE_KINDS, LayerInfo
from fpga_ft.core.paths import HLS_TEMPLATES_DIR
from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.core.safeyaml import read_bounded
from fpga_ft.simulate.csim import CsimLibrary, build_library

DESIGN_FILE = "fpgaft_design.json"
#: bumped when what a cached design directory holds changes (2: fpgaft_weights.npz,
#: 3: replica_instances in fpgaft_design.json, structure-generated kernels; 5: layers in
#: dataflow order, unprotected_arithmetic; 6: LayerInfo.depthwise_multiplier)
DESIGN_FORMAT = 6


def _templates_fingerprint() -> str:
    """Hash of what generates a project's C++: the templates, the structure description,
    the conversion and the C++ of registered schemes."""
    digest = hashlib.sha256()
    here = Path(__file__).resolve().parent  # the conversion writes the project too
    for path in [*sorted(HLS_TEMPLATES_DIR.glob("*")), Path(structure.__file__).resolve(), here / "convert.py"]:
        if path.suffix in (".h", ".in", ".py"):
            digest.update(path.read_bytes())
    for key, cls in sorted(registered_schemes().items()):  # their C++ is part of the project
        digest.update(f"{key}:{cls.__module__}.{cls.__qualname__}:{cls.csim_kernel}".encode())
        digest.update(cls.csim_source.encode())
    return digest.hexdigest()[:16]


@dataclass
class Design:
    """A written, compiled design. ``layers`` are the protectable layers (real C++ types)."""

    project_dir: Path
    meta: dict
    layers: list[LayerInfo]
    plan: ProtectionPlan
    compile_seconds: float = 0.0
    _library: CsimLibrary | None = field(default=None, repr=False)

    @property
    def n_inputs(self) -> int:
        return int(self.meta["n_inputs"])

    @property
    def n_outputs(self) -> int:
        return int(self.meta["n_outputs"])

    @property
    def output_head(self) -> OutputHead:
        """What the csim outputs are, so how classes follow from them: ``output_logits`` of
        the design file (designs written before it have logits: the intake removes a final
        softmax/sigmoid)."""
        return OutputHead(self.n_outputs, logits=bool(self.meta.get("output_logits", True)))

    @property
    def library(self) -> CsimLibrary:
        if self._library is None:
            path, seconds = build_library(self.project_dir)
            self.compile_seconds += seconds
            self._library = CsimLibrary(path, self.n_inputs, self.n_outputs)
        return self._library

    def prepare_inputs(self, x: np.ndarray) -> np.ndarray:
        """Raw data -> this design's input words: quantized to ``input_quantization`` when
        the intake gave the model an input quantizer (see :mod:`fpga_ft.generate.intake`), else as is."""
        input_type = self.meta.get("input_quantization")
        if not input_type:
            return np.asarray(x, dtype=np.float32)

        return quantize_float32(x, parse_type(input_type), "input")

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Fault-free C simulation of every sample of ``x`` (outputs as float32)."""
        self.library.configure()
        y, _, _ = self.library.run(x)
        return y


MAX_DESIGN_BYTES = 50_000_000
_TYPE_FIELDS = ("input_type", "weight_type", "bias_type", "accum_type", "result_type")
_LAYER_INTS = ("index", "n_in", "n_out", "n_positions", "n_input_words")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def read_design_meta(path: Path) -> dict:
    """The validated content of a project's ``fpgaft_design.json``: one-line errors naming
    the file and the field for a file that is not JSON or whose fields are missing or of
    the wrong kind (what :func:`open_design` and the commands on a project read)."""
    raw = read_bounded(path, MAX_DESIGN_BYTES, "design file", "; not an fpga-ft design file")
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise FpgaFtError(f"design file {path} is not UTF-8 text (byte {exc.start}); rewrite the project with "
                          "`fpga-ft convert`") from None
    except ValueError as exc:
        raise FpgaFtError(f"design file {path} is not valid JSON ({exc}); rewrite the project with "
                          "`fpga-ft convert`") from None

    def bad(field: str, expected: str, value=None, missing: bool = False) -> FpgaFtError:
        got = "it is missing" if missing else f"got {json.dumps(value)[:60]}"
        return FpgaFtError(f"design file {path}: field '{field}' must be {expected}, {got}; rewrite the project "
                           "with `fpga-ft convert`")

    if not isinstance(meta, dict):
        raise FpgaFtError(f"design file {path} must hold a JSON object, got a {type(meta).__name__}; rewrite the "
                          "project with `fpga-ft convert`")
    for key in ("n_inputs", "n_outputs"):
        if key not in meta:
            raise bad(key, "an integer >= 1", missing=True)
        if not _is_int(meta[key]) or meta[key] < 1:
            raise bad(key, "an integer >= 1", meta[key])
    if "layers" not in meta:
        raise bad("layers", "a non-empty list of layer objects", missing=True)
    if not isinstance(meta["layers"], list) or not meta["layers"]:
        raise bad("layers", "a non-empty list of layer objects", meta["layers"])
    for i, layer in enumerate(meta["layers"]):
        where = f"layers[{i}]"
        if not isinstance(layer, dict):
            raise bad(where, "an object", layer)
        if not isinstance(layer.get("name"), str) or not layer["name"]:
            raise bad(f"{where}.name", "a layer name", layer.get("name"), missing="name" not in layer)
        if layer.get("kind") not in PROTECTABLE_KINDS:
            raise bad(f"{where}.kind", f"one of {', '.join(PROTECTABLE_KINDS)}", layer.get("kind"),
                      missing="kind" not in layer)
        for key in _LAYER_INTS:
            low = 0 if key == "index" else 1
            if not _is_int(layer.get(key)) or layer[key] < low:
                raise bad(f"{where}.{key}", f"an integer >= {low}", layer.get(key), missing=key not in layer)
        for key in _TYPE_FIELDS:
            spec = layer.get(key)
            if not isinstance(spec, dict):
                raise bad(f"{where}.{key}", "a type object {width, integer, signed}", spec, missing=key not in layer)
            for part in ("width", "integer"):
                if not _is_int(spec.get(part)) or (part == "width" and not 1 <= spec[part] <= 1024):
                    raise bad(f"{where}.{key}.{part}", "an integer" + (" in 1..1024" if part == "width" else ""),
                              spec.get(part), missing=part not in spec)
            if "signed" in spec and not isinstance(spec["signed"], bool):
                raise bad(f"{where}.{key}.signed", "true or false", spec["signed"])
        if "reuse_factor" in layer and (not _is_int(layer["reuse_factor"]) or layer["reuse_factor"] < 1):
            raise bad(f"{where}.reuse_factor", "an integer >= 1", layer["reuse_factor"])
        for key in ("strategy", "io_type"):
            if key in layer and not isinstance(layer[key], str):
                raise bad(f"{where}.{key}", "a string", layer[key])
        try:
            LayerInfo.from_dict(layer)
        except (TypeError, ValueError, KeyError) as exc:
            raise FpgaFtError(f"design file {path}: field '{where}' is malformed ({exc}); rewrite the project "
                              "with `fpga-ft convert`") from None
    quantization = meta.get("input_quantization")
    if quantization is not None:
        from fpga_ft.core.fixedpoint import parse_type

        if not isinstance(quantization, str):
            raise bad("input_quantization", "null or a type such as 'ap_fixed<16,6>'", quantization)
        try:
            parse_type(quantization, f"design file {path}: field 'input_quantization'")
        except FpgaFtError as exc:
            raise FpgaFtError(f"{exc}; rewrite the project with `fpga-ft convert`") from None
    for key in ("bit_exact_conversion", "output_logits"):
        if key in meta and not isinstance(meta[key], bool):
            raise bad(key, "true or false", meta[key])
    warnings_list = meta.get("conversion_warnings", [])
    if not isinstance(warnings_list, list) or not all(isinstance(w, str) for w in warnings_list):
        raise bad("conversion_warnings", "a list of strings", warnings_list)
    return meta


def open_design(project_dir: str | os.PathLike) -> Design:
    """Reopen a project written by fpga-ft (no TensorFlow, no reconversion)."""
    project_dir = Path(project_dir).resolve()
    meta_path = project_dir / DESIGN_FILE
    if not meta_path.is_file():
        raise FpgaFtError(f"not an fpga-ft project (no {DESIGN_FILE}): {project_dir}")
    meta = read_design_meta(meta_path)
    layers = [LayerInfo.from_dict(d) for d in meta["layers"]]
    plan = ProtectionPlan.load(project_dir / "fpgaft_plan.yml")
    weights_path = project_dir / "fpgaft_weights.npz"
    if weights_path.is_file():
        try:
            with np.load(weights_path, allow_pickle=False) as arrays:
                for info in layers:
                    if f"{info.index}_weights" in arrays:
                        info.weights = arrays[f"{info.index}_weights"]
                        info.biases = arrays[f"{info.index}_biases"]
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
            reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise FpgaFtError(f"cannot read the weights file {weights_path} ({reason}); rewrite the project with "
                              "`fpga-ft convert`") from None
    return Design(project_dir=project_dir, meta=meta, layers=layers, plan=plan)


_ANNOUNCED: set = set()


def reset_announcements() -> None:
    """Forget which conversion warnings were printed (a new command starts: it prints them
    again; :func:`fpga_ft.generate.intake.open_model` calls this)."""
    _ANNOUNCED.clear()


def announce_warnings(design: "Design", stream=None) -> None:
    """Print the design's conversion warnings (stderr), each message once per command (see
    :func:`reset_announcements`): the same lines whether the design was just converted or
    came from the cache."""
    from fpga_ft.generate.convert import NOT_BIT_EXACT_WARNING

    lines = list(design.meta.get("conversion_warnings", []))
    if not design.meta.get("bit_exact_conversion", True) and NOT_BIT_EXACT_WARNING not in lines:
        lines.append(NOT_BIT_EXACT_WARNING)
    for line in lines:
        if line not in _ANNOUNCED:
            _ANNOUNCED.add(line)
            print(line, file=stream or sys.stderr)


def build_design(model, plan: ProtectionPlan | None = None, *, board=None, backend: str | None = None,
                 io_type: str | None = None, reuse_factor: int | None = None, output_dir=None,
                 x: np.ndarray | None = None, golden: np.ndarray | None = None,
                 compile: bool = True, use_cache: bool = True, hls_config=None) -> Design:
    """Convert, write and (``compile``) build the csim library of ``model`` with ``plan``.

    ``model``: a Keras model, a path (read with :func:`fpga_ft.generate.intake.open_model`: an
    input quantizer inserted and a final softmax removed when needed) or a
    :class:`fpga_ft.generate.intake.PreparedModel`. ``hls_config`` (default: the prepared model's)
    is the user's hls4ml config; ``io_type``, ``reuse_factor``, ``backend`` and ``board``
    given here win over it. With ``output_dir`` the project goes there (and is rebuilt);
    otherwise it lives in the design cache. ``x``/``golden`` write hls4ml testbench vectors
    into ``tb_data/``. Conversion warnings are printed (stderr) whether or not the design
    came from the cache.
    """
    from fpga_ft.generate.convert import HLS_CONFIG_MERGE_VERSION, convert_model, write_project
    from fpga_ft.generate.intake import conversion_model

    model, hls_config = conversion_model(model, hls_config)
    plan = plan or ProtectionPlan()
    has_config = hls_config is not None and not hls_config.is_empty
    resolved_io = io_type or (hls_config.io_type if has_config else None) or "io_parallel"
    convert_kwargs = dict(board=board, backend=backend, io_type=io_type, reuse_factor=reuse_factor,
                          hls_config=hls_config if has_config else None, warn=False)
    if output_dir is None and use_cache:
        key_data = {
            "model": model_fingerprint(model), "plan": plan.key(), "board": getattr(board, "key", None),
            "backend": backend, "io_type": resolved_io, "reuse": int(reuse_factor or 1),
            "templates": _templates_fingerprint(), "format": DESIGN_FORMAT,
        }
        if has_config:  # only then: cache keys of designs without a config stay what they were
            key_data["hls_config"] = hls_config.key()
            key_data["reuse_given"] = reuse_factor is not None
            key_data["merge"] = HLS_CONFIG_MERGE_VERSION
        key_source = json.dumps(key_data, sort_keys=True)
        key = hashlib.sha256(key_source.encode()).hexdigest()[:20]
        project_dir = cache_root() / "designs" / key
        with file_lock(cache_root() / "locks" / f"{key}.lock"):
            if not (project_dir / DESIGN_FILE).is_file():
                if project_dir.exists():
                    shutil.rmtree(project_dir)
                converted = convert_model(model, plan, output_dir=project_dir, **convert_kwargs)
                write_project(converted, x, golden)
            design = open_design(project_dir)
            if compile:
                design.library  # noqa: B018 - compile now, under the lock
        announce_warnings(design)
        return design
    converted = convert_model(model, plan, output_dir=output_dir, **convert_kwargs)
    write_project(converted, x, golden)
    design = open_design(converted.output_dir)
    announce_warnings(design)
    if compile:
        design.library  # noqa: B018
    return design
