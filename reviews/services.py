"""Use cases: each checks permission, does the work and audits it in one transaction.

Ingest has its own module, ``reviews.ingest``; the queue (next, expiry, revoke) ``reviews.leases``.
"""

import json
import uuid
from typing import NoReturn

from django.db import DEFAULT_DB_ALIAS, connection, transaction
from django.db.models import Case, F, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from . import permissions, quality, quotas
from .audit import audit_record
from .errors import InvalidInput, LeaseExpired, NotFoundDenied, StaleVersion
from .labels import (
    label_rows_annotation,
    label_rows_sql,
    label_schema_attach,
    label_schema_describe,
    label_schema_from_rows,
    labels_normalize,
    labels_validate,
)
from .leases import assignment_end, assignment_revoke, lease_length
from .models import MAX_TEXT, Assignment, Clip, Draft, Escalation, Revision, Transcription
from .prepared import insert_parts, run_sql, saved
from .review import transcription_landed, transcription_review_status
from .segments import segments_validate

MAX_VERSION = 2**31 - 2  # a draft's version + 1 must fit its column (PositiveIntegerField: 2**31 - 1 at most)
MAX_REASON = 500


# --- Assignments ------------------------------------------------------------------

def _require_live(assignment: Assignment, *, reviewer, attempted: str) -> None:
    if not permissions.clip_access_held(reviewer, assignment):
        withdrawn = assignment.status == Assignment.Status.REVOKED
        raise LeaseExpired(
            "This clip was withdrawn from review. Your text is still on the page." if withdrawn else None,
            code="assignment_withdrawn" if withdrawn else None,
            denied={
            "attempted": attempted, "object_type": "assignment", "object_id": str(assignment.pk),
            "reason": "withdrawn" if withdrawn else "lease_ended", "clip_id": assignment.clip_id,
        })


def _postgres() -> bool:
    return connection.vendor == "postgresql"


def _live_refused(reviewer, assignment_id, *, attempted: str) -> NoReturn:
    """A statement found no live lease of the caller's under this id: raise why (the 404 that
    hides someone else's, or the lease's end). Only refusals pay for this second look."""
    assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted=attempted)
    _require_live(assignment, reviewer=reviewer, attempted=attempted)
    raise LeaseExpired(denied={"attempted": attempted, "object_type": "assignment", "object_id": str(assignment.pk),
                               "reason": "lease_ended", "clip_id": assignment.clip_id})  # ended in between


def _touch_sql(reviewer, assignment_id, now) -> tuple[str, list]:
    """Extend the caller's live lease, only if it is theirs, live, on a clip not withheld and
    still granted: the ownership lookup, the access check and the extension in one UPDATE."""
    grant, grant_params = permissions.clip_grant_sql("a.reviewer_id", "a.clip_id")
    # %s::timestamptz: as a prepared statement's parameter, a bare one would be taken for an interval.
    return (f"UPDATE reviews_assignment AS a "  # noqa: S608  # nosec B608
            f"SET lease_expires_at = %s::timestamptz + make_interval(mins => p.lease_minutes) "
            f"FROM reviews_clip c JOIN reviews_project p ON p.id = c.project_id "
            f"WHERE a.id = %s AND a.reviewer_id = %s AND a.status = %s AND a.lease_expires_at > %s "
            f"AND c.id = a.clip_id AND NOT c.withheld AND {grant} "
            f"RETURNING a.id, a.clip_id, a.lease_expires_at, p.label_schema_id",
            [now, str(assignment_id), reviewer.pk, Assignment.Status.LIVE, now, *grant_params])


def _assignment_live(reviewer, row) -> Assignment:
    """The live assignment a statement returned (id, clip id, lease end)."""
    assignment = Assignment(id=row[0], clip_id=row[1], reviewer_id=reviewer.pk, status=Assignment.Status.LIVE,
                            lease_expires_at=row[2])
    assignment._state.adding, assignment._state.db = False, DEFAULT_DB_ALIAS
    return assignment


def _lease_touch(reviewer, assignment_id, now, *, attempted: str) -> Assignment:
    """Return the caller's live assignment with its lease extended, or raise why not."""
    if not _postgres():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted=attempted,
                                                         for_update=True)
        _require_live(assignment, reviewer=reviewer, attempted=attempted)
        _lease_extend(assignment, now)
        return assignment
    row = None
    if permissions.is_uuid(assignment_id):
        with connection.cursor() as cursor:
            run_sql(cursor, *_touch_sql(reviewer, assignment_id, now))
            row = cursor.fetchone()
    if row is None:
        _live_refused(reviewer, assignment_id, attempted=attempted)
    return _assignment_live(reviewer, row)


def _lease_extend(assignment: Assignment, now) -> None:
    """Activity keeps a lease alive."""
    assignment.lease_expires_at = now + lease_length(assignment)
    Assignment.objects.filter(pk=assignment.pk).update(lease_expires_at=assignment.lease_expires_at)


def assignment_get(*, reviewer, assignment_id) -> Assignment:
    """Return one of the reviewer's own assignments (any status)."""
    return permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="assignment.view")


def _listening_details(listened_ms: int | None) -> dict:
    """The page's report of how long the clip was heard, for the audit event (None: not reported)."""
    return {} if listened_ms is None else {"listened_ms": listened_ms}


def assignment_skip(*, reviewer, assignment_id, reason: str, listened_ms: int | None = None) -> Assignment:
    """Give a clip back with a reason; this reviewer will not be offered it again."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(gettext("Say briefly why you skip (at most 500 characters)."), code="invalid_reason",
                           fields={"reason": gettext("Required, at most 500 characters.")})
    now = timezone.now()
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="assignment.skip",
                                                         for_update=True)
        if assignment.status == Assignment.Status.SKIPPED:
            return assignment
        _require_live(assignment, reviewer=reviewer, attempted="assignment.skip")
        assignment.reason = reason
        assignment_end(assignment, Assignment.Status.SKIPPED, now)
        audit_record(actor=reviewer, action="assignment.skip", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id, details=_listening_details(listened_ms))
    return assignment


# --- Audio ----------------------------------------------------------------------

def audio_token_issue(*, reviewer, assignment_id, session_key: str | None) -> permissions.AudioGrant:
    """Sign a short-lived token for one play, bound to user, session and assignment."""
    now = timezone.now()
    with transaction.atomic():
        assignment = _lease_touch(reviewer, assignment_id, now, attempted="audio.token")
        token = permissions.audio_token_sign(user=reviewer, session_key=session_key,
                                             subject=f"assignment:{assignment.pk}")
        audit_record(actor=reviewer, action="audio.token", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id)
    return permissions.AudioGrant(token=token, lease_expires_at=assignment.lease_expires_at)


def _audio_play_sql(reviewer, assignment_id, nonce: str, now) -> tuple[str, list]:
    """One statement for a play: the caller's live, granted assignment; the token's nonce
    spent (a unique row: a second use, even racing, finds it); the play counted below the
    limit (only with the nonce spent). Returns clip id, audio, spent, count, limit."""
    grant, grant_params = permissions.clip_grant_sql("a.reviewer_id", "a.clip_id")
    limit = quotas.limit_sql("plays_per_clip", reviewer.pk)
    played, played_params = quotas.take_sql((quotas.plays_scope_sql("a.reviewer_id", "a.clip_id"), []), limit,
                                            source="a, spent")
    return (f"WITH a AS (SELECT a.id, a.clip_id, a.reviewer_id, c.audio FROM reviews_assignment a "  # noqa: S608  # nosec B608
            f"JOIN reviews_clip c ON c.id = a.clip_id WHERE a.id = %s AND a.reviewer_id = %s AND a.status = %s "
            f"AND a.lease_expires_at > %s AND NOT c.withheld AND {grant}), "
            f"spent AS (INSERT INTO reviews_audiotokenuse (nonce, used_at) SELECT %s, %s FROM a "
            f"ON CONFLICT (nonce) DO NOTHING RETURNING 1), "
            f"played AS ({played}) "
            f"SELECT a.clip_id, a.audio, (SELECT count(*) FROM spent), (SELECT count FROM played), {limit[0]} FROM a",
            [str(assignment_id), reviewer.pk, Assignment.Status.LIVE, now, *grant_params, nonce, now,
             *played_params, *limit[1]])


def audio_open(*, reviewer, assignment_id, token: str, session_key: str | None) -> Clip:
    """Spend the token, check lease and grant for one fetch, audit it, and return the clip to stream."""
    if _postgres():
        return _audio_open_one_statement(reviewer=reviewer, assignment_id=assignment_id, token=token,
                                         session_key=session_key)
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="audio.play")
        refused = permissions.audio_token_consume(token, user=reviewer, session_key=session_key,
                                                  subject=f"assignment:{assignment.pk}")
        if refused:
            raise NotFoundDenied(object_type="assignment", object_id=assignment.pk, attempted="audio.play",
                                 reason=refused, clip_id=assignment.clip_id)
        if not permissions.clip_access_held(reviewer, assignment):
            raise NotFoundDenied(object_type="assignment", object_id=assignment.pk, attempted="audio.play",
                                 reason="lease_ended", clip_id=assignment.clip_id)
        quotas.play_take(reviewer=reviewer, assignment=assignment)
        audit_record(actor=reviewer, action="audio.play", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id)
    return assignment.clip


def _audio_open_one_statement(*, reviewer, assignment_id, token: str, session_key: str | None) -> Clip:
    now = timezone.now()
    with transaction.atomic():
        canonical = str(uuid.UUID(str(assignment_id))) if permissions.is_uuid(assignment_id) else None
        nonce = permissions.audio_token_nonce(token, user=reviewer, session_key=session_key,
                                              subject=f"assignment:{canonical}")
        row = None
        if nonce is not None and canonical:
            with connection.cursor() as cursor:
                run_sql(cursor, *_audio_play_sql(reviewer, canonical, nonce, now))
                row = cursor.fetchone()
        if row is None or not row[2]:
            # Someone else's assignment answers 404 whatever the token; then why this one may not play.
            assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="audio.play")
            reason = "bad_token" if nonce is None else "token_used" if row else "lease_ended"
            raise NotFoundDenied(object_type="assignment", object_id=assignment.pk, attempted="audio.play",
                                 reason=reason, clip_id=assignment.clip_id)
        clip_id, audio, _, count, limit = row
        if count is None:
            raise quotas.plays_exceeded(limit)
        audit_record(actor=reviewer, action="audio.play", object_type="assignment", object_id=canonical,
                     clip_id=clip_id)
    clip = Clip(id=clip_id, audio=audio)
    clip._state.adding, clip._state.db = False, DEFAULT_DB_ALIAS
    return clip


# --- Drafts and transcriptions -------------------------------------------------------

def _clean_text(text) -> str:
    if not isinstance(text, str):
        raise InvalidInput(gettext("The transcription must be text."), code="invalid_text",
                           fields={"text": gettext("Text.")})
    if len(text) > MAX_TEXT:
        raise InvalidInput(gettext("At most %(count)d characters.") % {"count": MAX_TEXT}, code="invalid_text",
                           fields={"text": gettext("At most %(count)d characters.") % {"count": MAX_TEXT}})
    return text


def _segments_clean(described: dict, segments, clip: Clip) -> list[dict]:
    speakers = (described.get("segments") or {}).get("speakers") or []
    return segments_validate(segments, speakers=speakers, duration_ms=clip.duration_ms)


def draft_save(*, reviewer, assignment_id, text: str, labels, version: int, segments=None) -> Draft:
    """Save a draft if ``version`` is the current one; otherwise refuse with StaleVersion."""
    text = _clean_text(text)
    if not isinstance(version, int) or isinstance(version, bool) or not 0 <= version < MAX_VERSION:
        raise InvalidInput(gettext("A version number is required."), code="invalid_version",
                           fields={"version": gettext("A non-negative integer.")})
    now = timezone.now()
    if _postgres() and not segments:  # segments are checked against the clip's length first (ORM path)
        return _draft_save_one_statement(reviewer=reviewer, assignment_id=assignment_id, text=text, labels=labels,
                                         version=version, now=now)
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="draft.save",
                                                         for_update=True)
        _require_live(assignment, reviewer=reviewer, attempted="draft.save")
        described = label_schema_describe(assignment.clip.project.label_schema)
        clean = labels_validate(described, labels, complete=False)
        parts = _segments_clean(described, segments, assignment.clip)
        draft, _ = Draft.objects.get_or_create(assignment=assignment)
        updated = Draft.objects.filter(pk=draft.pk, version=version).update(
            text=text, labels=clean, segments=parts, version=version + 1, updated_at=now
        )
        if not updated:
            raise StaleVersion()
        Revision.objects.create(assignment=assignment, version=version + 1, kind=Revision.Kind.DRAFT, text=text,
                                labels=clean, segments=parts, created_at=now)
        _lease_extend(assignment, now)
        audit_record(actor=reviewer, action="draft.save", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id, details={"version": version + 1})
    draft.text, draft.labels, draft.segments, draft.version = text, clean, parts, version + 1
    return draft


def _draft_save_one_statement(*, reviewer, assignment_id, text: str, labels, version: int, now) -> Draft:
    """draft_save on PostgreSQL: lease check and extension, the draft's compare-and-set on its
    version, its revision and the schema to check the labels against, in one statement."""
    clean = labels_normalize(labels)
    touch, touch_params = _touch_sql(reviewer, assignment_id, now) if permissions.is_uuid(assignment_id) else ("", [])
    row = None
    with transaction.atomic():
        if touch:
            with connection.cursor() as cursor:
                run_sql(cursor,
                    f"WITH a AS ({touch}), "  # noqa: S608  # nosec B608
                    # A first save (version 0) creates the draft; a later one must find it at its version.
                    f"d AS (INSERT INTO reviews_draft (assignment_id, text, labels, segments, version, updated_at) "
                    f"SELECT a.id, %s, %s::jsonb, '[]'::jsonb, %s, %s FROM a WHERE %s = 0 OR EXISTS "
                    f"(SELECT 1 FROM reviews_draft x WHERE x.assignment_id = a.id) "
                    f"ON CONFLICT (assignment_id) DO UPDATE SET text = EXCLUDED.text, labels = EXCLUDED.labels, "
                    f"segments = EXCLUDED.segments, version = EXCLUDED.version, updated_at = EXCLUDED.updated_at "
                    f"WHERE reviews_draft.version = %s RETURNING id), "
                    f"r AS (INSERT INTO reviews_revision (assignment_id, version, kind, text, labels, segments, "
                    f"created_at) SELECT a.id, %s, %s, %s, %s::jsonb, '[]'::jsonb, %s FROM a, d RETURNING id) "
                    f"SELECT a.id, a.clip_id, a.lease_expires_at, (SELECT id FROM d), (SELECT count(*) FROM r), "
                    f"{label_rows_sql('a.label_schema_id')}, (SELECT name FROM reviews_labelschema "
                    f"WHERE id = a.label_schema_id) FROM a",
                    [*touch_params, text, json.dumps(clean), version + 1, now, version, version,
                     version + 1, Revision.Kind.DRAFT, text, json.dumps(clean), now])
                row = cursor.fetchone()
        if row is None:
            _live_refused(reviewer, assignment_id, attempted="draft.save")
        assignment = _assignment_live(reviewer, row)
        # Refusing here rolls the write back: the labels are checked as before, only later.
        labels_validate(label_schema_from_rows(row[6], row[5] or []), labels, complete=False)
        if row[3] is None:
            raise StaleVersion()
        audit_record(actor=reviewer, action="draft.save", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id, details={"version": version + 1})
    draft = Draft(id=row[3], assignment=assignment, text=text, labels=clean, segments=[], version=version + 1,
                  updated_at=now)
    draft._state.adding, draft._state.db = False, DEFAULT_DB_ALIAS
    return draft


def _submission_land(assignment: Assignment, transcription: Transcription, *, reviewer, text: str, clean: dict,
                     parts: list, per_clip: int, now) -> None:
    """On PostgreSQL in one statement: the transcription row, the submit revision (after the
    last one, read under the assignment's lock), the assignment ended and its grant gone, the
    clip counted (done when this was the last transcription it asked for: a conditional
    UPDATE, whose row lock is the one a read-then-write needed) and the reviewer's day counted."""
    into, values, insert_params = insert_parts(transcription)
    revoke, revoke_params = permissions.clip_access_revoke_sql(user_id=reviewer.pk, clip_id=assignment.clip_id)
    counted, counted_params = quotas.submission_count_sql(reviewer=reviewer, now=now)
    with connection.cursor() as cursor:
        run_sql(cursor,
            f"WITH landed AS (INSERT INTO {into} VALUES ({values}) RETURNING id), "  # noqa: S608  # nosec B608
            "rev AS (INSERT INTO reviews_revision (assignment_id, version, kind, text, labels, segments, "
            "created_at) SELECT %s, COALESCE(MAX(version), 0) + 1, %s, %s, %s::jsonb, %s::jsonb, %s "
            "FROM reviews_revision "
            "WHERE assignment_id = %s RETURNING id), "
            "ended AS (UPDATE reviews_assignment SET status = %s, ended_at = %s WHERE id = %s RETURNING id), "
            f"revoked AS ({revoke}), "
            "clip AS (UPDATE reviews_clip SET transcriptions_done = transcriptions_done + 1, status = CASE "
            "WHEN status = %s AND NOT is_gold AND transcriptions_done >= %s THEN %s ELSE status END "
            "WHERE id = %s RETURNING id), "
            f"counted AS ({counted}) "
            "SELECT (SELECT id FROM landed), (SELECT count(*) FROM rev), (SELECT count(*) FROM ended), "
            "(SELECT count(*) FROM revoked), (SELECT count(*) FROM clip), (SELECT count(*) FROM counted)",
            [*insert_params, str(assignment.pk), Revision.Kind.SUBMIT, text, json.dumps(clean), json.dumps(parts), now,
             str(assignment.pk), Assignment.Status.SUBMITTED, now, str(assignment.pk), *revoke_params,
             Clip.Status.OPEN, per_clip - 1, Clip.Status.DONE, str(assignment.clip_id), *counted_params])
        saved(transcription, cursor.fetchone()[0])
    assignment.status, assignment.ended_at = Assignment.Status.SUBMITTED, now


# The assignment a submit locks, with its grant and label schema (compiled once, prepared.py).
_submit_assignment = permissions.assignment_query(
    lambda queryset, **values: permissions.clip_grant_held_annotate(queryset, **values)
    .annotate(label_rows=label_rows_annotation()), for_update=True)


def transcription_submit(*, reviewer, assignment_id, text: str, labels, segments=None,
                         listened_ms: int | None = None) -> tuple[Transcription, bool]:
    """Record the reviewer's transcription once; a retried submit returns the same one."""
    text = _clean_text(text).strip()
    now = timezone.now()
    postgres = _postgres()
    # The grant and the label schema come with the locked assignment (their rows change only
    # with the assignment's status, which the lock reads fresh).
    # On PostgreSQL only: SQLite stores a UUID as 32 hex digits, so the annotation's cast never
    # matches the grant's hyphenated object_pk there (the demo's every submit was refused).
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="transcription.submit",
                                                         for_update=True,
                                                         query=_submit_assignment if postgres else None)
        if assignment.status == Assignment.Status.SUBMITTED:
            return assignment.transcription, False
        _require_live(assignment, reviewer=reviewer, attempted="transcription.submit")
        schema = assignment.clip.project.label_schema
        if postgres:
            label_schema_attach(schema, assignment.label_rows)
        described = label_schema_describe(schema)
        clean = labels_validate(described, labels, complete=True)
        parts = _segments_clean(described, segments, assignment.clip)
        if not text and not clean and not parts:
            raise InvalidInput(gettext("Type what you hear, or choose labels that say why you cannot."),
                               code="empty_transcription", fields={"text": gettext("Required.")})
        transcription = Transcription(
            assignment=assignment, clip=assignment.clip, reviewer=reviewer, text=text, labels=clean,
            segments=parts, submitted_at=now,
            review_status=transcription_review_status(project=assignment.clip.project, clip=assignment.clip),
            **quality.submission_scores(clip=assignment.clip, text=text, labels=clean),  # issue 11: WER, gold
        )
        per_clip = assignment.clip.project.transcriptions_per_clip
        if postgres:
            _submission_land(assignment, transcription, reviewer=reviewer, text=text, clean=clean, parts=parts,
                             per_clip=per_clip, now=now)
        else:
            transcription.save(force_insert=True)
            last = Revision.objects.filter(assignment=assignment).order_by("-version").values_list("version",
                                                                                                    flat=True)
            Revision.objects.create(assignment=assignment, version=(last.first() or 0) + 1,
                                    kind=Revision.Kind.SUBMIT, text=text, labels=clean, segments=parts,
                                    created_at=now)
            assignment_end(assignment, Assignment.Status.SUBMITTED, now)
            # One conditional UPDATE (the row lock it takes is the one a read-then-write needed):
            # the clip is done when this was the last transcription it asked for.
            Clip.objects.filter(pk=assignment.clip_id).update(
                transcriptions_done=F("transcriptions_done") + 1,
                status=Case(When(status=Clip.Status.OPEN, is_gold=False, transcriptions_done__gte=per_clip - 1,
                                 then=Value(Clip.Status.DONE)), default=F("status")),
            )
            quotas.submission_count(reviewer=reviewer, now=now)
        transcription_landed(clip_id=assignment.clip_id, per_clip=per_clip)  # agreement once the last lands
        audit_record(actor=reviewer, action="transcription.submit", object_type="assignment",
                     object_id=assignment.pk, clip_id=assignment.clip_id, details=_listening_details(listened_ms))
        if assignment.clip.is_gold:  # issue 11: a gold result may pause the reviewer on this project
            quality.reviewer_pause_check(reviewer=reviewer, project=assignment.clip.project, now=now)
    return transcription, True


def clip_flag(*, reviewer, assignment_id, reason: str) -> Escalation:
    """Pull a distressing clip from every queue at once and escalate it to the supervisors."""
    reason = (reason or "").strip()
    if not reason or len(reason) > MAX_REASON:
        raise InvalidInput(gettext("Say briefly what made this clip distressing (at most 500 characters)."),
                           code="invalid_reason", fields={"reason": gettext("Required, at most 500 characters.")})
    now = timezone.now()
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="clip.flag",
                                                         for_update=True)
        if assignment.status == Assignment.Status.FLAGGED:
            return assignment.escalation
        _require_live(assignment, reviewer=reviewer, attempted="clip.flag")
        clip = Clip.objects.select_for_update().get(pk=assignment.clip_id)
        clip.status = Clip.Status.FLAGGED
        clip.save(update_fields=["status"])
        assignment.reason = reason
        assignment_end(assignment, Assignment.Status.FLAGGED, now)
        # Everyone else hearing this clip loses it now, not when their lease runs out.
        others = list(
            Assignment.objects.select_for_update().select_related("clip", "reviewer")
            .filter(clip=clip, status=Assignment.Status.LIVE).exclude(pk=assignment.pk)
        )
        for other in others:
            assignment_revoke(other, now)
        escalation = Escalation.objects.create(clip=clip, assignment=assignment, flagged_by=reviewer, reason=reason,
                                               created_at=now)
        quotas.flag_count(reviewer=reviewer, now=now)
        audit_record(actor=reviewer, action="clip.flag", object_type="assignment", object_id=assignment.pk,
                     clip_id=clip.pk, details={"escalation": escalation.pk, "revoked_leases": len(others)})
    return escalation


def reviewer_progress(*, reviewer) -> dict:
    """Today's progress against quota, for the workspace header."""
    return quotas.progress(reviewer=reviewer, now=timezone.now())
