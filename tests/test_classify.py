"""The one classification rule (fpga_ft.core.classify.OutputHead) and who follows it.

A one-output model ending in a sigmoid loses the sigmoid at intake (hls4ml computes it with
a lookup table): the csim outputs the logit, so class 1 is ``logit > 0`` (the sigmoid's
``> 0.5``). The campaign (at BER 0) and the optimizer's evaluator must take the same classes
as the full QKeras model; a 3-class model keeps the argmax.
"""

from __future__ import annotations

import numpy as np
import pytest

from fpga_ft.core.classify import OutputHead, classify, n_classes
from fpga_ft.core.errors import FpgaFtError


# ------------------------------------------------------------------------ the rule itself
def test_one_output_logits_threshold_at_zero():
    head = OutputHead(1, logits=True)
    outputs = np.array([[-0.3], [0.0], [0.2], [0.7]])
    assert head.threshold == 0.0 and head.n_classes == 2
    assert head.classify(outputs).tolist() == [0, 0, 1, 1]
    assert classify(outputs, logits=True).tolist() == [0, 0, 1, 1]


def test_one_output_probabilities_threshold_at_half():
    head = OutputHead(1, logits=False)
    outputs = np.array([[0.1], [0.3], [0.5], [0.51], [0.9]])
    assert head.threshold == 0.5 and head.n_classes == 2
    assert head.classify(outputs).tolist() == [0, 0, 0, 1, 1]
    assert classify(outputs, logits=False).tolist() == [0, 0, 0, 1, 1]


def test_several_outputs_argmax_either_way():
    outputs = np.array([[0.1, 2.0, -1.0], [3.0, 0.0, 0.5], [-2.0, -3.0, -1.0]])
    for logits in (True, False):
        head = OutputHead(3, logits=logits)
        assert head.n_classes == 3
        assert head.classify(outputs).tolist() == [1, 0, 2]
    assert n_classes(1) == 2 and n_classes(10) == 10
    with pytest.raises(FpgaFtError, match="values per sample"):
        OutputHead(2).classify(outputs)
    with pytest.raises(FpgaFtError, match="at least one output"):
        OutputHead(0)


# ------------------------------------------------------------------------ Keras models
def _tiny(n_out: int, head: str | None, seed: int = 3):
    """Input quantizer -> QDense(n_out) (6-bit weights), with ``head``: None, 'dense' (the
    Dense's own activation: sigmoid for one output, softmax otherwise) or 'layer' (an
    Activation layer)."""
    import tensorflow as tf
    from qkeras import QActivation, QDense, quantized_bits

    q6 = quantized_bits(6, 0, alpha=1)
    act = "sigmoid" if n_out == 1 else "softmax"
    inp = tf.keras.Input((8,))
    h = QActivation(quantized_bits(8, 0, alpha=1), name="qin")(inp)
    out = QDense(n_out, kernel_quantizer=q6, bias_quantizer=q6, activation=act if head == "dense" else None, name="fc")(
        h
    )
    if head == "layer":
        out = tf.keras.layers.Activation(act, name="head")(out)
    model = tf.keras.Model(inp, out)
    rng = np.random.default_rng(seed)
    model.get_layer("fc").set_weights([rng.normal(0, 0.4, (8, n_out)), rng.normal(0, 0.1, n_out)])
    return model


def test_outputs_are_logits_one_rule():
    import tensorflow as tf

    from fpga_ft.generate.intake import prepare_model
    from fpga_ft.generate.modelio import output_head, outputs_are_logits

    assert outputs_are_logits(_tiny(1, None))
    assert not outputs_are_logits(_tiny(1, "dense"))
    assert not outputs_are_logits(_tiny(1, "layer"))
    assert not outputs_are_logits(_tiny(3, "dense"))
    assert not outputs_are_logits(_tiny(3, "layer"))
    inp = tf.keras.Input((4,))
    assert not outputs_are_logits(tf.keras.Model(inp, tf.keras.layers.Softmax()(tf.keras.layers.Dense(3)(inp))))
    # the intake removes the table head: what it converts (and the csim computes) are logits
    for n_out in (1, 3):
        for head in ("dense", "layer"):
            prepared = prepare_model(_tiny(n_out, head))
            assert prepared.head is not None
            assert output_head(prepared.model) == OutputHead(n_out, logits=True)


@pytest.fixture(scope="module")
def sigmoid_case(tmp_path_factory):
    """A one-output model with a sigmoid head, data and labels that tell the rules apart."""
    from fpga_ft.generate.intake import prepare_model

    model = _tiny(1, "dense")
    prepared = prepare_model(model)
    rng = np.random.default_rng(11)
    x = np.round(rng.uniform(-1, 1, (300, 8)) * 128).astype(np.float32) / 128
    prob = model.predict(x, verbose=0)[:, 0]
    logit = prepared.model.predict(x, verbose=0)[:, 0]
    reference = (prob > 0.5).astype(np.int64)  # the full model's classes
    y = reference.copy()
    y[rng.random(len(y)) < 0.1] ^= 1  # some mistakes, so accuracy is not 1
    return prepared, x, y, reference, logit


def test_sigmoid_model_campaign_and_evaluator_agree(sigmoid_case):
    from fpga_ft.core.faults import FaultModel
    from fpga_ft.generate.design import build_design
    from fpga_ft.search.optimize import Evaluator
    from fpga_ft.simulate.campaign import run_campaign

    prepared, x, y, reference, logit = sigmoid_case
    expected = float(np.mean(reference == y))
    old_rule = float(np.mean((logit > 0.5) == y))  # a logit thresholded at 0.5, as before
    assert abs(old_rule - expected) > 0.05  # the data tells the two rules apart

    design = build_design(prepared.model)
    assert design.output_head == OutputHead(1, logits=True)
    assert np.array_equal(design.output_head.classify(design.predict(x)), reference)
    result = run_campaign(design, x, y, FaultModel(0.0), repeats=1, checkpoint=None)
    assert result.clean_accuracy == pytest.approx(expected)
    assert result.accuracy_mean == pytest.approx(expected) and result.output_changed == 0

    evaluator = Evaluator(prepared.model, x, y, board="zcu102", repeats=1)
    assert evaluator.clean_accuracy == pytest.approx(expected)


def test_sigmoid_model_vulnerability_oracle_uses_the_rule(sigmoid_case):
    """The injection oracle's clean classes and its per-neuron accuracy losses follow the
    same rule: the clean accuracy is the full model's, and at a negligible BER (1e-9: no flip
    is drawn with this seed) every loss is 0."""
    from fpga_ft.generate.design import build_design
    from fpga_ft.measure import vulnerability as V

    prepared, x, y, reference, _ = sigmoid_case
    design = build_design(prepared.model)
    result = V.injection_analysis(design, x, y, ber=1e-9, repeats=1, seed=0, progress=False)
    assert result.clean_accuracy == pytest.approx(float(np.mean(reference == y)))
    assert all(np.all(np.asarray(v) == 0.0) for v in result.loss.values())
    from fpga_ft.measure.vulnerability.injection import layer_losses

    assert all(v == 0.0 for v in layer_losses(design, x, y, ber=1e-9, repeats=1).values())


def test_three_class_model_unchanged():
    from fpga_ft.core.faults import FaultModel
    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import prepare_model
    from fpga_ft.search.optimize import Evaluator
    from fpga_ft.simulate.campaign import run_campaign

    model = _tiny(3, "dense", seed=5)
    prepared = prepare_model(model)
    rng = np.random.default_rng(12)
    x = np.round(rng.uniform(-1, 1, (200, 8)) * 128).astype(np.float32) / 128
    reference = model.predict(x, verbose=0).argmax(axis=1)
    y = rng.integers(0, 3, len(x))
    expected = float(np.mean(reference == y))

    design = build_design(prepared.model)
    assert design.output_head == OutputHead(3, logits=True)
    assert np.array_equal(design.output_head.classify(design.predict(x)), reference)
    result = run_campaign(design, x, y, FaultModel(0.0), repeats=1, checkpoint=None)
    assert result.clean_accuracy == pytest.approx(expected) == result.accuracy_mean
    assert Evaluator(prepared.model, x, y, board="zcu102", repeats=1).clean_accuracy == pytest.approx(expected)
