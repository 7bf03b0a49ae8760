"""The one place that decides quota. Limits come from the defaults row and the reviewer's
own overrides, read on every request (a change applies to the next request). Uses are
counted by a conditional UPDATE (``count = count + 1 WHERE count < limit``), never
read-then-write, so concurrent requests cannot pass a limit."""

from dataclasses import dataclass, fields
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from django.conf import settings
from django.db import connection
from django.db.models import F, Subquery
from django.utils.translation import gettext

from .audit import request_id_current
from .errors import QuotaExceeded
from .models import Assignment, QuotaCounter, QuotaDefaults, ReviewerQuota
from .prepared import run_sql


@dataclass(frozen=True)
class Limits:
    clips_per_day: int
    plays_per_clip: int
    live_assignments: int
    flagged_per_day: int
    work_start: time | None
    work_end: time | None


def limits_for(reviewer) -> Limits:
    """Resolve a reviewer's limits: their own value where set, else the default.

    Read afresh on every request (a change applies to the next one), once per request.
    """
    request_id = request_id_current()
    cached = getattr(reviewer, "_quota_limits", None)
    if request_id and cached and cached[0] == request_id:
        return cached[1]
    names = [field.name for field in fields(Limits)]
    own = ReviewerQuota.objects.filter(reviewer=reviewer)
    # One query: the defaults row with the reviewer's own values alongside (NULL where unset).
    row = (QuotaDefaults.objects.order_by("pk")
           .annotate(**{f"own_{name}": Subquery(own.values(name)[:1]) for name in names})
           .values(*names, *(f"own_{name}" for name in names)).first())
    if row is None:  # no defaults row (it is created by a migration): the model's defaults
        defaults = QuotaDefaults()
        row = {name: getattr(defaults, name) for name in names}
        row.update({f"own_{name}": value for name, value in own.values(*names).first().items()}
                   if own.exists() else {})
    limits = Limits(**{name: row[name] if row.get(f"own_{name}") is None else row[f"own_{name}"]
                       for name in names})
    reviewer._quota_limits = (request_id, limits)
    return limits


def limits_for_many(reviewers) -> dict[int, Limits]:
    """Resolve several reviewers' limits in two queries, keyed by user id (views over many people).

    The same rule as ``limits_for``: their own value where set, else the default.
    """
    names = [field.name for field in fields(Limits)]
    defaults = QuotaDefaults.objects.order_by("pk").values(*names).first()
    if defaults is None:  # no defaults row (it is created by a migration): the model's defaults
        model = QuotaDefaults()
        defaults = {name: getattr(model, name) for name in names}
    own = {row.pop("reviewer_id"): row for row in
           ReviewerQuota.objects.filter(reviewer__in=list(reviewers)).values("reviewer_id", *names)}
    return {reviewer.pk: Limits(**{name: defaults[name] if own.get(reviewer.pk, {}).get(name) is None
                                   else own[reviewer.pk][name] for name in names})
            for reviewer in reviewers}


def _zone() -> ZoneInfo:
    return ZoneInfo(settings.QUOTA_TIME_ZONE)


def quota_day(now: datetime) -> date:
    """The quota day of a moment, in the configured time zone."""
    return now.astimezone(_zone()).date()


def next_reset(now: datetime) -> datetime:
    """The next local midnight, when daily quotas start again."""
    local = now.astimezone(_zone())
    return datetime.combine(local.date() + timedelta(days=1), time.min, tzinfo=_zone())


def limit_sql(name: str, reviewer_id: int) -> tuple[str, list]:
    """One of a reviewer's limits as an SQL expression (their own value, else the defaults
    row's, else the model's default): the rule of ``limits_for``, inside a larger statement."""
    default = QuotaDefaults._meta.get_field(name).get_default()
    return (f"COALESCE((SELECT {name} FROM reviews_reviewerquota WHERE reviewer_id = %s), "  # noqa: S608  # nosec B608
            f"(SELECT {name} FROM reviews_quotadefaults ORDER BY id LIMIT 1), %s)", [reviewer_id, default])


def take_sql(scope: str | tuple[str, list], limit: tuple[str, list], day: date | None = None,
             source: str = "") -> tuple[str, list]:
    """Count one use of ``scope`` below ``limit`` (an SQL expression) in one statement, for a
    WITH; it returns the new count, no row when the limit is reached. The upsert waits on a
    concurrent one's row and re-checks the limit on its result: exact under races.
    ``scope`` is a string or an SQL expression; ``source`` names the WITH queries that must
    have a row for the use to count."""
    scope_expression, scope_params = scope if isinstance(scope, tuple) else ("%s", [scope])
    limit_expression, limit_params = limit
    table = QuotaCounter._meta.db_table
    return (f"INSERT INTO {table} (scope, count, day) SELECT {scope_expression}, 1, %s::date "  # nosec B608
            f"{'FROM ' + source if source else ''} WHERE {limit_expression} > 0 "
            f"ON CONFLICT (scope) DO UPDATE SET count = {table}.count + 1 WHERE {table}.count < {limit_expression} "
            f"RETURNING count", [*scope_params, day, *limit_params, *limit_params])


def plays_scope_sql(reviewer_column: str, clip_column: str) -> str:
    """The scope of ``play_take`` as an SQL expression."""
    return f"'user:' || ({reviewer_column})::text || ':clip:' || ({clip_column})::text || ':plays'"


def plays_exceeded(limit: int) -> QuotaExceeded:
    return QuotaExceeded("plays_per_clip", gettext(
        "This clip's audio has been loaded %(count)d times, the most allowed (replaying on the page needs no "
        "new load; reloading the page does).") % {"count": limit}, None)


def submission_count_sql(*, reviewer, now: datetime) -> tuple[str, list]:
    """``submission_count`` as a statement of a WITH."""
    day = quota_day(now)
    return take_sql(_submitted_scope(reviewer, day), ("%s", [2**31 - 1]), day)


def _take(scope: str, limit: int, day: date | None = None) -> bool:
    """Count one use of ``scope`` if it is below ``limit``; say whether it was."""
    if connection.vendor == "postgresql":
        sql, params = take_sql(scope, ("%s", [limit]), day)
        with connection.cursor() as cursor:
            run_sql(cursor, sql, params)
            return cursor.fetchone() is not None
    QuotaCounter.objects.bulk_create([QuotaCounter(scope=scope, day=day)], ignore_conflicts=True)
    return QuotaCounter.objects.filter(scope=scope, count__lt=limit).update(count=F("count") + 1) == 1


def _count(scope: str) -> int:
    return QuotaCounter.objects.filter(scope=scope).values_list("count", flat=True).first() or 0


def _within_hours(limits: Limits, now: datetime) -> tuple[bool, datetime | None]:
    if limits.work_start is None or limits.work_end is None:
        return True, None
    local = now.astimezone(_zone())
    start, end, moment = limits.work_start, limits.work_end, local.time()
    inside = start <= moment < end if start < end else (moment >= start or moment < end)
    if inside:
        return True, None
    opens = datetime.combine(local.date(), start, tzinfo=_zone())
    if opens <= local:
        opens += timedelta(days=1)
    return False, opens


@dataclass(frozen=True)
class DayFacts:
    """What a lease is decided on: the reviewer's limits and today's counts."""

    limits: Limits
    flags_today: int
    submitted_today: int


def day_facts(*, reviewer, now: datetime, also: tuple[str, list] | None = None) -> tuple[DayFacts, object]:
    """Read the reviewer's limits and today's flag and submission counts in one query, with
    ``also`` (an SQL expression the caller needs at the same moment) alongside."""
    day = quota_day(now)
    names = [field.name for field in fields(Limits)]
    columns, params = [], []
    for name in names:
        sql, sql_params = limit_sql(name, reviewer.pk)
        columns.append(sql)
        params += sql_params
    counter = f"(SELECT count FROM {QuotaCounter._meta.db_table} WHERE scope = %s)"  # noqa: S608  # nosec B608
    columns += [counter, counter, also[0] if also else "NULL"]
    params += [f"user:{reviewer.pk}:flags:{day}", _submitted_scope(reviewer, day), *(also[1] if also else [])]
    with connection.cursor() as cursor:
        run_sql(cursor, f"SELECT {', '.join(columns)}", params)
        row = cursor.fetchone()
    limits = Limits(*row[:len(names)])
    facts = DayFacts(limits=limits, flags_today=row[len(names)] or 0, submitted_today=row[len(names) + 1] or 0)
    # The same request's progress reads these instead of asking again.
    reviewer._quota_limits = (request_id_current(), limits)
    reviewer._day_facts = (request_id_current(), day, facts)
    return facts, row[-1]


def lease_take(*, reviewer, project, now: datetime, live_count: int, facts: DayFacts | None = None) -> None:
    """Allow one more lease for this reviewer and project, or raise QuotaExceeded.

    ``facts`` must have been read under the reviewer's row lock (assignment_next holds it)."""
    if facts is None:
        facts, _ = day_facts(reviewer=reviewer, now=now)
    limits = facts.limits
    inside, opens = _within_hours(limits, now)
    if not inside:
        raise QuotaExceeded("outside_working_hours", gettext("Reviewing is open during your working hours only."),
                            opens)
    if live_count >= limits.live_assignments:
        raise QuotaExceeded("live_assignments", gettext("Finish or skip the clip you hold before taking another."),
                            None)
    day = quota_day(now)
    if facts.flags_today >= limits.flagged_per_day:
        raise QuotaExceeded(
            "flagged_per_day",
            gettext("You have flagged several distressing clips today. That is enough for one day: "
                    "please take a break."),
            next_reset(now),
        )
    # The daily number counts submitted clips (a skip or flag does not use up the day), and
    # each live lease holds a place in it so the day can never end with more than the limit.
    # Exact because the caller holds the reviewer's row lock: this reviewer's leases run one
    # at a time, and a submit only moves a clip from "live" to "submitted".
    if facts.submitted_today + live_count >= limits.clips_per_day:
        raise QuotaExceeded("clips_per_day", gettext("You have reached today's number of clips. Thank you!"),
                            next_reset(now))
    if project.daily_clip_limit is not None and not _take(f"project:{project.pk}:clips:{day}",
                                                          project.daily_clip_limit, day):
        raise QuotaExceeded("project_clips_per_day", gettext("This project has reviewed all it may review today."),
                            next_reset(now))


def play_take(*, reviewer, assignment: Assignment) -> None:
    """Allow one more fetch of this clip's audio by this reviewer, or raise QuotaExceeded.

    The page fetches a clip once per lease and replays it from memory, so this limit
    (``plays_per_clip`` in the database) counts downloads: the first one plus reloads.
    """
    limit = limits_for(reviewer).plays_per_clip
    if not _take(f"user:{reviewer.pk}:clip:{assignment.clip_id}:plays", limit):
        raise plays_exceeded(limit)


def escalation_play_take(*, supervisor, escalation) -> None:
    """Allow one more fetch of an escalated clip by this supervisor, or raise QuotaExceeded.

    Supervisors listen to judge what happened, not to keep the clip: the limit is per
    supervisor and escalation, and takes no part in the reviewers' quotas."""
    limit = settings.ESCALATION_PLAYS_PER_SUPERVISOR
    if not _take(f"user:{supervisor.pk}:escalation:{escalation.pk}:plays", limit):
        raise QuotaExceeded("escalation_plays", gettext("You can play an escalated clip at most %(count)d times.")
                            % {"count": limit}, None)


def _submitted_scope(reviewer, day: date) -> str:
    return f"user:{reviewer.pk}:submitted:{day}"


def submission_count(*, reviewer, now: datetime) -> None:
    """Count a submitted clip towards the reviewer's daily number.

    Never refused: the place was held when the clip was leased, and a transcription the
    reviewer has written is not lost because an admin lowered the limit meanwhile.
    """
    day = quota_day(now)
    _take(_submitted_scope(reviewer, day), 2**31 - 1, day)


def flag_count(*, reviewer, now: datetime) -> None:
    """Count a flag towards the reviewer's daily exposure limit."""
    day = quota_day(now)
    _take(f"user:{reviewer.pk}:flags:{day}", 2**31 - 1, day)


def progress(*, reviewer, now: datetime) -> dict:
    """Today's use against the reviewer's daily quota, for the page header."""
    day = quota_day(now)
    cached = getattr(reviewer, "_day_facts", None)
    request_id = request_id_current()
    if request_id and cached and cached[0] == request_id and cached[1] == day:
        clips_today = cached[2].submitted_today  # read by this request's lease, under its lock
    else:
        clips_today = _count(_submitted_scope(reviewer, day))
    return {
        "clips_today": clips_today,
        "clips_per_day": limits_for(reviewer).clips_per_day,
        "resets_at": next_reset(now).isoformat(),
    }


def _reviews_scope(checker, day: date) -> str:
    return f"user:{checker.pk}:reviews:{day}"


def review_lease_take(*, checker, now: datetime, live_count: int) -> None:
    """Allow one more review lease for this checker, or raise QuotaExceeded.

    A checker's day is measured like a reviewer's: working hours, live leases, and decided
    reviews plus live ones against ``clips_per_day``. A project's daily clip limit counts
    clips leased for transcription, so a review takes no part in it."""
    limits = limits_for(checker)
    inside, opens = _within_hours(limits, now)
    if not inside:
        raise QuotaExceeded("outside_working_hours", gettext("Reviewing is open during your working hours only."),
                            opens)
    if live_count >= limits.live_assignments:
        raise QuotaExceeded("live_assignments", gettext("Finish the review you hold before taking another."), None)
    if _count(_reviews_scope(checker, quota_day(now))) + live_count >= limits.clips_per_day:
        raise QuotaExceeded("clips_per_day", gettext("You have reached today's number of clips. Thank you!"),
                            next_reset(now))


def review_count(*, checker, now: datetime) -> None:
    """Count a decided review towards the checker's daily number (never refused, as a submit)."""
    day = quota_day(now)
    _take(_reviews_scope(checker, day), 2**31 - 1, day)
