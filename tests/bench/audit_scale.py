"""Audit trail at scale: fill N audit events (default 10 million) with COPY and time the
supervisor console's own queries on them, warm, median of several runs.

    make bench-audit                                    # throwaway PostgreSQL, 10 million events
    tests/tools/with_postgres.sh .venv/bin/python tests/bench/audit_scale.py --events 200000

The database in $DATABASE_URL is migrated first. Events are added only to an empty
audit table (an already filled one of about the right size is reused); nothing is
ever deleted. `make bench-audit` fills a throwaway server each time (10 million events:
about 10 minutes on two idle cores); to time again without refilling, point DATABASE_URL
at a server of your own (fsync off is fine: this times reads) and run the script twice.

The bulk rows' hashes are random unique hex linked as a chain (prev_hash = the previous
row's hash) but NOT sealed from the rows' content, and their
key id names no AUDIT_CHAIN_KEY: the chain of bulk rows is synthetic and ``verify_audit``
would reject it.
"""

import argparse
import io
import multiprocessing
import os
import random
import re
import statistics
import sys
import time
import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "annotator.settings")

import django  # noqa: E402

django.setup()

from django.conf import settings  # noqa: E402
from django.contrib.auth import get_user_model  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from reviews import anomalies, supervision  # noqa: E402
from reviews.models import AuditEvent  # noqa: E402

TABLE = AuditEvent._meta.db_table
COLUMNS = ("id", "at", "actor_id", "actor_name", "role", "action", "object_type", "object_id", "clip_id",
           "outcome", "client_ip", "user_agent", "request_id", "details", "prev_hash", "hash", "key_id")
# Every event must name the key that sealed it (a CHECK since migration 0010); no key has this id.
SYNTHETIC_KEY_ID = "bench-synthetic"
DAYS = 90
REVIEWERS = 200
SUPERVISORS = 5
CLIPS_PER_10M = 1_000_000
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
DENIED_PLAY = '{"attempted": "audio.play", "reason": "lease_ended"}'
DENIED_QUOTA = '{"attempted": "quota", "reason": "quota_plays_per_clip"}'
DENIED_OWNER = '{"attempted": "assignment.view", "reason": "not_owner"}'


def say(text: str = "") -> None:
    print(text, flush=True)


# --- Fill --------------------------------------------------------------------------------

def users_ensure() -> tuple[list[tuple[int, str]], list[tuple[int, str]], tuple[int, str]]:
    """Make the bench's reviewers, supervisors and ingest account (idempotent)."""
    User = get_user_model()
    wanted = ([f"reviewer{i:03d}" for i in range(1, REVIEWERS + 1)]
              + [f"supervisor{i}" for i in range(1, SUPERVISORS + 1)] + ["ingest-bench"])
    existing = set(User.objects.filter(username__in=wanted).values_list("username", flat=True))
    User.objects.bulk_create([User(username=name, password="!") for name in wanted if name not in existing])
    ids = dict(User.objects.filter(username__in=wanted).values_list("username", "pk"))
    reviewers = [(ids[f"reviewer{i:03d}"], f"reviewer{i:03d}") for i in range(1, REVIEWERS + 1)]
    supervisors = [(ids[f"supervisor{i}"], f"supervisor{i}") for i in range(1, SUPERVISORS + 1)]
    return reviewers, supervisors, (ids["ingest-bench"], "ingest-bench")


class Generator:
    """Review sessions as they happen: a reviewer leases a clip, fetches its audio (a token, then
    the bytes; mostly once), saves drafts, then submits (mostly), skips, flags or lets the lease
    expire.
    Clips are ingested first; people sign in and out; a few requests are refused."""

    def __init__(self, *, events: int, end: datetime, seed: int = 5):
        self.rng = random.Random(seed)
        self.events = events
        self.end = end.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
        self.start = self.end - timedelta(days=DAYS)
        self.clips = [uuid.UUID(int=self.rng.getrandbits(128), version=4)
                      for _ in range(max(1000, events * CLIPS_PER_10M // 10_000_000))]
        self.next_id = 1
        self.prev_hash = "0" * 64
        self.sample_clip = None
        self.ingested: set[int] = set()

    def day_rows(self, day: int, budget: int, reviewers, supervisors, ingest) -> list[tuple]:
        """Rows of one day (unsorted): (micros_of_day, actor, role, action, object_type, object_id,
        clip, outcome, ip, details)."""
        rng, rows = self.rng, []
        weekend = (self.start + timedelta(days=day)).weekday() >= 5
        working = [r for r in reviewers if rng.random() < (0.25 if weekend else 0.85)]
        while len(rows) < budget:
            reviewer_id, reviewer = rng.choice(working)
            ip = f"10.{reviewer_id % 250}.{reviewer_id // 250 % 250}.{reviewer_id % 7 + 10}"
            # Mostly 08:00-18:00 local, a few sessions late in the evening or early in the morning.
            hour = rng.choice((8, 9, 9, 10, 10, 11, 11, 12, 13, 13, 14, 14, 15, 15, 16, 16, 17, 17)) \
                if rng.random() > 0.02 else rng.choice((5, 6, 21, 22))
            t = hour * 3_600_000_000 + rng.randrange(3_600_000_000)
            clip_index = rng.randrange(len(self.clips))
            clip = self.clips[clip_index]
            if clip_index not in self.ingested:
                self.ingested.add(clip_index)
                rows.append((max(0, t - rng.randrange(3_600_000_000)), ingest, "service", "clip.ingest", "clip",
                             str(clip), clip, "allowed", "10.0.0.2", '{"project": "demo"}'))
            assignment = str(uuid.UUID(int=rng.getrandbits(128), version=4))

            def add(action, outcome="allowed", details="{}", gap=(2, 40)):
                nonlocal t
                t += rng.randrange(gap[0] * 1_000_000, gap[1] * 1_000_000)
                rows.append((t, (reviewer_id, reviewer), "reviewer", action, "assignment", assignment, clip,
                             outcome, ip, details))

            if rng.random() < 0.03:
                rows.append((t, (reviewer_id, reviewer), "reviewer", "auth.login", "user", str(reviewer_id), None,
                             "allowed", ip, "{}"))
            add("assignment.lease")
            # The page fetches once per lease and replays from memory; a reload fetches again, and one
            # session in two thousand keeps reloading (the repeated-fetch anomaly).
            fetches = rng.choice((1,) * 16 + (2, 2, 2, 3)) if rng.random() > 0.0005 else rng.randrange(5, 10)
            for _ in range(fetches):
                add("audio.token", gap=(1, 5))
                add("audio.play", gap=(0, 2))
            for version in range(1, rng.choice((0, 1, 1, 2, 2, 3, 4)) + 1):
                add("draft.save", details=f'{{"version": {version}}}', gap=(3, 30))
            # The page reports its listening time at submit and skip (the long-listening anomaly reads
            # it); one session in a thousand listens for far too long.
            listened = rng.randrange(600_000, 3_000_000) if rng.random() < 0.001 else rng.randrange(1_000, 60_000)
            fate = rng.random()
            if fate < 0.84:
                add("transcription.submit", details=f'{{"listened_ms": {listened}}}')
            elif fate < 0.97:
                add("assignment.skip", details=f'{{"listened_ms": {listened // 4}}}',
                    gap=(1, 20))
            elif fate < 0.975:
                add("clip.flag", details='{"escalation": 1, "revoked_leases": 0}')
            else:
                add("access.denied", "denied", DENIED_PLAY, gap=(600, 900))
                rows.append((t + 1, None, "anonymous", "assignment.expire", "assignment", assignment, clip,
                             "allowed", None, f'{{"reviewer_id": {reviewer_id}}}'))
            if rng.random() < 0.01:
                add("access.denied", "denied", rng.choice((DENIED_QUOTA, DENIED_OWNER)))
            if rng.random() < 0.002:
                rows.append((t, None, "anonymous", "auth.login_failed", "user", str(reviewer_id), None, "denied",
                             ip, '{"known_user": true}'))
            if rng.random() < 0.01:
                supervisor = rng.choice(supervisors)
                rows.append((t, supervisor, "supervisor", "console.clip_history", "clip", str(clip), None,
                             "allowed", "10.1.0.5", "{}"))
            if self.sample_clip is None and day == DAYS // 2:
                self.sample_clip = (clip, reviewer, day)
        return rows

    def day_copy_text(self, day: int, rows: list[tuple]) -> str:
        """Sort a day's rows by time and render them in COPY text format, ids in time order."""
        rows.sort(key=lambda row: row[0])
        # Randomness for every row's hash in one call; each hash is the next row's prev_hash.
        hexes = os.urandom(32 * len(rows)).hex()
        request_ids = os.urandom(16 * len(rows)).hex()
        base = self.start + timedelta(days=day)
        day_text = base.strftime("%Y-%m-%d")
        out = []
        for n, (micros, actor, role, action, object_type, object_id, clip, outcome, ip, details) in enumerate(rows):
            micros = min(micros, 86_399_999_999)
            seconds, fraction = divmod(micros, 1_000_000)
            hours, rest = divmod(seconds, 3600)
            at = f"{day_text} {hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{fraction:06d}+00"
            if actor is None:
                actor_id, actor_name = "\\N", ("system" if action == "assignment.expire" else "reviewerX")
                if action == "auth.login_failed":
                    actor_name = f"reviewer{int(object_id) % REVIEWERS + 1:03d}"
            else:
                actor_id, actor_name = actor
            digest = hexes[64 * n: 64 * n + 64]
            out.append(f"{self.next_id}\t{at}\t{actor_id}\t{actor_name}\t{role}\t{action}\t{object_type}\t"
                       f"{object_id}\t{clip if clip else chr(92) + 'N'}\t{outcome}\t{ip or chr(92) + 'N'}\t"
                       f"{USER_AGENT if actor else ''}\t{request_ids[32 * n: 32 * n + 32]}\t"
                       f"{details}\t{self.prev_hash}\t{digest}\t{SYNTHETIC_KEY_ID}\n")
            self.prev_hash = digest
            self.next_id += 1
        return "".join(out)


def indexes_drop() -> list[str]:
    """Drop the audit table's secondary indexes and unique constraints; return how to rebuild them."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
                       "WHERE conrelid = %s::regclass AND contype = 'u'", [TABLE])
        constraints = cursor.fetchall()
        cursor.execute("SELECT indexname, indexdef FROM pg_indexes WHERE tablename = %s AND indexname NOT IN "
                       "(SELECT conname FROM pg_constraint WHERE conrelid = %s::regclass)", [TABLE, TABLE])
        indexes = cursor.fetchall()
        rebuild = []
        for name, definition in constraints:
            cursor.execute(f'ALTER TABLE {TABLE} DROP CONSTRAINT "{name}"')
            rebuild.append(f'ALTER TABLE {TABLE} ADD CONSTRAINT "{name}" {definition}')
        for name, definition in indexes:
            cursor.execute(f'DROP INDEX "{name}"')
            rebuild.append(definition)
    return rebuild


def _produce(events: int, end: datetime, reviewers, supervisors, ingest, out) -> None:
    """Generate the days' COPY text in a second process (the bench's fill is half Python, half
    PostgreSQL: overlapping them nearly halves it on two cores); the sample last."""
    generator = Generator(events=events, end=end)
    per_day = events // DAYS
    for day in range(DAYS):
        budget = per_day if day < DAYS - 1 else events - per_day * (DAYS - 1)
        rows = generator.day_rows(day, budget, reviewers, supervisors, ingest)
        out.put((day, generator.day_copy_text(day, rows), generator.next_id - 1))
    clip, reviewer, day = generator.sample_clip
    out.put((None, {"clip": clip, "reviewer": reviewer, "day": (generator.start + timedelta(days=day)).date()},
             generator.next_id - 1))


def fill(events: int) -> dict:
    reviewers, supervisors, ingest = users_ensure()
    columns = ", ".join(COLUMNS)
    started = time.perf_counter()
    rebuild = indexes_drop()
    days = multiprocessing.get_context("fork").Queue(maxsize=4)
    producer = multiprocessing.get_context("fork").Process(
        target=_produce, args=(events, datetime.now(dt_timezone.utc), reviewers, supervisors, ingest, days),
        daemon=True)
    connection.close()  # the child must not share (and at exit close) the parent's connection
    producer.start()
    with connection.cursor() as cursor:
        raw = cursor.cursor
        while True:
            day, text, last_id = days.get(timeout=600)
            if day is None:
                sample = text
                break
            raw.copy_expert(f"COPY {TABLE} ({columns}) FROM STDIN", io.StringIO(text))
            if day % 15 == 14:
                say(f"  {last_id:>11,} events after day {day + 1} ({time.perf_counter() - started:.0f} s)")
        producer.join()
        copied = time.perf_counter()
        say(f"COPY of {last_id:,} events: {copied - started:.0f} s; rebuilding {len(rebuild)} indexes")
        cursor.execute("SET maintenance_work_mem = '512MB'")
        for statement in rebuild:
            cursor.execute(statement)
        cursor.execute(f"SELECT setval(pg_get_serial_sequence('{TABLE}', 'id'), %s)", [last_id])
        indexed = time.perf_counter()
        say(f"Indexes: {indexed - copied:.0f} s")
        # As autovacuum does on a live trail (migration 0016 makes it vacuum the audit table every
        # 100,000 inserts): pages all-visible, so the console's covering indexes are read alone.
        cursor.execute(f"VACUUM ANALYZE {TABLE}")
        say(f"VACUUM ANALYZE: {time.perf_counter() - indexed:.0f} s")
    return sample


def sample_existing() -> dict:
    """Pick a reviewer, a day and a clip from an already filled table."""
    middle = AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() // 2
    event = AuditEvent.objects.filter(id__gte=middle, action="audio.play").order_by("id").first()
    return {"clip": event.clip_id, "reviewer": event.actor_name,
            "day": event.at.astimezone(supervision.console_time_zone()).date()}


# --- Measure ----------------------------------------------------------------------------

def backend_cpu_ms() -> float:
    """CPU time so far of this connection's PostgreSQL backend (user + system; the server is on
    this machine), in ms at the kernel's clock-tick resolution (10 ms): read over several runs.
    With the Python side's process time it is the work of a request, whatever the load: on
    shared cores the wall time is that work plus waiting for a core."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        pid = cursor.fetchone()[0]
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")


def timed(label: str, make_rows, runs: int) -> float:
    for _ in range(2):  # warm
        make_rows()
    samples = []
    cpu_started, db_started = time.process_time(), backend_cpu_ms()
    for _ in range(runs):
        started = time.perf_counter()
        count = len(make_rows())
        samples.append((time.perf_counter() - started) * 1000)
    cpu = (time.process_time() - cpu_started) * 1000 / runs
    db_cpu = (backend_cpu_ms() - db_started) / runs
    median = statistics.median(samples)
    say(f"  {label:<58} median {median:8.2f} ms  (min {min(samples):.2f}, max {max(samples):.2f}, "
        f"{count} rows, {runs} runs; CPU per run: Python {cpu:.1f} ms, PostgreSQL {db_cpu:.0f} ms)")
    return median


def pages_time(sample: dict, runs: int) -> dict[str, tuple[float, float, float, int, int]]:
    """Time every console page end to end (middleware, queries, its own audit event, template)
    through Django's test client as a verified supervisor: what a supervisor waits for, less
    the network. Return each page's median wall and Python CPU milliseconds (this process: view,
    template, driver), its PostgreSQL backend's CPU milliseconds (mean), SQL statements and bytes."""
    from django.test import Client
    from django.test.utils import CaptureQueriesContext, override_settings
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from reviews import permissions

    person, _ = get_user_model().objects.get_or_create(username="console-bench")
    permissions.role_group(permissions.SUPERVISOR).user_set.add(person)
    device = (TOTPDevice.objects.filter(user=person, confirmed=True).first()
              or TOTPDevice.objects.create(user=person, name="bench", confirmed=True))
    client = Client(SERVER_NAME="localhost")
    client.force_login(person)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()
    reviewer, day, clip = sample["reviewer"], sample["day"], sample["clip"]
    timeline = f"/console/reviewers/{reviewer}/?day={day}"
    pages = {
        "/console/ (chain status, open escalations)": "/console/",
        "/console/audit/ no filter": "/console/audit/",
        "/console/audit/ one reviewer, one day": f"/console/audit/?reviewer={reviewer}&since={day}&until={day}",
        "/console/audit/ ... its next page (keyset link)": None,
        "/console/audit/ one rare action": "/console/audit/?action=auth.login_failed",
        "/console/clips/<clip>/ clip history": f"/console/clips/{clip}/",
        "/console/reviewers/<name>/?day= timeline": timeline,
        "/console/reviewers/<name>/ ... its next page (keyset link)": None,
        f"/console/anomalies/ (last {settings.ANOMALY_WINDOW_DAYS} days, all kinds)": "/console/anomalies/",
        "/console/anomalies/?kind=play_after_lease (one kind, page 1)": "/console/anomalies/?kind=play_after_lease",
        "/console/anomalies/?kind=quick_skips (one kind, page 1)": "/console/anomalies/?kind=quick_skips",
        "/console/escalations/": "/console/escalations/",
        "/console/quality/ (last 30 days)": "/console/quality/",
        "/api/v1/audit-events/ one reviewer, one day":
            f"/api/v1/audit-events/?reviewer={reviewer}&since={day}&until={day}",
    }
    results = {}
    # Plain static storage: the manifest of the hashed one exists only after collectstatic.
    static = override_settings(STORAGES={**settings.STORAGES, "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}})
    static.enable()
    previous = None
    for label, path in pages.items():
        if path is None:  # the page after the previous one, through its own "next page" link
            html = previous.content.decode()
            if 'id="next-page"' not in html:
                say(f"  {label:<62} no next page: not timed")
                continue
            link = html.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
            path = previous.request["PATH_INFO"] + link if link.startswith("?") else link
        page_runs = max(1, min(3, runs)) if "anomalies" in path else runs
        answer = client.get(path)
        if answer.status_code != 200:
            say(f"  {label:<62} answered {answer.status_code}: not timed")
            continue
        samples, cpu = [], []
        db_started = backend_cpu_ms()
        for _ in range(page_runs):
            started, started_cpu = time.perf_counter(), time.process_time()
            answer = client.get(path)
            samples.append((time.perf_counter() - started) * 1000)
            cpu.append((time.process_time() - started_cpu) * 1000)
        db_cpu = (backend_cpu_ms() - db_started) / page_runs
        with CaptureQueriesContext(connection) as queries:
            client.get(path)
        previous = answer
        results[label] = (statistics.median(samples), statistics.median(cpu), db_cpu, len(queries.captured_queries),
                          len(answer.content))
        say(f"  {label:<62} median {results[label][0]:8.1f} ms  (max {max(samples):.1f}, CPU: Python "
            f"{results[label][1]:.1f} ms, PostgreSQL {db_cpu:.0f} ms; {len(queries.captured_queries)} queries, "
            f"{len(answer.content):,} bytes, {page_runs} runs)")
    static.disable()
    return results


def statements_timed(call) -> list[tuple[str, float]]:
    """Run ``call`` once; return each SQL statement it sent (parameters bound) and its milliseconds."""
    captured = []

    def timer(execute, sql, params, many, context):
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            ms = (time.perf_counter() - started) * 1000
            query = getattr(context["cursor"].cursor, "query", None)
            captured.append((query.decode() if query else sql, ms))

    with connection.execute_wrapper(timer):
        call()
    return captured


def explain(label: str, queryset) -> None:
    say(f"\n--- EXPLAIN (ANALYZE, BUFFERS): {label}")
    say(queryset.explain(analyze=True, buffers=True))


def sizes() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_size_pretty(pg_relation_size(%s::regclass)), "
                       "pg_size_pretty(pg_indexes_size(%s::regclass))", [TABLE, TABLE])
        heap, indexes = cursor.fetchone()
    say(f"Table {TABLE}: heap {heap}, indexes {indexes}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000_000, help="audit events to fill (default 10 million)")
    parser.add_argument("--runs", type=int, default=9, help="timed runs per query (median reported)")
    parser.add_argument("--extra-sql", action="append", default=[], help="SQL run before timing, e.g. an "
                        "index to try (an experiment on the bench database; repeatable)")
    args = parser.parse_args()
    if connection.vendor != "postgresql":
        say("This benchmark needs PostgreSQL: set DATABASE_URL (make bench-audit starts a throwaway server).")
        return 2
    wall = time.perf_counter()
    call_command("migrate", verbosity=0)
    present = AuditEvent.objects.count()
    if present == 0:
        say(f"Filling {args.events:,} audit events ({REVIEWERS} reviewers, "
            f"{max(1000, args.events * CLIPS_PER_10M // 10_000_000):,} clip ids, {DAYS} days) with COPY ...")
        sample = fill(args.events)
    elif present >= args.events * 0.99:
        say(f"Reusing the {present:,} audit events already in the table.")
        sample = sample_existing()
    else:
        say(f"The audit table already holds {present:,} events (fewer than --events); run against an empty "
            "database. Nothing was changed.")
        return 2
    say("NOTE: the hash chain of the bulk rows is synthetic (random unique hex, linked but not content "
        "hashes); only the query timings are meaningful.")
    for statement in args.extra_sql:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            cursor.execute(statement)
        say(f"Experiment: ran before timing ({time.perf_counter() - started:.0f} s): {statement}")
    sizes()
    total = AuditEvent.objects.count()
    reviewer, day, clip = sample["reviewer"], sample["day"], sample["clip"]
    start, end = supervision.day_bounds(day)
    day_filter = supervision.AuditFilters(reviewer=reviewer, since=start, until=end)
    say(f"\nQueries on {total:,} events: reviewer {reviewer}, day {day} ({settings.QUOTA_TIME_ZONE}), "
        f"clip {clip}; warm, median of {args.runs}")

    first_page = lambda: list(supervision.audit_events_query(filters=day_filter))  # noqa: E731
    page = first_page()
    cursor = supervision.audit_cursor_encode(page[min(len(page), supervision.PAGE_SIZE) - 1])
    results = {
        "search, one reviewer, one day, first page": timed(
            "audit search: one reviewer, one day, first page", first_page, args.runs),
        "clip history": timed(
            "clip history", lambda: list(supervision.clip_history_query(clip_id=clip)), args.runs),
    }
    timed("audit search: same filter, second page (keyset)",
          lambda: list(supervision.audit_events_query(filters=day_filter, cursor=cursor)), args.runs)
    timed("audit search: no filter, first page",
          lambda: list(supervision.audit_events_query(filters=supervision.AuditFilters())), args.runs)
    timed("audit search: one reviewer, all time, first page",
          lambda: list(supervision.audit_events_query(filters=supervision.AuditFilters(reviewer=reviewer))),
          args.runs)
    timed("audit search: action auth.login_failed, first page",
          lambda: list(supervision.audit_events_query(
              filters=supervision.AuditFilters(action="auth.login_failed"))), args.runs)
    reviewer_id = get_user_model().objects.get(username=reviewer).pk
    timed("reviewer timeline: the day's first page",
          lambda: list(supervision.reviewer_timeline_query(reviewer_id=reviewer_id, day=day)), args.runs)
    timed("reviewer timeline: plays per clip",
          lambda: list(supervision.reviewer_plays_query(reviewer_id=reviewer_id, day=day)), args.runs)
    anomalies_ms = timed(f"anomalies over the last {settings.ANOMALY_WINDOW_DAYS} days (all seven kinds)",
                         lambda: anomalies.anomalies_find(), max(1, min(3, args.runs)))
    anomaly_statements = statements_timed(anomalies.anomalies_find)
    say(f"  (anomalies: {len(anomaly_statements)} SQL statements, "
        f"{sum(ms for _, ms in anomaly_statements):.0f} ms in the database driver)")

    say("\nConsole pages, end to end (Django test client as a verified supervisor; warm, median):")
    pages = pages_time(sample, args.runs)

    explain("audit search, one reviewer, one day, first page", supervision.audit_events_query(filters=day_filter))
    explain("clip history", supervision.clip_history_query(clip_id=clip))
    explain("audit search, same filter, second page",
            supervision.audit_events_query(filters=day_filter, cursor=cursor))
    day_events = list(supervision.reviewer_timeline_query(reviewer_id=reviewer_id, day=day))
    explain("reviewer timeline, second page (keyset)", supervision.reviewer_timeline_query(
        reviewer_id=reviewer_id, day=day, after=supervision.audit_cursor_encode(day_events[-2])))

    explainable = [(sql, ms) for sql, ms in anomaly_statements if not sql.lstrip().upper().startswith("SET")]
    for sql, ms in sorted(explainable, key=lambda item: -item[1])[:5]:
        # A chunked read runs as a server-side cursor: explain the query itself.
        sql = re.sub(r'^DECLARE "[^"]+" NO SCROLL CURSOR WITHOUT HOLD FOR ', "", sql)
        say(f"\n--- EXPLAIN (ANALYZE, BUFFERS): anomalies statement that took {ms:.1f} ms")
        say(f"    {sql[:400]}{' ...' if len(sql) > 400 else ''}")
        # In the anomalies' own transaction settings (JIT off, their work_mem), as the page runs it.
        with transaction.atomic(), connection.cursor() as cursor:
            anomalies._session_tune()
            cursor.execute("EXPLAIN (ANALYZE, BUFFERS) " + sql)
            say("\n".join(row[0] if len(row[0]) < 300 else row[0][:300] + " ..." for row in cursor.fetchall()))

    say(f"\nTargets at {total:,} events:")
    for label, median in results.items():
        say(f"  {label:<58} {median:8.2f} ms  (< 50 ms) {'OK' if median < 50 else 'MISSED'}")
    say(f"  {'anomalies (the query work)':<58} {anomalies_ms:8.2f} ms  (< 500 ms) "
        f"{'OK' if anomalies_ms < 500 else 'MISSED'}")
    load = " / ".join(f"{value:.1f}" for value in os.getloadavg())
    say(f"\nPages at {total:,} events (load average {load}):\n"
        "| page | events | wall ms (median) | CPU ms: Python + PostgreSQL | queries | bytes | budget (wall) |\n"
        "|---|---|---|---|---|---|---|")
    for label, (median, cpu, db_cpu, queries, size) in pages.items():
        budget = 500 if "anomalies" in label else 200
        say(f"| {label} | {total:,} | {median:.0f} | {cpu:.0f} + {db_cpu:.0f} = {cpu + db_cpu:.0f} | {queries} | "
            f"{size:,} | < {budget} ms "
            f"{'OK' if median < budget else 'MISSED'} |")
    say(f"\nWhole run: {time.perf_counter() - wall:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
