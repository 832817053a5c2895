#!/usr/bin/env bash
# Build swarmlab's wheel for a release, from a clean copy of the committed tree (git archive
# HEAD): setuptools reuses a checkout's build/ folder, so a wheel built in place from a used
# checkout could carry stale files. Uncommitted changes are not in the wheel; it says so.
# Usage: scripts/build.sh [OUT_DIR]   (default dist/; needs the set-up's .venv)
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-dist}")"
if [ -n "$(git status --porcelain --untracked-files=no)" ]; then
  echo "build: uncommitted changes are left out: the wheel is built from HEAD" >&2
fi
clean="$(mktemp -d)"
trap 'rm -rf "$clean"' EXIT
git archive HEAD | tar -x -C "$clean"
mkdir -p "$out"
.venv/bin/python -m pip wheel -q --no-deps --no-build-isolation -w "$out" "$clean"
ls "$out"/swarmlab-*.whl
