"""The audit trail from day one: sign-in events, the chain, and 'no audit, no action'."""

import pytest
from django.test import Client

from reviews.audit import GENESIS_HASH, event_fields, event_hash
from reviews.models import Assignment, AuditEvent, Transcription
from tests.helpers import PASSWORD, events, session_client


def test_login_logout_and_failed_login_are_audited(alice):
    browser = Client(REMOTE_ADDR="10.1.2.3", HTTP_USER_AGENT="pytest-browser")
    assert browser.post("/accounts/login/", {"username": "alice", "password": "wrong"}).status_code == 200
    assert browser.post("/accounts/login/", {"username": "nobody", "password": "wrong"}).status_code == 200
    assert browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD}).status_code == 302
    assert browser.post("/accounts/logout/").status_code == 302
    trail = events()
    assert [(e.action, e.outcome) for e in trail] == [
        ("auth.login_failed", "denied"), ("auth.login_failed", "denied"), ("auth.login", "allowed"),
        ("auth.logout", "allowed"),
    ]
    assert trail[0].actor_name == "alice" and trail[1].actor_name == ""
    assert trail[1].details == {"known_user": False}
    assert all(e.client_ip == "10.1.2.3" and e.user_agent == "pytest-browser" and e.request_id for e in trail)
    assert all("wrong" not in str(event_fields(e)) for e in trail)


def test_events_form_an_unbroken_hash_chain(project, ingest, alice):
    ingest(2)
    client = session_client(alice)
    client.post("/api/v1/assignments/next/")
    trail = events()
    assert len(trail) >= 4
    assert trail[0].prev_hash == GENESIS_HASH
    for before, after in zip(trail, trail[1:]):
        assert after.prev_hash == before.hash
    for event in trail:
        assert event.hash == event_hash(event_fields(event))


def test_audit_events_cannot_be_changed_or_deleted_through_the_model(alice):
    Client().post("/accounts/login/", {"username": "alice", "password": "wrong"})
    event = AuditEvent.objects.get()
    event.action = "auth.login"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()


def test_when_the_audit_write_fails_the_action_fails(project, ingest, alice, monkeypatch):
    ingest(1)
    client = session_client(alice)
    assignment = client.post("/api/v1/assignments/next/").json()
    from reviews import services

    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_record", broken)
    response = client.post(f"/api/v1/assignments/{assignment['id']}/submit/",
                           {"text": "hello", "labels": {"speaker": ["adult"]}}, format="json")
    assert response.status_code == 500 and response.json()["code"] == "server_error"
    assert Transcription.objects.count() == 0
    assert Assignment.objects.get().status == "live"


def test_failed_lease_audit_leaves_no_lease(project, ingest, alice, monkeypatch):
    ingest(1)
    from reviews import leases

    monkeypatch.setattr(leases, "audit_record", lambda **kw: (_ for _ in ()).throw(RuntimeError("down")))
    response = session_client(alice).post("/api/v1/assignments/next/")
    assert response.status_code == 500
    assert Assignment.objects.count() == 0
    from reviews.models import Clip
    assert Clip.objects.get().slots_taken == 0


def test_workspace_page_is_for_reviewers_only(alice, sam):
    assert Client().get("/workspace/").status_code == 302  # to the sign-in page
    assert session_client(alice).get("/workspace/").status_code == 200
    page = session_client(sam).get("/workspace/")
    assert page.status_code == 404
    [denied] = events("access.denied")
    assert denied.actor_id == sam.pk and denied.details["attempted"] == "page.workspace"
