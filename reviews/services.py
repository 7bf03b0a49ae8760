"""Use cases: each checks permission, does the work and audits it in one transaction.

Ingest has its own module, ``reviews.ingest``.
"""

import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Case, Exists, F, OuterRef, Value, When
from django.utils import timezone
from django.utils.translation import gettext

from . import permissions, quality, quotas
from .audit import audit_record
from .errors import InvalidInput, LeaseExpired, NotFoundDenied, StaleVersion
from .models import Assignment, Clip, Draft, Escalation, Label, LabelGroup, LabelSchema, Review, Revision, Transcription
from .review import transcription_landed, transcription_review_status

MAX_TEXT = 5000
MAX_REASON = 500


# --- Labels ---------------------------------------------------------------------

def label_schema_describe(schema: LabelSchema) -> dict:
    """Describe a schema for the page and the API, numbering labels for the shortcut keys."""
    # One query: groups left-joined to their labels (a group without labels still shows).
    rows = (LabelGroup.objects.filter(schema=schema)
            .values_list("id", "key", "name", "kind", "required", "labels__key", "labels__name")
            .order_by("position", "id", "labels__position", "labels__id"))
    groups, by_id, number = [], {}, 0
    for group_id, key, name, kind, required, label_key, label_name in rows:
        group = by_id.get(group_id)
        if group is None:
            group = by_id[group_id] = {"key": key, "name": name, "kind": kind, "required": required, "labels": []}
            groups.append(group)
        if label_key is not None:
            number += 1
            group["labels"].append({"key": label_key, "name": label_name,
                                    "shortcut": number if number <= 9 else None})
    return {"name": schema.name, "groups": groups}


def label_schema_create(*, name: str, groups: list[tuple]) -> LabelSchema:
    """Create a label schema from ``[(key, name, kind, required, [(label_key, label_name), ...]), ...]``.

    The one builder the demo seed, the tests and the benchmarks share."""
    schema = LabelSchema.objects.create(name=name)
    for position, (key, group_name, kind, required, labels) in enumerate(groups):
        group = LabelGroup.objects.create(schema=schema, key=key, name=group_name, kind=kind, required=required,
                                          position=position)
        Label.objects.bulk_create([Label(group=group, key=label_key, name=label_name, position=label_position)
                                   for label_position, (label_key, label_name) in enumerate(labels)])
    return schema


def labels_validate(schema: dict, labels, *, complete: bool) -> dict:
    """Check labels ({group_key: [label_key, ...]}) against a described schema."""
    if labels in (None, ""):
        labels = {}
    if not isinstance(labels, dict):
        raise InvalidInput(gettext("Labels must map group keys to lists of label keys."), code="invalid_labels")
    groups = {g["key"]: g for g in schema["groups"]}
    clean, errors = {}, {}
    for group_key, chosen in labels.items():
        group = groups.get(group_key)
        if group is None:
            errors[str(group_key)[:50]] = gettext("Unknown label group.")
            continue
        if isinstance(chosen, str):
            chosen = [chosen]
        if not isinstance(chosen, list) or not all(isinstance(c, str) for c in chosen):
            errors[group_key] = gettext("A list of label keys.")
            continue
        allowed = {label["key"] for label in group["labels"]}
        unknown = [c for c in chosen if c not in allowed]
        if unknown:
            errors[group_key] = gettext("Unknown label.")
        elif group["kind"] == "single" and len(set(chosen)) > 1:
            errors[group_key] = gettext("Choose one.")
        elif chosen:
            clean[group_key] = sorted(set(chosen))
    if complete:
        for group in schema["groups"]:
            if group["required"] and not clean.get(group["key"]) and group["key"] not in errors:
                errors[group["key"]] = gettext("Required.")
    if errors:
        raise InvalidInput(gettext("Some labels are not valid."), code="invalid_labels", fields=errors)
    return clean


# --- Assignments ------------------------------------------------------------------

def _lease_length(assignment_or_project) -> timedelta:
    project = getattr(assignment_or_project, "clip", None)
    project = project.project if project else assignment_or_project
    return timedelta(minutes=project.lease_minutes)


def _assignment_end(assignment: Assignment, status: str, now) -> None:
    """Close a live assignment: the grant goes and, unless submitted, the slot returns."""
    assignment.status = status
    assignment.ended_at = now
    assignment.save(update_fields=["status", "ended_at", "reason"])
    if status != Assignment.Status.SUBMITTED:
        Clip.objects.filter(pk=assignment.clip_id, slots_taken__gt=0).update(slots_taken=F("slots_taken") - 1)
    permissions.clip_access_revoke(user_id=assignment.reviewer_id, clip_id=assignment.clip_id)


def assignment_revoke(assignment: Assignment, now) -> None:
    """End someone's live lease because the clip was withdrawn (flag, opt-out, erasure, retention)."""
    _assignment_end(assignment, Assignment.Status.REVOKED, now)


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
            _assignment_end(assignment, Assignment.Status.EXPIRED, now)
        # The trail's append lock is taken last, after every clip row this sweep updates: a
        # sweep that held it while waiting for a clip locked by a lease in flight (which waits
        # for the same lock to audit its lease) would deadlock with it.
        for assignment in expired:
            audit_record(actor=None, actor_name="system", action="assignment.expire", object_type="assignment",
                         object_id=assignment.pk, clip_id=assignment.clip_id,
                         details={"reviewer_id": assignment.reviewer_id})
            count += 1
    return count


def _lease_candidate_pick(candidates) -> Clip | None:
    """Lock the first eligible clip that no other lease in flight has locked.

    While every eligible clip is locked by leases in flight (one may still have a free
    slot), look again after a few milliseconds, up to LEASE_WAIT_SECONDS, rather than call
    the queue empty. Never wait on a row lock: an ordered scan that waits on rows, in
    transactions that hold rows a failed compare-and-set left locked, deadlocked 50 racing
    reviewers (1 run in 8 of tests/test_queue_concurrency.py)."""
    deadline = time.monotonic() + settings.LEASE_WAIT_SECONDS
    while True:
        clip = candidates.select_for_update(skip_locked=True, of=("self",)).first()
        if clip is not None or time.monotonic() >= deadline or not candidates.exists():
            return clip
        time.sleep(random.uniform(0.005, 0.02))  # noqa: S311 - jitter, not a secret


def assignment_next(*, reviewer, another: bool = False) -> Assignment | None:
    """Return the reviewer's live assignment, or lease the oldest eligible clip to them.

    With ``another`` a further clip is leased while the reviewer's live-assignment
    quota allows it.
    """
    now = timezone.now()
    if lease_sweep_due(now):
        lease_sweep(now=now)
    with transaction.atomic():
        # One "next" at a time per reviewer: two tabs cannot lease two clips at once.
        get_user_model().objects.select_for_update().filter(pk=reviewer.pk).first()
        live = list(
            Assignment.objects.select_related("clip", "clip__project", "clip__project__label_schema", "draft")
            .filter(reviewer=reviewer, status=Assignment.Status.LIVE, lease_expires_at__gt=now)
            .order_by("leased_at")
        )
        if live and not another:
            audit_record(actor=reviewer, action="assignment.lease", object_type="assignment",
                         object_id=live[0].pk, clip_id=live[0].clip_id, details={"resumed": True})
            return live[0]
        held = Assignment.objects.filter(clip=OuterRef("pk"), reviewer=reviewer, status__in=Assignment.HOLDING)
        # Nor a clip they checked or adjudicated as a checker (one grant per person and clip).
        checked = Review.objects.filter(clip=OuterRef("pk"), checker=reviewer)
        candidates = (
            Clip.objects.select_related("project", "project__label_schema")
            .defer("peaks")  # the waveform is not needed to lease; it would make the scan heavy
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
        for _attempt in range(5):
            clip = _lease_candidate_pick(candidates)
            if clip is None:
                quality.pause_refuse(reviewer)  # issue 11: a paused reviewer is told why
                return None
            clip = quality.gold_pick(reviewer=reviewer, clip=clip) or clip  # issue 11: gold at the project's rate
            # Compare-and-set: correct on its own where row locks do not exist (SQLite).
            claimed = Clip.objects.filter(pk=clip.pk, status=Clip.Status.OPEN, withheld=False,
                                          slots_taken=clip.slots_taken).update(
                slots_taken=clip.slots_taken + 1
            )
            if claimed:
                break
        else:
            return None
        quotas.lease_take(reviewer=reviewer, project=clip.project, now=now, live_count=len(live))
        assignment = Assignment.objects.create(
            clip=clip, reviewer=reviewer, leased_at=now, lease_expires_at=now + _lease_length(clip.project)
        )
        Assignment.draft.related.set_cached_value(assignment, None)  # a new lease has no draft: no lookup
        permissions.clip_access_grant(reviewer, clip)
        audit_record(actor=reviewer, action="assignment.lease", object_type="assignment", object_id=assignment.pk,
                     clip_id=clip.pk)
        return assignment


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


def _lease_extend(assignment: Assignment, now) -> None:
    """Activity keeps a lease alive."""
    assignment.lease_expires_at = now + _lease_length(assignment)
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
        _assignment_end(assignment, Assignment.Status.SKIPPED, now)
        audit_record(actor=reviewer, action="assignment.skip", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id, details=_listening_details(listened_ms))
    return assignment


# --- Audio ----------------------------------------------------------------------

@dataclass(frozen=True)
class AudioGrant:
    token: str
    lease_expires_at: datetime


def audio_token_issue(*, reviewer, assignment_id, session_key: str | None) -> AudioGrant:
    """Sign a short-lived token for one play, bound to user, session and assignment."""
    now = timezone.now()
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="audio.token",
                                                         for_update=True)
        _require_live(assignment, reviewer=reviewer, attempted="audio.token")
        _lease_extend(assignment, now)
        token = permissions.audio_token_sign(user=reviewer, session_key=session_key,
                                             subject=f"assignment:{assignment.pk}")
        audit_record(actor=reviewer, action="audio.token", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id)
    return AudioGrant(token=token, lease_expires_at=assignment.lease_expires_at)


def audio_open(*, reviewer, assignment_id, token: str, session_key: str | None) -> Clip:
    """Spend the token, check lease and grant for one fetch, audit it, and return the clip to stream."""
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


# --- Drafts and transcriptions -------------------------------------------------------

def _clean_text(text) -> str:
    if not isinstance(text, str):
        raise InvalidInput(gettext("The transcription must be text."), code="invalid_text",
                           fields={"text": gettext("Text.")})
    if len(text) > MAX_TEXT:
        raise InvalidInput(gettext("At most %(count)d characters.") % {"count": MAX_TEXT}, code="invalid_text",
                           fields={"text": gettext("At most %(count)d characters.") % {"count": MAX_TEXT}})
    return text


def draft_save(*, reviewer, assignment_id, text: str, labels, version: int) -> Draft:
    """Save a draft if ``version`` is the current one; otherwise refuse with StaleVersion."""
    text = _clean_text(text)
    if not isinstance(version, int) or isinstance(version, bool) or version < 0:
        raise InvalidInput(gettext("A version number is required."), code="invalid_version",
                           fields={"version": gettext("A non-negative integer.")})
    now = timezone.now()
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="draft.save",
                                                         for_update=True)
        _require_live(assignment, reviewer=reviewer, attempted="draft.save")
        clean = labels_validate(label_schema_describe(assignment.clip.project.label_schema), labels, complete=False)
        draft, _ = Draft.objects.get_or_create(assignment=assignment)
        updated = Draft.objects.filter(pk=draft.pk, version=version).update(
            text=text, labels=clean, version=version + 1, updated_at=now
        )
        if not updated:
            raise StaleVersion()
        Revision.objects.create(assignment=assignment, version=version + 1, kind=Revision.Kind.DRAFT, text=text,
                                labels=clean, created_at=now)
        _lease_extend(assignment, now)
        audit_record(actor=reviewer, action="draft.save", object_type="assignment", object_id=assignment.pk,
                     clip_id=assignment.clip_id, details={"version": version + 1})
    draft.text, draft.labels, draft.version = text, clean, version + 1
    return draft


def transcription_submit(*, reviewer, assignment_id, text: str, labels,
                         listened_ms: int | None = None) -> tuple[Transcription, bool]:
    """Record the reviewer's transcription once; a retried submit returns the same one."""
    text = _clean_text(text).strip()
    now = timezone.now()
    with transaction.atomic():
        assignment = permissions.assignment_for_reviewer(reviewer, assignment_id, attempted="transcription.submit",
                                                         for_update=True)
        if assignment.status == Assignment.Status.SUBMITTED:
            return assignment.transcription, False
        _require_live(assignment, reviewer=reviewer, attempted="transcription.submit")
        clean = labels_validate(label_schema_describe(assignment.clip.project.label_schema), labels, complete=True)
        if not text and not clean:
            raise InvalidInput(gettext("Type what you hear, or choose labels that say why you cannot."),
                               code="empty_transcription", fields={"text": gettext("Required.")})
        transcription = Transcription.objects.create(
            assignment=assignment, clip=assignment.clip, reviewer=reviewer, text=text, labels=clean,
            submitted_at=now,
            review_status=transcription_review_status(project=assignment.clip.project, clip=assignment.clip),
            **quality.submission_scores(clip=assignment.clip, text=text, labels=clean),  # issue 11: WER, gold
        )
        last = Revision.objects.filter(assignment=assignment).order_by("-version").values_list("version", flat=True)
        Revision.objects.create(assignment=assignment, version=(last.first() or 0) + 1, kind=Revision.Kind.SUBMIT,
                                text=text, labels=clean, created_at=now)
        _assignment_end(assignment, Assignment.Status.SUBMITTED, now)
        # One conditional UPDATE (the row lock it takes is the one a read-then-write needed):
        # the clip is done when this was the last transcription it asked for.
        per_clip = assignment.clip.project.transcriptions_per_clip
        Clip.objects.filter(pk=assignment.clip_id).update(
            transcriptions_done=F("transcriptions_done") + 1,
            status=Case(When(status=Clip.Status.OPEN, is_gold=False, transcriptions_done__gte=per_clip - 1,
                             then=Value(Clip.Status.DONE)), default=F("status")),
        )
        transcription_landed(clip_id=assignment.clip_id, per_clip=per_clip)  # agreement once the last lands
        quotas.submission_count(reviewer=reviewer, now=now)
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
        _assignment_end(assignment, Assignment.Status.FLAGGED, now)
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
