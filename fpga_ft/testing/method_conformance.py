"""What every vulnerability method must do, as a pytest test class to inherit
(:class:`MethodConformance`): a method registered with
:func:`~fpga_ft.measure.vulnerability.registry.register_method` passes it, and ``fpga-ft
analyze`` (:func:`~fpga_ft.measure.vulnerability.analysis.analyze`) can then use it.

Use it in a test module::

    from fpga_ft.testing.method_conformance import MethodConformance

    @pytest.fixture
    def method_name():
        return "my_method"

    @pytest.fixture
    def analysis_inputs(my_design, my_data):  # a function: fresh AnalysisInputs per call
        return lambda: AnalysisInputs(design=my_design, x=..., y=..., model=..., repeats=1, progress=False)

    class TestMyMethod(MethodConformance):
        pass

The inputs should be small (a few hundred samples, ``repeats=1``): each check runs the method
once or twice.
"""

from __future__ import annotations

import json
from typing import Callable

import numpy as np

from fpga_ft.core.jsonio import json_default
from fpga_ft.measure.vulnerability.analysis import AnalysisSettings, analyze
from fpga_ft.measure.vulnerability.registry import METHODS, AnalysisInputs, compute_scores, method_names

InputsFactory = Callable[[], AnalysisInputs]


class MethodConformance:
    """Checks for one registered method. Needs two fixtures: ``method_name`` (str) and
    ``analysis_inputs`` (a function returning fresh :class:`AnalysisInputs`: the design, its
    test data and, for TensorFlow methods, the Keras model)."""

    #: relative tolerance of the determinism check (TensorFlow's CPU reductions may reorder sums)
    rtol = 1e-6

    def test_is_registered(self, method_name: str):
        assert method_name in METHODS
        assert method_name in method_names()

    def test_one_finite_score_per_neuron_of_every_layer(self, method_name: str, analysis_inputs: InputsFactory):
        inputs = analysis_inputs()
        result = compute_scores(method_name, inputs)
        assert result.name == method_name and result.seconds >= 0
        for info in inputs.layers:
            scores = np.asarray(result.scores[info.name])
            assert scores.shape == (info.n_out,), (method_name, info.name, scores.shape)
            assert np.all(np.isfinite(scores)), (method_name, info.name)

    def test_deterministic_for_a_seed(self, method_name: str, analysis_inputs: InputsFactory):
        first = compute_scores(method_name, analysis_inputs()).scores
        second = compute_scores(method_name, analysis_inputs()).scores
        assert list(first) == list(second)
        for name in first:
            np.testing.assert_allclose(first[name], second[name], rtol=self.rtol, atol=0, err_msg=name)

    def test_runs_through_analyze(self, method_name: str, analysis_inputs: InputsFactory):
        inputs = analysis_inputs()
        settings = AnalysisSettings(ber=inputs.ber, repeats=inputs.repeats or 1, seed=inputs.seed, bits=False,
                                    hutchinson_samples=inputs.hutchinson_samples, batch_size=inputs.batch_size,
                                    threads=1, progress=False)
        report = analyze(inputs.design, inputs.x, inputs.y, methods=[method_name], x_train=inputs.x_train,
                         y_train=inputs.y_train, keras_model=inputs.model, settings=settings)
        layers = list(inputs.layers)
        assert report.primary == method_name and report.methods == (method_name,)
        assert len(report.neurons) == sum(info.n_out for info in layers)
        assert [n.rank for n in report.neurons] == list(range(1, len(report.neurons) + 1))
        scores = [n.score for n in report.neurons if n.score is not None]
        assert scores == sorted(scores, reverse=True)  # most vulnerable first
        data = json.loads(json.dumps(report.to_dict(), default=json_default))
        assert data["primary"] == method_name and len(data["neurons"]) == len(report.neurons)
