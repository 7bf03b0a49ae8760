"""Walk every model in the admin: for a staff superuser, each add, change, delete, bulk
"delete selected" and every other bulk action is either impossible (403, or the action is not
offered and nothing happens) or writes exactly one audit event of the expected kind.

A model registered later fails test_every_registered_model_is_walked until someone decides
which it is; the admin has no side door that nobody looked at."""

import pytest
from axes.models import AccessAttempt, AccessFailureLog, AccessLog
from django.contrib import admin
from django.contrib.auth.models import Group
from django.test import RequestFactory
from django.utils import timezone

from reviews import leases, services
from reviews.audit import audit_record
from reviews.models import (
    AuditEvent,
    AuditVerification,
    Escalation,
    LabelGroup,
    LabelSchema,
    Project,
    QuotaDefaults,
    ReviewerPause,
    ReviewerQuota,
    Transcription,
)
from tests.helpers import make_user, session_client, totp_device
from tests.test_admin import admin_form

LABELS = {"speaker": ["adult"]}


def _work(ctx):
    """A submitted transcription (alice) and a flagged clip (bob), through the real services."""
    ctx["ingest"](2)
    lease = leases.assignment_next(reviewer=ctx["alice"])
    services.transcription_submit(reviewer=ctx["alice"], assignment_id=lease.pk, text="walk text", labels=LABELS)
    flagged = leases.assignment_next(reviewer=ctx["bob"])
    services.clip_flag(reviewer=ctx["bob"], assignment_id=flagged.pk, reason="walk reason")
    return lease, flagged


def _access(model, **extra):
    return model.objects.create(user_agent="walk", ip_address="192.0.2.1", username="walker", http_accept="*/*",
                                path_info="/accounts/login/", **extra)


# label -> a fresh instance to change or delete
MAKE = {
    "auth.user": lambda ctx: make_user("walker", None),
    "auth.group": lambda ctx: Group.objects.create(name="walkers"),
    "reviews.project": lambda ctx: Project.objects.create(slug="walk", name="Walk", label_schema=ctx["schema"]),
    "reviews.labelschema": lambda ctx: LabelSchema.objects.create(name="Walk schema"),
    "reviews.labelgroup": lambda ctx: LabelGroup.objects.create(schema=ctx["schema"], key="walk", name="Walk"),
    "reviews.quotadefaults": lambda ctx: QuotaDefaults.objects.first() or QuotaDefaults.objects.create(),
    "reviews.reviewerquota": lambda ctx: ReviewerQuota.objects.create(reviewer=ctx["bob"], clips_per_day=9),
    "reviews.clip": lambda ctx: ctx["ingest"](1)[0],
    "reviews.assignment": lambda ctx: _work(ctx)[0],
    "reviews.transcription": lambda ctx: (_work(ctx), Transcription.objects.get())[1],
    "reviews.escalation": lambda ctx: (_work(ctx), Escalation.objects.get())[1],
    "reviews.auditevent": lambda ctx: audit_record(actor=ctx["ada"], action="auth.login", object_type="user"),
    "reviews.auditverification": lambda ctx: AuditVerification.objects.create(
        verified_at=timezone.now(), ok=True, events_checked=0),
    "axes.accessattempt": lambda ctx: _access(AccessAttempt, get_data="", post_data="", failures_since_start=5),
    "axes.accesslog": lambda ctx: _access(AccessLog),
    "axes.accessfailurelog": lambda ctx: _access(AccessFailureLog, locked_out=False),
    "otp_totp.totpdevice": lambda ctx: totp_device(ctx["bob"]),
    "reviews.reviewerpause": lambda ctx: ReviewerPause.objects.create(
        reviewer=ctx["bob"], project=Project.objects.get(slug="demo"), paused_at=timezone.now(), reason="walk"),
}

# label -> the one audit action its admin changes write (models absent here may change nothing)
AUDITED_AS = {
    "auth.user": "admin.change", "auth.group": "admin.change", "reviews.project": "admin.change",
    "reviews.labelschema": "admin.change", "reviews.labelgroup": "admin.change",
    "reviews.quotadefaults": "quota.change", "reviews.reviewerquota": "quota.change",
    "axes.accessattempt": "admin.change", "otp_totp.totpdevice": "admin.change",
}

# label -> form fields for a new object, on top of the add form's own defaults
ADD = {
    "auth.user": lambda ctx: {"username": "newcomer", "password1": "a long walk passphrase",
                              "password2": "a long walk passphrase", "usable_password": "true"},
    "auth.group": lambda ctx: {"name": "newcomers"},
    "reviews.project": lambda ctx: {"slug": "new", "name": "New", "label_schema": str(ctx["schema"].pk)},
    "reviews.labelschema": lambda ctx: {"name": "New schema"},
    "reviews.labelgroup": lambda ctx: {"schema": str(ctx["schema"].pk), "key": "new", "name": "New",
                                       "kind": "multi", "position": "3"},
    "reviews.quotadefaults": lambda ctx: {},
    "reviews.reviewerquota": lambda ctx: {"reviewer": str(ctx["bob"].pk), "clips_per_day": "5"},
}

# label -> one field edit on the change form
CHANGE = {
    "auth.user": {"last_name": "Walker"}, "auth.group": {"name": "renamed"}, "reviews.project": {"name": "Renamed"},
    "reviews.labelschema": {"name": "Renamed"}, "reviews.labelgroup": {"name": "Renamed"},
    "reviews.quotadefaults": {"plays_per_clip": "4"}, "reviews.reviewerquota": {"clips_per_day": "7"},
}

# (label, bulk action) -> the audit action one selected object writes; any other action fails the walk
ACTIONS = {("reviews.clip", "clips_erase"): "clip.erase", ("reviews.clip", "clips_gold"): "clip.gold",
           ("reviews.reviewerpause", "pauses_lift"): "reviewer.unpause"}

REGISTERED = sorted(model._meta.label_lower for model in admin.site._registry)


def _model_admin(label):
    return next(a for m, a in admin.site._registry.items() if m._meta.label_lower == label)


def _url(label, suffix=""):
    app, model = label.split(".")
    return f"/admin/{app}/{model}/{suffix}"


@pytest.fixture
def ctx(schema, project, alice, bob, ada, ingest):
    request = RequestFactory().get("/admin/")
    request.user = ada
    return {"schema": schema, "alice": alice, "bob": bob, "ada": ada, "ingest": ingest, "request": request,
            "client": session_client(ada)}


def _new_events(before):
    return [(e.action, e.outcome) for e in AuditEvent.objects.filter(id__gt=before).order_by("id")]


def _last_id():
    return AuditEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def test_every_registered_model_is_walked():
    assert REGISTERED == sorted(MAKE), "decide how the admin treats each registered model (and add it to MAKE)"
    assert "reviews.draft" not in REGISTERED and "reviews.revision" not in REGISTERED  # text lives there


@pytest.mark.parametrize("label", REGISTERED)
def test_adding(label, ctx):
    model_admin, client = _model_admin(label), ctx["client"]
    if label == "reviews.quotadefaults":
        QuotaDefaults.objects.all().delete()  # a single row: adding is possible only while none exists
    if not model_admin.has_add_permission(ctx["request"]):
        before = _last_id()
        assert client.get(_url(label, "add/")).status_code == 403
        assert client.post(_url(label, "add/"), {}).status_code == 403
        assert _new_events(before) == []
        return
    assert label in ADD, f"{label} may be added in the admin: say how, and that it is audited"
    data = admin_form(client, _url(label, "add/"))
    data.update(ADD[label](ctx))
    before, count = _last_id(), model_admin.model.objects.count()
    response = client.post(_url(label, "add/"), data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert model_admin.model.objects.count() == count + 1
    assert _new_events(before) == [(AUDITED_AS[label], "allowed")]
    assert AuditEvent.objects.get(id__gt=before).details["operation"] == "add"


@pytest.mark.parametrize("label", REGISTERED)
def test_changing(label, ctx):
    model_admin, client = _model_admin(label), ctx["client"]
    obj = MAKE[label](ctx)
    url = _url(label, f"{obj.pk}/change/")
    if not model_admin.has_change_permission(ctx["request"], obj):
        before = _last_id()
        assert client.post(url, {"name": "x", "text": "x", "status": "closed"}).status_code == 403
        assert _new_events(before) == []
        return
    assert label in CHANGE, f"{label} may be changed in the admin: say how, and that it is audited"
    data = admin_form(client, url)
    data.update(CHANGE[label])
    before = _last_id()
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[-3000:]
    assert _new_events(before) == [(AUDITED_AS[label], "allowed")]
    event = AuditEvent.objects.get(id__gt=before)
    assert event.details["operation"] == "change" and set(event.details["fields"]) == set(CHANGE[label])


@pytest.mark.parametrize("label", REGISTERED)
def test_deleting_one(label, ctx, django_capture_on_commit_callbacks):
    model_admin, client = _model_admin(label), ctx["client"]
    obj = MAKE[label](ctx)
    before = _last_id()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(label, f"{obj.pk}/delete/"), {"post": "yes"})
    if not model_admin.has_delete_permission(ctx["request"], obj):
        assert response.status_code == 403
        assert model_admin.model.objects.filter(pk=obj.pk).exists() and _new_events(before) == []
        return
    assert response.status_code == 302
    assert not model_admin.model.objects.filter(pk=obj.pk).exists()
    assert _new_events(before) == [(AUDITED_AS[label], "allowed")]
    assert AuditEvent.objects.get(id__gt=before).details == {"operation": "delete"}


@pytest.mark.parametrize("label", REGISTERED)
def test_bulk_delete_selected(label, ctx, django_capture_on_commit_callbacks):
    model_admin, client = _model_admin(label), ctx["client"]
    obj = MAKE[label](ctx)
    offered = "delete_selected" in model_admin.get_actions(ctx["request"])
    before = _last_id()
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(label), {"action": "delete_selected", "_selected_action": [str(obj.pk)],
                                             "post": "yes"})
    if not offered:
        assert response.status_code in (200, 302, 403)  # the changelist again, "no action selected", or refused
        assert model_admin.model.objects.filter(pk=obj.pk).exists() and _new_events(before) == []
        return
    assert response.status_code == 302
    assert not model_admin.model.objects.filter(pk=obj.pk).exists()
    assert _new_events(before) == [(AUDITED_AS[label], "allowed")]


@pytest.mark.parametrize("label", REGISTERED)
def test_every_other_bulk_action_is_audited(label, ctx, django_capture_on_commit_callbacks):
    model_admin, client = _model_admin(label), ctx["client"]
    for name in model_admin.get_actions(ctx["request"]):
        if name == "delete_selected":
            continue
        assert (label, name) in ACTIONS, f"{label} offers the bulk action {name!r}: is it audited?"
        obj = MAKE[label](ctx)
        before = _last_id()
        with django_capture_on_commit_callbacks(execute=True):
            response = client.post(_url(label), {"action": name, "_selected_action": [str(obj.pk)], "post": "yes"})
        assert response.status_code == 302
        assert _new_events(before) == [(ACTIONS[(label, name)], "allowed")]
