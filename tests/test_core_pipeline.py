"""Issue 2: protected conversion, bit-exact csim, fault hooks, generated project, CLI."""

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.cli import main
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.exposure import node_offset
from fpga_ft.core.plan import LayerProtection, ProtectionPlan
from fpga_ft.generate.bitexact import compare_outputs
from fpga_ft.generate.design import build_design

PLANS = ["none", "msbs1", "msbs2", "msbs3", "critical_all", "mixed"]


def make_plan(kind, layers):
    if kind == "none":
        return ProtectionPlan()
    if kind.startswith("msbs"):
        return ProtectionPlan.uniform(layers, protected_msbs=int(kind[-1]))
    if kind == "critical_all":
        return ProtectionPlan.uniform(layers, all_critical=True)
    # mixed: MSB protection everywhere plus a few critical neurons per layer
    return ProtectionPlan({info.name: LayerProtection(2, list(range(0, info.n_out, 3))) for info in layers})


@pytest.fixture(scope="module")
def layers_of(bundled):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = build_design(bundled(name)[0], None).layers
        return cache[name]

    return get


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("plan_kind", PLANS)
def test_fault_free_csim_is_bit_exact(bundled, layers_of, name, plan_kind):
    model, x, y, reference = bundled(name)
    design = build_design(model, make_plan(plan_kind, layers_of(name)))
    comparison = compare_outputs(design.predict(x), reference, y)
    assert comparison["bit_exact_fraction"] == 1.0, comparison
    assert comparison["csim_accuracy"] == comparison["reference_accuracy"] > 0.9


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_io_stream_is_bit_exact(bundled, layers_of, name):
    model, x, y, reference = bundled(name)
    design = build_design(model, make_plan("mixed", layers_of(name)), io_type="io_stream")
    assert compare_outputs(design.predict(x), reference)["bit_exact_fraction"] == 1.0


def test_io_stream_dense_layers_run_the_protected_kernel(bundled, layers_of):
    """hls4ml's Vitis io_stream dense bypasses the config's kernel; fpga-ft's tagged layers
    call fpgaft::dense_stream, so the fault hooks (and the protection) are really there."""
    from fpga_ft.core.faults import exposed_bits
    from fpga_ft.core.stats import binomial_count_interval

    model, x, _, _ = bundled("mlp")
    design = build_design(model, make_plan("mixed", layers_of("mlp")), io_type="io_stream")
    top = (design.project_dir / "firmware" / "myproject.cpp").read_text()
    assert top.count("fpgaft::dense_stream<") == 3 and "nnet::dense<" not in top
    lib = design.library
    ber = 1e-3
    lib.configure((0.0, 0.0, ber, ber), seed=5)
    _, injected, _ = lib.run(x[:100])
    bits = exposed_bits(design.layers, design.plan)
    for site in ("products", "accumulators"):
        low, high = binomial_count_interval(bits[site] * 100, ber, 0.999)
        assert low <= injected[site] <= high, site


def test_generic_ap_fixed_kernel_is_bit_exact(bundled, layers_of):
    """The csim's typed (ap_fixed) kernel, used for types the integer kernel cannot model."""
    from fpga_ft.simulate.csim import CsimLibrary, build_library

    model, x, _, reference = bundled("cnn")
    # the typed kernel serves unprotected layers (protected ones need the integer kernel)
    plan = ProtectionPlan({layers_of("cnn")[0].name: LayerProtection(2, [1])})
    design = build_design(model, plan)
    path, _ = build_library(design.project_dir, extra_flags=("-DFPGAFT_CSIM_TYPED",))
    lib = CsimLibrary(path, design.n_inputs, design.n_outputs)
    assert compare_outputs(lib.run(x)[0], reference)["bit_exact_fraction"] == 1.0


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_synthesis_code_is_bit_exact_too(bundled, layers_of, tmp_path, name):
    """hls4ml's own compile()/predict() builds the synthesis C++ (explicit replicas)."""
    from fpga_ft.generate.convert import convert_model

    model, x, _, reference = bundled(name)
    converted = convert_model(model, make_plan("mixed", layers_of(name)), output_dir=tmp_path / "prj")
    converted.hls_model.compile()
    assert compare_outputs(converted.hls_model.predict(x), reference)["bit_exact_fraction"] == 1.0


# ---- forced single flips ----------------------------------------------------------------

def _flip_once(design, x, skip_bits, site="accumulators"):
    lib = design.library
    lib.configure()  # BER 0 everywhere
    lib.force_next_flip(site, skip_bits)
    out, injected, masked = lib.run(x)
    return out, injected[site], masked[site]


def _last_words(design, layer):
    """(neuron 0 of ``layer``'s structure, offset of its last product, of its last partial
    sum, of its output voter) in the csim's bit stream."""
    from fpga_ft.core.structure import design_structures

    structures = design_structures(design.layers, design.plan)
    neuron = structures[layer].neurons[0]
    prod = node_offset(design.layers, design.plan, layer, 0, "products", neuron.n_products - 1,
                       structures=structures)
    acc = node_offset(design.layers, design.plan, layer, 0, "accumulators", neuron.n_sums - 1, structures=structures)
    out = node_offset(design.layers, design.plan, layer, 0, "accumulators", "output", structures=structures)
    return neuron, prod, acc, out


@pytest.mark.parametrize("name", ["mlp", "cnn"])
@pytest.mark.parametrize("k", [1, 2, 3])
def test_flip_in_one_lane_of_a_protected_bit_is_masked(bundled, layers_of, name, k):
    model, x, _, _ = bundled(name)
    layers = layers_of(name)
    design = build_design(model, ProtectionPlan.uniform(layers, protected_msbs=k))
    clean = design.predict(x[:8])
    last = len(layers) - 1
    width = layers[last].accum_type.width
    _, prod, acc, _ = _last_words(design, last)
    # neuron 0 of the output layer, last product and last partial sum: lane 1, lane 2, lane 0 MSB
    for site, word in (("products", prod), ("accumulators", acc)):
        for position in (width + k - 1, width + 2 * k - 1, width - 1):
            out, injected, masked = _flip_once(design, x[:8], word + position, site)
            assert injected == 1 and masked == 1, (site, position)
            np.testing.assert_array_equal(out, clean)


@pytest.mark.parametrize("name", ["mlp", "cnn"])
def test_flips_on_single_nodes_change_the_output(bundled, layers_of, name):
    """Low bits, the shared carry and the output voter are single nodes (unmasked)."""
    model, x, _, _ = bundled(name)
    layers = layers_of(name)
    last = len(layers) - 1
    width = layers[last].accum_type.width
    for k in (0, 2):
        plan = ProtectionPlan.uniform(layers, protected_msbs=k)
        design = build_design(model, plan)
        clean = design.predict(x[:8])
        _, prod, acc, out_voter = _last_words(design, last)
        flips = [("products", prod + width - k - 1), ("accumulators", acc + width - k - 1)]  # highest low bit
        if k:
            flips += [("accumulators", acc + width + 2 * k), ("accumulators", out_voter + k - 1)]  # carry, voter
        for site, position in flips:
            out, injected, masked = _flip_once(design, x[:8], position, site)
            assert injected == 1 and masked == 0, (k, site, position)
            assert not np.array_equal(out[0], clean[0]), (k, site, position)  # the flipped inference changed
            np.testing.assert_array_equal(out[1:], clean[1:])  # nothing else did


def test_flip_in_one_replica_of_a_critical_neuron_is_masked(bundled, layers_of):
    model, x, _, _ = bundled("mlp")
    layers = layers_of("mlp")
    last = len(layers) - 1
    plan = ProtectionPlan({layers[last].name: LayerProtection(0, [0])})
    design = build_design(model, plan)
    clean = design.predict(x[:4])
    width = layers[last].accum_type.width
    neuron, _, _, out_voter = _last_words(design, last)
    for replica in range(3):
        for site, word in (("products", neuron.n_products - 1), ("accumulators", neuron.n_sums - 1)):
            offset = node_offset(design.layers, design.plan, last, 0, site, word, replica=replica)
            out, injected, masked = _flip_once(design, x[:4], offset + width - 1, site)
            assert injected == 1 and masked == 1
            np.testing.assert_array_equal(out, clean)
    out, injected, masked = _flip_once(design, x[:4], out_voter + width - 1)  # the output voter: single
    assert injected == 1 and masked == 0 and not np.array_equal(out[0], clean[0])


# ---- generated project ------------------------------------------------------------------

@pytest.fixture(scope="module")
def project(bundled, layers_of, tmp_path_factory):
    model, x, _, reference = bundled("mlp")
    out = tmp_path_factory.mktemp("project") / "prj"
    design = build_design(model, make_plan("mixed", layers_of("mlp")), output_dir=out, x=x[:20],
                          golden=reference[:20])
    return design


def _preprocess(project_dir: Path, *defines) -> str:
    cmd = ["g++", "-E", "-P", "-std=c++11", *[f"-D{d}" for d in defines],
           f"-I{project_dir / 'firmware' / 'ap_types'}", f"-I{project_dir / 'firmware'}",
           str(project_dir / "firmware" / "myproject.cpp")]
    return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout


def test_no_fault_hook_code_outside_the_csim_macro(project):
    synthesis = _preprocess(project.project_dir)  # what vendor csim and synthesis see
    csim = _preprocess(project.project_dir, "FPGAFT_CSIM")
    for token in ("rt::expose", "rt::state", "namespace rt", "LayerMemory", "draw_gap", "dense_sim"):
        assert token not in synthesis, token
        assert token in csim, token
    for kind in ("mul", "add", "dot"):
        for r in range(3):
            assert f"fpgaft_tmr_r{r}_{kind}" in synthesis
    assert "HLS INLINE off" in synthesis
    # the macro is set only by fpga-ft's csim build, never by a project's Tcl
    for tcl in project.project_dir.glob("*.tcl"):
        assert "FPGAFT_CSIM" not in tcl.read_text(), tcl.name


_REPLICA_DEF = re.compile(r"\b(fpgaft_tmr_r\d_\w+)\s*\(([^()]*)\)\s*\{")


def _preprocess_params(project) -> str:
    return (project.project_dir / "firmware" / "parameters.h").read_text()


def test_no_replica_takes_a_weight_at_run_time(project):
    """Static check of the synthesis sources: every replica function's weights are
    compile-time constants (template parameters), never a run-time argument (the shared
    multipliers of time-shared layers, ``_smul``, take the weight from their ROM; this
    project, ReuseFactor 1, uses none)."""
    synthesis = _preprocess(project.project_dir)
    definitions = _REPLICA_DEF.findall(synthesis)
    assert {name for name, _ in definitions} >= {f"fpgaft_tmr_r{r}_{k}" for r in range(3) for k in ("mul", "add", "dot")}
    for name, params in definitions:
        if name.endswith("_smul"):  # a time-shared unit's multiplier: the weight is its operand by design
            assert "fpgaft_tmr_r" in name and "fpgaft::tmr_mac" not in _preprocess_params(project)
            continue
        for banned in ("weight", "bias", "w[", "CONFIG_T::n_out"):
            assert banned not in params, (name, params)
    # every product replica call names its weight code as a template argument
    calls = re.findall(r"fpgaft::tmr_product<\d+, (-?\d+), ", synthesis)
    assert calls and all(int(c) != 0 for c in calls)  # zero weights have no replica
    assert "fpgaft_tmr_r0_mul<CODE, data_T, CONFIG_T>(x)" in synthesis


def test_project_has_keep_replicas_constraints_and_vectors(project):
    import json

    prj = project.project_dir
    xdc = (prj / "fpgaft_keep_replicas.xdc").read_text()
    assert "KEEP_HIERARCHY TRUE" in xdc and "DONT_TOUCH TRUE" in xdc and "fpgaft_tmr_r" in xdc
    synth = (prj / "vivado_synth.tcl").read_text()
    assert synth.index("fpgaft_keep_replicas.xdc") < synth.index("synth_design")
    check = (prj / "fpgaft_check_replicas.tcl").read_text()
    expected = json.loads((prj / "fpgaft_design.json").read_text())["replica_instances_total"]
    found = dict(re.findall(r"fpga-ft: (fpgaft_tmr_r\d_\w+): \$n instances \(expected >= (\d+)\)", check))
    assert {k: int(v) for k, v in found.items()} == expected and len(expected) == 9
    assert "REF_NAME" in check and "IS_PRIMITIVE == 0" in check and "exit 1" in check
    assert (prj / "firmware" / "nnet_utils" / "fpgaft_tmr.h").is_file()
    inputs = np.loadtxt(prj / "tb_data" / "tb_input_features.dat")
    golden = np.loadtxt(prj / "tb_data" / "tb_output_predictions.dat")
    assert inputs.shape == (20, 64) and golden.shape == (20, 10)
    np.testing.assert_array_equal(golden, project.predict(inputs))
    params = (prj / "firmware" / "parameters.h").read_text()
    assert params.count("using kernel = fpgaft::DenseFT") == 3
    assert re.search(r"protected_msbs = 2;", params)


# A stand-in for Vivado's netlist query, enough to run fpgaft_check_replicas.tcl in tclsh:
# `get_cells -hierarchical -quiet -filter EXPR` over a list of cells (NAME, REF_NAME,
# ORIG_REF_NAME, IS_PRIMITIVE), with `=~` as glob match and `==` as equality.
_FAKE_VIVADO = r"""
proc get_cells {args} {
    global cells
    set f [lindex $args [expr {[lsearch -exact $args -filter] + 1}]]
    regsub -all {(\w+) =~ ([^\s)]+)} $f {[string match {\2} $c(\1)]} f
    regsub -all {(\w+) == (\w+)} $f {$c(\1) == "\2"} f
    set out {}
    foreach cell $cells {
        array unset c
        array set c $cell
        if [expr $f] { lappend out $c(NAME) }
    }
    return $out
}
"""


def _run_check_tcl(project_dir: Path, cells: list[dict]) -> subprocess.CompletedProcess:
    """Source the project's check script in tclsh against the fake netlist ``cells``."""
    def tcl_word(value) -> str:
        return "{" + str(value) + "}"

    netlist = "set cells [list " + " ".join(
        "[list " + " ".join(f"{k} {tcl_word(cell.get(k, ''))}" for k in ("NAME", "REF_NAME", "ORIG_REF_NAME",
                                                                         "IS_PRIMITIVE")) + "]"
        for cell in cells) + "]\n"
    script = project_dir / "fake_vivado_check.tcl"
    script.write_text(_FAKE_VIVADO + netlist + f"source {project_dir / 'fpgaft_check_replicas.tcl'}\n")
    try:
        return subprocess.run(["tclsh", str(script)], capture_output=True, text=True, timeout=120)
    finally:
        script.unlink()


def _netlist(expected: dict[str, int], ref=lambda stem, i: f"myproject_{stem}_2_{i % 7}_s", orig=lambda stem, i: ""):
    """One hierarchical instance per expected replica (named as Vitis HLS names template
    modules), each with a leaf LUT inside it whose cell name contains the replica's name."""
    cells = []
    for stem, n in expected.items():
        for i in range(n):
            name = f"fpgaft_dense_U0/{stem}_U{i}"
            cells.append({"NAME": name, "REF_NAME": ref(stem, i), "ORIG_REF_NAME": orig(stem, i), "IS_PRIMITIVE": 0})
            cells.append({"NAME": f"{name}/out_INST_0", "REF_NAME": "LUT6", "IS_PRIMITIVE": 1})
    return cells


@pytest.mark.skipif(not __import__("shutil").which("tclsh"), reason="needs tclsh")
def test_check_replicas_tcl_fails_on_every_shortfall(project):
    """The generated check counts hierarchical replica instances per kind and replica index
    against fpgaft_design.json and exits 1 on any shortfall (run in tclsh with a fake
    netlist; Vivado runs the same script on the synthesised design)."""
    import json

    prj = project.project_dir
    expected = json.loads((prj / "fpgaft_design.json").read_text())["replica_instances_total"]
    assert {"fpgaft_tmr_r1_mul", "fpgaft_tmr_r2_add", "fpgaft_tmr_r0_dot"} <= set(expected)

    complete = _run_check_tcl(prj, _netlist(expected))
    assert complete.returncode == 0, complete.stdout + complete.stderr
    assert "ERROR" not in complete.stdout and "every replica kind and index present" in complete.stdout
    for stem, n in expected.items():
        assert f"fpga-ft: {stem}: {n} instances (expected >= {n})" in complete.stdout

    # Vivado uniquified the modules: REF_NAME changed, ORIG_REF_NAME keeps the HLS name
    uniquified = _netlist(expected, ref=lambda stem, i: f"design_1_myproject_0_0_{i}",
                          orig=lambda stem, i: f"myproject_{stem}_2_3_s")
    assert _run_check_tcl(prj, uniquified).returncode == 0

    # one instance of one replica missing: only that kind and index is reported
    short = _netlist(expected)
    victim = next(c for c in short if "fpgaft_tmr_r1_mul" in c["REF_NAME"])
    short.remove(victim)
    failed = _run_check_tcl(prj, short)
    errors = [line for line in failed.stdout.splitlines() if line.startswith("ERROR: fpga-ft: only")]
    assert failed.returncode == 1
    assert errors == [f"ERROR: fpga-ft: only {expected['fpgaft_tmr_r1_mul'] - 1} instances of fpgaft_tmr_r1_mul, "
                      f"expected {expected['fpgaft_tmr_r1_mul']}"]

    # replicas 1 and 2 merged into replica 0's modules: told apart by the index in the name
    merged = _netlist(expected, ref=lambda stem, i: "myproject_" + stem.replace("_r1_", "_r0_").replace("_r2_", "_r0_"))
    failed = _run_check_tcl(prj, merged)
    assert failed.returncode == 1
    short_stems = {line.split(" of ")[1].split(",")[0] for line in failed.stdout.splitlines()
                   if line.startswith("ERROR: fpga-ft: only")}
    assert short_stems == {stem for stem in expected if "_r0_" not in stem}

    # hierarchy flattened: leaf cells still carry the replica names, but no instance is left
    flattened = [c for c in _netlist(expected) if c["IS_PRIMITIVE"] == 1]
    failed = _run_check_tcl(prj, flattened)
    assert failed.returncode == 1 and "TMR was optimised away" in failed.stdout
    assert failed.stdout.count("ERROR: fpga-ft: only 0 instances") == len(expected)


def test_protection_adds_code_only_where_planned(project):
    params = (project.project_dir / "firmware" / "parameters.h").read_text()
    flags = re.findall(r"const bool config\d+::critical\[(\d+)\] = \{([^}]*)\}", params)
    assert [int(n) for n, _ in flags] == [info.n_out for info in project.layers]
    for (n, values), info in zip(flags, project.layers):
        critical = [i for i, v in enumerate(values.split(",")) if v.strip() == "true"]
        assert critical == project.plan.for_layer(info.name).critical_neurons


# ---- errors ---------------------------------------------------------------------------

def test_plan_errors_are_one_line(bundled, layers_of, tmp_path):
    layers = layers_of("mlp")
    cases = {
        "layers:\n  nope:\n    protected_msbs: 1\n": "unknown layer 'nope'",
        "layers:\n  fc1:\n    protected_msbs: -1\n": ">= 0",
        "layers:\n  fc1:\n    protected_msbs: 99\n": "exceeds",
        "layers:\n  fc1:\n    critical_neurons: [32]\n": "out of range",
        "layers:\n  fc1:\n    critical_neurons: [1, 1]\n": "duplicates",
        "layers: [1, 2\n": "not valid YAML",
        "layers:\n  fc1:\n    protected_bits: 1\n": "unknown key",
        "other: 1\n": "unknown top-level key",
    }
    for text, expected in cases.items():
        path = tmp_path / "plan.yml"
        path.write_text(text)
        with pytest.raises(FpgaFtError) as info:
            ProtectionPlan.load(path).validate(layers)
        assert expected in str(info.value) and "\n" not in str(info.value)


BILLION_LAUGHS = "".join(
    ["a0: &a0 [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"]
    + [f"a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, "
       f"*a{i - 1}, *a{i - 1}]\n" for i in range(1, 9)]
    + ["layers:\n  fc1:\n    protected_msbs: *a8\n"])


@pytest.mark.parametrize("content, expected", [
    (BILLION_LAUGHS.encode(), "alias"),
    (b"layers:\n  fc1:\n    protected_msbs: \xff\xfe\n", "not UTF-8"),
    (("x: " + "[" * 200 + "]" * 200 + "\n").encode(), "nested deeper"),
    (b"layers:\n  fc1: {protected_msbs: 1}\n  fc1: {protected_msbs: 2}\n", "repeats the key 'fc1'"),
    (b"layers: {}\n" + b"#" * 1_100_000, "larger than"),
])
def test_hostile_plan_yaml_is_one_line_error_fast(tmp_path, capsys, content, expected):
    """YAML bombs, bad encodings, deep nesting, a layer named twice, huge files: every
    command that reads a plan stops at once with one line, exit 2."""
    import time

    path = tmp_path / "plan.yml"
    path.write_bytes(content)
    start = time.perf_counter()
    with pytest.raises(FpgaFtError) as info:
        ProtectionPlan.load(path)
    assert time.perf_counter() - start < 1.0  # behaviour: refused before expanding anything
    message = str(info.value)
    assert expected in message and "\n" not in message and len(message) < 300
    from fpga_ft.core.paths import MODELS_DIR

    code = main(["estimate", str(MODELS_DIR / "digits_mlp.h5"), "--board", "zcu102", "--plan", str(path)])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.startswith("error:") and len(err.splitlines()) == 1 and expected in err


def test_unsupported_layer_is_named(tmp_path, capsys):
    import tensorflow as tf

    inputs = tf.keras.Input((4, 3))
    outputs = tf.keras.layers.Dense(2)(tf.keras.layers.LSTM(5, name="my_lstm")(inputs))
    path = tmp_path / "lstm.h5"
    tf.keras.Model(inputs, outputs).save(path)
    assert main(["convert", str(path), "--board", "pynq-z2", "-o", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: unsupported layer 'my_lstm' (LSTM)") and "\n" not in err


def test_cli_errors_exit_2(tmp_path, capsys):
    model = "models/digits_mlp.h5"
    root = Path(__file__).resolve().parent.parent
    cases = [
        (["convert", str(root / model), "--board", "nope", "-o", str(tmp_path / "p")], "unknown board 'nope'"),
        (["csim", str(root / model), "--data", str(tmp_path / "missing.npz")], "missing.npz"),
        (["csim", str(root / model), "--data", str(root / "models/digits_img_test.npz")], "shape"),
        (["build", str(tmp_path)], "project.tcl"),
    ]
    for argv, expected in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error:") and expected in err and "\n" not in err and "Traceback" not in err


# ---- CLI happy paths --------------------------------------------------------------------

def test_cli_convert_csim_build(tmp_path, capsys):
    import json

    root = Path(__file__).resolve().parent.parent
    model, data = str(root / "models/digits_mlp.h5"), str(root / "models/digits_test.npz")
    plan = tmp_path / "plan.yml"
    plan.write_text("layers:\n  fc1:\n    protected_msbs: 2\n    critical_neurons: [3, 17]\n")
    out = tmp_path / "prj"
    assert main(["convert", model, "--board", "zcu102", "--plan", str(plan), "--data", data, "-o", str(out),
                 "--json", str(tmp_path / "c.json")]) == 0
    result = json.loads((tmp_path / "c.json").read_text())
    assert result["output_dir"] == str(out.resolve()) and result["board"] == "zcu102"
    assert result["part"] == "xczu9eg-ffvb1156-2-e" and result["backend"] == "Vitis"
    assert result["protected_layers"] == ["fc1"] and result["test_vectors"]["bit_exact_fraction"] == 1.0
    assert (out / "fpgaft_keep_replicas.xdc").is_file() and (out / "tb_data" / "tb_input_features.dat").is_file()

    assert main(["csim", model, "--data", data, "--plan", str(plan), "--json", str(tmp_path / "s.json")]) == 0
    result = json.loads((tmp_path / "s.json").read_text())
    assert result["samples"] == 540 and result["bit_exact_fraction"] == 1.0 and result["accuracy"] > 0.95

    capsys.readouterr()
    assert main(["build", str(out), "--synth"]) == 2  # no Vitis here
    assert "vitis-run not found on PATH" in capsys.readouterr().err
