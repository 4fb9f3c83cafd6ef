"""Time the default ``fpga-ft analyze`` (injection oracle + bit analysis) on the bundled
MNIST-size CNN and digits CNN: wall and CPU seconds per step, and what the sampling did.

    python scripts/bench_analyze.py [--model mnist_cnn|digits_cnn|all] [--checkout DIR]
                                    [--threads N] [--budget-seconds S] [--json OUT]

Models (``models/``): ``mnist_cnn.h5`` on ``mnist_test.npz`` (2,000 real MNIST test images,
380,128 MACs per inference) and ``digits_cnn.h5`` on ``digits_img_test.npz`` (540 8x8
digits). Each analysis runs as a child process, ``python -m fpga_ft.cli analyze MODEL --data
D --json OUT`` with the default options (plus ``--threads`` / ``--budget-seconds`` when
given), from this checkout or from ``--checkout DIR`` (another checkout of fpga-ft, e.g. a
``git worktree`` of an older commit, to time the code before a change on the same machine,
back to back).

Printed, all measured: the child's wall time and CPU time (user + system, from the
children's rusage: Python and TensorFlow start-up included), the load average before and
after, and per step (load, design, injection, bits, ...) the wall seconds the command
reports (JSON ``seconds``) and, from versions that report it, the CPU seconds of the process
over every thread (JSON ``cpu_seconds``); CPU / wall says how busy the threads were. On a
machine shared with other jobs the wall time is inflated by them and CPU time is the
comparable figure, and the CPU seconds each thread spent measuring (from versions that
report them) say whether the threads shared the work evenly; the schedule's parallel
efficiency (inferences / (threads x the inferences on the longest thread path, summed over
the rounds), counted, not timed) says how much of the threads' time the schedule lets them
work on idle cores. Then, per analysis, the inferences it ran, the statuses, and the
stability the run measured itself (split-half Spearman per layer; knees from each half).
The first run of a model also compiles its csim library (``design``); later runs find it
in the cache (``$FPGA_FT_CACHE``).
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
MODELS = {
    "mnist_cnn": ("models/mnist_cnn.h5", "models/mnist_test.npz"),
    "digits_cnn": ("models/digits_cnn.h5", "models/digits_img_test.npz"),
}


def _fmt(v, digits=2):
    return "-" if v is None or v != v else f"{v:.{digits}f}"


def run_analysis(name: str, checkout: Path, out_json: Path, extra: list[str]) -> dict:
    """One ``fpga-ft analyze`` child process; its figures (wall, CPU, load, the JSON)."""
    model, data = MODELS[name]
    cmd = [sys.executable, "-m", "fpga_ft.cli", "analyze", str(ROOT / model), "--data", str(ROOT / data),
           "--json", str(out_json), "--quiet", *extra]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(checkout), os.environ.get("PYTHONPATH", "")])}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    load_before = os.getloadavg()
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=checkout, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode != 0:
        raise SystemExit(f"{name}: fpga-ft analyze failed ({proc.returncode}):\n{proc.stdout}{proc.stderr}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    result = json.loads(out_json.read_text())
    return {"model": name, "command": "fpga-ft " + " ".join(cmd[3:]), "checkout": str(checkout),
            "wall_seconds": wall, "cpu_seconds": cpu, "load_average": [load_before[0], os.getloadavg()[0]],
            "cores": os.cpu_count(), "seconds": result["seconds"], "step_cpu_seconds": result.get("cpu_seconds"),
            "sampling": result["sampling"], "knee": {k: v["knee"] for k, v in result["knee"].items()},
            "budget": result.get("budget")}


def report(fig: dict) -> None:
    print(f"\n== {fig['model']} ({fig['checkout']}) ==\n{fig['command']}")
    print(f"whole command: wall {fig['wall_seconds']:.1f} s, CPU {fig['cpu_seconds']:.1f} s (user + system); "
          f"load average (1 min) {fig['load_average'][0]:.2f} before, {fig['load_average'][1]:.2f} after, "
          f"{fig['cores']} cores")
    cpu = fig["step_cpu_seconds"] or {}
    print(f"{'step':<20}{'wall s':>10}{'CPU s':>10}{'CPU/wall':>10}")
    for step, wall in fig["seconds"].items():
        c = cpu.get(step)
        print(f"{step:<20}{wall:>10.2f}{_fmt(c):>10}{_fmt(c / wall if c is not None and wall > 0 else None):>10}")
    for key, s in fig["sampling"].items():
        stab = s.get("stability", {})
        print(f"{key}: {s['inferences']:,} inferences ({s['inferences_min']:,}-{s['inferences_max']:,} per estimate, "
              f"{s['estimates']} estimates), status {s['status']}, {s.get('threads', 1)} threads, "
              f"{s['seconds_per_inference'] * 1e3:.3f} ms per inference per thread")
        shares = s.get("thread_cpu_seconds")
        if shares:
            print(f"  CPU seconds per thread (busiest first): {', '.join(f'{v:.1f}' for v in shares)}")
        if s.get("critical_path_inferences"):
            print(f"  schedule: {s['critical_path_inferences']:,} inferences on the longest thread path, parallel "
                  f"efficiency {_fmt(s.get('parallel_efficiency'))} (inferences / (threads x that path))")
        per = ", ".join(f"{g} {_fmt(v)}" for g, v in stab.get("split_half_spearman_per_group", {}).items())
        print(f"  split-half Spearman {_fmt(stab.get('split_half_spearman'))} pooled; per group: {per}")
        knee = stab.get("knee_split_half")
        if knee:
            print(f"  knees from each half: equal in {knee['layers_agreeing']} of {knee['layers']} layers")
    print(f"knees: {fig['knee']}")
    if fig.get("budget"):
        print(f"budget: {fig['budget']}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=[*MODELS, "all"], default="all", help="which model (default all)")
    parser.add_argument("--checkout", default=str(ROOT), metavar="DIR",
                        help="the fpga-ft checkout to time (default: this one)")
    parser.add_argument("--threads", type=int, default=None, help="pass --threads N to analyze")
    parser.add_argument("--budget-seconds", type=float, default=None, help="pass --budget-seconds S to analyze")
    parser.add_argument("--json", default=None, metavar="OUT", help="write the figures here")
    args = parser.parse_args(argv)

    extra = []
    if args.threads is not None:
        extra += ["--threads", str(args.threads)]
    if args.budget_seconds is not None:
        extra += ["--budget-seconds", str(args.budget_seconds)]
    names = list(MODELS) if args.model == "all" else [args.model]
    figures = []
    with tempfile.TemporaryDirectory(prefix="fpgaft_bench_") as work:
        for name in names:
            fig = run_analysis(name, Path(args.checkout).resolve(), Path(work) / f"{name}.json", extra)
            report(fig)
            figures.append(fig)
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
