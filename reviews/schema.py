"""The OpenAPI contract (drf-spectacular): response shapes, error shapes and auth for every
API view, kept in one place so the views stay thin. Served at /api/v1/schema/."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import serializers

from . import api, console


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "reviews.permissions.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Ingest services: `Token <key>`."}


# --- Shapes ---------------------------------------------------------------------------

class ErrorSerializer(serializers.Serializer):
    code = serializers.CharField(help_text="Stable, machine-readable.")
    detail = serializers.CharField(help_text="For people.")
    fields = serializers.DictField(required=False, help_text="Per-field problems of invalid input.")
    resets_at = serializers.DateTimeField(required=False, allow_null=True, help_text="When a quota frees up.")


def errors(*statuses: int) -> dict:
    described = {
        400: "Invalid input.", 401: "Not signed in, or a bad service token.", 410: "The audio is gone.",
        404: "Not found, or not yours (the same answer for both).", 409: "Stale version, or the lease ended.",
        413: "The request is too large.", 415: "Unsupported media type or audio.", 422: "Audio refused.",
        429: "A quota or the sign-in lockout applies.", 503: "The database is briefly unavailable.",
    }
    return {status: OpenApiResponse(ErrorSerializer, description=described[status]) for status in statuses}


COMMON = (401, 404, 413, 415, 503)


class LabelSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    shortcut = serializers.IntegerField(allow_null=True)


class LabelGroupSerializer(serializers.Serializer):
    key = serializers.CharField()
    name = serializers.CharField()
    kind = serializers.ChoiceField(choices=["multi", "single"])
    required = serializers.BooleanField()
    labels = LabelSerializer(many=True)


class SegmentSchemaSerializer(serializers.Serializer):
    speakers = serializers.ListField(child=serializers.CharField())


class LabelSchemaSerializer(serializers.Serializer):
    name = serializers.CharField()
    groups = LabelGroupSerializer(many=True)
    segments = SegmentSchemaSerializer(allow_null=True, help_text="Segments are asked for when set (issue 12).")


class SegmentSerializer(serializers.Serializer):
    start_ms = serializers.IntegerField(min_value=0)
    end_ms = serializers.IntegerField(min_value=1)
    speaker = serializers.CharField()
    text = serializers.CharField(allow_blank=True)


class SpectrogramSerializer(serializers.Serializer):
    bands = serializers.IntegerField(min_value=1)
    columns = serializers.IntegerField(min_value=1)
    data = serializers.CharField(help_text="base64 of bands x columns uint8 log-mel levels, column after column, "
                                           "lowest band first")


class ClipSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    duration_ms = serializers.IntegerField()
    locale = serializers.CharField()
    peaks = serializers.ListField(child=serializers.IntegerField(min_value=0, max_value=100))
    spectrogram = SpectrogramSerializer(allow_null=True, help_text="Null for clips ingested before issue 12.")


LABELS_FIELD = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                     help_text="{group_key: [label_key, ...]}")


class DraftStateSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    labels = LABELS_FIELD
    segments = SegmentSerializer(many=True)
    version = serializers.IntegerField()


class AsrDraftSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True, help_text="The recognizer's hypothesis; empty when none.")
    confidence = serializers.FloatField(allow_null=True, min_value=0, max_value=1)


class ProgressSerializer(serializers.Serializer):
    clips_today = serializers.IntegerField()
    clips_per_day = serializers.IntegerField()
    resets_at = serializers.DateTimeField()


class AssignmentSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()
    clip = ClipSerializer()
    label_schema = LabelSchemaSerializer()
    lease_expires_at = serializers.DateTimeField()
    audio_token_url = serializers.CharField()
    audio_url = serializers.CharField()
    draft = DraftStateSerializer()
    asr = AsrDraftSerializer(help_text="Pre-fills the text when there is no draft yet (issue 11).")
    skip_reasons = serializers.ListField(child=serializers.CharField(),
                                         help_text="The project's preset skip reasons; the page adds \"Other\".")
    guidelines_html = serializers.CharField(
        allow_blank=True, help_text="The project's guidelines as sanitized HTML; empty string when none (issue 12).")
    progress = ProgressSerializer(allow_null=True)


class AudioTokenSerializer(serializers.Serializer):
    token = serializers.CharField()
    expires_in = serializers.IntegerField()
    lease_expires_at = serializers.DateTimeField(required=False)


class DraftSavedSerializer(DraftStateSerializer):
    lease_expires_at = serializers.DateTimeField()


class SubmittedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.UUIDField()
    submitted_at = serializers.DateTimeField()


class SkippedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.CharField()


class FlaggedSerializer(serializers.Serializer):
    escalation = serializers.IntegerField()
    detail = serializers.CharField()


class IngestedSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    duration_ms = serializers.IntegerField()


class NotSampledSerializer(serializers.Serializer):
    sampled = serializers.BooleanField()
    detail = serializers.CharField()


class SignedInSerializer(serializers.Serializer):
    username = serializers.CharField()
    role = serializers.CharField()
    csrf_token = serializers.CharField(help_text="Send as X-CSRFToken on POST, PUT and DELETE.")


class OptOutSerializer(serializers.Serializer):
    clips_withheld = serializers.IntegerField()
    leases_revoked = serializers.IntegerField()


class OptInSerializer(serializers.Serializer):
    was_opted_out = serializers.BooleanField()
    clips_released = serializers.IntegerField()


class PlayDaySerializer(serializers.Serializer):
    day = serializers.DateField(help_text="UTC day.")
    role = serializers.CharField(help_text="The role the listener acted in (reviewer, supervisor, ...).")
    plays = serializers.IntegerField()


class AccessReportSerializer(serializers.Serializer):
    clips = serializers.IntegerField(help_text="The subject's clips still held and linked to them.")
    clips_reviewed = serializers.IntegerField()
    plays = serializers.IntegerField(help_text="Audio fetches of those clips, from the audit trail.")
    plays_by_role = serializers.DictField(child=serializers.IntegerField())
    play_days = PlayDaySerializer(many=True)
    clips_escalated = serializers.IntegerField()
    opted_out = serializers.BooleanField()


class ErasedSerializer(serializers.Serializer):
    clips = serializers.IntegerField()
    assignments = serializers.IntegerField()
    drafts = serializers.IntegerField()
    revisions = serializers.IntegerField()
    transcriptions = serializers.IntegerField()
    audio_files = serializers.IntegerField()


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(allow_blank=True)
    actor_id = serializers.IntegerField(allow_null=True)
    role = serializers.CharField(allow_blank=True)
    action = serializers.CharField()
    outcome = serializers.ChoiceField(choices=["allowed", "denied"])
    object_type = serializers.CharField(allow_blank=True)
    object_id = serializers.CharField(allow_blank=True)
    clip_id = serializers.UUIDField(allow_null=True)
    client_ip = serializers.IPAddressField(allow_null=True)
    request_id = serializers.CharField(allow_blank=True)
    details = serializers.DictField()


class AuditPageSerializer(serializers.Serializer):
    results = AuditEventSerializer(many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.CharField(allow_null=True)


class EscalationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    clip_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["open", "taken", "closed"])
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    flagged_by = serializers.CharField()
    taken_by = serializers.CharField(allow_null=True)
    taken_at = serializers.DateTimeField(allow_null=True)
    action_taken = serializers.CharField(allow_blank=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    audio_token_url = serializers.CharField()
    audio_url = serializers.CharField()


class EscalationListSerializer(serializers.Serializer):
    results = EscalationSerializer(many=True)


AUDIO = OpenApiResponse(OpenApiTypes.BINARY, description="audio/mpeg bytes; no-store, inline, no file name.")
AUDIO_TOKEN_HEADER = OpenApiParameter("X-Audio-Token", str, OpenApiParameter.HEADER, required=True,
                                      description="A fresh token from the audio-token endpoint.")
SESSION = [{"cookieAuth": []}]
TOKEN = [{"serviceToken": []}]


def _annotate():
    extend_schema_view(post=extend_schema(
        summary="Sign in (session cookie); supervisors and admins add otp_token", request=api.LoginSerializer,
        responses={200: SignedInSerializer, **errors(400, 401, 413, 415, 429, 503)}, auth=[]))(api.LoginView)
    extend_schema_view(post=extend_schema(summary="Sign out everywhere", request=None,
                                          responses={204: None, **errors(413, 415, 503)}, auth=[]))(api.LogoutView)
    extend_schema_view(post=extend_schema(
        summary="Ingest one clip (service token)", request={"multipart/form-data": api.IngestSerializer},
        responses={201: IngestedSerializer, 200: NotSampledSerializer, **errors(400, 422, *COMMON)},
        auth=TOKEN))(api.ClipIngestView)
    extend_schema_view(post=extend_schema(
        summary="Lease the next clip, or get the live lease again", request=api.NextSerializer,
        responses={201: AssignmentSerializer, 204: None, **errors(400, 429, *COMMON)},
        auth=SESSION))(api.AssignmentNextView)
    extend_schema_view(get=extend_schema(summary="One of my assignments", responses={
        200: AssignmentSerializer, **errors(*COMMON)}, auth=SESSION))(api.AssignmentDetailView)
    extend_schema_view(post=extend_schema(summary="A fresh one-play audio token", request=None, responses={
        201: AudioTokenSerializer, **errors(409, 429, *COMMON)}, auth=SESSION))(api.AudioTokenView)
    extend_schema_view(get=extend_schema(summary="The clip's audio", parameters=[AUDIO_TOKEN_HEADER], responses={
        200: AUDIO, **errors(410, 429, *COMMON)}, auth=SESSION))(api.AudioView)
    extend_schema_view(put=extend_schema(summary="Autosave a draft (optimistic version)", request=api.DraftSerializer,
                                         responses={200: DraftSavedSerializer, **errors(400, 409, *COMMON)},
                                         auth=SESSION))(api.DraftView)
    extend_schema_view(post=extend_schema(summary="Submit (idempotent)", request=api.SubmitSerializer, responses={
        201: SubmittedSerializer, 200: SubmittedSerializer, **errors(400, 409, *COMMON)},
        auth=SESSION))(api.SubmitView)
    extend_schema_view(post=extend_schema(summary="Skip with a reason", request=api.SkipSerializer, responses={
        200: SkippedSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))(api.SkipView)
    extend_schema_view(post=extend_schema(summary="Flag as distressing", request=api.ReasonSerializer, responses={
        201: FlaggedSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))(api.FlagView)
    extend_schema_view(get=extend_schema(summary="Today's progress against my quota", responses={
        200: ProgressSerializer, **errors(*COMMON)}, auth=SESSION))(api.ProgressView)
    for view, shape, summary in ((api.SubjectOptOutView, OptOutSerializer, "Opt a subject out"),
                                 (api.SubjectOptInView, OptInSerializer, "Opt a subject in again"),
                                 (api.SubjectEraseView, ErasedSerializer, "Erase a subject"),
                                 (api.SubjectAccessReportView, AccessReportSerializer,
                                  "Who heard a subject's recordings (counts by role and day)")):
        extend_schema_view(post=extend_schema(summary=summary, request=api.SubjectSerializer, responses={
            200: shape, **errors(400, *COMMON)}, auth=TOKEN))(view)
    extend_schema_view(get=extend_schema(summary="Search the audit trail (keyset pages)", parameters=[
        OpenApiParameter(name, str, required=False) for name in
        ("reviewer", "clip", "action", "outcome", "since", "until", "cursor")] + [
        OpenApiParameter("limit", int, required=False)],
        responses={200: AuditPageSerializer, **errors(400, *COMMON)}, auth=SESSION))(console.AuditEventListView)
    extend_schema_view(get=extend_schema(summary="Escalations", parameters=[
        OpenApiParameter("status", str, required=False, enum=["open", "taken", "closed", "all"])],
        responses={200: EscalationListSerializer, **errors(400, *COMMON)}, auth=SESSION))(console.EscalationListView)
    extend_schema_view(post=extend_schema(summary="Take an escalation", request=None, responses={
        200: EscalationSerializer, **errors(409, *COMMON)}, auth=SESSION))(console.EscalationTakeView)
    extend_schema_view(post=extend_schema(summary="Close an escalation", request=console.CloseSerializer, responses={
        200: EscalationSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))(console.EscalationCloseView)
    extend_schema_view(post=extend_schema(summary="Audio token for an escalated clip", request=None, responses={
        201: AudioTokenSerializer, **errors(409, *COMMON)}, auth=SESSION))(console.EscalationAudioTokenView)
    extend_schema_view(get=extend_schema(summary="An escalated clip's audio", parameters=[AUDIO_TOKEN_HEADER],
                                         responses={200: AUDIO, **errors(410, *COMMON)},
                                         auth=SESSION))(console.EscalationAudioView)


_annotate()


# --- Reviewer quality (issue 11, part 4) ---------------------------------------------------

class QualityRowSerializer(serializers.Serializer):
    reviewer = serializers.CharField()
    day = serializers.DateField(allow_null=True, help_text="With view=day: the console day; else null.")
    clips = serializers.IntegerField(help_text="Transcriptions submitted.")
    gold_count = serializers.IntegerField(help_text="Gold clips done.")
    gold_wer = serializers.FloatField(allow_null=True, help_text="Mean WER against the gold references.")
    label_accuracy = serializers.FloatField(allow_null=True, help_text="Mean share of label groups as the reference.")
    gold_accuracy = serializers.FloatField(allow_null=True,
                                           help_text="Mean of word accuracy (1 - WER, >= 0) and label accuracy.")
    peer_agreement = serializers.FloatField(allow_null=True, help_text="1 - WER against peers on the same clips.")
    peer_pairs = serializers.IntegerField()
    acceptance_rate = serializers.FloatField(allow_null=True, help_text="Accepted (as is or edited) of those checked.")
    throughput = serializers.FloatField(allow_null=True, help_text="Clips per hour holding a clip.")
    working_minutes = serializers.FloatField()
    median_seconds = serializers.FloatField(allow_null=True, help_text="Median seconds from lease to submit.")
    asr_drafts = serializers.IntegerField(help_text="Transcriptions that started from the recognizer's draft.")
    asr_unchanged = serializers.FloatField(allow_null=True, help_text="Share of those submitted unchanged.")
    paused_on = serializers.ListField(child=serializers.CharField(), help_text="Projects the reviewer is paused on.")
    clips_per_day = serializers.ListField(child=serializers.IntegerField(), help_text="With view=reviewer.")
    gold_accuracy_per_day = serializers.ListField(child=serializers.FloatField(allow_null=True))


class QualityListSerializer(serializers.Serializer):
    project = serializers.CharField(allow_null=True)
    start = serializers.DateField()
    end = serializers.DateField()
    view = serializers.ChoiceField(choices=["reviewer", "day"])
    results = QualityRowSerializer(many=True)


def _annotate_quality():
    from .quality import QUALITY_DAYS_MAX, SORT_KEYS

    extend_schema_view(get=extend_schema(summary="Reviewer quality: gold accuracy, agreement, throughput", parameters=[
        OpenApiParameter("project", str, required=False, description="A project slug; all projects when absent."),
        OpenApiParameter("days", {"type": "integer", "minimum": 1, "maximum": QUALITY_DAYS_MAX}, required=False,
                         description=f"1 to {QUALITY_DAYS_MAX} (default 14)."),
        OpenApiParameter("end", OpenApiTypes.DATE, required=False, description="The last day (default today)."),
        OpenApiParameter("view", str, required=False, enum=["reviewer", "day"]),
        OpenApiParameter("sort", str, required=False, enum=list(SORT_KEYS)),
        OpenApiParameter("order", str, required=False, enum=["asc", "desc"])],
        responses={200: QualityListSerializer, **errors(400, *COMMON)}, auth=SESSION))(console.QualityListView)


_annotate_quality()


# --- Checkers and feedback (issue 11, parts 2 and 3) -----------------------------------

class CandidateSerializer(serializers.Serializer):
    text = serializers.CharField(allow_blank=True)
    labels = LABELS_FIELD
    segments = SegmentSerializer(many=True, required=False)


class PairFiguresSerializer(serializers.Serializer):
    a = serializers.IntegerField()
    b = serializers.IntegerField()
    wer = serializers.FloatField()
    cer = serializers.FloatField()


class AgreementSerializer(serializers.Serializer):
    normalisation = serializers.CharField()
    transcriptions = serializers.IntegerField()
    wer = serializers.FloatField(help_text="Mean pairwise word error rate, after normalisation.")
    cer = serializers.FloatField(help_text="Mean pairwise character error rate, after normalisation.")
    pairs = PairFiguresSerializer(many=True)
    labels = serializers.DictField(child=serializers.FloatField(), help_text="Share of agreeing pairs per group.")
    score = serializers.FloatField(help_text="1 - mean WER, at least 0.")
    threshold = serializers.FloatField()
    labels_without_majority = serializers.ListField(child=serializers.CharField())
    decision = serializers.ChoiceField(choices=["consensus", "adjudication"])
    consensus_index = serializers.IntegerField(allow_null=True)
    consensus_labels = LABELS_FIELD


class ReviewSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField(help_text="\"check\" (a submission) or \"adjudicate\" (a clip to decide).")
    status = serializers.CharField()
    clip = ClipSerializer()
    label_schema = LabelSchemaSerializer()
    lease_expires_at = serializers.DateTimeField()
    audio_token_url = serializers.CharField()
    audio_url = serializers.CharField()
    transcription = CandidateSerializer(allow_null=True, help_text="The submission to check (never its author).")
    candidates = CandidateSerializer(many=True, help_text="To adjudicate: the transcriptions that stand.")
    agreement = AgreementSerializer(allow_null=True)
    reject_reasons = serializers.ListField(child=serializers.CharField(),
                                           help_text="The project's preset reasons; \"Other\" needs a detail.")


class DecisionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField(help_text="\"check\" (a submission) or \"adjudicate\" (a clip to decide).")
    status = serializers.ChoiceField(choices=["accepted", "edited", "rejected", "adjudicated"])
    decided_at = serializers.DateTimeField(allow_null=True)


class FeedbackItemSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["accepted", "edited", "rejected"])
    decided_at = serializers.DateTimeField(allow_null=True)
    submitted_at = serializers.DateTimeField(allow_null=True)
    reason = serializers.CharField(allow_blank=True)
    detail = serializers.CharField(allow_blank=True)
    text = serializers.CharField(allow_blank=True, help_text="What I submitted.")
    edited_text = serializers.CharField(allow_blank=True)
    diff = serializers.ListField(child=serializers.ListField(child=serializers.CharField()),
                                 help_text="[[\"equal\"|\"delete\"|\"insert\", words], ...]")


class FeedbackListSerializer(serializers.Serializer):
    results = FeedbackItemSerializer(many=True)


def _annotate_reviews():
    from . import api_review

    extend_schema_view(post=extend_schema(
        summary="Lease the next review (adjudications first), or get the live one again",
        request=api_review.ReviewNextSerializer, responses={201: ReviewSerializer, 204: None,
                                                            **errors(400, 429, *COMMON)},
        auth=SESSION))(api_review.ReviewNextView)
    extend_schema_view(get=extend_schema(summary="One of my reviews", responses={
        200: ReviewSerializer, **errors(*COMMON)}, auth=SESSION))(api_review.ReviewDetailView)
    extend_schema_view(post=extend_schema(summary="A fresh one-play audio token for the clip under review",
                                          request=None, responses={201: AudioTokenSerializer,
                                                                   **errors(409, 429, *COMMON)},
                                          auth=SESSION))(api_review.ReviewAudioTokenView)
    extend_schema_view(get=extend_schema(summary="The audio of the clip under review",
                                         parameters=[AUDIO_TOKEN_HEADER],
                                         responses={200: AUDIO, **errors(410, 429, *COMMON)},
                                         auth=SESSION))(api_review.ReviewAudioView)
    for view, body, summary in (
            (api_review.ReviewAcceptView, api_review.AcceptSerializer,
             "Accept, or correct and accept (the diff is kept for the transcriber)"),
            (api_review.ReviewRejectView, api_review.RejectSerializer,
             "Reject with a preset reason and feedback; the clip goes to a different transcriber"),
            (api_review.ReviewAdjudicateView, api_review.AdjudicateSerializer,
             "Write the final text of a clip whose transcriptions disagree")):
        extend_schema_view(post=extend_schema(summary=summary, request=body, responses={
            200: DecisionSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))(view)
    extend_schema_view(get=extend_schema(summary="Checkers' feedback on my transcriptions (text, never audio)",
                                         responses={200: FeedbackListSerializer, **errors(*COMMON)},
                                         auth=SESSION))(api_review.FeedbackView)


_annotate_reviews()
