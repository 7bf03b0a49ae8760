#!/usr/bin/env bash
# `make bench` (issues 8, 15): reviewer loop at 1/16/64 reviewers on a durable PostgreSQL
# (fsync and synchronous_commit on, as production; with a py-spy profile at 16), the loop's
# Python CPU per request in one process (request_cpu.py),
# ingest speed, and faults (PostgreSQL restart, pg_terminate_backend, worker SIGKILL).
# BENCH_SCALE=1 adds the scale bench (1M clips, 10M audit events: the fill alone takes
# tens of minutes). BENCH_QUICK=1 runs everything small (a smoke test of the scripts).
# Each script starts its own throwaway PostgreSQL and gunicorn on 127.0.0.1 and removes
# them afterwards; tables are printed and kept in tests/bench/out/issue8-*.txt.
set -uo pipefail
cd "$(dirname "$0")/../.."
PY=.venv/bin/python
OUT=tests/bench/out
mkdir -p "$OUT"

if [ "${BENCH_QUICK:-0}" = 1 ]; then
  LOOP_ARGS=(--reviewers 1,16 --seconds 5 --warmup 1 --clips 3000)
  INGEST_ARGS=(--seconds 4 --processes 1)
  FAULT_ARGS=(--reviewers 4 --seconds 15 --before 4 --outage 3)
  SCALE_ARGS=(--clips 50000 --open 5000 --events 200000 --rounds 2 --loops 10)
else
  LOOP_ARGS=()
  INGEST_ARGS=()
  FAULT_ARGS=()
  SCALE_ARGS=()
fi

# The profiler is a bench-only tool: installed into .venv on demand, never a requirement.
if [ "${BENCH_PROFILE:-1}" = 1 ]; then
  if [ -x .venv/bin/py-spy ] || .venv/bin/pip install -q py-spy; then
    LOOP_ARGS+=(--profile)
  else
    echo "py-spy could not be installed: the loop runs without a profile" >&2
  fi
fi

failed=()
run() {
  local name=$1; shift
  echo
  echo "################ $name: $PY $*"
  nice -n 5 "$PY" "$@" 2>&1 | tee "$OUT/issue8-$name.txt"
  [ "${PIPESTATUS[0]}" = 0 ] || failed+=("$name")
}

started=$SECONDS
run loop tests/bench/loop.py "${LOOP_ARGS[@]}"
# Python CPU per request in one process, and where it goes (issue 15).
echo
echo "################ request-cpu: tests/bench/request_cpu.py"
nice -n 5 tests/tools/with_postgres.sh "$PY" -m pytest -q -s -p no:cacheprovider tests/bench/request_cpu.py 2>&1 \
  | tee "$OUT/issue8-request-cpu.txt"
[ "${PIPESTATUS[0]}" = 0 ] || failed+=(request-cpu)
run ingest tests/bench/ingest_speed.py "${INGEST_ARGS[@]}"
run faults tests/bench/faults.py "${FAULT_ARGS[@]}"
if [ "${BENCH_SCALE:-0}" = 1 ]; then
  run scale tests/bench/scale.py "${SCALE_ARGS[@]}"
fi
echo
echo "make bench: $(( (SECONDS - started) / 60 )) min; tables in $OUT/issue8-*.txt"
if [ ${#failed[@]} -gt 0 ]; then
  echo "Checks failed in: ${failed[*]}" >&2
  exit 1
fi
