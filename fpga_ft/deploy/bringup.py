"""Board bring-up kit: everything needed to bring a protected design up on a board.

``generate_bringup`` writes, under one directory:

* ``hls/``: the HLS project for the board's part and clock (VivadoAccelerator backend for
  boards hls4ml supports there, with its block-design Tcl; otherwise Vitis), fpga-ft's
  keep-replicas constraints, and the test vectors in ``hls/tb_data``;
* ``hls/fpgaft_tb.cpp`` + ``hls/fpgaft_csim_faults.tcl``: an HLS C testbench that runs the
  vectors fault-free (must equal the golden outputs) and then with injected faults, in
  the vendor's ``csim_design`` (the only Tcl that sets ``FPGAFT_CSIM``; it never synthesises);
* ``build_bitstream.sh`` (VivadoAccelerator boards) or ``export_ip.sh`` (others);
* ``vectors/``: inputs and golden outputs (bit-exact csim) as text and ``.npy``;
* ``check_outputs.py``: host-side comparison of the board's outputs with the golden file;
* ``BRINGUP.md``: checklist with measured reliability, estimated resources and commands.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np

from fpga_ft.core.errors import FpgaFtError
from fpga_ft.core.faults import FaultModel
from fpga_ft.generate.design import build_design
from fpga_ft.measure.resources import estimate_resources
from fpga_ft.simulate.campaign import run_campaign

HLS4ML_ACCELERATOR_BOARDS = ("pynq-z2", "zcu102", "alveo-u50", "alveo-u250", "alveo-u280")

TESTBENCH = r'''// fpga-ft bring-up testbench (generated). Runs tb_data/ vectors through the top function
// fault-free (must equal the golden outputs bit for bit), then, when compiled with
// -DFPGAFT_CSIM (fpgaft_csim_faults.tcl or g++), again with injected faults.
// Usage: fpgaft_tb [BER] [SEED]   (faults per bit per inference on every site; default 1e-3)
#include "@PROJECT@_bridge.cpp"
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#ifdef FPGAFT_CSIM
#include "firmware/nnet_utils/fpgaft_runtime.h"
#endif

static std::vector<std::vector<float> > read_rows(const char *path) {
    std::vector<std::vector<float> > rows;
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream ss(line);
        std::vector<float> row;
        float v;
        while (ss >> v) row.push_back(v);
        if (!row.empty()) rows.push_back(row);
    }
    return rows;
}

// The class of an output row, by fpga-ft's rule (fpga_ft/core/classify.py): the argmax, or
// for one output the comparison with @THRESHOLD@ (0 for logits, 0.5 for probabilities).
static int argmax(const std::vector<float> &v) {
    if (v.size() == 1) return v[0] > @THRESHOLD@ ? 1 : 0;
    int best = 0;
    for (size_t i = 1; i < v.size(); i++) if (v[i] > v[best]) best = (int)i;
    return best;
}

int main(int argc, char **argv) {
    std::vector<std::vector<float> > inputs = read_rows("tb_data/tb_input_features.dat");
    std::vector<std::vector<float> > golden = read_rows("tb_data/tb_output_predictions.dat");
    if (inputs.empty() || inputs.size() != golden.size()) {
        std::printf("fpga-ft tb: missing or inconsistent tb_data vectors\n");
        return 2;
    }
    const size_t n = inputs.size(), n_out = golden[0].size();
    std::vector<float> out(n_out);
    int mismatches = 0;
    for (size_t s = 0; s < n; s++) {
        @PROJECT@_float(&inputs[s][0], &out[0]);
        for (size_t o = 0; o < n_out; o++) if (out[o] != golden[s][o]) { mismatches++; break; }
    }
    std::printf("fpga-ft tb: fault-free: %d of %zu samples differ from the golden outputs\n", mismatches, n);
    FILE *log = std::fopen("tb_data/fpgaft_tb.log", "w");
    if (log) std::fprintf(log, "fault_free_mismatches %d\nsamples %zu\n", mismatches, n);
#ifdef FPGAFT_CSIM
    const double ber = argc > 1 ? std::atof(argv[1]) : 1e-3;
    const unsigned long long seed = argc > 2 ? std::strtoull(argv[2], 0, 10) : 0;
    const double bers[4] = {ber, ber, ber, ber};
    fpgaft::rt::configure(bers, 0, seed, 0);
    int changed = 0;
    for (size_t s = 0; s < n; s++) {
        fpgaft::rt::begin_inference();
        @PROJECT@_float(&inputs[s][0], &out[0]);
        if (argmax(out) != argmax(golden[s])) changed++;
    }
    fpgaft::rt::State &st = fpgaft::rt::state();
    unsigned long long injected = 0, masked = 0;
    for (int i = 0; i < fpgaft::rt::N_SITES; i++) { injected += st.site[i].injected; masked += st.site[i].masked; }
    std::printf("fpga-ft tb: BER %g seed %llu: %d of %zu classifications changed; %llu flips injected, %llu masked by voters\n",
                ber, seed, changed, n, injected, masked);
    if (log) std::fprintf(log, "ber %g\nseed %llu\nclass_changed %d\ninjected %llu\nmasked %llu\n", ber, seed, changed, injected, masked);
#endif
    if (log) std::fclose(log);
    return mismatches == 0 ? 0 : 1;
}
'''

FAULT_CSIM_TCL = '''# fpga-ft: vendor C simulation with fault injection (generated). C simulation only: this is
# the one Tcl that defines FPGAFT_CSIM; it never runs C synthesis.
# Usage: vitis-run --mode hls --tcl fpgaft_csim_faults.tcl   (or: vivado_hls -f fpgaft_csim_faults.tcl)
open_project -reset fpgaft_faults_prj
set_top @PROJECT@
@FIRMWARE@
add_files -tb fpgaft_tb.cpp -cflags "-std=c++11 -DFPGAFT_CSIM"
add_files -tb firmware/weights
add_files -tb tb_data
open_solution -reset "solution1"
set_part {@PART@}
create_clock -period @PERIOD@ -name default
csim_design -argv "@BER@ 0"
exit
'''

CHECK_SCRIPT = '''#!/usr/bin/env python3
"""Compare a board's outputs with fpga-ft's golden outputs (generated by `fpga-ft bringup`).

Usage: python check_outputs.py BOARD_OUTPUTS [--golden vectors/golden_outputs.dat]
BOARD_OUTPUTS: one sample per line (space/comma separated) or a .npy array, in the order of
vectors/inputs.dat. Exit status 0 when every output equals the golden one bit for bit.
"""
import argparse
import sys
from pathlib import Path

import numpy as np


def load(path):
    path = Path(path)
    if path.suffix == ".npy":
        return np.load(path)
    return np.loadtxt(path, delimiter="," if "," in path.read_text()[:1000] else None, ndmin=2)


def classes(outputs):
    """fpga-ft's rule: the argmax, or for one output the comparison with @THRESHOLD@."""
    if outputs.shape[1] == 1:
        return (outputs[:, 0] > @THRESHOLD@).astype(int)
    return outputs.argmax(1)


def main():
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("board_outputs")
    parser.add_argument("--golden", default=str(here / "vectors" / "golden_outputs.dat"))
    args = parser.parse_args()
    golden = load(args.golden)
    board = load(args.board_outputs)
    if board.size != golden.size:
        print(f"error: {args.board_outputs} has a different number of values than {args.golden}", file=sys.stderr)
        return 2
    board = board.reshape(golden.shape)
    exact = np.all(board == golden, axis=1)
    same_class = classes(board) == classes(golden)
    print(f"{len(golden)} samples: {exact.sum()} bit-exact, {same_class.sum()} same class; "
          f"max |difference| {np.max(np.abs(board - golden)):.6g}")
    for index in np.flatnonzero(~exact)[:10]:
        print(f"  sample {index}: board {board[index].tolist()} golden {golden[index].tolist()}")
    return 0 if exact.all() else 1


if __name__ == "__main__":
    sys.exit(main())
'''


def _render(text: str, **values) -> str:
    for key, value in values.items():
        text = text.replace(f"@{key}@", str(value))
    return text


def write_testbench(project_dir: Path, part: str, clock_period_ns: float, ber: float = 1e-3,
                    threshold: float = 0.0) -> list[Path]:
    """The vendor-csim fault testbench and its Tcl; ``threshold``: the one-output class
    threshold (``OutputHead.threshold``: 0 for logits, 0.5 for probabilities)."""
    tb = project_dir / "fpgaft_tb.cpp"
    tb.write_text(_render(TESTBENCH, PROJECT="myproject", THRESHOLD=repr(float(threshold))))
    tcl = project_dir / "fpgaft_csim_faults.tcl"
    firmware = "\n".join(f'add_files firmware/{p.name} -cflags "-std=c++11 -DFPGAFT_CSIM"'
                         for p in sorted((project_dir / "firmware").glob("myproject*.cpp")))
    tcl.write_text(_render(FAULT_CSIM_TCL, PROJECT="myproject", PART=part, PERIOD=clock_period_ns, BER=ber,
                           FIRMWARE=firmware))
    return [tb, tcl]


def run_testbench_with_gxx(project_dir: Path, ber: float = 1e-3, seed: int = 0, timeout: int = 300,
                           synthesis: bool = False) -> str:
    """Compile and run the generated testbench with g++ the way vendor csim does (a check
    of the generated files; no vendor tool needed). Returns its output.

    ``synthesis=True`` compiles without ``FPGAFT_CSIM``: the C++ that HLS synthesises (the
    generated ``fpgaft_dense`` kernels with their kept replica modules, time-shared loops
    and voters) runs fault-free in software and is compared with the golden outputs."""
    exe = project_dir / ("fpgaft_tb_synth_gxx" if synthesis else "fpgaft_tb_gxx")
    csim = [] if synthesis else ["-DFPGAFT_CSIM"]
    cmd = ["g++", "-O1" if synthesis else "-O2", "-std=c++11", "-w", *csim,
           f"-DWEIGHTS_DIR=\"{project_dir / 'firmware' / 'weights'}\"",
           f"-I{project_dir / 'firmware' / 'ap_types'}", f"-I{project_dir / 'firmware'}",
           *[str(p) for p in (project_dir / "firmware").glob("myproject*.cpp")], str(project_dir / "fpgaft_tb.cpp"),
           "-o", str(exe)]
    build = subprocess.run(cmd, cwd=project_dir, capture_output=True, text=True, timeout=timeout)
    if build.returncode != 0:
        raise FpgaFtError(f"testbench does not compile: {build.stderr.strip().splitlines()[0]}")
    run = subprocess.run([str(exe), repr(float(ber)), str(int(seed))], cwd=project_dir, capture_output=True,
                         text=True, timeout=timeout)
    if run.returncode != 0:
        raise FpgaFtError(f"testbench failed (status {run.returncode}): {run.stdout.strip()}")
    return run.stdout


def _scripts(out: Path, backend: str) -> Path:
    if backend == "VivadoAccelerator":
        script = out / "build_bitstream.sh"
        script.write_text(
            "#!/usr/bin/env bash\n# fpga-ft: HLS synthesis + IP export, then the board's block design and bitstream\n"
            "# (hls4ml VivadoAccelerator flow). Needs vivado_hls (or vitis_hls) and vivado on PATH.\n"
            "set -euo pipefail\ncd \"$(dirname \"$0\")/hls\"\n"
            "vivado_hls -f build_prj.tcl \"reset=1 csim=0 synth=1 cosim=0 validation=0 export=1 vsynth=0 fifo_opt=0\"\n"
            "vivado -mode batch -source design.tcl\n"
            "vivado -mode batch -source ../check_replicas_after_synth.tcl  # exits 1 if replicas were removed\n")
    else:
        script = out / "export_ip.sh"
        script.write_text(
            "#!/usr/bin/env bash\n# fpga-ft: HLS synthesis and IP-catalog export (Vitis HLS); integrate the IP in\n"
            "# your own Vivado block design. Needs vitis-run on PATH.\nset -euo pipefail\ncd \"$(dirname \"$0\")/hls\"\n"
            "printf 'array set opt {\\n reset 1\\n csim 0\\n synth 1\\n cosim 0\\n validation 0\\n export 1\\n"
            " vsynth 1\\n fifo_opt 0\\n}\\n' > build_opt.tcl\n"
            "vitis-run --mode hls --tcl build_prj.tcl\n")
    script.chmod(0o755)
    (out / "check_replicas_after_synth.tcl").write_text(
        "# open the synthesised checkpoint and count the surviving TMR replicas\n"
        "open_checkpoint [lindex [glob -nocomplain hls/*/*.dcp */*.runs/synth_1/*.dcp] 0]\n"
        "source hls/fpgaft_check_replicas.tcl\n")
    return script


def generate_bringup(model, board, plan, x, y, out: Path, bers=(1e-4, 1e-3), repeats: int = 3,
                     seed: int = 0, n_vectors: int | None = None, progress: bool = False,
                     hls_config=None) -> dict:
    """Write the bring-up kit for ``board`` into ``out``; returns a summary dict.

    ``x``: the model's input words (quantized to its input type when the intake inserted an
    input quantizer); ``hls_config``: the user's hls4ml config (the board wins over its
    part, clock and backend)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    backend = "vivadoaccelerator" if board.key in HLS4ML_ACCELERATOR_BOARDS else "vitis"
    vectors_x = x if n_vectors is None else x[:n_vectors]
    # golden outputs come from the bit-exact C simulation of this very design
    csim_design = build_design(model, plan, board=board, backend=backend, hls_config=hls_config)
    golden = csim_design.predict(vectors_x)
    design = build_design(model, plan, board=board, backend=backend, output_dir=out / "hls", x=vectors_x,
                          golden=golden, compile=False, hls_config=hls_config)
    hls_dir = design.project_dir
    threshold = csim_design.output_head.threshold
    write_testbench(hls_dir, design.meta["part"], design.meta["clock_period_ns"], ber=max(bers), threshold=threshold)
    vectors = out / "vectors"
    vectors.mkdir(exist_ok=True)
    np.savetxt(vectors / "inputs.dat", vectors_x.reshape(len(vectors_x), -1), fmt="%.17g")
    np.savetxt(vectors / "golden_outputs.dat", golden, fmt="%.17g")
    np.save(vectors / "inputs.npy", vectors_x)
    np.save(vectors / "golden_outputs.npy", golden)
    (out / "check_outputs.py").write_text(_render(CHECK_SCRIPT, THRESHOLD=repr(float(threshold))))
    script = _scripts(out, design.meta["backend"])

    reliability = []
    for ber in bers:
        result = run_campaign(csim_design, x, y, FaultModel(ber=ber), repeats=repeats, seed=seed, progress=progress)
        reliability.append(result.to_dict())
    estimate = estimate_resources(design.layers, plan, clock_mhz=board.clock_mhz)
    resources = estimate.to_dict()
    resources["utilization"] = estimate.utilization(board)

    vendor_tool = "vitis-run" if design.meta["backend"] == "Vitis" else "vivado_hls"
    vendor = {"tool": vendor_tool, "found": shutil.which(vendor_tool) is not None, "csim": None}
    if vendor["found"]:
        status = subprocess.run([vendor_tool, "--mode", "hls", "--tcl", "fpgaft_csim_faults.tcl"]
                                if vendor_tool == "vitis-run" else [vendor_tool, "-f", "fpgaft_csim_faults.tcl"],
                                cwd=hls_dir, capture_output=True, text=True)
        vendor["csim"] = {"status": status.returncode, "log_tail": status.stdout[-2000:]}
    summary = {
        "output_dir": str(out.resolve()), "board": board.key, "part": design.meta["part"],
        "clock_mhz": board.clock_mhz, "backend": design.meta["backend"], "hls_project": str(hls_dir),
        "vectors": {"samples": int(len(vectors_x)), "inputs": str(vectors / "inputs.dat"),
                    "golden": str(vectors / "golden_outputs.dat")},
        "build_script": str(script), "plan": plan.to_dict(), "reliability": reliability, "resources": resources,
        "vendor": vendor,
    }
    (out / "BRINGUP.md").write_text(_checklist(summary, board))
    return summary


def _checklist(s: dict, board) -> str:
    rows = "\n".join(
        f"| {r['ber']:g} | {r['clean_accuracy']:.4f} | {r['accuracy']['mean']:.4f} | "
        f"[{r['accuracy']['ci_low']:.4f}, {r['accuracy']['ci_high']:.4f}] | {r['inferences']} | "
        f"{sum(r['faults_injected'].values())} | {sum(r['faults_masked'].values())} |" for r in s["reliability"])
    res = s["resources"]
    util = res.get("utilization", {})
    util_text = ", ".join(f"{k} {v:.1%}" for k, v in util.items() if isinstance(v, (int, float)))
    script = Path(s["build_script"]).name
    vendor = s["vendor"]
    vendor_line = (f"ran `{vendor['tool']}` csim here: status {vendor['csim']['status']}" if vendor["found"] else
                   f"`{vendor['tool']}` was not on PATH when this kit was generated: steps 2-4 were not run")
    return f"""# Bring-up: {board.name} ({s['part']}, {s['clock_mhz']:g} MHz, {s['backend']} backend)

Generated by `fpga-ft bringup`. {vendor_line}.

## Design
- HLS project: `hls/` (protected layers: {', '.join(s['plan']['layers']) or 'none'}; plan in `hls/fpgaft_plan.yml`)
- Keep-replicas constraints: `hls/fpgaft_keep_replicas.xdc` (read by `hls/vivado_synth.tcl`),
  check after synthesis: `hls/fpgaft_check_replicas.tcl`
- Estimated resources (fpga-ft offline estimator, not a vendor report): LUT {res['LUT']:,}, FF {res['FF']:,},
  DSP {res['DSP']:,}, BRAM_18K {res['BRAM_18K']:,}, latency {res['latency_cycles']} cycles; utilisation: {util_text}

## Measured reliability (bit-exact C simulation, all fault sites, transient faults)
| BER (per bit per inference) | clean accuracy | accuracy | 95% Wilson interval | inferences | flips injected | flips masked |
|---|---|---|---|---|---|---|
{rows}

## Checklist
1. [ ] C simulation in the vendor tool, fault-free and with faults (needs Vitis HLS / Vivado HLS):
   `cd hls && vitis-run --mode hls --tcl fpgaft_csim_faults.tcl` — the fault-free pass must report
   `0 of {s['vectors']['samples']} samples differ`.
2. [ ] Synthesis and implementation: `./{script}`
3. [ ] Check the replicas survived: `vivado -mode batch -source check_replicas_after_synth.tcl`
   (it counts the replica instances of every kind and replica index and exits 1 when one is
   below the count the design expects, `replica_instances` in `hls/fpgaft_design.json`;
   otherwise the TMR was optimised away).
4. [ ] Program the board, stream `vectors/inputs.dat` ({s['vectors']['samples']} samples, one per line) through the
   design, save the outputs one sample per line, then: `python check_outputs.py board_outputs.dat`
   (exit 0 = every output bit-exact with `vectors/golden_outputs.dat`).
5. [ ] Record the board outputs and this file with the design's revision.
"""
