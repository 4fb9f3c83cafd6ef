"""Depthwise and separable convolutions as ordinary convolutions (the intake rewrite).

fpga-ft protects, injects faults into and estimates Dense / Conv layers only; hls4ml's own
depthwise kernel has none of that. A depthwise convolution is, exactly, a convolution:

* ``QDepthwiseConv2D`` (``DepthwiseConv2D``) with ``C`` input channels and depth multiplier
  ``m`` == a ``QConv2D`` (``Conv2D``) with ``C * m`` filters and a **block-diagonal**
  kernel: input channel ``c`` feeds only output channels ``c*m .. c*m+m-1`` (TensorFlow's
  depthwise output order), every other weight exactly 0; same kernel size, strides,
  padding, dilation, bias, activation and quantizers (the depthwise quantizer becomes the
  kernel quantizer). It keeps the layer's name.
* ``QSeparableConv2D`` (``SeparableConv2D``) ``name`` == that depthwise convolution
  without a bias (``name_depthwise``) followed by a 1x1 ``QConv2D`` (``name_pointwise``:
  the pointwise kernel and quantizer, the layer's bias, bias quantizer and activation).
  QKeras 0.9's ``QSeparableConv2D.call`` quantizes the two kernels and the bias only:
  ``separable_conv2d`` keeps the depthwise result unquantized (float32, exact for
  fixed-point words of up to 24 significant bits) and adds the one bias (``filters``
  words) after the pointwise product, which is what the two convolutions compute. The
  names are hls4ml's own for the two halves (``seperable_to_dw_conv.py``), and so is the
  translation of a config entry of the separable layer (``depthwise`` -> ``weight``,
  ``depthwise_accum`` -> ``accum``, ...).

fpga-ft's structure model (:mod:`fpga_ft.core.structure`) gives zero weights no hardware
(unless the layer is time-shared, where the MAC units read a ROM, zeros included), so the
rewritten layer's products, partial sums, protection and estimate are the depthwise
convolution's; so is its weight memory at the csim's ``weights`` site (the depthwise words
only, not the block-diagonal zeros: the conversion recognises the layer by its
``BlockDiagonal`` constraint, ``LayerInfo.depthwise_multiplier``): see docs/networks.md.

Training keeps the structure: the rewritten kernel carries a :func:`block_diagonal_constraint`
(``BlockDiagonal``: after each optimizer step the weights off the block diagonal are reset to
0, and the layer's QKeras ``Clip`` range, if any, still applies), so fine-tuning the
rewritten model (the optimizer's algorithm knobs) trains a depthwise convolution, not a
dense one.

A quantizer whose result depends on the whole kernel (``alpha='auto'`` / ``'auto_po2'``:
a scale per output channel over the other axes) sees a different tensor once the kernel is
block-diagonal; such a layer (its block-diagonal quantized kernel is not the quantized
depthwise kernel laid out block-diagonally) is not rewritten: it stays as hls4ml converts it
(bit-exact, but without fault sites, protection or estimate of its own), and the intake says
so (:func:`kept_note`).
"""

from __future__ import annotations

import functools

import numpy as np

from fpga_ft.core.errors import FpgaFtError

#: the layer classes rewritten, and the class of the convolution they become
DEPTHWISE_CLASSES = {"QDepthwiseConv2D": "QConv2D", "DepthwiseConv2D": "Conv2D"}
SEPARABLE_CLASSES = {"QSeparableConv2D": "QConv2D", "SeparableConv2D": "Conv2D"}
#: bumped when the rewrite changes (the design cache keys of rewritten models change with it)
REWRITE_VERSION = 1
_SHARED_KEYS = ("trainable", "dtype", "data_format")
#: a separable layer's config Precision keys, per half (hls4ml's seperable_to_dw_conv.py)
_HALF_PRECISION = {
    "depthwise": {"depthwise": "weight", "depthwise_accum": "accum", "depthwise_result": "result"},
    "pointwise": {"pointwise": "weight", "pointwise_accum": "accum", "pointwise_result": "result"},
}


def _kernel_mismatch(layer) -> int:
    """Words of the quantized block-diagonal kernel that differ from the quantized depthwise
    kernel laid out block-diagonally (0: the rewrite is exact). The layer's own quantizer
    stands for the convolution's: the same quantizer config, applied to the other kernel."""
    quantizer = getattr(layer, "depthwise_quantizer_internal", None)
    depthwise = np.asarray(layer.depthwise_kernel.numpy())
    expected = block_diagonal(_quantized(quantizer, depthwise))
    got = _quantized(quantizer, block_diagonal(depthwise))
    return int(np.count_nonzero(expected != got))


def kept_layers(model) -> dict[str, int]:
    """``{layer name: differing kernel words}`` for the depthwise / separable layers of
    ``model`` the rewrite leaves as they are (their quantizer's scale spans the kernel)."""
    out = {}
    for layer in model.layers:
        cls = type(layer).__name__
        if cls in DEPTHWISE_CLASSES or cls in SEPARABLE_CLASSES:
            differ = _kernel_mismatch(layer)
            if differ:
                out[layer.name] = differ
    return out


def rewritten_layers(model) -> dict[str, list[str]]:
    """``{layer name: names of the convolutions it becomes}`` for each depthwise or
    separable layer of ``model`` the rewrite replaces (empty when there is none)."""
    out = {}
    kept = kept_layers(model)
    for layer in model.layers:
        cls = type(layer).__name__
        if layer.name in kept:
            continue
        if cls in DEPTHWISE_CLASSES:
            out[layer.name] = [layer.name]
        elif cls in SEPARABLE_CLASSES:
            out[layer.name] = [f"{layer.name}_depthwise", f"{layer.name}_pointwise"]
    return out


def block_diagonal(depthwise_kernel: np.ndarray) -> np.ndarray:
    """The ``(kh, kw, C, C*m)`` convolution kernel of a ``(kh, kw, C, m)`` depthwise kernel:
    ``K[:, :, c, c*m + j] = D[:, :, c, j]``, every other weight 0 (same dtype)."""
    kernel = np.asarray(depthwise_kernel)
    kh, kw, channels, mult = kernel.shape
    out = np.zeros((kh, kw, channels, channels * mult), dtype=kernel.dtype)
    for c in range(channels):
        out[:, :, c, c * mult : (c + 1) * mult] = kernel[:, :, c, :]
    return out


@functools.lru_cache(maxsize=1)
def block_diagonal_constraint():
    """The Keras constraint class ``BlockDiagonal(multiplier, clip)`` (defined on first use,
    when TensorFlow is imported): ``w`` of shape ``(kh, kw, C, C*m)`` -> ``w`` with every
    weight off the block diagonal 0 (output channel ``k`` keeps input channel ``k // m``),
    clipped to ``clip = [min, max]`` when given (the depthwise layer's QKeras ``Clip``)."""
    import tensorflow as tf

    class BlockDiagonal(tf.keras.constraints.Constraint):
        def __init__(self, multiplier: int = 1, clip=None):
            self.multiplier = int(multiplier)
            self.clip = None if clip is None else [float(clip[0]), float(clip[1])]

        def __call__(self, w):
            channels = int(w.shape[-2])
            rows = tf.range(channels)[:, None]
            cols = tf.range(channels * self.multiplier)[None, :] // self.multiplier
            w = w * tf.cast(tf.equal(rows, cols), w.dtype)
            return w if self.clip is None else tf.clip_by_value(w, self.clip[0], self.clip[1])

        def get_config(self):
            return {"multiplier": self.multiplier, "clip": self.clip}

    return BlockDiagonal


def _constraint_config(layer_config: dict) -> dict:
    """The serialized ``BlockDiagonal`` of a depthwise layer's config (its depthwise
    constraint's range kept when that is a QKeras ``Clip``)."""
    inner = layer_config.get("depthwise_constraint")
    clip = None
    if isinstance(inner, dict) and inner.get("class_name") == "Clip":
        clip = [inner["config"]["min_value"], inner["config"]["max_value"]]
    return {
        "class_name": "BlockDiagonal",
        "config": {"multiplier": int(layer_config.get("depth_multiplier", 1)), "clip": clip},
    }


def _conv_entry(
    cls: str,
    name: str,
    base: dict,
    *,
    filters: int,
    kernel_size,
    strides,
    dilation,
    padding: str,
    use_bias: bool,
    activation,
    kernel_quantizer=None,
    bias_quantizer=None,
    constraint=None,
) -> dict:
    config = {key: base[key] for key in _SHARED_KEYS if key in base}
    config.update(
        name=name,
        filters=int(filters),
        kernel_size=list(kernel_size),
        strides=list(strides),
        padding=padding,
        dilation_rate=list(dilation),
        activation=activation,
        use_bias=bool(use_bias),
    )
    if constraint is not None:
        config["kernel_constraint"] = constraint
    if cls.startswith("Q"):
        config.update(kernel_quantizer=kernel_quantizer, bias_quantizer=bias_quantizer if use_bias else None)
    return {"class_name": cls, "config": config, "name": name}


def _entries(entry: dict, channels: int) -> list[dict]:
    """The convolution entries (model config) replacing one depthwise / separable entry."""
    cls, config, name = entry["class_name"], entry["config"], entry["name"]
    mult = int(config.get("depth_multiplier", 1))
    conv_cls = DEPTHWISE_CLASSES.get(cls) or SEPARABLE_CLASSES[cls]
    spatial = dict(
        kernel_size=config["kernel_size"],
        strides=config["strides"],
        dilation=config.get("dilation_rate", (1, 1)),
        padding=config["padding"],
    )

    def depthwise(entry_name: str, use_bias: bool, activation, bias_quantizer=None) -> dict:
        return _conv_entry(
            conv_cls,
            entry_name,
            config,
            filters=channels * mult,
            use_bias=use_bias,
            activation=activation,
            kernel_quantizer=config.get("depthwise_quantizer"),
            bias_quantizer=bias_quantizer,
            constraint=_constraint_config(config),
            **spatial,
        )

    if cls in DEPTHWISE_CLASSES:
        return [depthwise(name, config.get("use_bias", True), config.get("activation"), config.get("bias_quantizer"))]
    pointwise = _conv_entry(
        conv_cls,
        f"{name}_pointwise",
        config,
        filters=config["filters"],
        kernel_size=(1, 1),
        strides=(1, 1),
        dilation=(1, 1),
        padding="valid",
        use_bias=config.get("use_bias", True),
        activation=config.get("activation"),
        kernel_quantizer=config.get("pointwise_quantizer"),
        bias_quantizer=config.get("bias_quantizer"),
    )
    return [depthwise(f"{name}_depthwise", False, "linear"), pointwise]


def _check_layer(layer) -> None:
    cls = type(layer).__name__
    if getattr(layer, "data_format", "channels_last") == "channels_first":
        raise FpgaFtError(f"layer '{layer.name}' ({cls}) uses channels_first; use channels_last")


def _quantized(quantizer, values: np.ndarray) -> np.ndarray:
    if quantizer is None:
        return np.asarray(values, dtype=np.float64)
    return np.asarray(quantizer(values.astype(np.float32)), dtype=np.float64)


def rewrite_depthwise(model):
    """``model`` with each depthwise / separable convolution replaced by the equivalent
    convolution(s) (module docstring): a copy with the same weights (the kernels laid out
    block-diagonally), or ``model`` itself when it has none. A layer whose quantizer would
    give the block-diagonal kernel other values is left as it is (:func:`kept_layers`)."""
    names = rewritten_layers(model)
    targets = {layer.name: layer for layer in model.layers if layer.name in names}
    if not targets:
        return model
    from fpga_ft.generate.modelio import _quiet_tensorflow, custom_objects

    tf = _quiet_tensorflow()
    for layer in targets.values():
        _check_layer(layer)
    functional = tf.keras.Model(model.inputs, model.outputs, name=model.name)
    config = functional.get_config()
    renamed = {}  # consumers of a separable layer read its pointwise half
    layers = []
    for entry in config["layers"]:
        layer = targets.get(entry["name"])
        if layer is None:
            layers.append(entry)
            continue
        new = _entries(entry, int(layer.input_shape[-1]))
        new[0]["inbound_nodes"] = entry["inbound_nodes"]
        for previous, following in zip(new, new[1:]):
            following["inbound_nodes"] = [[[previous["name"], 0, 0, {}]]]
        renamed[entry["name"]] = new[-1]["name"]
        layers.extend(new)
    for entry in layers:
        for node in entry.get("inbound_nodes", []):
            for ref in node:
                ref[0] = renamed.get(ref[0], ref[0])
    for out in config["output_layers"]:
        out[0] = renamed.get(out[0], out[0])
    config["layers"] = layers
    try:
        copy = tf.keras.Model.from_config(config, custom_objects=custom_objects())
    except Exception as exc:  # noqa: BLE001
        raise FpgaFtError(
            f"cannot rewrite the depthwise convolutions of model {model.name}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    kept = {layer.name for layer in model.layers} - set(targets)
    for layer in copy.layers:
        if layer.weights and layer.name in kept:
            layer.set_weights(model.get_layer(layer.name).get_weights())
    for name, layer in targets.items():
        depthwise = block_diagonal(np.asarray(layer.depthwise_kernel.numpy()))
        bias = [np.asarray(layer.bias.numpy())] if getattr(layer, "use_bias", False) else []
        if type(layer).__name__ in DEPTHWISE_CLASSES:
            conv = copy.get_layer(name)
            conv.set_weights([depthwise, *bias])
        else:
            conv = copy.get_layer(f"{name}_depthwise")
            conv.set_weights([depthwise])
            copy.get_layer(f"{name}_pointwise").set_weights([np.asarray(layer.pointwise_kernel.numpy()), *bias])
    return copy


def rewrite_hls_config(config, rewritten: dict[str, list[str]]):
    """The user's hls4ml config for the rewritten model: a separable layer's ``LayerName``
    entry becomes one entry per half, its ``Precision`` keys translated as hls4ml does
    (``depthwise`` -> the depthwise half's ``weight``, ``pointwise_accum`` -> the pointwise
    half's ``accum``, ...); a depthwise layer keeps its entry (``depthwise`` -> ``weight``).
    ``config`` None stays None."""
    if config is None:
        return None
    for name, halves in rewritten.items():
        entry = config.layer_name.get(name)
        if entry is None:
            continue
        config = config.without_layers([name])
        kinds = ["depthwise"] if len(halves) == 1 else ["depthwise", "pointwise"]
        for half, kind in zip(halves, kinds):
            config = config.with_layer(half, _half_entry(entry, kind))
    return config


def _half_entry(entry: dict, kind: str) -> dict:
    out = {key: value for key, value in entry.items() if key != "Precision"}
    precision = entry.get("Precision")
    if isinstance(precision, dict):
        other = "pointwise" if kind == "depthwise" else "depthwise"
        mapped = {
            _HALF_PRECISION[kind].get(key, key): value
            for key, value in precision.items()
            if key not in _HALF_PRECISION[other]
        }
        out["Precision"] = mapped
    elif precision is not None:
        out["Precision"] = precision
    return out


def rewrite_note(rewritten: dict[str, list[str]], model) -> str:
    """The intake's one-line note on the rewrite of ``model`` (the user's)."""
    parts = [
        f"'{name}' ({type(model.get_layer(name)).__name__}) -> {' + '.join(halves)}"
        for name, halves in rewritten.items()
    ]
    return (
        "note: depthwise / separable convolutions are converted as ordinary convolutions with "
        "block-diagonal kernels (zero weights have no hardware), so they have fault sites, protection and "
        f"an estimate: {'; '.join(parts)} (docs/networks.md)"
    )


def kept_note(kept: dict[str, int], model) -> str:
    """The intake's one-line note on the depthwise / separable layers left as they are."""
    parts = [f"'{name}' ({type(model.get_layer(name)).__name__}, {n} kernel words)" for name, n in kept.items()]
    return (
        "note: not rewritten, so converted by hls4ml as they are (bit-exact; no fault sites, protection or "
        f"estimate of their own): {'; '.join(parts)}: the quantizer's scale spans the whole kernel (e.g. "
        "alpha='auto'), so the block-diagonal convolution would quantize it differently; use alpha=1 to protect "
        "them (docs/networks.md)"
    )
