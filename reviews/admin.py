"""Django admin: declarative. No audio download anywhere; audit events are read-only."""

from django.contrib import admin

from .models import Assignment, AuditEvent, Clip, Label, LabelGroup, LabelSchema, Project, Transcription


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0


@admin.register(LabelGroup)
class LabelGroupAdmin(admin.ModelAdmin):
    list_display = ["name", "schema", "key", "kind", "required", "position"]
    list_filter = ["schema", "kind", "required"]
    inlines = [LabelInline]


class LabelGroupInline(admin.TabularInline):
    model = LabelGroup
    extra = 0
    show_change_link = True


@admin.register(LabelSchema)
class LabelSchemaAdmin(admin.ModelAdmin):
    list_display = ["name"]
    search_fields = ["name"]
    inlines = [LabelGroupInline]


@admin.register(Project)
class ProjectAdmin(admin.ModelAdmin):
    list_display = ["name", "slug", "label_schema", "transcriptions_per_clip", "lease_minutes"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]


@admin.register(Clip)
class ClipAdmin(admin.ModelAdmin):
    list_display = ["id", "project", "status", "duration_ms", "transcriptions_done", "ingested_at"]
    list_filter = ["project", "status"]
    # The audio file and the subject pseudonym are not shown: admins need neither.
    fields = ["project", "status", "recorded_on", "locale", "duration_ms", "slots_taken", "transcriptions_done"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False


@admin.register(Assignment)
class AssignmentAdmin(admin.ModelAdmin):
    list_display = ["id", "reviewer", "status", "leased_at", "lease_expires_at"]
    list_filter = ["status"]
    raw_id_fields = ["clip", "reviewer"]
    readonly_fields = ["clip", "reviewer", "status", "leased_at", "lease_expires_at", "ended_at", "reason"]

    def has_add_permission(self, request):
        return False


@admin.register(Transcription)
class TranscriptionAdmin(admin.ModelAdmin):
    list_display = ["id", "reviewer", "submitted_at"]
    readonly_fields = ["assignment", "clip", "reviewer", "text", "labels", "submitted_at"]

    def has_add_permission(self, request):
        return False


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    list_display = ["at", "actor_name", "role", "action", "outcome", "object_type", "object_id"]
    list_filter = ["action", "outcome", "role"]
    search_fields = ["actor_name", "object_id", "request_id"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False
