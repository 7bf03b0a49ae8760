#!/usr/bin/env bash
# Privacy benchmark of the voice-disguise presets (make bench-privacy).
# Creates .venv-bench with the optional heavy dependencies, synthesizes the corpus
# under tests/bench/out/ and prints the table. Arguments go to bench.py, e.g.
#   tests/bench/privacy/run.sh --presets none,pitch --speakers flite-slt,flite-rms
set -euo pipefail
cd "$(dirname "$0")/../../.."
VENV=.venv-bench
PY=$VENV/bin/python

missing=""
command -v espeak-ng >/dev/null || missing="$missing espeak-ng"
command -v flite >/dev/null || missing="$missing flite"
command -v gcc >/dev/null || missing="$missing gcc"
python3 -c 'import sysconfig, os; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
  2>/dev/null || missing="$missing python3-dev"
if [ -n "$missing" ]; then
  echo "Installing:$missing"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi

test -x $PY || python3 -m venv $VENV
if [ ! -f $VENV/.deps ] || [ requirements-bench-privacy.txt -nt $VENV/.deps ] || [ requirements.txt -nt $VENV/.deps ]; then
  $PY -m pip install -q -r requirements-bench-privacy.txt
  touch $VENV/.deps
fi

mkdir -p tests/bench/out
# Per-core figures: one BLAS thread; nothing may reach a model hub.
export DJANGO_SETTINGS_MODULE=annotator.settings \
  OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
  NUMBA_CACHE_DIR=tests/bench/out/numba-cache \
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TORCH_HOME=tests/bench/out/torch-home
$PY tests/bench/privacy/corpus.py
exec nice -n 10 $PY tests/bench/privacy/bench.py "$@"
