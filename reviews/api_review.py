"""The checkers' API under /api/v1/reviews/ and the transcriber's feedback: parse, call one
service in ``review``, render. The checker's page and the "my feedback" page are here too."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.shortcuts import render
from rest_framework import serializers, status
from rest_framework.response import Response
from rest_framework.views import APIView

from . import permissions, review, services
from .api import StrictBooleanField, StrictCharField, audio_response
from .errors import NotFoundDenied
from .permissions import IsChecker, IsReviewer


class CheckerView(APIView):
    permission_classes = [IsChecker]

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        # Ownership first: someone else's review answers 404 for every method, before input
        # validation or "method not allowed" could answer otherwise.
        if "review_id" in kwargs:
            permissions.review_owned(request.user, kwargs["review_id"], attempted=getattr(self, "audit_action", "api"))


def review_payload(item) -> dict:
    clip, transcription = item.clip, item.transcription
    return {
        "id": str(item.pk),
        "kind": item.kind,
        "status": item.status,
        "clip": {"id": str(clip.pk), "duration_ms": clip.duration_ms, "locale": clip.locale, "peaks": clip.peaks,
                 "spectrogram": clip.spectrogram or None},
        "label_schema": services.label_schema_describe(clip.project.label_schema),
        "lease_expires_at": item.lease_expires_at.isoformat(),
        "audio_token_url": f"/api/v1/reviews/{item.pk}/audio-token/",
        "audio_url": f"/api/v1/reviews/{item.pk}/audio/",
        # Judged blind: the text, never who wrote it.
        "transcription": {"text": transcription.text, "labels": transcription.labels,
                          "segments": transcription.segments} if transcription else None,
        "candidates": review.review_candidates(item),
        "agreement": (clip.agreement or None) if item.kind == "adjudicate" else None,
        "reject_reasons": clip.project.reject_reason_choices(),
    }


class ReviewNextSerializer(serializers.Serializer):
    another = StrictBooleanField(required=False, default=False)


class ReviewNextView(CheckerView):
    audit_action = "review.lease"

    def post(self, request):
        serializer = ReviewNextSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_next(checker=request.user, **serializer.validated_data)
        if item is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(review_payload(item), status=status.HTTP_201_CREATED)


class ReviewDetailView(CheckerView):
    audit_action = "review.view"

    def get(self, request, review_id):
        return Response(review_payload(review.review_get(checker=request.user, review_id=review_id)))


class ReviewAudioTokenView(CheckerView):
    audit_action = "audio.token"

    def post(self, request, review_id):
        grant = review.review_audio_token_issue(checker=request.user, review_id=review_id,
                                                session_key=request.session.session_key)
        return Response({"token": grant.token, "expires_in": settings.AUDIO_TOKEN_MAX_AGE,
                         "lease_expires_at": grant.lease_expires_at.isoformat()}, status=status.HTTP_201_CREATED)


class ReviewAudioView(CheckerView):
    """Stream the clip under review: session plus a fresh token in the X-Audio-Token header."""

    audit_action = "audio.play"

    def get(self, request, review_id):
        clip = review.review_audio_open(checker=request.user, review_id=review_id,
                                        token=request.headers.get("X-Audio-Token", ""),
                                        session_key=request.session.session_key)
        return audio_response(clip)


class AcceptSerializer(serializers.Serializer):
    text = StrictCharField(required=False, allow_blank=True, trim_whitespace=False, max_length=services.MAX_TEXT)
    labels = serializers.JSONField(required=False)


class RejectSerializer(serializers.Serializer):
    reason = StrictCharField(max_length=100)
    detail = StrictCharField(required=False, allow_blank=True, default="", max_length=review.MAX_DETAIL)


class AdjudicateSerializer(serializers.Serializer):
    text = StrictCharField(allow_blank=True, trim_whitespace=False, max_length=services.MAX_TEXT)
    labels = serializers.JSONField(required=False, default=dict)


def decision_payload(item) -> dict:
    return {"id": str(item.pk), "kind": item.kind, "status": item.status,
            "decided_at": item.ended_at.isoformat() if item.ended_at else None}


class ReviewAcceptView(CheckerView):
    audit_action = "review.accept"

    def post(self, request, review_id):
        serializer = AcceptSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_accept(checker=request.user, review_id=review_id, **serializer.validated_data)
        return Response(decision_payload(item))


class ReviewRejectView(CheckerView):
    audit_action = "review.reject"

    def post(self, request, review_id):
        serializer = RejectSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_reject(checker=request.user, review_id=review_id, **serializer.validated_data)
        return Response(decision_payload(item))


class ReviewAdjudicateView(CheckerView):
    audit_action = "review.adjudicate"

    def post(self, request, review_id):
        serializer = AdjudicateSerializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        item = review.review_adjudicate(checker=request.user, review_id=review_id, **serializer.validated_data)
        return Response(decision_payload(item))


class FeedbackView(APIView):
    """A reviewer's own feedback from checkers: text and diff, never audio."""

    permission_classes = [IsReviewer]
    audit_action = "feedback.view"

    def get(self, request):
        items = review.feedback_list(reviewer=request.user)
        for item in items:
            for key in ("decided_at", "submitted_at"):
                item[key] = item[key].isoformat() if item[key] else None
        return Response({"results": items})


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
