"""The one progress bar of fpga-ft's campaigns and analyses (tqdm on stderr)."""

from __future__ import annotations

import sys


def progress_bar(iterable=None, *, total=None, desc: str = "", unit: str = "it", enabled: bool | None = None,
                 initial: int = 0, leave: bool = False, unit_scale: bool = False):
    """The one progress bar of fpga-ft's campaigns and analyses: tqdm on stderr, with count,
    rate and ETA (tqdm's remaining-time estimate from the measured rate; when the total is
    revised, as adaptive sampling does after every round, :func:`set_progress_total` moves
    the ETA with it). ``enabled``: True / False, or None to show it only when stderr is a
    terminal (never when the output is piped). ``unit_scale``: 12.3k instead of 12345."""
    from tqdm import tqdm

    disable = (not sys.stderr.isatty()) if enabled is None else not enabled
    return tqdm(iterable, total=total, initial=initial, desc=desc, unit=unit, file=sys.stderr, leave=leave,
                dynamic_ncols=True, disable=disable, unit_scale=unit_scale)


def set_progress_total(bar, total: int) -> None:
    """Revise a bar's total (and so its ETA) when the planned work changes."""
    if bar is not None and not getattr(bar, "disable", False) and int(total) != bar.total:
        bar.total = int(total)
        bar.refresh()


def progress_wanted(requested: bool | None, json_out: str | None) -> bool:
    """Command-line default of the progress bars: shown with ``--progress``; otherwise only
    when stderr is a terminal and the JSON result does not go to stdout (``--json -``)."""
    if requested:
        return True
    return bool(sys.stderr.isatty()) and json_out != "-"


def grow_progress(bar, total: int) -> None:
    if total > bar.total:
        set_progress_total(bar, total)
