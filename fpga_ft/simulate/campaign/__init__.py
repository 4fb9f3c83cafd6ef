"""Fault-injection campaigns: many inferences under a fault model, with a confidence interval.

:func:`run_campaign` runs ``repeats`` passes over a test set through the compiled C
simulation with faults drawn at one BER, and reports the accuracy (correct / inferences
over all passes) with the Wilson score interval computed on the misclassification count
(:mod:`fpga_ft.core.stats`). :func:`run_sweep` does it for several BERs (a :class:`SweepResult`), and
:func:`sweep` is ``fpga-ft inject``: a sweep on a model file or project directory (a
:class:`SweepReport`).

Work units ("chunks") are (repeat r, slice s of the test set); chunk ``i = r * n_slices + s``
draws its faults from its own seed, derived from (seed, BER, i) with numpy's SeedSequence,
and calls ``CsimLibrary.configure`` with it before running (which also zeroes the
counters and scrubs the weight memories). The outcome of a chunk therefore depends only on
the campaign's arguments, never on which process runs it, the number of workers or the
order chunks finish in; aggregation is by chunk index. Early stopping
(``target_halfwidth``) is decided on complete prefixes of repeats, in repeat order, so
it is deterministic too.

Persistent mode: each chunk starts with scrubbed weights, and slices are multiples of
``scrub_interval`` inferences (``scrub_interval = 0``: one slice per pass), so weights are
scrubbed at the start of every pass over the test set and then every ``scrub_interval``
inferences; the last period of a pass is shorter when the test set size is not a multiple
of the interval.

Workers (``workers > 1``) are processes from a ``spawn`` ProcessPoolExecutor (kept for
reuse across campaigns); each opens the design with :func:`fpga_ft.generate.design.open_design`
(no TensorFlow) once and caches its library. ``workers = 1`` runs in the calling process.
Workers die with their parent: on Linux the kernel sends them SIGTERM when it exits
(``PR_SET_PDEATHSIG``), elsewhere (and as a fallback) a watchdog thread exits the worker
once its parent process is gone. Workers ignore SIGINT: Ctrl-C reaches the whole process
group, and the parent stops them (:func:`shutdown_workers`).

Checkpoints: every finished chunk is appended (one JSON line, flushed and fsynced) to
``<checkpoint>/<key>.jsonl``, where ``key`` hashes the design, the data, the fault model,
the seed and the repeat settings. Rerunning the same campaign reuses those chunks: a
campaign killed at any moment ends, when rerun, with exactly the numbers of an
uninterrupted run (a torn last line is ignored and cut off).

The package, one module per part:

* :mod:`.result`: :class:`CampaignResult`, :class:`SweepResult` (and their JSON);
* :mod:`.layout`: chunk seeds, the slices of a pass, the campaign key;
* :mod:`.checkpoint`: the checkpoint file, :func:`default_checkpoint_dir`;
* :mod:`.workers`: running a chunk, the worker processes, :func:`shutdown_workers`;
* :mod:`.progress`: :func:`progress_bar` (also used by the analyses);
* :mod:`.run`: :func:`run_campaign`, :func:`run_sweep` (input checks, early stopping);
* :mod:`.sweep`: :func:`open_subject`, :func:`sweep`, :class:`SweepReport`;
* :mod:`.report`: the sweep's table and accuracy-vs-BER plot.
"""

from __future__ import annotations

from fpga_ft.simulate.campaign.checkpoint import CHECKPOINTS_USED, default_checkpoint_dir
from fpga_ft.simulate.campaign.layout import campaign_key, chunk_seed, design_fingerprint
from fpga_ft.simulate.campaign.progress import progress_bar, progress_wanted, set_progress_total
from fpga_ft.simulate.campaign.report import format_sweep_table, plot_accuracy
from fpga_ft.simulate.campaign.result import CampaignResult, SweepResult
from fpga_ft.simulate.campaign.run import DEFAULT_CHUNK_SIZE, run_campaign, run_sweep
from fpga_ft.simulate.campaign.sweep import SweepReport, SweepSubject, is_project_dir, open_subject, sweep
from fpga_ft.simulate.campaign.workers import shutdown_workers

__all__ = [
    "CampaignResult", "SweepResult", "SweepReport", "SweepSubject", "run_campaign", "run_sweep", "sweep",
    "open_subject", "is_project_dir", "chunk_seed", "campaign_key", "design_fingerprint", "default_checkpoint_dir",
    "shutdown_workers", "DEFAULT_CHUNK_SIZE", "CHECKPOINTS_USED", "progress_bar", "set_progress_total",
    "progress_wanted", "format_sweep_table", "plot_accuracy",
]
