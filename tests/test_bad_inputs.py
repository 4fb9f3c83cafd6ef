"""Every expected failure of the CLI is one line ``error: ...`` on stderr, exit status 2,
no traceback, and nothing written (issue 12).

Each case runs ``python -m fpga_ft.cli`` in a subprocess (working directory: the test's
tmp_path) on inputs that fail fast: output locations that cannot be written, plans that
are hostile or malformed, project directories whose ``fpgaft_design.json`` is broken, and
models with float weights (not bit-exact by construction). The tmp_path tree is compared
before and after: nothing may be created, changed or removed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.core.paths import MODELS_DIR, ROOT

MLP = MODELS_DIR / "digits_mlp.h5"
DATA = MODELS_DIR / "digits_test.npz"
REPORT_XML = ROOT / "tests" / "fixtures" / "reports" / "fastmachinelearning-hls4ml" / "test" / "pytest" / \
    "test_report" / "Vivado" / "myproject_csynth.xml"
BOARD = "zcu102"


def _env() -> dict:
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    return env


def _cli(args, cwd, timeout=300, prefix=(), env=None):
    return subprocess.run([*prefix, sys.executable, "-m", "fpga_ft.cli", *map(str, args)], capture_output=True,
                          text=True, env=env or _env(), cwd=cwd, timeout=timeout)


# ----------------------------------------------------------------------------- inputs
BOMB = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
       "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nlayers: [*c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
DUPLICATE = "layers:\n  fc1:\n    protected_msbs: 2\n  fc1:\n    protected_msbs: 3\n"
NON_UTF8 = "layers:\n  fc1:   # r\xe9sum\xe9\n    protected_msbs: 2\n".encode("latin-1")


def _type(width, integer):
    return {"width": width, "integer": integer, "signed": True}


def _design_meta() -> dict:
    """A well-formed fpgaft_design.json (one Dense layer) for the broken-project cases."""
    layer = {"name": "fc1", "kind": "Dense", "index": 2, "n_in": 64, "n_out": 32, "n_positions": 1,
             "n_input_words": 64, "input_type": _type(16, 6), "weight_type": _type(6, 1),
             "bias_type": _type(6, 1), "accum_type": _type(20, 9), "result_type": _type(20, 9),
             "reuse_factor": 1, "strategy": "latency", "io_type": "io_parallel"}
    return {"board": None, "part": "xcvu13p-flga2577-2-e", "backend": "Vitis", "io_type": "io_parallel",
            "clock_period_ns": 5.0, "bit_exact_conversion": True, "project_name": "myproject",
            "conversion_warnings": [], "input_quantization": None, "n_inputs": 64, "n_outputs": 10,
            "protected_layers": [], "layers": [layer], "replica_instances": {}, "replica_instances_total": 0}


def _project(tmp: Path, name: str, content) -> None:
    prj = tmp / name
    prj.mkdir()
    (prj / "fpgaft_plan.yml").write_text("layers: {}\n")
    path = prj / "fpgaft_design.json"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif isinstance(content, str):
        path.write_text(content)
    else:
        path.write_text(json.dumps(content))


def _setup(tmp: Path) -> None:
    """What the cases point at (created before the 'before' snapshot)."""
    (tmp / "afile").write_text("I am a file\n")
    (tmp / "adir").mkdir()
    (tmp / "adir.png").mkdir()
    (tmp / "foreign").mkdir()
    (tmp / "foreign" / "notes.txt").write_text("someone else's files\n")
    (tmp / "bomb.yml").write_text(BOMB)
    (tmp / "dup.yml").write_text(DUPLICATE)
    (tmp / "latin1.yml").write_bytes(NON_UTF8)
    _project(tmp, "prj_not_json", "{\"n_inputs\": 64, \"layers\": [")
    _project(tmp, "prj_not_utf8", b"{\"n_inputs\": \xff}")
    meta = _design_meta()
    del meta["n_inputs"]
    _project(tmp, "prj_no_n_inputs", meta)
    meta = _design_meta()
    meta["layers"][0]["accum_type"] = {"width": "wide", "integer": 9}
    _project(tmp, "prj_bad_layer", meta)
    meta = _design_meta()
    meta["n_outputs"] = -3
    _project(tmp, "prj_bad_outputs", meta)
    _project(tmp, "prj_list", [1, 2, 3])


@pytest.fixture(scope="module")
def float_models(tmp_path_factory):
    return build_float_models(tmp_path_factory.mktemp("float_models"))


def build_float_models(out: Path) -> dict:
    """Models that are not bit-exact by construction: a QKeras QDense without quantizers
    and a plain Keras Dense (float weights), each after a quantized input, with data."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    from fpga_ft.generate.modelio import _quiet_tensorflow

    _quiet_tensorflow()
    inputs = tf.keras.Input((8,), name="inp")
    h = QActivation(quantized_bits(8, 3, alpha=1), name="in_q")(inputs)
    h = QDense(6, name="fc_float")(h)  # no kernel_quantizer / bias_quantizer
    h = QActivation(quantized_relu(6, 2), name="relu")(h)
    logits = QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                    name="fc_out")(h)
    model = tf.keras.Model(inputs, logits)
    rng = np.random.default_rng(1)
    kernel, bias = model.get_layer("fc_float").get_weights()
    kernel = rng.uniform(-1, 1, kernel.shape).astype(np.float32)
    kernel[0, 0] = 1e-3   # below hls4ml's weight LSB: truncated in the hardware (--allow-inexact)
    model.get_layer("fc_float").set_weights([kernel, rng.uniform(-0.5, 0.5, bias.shape).astype(np.float32)])
    model.save(out / "float_qdense.h5")
    inputs = tf.keras.Input((8,), name="inp")
    h = QActivation(quantized_bits(8, 3, alpha=1), name="in_q")(inputs)
    logits = tf.keras.layers.Dense(4, name="dense_plain")(h)
    tf.keras.Model(inputs, logits).save(out / "float_dense.h5")
    rng = np.random.default_rng(0)
    np.savez(out / "float_data.npz", x=rng.uniform(-2, 2, (48, 8)).astype(np.float32),
             y=rng.integers(0, 4, 48))
    return {"FLOATQ": out / "float_qdense.h5", "FLOATD": out / "float_dense.h5", "FDATA": out / "float_data.npz"}


# ----------------------------------------------------------------------------- the table
M, D = str(MLP), str(DATA)
OPT = ["--ber", "1e-4", "--board", BOARD]
#: (id, argv with {tmp} / {FLOATQ} / {FLOATD} / {FDATA}, words the error line must contain, needs a
#: read-only directory)
CASES = [
    # convert
    ("convert-o-is-file", ["convert", M, "--board", BOARD, "-o", "{tmp}/afile"], ["-o/--output-dir", "afile"], False),
    ("convert-o-below-file", ["convert", M, "--board", BOARD, "-o", "{tmp}/afile/prj"], ["afile", "is a file"], False),
    ("convert-o-foreign-dir", ["convert", M, "--board", BOARD, "-o", "{tmp}/foreign"],
     ["foreign", "not an fpga-ft project"], False),
    ("convert-json-is-dir", ["convert", M, "--board", BOARD, "-o", "{tmp}/new_prj", "--json", "{tmp}/adir"],
     ["--json", "is a directory"], False),
    ("convert-plan-bomb", ["convert", M, "--board", BOARD, "--plan", "{tmp}/bomb.yml", "-o", "{tmp}/new_prj"],
     ["bomb.yml", "alias"], False),
    ("convert-o-read-only", ["convert", M, "--board", BOARD, "-o", "{tmp}/ro/prj"],
     ["-o/--output-dir", "not writable"], True),
    ("convert-o-is-read-only-dir", ["convert", M, "--board", BOARD, "-o", "{tmp}/ro"],
     ["-o/--output-dir", "not writable"], True),
    ("convert-json-read-only", ["convert", M, "--board", BOARD, "-o", "{tmp}/new_prj", "--json", "{tmp}/ro/c.json"],
     ["--json", "not writable"], True),
    # csim
    ("csim-json-below-file", ["csim", M, "--data", D, "--json", "{tmp}/afile/out.json"], ["--json", "afile"], False),
    ("csim-json-read-only", ["csim", M, "--data", D, "--json", "{tmp}/ro/out.json"], ["--json", "not writable"], True),
    ("csim-float-qdense", ["csim", "{FLOATQ}", "--data", "{FDATA}"],
     ["layer 'fc_float'", "float weights", "kernel_quantizer", "--allow-inexact"], False),
    ("csim-plan-duplicate", ["csim", M, "--data", D, "--plan", "{tmp}/dup.yml"], ["dup.yml", "repeats the key"], False),
    ("csim-plan-non-utf8", ["csim", M, "--data", D, "--plan", "{tmp}/latin1.yml"], ["latin1.yml", "UTF-8"], False),
    # inject
    ("inject-checkpoint-is-file", ["inject", M, "--data", D, "--ber", "1e-3", "--checkpoint-dir", "{tmp}/afile"],
     ["--checkpoint-dir", "is a file"], False),
    ("inject-plot-is-dir", ["inject", M, "--data", D, "--ber", "1e-3", "--plot", "{tmp}/adir.png"],
     ["--plot", "is a directory"], False),
    ("inject-json-below-file", ["inject", M, "--data", D, "--ber", "1e-3", "--json", "{tmp}/afile/x/y.json"],
     ["--json", "afile"], False),
    ("inject-design-not-json", ["inject", "{tmp}/prj_not_json", "--data", D, "--ber", "1e-3"],
     ["fpgaft_design.json", "not valid JSON"], False),
    ("inject-design-not-utf8", ["inject", "{tmp}/prj_not_utf8", "--data", D, "--ber", "1e-3"],
     ["fpgaft_design.json", "UTF-8"], False),
    ("inject-design-missing-field", ["inject", "{tmp}/prj_no_n_inputs", "--data", D, "--ber", "1e-3"],
     ["fpgaft_design.json", "n_inputs"], False),
    ("inject-design-bad-layer", ["inject", "{tmp}/prj_bad_layer", "--data", D, "--ber", "1e-3"],
     ["fpgaft_design.json", "layers[0].accum_type.width"], False),
    ("inject-design-bad-outputs", ["inject", "{tmp}/prj_bad_outputs", "--data", D, "--ber", "1e-3"],
     ["fpgaft_design.json", "n_outputs"], False),
    ("inject-design-not-mapping", ["inject", "{tmp}/prj_list", "--data", D, "--ber", "1e-3"],
     ["fpgaft_design.json", "object"], False),
    ("inject-float-dense", ["inject", "{FLOATD}", "--data", "{FDATA}", "--ber", "1e-3"],
     ["layer 'dense_plain'", "float weights", "--allow-inexact"], False),
    ("inject-checkpoint-read-only", ["inject", M, "--data", D, "--ber", "1e-3", "--checkpoint-dir", "{tmp}/ro/ck"],
     ["--checkpoint-dir", "not writable"], True),
    # analyze
    ("analyze-plan-out-below-file", ["analyze", M, "--data", D, "--plan-out", "{tmp}/afile/plan.yml"],
     ["--plan-out", "afile"], False),
    ("analyze-plot-is-dir", ["analyze", M, "--data", D, "--plot", "{tmp}/adir.png"], ["--plot", "is a directory"],
     False),
    ("analyze-plot-read-only", ["analyze", M, "--data", D, "--plot", "{tmp}/ro/a.png"], ["--plot", "not writable"],
     True),
    ("analyze-plan-out-read-only", ["analyze", M, "--data", D, "--plan-out", "{tmp}/ro/plan.yml"],
     ["--plan-out", "not writable"], True),
    ("analyze-float-qdense", ["analyze", "{FLOATQ}", "--data", "{FDATA}", "--no-bits"],
     ["layer 'fc_float'", "float weights", "--allow-inexact"], False),
    # estimate
    ("estimate-json-is-dir", ["estimate", M, "--board", BOARD, "--json", "{tmp}/adir"], ["--json", "is a directory"],
     False),
    ("estimate-plan-duplicate", ["estimate", M, "--board", BOARD, "--plan", "{tmp}/dup.yml"],
     ["dup.yml", "repeats the key"], False),
    # optimize
    ("optimize-storage-below-file", ["optimize", M, "--data", D, *OPT, "--trials", "1",
                                     "--storage", "sqlite:///{tmp}/afile/o.db"], ["--storage", "is a file"], False),
    ("optimize-plan-out-is-dir", ["optimize", M, "--data", D, *OPT, "--trials", "1", "--plan-out", "{tmp}/adir"],
     ["--plan-out", "is a directory"], False),
    ("optimize-storage-read-only", ["optimize", M, "--data", D, *OPT, "--trials", "1",
                                    "--storage", "sqlite:///{tmp}/ro/o.db"], ["--storage", "not writable"], True),
    ("optimize-float-qdense", ["optimize", "{FLOATQ}", "--data", "{FDATA}", *OPT, "--trials", "1",
                               "--storage", "sqlite:///{tmp}/new.db"], ["layer 'fc_float'", "--allow-inexact"], False),
    # compare
    ("compare-plot-below-file", ["compare", M, "--data", D, *OPT, "--plot", "{tmp}/afile/c.png"], ["--plot", "afile"],
     False),
    ("compare-storage-is-dir", ["compare", M, "--data", D, *OPT, "--storage", "sqlite:///{tmp}/adir"],
     ["--storage", "is a directory"], False),
    ("compare-float-dense", ["compare", "{FLOATD}", "--data", "{FDATA}", *OPT, "--storage", "sqlite:///{tmp}/new.db"],
     ["layer 'dense_plain'", "--allow-inexact"], False),
    # bringup
    ("bringup-o-is-file", ["bringup", M, "--board", BOARD, "--data", D, "-o", "{tmp}/afile"],
     ["-o/--output-dir", "is a file"], False),
    ("bringup-json-is-dir", ["bringup", M, "--board", BOARD, "--data", D, "-o", "{tmp}/kit", "--json", "{tmp}/adir"],
     ["--json", "is a directory"], False),
    ("bringup-plan-non-utf8", ["bringup", M, "--board", BOARD, "--data", D, "--plan", "{tmp}/latin1.yml",
                               "-o", "{tmp}/kit"], ["latin1.yml", "UTF-8"], False),
    ("bringup-o-read-only", ["bringup", M, "--board", BOARD, "--data", D, "-o", "{tmp}/ro/kit"],
     ["-o/--output-dir", "not writable"], True),
    # demo
    ("demo-o-read-only", ["demo", "-o", "{tmp}/ro/demo"], ["-o/--output-dir", "not writable"], True),
    ("demo-o-is-file", ["demo", "-o", "{tmp}/afile"], ["-o/--output-dir", "is a file"], False),
    ("demo-o-below-file", ["demo", "-o", "{tmp}/afile/demo"], ["-o/--output-dir", "afile"], False),
    # verify
    ("verify-json-below-file", ["verify", M, "--layer", "fc1", "--neuron", "0", "--json", "{tmp}/afile/v.json"],
     ["--json", "afile"], False),
    ("verify-plan-bomb", ["verify", M, "--plan", "{tmp}/bomb.yml", "--layer", "fc1", "--neuron", "0"],
     ["bomb.yml", "alias"], False),
    # report
    ("report-json-is-dir", ["report", str(REPORT_XML), "--json", "{tmp}/adir"], ["--json", "is a directory"], False),
    ("report-json-below-file", ["report", str(REPORT_XML), "--json", "{tmp}/afile/r.json"], ["--json", "afile"],
     False),
]


def _snapshot(root: Path) -> dict:
    """Every path below ``root`` with its type, size and modification time."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            out[str(path.relative_to(root))] = (path.is_dir(), st.st_size, st.st_mtime_ns)
    return out


@functools.lru_cache(maxsize=None)
def _root_switch() -> tuple[str, ...] | None:
    """Root ignores file permissions: the prefix (``setpriv`` or ``runuser``) that runs a
    command as ``nobody``, the first that imports fpga_ft and is refused a write into a
    0o555 directory; None when neither does."""
    try:
        nobody = pwd.getpwnam("nobody")
    except KeyError:
        return None
    candidates = [["setpriv", f"--reuid={nobody.pw_uid}", f"--regid={nobody.pw_gid}", "--clear-groups"],
                  ["runuser", "-u", nobody.pw_name, "--"]]
    code = "\n".join(["import sys, fpga_ft.cli", "try:", "    open(sys.argv[1], 'w')", "except PermissionError:",
                      "    sys.exit(0)", "sys.exit(3)"])
    probe = Path(tempfile.mkdtemp(prefix="fpgaft-ro-probe-"))
    probe.chmod(0o555)
    try:
        for prefix in candidates:
            if shutil.which(prefix[0]) and subprocess.run([*prefix, sys.executable, "-c", code, str(probe / "x")],
                                                          env=_env(), cwd="/", capture_output=True,
                                                          timeout=120).returncode == 0:
                return tuple(prefix)
    finally:
        shutil.rmtree(probe)
    return None


@contextlib.contextmanager
def _case_dir(tmp_path: Path, read_only: bool):
    """(directory, command prefix, environment) for a case. A read-only case gets ``ro``,
    a 0o555 directory its command cannot write to: as root the command runs as ``nobody``
    (see :func:`_root_switch`) in a world-readable directory outside pytest's private
    one, with its own writable HOME and design cache; skipped when that is not possible."""
    prefix: tuple[str, ...] = ()
    if read_only and os.geteuid() == 0:
        prefix = _root_switch()
        if prefix is None:
            pytest.skip("running as root and cannot run the command as 'nobody' (setpriv/runuser): "
                        "read-only case not testable")
    env = _env()
    extra = [Path(tempfile.mkdtemp(prefix=f"fpgaft-ro-{name}-")) for name in ("case", "home")] if prefix else []
    work = extra[0] if extra else tmp_path
    if extra:
        work.chmod(0o755)
        extra[1].chmod(0o777)
        env.update(HOME=str(extra[1]), FPGA_FT_CACHE=str(extra[1] / "cache"), MPLCONFIGDIR=str(extra[1] / "mpl"))
    if read_only:
        (work / "ro").mkdir(mode=0o555)
    try:
        yield work, list(prefix), env
    finally:
        if read_only:
            (work / "ro").chmod(0o755)
        for directory in extra:
            shutil.rmtree(directory)


def run_case(argv, tmp: Path, substitutions: dict, prefix=(), env=None) -> subprocess.CompletedProcess:
    args = [a.format(tmp=tmp, **substitutions) for a in argv]
    return _cli(args, cwd=tmp, prefix=prefix, env=env)


@pytest.mark.parametrize("case_id, argv, words, read_only", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line(case_id, argv, words, read_only, tmp_path, float_models):
    with _case_dir(tmp_path, read_only) as (work, prefix, env):
        _setup(work)
        before = _snapshot(work)
        proc = run_case(argv, work, float_models, prefix, env)
        lines = [line for line in proc.stderr.splitlines() if line.strip()]
        assert proc.returncode == 2, f"exit {proc.returncode}; stderr:\n{proc.stderr[-3000:]}"
        assert "Traceback" not in proc.stderr, proc.stderr[-3000:]
        assert len(lines) == 1 and lines[0].startswith("error: "), lines
        for word in words:
            assert word in lines[0], lines[0]
        assert _snapshot(work) == before, "the failed command created, changed or removed files"


def test_case_table_covers_every_command():
    commands = {argv[0] for _, argv, _, _ in CASES}
    assert {"convert", "csim", "inject", "analyze", "estimate", "optimize", "compare", "bringup", "demo", "verify",
            "report"} <= commands
    assert len(CASES) >= 25


# ----------------------------------------------------------------------------- bit-exactness
FIXTURES = ROOT / "tests" / "fixtures" / "hls4ml_examples"


def test_float_weight_layers_finds_every_kind(float_models, tmp_path):
    """The one check (fpga_ft.generate.bitexact.float_weight_layers) on hand-built layers."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    from fpga_ft.generate.bitexact import float_weight_layers
    from fpga_ft.generate.modelio import load_model

    q = quantized_bits(6, 0, alpha=1)
    inputs = tf.keras.Input((8,))
    h = QActivation(quantized_bits(8, 3, alpha=1))(inputs)
    h = QDense(5, kernel_quantizer=q, name="bias_float")(h)  # kernel quantized, bias not
    h = QDense(5, kernel_quantizer=q, use_bias=False, name="no_bias")(h)  # exact: no bias at all
    h = tf.keras.layers.BatchNormalization(name="bn")(h)
    h = QDense(3, kernel_quantizer=q, bias_quantizer=q, name="exact")(h)
    found = {e["layer"]: e["what"] for e in float_weight_layers(tf.keras.Model(inputs, h))}
    assert found == {"bias_float": "float biases (no bias_quantizer)",
                     "bn": "float parameters (Keras BatchNormalization: no quantizer)"}
    assert [e["layer"] for e in float_weight_layers(load_model(float_models["FLOATQ"]))] == ["fc_float"]
    assert [e["layer"] for e in float_weight_layers(load_model(float_models["FLOATD"]))] == ["dense_plain"]


@pytest.mark.parametrize("model", [MODELS_DIR / "digits_mlp.h5", MODELS_DIR / "digits_cnn.h5",
                                   FIXTURES / "qkeras_3layer_config.yml", FIXTURES / "qkeras_mnist_cnn_config.yml",
                                   FIXTURES / "qkeras_mnist_dense_config.yml"], ids=lambda p: p.name)
def test_shipped_and_example_models_pass_the_check(model):
    """The bundled models and hls4ml's example QKeras models (po2 weights included) are
    quantized throughout: the commands accept them without --allow-inexact."""
    from fpga_ft.generate.bitexact import check_exact, float_weight_layers
    from fpga_ft.generate.intake import open_model

    prepared = open_model(model, announce=False)
    assert float_weight_layers(prepared.original) == []
    assert check_exact(prepared.model, allow_inexact=False) == []


def test_allow_inexact_runs_and_says_so(float_models, tmp_path):
    """With --allow-inexact a float-weight model runs; stderr warns and the JSON says
    "inexact": true (and lists the layer); an exact model's JSON says "inexact": false."""
    out = tmp_path / "csim.json"
    proc = _cli(["csim", float_models["FLOATQ"], "--data", float_models["FDATA"], "--allow-inexact",
                 "--no-head-check", "--json", out], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    warnings = [line for line in proc.stderr.splitlines() if "--allow-inexact" in line]
    assert len(warnings) == 1 and warnings[0].startswith("warning:") and "NOT bit-exact" in warnings[0] \
        and "'fc_float'" in warnings[0], proc.stderr
    result = json.loads(out.read_text())
    assert result["inexact"] is True
    assert result["intake"]["inexact_layers"] == ["fc_float: float weights (no kernel_quantizer)"]
    exact = tmp_path / "exact.json"
    proc = _cli(["csim", MLP, "--data", DATA, "--json", exact], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(exact.read_text())["inexact"] is False
    assert "--allow-inexact" not in proc.stderr


def test_result_files_are_written_whole_or_not_at_all(tmp_path):
    """Results go through a temporary file in the target's directory and a rename: a
    failure (or an interruption) in the middle of writing leaves no partial file, no
    temporary file, no directory created for it, and an existing file unchanged."""
    from fpga_ft.cli import write_json
    from fpga_ft.core.outputs import atomic_path

    target = tmp_path / "new" / "sub" / "out.json"
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as temp:
            assert temp.parent == target.parent and temp.suffix == ".json"
            temp.write_text('{"half": ')
            raise KeyboardInterrupt
    assert sorted(tmp_path.iterdir()) == []
    old = tmp_path / "old.json"
    write_json({"ok": 1}, str(old))
    with pytest.raises(RuntimeError):
        with atomic_path(old) as temp:
            temp.write_text("partial")
            raise RuntimeError("disk full")
    assert json.loads(old.read_text()) == {"ok": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["old.json"]


def test_output_directories_are_staged_then_moved(tmp_path, monkeypatch):
    """A whole output directory is written in a hidden sibling and moved into place: a
    failure leaves neither it nor a partial target; into an existing directory only the
    entries written are replaced (others are kept); text naming the staging path is made
    to name the target and path-bound csim libraries are dropped; a killed run's leftover
    (its process gone) is removed by the next run, a live writer's is left alone."""
    from fpga_ft.core.outputs import remove_stale_temps, staged_directory

    target = tmp_path / "new" / "prj"
    with pytest.raises(KeyboardInterrupt):
        with staged_directory(target) as staging:
            assert staging.path.parent == target.parent and staging.path.name.startswith(".prj.fpgaft-tmp-")
            (staging.path / "half.txt").write_text("half")
            raise KeyboardInterrupt
    assert sorted(tmp_path.iterdir()) == []

    dead = subprocess.Popen([sys.executable, "-c", ""])
    dead.wait()
    stale = tmp_path / f".prj.fpgaft-tmp-{dead.pid}"
    live = tmp_path / f".prj.fpgaft-tmp-{os.getppid()}"
    stale_file = tmp_path / f".out.fpgaft-tmp-{dead.pid}.json"
    for leftover in (stale, live):
        leftover.mkdir()
        (leftover / "fpgaft_design.json").write_text("{}")
    stale_file.write_text("{")
    assert remove_stale_temps(tmp_path / "out.json") == [stale_file]

    target = tmp_path / "prj"
    target.mkdir()
    (target / "keep.txt").write_text("user file")
    (target / "firmware").mkdir()
    (target / "firmware" / "old.h").write_text("old")
    with staged_directory(target) as staging:
        assert not stale.exists() and live.is_dir()
        (staging.path / "firmware").mkdir()
        (staging.path / "firmware" / "new.h").write_text("new")
        (staging.path / "hls4ml_config.yml").write_text(f"OutputDir: {staging.path}\n")
        (staging.path / "fpgaft_csim-0123.so").write_bytes(str(staging.path).encode())
        result = staging.retarget({"output_dir": str(staging.path), "files": [str(staging.path / "a")]})
    assert result == {"output_dir": str(target), "files": [str(target / "a")]}
    assert sorted(p.name for p in target.rglob("*")) == ["firmware", "hls4ml_config.yml", "keep.txt", "new.h"]
    assert (target / "hls4ml_config.yml").read_text() == f"OutputDir: {target}\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [live.name, "prj"]

    # an existing directory whose parent is read-only: assembled inside it, then moved up
    import fpga_ft.core.outputs as outputs

    real_access = os.access
    monkeypatch.setattr(outputs.os, "access",
                        lambda path, mode: False if Path(path) == tmp_path else real_access(path, mode))
    with staged_directory(target) as staging:
        assert staging.path.parent == target
        (staging.path / "keep.txt").write_text("rewritten")
    assert (target / "keep.txt").read_text() == "rewritten" and not list(target.glob(".*"))


def test_demo_step_error_is_the_demo_s_one_line(tmp_path, capsys):
    """A failing demo step prints nothing itself: its error becomes the demo's one error
    line, naming the step."""
    from fpga_ft.commands.demo import _run_step
    from fpga_ft.core.errors import FpgaFtError

    with pytest.raises(FpgaFtError) as info:
        _run_step("a step", ["csim", str(tmp_path / "missing.h5"), "--data", str(DATA)], tmp_path, "csim")
    assert capsys.readouterr().err == ""
    message = str(info.value)
    assert message.startswith("demo step 'csim' (fpga-ft csim) failed: model file not found") and "\n" not in message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("argv, option", [
    (["csim", M, "--data", D, "--json", "{ro}/out.json"], "--json"),
    (["convert", M, "--board", BOARD, "-o", "{ro}/prj"], "-o/--output-dir"),
    (["convert", M, "--board", BOARD, "-o", "{ro}"], "-o/--output-dir"),
    (["inject", M, "--data", D, "--ber", "1e-3", "--checkpoint-dir", "{ro}/ck"], "--checkpoint-dir"),
    (["analyze", M, "--data", D, "--plot", "{ro}/a.png"], "--plot"),
    (["optimize", M, "--data", D, *OPT, "--trials", "1", "--storage", "sqlite:///{ro}/o.db"], "--storage"),
])
def test_unwritable_locations_are_refused(argv, option, tmp_path, capsys, monkeypatch):
    """The read-only cases without relying on file permissions (which root ignores): the
    check asks os.access, here told that one directory is not writable."""
    import fpga_ft.core.outputs as outputs
    from fpga_ft.cli import main

    ro = tmp_path / "ro"
    ro.mkdir()
    real_access = os.access
    monkeypatch.setattr(outputs.os, "access",
                        lambda path, mode: False if Path(path) == ro else real_access(path, mode))
    before = _snapshot(tmp_path)
    assert main([a.format(ro=ro) for a in argv]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(err) == 1 and err[0].startswith(f"error: {option} ") and "not writable" in err[0], err
    assert _snapshot(tmp_path) == before
