"""Constraints that keep the TMR replicas in the synthesised design, and their check.

HLS compilers and Vivado remove logic that computes the same value twice: three copies of
a multiplier feeding a voter collapse into one unless each copy is a distinct module that
synthesis may neither merge, flatten nor optimise across. The C++ makes every replica a
distinct non-inlined function ``fpgaft_tmr_r<R>_<kind>`` (``fpga_ft.core.structure.module_stem``;
the replica index is part of the name, so Vitis HLS's RTL module names tell replicas apart).
This module writes the Vivado side:

* ``fpgaft_keep_replicas.xdc``: ``KEEP_HIERARCHY`` and ``DONT_TOUCH`` on every replica
  instance (REF_NAME or ORIG_REF_NAME, which Vivado keeps when it uniquifies modules),
  read by the project's ``vivado_synth.tcl`` before ``synth_design``;
* ``fpgaft_check_replicas.tcl``: run in Vivado after synthesis (or on a checkpoint) to
  count the hierarchical replica *instances* (not leaf cells) of every kind and replica
  index and compare them with the counts the structure expects (the same numbers are in
  ``fpgaft_design.json`` under ``replica_instances``); exits 1 on any shortfall.

Expected counts: one instance per call site of one dot-product evaluation (a Dense layer;
one output pixel of a convolution, whose hardware hls4ml reuses per position), divided by
the reuse factor rounded up (with II > 1 Vitis HLS may time-share instances of the same
function, UG1399). An io_parallel convolution that evaluates several pixels per partition
has more instances than that minimum, which passes.
"""

from __future__ import annotations

import math
from pathlib import Path

from fpga_ft.core.structure import KINDS, REPLICAS, design_structures, module_stem

XDC_NAME = "fpgaft_keep_replicas.xdc"
CHECK_NAME = "fpgaft_check_replicas.tcl"
REPLICA_PATTERN = "*fpgaft_tmr_r*"

XDC_TEXT = f"""# fpga-ft: keep the TMR replicas (generated). Without these properties Vivado may
# flatten the replica modules and merge the identical logic back into one copy, leaving
# the voters with three identical inputs and no redundancy.
set fpgaft_replicas [get_cells -hierarchical -quiet -filter {{IS_PRIMITIVE == 0 && (REF_NAME =~ {REPLICA_PATTERN} || ORIG_REF_NAME =~ {REPLICA_PATTERN})}}]
if {{[llength $fpgaft_replicas] > 0}} {{
    set_property KEEP_HIERARCHY TRUE $fpgaft_replicas
    set_property DONT_TOUCH TRUE $fpgaft_replicas
}}
"""


def expected_instances(layers, plan) -> dict[str, dict[str, int]]:
    """Minimum replica instances per layer and module stem (see the module docstring)."""
    out: dict[str, dict[str, int]] = {}
    for info, structure in zip(layers, design_structures(layers, plan)):
        counts = structure.instances()
        if counts:
            r = max(1, int(info.reuse_factor))
            out[info.name] = {stem: math.ceil(n / r) for stem, n in sorted(counts.items()) if n}
    return out


def totals(per_layer: dict[str, dict[str, int]]) -> dict[str, int]:
    """Expected instances per module stem over all layers."""
    total: dict[str, int] = {}
    for counts in per_layer.values():
        for stem, n in counts.items():
            total[stem] = total.get(stem, 0) + n
    return total


def check_tcl_text(expected: dict[str, int]) -> str:
    """The check script for expected instance counts per module stem."""
    lines = ["# fpga-ft: count the TMR replica instances that survived synthesis (generated).",
             "# Usage (Vivado Tcl, synthesised design or checkpoint open): source fpgaft_check_replicas.tcl",
             "# Expected minimum instances per replica kind and index (also in fpgaft_design.json).",
             "set fpgaft_short 0"]
    for kind in KINDS:
        for r in REPLICAS:
            stem = module_stem(kind, r)
            if stem not in expected:
                continue
            lines += [
                f"set n [llength [get_cells -hierarchical -quiet -filter "
                f"{{IS_PRIMITIVE == 0 && (REF_NAME =~ *{stem}* || ORIG_REF_NAME =~ *{stem}*)}}]]",
                f'puts "fpga-ft: {stem}: $n instances (expected >= {expected[stem]})"',
                f"if {{$n < {expected[stem]}}} {{ incr fpgaft_short; "
                f'puts "ERROR: fpga-ft: only $n instances of {stem}, expected {expected[stem]}" }}',
            ]
    lines += ['if {$fpgaft_short > 0} { puts "ERROR: fpga-ft replicas missing: TMR was optimised away"; exit 1 }',
              'puts "fpga-ft: every replica kind and index present in the expected number"']
    return "\n".join(lines) + "\n"


def write_constraints(project_dir: Path, converted) -> dict[str, dict[str, int]]:
    """Write the XDC and the check script; make ``vivado_synth.tcl`` read the XDC.
    Returns the expected instances per layer (for ``fpgaft_design.json``)."""
    project_dir = Path(project_dir)
    (project_dir / XDC_NAME).write_text(XDC_TEXT)
    expected = expected_instances(converted.layers, converted.plan)
    (project_dir / CHECK_NAME).write_text(check_tcl_text(totals(expected)))
    synth = project_dir / "vivado_synth.tcl"
    if synth.is_file():
        text = synth.read_text()
        hook = f"read_xdc [file join $tcldir {XDC_NAME}]\n"
        if hook not in text:
            text = text.replace("synth_design ", hook + "synth_design ", 1)
            synth.write_text(text)
    return expected
