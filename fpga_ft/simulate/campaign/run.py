"""Running a campaign (:func:`run_campaign`: checks, chunks, early stopping, the result) and a
sweep over BERs (:func:`run_sweep`)."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Iterable

import numpy as np

from fpga_ft.core.cache import data_fingerprint
from fpga_ft.core.classify import OutputHead
from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import DEFAULT_SCRUB_INTERVAL, SITES, FaultModel
from fpga_ft.core.stats import accuracy_interval, halfwidth, mean_interval
from fpga_ft.simulate.campaign.devices import FailureRate, device_stats
from fpga_ft.simulate.campaign.checkpoint import CHECKPOINTS_USED, Checkpoint, checkpoint_path
from fpga_ft.simulate.campaign.layout import campaign_key, chunk_seed, design_fingerprint, pass_slices, slice_len
from fpga_ft.simulate.campaign.progress import grow_progress, progress_bar
from fpga_ft.simulate.campaign.result import CI_METHOD, CampaignResult, SweepResult
from fpga_ft.simulate.campaign.workers import chunk_executor, execute_chunk, run_parallel
from fpga_ft.simulate.cluster import resolve_scheduler

DEFAULT_CHUNK_SIZE = 512  # target inferences per chunk (slices of a pass are near-equal)


def _as_design(design):
    if isinstance(design, (str, os.PathLike)):
        from fpga_ft.generate.design import open_design

        return open_design(design)
    # ask the type (or the instance's own attributes): hasattr(design, "library") would build
    # a Design's library and turn any AttributeError inside the build into this message
    has_library = hasattr(type(design), "library") or "library" in getattr(design, "__dict__", {})
    if not has_library or not hasattr(design, "project_dir"):
        raise FpgaFtError(f"expected an fpga-ft Design or project directory, got {type(design).__name__}")
    return design


def _prepare_data(design, x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=np.float32)
    if x.ndim < 1 or len(x) == 0:
        raise FpgaFtError("no samples to run (x is empty)")
    x = np.ascontiguousarray(x.reshape(len(x), -1))
    if x.shape[1] != design.n_inputs:
        raise FpgaFtError(f"input shape mismatch: samples have {x.shape[1]} values, the design expects "
                          f"{design.n_inputs}")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] > 1:  # one-hot
        y = y.argmax(axis=1)
    y = y.reshape(-1).astype(np.int64)
    if len(y) != len(x):
        raise FpgaFtError(f"x has {len(x)} samples but y has {len(y)} labels")
    n_classes = _output_head(design).n_classes
    if y.min() < 0 or y.max() >= n_classes:
        raise FpgaFtError(f"labels must be in 0..{n_classes - 1} for a design with {design.n_outputs} outputs, "
                          f"got {int(y.min())}..{int(y.max())}")
    return x, y


_CLEAN_CACHE: dict = {}


def _output_head(design) -> OutputHead:
    """How classes follow from the design's csim outputs (:mod:`fpga_ft.core.classify`)."""
    head = getattr(design, "output_head", None)
    return head if isinstance(head, OutputHead) else OutputHead(design.n_outputs)


def _clean_predictions(design, x: np.ndarray, data_fp: str) -> np.ndarray:
    """Fault-free classes (csim at BER 0), cached per (library, data)."""
    library = design.library
    key = (str(library.path), data_fp)
    predicted = _CLEAN_CACHE.get(key)
    if predicted is None:
        library.configure((0.0, 0.0, 0.0, 0.0))
        outputs, _, _ = library.run(x)
        predicted = _output_head(design).classify(outputs)
        if len(_CLEAN_CACHE) >= 32:
            _CLEAN_CACHE.pop(next(iter(_CLEAN_CACHE)))
        _CLEAN_CACHE[key] = predicted
    return predicted


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise FpgaFtError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


# ------------------------------------------------------------------------------------------
# Campaign
# ------------------------------------------------------------------------------------------
def run_campaign(design, x, y, fault_model: FaultModel, *, repeats: int = 10, seed: int = 0, workers: int = 1,
                 confidence: float = 0.95, target_halfwidth: float | None = None, max_repeats: int | None = None,
                 checkpoint=None, progress: bool = False, clean_accuracy: float | None = None,
                 chunk_size: int | None = None, target_accuracy: float | None = None,
                 scheduler: str | None = None) -> CampaignResult:
    """Run ``repeats`` passes over (x, y) under ``fault_model``; return accuracy and CI.

    Args:
        design: a :class:`~fpga_ft.generate.design.Design` (or its project directory).
        x, y: inputs (N, ...) in the model's units and class labels (N,).
        fault_model: BER (faults per bit per inference), sites, mode, scrub interval.
        repeats: passes over the data set (minimum, with ``target_halfwidth``).
        seed: campaign seed (>= 0); chunk seeds derive from (seed, BER, chunk index).
        workers: processes (1: run here).
        confidence: level of the Wilson interval on the misclassification count.
        target_halfwidth: keep adding passes until the interval's half-width is at most
            this (accuracy fraction), up to ``max_repeats`` (default max(100, 10*repeats)).
        checkpoint: None (off), True (``default_checkpoint_dir()``), a directory (file
            ``<key>.jsonl`` in it) or a ``.jsonl`` file.
        progress: tqdm progress bar on stderr.
        clean_accuracy: reported as the clean accuracy if given; otherwise the accuracy of
            the fault-free csim (BER 0). That pass runs once per design and data set
            (cached in this process); ``output_changed`` compares against it.
        chunk_size: target inferences per work unit (default 512; part of the key). In
            the held modes (latched, stuck-at) each chunk is one scrub interval: one device.
        target_accuracy: target accuracy (fraction) of the device statistics
            (``devices.prob_below_target``; held modes).
        scheduler: Dask scheduler address ``tcp://HOST:PORT``: chunks run there as tasks
            (``workers`` is then unused); default: the one
            :func:`fpga_ft.simulate.cluster.select_scheduler` chose, else ``$FPGA_FT_SCHEDULER``,
            else local. Results are the same wherever chunks run.
    """
    start = time.perf_counter()
    if not isinstance(fault_model, FaultModel):
        raise FpgaFtError(f"fault_model must be a FaultModel, got {type(fault_model).__name__}")
    repeats = _check_int("repeats", repeats, 1)
    workers = _check_int("workers", workers, 1)
    scheduler = resolve_scheduler(scheduler)
    seed = _check_int("seed", seed, 0)
    if seed >= 2**64:
        raise FpgaFtError(f"seed must be < 2^64, got {seed}")
    chunk_size = _check_int("chunk size", DEFAULT_CHUNK_SIZE if chunk_size is None else chunk_size, 1)
    confidence = float(confidence)
    if not 0.0 < confidence < 1.0:
        raise FpgaFtError(f"confidence must be in (0, 1), got {confidence}")
    if target_halfwidth is not None:
        target_halfwidth = float(target_halfwidth)
        if not 0.0 < target_halfwidth <= 0.5:
            raise FpgaFtError(f"target half-width must be in (0, 0.5] (accuracy fraction), got {target_halfwidth}")
        max_repeats = max(100, 10 * repeats) if max_repeats is None else \
            _check_int("max repeats", max_repeats, 1)
        if max_repeats < repeats:
            raise FpgaFtError(f"max repeats ({max_repeats}) must be >= repeats ({repeats})")
    else:
        max_repeats = repeats

    design = _as_design(design)
    x, y = _prepare_data(design, x, y)
    library = design.library
    data_fp = data_fingerprint(x, y)
    clean = _clean_predictions(design, x, data_fp)
    head = _output_head(design)
    if clean_accuracy is None:
        clean_accuracy = float(np.mean(clean == y))

    slices = pass_slices(len(x), fault_model, chunk_size)
    n_slices = len(slices)
    key = campaign_key(design_fingerprint(design), data_fp, fault_model, seed, repeats, target_halfwidth,
                       max_repeats, confidence, chunk_size)
    ckpt_path = checkpoint_path(checkpoint, key)
    ckpt = None
    done: dict[int, dict] = {}
    if ckpt_path is not None:
        CHECKPOINTS_USED.add(Path(ckpt_path).resolve())
        ckpt = Checkpoint(ckpt_path, key, {
            "design": str(design.project_dir), "fault_model": fault_model.to_dict(), "seed": seed,
            "repeats": repeats, "target_halfwidth": target_halfwidth, "max_repeats": max_repeats,
            "chunk_size": chunk_size, "samples": len(x), "data": data_fp})
        limit = max_repeats * n_slices
        for index, record in ckpt.load().items():
            if 0 <= index < limit and record.get("n") == slice_len(slices, index):
                done[index] = record
    resumed = len(done)

    bers = fault_model.bers()
    persistent = fault_model.persistent
    scrub = fault_model.scrub_interval if persistent else 0

    def task(index: int, for_worker: bool) -> dict:
        a, b = slices[index % n_slices]
        item = {"chunk": index, "bers": bers, "persistent": persistent, "scrub_interval": scrub,
                "seed": chunk_seed(seed, fault_model.ber, index), "x": x[a:b], "y": y[a:b], "clean": clean[a:b],
                "head": head}
        if fault_model.held or fault_model.mbu:
            item["faults"] = {"weight_mode": fault_model.mode, "mbu": fault_model.mbu}
        if for_worker:
            item["project_dir"] = str(design.project_dir)
            item["library"] = library.path.name
        return item

    decide = _Stopper(n_slices, repeats, max_repeats, target_halfwidth, confidence)
    final_repeats = decide(done)
    bar = None
    if progress:
        bar = progress_bar(total=repeats * n_slices, initial=min(resumed, repeats * n_slices),
                           desc=f"BER {fault_model.ber:g}", unit="chunk", enabled=True)

    def finished(record: dict) -> None:
        done[record["chunk"]] = record
        if ckpt is not None:
            ckpt.append(record)
        if bar is not None:
            bar.update(1)

    try:
        if final_repeats is None and workers == 1 and scheduler is None:
            index = 0
            while final_repeats is None:
                if index not in done:
                    finished(execute_chunk(library, task(index, False)))
                index += 1
                if index % n_slices == 0:
                    final_repeats = decide(done)
                    if final_repeats is None and bar is not None:
                        grow_progress(bar, index + n_slices)
        elif final_repeats is None:
            final_repeats = run_parallel(chunk_executor(workers, scheduler), task, done, finished, n_slices,
                                         repeats, max_repeats, target_halfwidth, decide, bar)
    finally:
        if ckpt is not None:
            ckpt.close()
        if bar is not None:
            bar.close()

    used = [done[i] for i in range(final_repeats * n_slices)]
    inferences = sum(r["n"] for r in used)
    correct = sum(r["correct"] for r in used)
    changed = None if any(r.get("changed") is None for r in used) else sum(r["changed"] for r in used)
    accuracy, low, high = accuracy_interval(correct, inferences, confidence, CI_METHOD)
    repeat_acc = []
    for r in range(final_repeats):
        part = used[r * n_slices:(r + 1) * n_slices]
        repeat_acc.append(sum(c["correct"] for c in part) / sum(c["n"] for c in part))
    devices = device_stats(used, confidence, target_accuracy) if fault_model.held else None
    if devices is not None and devices.count > 1:
        # devices, not inferences, are the independent draws: the mean's interval is over them
        low, high = (min(1.0, max(0.0, v)) for v in mean_interval(devices.accuracies, confidence))
    rate = fault_model.upset_rate
    failure = None if rate is None or changed is None else \
        FailureRate(changed=changed, inferences=inferences, inference_rate=rate.inference_rate, confidence=confidence)
    return CampaignResult(
        ber=fault_model.ber, clean_accuracy=float(clean_accuracy), accuracy_mean=accuracy, ci_low=low, ci_high=high,
        inferences=inferences, errors=inferences - correct,
        faults_injected={s: sum(r["injected"][i] for r in used) for i, s in enumerate(SITES)},
        faults_masked={s: sum(r["masked"][i] for r in used) for i, s in enumerate(SITES)},
        seconds=time.perf_counter() - start, repeats=final_repeats, seed=seed, sites=fault_model.sites,
        mode=fault_model.mode, confidence=confidence,
        stopped_early=target_halfwidth is not None and final_repeats < max_repeats,
        scrub_interval=fault_model.scrub_interval, output_changed=changed, repeat_accuracies=repeat_acc,
        max_repeats=max_repeats, target_halfwidth=target_halfwidth, chunk_size=chunk_size,
        chunks=len(used), resumed_chunks=resumed, checkpoint=str(ckpt_path) if ckpt_path else None, key=key,
        model=fault_model, devices=devices, failure_rate=failure)


class _Stopper:
    """Decides how many repeats the campaign ends with, looking only at complete prefixes
    of repeats in order (never at which chunks happen to be finished beyond them), so the
    answer is the same for any schedule. Incremental: finished chunks only accumulate."""

    def __init__(self, n_slices: int, repeats: int, max_repeats: int, target, confidence: float):
        self.n_slices, self.repeats, self.max_repeats = n_slices, repeats, max_repeats
        self.target, self.confidence = target, confidence
        self.completed = self.correct = self.total = 0

    def __call__(self, done: dict) -> int | None:
        """Final number of repeats, or None while more chunks are needed."""
        while self.completed < self.max_repeats:
            base = self.completed * self.n_slices
            records = [done.get(base + s) for s in range(self.n_slices)]
            if any(record is None for record in records):
                return None
            self.correct += sum(record["correct"] for record in records)
            self.total += sum(record["n"] for record in records)
            self.completed += 1
            if self.completed < self.repeats:
                continue
            if self.target is None or self.completed >= self.max_repeats:
                return self.completed
            _, low, high = accuracy_interval(self.correct, self.total, self.confidence, CI_METHOD)
            if halfwidth((low, high)) <= self.target:
                return self.completed
        return self.max_repeats


def run_sweep(design, x, y, bers: Iterable[float | FaultModel], sites=SITES, mode: str = "transient",
              scrub_interval: int = DEFAULT_SCRUB_INTERVAL, mbu=(), **kw) -> SweepResult:
    """:func:`run_campaign` at every BER of ``bers`` (same sites, mode, scrub interval in
    inferences, multi-bit upsets, seed and options; the fault-free pass runs once). An item
    of ``bers`` may be a whole :class:`FaultModel` (e.g. from an upset rate), used as is."""
    models = [ber if isinstance(ber, FaultModel) else
              FaultModel(ber=ber, sites=sites, mode=mode, scrub_interval=scrub_interval, mbu=mbu) for ber in bers]
    if not models:
        raise FpgaFtError("no BER given")
    design = _as_design(design)
    results = tuple(run_campaign(design, x, y, model, **kw) for model in models)
    return SweepResult(bers=tuple(model.ber for model in models), sites=models[0].sites, mode=models[0].mode,
                       scrub_interval=models[0].scrub_interval, results=results)
