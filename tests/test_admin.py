"""Django admin: every change is audited with its fields (old -> new); nothing leaks audio or PII."""

from html.parser import HTMLParser

import pytest
from django.contrib.auth.models import Group

from reviews.models import AuditEvent, Project, QuotaDefaults, ReviewerQuota
from tests.conftest import session_client


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
    assert response.status_code == 302, re.findall(r"errorlist[^>]*>(.*?)</ul>|errornote[^>]*>(.*?)</p>", response.content.decode(), re.S)[:5]
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
