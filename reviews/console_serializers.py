"""The shapes the console API answers with (console.py): each serializer builds the response
and, through ``extend_schema`` on the view, is the OpenAPI description of it."""

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from .api_serializers import object_urls


class AuditEventSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    at = serializers.DateTimeField()
    actor = serializers.CharField(source="actor_name", allow_blank=True)
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
    # From a supervision.AuditPage (events, next_cursor) and ``context={"next": url or None}``.

    results = AuditEventSerializer(source="events", many=True)
    next_cursor = serializers.CharField(allow_null=True)
    next = serializers.SerializerMethodField()

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_next(self, page) -> str | None:
        return self.context.get("next")


class EscalationUrlsSerializer(serializers.Serializer):
    take = serializers.CharField()
    close = serializers.CharField()
    audio_token = serializers.CharField()
    audio = serializers.CharField()


ESCALATION_ROUTES = {"take": "api-escalation-take", "close": "api-escalation-close",
                     "audio_token": "api-escalation-audio-token", "audio": "api-escalation-audio"}


class EscalationSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    clip_id = serializers.UUIDField()
    status = serializers.ChoiceField(choices=["open", "taken", "closed"])
    reason = serializers.CharField()
    created_at = serializers.DateTimeField()
    flagged_by = serializers.CharField(source="flagged_by.username")
    # taken_by_id is None until taken: the relation then reads as None without a query.
    taken_by = serializers.CharField(source="taken_by.username", allow_null=True)
    taken_at = serializers.DateTimeField(allow_null=True)
    action_taken = serializers.CharField(allow_blank=True)
    closed_at = serializers.DateTimeField(allow_null=True)
    audio_token_url = serializers.SerializerMethodField(help_text="The same as urls.audio_token.")
    audio_url = serializers.SerializerMethodField(help_text="The same as urls.audio.")
    urls = serializers.SerializerMethodField()

    def get_audio_token_url(self, escalation) -> str:
        return object_urls({"url": "api-escalation-audio-token"}, escalation.pk)["url"]

    def get_audio_url(self, escalation) -> str:
        return object_urls({"url": "api-escalation-audio"}, escalation.pk)["url"]

    @extend_schema_field(EscalationUrlsSerializer)
    def get_urls(self, escalation) -> dict:
        return object_urls(ESCALATION_ROUTES, escalation.pk)


class EscalationListSerializer(serializers.Serializer):
    results = EscalationSerializer(many=True)


class QualityRowSerializer(serializers.Serializer):
    # From quality.QualityRow.as_dict() (rounded figures).

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
    # From a quality query and its rows: ``{"query": ..., "rows": [...]}``.

    project = serializers.CharField(source="query.project.slug", allow_null=True)
    start = serializers.DateField(source="query.start_day")
    end = serializers.DateField(source="query.end_day")
    view = serializers.ChoiceField(source="query.view", choices=["reviewer", "day"])
    results = serializers.SerializerMethodField()

    @extend_schema_field(QualityRowSerializer(many=True))
    def get_results(self, data) -> list:
        return QualityRowSerializer([row.as_dict() for row in data["rows"]], many=True).data
