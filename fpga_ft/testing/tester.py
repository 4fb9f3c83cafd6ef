"""Reliability assertions for users' own test suites (csim fault regression tests).

    def test_reliability(fpga_ft):                      # fixture from fpga_ft.testing.pytest_plugin
        r = fpga_ft.campaign("models/my.h5", data="tb.npz", plan="plan.yml", ber=1e-4)
        r.assert_accuracy(at_least=0.95, confidence=0.95)   # on the interval's lower bound

Compiled designs are cached (on disk by :mod:`fpga_ft.generate.design`, in memory for the session),
so many tests on one design compile it once. A failure names the measured interval, the
target, the BER, the plan, the seed, and the command that reproduces the campaign.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from fpga_ft.core.boards import get_board
from fpga_ft.core.faults import SITES, FaultModel, parse_sites
from fpga_ft.core.plan import ProtectionPlan
from fpga_ft.core.stats import accuracy_interval
from fpga_ft.generate.design import build_design
from fpga_ft.generate.modelio import check_labels, load_data
from fpga_ft.simulate.campaign import CampaignResult, run_campaign

QUICK_REPEATS = 1
QUICK_MAX_SAMPLES = 200


@dataclass
class ReliabilityResult:
    """A campaign's outcome plus what is needed to explain and reproduce it."""

    result: CampaignResult
    model: str
    data: str
    plan: str | None
    quick: bool = False
    extra_args: list = field(default_factory=list)

    @property
    def accuracy(self) -> float:
        return self.result.accuracy_mean

    def interval(self, confidence: float | None = None) -> tuple[float, float]:
        """Wilson interval on the accuracy at ``confidence`` (default: the campaign's)."""
        if confidence is None or confidence == self.result.confidence:
            return self.result.ci_low, self.result.ci_high
        _, low, high = accuracy_interval(self.result.correct, self.result.inferences, confidence)
        return low, high

    def reproduce_command(self) -> str:
        r = self.result
        argv = ["fpga-ft", "inject", self.model, "--data", self.data, "--ber", repr(r.ber),
                "--sites", ",".join(r.sites), "--mode", r.mode, "--repeats", str(r.repeats), "--seed", str(r.seed)]
        if self.plan:
            argv += ["--plan", self.plan]
        return shlex.join(argv + list(self.extra_args))

    def describe(self, confidence: float | None = None) -> str:
        low, high = self.interval(confidence)
        level = confidence or self.result.confidence
        r = self.result
        return (f"accuracy {r.accuracy_mean:.4f}, {level:.0%} Wilson interval [{low:.4f}, {high:.4f}] over "
                f"{r.inferences} inferences at BER {r.ber:g} ({'+'.join(r.sites)}, {r.mode}); clean accuracy "
                f"{r.clean_accuracy:.4f}; model {self.model}; plan {self.plan or 'none (unprotected)'}; "
                f"seed {r.seed}{f' (quick mode: first {QUICK_MAX_SAMPLES} samples)' if self.quick else ''}; reproduce: {self.reproduce_command()}")

    def assert_accuracy(self, at_least: float, confidence: float = 0.95) -> None:
        """Fail unless the lower bound of the accuracy interval is >= ``at_least``."""
        low, _ = self.interval(confidence)
        if low < at_least:
            raise AssertionError(f"fpga-ft reliability target missed: lower bound {low:.4f} < target {at_least:.4f}; "
                                 + self.describe(confidence))

    def assert_loss(self, at_most: float, confidence: float = 0.95) -> None:
        """Fail unless clean accuracy minus the interval's lower bound is <= ``at_most``."""
        low, _ = self.interval(confidence)
        loss = self.result.clean_accuracy - low
        if loss > at_most:
            raise AssertionError(f"fpga-ft reliability target missed: accuracy loss up to {loss:.4f} > allowed "
                                 f"{at_most:.4f}; " + self.describe(confidence))

    def to_dict(self) -> dict:
        return {"model": self.model, "data": self.data, "plan": self.plan, "quick": self.quick,
                "result": self.result.to_dict()}

    def assert_matches_golden(self, path: str | Path, update: bool = False) -> bool:
        """Golden-file mode: store this campaign's JSON at ``path`` the first time (or with
        ``update``); afterwards fail when this run's interval no longer overlaps the stored
        one. Returns True when the file was (re)written."""
        path = Path(path)
        if update or not path.is_file():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps(self.to_dict(), indent=2) + "\n")
            return True
        stored = json.loads(path.read_text())
        golden = stored["result"]["accuracy"]
        low, high = self.interval()
        if high < golden["ci_low"] or low > golden["ci_high"]:
            raise AssertionError(
                f"fpga-ft golden mismatch ({path}): interval [{low:.4f}, {high:.4f}] no longer overlaps the stored "
                f"[{golden['ci_low']:.4f}, {golden['ci_high']:.4f}]; " + self.describe())
        return False


class FpgaFtTester:
    """What the ``fpga_ft`` pytest fixture hands to a test."""

    def __init__(self, quick: bool = False, update_golden: bool = False):
        self.quick = quick
        self.update_golden = update_golden
        self._designs: dict = {}

    def design(self, model, plan=None, board=None, io_type: str | None = None):
        key = (str(model), str(plan), board, io_type)
        if key not in self._designs:
            loaded_plan = ProtectionPlan.load(plan) if plan else ProtectionPlan()
            self._designs[key] = build_design(str(model), loaded_plan, board=get_board(board) if board else None,
                                              io_type=io_type)
        return self._designs[key]

    def campaign(self, model, data, plan=None, ber: float = 1e-4, sites=SITES, mode: str = "transient",
                 repeats: int = 5, seed: int = 0, board: str | None = None, io_type: str | None = None,
                 workers: int = 1) -> ReliabilityResult:
        """Run a fault-injection campaign on ``model`` with ``plan`` (paths) over ``data``.

        ``model``: any MODEL the CLI takes (``.h5``, ``.json`` + sibling weights, hls4ml
        config YAML); ``io_type`` None: the config's, else io_parallel."""
        design = self.design(model, plan, board, io_type)
        x, y = load_data(data)
        check_labels(data, y, design.n_outputs)
        x = design.prepare_inputs(x)  # quantized to the model's input type if the intake inserted one
        extra = []
        if io_type:
            extra += ["--io-type", io_type]
        if self.quick:
            repeats = min(repeats, QUICK_REPEATS)
            x, y = x[:QUICK_MAX_SAMPLES], y[:QUICK_MAX_SAMPLES]
        sites = parse_sites(sites) if isinstance(sites, str) else tuple(sites)
        fault_model = FaultModel(ber=ber, sites=sites, mode=mode)
        result = run_campaign(design, x, y, fault_model, repeats=repeats, seed=seed, workers=workers)
        return ReliabilityResult(result=result, model=str(model), data=str(data),
                                 plan=str(plan) if plan else None, quick=self.quick, extra_args=extra)
