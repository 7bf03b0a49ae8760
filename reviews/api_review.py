"""The checkers' API under /api/v1/reviews/ and the transcriber's feedback: parse, call one
service in ``review``, render. The checker's page and the "my feedback" page are here too."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from drf_spectacular.utils import extend_schema, extend_schema_field, extend_schema_view
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import permissions, review
from .api import OwnerFirstView, StrictBooleanField, StrictCharField, audio_response
from .api_serializers import (
    AUDIO,
    AUDIO_TOKEN_HEADER,
    COMMON,
    LABELS_FIELD,
    SESSION,
    AudioTokenSerializer,
    LeasedClipSerializer,
    SegmentSerializer,
    errors,
    object_urls,
)
from .errors import NotFoundDenied
from .models import MAX_TEXT
from .permissions import IsChecker, IsReviewer


class CheckerView(OwnerFirstView):
    permission_classes = [IsChecker]
    owner_kwarg = "review_id"
    owner_check = staticmethod(permissions.review_owned)


# --- Shapes: each builds its answer and describes it in the OpenAPI schema ------------------

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


class ReviewUrlsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    audio_token = serializers.CharField()
    audio = serializers.CharField()
    accept = serializers.CharField()
    reject = serializers.CharField()
    adjudicate = serializers.CharField()


REVIEW_ROUTES = {"detail": "api-review", "audio_token": "api-review-audio-token", "audio": "api-review-audio",
                 "accept": "api-review-accept", "reject": "api-review-reject", "adjudicate": "api-review-adjudicate"}


class ReviewSerializer(LeasedClipSerializer):
    audio_routes = {"audio_token_url": REVIEW_ROUTES["audio_token"], "audio_url": REVIEW_ROUTES["audio"]}

    kind = serializers.CharField(help_text="\"check\" (a submission) or \"adjudicate\" (a clip to decide).")
    urls = serializers.SerializerMethodField()
    transcription = serializers.SerializerMethodField(help_text="The submission to check (never its author).")
    candidates = serializers.SerializerMethodField(help_text="To adjudicate: the transcriptions that stand.")
    agreement = serializers.SerializerMethodField()
    reject_reasons = serializers.SerializerMethodField(
        help_text="The project's preset reasons; \"Other\" needs a detail.")

    @extend_schema_field(ReviewUrlsSerializer)
    def get_urls(self, item) -> dict:
        return object_urls(REVIEW_ROUTES, item.pk)

    @extend_schema_field(CandidateSerializer(allow_null=True))
    def get_transcription(self, item) -> dict | None:
        # Judged blind: the text, never who wrote it.
        transcription = item.transcription
        return ({"text": transcription.text, "labels": transcription.labels, "segments": transcription.segments}
                if transcription else None)

    @extend_schema_field(CandidateSerializer(many=True))
    def get_candidates(self, item) -> list:
        return review.review_candidates(item)

    @extend_schema_field(AgreementSerializer(allow_null=True))
    def get_agreement(self, item) -> dict | None:
        return (item.clip.agreement or None) if item.kind == "adjudicate" else None

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_reject_reasons(self, item) -> list:
        return item.clip.project.reject_reason_choices()


class DecisionSerializer(serializers.Serializer):
    id = serializers.UUIDField()
    kind = serializers.CharField(help_text="\"check\" (a submission) or \"adjudicate\" (a clip to decide).")
    status = serializers.ChoiceField(choices=["accepted", "edited", "rejected", "adjudicated"])
    decided_at = serializers.DateTimeField(source="ended_at", allow_null=True)


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


# --- Views ------------------------------------------------------------------------------------

class ReviewNextSerializer(serializers.Serializer):
    another = StrictBooleanField(required=False, default=False)


class ReviewNextView(CheckerView):
    audit_action = "review.lease"

    @extend_schema(summary="Lease the next review (adjudications first), or get the live one again",
                   request=ReviewNextSerializer,
                   responses={201: ReviewSerializer, 204: None, **errors(400, 429, *COMMON)}, auth=SESSION)
    def post(self, request):
        serializer = ReviewNextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_next(checker=request.user, session_key=request.session.session_key,
                                  **serializer.validated_data)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(ReviewSerializer(item).data, status=status.HTTP_201_CREATED)


class ReviewDetailView(CheckerView):
    audit_action = "review.view"

    @extend_schema(summary="One of my reviews", responses={200: ReviewSerializer, **errors(*COMMON)}, auth=SESSION)
    def get(self, request, review_id):
        return Response(ReviewSerializer(review.review_get(checker=request.user, review_id=review_id)).data)


class ReviewAudioTokenView(CheckerView):
    audit_action = "audio.token"

    @extend_schema(summary="A fresh one-play audio token for the clip under review", request=None,
                   responses={201: AudioTokenSerializer, **errors(409, 429, *COMMON)}, auth=SESSION)
    def post(self, request, review_id):
        grant = review.review_audio_token_issue(checker=request.user, review_id=review_id,
                                                session_key=request.session.session_key)
        return Response(AudioTokenSerializer(grant).data, status=status.HTTP_201_CREATED)


class ReviewAudioView(CheckerView):
    """Stream the clip under review: session plus a fresh token in the X-Audio-Token header."""

    audit_action = "audio.play"

    @extend_schema(summary="The audio of the clip under review", parameters=[AUDIO_TOKEN_HEADER],
                   responses={200: AUDIO, **errors(410, 429, *COMMON)}, auth=SESSION)
    def get(self, request, review_id):
        clip = review.review_audio_open(checker=request.user, review_id=review_id,
                                        token=request.headers.get("X-Audio-Token", ""),
                                        session_key=request.session.session_key)
        return audio_response(clip)


class AcceptSerializer(serializers.Serializer):
    text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT)
    labels = serializers.JSONField(required=False)


class RejectSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=100)
    detail = StrictCharField(required=False, allow_blank=True, default="", max_length=review.MAX_DETAIL)


class AdjudicateSerializer(serializers.Serializer):
    text = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=MAX_TEXT)
    labels = serializers.JSONField(required=False, default=dict)


@extend_schema_view(post=extend_schema(
    summary="Accept, or correct and accept (the diff is kept for the transcriber)",
    request=AcceptSerializer, responses={200: DecisionSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))
class ReviewAcceptView(CheckerView):
    audit_action = "review.accept"

    def post(self, request, review_id):
        serializer = AcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_accept(checker=request.user, review_id=review_id, **serializer.validated_data)
        return Response(DecisionSerializer(item).data)


@extend_schema_view(post=extend_schema(
    summary="Reject with a preset reason and feedback; the clip goes to a different transcriber",
    request=RejectSerializer, responses={200: DecisionSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))
class ReviewRejectView(CheckerView):
    audit_action = "review.reject"

    def post(self, request, review_id):
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_reject(checker=request.user, review_id=review_id, **serializer.validated_data)
        return Response(DecisionSerializer(item).data)


@extend_schema_view(post=extend_schema(
    summary="Write the final text of a clip whose transcriptions disagree",
    request=AdjudicateSerializer, responses={200: DecisionSerializer, **errors(400, 409, *COMMON)}, auth=SESSION))
class ReviewAdjudicateView(CheckerView):
    audit_action = "review.adjudicate"

    def post(self, request, review_id):
        serializer = AdjudicateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_adjudicate(checker=request.user, review_id=review_id, **serializer.validated_data)
        return Response(DecisionSerializer(item).data)


class FeedbackView(APIView):
    """A reviewer's own feedback from checkers: text and diff, never audio."""

    permission_classes = [IsReviewer]
    audit_action = "feedback.view"

    @extend_schema(summary="Checkers' feedback on my transcriptions (text, never audio)",
                   responses={200: FeedbackListSerializer, **errors(*COMMON)}, auth=SESSION)
    def get(self, request):
        return Response(FeedbackListSerializer({"results": review.feedback_list(reviewer=request.user)}).data)


# --- Pages ----------------------------------------------------------------------------

@login_required
def review_page(request):
    if not permissions.user_in_group(request.user, permissions.CHECKER):
        raise NotFoundDenied(object_type="page", object_id="review", attempted="page.review", reason="not_checker")
    return render(request, "reviews/review.html")


@login_required
def feedback_page(request):
    if not permissions.user_in_group(request.user, permissions.REVIEWER):
        raise NotFoundDenied(object_type="page", object_id="feedback", attempted="page.feedback",
                             reason="not_reviewer")
    return render(request, "reviews/feedback.html", {"items": review.feedback_list(reviewer=request.user)})
