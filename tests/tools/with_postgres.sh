#!/usr/bin/env bash
# Run a command against PostgreSQL: $DATABASE_URL when set, otherwise a throwaway
# server started here (initdb in a temporary folder, a free port on 127.0.0.1) and
# removed when the command ends, whatever its outcome.
set -euo pipefail

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

bindir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$bindir" ] || [ ! -x "$bindir/initdb" ]; then
  echo "Installing PostgreSQL from Debian (initdb not found)..." >&2
  apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >&2
  bindir=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
fi

workdir=$(mktemp -d /tmp/annotator-pg.XXXXXX)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
as_pg=()
if [ "$(id -u)" = 0 ]; then
  # initdb refuses to run as root: the throwaway server runs as the postgres user.
  id postgres >/dev/null 2>&1 || useradd --system --home-dir "$workdir" postgres
  chown postgres "$workdir"
  as_pg=(runuser -u postgres --)
fi

cleanup() {
  "${as_pg[@]}" "$bindir/pg_ctl" -D "$workdir/data" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$workdir"
}
trap cleanup EXIT INT TERM

"${as_pg[@]}" "$bindir/initdb" -D "$workdir/data" -U postgres -A trust -E UTF8 >/dev/null
"${as_pg[@]}" "$bindir/pg_ctl" -D "$workdir/data" -l "$workdir/server.log" -w \
  -o "-p $port -k $workdir -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c max_connections=200" \
  start >/dev/null
"$bindir/createdb" -h 127.0.0.1 -p "$port" -U postgres annotator
echo "Throwaway PostgreSQL on 127.0.0.1:$port (removed afterwards)" >&2
export DATABASE_URL="postgres://postgres@127.0.0.1:$port/annotator"
set +e
"$@"
status=$?
exit $status
