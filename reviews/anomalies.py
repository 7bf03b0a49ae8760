"""Anomalies, computed from the audit trail with the thresholds in settings (ANOMALY_*).

Each anomaly names the events behind it, so the console can link to them.
"""

import math
import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone
from django.utils.translation import gettext, gettext_lazy, ngettext_lazy

from .audit import audit_record
from .errors import InvalidInput
from .models import AuditEvent, Clip
from .quotas import Limits, limits_for, limits_for_many
from .supervision import ALLOWED, ANOMALY_EVENT_IDS, console_time_zone, day_bounds

ANOMALY_KINDS = {
    "repeated_fetches": gettext_lazy("Clip audio fetched again and again"),
    "long_listening": gettext_lazy("Clip listened to far longer than careful work needs"),
    "play_after_lease": gettext_lazy("Play attempted after the lease ended"),
    "denied_attempts": gettext_lazy("Repeated denied attempts"),
    "failed_logins": gettext_lazy("Repeated failed sign-ins"),
    "quick_skips": gettext_lazy("Many clips skipped right after leasing"),
    "off_hours": gettext_lazy("Activity outside working hours"),
}


@dataclass(slots=True)  # not frozen: a busy week builds thousands, and frozen __init__ is 3x slower
class Anomaly:
    kind: str
    message: str  # a key of _MESSAGES
    params: dict  # what its sentence says
    actor_name: str
    count: int
    event_ids: tuple[int, ...]  # the first ANOMALY_EVENT_IDS events behind it
    day: date | None = None
    clip_id: uuid.UUID | None = None
    actor_id: int | None = None

    @property
    def summary(self) -> str:
        return str(_MESSAGES[self.message] % self.params)

    @property
    def title(self) -> str:
        return str(ANOMALY_KINDS[self.kind])

    @property
    def event_ids_param(self) -> str:
        return ",".join(str(i) for i in self.event_ids)


# Each kind's sentence (lazy: the plural picked by the params' "count"), translated only for the
# anomalies a page shows (a busy week at 10 million events holds thousands; translating every
# one was a third of the page's Python time).
_MESSAGES = {
    "repeated_fetches": ngettext_lazy(
        "%(name)s fetched one clip's audio %(count)d time (more than %(limit)d; the page needs one fetch per "
        "lease, replays are free).",
        "%(name)s fetched one clip's audio %(count)d times (more than %(limit)d; the page needs one fetch per "
        "lease, replays are free).", "count"),
    "long_listening": gettext_lazy(
        "%(name)s listened to a %(length).1f s clip for %(listened).0f s (about %(times).0f times its length; "
        "more than %(passes)d times and %(floor)d s)."),
    "play_after_lease": ngettext_lazy(
        "%(name)s tried to play a clip %(count)d time after the lease ended or the clip was withdrawn.",
        "%(name)s tried to play a clip %(count)d times after the lease ended or the clip was withdrawn.",
        "count"),
    "denied_account": ngettext_lazy(
        "%(name)s was refused %(count)d time on %(day)s.",
        "%(name)s was refused %(count)d times on %(day)s.", "count"),
    "denied_address": ngettext_lazy(
        "Requests without sign-in from %(address)s were refused %(count)d time on %(day)s.",
        "Requests without sign-in from %(address)s were refused %(count)d times on %(day)s.", "count"),
    "failed_account": ngettext_lazy(
        "%(count)d failed sign-in to %(name)s's account on %(day)s.",
        "%(count)d failed sign-ins to %(name)s's account on %(day)s.", "count"),
    "failed_address": ngettext_lazy(
        "%(count)d failed sign-in to unknown accounts from %(address)s on %(day)s.",
        "%(count)d failed sign-ins to unknown accounts from %(address)s on %(day)s.", "count"),
    "quick_skips": ngettext_lazy(
        "%(name)s skipped %(count)d clip within %(seconds)d s of leasing it on %(day)s.",
        "%(name)s skipped %(count)d clips within %(seconds)d s of leasing them on %(day)s.", "count"),
    "off_hours": ngettext_lazy(
        "%(name)s was active outside %(start)02d:00-%(end)02d:00 on %(day)s (%(count)d event).",
        "%(name)s was active outside %(start)02d:00-%(end)02d:00 on %(day)s (%(count)d events).", "count"),
}


def _who(actor_name: str, client_ip: str | None = None) -> str:
    if actor_name:
        return actor_name
    if client_ip:
        return gettext("unknown account from %(address)s") % {"address": client_ip}
    return gettext("unknown account")


def fetch_threshold(reviewer, limits: Limits | None = None) -> int:
    """Fetches of one clip above which a reviewer's fetching looks odd.

    The page fetches once per lease and replays from memory; a reload or two fetches again.
    Relative to the reviewer's own fetch quota, and never below 2, so one reload is never odd.
    """
    return max(2, math.ceil((limits or limits_for(reviewer)).plays_per_clip * settings.ANOMALY_FETCH_SHARE))


def _repeated_fetches(window: QuerySet) -> list[Anomaly]:
    fetches = window.filter(action="audio.play", outcome=ALLOWED, object_type="assignment",
                            actor_id__isnull=False)
    # At least two fetches, the floor of every threshold: cheap to group, then each reviewer's own limit.
    # count(*), not count(id): every column read is in audit_fetch_idx (migration 0016), so a week of
    # fetches is an index-only scan instead of reading the week's whole heap.
    # Grouped by (actor id, clip) only, the names taken from the accounts: hashing the name too made
    # the grouping of a week's ~145,000 fetches (10 million events) a fifth slower.
    groups = list(fetches.values("actor_id", "clip_id").annotate(count=Count("*"))
                  .filter(count__gt=2).order_by("-count", "actor_id", "clip_id"))
    people = get_user_model().objects.in_bulk({g["actor_id"] for g in groups})
    for g in groups:
        g["actor_name"] = people[g["actor_id"]].get_username()
    # Everyone's limits in two queries, not one per group (a busy week has thousands) nor per person
    # (200 people were 300 ms of building the same query).
    quota = limits_for_many(people.values())
    limits = {actor_id: fetch_threshold(person, quota[actor_id]) for actor_id, person in people.items()}
    flagged = [(g, limits.get(g["actor_id"], 2)) for g in groups if g["count"] > limits.get(g["actor_id"], 2)]
    # The events behind all flagged groups in a few queries through the clip index, not one query
    # per group (at 10 million events, thousands of round trips were most of the page's time).
    event_ids: dict[tuple, list[int]] = defaultdict(list)
    clip_ids = sorted({g["clip_id"] for g, _ in flagged})
    for start in range(0, len(clip_ids), 1000):
        for event_id, actor_id, clip_id in (fetches.filter(clip_id__in=clip_ids[start:start + 1000])
                                            .values_list("id", "actor_id", "clip_id")):
            event_ids[(actor_id, clip_id)].append(event_id)
    return [
        Anomaly(kind="repeated_fetches", actor_name=g["actor_name"], actor_id=g["actor_id"], clip_id=g["clip_id"],
                count=g["count"],
                message="repeated_fetches", params={"name": g["actor_name"], "count": g["count"], "limit": limit},
                event_ids=tuple(sorted(event_ids[(g["actor_id"], g["clip_id"])])[:ANOMALY_EVENT_IDS]))
        for g, limit in flagged
    ]


def _long_listening(window: QuerySet) -> list[Anomaly]:
    passes, floor_ms = settings.ANOMALY_LISTEN_PASSES, settings.ANOMALY_LISTEN_MIN_SECONDS * 1000
    # Only reports above the floor leave the database (every submit and skip carries one: a week of
    # them is ~100,000 rows); the exact rule, per clip length, is checked below.
    reports = list(window.filter(action__in=["transcription.submit", "assignment.skip"], outcome=ALLOWED,
                                 actor_id__isnull=False, details__listened_ms__gt=floor_ms)
                   .values_list("id", "actor_id", "actor_name", "clip_id", "details"))
    durations = dict(Clip.objects.filter(pk__in={r[3] for r in reports if r[3]}).values_list("pk", "duration_ms"))
    found = []
    for event_id, actor_id, actor_name, clip_id, details in reports:
        listened, duration = details.get("listened_ms"), durations.get(clip_id)
        if not isinstance(listened, int) or not duration:
            continue
        if listened > max(passes * duration, floor_ms):
            found.append(Anomaly(
                kind="long_listening", actor_name=actor_name, actor_id=actor_id, clip_id=clip_id,
                count=round(listened / duration),
                message="long_listening",
                params={"name": actor_name, "length": duration / 1000, "listened": listened / 1000,
                        "times": listened / duration, "passes": passes, "floor": floor_ms // 1000},
                event_ids=(event_id,)))
    return found


def _play_after_lease(window: QuerySet) -> list[Anomaly]:
    # A key pressed just after the reviewer's own submit, skip or flag reached the ended lease
    # (an older page, or a race): that is fast work, not a play after the lease. Each attempt asks
    # the database for such an ending in the ``race`` seconds before it: through audit_clip_idx
    # (clip_id, at) that is a probe of a few index entries per attempt, where reading every ending
    # of the attempted clips since the window's start read ~14,000 heap pages at 10 million events.
    # (object_id has no index; every refused play names its clip.)
    race = timedelta(seconds=settings.ANOMALY_KEY_RACE_SECONDS)
    ending = AuditEvent.objects.filter(action__in=["transcription.submit", "assignment.skip", "clip.flag"],
                                       outcome=ALLOWED, clip_id=OuterRef("clip_id"), object_id=OuterRef("object_id"),
                                       at__gte=OuterRef("at") - race, at__lte=OuterRef("at"))
    # A play starts with a token request, so a refused token counts like a refused play.
    attempts = (window.filter(action="access.denied", details__reason__in=["lease_ended", "withdrawn"],
                              details__attempted__in=["audio.play", "audio.token"])
                .exclude(Exists(ending)).order_by("id").values_list("id", "actor_id", "actor_name", "clip_id"))
    groups: dict[tuple, list[int]] = defaultdict(list)
    for event_id, *key in attempts:
        groups[tuple(key)].append(event_id)
    return [
        Anomaly(kind="play_after_lease", actor_name=_who(actor_name), actor_id=actor_id, clip_id=clip_id,
                count=len(event_ids),
                message="play_after_lease", params={"name": _who(actor_name), "count": len(event_ids)},
                event_ids=tuple(event_ids[:ANOMALY_EVENT_IDS]))
        for (actor_id, actor_name, clip_id), event_ids in sorted(groups.items(), key=lambda item: -len(item[1]))
    ]


def _by_day(events: QuerySet, *keys: str) -> list[tuple[tuple, date, list[int]]]:
    """Group events by ``keys`` and console day in one pass; busiest groups first within a day.

    One query for all groups (not one per group): a week of a busy trail can hold
    hundreds of groups.
    """
    zone = console_time_zone()
    groups: dict[tuple, list[int]] = defaultdict(list)
    for event_id, at, *values in events.order_by("id").values_list("id", "at", *keys).iterator(chunk_size=5000):
        groups[(tuple(values), at.astimezone(zone).date())].append(event_id)
    return _busiest_first(groups)


def _busiest_first(groups: dict[tuple, list[int]]) -> list[tuple[tuple, date, list[int]]]:
    ordered = sorted(groups.items(), key=lambda item: (item[0][1], len(item[1])), reverse=True)
    return [(values, day, event_ids) for (values, day), event_ids in ordered]


def _denied_attempts(window: QuerySet) -> list[Anomaly]:
    limit = settings.ANOMALY_DENIED_ATTEMPTS
    found = []
    denied = window.filter(action="access.denied")
    for (actor_id, actor_name), day, event_ids in _by_day(denied.filter(actor_id__isnull=False), "actor_id",
                                                           "actor_name"):
        if len(event_ids) >= limit:
            found.append(Anomaly(
                kind="denied_attempts", actor_name=actor_name, actor_id=actor_id, day=day, count=len(event_ids),
                message="denied_account", params={"name": actor_name, "count": len(event_ids), "day": day},
                event_ids=tuple(event_ids[:ANOMALY_EVENT_IDS])))
    # Nobody signed in: the address is all there is to group by.
    for (client_ip,), day, event_ids in _by_day(denied.filter(actor_id__isnull=True), "client_ip"):
        if len(event_ids) >= limit:
            found.append(Anomaly(
                kind="denied_attempts", actor_name=_who("", client_ip), day=day, count=len(event_ids),
                message="denied_address",
                params={"address": client_ip or gettext("an unknown address"), "count": len(event_ids), "day": day},
                event_ids=tuple(event_ids[:ANOMALY_EVENT_IDS])))
    return found


def _failed_logins(window: QuerySet) -> list[Anomaly]:
    limit = settings.ANOMALY_FAILED_LOGINS
    failed = window.filter(action="auth.login_failed")
    found = []
    # actor_name is set only when the account exists (a mistyped name may be a password).
    for (actor_name,), day, event_ids in _by_day(failed.exclude(actor_name=""), "actor_name"):
        if len(event_ids) >= limit:
            found.append(Anomaly(
                kind="failed_logins", actor_name=actor_name, day=day, count=len(event_ids),
                message="failed_account", params={"count": len(event_ids), "name": actor_name, "day": day},
                event_ids=tuple(event_ids[:ANOMALY_EVENT_IDS])))
    for (client_ip,), day, event_ids in _by_day(failed.filter(actor_name=""), "client_ip"):
        if len(event_ids) >= limit:
            found.append(Anomaly(
                kind="failed_logins", actor_name=_who("", client_ip), day=day, count=len(event_ids),
                message="failed_address",
                params={"count": len(event_ids), "address": client_ip or gettext("an unknown address"), "day": day},
                event_ids=tuple(event_ids[:ANOMALY_EVENT_IDS])))
    return found


def _quick_skips(window: QuerySet) -> list[Anomaly]:
    limit, seconds = settings.ANOMALY_QUICK_SKIPS, settings.ANOMALY_QUICK_SKIP_SECONDS
    # The lease of each skipped assignment, paired in the database (audit_skip_idx and audit_lease_idx
    # make it index-only): only the quick skips leave it. A week holds ~15,000 skips; fetching their
    # leases was 16 queries of 1,000 clips and most of this rule's time at 10 million events.
    lease = (AuditEvent.objects.filter(action="assignment.lease", outcome=ALLOWED, clip_id=OuterRef("clip_id"),
                                       object_id=OuterRef("object_id"),
                                       at__gt=OuterRef("at") - timedelta(seconds=seconds), at__lte=OuterRef("at"))
             # One lease per assignment: ordering by the index's own "at" only spares a sort per skip.
             .order_by("at").values("id")[:1])
    quick_ones = (window.filter(action="assignment.skip", outcome=ALLOWED, actor_id__isnull=False,
                                clip_id__isnull=False)
                  .annotate(lease_id=Subquery(lease)).filter(lease_id__isnull=False)
                  .values_list("id", "at", "actor_id", "actor_name", "lease_id"))
    zone = console_time_zone()
    quick: dict[tuple, list[int]] = defaultdict(list)
    for skip_id, at, actor_id, actor_name, lease_id in quick_ones:
        quick[(actor_id, actor_name, at.astimezone(zone).date())] += [lease_id, skip_id]
    found = []
    for (actor_id, actor_name, day), event_ids in sorted(quick.items(), key=lambda item: item[0][2], reverse=True):
        count = len(event_ids) // 2
        if count >= limit:
            found.append(Anomaly(
                kind="quick_skips", actor_name=actor_name, actor_id=actor_id, day=day, count=count,
                message="quick_skips", params={"name": actor_name, "count": count, "seconds": seconds, "day": day},
                event_ids=tuple(sorted(event_ids))[:ANOMALY_EVENT_IDS]))
    return found


def _outside_hours(*, since: datetime, until: datetime) -> list[tuple[date, Q]]:
    """The time ranges outside working hours, day by day, as index-friendly ranges on ``at``,
    each with the console day it lies in.

    (Extracting the hour of every event would read the whole window. So would one query ORing
    the ranges: PostgreSQL scans the whole window and filters, ~1 s at 10 million events; one
    query per range reads only that range.)
    """
    zone, start, end = console_time_zone(), settings.ANOMALY_WORK_START_HOUR, settings.ANOMALY_WORK_END_HOUR
    at_hour = lambda day, hour: (datetime.combine(day, time(hour=hour), tzinfo=zone) if hour < 24  # noqa: E731
                                 else day_bounds(day)[1])
    ranges = []
    day, last = since.astimezone(zone).date(), until.astimezone(zone).date()
    while day <= last:
        first, next_day = day_bounds(day)
        if start <= end:
            ranges += [(day, Q(at__gte=first, at__lt=at_hour(day, start))),
                       (day, Q(at__gte=at_hour(day, end), at__lt=next_day))]
        else:  # a night shift: the day's gap is between its end and its start
            ranges.append((day, Q(at__gte=at_hour(day, end), at__lt=at_hour(day, start))))
        day += timedelta(days=1)
    return ranges


def _off_hours(window: QuerySet, *, since: datetime, until: datetime) -> list[Anomaly]:
    start, end = settings.ANOMALY_WORK_START_HOUR, settings.ANOMALY_WORK_END_HOUR
    # People only: the lease sweep and ingest services work around the clock by design.
    people = window.filter(actor_id__isnull=False).exclude(role__in=["service", "anonymous"])
    # Each range lies in one console day: the day comes with the range, not from converting every
    # event's time (at 10 million events a week's off-hours work is ~15,000 events).
    groups: dict[tuple, list[int]] = defaultdict(list)
    for day, hours in _outside_hours(since=since, until=until):
        for event_id, *values in people.filter(hours).values_list("id", "actor_id", "actor_name").iterator(
                chunk_size=5000):
            groups[(tuple(values), day)].append(event_id)
    for event_ids in groups.values():
        event_ids.sort()
    return [
        Anomaly(kind="off_hours", actor_name=actor_name, actor_id=actor_id, day=day, count=len(event_ids),
                message="off_hours",
                params={"name": actor_name, "start": start, "end": end, "day": day, "count": len(event_ids)},
                event_ids=tuple(event_ids[:ANOMALY_EVENT_IDS]))
        for (actor_id, actor_name), day, event_ids in _busiest_first(groups)
    ]


def anomalies_find(*, now: datetime | None = None, window_days: int | None = None,
                   kinds: tuple[str, ...] | None = None) -> list[Anomaly]:
    """Find what looks odd in the last ANOMALY_WINDOW_DAYS days of the trail (of ``kinds`` only,
    when given)."""
    now = now or timezone.now()
    window_days = window_days or settings.ANOMALY_WINDOW_DAYS
    since = now - timedelta(days=window_days)
    window = AuditEvent.objects.filter(at__gte=since, at__lte=now)
    rules = {
        "repeated_fetches": lambda: _repeated_fetches(window),
        "long_listening": lambda: _long_listening(window),
        "play_after_lease": lambda: _play_after_lease(window),
        "denied_attempts": lambda: _denied_attempts(window),
        "failed_logins": lambda: _failed_logins(window),
        "quick_skips": lambda: _quick_skips(window),
        "off_hours": lambda: _off_hours(window, since=since, until=now),
    }
    found = []
    with transaction.atomic():
        _session_tune()
        for kind, rule in rules.items():
            if kinds is None or kind in kinds:
                found += rule()
    return found


def _session_tune() -> None:
    """For the anomalies' transaction only (SET LOCAL), on PostgreSQL.

    JIT off: PostgreSQL JIT-compiles a plan whose *estimated* cost is high, and it estimates the
    correlated lease lookup of the quick skips far above what it costs (at 10 million events, 185 ms
    of compiling for a query that runs in 170). work_mem 32 MB: the repeated-fetch grouping of a
    week (~150,000 fetches at 10 million events) spilled its hash aggregate to disk at the default
    4 MB; 32 MB is taken once, by one supervisor's page, not per reviewer request.
    """
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL jit = off")
            cursor.execute("SET LOCAL work_mem = '32MB'")


ANOMALIES_SHOWN = 10  # of each kind on the overview (70 rows at most); the rest a click away
ANOMALY_PAGE_SIZE = 100  # of one kind per page


@dataclass(frozen=True)
class AnomalyKind:
    kind: str
    title: str
    count: int
    shown: list[Anomaly]  # the first ANOMALIES_SHOWN (overview) or one page (one kind)


@dataclass(frozen=True)
class AnomaliesView:
    sections: list[AnomalyKind]
    kind: str | None  # one kind, or None for the overview of all
    page: int
    next_page: int | None
    found: int  # anomalies of the kinds looked at


def anomalies_view(*, supervisor, kind: str | None = None, page: str | None = None,
                   now: datetime | None = None) -> AnomaliesView:
    """The anomalies page for a supervisor; the look is audited.

    Without ``kind``: every kind's count and its first ANOMALIES_SHOWN anomalies (a busy week at 10
    million events holds thousands, and rendering them all took seconds). With ``kind``: that
    kind's anomalies only (only its rule runs), ANOMALY_PAGE_SIZE per page. Anomalies are computed
    on each visit, so a page number is a position in the current list, not a stored result.
    """
    errors = {}
    if kind and kind not in ANOMALY_KINDS:
        errors["kind"] = gettext("One of: %(choices)s") % {"choices": ", ".join(ANOMALY_KINDS)}
    if page and not (page.isdigit() and 1 <= int(page) <= 10_000):
        errors["page"] = gettext("A page number from 1.")
    if errors:
        raise InvalidInput(gettext("This anomalies link is not valid."), code="invalid_filters", fields=errors)
    number = int(page) if page and kind else 1
    found = anomalies_find(now=now, kinds=(kind,) if kind else None)
    sections = []
    for name, title in ANOMALY_KINDS.items():
        if kind and name != kind:
            continue
        items = [a for a in found if a.kind == name]
        start = (number - 1) * ANOMALY_PAGE_SIZE if kind else 0
        shown = items[start:start + (ANOMALY_PAGE_SIZE if kind else ANOMALIES_SHOWN)]
        sections.append(AnomalyKind(kind=name, title=title, count=len(items), shown=shown))
    more = bool(kind) and number * ANOMALY_PAGE_SIZE < len(found)
    audit_record(actor=supervisor, action="console.anomalies", object_type="audit",
                 details={"found": len(found), **({"kind": kind, "page": number} if kind else {})})
    return AnomaliesView(sections=sections, kind=kind or None, page=number, next_page=number + 1 if more else None,
                         found=len(found))


# --- Chain status ----------------------------------------------------------------------
