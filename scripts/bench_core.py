"""Issue 2 measurements: csim compile time, fault-free csim throughput, and the C++ the
protection adds, for the bundled MLP and CNN; and the synthesis C++ (every replica a
constant-weight kept module) compiled by hls4ml's own ``compile()``. Prints measured
numbers only (wall seconds).

    python scripts/bench_core.py
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from fpga_ft.core.plan import LayerProtection, ProtectionPlan  # noqa: E402
from fpga_ft.generate.convert import convert_model  # noqa: E402
from fpga_ft.generate.design import build_design  # noqa: E402
from fpga_ft.generate.modelio import load_data, load_model  # noqa: E402
from fpga_ft.simulate.csim import build_library  # noqa: E402

MODELS = {"mlp": ("digits_mlp.h5", "digits_test.npz"), "cnn": ("digits_cnn.h5", "digits_img_test.npz")}
REPEATS = 20


def throughput(design, x) -> float:
    lib = design.library
    lib.configure()
    lib.run(x)  # warm-up
    start = time.perf_counter()
    for _ in range(REPEATS):
        lib.run(x)
    return REPEATS * len(x) / (time.perf_counter() - start)


def synthesis_compile_seconds(model, plan, output_dir: Path) -> float:
    """Wall seconds of hls4ml's ``compile()`` of the protected project: the synthesis C++
    (no ``FPGAFT_CSIM``), as ``predict()`` and a vendor csim build it."""
    converted = convert_model(model, plan, output_dir=output_dir)
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        converted.hls_model.compile()
    return time.perf_counter() - start


def config_lines(project: Path) -> int:
    return len((project / "firmware" / "parameters.h").read_text().splitlines())


def main() -> None:
    header_lines = sum(len((ROOT / "hls_templates" / h).read_text().splitlines())
                       for h in ("fpgaft_tmr.h", "fpgaft_runtime.h"))
    print(f"fpga-ft headers (shared by all layers): {header_lines} lines "
          f"(fpgaft_tmr.h + csim-only fpgaft_runtime.h)")
    for name, (model_file, data_file) in MODELS.items():
        model = load_model(ROOT / "models" / model_file)
        x, _ = load_data(ROOT / "models" / data_file)
        with tempfile.TemporaryDirectory() as tmp:
            base = build_design(model, None, output_dir=Path(tmp) / "base", compile=False)
            layers = base.layers
            plans = {
                "unprotected": ProtectionPlan(),
                "msbs=2 every layer": ProtectionPlan.uniform(layers, protected_msbs=2),
                "msbs=2 + 10% critical": ProtectionPlan({
                    i.name: LayerProtection(2, list(range(max(1, i.n_out // 10)))) for i in layers}),
                "all neurons critical": ProtectionPlan.uniform(layers, all_critical=True),
            }
            hls4ml_dir = Path(tmp) / "hls4ml"
            import hls4ml

            config = hls4ml.utils.config_from_keras_model(model, granularity="name", backend="Vitis")
            plain = hls4ml.converters.convert_from_keras_model(  # plain hls4ml: no fpga-ft tags
                model, hls_config=config, output_dir=str(hls4ml_dir), backend="Vitis", bit_exact=True,
                part=base.meta["part"], clock_period=base.meta["clock_period_ns"])
            start = time.perf_counter()
            plain.compile()
            hls4ml_compile = time.perf_counter() - start
            for label, plan in plans.items():
                design = build_design(model, plan, output_dir=Path(tmp) / label.replace(" ", "_"), compile=False)
                _, seconds = build_library(design.project_dir, force=True)
                rate = throughput(design, x)
                extra = config_lines(design.project_dir) - config_lines(hls4ml_dir)
                synth = synthesis_compile_seconds(model, plan, Path(tmp) / ("synth_" + label.replace(" ", "_")))
                print(f"{name} {label:>24}: csim compile {seconds:5.2f} s, {rate:10,.0f} inferences/s, "
                      f"synthesis C++ compile() {synth:5.2f} s, "
                      f"parameters.h +{extra} lines vs plain hls4ml ({extra / len(layers):.1f} per layer)")
            print(f"{name} hls4ml's own compile(): {hls4ml_compile:.2f} s")


if __name__ == "__main__":
    main()
