"""Measure the 'after' column of docs/robustness-cases.md: run every case of issue 12 (bad
inputs, read-only places, signals, orphans; the siblings in tests/test_bad_inputs.py)
through the real CLI and record exit status, the error line, time (s), files written and
orphan processes. Prints/writes measured numbers only.

Usage: python scripts/measure_bad_inputs.py [OUT.json]"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]
os.environ.setdefault("FPGA_FT_CACHE", str(Path(tempfile.gettempdir()) / "fpgaft_cache_bad_inputs"))

import numpy as np  # noqa: E402

import test_bad_inputs as tb  # noqa: E402
import test_interrupts as ti  # noqa: E402

OUT = Path(sys.argv[1] if len(sys.argv) > 1 else "bad_inputs_measured.json")
rows: list[dict] = []
T = Path(tempfile.mkdtemp(prefix="issue12-"))
M, D = str(tb.MLP), str(tb.DATA)


def short(text: str, tmp: Path | None = None) -> str:
    text = text.replace(str(ROOT) + "/", "")
    if tmp is not None:
        text = text.replace(str(tmp), "$T")
    return text.replace(str(T), "$T")


def cli(args, cwd, prefix=(), env=None, timeout=900):
    start = time.perf_counter()
    proc = tb._cli(args, cwd, timeout=timeout, prefix=prefix, env=env)
    return proc, time.perf_counter() - start


def record(case, command, proc, seconds, tmp=None, extra="", test=""):
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    rows.append({"case": case, "command": short(command, tmp), "status": proc.returncode,
                 "lines": len(lines), "traceback": "Traceback" in proc.stderr,
                 "message": short(lines[-1] if lines else "", tmp), "seconds": round(seconds, 2), "extra": extra,
                 "test": test})
    print(json.dumps(rows[-1]), flush=True)


# --------------------------------------------------------------- the parametrised table
float_models = tb.build_float_models(T / "float")
for case_id, argv, words, read_only in tb.CASES:
    with tb._case_dir(T / case_id if not read_only else T, read_only) as (work, prefix, env):
        work.mkdir(exist_ok=True)
        tb._setup(work)
        before = tb._snapshot(work)
        args = [a.format(tmp=work, **float_models) for a in argv]
        proc, seconds = cli(args, work, prefix, env)
        written = "nothing written" if tb._snapshot(work) == before else "FILES CHANGED"
        who = " (run as nobody)" if prefix else ""
        record(case_id, "fpga-ft " + " ".join(args), proc, seconds, work, written + who,
               f"test_bad_inputs.py::test_bad_input_is_one_error_line[{case_id}]")

# --------------------------------------------------------------- hostile Lambda
from test_modelio import _hostile_lambda_model  # noqa: E402

lam = T / "lambda"
lam.mkdir()
marker = lam / "marker.txt"
model = _hostile_lambda_model(marker)
model.save(lam / "evil.h5")
model.save(lam / "evil.keras")
(lam / "evil.json").write_text(model.to_json())
model.save_weights(lam / "evil_weights.h5")
np.savez(lam / "d.npz", x=np.zeros((3, 4)), y=np.zeros(3, dtype=int))
for form, extra_args in (("h5", []), ("keras", []), ("json", ["--weights", str(lam / "evil_weights.h5")])):
    marker.unlink(missing_ok=True)
    args = ["csim", str(lam / f"evil.{form}"), *extra_args, "--data", str(lam / "d.npz")]
    proc, seconds = cli(args, lam)
    record(f"hostile-lambda-{form}", "fpga-ft " + " ".join(args), proc, seconds, lam,
           "marker file written: " + ("YES" if marker.exists() else "no"),
           f"test_modelio.py::test_hostile_lambda_runs_no_code[{form}]")

# --------------------------------------------------------------- plan YAML
from test_core_pipeline import BILLION_LAUGHS  # noqa: E402

from fpga_ft.core.errors import FpgaFtError  # noqa: E402
from fpga_ft.core.plan import ProtectionPlan  # noqa: E402

ydir = T / "yaml"
ydir.mkdir()
yaml_cases = {
    "plan-billion-laughs": (BILLION_LAUGHS.encode(), "[alias-True]"),
    "plan-non-utf8": (b"layers:\n  fc1:\n    protected_msbs: \xff\xfe\n", "[not UTF-8]"),
    "plan-deeply-nested": (("x: " + "[" * 200 + "]" * 200 + "\n").encode(), "[nested deeper]"),
    "plan-layer-twice": (b"layers:\n  fc1: {protected_msbs: 1}\n  fc1: {protected_msbs: 2}\n", "[repeats the key]"),
}
for name, (content, _) in yaml_cases.items():
    path = ydir / f"{name}.yml"
    path.write_bytes(content)
    start = time.perf_counter()
    try:
        ProtectionPlan.load(path)
        parse = "accepted"
    except FpgaFtError:
        parse = "refused"
    load_seconds = time.perf_counter() - start
    args = ["csim", M, "--data", D, "--plan", str(path)]
    proc, seconds = cli(args, ydir)
    record(name, "fpga-ft " + " ".join(args), proc, seconds, ydir,
           f"plan load {parse} in {load_seconds * 1000:.1f} ms (in process); whole CLI {seconds:.1f} s",
           "test_core_pipeline.py::test_hostile_plan_yaml_is_one_line_error_fast")

# --------------------------------------------------------------- labels
from fpga_ft.generate.modelio import load_data  # noqa: E402

ldir = T / "labels"
ldir.mkdir()
x, _ = load_data(tb.DATA)
label_cases = {"labels-negative": np.array([0, -1, 2]), "labels-ge-outputs": np.array([0, 1, 10]),
               "labels-onehot-5": np.eye(5)[[0, 1, 2]], "labels-onehot-12": np.eye(12)[[0, 1, 2]]}
for name, labels in label_cases.items():
    data = ldir / f"{name}.npz"
    np.savez(data, x=x[:3], y=labels)
    for command in ("csim", "analyze", "inject"):
        args = [command, M, "--data", str(data), *(["--ber", "1e-3"] if command == "inject" else [])]
        proc, seconds = cli(args, ldir)
        record(f"{name} ({command})", "fpga-ft " + " ".join(args), proc, seconds, ldir, "",
               "test_modelio.py::test_labels_must_fit_the_model" if name != "labels-negative" else
               "test_modelio.py::test_labels_must_fit_the_model[...-labels4] (added)")

# --------------------------------------------------------------- numbers
ndir = T / "numbers"
ndir.mkdir()
for name, args in (("bringup --vectors 0", ["bringup", M, "--board", "zcu102", "--data", D, "-o", "kit",
                                             "--vectors", "0"]),
                   ("bringup --vectors -1", ["bringup", M, "--board", "zcu102", "--data", D, "-o", "kit",
                                              "--vectors", "-1"]),
                   ("demo --trials -1", ["demo", "--trials", "-1"])):
    proc, seconds = cli(args, ndir)
    record(name, "fpga-ft " + " ".join(args), proc, seconds, ndir,
           "nothing written" if not list(ndir.iterdir()) else "FILES WRITTEN",
           "test_modelio.py::test_counts_are_checked_before_any_work")

# --------------------------------------------------------------- SIGKILL of inject's parent
kdir = T / "sigkill_inject"
kdir.mkdir()
proc = ti._start(["--checkpoint-dir", kdir / "ck"], kdir)
workers: set[int] = set()
deadline = time.monotonic() + 300
while time.monotonic() < deadline and proc.poll() is None and len(workers) < 2:
    workers = ti._workers(proc.pid)
    time.sleep(0.05)
children = ti._descendants(proc.pid)
proc.send_signal(signal.SIGKILL)
proc.wait()
time.sleep(5)
ps = subprocess.run(["ps", "-o", "pid,ppid,stat,args", "-p", ",".join(map(str, sorted(children)))],
                    capture_output=True, text=True).stdout.strip().splitlines()
alive = [line for line in ps[1:] if line.split()[2][0] not in "ZX"]
rows.append({"case": "SIGKILL parent of inject --workers 2", "command": "fpga-ft inject models/digits_mlp.h5 "
             f"--data models/digits_test.npz {' '.join(ti.CAMPAIGN)} --checkpoint-dir $T/ck; kill -9 PARENT",
             "status": proc.returncode, "lines": None, "traceback": None, "message": "",
             "seconds": None, "extra": f"{len(workers)} workers, {len(children)} children before the kill; "
             f"`ps -p <children>` 5 s after: {len(alive)} alive" + (f": {alive}" if alive else ""),
             "test": "test_interrupts.py::test_workers_die_with_sigkilled_parent"})
print(json.dumps(rows[-1]), flush=True)
for pid in children:
    if ti._alive(pid):
        os.kill(pid, signal.SIGKILL)

# --------------------------------------------------------------- SIGINT / SIGTERM, resume
idir = T / "signals"
idir.mkdir()
ref = idir / "reference.json"
subprocess.run(ti._command("--no-checkpoint", "--json", ref), cwd=idir, env=ti._env(), capture_output=True,
               timeout=900, check=True)
reference = ti._numbers(ref)
for signum, group in ((signal.SIGINT, True), (signal.SIGTERM, False)):
    work = idir / signum.name
    work.mkdir()
    ckpt, out = work / "ck", work / "result.json"
    proc = ti._start(["--checkpoint-dir", ckpt, "--json", out], work)
    while proc.poll() is None and not (ckpt.is_dir() and ti._checkpoint_lines(ckpt) >= 8):
        time.sleep(0.02)
    children = ti._descendants(proc.pid)
    os.killpg(proc.pid, signum) if group else proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    left = ti._wait_gone(children, 10.0)
    written = out.exists()
    rerun = subprocess.run(ti._command("--checkpoint-dir", ckpt, "--json", out), cwd=work, env=ti._env(),
                           capture_output=True, text=True, timeout=900)
    same = rerun.returncode == 0 and ti._numbers(out) == reference
    resumed = json.loads(out.read_text())["results"][0]["resumed_chunks"] if rerun.returncode == 0 else None
    lines = [line for line in stderr.splitlines() if line.strip()]
    rows.append({"case": f"{signum.name} to inject --workers 2 ({'process group' if group else 'parent only'})",
                 "command": "fpga-ft inject ... --workers 2 --checkpoint-dir $T/ck --json $T/result.json",
                 "status": proc.returncode, "lines": len(lines), "traceback": "Traceback" in stderr,
                 "message": short(lines[-1] if lines else "", work), "seconds": None,
                 "extra": f"{len(left)} processes left; result file written: {written}; "
                          f"rerun exit {rerun.returncode}, resumed_chunks {resumed}, numbers equal to the "
                          f"uninterrupted run: {same}",
                 "test": "test_interrupts.py::test_interrupted_inject_resumes_with_same_numbers"})
    print(json.dumps(rows[-1]), flush=True)

# --------------------------------------------------------------- SIGKILL of convert -o
cdir = T / "sigkill_convert"
cdir.mkdir()
for existing in (False, True):
    target = cdir / ("existing" if existing else "new")
    if existing:
        subprocess.run(ti._convert(target), cwd=cdir, env=ti._env(), capture_output=True, check=True, timeout=900)
    before = ti._tree(target)
    proc = subprocess.Popen(ti._convert(target), cwd=cdir, env=ti._env(), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    staged: list[Path] = []
    while proc.poll() is None and not staged:
        staged = [p for p in cdir.glob(f".{target.name}.fpgaft-tmp-*") if p.is_dir() and any(p.iterdir())]
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    state = ("unchanged" if ti._tree(target) == before else "CHANGED") if existing else \
        ("absent" if not target.exists() else "PRESENT")
    leftover = [p.name.replace(str(proc.pid), "PID") for p in cdir.glob(".*fpgaft-tmp*")]
    rerun = subprocess.run(ti._convert(target), cwd=cdir, env=ti._env(), capture_output=True, text=True,
                           timeout=900)
    left_after = list(cdir.glob(".*fpgaft-tmp*"))
    rows.append({"case": f"SIGKILL convert -o {'existing project' if existing else 'new dir'} mid-build",
                 "command": f"fpga-ft convert models/digits_mlp.h5 --board zcu102 --data models/digits_test.npz "
                            f"-o $T/{target.name}; kill -9 when .{target.name}.fpgaft-tmp-PID has content",
                 "status": proc.returncode, "lines": None, "traceback": None, "message": "", "seconds": None,
                 "extra": f"target {state}; left: {leftover}; rerun exit {rerun.returncode}, leftovers after "
                          f"rerun: {len(left_after)}",
                 "test": f"test_interrupts.py::test_sigkilled_convert_leaves_no_partial_project"
                         f"[{'existing-project' if existing else 'new-dir'}]"})
    print(json.dumps(rows[-1]), flush=True)

OUT.write_text(json.dumps(rows, indent=1))
print("wrote", OUT)
