#!/usr/bin/env bash
# Install what is missing, then lint, type-check and run the whole test suite.
# Extra arguments go to pytest, e.g.: scripts/test.sh -m "not slow" -x
set -euo pipefail
cd "$(dirname "$0")/.."
SWARMLAB_WITH_BROWSER=1 SWARMLAB_WITH_LOCAL_MODEL=1 bash scripts/setup.sh
.venv/bin/ruff check swarm models cluster observability tests benchmarks
.venv/bin/ruff format --check swarm models cluster observability tests benchmarks
.venv/bin/mypy swarm models cluster observability
exec .venv/bin/python -m pytest "$@"
