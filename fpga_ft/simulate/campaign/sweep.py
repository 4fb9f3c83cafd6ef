"""``fpga-ft inject`` as a library call: the design a sweep runs on (:func:`open_subject`: a
model file built with a plan, or an fpga-ft project directory) and the sweep with what it
ran on (:func:`sweep` -> :class:`SweepReport`, whose ``to_dict()`` is the command's JSON)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import DEFAULT_SCRUB_INTERVAL, SITES
from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.simulate.campaign.result import SweepResult
from fpga_ft.simulate.campaign.run import run_sweep

DESIGN_FILE = "fpgaft_design.json"


@dataclass(frozen=True)
class SweepSubject:
    """The design a sweep runs on and how the user named it.

    Attributes:
        model: MODEL as given (a model file or an fpga-ft project directory).
        name: its file or directory name (the header line and the plot title use it).
        design: the compiled :class:`~fpga_ft.generate.design.Design`.
        plan: the design's protection plan.
        plan_path: the plan file given (None: unprotected, or a project's own plan).
        plan_label: ``unprotected``, the plan file's name, or the project's plan file.
        intake: JSON summary of the model intake (``PreparedModel.describe()``, or a
            project's input quantization).
    """

    model: str
    name: str
    design: object
    plan: ProtectionPlan
    plan_path: str | None
    plan_label: str
    intake: dict


def is_project_dir(path: str | os.PathLike) -> bool:
    """True when ``path`` is an fpga-ft project directory (it holds ``fpgaft_design.json``)."""
    return Path(path).is_dir() and (Path(path) / DESIGN_FILE).is_file()


def open_subject(model, x: np.ndarray, *, plan_path: str | None = None, io_type: str | None = None,
                 prepared=None) -> tuple[SweepSubject, np.ndarray]:
    """The design of ``model`` and ``x`` as its input words (quantized like the model's input
    when the intake gave it an input quantizer).

    ``model``: an fpga-ft project directory (its plan is fixed: ``plan_path`` must be None;
    no TensorFlow), or a model file built with the plan ``plan_path`` (default:
    unprotected) and ``io_type``. ``prepared``: the model file already opened
    (a :class:`~fpga_ft.generate.intake.PreparedModel`), or a function without arguments
    that opens it (called after the plan is read), else it is opened here with
    :func:`fpga_ft.generate.intake.open_model`."""
    model_path = Path(model)
    if is_project_dir(model_path):
        from fpga_ft.generate.design import open_design

        if plan_path:
            raise FpgaFtError("--plan cannot be used with a project directory (its plan is fixed at build time)")
        design = open_design(model_path)
        n_values = int(x[0].size)
        if n_values != design.n_inputs:
            raise FpgaFtError(f"input shape mismatch: data samples have {n_values} values but design "
                              f"{model_path} expects {design.n_inputs}")
        plan = design.plan
        label = "unprotected" if not plan.protected_layers else f"{model_path / 'fpgaft_plan.yml'}"
        intake = {"project": str(model_path), "input_quantization": design.meta.get("input_quantization")}
        subject = SweepSubject(model=str(model), name=model_path.name, design=design, plan=plan, plan_path=None,
                               plan_label=label, intake=intake)
        return subject, design.prepare_inputs(x)

    from fpga_ft.generate.design import build_design
    from fpga_ft.generate.intake import open_model
    from fpga_ft.generate.modelio import check_input_shape

    plan = ProtectionPlan.load(plan_path) if plan_path else ProtectionPlan()
    if prepared is None:
        prepared = open_model(model)
    elif callable(prepared):
        prepared = prepared()
    check_input_shape(prepared.model, x)
    x = prepared.prepare_inputs(x)
    design = build_design(prepared.model, plan, io_type=io_type, hls_config=prepared.hls_config)
    label = Path(plan_path).name if plan_path else "unprotected"
    subject = SweepSubject(model=str(model), name=model_path.name, design=design, plan=plan, plan_path=plan_path,
                           plan_label=label, intake=prepared.describe())
    return subject, x


@dataclass(frozen=True)
class SweepReport:
    """A sweep (:class:`SweepResult`) and what it ran on: the subject and the data file
    (``samples``: inferences per pass)."""

    subject: SweepSubject
    data_path: str
    samples: int
    sweep: SweepResult

    @property
    def title(self) -> str:
        """``<model name> - plan: <plan label>`` (the plot's title)."""
        return f"{self.subject.name} - plan: {self.subject.plan_label}"

    def to_dict(self) -> dict:
        """The JSON of ``fpga-ft inject``."""
        subject = self.subject
        return {
            "model": subject.model,
            "plan": {"path": subject.plan_path, "label": subject.plan_label, **subject.plan.to_dict()},
            "design": str(subject.design.project_dir),
            "data": {"path": self.data_path, "samples": self.samples},
            "intake": subject.intake,
            **self.sweep.to_dict(),
        }


def sweep(subject: SweepSubject, x: np.ndarray, y: np.ndarray, bers: Iterable[float], *, data_path,
          sites=SITES, mode: str = "transient", scrub_interval: int = DEFAULT_SCRUB_INTERVAL,
          **campaign) -> SweepReport:
    """:func:`~fpga_ft.simulate.campaign.run.run_sweep` on the subject's design at every BER of
    ``bers`` (faults per bit per inference); ``x`` as :func:`open_subject` returned it, ``y``
    class labels; ``campaign``: the options of :func:`~fpga_ft.simulate.campaign.run.run_campaign`
    (repeats, seed, workers, confidence, target_halfwidth, max_repeats, checkpoint, progress)."""
    result = run_sweep(subject.design, x, y, bers, sites=sites, mode=mode, scrub_interval=scrub_interval,
                       **campaign)
    return SweepReport(subject=subject, data_path=str(data_path), samples=int(len(x)), sweep=result)
