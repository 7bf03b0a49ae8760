"""The supervisor console: thin pages under /console/ and JSON endpoints under /api/v1/.

Both check the role first, so anyone else gets the same audited 404 for every page,
endpoint and method. The work and its audit happen in ``supervision``.
"""

from datetime import date, timedelta
from functools import wraps
from urllib.parse import urlencode

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.utils.dateparse import parse_date
from django.utils.translation import gettext, gettext_noop
from django.utils.translation import gettext_lazy as _
from django.views.decorators.http import require_GET, require_POST
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import permissions, quality, supervision
from .anomalies import ANOMALY_PAGE_SIZE, anomalies_view
from .api import StrictCharField, audio_response
from .api_serializers import AUDIO, AUDIO_TOKEN_HEADER, COMMON, SESSION, AudioTokenSerializer, errors
from .audit import audit_denied
from .console_serializers import (
    AuditPageSerializer,
    EscalationListSerializer,
    EscalationSerializer,
    QualityListSerializer,
)
from .errors import InvalidInput, NotFoundDenied
from .models import Escalation
from .permissions import IsSupervisor

CONSOLE_ATTEMPT = "page.console"
# The clip and escalation statuses the pages show with {% translate status %}: their values stay
# the stored codes, and these markers let makemessages find the words to translate.
STATUS_WORDS = (gettext_noop("open"), gettext_noop("done"), gettext_noop("flagged"), gettext_noop("purged"),
                gettext_noop("taken"), gettext_noop("closed"))


def supervisor_page(view):
    """Let verified supervisors in; others get an audited 404, the signed-out the sign-in page."""

    @wraps(view)
    def wrapped(request, *args, **kwargs):
        if not request.user.is_authenticated:
            audit_denied(actor=None, attempted=CONSOLE_ATTEMPT, object_type="page", object_id=request.path[:64],
                         reason="anonymous")
            return redirect_to_login(request.get_full_path())
        if not permissions.supervisor_verified(request.user):
            raise NotFoundDenied(object_type="page", object_id=request.path[:64], attempted=CONSOLE_ATTEMPT,
                                 reason="not_supervisor")
        with timezone.override(supervision.console_time_zone()):
            return view(request, *args, **kwargs)

    return wrapped


def _day_param(value: str | None) -> date:
    return parse_date(value or "") or timezone.localdate(timezone=supervision.console_time_zone())


# --- Pages --------------------------------------------------------------------------

@supervisor_page
@require_GET
def home(request):
    return render(request, "console/home.html", {
        "chain": supervision.audit_chain_status(),
        "escalations": supervision.escalation_list(),
        "today": _day_param(None), "section": "home",
    })


def _local_input(moment) -> str:
    """A moment as a datetime-local field value, in the console's zone."""
    return timezone.localtime(moment).strftime("%Y-%m-%dT%H:%M") if moment else ""


@supervisor_page
@require_GET
def audit_search(request):
    context = {"form": request.GET, "known_actions": supervision.KNOWN_ACTIONS, "page_size": supervision.PAGE_SIZE,
               "section": "audit", "since_value": request.GET.get("since", ""),
               "until_value": request.GET.get("until", "")}
    try:
        filters = supervision.audit_filters_parse(params=request.GET)
        page = supervision.audit_search(supervisor=request.user, filters=filters, cursor=request.GET.get("cursor"))
    except InvalidInput as error:
        return render(request, "console/audit.html", {**context, "error": error}, status=400)
    next_url = f"?{urlencode({**filters.as_params(), 'cursor': page.next_cursor})}" if page.next_cursor else None
    return render(request, "console/audit.html", {
        **context, "page": page, "next_url": next_url, "first_url": f"?{urlencode(filters.as_params())}",
        "paged": bool(request.GET.get("cursor")), "since_value": _local_input(filters.since),
        "until_value": _local_input(filters.until),
    })


@supervisor_page
@require_GET
def clip_history(request, clip_id):
    return render(request, "console/clip.html", {
        "history": supervision.clip_history(supervisor=request.user, clip_id=clip_id), "section": "audit",
    })


@supervisor_page
@require_GET
def reviewer_timeline(request, username):
    day = _day_param(request.GET.get("day"))
    context = {"previous_day": day - timedelta(days=1), "next_day": day + timedelta(days=1), "section": "audit",
               "day": day, "username": username,
               "page_size": supervision.TIMELINE_PAGE_SIZE}
    try:
        timeline = supervision.reviewer_timeline(supervisor=request.user, username=username, day=day,
                                                 after=request.GET.get("after"))
    except InvalidInput as error:
        return render(request, "console/timeline.html", {**context, "error": error}, status=400)
    next_url = f"?{urlencode({'day': day.isoformat(), 'after': timeline.next_cursor})}" if timeline.next_cursor \
        else None
    return render(request, "console/timeline.html", {
        **context, "timeline": timeline, "next_url": next_url, "first_url": f"?{urlencode({'day': day.isoformat()})}",
    })


@supervisor_page
@require_GET
def anomalies(request):
    """All kinds, the first ANOMALIES_SHOWN of each with its count; or one kind (``?kind=``), paged."""
    context = {"section": "anomalies", "window_days": settings.ANOMALY_WINDOW_DAYS,
               "page_size": ANOMALY_PAGE_SIZE}
    try:
        view = anomalies_view(supervisor=request.user, kind=request.GET.get("kind"), page=request.GET.get("page"))
    except InvalidInput as error:
        return render(request, "console/anomalies.html", {**context, "error": error}, status=400)
    return render(request, "console/anomalies.html", {**context, "view": view})


@supervisor_page
@require_GET
def escalations(request):
    return render(request, "console/escalations.html", {
        "escalations": supervision.escalation_list(), "closed": supervision.escalations_closed_recent(),
        "section": "escalations",
    })


@supervisor_page
@require_GET
def escalation_detail(request, escalation_id):
    escalation = supervision.escalation_get(escalation_id=escalation_id, attempted="escalation.view")
    return render(request, "console/escalation.html", {"escalation": escalation, "section": "escalations"})


@supervisor_page
@require_POST
def escalation_take(request, escalation_id):
    supervision.escalation_take(supervisor=request.user, escalation_id=escalation_id)
    return redirect("console-escalation", escalation_id=escalation_id)


@supervisor_page
@require_POST
def escalation_close(request, escalation_id):
    try:
        supervision.escalation_close(supervisor=request.user, escalation_id=escalation_id,
                                     action_taken=request.POST.get("action_taken", ""))
    except InvalidInput as error:
        escalation = supervision.escalation_get(escalation_id=escalation_id, attempted="escalation.view")
        return render(request, "console/escalation.html", {"escalation": escalation, "error": error,
                                                           "action_taken": request.POST.get("action_taken", ""),
                                                           "section": "escalations"},
                      status=400)
    return redirect("console-escalation", escalation_id=escalation_id)


# --- API ------------------------------------------------------------------------------

class SupervisorView(APIView):
    permission_classes = [IsSupervisor]


class AuditEventListView(SupervisorView):
    audit_action = "console.search"

    @extend_schema(summary="Search the audit trail (keyset pages)", parameters=[
        OpenApiParameter(name, str, required=False) for name in
        ("reviewer", "clip", "action", "outcome", "since", "until", "cursor")] + [
        OpenApiParameter("limit", int, required=False)],
        responses={200: AuditPageSerializer, **errors(400, *COMMON)}, auth=SESSION)
    def get(self, request):
        try:
            limit = int(request.query_params.get("limit") or supervision.PAGE_SIZE)
        except ValueError:
            raise InvalidInput(gettext("limit is a number."), code="invalid_filters",
                               fields={"limit": gettext("A number.")}) from None
        filters = supervision.audit_filters_parse(params=request.query_params)
        page = supervision.audit_search(supervisor=request.user, filters=filters,
                                        cursor=request.query_params.get("cursor"), limit=limit)
        next_url = None
        if page.next_cursor:
            next_url = reverse("api-audit-events") + "?" + urlencode(
                {**filters.as_params(), "limit": limit, "cursor": page.next_cursor})
        return Response(AuditPageSerializer(page, context={"next": next_url}).data)


class EscalationStatusSerializer(serializers.Serializer):
    # Query strings read empty values as "not given"; an explicit empty status is refused
    # in the view instead, so the answer matches the documented enum.
    status = serializers.ChoiceField(choices=[*Escalation.Status.values, "all"], required=False, default="")


class EscalationListView(SupervisorView):
    audit_action = "escalation.list"

    @extend_schema(summary="Escalations", parameters=[
        OpenApiParameter("status", str, required=False, enum=["open", "taken", "closed", "all"])],
        responses={200: EscalationListSerializer, **errors(400, *COMMON)}, auth=SESSION)
    def get(self, request):
        if request.query_params.get("status", None) == "":
            raise InvalidInput(gettext("status is one of open, taken, closed, all."), code="invalid_filters",
                               fields={"status": gettext("One of open, taken, closed, all.")})
        serializer = EscalationStatusSerializer(data=request.query_params)
        serializer.is_valid(raise_exception=True)
        wanted = serializer.validated_data["status"]
        statuses = (tuple(Escalation.Status.values) if wanted == "all" else (wanted,) if wanted
                    else (Escalation.Status.OPEN, Escalation.Status.TAKEN))
        return Response(EscalationListSerializer({"results": supervision.escalation_list(statuses=statuses)}).data)


class EscalationTakeView(SupervisorView):
    audit_action = "escalation.take"

    @extend_schema(summary="Take an escalation", request=None,
                   responses={200: EscalationSerializer, **errors(409, *COMMON)}, auth=SESSION)
    def post(self, request, escalation_id):
        escalation = supervision.escalation_take(supervisor=request.user, escalation_id=escalation_id)
        return Response(EscalationSerializer(escalation).data)


class CloseSerializer(serializers.Serializer):
    action_taken = StrictCharField(max_length=supervision.MAX_ACTION_TAKEN)


class EscalationCloseView(SupervisorView):
    audit_action = "escalation.close"

    @extend_schema(summary="Close an escalation", request=CloseSerializer,
                   responses={200: EscalationSerializer, **errors(400, 409, *COMMON)}, auth=SESSION)
    def post(self, request, escalation_id):
        serializer = CloseSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        escalation = supervision.escalation_close(supervisor=request.user, escalation_id=escalation_id,
                                                  action_taken=serializer.validated_data["action_taken"])
        return Response(EscalationSerializer(escalation).data)


class EscalationAudioTokenView(SupervisorView):
    audit_action = "audio.token"

    @extend_schema(summary="Audio token for an escalated clip", request=None,
                   responses={201: AudioTokenSerializer, **errors(409, *COMMON)}, auth=SESSION)
    def post(self, request, escalation_id):
        token = supervision.escalation_audio_token_issue(supervisor=request.user, escalation_id=escalation_id,
                                                         session_key=request.session.session_key)
        return Response(AudioTokenSerializer({"token": token}).data, status=status.HTTP_201_CREATED)


class EscalationAudioView(SupervisorView):
    """Stream an escalated clip: session plus a fresh token in the X-Audio-Token header."""

    audit_action = "audio.play"

    @extend_schema(summary="An escalated clip's audio", parameters=[AUDIO_TOKEN_HEADER],
                   responses={200: AUDIO, **errors(410, *COMMON)}, auth=SESSION)
    def get(self, request, escalation_id):
        clip = supervision.escalation_audio_open(supervisor=request.user, escalation_id=escalation_id,
                                                 token=request.headers.get("X-Audio-Token", ""),
                                                 session_key=request.session.session_key)
        return audio_response(clip)


# --- Reviewer quality (issue 11) ---------------------------------------------------------

QUALITY_COLUMNS = [
    # (sort key, heading, what the figure is)
    ("clips", _("Clips"), _("Transcriptions submitted")),
    ("gold_count", _("Gold"), _("Gold clips done")),
    ("gold_accuracy", _("Gold accuracy"), _("Mean of word accuracy (1 - WER) and label accuracy on gold clips")),
    ("gold_wer", _("Gold WER"), _("Word error rate against the gold reference")),
    ("label_accuracy", _("Gold labels"), _("Share of label groups chosen as the gold reference has them")),
    ("peer_agreement", _("Peer agreement"), _("1 - WER against other reviewers' text of the same clip")),
    ("acceptance_rate", _("Accepted in review"), _("Accepted or accepted with edits, of the submissions checked")),
    ("throughput", _("Clips / hour"), _("Clips per hour spent holding a clip")),
    ("median_seconds", _("Median s / clip"), _("Median time from lease to submit")),
    ("asr_unchanged", _("ASR kept as is"), _("Share of ASR drafts submitted unchanged")),
]


def _pct(value) -> str:
    return gettext("n/a") if value is None else f"{value:.0%}"


def _quality_cells(row) -> list[str]:
    return [str(row.clips), str(row.gold_count), _pct(row.gold_accuracy),
            gettext("n/a") if row.gold_wer is None else f"{row.gold_wer:.2f}", _pct(row.label_accuracy),
            _pct(row.peer_agreement), _pct(row.acceptance_rate),
            gettext("n/a") if row.throughput is None else f"{row.throughput:.1f}",
            gettext("n/a") if row.median_seconds is None else f"{row.median_seconds:.0f}", _pct(row.asr_unchanged)]


def _quality_context(request, query) -> dict:
    """Column headings with sort links (a second click reverses), and the rows' cells."""
    params = {key: value for key, value in request.GET.items() if key in ("project", "days", "end", "view")}
    columns = []
    leading = [("reviewer", gettext("Reviewer"), "")] + ([("day", gettext("Day"), "")] if query.view == "day" else [])
    for key, heading, title in leading + QUALITY_COLUMNS:
        current = query.sort == key
        order = "asc" if current and query.descending else "desc" if current else (
            "asc" if key in ("reviewer", "median_seconds", "gold_wer") else "desc")
        columns.append({"key": key, "heading": heading, "title": title, "numeric": key not in ("reviewer", "day"),
                        "url": "?" + urlencode({**params, "sort": key, "order": order}),
                        "aria_sort": ("descending" if query.descending else "ascending") if current else None})
    return {"columns": columns, "view_links": {
        view: "?" + urlencode({**params, "view": view}) for view in ("reviewer", "day")}}


@supervisor_page
@require_GET
def quality_page(request):
    from .models import Project

    context = {"section": "quality", "form": request.GET, "projects": Project.objects.order_by("name"),
               "days_default": quality.QUALITY_DAYS_DEFAULT, "days_max": quality.QUALITY_DAYS_MAX}
    try:
        query = quality.quality_query_parse(request.GET, today=_day_param(None))
    except InvalidInput as error:
        return render(request, "console/quality.html", {**context, "error": error}, status=400)
    rows = quality.quality_view(supervisor=request.user, query=query)
    for row in rows:
        row.cells = _quality_cells(row)
        row.spark_clips_points = quality.sparkline_points(row.spark_clips)
        row.spark_gold_points = quality.sparkline_points(row.spark_gold, top=1.0)
        row.spark_clips_label = ", ".join(str(v) for v in row.spark_clips)
        row.spark_gold_label = ", ".join(_pct(v) for v in row.spark_gold)
    return render(request, "console/quality.html", {
        **context, **_quality_context(request, query), "query": query, "rows": rows,
        "review_in_use": any(row.acceptance_rate is not None for row in rows),
    })


class QualityListView(SupervisorView):
    """Reviewer quality figures as JSON: the console page's table."""

    audit_action = "console.quality"

    @extend_schema(summary="Reviewer quality: gold accuracy, agreement, throughput", parameters=[
        OpenApiParameter("project", str, required=False, description="A project slug; all projects when absent."),
        OpenApiParameter("days", {"type": "integer", "minimum": 1, "maximum": quality.QUALITY_DAYS_MAX},
                         required=False, description=f"1 to {quality.QUALITY_DAYS_MAX} (default 14)."),
        OpenApiParameter("end", OpenApiTypes.DATE, required=False, description="The last day (default today)."),
        OpenApiParameter("view", str, required=False, enum=["reviewer", "day"]),
        OpenApiParameter("sort", str, required=False, enum=list(quality.SORT_KEYS)),
        OpenApiParameter("order", str, required=False, enum=["asc", "desc"])],
        responses={200: QualityListSerializer, **errors(400, *COMMON)}, auth=SESSION)
    def get(self, request):
        query = quality.quality_query_parse(request.query_params, strict=True,
                                            today=timezone.localdate(timezone=supervision.console_time_zone()))
        rows = quality.quality_view(supervisor=request.user, query=query)
        return Response(QualityListSerializer({"query": query, "rows": rows}).data)
