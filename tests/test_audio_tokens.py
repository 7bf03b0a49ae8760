"""Audio tokens are single-use: a replay, or a parallel burst of one token, plays exactly once,
for a reviewer's clip and for a supervisor's escalated clip alike (issue 14, finding 1)."""

import pytest
from django.core.management import call_command
from django.db import connection
from django.test import Client
from django.utils import timezone

from reviews import leases, services
from reviews.models import AudioTokenUse, AuditEvent
from tests.helpers import events, race, session_client


def lease(client):
    return client.post("/api/v1/assignments/next/").json()


def test_a_reviewer_token_plays_once_and_its_replay_is_refused_and_audited(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    token = client.post(assignment["audio_token_url"]).json()["token"]

    statuses = [client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code for _ in range(3)]

    assert statuses == [200, 404, 404]
    assert len(events("audio.play", outcome="allowed")) == 1
    refused = events("access.denied")
    assert [(e.details["attempted"], e.details["reason"]) for e in refused] == [("audio.play", "token_used")] * 2
    assert {e.object_id for e in refused} == {assignment["id"]}
    # A fresh token (what the page asks for on reload) still plays.
    fresh = client.post(assignment["audio_token_url"]).json()["token"]
    assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=fresh).status_code == 200


def test_next_carries_the_first_token_which_plays_once_in_its_own_session(project, ingest, alice):
    """Issue 15: next's answer carries the lease's first token, so the first play needs no token
    request. It is the same one-play token as the audio-token route's: bound to the session and
    the assignment, spent by its play, audited on the lease's event."""
    from reviews.models import QuotaDefaults

    QuotaDefaults.objects.update(live_assignments=2)
    ingest(2)
    client = session_client(alice)
    assignment = lease(client)
    grant = assignment["audio_token"]
    assert set(grant) == {"token", "expires_in", "lease_expires_at"}
    assert grant["lease_expires_at"] == assignment["lease_expires_at"]
    lease_event = events("assignment.lease", object_id=assignment["id"])[0]
    assert lease_event.details == {"audio_token": True}
    assert not events("audio.token")  # no request for it, so no event of its own

    # Another session of the same reviewer cannot play with it.
    other_tab = session_client(alice)
    assert other_tab.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code == 404
    assert [e.details["reason"] for e in events("access.denied")] == ["bad_token"]
    # Nor does it play another of her assignments.
    second = other_tab.post("/api/v1/assignments/next/", {"another": True}, format="json").json()
    assert client.get(second["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code == 404

    statuses = [client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code
                for _ in range(2)]
    assert statuses == [200, 404]
    assert [e.object_id for e in events("audio.play", outcome="allowed")] == [assignment["id"]]
    assert [e.details["reason"] for e in events("access.denied")] == ["bad_token", "bad_token", "token_used"]
    # The lease's detail carries none (only next hands one out); the route still gives fresh ones.
    assert client.get(assignment["urls"]["detail"]).json()["audio_token"] is None
    fresh = client.post(assignment["audio_token_url"]).json()["token"]
    assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=fresh).status_code == 200


def test_next_again_on_a_live_lease_carries_a_fresh_token(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    first = lease(client)
    again = lease(client)
    assert again["id"] == first["id"] and again["audio_token"]["token"] != first["audio_token"]["token"]
    assert [e.details for e in events("assignment.lease")] == [{"audio_token": True},
                                                                {"resumed": True, "audio_token": True}]
    for grant in (first["audio_token"], again["audio_token"]):
        assert client.get(first["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code == 200


def test_a_refused_play_gives_the_token_back(project, ingest, alice, settings):
    """The nonce is spent in the play's transaction: a quota refusal rolls it back with the rest."""
    from reviews.models import QuotaDefaults

    QuotaDefaults.objects.update(plays_per_clip=1)
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    first = client.post(assignment["audio_token_url"]).json()["token"]
    assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=first).status_code == 200
    second = client.post(assignment["audio_token_url"]).json()["token"]
    assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=second).status_code == 429
    assert AudioTokenUse.objects.count() == 1
    assert [e.details["reason"] for e in events("access.denied")] == ["quota_plays_per_clip"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(connection.vendor != "postgresql", reason="the race needs PostgreSQL's row locks")
def test_eight_parallel_requests_with_one_token_play_exactly_once(project, ingest, alice):
    ingest(1)
    browser = session_client(alice)
    assignment = lease(browser)
    token = browser.post(assignment["audio_token_url"]).json()["token"]
    cookie = browser.cookies[client_cookie_name()].value

    def fetch(_):
        tab = Client()
        tab.cookies[client_cookie_name()] = cookie
        return tab.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code

    statuses = race(fetch, [(i,) for i in range(8)])

    assert sorted(statuses) == [200] + [404] * 7
    assert AuditEvent.objects.filter(action="audio.play", outcome="allowed").count() == 1
    assert AuditEvent.objects.filter(action="access.denied", details__reason="token_used").count() == 7


def client_cookie_name() -> str:
    from django.conf import settings

    return settings.SESSION_COOKIE_NAME


@pytest.fixture
def held_escalation(project, ingest, alice, sam):
    ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    escalation = services.clip_flag(reviewer=alice, assignment_id=assignment.pk, reason="a person in distress")
    client = session_client(sam)
    assert client.post(f"/api/v1/escalations/{escalation.pk}/take/").status_code == 200
    return escalation, client


def test_an_escalation_token_plays_once(held_escalation):
    escalation, sam = held_escalation
    token = sam.post(f"/api/v1/escalations/{escalation.pk}/audio-token/").json()["token"]
    url = f"/api/v1/escalations/{escalation.pk}/audio/"

    statuses = [sam.get(url, HTTP_X_AUDIO_TOKEN=token).status_code for _ in range(9)]

    assert statuses == [200] + [404] * 8
    assert len(events("audio.play", object_type="escalation")) == 1
    assert {e.details["reason"] for e in events("access.denied")} == {"token_used"}


def test_a_supervisor_plays_an_escalated_clip_a_limited_number_of_times(held_escalation, settings):
    settings.ESCALATION_PLAYS_PER_SUPERVISOR = 2
    escalation, sam = held_escalation
    url = f"/api/v1/escalations/{escalation.pk}/audio/"

    def play():
        token = sam.post(f"/api/v1/escalations/{escalation.pk}/audio-token/").json()["token"]
        return sam.get(url, HTTP_X_AUDIO_TOKEN=token)

    responses = [play() for _ in range(3)]

    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].json()["code"] == "quota_escalation_plays"
    assert len(events("audio.play", object_type="escalation")) == 2
    assert [e.details["reason"] for e in events("access.denied")] == ["quota_escalation_plays"]


def test_expire_leases_forgets_spent_nonces_older_than_any_token(db, settings):
    from datetime import timedelta

    now = timezone.now()
    AudioTokenUse.objects.create(nonce="old", used_at=now - timedelta(seconds=settings.AUDIO_TOKEN_MAX_AGE + 61))
    AudioTokenUse.objects.create(nonce="recent", used_at=now - timedelta(seconds=5))
    call_command("expire_leases")
    assert list(AudioTokenUse.objects.values_list("nonce", flat=True)) == ["recent"]
