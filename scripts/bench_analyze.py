"""Time the default ``fpga-ft analyze`` on the hls4ml example MNIST CNN and report the
ranking stability it achieved.

    python scripts/bench_analyze.py [--samples 1000] [--budget-seconds S] [--json OUT]

Model: the published hls4ml example ``qkeras_mnist_cnn`` (28x28x1 input, QConv2D 16 3x3,
max-pool, QConv2D 16 3x3, max-pool, QDense 10, softmax; io_stream), given as its hls4ml
config YAML (``tests/fixtures/hls4ml_examples/qkeras_mnist_cnn_config.yml``).

Data: **real MNIST is not bundled** with fpga-ft, so the test set is synthetic: N images
uniform in [0, 1] (seed 0), shape (N, 28, 28, 1), labelled with the model's own argmax
(the QKeras reference, which the bit-exact C simulation matches), so the clean accuracy is
100 % and every accuracy loss is caused by the injected faults. On such noise the network's
decisions are not those it makes on digits (it may, for instance, put most images in one
class), so the losses say how this network reacts to faults on this input, not on MNIST;
the timing does not depend on the data (one C-simulated inference costs the same).

The analysis runs as a child process (``python -m fpga_ft.cli analyze ...``, default
options plus ``--json``); its wall time and CPU time (user + system, from the children's
rusage) are printed, with the load average: on a shared machine the wall time is inflated
by the other jobs, CPU time is not. The stability comes from the run itself (JSON
``sampling``): the Spearman correlation between the losses measured on the even and on the
odd inferences of every estimate (two independent halves), per layer, and for the bits
whether the knee found from each half agrees.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "tests" / "fixtures" / "hls4ml_examples" / "qkeras_mnist_cnn_config.yml"


def make_data(path: Path, samples: int, seed: int = 0) -> dict:
    """Synthetic MNIST-shaped test set labelled by the model itself."""
    import warnings

    import numpy as np

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    warnings.simplefilter("ignore")  # Keras/QKeras deprecation noise
    from fpga_ft.generate.intake import open_model

    prepared = open_model(CONFIG, announce=False)
    rng = np.random.default_rng(seed)
    x = rng.random((samples, 28, 28, 1), dtype=np.float32)
    out = np.asarray(prepared.reference(prepared.prepare_inputs(x)))
    y = out.reshape(len(x), -1).argmax(-1)
    np.savez(path, x=x, y=y)
    return {"samples": samples, "seed": seed, "class_counts": np.bincount(y, minlength=10).tolist()}


def _fmt(v, digits=2):
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=1000, help="synthetic test images (default 1000)")
    parser.add_argument("--budget-seconds", type=float, default=None, help="pass --budget-seconds S to analyze")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the benchmark figures here")
    parser.add_argument("--keep", default=None, metavar="DIR", help="keep the data and analyze JSON in DIR")
    args = parser.parse_args(argv)

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="fpgaft_bench_"))
    work.mkdir(parents=True, exist_ok=True)
    data, out_json = work / "mnist_synthetic.npz", work / "analyze.json"
    data_info = make_data(data, args.samples)
    print(f"data: {args.samples} synthetic images uniform in [0, 1] labelled by the model's argmax "
          f"(real MNIST is not bundled); classes {data_info['class_counts']}")

    cmd = [sys.executable, "-m", "fpga_ft.cli", "analyze", str(CONFIG), "--data", str(data), "--json", str(out_json)]
    if args.budget_seconds is not None:
        cmd += ["--budget-seconds", str(args.budget_seconds)]
    print("running: fpga-ft " + " ".join(cmd[3:]), flush=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_after = os.getloadavg()
    if proc.returncode != 0:
        print(proc.stdout + proc.stderr, file=sys.stderr)
        return proc.returncode
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(out_json.read_text())
    print(proc.stdout.rstrip())

    print("\n== measured ==")
    print(f"wall {wall:.1f} s, CPU {cpu:.1f} s (user + system, whole command incl. Python/TensorFlow start-up); "
          f"analyze's own phases: " + ", ".join(f"{k} {v:.1f} s" for k, v in result["seconds"].items()))
    print(f"load average (1 min) {load_before[0]:.2f} before, {load_after[0]:.2f} after, on {os.cpu_count()} "
          "cores: with other jobs running, wall time is inflated; CPU time is the comparable figure")
    stability = {}
    for key, s in result["sampling"].items():
        stab = s.get("stability", {})
        stability[key] = stab
        print(f"{key}: {s['mode']}, {s['inferences']:,} inferences ({s['fixed_design_inferences']:,} for the fixed "
              f"passes), status {s['status']}, {s['seconds_per_inference'] * 1e3:.2f} ms per inference")
        per = ", ".join(f"{g} {_fmt(v)}" for g, v in stab.get("split_half_spearman_per_group", {}).items())
        print(f"  split-half Spearman {_fmt(stab.get('split_half_spearman'))} pooled "
              f"(Spearman-Brown {_fmt(stab.get('spearman_brown'))}); per group: {per}")
        knee = stab.get("knee_split_half")
        if knee:
            print(f"  knees from each half: {knee['knees']} -> equal in {knee['layers_agreeing']} of "
                  f"{knee['layers']} layers, within one bit in {knee['layers_within_one_bit']}")
    if "budget" in result:
        print(f"budget: {result['budget']}")
    figures = {"wall_seconds": wall, "cpu_seconds": cpu, "load_average": [load_before, load_after],
               "cores": os.cpu_count(), "data": data_info, "command": cmd[3:], "seconds": result["seconds"],
               "sampling": result["sampling"], "knee": {k: v["knee"] for k, v in result["knee"].items()},
               "budget": result.get("budget")}
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
