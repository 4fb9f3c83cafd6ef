"""What ``MODEL`` names (:class:`ModelSource`, :func:`resolve_source`) and loading it
(:func:`load_keras_model`)."""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.safeyaml import read_bounded
from fpga_ft.generate.intake.config import CONFIG_SUFFIXES, UserHlsConfig, parse_hls_config, read_yaml_config

MAX_JSON_BYTES = 20_000_000


@dataclass(frozen=True)
class ModelSource:
    """Where a model comes from. ``kind``: ``model`` (a full model file or SavedModel),
    ``json`` (architecture + weights) or ``config`` (an hls4ml config YAML naming one of
    those). ``model_file`` is set for full models, ``architecture`` + ``weights`` otherwise."""

    path: Path
    kind: str
    model_file: Path | None = None
    architecture: Path | None = None
    weights: Path | None = None
    config: UserHlsConfig | None = None

    def to_dict(self) -> dict:
        return {"path": str(self.path), "kind": self.kind,
                "model_file": None if self.model_file is None else str(self.model_file),
                "architecture": None if self.architecture is None else str(self.architecture),
                "weights": None if self.weights is None else str(self.weights),
                "config": None if self.config is None else self.config.path}


def _keras3_version(path: Path) -> str | None:
    """The Keras version that wrote a ``.keras`` zip if it is 3.x or later, else None."""
    try:
        with zipfile.ZipFile(path) as archive:
            meta = json.loads(archive.read("metadata.json")[:100_000])
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    version = str(meta.get("keras_version", ""))
    try:
        return version if int(version.split(".")[0]) >= 3 else None
    except ValueError:
        return None


def _check_h5_full_model(path: Path) -> None:
    """One-line error when an .h5 holds only weights (``save_weights``), not a model."""
    try:
        import h5py

        with h5py.File(path, "r") as handle:
            has_config = "model_config" in handle.attrs
            weights_only = not has_config and ("layer_names" in handle.attrs or "model_weights" not in handle)
    except Exception:  # noqa: BLE001 - not HDF5: let the Keras loader say what it is
        return
    if not has_config and weights_only:
        raise FpgaFtError(f"{path} holds only weights (no model architecture): give the architecture "
                          f"JSON as MODEL with --weights {path}, or an hls4ml config YAML naming both")


def _model_file(path: Path) -> None:
    """Checks on a full-model path before Keras reads it."""
    if not path.exists():
        raise FpgaFtError(f"model file not found: {path}")
    if path.is_dir():
        return
    if path.stat().st_size == 0:
        raise FpgaFtError(f"cannot read model {path}: file is empty")
    if path.suffix.lower() == ".keras":
        version = _keras3_version(path)
        if version is not None:
            raise FpgaFtError(
                f"{path} was saved by Keras {version}: Keras 3 files are not supported by hls4ml 1.3's QKeras "
                "path (fpga-ft runs TensorFlow 2.14 / Keras 2); re-save the model with TensorFlow 2.14 / Keras 2 "
                "as .h5 (model.save('model.h5')), or give a Keras 2 architecture JSON with its weights "
                "(MODEL.json --weights W.h5)")
    if path.suffix.lower() in (".h5", ".hdf5"):
        _check_h5_full_model(path)


def _sibling_weights(architecture: Path) -> Path | None:
    candidate = architecture.with_name(f"{architecture.stem}_weights.h5")
    return candidate if candidate.is_file() else None


def resolve_source(path, weights=None) -> ModelSource:
    """What ``MODEL`` (and ``--weights``) name; reads and validates a config YAML.

    Raises:
        FpgaFtError: missing file, config without a Keras model or with bad values, weights
            given where they do not apply, a Keras 3 ``.keras`` file, a weights-only ``.h5``.
    """
    p = Path(path)
    w = Path(weights) if weights else None
    if not p.exists():
        raise FpgaFtError(f"model file not found: {p}")
    if w is not None and not w.is_file():
        raise FpgaFtError(f"weights file not found: {w}")
    suffix = p.suffix.lower()
    if p.is_file() and suffix in CONFIG_SUFFIXES:
        data = read_yaml_config(p)
        config = parse_hls_config(data, str(p))
        base = p.parent

        def named(key):
            value = data.get(key)
            if value is None:
                return None
            if not isinstance(value, str) or not value.strip():
                raise FpgaFtError(f"config {p}: {key} must be a file path, got {value!r}")
            given = Path(value)
            if given.is_absolute():
                candidates = [given]
            else:  # the YAML's directory first, then the working directory (hls4ml's convention)
                candidates = [base / given, Path.cwd() / given]
            for target in candidates:
                if target.exists():
                    return target
            tried = " or ".join(str(c) for c in dict.fromkeys(candidates))
            raise FpgaFtError(f"config {p}: {key} file not found: {tried}")

        arch, h5, full = named("KerasJson"), named("KerasH5"), named("KerasModel")
        if arch is not None:
            if w is not None and h5 is not None:
                raise FpgaFtError(f"config {p} names its weights (KerasH5); drop --weights or KerasH5")
            weights_path = w or h5 or _sibling_weights(arch)
            if weights_path is None:
                raise FpgaFtError(f"config {p}: KerasJson {arch.name} needs weights (KerasH5, --weights, or a "
                                  f"sibling {arch.stem}_weights.h5)")
            return ModelSource(path=p, kind="config", architecture=arch, weights=weights_path, config=config)
        model_file = full or h5
        if model_file is None:
            raise FpgaFtError(f"config {p} names no Keras model: it needs KerasJson (+ KerasH5), KerasH5 or "
                              "KerasModel")
        if w is not None:
            raise FpgaFtError("--weights applies to a .json architecture (or a config with KerasJson), "
                              f"not to the full model {model_file}")
        _model_file(model_file)
        return ModelSource(path=p, kind="config", model_file=model_file, config=config)
    if p.is_file() and suffix == ".json":
        weights_path = w or _sibling_weights(p)
        if weights_path is None:
            raise FpgaFtError(f"model architecture {p} needs its weights: --weights W.h5 "
                              f"(no sibling {p.stem}_weights.h5)")
        return ModelSource(path=p, kind="json", architecture=p, weights=weights_path)
    if w is not None:
        raise FpgaFtError(f"--weights applies to a .json architecture or an hls4ml config, not to {p}")
    _model_file(p)
    return ModelSource(path=p, kind="model", model_file=p)


# --------------------------------------------------------------------------- loading
def load_keras_model(source: ModelSource):
    """The Keras model a :class:`ModelSource` names (uncompiled, QKeras objects registered)."""
    from fpga_ft.generate.modelio import (_first_line, _load_model_file, _quiet_tensorflow, custom_objects,
                                          refuse_code_layers)

    if source.model_file is not None:
        return _load_model_file(source.model_file)
    tf = _quiet_tensorflow()
    arch = source.architecture
    raw = read_bounded(arch, MAX_JSON_BYTES, "model architecture")
    try:
        refuse_code_layers(json.loads(raw), arch)
    except ValueError as exc:
        raise FpgaFtError(f"model architecture {arch} is not JSON: {_first_line(exc)}") from None
    try:
        model = tf.keras.models.model_from_json(raw.decode("utf-8"), custom_objects=custom_objects())
    except Exception as exc:  # noqa: BLE001 - keras raises many unrelated types
        raise FpgaFtError(f"cannot build model from {arch}: {_first_line(exc)}") from None
    try:
        model.load_weights(str(source.weights))
    except Exception as exc:  # noqa: BLE001
        raise FpgaFtError(f"cannot load weights {source.weights} into {arch}: {_first_line(exc)}") from None
    if not isinstance(model, tf.keras.Model):
        raise FpgaFtError(f"cannot read model {arch}: it holds a {type(model).__name__}, not a Keras model")
    return model
