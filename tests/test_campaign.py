"""Tests for fpga_ft.simulate.campaign (run_campaign / run_sweep) and ``fpga-ft inject``."""

from __future__ import annotations

import json
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import SITES, FaultModel
from fpga_ft.core.paths import MODELS_DIR, ROOT
from fpga_ft.simulate.campaign import (
    CampaignResult,
    chunk_seed,
    run_campaign,
    run_sweep,
)
from fpga_ft.simulate.campaign.layout import pass_slices as _slices

MLP = MODELS_DIR / "digits_mlp.h5"
MLP_DATA = MODELS_DIR / "digits_test.npz"


@pytest.fixture(scope="module")
def env(mlp_design):
    """The MLP's unprotected design and one with every bit of every layer TMR'd (64 MSBs)."""
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.generate.design import build_design

    plain = mlp_design["plain"]
    full = build_design(mlp_design["model"], ProtectionPlan.uniform(plain.layers, protected_msbs=64))
    return {**mlp_design, "full": full}


def _numbers(result: CampaignResult) -> dict:
    """Everything of a result that must be reproducible (not the timing)."""
    data = result.to_dict()
    for key in ("seconds", "inferences_per_second", "resumed_chunks", "checkpoint"):
        data.pop(key)
    return data


# ----------------------------------------------------------------------------- layout, seeds
def test_chunk_layout_and_seeds():
    transient = FaultModel(1e-3)
    assert _slices(540, transient, 512) == [(0, 270), (270, 540)]
    assert _slices(100, transient, 512) == [(0, 100)]
    persistent = FaultModel(1e-3, mode="persistent", scrub_interval=100)
    slices = _slices(540, persistent, 512)
    assert all((b - a) % 100 == 0 for a, b in slices[:-1]) and slices[-1][1] == 540
    assert slices == [(0, 300), (300, 540)]
    assert _slices(540, FaultModel(1e-3, mode="persistent", scrub_interval=1), 512) == _slices(540, transient, 512)
    assert _slices(540, FaultModel(1e-3, mode="persistent", scrub_interval=1000), 100) == [(0, 540)]
    assert _slices(540, FaultModel(1e-3, mode="persistent", scrub_interval=0), 64) == [(0, 540)]
    assert chunk_seed(0, 1e-3, 5) == chunk_seed(0, 1e-3, 5)
    seeds = {chunk_seed(s, b, i) for s in (0, 1) for b in (1e-4, 1e-3) for i in range(50)}
    assert len(seeds) == 200
    # the words as a uint32 array: the seeds of the list of words (campaigns keep their seeds)
    for seed, ber, index in ((0, 1e-4, 0), (2**64 - 1, 2e-4, 2**40 + 3), (12345, 0.0, 2**32 - 1)):
        words = [seed & 0xFFFFFFFF, seed >> 32, *struct.unpack("<II", struct.pack("<d", ber)),
                 index & 0xFFFFFFFF, index >> 32]
        assert chunk_seed(seed, ber, index) == int(np.random.SeedSequence(words).generate_state(1, np.uint64)[0])


# ----------------------------------------------------------------------------- BER 0, determinism
def test_ber_zero_is_fault_free(env):
    plain, full, x, y = env["plain"], env["full"], env["x"], env["y"]
    clean = plain.predict(x)
    # TMR does not change fault-free results: bit-exact
    np.testing.assert_array_equal(full.predict(x), clean)
    for mode in ("transient", "persistent"):
        result = run_campaign(full, x, y, FaultModel(0.0, mode=mode), repeats=2)
        assert result.accuracy_mean == result.clean_accuracy == np.mean(clean.argmax(1) == y)
        assert result.output_changed == 0
        assert all(v == 0 for v in result.faults_injected.values())
    library = plain.library
    library.configure((0.0,) * 4, persistent=True, seed=123, scrub_interval=7)
    outputs, injected, masked = library.run(x)
    np.testing.assert_array_equal(outputs, clean)
    assert sum(injected.values()) == sum(masked.values()) == 0


def test_same_seed_same_result_any_workers(env):
    plain, x, y = env["plain"], env["x"], env["y"]
    model = FaultModel(1e-4)
    one = run_campaign(plain, x, y, model, repeats=6, seed=3, workers=1, chunk_size=100)
    two = run_campaign(plain, x, y, model, repeats=6, seed=3, workers=2, chunk_size=100)
    assert _numbers(one) == _numbers(two)
    assert one.inferences == 6 * len(x) and one.chunks == 36
    again = run_campaign(plain, x, y, model, repeats=6, seed=3, chunk_size=100)
    assert _numbers(again) == _numbers(one)
    other = run_campaign(plain, x, y, model, repeats=6, seed=4, chunk_size=100)
    assert other.faults_injected != one.faults_injected
    assert other.repeat_accuracies != one.repeat_accuracies
    # persistent mode too
    persistent = FaultModel(1e-4, sites="weights", mode="persistent", scrub_interval=50)
    p1 = run_campaign(plain, x, y, persistent, repeats=3, seed=1, workers=1)
    p2 = run_campaign(plain, x, y, persistent, repeats=3, seed=1, workers=2)
    assert _numbers(p1) == _numbers(p2)


def test_workers_never_import_tensorflow(env):
    from fpga_ft.simulate.campaign import workers

    assert "tensorflow" in sys.modules  # this process converted models
    run_campaign(env["plain"], env["x"], env["y"], FaultModel(1e-4), repeats=2, workers=2)
    pool = workers._get_pool(2)
    probes = [pool.submit(workers._worker_probe).result() for _ in range(4)]
    assert not any(p["tensorflow"] for p in probes)
    assert any(p["libraries"] for p in probes)


def test_early_stop_deterministic(env):
    plain, x, y = env["plain"], env["x"], env["y"]
    model = FaultModel(3e-4)
    kwargs = dict(repeats=2, seed=5, target_halfwidth=0.01, max_repeats=40)
    one = run_campaign(plain, x, y, model, workers=1, **kwargs)
    two = run_campaign(plain, x, y, model, workers=2, **kwargs)
    assert _numbers(one) == _numbers(two)
    assert one.stopped_early and 2 <= one.repeats < 40
    assert one.ci_halfwidth <= 0.01
    # one repeat fewer would not have met the target
    shorter = run_campaign(plain, x, y, model, repeats=one.repeats - 1, seed=5)
    assert shorter.ci_halfwidth > 0.01 or one.repeats == 2
    capped = run_campaign(plain, x, y, model, repeats=1, seed=5, target_halfwidth=0.001, max_repeats=3)
    assert capped.repeats == 3 and not capped.stopped_early


# ----------------------------------------------------------------------------- accuracy behaviour
def test_full_protection_recovers_accuracy(env):
    x, y = env["x"], env["y"]
    model = FaultModel(1e-3, sites="products,accumulators")
    bare = run_campaign(env["plain"], x, y, model, repeats=4, seed=0)
    protected = run_campaign(env["full"], x, y, model, repeats=4, seed=0)
    clean = bare.clean_accuracy
    assert protected.clean_accuracy == clean
    assert clean - bare.accuracy_mean > 0.3  # the unprotected MLP clearly loses accuracy
    recovered = (protected.accuracy_mean - bare.accuracy_mean) / (clean - bare.accuracy_mean)
    assert recovered >= 0.9, recovered
    assert sum(protected.faults_masked.values()) > 0.9 * sum(protected.faults_injected.values())


def test_accuracy_falls_with_ber(env):
    bers = [1e-5, 1e-4, 1e-3, 1e-2]
    results = run_sweep(env["plain"], env["x"], env["y"], bers, repeats=4, seed=2)
    assert [r.ber for r in results] == bers
    data = results.to_dict()  # a SweepResult: the fault model with the BERs swept, one entry a BER
    expected = FaultModel(0.0).to_dict()
    expected.pop("ber")
    assert data["fault_model"] == {**expected, "bers": bers}
    assert [entry["ber"] for entry in data["results"]] == bers
    for lower, higher in zip(results, results[1:]):
        assert higher.accuracy_mean <= lower.ci_high  # never significantly better at a higher BER
    assert results[0].accuracy_mean > results[-1].ci_high  # and clearly worse over the range
    assert results[0].accuracy_mean <= results[0].clean_accuracy
    for r in results:
        assert r.ci_low <= r.accuracy_mean <= r.ci_high


def test_persistent_mode(env):
    plain, x, y = env["plain"], env["x"], env["y"]
    # scrubbing after every inference is the transient model, flip for flip
    transient = run_campaign(plain, x, y, FaultModel(1e-4, sites="weights"), repeats=2, seed=9)
    every = run_campaign(plain, x, y, FaultModel(1e-4, sites="weights", mode="persistent", scrub_interval=1),
                         repeats=2, seed=9)
    assert every.faults_injected == transient.faults_injected
    assert every.accuracy_mean == transient.accuracy_mean
    # weight flips accumulating over 540 inferences hurt much more
    rare = run_campaign(plain, x, y, FaultModel(1e-4, sites="weights", mode="persistent", scrub_interval=540),
                        repeats=2, seed=9)
    assert rare.accuracy_mean < transient.ci_low
    assert rare.faults_injected["weights"] == pytest.approx(transient.faults_injected["weights"], rel=0.15)


def test_bad_inputs(env):
    plain, x, y = env["plain"], env["x"], env["y"]
    with pytest.raises(FpgaFtError, match="input shape mismatch"):
        run_campaign(plain, x[:, :32], y, FaultModel(1e-3))
    with pytest.raises(FpgaFtError, match="labels"):
        run_campaign(plain, x, y[:10], FaultModel(1e-3))
    with pytest.raises(FpgaFtError, match="repeats"):
        run_campaign(plain, x, y, FaultModel(1e-3), repeats=0)
    with pytest.raises(FpgaFtError, match="BER must be in"):
        run_sweep(plain, x, y, [1e-3, 1.5])


def test_result_dict_roundtrip(env):
    result = run_campaign(env["plain"], env["x"], env["y"], FaultModel(1e-4), repeats=1)
    data = json.loads(json.dumps(result.to_dict()))
    for key in ("ber", "clean_accuracy", "accuracy", "inferences", "faults_injected", "faults_masked", "seconds"):
        assert key in data
    assert set(data["accuracy"]) >= {"mean", "ci_low", "ci_high"}
    assert set(data["faults_injected"]) == set(SITES)
    assert _numbers(CampaignResult.from_dict(data)) == _numbers(result)


# ----------------------------------------------------------------------------- checkpoints
def test_checkpoint_resume_ignores_torn_line(env, tmp_path):
    plain, x, y = env["plain"], env["x"], env["y"]
    model = FaultModel(1e-3)
    kwargs = dict(repeats=4, seed=1, chunk_size=100)
    reference = run_campaign(plain, x, y, model, **kwargs)
    first = run_campaign(plain, x, y, model, checkpoint=tmp_path, **kwargs)
    assert _numbers(first) == _numbers(reference) and first.resumed_chunks == 0
    path = Path(first.checkpoint)
    lines = path.read_text().splitlines(keepends=True)
    assert len(lines) == 1 + 24  # header + one line per chunk
    # as if killed mid-write: half the chunks, then a torn line
    path.write_text("".join(lines[:13]) + lines[13][: len(lines[13]) // 2])
    resumed = run_campaign(plain, x, y, model, checkpoint=tmp_path, **kwargs)
    assert resumed.resumed_chunks == 12
    assert _numbers(resumed) == _numbers(reference)
    assert all(json.loads(line) for line in path.read_text().splitlines())
    # a finished campaign reruns from its checkpoint alone
    assert run_campaign(plain, x, y, model, checkpoint=tmp_path, **kwargs).resumed_chunks == 24
    # other arguments, other file
    other = run_campaign(plain, x, y, model, checkpoint=tmp_path, repeats=4, seed=2, chunk_size=100)
    assert other.checkpoint != first.checkpoint and other.resumed_chunks == 0


_KILL_SCRIPT = """
import sys
from fpga_ft.simulate.campaign import run_campaign
from fpga_ft.generate.design import open_design
from fpga_ft.core.faults import FaultModel
from fpga_ft.generate.modelio import load_data
x, y = load_data(sys.argv[2])
r = run_campaign(open_design(sys.argv[1]), x, y, FaultModel(1e-2), repeats=60, seed=7, chunk_size=20,
                 checkpoint=sys.argv[3])
print(r.accuracy_mean, r.resumed_chunks)
"""


def test_sigkill_then_rerun_gives_same_numbers(env, tmp_path):
    plain, x, y = env["plain"], env["x"], env["y"]
    ckpt = tmp_path / "ckpt"
    script = tmp_path / "campaign_script.py"
    script.write_text(_KILL_SCRIPT)
    command = [sys.executable, str(script), str(plain.project_dir), str(MLP_DATA), str(ckpt)]
    total_chunks = 60 * 27
    proc = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.time() + 60
    lines = 0
    while time.time() < deadline and proc.poll() is None:
        files = list(ckpt.glob("*.jsonl"))
        if files:
            lines = files[0].read_bytes().count(b"\n")
            if lines >= 20:
                break
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "campaign finished before it could be killed"
    files = list(ckpt.glob("*.jsonl"))
    done = files[0].read_bytes().count(b"\n") - 1
    assert 0 < done < total_chunks
    rerun = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr
    accuracy, resumed = rerun.stdout.split()
    assert int(resumed) >= done - 1
    resumed_result = run_campaign(plain, x, y, FaultModel(1e-2), repeats=60, seed=7, chunk_size=20,
                                  checkpoint=ckpt)
    assert resumed_result.resumed_chunks == total_chunks
    uninterrupted = run_campaign(plain, x, y, FaultModel(1e-2), repeats=60, seed=7, chunk_size=20)
    assert float(accuracy) == uninterrupted.accuracy_mean
    assert _numbers(resumed_result) == _numbers(uninterrupted)


# ----------------------------------------------------------------------------- CLI
def test_cli_inject_json_and_plot(env, tmp_path, capsys):
    from fpga_ft.cli import main

    out = tmp_path / "inject.json"
    plot = tmp_path / "acc.png"
    code = main(["inject", str(MLP), "--data", str(MLP_DATA), "--ber", "1e-4", "1e-3", "--repeats", "2",
                 "--sites", "products,accumulators", "--checkpoint-dir", str(tmp_path / "ck"),
                 "--plot", str(plot), "--json", str(out)])
    assert code == 0
    data = json.loads(out.read_text())
    assert {"model", "plan", "fault_model", "results"} <= set(data)
    assert data["fault_model"]["sites"] == ["products", "accumulators"]
    assert len(data["results"]) == 2
    for entry, ber in zip(data["results"], (1e-4, 1e-3)):
        assert entry["ber"] == ber
        for key in ("clean_accuracy", "accuracy", "inferences", "faults_injected", "faults_masked", "seconds"):
            assert key in entry
        assert set(entry["accuracy"]) >= {"mean", "ci_low", "ci_high"}
        assert entry["inferences"] == 2 * 540
        assert entry["faults_injected"]["weights"] == 0
    assert plot.is_file() and plot.stat().st_size > 1000
    text = capsys.readouterr().out
    assert "BER" in text and "95% CI" in text
    # the same campaign again: resumed from the checkpoint, same numbers
    out2 = tmp_path / "again.json"
    assert main(["inject", str(MLP), "--data", str(MLP_DATA), "--ber", "1e-4", "1e-3", "--repeats", "2",
                 "--sites", "products,accumulators", "--checkpoint-dir", str(tmp_path / "ck"),
                 "--json", str(out2)]) == 0
    again = json.loads(out2.read_text())
    for a, b in zip(data["results"], again["results"]):
        assert a["accuracy"] == b["accuracy"] and a["faults_injected"] == b["faults_injected"]
        assert b["resumed_chunks"] == b["chunks"]


def test_cli_project_dir_and_plan(env, tmp_path):
    from fpga_ft.cli import main

    out = tmp_path / "p.json"
    assert main(["inject", str(env["full"].project_dir), "--data", str(MLP_DATA), "--ber", "1e-3",
                 "--repeats", "1", "--no-checkpoint", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["plan"]["layers"]  # the project's own plan
    assert data["results"][0]["accuracy"]["mean"] > 0.9


@pytest.mark.parametrize("argv, needle", [
    (["--ber", "2"], "BER must be in [0, 1], got 2"),
    (["--ber", "1e-3", "--sites", "weights,gates"], "unknown fault site 'gates'"),
    (["--ber", "1e-3", "--mode", "sticky"], "invalid choice"),
    (["--ber", "1e-3", "--data", str(MODELS_DIR / "digits_img_test.npz")], "input shape mismatch"),
])
def test_cli_errors(env, capsys, argv, needle):
    from fpga_ft.cli import main

    base = ["inject", str(MLP), "--data", str(MLP_DATA)]
    assert main(base + argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and needle in err
    assert len(err.splitlines()) == 1
