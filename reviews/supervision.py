"""Supervisor use cases: audit search, clip history, reviewer timelines, anomalies, escalations.

Every figure here is read from the audit trail (never from counters that a crashed
request could leave stale). Every change writes its audit event in the same transaction.
The query builders (``*_query``) are what the console evaluates; the audit-scale
benchmark times them as they are.
"""

import re
import uuid
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Count, Max, Min, Q, QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from django.utils.translation import gettext

from . import permissions, quotas
from .audit import audit_record
from .errors import AudioGone, DomainError, InvalidInput, NotFoundDenied
from .models import AuditEvent, AuditVerification, Clip, Escalation

PAGE_SIZE = 50
MAX_PAGE_SIZE = 200
# A clip's events are shown whole up to these many; beyond, the page says so.
HISTORY_LIMIT = 2000
# A reviewer's day is shown this many events at a time (keyset pages on (at, id), oldest first):
# a busy day holds thousands, and rendering them all took seconds at 10 million events. Its
# plays-per-clip table shows the most played clips first, this many (a busy day plays ~250).
TIMELINE_PAGE_SIZE = 50
TIMELINE_PLAYS_SHOWN = 50
TIMELINE_FAILED_LOGINS = 200
ANOMALY_EVENT_IDS = 100  # event ids an anomaly links to (the search takes at most MAX_EVENT_IDS)
MAX_EVENT_IDS = 200
MAX_ACTION_TAKEN = 2000
ESCALATION_LIST_LIMIT = 200
# For the search form's suggestions; the search accepts any action name.
KNOWN_ACTIONS = (
    "access.denied", "admin.change", "assignment.expire", "assignment.lease", "assignment.skip", "audio.play",
    "audio.token", "audit.chain_keyed", "auth.login", "auth.login_failed", "auth.logout", "auth.mfa", "clip.erase",
    "clip.flag", "clip.ingest", "console.anomalies", "console.clip_history", "console.search", "console.timeline",
    "draft.save", "escalation.close", "escalation.take", "quota.change", "retention.apply", "role.change",
    "subject.access_report", "subject.erase", "subject.opt_in", "subject.opt_out", "subject.rekey",
    "transcription.submit", "transcripts.export",
    # Issue 11, parts 2 and 3: the checkers' second pass.
    "review.accept", "review.adjudicate", "review.expire", "review.lease", "review.reject",
    # Issue 11, parts 1 and 4: gold references, the quality page, pauses.
    "clip.gold", "console.quality", "reviewer.pause", "reviewer.unpause",
)
_ACTION = re.compile(r"^[a-z_.]{1,40}$")
_EPOCH = datetime(1970, 1, 1, tzinfo=dt_timezone.utc)
ALLOWED = AuditEvent.Outcome.ALLOWED
DENIED = AuditEvent.Outcome.DENIED


def console_time_zone() -> ZoneInfo:
    """The zone in which the console shows times and cuts days (the quotas' zone)."""
    return ZoneInfo(settings.QUOTA_TIME_ZONE)


def day_bounds(day: date) -> tuple[datetime, datetime]:
    """Return the first instant of a console day and of the next (DST-safe)."""
    zone = console_time_zone()
    start = datetime.combine(day, time.min, tzinfo=zone)
    end = datetime.combine(day + timedelta(days=1), time.min, tzinfo=zone)
    return start, end


# --- Audit search -------------------------------------------------------------------

@dataclass(frozen=True)
class AuditFilters:
    reviewer: str = ""
    clip_id: uuid.UUID | None = None
    action: str = ""
    outcome: str = ""
    since: datetime | None = None  # inclusive
    until: datetime | None = None  # exclusive
    event_ids: tuple[int, ...] = ()

    def as_params(self) -> dict[str, str]:
        """The filters as query parameters (for next-page links and the audit trail)."""
        params = {
            "reviewer": self.reviewer, "clip": str(self.clip_id) if self.clip_id else "", "action": self.action,
            "outcome": self.outcome, "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            "ids": ",".join(str(i) for i in self.event_ids),
        }
        return {key: value for key, value in params.items() if value}


def _moment_parse(value: str, *, end_of_day: bool) -> datetime | None:
    """Read an ISO date or date-time; a bare date or a zone-less time is in the console's zone."""
    value = value.strip()
    day = parse_date(value) if len(value) == 10 else None
    if day is not None:
        start, end = day_bounds(day)
        return end if end_of_day else start
    try:
        moment = parse_datetime(value)
    except ValueError:
        return None
    if moment is not None and moment.tzinfo is None:
        moment = moment.replace(tzinfo=console_time_zone())
    return moment


def audit_filters_parse(*, params) -> AuditFilters:
    """Check search parameters (reviewer, clip, action, outcome, since, until, ids).

    ``until`` is exclusive; a bare date in it means the end of that day.
    """
    errors: dict[str, str] = {}
    get = lambda key: (params.get(key) or "").strip()  # noqa: E731
    reviewer = get("reviewer")
    if len(reviewer) > 150:
        errors["reviewer"] = "At most 150 characters."
    clip_id = None
    if get("clip"):
        try:
            clip_id = uuid.UUID(get("clip"))
        except ValueError:
            errors["clip"] = gettext("A clip id (UUID).")
    action = get("action")
    if action and not _ACTION.match(action):
        errors["action"] = gettext("An action name such as audio.play.")
    outcome = get("outcome")
    if outcome and outcome not in AuditEvent.Outcome.values:
        errors["outcome"] = gettext("allowed or denied.")
    since = until = None
    if get("since"):
        since = _moment_parse(get("since"), end_of_day=False)
        if since is None:
            errors["since"] = gettext("A date (2026-11-20) or date and time (2026-11-20T08:00).")
    if get("until"):
        until = _moment_parse(get("until"), end_of_day=True)
        if until is None:
            errors["until"] = gettext("A date (2026-11-20) or date and time (2026-11-20T18:00).")
    event_ids: tuple[int, ...] = ()
    if get("ids"):
        parts = [p.strip() for p in get("ids").split(",") if p.strip()]
        if not all(p.isdigit() and len(p) < 19 for p in parts) or len(parts) > MAX_EVENT_IDS:
            errors["ids"] = gettext("Up to %(count)d event ids, separated by commas.") % {"count": MAX_EVENT_IDS}
        else:
            event_ids = tuple(sorted({int(p) for p in parts}))
    if errors:
        raise InvalidInput(gettext("Some search fields are not valid."), code="invalid_filters", fields=errors)
    return AuditFilters(reviewer=reviewer, clip_id=clip_id, action=action, outcome=outcome, since=since,
                        until=until, event_ids=event_ids)


def audit_cursor_encode(event: AuditEvent) -> str:
    """Name the position just after ``event`` in (time, id) order, newest first."""
    delta = event.at - _EPOCH
    micros = (delta.days * 86400 + delta.seconds) * 1_000_000 + delta.microseconds
    return f"{micros}.{event.pk}"


def audit_cursor_decode(cursor: str) -> tuple[datetime, int]:
    try:
        micros, event_id = cursor.split(".")
        return _EPOCH + timedelta(microseconds=int(micros)), int(event_id)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(gettext("This page link is not valid; start the search again."), code="invalid_cursor",
                           fields={"cursor": gettext("Not a page cursor.")}) from exc


def _reviewer_id(username: str) -> int | None:
    return get_user_model().objects.filter(username=username).values_list("pk", flat=True).first()


def audit_events_query(*, filters: AuditFilters, cursor: str | None = None, limit: int = PAGE_SIZE) -> QuerySet:
    """Build one page of the search, newest first: ``limit + 1`` rows (the extra one says
    whether a next page exists). Keyset pagination on (at, id), never OFFSET, so page
    1000 costs what page 1 costs; every filter is served by an index ending in ``at``."""
    events = AuditEvent.objects.all()
    if filters.reviewer:
        reviewer_id = _reviewer_id(filters.reviewer)
        if reviewer_id is None:
            return AuditEvent.objects.none()
        events = events.filter(actor_id=reviewer_id)
    if filters.clip_id:
        events = events.filter(clip_id=filters.clip_id)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.outcome:
        events = events.filter(outcome=filters.outcome)
    if filters.since:
        events = events.filter(at__gte=filters.since)
    if filters.until:
        events = events.filter(at__lt=filters.until)
    if filters.event_ids:
        events = events.filter(pk__in=filters.event_ids)
    if cursor:
        at, event_id = audit_cursor_decode(cursor)
        # at <= cursor bounds the index scan; the OR picks up where the last page stopped.
        events = events.filter(Q(at__lt=at) | Q(at=at, pk__lt=event_id), at__lte=at)
    return events.order_by("-at", "-id")[: max(1, min(limit, MAX_PAGE_SIZE)) + 1]


@dataclass(frozen=True)
class AuditPage:
    events: list[AuditEvent]
    next_cursor: str | None
    filters: AuditFilters


def audit_search(*, supervisor, filters: AuditFilters, cursor: str | None = None,
                 limit: int = PAGE_SIZE) -> AuditPage:
    """Return one page of matching events, newest first; the search itself is audited."""
    limit = max(1, min(limit, MAX_PAGE_SIZE))
    rows = list(audit_events_query(filters=filters, cursor=cursor, limit=limit))
    page, more = rows[:limit], len(rows) > limit
    audit_record(actor=supervisor, action="console.search", object_type="audit",
                 details={**filters.as_params(), "page": "next" if cursor else "first"})
    return AuditPage(events=page, next_cursor=audit_cursor_encode(page[-1]) if more else None, filters=filters)


# --- Clip history ---------------------------------------------------------------------

@dataclass(frozen=True)
class ClipHistory:
    clip_id: uuid.UUID
    clip: Clip | None
    events: list[AuditEvent]
    truncated: bool
    escalations: list[Escalation]


def clip_history_query(*, clip_id: uuid.UUID) -> QuerySet:
    """Every event about one clip, oldest first."""
    return AuditEvent.objects.filter(clip_id=clip_id).order_by("at", "id")[: HISTORY_LIMIT + 1]


def clip_history(*, supervisor, clip_id: uuid.UUID) -> ClipHistory:
    """Who heard this clip, when and how: every lease, play, save, submit and flag, in order."""
    rows = list(clip_history_query(clip_id=clip_id))
    clip = Clip.objects.select_related("project").filter(pk=clip_id).first()
    escalations = list(Escalation.objects.filter(clip_id=clip_id).select_related("flagged_by", "taken_by")
                       .order_by("created_at"))
    # The reading is audited without clip_id: looking at a history is not an event of the clip.
    audit_record(actor=supervisor, action="console.clip_history", object_type="clip", object_id=clip_id)
    return ClipHistory(clip_id=clip_id, clip=clip, events=rows[:HISTORY_LIMIT], truncated=len(rows) > HISTORY_LIMIT,
                       escalations=escalations)


# --- Reviewer timeline -------------------------------------------------------------------

@dataclass(frozen=True)
class ClipPlays:
    clip_id: uuid.UUID
    plays: int
    denied: int
    first_at: datetime
    last_at: datetime


@dataclass(frozen=True)
class Timeline:
    username: str
    reviewer_id: int | None
    day: date
    starts_at: datetime
    ends_at: datetime
    events: list[AuditEvent]  # one page, oldest first
    next_cursor: str | None  # where the next page starts, or None on the last one
    paged: bool  # a later page (not the day's first)
    plays: list[ClipPlays]  # the most played (and refused) clips first, at most TIMELINE_PLAYS_SHOWN
    plays_clips: int  # clips played (or attempted) that day, shown or not
    failed_logins: list[AuditEvent]


def reviewer_timeline_query(*, reviewer_id: int, day: date, after: str | None = None,
                            limit: int = TIMELINE_PAGE_SIZE) -> QuerySet:
    """One page of one reviewer's events of one console day, oldest first: ``limit + 1`` rows
    (the extra one says whether a next page exists). ``after`` is the cursor of the previous
    page's last event; keyset on (at, id) through audit_actor_idx, never OFFSET."""
    start, end = day_bounds(day)
    events = AuditEvent.objects.filter(actor_id=reviewer_id, at__gte=start, at__lt=end)
    if after:
        at, event_id = audit_cursor_decode(after)
        # at >= cursor bounds the index scan; the OR picks up where the last page stopped.
        events = events.filter(Q(at__gt=at) | Q(at=at, pk__gt=event_id), at__gte=at)
    return events.order_by("at", "id")[: limit + 1]


def reviewer_plays_query(*, reviewer_id: int, day: date) -> QuerySet:
    """Plays per clip of one reviewer on one day (allowed plays and refused play attempts)."""
    start, end = day_bounds(day)
    attempted_play = Q(action="audio.play") | Q(action="access.denied", details__attempted="audio.play")
    return (
        AuditEvent.objects.filter(attempted_play, actor_id=reviewer_id, at__gte=start, at__lt=end,
                                  clip_id__isnull=False)
        .values("clip_id")
        .annotate(plays=Count("id", filter=Q(outcome=ALLOWED)), denied=Count("id", filter=Q(outcome=DENIED)),
                  first_at=Min("at"), last_at=Max("at"))
        .order_by("first_at")
    )


def reviewer_timeline(*, supervisor, username: str, day: date, after: str | None = None) -> Timeline:
    """One reviewer's day: one page of events, plays per clip, and failed sign-ins to the account.

    The day's summaries (plays per clip, failed sign-ins) come with its first page only."""
    start, end = day_bounds(day)
    if after:
        audit_cursor_decode(after)  # a bad link is refused before anything is read or audited
    reviewer_id = _reviewer_id(username)
    events, plays, failed, plays_clips = [], [], [], 0
    if reviewer_id is not None:
        events = list(reviewer_timeline_query(reviewer_id=reviewer_id, day=day, after=after))
        if not after:
            plays = [ClipPlays(**row) for row in reviewer_plays_query(reviewer_id=reviewer_id, day=day)]
            plays_clips = len(plays)
            plays = sorted(plays, key=lambda row: (-(row.plays + row.denied), row.first_at))[:TIMELINE_PLAYS_SHOWN]
            # Failed sign-ins have no actor (nobody signed in); they name the account instead.
            failed = list(AuditEvent.objects.filter(action="auth.login_failed", actor_name=username, at__gte=start,
                                                    at__lt=end).order_by("at", "id")[:TIMELINE_FAILED_LOGINS])
    page, more = events[:TIMELINE_PAGE_SIZE], len(events) > TIMELINE_PAGE_SIZE
    audit_record(actor=supervisor, action="console.timeline", object_type="user",
                 object_id=reviewer_id if reviewer_id is not None else "",
                 details={"day": day.isoformat(), **({"page": "next"} if after else {})})
    return Timeline(username=username, reviewer_id=reviewer_id, day=day, starts_at=start, ends_at=end,
                    events=page, next_cursor=audit_cursor_encode(page[-1]) if more else None, paged=bool(after),
                    plays=plays, plays_clips=plays_clips, failed_logins=failed)


# --- Anomalies --------------------------------------------------------------------------

def audit_chain_status() -> AuditVerification | None:
    """The latest run of ``verify_audit``, or None when the chain was never verified."""
    return AuditVerification.objects.order_by("-verified_at", "-id").first()


# --- Escalations -----------------------------------------------------------------------

def escalation_list(*, statuses: tuple[str, ...] = (Escalation.Status.OPEN, Escalation.Status.TAKEN),
                    limit: int = ESCALATION_LIST_LIMIT) -> list[Escalation]:
    """Escalations in these statuses, oldest first (the queue order)."""
    return list(Escalation.objects.select_related("flagged_by", "taken_by").filter(status__in=statuses)
                .order_by("created_at", "id")[:limit])


def escalations_closed_recent(*, limit: int = 20) -> list[Escalation]:
    return list(Escalation.objects.select_related("flagged_by", "taken_by").filter(status=Escalation.Status.CLOSED)
                .order_by("-closed_at", "-id")[:limit])


def escalation_get(*, escalation_id, attempted: str, for_update: bool = False) -> Escalation:
    """Return one escalation, or raise the audited 404."""
    escalations = Escalation.objects.select_related("clip", "flagged_by", "taken_by")
    if for_update:
        escalations = escalations.select_for_update(of=("self",))
    escalation = escalations.filter(pk=escalation_id).first() if str(escalation_id).isdigit() else None
    if escalation is None:
        raise NotFoundDenied(object_type="escalation", object_id=str(escalation_id), attempted=attempted,
                             reason="missing")
    return escalation


def _refuse(escalation: Escalation, *, attempted: str, code: str, detail: str) -> DomainError:
    return DomainError(detail, code=code, status=409, denied={
        "attempted": attempted, "object_type": "escalation", "object_id": str(escalation.pk), "reason": code,
        "clip_id": escalation.clip_id,
    })


def _require_holder(escalation: Escalation, *, supervisor, attempted: str) -> None:
    """Only the supervisor who took an escalation acts on it, and only until it is closed."""
    if escalation.status == Escalation.Status.CLOSED:
        raise _refuse(escalation, attempted=attempted, code="escalation_closed",
                      detail=gettext("This escalation is closed."))
    if escalation.status == Escalation.Status.OPEN:
        raise _refuse(escalation, attempted=attempted, code="escalation_not_taken",
                      detail=gettext("Take this escalation first."))
    if escalation.taken_by_id != supervisor.pk:
        raise _refuse(escalation, attempted=attempted, code="escalation_taken",
                      detail=gettext("%(name)s is handling this escalation.")
                      % {"name": escalation.taken_by.get_username()})


def escalation_take(*, supervisor, escalation_id) -> Escalation:
    """Take an open escalation so that the others see someone is on it; taking it again is a no-op."""
    with transaction.atomic():
        escalation = escalation_get(escalation_id=escalation_id, attempted="escalation.take", for_update=True)
        if escalation.status == Escalation.Status.TAKEN and escalation.taken_by_id == supervisor.pk:
            return escalation
        if escalation.status != Escalation.Status.OPEN:
            _require_holder(escalation, supervisor=supervisor, attempted="escalation.take")  # raises
        escalation.status = Escalation.Status.TAKEN
        escalation.taken_by = supervisor
        escalation.taken_at = timezone.now()
        escalation.save(update_fields=["status", "taken_by", "taken_at"])
        audit_record(actor=supervisor, action="escalation.take", object_type="escalation", object_id=escalation.pk,
                     clip_id=escalation.clip_id)
    return escalation


def escalation_close(*, supervisor, escalation_id, action_taken: str) -> Escalation:
    """Record what was done about an escalation one has taken, and close it."""
    action_taken = (action_taken or "").strip() if isinstance(action_taken, str) else ""
    if not action_taken or len(action_taken) > MAX_ACTION_TAKEN:
        raise InvalidInput(gettext("Say what was done (at most %(count)d characters).") % {"count": MAX_ACTION_TAKEN},
                           code="invalid_action_taken", fields={"action_taken": gettext(
                               "Required, at most %(count)d characters.") % {"count": MAX_ACTION_TAKEN}})
    with transaction.atomic():
        escalation = escalation_get(escalation_id=escalation_id, attempted="escalation.close", for_update=True)
        _require_holder(escalation, supervisor=supervisor, attempted="escalation.close")
        escalation.status = Escalation.Status.CLOSED
        escalation.action_taken = action_taken
        escalation.closed_at = timezone.now()
        escalation.save(update_fields=["status", "action_taken", "closed_at"])
        # The text itself stays on the escalation: free text has no place in the trail.
        audit_record(actor=supervisor, action="escalation.close", object_type="escalation", object_id=escalation.pk,
                     clip_id=escalation.clip_id, details={"action_taken_chars": len(action_taken)})
    return escalation


def escalation_audio_token_issue(*, supervisor, escalation_id, session_key: str | None) -> str:
    """Sign a one-play audio token for the clip of an escalation one holds."""
    with transaction.atomic():
        escalation = escalation_get(escalation_id=escalation_id, attempted="audio.token")
        _require_holder(escalation, supervisor=supervisor, attempted="audio.token")
        token = permissions.audio_token_sign(user=supervisor, session_key=session_key,
                                             subject=f"escalation:{escalation.pk}")
        audit_record(actor=supervisor, action="audio.token", object_type="escalation", object_id=escalation.pk,
                     clip_id=escalation.clip_id)
    return token


def escalation_audio_open(*, supervisor, escalation_id, token: str, session_key: str | None) -> Clip:
    """Check the token and the hold for one play, audit it, and return the clip to stream."""
    with transaction.atomic():
        escalation = escalation_get(escalation_id=escalation_id, attempted="audio.play")
        refused = permissions.audio_token_consume(token, user=supervisor, session_key=session_key,
                                                  subject=f"escalation:{escalation.pk}")
        if refused:
            raise NotFoundDenied(object_type="escalation", object_id=str(escalation.pk), attempted="audio.play",
                                 reason=refused, clip_id=escalation.clip_id)
        _require_holder(escalation, supervisor=supervisor, attempted="audio.play")
        if escalation.clip.status == Clip.Status.PURGED or not escalation.clip.audio:
            raise AudioGone()
        quotas.escalation_play_take(supervisor=supervisor, escalation=escalation)
        audit_record(actor=supervisor, action="audio.play", object_type="escalation", object_id=escalation.pk,
                     clip_id=escalation.clip_id)
    return escalation.clip
