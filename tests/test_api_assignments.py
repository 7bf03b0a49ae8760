"""The review loop through the API: lease, listen, save, submit, skip; and other people's work."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reviews.models import Assignment, AuditEvent, Clip, Transcription
from tests.helpers import events, session_client

LABELS = {"speaker": ["adult"]}


def lease(client):
    response = client.post("/api/v1/assignments/next/")
    assert response.status_code == 201, response.content
    return response.json()


def play(client, assignment: dict):
    token = client.post(assignment["audio_token_url"]).json()["token"]
    return client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token)


def test_alice_leases_listens_submits_and_gets_the_next_clip(project, ingest, alice):
    ingest(2)
    client = session_client(alice)
    first = lease(client)
    assert first["clip"]["duration_ms"] > 1000 and len(first["clip"]["peaks"]) == 800
    assert [g["key"] for g in first["label_schema"]["groups"]] == ["issues", "speaker"]
    assert first["label_schema"]["name"] == project.label_schema.name  # the schema's, not its last group's

    audio = play(client, first)
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/mpeg" and len(audio.content) > 1000

    submitted = client.post(f"/api/v1/assignments/{first['id']}/submit/",
                            {"text": "set a timer for ten minutes", "labels": LABELS}, format="json")
    assert submitted.status_code == 201, submitted.content
    second = lease(client)
    assert second["id"] != first["id"] and second["clip"]["id"] != first["clip"]["id"]
    assert Transcription.objects.get().text == "set a timer for ten minutes"
    assert Clip.objects.get(pk=first["clip"]["id"]).status == "done"
    actions = [e.action for e in events() if e.actor_id == alice.pk]
    assert actions == ["auth.login", "assignment.lease", "audio.token", "audio.play", "transcription.submit",
                       "assignment.lease"]


def test_bob_never_gets_the_clip_alice_holds(project, ingest, alice, bob):
    ingest(1)
    lease(session_client(alice))
    response = session_client(bob).post("/api/v1/assignments/next/")
    assert response.status_code == 204


def test_asking_again_returns_the_live_lease(project, ingest, alice):
    ingest(2)
    client = session_client(alice)
    assert lease(client)["id"] == lease(client)["id"]
    assert Assignment.objects.count() == 1


def test_empty_queue_answers_204(project, alice):
    assert session_client(alice).post("/api/v1/assignments/next/").status_code == 204


def test_reviewer_outside_the_project_gets_nothing(project, ingest, alice):
    ingest(1)
    project.members.remove(alice)
    assert session_client(alice).post("/api/v1/assignments/next/").status_code == 204


def test_submit_twice_creates_one_transcription(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    url = f"/api/v1/assignments/{assignment['id']}/submit/"
    first = client.post(url, {"text": "hello", "labels": LABELS}, format="json")
    again = client.post(url, {"text": "hello", "labels": LABELS}, format="json")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert Transcription.objects.count() == 1 and len(events("transcription.submit")) == 1


def test_required_label_group_is_enforced_on_submit(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    response = client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {"text": "hi", "labels": {}},
                           format="json")
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_labels" and response.json()["fields"] == {"speaker": "Required."}
    bad = client.post(f"/api/v1/assignments/{assignment['id']}/submit/",
                      {"text": "hi", "labels": {"speaker": ["adult", "child"]}}, format="json")
    assert bad.status_code == 400 and bad.json()["fields"] == {"speaker": "Choose one."}
    assert Transcription.objects.count() == 0


def test_draft_version_conflict_answers_409(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    url = f"/api/v1/assignments/{assignment['id']}/draft/"
    saved = client.put(url, {"text": "first", "labels": {}, "version": 0}, format="json")
    assert saved.status_code == 200 and saved.json()["version"] == 1
    stale = client.put(url, {"text": "other tab", "labels": {}, "version": 0}, format="json")
    assert stale.status_code == 409 and stale.json()["code"] == "stale_version"
    assert client.get(f"/api/v1/assignments/{assignment['id']}/").json()["draft"]["text"] == "first"
    # A version past what the column holds is bad input, not a server error (schemathesis found a 500).
    huge = client.put(url, {"text": "x", "labels": {}, "version": 2432902008176640001}, format="json")
    assert huge.status_code == 400 and "version" in huge.json()["fields"]
    assert client.get(f"/api/v1/assignments/{assignment['id']}/").json()["draft"]["text"] == "first"


def test_skip_returns_the_clip_to_others_but_not_to_alice(project, ingest, alice, bob):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    response = client.post(f"/api/v1/assignments/{assignment['id']}/skip/", {"reason": "music only"},
                           format="json")
    assert response.status_code == 200
    assert client.post("/api/v1/assignments/next/").status_code == 204
    assert lease(session_client(bob))["clip"]["id"] == assignment["clip"]["id"]
    assert len(events("assignment.skip")) == 1


def test_expired_lease_returns_the_clip_and_ends_alices_access(project, ingest, alice, bob):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    token = client.post(assignment["audio_token_url"]).json()["token"]
    with time_machine.travel(timezone.now() + timedelta(minutes=11)):
        denied = client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token)
        assert denied.status_code == 404
        assert lease(session_client(bob))["clip"]["id"] == assignment["clip"]["id"]
        late = client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {"text": "x", "labels": LABELS},
                           format="json")
        assert late.status_code == 409 and late.json()["code"] == "lease_expired"
    assert Assignment.objects.get(pk=assignment["id"]).status == "expired"
    assert len(events("assignment.expire")) == 1
    assert {e.details["reason"] for e in events("access.denied")} == {"bad_token", "lease_ended"}


@pytest.mark.parametrize(
    "method, suffix, body",
    [
        ("get", "", None),
        ("post", "audio-token/", None),
        ("get", "audio/", None),
        ("put", "draft/", {"text": "mine now", "labels": {}, "version": 0}),
        ("post", "submit/", {"text": "mine now", "labels": LABELS}),
        ("post", "skip/", {"reason": "curious"}),
    ],
)
def test_bob_cannot_touch_alices_assignment(project, ingest, alice, bob, method, suffix, body):
    ingest(1)
    assignment = lease(session_client(alice))
    url = f"/api/v1/assignments/{assignment['id']}/{suffix}"
    response = getattr(session_client(bob), method)(url, body, format="json") if body else getattr(
        session_client(bob), method)(url)
    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "detail": "Not found."}
    [denied] = events("access.denied")
    assert denied.actor_id == bob.pk and denied.outcome == "denied" and denied.details["reason"] == "not_owner"
    assert Assignment.objects.get(pk=assignment["id"]).status == "live"


def test_audio_token_fails_for_another_session_and_after_logout(project, ingest, alice):
    ingest(1)
    tab = session_client(alice)
    assignment = lease(tab)
    token = tab.post(assignment["audio_token_url"]).json()["token"]
    other_browser = session_client(alice)
    assert other_browser.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 404
    assert tab.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN="forged").status_code == 404
    assert tab.get(assignment["audio_url"]).status_code == 404
    assert tab.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 200
    tab.post("/accounts/logout/")
    assert tab.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code in (401, 403)
    assert len(events("audio.play", outcome="allowed")) == 1


def test_audio_response_headers_keep_the_clip_in_the_tool(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    response = play(client, lease(client))
    assert response["Cache-Control"] == "no-store, private"
    assert response["Content-Disposition"] == "inline"
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["Cross-Origin-Resource-Policy"] == "same-origin"
    assert response["Referrer-Policy"] == "no-referrer"
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize("who", ["sam", "ada", "anonymous"])
def test_only_reviewers_may_ask_for_clips(project, ingest, sam, ada, who):
    from rest_framework.test import APIClient

    ingest(1)
    client = APIClient() if who == "anonymous" else session_client({"sam": sam, "ada": ada}[who])
    response = client.post("/api/v1/assignments/next/")
    assert response.status_code == (401 if who == "anonymous" else 404)
    assert Assignment.objects.count() == 0
    assert len(events("access.denied")) == 1


def test_media_paths_are_not_served(project, ingest, alice):
    [clip] = ingest(1)
    client = session_client(alice)
    for path in (f"/media/{clip.audio.name}", f"/{clip.audio.name}", f"/static/{clip.audio.name}"):
        assert client.get(path).status_code == 404


def test_the_bare_collection_and_unknown_api_paths_answer_404_and_are_audited(project, alice):
    client = session_client(alice)
    for path, object_type in (("/api/v1/assignments/", "assignment"), ("/api/v1/escalations/x/y/z/", "escalation"),
                              ("/api/v1/no-such-thing/", "api")):
        response = client.get(path)
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        event = AuditEvent.objects.filter(action="access.denied").order_by("-id").first()
        assert (event.object_type, event.details["reason"], event.actor_id) == (object_type, "no_such_endpoint",
                                                                                alice.pk)
    assert AuditEvent.objects.filter(action="access.denied").count() == 3


def test_next_sweeps_overdue_leases_at_most_once_per_interval(project, ingest, alice, bob, settings):
    """The sweep is rate-limited per process; expire_leases (cron) covers the time between."""
    from django.core.management import call_command

    settings.LEASE_SWEEP_INTERVAL_SECONDS = 60
    ingest(2)
    past = timezone.now() - timedelta(minutes=1)
    alices = session_client(alice)
    mine = lease(alices)
    Assignment.objects.filter(pk=mine["id"]).update(lease_expires_at=past)
    later = timezone.now() + timedelta(seconds=61)
    with time_machine.travel(later, tick=False):
        lease(session_client(bob))  # a minute after alice's "next": this one sweeps
    assert Assignment.objects.get(pk=mine["id"]).status == "expired"
    bobs = Assignment.objects.get(reviewer=bob)
    Assignment.objects.filter(pk=bobs.pk).update(lease_expires_at=past)
    with time_machine.travel(later + timedelta(seconds=30), tick=False):
        alices.post("/api/v1/assignments/next/")  # within the interval: no sweep
    assert Assignment.objects.get(pk=bobs.pk).status == "live"
    call_command("expire_leases")
    assert Assignment.objects.get(pk=bobs.pk).status == "expired"
    assert len(events("assignment.expire")) == 2


def test_the_assignment_carries_every_url_the_page_uses(project, ingest, alice):
    """The workspace builds no URL itself: each one comes from the payload, and each one works."""
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    base = f"/api/v1/assignments/{assignment['id']}/"
    assert assignment["urls"] == {"detail": base, "audio_token": base + "audio-token/", "audio": base + "audio/",
                                  "draft": base + "draft/", "submit": base + "submit/", "skip": base + "skip/",
                                  "flag": base + "flag/"}
    assert (assignment["audio_token_url"], assignment["audio_url"]) == (base + "audio-token/", base + "audio/")
    urls = assignment["urls"]
    assert client.get(urls["detail"]).json()["urls"] == urls
    assert client.put(urls["draft"], {"text": "a", "labels": {}, "version": 0}, format="json").status_code == 200
    assert client.post(urls["submit"], {"text": "a", "labels": LABELS}, format="json").status_code == 201
