"""The queue: who gets which clip next (assignment_next), and how leases end (expiry, revoke).

One "next" at a time per reviewer (their row lock); the clip's slot is a compare-and-set and
the guardian grant comes with it; quotas are taken under the same lock.
"""

import random
import time
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Exists, F, OuterRef, QuerySet
from django.utils import timezone

from . import permissions, quality, quotas
from .audit import audit_record
from .labels import label_rows_annotation, label_rows_sql, label_schema_attach
from .models import Assignment, Clip, Review
from .prepared import Prepared, insert_parts, run_sql, saved


def lease_length(assignment_or_project) -> timedelta:
    project = getattr(assignment_or_project, "clip", None)
    project = project.project if project else assignment_or_project
    return timedelta(minutes=project.lease_minutes)


def assignment_end(assignment: Assignment, status: str, now) -> None:
    """Close a live assignment: the grant goes and, unless submitted, the slot returns."""
    assignment.status = status
    assignment.ended_at = now
    assignment.save(update_fields=["status", "ended_at", "reason"])
    if status != Assignment.Status.SUBMITTED:
        Clip.objects.filter(pk=assignment.clip_id, slots_taken__gt=0).update(slots_taken=F("slots_taken") - 1)
    permissions.clip_access_revoke(user_id=assignment.reviewer_id, clip_id=assignment.clip_id)


def assignment_revoke(assignment: Assignment, now) -> None:
    """End someone's live lease because the clip was withdrawn (flag, opt-out, erasure, retention)."""
    assignment_end(assignment, Assignment.Status.REVOKED, now)


_last_sweep_at: datetime | None = None


def lease_sweep_due(now) -> bool:
    """Whether "next" should sweep now: at most once per LEASE_SWEEP_INTERVAL_SECONDS per process,
    since a sweep costs a locked scan and expire_leases (cron) sweeps as well."""
    global _last_sweep_at
    interval = timedelta(seconds=settings.LEASE_SWEEP_INTERVAL_SECONDS)
    if _last_sweep_at is not None and _last_sweep_at <= now < _last_sweep_at + interval:
        return False
    _last_sweep_at = now
    return True


def lease_sweep(*, now=None) -> int:
    """Expire overdue leases so their clips return to the queue. Returns how many."""
    now = now or timezone.now()
    count = 0
    with transaction.atomic():
        overdue = (
            Assignment.objects.select_for_update(skip_locked=True, of=("self",))
            .select_related("clip", "reviewer")
            .filter(status=Assignment.Status.LIVE, lease_expires_at__lte=now)
            .order_by("lease_expires_at")[: settings.LEASE_SWEEP_BATCH]
        )
        expired = list(overdue)
        for assignment in expired:
            assignment_end(assignment, Assignment.Status.EXPIRED, now)
        # The trail's append lock is taken last, after every clip row this sweep updates: a
        # sweep that held it while waiting for a clip locked by a lease in flight (which waits
        # for the same lock to audit its lease) would deadlock with it.
        for assignment in expired:
            audit_record(actor=None, actor_name="system", action="assignment.expire", object_type="assignment",
                         object_id=assignment.pk, clip_id=assignment.clip_id,
                         details={"reviewer_id": assignment.reviewer_id})
            count += 1
    return count


def _lease_candidates(reviewer) -> QuerySet:
    """The clips the reviewer may lease next, oldest first."""
    held = Assignment.objects.filter(clip=OuterRef("pk"), reviewer=reviewer, status__in=Assignment.HOLDING)
    # Nor a clip they checked or adjudicated as a checker (one grant per person and clip).
    checked = Review.objects.filter(clip=OuterRef("pk"), checker=reviewer)
    return (
        Clip.objects.select_related("project", "project__label_schema")
        .defer("peaks", "spectrogram")  # not needed to lease; they would make the scan heavy
        .filter(project__members=reviewer, status=Clip.Status.OPEN, withheld=False,
                slots_taken__lt=F("project__transcriptions_per_clip"))
        .exclude(Exists(held))
        .exclude(Exists(checked))
        # Issue 11: gold clips come only through quality.gold_pick; none on a project
        # where the reviewer is paused.
        .filter(is_gold=False).exclude(quality.paused_here(reviewer))
        .annotate(gold_waiting=quality.gold_waiting(reviewer))
        .order_by("ingested_at", "id")
    )


# The first candidate that no lease in flight has locked: compiled once per connection
# (prepared.py), since Django rebuilding this query was a quarter of a lease's CPU.
_lease_candidate_first = Prepared(
    Clip, lambda reviewer_id: _lease_candidates(get_user_model()(pk=reviewer_id))
    .select_for_update(skip_locked=True, of=("self",))[:1],
    reviewer_id=-2_000_000_001,
)


def _lease_candidate_pick(reviewer) -> Clip | None:
    """Lock the first eligible clip that no other lease in flight has locked.

    While every eligible clip is locked by leases in flight (one may still have a free
    slot), look again after a few milliseconds, up to LEASE_WAIT_SECONDS, rather than call
    the queue empty. Never wait on a row lock: an ordered scan that waits on rows, in
    transactions that hold rows a failed compare-and-set left locked, deadlocked 50 racing
    reviewers (1 run in 8 of tests/test_queue_concurrency.py)."""
    deadline = time.monotonic() + settings.LEASE_WAIT_SECONDS
    while True:
        found = _lease_candidate_first.run(reviewer_id=reviewer.pk)
        if found or time.monotonic() >= deadline or not _lease_candidates(reviewer).exists():
            return found[0] if found else None
        time.sleep(random.uniform(0.005, 0.02))  # noqa: S311 - jitter, not a secret


def _clip_claim_and_grant(reviewer, clip: Clip, assignment: Assignment) -> bool:
    """Take a slot of the clip (compare-and-set), grant it to the reviewer and insert their
    ``assignment`` in one statement, which also brings what the answer shows: the waveform the
    candidate scan left out and the label schema. Nothing happens when the slot is gone."""
    grant, grant_params = permissions.clip_access_grant_sql("%s", "claimed.id", "claimed")
    into, values, insert_params = insert_parts(assignment)
    with connection.cursor() as cursor:
        run_sql(cursor,
            "WITH claimed AS (UPDATE reviews_clip SET slots_taken = %s WHERE id = %s AND status = %s "  # noqa: S608  # nosec B608
            "AND NOT withheld AND slots_taken = %s RETURNING id, peaks, spectrogram), "
            f"granted AS ({grant}), "
            f"leased AS (INSERT INTO {into} SELECT {values} FROM claimed RETURNING 1) "
            f"SELECT claimed.peaks, {label_rows_sql('%s')}, (SELECT count(*) FROM granted), claimed.spectrogram, "
            "(SELECT count(*) FROM leased) FROM claimed",
            [clip.slots_taken + 1, str(clip.pk), Clip.Status.OPEN, clip.slots_taken, *grant_params, reviewer.pk,
             *insert_params, clip.project.label_schema_id])
        row = cursor.fetchone()
    if row is None:
        return False
    saved(assignment)
    clip.slots_taken += 1
    clip.peaks = Clip._meta.get_field("peaks").from_db_value(row[0], None, connection)  # jsonb comes as text
    clip.spectrogram = Clip._meta.get_field("spectrogram").from_db_value(row[3], None, connection)
    label_schema_attach(clip.project.label_schema, row[1])
    return True


def _audio_grant(reviewer, assignment: Assignment, session_key: str | None) -> dict:
    return permissions.lease_audio_grant(assignment, user=reviewer, session_key=session_key,
                                         subject=f"assignment:{assignment.pk}")


def assignment_next(*, reviewer, another: bool = False, session_key: str | None = None) -> Assignment | None:
    """Return the reviewer's live assignment, or lease the oldest eligible clip to them.

    With ``another`` a further clip is leased while the reviewer's live-assignment
    quota allows it. With the caller's ``session_key`` the answer carries the first audio
    token (``audio_grant``), audited on the lease's event.
    """
    now = timezone.now()
    if lease_sweep_due(now):
        lease_sweep(now=now)
    postgres = connection.vendor == "postgresql"
    with transaction.atomic():
        # One "next" at a time per reviewer: two tabs cannot lease two clips at once.
        get_user_model().objects.select_for_update().filter(pk=reviewer.pk).values_list("pk", flat=True).first()
        # Read after the lock (a statement of its own: one that took the lock would read from
        # a snapshot taken before it): the day's limits and counts, and the live leases.
        facts, live_ids = quotas.day_facts(reviewer=reviewer, now=now, also=(
            "ARRAY(SELECT id FROM reviews_assignment WHERE reviewer_id = %s AND status = %s "
            "AND lease_expires_at > %s ORDER BY leased_at)", [reviewer.pk, Assignment.Status.LIVE, now],
        ) if postgres else None)
        if not postgres:
            live_ids = list(Assignment.objects.filter(reviewer=reviewer, status=Assignment.Status.LIVE,
                                                      lease_expires_at__gt=now)
                            .order_by("leased_at").values_list("pk", flat=True))
        if live_ids and not another:
            resumed = Assignment.objects.select_related("clip", "clip__project", "clip__project__label_schema",
                                                        "draft")
            if postgres:
                resumed = resumed.annotate(label_rows=label_rows_annotation())
            resumed = resumed.get(pk=live_ids[0])
            if postgres:
                label_schema_attach(resumed.clip.project.label_schema, resumed.label_rows)
            audit_record(actor=reviewer, action="assignment.lease", object_type="assignment",
                         object_id=resumed.pk, clip_id=resumed.clip_id,
                         details={"resumed": True, **_audio_grant(reviewer, resumed, session_key)})
            return resumed
        for _attempt in range(5):
            clip = _lease_candidate_pick(reviewer)
            if clip is None:
                quality.pause_refuse(reviewer)  # issue 11: a paused reviewer is told why
                return None
            clip = quality.gold_pick(reviewer=reviewer, clip=clip) or clip  # issue 11: gold at the project's rate
            assignment = Assignment(clip=clip, reviewer=reviewer, leased_at=now,
                                    lease_expires_at=now + lease_length(clip.project))
            if postgres and _clip_claim_and_grant(reviewer, clip, assignment):
                break
            # Compare-and-set: correct on its own where row locks do not exist (SQLite).
            claimed = not postgres and Clip.objects.filter(pk=clip.pk, status=Clip.Status.OPEN, withheld=False,
                                                           slots_taken=clip.slots_taken).update(
                slots_taken=clip.slots_taken + 1
            )
            if claimed:
                permissions.clip_access_grant(reviewer, clip)
                break
        else:
            return None
        # A refusal here rolls the claim back with the transaction.
        quotas.lease_take(reviewer=reviewer, project=clip.project, now=now, live_count=len(live_ids), facts=facts)
        if not postgres:
            assignment.save(force_insert=True)  # on PostgreSQL the claim's statement inserted it
        Assignment.draft.related.set_cached_value(assignment, None)  # a new lease has no draft: no lookup
        audit_record(actor=reviewer, action="assignment.lease", object_type="assignment", object_id=assignment.pk,
                     clip_id=clip.pk, details=_audio_grant(reviewer, assignment, session_key))
        return assignment
