#!/usr/bin/env bash
# Install what is missing, then check that what is installed is the lock (so that the static
# checks run at the locked versions only), check the architecture, lint, type-check and run
# every test.
# Extra arguments go to pytest, e.g.: scripts/test.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "$0")/.."
SWARMLAB_WITH_BROWSER=1 SWARMLAB_WITH_LOCAL_MODEL=1 bash scripts/setup.sh
PY=.venv/bin/python
CODE=(swarm models cluster observability tests benchmarks scripts)
"$PY" scripts/lock.py --check
"$PY" scripts/check_architecture.py .
"$PY" -m ruff check "${CODE[@]}"
"$PY" -m ruff format --check "${CODE[@]}"
bash scripts/typecheck.sh
exec "$PY" -m pytest "$@"
