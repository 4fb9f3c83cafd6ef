"""Depthwise and separable convolutions as ordinary convolutions with block-diagonal
kernels (fpga_ft/generate/intake/depthwise.py): the rewrite equals QKeras bit for bit, the
csim stays bit-exact, the layers have fault sites, protection and an estimate, and what is
a layer the rewrite would not reproduce stays as hls4ml converts it, with a note."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import estimate_and_convert, inject_result

from fpga_ft.cli import main
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.paths import MODELS_DIR

SEPCONV = str(MODELS_DIR / "digits_sepconv.h5")
DATA = MODELS_DIR / "digits_img_test.npz"
SEPCONV_LAYERS = ["conv1", "sepconv_depthwise", "sepconv_pointwise", "fc_out"]


def _model(kind: str, mult: int = 1, padding: str = "valid", strides: int = 1, alpha=1, seed: int = 0):
    """Input (7, 7, 3) -> input quantizer -> a QDepthwiseConv2D ('dw') or QSeparableConv2D
    ('sep', 4 filters) -> ReLU -> Flatten -> QDense 3; random weights."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, QDepthwiseConv2D, QSeparableConv2D, quantized_bits, quantized_relu

    q = quantized_bits(6, 0, alpha=1)
    i = tf.keras.layers.Input((7, 7, 3))
    x = QActivation(quantized_bits(8, 0, alpha=1), name="qin")(i)
    if kind == "dw":
        x = QDepthwiseConv2D(
            3,
            depth_multiplier=mult,
            padding=padding,
            strides=strides,
            depthwise_quantizer=quantized_bits(6, 0, alpha=alpha),
            bias_quantizer=q,
            name="dw",
        )(x)
    else:
        x = QSeparableConv2D(
            4,
            3,
            depth_multiplier=mult,
            padding=padding,
            strides=strides,
            depthwise_quantizer=quantized_bits(6, 0, alpha=alpha),
            pointwise_quantizer=quantized_bits(5, 0, alpha=1),
            bias_quantizer=q,
            name="sep",
        )(x)
    x = QActivation(quantized_relu(6, 2), name="relu")(x)
    x = tf.keras.layers.Flatten(name="flat")(x)
    x = QDense(3, kernel_quantizer=quantized_bits(7, 0, alpha=1), bias_quantizer=q, name="head")(x)
    model = tf.keras.Model(i, x, name=f"{kind}_m{mult}_{padding}_s{strides}")
    rng = np.random.RandomState(seed)
    for layer in model.layers:
        layer.set_weights([rng.uniform(-1, 1, w.shape).astype("float32") for w in layer.get_weights()])
    return model, rng.uniform(-1, 1, (60, 7, 7, 3)).astype("float32")


def test_block_diagonal_kernel_feeds_each_input_channel_to_its_own_outputs():
    from fpga_ft.generate.intake.depthwise import block_diagonal

    depthwise = np.arange(1, 2 * 2 * 3 * 2 + 1, dtype=np.float32).reshape(2, 2, 3, 2)
    kernel = block_diagonal(depthwise)
    assert kernel.shape == (2, 2, 3, 6)
    for c in range(3):
        for j in range(2):
            assert np.array_equal(kernel[:, :, c, c * 2 + j], depthwise[:, :, c, j])
        others = [k for k in range(6) if k // 2 != c]
        assert not kernel[:, :, c, others].any()


@pytest.mark.parametrize("kind", ["dw", "sep"])
@pytest.mark.parametrize("mult,padding,strides", [(1, "valid", 1), (1, "same", 2), (2, "same", 1), (2, "valid", 2)])
def test_rewritten_model_equals_qkeras_bit_for_bit(kind, mult, padding, strides):
    from fpga_ft.generate.intake.depthwise import rewrite_depthwise

    model, x = _model(kind, mult, padding, strides)
    rewritten = rewrite_depthwise(model)
    names = [layer.name for layer in rewritten.layers]
    expected = ["dw"] if kind == "dw" else ["sep_depthwise", "sep_pointwise"]
    assert [name for name in names if name.startswith(kind)] == expected
    assert {type(rewritten.get_layer(name)).__name__ for name in expected} == {"QConv2D"}
    assert np.array_equal(rewritten.predict(x, verbose=0), model.predict(x, verbose=0))


@pytest.mark.parametrize("mult,padding,strides", [(1, "same", 1), (2, "valid", 2), (2, "same", 2)])
def test_depthwise_model_csim_is_bit_exact_and_the_layer_has_fault_sites(mult, padding, strides):
    from fpga_ft.core.plan import ProtectionPlan
    from fpga_ft.core.structure import design_structures
    from fpga_ft.generate.bitexact import compare_outputs
    from fpga_ft.generate.design import build_design

    model, x = _model("dw", mult, padding, strides)
    design = build_design(model)  # a Keras model: rewritten like a prepared one
    assert [info.name for info in design.layers] == ["dw", "head"]
    dw = design.layers[0]
    assert (dw.n_in, dw.n_out) == (9 * 3, 3 * mult)
    assert compare_outputs(design.predict(x), model.predict(x, verbose=0))["bit_exact_fraction"] == 1.0
    # the products are the depthwise convolution's: one per non-zero depthwise weight
    depthwise = model.get_layer("dw").depthwise_quantizer_internal(model.get_layer("dw").depthwise_kernel).numpy()
    structure = design_structures([dw], ProtectionPlan())[0]
    assert sum(neuron.n_products for neuron in structure.neurons) == np.count_nonzero(depthwise) > 0
    library = design.library
    library.configure((0.0, 0.0, 1e-3, 1e-3), seed=5)
    library.set_scope(layer=0)
    faulty, injected, _ = library.run(x)
    library.set_scope()
    library.configure()
    assert injected["products"] > 0 and injected["accumulators"] > 0
    assert not np.array_equal(faulty, design.predict(x))


def test_separable_zoo_model_csim_inject_estimate_and_a_plan_on_its_halves(tmp_path):
    csim = tmp_path / "csim.json"
    assert main(["csim", SEPCONV, "--data", str(DATA), "--json", str(csim)]) == 0
    result = json.loads(csim.read_text())
    assert result["bit_exact_fraction"] == 1.0
    assert result["intake"]["rewritten_layers"] == {"sepconv": ["sepconv_depthwise", "sepconv_pointwise"]}
    plan = tmp_path / "plan.yml"
    plan.write_text(
        "layers:\n  sepconv_depthwise:\n    protected_msbs: 2\n    critical_neurons: [0, 7]\n"
        "  sepconv_pointwise:\n    protected_msbs: 1\n"
    )
    rows, result, design = estimate_and_convert(SEPCONV, plan, tmp_path)
    assert list(rows) == SEPCONV_LAYERS
    assert rows["sepconv_depthwise"]["protection_LUT"] > 0 and rows["sepconv_pointwise"]["protection_LUT"] > 0
    # 8 channels, 3x3: the depthwise half has at most 72 products per pixel, not 72 x 8
    assert 0 < rows["sepconv_depthwise"]["products_nonzero"] <= 72
    assert result["protected_layers"] == ["sepconv_depthwise", "sepconv_pointwise"]
    assert result["test_vectors"]["bit_exact_fraction"] == 1.0
    assert design["unprotected_arithmetic"] == []
    assert [layer["name"] for layer in design["layers"]] == SEPCONV_LAYERS


def test_inject_on_the_separable_model_counts_its_products(tmp_path):
    """The separable layer's products are exposed: a campaign counts more product faults
    than the exposure of the other layers alone allows."""
    from fpga_ft.core.exposure import exposed_bits
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import open_model

    design = build_design(open_model(SEPCONV, announce=False))
    halves = [info for info in design.layers if info.name.startswith("sepconv")]
    assert [info.name for info in halves] == ["sepconv_depthwise", "sepconv_pointwise"]
    share = exposed_bits(halves)["products"] / exposed_bits(design.layers)["products"]
    assert share > 0.2
    result = inject_result(SEPCONV, tmp_path, "--sites", "products")
    n = result["inferences"]
    expected = 1e-4 * n * exposed_bits(design.layers)["products"]
    assert result["faults_injected"]["products"] == pytest.approx(expected, rel=0.1)


def test_plan_naming_the_separable_layer_names_its_halves(tmp_path, capsys):
    plan = tmp_path / "plan.yml"
    plan.write_text("layers:\n  sepconv:\n    protected_msbs: 2\n")
    assert main(["convert", SEPCONV, "--board", "zcu102", "--plan", str(plan), "-o", str(tmp_path / "prj")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == (
        "error: plan names layer 'sepconv', a separable convolution converted as its two halves: "
        "name sepconv_depthwise and/or sepconv_pointwise (protectable layers: " + ", ".join(SEPCONV_LAYERS) + ")"
    )


@pytest.mark.parametrize("kind", ["dw", "sep"])
def test_kernel_wide_quantizer_scale_keeps_the_layer_as_hls4ml_converts_it(kind):
    """alpha='auto': a scale per depth multiplier over every input channel; the
    block-diagonal kernel's scale is per output channel over one input channel. The layer
    is not rewritten (it stays as hls4ml converts it, not protectable) and a note says why;
    a plan naming it gets a one-line error."""
    from fpga_ft.core.plan import LayerProtection, ProtectionPlan
    from fpga_ft.generate.convert import convert_model
    from fpga_ft.generate.intake import prepare_model

    model, _ = _model(kind, 2, alpha="auto")
    prepared = prepare_model(model)
    name = next(layer.name for layer in model.layers if "Depthwise" in type(layer).__name__
                or "Separable" in type(layer).__name__)
    assert type(prepared.model.get_layer(name)).__name__ == type(model.get_layer(name)).__name__
    note = next(n for n in prepared.notes if "not rewritten" in n)
    assert "\n" not in note and f"'{name}'" in note and "alpha='auto'" in note and "use alpha=1" in note
    with pytest.raises(FpgaFtError) as info:
        convert_model(prepared, ProtectionPlan({name: LayerProtection(protected_msbs=1)}))
    assert "\n" not in str(info.value) and "not protectable" in str(info.value) and "alpha=1" in str(info.value)


def test_config_entry_of_a_separable_layer_is_split_as_hls4ml_splits_it():
    from fpga_ft.generate.intake import UserHlsConfig
    from fpga_ft.generate.intake.depthwise import rewrite_hls_config

    config = UserHlsConfig(
        layer_name={
            "sep": {
                "ReuseFactor": 2,
                "Precision": {
                    "depthwise": "ap_fixed<6,1>",
                    "pointwise": "ap_fixed<5,1>",
                    "depthwise_accum": "ap_fixed<20,8>",
                    "result": "ap_fixed<16,6>",
                },
            },
            "dw": {"Precision": {"depthwise": "ap_fixed<6,1>", "bias": "ap_fixed<6,1>"}},
            "head": {"ReuseFactor": 4},
        }
    )
    out = rewrite_hls_config(config, {"sep": ["sep_depthwise", "sep_pointwise"], "dw": ["dw"]})
    assert out.layer_name == {
        "head": {"ReuseFactor": 4},
        "sep_depthwise": {
            "ReuseFactor": 2,
            "Precision": {"weight": "ap_fixed<6,1>", "accum": "ap_fixed<20,8>", "result": "ap_fixed<16,6>"},
        },
        "sep_pointwise": {"ReuseFactor": 2, "Precision": {"weight": "ap_fixed<5,1>", "result": "ap_fixed<16,6>"}},
        "dw": {"Precision": {"weight": "ap_fixed<6,1>", "bias": "ap_fixed<6,1>"}},
    }


def test_training_the_rewritten_model_keeps_the_kernel_block_diagonal(tmp_path):
    """Fine-tuning (the optimizer's algorithm knobs) trains a depthwise convolution: the
    BlockDiagonal constraint resets the off-diagonal weights after each step, also after a
    save and reload."""
    import tensorflow as tf

    from fpga_ft.generate.intake.depthwise import block_diagonal, rewrite_depthwise
    from fpga_ft.generate.modelio import load_model

    model, x = _model("sep", 2, seed=4)
    rewritten = rewrite_depthwise(model)
    rewritten.save(tmp_path / "rewritten.h5", include_optimizer=False)
    reloaded = load_model(tmp_path / "rewritten.h5")
    y = np.random.RandomState(0).randint(0, 3, len(x))
    reloaded.compile(
        optimizer=tf.keras.optimizers.Adam(0.05), loss=tf.keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    )
    reloaded.fit(x, y, epochs=2, batch_size=20, verbose=0)
    kernel = reloaded.get_layer("sep_depthwise").get_weights()[0]
    on_diagonal = block_diagonal(np.ones((3, 3, 3, 2))) != 0
    assert not kernel[~on_diagonal].any()
    before = rewritten.get_layer("sep_depthwise").get_weights()[0]
    assert not np.array_equal(kernel[on_diagonal], before[on_diagonal])
    assert np.abs(kernel).max() <= 1.0  # the depthwise layer's QKeras Clip(-1, 1) still applies


@pytest.mark.parametrize("mult", [1, 2])
def test_weight_memory_of_a_rewritten_depthwise_layer_holds_only_its_depthwise_words(mult):
    """The block-diagonal zeros are not in the weight memory (a flip there would add a
    cross-channel product no depthwise hardware has): the rewritten layer exposes taps x
    channels x multiplier weight words (hls4ml's own depthwise array), and the weight flips
    the csim draws match BER x those bits (binomial 99.9 %); with the n_in x n_out array
    (3x as many words for this layer) the count would fall far outside."""
    from fpga_ft.core.exposure import exposed_bits
    from fpga_ft.core.stats import binomial_count_interval
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import prepare_model

    model, x = _model("dw", mult=mult)
    design = build_design(prepare_model(model))
    info = next(layer for layer in design.layers if layer.name == "dw")
    assert info.depthwise_multiplier == mult
    channels, taps = 3, 9
    assert info.n_in == taps * channels and info.n_out == channels * mult
    assert info.stored_weights_per_neuron == taps
    own = taps * channels * mult * info.weight_type.width + info.n_out * info.bias_type.width
    others = sum(exposed_bits([layer])["weights"] for layer in design.layers if layer.name != "dw")
    bits = exposed_bits(design.layers)["weights"]
    assert bits == own + others
    x = np.ascontiguousarray(np.tile(x.reshape(len(x), -1), (8, 1)))  # 480 inferences
    ber = 2e-3
    design.library.configure((ber, 0.0, 0.0, 0.0), seed=5)
    _, counts, _ = design.library.run(x)
    low, high = binomial_count_interval(bits * len(x), ber, 0.999)
    assert low <= counts["weights"] <= high, (counts["weights"], ber * bits * len(x))
