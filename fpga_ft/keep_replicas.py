"""Constraints that keep the TMR replicas in the synthesised design.

HLS compilers and Vivado remove logic that computes the same value twice: three copies of
a multiplier feeding a voter collapse into one unless each copy is a distinct module that
synthesis may neither merge, flatten nor optimise across. The C++ makes every replica a
distinct non-inlined function (``fpgaft_tmr_r*``); this module writes the Vivado side:

* ``fpgaft_keep_replicas.xdc``: ``KEEP_HIERARCHY`` and ``DONT_TOUCH`` on every replica cell,
  read by the project's ``vivado_synth.tcl`` before ``synth_design``;
* ``fpgaft_check_replicas.tcl``: run in Vivado after synthesis (or on a checkpoint) to count
  the replica cells that survived, per replica kind; exits non-zero if a kind is missing.
"""

from __future__ import annotations

from pathlib import Path

XDC_NAME = "fpgaft_keep_replicas.xdc"
CHECK_NAME = "fpgaft_check_replicas.tcl"
REPLICA_PATTERN = "*fpgaft_tmr_r*"

XDC_TEXT = f"""# fpga-ft: keep the TMR replicas (generated). Without these properties Vivado may
# flatten the replica modules and merge the identical logic back into one copy, leaving
# the voters with three identical inputs and no redundancy.
set_property KEEP_HIERARCHY TRUE [get_cells -hierarchical -quiet -filter {{REF_NAME =~ {REPLICA_PATTERN}}}]
set_property DONT_TOUCH TRUE [get_cells -hierarchical -quiet -filter {{REF_NAME =~ {REPLICA_PATTERN}}}]
"""


def _expected_kinds(converted) -> list[str]:
    kinds = set()
    for info in converted.layers:
        protection = converted.plan.for_layer(info.name)
        if protection.protected_msbs > 0 and len(protection.critical_neurons) < info.n_out:
            kinds.update({"fpgaft_tmr_rk_mul_msbs", "fpgaft_tmr_rk_add_msbs"})
        if protection.critical_neurons:
            kinds.add("fpgaft_tmr_rfull_dot")
    return sorted(kinds)


def check_tcl_text(kinds: list[str]) -> str:
    lines = ["# fpga-ft: count the TMR replica cells that survived synthesis (generated).",
             "# Usage (Vivado Tcl console, synthesised design open): source fpgaft_check_replicas.tcl",
             "set fpgaft_missing 0"]
    for kind in kinds:
        lines += [
            f"set n [llength [get_cells -hierarchical -quiet -filter {{REF_NAME =~ *{kind}* || NAME =~ *{kind}*}}]]",
            f'puts "fpga-ft: $n cells of {kind}"',
            "if {$n == 0} { set fpgaft_missing 1 }",
        ]
    lines += ['if {$fpgaft_missing} { puts "ERROR: fpga-ft replicas missing: TMR was optimised away"; exit 1 }',
              'puts "fpga-ft: all replica kinds present"']
    return "\n".join(lines) + "\n"


def write_constraints(project_dir: Path, converted) -> list[Path]:
    """Write the XDC and the check script; make ``vivado_synth.tcl`` read the XDC."""
    project_dir = Path(project_dir)
    xdc = project_dir / XDC_NAME
    xdc.write_text(XDC_TEXT)
    check = project_dir / CHECK_NAME
    check.write_text(check_tcl_text(_expected_kinds(converted)))
    synth = project_dir / "vivado_synth.tcl"
    if synth.is_file():
        text = synth.read_text()
        hook = f"read_xdc [file join $tcldir {XDC_NAME}]\n"
        if hook not in text:
            text = text.replace("synth_design ", hook + "synth_design ", 1)
            synth.write_text(text)
    return [xdc, check]
