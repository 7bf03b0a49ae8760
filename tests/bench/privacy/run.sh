#!/usr/bin/env bash
# Privacy benchmark of the voice-disguise presets (make bench-privacy).
# Creates .venv-bench with the optional heavy dependencies, synthesizes the corpus
# (25 voices: flite, festival, MBROLA, espeak-ng) under tests/bench/out/ and prints the
# table. Arguments go to bench.py, e.g.
#   tests/bench/privacy/run.sh --presets none,target --speakers flite-slt,flite-rms,mbrola-us1
# The target presets' codebook is committed (reviews/disguise_codebook.npz); to rebuild
# it: .venv-bench/bin/python tests/bench/privacy/make_codebook.py
set -euo pipefail
cd "$(dirname "$0")/../../.."
VENV=.venv-bench
PY=$VENV/bin/python

missing=""
command -v espeak-ng >/dev/null || missing="$missing espeak-ng"
command -v flite >/dev/null || missing="$missing flite"
command -v text2wave >/dev/null || missing="$missing festival"
test -d /usr/share/festival/voices/english/ked_diphone || missing="$missing festvox-kdlpc16k"
command -v gcc >/dev/null || missing="$missing gcc"
python3 -c 'import sysconfig, os; assert os.path.exists(os.path.join(sysconfig.get_paths()["include"], "Python.h"))' \
  2>/dev/null || missing="$missing python3-dev"
if [ -n "$missing" ]; then
  echo "Installing:$missing"
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing
fi
# The four MBROLA voices (recordings of four more people) are in Debian's non-free
# section. BENCH_NONFREE=0 skips them (corpus.py then leaves those voices out).
MBROLA="mbrola mbrola-us1 mbrola-us2 mbrola-us3 mbrola-en1"
if [ "${BENCH_NONFREE:-1}" = 1 ] && ! { command -v mbrola >/dev/null && test -d /usr/share/mbrola/us1 \
    && test -d /usr/share/mbrola/us2 && test -d /usr/share/mbrola/us3 && test -d /usr/share/mbrola/en1; }; then
  if ! apt-cache policy mbrola-us1 2>/dev/null | grep -q 'Candidate: [0-9]'; then
    echo "Adding Debian's contrib and non-free sections for the MBROLA voices"
    codename=$(. /etc/os-release && echo "$VERSION_CODENAME")
    printf 'Types: deb\nURIs: http://deb.debian.org/debian\nSuites: %s\nComponents: contrib non-free\nSigned-By: %s\n' \
      "$codename" /usr/share/keyrings/debian-archive-keyring.gpg > /etc/apt/sources.list.d/bench-privacy-nonfree.sources
    apt-get update -q
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q $MBROLA
fi

test -x $PY || python3 -m venv $VENV
if [ ! -f $VENV/.deps ] || [ requirements-bench-privacy.txt -nt $VENV/.deps ] || [ requirements.txt -nt $VENV/.deps ]; then
  $PY -m pip install -q -r requirements-bench-privacy.txt
  touch $VENV/.deps
fi

mkdir -p tests/bench/out
# Per-core figures: one BLAS thread; nothing may reach a model hub.
export DJANGO_SETTINGS_MODULE=annotator.settings \
  OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 OMP_NUM_THREADS=1 \
  NUMBA_CACHE_DIR=tests/bench/out/numba-cache \
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TORCH_HOME=tests/bench/out/torch-home
$PY tests/bench/privacy/corpus.py
exec nice -n 10 $PY tests/bench/privacy/bench.py "$@"
