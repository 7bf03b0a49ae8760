"""Django admin: declarative, except for the hooks that audit every change (fields, old -> new).

Configuration (projects, schemas, quotas, users, groups) is editable and every add, change and
delete is audited. Reviewers' work (clips, assignments, transcriptions, escalations) is
read-only and cannot be deleted here: the only way out is "Erase selected clips", which is
lifecycle.clip_erase, the same path as a subject's erasure (files removed, one event per clip).
No page offers audio, transcript text, the recognizer's hypothesis, reviewers' free text or the
subject pseudonym (the one text shown is a gold clip's reference, which admins write: "Set the
gold reference"); audit events are read-only. Pauses made by the gold check are lifted here.
tests/test_admin_walk.py walks every registered model to hold this.
"""

from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django import forms
from django.conf import settings
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, User
from django.db import transaction
from django.db.models import Model
from django.template.response import TemplateResponse
from django_otp.plugins.otp_totp.models import TOTPDevice

from . import lifecycle, quality
from .audit import audit_record
from .disguise import PRESETS
from .errors import InvalidInput
from .labels import label_schema_describe
from .models import (
    Assignment,
    AuditEvent,
    AuditVerification,
    Clip,
    Escalation,
    Label,
    LabelGroup,
    LabelSchema,
    Project,
    QuotaDefaults,
    ReviewerPause,
    ReviewerQuota,
    Transcription,
)

QUOTA_MODELS = (QuotaDefaults, ReviewerQuota)
# Recorded as "changed", never with a value: secrets, and staff members' personal details
# (the trail carries no PII, staff's included).
SECRET_FIELDS = {"password", "key", "first_name", "last_name", "email"}


def _shown(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, Model):
        return f"{value._meta.model_name}:{value.pk}"
    return str(value)[:200]


def _changes(names, before: dict, after: dict) -> dict:
    changes = {}
    for name in names:
        if name in SECRET_FIELDS:
            changes[name] = "changed"
        elif before.get(name) != after.get(name):
            changes[name] = [before.get(name), after.get(name)]
    return changes


def _snapshot(obj, names) -> dict:
    values = {}
    for name in names:
        field = obj._meta.get_field(name)
        if field.many_to_many:
            values[name] = sorted(str(pk) for pk in getattr(obj, name).values_list("pk", flat=True)) if obj.pk else []
        else:
            values[name] = _shown(getattr(obj, field.attname if field.is_relation else name, None))
    return values


class AuditedAdmin(admin.ModelAdmin):
    """Write one audit event per admin change, naming each changed field with old -> new."""

    def _action(self, obj) -> str:
        return "quota.change" if isinstance(obj, QUOTA_MODELS) else "admin.change"

    def _fields(self, form) -> list[str]:
        return [name for name in form.changed_data if name in {f.name for f in form.instance._meta.get_fields()}]

    def save_model(self, request, obj, form, change):
        names = self._fields(form)
        before = _snapshot(type(obj).objects.get(pk=obj.pk), names) if change and obj.pk else {}
        super().save_model(request, obj, form, change)
        request._audit_pending = (obj, names, before, change)

    def save_related(self, request, form, formsets, change):
        super().save_related(request, form, formsets, change)  # many-to-many values are final only now
        obj, names, before, change = request._audit_pending
        after = _snapshot(type(obj).objects.get(pk=obj.pk), names)  # as stored, formatted like "before"
        changes = _changes(names, before, after)
        role_change = isinstance(obj, User) and "groups" in changes
        audit_record(
            actor=request.user, action="role.change" if role_change else self._action(obj),
            object_type=obj._meta.model_name, object_id=obj.pk,
            details={"operation": "change" if change else "add", "fields": changes},
        )

    def save_formset(self, request, form, formset, change):
        for inline_form in formset.forms:
            if inline_form.has_changed() and inline_form not in formset.deleted_forms:
                names = self._fields(inline_form)
                instance = inline_form.instance
                before = _snapshot(type(instance).objects.get(pk=instance.pk), names) if instance.pk else {}
                inline_form._audit_before = (names, before, instance.pk is not None)
        super().save_formset(request, form, formset, change)
        for inline_form in formset.forms:
            pending = getattr(inline_form, "_audit_before", None)
            if pending and inline_form.instance.pk:
                names, before, existed = pending
                after = _snapshot(inline_form.instance, names)
                audit_record(
                    actor=request.user, action=self._action(inline_form.instance),
                    object_type=inline_form.instance._meta.model_name, object_id=inline_form.instance.pk,
                    details={"operation": "change" if existed else "add",
                             "fields": _changes(names, before, after)},
                )
        for deleted in formset.deleted_objects:
            audit_record(actor=request.user, action=self._action(deleted), object_type=deleted._meta.model_name,
                         object_id=deleted.pk or "", details={"operation": "delete"})

    def delete_model(self, request, obj):
        object_id = obj.pk
        with transaction.atomic():  # no audit, no delete
            super().delete_model(request, obj)
            audit_record(actor=request.user, action=self._action(obj), object_type=obj._meta.model_name,
                         object_id=object_id, details={"operation": "delete"})

    def delete_queryset(self, request, queryset):
        # "Delete selected" runs outside the admin's transaction and would skip the hook: one event per object.
        with transaction.atomic():
            for obj in queryset:
                self.delete_model(request, obj)


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class LabelInline(admin.TabularInline):
    model = Label
    extra = 0


@admin.register(LabelGroup)
class LabelGroupAdmin(AuditedAdmin):
    list_display = ["name", "schema", "key", "kind", "required", "position"]
    list_filter = ["schema", "kind", "required"]
    search_fields = ["name", "key"]
    inlines = [LabelInline]


class LabelGroupInline(admin.TabularInline):
    model = LabelGroup
    extra = 0
    show_change_link = True


@admin.register(LabelSchema)
class LabelSchemaAdmin(AuditedAdmin):
    list_display = ["name"]
    search_fields = ["name"]
    inlines = [LabelGroupInline]


def disguise_choice_label(name: str) -> str:
    """A preset's name with what make bench-privacy last measured for it, for the drop-down."""
    figures = PRESETS[name].measured
    return f"{name}: {figures.summary()}" if figures else f"{name} (not measured)"


class ProjectAdminForm(forms.ModelForm):
    """The disguise preset as a drop-down of the registered presets, labelled with their figures."""

    disguise_preset = forms.ChoiceField(
        required=False,
        help_text="Figures from make bench-privacy (docs/privacy-benchmark.md): worst case over every attacker "
                  "(50% EER = no linkage; top-1 = how often a closed-set attacker picks the right speaker).",
        error_messages={"invalid_choice": "Unknown preset; choose one of the registered presets."})

    class Meta:
        model = Project
        fields = "__all__"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        default = settings.DISGUISE_PRESET
        self.fields["disguise_preset"].choices = [("", f"site default ({disguise_choice_label(default)})"
                                                   if default in PRESETS else "site default")] + [
            (name, disguise_choice_label(name)) for name in PRESETS]


@admin.register(Project)
class ProjectAdmin(AuditedAdmin):
    form = ProjectAdminForm
    list_display = ["name", "slug", "label_schema", "transcriptions_per_clip", "lease_minutes", "daily_clip_limit",
                    "sampling_rate", "disguise", "require_reviewer_mfa"]
    list_filter = ["require_reviewer_mfa", "label_schema"]
    search_fields = ["name", "slug"]
    filter_horizontal = ["members"]
    readonly_fields = ["disguise_figures"]

    @admin.display(description="disguise in use")
    def disguise(self, project):
        return project.disguise_preset or f"{settings.DISGUISE_PRESET} (site default)"

    @admin.display(description="disguise: last measured")
    def disguise_figures(self, project):
        """The preset in use and what make bench-privacy last measured for it (read-only)."""
        preset = PRESETS.get(project.disguise_preset or settings.DISGUISE_PRESET)
        if preset is None:
            return "unknown preset"
        figures = preset.measured
        if figures is None:
            return f"{preset.name}: {preset.description} (not measured yet)"
        return (f"{preset.name}: {preset.description} Worst case over every attacker (50% EER = no linkage; "
                f"top-1 = how often a closed-set attacker picks the right speaker): {figures.summary()} per core. "
                f"{figures.note}")


@admin.register(QuotaDefaults)
class QuotaDefaultsAdmin(AuditedAdmin):
    list_display = ["__str__", "clips_per_day", "plays_per_clip", "live_assignments", "flagged_per_day",
                    "work_start", "work_end"]

    def has_add_permission(self, request):
        return not QuotaDefaults.objects.exists()  # a single row

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(ReviewerQuota)
class ReviewerQuotaAdmin(AuditedAdmin):
    list_display = ["reviewer", "clips_per_day", "plays_per_clip", "live_assignments", "flagged_per_day",
                    "work_start", "work_end"]
    search_fields = ["reviewer__username"]
    list_filter = ["live_assignments"]
    raw_id_fields = ["reviewer"]


@admin.register(Clip)
class ClipAdmin(ReadOnlyAdmin):
    list_display = ["id", "project", "status", "is_gold", "duration_ms", "transcriptions_done", "ingested_at"]
    list_filter = ["project", "status", "is_gold"]
    # The audio file and the subject pseudonym are not shown: admins need neither. Nor is the
    # recognizer's hypothesis (content, like the audio).
    fields = ["project", "status", "recorded_on", "locale", "duration_ms", "slots_taken", "transcriptions_done",
              "is_gold"]
    readonly_fields = fields
    # A plain delete would leave the audio in storage, out of reach of erasure and retention,
    # and write no event: clips leave only through the lifecycle's erasure. Gold references
    # change only through "Set gold reference" (quality.clip_gold_set, one event per clip).
    actions = ["clips_erase", "clips_gold"]

    @admin.action(description="Set the gold reference (transcript and labels) of selected clips (audited)",
                  permissions=["gold"])
    def clips_gold(self, request, queryset):
        """A form per selected clip: gold or not, the reference transcript and the labels.

        Posted with ``post=yes`` it applies to every clip or (one invalid) to none; a clip
        whose "gold" box is not ticked is (or stays) an ordinary clip. Each clip writes one
        ``clip.gold`` event with counts only.
        """
        clips = list(queryset.select_related("project", "project__label_schema").order_by("ingested_at", "id"))
        posted = request.POST.get("post") == "yes"
        entries, error = [], None
        for clip in clips:
            pk = str(clip.pk)
            if posted:
                is_gold = request.POST.get(f"gold_{pk}") == "on"
                text = request.POST.get(f"gold_text_{pk}", "")
            else:
                is_gold, text = True, clip.gold_text
            schema = label_schema_describe(clip.project.label_schema)
            labels, groups = {}, []
            for group in schema["groups"]:
                chosen = ([v for v in request.POST.getlist(f"gold_label_{pk}_{group['key']}") if v] if posted
                          else list((clip.gold_labels or {}).get(group["key"]) or []))
                if chosen:
                    labels[group["key"]] = chosen
                groups.append({**group, "field": f"gold_label_{pk}_{group['key']}",
                               "options": [{**label, "checked": label["key"] in chosen} for label in group["labels"]]})
            entries.append({"clip": clip, "pk": pk, "is_gold": is_gold, "text": text, "labels": labels,
                            "groups": groups})
        if posted:
            try:
                with transaction.atomic():
                    for entry in entries:
                        quality.clip_gold_set(actor=request.user, clip_id=entry["clip"].pk,
                                              is_gold=entry["is_gold"], text=entry["text"], labels=entry["labels"])
            except InvalidInput as exc:
                error = exc.detail
            else:
                marked = sum(1 for entry in entries if entry["is_gold"])
                self.message_user(request, f"{marked} clip(s) are gold; {len(entries) - marked} not.")
                return None
        return TemplateResponse(request, "admin/reviews/clip/gold_form.html", {
            **self.admin_site.each_context(request), "opts": self.model._meta, "entries": entries, "error": error,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "title": "Gold reference"},
            status=400 if error else 200)

    def has_gold_permission(self, request):
        return request.user.has_perm("reviews.change_clip")

    @admin.action(description="Erase selected clips (audio and all work on them; audited)", permissions=["erase"])
    def clips_erase(self, request, queryset):
        clips = list(queryset.select_related("project").order_by("ingested_at", "id"))
        if request.POST.get("post") != "yes":
            return TemplateResponse(request, "admin/reviews/clip/erase_confirmation.html", {
                **self.admin_site.each_context(request), "opts": self.model._meta, "clips": clips,
                "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME, "title": "Erase clips"})
        counts = lifecycle.clip_erase(actor=request.user, clip_ids=[clip.pk for clip in clips])
        self.message_user(request, f"Erased {counts['clips']} clip(s), their audio and all work on them.")
        return None

    def has_erase_permission(self, request):
        return request.user.has_perm("reviews.delete_clip")


# Reviewers' work changes only through the audited services. The free text reviewers write
# (transcripts, skip and flag reasons, the supervisor's action) is not shown: it may repeat
# what the speaker said, and supervisors read it in the console, where reading is audited.
@admin.register(Assignment)
class AssignmentAdmin(ReadOnlyAdmin):
    list_display = ["id", "reviewer", "status", "leased_at", "lease_expires_at"]
    list_filter = ["status"]
    fields = ["clip", "reviewer", "status", "leased_at", "lease_expires_at", "ended_at"]
    readonly_fields = fields


@admin.register(Transcription)
class TranscriptionAdmin(ReadOnlyAdmin):
    list_display = ["id", "reviewer", "submitted_at"]
    fields = ["assignment", "clip", "reviewer", "labels", "submitted_at"]
    readonly_fields = fields


@admin.register(ReviewerPause)
class ReviewerPauseAdmin(ReadOnlyAdmin):
    """Pauses are made by the gold check (quality.reviewer_pause_check); admins only lift them."""

    list_display = ["reviewer", "project", "paused_at", "accuracy", "threshold", "gold_count", "lifted_at",
                    "lifted_by"]
    list_filter = ["project", ("lifted_at", admin.EmptyFieldListFilter)]
    search_fields = ["reviewer__username"]
    fields = ["reviewer", "project", "paused_at", "reason", "accuracy", "threshold", "gold_count", "lifted_at",
              "lifted_by"]
    readonly_fields = fields
    actions = ["pauses_lift"]

    @admin.action(description="Lift selected pauses (audited)", permissions=["lift"])
    def pauses_lift(self, request, queryset):
        lifted = [pause for pause in queryset.order_by("pk") if quality.pause_lift(actor=request.user,
                                                                                    pause_id=pause.pk)]
        self.message_user(request, f"Lifted {len(lifted)} pause(s).")

    def has_lift_permission(self, request):
        return request.user.has_perm("reviews.change_reviewerpause")


@admin.register(Escalation)
class EscalationAdmin(ReadOnlyAdmin):
    list_display = ["id", "status", "created_at", "flagged_by", "taken_by", "closed_at"]
    list_filter = ["status"]
    fields = ["clip", "assignment", "flagged_by", "created_at", "status", "taken_by", "taken_at", "closed_at"]
    readonly_fields = fields


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ["at", "actor_name", "role", "action", "outcome", "object_type", "object_id"]
    list_filter = ["action", "outcome", "role"]
    search_fields = ["actor_name", "object_id", "request_id"]
    show_full_result_count = False  # no COUNT(*) over millions of events


@admin.register(AuditVerification)
class AuditVerificationAdmin(ReadOnlyAdmin):
    list_display = ["verified_at", "ok", "events_checked", "first_broken_id", "detail"]


# Third-party admins replaced by ours: theirs allow unaudited edits, and django-otp's shows
# every authenticator's secret key and QR code to any admin.
for third_party in (AccessAttempt, AccessLog, AccessFailureLog, TOTPDevice):
    if admin.site.is_registered(third_party):
        admin.site.unregister(third_party)


@admin.register(AccessAttempt)
class LockoutAdmin(AuditedAdmin):
    """Deleting a lockout lets its user sign in again: that is all an admin does here, audited."""

    list_display = ["attempt_time", "username", "ip_address", "path_info", "failures_since_start"]
    list_filter = ["attempt_time"]
    search_fields = ["username", "ip_address"]
    fields = ["username", "ip_address", "user_agent", "path_info", "attempt_time", "failures_since_start"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


@admin.register(AccessLog, AccessFailureLog)
class SignInLogAdmin(ReadOnlyAdmin):
    list_display = ["attempt_time", "username", "ip_address", "path_info"]
    search_fields = ["username", "ip_address"]


@admin.register(TOTPDevice)
class AuthenticatorAdmin(AuditedAdmin):
    """Deleting a lost authenticator makes its owner enrol again; the key is never shown or set here."""

    list_display = ["user", "name", "confirmed", "created_at", "last_used_at"]
    list_filter = ["confirmed"]
    search_fields = ["user__username"]
    fields = ["user", "name", "confirmed", "created_at", "last_used_at"]
    readonly_fields = fields

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False


class ReviewerQuotaInline(admin.StackedInline):
    model = ReviewerQuota
    extra = 0
    max_num = 1


class MembershipInline(admin.TabularInline):
    model = Project.members.through
    extra = 0
    verbose_name = "project membership"
    verbose_name_plural = "project memberships"


admin.site.unregister(User)
admin.site.unregister(Group)


@admin.register(User)
class AuditedUserAdmin(AuditedAdmin, UserAdmin):
    list_filter = ["is_active", "is_staff", "groups"]
    inlines = [ReviewerQuotaInline, MembershipInline]

    def user_change_password(self, request, id, form_url=""):
        # Django's password page saves without save_model: audit it here, in the same transaction.
        with transaction.atomic():
            response = super().user_change_password(request, id, form_url)
            if request.method == "POST" and response.status_code == 302:
                audit_record(actor=request.user, action="admin.change", object_type="user", object_id=id,
                             details={"operation": "change", "fields": {"password": "changed"}})
        return response


@admin.register(Group)
class AuditedGroupAdmin(AuditedAdmin, GroupAdmin):
    pass
