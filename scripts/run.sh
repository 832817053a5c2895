#!/usr/bin/env bash
# Install what is missing, then run an experiment (default: the built-in `paperclips`).
# Any arguments go to `swarmlab run`, e.g.: scripts/run.sh paperclips --set seed=7 --json
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" --model local "*|*" --model=local "*|*"model=local"*) export SWARMLAB_WITH_LOCAL_MODEL=1 ;;
esac
bash scripts/setup.sh
if [ $# -eq 0 ]; then set -- paperclips; fi
exec .venv/bin/swarmlab run "$@"
