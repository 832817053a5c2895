#!/usr/bin/env bash
# Installs PyTorch's CPU build into a virtualenv, at the version the `local` extra pins
# (pyproject.toml: torch==X+cpu). On Linux, PyPI's torch is a CUDA build of several GB, and PyPI
# has no +cpu builds: PyTorch publishes them on its CPU index. So, in order:
#   1. pip as configured, pinned to the +cpu build: this finds a CPU wheel that a machine keeps
#      in a local wheelhouse (pip's find-links), and nothing otherwise - never a CUDA build;
#   2. PyTorch's CPU index (SWARMLAB_TORCH_INDEX, default https://download.pytorch.org/whl/cpu,
#      or a mirror of it), beside the configured index for torch's own dependencies.
# Prints the CPU index when it was used (empty otherwise), so that set-up can hand it to the
# rest of the local stack (torchvision's CPU build, for one).
# Usage: scripts/install_cpu_torch.sh PYTHON [pip options, e.g. --dry-run --report FILE]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="$1"
shift
pin="$("$PY" - <<'PYEOF'
import tomllib

with open("pyproject.toml", "rb") as f:
    local = tomllib.load(f)["project"]["optional-dependencies"]["local"]
pins = [r.split(";")[0].replace(" ", "") for r in local if r.replace(" ", "").startswith("torch==")]
print(next(p for p in pins if p.endswith("+cpu")))
PYEOF
)"
index="${SWARMLAB_TORCH_INDEX:-https://download.pytorch.org/whl/cpu}"
if "$PY" -m pip install -q "$@" "$pin" >/dev/null 2>&1; then
  echo "install_cpu_torch: $pin, found without PyTorch's index" >&2
  exit 0
fi
echo "install_cpu_torch: $pin from $index" >&2
"$PY" -m pip install -q --extra-index-url "$index" "$@" "$pin" >&2
echo "$index"
