"""Reviewer loop under load: N concurrent reviewers (distinct accounts and sessions), each
doing next (its answer carries the audio token) -> audio bytes -> submit (--token-request:
next -> audio token -> audio bytes -> submit, the loop before next carried a token) against
gunicorn on 127.0.0.1, with a throwaway PostgreSQL. Prints p50/p95/p99 per operation and loops per second at each N,
then proves that no clip was over-assigned. PostgreSQL runs with its default durability
(fsync, synchronous_commit and full_page_writes on, as in production: each commit waits for
its WAL on disk); --not-durable turns them off to see what the disk costs.

    .venv/bin/python tests/bench/loop.py                       # 1, 16 and 64 reviewers, 20 s each
    .venv/bin/python tests/bench/loop.py --reviewers 16 --seconds 5 --clips 3000   # quick
    .venv/bin/python tests/bench/loop.py --profile             # also py-spy on the workers at 16
    .venv/bin/python tests/bench/loop.py --not-durable         # fsync/synchronous_commit off (the old mode)

Bounded: each level runs at most --seconds (plus the loops in flight) and --max-loops
loops. Ten clips are ingested through the real de-identification path; the rest are
bulk-created rows pointing at those ten stored files (a load-test shortcut).
"""

import argparse
import collections
import os
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import OPS, say  # noqa: E402

REFERENCE = "Label Studio 1.23 on PostgreSQL, 16 annotators: 6.8 loops/s, next-task p50 ~790 ms"
REFERENCE_LOOPS = 6.8
# Issue 15's targets: CPU per loop (server + database), and at 16 and 64 reviewers.
TARGET_CPU_MS = 20
TARGET_LOOPS_16 = 10 * REFERENCE_LOOPS
TARGET_NEXT_P99_16 = 50
TARGET_NEXT_P99_64 = 250


def op_table(log: harness.LoopLog) -> dict:
    rows = {}
    for op in OPS:
        if not any(r.op == op for r in log.records):
            continue  # no token requests: next's answer carried the token
        ok = [r.answer.seconds * 1000 for r in log.records if r.op == op and r.answer.status in (200, 201, 204)]
        bad = collections.Counter(r.answer.status or r.answer.error for r in log.records
                                  if r.op == op and r.answer.status not in (200, 201, 204))
        rows[op] = harness.latency_row(ok, bad)
    return rows


def stat_statements(pg, loops: int, limit: int = 10) -> None:
    calls, total = pg.sql("""
        SELECT sum(calls), sum(total_exec_time) FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'annotator')
          AND query NOT LIKE '%%pg_stat_statements_reset%%'""")[0]
    if loops:
        say(f"  SQL: {float(calls) / loops:.0f} statements and {float(total) / loops:.1f} ms of execution per loop "
            "(BEGIN/COMMIT/SAVEPOINT included)")
    rows = pg.sql("""
        SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),
               regexp_replace(query, '\\s+', ' ', 'g')
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'annotator')
          AND query NOT LIKE '%%pg_stat_statements_reset%%'
        ORDER BY calls DESC, total_exec_time DESC LIMIT %s""", [limit])
    say(f"  {'calls':>7} {'total ms':>9} {'mean ms':>8}  statement (pg_stat_statements, this level)")
    for calls, total, mean, query in rows:
        say(f"  {calls:>7} {total:>9} {mean:>8}  {query[:150]}")


class WaitSampler:
    """Sample what the app's PostgreSQL backends are doing every ``interval`` seconds
    (pg_stat_activity): running, or waiting and on what (a lock, the WAL flush of a commit,
    the client). Shows where database time goes when commits wait for the disk."""

    def __init__(self, pg, interval: float = 0.05):
        self.pg, self.interval = pg, interval
        self.counts: collections.Counter = collections.Counter()
        self.samples = 0
        # CPU seconds of the sampler's own backend, read just before it disconnects: instruments,
        # not workload, so the level's PostgreSQL CPU leaves it out (it was counted before).
        self.own_cpu = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        import psycopg2

        # On the "postgres" database, so that pg_stat_statements (per database) leaves it out.
        conn = psycopg2.connect(host=harness.HOST, port=self.pg.port, user="postgres", dbname="postgres",
                                application_name="bench-admin", connect_timeout=5)
        conn.autocommit = True
        try:
            with conn.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                own_pid = cursor.fetchone()[0]
                while not self.stop.is_set():
                    cursor.execute("""
                        SELECT coalesce(wait_event_type || ':' || wait_event, 'running (CPU)'),
                               CASE WHEN query ILIKE '%%pg_advisory_xact_lock%%' THEN ' [chain lock]'
                                    WHEN query ILIKE 'COMMIT%%' THEN ' [COMMIT]' ELSE '' END
                        FROM pg_stat_activity
                        WHERE datname = 'annotator' AND backend_type = 'client backend'
                          AND application_name <> 'bench-admin' AND state = 'active'""")
                    self.samples += 1
                    for wait, statement in cursor.fetchall():
                        self.counts[wait + statement] += 1
                    time.sleep(self.interval)
                self.own_cpu = harness.cpu_by_pid([own_pid]).get(own_pid, 0.0)
        finally:
            conn.close()

    def __enter__(self) -> "WaitSampler":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.thread.join(5)

    def report(self, top: int = 6) -> None:
        busy = sum(self.counts.values())
        if not self.samples or not busy:
            return
        say(f"  Active backends, {self.samples} samples of pg_stat_activity every {1000 * self.interval:.0f} ms "
            f"(mean {busy / self.samples:.1f} active): running or waiting on")
        for name, count in self.counts.most_common(top):
            say(f"    {100 * count / busy:5.1f}%  {name}")


# --- Profile -----------------------------------------------------------------------------

FRAME = re.compile(r"^(?P<func>.+?) \((?P<file>[^:()]+)(?::(?P<line>\d+))?\)$")


def profile_summary(raw: Path, top: int = 14) -> None:
    """Summarize py-spy's collapsed stacks: only samples inside a request."""
    inclusive, leaf, per_view = collections.Counter(), collections.Counter(), collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit() or "handle_request" not in stack:
            continue
        count = int(count)
        total += count
        frames = []
        for part in stack.split(";"):
            match = FRAME.match(part.strip())
            if match:
                frames.append((match["func"], match["file"].split("/site-packages/")[-1].replace(
                    str(harness.ROOT) + "/", "")))
        seen = set()
        for func, file in frames:
            key = f"{func} ({file})"
            if key not in seen:
                seen.add(key)
                inclusive[key] += count
        views = [f for f, file in frames if file.endswith(("reviews/services.py", "reviews/leases.py"))]
        per_view[views[0] if views else "(outside a service: middleware, auth, DRF, rendering)"] += count
        if frames:
            func, file = frames[-1]
            leaf[f"{func} ({file})"] += count
    if not total:
        say("  (no request samples: is py-spy allowed to attach here?)")
        return
    say(f"  {total} samples inside requests (100 Hz per worker)")
    say("  Where request time goes, by the first service function on the stack:")
    for name, count in per_view.most_common():
        say(f"    {100 * count / total:5.1f}%  {name}")
    say("  Inclusive, app and database-driver frames:")
    wanted = [(k, v) for k, v in inclusive.most_common() if "reviews/" in k or "psycopg2" in k
              or "execute (django/db/backends/utils.py)" in k or "guardian" in k]
    for name, count in wanted[:top]:
        say(f"    {100 * count / total:5.1f}%  {name}")
    say("  Leaf frames (where the sample was taken):")
    for name, count in leaf.most_common(top):
        say(f"    {100 * count / total:5.1f}%  {name}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--reviewers", default="1,16,64", help="comma-separated concurrency levels")
    parser.add_argument("--seconds", type=float, default=20, help="measured seconds per level")
    parser.add_argument("--warmup", type=float, default=3, help="unmeasured seconds before each level")
    parser.add_argument("--max-loops", type=int, default=6000, help="loops per level at most")
    parser.add_argument("--clips", type=int, default=0, help="clips to create (default: enough for the run)")
    parser.add_argument("--workers", type=int, default=0, help="gunicorn workers (default 2 x cores + 1)")
    parser.add_argument("--worker-class", default="sync")
    parser.add_argument("--threads", type=int, default=4, help="threads per worker for --worker-class gthread")
    parser.add_argument("--profile", action="store_true", help="py-spy the workers during the 16-reviewer level")
    parser.add_argument("--extra-sql", default="", help="SQL run on the database after migrate, e.g. an index "
                        "to try (an experiment; the app's migrations are not changed)")
    parser.add_argument("--not-durable", action="store_true", help="fsync, synchronous_commit and "
                        "full_page_writes off (commits do not wait for the disk; not how production runs)")
    parser.add_argument("--token-request", action="store_true", help="ask the audio-token route for every "
                        "loop's token instead of using the one next's answer carries (the 4-request loop)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    levels = [int(x) for x in args.reviewers.split(",") if x.strip()]
    clips = args.clips or sum(min(args.max_loops, 150 * (args.seconds + args.warmup)) for _ in levels) + 2000
    clips = int(clips)

    workspace = harness.Workspace("loop", keep=args.keep)
    try:
        wall = time.monotonic()
        pg = workspace.postgres(durable=not args.not_durable)
        env = workspace.app_env(pg.url())
        harness.app_prepare(env)
        if args.extra_sql:
            pg.sql(args.extra_sql)
            say(f"Experiment: ran on the database after migrate: {args.extra_sql}")
        harness.django_setup(env)
        from django.db import connections

        world = harness.world_create(reviewers=max(levels), clips=clips)
        connections.close_all()
        pg.sql("VACUUM ANALYZE")  # plans as on a live database, not on bulk-loaded tables without statistics
        server = harness.Gunicorn(workspace, env, workers=args.workers or None, worker_class=args.worker_class,
                                  threads=args.threads)
        say(f"Machine: {os.cpu_count()} cores (shared), load average {os.getloadavg()[0]:.2f}; "
            f"{server.describe}; PostgreSQL {pg.bindir.parent.name} throwaway, "
            f"{'durable' if pg.durable else 'NOT durable'} ({pg.durability()}); {clips:,} clips "
            f"({world['real_clips']} ingested through clip_ingest, "
            f"the rest bulk rows pointing at their audio), transcriptions_per_clip 1")
        started = time.monotonic()
        clients = harness.clients_login(server.port, world["reviewers"])
        say(f"Signed in {len(clients)} reviewers through POST /api/v1/auth/login/ in "
            f"{time.monotonic() - started:.1f} s (PBKDF2, not timed below)")
        names = world["reviewers"]
        all_leases = []
        summary = []
        for level in levels:
            harness.load_run(clients[:level], names[:level], seconds=args.warmup, max_loops=args.max_loops,
                             token_request=args.token_request)
            pg.sql("SELECT pg_stat_statements_reset()")
            spy = None
            if args.profile and level == 16:
                # First half wall clock (--idle: waiting on PostgreSQL and locks counts), second half
                # on-CPU only (where the Python time goes).
                half = max(2, int(args.seconds / 2))
                raws = {"wall": workspace.path / "profile-16-wall.txt", "cpu": workspace.path / "profile-16-cpu.txt"}

                def spy_run():
                    for mode, raw in raws.items():
                        subprocess.run([str(harness.ROOT / ".venv/bin/py-spy"), "record", "--pid",
                                        str(server.process.pid), "--subprocesses", "--rate", "100",
                                        "--duration", str(half), "--format", "raw", "--nonblocking", "-o",
                                        str(raw), *(["--idle"] if mode == "wall" else [])],
                                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=half + 60)

                spy = threading.Thread(target=spy_run)
                spy.start()
            load_before = os.getloadavg()[0]
            app_pids = server.worker_pids()
            # Backends whose connection closed during the level (CONN_MAX_AGE) count too: without
            # them the 64 level read ~1 ms of database CPU per loop.
            cpu_app, db_mark = harness.cpu_by_pid(app_pids), harness.postgres_cpu_mark(pg)
            started = time.monotonic()
            with WaitSampler(pg) as waits:
                log = harness.load_run(clients[:level], names[:level], seconds=args.seconds,
                                       max_loops=args.max_loops, token_request=args.token_request)
            elapsed = time.monotonic() - started
            cpu_app = harness.cpu_used_between(cpu_app, harness.cpu_by_pid(server.worker_pids()))
            cpu_db = harness.postgres_cpu_since(pg, db_mark) - waits.own_cpu
            all_leases += log.leases
            rate = log.loops / elapsed
            say(f"\n== {level} reviewer(s): {log.loops} loops in {elapsed:.1f} s = {rate:.1f} loops/s "
                f"({len(log.records) / elapsed:.0f} requests/s); queue empty answers {log.empty}; load average "
                f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}")
            per_loop = harness.cpu_per_loop_say(cpu_app, cpu_db, log.loops)
            if log.loops:
                say(f"    at that cost {os.cpu_count()} dedicated cores would carry at most "
                    f"{os.cpu_count() * 1000 / per_loop:.0f} loops/s (client excluded; the wait sampler's own "
                    f"backend, {1000 * waits.own_cpu / log.loops:.1f} ms per loop, left out)")
            table = op_table(log)
            harness.latency_table_say(table)
            summary.append((level, rate, per_loop, table))
            stat_statements(pg, log.loops, int(os.environ.get("BENCH_STATEMENTS", 8 if level == 16 else 4)))
            waits.report()
            if spy is not None:
                spy.join()
                for mode, raw in raws.items():
                    say(f"\n  Profile, {'wall clock (idle included)' if mode == 'wall' else 'on-CPU only'} "
                        f"(py-spy record --subprocesses on the gunicorn workers, {half} s):")
                    if raw.exists():
                        profile_summary(raw)
                    else:
                        say("  py-spy wrote nothing (is ptrace allowed here?)")

        connections.close_all()
        checks = harness.over_assignment_check(all_leases)
        say("\nOver-assignment check (PostgreSQL after all levels, and the leases the clients saw):")
        for name, count in checks.items():
            say(f"  {name:<66} {count}")
        ok, count, detail = harness.chain_check()
        say(f"Audit chain: {'verifies' if ok else 'BROKEN: ' + detail} ({count:,} events)")

        durability = "durable: fsync, synchronous_commit on" if pg.durable else "NOT durable"
        say(f"\nSummary ({durability}; {os.cpu_count()} shared cores; {args.seconds:g} s per level; "
            f"reference: {REFERENCE}):")
        head = "".join(f" {op + ' p50/p95/p99 ms':>23}" for op in (summary[0][3] if summary else OPS))
        say(f"  {'reviewers':>9} {'loops/s':>8} {'CPU ms/loop':>11} {'errors':>6}{head}")
        for level, rate, per_loop, table in summary:
            errors = sum(sum(row["errors"].values()) for row in table.values())
            cells = "".join(f" {row['p50']:>7.1f}/{row['p95']:>6.1f}/{row['p99']:>7.1f}" for row in table.values())
            say(f"  {level:>9} {rate:>8.1f} {per_loop:>11.1f} {errors:>6}{cells}")
        say("  Targets (issue 15):")
        for level, rate, per_loop, table in summary:
            errors = sum(sum(row["errors"].values()) for row in table.values())
            goals = [(f"CPU per loop <= {TARGET_CPU_MS} ms", per_loop <= TARGET_CPU_MS, f"{per_loop:.1f} ms")]
            if level == 16:
                goals += [(f"loops/s >= {TARGET_LOOPS_16:.0f} (10x {REFERENCE_LOOPS})", rate >= TARGET_LOOPS_16,
                           f"{rate:.1f}, {rate / REFERENCE_LOOPS:.1f}x"),
                          (f"next p99 < {TARGET_NEXT_P99_16} ms", table["next"]["p99"] < TARGET_NEXT_P99_16,
                           f"{table['next']['p99']:.1f} ms")]
            if level == 64:
                goals += [("no error", errors == 0, str(errors)),
                          (f"next p99 < {TARGET_NEXT_P99_64} ms", table["next"]["p99"] < TARGET_NEXT_P99_64,
                           f"{table['next']['p99']:.1f} ms")]
            for goal, met, value in goals:
                say(f"    {level:>3} reviewers: {goal:<32} {value:>14}  {'met' if met else 'MISSED'}")
        bad = sum(checks.values())
        say(f"  over-assignment: {'none' if bad == 0 else bad}; whole run {time.monotonic() - wall:.0f} s")
        return 0 if bad == 0 and ok else 1
    finally:
        workspace.cleanup()


if __name__ == "__main__":
    sys.exit(main())
