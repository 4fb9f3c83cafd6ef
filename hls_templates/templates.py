"""hls4ml template classes that put fpga-ft's protected kernels into generated projects.

Registered through hls4ml's own extension points (``register_template`` and
``register_source`` on the backend); no hls4ml file is patched. Each class subclasses the
built-in template for its layer, keeps hls4ml's formatting, and only:

* points the layer's (mult_)config ``kernel`` at ``fpgaft::DenseFT`` (keeping hls4ml's
  kernel as ``fpgaft_base_kernel``, used unchanged when the layer is unprotected) and adds
  the protection parameters ``protected_msbs`` (bits), ``critical[]``, ``n_critical``;
* for io_parallel convolutions, calls ``fpgaft::conv_{1,2}d_cl`` instead of ``nnet::``'s.

A template matches only layers that fpga-ft's converter tagged with the ``FpgaftId`` layer
option (attribute ``fpgaft_id``), so plain hls4ml conversions in the same process are
untouched. Templates are registered on the Vivado backend, which the Vitis backend also
applies (after its own), as verified in ``shared/notes/hls4ml-1.3-facts.md``.
"""

from __future__ import annotations

import re
from pathlib import Path

HEADER_DIR = Path(__file__).resolve().parent
HEADERS = ("fpgaft_tmr.h", "fpgaft_engine.h", "fpgaft_runtime.h", "fpgaft_faults.h")
INCLUDE = "nnet_utils/fpgaft_tmr.h"

#: hls4ml layer-config keys (under ``LayerName``) that carry the plan, and their attributes.
CONFIG_ID, CONFIG_MSBS, CONFIG_CRITICAL = "FpgaftId", "FpgaftMsbs", "FpgaftCritical"
ATTR_ID, ATTR_MSBS, ATTR_CRITICAL = "fpgaft_id", "fpgaft_msbs", "fpgaft_critical"
#: neurons of registered schemes (``fpga_ft.core.schemes``) as ``plan_key=neuron`` strings
CONFIG_SCHEMES, ATTR_SCHEMES = "FpgaftSchemes", "fpgaft_schemes"
#: the user's strategy (hls4ml itself is given Latency, for its weight layout)
CONFIG_STRATEGY, ATTR_STRATEGY = "FpgaftStrategy", "fpgaft_strategy"
#: set on every other layer of an fpga-ft model (lets the csim use its fast ReLU)
CONFIG_MODEL, ATTR_MODEL = "FpgaftModel", "fpgaft_model"

_KERNEL_RE = re.compile(r"using kernel = ([^;<]+)<data_T, res_T, CONFIG_T>;")
_registered = False


def _protection_fields(node, n_out: int, struct: str, expose_inputs: bool) -> tuple[str, str]:
    """Return (lines inside the config struct, out-of-line definitions after it).

    The definitions are the layer's synthesis kernel, generated from its protection
    structure (``fpga_ft.core.structure``, written out by ``hls_templates.emit_cpp``)."""
    from fpga_ft.core.plan import LayerProtection
    from fpga_ft.core.structure import layer_structure
    from fpga_ft.generate.convert import layer_info
    from hls_templates import emit_cpp

    msbs = int(node.get_attr(ATTR_MSBS, 0) or 0)
    critical = sorted(set(int(i) for i in (node.get_attr(ATTR_CRITICAL, []) or [])))
    flags = ", ".join("true" if j in critical else "false" for j in range(n_out))
    others: dict[str, list[int]] = {}
    for item in node.get_attr(ATTR_SCHEMES, []) or []:
        key, _, j = str(item).rpartition("=")
        others.setdefault(key, []).append(int(j))
    inside = (
        f"    static const unsigned fpgaft_layer = {int(node.get_attr(ATTR_ID))};\n"
        f"    static const unsigned protected_msbs = {msbs};\n"
        f"    static const unsigned n_critical = {len(critical)};\n"
        f"    static const bool fpgaft_expose_inputs = {'true' if expose_inputs else 'false'};\n"
        f"    static const bool critical[{n_out}];\n")
    after = f"const bool {struct}::critical[{n_out}] = {{{flags}}};\n"
    protection = LayerProtection(protected_msbs=msbs, critical_neurons=critical, scheme_neurons=others)
    info = layer_info(node, node.model.config.get_config_value("IOType"))
    structure = layer_structure(info, protection) if protection.is_protected or info.time_shared else None
    inside += (f"    static const bool fpgaft_time_shared = {'true' if info.time_shared else 'false'};\n"
               f"    static const unsigned fpgaft_depthwise_multiplier = {info.depthwise_multiplier};\n"
               + emit_cpp.declarations())
    scheme_inside, scheme_after = emit_cpp.registered_schemes(structure, struct, n_out)
    return inside + scheme_inside, after + scheme_after + emit_cpp.definitions(structure, struct, protection.is_protected)


def _swap_kernel(text: str, node, n_out: int, struct: str, expose_inputs: bool) -> str:
    """Point the config's ``kernel`` at fpgaft::DenseFT and add the protection fields."""
    match = _KERNEL_RE.search(text)
    if match is None or len(_KERNEL_RE.findall(text)) != 1:
        raise RuntimeError(f"fpga-ft: unexpected hls4ml config layout for layer {node.name}")
    inside, after = _protection_fields(node, n_out, struct, expose_inputs)
    replacement = (
        "using kernel = fpgaft::DenseFT<data_T, res_T, CONFIG_T>;\n"
        "    template<class data_T, class res_T, class CONFIG_T>\n"
        f"    using fpgaft_base_kernel = {match.group(1)}<data_T, res_T, CONFIG_T>;\n" + inside)
    return text[: match.start()] + replacement + text[match.end():] + after


def _tagged(node) -> bool:
    return node.get_attr(ATTR_ID, None) is not None


def _io_parallel(node) -> bool:
    return node.model.config.get_config_value("IOType") == "io_parallel"


class _Renamed:
    """Mixin: a new registry name (reusing a built-in name raises "already registered")."""

    def __init__(self):
        super().__init__()
        self.name = "fpgaft_" + self.name


class _TaggedConfig(_Renamed):
    """Mixin for config templates: only layers fpga-ft's converter tagged."""

    def match(self, node):
        return super().match(node) and _tagged(node)


class _TaggedFunction(_TaggedConfig):
    """Mixin for function-call templates: also include fpga-ft's header."""

    def __init__(self):
        super().__init__()
        self.include_header = list(self.include_header) + [INCLUDE]


def build_template_classes():
    """Create the template classes (imports hls4ml lazily: it pulls in TensorFlow)."""
    from hls4ml.backends.vivado.passes.convolution_templates import (
        Conv1DConfigTemplate,
        Conv1DFunctionTemplate,
        Conv2DConfigTemplate,
        Conv2DFunctionTemplate,
    )
    from hls4ml.backends.vivado.passes.core_templates import (
        ActivationFunctionTemplate,
        DenseConfigTemplate,
        DenseFunctionTemplate,
    )
    from hls4ml.backends.vivado.passes.pooling_templates import PoolingFunctionTemplate
    from hls4ml.backends.vivado.passes.pointwise import (
        PointwiseConv1DConfigTemplate,
        PointwiseConv1DFunctionTemplate,
        PointwiseConv2DConfigTemplate,
        PointwiseConv2DFunctionTemplate,
    )

    class FtDenseConfigTemplate(_TaggedConfig, DenseConfigTemplate):
        def format(self, node):
            return _swap_kernel(super().format(node), node, node.get_attr("n_out"),
                                f"config{node.index}", expose_inputs=True)

    class FtDenseFunctionTemplate(_TaggedFunction, DenseFunctionTemplate):
        """io_stream: call fpgaft::dense_stream (hls4ml's Vitis stream dense bypasses the
        config's kernel, which is where the protection and the fault hooks live)."""

        def format(self, node):
            text = super().format(node)
            if not _io_parallel(node):
                text = text.replace("nnet::dense<", "fpgaft::dense_stream<", 1)
            return text

    class _CsimRedirect(_Renamed):
        """An io_parallel call of hls4ml's ``nnet::<call>`` on a tagged node becomes
        ``fpgaft::<call>`` (hls4ml's own except in the fpga-ft csim) for the nodes ``applies``."""

        call = ""

        def __init__(self):
            super().__init__()
            self.include_header = list(self.include_header) + [INCLUDE]

        def applies(self, node) -> bool:
            raise NotImplementedError

        def match(self, node):
            return (super().match(node) and node.get_attr(ATTR_MODEL, None) is not None and _io_parallel(node)
                    and self.applies(node))

        def format(self, node):
            return super().format(node).replace(f"nnet::{self.call}<", f"fpgaft::{self.call}<", 1)

    class FtReluFunctionTemplate(_CsimRedirect, ActivationFunctionTemplate):
        """io_parallel ReLU -> fpgaft::relu."""

        call = "relu"

        def applies(self, node):
            return str(node.get_attr("activation")).lower() == "relu"

    class FtPoolingFunctionTemplate(_CsimRedirect, PoolingFunctionTemplate):
        """io_parallel channels-last Pooling2D -> fpgaft::pooling2d_cl."""

        call = "pooling2d_cl"

        def applies(self, node):
            return node.class_name == "Pooling2D"

    def conv_config(base):
        class FtConvConfigTemplate(_TaggedConfig, base):
            def format(self, node):
                text = super().format(node)
                n_in = node.get_attr("n_chan") * node.get_attr("filt_width") * node.get_attr("filt_height", 1)
                n_out = node.get_attr("n_filt")
                # hls4ml batches a whole 1x1 Conv1D into one dense call in one io_parallel
                # corner case; fpga-ft computes convolutions per output pixel instead.
                if "nnet::BatchedDenseForConv1D" in text:
                    text = text.replace("nnet::BatchedDenseForConv1D", "nnet::Conv1DLatency")
                    mult_end = text.index("};")
                    head = re.sub(r"n_in = \d+;", f"n_in = {n_in};", text[:mult_end], count=1)
                    head = re.sub(r"n_out = \d+;", f"n_out = {n_out};", head, count=1)
                    text = head + text[mult_end:]
                return _swap_kernel(text, node, n_out, f"config{node.index}_mult", expose_inputs=False)

        return FtConvConfigTemplate

    def conv_function(base, dim):
        class FtConvFunctionTemplate(_TaggedFunction, base):
            def format(self, node):
                text = super().format(node)
                if _io_parallel(node):
                    text = re.sub(rf"nnet::(pointwise_)?conv_{dim}_cl<", f"fpgaft::conv_{dim}_cl<", text)
                return text

        return FtConvFunctionTemplate

    return [
        FtDenseConfigTemplate,
        FtDenseFunctionTemplate,
        FtReluFunctionTemplate,
        FtPoolingFunctionTemplate,
        conv_config(Conv1DConfigTemplate),
        conv_config(Conv2DConfigTemplate),
        conv_config(PointwiseConv1DConfigTemplate),
        conv_config(PointwiseConv2DConfigTemplate),
        conv_function(Conv1DFunctionTemplate, "1d"),
        conv_function(Conv2DFunctionTemplate, "2d"),
        conv_function(PointwiseConv1DFunctionTemplate, "1d"),
        conv_function(PointwiseConv2DFunctionTemplate, "2d"),
    ]


def register() -> None:
    """Register fpga-ft's templates and headers with hls4ml (idempotent)."""
    global _registered
    if _registered:
        return
    from hls4ml.backends import get_backend

    vivado = get_backend("Vivado")
    for cls in build_template_classes():
        vivado.register_template(cls)
    for backend_name in ("Vivado", "Vitis", "VivadoAccelerator"):
        backend = get_backend(backend_name)
        for header in HEADERS:
            backend.register_source(HEADER_DIR / header)
    _registered = True
