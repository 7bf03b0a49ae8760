"""Django admin: every change is audited with its fields (old -> new); nothing leaks audio or PII."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group

from reviews.models import AuditEvent, Project, QuotaDefaults, ReviewerQuota
from tests.helpers import session_client


class FormFields(HTMLParser):
    """Collect the values a browser would submit from the admin's change form."""

    def __init__(self):
        super().__init__()
        self.values: dict[str, list[str]] = {}
        self._select = None
        self._textarea = None

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        name = attrs.get("name")
        if tag == "input" and name and attrs.get("type") not in ("submit", "button", "file"):
            if attrs.get("type") in ("checkbox", "radio") and "checked" not in attrs:
                return
            default = "on" if attrs.get("type") in ("checkbox", "radio") else ""
            self.values.setdefault(name, []).append(attrs.get("value") or default)
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, [])
        elif tag == "option" and self._select and "selected" in attrs:
            self.values[self._select].append(attrs.get("value", ""))
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = [""]

    def handle_data(self, data):
        if self._textarea:
            self.values[self._textarea][0] += data

    def handle_endtag(self, tag):
        if tag == "select":
            self._select = None
        if tag == "textarea":
            self._textarea = None


def admin_form(client, url) -> dict:
    parser = FormFields()
    parser.feed(client.get(url).content.decode())
    return {k: v if len(v) != 1 else v[0] for k, v in parser.values.items()}


def submit(client, url, **changes):
    data = admin_form(client, url)
    data.update(changes)
    data = {k: v for k, v in data.items() if v is not None}
    response = client.post(url, data)
    import re
    problems = re.findall(r"errorlist[^>]*>(.*?)</ul>|errornote[^>]*>(.*?)</p>", response.content.decode(), re.S)
    assert response.status_code == 302, problems[:5]
    return response


@pytest.fixture
def admin_client(ada):
    return session_client(ada)


def test_editing_a_reviewer_quota_is_a_quota_change_with_old_and_new(admin_client, alice):
    quota = ReviewerQuota.objects.create(reviewer=alice, clips_per_day=50)
    submit(admin_client, f"/admin/reviews/reviewerquota/{quota.pk}/change/", clips_per_day="20")
    [event] = AuditEvent.objects.filter(action="quota.change")
    assert event.actor_name == "ada" and event.role == "admin"
    assert event.details == {"operation": "change", "fields": {"clips_per_day": ["50", "20"]}}
    assert ReviewerQuota.objects.get().clips_per_day == 20


def test_editing_the_defaults_is_a_quota_change(admin_client):
    defaults = QuotaDefaults.objects.first() or QuotaDefaults.objects.create()
    submit(admin_client, f"/admin/reviews/quotadefaults/{defaults.pk}/change/", plays_per_clip="3")
    [event] = AuditEvent.objects.filter(action="quota.change")
    assert event.details["fields"] == {"plays_per_clip": [str(defaults.plays_per_clip), "3"]}


def test_project_changes_name_each_field_including_members(admin_client, project, alice, bob):
    url = f"/admin/reviews/project/{project.pk}/change/"
    submit(admin_client, url, lease_minutes="15", members=[str(alice.pk)], sampling_rate="0.02")
    [event] = AuditEvent.objects.filter(action="admin.change")
    fields = event.details["fields"]
    assert fields["lease_minutes"] == ["10", "15"]
    assert fields["sampling_rate"] == ["1.0000", "0.0200"]
    assert fields["members"] == [sorted([str(alice.pk), str(bob.pk)]), [str(alice.pk)]]
    assert list(Project.objects.get().members.all()) == [alice]


def test_changing_a_users_groups_is_a_role_change(admin_client, alice):
    supervisor = Group.objects.get_or_create(name="supervisor")[0]
    reviewer = Group.objects.get(name="reviewer")
    submit(admin_client, f"/admin/auth/user/{alice.pk}/change/", groups=[str(reviewer.pk), str(supervisor.pk)])
    [event] = AuditEvent.objects.filter(action="role.change")
    assert event.object_id == str(alice.pk)
    assert event.details["fields"]["groups"] == [[str(reviewer.pk)], sorted([str(reviewer.pk), str(supervisor.pk)])]


def test_deleting_through_the_admin_is_audited(admin_client, alice):
    quota = ReviewerQuota.objects.create(reviewer=alice, clips_per_day=5)
    response = admin_client.post(f"/admin/reviews/reviewerquota/{quota.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    [event] = AuditEvent.objects.filter(action="quota.change")
    assert event.details == {"operation": "delete"} and event.object_id == str(quota.pk)


def test_audit_events_are_read_only_in_the_admin(admin_client, alice):
    from django.test import Client

    Client().post("/accounts/login/", {"username": "alice", "password": "nope"})
    event = AuditEvent.objects.filter(action="auth.login_failed").get()
    page = admin_client.get(f"/admin/reviews/auditevent/{event.pk}/change/")
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split("<form")[-1]
    assert admin_client.post(f"/admin/reviews/auditevent/{event.pk}/change/", {"action": "x"}).status_code == 403
    assert admin_client.post(f"/admin/reviews/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/reviews/auditevent/add/").status_code == 403


def test_clip_admin_shows_no_audio_and_no_pseudonym(admin_client, ingest):
    [clip] = ingest(1)
    page = admin_client.get(f"/admin/reviews/clip/{clip.pk}/change/").content.decode()
    assert clip.subject_key not in page and clip.audio.name not in page and ".mp3" not in page
    assert admin_client.get("/admin/reviews/clip/").status_code == 200


def test_project_page_shows_the_disguise_in_use_and_refuses_unknown_presets(admin_client, project):
    page = admin_client.get(f"/admin/reviews/project/{project.pk}/change/").content.decode()
    assert "disguise: last measured" in page.lower() and "pitch" in page
    data = admin_form(admin_client, f"/admin/reviews/project/{project.pk}/change/")
    data.update(disguise_preset="no-such-preset")
    response = admin_client.post(f"/admin/reviews/project/{project.pk}/change/", data)
    assert response.status_code == 200 and "Unknown preset" in response.content.decode()
    assert not AuditEvent.objects.filter(action="admin.change").exists()


def test_ingest_uses_the_projects_preset(project, ingest, monkeypatch):
    from reviews import audio

    chosen = []
    original = audio.disguise_preset
    monkeypatch.setattr(audio, "disguise_preset", lambda name: chosen.append(name) or original(name))
    project.disguise_preset = "mcadams"
    project.save()
    [clip] = ingest(1)
    assert chosen == ["mcadams"] and clip.duration_ms > 1000



# --- Reviewers' work: read-only; clips leave only through the lifecycle's erasure ----------

def _clip_untouched(clip):
    from django.core.files.storage import default_storage

    from reviews.models import Clip

    assert Clip.objects.filter(pk=clip.pk).exists() and default_storage.exists(clip.audio.name)
    assert not AuditEvent.objects.filter(action="clip.erase").exists()


def test_deleting_a_clip_in_the_admin_is_refused(admin_client, ingest, django_capture_on_commit_callbacks):
    [clip] = ingest(1)
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client.post(f"/admin/reviews/clip/{clip.pk}/delete/", {"post": "yes"})
    assert response.status_code == 403
    _clip_untouched(clip)


def test_bulk_delete_selected_is_not_offered_for_clips(admin_client, ingest, django_capture_on_commit_callbacks):
    [clip] = ingest(1)
    page = admin_client.get("/admin/reviews/clip/").content.decode()
    assert 'value="delete_selected"' not in page and 'value="clips_erase"' in page
    with django_capture_on_commit_callbacks(execute=True):
        admin_client.post("/admin/reviews/clip/", {
            "action": "delete_selected", "_selected_action": [str(clip.pk)], "post": "yes"})
    _clip_untouched(clip)


def test_erase_selected_clips_asks_first_then_erases_like_a_subject_erasure(
        admin_client, ingest, alice, django_capture_on_commit_callbacks):
    from django.core.files.storage import default_storage

    from reviews import leases, services
    from reviews.models import Assignment, Clip, Transcription

    first, second, kept = ingest(3)
    lease = leases.assignment_next(reviewer=alice)
    services.transcription_submit(reviewer=alice, assignment_id=lease.pk, text="call me on five five five",
                                  labels={"speaker": ["adult"]})
    chosen = [str(first.pk), str(second.pk)]
    confirm = admin_client.post("/admin/reviews/clip/", {"action": "clips_erase", "_selected_action": chosen})
    assert confirm.status_code == 200 and "cannot be undone" in confirm.content.decode()
    assert Clip.objects.count() == 3 and not AuditEvent.objects.filter(action="clip.erase").exists()
    with django_capture_on_commit_callbacks(execute=True):
        done = admin_client.post("/admin/reviews/clip/", {"action": "clips_erase", "_selected_action": chosen,
                                                          "post": "yes"})
    assert done.status_code == 302
    assert list(Clip.objects.all()) == [kept] and default_storage.exists(kept.audio.name)
    assert not default_storage.exists(first.audio.name) and not default_storage.exists(second.audio.name)
    assert not Transcription.objects.filter(clip_id__in=chosen).exists()
    assert not Assignment.objects.filter(clip_id__in=chosen).exists()
    erased = AuditEvent.objects.filter(action="clip.erase").order_by("id")
    assert sorted(str(e.clip_id) for e in erased) == sorted(chosen)
    assert all(e.actor_name == "ada" and e.role == "admin" and e.object_type == "clip" for e in erased)
    assert sum(e.details["transcriptions"] for e in erased) == (1 if lease.clip_id in (first.pk, second.pk) else 0)
    assert all(e.details["audio_files"] == 1 and "subject_key" not in e.details for e in erased)


def test_no_admin_page_shows_transcript_or_reviewer_text(admin_client, ingest, alice, bob):
    from reviews import leases, services
    from reviews.models import Assignment, Escalation, Transcription

    ingest(2)
    lease = leases.assignment_next(reviewer=alice)
    services.transcription_submit(reviewer=alice, assignment_id=lease.pk, text="my card is 4111 spoken",
                                  labels={"speaker": ["adult"]})
    other = leases.assignment_next(reviewer=bob)
    services.clip_flag(reviewer=bob, assignment_id=other.pk, reason="the caller names her street")
    escalation = Escalation.objects.get()
    transcription = Transcription.objects.get()
    for url in ("/admin/reviews/transcription/", f"/admin/reviews/transcription/{transcription.pk}/change/",
                "/admin/reviews/escalation/", f"/admin/reviews/escalation/{escalation.pk}/change/",
                "/admin/reviews/assignment/", f"/admin/reviews/assignment/{other.pk}/change/"):
        page = admin_client.get(url)
        assert page.status_code == 200, url
        assert "4111" not in page.content.decode() and "her street" not in page.content.decode(), url
    assert Assignment.objects.get(pk=other.pk).reason  # the text exists; the admin just does not show it


def test_setting_a_users_password_in_the_admin_is_audited_without_the_password(admin_client, alice):
    url = f"/admin/auth/user/{alice.pk}/password/"
    response = admin_client.post(url, {"password1": "a new long passphrase 42", "password2": "a new long passphrase 42",
                                       "usable_password": "true"})
    assert response.status_code == 302
    [event] = AuditEvent.objects.filter(action="admin.change", object_type="user")
    assert event.object_id == str(alice.pk) and event.details == {"operation": "change",
                                                                  "fields": {"password": "changed"}}
    assert "passphrase" not in str(event.details)


def test_a_staff_members_personal_details_are_audited_as_changed_not_by_value(admin_client, alice):
    submit(admin_client, f"/admin/auth/user/{alice.pk}/change/", email="alice@example.org", first_name="Alice")
    [event] = AuditEvent.objects.filter(action="admin.change", object_type="user")
    assert event.details["fields"] == {"email": "changed", "first_name": "changed"}


def test_no_admin_page_shows_an_authenticators_key(admin_client, sam):
    from tests.helpers import totp_device

    device = totp_device(sam)
    for url in ("/admin/otp_totp/totpdevice/", f"/admin/otp_totp/totpdevice/{device.pk}/change/",
                f"/admin/otp_totp/totpdevice/{device.pk}/config/", f"/admin/otp_totp/totpdevice/{device.pk}/qrcode/"):
        response = admin_client.get(url, follow=True)
        page = response.content.decode()
        assert device.key not in page and "otpauth://" not in page, url
        assert "svg" not in response["Content-Type"], url  # no QR code image
    assert admin_client.get("/admin/otp_totp/totpdevice/add/").status_code == 403
