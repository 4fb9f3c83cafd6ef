"""Campaigns on a Dask distributed cluster (fpga_ft.simulate.cluster, ``--scheduler``): a
2-worker LocalCluster on loopback gives the same JSON as 1 worker and 2 local processes."""

from __future__ import annotations

import json
import os
import threading

import numpy as np
import pytest

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import FaultModel
from fpga_ft.core.paths import MODELS_DIR
from fpga_ft.simulate import cluster

distributed = pytest.importorskip("distributed")

MLP = MODELS_DIR / "digits_mlp.h5"
MLP_DATA = MODELS_DIR / "digits_test.npz"
TIMING = {"resumed_chunks", "checkpoint", "threads", "budget_left_seconds"}


@pytest.fixture(scope="module")
def dask_cluster():
    """A 2-worker LocalCluster (processes, one thread each) on loopback."""
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=":0", silence_logs=40
    ) as local:
        yield local
        cluster.close_clients()


@pytest.fixture(scope="module")
def design(tmp_path_factory):
    previous = os.environ.get("FPGA_FT_CACHE")
    if not previous:
        os.environ["FPGA_FT_CACHE"] = str(tmp_path_factory.getbasetemp() / "fpga_ft_cache")
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.modelio import load_data, load_model

    x, y = load_data(MLP_DATA)
    yield build_design(load_model(MLP)), x, y
    if not previous:
        os.environ.pop("FPGA_FT_CACHE", None)


@pytest.fixture(autouse=True)
def _local_by_default(monkeypatch):
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    yield
    monkeypatch.delenv(cluster.SCHEDULER_ENV, raising=False)
    cluster.select_scheduler(None)


def _without_timing(data):
    """The JSON without what depends on the clock or on earlier runs."""
    if isinstance(data, dict):
        return {
            k: _without_timing(v)
            for k, v in data.items()
            if k not in TIMING and not k.endswith(("seconds", "_per_second", "_per_inference"))
        }
    if isinstance(data, list):
        return [_without_timing(v) for v in data]
    return data


def _inject(tmp_path, name: str, *extra: str) -> dict:
    from fpga_ft.cli import main

    out = tmp_path / f"{name}.json"
    code = main(
        [
            "inject",
            str(MLP),
            "--data",
            str(MLP_DATA),
            "--ber",
            "1e-4",
            "1e-3",
            "--repeats",
            "3",
            "--seed",
            "7",
            "--no-checkpoint",
            "--json",
            str(out),
            *extra,
        ]
    )
    assert code == 0
    return _without_timing(json.loads(out.read_text()))


def test_inject_same_json_local_and_dask(design, dask_cluster, tmp_path, monkeypatch):
    one = _inject(tmp_path, "one")
    two = _inject(tmp_path, "two", "--workers", "2")
    address = dask_cluster.scheduler_address
    grouped = _inject(tmp_path, "grouped", "--scheduler", address)  # all chunks of a BER in one task
    monkeypatch.setattr(cluster, "DASK_TASK_INFERENCES", 1)  # one chunk per task: both workers busy
    per_chunk = _inject(tmp_path, "per_chunk", "--scheduler", address)
    assert one == two == grouped == per_chunk
    assert [r["inferences"] for r in one["results"]] == [3 * 540, 3 * 540]
    # the chunks ran on both of the cluster's workers, each of which opened the design once
    client = cluster.dask_client(address)
    from fpga_ft.simulate.campaign import workers

    probes = client.run(workers._worker_probe)
    assert len(probes) == 2
    assert all(not p["tensorflow"] for p in probes.values())
    assert all(len(p["libraries"]) == 1 for p in probes.values())


def test_env_scheduler_and_checkpoint_resume(design, dask_cluster, tmp_path, monkeypatch):
    from fpga_ft.simulate.campaign import run_campaign

    plain, x, y = design
    model = FaultModel(3e-4)
    monkeypatch.setenv(cluster.SCHEDULER_ENV, dask_cluster.scheduler_address)
    assert cluster.resolve_scheduler() == dask_cluster.scheduler_address
    on_dask = run_campaign(plain, x, y, model, repeats=4, seed=2, chunk_size=200, checkpoint=tmp_path)
    assert on_dask.resumed_chunks == 0 and on_dask.chunks == 4 * 3
    monkeypatch.delenv(cluster.SCHEDULER_ENV)
    resumed = run_campaign(plain, x, y, model, repeats=4, seed=2, chunk_size=200, checkpoint=tmp_path)
    assert resumed.resumed_chunks == resumed.chunks  # the Dask run's checkpoint serves a local run
    local = run_campaign(plain, x, y, model, repeats=4, seed=2, chunk_size=200, workers=2)
    assert _without_timing(on_dask.to_dict()) == _without_timing(resumed.to_dict()) == _without_timing(local.to_dict())


def test_oracles_same_numbers_on_dask(design, dask_cluster):
    """The injection oracle (adaptive and fixed) and the bit analysis: the numbers of one
    thread, with every estimate's jobs run as Dask tasks."""
    from fpga_ft.measure import vulnerability as V

    plain, x, y = design
    x, y = x[:300], y[:300]

    def both(run):
        cluster.select_scheduler(None)
        local = run()
        cluster.select_scheduler(dask_cluster.scheduler_address)
        try:
            return local, run()
        finally:
            cluster.select_scheduler(None)

    for repeats in (None, 1):
        sampling = V.Sampling(repeats=repeats, resolve_ranks=True)
        one, dask = both(
            lambda: V.injection_analysis(plain, x, y, seed=2, progress=False, layers=["fc2", "fc3"], sampling=sampling)
        )
        for name in one.loss:
            for field in ("loss", "inferences", "output_error", "mismatch"):
                np.testing.assert_array_equal(getattr(one, field)[name], getattr(dask, field)[name])
            assert one.status[name] == dask.status[name]
    bits1, bits2 = both(lambda: V.bit_analysis(plain, x, y, seed=4, progress=False, sampling=V.Sampling()))
    assert bits1.rows == bits2.rows
    assert (plain.predict(x).argmax(1) == y).mean() == pytest.approx(one.clean_accuracy)


def test_oracle_deadline_on_dask(design, dask_cluster):
    """Under a time budget the client submits only the jobs that fit: none when time is up."""
    from fpga_ft.measure import vulnerability as V
    from fpga_ft.measure.vulnerability import sampling as VS

    plain, x, y = design
    cluster.select_scheduler(dask_cluster.scheduler_address)
    result = V.injection_analysis(
        plain, x[:100], y[:100], seed=1, progress=False, layers=["fc3"], sampling=V.Sampling(deadline=VS._clock())
    )
    assert set(result.status["fc3"]) == {"not measured"}
    assert result.inferences["fc3"].sum() == 0


def test_cli_analyze_same_json_on_dask(design, dask_cluster, tmp_path):
    from fpga_ft.cli import main

    outputs = []
    for extra in ([], ["--scheduler", dask_cluster.scheduler_address]):
        out = tmp_path / f"analyze{len(outputs)}.json"
        args = ["analyze", str(MLP), "--data", str(MLP_DATA), "--method", "injection", "--repeats", "1"]
        assert main([*args, "--bit-repeats", "1", "--threads", "1", "--json", str(out), *extra]) == 0
        outputs.append(_without_timing(json.loads(out.read_text())))
    assert outputs[0] == outputs[1]


def test_threads_borrow_separate_libraries(design):
    from fpga_ft.simulate.campaign import workers

    plain = design[0]
    key = (str(plain.project_dir), plain.library.path.name)
    barrier = threading.Barrier(2)
    seen = []

    def borrow():
        with workers.borrowed_library(*key) as library:
            seen.append(library)
            barrier.wait(timeout=30)

    threads = [threading.Thread(target=borrow) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(seen) == 2 and seen[0] is not seen[1]  # one handle per thread running at once
    with workers.borrowed_library(*key) as again:
        assert again in seen  # kept for reuse


@pytest.mark.parametrize(
    "address, message",
    [
        ("localhost:8786", "must be a Dask scheduler address"),
        ("tcp://127.0.0.1:99999", "must be a Dask scheduler address"),
        ("tcp://127.0.0.1:1", "cannot reach the Dask scheduler"),
    ],
)
def test_bad_scheduler_one_line_exit_2(address, message, capsys, monkeypatch):
    from fpga_ft.cli import main

    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_SECONDS", 1.0)
    code = main(["inject", str(MLP), "--data", str(MLP_DATA), "--ber", "1e-4", "--scheduler", address])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(err) == 1 and err[0].startswith("error: ") and message in err[0]
    monkeypatch.setenv(cluster.SCHEDULER_ENV, address)
    with pytest.raises(FpgaFtError, match=message.replace("--scheduler", cluster.SCHEDULER_ENV)):
        cluster.select_scheduler(None)


@pytest.mark.parametrize(
    "command",
    [
        ["inject", "--ber", "1e-4"],
        ["analyze"],
        ["compare", "--ber", "1e-4", "--board", "zcu102"],
        ["optimize", "--ber", "1e-4", "--board", "zcu102", "--trials", "1"],
    ],
)
def test_every_command_checks_the_scheduler_first(command, capsys):
    from fpga_ft.cli import main

    name, *options = command
    code = main([name, str(MLP), "--data", str(MLP_DATA), *options, "--scheduler", "localhost:8786"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert err == ["error: --scheduler must be a Dask scheduler address tcp://HOST:PORT, got 'localhost:8786'"]
