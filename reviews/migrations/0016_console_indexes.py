"""Indexes for the supervisor console's anomalies at scale (tests/bench/audit_scale.py, docs/console.md).

Measured at 10 million audit events: the anomaly finders each read a subset of the last week,
and without these every subset meant reading the whole week's heap (~360 MB).

- ``audit_fetch_idx``: the week's allowed audio fetches, covering what the repeated-fetch rule
  groups by (actor, name, clip), so that grouping is an index-only scan.
- ``audit_listened_idx``: submits and skips by the listening time the page reported, so the
  long-listening rule reads only the reports above its floor instead of every submit; with
  ``audit_listened_stats`` (statistics on that expression), without which the planner guesses a
  third of the rows match and scans the week instead (275 ms -> 0.7 ms).
- ``audit_skip_idx`` and ``audit_lease_idx``: the week's skips, and every lease by clip, covering
  what the quick-skip rule pairs (skip -> its assignment's lease, through the clip), so that
  pairing is index-only (556 ms -> 56 ms).
- The audit table is append-only: autovacuum would wait for 20 % new rows (2 million at 10
  million) before marking pages all-visible, and until then an index-only scan still reads the
  heap. Vacuuming it every 100,000 inserts keeps the recent week all-visible, cheaply (a vacuum of
  an append-only table skips the pages already all-visible).

PostgreSQL only (the SQLite demo has neither partial covering indexes nor these settings), and
CONCURRENTLY, so that building them on a live trail does not block the audit appends (every
action's transaction) for the minutes it takes.
"""
from django.db import migrations

FORWARD = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_fetch_idx ON reviews_auditevent (at) "
    "INCLUDE (actor_id, actor_name, clip_id) "
    "WHERE action = 'audio.play' AND outcome = 'allowed' AND object_type = 'assignment'",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_listened_idx ON reviews_auditevent "
    "((details -> 'listened_ms'), at) "
    "WHERE action IN ('transcription.submit', 'assignment.skip') AND outcome = 'allowed'",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_skip_idx ON reviews_auditevent (at) "
    "INCLUDE (id, actor_id, actor_name, clip_id, object_id) "
    "WHERE action = 'assignment.skip' AND outcome = 'allowed'",
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS audit_lease_idx ON reviews_auditevent (clip_id, at) "
    "INCLUDE (id, object_id) WHERE action = 'assignment.lease' AND outcome = 'allowed'",
    "CREATE STATISTICS IF NOT EXISTS audit_listened_stats ON ((details -> 'listened_ms')) FROM reviews_auditevent",
    "ALTER TABLE reviews_auditevent SET (autovacuum_vacuum_insert_threshold = 100000, "
    "autovacuum_vacuum_insert_scale_factor = 0)",
    "ANALYZE reviews_auditevent",
]
BACKWARD = [
    "ALTER TABLE reviews_auditevent RESET (autovacuum_vacuum_insert_threshold, "
    "autovacuum_vacuum_insert_scale_factor)",
    "DROP STATISTICS IF EXISTS audit_listened_stats",
    "DROP INDEX CONCURRENTLY IF EXISTS audit_lease_idx",
    "DROP INDEX CONCURRENTLY IF EXISTS audit_skip_idx",
    "DROP INDEX CONCURRENTLY IF EXISTS audit_listened_idx",
    "DROP INDEX CONCURRENTLY IF EXISTS audit_fetch_idx",
]


def run(statements):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement, params=None)
    return apply


class Migration(migrations.Migration):
    atomic = False  # CREATE INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [("reviews", "0014_review_agreement")]
    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
