"""Scale: next-clip and audio-open latency with 1 million clips and 10 million audit
events, against the same operations on an (almost) empty database, in one run.

    .venv/bin/python tests/bench/scale.py                          # 1M clips, 10M events (long: fills first)
    .venv/bin/python tests/bench/scale.py --clips 100000 --events 1000000 --rounds 4   # quicker

One throwaway PostgreSQL (fsync off) holds two databases: "empty" (the bench project
with a few thousand open clips and nothing else) and "full" (the same, plus --clips
clips in all, of which --open are still open and the rest done, each done clip with its
submitted assignment, transcription, revision and play counter, plus --events audit
events filled with COPY by tests/bench/audit_scale.py). The full database's bulk audit
rows carry a synthetic hash chain (see audit_scale.py), so the chain is not verified here.

Each database gets its own gunicorn; one reviewer does sequential loops (next -> token ->
audio -> submit) on each, alternating in rounds so both see the same machine load; the
ratio full/empty per operation is the figure. Then the SQL of one loop is timed in
process on each database and the plans of the slowest statements are printed.
"""

import argparse
import io
import json
import os
import random
import subprocess
import sys
import time
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import OPS, say  # noqa: E402

# --- Child: prepare or explain one database (runs with that database's environment) --------

def copy_rows(cursor, table: str, columns: list[str], rows) -> None:
    buffer = io.StringIO()
    buffer.writelines("\t".join(row) + "\n" for row in rows)
    buffer.seek(0)
    cursor.copy_expert(f"COPY {table} ({', '.join(columns)}) FROM STDIN", buffer)


def fill_done_clips(*, project_id: int, count: int, bench_reviewer_id: int, audio: str, peaks: list) -> None:
    """COPY ``count`` done clips, each with a submitted assignment, its transcription, its
    submit revision and its play counter; 10% also have a skipped assignment of someone else."""
    from django.contrib.auth import get_user_model
    from django.db import connection

    reviewers = list(get_user_model().objects.filter(username__startswith="reviewer").values_list("pk", flat=True))
    rng = random.Random(8)
    now = datetime.now(dt_timezone.utc)
    start = now - timedelta(days=90)
    peaks_text = json.dumps(peaks)
    labels = '{"speaker": ["adult"]}'
    chunk = 100_000
    with connection.cursor() as django_cursor:
        cursor = django_cursor.cursor
        for offset in range(0, count, chunk):
            clips, assignments, transcriptions, revisions, counters = [], [], [], [], []
            for n in range(offset, min(count, offset + chunk)):
                clip = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                at = start + timedelta(seconds=90 * 86400 * n / count)
                at_text = at.isoformat()
                reviewer = bench_reviewer_id if rng.random() < 0.02 else rng.choice(reviewers)
                clips.append((clip, str(project_id), uuid.uuid4().hex * 2, at.date().isoformat(), "en-US", "3000",
                              audio, peaks_text, "done", "f", "1", "1", at_text))
                assignment = str(uuid.UUID(int=rng.getrandbits(128), version=4))
                done = (at + timedelta(minutes=3)).isoformat()
                assignments.append((assignment, clip, str(reviewer), "submitted", at_text,
                                    (at + timedelta(minutes=10)).isoformat(), done, ""))
                transcriptions.append((assignment, clip, str(reviewer), "turn on the lights", labels, done))
                revisions.append((assignment, "1", "submit", "turn on the lights", labels, done))
                counters.append((f"user:{reviewer}:clip:{clip}:plays", "2"))
                if rng.random() < 0.1:
                    other = rng.choice(reviewers)
                    if other != reviewer:
                        assignments.append((str(uuid.uuid4()), clip, str(other), "skipped", at_text,
                                            (at + timedelta(minutes=10)).isoformat(), at_text, "noise"))
            copy_rows(cursor, "reviews_clip", ["id", "project_id", "subject_key", "recorded_on", "locale",
                                               "duration_ms", "audio", "peaks", "status", "withheld",
                                               "slots_taken", "transcriptions_done", "ingested_at"], clips)
            copy_rows(cursor, "reviews_assignment", ["id", "clip_id", "reviewer_id", "status", "leased_at",
                                                     "lease_expires_at", "ended_at", "reason"], assignments)
            copy_rows(cursor, "reviews_transcription", ["assignment_id", "clip_id", "reviewer_id", "text", "labels",
                                                        "submitted_at"], transcriptions)
            copy_rows(cursor, "reviews_revision", ["assignment_id", "version", "kind", "text", "labels",
                                                   "created_at"], revisions)
            copy_rows(cursor, "reviews_quotacounter", ["scope", "count"], counters)
            say(f"  {min(count, offset + chunk):>9,} done clips copied")


def child_prepare(kind: str, clips: int, open_clips: int, events: int, empty_clips: int) -> None:
    harness.django_setup(dict(os.environ))
    from django.contrib.auth import get_user_model
    from django.db import connection

    from reviews.models import Clip

    started = time.monotonic()
    if kind == "empty":
        harness.world_create(reviewers=2, clips=empty_clips)
    else:
        import audit_scale  # the 10M-event COPY filler of issue 5 (imported, not copied)

        audit_scale.users_ensure()
        harness.world_create(reviewers=2, clips=open_clips)
        source = Clip.objects.exclude(audio="").order_by("ingested_at").first()
        fill_done_clips(project_id=source.project_id, count=clips - open_clips,
                        bench_reviewer_id=get_user_model().objects.get(username="bench001").pk,
                        audio=source.audio.name, peaks=source.peaks)
        say(f"  clips and their history: {time.monotonic() - started:.0f} s; now {events:,} audit events")
        # audit_scale's rows come first in time; our few real events (ingest) stay at the end of
        # the id order only if they are added after it, so it fills an empty table.
        from reviews.models import AuditEvent

        present = AuditEvent.objects.count()
        if present:
            with connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = replica")  # bench-only: past the append-only trigger
                cursor.execute("DELETE FROM reviews_auditevent")
                cursor.execute("SET session_replication_role = DEFAULT")
        audit_scale.fill(events)
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")
    say(f"  {kind}: prepared in {time.monotonic() - started:.0f} s")


def child_explain(kind: str, top: int) -> None:
    harness.django_setup(dict(os.environ))
    from django.contrib.auth import get_user_model
    from django.db import connection

    reviewer = get_user_model().objects.get(username="bench001")
    for _ in range(5):  # warm caches and the connection
        harness.service_loop_queries(reviewer)
    runs = [harness.service_loop_queries(reviewer) for _ in range(5)]
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reviews_clip")
        clips = cursor.fetchone()[0]
        cursor.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'reviews_auditevent'")
        events = cursor.fetchone()[0]
    say(f"\n##### {kind} database: {clips:,} clips, ~{events:,} audit events")
    for op in ("next", "audio"):
        steps = runs[-1][op]
        totals = sorted(sum(t for _, t in run[op]) * 1000 for run in runs)
        say(f"\n-- {op}: {len(steps)} statements; SQL time per call (5 calls, ms): "
            + ", ".join(f"{t:.1f}" for t in totals))
        # Rank statements by their median over the five calls (one call alone is noisy here).
        same = [run[op] for run in runs if len(run[op]) == len(steps)]
        medians = [harness.median([run[i][1] for run in same]) for i in range(len(steps))]
        ranked = sorted(range(len(steps)), key=lambda i: -medians[i])
        queue = [i for i, (sql, _) in enumerate(steps) if 'ORDER BY "reviews_clip"."ingested_at"' in sql]
        chosen = queue + [i for i in ranked if i not in queue and steps[i][0].lstrip().upper().startswith(
            ("SELECT", "UPDATE"))][: top - len(queue)]
        for i in ranked[:5]:
            say(f"   {medians[i] * 1000:6.2f} ms  {' '.join(steps[i][0].split())[:130]}")
        for i in chosen:
            sql, seconds = steps[i][0], medians[i]
            # Plans of reads and conditional updates; an INSERT would append a second event with
            # the same predecessor (the unique prev_hash refuses it), so inserts are only timed.
            if not sql.lstrip().upper().startswith(("SELECT", "UPDATE")):
                say(f"\n--- {seconds * 1000:.1f} ms (not explained): {sql[:200]} ...")
                continue
            say(f"\n--- {seconds * 1000:.1f} ms: {sql[:400]}{' ...' if len(sql) > 400 else ''}")
            try:
                say(harness.explain(sql))
            except Exception as exc:  # noqa: BLE001 - a plan that cannot be taken is reported, not fatal
                say(f"(no plan: {type(exc).__name__}: {exc})")


# --- Orchestrator ----------------------------------------------------------------------------

def child(env: dict, *args: str) -> None:
    subprocess.run([harness.PYTHON, __file__, "--child", *args], env=env, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clips", type=int, default=1_000_000, help="clips in the full database")
    parser.add_argument("--open", type=int, default=50_000, help="of which still open (the queue)")
    parser.add_argument("--events", type=int, default=10_000_000, help="audit events in the full database")
    parser.add_argument("--rounds", type=int, default=8, help="alternating rounds")
    parser.add_argument("--loops", type=int, default=40, help="loops per database per round")
    parser.add_argument("--explain-top", type=int, default=3, help="statements explained per operation")
    parser.add_argument("--empty-clips", type=int, default=0,
                        help="open clips in the empty database (default: just enough for the run)")
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        if args.child[0] == "prepare":
            child_prepare(args.child[1], args.clips, args.open, args.events, args.empty_clips)
        else:
            child_explain(args.child[1], args.explain_top)
        return 0

    args.empty_clips = args.empty_clips or args.rounds * args.loops + 100
    workspace = harness.Workspace("scale", keep=args.keep)
    try:
        wall = time.monotonic()
        pg = workspace.postgres({"max_wal_size": "4GB", "checkpoint_timeout": "30min"})
        pg.createdb("annotator_full")
        envs = {"empty": workspace.app_env(pg.url("annotator")),
                "full": workspace.app_env(pg.url("annotator_full"))}
        envs["full"]["MEDIA_ROOT"] = envs["empty"]["MEDIA_ROOT"]
        for kind in ("empty", "full"):
            harness.app_prepare(envs[kind])
        say(f"Preparing: empty ({args.empty_clips:,} open clips, enough for the run) and full "
            f"({args.clips:,} clips, {args.open:,} open, "
            f"{args.events:,} audit events); PostgreSQL throwaway, fsync off")
        for kind in ("empty", "full"):
            child(envs[kind], "prepare", kind, "--clips", str(args.clips), "--open", str(args.open),
                  "--events", str(args.events), "--empty-clips", str(args.empty_clips))
        say(f"Prepared in {time.monotonic() - wall:.0f} s")
        servers = {kind: harness.Gunicorn(workspace, envs[kind], workers=2, name=f"gunicorn-{kind}")
                   for kind in ("empty", "full")}
        clients = {kind: harness.clients_login(servers[kind].port, ["bench001"])[0] for kind in servers}
        for kind in servers:  # warm
            harness.load_run([clients[kind]], ["bench001"], seconds=60, max_loops=10)
        logs = {kind: harness.LoopLog() for kind in servers}
        for round_number in range(args.rounds):
            order = ("empty", "full") if round_number % 2 == 0 else ("full", "empty")
            for kind in order:
                harness.load_run([clients[kind]], ["bench001"], seconds=120, max_loops=args.loops, log=logs[kind])
        say(f"\nHTTP, one reviewer, sequential loops, {args.rounds} alternating rounds x {args.loops} loops per "
            f"database (gunicorn 2 sync workers each); ms")
        say(f"  {'op':<7} {'empty p50':>9} {'full p50':>9} {'ratio':>6} {'empty p95':>9} {'full p95':>9} "
            f"{'ratio':>6}  errors")
        verdicts = []
        for op in OPS:
            cells = {}
            for kind in servers:
                ok = [r.answer.seconds * 1000 for r in logs[kind].records
                      if r.op == op and r.answer.status in (200, 201)]
                bad = sum(1 for r in logs[kind].records if r.op == op and r.answer.status not in (200, 201))
                cells[kind] = (harness.percentile(ok, 50), harness.percentile(ok, 95), bad)
            r50 = cells["full"][0] / cells["empty"][0]
            r95 = cells["full"][1] / cells["empty"][1]
            say(f"  {op:<7} {cells['empty'][0]:>9.1f} {cells['full'][0]:>9.1f} {r50:>6.2f} {cells['empty'][1]:>9.1f} "
                f"{cells['full'][1]:>9.1f} {r95:>6.2f}  {cells['empty'][2]}/{cells['full'][2]}")
            if op in ("next", "audio"):
                verdicts.append((op, r50))
        for op, ratio in verdicts:
            say(f"  target {op}: full/empty p50 {ratio:.2f} {'<= 1.5 OK' if ratio <= 1.5 else '> 1.5 MISSED'}")
        for server in servers.values():
            server.stop()
        for kind in ("empty", "full"):
            child(envs[kind], "explain", kind, "--explain-top", str(args.explain_top))
        say(f"\nWhole run: {time.monotonic() - wall:.0f} s")
        return 0
    finally:
        workspace.cleanup()


if __name__ == "__main__":
    sys.exit(main())
