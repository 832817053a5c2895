#!/usr/bin/env bash
# Re-lock: resolve every package the set-up installs (pyproject.toml's requirements, the tools,
# the local model stack) and write locks/*.lock with exact versions and hashes. Run it after
# changing a requirement in pyproject.toml and commit the locks with that change; the tests fail
# until you do. Needs the set-up's .venv (scripts/setup.sh) and access to PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/lock.py "$@"
