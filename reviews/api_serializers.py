"""The shapes the reviewer API answers with (api.py): each serializer builds the response
and, through ``extend_schema`` on the view, is the OpenAPI description of it. Also the
pieces every API module shares: the error shape, the audio answer, the auth schemes.

Output only: these read objects the view already holds and never touch the database
beyond what the old hand-written dicts did (tests/test_query_counts.py)."""

import functools

from django.conf import settings
from django.urls import get_script_prefix, get_urlconf, reverse
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema_field
from rest_framework import serializers

from .guidelines import guidelines_render
from .labels import label_schema_describe

# --- Shared by the API modules ------------------------------------------------------------


class ServiceTokenScheme(OpenApiAuthenticationExtension):
    target_class = "reviews.permissions.ServiceTokenAuthentication"
    name = "serviceToken"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": "Authorization",
                "description": "Ingest services: `Token <key>`."}


class ErrorSerializer(serializers.Serializer):
    # The description of errors.json_error()'s body, which builds every error answer.

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
AUDIO = OpenApiResponse(OpenApiTypes.BINARY, description="audio/mpeg bytes; no-store, inline, no file name.")
AUDIO_TOKEN_HEADER = OpenApiParameter("X-Audio-Token", str, OpenApiParameter.HEADER, required=True,
                                      description="A fresh token from the audio-token endpoint.")
SESSION = [{"cookieAuth": []}]
TOKEN = [{"serviceToken": []}]


_PK = "0pk0"  # stands for the object's id in a reversed URL


@functools.lru_cache(maxsize=64)
def _url_template(name: str, script_prefix: str, urlconf) -> str:
    return reverse(name, urlconf=urlconf, args=[_PK])


def object_urls(routes: dict[str, str], pk) -> dict[str, str]:
    """{key: route name} to {key: that route's URL for this object}: reverse() once per route
    and process (a reverse costs tens of microseconds; a payload names up to seven)."""
    prefix, urlconf = get_script_prefix(), get_urlconf()
    return {key: _url_template(name, prefix, urlconf).replace(_PK, str(pk)) for key, name in routes.items()}


class StoredList(serializers.ListField):
    """A list stored in its final shape (JSON column): passed through, not converted item by item."""

    def to_representation(self, data):
        return data


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
    peaks = StoredList(child=serializers.IntegerField(min_value=0, max_value=100))
    spectrogram = SpectrogramSerializer(allow_null=True, help_text="Null for clips ingested before issue 12.")


def clip_data(clip) -> dict:
    """ClipSerializer's shape, built directly: a nested serializer per payload costs more CPU
    (its fields are deep-copied) than the rest of the answer."""
    return {"id": str(clip.pk), "duration_ms": clip.duration_ms, "locale": clip.locale, "peaks": clip.peaks,
            "spectrogram": clip.spectrogram or None}  # issue 12: null for clips ingested before it


LABELS_FIELD = serializers.DictField(child=serializers.ListField(child=serializers.CharField()),
                                     help_text="{group_key: [label_key, ...]}")


class AudioTokenSerializer(serializers.Serializer):
    # From a grant (token, lease_expires_at) or a bare {"token"}; lasts AUDIO_TOKEN_MAX_AGE.

    token = serializers.CharField()
    expires_in = serializers.SerializerMethodField()
    lease_expires_at = serializers.DateTimeField(required=False)

    def get_expires_in(self, grant) -> int:
        return settings.AUDIO_TOKEN_MAX_AGE


# --- Reviewers ---------------------------------------------------------------------------


class AssignmentUrlsSerializer(serializers.Serializer):
    detail = serializers.CharField()
    audio_token = serializers.CharField()
    audio = serializers.CharField()
    draft = serializers.CharField()
    submit = serializers.CharField()
    skip = serializers.CharField()
    flag = serializers.CharField()


ASSIGNMENT_ROUTES = {"detail": "api-assignment", "audio_token": "api-audio-token", "audio": "api-audio",
                     "draft": "api-draft", "submit": "api-submit", "skip": "api-skip", "flag": "api-flag"}


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


class LeasedClipSerializer(serializers.Serializer):
    """What a reviewer's assignment and a checker's review both show: the clip, its labels, the
    lease and the links. A subclass names its two audio routes (``audio_routes``) and declares
    ``urls`` with its own routes, so that the schema names their keys."""

    audio_routes = {"audio_token_url": "", "audio_url": ""}  # field -> route name

    id = serializers.UUIDField()
    status = serializers.CharField()
    clip = serializers.SerializerMethodField()
    label_schema = serializers.SerializerMethodField()
    lease_expires_at = serializers.DateTimeField()
    audio_token_url = serializers.SerializerMethodField(help_text="The same as urls.audio_token.")
    audio_url = serializers.SerializerMethodField(help_text="The same as urls.audio.")
    audio_token = serializers.SerializerMethodField(
        help_text="From next only (null elsewhere): the first one-play token for urls.audio, as urls.audio_token "
                  "answers it, so that the first play needs no token request; after expires_in seconds, or "
                  "once spent, ask urls.audio_token for another.")

    @extend_schema_field(AudioTokenSerializer(allow_null=True))
    def get_audio_token(self, item) -> dict | None:
        grant = getattr(item, "audio_grant", None)
        if grant is None:
            return None
        return {"token": grant.token, "expires_in": settings.AUDIO_TOKEN_MAX_AGE,
                "lease_expires_at": self.fields["lease_expires_at"].to_representation(grant.lease_expires_at)}

    @extend_schema_field(ClipSerializer)
    def get_clip(self, item) -> dict:
        return clip_data(item.clip)

    @extend_schema_field(LabelSchemaSerializer)
    def get_label_schema(self, item) -> dict:
        return label_schema_describe(item.clip.project.label_schema)

    def get_audio_token_url(self, item) -> str:
        return object_urls({"url": self.audio_routes["audio_token_url"]}, item.pk)["url"]

    def get_audio_url(self, item) -> str:
        return object_urls({"url": self.audio_routes["audio_url"]}, item.pk)["url"]


class AssignmentSerializer(LeasedClipSerializer):
    # One assignment; ``context={"progress": ...}`` adds today's progress (null otherwise).

    audio_routes = {"audio_token_url": ASSIGNMENT_ROUTES["audio_token"], "audio_url": ASSIGNMENT_ROUTES["audio"]}

    urls = serializers.SerializerMethodField()
    draft = serializers.SerializerMethodField()
    asr = serializers.SerializerMethodField(help_text="Pre-fills the text when there is no draft yet (issue 11).")
    skip_reasons = serializers.SerializerMethodField(
        help_text="The project's preset skip reasons; the page adds \"Other\".")
    guidelines_html = serializers.SerializerMethodField(
        help_text="The project's guidelines as sanitized HTML; empty string when none (issue 12).")
    progress = serializers.SerializerMethodField()

    @extend_schema_field(AssignmentUrlsSerializer)
    def get_urls(self, assignment) -> dict:
        return object_urls(ASSIGNMENT_ROUTES, assignment.pk)

    @extend_schema_field(DraftStateSerializer)
    def get_draft(self, assignment) -> dict:
        draft = getattr(assignment, "draft", None) if hasattr(assignment, "draft") else None
        if draft is None:
            return {"text": "", "labels": {}, "segments": [], "version": 0}
        return {"text": draft.text, "labels": draft.labels, "segments": draft.segments, "version": draft.version}

    @extend_schema_field(AsrDraftSerializer)
    def get_asr(self, assignment) -> dict:
        # Always this shape (empty text when none), gold clip or not.
        return {"text": assignment.clip.asr_text, "confidence": assignment.clip.asr_confidence}

    @extend_schema_field(serializers.ListField(child=serializers.CharField()))
    def get_skip_reasons(self, assignment) -> list:
        return assignment.clip.project.skip_reason_choices()

    def get_guidelines_html(self, assignment) -> str:
        return guidelines_render(text=assignment.clip.project.guidelines)

    @extend_schema_field(ProgressSerializer(allow_null=True))
    def get_progress(self, assignment) -> dict | None:
        return self.context.get("progress")


class DraftSavedSerializer(DraftStateSerializer):
    lease_expires_at = serializers.DateTimeField(source="assignment.lease_expires_at")


class SubmittedSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    assignment = serializers.UUIDField(source="assignment_id")
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


# --- Subjects (the upstream system) ------------------------------------------------------


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
