#!/usr/bin/env bash
# Packaging check (issue 13): the wheel alone is enough to use fpga-ft.
#
#   1. build the wheel from the repository's files (a clean copy: no stale build/ output);
#   2. install it into a fresh virtual environment, dependencies from the package index
#      (pinned to the versions of the active environment, when one is active);
#   3. from an unrelated directory, with a fresh design cache and no PYTHONPATH, run
#      `fpga-ft boards` and `fpga-ft demo` through the environment's console script (what
#      pipx does), and check that fpga_ft was imported from that environment.
#
# Usage: bash scripts/check_wheel.sh   (PYTHON=python3.11 by default). Prints the seconds of
# each step. The work (~2 GB: the venv) goes to a temporary directory removed at the end
# (KEEP=1 keeps it), or to FPGA_FT_WHEEL_WORK=DIR, which is kept (its previous run's
# contents replaced): CI uses that, as deleting the venv takes minutes on its disk.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
BUILD_PYTHON=$(command -v python || command -v "$PYTHON")
if [ -n "${FPGA_FT_WHEEL_WORK:-}" ]; then
    WORK=$(mkdir -p "$FPGA_FT_WHEEL_WORK" && cd "$FPGA_FT_WHEEL_WORK" && pwd)
    (cd "$WORK" && rm -rf src dist venv elsewhere cache constraints.txt ./*.log boards.txt)
else
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/fpga-ft-wheel.XXXXXX")
    [ -n "${KEEP:-}" ] || trap 'rm -rf "$WORK"' EXIT
fi

step_start=0
step() { step_start=$(date +%s); echo "-- $*"; }
done_step() { echo "   ok ($(( $(date +%s) - step_start )) s)"; }

step "wheel: copy the repository's files, pip wheel"
mkdir -p "$WORK/src" "$WORK/dist"
git -C "$REPO" ls-files -z --cached --others --exclude-standard \
    | while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done \
    | tar -C "$REPO" --null -T - -cf - | tar -C "$WORK/src" -xf -
"$BUILD_PYTHON" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" >"$WORK/build.log" 2>&1 \
    || { tail -30 "$WORK/build.log"; exit 1; }
WHEEL=$(ls "$WORK"/dist/fpga_ft-*.whl)
for member in fpga_ft/_bundled/boards/zcu102.yml fpga_ft/_bundled/models/digits_mlp.h5 \
              hls_templates/fpgaft_tmr.h fpga_ft/data/resource_calibration.json fpga_ft/py.typed; do
    "$BUILD_PYTHON" -c "import sys, zipfile; sys.exit('$member' not in zipfile.ZipFile('$WHEEL').namelist())" \
        || { echo "the wheel lacks $member"; exit 1; }
done
echo "   $(basename "$WHEEL"), $(du -k "$WHEEL" | cut -f1) KiB"
done_step

step "fresh venv ($PYTHON), pip install the wheel with its dependencies"
"$PYTHON" -m venv "$WORK/venv"
constraints=()
if [ -n "${VIRTUAL_ENV:-}" ]; then  # the same dependency versions as the environment under test
    "$BUILD_PYTHON" -m pip freeze --exclude-editable | grep -v ' @ ' >"$WORK/constraints.txt" || true
    constraints=(-c "$WORK/constraints.txt")
fi
"$WORK/venv/bin/python" -m pip install -q "${constraints[@]}" "$WHEEL" >"$WORK/install.log" 2>&1 \
    || { grep -v "is ignored: it is neither" "$WORK/install.log" | tail -30; exit 1; }
done_step

mkdir -p "$WORK/elsewhere"
cd "$WORK/elsewhere"
unset PYTHONPATH
export FPGA_FT_CACHE="$WORK/cache"
unset FPGA_FT_BOARDS

step "import location"
"$WORK/venv/bin/python" - "$WORK/venv" <<'EOF'
import sys
from pathlib import Path

import fpga_ft
import hls_templates
from fpga_ft.core.paths import BOARDS_DIR, HLS_TEMPLATES_DIR, MODELS_DIR

venv = Path(sys.argv[1]).resolve()
for path in (Path(fpga_ft.__file__), Path(hls_templates.__file__), BOARDS_DIR, MODELS_DIR, HLS_TEMPLATES_DIR):
    assert venv in path.resolve().parents, f"{path} is not inside {venv}"
print(f"   fpga_ft from {Path(fpga_ft.__file__).parent}")
EOF
done_step

step "fpga-ft boards (from $PWD)"
"$WORK/venv/bin/fpga-ft" boards >"$WORK/boards.txt"
grep -q '^zcu102 ' "$WORK/boards.txt" || { cat "$WORK/boards.txt"; exit 1; }
done_step

step "fpga-ft demo (from $PWD, fresh design cache)"
"$WORK/venv/bin/fpga-ft" demo -o demo >"$WORK/demo.log" 2>&1 || { tail -40 "$WORK/demo.log"; exit 1; }
test -s demo/report.md || { echo "demo wrote no report.md"; tail -20 "$WORK/demo.log"; exit 1; }
tail -1 "$WORK/demo.log" | sed 's/^/   /'
done_step

echo "wheel check passed"
