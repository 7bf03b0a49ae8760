"""Anomaly thresholds against the way the workspace is used: one fetch per lease, replays from
memory, listening time reported at submit or skip. Normal careful work must raise nothing;
fetching again and again, or listening far beyond the clip, must."""

import uuid
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine

from reviews import anomalies
from reviews.models import AuditEvent, Clip, ReviewerQuota
from tests.helpers import events, session_client

NEXT = "/api/v1/assignments/next/"
SPEAKER = {"speaker": ["adult"]}


@pytest.fixture
def office_hours(settings):
    """A weekday morning in the quota zone, so the off-hours rule stays out of these tests."""
    settings.QUOTA_TIME_ZONE = "Europe/Lisbon"
    with time_machine.travel(datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Europe/Lisbon")), tick=True):
        yield


def bare_clips(project, count: int, duration_ms: int = 4000) -> list[Clip]:
    return [Clip.objects.create(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=duration_ms,
                                audio=f"clips/none-{uuid.uuid4().hex}.mp3") for _ in range(count)]


def fetch(client, assignment) -> int:
    """What the page does once per lease (and again after a reload): a fresh token, then the bytes."""
    token = client.post(assignment["audio_token_url"]).json()["token"]
    return client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code


def mine(found, who="alice"):
    return [a for a in found if a.actor_name == who]


def test_a_reviewer_who_uses_the_tool_normally_raises_no_anomaly(project, ingest, alice, office_hours):
    ingest(3)
    client = session_client(alice)
    # Clip 1: fetched once, a reload fetches again, every replay she wants (20 times the clip), submitted.
    first = client.post(NEXT).json()
    assert fetch(client, first) == 200
    again = client.post(NEXT).json()  # the reload gets the same lease ...
    assert again["id"] == first["id"] and fetch(client, again) == 200  # ... and fetches once more
    listened = 20 * first["clip"]["duration_ms"]
    assert client.post(f"/api/v1/assignments/{first['id']}/submit/",
                       {"text": "set a timer", "labels": SPEAKER, "listened_ms": listened},
                       format="json").status_code == 201
    # A play key that an older page sent right after Ctrl+Enter: refused and audited, not odd.
    assert client.post(first["audio_token_url"]).status_code == 409
    # Clip 2: heard twice, skipped with a preset reason.
    second = client.post(NEXT).json()
    assert fetch(client, second) == 200
    assert client.post(f"/api/v1/assignments/{second['id']}/skip/",
                       {"reason": second["skip_reasons"][0], "listened_ms": 2 * second["clip"]["duration_ms"]},
                       format="json").status_code == 200
    # Clip 3: a region looped for a while (10 minutes of listening on a short clip is the floor).
    third = client.post(NEXT).json()
    assert fetch(client, third) == 200
    assert client.post(f"/api/v1/assignments/{third['id']}/submit/",
                       {"text": "call mum", "labels": SPEAKER, "listened_ms": 300_000},
                       format="json").status_code == 201

    assert len(events("audio.play", actor=alice)) == 4
    assert [e.details.get("listened_ms") for e in events("transcription.submit")] == [listened, 300_000]
    assert events("access.denied")[0].details["reason"] == "lease_ended"
    assert mine(anomalies.anomalies_find()) == []


def test_a_reviewer_who_reloads_to_refetch_repeatedly_is_an_anomaly(project, ingest, alice, office_hours):
    ingest(1)
    client = session_client(alice)
    assignment = client.post(NEXT).json()
    for _ in range(3):  # one fetch and two reloads: still normal
        assert fetch(client, client.post(NEXT).json()) == 200
    assert mine(anomalies.anomalies_find()) == []
    assert fetch(client, client.post(NEXT).json()) == 200  # a third reload
    [found] = mine(anomalies.anomalies_find())
    assert (found.kind, found.count, str(found.clip_id)) == ("repeated_fetches", 4, assignment["clip"]["id"])
    assert set(found.event_ids) == set(AuditEvent.objects.filter(action="audio.play", actor=alice)
                                       .values_list("id", flat=True))
    assert "fetched one clip's audio 4 times (more than 3" in found.summary


def test_the_fetch_threshold_follows_the_reviewers_own_quota(project, ingest, alice, office_hours):
    ReviewerQuota.objects.create(reviewer=alice, plays_per_clip=10)
    ingest(1)
    client = session_client(alice)
    for _ in range(5):
        assert fetch(client, client.post(NEXT).json()) == 200
    assert anomalies.fetch_threshold(alice) == 5
    assert mine(anomalies.anomalies_find()) == []
    assert fetch(client, client.post(NEXT).json()) == 200
    assert [a.kind for a in mine(anomalies.anomalies_find())] == ["repeated_fetches"]


def test_the_fetch_quota_refuses_the_reload_after_the_last(project, ingest, alice, office_hours):
    ReviewerQuota.objects.create(reviewer=alice, plays_per_clip=2)
    ingest(1)
    client = session_client(alice)
    statuses = [fetch(client, client.post(NEXT).json()) for _ in range(3)]
    assert statuses == [200, 200, 429]
    denial = events("access.denied")[-1]
    assert denial.details["reason"] == "quota_plays_per_clip" and denial.actor_id == alice.pk


def test_listening_far_beyond_the_clip_is_an_anomaly(project, alice, bob, office_hours, settings):
    settings.ANOMALY_LISTEN_PASSES, settings.ANOMALY_LISTEN_MIN_SECONDS = 40, 600
    project.transcriptions_per_clip = 2
    project.save()
    [short] = bare_clips(project, 1, duration_ms=4000)
    for reviewer, listened in ((alice, 601_000), (bob, 599_000)):  # 40 x 4 s is below the 10-minute floor
        client = session_client(reviewer)
        assignment = client.post(NEXT).json()
        assert client.post(f"/api/v1/assignments/{assignment['id']}/skip/",
                           {"reason": "Not speech", "listened_ms": listened}, format="json").status_code == 200
    [found] = [a for a in anomalies.anomalies_find() if a.kind == "long_listening"]
    assert (found.actor_name, found.clip_id, found.count) == ("alice", short.pk, 150)
    skip = AuditEvent.objects.get(action="assignment.skip", actor=alice)
    assert found.event_ids == (skip.pk,) and skip.details == {"listened_ms": 601_000}


def test_listening_is_relative_to_the_clip_length(project, alice, office_hours, settings):
    settings.ANOMALY_LISTEN_PASSES, settings.ANOMALY_LISTEN_MIN_SECONDS = 40, 600
    bare_clips(project, 1, duration_ms=30_000)
    client = session_client(alice)
    assignment = client.post(NEXT).json()
    client.post(f"/api/v1/assignments/{assignment['id']}/submit/",
                {"text": "a long clip", "labels": SPEAKER, "listened_ms": 40 * 30_000}, format="json")
    assert anomalies.anomalies_find() == []  # 40 times a 30 s clip: careful, not odd


@pytest.mark.parametrize("bad", [-1, "1000", 1.5, True, 24 * 3600 * 1000 + 1])
def test_listened_ms_must_be_a_sensible_integer(project, alice, bad):
    bare_clips(project, 1)
    client = session_client(alice)
    assignment = client.post(NEXT).json()
    for action, body in (("submit", {"text": "x", "labels": SPEAKER}), ("skip", {"reason": "Not speech"})):
        response = client.post(f"/api/v1/assignments/{assignment['id']}/{action}/", {**body, "listened_ms": bad},
                               format="json")
        assert response.status_code == 400 and "listened_ms" in response.json()["fields"]
    assert events("transcription.submit") == [] and events("assignment.skip") == []


def test_listened_ms_is_optional(project, alice):
    bare_clips(project, 1)
    client = session_client(alice)
    assignment = client.post(NEXT).json()
    assert client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {"text": "x", "labels": SPEAKER},
                       format="json").status_code == 201
    assert events("transcription.submit")[0].details == {}


def test_a_play_refused_just_after_ones_own_submit_is_a_key_race_not_an_anomaly(project, alice, settings):
    settings.QUOTA_TIME_ZONE = "Europe/Lisbon"
    settings.ANOMALY_KEY_RACE_SECONDS = 3
    bare_clips(project, 2)
    start = datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Europe/Lisbon"))
    client = session_client(alice)
    with time_machine.travel(start, tick=False):
        first = client.post(NEXT).json()
        client.post(f"/api/v1/assignments/{first['id']}/submit/", {"text": "x", "labels": SPEAKER}, format="json")
    with time_machine.travel(start + timedelta(seconds=1), tick=False):
        assert client.post(first["audio_token_url"]).status_code == 409
        assert mine(anomalies.anomalies_find()) == []
    with time_machine.travel(start + timedelta(seconds=30), tick=False):
        assert client.post(first["audio_token_url"]).status_code == 409  # half a minute later: odd
        [found] = mine(anomalies.anomalies_find())
    later = AuditEvent.objects.filter(action="access.denied").order_by("id").last()
    assert (found.kind, found.count, found.event_ids) == ("play_after_lease", 1, (later.pk,))


def test_the_assignment_offers_the_projects_skip_reasons(project, alice):
    bare_clips(project, 1)
    project.skip_reasons = "Too quiet\n\nMusic only\nToo quiet\n"
    project.save()
    assignment = session_client(alice).post(NEXT).json()
    assert assignment["skip_reasons"] == ["Too quiet", "Music only"]


def test_new_projects_get_the_default_skip_reasons(project):
    assert project.skip_reason_choices() == ["Cannot hear clearly", "Not speech", "Wrong language"]


def test_skip_reasons_are_validated_in_the_admin_form(project):
    from django.core.exceptions import ValidationError

    project.skip_reasons = "\n".join(f"reason {i}" for i in range(9))
    with pytest.raises(ValidationError):
        project.full_clean()
    project.skip_reasons = "x" * 101
    with pytest.raises(ValidationError):
        project.full_clean()


def test_the_anomaly_queries_do_not_grow_with_the_number_of_anomalies(project, alice, bob, office_hours):
    """One query per group was most of the page's time at 10 million events (tests/bench/audit_scale.py)."""
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    from reviews.audit import audit_record

    def refetch(reviewer, clips):
        for clip in clips:
            for _ in range(4):  # more than 3 fetches of one clip: an anomaly each
                audit_record(actor=reviewer, action="audio.play", object_type="assignment", object_id="1",
                             clip_id=clip.pk)

    refetch(alice, bare_clips(project, 1))
    refetch(bob, bare_clips(project, 1))
    with CaptureQueriesContext(connection) as few:
        assert len(anomalies.anomalies_find()) == 2
    refetch(alice, bare_clips(project, 5))
    refetch(bob, bare_clips(project, 5))
    with CaptureQueriesContext(connection) as many:
        found = anomalies.anomalies_find()
    assert len(found) == 12 and all(len(a.event_ids) == 4 for a in found)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_each_reviewers_own_fetch_quota_applies_when_many_are_checked_at_once(project, alice, bob, office_hours):
    from reviews.audit import audit_record

    ReviewerQuota.objects.create(reviewer=alice, plays_per_clip=10)  # her threshold: 5 fetches
    for reviewer in (alice, bob):
        clip = bare_clips(project, 1)[0]
        for _ in range(4):
            audit_record(actor=reviewer, action="audio.play", object_type="assignment", object_id="1", clip_id=clip.pk)
    assert [(a.kind, a.actor_name) for a in anomalies.anomalies_find()] == [("repeated_fetches", "bob")]
