"""Reviewer loop under load: N concurrent reviewers (distinct accounts and sessions), each
doing next -> audio token -> audio bytes -> submit against gunicorn on 127.0.0.1, with a
throwaway PostgreSQL. Prints p50/p95/p99 per operation and loops per second at each N,
then proves that no clip was over-assigned.

    .venv/bin/python tests/bench/loop.py                       # 1, 16 and 64 reviewers, 20 s each
    .venv/bin/python tests/bench/loop.py --reviewers 16 --seconds 5 --clips 3000   # quick
    .venv/bin/python tests/bench/loop.py --profile             # also py-spy on the workers at 16

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

REFERENCE = "Label Studio 1.23 on PostgreSQL, 16 annotators: ~7 loops/s, next-task p50 ~790 ms"


def op_table(log: harness.LoopLog) -> dict:
    rows = {}
    for op in OPS:
        ok = [r.answer.seconds * 1000 for r in log.records if r.op == op and r.answer.status in (200, 201, 204)]
        bad = collections.Counter(r.answer.status or r.answer.error for r in log.records
                                  if r.op == op and r.answer.status not in (200, 201, 204))
        rows[op] = {"n": len(ok), "p50": harness.percentile(ok, 50), "p95": harness.percentile(ok, 95),
                    "p99": harness.percentile(ok, 99), "max": max(ok, default=float("nan")), "errors": dict(bad)}
    return rows


def stat_statements(pg, loops: int, limit: int = 10) -> None:
    calls, total = pg.sql("""
        SELECT sum(calls), sum(total_exec_time) FROM pg_stat_statements
        WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'annotator')""")[0]
    if loops:
        say(f"  SQL: {float(calls) / loops:.0f} statements and {float(total) / loops:.1f} ms of execution per loop "
            "(BEGIN/COMMIT/SAVEPOINT included)")
    rows = pg.sql("""
        SELECT calls, round(total_exec_time::numeric, 1), round(mean_exec_time::numeric, 3),
               regexp_replace(query, '\\s+', ' ', 'g')
        FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = 'annotator')
        ORDER BY total_exec_time DESC LIMIT %s""", [limit])
    say(f"  {'calls':>7} {'total ms':>9} {'mean ms':>8}  statement (pg_stat_statements, this level)")
    for calls, total, mean, query in rows:
        say(f"  {calls:>7} {total:>9} {mean:>8}  {query[:150]}")


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
        views = [f for f, file in frames if file.endswith("reviews/services.py")]
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
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args()
    levels = [int(x) for x in args.reviewers.split(",") if x.strip()]
    clips = args.clips or sum(min(args.max_loops, 150 * (args.seconds + args.warmup)) for _ in levels) + 2000
    clips = int(clips)

    workspace = harness.Workspace("loop", keep=args.keep)
    try:
        wall = time.monotonic()
        pg = workspace.postgres()
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
            f"{server.describe}; PostgreSQL {pg.bindir.parent.name} throwaway (fsync off, "
            f"synchronous_commit off); {clips:,} clips ({world['real_clips']} ingested through clip_ingest, "
            f"the rest bulk rows pointing at their audio), transcriptions_per_clip 1")
        started = time.monotonic()
        clients = harness.clients_login(server.port, world["reviewers"])
        say(f"Signed in {len(clients)} reviewers through POST /api/v1/auth/login/ in "
            f"{time.monotonic() - started:.1f} s (PBKDF2, not timed below)")
        names = world["reviewers"]
        all_leases = []
        summary = []
        for level in levels:
            harness.load_run(clients[:level], names[:level], seconds=args.warmup, max_loops=args.max_loops)
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
            db_pids = harness.children_of(pg.pid())
            cpu_app, cpu_db = harness.cpu_by_pid(app_pids), harness.cpu_by_pid(db_pids)
            started = time.monotonic()
            log = harness.load_run(clients[:level], names[:level], seconds=args.seconds, max_loops=args.max_loops)
            elapsed = time.monotonic() - started
            cpu_app = harness.cpu_used_between(cpu_app, harness.cpu_by_pid(server.worker_pids()))
            cpu_db = harness.cpu_used_between(cpu_db, harness.cpu_by_pid(harness.children_of(pg.pid())))
            all_leases += log.leases
            rate = log.loops / elapsed
            say(f"\n== {level} reviewer(s): {log.loops} loops in {elapsed:.1f} s = {rate:.1f} loops/s "
                f"({4 * rate:.0f} requests/s); queue empty answers {log.empty}; load average "
                f"{load_before:.2f} -> {os.getloadavg()[0]:.2f}")
            if log.loops:
                per_loop = 1000 * (cpu_app + cpu_db) / log.loops
                say(f"  CPU per loop: {1000 * cpu_app / log.loops:.1f} ms in gunicorn workers + "
                    f"{1000 * cpu_db / log.loops:.1f} ms in PostgreSQL = {per_loop:.1f} ms; at that cost "
                    f"{os.cpu_count()} dedicated cores would carry at most {os.cpu_count() * 1000 / per_loop:.0f} "
                    "loops/s (client excluded)")
            table = op_table(log)
            say(f"  {'op':<8} {'n':>6} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8}  errors")
            for op, row in table.items():
                say(f"  {op:<8} {row['n']:>6} {row['p50']:>8.1f} {row['p95']:>8.1f} {row['p99']:>8.1f} "
                    f"{row['max']:>8.1f}  {row['errors'] or '-'}")
            summary.append((level, rate, table))
            stat_statements(pg, log.loops, 8 if level == 16 else 4)
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

        say(f"\nSummary ({REFERENCE}; target at 16: >= 70 loops/s, next p99 < 50 ms, zero over-assignment):")
        say(f"  {'reviewers':>9} {'loops/s':>8} {'next p50':>9} {'next p95':>9} {'next p99':>9} "
            f"{'token p50':>9} {'audio p50':>9} {'submit p50':>10}  vs reference")
        for level, rate, table in summary:
            say(f"  {level:>9} {rate:>8.1f} {table['next']['p50']:>9.1f} {table['next']['p95']:>9.1f} "
                f"{table['next']['p99']:>9.1f} {table['token']['p50']:>9.1f} {table['audio']['p50']:>9.1f} "
                f"{table['submit']['p50']:>10.1f}  {rate / 7:.1f}x loops/s")
        bad = sum(checks.values())
        say(f"  over-assignment: {'none' if bad == 0 else bad}; whole run {time.monotonic() - wall:.0f} s")
        return 0 if bad == 0 and ok else 1
    finally:
        workspace.cleanup()


if __name__ == "__main__":
    sys.exit(main())
