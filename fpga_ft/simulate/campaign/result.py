"""The result of a campaign (:class:`CampaignResult`, one BER) and of a sweep
(:class:`SweepResult`, several BERs); ``to_dict()`` gives their JSON."""

from __future__ import annotations

from dataclasses import dataclass, field

from fpga_ft.core.faults import FaultModel
from fpga_ft.core.stats import halfwidth
from fpga_ft.simulate.campaign.devices import DeviceStats, FailureRate, devices_from_dict

#: the confidence interval of every campaign (on the misclassification count)
CI_METHOD = "wilson"
#: the interval of the mean in the held modes (latched, stuck-at), over devices
DEVICE_CI_METHOD = "t interval of the mean device accuracy (devices are the independent draws)"


@dataclass
class CampaignResult:
    """Outcome of one campaign (one BER). Accuracies are fractions in [0, 1]; ``seconds``
    is the wall time of the call; fault counters are flips summed over all chunks."""

    ber: float
    clean_accuracy: float
    accuracy_mean: float
    ci_low: float
    ci_high: float
    inferences: int
    errors: int
    faults_injected: dict
    faults_masked: dict
    seconds: float
    repeats: int
    seed: int
    sites: tuple
    mode: str
    confidence: float
    stopped_early: bool
    # extras
    scrub_interval: int = 0
    output_changed: int | None = None  # inferences whose class differs from the fault-free one
    repeat_accuracies: list = field(default_factory=list)
    max_repeats: int = 0
    target_halfwidth: float | None = None
    chunk_size: int = 0
    chunks: int = 0
    resumed_chunks: int = 0
    checkpoint: str | None = None
    key: str = ""
    model: FaultModel | None = None  # the whole fault model (MBU, upset rate); None: from the fields
    devices: DeviceStats | None = None  # held modes (latched, stuck-at): one device per chunk
    failure_rate: FailureRate | None = None  # with an upset rate: wrong outputs per hour, FIT

    @property
    def correct(self) -> int:
        return self.inferences - self.errors

    @property
    def ci_halfwidth(self) -> float:
        return halfwidth((self.ci_low, self.ci_high))

    @property
    def fault_model(self) -> FaultModel:
        if self.model is not None:
            return self.model
        return FaultModel(ber=self.ber, sites=self.sites, mode=self.mode, scrub_interval=self.scrub_interval)

    def to_dict(self) -> dict:
        return {
            "ber": self.ber,
            "clean_accuracy": self.clean_accuracy,
            "accuracy": {"mean": self.accuracy_mean, "ci_low": self.ci_low, "ci_high": self.ci_high,
                         "confidence": self.confidence,
                         "method": f"{CI_METHOD} score interval on the misclassification count"
                         if self.devices is None or self.devices.count < 2 else DEVICE_CI_METHOD},
            "inferences": self.inferences,
            "errors": self.errors,
            "faults_injected": dict(self.faults_injected),
            "faults_masked": dict(self.faults_masked),
            "seconds": self.seconds,
            "repeats": self.repeats,
            "seed": self.seed,
            "sites": list(self.sites),
            "mode": self.mode,
            "scrub_interval": self.scrub_interval,
            "confidence": self.confidence,
            "stopped_early": self.stopped_early,
            "output_changed": self.output_changed,
            "repeat_accuracies": list(self.repeat_accuracies),
            "max_repeats": self.max_repeats,
            "target_halfwidth": self.target_halfwidth,
            "chunk_size": self.chunk_size,
            "chunks": self.chunks,
            "resumed_chunks": self.resumed_chunks,
            "inferences_per_second": self.inferences / self.seconds if self.seconds > 0 else None,
            "checkpoint": self.checkpoint,
            "key": self.key,
            **({"fault_model": self.model.to_dict()} if self.model is not None else {}),
            **({"devices": self.devices.to_dict()} if self.devices is not None else {}),
            **({"failure_rate": self.failure_rate.to_dict()} if self.failure_rate is not None else {}),
        }

    @classmethod
    def from_dict(cls, data: dict) -> "CampaignResult":
        acc = data["accuracy"]
        return cls(
            ber=float(data["ber"]), clean_accuracy=float(data["clean_accuracy"]), accuracy_mean=float(acc["mean"]),
            ci_low=float(acc["ci_low"]), ci_high=float(acc["ci_high"]), inferences=int(data["inferences"]),
            errors=int(data["errors"]), faults_injected=dict(data["faults_injected"]),
            faults_masked=dict(data["faults_masked"]), seconds=float(data["seconds"]), repeats=int(data["repeats"]),
            seed=int(data["seed"]), sites=tuple(data["sites"]), mode=data["mode"],
            confidence=float(data["confidence"]), stopped_early=bool(data["stopped_early"]),
            scrub_interval=int(data.get("scrub_interval", 0)), output_changed=data.get("output_changed"),
            repeat_accuracies=list(data.get("repeat_accuracies", [])), max_repeats=int(data.get("max_repeats", 0)),
            target_halfwidth=data.get("target_halfwidth"), chunk_size=int(data.get("chunk_size", 0)),
            chunks=int(data.get("chunks", 0)), resumed_chunks=int(data.get("resumed_chunks", 0)),
            checkpoint=data.get("checkpoint"), key=data.get("key", ""),
            model=FaultModel.from_dict(data["fault_model"]) if "fault_model" in data else None,
            devices=devices_from_dict(data["devices"]) if "devices" in data else None,
            failure_rate=FailureRate(changed=int(data["output_changed"]), inferences=int(data["inferences"]),
                                     inference_rate=float(data["failure_rate"]["inference_rate"]),
                                     confidence=float(data["failure_rate"]["confidence"]))
            if "failure_rate" in data else None)


@dataclass(frozen=True)
class SweepResult:
    """Campaigns at several BERs (faults per bit per inference) under one fault model
    otherwise: the same sites, mode and scrub interval (inferences), seed and options."""

    bers: tuple[float, ...]
    sites: tuple[str, ...]
    mode: str
    scrub_interval: int
    results: tuple[CampaignResult, ...]

    def __iter__(self):
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index):
        return self.results[index]

    def fault_model_dict(self) -> dict:
        """The fault model's JSON with ``bers`` (the list swept) in place of ``ber``."""
        first = self.results[0].model if self.results else None
        data = (first or FaultModel(ber=0.0, sites=self.sites, mode=self.mode,
                                    scrub_interval=self.scrub_interval)).to_dict()
        data.pop("ber")
        data.pop("ber_source", None)  # per result (each BER has its own upset rate)
        data["bers"] = list(self.bers)
        return data

    def to_dict(self) -> dict:
        return {"fault_model": self.fault_model_dict(), "results": [r.to_dict() for r in self.results]}
