#!/usr/bin/env python
"""Measured fault-injection throughput (inferences per second) on the bundled models.

For the digits MLP and CNN, on their test sets:

  (a) hls4ml's own fault-free C simulation: ``convert_model(model, None)``, then
      ``hls_model.compile()`` and ``hls_model.predict(x)`` on the test set, repeated;
  (b) fpga-ft's batched csim loop at BER 0 (unprotected design, ``Design.library.run``);
  (c) an fpga-ft campaign (``run_campaign``) at BER 1e-4 on all four sites, every layer
      protected (``ProtectionPlan.uniform(layers, protected_msbs=2)``), 1 worker.

Prints the three throughputs and the ratios (c)/(a) (target >= 5) and (b)/(c) (target
<= 1.3: faults and protection cost at most 30 %). Every figure is the best of a few
timed runs after a warm-up. Usage: ``python scripts/bench_inject.py [--seconds S]``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MODELS = {
    "digits_mlp": ("models/digits_mlp.h5", "models/digits_test.npz"),
    "digits_cnn": ("models/digits_cnn.h5", "models/digits_img_test.npz"),
}


def _rate(fn, n_per_call: int, min_seconds: float, trials: int = 3) -> tuple[float, float]:
    """Best-of-``trials`` inferences per second, as (per CPU second of this process, per
    wall-clock second); each trial calls ``fn`` until ``min_seconds`` of CPU time passed.
    Everything measured is single-threaded, so CPU time is the figure that does not depend
    on what else runs on the machine."""
    fn()  # warm-up
    best_cpu = best_wall = 0.0
    for _ in range(trials):
        calls, cpu0, wall0 = 0, time.process_time(), time.perf_counter()
        while True:
            fn()
            calls += 1
            cpu = time.process_time() - cpu0
            if cpu >= min_seconds:
                break
        wall = time.perf_counter() - wall0
        best_cpu = max(best_cpu, calls * n_per_call / cpu)
        best_wall = max(best_wall, calls * n_per_call / wall)
    return best_cpu, best_wall


def bench(name: str, model_path: Path, data_path: Path, min_seconds: float) -> dict:
    import numpy as np

    from fpga_ft.core.faults import FaultModel
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.convert import convert_model
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_data, load_model
    from fpga_ft.simulate.campaign import run_campaign

    model = load_model(model_path)
    x, y = load_data(data_path)
    n = len(x)

    # (a) hls4ml's own predict (fault-free, its own compiled library)
    with tempfile.TemporaryDirectory(prefix="bench_hls4ml_") as tmp:
        converted = convert_model(model, None, output_dir=tmp)
        converted.hls_model.compile()
        xa = np.ascontiguousarray(x)
        rate_a = _rate(lambda: converted.hls_model.predict(xa), n, min_seconds)

    # (b) our batched loop at BER 0, unprotected design
    plain = build_design(model)
    library = plain.library
    library.configure()
    xb = np.ascontiguousarray(x.reshape(n, -1))
    rate_b = _rate(lambda: library.run(xb), n, min_seconds)

    # (c) campaign at BER 1e-4, all sites, every layer protected (2 MSBs), 1 worker
    protected = build_design(model, ProtectionPlan.uniform(plain.layers, protected_msbs=2))
    fault_model = FaultModel(ber=1e-4)
    repeats = 20
    results = []

    def campaign():
        results.append(run_campaign(protected, x, y, fault_model, repeats=repeats, seed=len(results), workers=1))

    rate_c = _rate(campaign, repeats * n, min_seconds)
    last = results[-1]
    return {"model": name, "samples": n, "a": rate_a, "b": rate_b, "c": rate_c,
            "accuracy_c": last.accuracy_mean, "clean": last.clean_accuracy,
            "flips_per_inference": sum(last.faults_injected.values()) / last.inferences}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="minimum seconds per timed trial")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import warnings

    warnings.filterwarnings("ignore")

    rows = []
    for name in args.models:
        model_path, data_path = MODELS[name]
        rows.append(bench(name, ROOT / model_path, ROOT / data_path, args.seconds))

    print("throughput in inferences per CPU second (wall-clock figures in brackets), best of 3, 1 process")
    print("  (a) hls4ml predict, fault-free")
    print("  (b) fpga-ft batched csim, BER 0, unprotected")
    print("  (c) fpga-ft campaign, BER 1e-4 on all sites, protected_msbs=2 on every layer, 1 worker")
    header = f"{'model':<11} {'(a) hls4ml':>20} {'(b) BER 0':>20} {'(c) campaign':>20} " \
             f"{'(c)/(a)':>8} {'(b)/(c)':>8} {'flips/inf':>9} {'acc (c)':>8}"
    print(header)
    print("-" * len(header))
    ok = True
    for r in rows:
        ca, bc = r["c"][0] / r["a"][0], r["b"][0] / r["c"][0]
        ok &= ca >= 5.0 and bc <= 1.3
        cells = [f"{v[0]:,.0f} ({v[1]:,.0f})" for v in (r["a"], r["b"], r["c"])]
        print(f"{r['model']:<11} {cells[0]:>20} {cells[1]:>20} {cells[2]:>20} "
              f"{ca:>7.2f}x {bc:>7.2f}x {r['flips_per_inference']:>9.2f} {100 * r['accuracy_c']:>7.2f}%")
    print(f"targets: (c)/(a) >= 5x, (b)/(c) <= 1.3x: {'met' if ok else 'NOT met'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
