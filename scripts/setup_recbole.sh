#!/usr/bin/env bash
# Installs RecBole 1.2.1 into its own virtualenv (default .venv-recbole at the repo root; override with
# KGP_RECBOLE_VENV), for `kgplatform.eval.recbole` (`kgp evaluate --with-recbole`). RecBole is not a
# dependency of kgplatform and never goes into the main venv: it needs NumPy < 2 (and an older pandas/SciPy
# stack), the main venv has NumPy 2.
#
# torch is not installed a second time: a .pth file in the RecBole venv's site-packages appends the main
# venv's site-packages (KGP_VENV, default .venv) to sys.path *after* the RecBole venv's own packages, so
# RecBole's NumPy 1.26 shadows the main venv's NumPy 2 and torch 2.9.1 comes from the main venv. If that torch
# is missing or does not work with NumPy < 2, torch==2.9.1 is installed into the RecBole venv instead (from
# pip's cache when it is there). Not installed: ray, hyperopt, thop, plotly, tabulate — RecBole imports them
# only in recbole.quick_start and hyper-parameter tuning, which kgplatform does not use.
#
# Idempotent: a second run only checks (a few seconds). Quiet: pip's output is shown only when it fails.
# Exit 0 when RecBole imports and runs; otherwise one `Error: ...` line on stderr and exit 1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
VENV=${KGP_RECBOLE_VENV:-$ROOT/.venv-recbole}
MAIN_VENV=${KGP_VENV:-$ROOT/.venv}
PY=${PYTHON:-python3.11}
command -v "$PY" >/dev/null 2>&1 || PY=python3
RECBOLE_VERSION=1.2.1
TORCH_VERSION=2.9.1
PTH_NAME=zz_kgp_main_venv.pth
LOG=$(mktemp "${TMPDIR:-/tmp}/kgp-setup-recbole.XXXXXX")
trap 'rm -f "$LOG"' EXIT

die() { printf 'Error: %s\n' "$*" >&2; exit 1; }
fail_with_log() {  # $1 = what failed; shows the log's tail, then the one Error line
  if [ -s "$LOG" ]; then
    printf -- '--- last lines of the install log ---\n' >&2
    tail -n 25 "$LOG" >&2
    printf -- '---\n' >&2
  fi
  die "$1"
}

# RecBole's runtime dependencies, pinned to a stack that works with NumPy 1.x on Python 3.11. SciPy < 1.12:
# RecBole's LightGCN/NGCF/... build their adjacency with dok_matrix._update, which SciPy 1.12 removed.
PINS=("numpy==1.26.4" "scipy==1.11.4" "pandas==2.2.3" "scikit-learn==1.5.2")
# For KGAT only (it builds a DGL graph): DGL's last PyPI wheel, installed without its dependencies (they
# would pull another torch); torchdata 0.9 is the last with the datapipes DGL 2.1 imports. DGL's GraphBolt
# library has no build for torch 2.9: the worker imports dgl without it (kgplatform/eval/_recbole_worker.py).
NODEPS_PINS=("recbole==$RECBOLE_VERSION" "dgl==2.1.0" "torchdata==0.9.0")

# The check: recbole and the pins at their versions, torch importable and sharing memory with NumPy.
check() {
  "$VENV/bin/python" -I -c "
import importlib.metadata as md
for pin in '${PINS[*]} ${NODEPS_PINS[*]}'.split():
    name, want = pin.split('==')
    assert md.version(name) == want, name + ' ' + md.version(name)
import numpy, torch, recbole
from recbole.config import Config
from recbole.trainer import Trainer
assert recbole.__version__ == '$RECBOLE_VERSION', 'recbole ' + recbole.__version__
assert float(torch.from_numpy(numpy.arange(4.0)).sum()) == 6.0
assert float(torch.ones(3).numpy().sum()) == 3.0
"
}

[ -x "$VENV/bin/python" ] && check >/dev/null 2>&1 && exit 0

if [ -e "$VENV" ] && [ ! -x "$VENV/bin/python" ]; then
  die "$VENV exists but is not a virtualenv; remove it or set KGP_RECBOLE_VENV to another path"
fi
if [ ! -x "$VENV/bin/python" ]; then
  "$PY" -m venv "$VENV" >>"$LOG" 2>&1 || fail_with_log "cannot create the virtualenv $VENV with $PY"
fi
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)
SITE=$("$VENV/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
RB_PYVER=$("$VENV/bin/python" -c 'import sys; print("%d.%d" % sys.version_info[:2])')

"${PIP[@]}" install -q --upgrade pip wheel "setuptools<70" >>"$LOG" 2>&1 \
  || fail_with_log "cannot install pip, wheel and setuptools<70 into $VENV (is PyPI reachable?)"
"${PIP[@]}" install -q "${PINS[@]}" \
  "pyyaml>=5.1" "tqdm>=4.48.2" "colorlog==4.7.2" "colorama==0.4.4" \
  "tensorboard==2.18.0" "texttable>=0.9.0" "psutil>=5.9" "requests>=2.19" \
  >>"$LOG" 2>&1 || fail_with_log "cannot install RecBole's dependencies into $VENV"
# recbole itself without its declared dependencies (they would pull ray and a second torch); DGL likewise.
"${PIP[@]}" install -q --no-deps "${NODEPS_PINS[@]}" >>"$LOG" 2>&1 \
  || fail_with_log "cannot install ${NODEPS_PINS[*]} into $VENV"

# torch: keep one installed into this venv by an earlier fallback; otherwise reuse the main venv's.
rm -f "$SITE/$PTH_NAME"
if ! "$VENV/bin/python" -I -c 'import importlib.util as u, sys; s = u.find_spec("torch"); sys.exit(0 if s and s.origin.startswith(sys.prefix) else 1)' 2>/dev/null; then
  MAIN_SITE=""
  if [ -x "$MAIN_VENV/bin/python" ]; then
    MAIN_SITE=$("$MAIN_VENV/bin/python" -I -c "
import importlib.metadata as md, sys, sysconfig
try:
    ok = '%d.%d' % sys.version_info[:2] == '$RB_PYVER' and md.version('torch').split('+')[0] == '$TORCH_VERSION'
except md.PackageNotFoundError:
    ok = False
print(sysconfig.get_paths()['purelib'] if ok else '')" 2>>"$LOG" || true)
  fi
  if [ -n "$MAIN_SITE" ]; then
    printf '%s\n' "$MAIN_SITE" > "$SITE/$PTH_NAME"
    if ! check >>"$LOG" 2>&1; then
      rm -f "$SITE/$PTH_NAME"
      MAIN_SITE=""
    fi
  fi
  if [ -z "$MAIN_SITE" ]; then
    "${PIP[@]}" install -q "torch==$TORCH_VERSION" >>"$LOG" 2>&1 \
      || fail_with_log "cannot install torch==$TORCH_VERSION into $VENV (and $MAIN_VENV has no usable torch==$TORCH_VERSION)"
  fi
fi

check >>"$LOG" 2>&1 || fail_with_log "RecBole $RECBOLE_VERSION was installed into $VENV but does not import"
exit 0
