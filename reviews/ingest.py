"""Ingest: validate a submission, drop its identifiers, disguise its audio, store the clip.

One serializer validates every field for the API and for ``manage.py ingest_clips`` alike,
so a manifest row and a multipart request are held to the same rules. Validation cannot
throw: every input, however malformed, ends as a field error, a refusal or a clip.
"""

import json
import random
import uuid
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import UploadedFile
from django.db import transaction
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers
from rest_framework.settings import ISO_8601
from rest_framework.utils import html

from . import lifecycle
from .audio import AudioRejected, ProcessedAudio, clip_audio_process
from .audit import audit_record
from .errors import IngestRefused, InvalidInput
from .labels import label_schema_describe, labels_validate
from .models import AuditEvent, Clip, Project

# No recording of this service predates 2000; earlier dates are typos or clock resets.
RECORDED_AT_EARLIEST = datetime(2000, 1, 1, tzinfo=dt_timezone.utc)
# Devices' clocks drift and time zones are mislabelled: a day ahead is tolerated, no more.
RECORDED_AT_FUTURE_TOLERANCE = timedelta(days=1)
AUDIO_STATUS = {
    "file_too_large": 413, "unsupported_codec": 415, "not_audio": 415, "empty_audio": 422,
    "audio_too_long": 422, "corrupt_audio": 422, "audio_timeout": 422, "encode_failed": 422,
}
_sampler = random.SystemRandom()


class AudioUploadField(serializers.FileField):
    """Exactly one audio file: an upload from the API, or bytes from the command line.

    A FileField so the OpenAPI schema shows a binary part. It reads the upload itself: a
    multipart body may carry several parts named ``audio``, or a text field by that name.
    """

    default_error_messages = {
        "required": "Attach the recording as one file part named 'audio'.",
        "null": "Attach the recording as one file part named 'audio'.",
        "invalid": "A file, not a text field.",
        "several": "Send exactly one file.",
        "empty": "The file is empty.",
    }

    def get_value(self, dictionary):
        # A multipart QueryDict keeps every part of a name; DRF would silently take the last one.
        if html.is_html_input(dictionary):
            return dictionary.getlist(self.field_name) or serializers.empty
        return dictionary.get(self.field_name, serializers.empty)

    def to_internal_value(self, data) -> bytes:
        if isinstance(data, list):
            if len(data) != 1:
                self.fail("several")
            data = data[0]
        if isinstance(data, (bytes, bytearray)):
            content = bytes(data)
        elif isinstance(data, UploadedFile):
            content = data.read()
        else:
            self.fail("invalid")
        if not content:
            self.fail("empty")
        return content


class ProjectField(serializers.SlugRelatedField):
    """A project by slug; the message never repeats what was sent."""

    default_error_messages = {
        "required": "Required.",
        "null": "Required.",
        "does_not_exist": "Unknown project.",
        "invalid": "A project slug.",
    }

    def __init__(self, **kwargs):
        super().__init__(slug_field="slug", queryset=Project.objects.all(), **kwargs)

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        return super().to_internal_value(data.strip())


class RecordedAtField(serializers.DateTimeField):
    """An ISO 8601 moment with its time zone, from 2000 until a day from now.

    DRF parses it and turns impossible dates (month 13, 30 February, hour 24, a +25:00
    offset, year 1 shifted before year 1 by its offset) into field errors.
    """

    default_error_messages = {
        "invalid": "An ISO 8601 date and time with a time zone, e.g. 2026-11-20T08:15:02Z.",
        "date": "An ISO 8601 date and time with a time zone, e.g. 2026-11-20T08:15:02Z.",
        "overflow": "Out of range.",
        "naive": "The time zone is missing, e.g. 2026-11-20T08:15:02Z or 2026-11-20T09:15:02+01:00.",
        "too_early": "Before 2000.",
        "future": "More than a day in the future.",
    }

    def __init__(self, **kwargs):
        super().__init__(input_formats=[ISO_8601], default_timezone=dt_timezone.utc, **kwargs)

    def enforce_timezone(self, value):
        # Guessing a zone would shift the coarsened day: a naive time is refused, not assumed.
        if timezone.is_naive(value):
            self.fail("naive")
        return super().enforce_timezone(value)

    def to_internal_value(self, value) -> datetime:
        if not isinstance(value, str):
            self.fail("invalid")
        moment = super().to_internal_value(value.strip())
        if moment < RECORDED_AT_EARLIEST:
            self.fail("too_early")
        if moment > timezone.now() + RECORDED_AT_FUTURE_TOLERANCE:
            self.fail("future")
        return moment


class OptionalConfidenceField(serializers.FloatField):
    """A number from 0 to 1; an empty manifest cell means none (a bool or "nan" is refused)."""

    default_error_messages = {"invalid": "A number from 0 to 1.", "min_value": "A number from 0 to 1.",
                              "max_value": "A number from 0 to 1.", "max_string_length": "A number from 0 to 1.",
                              "overflow": "A number from 0 to 1."}

    def __init__(self, **kwargs):
        super().__init__(min_value=0.0, max_value=1.0, required=False, allow_null=True, default=None, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not data.strip():
            return None
        if isinstance(data, bool) or not isinstance(data, (str, int, float)):
            self.fail("invalid")
        return super().to_internal_value(data.strip() if isinstance(data, str) else data)


class OptionalFlagField(serializers.BooleanField):
    """true/false (also 1/0, yes/no); an empty manifest cell means false."""

    default_error_messages = {"invalid": "true or false."}

    def __init__(self, **kwargs):
        super().__init__(required=False, default=False, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str) and not data.strip():
            return False
        return super().to_internal_value(data.strip() if isinstance(data, str) else data)


@extend_schema_field(OpenApiTypes.STR)
class LabelsJSONField(serializers.Field):
    """Labels as a JSON object, {"group": ["label", ...]}; checked against the project's schema
    in ``IngestSerializer.validate``. An empty value means none."""

    MAX_LENGTH = 2000
    default_error_messages = {"invalid": 'A JSON object such as {{"speaker": ["adult"]}}.'}  # str.format

    def __init__(self, **kwargs):
        super().__init__(required=False, default=dict, **kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            if not data.strip():
                return {}
            if len(data) > self.MAX_LENGTH:
                self.fail("invalid")
            try:
                data = json.loads(data)
            except (ValueError, RecursionError):
                self.fail("invalid")
        if not isinstance(data, dict):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class IngestSerializer(serializers.Serializer):
    """Every field of an ingest. ``validated_data`` holds only what a clip may keep.

    To add a field, declare it here; ``validate`` passes it through unless it is an
    identifier to drop, and ``clip_ingest`` stores it.
    """

    audio = AudioUploadField()
    project = ProjectField()
    account_id = serializers.CharField(max_length=128)
    first_name = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    device_serial = serializers.CharField(max_length=100, required=False, allow_blank=True, default="")
    recorded_at = RecordedAtField()
    locale = serializers.RegexField(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*\Z", max_length=16,
                                    error_messages={"invalid": "A language tag such as en-US."})

    asr_text = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    asr_confidence = OptionalConfidenceField(help_text="The recognizer's confidence, 0 to 1 (with asr_text).")
    is_gold = OptionalFlagField()
    gold_text = serializers.CharField(max_length=5000, required=False, allow_blank=True, default="")
    gold_labels = LabelsJSONField(help_text='JSON object, e.g. {"speaker": ["adult"]} (with is_gold).')

    def to_internal_value(self, data):
        # A field sent twice is ambiguous (which one is the subject?): refuse it, do not pick one.
        repeated = {}
        if html.is_html_input(data):
            repeated = {name: ["Send this field once."] for name, field in self.fields.items()
                        if not isinstance(field, AudioUploadField) and len(data.getlist(name)) > 1}
        try:
            validated = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            raise serializers.ValidationError({**exc.detail, **repeated}) from None
        if repeated:
            raise serializers.ValidationError(repeated)
        return validated

    def validate(self, attrs: dict) -> dict:
        """Drop the direct identifiers: from here on only the pseudonym and the day exist."""
        attrs = dict(attrs)
        account_id = attrs.pop("account_id")
        attrs.pop("first_name", None)
        attrs.pop("device_serial", None)
        attrs["subject_key"] = lifecycle.subject_key_derive(account_id)
        # Coarsened to the (UTC) day: the exact time of a recording can identify it.
        attrs["recorded_on"] = attrs.pop("recorded_at").astimezone(dt_timezone.utc).date()
        return _content_validate(attrs)


def _content_validate(attrs: dict) -> dict:
    """Issue 11: the hypothesis and the gold reference hang together and fit the project's labels."""
    errors = {}
    if attrs.get("asr_confidence") is not None and not attrs.get("asr_text", "").strip():
        errors["asr_confidence"] = "Only with asr_text."
    if not attrs.get("is_gold"):
        for name in ("gold_text", "gold_labels"):
            if attrs.get(name):
                errors[name] = "Only with is_gold."
    elif attrs.get("gold_labels"):
        try:
            attrs["gold_labels"] = labels_validate(label_schema_describe(attrs["project"].label_schema),
                                                   attrs["gold_labels"], complete=False)
        except InvalidInput:
            errors["gold_labels"] = "Unknown label group or label for this project."
    if errors:
        raise serializers.ValidationError(errors)
    attrs["asr_text"] = attrs.get("asr_text", "").strip()
    attrs["gold_text"] = attrs.get("gold_text", "").strip()
    return attrs


def ingest_validate(data: Mapping) -> dict:
    """Validate a submission; raise InvalidInput with one message per field, never the values sent."""
    serializer = IngestSerializer(data=data)
    if serializer.is_valid():
        return serializer.validated_data
    errors = serializer.errors
    fields = {name: str(messages[0]) if isinstance(messages, list) and messages else "Not valid."
              for name, messages in errors.items()}
    project_errors = errors.get("project") or []
    if set(errors) == {"project"} and [e.code for e in project_errors] == ["does_not_exist"]:
        raise InvalidInput("No such project.", code="unknown_project", fields=fields)
    raise InvalidInput("The metadata is missing or malformed.", code="invalid_metadata", fields=fields)


def clip_sampled(project: Project) -> bool:
    """Draw whether an offered clip enters review, at the project's sampling rate."""
    return project.sampling_rate >= 1 or _sampler.random() < float(project.sampling_rate)


def _refuse(*, actor, code: str, **details) -> None:
    audit_record(actor=actor, action="clip.ingest", outcome=AuditEvent.Outcome.DENIED, object_type="clip",
                 details={"code": code, **details})


def clip_ingest(*, actor, data: Mapping,
                audio_process: Callable[..., ProcessedAudio] = clip_audio_process) -> Clip | None:
    """De-identify, disguise and store one clip; nothing is stored if anything is wrong.

    ``data`` is what IngestSerializer reads: the request's multipart QueryDict, or a dict
    with the audio as bytes. Returns None when the clip was not sampled for review: it is
    refused, not kept unreviewed, because a recording nobody may review has no reason to
    exist here. ``audio_process`` lets ``ingest_clips`` hand in audio it processed ahead,
    in parallel, while the checks, the storage and the database stay here.
    """
    try:
        submission = ingest_validate(data)
    except InvalidInput as exc:
        # The names of the fields at fault help whoever runs the feed; the values could identify someone.
        _refuse(actor=actor, code=exc.code, fields=sorted(exc.fields))
        raise
    project = submission["project"]
    if lifecycle.subject_opted_out(submission["subject_key"]):
        _refuse(actor=actor, code="subject_opted_out")
        raise IngestRefused("This subject opted out of review; the clip was not stored.",
                            code="subject_opted_out", status=422)
    if not clip_sampled(project):
        _refuse(actor=actor, code="not_sampled", project=project.slug)
        return None
    try:
        processed = audio_process(submission["audio"], preset=project.disguise_preset or None)
    except AudioRejected as exc:
        _refuse(actor=actor, code=exc.code)
        raise IngestRefused(exc.detail, code=exc.code, status=AUDIO_STATUS.get(exc.code, 422)) from exc
    name = default_storage.save(f"clips/{uuid.uuid4().hex}.mp3", ContentFile(processed.data))
    try:
        with transaction.atomic():
            clip = Clip.objects.create(
                project=project, subject_key=submission["subject_key"], recorded_on=submission["recorded_on"],
                locale=submission["locale"], duration_ms=processed.duration_ms, audio=name, peaks=processed.peaks,
                spectrogram=processed.spectrogram,  # issue 12: from the disguised audio, like the peaks
                asr_text=submission["asr_text"], asr_confidence=submission["asr_confidence"],
                is_gold=submission["is_gold"], gold_text=submission["gold_text"],
                gold_labels=submission["gold_labels"],
            )

            audit_record(actor=actor, action="clip.ingest", object_type="clip", object_id=clip.pk,
                         clip_id=clip.pk, details={"project": project.slug, "duration_ms": clip.duration_ms,
                                                   "asr": bool(clip.asr_text), "gold": clip.is_gold})
    except BaseException:
        default_storage.delete(name)
        raise
    return clip
