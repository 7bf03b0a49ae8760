"""Quotas: every kind, atomic under concurrency, local day boundaries, live changes."""

from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection

from reviews import leases, services
from reviews.ingest import clip_sampled
from reviews.models import Assignment, AuditEvent, Clip, QuotaDefaults, ReviewerQuota
from tests.helpers import events, make_user, race, session_client

NEXT = "/api/v1/assignments/next/"


def fake_clips(project, count):
    return [Clip.objects.create(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=1000,
                                audio=f"clips/fake-{i}.mp3", peaks=[]) for i in range(count)]


def finish(client, assignment_id):
    """Submit the clip: the daily number counts submitted clips."""
    response = client.post(f"/api/v1/assignments/{assignment_id}/submit/",
                           {"text": "words", "labels": {"speaker": ["adult"]}}, format="json")
    assert response.status_code == 201


def skip(client, assignment_id):
    response = client.post(f"/api/v1/assignments/{assignment_id}/skip/", {"reason": "test"}, format="json")
    assert response.status_code == 200


def test_clips_per_day_answers_429_with_code_message_and_reset(project, alice):
    fake_clips(project, 5)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=2)
    client = session_client(alice)
    for _ in range(2):
        finish(client, client.post(NEXT).json()["id"])
    refused = client.post(NEXT)
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "quota_clips_per_day" and "today's number of clips" in body["detail"]
    assert body["resets_at"] and int(refused["Retry-After"]) > 0
    denial = events("access.denied")[-1]
    assert denial.actor_id == alice.pk and denial.details["reason"] == "quota_clips_per_day"
    assert Assignment.objects.count() == 2


def test_the_daily_number_counts_submitted_clips_not_skips_or_flags(project, alice):
    fake_clips(project, 8)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=2)
    client = session_client(alice)
    for _ in range(3):
        skip(client, client.post(NEXT).json()["id"])
    flagged = client.post(NEXT).json()
    client.post(f"/api/v1/assignments/{flagged['id']}/flag/", {"reason": "upsetting"}, format="json")
    leased = client.post(NEXT)
    assert leased.status_code == 201 and leased.json()["progress"]["clips_today"] == 0
    finish(client, leased.json()["id"])
    second = client.post(NEXT).json()
    assert second["progress"] == {**second["progress"], "clips_today": 1, "clips_per_day": 2}
    finish(client, second["id"])
    assert client.get("/api/v1/me/progress/").json()["clips_today"] == 2
    assert client.post(NEXT).json()["code"] == "quota_clips_per_day"
    assert len(events("transcription.submit")) == 2 and len(events("assignment.skip")) == 3


def test_a_live_lease_holds_its_place_in_the_day(project, alice):
    fake_clips(project, 4)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=2, live_assignments=3)
    client = session_client(alice)
    first = client.post(NEXT).json()
    assert client.post(NEXT, {"another": True}, format="json").status_code == 201
    # Two live leases fill a day of two: a third would let the day end with three submitted.
    refused = client.post(NEXT, {"another": True}, format="json")
    assert refused.json()["code"] == "quota_clips_per_day"
    finish(client, first["id"])
    assert client.post(NEXT, {"another": True}, format="json").json()["code"] == "quota_clips_per_day"


def test_a_submit_is_never_refused_when_the_limit_drops_meanwhile(project, alice):
    fake_clips(project, 2)
    quota = ReviewerQuota.objects.create(reviewer=alice, clips_per_day=5)
    client = session_client(alice)
    leased = client.post(NEXT).json()
    quota.clips_per_day = 0
    quota.save()
    finish(client, leased["id"])
    assert client.get("/api/v1/me/progress/").json()["clips_today"] == 1


def test_a_quota_change_applies_to_the_next_request(project, alice):
    fake_clips(project, 5)
    quota = ReviewerQuota.objects.create(reviewer=alice, clips_per_day=1)
    client = session_client(alice)
    finish(client, client.post(NEXT).json()["id"])
    assert client.post(NEXT).status_code == 429
    quota.clips_per_day = 3
    quota.save()
    leased = client.post(NEXT)
    assert leased.status_code == 201 and leased.json()["progress"]["clips_per_day"] == 3


def test_defaults_apply_where_the_reviewer_has_no_own_value(project, alice):
    fake_clips(project, 3)
    QuotaDefaults.objects.update_or_create(pk=1, defaults={"clips_per_day": 1})
    ReviewerQuota.objects.create(reviewer=alice, plays_per_clip=9)  # clips_per_day left empty
    client = session_client(alice)
    finish(client, client.post(NEXT).json()["id"])
    assert client.post(NEXT).json()["code"] == "quota_clips_per_day"


def test_live_assignments_at_once(project, alice):
    fake_clips(project, 3)
    client = session_client(alice)
    first = client.post(NEXT).json()
    again = client.post(NEXT, {"another": True}, format="json")
    assert again.status_code == 429 and again.json()["code"] == "quota_live_assignments"
    ReviewerQuota.objects.create(reviewer=alice, live_assignments=2)
    second = client.post(NEXT, {"another": True}, format="json")
    assert second.status_code == 201 and second.json()["id"] != first["id"]
    assert client.post(NEXT).json()["id"] == first["id"]  # plain "next" still returns the oldest live one


def test_flagged_content_exposure_per_day(project, alice):
    fake_clips(project, 4)
    ReviewerQuota.objects.create(reviewer=alice, flagged_per_day=2)
    client = session_client(alice)
    for _ in range(2):
        assignment = client.post(NEXT).json()
        client.post(f"/api/v1/assignments/{assignment['id']}/flag/", {"reason": "upsetting"}, format="json")
    refused = client.post(NEXT)
    assert refused.status_code == 429 and refused.json()["code"] == "quota_flagged_per_day"
    assert "take a break" in refused.json()["detail"]


def test_working_hours(project, alice, settings):
    settings.QUOTA_TIME_ZONE = "Europe/Lisbon"
    fake_clips(project, 2)
    ReviewerQuota.objects.create(reviewer=alice, work_start=time(9), work_end=time(17))
    zone = ZoneInfo("Europe/Lisbon")
    with time_machine.travel(datetime(2026, 11, 26, 8, 30, tzinfo=zone)):
        client = session_client(alice)
        refused = client.post(NEXT)
        assert refused.status_code == 429 and refused.json()["code"] == "quota_outside_working_hours"
        assert refused.json()["resets_at"].startswith("2026-11-26T09:00:00")
    with time_machine.travel(datetime(2026, 11, 26, 9, 30, tzinfo=zone)):
        assert session_client(alice).post(NEXT).status_code == 201


def test_project_clips_per_day_and_the_local_midnight(project, alice, bob, settings):
    settings.QUOTA_TIME_ZONE = "America/New_York"
    fake_clips(project, 6)
    project.daily_clip_limit = 1
    project.save()
    zone = ZoneInfo("America/New_York")
    late = datetime(2026, 11, 26, 23, 58, tzinfo=zone)  # 04:58 UTC on the 27th
    with time_machine.travel(late, tick=False):
        alices = session_client(alice)
        finish(alices, alices.post(NEXT).json()["id"])
        bobs = session_client(bob)
        refused = bobs.post(NEXT)
        assert refused.json()["code"] == "quota_project_clips_per_day"
        assert refused.json()["resets_at"] == "2026-11-27T00:00:00-05:00"
    with time_machine.travel(late + timedelta(minutes=5), tick=False):  # local day new, UTC day the same
        assert session_client(bob).post(NEXT).status_code == 201


def test_sampling_rate_refuses_unsampled_clips_at_ingest(project, ingest_client):
    from django.core.files.uploadedfile import SimpleUploadedFile

    from tests.helpers import speech_bytes

    project.sampling_rate = 0
    project.save()
    response = ingest_client.post("/api/v1/clips/", {
        "audio": SimpleUploadedFile("a.flac", speech_bytes()), "project": "demo", "account_id": "A",
        "recorded_at": "2026-11-20T08:00:00Z", "locale": "en-US"}, format="multipart")
    assert response.status_code == 200 and response.json()["sampled"] is False
    assert Clip.objects.count() == 0
    assert events("clip.ingest")[0].details == {"code": "not_sampled", "project": "demo"}


def test_sampling_rate_keeps_about_that_share(project):
    from decimal import Decimal

    project.sampling_rate = Decimal("0.2")
    kept = sum(clip_sampled(project) for _ in range(4000))
    assert 650 < kept < 950  # 800 expected; far outside 5 sigma would mean a broken draw


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real row locks")
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_leases_against_a_project_limit_of_five(project):
    from reviews.errors import QuotaExceeded

    fake_clips(project, 30)
    project.daily_clip_limit = 5
    project.save()
    reviewers = [make_user(f"r{i}", "reviewer") for i in range(20)]
    project.members.add(*reviewers)
    results = race(lambda r: leases.assignment_next(reviewer=r), [(r,) for r in reviewers])
    leased = [r for r in results if isinstance(r, Assignment)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(leased) == 5 and len(refused) == 15, results
    assert Assignment.objects.count() == 5
    assert sum(Clip.objects.values_list("slots_taken", flat=True)) == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real row locks")
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_leases_by_one_reviewer_against_a_day_of_five(project, alice):
    from reviews.errors import QuotaExceeded

    fake_clips(project, 30)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=5, live_assignments=30)
    results = race(lambda: leases.assignment_next(reviewer=alice, another=True), [()] * 20)
    leased = [r for r in results if isinstance(r, Assignment)]
    refused = [r for r in results if isinstance(r, QuotaExceeded)]
    assert len(leased) == 5 and len(refused) == 15, results
    assert Assignment.objects.filter(reviewer=alice, status="live").count() == 5


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real row locks")
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_submits_each_count_once(project, alice):
    fake_clips(project, 20)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=20, live_assignments=20)
    leased = [leases.assignment_next(reviewer=alice, another=True) for _ in range(20)]
    results = race(lambda a: services.transcription_submit(reviewer=alice, assignment_id=a.pk, text="words",
                                                           labels={"speaker": ["adult"]}), [(a,) for a in leased])
    assert all(isinstance(r, tuple) for r in results), results
    assert services.reviewer_progress(reviewer=alice)["clips_today"] == 20


@pytest.mark.skipif(connection.vendor != "postgresql", reason="real row locks")
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_plays_against_a_limit_of_five(project, alice):
    from reviews import quotas
    from reviews.errors import QuotaExceeded

    fake_clips(project, 1)
    ReviewerQuota.objects.create(reviewer=alice, plays_per_clip=5)
    assignment = leases.assignment_next(reviewer=alice)
    results = race(lambda: quotas.play_take(reviewer=alice, assignment=assignment), [()] * 20)
    assert sum(r is None for r in results) == 5
    assert sum(isinstance(r, QuotaExceeded) for r in results) == 15


def test_every_quota_denial_is_audited_once(project, alice):
    fake_clips(project, 1)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=0)
    session_client(alice).post(NEXT)
    assert AuditEvent.objects.filter(action="access.denied", details__reason="quota_clips_per_day").count() == 1
