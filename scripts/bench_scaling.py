#!/usr/bin/env python
"""Measured campaign throughput with 1 and 2 local worker processes and with 1 and 2 Dask
workers (a ``distributed.LocalCluster`` on loopback, one process and one thread per worker).

The campaign: ``run_campaign`` at BER 1e-4 on all four sites, every layer protected
(``ProtectionPlan.uniform(layers, protected_msbs=2)``), on a bundled model's test set,
``--repeats`` passes, no checkpoint. Each configuration runs once as a warm-up (worker
start, design opened by each worker), then ``--trials`` timed runs; the best wall-clock
throughput (inferences per second) is printed with the speed-up over one local process and
whether every configuration gave the same result (it must: chunk seeds do not depend on
where a chunk runs). Wall-clock throughput depends on the cores free at the time.

Usage: ``python scripts/bench_scaling.py [--model digits_mlp|digits_cnn] [--repeats R]``
(needs ``pip install 'fpga-ft[dask]'``).
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
    "digits_mlp": ("models/digits_mlp.h5", "models/digits_test.npz", 300),
    "digits_cnn": ("models/digits_cnn.h5", "models/digits_img_test.npz", 40),
}
TIMING = {"seconds", "inferences_per_second", "resumed_chunks", "checkpoint"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="digits_mlp")
    parser.add_argument("--repeats", type=int, default=None, help="passes over the test set per run")
    parser.add_argument("--trials", type=int, default=2, help="timed runs per configuration (best is kept)")
    args = parser.parse_args()
    os.environ.setdefault("FPGA_FT_CACHE", str(Path(tempfile.gettempdir()) / "fpga-ft-bench-cache"))
    sys.path.insert(0, str(ROOT))

    import distributed

    from fpga_ft.core.faults import FaultModel
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_data, load_model
    from fpga_ft.simulate import cluster
    from fpga_ft.simulate.campaign import run_campaign, shutdown_workers

    model_file, data_file, default_repeats = MODELS[args.model]
    repeats = args.repeats or default_repeats
    model = load_model(ROOT / model_file)
    plain = build_design(model)
    design = build_design(model, ProtectionPlan.uniform(plain.layers, protected_msbs=2))
    x, y = load_data(ROOT / data_file)
    fault_model = FaultModel(ber=1e-4)

    def campaign(workers: int, scheduler: str | None):
        return run_campaign(design, x, y, fault_model, repeats=repeats, seed=1, workers=workers, scheduler=scheduler)

    def best(workers: int, scheduler: str | None):
        result = campaign(workers, scheduler)  # warm-up
        rates = []
        for _ in range(args.trials):
            start = time.perf_counter()
            result = campaign(workers, scheduler)
            rates.append(result.inferences / (time.perf_counter() - start))
        numbers = {k: v for k, v in result.to_dict().items() if k not in TIMING}
        return max(rates), numbers

    rows = []
    for workers in (1, 2):
        rows.append((f"local, {workers} process{'es' if workers > 1 else ''}", *best(workers, None)))
    shutdown_workers()
    for workers in (1, 2):
        with distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=40,
        ) as local:
            rows.append(
                (f"Dask LocalCluster, {workers} worker{'s' if workers > 1 else ''}", *best(1, local.scheduler_address))
            )
            cluster.close_clients()

    n = repeats * len(x)
    print(
        f"{args.model}: campaign BER 1e-4, all sites, protected_msbs 2, {repeats} passes x {len(x)} samples "
        f"= {n:,} inferences per run, best of {args.trials}; {os.cpu_count()} CPUs"
    )
    base = rows[0][1]
    print(f"{'executor':<30} {'inferences/s':>13} {'x 1 process':>12}")
    for label, rate, _ in rows:
        print(f"{label:<30} {rate:>13,.0f} {rate / base:>12.2f}")
    same = all(numbers == rows[0][2] for _, _, numbers in rows)
    print(f"same result everywhere: {'yes' if same else 'NO'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
