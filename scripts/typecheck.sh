#!/usr/bin/env bash
# mypy (strict) over swarmlab as installed, its tests, benchmarks and scripts.
# mypy reads files, not the editable install's import hook, so the installed layout is built
# first as a tree of links (.build/typecheck/swarmlab, from pyproject.toml's package-dir).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
"$PY" scripts/link_tree.py .build/typecheck >/dev/null
export MYPYPATH=.build/typecheck:benchmarks:tests
"$PY" -m mypy -p swarmlab
# Test modules by path (tests/helpers is reached through imports, as `helpers`).
mapfile -t files < <(find tests benchmarks scripts -name '*.py' -not -path 'tests/helpers/*' | sort)
"$PY" -m mypy --explicit-package-bases "${files[@]}"
