"""Model intake: JSON + weights, hls4ml config YAMLs, input quantization, table-softmax heads.

The models are hls4ml's published examples (tests/fixtures/hls4ml_examples, see
tests/fixtures/SOURCES.md). The jet tagger's data set is not published with it: its inputs
here are synthetic, standard normal (the order of magnitude of its standardised features);
the MNIST CNN's are uniform in [0, 1]. Labels are random: these tests check bit-exactness,
not accuracy.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from fpga_ft.cli import main
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.fixedpoint import parse_type, quantize
from fpga_ft.generate.intake import quantized_bits_for

EXAMPLES = Path(__file__).resolve().parent / "fixtures" / "hls4ml_examples"
JET_YAML = EXAMPLES / "qkeras_3layer_config.yml"
JET_JSON = EXAMPLES / "keras" / "qkeras_3layer.json"
JET_WEIGHTS = EXAMPLES / "keras" / "qkeras_3layer_weights.h5"
CNN_YAML = EXAMPLES / "qkeras_mnist_cnn_config.yml"
DENSE_YAML = EXAMPLES / "qkeras_mnist_dense_config.yml"
KERAS3 = EXAMPLES / "keras" / "qkeras-v3_3layer.keras"


def _cli(args, capsys):
    """(exit status, stdout, stderr) of one fpga-ft command run in-process."""
    status = main([str(a) for a in args])
    out, err = capsys.readouterr()
    return status, out, err


def _one_line_error(status, err, *needles):
    assert status == 2
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


@pytest.fixture(scope="module")
def jet_data(tmp_path_factory):
    rng = np.random.default_rng(7)
    path = tmp_path_factory.mktemp("jet") / "jet.npz"
    np.savez(path, x=rng.standard_normal((300, 16)).astype(np.float32), y=rng.integers(0, 5, 300))
    return path


# ------------------------------------------------------------------------ fixed point
_MODES = [("AP_TRN", "AP_WRAP"), ("AP_TRN_ZERO", "AP_SAT"), ("AP_RND", "AP_WRAP"), ("AP_RND_ZERO", "AP_SAT"),
          ("AP_RND_MIN_INF", "AP_SAT_ZERO"), ("AP_RND_INF", "AP_SAT_SYM"), ("AP_RND_CONV", "AP_SAT"),
          ("AP_RND_CONV", "AP_WRAP")]


@pytest.mark.skipif(shutil.which("g++") is None, reason="needs g++")
def test_quantize_matches_ap_fixed(tmp_path):
    """fixedpoint.quantize equals the C++ ap_fixed<W,I,Q,O>(double) conversion, value for value."""
    import hls4ml

    ap_types = Path(hls4ml.__file__).parent / "templates" / "vivado" / "ap_types"
    types = [f"ap_fixed<8,3,{q},{o}>" for q, o in _MODES] + ["ap_fixed<16,6>", "ap_ufixed<6,2,AP_RND,AP_SAT>",
                                                           "ap_ufixed<5,1>", "ap_int<4>", "ap_fixed<7,-1,AP_RND>"]
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(0, 6, 400), np.arange(-80, 80) / 8.0, np.arange(-40, 40) / 64.0,
                             np.arange(-40, 40) / 32.0 + 1 / 128.0]).astype(np.float32).astype(np.float64)
    body = "\n".join(f"  {{ {t} v = (double)x[i]; printf(\"%.17g \", v.to_double()); }}" for t in types)
    src = tmp_path / "q.cpp"
    src.write_text("#include <cstdio>\n#include \"ap_fixed.h\"\n#include \"ap_int.h\"\n"
                   f"static const double x[{len(values)}] = {{{', '.join(repr(float(v)) for v in values)}}};\n"
                   f"int main() {{ for (int i = 0; i < {len(values)}; i++) {{\n{body}\n  printf(\"\\n\"); }} }}\n")
    exe = tmp_path / "q"
    subprocess.run(["g++", "-O0", f"-I{ap_types}", str(src), "-o", str(exe)], check=True, capture_output=True)
    out = subprocess.run([str(exe)], check=True, capture_output=True, text=True).stdout
    cpp = np.array([[float(v) for v in line.split()] for line in out.strip().splitlines()])
    for k, t in enumerate(types):
        mine = quantize(values, parse_type(t))
        if t.startswith("ap_int"):
            # ap_types' ap_int(double) turns values in (-0.5, 0) into 1 (a quirk of its bit
            # manipulation; C++ truncation towards zero, which fpga-ft uses, gives 0)
            quirk = (values > -0.5) & (values < 0)
            assert np.all(cpp[quirk, k] == 1)
            mine, col = mine[~quirk], cpp[~quirk, k]
        else:
            col = cpp[:, k]
        np.testing.assert_array_equal(mine, col, err_msg=t)


def test_parse_type_forms_and_errors():
    spec = parse_type("ap_fixed<7,1,AP_RND_CONV,AP_SAT>")
    assert (spec.width, spec.integer, spec.signed, spec.rounding, spec.saturation) == (7, 1, True, "RND_CONV", "SAT")
    assert parse_type("ufixed<6,0,RND_CONV,SAT,0>").signed is False  # hls4ml's own spelling
    assert parse_type("ap_int<5>").integer == 5
    for bad in ("ap_fixed<16>", "float", "ap_fixed<8,3,AP_FOO>", "ap_fixed<8,3,AP_TRN,AP_WRAP_SM>"):
        with pytest.raises(FpgaFtError):
            parse_type(bad)


def test_quantized_bits_for_is_identity_on_quantized_data():
    """QActivation(quantized_bits(W, I-1, alpha=1)) leaves ap_fixed<W,I> words unchanged
    (QKeras: keep_negative, integer without the sign bit)."""
    x = np.linspace(-70, 70, 20001).astype(np.float32)
    for text in ("ap_fixed<16,6>", "ap_ufixed<8,0>", "ap_fixed<8,0>", "ap_int<4>", "ap_fixed<10,3,AP_RND,AP_SAT>"):
        spec = parse_type(text)
        xq = quantize(x, spec).astype(np.float32)
        np.testing.assert_array_equal(quantized_bits_for(spec)(xq).numpy(), xq, err_msg=text)


# ------------------------------------------------------------------------ sources
def test_json_weights_sibling_and_yaml_load_the_same_model(tmp_path):
    from fpga_ft.generate.intake import resolve_source
    from fpga_ft.generate.modelio import load_model

    explicit = load_model(JET_JSON, weights=JET_WEIGHTS)
    sibling = load_model(JET_JSON)
    from_yaml = load_model(JET_YAML)
    for model in (sibling, from_yaml):
        for a, b in zip(explicit.get_weights(), model.get_weights()):
            np.testing.assert_array_equal(a, b)
    source = resolve_source(JET_YAML)
    assert source.kind == "config" and source.weights == JET_WEIGHTS
    config = source.config
    assert (config.backend, config.part, config.clock_period_ns, config.io_type) == \
        ("vivado", "xcvu9p-flga2577-2-e", 5.0, "io_parallel")
    assert config.result_precision("fc1_input") == "ap_fixed<16,6>"
    assert config.layer("fc1")["Precision"] == {"bias": "ap_fixed<6,1>", "weight": "ap_fixed<6,1>"}
    assert "Trace" not in config.layer("fc1")  # fpga-ft writes no trace outputs
    # a weights file that is not next to the JSON
    moved = tmp_path / "arch.json"
    shutil.copy(JET_JSON, moved)
    assert "needs its weights" in str(pytest.raises(FpgaFtError, load_model, moved).value)
    load_model(moved, weights=JET_WEIGHTS)


def _yaml(tmp_path, text, name="c.yml"):
    path = tmp_path / name
    path.write_text(text)
    shutil.copytree(EXAMPLES / "keras", tmp_path / "keras", dirs_exist_ok=True)
    return path


@pytest.mark.parametrize("text, needle", [
    ("KerasJson: keras/missing.json\n", "KerasJson file not found"),
    ("Backend: Vivado\nIOType: io_parallel\n", "names no Keras model"),
    ("KerasJson: keras/qkeras_3layer.json\nIOType: io_serial\n", "IOType 'io_serial'"),
    ("KerasJson: keras/qkeras_3layer.json\nBackend: Quartus\n", "Backend 'Quartus'"),
    ("KerasJson: keras/qkeras_3layer.json\nClockPeriod: -3\n", "ClockPeriod"),
    ("KerasJson: keras/qkeras_3layer.json\nHLSConfig:\n  Model:\n    ReuseFactor: 0\n", "ReuseFactor must be"),
    ("KerasJson: keras/qkeras_3layer.json\nHLSConfig:\n  Model:\n    Strategy: Fastest\n", "Strategy 'Fastest'"),
    ("KerasJson: keras/qkeras_3layer.json\nHLSConfig:\n  LayerName:\n    fc1:\n      Precision:\n"
     "        weight: ap_fixd<6,1>\n", "fc1.Precision.weight"),
    ("KerasJson: keras/qkeras_3layer.json\nHLSConfig:\n  LayerName:\n    fc9:\n      ReuseFactor: 2\n",
     "unknown layer 'fc9'"),
    ("KerasJson: keras/qkeras_3layer.json\nOutputDur: x\n", "unknown key 'OutputDur'"),
    ("OnnxModel: m.onnx\n", "QKeras models only"),
    ("KerasJson: keras/qkeras_3layer.json\nHLSConfig:\n  Model: &m\n    ReuseFactor: 1\n  LayerName:\n"
     "    fc1: *m\n", "alias"),
    ("KerasJson: keras/qkeras_3layer.json\nHLSConfig: [1, 2\n", "not valid YAML"),
    ("- just\n- a list\n", "must be a YAML mapping"),
])
def test_config_problems_are_one_line_errors(tmp_path, capsys, text, needle):
    path = _yaml(tmp_path, text)
    status, _, err = _cli(["estimate", path, "--board", "zcu102"], capsys)
    _one_line_error(status, err, needle)


def test_large_config_and_missing_model_file(tmp_path, capsys):
    big = tmp_path / "big.yml"
    big.write_text("KerasJson: x.json\n# " + "x" * 1_100_000 + "\n")
    _one_line_error(*_cli(["csim", big, "--data", "none.npz"], capsys)[::2], "larger than 1 MB")
    _one_line_error(*_cli(["csim", tmp_path / "nope.yml", "--data", "none.npz"], capsys)[::2], "not found")
    _one_line_error(*_cli(["csim", JET_WEIGHTS, "--data", "none.npz"], capsys)[::2], "holds only weights")


def test_keras3_file_is_refused_with_advice(capsys):
    err = _one_line_error(*_cli(["estimate", KERAS3, "--board", "zcu102"], capsys)[::2], "Keras 3")
    assert "hls4ml 1.3" in err and ".h5" in err and "JSON" in err


def test_po2_weights_converted_exactly(capsys, tmp_path):
    """qkeras_mnist_dense's q_dense_2 has quantized_po2 weights: converted with an exact
    ap_fixed type (same values), the csim is bit-exact with QKeras."""
    import tensorflow as tf

    from fpga_ft.generate.intake import open_model

    prepared = open_model(DENSE_YAML, announce=False)
    assert prepared.po2_weights == {"q_dense_2": {"kernel_quantizer": "ap_fixed<10,2>"}}
    x = prepared.prepare_inputs(np.random.default_rng(5).uniform(0, 1, (40, 784)))
    original = prepared.original
    logits = tf.keras.Model(original.inputs, original.get_layer("q_dense_3").output)
    np.testing.assert_array_equal(prepared.model.predict(x, verbose=0), logits.predict(x, verbose=0))
    data = tmp_path / "flat.npz"
    np.savez(data, x=np.random.default_rng(5).uniform(0, 1, (40, 784)).astype(np.float32), y=np.zeros(40, int))
    out = tmp_path / "csim.json"
    status, _, err = _cli(["csim", DENSE_YAML, "--data", data, "--no-head-check", "--json", out], capsys)
    assert status == 0, err
    result = json.loads(out.read_text())
    assert result["bit_exact_fraction"] == 1.0 and result["compared_tensor"] == "pre-softmax (layer q_dense_3)"
    assert "power-of-two (quantized_po2) weights" in err
    # the config's Resource strategy / ReuseFactor 112 is honoured: a time-shared layer
    meta = json.loads((Path(result["project_dir"]) / "fpgaft_design.json").read_text())
    q2 = next(layer for layer in meta["layers"] if layer["name"] == "q_dense_2")
    assert q2["strategy"] == "resource" and q2["reuse_factor"] == 112
    assert "FpgaftReuse: for (unsigned c = 0; c < 112; c++)" in \
        (Path(result["project_dir"]) / "firmware" / "parameters.h").read_text()


def test_po2_activation_refused_up_front(capsys, tmp_path):
    """Power-of-two activations stay unsupported: one line naming layer and quantizer."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    from fpga_ft.generate.convert import convert_model

    inp = tf.keras.Input((4,), name="x_in")
    h = QActivation(quantized_bits(8, 3, alpha=1), name="q_in")(inp)
    h = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="fc1")(h)
    out = QActivation("quantized_relu_po2(4)", name="act")(h)
    path = tmp_path / "po2.h5"
    tf.keras.Model(inp, out).save(path)
    np.savez(tmp_path / "d.npz", x=np.zeros((2, 4), np.float32), y=np.zeros(2, int))
    for args in (["csim", path, "--data", tmp_path / "d.npz"], ["estimate", path, "--board", "zcu102"],
                 ["inject", path, "--data", tmp_path / "d.npz", "--ber", "1e-4"]):
        _one_line_error(*_cli(args, capsys)[::2], "'act'", "quantized_relu_po2")
    # a raw model with po2 weights handed to convert_model (no intake) is refused too
    from fpga_ft.generate.modelio import load_model

    with pytest.raises(FpgaFtError, match="q_dense_2.*quantized_po2"):
        convert_model(load_model(DENSE_YAML), output_dir=tmp_path / "prj")


def _tiny(tmp_path, name, kernel=None, activation=None):
    """A QDense 8 -> 6 -> 4 model with the given first-layer kernel quantizer / activation,
    and data."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits, quantized_relu

    q6 = quantized_bits(6, 0, alpha=1)
    inp = tf.keras.Input((8,), name="x_in")
    h = QActivation(quantized_bits(8, 3, alpha=1), name="q_in")(inp)
    h = QDense(6, kernel_quantizer=kernel or q6, bias_quantizer=q6, name="fc1")(h)
    h = QActivation(activation or quantized_relu(6, 2), name="act")(h)
    out = QDense(4, kernel_quantizer=q6, bias_quantizer=q6, name="fc2")(h)
    path = tmp_path / f"{name}.h5"
    tf.keras.Model(inp, out).save(path)
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "d.npz", x=rng.uniform(-2, 2, (64, 8)).astype(np.float32), y=rng.integers(0, 4, 64))
    return path, tmp_path / "d.npz"


def test_other_qkeras_quantizers_exact_or_refused(capsys, tmp_path):
    """ternary weights and quantized_tanh activations are bit-exact; binary weights (hls4ml's
    XNOR types) and quantized_relu with a negative slope (hls4ml cannot convert it) are
    refused up front by every command with one line naming the layer and quantizer."""
    from qkeras import binary, quantized_relu, quantized_tanh, ternary

    for name, kw in (("ternary", {"kernel": ternary(alpha=1)}), ("tanh", {"activation": quantized_tanh(6)})):
        path, data = _tiny(tmp_path, name, **kw)
        status, _, err = _cli(["csim", path, "--data", data, "--json", tmp_path / f"{name}.json"], capsys)
        assert status == 0, err
        assert json.loads((tmp_path / f"{name}.json").read_text())["bit_exact_fraction"] == 1.0
    for name, kw, needle in (("binary", {"kernel": binary(alpha=1)}, "binary"),
                             ("leaky", {"activation": quantized_relu(6, 2, negative_slope=0.25)}, "negative slope")):
        path, data = _tiny(tmp_path, name, **kw)
        for args in (["csim", path, "--data", data], ["estimate", path, "--board", "zcu102"],
                     ["inject", path, "--data", data, "--ber", "1e-4"]):
            _one_line_error(*_cli(args, capsys)[::2], "fc1" if name == "binary" else "'act'", needle)


# ------------------------------------------------------------------------ preparation
def test_prepare_embedded_softmax_and_input_quantizer():
    """Dense(..., activation='softmax') loses its softmax; the copy's outputs are the logits."""
    import tensorflow as tf
    from qkeras import QDense, quantized_bits

    from fpga_ft.generate.intake import INPUT_QUANTIZER_NAME, UserHlsConfig, prepare_model

    inp = tf.keras.Input((6,), name="x_in")
    h = QDense(4, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
               name="fc1")(inp)
    out = QDense(3, kernel_quantizer=quantized_bits(6, 0, alpha=1), bias_quantizer=quantized_bits(6, 0, alpha=1),
                 activation="softmax", name="fc2")(h)
    model = tf.keras.Model(inp, out)
    config = UserHlsConfig(layer_name={"fc2_softmax": {"Precision": "ap_fixed<16,6>"}, "fc1": {"ReuseFactor": 2}})
    prepared = prepare_model(model, input_precision="ap_fixed<8,3,AP_RND,AP_SAT>", hls_config=config)
    assert set(prepared.hls_config.layer_name) == {"fc1", "x_in"}  # the split-off softmax's entry is gone
    assert "fc2_softmax" in prepared.full_hls_config.layer_name
    assert prepared.model.layers[1].name == INPUT_QUANTIZER_NAME
    assert prepared.compared_tensor == "pre-softmax (layer fc2)"
    assert prepared.hls_config.result_precision("x_in") == "ap_fixed<8,3,AP_RND,AP_SAT>"
    x = np.random.default_rng(1).normal(0, 3, (50, 6)).astype(np.float32)
    xq = prepared.prepare_inputs(x)
    assert xq.max() <= 4 - 1 / 32 and xq.min() >= -4 and np.all(xq * 32 == np.round(xq * 32))
    pre = prepared.model.predict(xq, verbose=0)
    np.testing.assert_allclose(tf.nn.softmax(pre).numpy(), model.predict(xq, verbose=0), rtol=1e-5, atol=1e-6)
    assert prepared.full_model.layers[-1].get_config()["activation"] == "softmax"


def test_config_merge_user_values_and_cli_override():
    """User precisions/reuse win over hls4ml's derived config; an explicit reuse factor wins
    over the YAML; hls4ml is given the Latency layout, the user's strategy is kept as fpga-ft's
    tag (it selects the time-shared kernel), without warnings."""
    import dataclasses

    from fpga_ft.core.plan import LayerProtection, ProtectionPlan
    from fpga_ft.generate.convert import build_hls_config, check_supported
    from fpga_ft.generate.intake import open_model

    prepared = open_model(JET_YAML, announce=False)
    config = dataclasses.replace(prepared.hls_config, model={**prepared.hls_config.model, "Strategy": "Resource"})
    config = config.with_layer("fc2", {"ReuseFactor": 4, "Precision": {"accum": "ap_fixed<20,8>"}})
    protectable = check_supported(prepared.model)
    plan = ProtectionPlan({"fc1": LayerProtection(protected_msbs=2)})
    cfg, warnings = build_hls_config(prepared.model, protectable, plan, backend_name="Vivado", hls_config=config)
    fc2 = cfg["LayerName"]["fc2"]
    assert fc2["ReuseFactor"] == 4 and fc2["Precision"]["accum"] == "ap_fixed<20,8>"
    assert fc2["Precision"]["weight"] == "ap_fixed<6,1>" and fc2["Strategy"] == "Latency"
    assert cfg["LayerName"]["relu1"]["Precision"]["result"] == "ap_fixed<7,1,AP_RND_CONV,AP_SAT>"  # same values
    assert cfg["LayerName"]["fc1"]["FpgaftMsbs"] == 2 and cfg["Model"]["Precision"]["default"] == "ap_fixed<16,6>"
    assert warnings == []
    assert fc2["FpgaftStrategy"] == "resource" and cfg["LayerName"]["fc1"]["FpgaftStrategy"] == "resource"
    cfg, _ = build_hls_config(prepared.model, protectable, ProtectionPlan(), backend_name="Vivado",
                              hls_config=config, reuse_factor=2)
    assert {c["ReuseFactor"] for c in cfg["LayerName"].values() if "ReuseFactor" in c} == {2}


# ------------------------------------------------------------------------ end to end
def test_jet_tagger_from_yaml_bit_exact_before_softmax(jet_data, capsys, tmp_path):
    """qkeras_3layer as published: no input quantizer (ap_fixed<16,6> from its config),
    final softmax kept in the model; the csim equals QKeras on the pre-softmax tensor."""
    out = tmp_path / "csim.json"
    status, stdout, err = _cli(["csim", JET_YAML, "--data", jet_data, "--json", out], capsys)
    assert status == 0, err
    result = json.loads(out.read_text())
    assert result["bit_exact_fraction"] == 1.0
    assert result["compared_tensor"] == "pre-softmax (layer output)"
    assert result["intake"]["input_quantization"]["type"] == "ap_fixed<16,6>"
    assert "fc1_input" in result["intake"]["input_quantization"]["from"]
    head = result["head"]
    assert head["layer"] == "softmax" and head["samples"] == 300 and 0 <= head["class_changes"] <= 300
    assert "compile()/predict()" in head["method"]
    assert "inputs are quantized to ap_fixed<16,6>" in err and "softmax" in err
    # the notes are printed again when the design comes from the cache
    status, _, err = _cli(["csim", JET_JSON, "--data", jet_data, "--input-precision", "ap_fixed<16,6>",
                           "--no-head-check"], capsys)
    assert status == 0 and "inputs are quantized to ap_fixed<16,6> from --input-precision" in err


def test_mnist_cnn_from_yaml_io_stream_bit_exact(capsys, tmp_path):
    """qkeras_mnist_cnn from its config: io_stream, ReuseFactor 16, bit-exact on random images."""
    data = tmp_path / "img.npz"
    rng = np.random.default_rng(3)
    np.savez(data, x=rng.uniform(0, 1, (24, 28, 28, 1)).astype(np.float32), y=rng.integers(0, 10, 24))
    out = tmp_path / "csim.json"
    status, _, err = _cli(["csim", CNN_YAML, "--data", data, "--no-head-check", "--json", out], capsys)
    assert status == 0, err
    result = json.loads(out.read_text())
    assert result["bit_exact_fraction"] == 1.0, result
    assert result["compared_tensor"] == "pre-softmax (layer q_dense)"
    meta = json.loads((Path(result["project_dir"]) / "fpgaft_design.json").read_text())
    assert meta["io_type"] == "io_stream" and meta["backend"] == "Vivado" and meta["part"] == "xcvu9p-flga2577-2-e"
    assert meta["input_quantization"] == "ap_fixed<16,6>"
    # the config's Model ReuseFactor is 16, but each Conv/Dense entry of its LayerName says 1
    # (hls4ml: LayerName wins over Model)
    reuse = {layer["name"]: layer["reuse_factor"] for layer in meta["layers"]}
    assert reuse == {"q_conv2d": 1, "q_conv2d_1": 1, "q_dense": 1}
    assert "ReuseFactor: 16" in (Path(result["project_dir"]) / "hls4ml_config.yml").read_text()
    # the config's AP_RND ReLU types would round ties unlike QKeras: the quantizer's type is used
    assert "'q_activation' result ap_fixed<7,1,AP_RND,AP_SAT>" in err


def test_fixtures_are_the_published_files():
    """Byte-for-byte copies (git blob ids in tests/fixtures/SOURCES.md)."""
    import hashlib
    import re

    table = (EXAMPLES.parent / "SOURCES.md").read_text()
    rows = re.findall(r"^\| `([^`]+)` \| `[^`]+` \| `([0-9a-f]{40})` \|", table, flags=re.M)
    assert len(rows) == 10
    for name, blob in rows:
        data = (EXAMPLES / name).read_bytes()
        assert hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest() == blob, name
