"""The JSON API under /api/v1/: parse, call one service, render."""

import logging

from django.conf import settings
from django.contrib.auth import authenticate, login, logout
from django.core.exceptions import RequestDataTooBig, SuspiciousOperation
from django.db import DatabaseError, InterfaceError, OperationalError, transaction
from django.http import Http404, HttpResponse
from django.middleware.csrf import get_token
from django.utils.decorators import method_decorator
from django.utils.translation import gettext
from drf_spectacular.utils import extend_schema, extend_schema_view
from rest_framework import exceptions, parsers, serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import ingest, leases, lifecycle, mfa, permissions, services
from .api_serializers import (
    AUDIO,
    AUDIO_TOKEN_HEADER,
    COMMON,
    SESSION,
    TOKEN,
    AccessReportSerializer,
    AssignmentSerializer,
    AudioTokenSerializer,
    DraftSavedSerializer,
    ErasedSerializer,
    FlaggedSerializer,
    IngestedSerializer,
    NotSampledSerializer,
    OptInSerializer,
    OptOutSerializer,
    ProgressSerializer,
    SignedInSerializer,
    SkippedSerializer,
    SubmittedSerializer,
    errors,
)
from .audit import actor_role, audit_denied
from .errors import AudioGone, DomainError, NotFoundDenied, json_error
from .ingest import IngestSerializer
from .models import MAX_TEXT
from .permissions import IsIngestService, IsReviewer
from .views import locked_out

logger = logging.getLogger(__name__)


def exception_handler(exc, context):
    """Answer every API error as JSON ``{code, detail}`` (errors.json_error); audit every denial."""
    request = context.get("request")
    user = getattr(request, "user", None) if request is not None else None
    if isinstance(exc, DomainError):
        if exc.denied:
            audit_denied(actor=user, **exc.denied)
        return exc.response()
    if isinstance(exc, (exceptions.NotAuthenticated, exceptions.AuthenticationFailed, exceptions.PermissionDenied)):
        view = context.get("view")
        audit_denied(actor=user, attempted=getattr(view, "audit_action", "api"), reason=type(exc).__name__)
        if isinstance(exc, exceptions.PermissionDenied) and "CSRF" in str(exc.detail):
            return json_error("csrf_failed")
        if isinstance(exc, exceptions.PermissionDenied):
            # Not a role for this endpoint: answer as if it did not exist.
            return json_error("not_found")
    if isinstance(exc, Http404):
        return json_error("not_found")
    if isinstance(exc, RequestDataTooBig):
        return json_error("request_too_large")
    if isinstance(exc, SuspiciousOperation):  # e.g. more form fields or files than Django parses
        return json_error("bad_request")
    if isinstance(exc, (OperationalError, InterfaceError)):
        logger.warning("database unavailable: %s", type(exc).__name__)
        return json_error("database_unavailable", retry_after=5)
    if isinstance(exc, exceptions.ValidationError):
        return json_error("invalid", fields=exc.detail if isinstance(exc.detail, dict) else {"non_field": exc.detail})
    if isinstance(exc, exceptions.APIException):
        wait = getattr(exc, "wait", None)
        response = json_error(str(exc.default_code), detail=str(exc.detail), status=exc.status_code,
                              retry_after=int(wait) if wait else None)
        if getattr(exc, "auth_header", None):
            response["WWW-Authenticate"] = exc.auth_header
        return response
    logger.error("unhandled API error: %s", type(exc).__name__, exc_info=not isinstance(exc, DatabaseError))
    return json_error("server_error")


def audio_response(clip) -> HttpResponse:
    """The bytes of one clip with headers that keep them out of caches, files and other sites.

    In x-accel mode the body is empty: the proxy serves the file from an internal-only
    location after this permission-checked view said so.
    """
    if settings.AUDIO_DELIVERY == "x-accel":
        response = HttpResponse(b"", content_type="audio/mpeg")
        response["X-Accel-Redirect"] = settings.AUDIO_ACCEL_PREFIX + clip.audio.name
        response["X-Accel-Buffering"] = "no"
    else:
        try:
            with clip.audio.open("rb") as handle:
                response = HttpResponse(handle.read(), content_type="audio/mpeg")
        except (FileNotFoundError, ValueError) as exc:  # purged by retention, or lost from storage
            raise AudioGone() from exc
    response["Content-Disposition"] = "inline"
    response["Cache-Control"] = "no-store, private"
    response["Pragma"] = "no-cache"
    response["Cross-Origin-Resource-Policy"] = "same-origin"
    response["X-Content-Type-Options"] = "nosniff"
    response["Referrer-Policy"] = "no-referrer"
    return response


class StrictCharField(serializers.CharField):
    """Text only: DRF's CharField would turn 0 or 1.5 into "0" and "1.5"."""

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer, not "3" or 3.0 or true."""

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return super().to_internal_value(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean, not "yes" or 1."""

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class OwnerFirstView(APIView):
    """Base of the views on one object of the caller's (``owner_kwarg`` in the URL).

    Ownership is established once, by the service's own lookup of the object. A request
    refused before that lookup (invalid input, "method not allowed", a refused token) checks
    it first, so someone else's object answers 404 whatever is sent."""

    owner_kwarg = ""
    owner_check = None  # permissions.assignment_owned or review_owned: raises the hiding 404
    _admitted = False  # authenticated, permitted and not throttled: initial() went through

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self._admitted = True

    def handle_exception(self, exc):
        if (self._admitted and self.owner_kwarg in self.kwargs and not isinstance(exc, NotFoundDenied)
                and isinstance(exc, (exceptions.APIException, DomainError))):
            try:
                type(self).owner_check(self.request.user, self.kwargs[self.owner_kwarg],
                                       attempted=getattr(self, "audit_action", "api"))
            except NotFoundDenied as denied:
                exc = denied
        return super().handle_exception(exc)


class ReviewerView(OwnerFirstView):
    permission_classes = [IsReviewer]
    owner_kwarg = "assignment_id"
    owner_check = staticmethod(permissions.assignment_owned)


class LoginSerializer(serializers.Serializer):
    username = StrictCharField(max_length=150)
    password = StrictCharField(max_length=256, trim_whitespace=False)
    otp_token = StrictCharField(max_length=12, required=False, allow_blank=True, default="")


class LoginView(APIView):
    """Session sign-in for scripts: same lockout and second factor as the web form."""

    authentication_classes = []
    permission_classes = []
    audit_action = "auth.login"

    @extend_schema(summary="Sign in (session cookie); supervisors and admins add otp_token", request=LoginSerializer,
                   responses={200: SignedInSerializer, **errors(400, 401, 413, 415, 429, 503)}, auth=[])
    @method_decorator(transaction.atomic)
    def post(self, request):
        serializer = LoginSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        data = serializer.validated_data
        user = authenticate(request._request, username=data["username"], password=data["password"])
        if getattr(request._request, "axes_locked_out", False):
            return locked_out(request._request)
        if user is None:
            return json_error("invalid_credentials")
        login(request._request, user)
        if permissions.mfa_required(user) and not mfa.mfa_verify(request=request._request, token=data["otp_token"]):
            request._request.session.flush()  # this session only; the user's others stay
            return json_error("mfa_invalid")
        # Scripts send this back as X-CSRFToken on unsafe methods, like the pages do.
        return Response(SignedInSerializer({"username": user.get_username(), "role": actor_role(user),
                                            "csrf_token": get_token(request._request)}).data)


class LogoutView(APIView):
    permission_classes = []
    audit_action = "auth.logout"

    @extend_schema(summary="Sign out everywhere", request=None, responses={204: None, **errors(413, 415, 503)},
                   auth=[])
    @method_decorator(transaction.atomic)
    def post(self, request):
        logout(request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class ClipIngestView(APIView):
    permission_classes = [IsIngestService]
    parser_classes = [parsers.MultiPartParser]
    audit_action = "clip.ingest"
    serializer_class = IngestSerializer  # the request shape; ingest.clip_ingest validates with it

    @extend_schema(summary="Ingest one clip (service token)", request={"multipart/form-data": IngestSerializer},
                   responses={201: IngestedSerializer, 200: NotSampledSerializer, **errors(400, 422, *COMMON)},
                   auth=TOKEN)
    def post(self, request):
        # Refuse an oversized upload before reading it: uploads stay in memory only.
        if _content_length(request) > settings.INGEST_MAX_BYTES + 64 * 1024:
            raise DomainError("The file is too large.", code="file_too_large", status=413)
        clip = ingest.clip_ingest(actor=request.user, data=request.data)
        if clip is None:
            return Response(NotSampledSerializer({"sampled": False,
                                                  "detail": "Not selected for review; nothing was stored."}).data,
                            status=status.HTTP_200_OK)
        return Response(IngestedSerializer(clip).data, status=status.HTTP_201_CREATED)


def _content_length(request) -> int:
    # A garbled header is Django's business (it reads no body then), not a server error here.
    try:
        return int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        return 0


class NextSerializer(serializers.Serializer):
    another = StrictBooleanField(required=False, default=False)


class AssignmentNextView(ReviewerView):
    audit_action = "assignment.lease"

    @extend_schema(summary="Lease the next clip, or get the live lease again", request=NextSerializer,
                   responses={201: AssignmentSerializer, 204: None, **errors(400, 429, *COMMON)}, auth=SESSION)
    def post(self, request):
        serializer = NextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assignment = leases.assignment_next(reviewer=request.user, session_key=request.session.session_key,
                                            **serializer.validated_data)
        if assignment is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        progress = services.reviewer_progress(reviewer=request.user)
        return Response(AssignmentSerializer(assignment, context={"progress": progress}).data,
                        status=status.HTTP_201_CREATED)


class ProgressView(ReviewerView):
    audit_action = "progress.view"

    @extend_schema(summary="Today's progress against my quota", responses={200: ProgressSerializer, **errors(*COMMON)},
                   auth=SESSION)
    def get(self, request):
        return Response(ProgressSerializer(services.reviewer_progress(reviewer=request.user)).data)


class AssignmentDetailView(ReviewerView):
    audit_action = "assignment.view"

    @extend_schema(summary="One of my assignments", responses={200: AssignmentSerializer, **errors(*COMMON)},
                   auth=SESSION)
    def get(self, request, assignment_id):
        assignment = services.assignment_get(reviewer=request.user, assignment_id=assignment_id)
        return Response(AssignmentSerializer(assignment).data)


class AudioTokenView(ReviewerView):
    audit_action = "audio.token"

    @extend_schema(summary="A fresh one-play audio token", request=None,
                   responses={201: AudioTokenSerializer, **errors(409, 429, *COMMON)}, auth=SESSION)
    def post(self, request, assignment_id):
        grant = services.audio_token_issue(reviewer=request.user, assignment_id=assignment_id,
                                           session_key=request.session.session_key)
        return Response(AudioTokenSerializer(grant).data, status=status.HTTP_201_CREATED)


class AudioView(ReviewerView):
    """Stream one clip's audio: session plus a fresh token in the X-Audio-Token header."""

    audit_action = "audio.play"

    @extend_schema(summary="The clip's audio", parameters=[AUDIO_TOKEN_HEADER],
                   responses={200: AUDIO, **errors(410, 429, *COMMON)}, auth=SESSION)
    def get(self, request, assignment_id):
        clip = services.audio_open(reviewer=request.user, assignment_id=assignment_id,
                                   token=request.headers.get("X-Audio-Token", ""),
                                   session_key=request.session.session_key)
        return audio_response(clip)


# Issue 12: checked against the project's speakers and the clip's length by reviews/segments.py.
SEGMENTS_FIELD = dict(required=False, default=list, help_text="[{start_ms, end_ms, speaker, text}, ...]")


class DraftSerializer(serializers.Serializer):
    text = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT)
    labels = serializers.JSONField(required=False, default=dict)
    segments = serializers.JSONField(**SEGMENTS_FIELD)
    version = StrictIntegerField(min_value=0, max_value=services.MAX_VERSION - 1)


class DraftView(ReviewerView):
    audit_action = "draft.save"

    @extend_schema(summary="Autosave a draft (optimistic version)", request=DraftSerializer,
                   responses={200: DraftSavedSerializer, **errors(400, 409, *COMMON)}, auth=SESSION)
    def put(self, request, assignment_id):
        serializer = DraftSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        draft = services.draft_save(reviewer=request.user, assignment_id=assignment_id, **serializer.validated_data)
        return Response(DraftSavedSerializer(draft).data)


# Listening time the page reports (milliseconds of the clip heard, replays included): the
# bytes stay in the page for the lease, so this is the only measure of listening there is.
LISTENED_MS_FIELD = dict(required=False, allow_null=True, default=None, min_value=0, max_value=24 * 3600 * 1000)


class SubmitSerializer(serializers.Serializer):
    text = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT)
    labels = serializers.JSONField(required=False, default=dict)
    segments = serializers.JSONField(**SEGMENTS_FIELD)
    listened_ms = StrictIntegerField(**LISTENED_MS_FIELD)


class SubmitView(ReviewerView):
    audit_action = "transcription.submit"

    @extend_schema(summary="Submit (idempotent)", request=SubmitSerializer,
                   responses={201: SubmittedSerializer, 200: SubmittedSerializer, **errors(400, 409, *COMMON)},
                   auth=SESSION)
    def post(self, request, assignment_id):
        serializer = SubmitSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        transcription, created = services.transcription_submit(
            reviewer=request.user, assignment_id=assignment_id, **serializer.validated_data
        )
        return Response(
            SubmittedSerializer(transcription).data,
            status=status.HTTP_201_CREATED if created else status.HTTP_200_OK,
        )


class ReasonSerializer(serializers.Serializer):
    """A short reason, for skipping and for flagging."""

    reason = StrictCharField(max_length=services.MAX_REASON)


class SkipSerializer(ReasonSerializer):
    listened_ms = StrictIntegerField(**LISTENED_MS_FIELD)


class SkipView(ReviewerView):
    audit_action = "assignment.skip"

    @extend_schema(summary="Skip with a reason", request=SkipSerializer,
                   responses={200: SkippedSerializer, **errors(400, 409, *COMMON)}, auth=SESSION)
    def post(self, request, assignment_id):
        serializer = SkipSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        assignment = services.assignment_skip(reviewer=request.user, assignment_id=assignment_id,
                                              **serializer.validated_data)
        return Response(SkippedSerializer(assignment).data)


class FlagView(ReviewerView):
    audit_action = "clip.flag"

    @extend_schema(summary="Flag as distressing", request=ReasonSerializer,
                   responses={201: FlaggedSerializer, **errors(400, 409, *COMMON)}, auth=SESSION)
    def post(self, request, assignment_id):
        serializer = ReasonSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        escalation = services.clip_flag(reviewer=request.user, assignment_id=assignment_id,
                                        reason=serializer.validated_data["reason"])
        return Response(FlaggedSerializer({
            "escalation": escalation.pk,
            "detail": gettext("Thank you for flagging this. The clip has been taken out of every queue and a "
                              "supervisor will look at it. If it stayed with you, take a break before the next one."),
        }).data, status=status.HTTP_201_CREATED)


class SubjectSerializer(serializers.Serializer):
    account_id = StrictCharField(max_length=128)


class SubjectView(APIView):
    """Opt-out, opt-in and erasure for the upstream system (service token). The account id
    is turned into its pseudonym at once and never echoed back."""

    permission_classes = [IsIngestService]
    operation = None
    shape = None  # the output serializer

    def post(self, request):
        serializer = SubjectSerializer(data=request.data)
        if not serializer.is_valid():
            raise DomainError("An account id is required.", code="invalid_account_id",
                              fields={"account_id": "Required, at most 128 characters."})
        counts = self.operation(actor=request.user, account_id=serializer.validated_data["account_id"])
        return Response(self.shape(counts).data)


@extend_schema_view(post=extend_schema(summary="Opt a subject out", request=SubjectSerializer,
                                      responses={200: OptOutSerializer, **errors(400, *COMMON)}, auth=TOKEN))
class SubjectOptOutView(SubjectView):
    audit_action = "subject.opt_out"
    operation = staticmethod(lifecycle.subject_opt_out)
    shape = OptOutSerializer


@extend_schema_view(post=extend_schema(summary="Opt a subject in again", request=SubjectSerializer,
                                      responses={200: OptInSerializer, **errors(400, *COMMON)}, auth=TOKEN))
class SubjectOptInView(SubjectView):
    audit_action = "subject.opt_in"
    operation = staticmethod(lifecycle.subject_opt_in)
    shape = OptInSerializer


@extend_schema_view(post=extend_schema(summary="Erase a subject", request=SubjectSerializer,
                                      responses={200: ErasedSerializer, **errors(400, *COMMON)}, auth=TOKEN))
class SubjectEraseView(SubjectView):
    audit_action = "subject.erase"
    operation = staticmethod(lifecycle.subject_erase)
    shape = ErasedSerializer


@extend_schema_view(post=extend_schema(summary="Who heard a subject's recordings (counts by role and day)",
                                      request=SubjectSerializer,
                                      responses={200: AccessReportSerializer, **errors(400, *COMMON)}, auth=TOKEN))
class SubjectAccessReportView(SubjectView):
    """Who heard this subject's recordings: counts by role and day, never reviewer names."""

    audit_action = "subject.access_report"
    operation = staticmethod(lifecycle.subject_access_report)
    shape = AccessReportSerializer
