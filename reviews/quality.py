"""Issue 11: the recognizer's draft, gold clips and reviewer quality.

- Scoring: the word error rate (jiwer) of the recognizer's hypothesis against the text a
  reviewer submitted, and of a reviewer's text against a gold clip's reference, plus the
  share of label groups chosen exactly as the reference has them.
- Gold serving: a gold clip goes through the same queue as every other clip. When a lease
  finds an ordinary clip and the project still has a gold clip this reviewer never had, a
  draw at the project's ``gold_rate`` serves the gold clip instead. Nothing about the clip,
  the lease or the payload differs (tests/test_quality.py holds this).
- Pauses: after a gold submission the reviewer's recent gold accuracy on that project is
  checked against the project's ``min_gold_accuracy``; below it, leasing on that project
  stops (``reviewer.pause``, audited once) until an admin lifts it (``reviewer.unpause``).
- The console's quality page: per reviewer or per reviewer and day, sortable.

Text is read here only to score it: no text (hypothesis, reference or transcript) is ever
logged or written to the audit trail, only numbers and counts.
"""

import random
import re
import statistics
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

import jiwer
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone
from django.utils.translation import gettext

from . import agreement
from .audit import audit_record
from .errors import InvalidInput, QuotaExceeded
from .labels import label_schema_describe, labels_validate
from .models import Assignment, Clip, LabelGroup, Project, ReviewerPause, Transcription

# How many of a reviewer's most recent gold clips (since their last lifted pause) the pause
# decision looks at; the project's min_gold_samples says how many it needs at least.
GOLD_WINDOW = 20
QUALITY_DAYS_DEFAULT = 14
QUALITY_DAYS_MAX = 90
_draw = random.SystemRandom()


# --- Scoring -----------------------------------------------------------------------------

def wer(reference: str, hypothesis: str, *, locale: str = "en") -> float:
    """Word error rate of ``hypothesis`` against ``reference`` (jiwer), after the app's one
    normalisation (``agreement.text_normalise``: numbers as words in the clip's language,
    case-folded, punctuation dropped), so "Set a timer for 10 minutes." and "set a timer for
    ten minutes" score 0.

    An empty reference scores 0.0 against an empty hypothesis and 1.0 against anything else
    (WER is undefined there; "entirely wrong" is the useful reading).
    """
    reference = agreement.text_normalise(reference, locale=locale)
    hypothesis = agreement.text_normalise(hypothesis, locale=locale)
    if not reference:
        return 0.0 if not hypothesis else 1.0
    if not hypothesis:
        return 1.0
    return float(jiwer.wer(reference, hypothesis))


def word_accuracy(error_rate: float | None) -> float | None:
    """1 - WER, floored at 0 (WER passes 1 when the hypothesis adds words)."""
    return None if error_rate is None else max(0.0, 1.0 - error_rate)


def label_accuracy(reference: dict, chosen: dict, groups: list[str]) -> float:
    """The share of label groups where the chosen set equals the reference's (both empty counts)."""
    if not groups:
        return 1.0
    same = sum(1 for group in groups
               if sorted((reference or {}).get(group) or []) == sorted((chosen or {}).get(group) or []))
    return same / len(groups)


def gold_accuracy(gold_wer: float | None, label_acc: float | None) -> float | None:
    """One gold transcription's accuracy: the mean of its word accuracy and its label accuracy."""
    if gold_wer is None or label_acc is None:
        return None
    return (word_accuracy(gold_wer) + label_acc) / 2


def submission_scores(*, clip: Clip, text: str, labels: dict) -> dict:
    """The issue-11 fields of a new Transcription: where its text started, the recognizer's WER
    against it, and for a gold clip its scores against the reference. No query unless gold."""
    scores = {"draft_source": Transcription.DraftSource.ASR if clip.asr_text else Transcription.DraftSource.BLANK,
              "asr_wer": wer(text, clip.asr_text, locale=clip.locale) if clip.asr_text else None}
    if clip.is_gold:
        groups = list(LabelGroup.objects.filter(schema_id=clip.project.label_schema_id)
                      .order_by("position", "id").values_list("key", flat=True))
        scores["gold_wer"] = wer(clip.gold_text, text, locale=clip.locale)
        scores["gold_label_accuracy"] = label_accuracy(clip.gold_labels, labels, groups)
    return scores


# --- Gold serving -------------------------------------------------------------------------

def _held(reviewer):
    return Assignment.objects.filter(clip=OuterRef("pk"), reviewer=reviewer, status__in=Assignment.HOLDING)


def gold_waiting(reviewer) -> Exists:
    """For the queue's candidate query: does the candidate's project hold a gold clip this
    reviewer never had? Lets a lease skip the gold lookup (and its query) when none is left."""
    held = Assignment.objects.filter(clip=OuterRef("pk"), reviewer=reviewer, status__in=Assignment.HOLDING)
    return Exists(Clip.objects.filter(project=OuterRef("project"), is_gold=True, status=Clip.Status.OPEN,
                                      withheld=False).exclude(Exists(held)))


def gold_drawn(project: Project) -> bool:
    """Draw whether this lease serves a gold clip, at the project's rate."""
    rate = project.gold_rate
    return rate > 0 and (rate >= 1 or _draw.random() < float(rate))


def gold_pick(*, reviewer, clip: Clip) -> Clip | None:
    """The gold clip to serve instead of ``clip``, or None. ``clip`` carries ``gold_waiting``
    from the candidate query; the lookup runs only when gold is left and the draw says so.

    Gold clips are never consumed: any number of reviewers lease the same one, each at most
    once (any holding assignment bars it), and it never becomes "done".
    """
    if not getattr(clip, "gold_waiting", False) or not gold_drawn(clip.project):
        return None
    return (Clip.objects.select_related("project", "project__label_schema").defer("peaks")
            .filter(project_id=clip.project_id, is_gold=True, status=Clip.Status.OPEN, withheld=False)
            .exclude(Exists(_held(reviewer)))
            .order_by("ingested_at", "id")
            .select_for_update(skip_locked=True, of=("self",)).first())


# --- Pauses --------------------------------------------------------------------------------

class ReviewerPaused(QuotaExceeded):
    """Leasing refused because the reviewer is paused: 429 ``reviewer_paused`` saying why."""

    def __init__(self, detail: str):
        super().__init__("reviewer_paused", detail, None)
        self.code = "reviewer_paused"
        self.denied = {**self.denied, "reason": "reviewer_paused"}


def paused_here(reviewer) -> Exists:
    """For the queue's candidate query: is the reviewer paused on the candidate's project?"""
    return Exists(ReviewerPause.objects.filter(reviewer=reviewer, project=OuterRef("project"),
                                               lifted_at__isnull=True))


def pause_refuse(reviewer) -> None:
    """Called when the queue has nothing for the reviewer: if a pause is why, say so."""
    pause = (ReviewerPause.objects.select_related("project")
             .filter(reviewer=reviewer, lifted_at__isnull=True).order_by("-paused_at").first())
    if pause is not None:
        raise ReviewerPaused(pause.reason)


def _gold_recent(reviewer, project: Project) -> list[tuple[float, float]]:
    """(gold WER, label accuracy) of the reviewer's most recent gold clips on the project,
    since their last lifted pause: a lifted pause is a fresh start."""
    lifted = (ReviewerPause.objects.filter(reviewer=reviewer, project=project, lifted_at__isnull=False)
              .order_by("-lifted_at").values_list("lifted_at", flat=True).first())
    rows = Transcription.objects.filter(reviewer=reviewer, clip__project=project, gold_wer__isnull=False,
                                        gold_label_accuracy__isnull=False)
    if lifted:
        rows = rows.filter(submitted_at__gt=lifted)
    return list(rows.order_by("-submitted_at", "-id").values_list("gold_wer", "gold_label_accuracy")[:GOLD_WINDOW])


def reviewer_pause_check(*, reviewer, project: Project, now=None) -> ReviewerPause | None:
    """Pause the reviewer on the project if their recent gold accuracy is below its minimum.

    Runs after each gold submission (in its transaction). Returns the new pause, audited
    once as ``reviewer.pause``; None when there is nothing to do.
    """
    if project.min_gold_accuracy is None:
        return None
    if ReviewerPause.objects.filter(reviewer=reviewer, project=project, lifted_at__isnull=True).exists():
        return None
    recent = _gold_recent(reviewer, project)
    if len(recent) < project.min_gold_samples:
        return None
    accuracy = statistics.fmean(gold_accuracy(w, a) for w, a in recent)
    threshold = Decimal(project.min_gold_accuracy)
    if accuracy >= float(threshold):
        return None
    reason = (f"Your work on {project.name} is paused: your accuracy on reference clips was {accuracy:.0%} over "
              f"your last {len(recent)}, below the project's minimum of {float(threshold):.0%}. An admin will "
              f"talk it through with you and lift the pause.")
    pause = ReviewerPause.objects.create(reviewer=reviewer, project=project, paused_at=now or timezone.now(),
                                         reason=reason, accuracy=round(accuracy, 4), threshold=threshold,
                                         gold_count=len(recent))
    from .leases import assignment_revoke  # services calls into this module

    # Any other live lease on the project ends now, like any other withdrawal.
    for assignment in (Assignment.objects.select_for_update(of=("self",))
                       .filter(reviewer=reviewer, clip__project=project, status=Assignment.Status.LIVE)):
        assignment_revoke(assignment, pause.paused_at)
    audit_record(actor=None, actor_name="system", action="reviewer.pause", object_type="user", object_id=reviewer.pk,
                 details={"reviewer": reviewer.get_username(), "project": project.slug, "pause": pause.pk,
                          "accuracy": round(accuracy, 4), "threshold": str(threshold), "gold_count": len(recent)})
    return pause


def pause_lift(*, actor, pause_id) -> ReviewerPause | None:
    """Lift an active pause (admins): audited once as ``reviewer.unpause``. None if already lifted."""
    with transaction.atomic():
        pause = (ReviewerPause.objects.select_for_update(of=("self",)).select_related("reviewer", "project")
                 .filter(pk=pause_id).first())
        if pause is None or pause.lifted_at is not None:
            return None
        pause.lifted_at = timezone.now()
        pause.lifted_by = actor
        pause.save(update_fields=["lifted_at", "lifted_by"])
        audit_record(actor=actor, action="reviewer.unpause", object_type="user", object_id=pause.reviewer_id,
                     details={"reviewer": pause.reviewer.get_username(), "project": pause.project.slug,
                              "pause": pause.pk})
    return pause


# --- Gold marking ---------------------------------------------------------------------------

MAX_GOLD_TEXT = 5000


def clip_gold_set(*, actor, clip_id, is_gold: bool, text: str = "", labels=None) -> Clip:
    """Mark a clip as gold with its reference transcript and labels, or unmark it; audited
    once as ``clip.gold`` (counts only: the reference text never enters the trail)."""
    text = (text or "").strip()
    if len(text) > MAX_GOLD_TEXT:
        raise InvalidInput(gettext("The reference is at most %(count)d characters.") % {"count": MAX_GOLD_TEXT},
                           code="invalid_gold",
                           fields={"gold_text": gettext("At most %(count)d characters.") % {"count": MAX_GOLD_TEXT}})
    with transaction.atomic():
        clip = Clip.objects.select_for_update(of=("self",)).select_related("project", "project__label_schema").get(
            pk=clip_id)
        was_gold = clip.is_gold
        if is_gold:
            if clip.withheld or clip.status in (Clip.Status.FLAGGED, Clip.Status.PURGED):
                raise InvalidInput(gettext("A flagged, purged or withheld clip cannot be gold."), code="invalid_gold")
            clean = labels_validate(label_schema_describe(clip.project.label_schema), labels or {}, complete=False)
            clip.is_gold, clip.gold_text, clip.gold_labels = True, text, clean
            if clip.status == Clip.Status.DONE:
                clip.status = Clip.Status.OPEN  # gold is served again, whatever it was before
        else:
            clean = {}
            clip.is_gold, clip.gold_text, clip.gold_labels = False, "", {}
            if (was_gold and clip.status == Clip.Status.OPEN
                    and clip.transcriptions_done >= clip.project.transcriptions_per_clip):
                clip.status = Clip.Status.DONE
        clip.save(update_fields=["is_gold", "gold_text", "gold_labels", "status"])
        audit_record(actor=actor, action="clip.gold", object_type="clip", object_id=clip.pk, clip_id=clip.pk,
                     details={"is_gold": clip.is_gold, "was_gold": was_gold, "text_chars": len(clip.gold_text),
                              "label_groups": len(clean)})
    return clip


# --- Reviewer quality ------------------------------------------------------------------------

SORT_KEYS = ("reviewer", "day", "clips", "gold_count", "gold_accuracy", "gold_wer", "label_accuracy",
             "peer_agreement", "acceptance_rate", "throughput", "median_seconds", "asr_unchanged")


@dataclass
class QualityRow:
    reviewer_id: int
    reviewer: str
    day: date | None = None
    clips: int = 0
    gold_count: int = 0
    gold_wer: float | None = None
    label_accuracy: float | None = None
    gold_accuracy: float | None = None
    peer_agreement: float | None = None
    peer_pairs: int = 0
    acceptance_rate: float | None = None  # of submissions a checker decided (issue 11, part 2)
    throughput: float | None = None  # submitted clips per hour holding a clip
    working_minutes: float = 0.0
    median_seconds: float | None = None
    asr_drafts: int = 0
    asr_unchanged: float | None = None  # share of ASR drafts submitted unchanged
    paused: list[str] = field(default_factory=list)
    spark_clips: list[int] = field(default_factory=list)
    spark_gold: list[float | None] = field(default_factory=list)

    def as_dict(self) -> dict:
        return {
            "reviewer": self.reviewer, "day": self.day.isoformat() if self.day else None, "clips": self.clips,
            "gold_count": self.gold_count, "gold_wer": _r(self.gold_wer), "label_accuracy": _r(self.label_accuracy),
            "gold_accuracy": _r(self.gold_accuracy), "peer_agreement": _r(self.peer_agreement),
            "peer_pairs": self.peer_pairs, "acceptance_rate": _r(self.acceptance_rate),
            "throughput": _r(self.throughput, 2), "working_minutes": round(self.working_minutes, 1),
            "median_seconds": _r(self.median_seconds, 1), "asr_drafts": self.asr_drafts,
            "asr_unchanged": _r(self.asr_unchanged), "paused_on": self.paused, "clips_per_day": self.spark_clips,
            "gold_accuracy_per_day": [_r(v) for v in self.spark_gold],
        }


def _r(value, digits: int = 4):
    return None if value is None else round(value, digits)


@dataclass
class _Acc:
    clips: int = 0
    gold: list = field(default_factory=list)  # (wer, label accuracy)
    peers: list = field(default_factory=list)  # word agreement with one peer's transcription
    durations: list = field(default_factory=list)  # seconds from lease to submit
    intervals: list = field(default_factory=list)  # (leased_at, ended_at) of worked leases
    asr: list = field(default_factory=list)  # asr_wer of transcriptions started from ASR
    reviews: list = field(default_factory=list)  # True accepted / False rejected


def _merged_seconds(intervals: list[tuple[datetime, datetime]]) -> float:
    """Seconds covered by the union of the intervals (two tabs' leases count once)."""
    total, end = 0.0, None
    start = None
    for a, b in sorted(intervals):
        if end is None or a > end:
            if end is not None:
                total += (end - start).total_seconds()
            start, end = a, b
        else:
            end = max(end, b)
    if end is not None:
        total += (end - start).total_seconds()
    return total


@dataclass(frozen=True)
class QualityQuery:
    project: Project | None
    start_day: date
    end_day: date  # inclusive
    view: str = "reviewer"  # or "day"
    sort: str = "reviewer"
    descending: bool = False

    @property
    def days(self) -> list[date]:
        return [self.start_day + timedelta(days=i) for i in range((self.end_day - self.start_day).days + 1)]


QUALITY_PARAMS = ("project", "days", "end", "view", "sort", "order")


def quality_query_parse(params, *, today: date, strict: bool = False) -> QualityQuery:
    """Read the page's (or the API's) query parameters; refuse what is not valid.

    The page's form sends empty fields for "the default"; the API (``strict``) leaves a
    parameter out for that and refuses one sent empty or padded, as its schema says."""
    from django.utils.dateparse import parse_date

    errors = {}
    if strict:
        for name in QUALITY_PARAMS:
            value = params.get(name)
            if value is not None and (not value or value != value.strip()):
                errors[name] = gettext("Leave it out for the default; no spaces around a value.")
        end = params.get("end")
        if end and not re.fullmatch(r"\d{4}-\d{2}-\d{2}", end):
            errors["end"] = gettext("A day, e.g. 2026-11-20.")
    get = lambda name: (params.get(name) or "").strip()  # noqa: E731
    project = None
    if get("project"):
        project = Project.objects.filter(slug=get("project")).first()
        if project is None:
            errors["project"] = gettext("Unknown project.")
    days = QUALITY_DAYS_DEFAULT
    if get("days"):
        if not get("days").isdigit() or not 1 <= int(get("days")) <= QUALITY_DAYS_MAX:
            errors["days"] = gettext("A number of days from 1 to %(count)d.") % {"count": QUALITY_DAYS_MAX}
        else:
            days = int(get("days"))
    end_day = today
    if get("end"):
        try:
            end_day = parse_date(get("end"))
        except ValueError:
            end_day = None
        if end_day is None:
            errors["end"] = gettext("A day, e.g. 2026-11-20.")
    view = get("view") or "reviewer"
    if view not in ("reviewer", "day"):
        errors["view"] = gettext("reviewer or day.")
    sort = get("sort") or ("day" if view == "day" else "reviewer")
    if sort not in SORT_KEYS:
        errors["sort"] = gettext("Not a column.")
    order = get("order") or ("desc" if view == "day" and sort == "day" else "asc")
    if order not in ("asc", "desc"):
        errors["order"] = gettext("asc or desc.")
    if errors:
        raise InvalidInput(gettext("Some fields are not valid."), code="invalid_filters", fields=errors)
    return QualityQuery(project=project, start_day=end_day - timedelta(days=days - 1), end_day=end_day, view=view,
                        sort=sort, descending=order == "desc")


# A checker's verdict on a submission (issue 11, part 2): accepted as it was or with edits
# counts as accepted; unchecked submissions take no part in the rate.
REVIEW_VERDICTS = {"accepted": True, "edited": True, "rejected": False}


def quality_report(query: QualityQuery) -> list[QualityRow]:
    """Every reviewer's figures over the window (``view="reviewer"``) or per day (``"day"``),
    sorted as asked; None (n/a) sorts last either way."""
    from .supervision import console_time_zone, day_bounds

    zone = console_time_zone()
    start, _ = day_bounds(query.start_day)
    _, end = day_bounds(query.end_day)
    in_project = Q(clip__project=query.project) if query.project else Q()
    rows = list(Transcription.objects.filter(in_project, submitted_at__gte=start, submitted_at__lt=end)
                .values_list("id", "reviewer_id", "clip_id", "submitted_at", "assignment__leased_at", "gold_wer",
                             "gold_label_accuracy", "draft_source", "asr_wer", "review_status"))
    accs: dict[tuple[int, date], _Acc] = defaultdict(_Acc)
    own: dict[int, tuple[int, date]] = {}
    for tid, reviewer_id, _clip, submitted_at, leased_at, gold_wer, label_acc, source, asr_wer, verdict in rows:
        day = submitted_at.astimezone(zone).date()
        acc = accs[(reviewer_id, day)]
        acc.clips += 1
        acc.durations.append((submitted_at - leased_at).total_seconds())
        if gold_wer is not None and label_acc is not None:
            acc.gold.append((gold_wer, label_acc))
        if source == Transcription.DraftSource.ASR and asr_wer is not None:
            acc.asr.append(asr_wer)
        if verdict in REVIEW_VERDICTS:
            acc.reviews.append(REVIEW_VERDICTS[verdict])
        own[tid] = (reviewer_id, day)
    # Agreement with peers: each of the reviewer's texts against every other reviewer's text
    # of the same ordinary clip (1 - WER, the mean of both directions, floored at 0).
    clip_ids = {clip_id for _, _, clip_id, *_ in rows}
    if clip_ids:
        by_clip: dict = defaultdict(list)
        for tid, reviewer_id, clip_id, text, locale in (
                Transcription.objects.filter(clip_id__in=clip_ids, gold_wer__isnull=True)
                .values_list("id", "reviewer_id", "clip_id", "text", "clip__locale")):
            by_clip[clip_id].append((tid, reviewer_id, agreement.text_normalise(text, locale=locale)))
        for texts in by_clip.values():
            for tid, reviewer_id, text in texts:
                if tid not in own:
                    continue
                for other_tid, other_reviewer, other_text in texts:
                    if other_tid != tid and other_reviewer != reviewer_id:
                        # The clip agreement's own pairwise figure (mean of both directions).
                        accs[own[tid]].peers.append(max(0.0, 1.0 - agreement.pair_wer(text, other_text)))
    worked = Assignment.objects.filter(leased_at__gte=start, leased_at__lt=end, ended_at__isnull=False,
                                       status__in=[Assignment.Status.SUBMITTED, Assignment.Status.SKIPPED,
                                                   Assignment.Status.FLAGGED])
    if query.project:
        worked = worked.filter(clip__project=query.project)
    for reviewer_id, leased_at, ended_at in worked.values_list("reviewer_id", "leased_at", "ended_at"):
        accs[(reviewer_id, leased_at.astimezone(zone).date())].intervals.append((leased_at, ended_at))

    reviewers = get_user_model().objects.filter(Q(groups__name="reviewer") | Q(pk__in={r for r, _ in accs}))
    if query.project:
        reviewers = reviewers.filter(Q(review_projects=query.project) | Q(pk__in={r for r, _ in accs}))
    names = dict(reviewers.distinct().values_list("pk", "username"))
    pauses = defaultdict(list)
    active = ReviewerPause.objects.filter(lifted_at__isnull=True)
    if query.project:
        active = active.filter(project=query.project)
    for reviewer_id, slug in active.values_list("reviewer_id", "project__slug"):
        pauses[reviewer_id].append(slug)

    days = query.days
    result = []
    for reviewer_id, username in names.items():
        per_day = {day: accs.get((reviewer_id, day)) for day in days}
        spark_clips = [a.clips if a else 0 for a in per_day.values()]
        spark_gold = [statistics.fmean(gold_accuracy(w, la) for w, la in a.gold) if a and a.gold else None
                      for a in per_day.values()]
        if query.view == "day":
            for day, acc in per_day.items():
                if acc is not None:
                    result.append(_row(reviewer_id, username, acc, day=day, paused=pauses[reviewer_id]))
        else:
            merged = _Acc()
            for acc in per_day.values():
                if acc is None:
                    continue
                merged.clips += acc.clips
                for name in ("gold", "peers", "durations", "intervals", "asr", "reviews"):
                    getattr(merged, name).extend(getattr(acc, name))
            row = _row(reviewer_id, username, merged, paused=pauses[reviewer_id])
            row.spark_clips, row.spark_gold = spark_clips, spark_gold
            result.append(row)
    return _sorted(result, query)


def _row(reviewer_id: int, username: str, acc: _Acc, *, day: date | None = None, paused=()) -> QualityRow:
    row = QualityRow(reviewer_id=reviewer_id, reviewer=username, day=day, clips=acc.clips,
                     gold_count=len(acc.gold), paused=list(paused))
    if acc.gold:
        row.gold_wer = statistics.fmean(w for w, _ in acc.gold)
        row.label_accuracy = statistics.fmean(a for _, a in acc.gold)
        row.gold_accuracy = statistics.fmean(gold_accuracy(w, a) for w, a in acc.gold)
    if acc.peers:
        row.peer_agreement, row.peer_pairs = statistics.fmean(acc.peers), len(acc.peers)
    if acc.reviews:
        row.acceptance_rate = sum(acc.reviews) / len(acc.reviews)
    seconds = _merged_seconds(acc.intervals)
    row.working_minutes = seconds / 60
    if seconds > 0 and acc.clips:
        row.throughput = acc.clips / (seconds / 3600)
    if acc.durations:
        row.median_seconds = statistics.median(acc.durations)
    row.asr_drafts = len(acc.asr)
    if acc.asr:
        row.asr_unchanged = sum(1 for w in acc.asr if w == 0) / len(acc.asr)
    return row


def _sorted(rows: list[QualityRow], query: QualityQuery) -> list[QualityRow]:
    key = query.sort
    present = [r for r in rows if getattr(r, key) is not None]
    missing = [r for r in rows if getattr(r, key) is None]
    present.sort(key=lambda r: (getattr(r, key), r.reviewer, r.day or date.min), reverse=query.descending)
    missing.sort(key=lambda r: (r.reviewer, r.day or date.min))
    return present + missing


def quality_view(*, supervisor, query: QualityQuery) -> list[QualityRow]:
    """The quality figures for the console (page or API); reading them is audited."""
    rows = quality_report(query)
    audit_record(actor=supervisor, action="console.quality", object_type="quality",
                 details={"project": query.project.slug if query.project else "", "view": query.view,
                          "start": query.start_day.isoformat(), "end": query.end_day.isoformat(),
                          "rows": len(rows)})
    return rows


def sparkline_points(values: list, *, width: int = 100, height: int = 24, top: float | None = None) -> str:
    """SVG polyline points for a small server-drawn chart; None values are skipped."""
    present = [v for v in values if v is not None]
    if not present:
        return ""
    top = top if top is not None else max(present) or 1
    step = width / max(1, len(values) - 1)
    points = []
    for i, value in enumerate(values):
        if value is None:
            continue
        y = height - 2 - (min(value, top) / top) * (height - 4)
        points.append(f"{i * step:.1f},{y:.1f}")
    return " ".join(points)
