"""Second pass by checkers: the queue under a race, accept, edit, reject with feedback, re-queue,
audio only while the review lease lives, expiry; every step audited."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from reviews import leases, permissions, review, services
from reviews.models import Assignment, AuditEvent, Clip, Review, Transcription
from tests.helpers import events, make_user, race, session_client

LABELS = {"speaker": ["adult"]}


@pytest.fixture
def cleo(db, project):
    user = make_user("cleo", permissions.CHECKER)
    project.members.add(user)
    return user


@pytest.fixture
def reviewed(project):
    project.review_mode = "all"
    project.save()
    return project


def transcribe(reviewer, text="turn on the kitchen lights", labels=LABELS):
    assignment = leases.assignment_next(reviewer=reviewer)
    transcription, _ = services.transcription_submit(reviewer=reviewer, assignment_id=assignment.pk, text=text,
                                                     labels=labels)
    return transcription


def test_review_off_sends_nothing_to_checkers(project, ingest, alice, cleo):
    ingest(1)
    assert transcribe(alice).review_status == ""
    assert review.review_next(checker=cleo) is None


def test_sampled_review_takes_about_the_share_asked(reviewed):
    reviewed.review_mode, reviewed.review_rate = "sample", "0.25"
    reviewed.save()
    reviewed.refresh_from_db()
    clip = Clip(is_gold=False)
    picked = sum(review.transcription_review_status(project=reviewed, clip=clip) == "pending" for _ in range(4000))
    assert 800 < picked < 1200  # 25 % of 4000, far outside chance either side


@pytest.mark.django_db(transaction=True)
def test_twenty_checkers_race_for_ten_submissions(reviewed, ingest, schema):
    """Each submission is leased once, and nobody gets their own work, though half the checkers
    also transcribed."""
    clips = ingest(10)
    checkers = []
    for i in range(20):
        user = make_user(f"checker{i:02d}", permissions.CHECKER)
        user.groups.add(permissions.role_group(permissions.REVIEWER))
        reviewed.members.add(user)
        checkers.append(user)
    for user in checkers[:10]:
        transcribe(user)
    assert Transcription.objects.filter(review_status="pending").count() == 10
    results = race(lambda checker: review.review_next(checker=checker), [(c,) for c in checkers])
    assert not [r for r in results if isinstance(r, Exception)], results
    leased = [r for r in results if r is not None]
    assert len(leased) == 10
    reviews = list(Review.objects.select_related("transcription"))
    assert len(reviews) == 10
    assert len({r.transcription_id for r in reviews}) == 10  # 0 double reviews
    assert all(r.checker_id != r.transcription.reviewer_id for r in reviews)  # nobody reviews own work
    assert not any(Assignment.objects.filter(clip=r.clip, reviewer=r.checker).exists() for r in reviews)
    assert Transcription.objects.filter(review_status="in_review").count() == 10
    assert len(events("review.lease")) == 10
    assert {c.pk for c in clips} == {r.clip_id for r in reviews}


def test_a_checker_never_gets_their_own_work(reviewed, ingest, alice):
    ingest(1)
    alice.groups.add(permissions.role_group(permissions.CHECKER))
    transcribe(alice)
    assert review.review_next(checker=alice) is None


def test_accept_ends_the_lease_and_the_grant(reviewed, ingest, alice, cleo):
    ingest(1)
    transcription = transcribe(alice)
    client = session_client(cleo)
    body = client.post("/api/v1/reviews/next/").json()
    assert body["kind"] == "check" and body["transcription"]["text"] == "turn on the kitchen lights"
    assert "reviewer" not in str(body["transcription"]) and "alice" not in str(body)
    item = Review.objects.get(pk=body["id"])
    assert cleo.has_perm("reviews.review_clip", item.clip)
    # The checker's page builds no URL itself: each one comes from the payload.
    base = f"/api/v1/reviews/{item.pk}/"
    assert body["urls"] == {"detail": base, "audio_token": base + "audio-token/", "audio": base + "audio/",
                            "accept": base + "accept/", "reject": base + "reject/", "adjudicate": base + "adjudicate/"}
    assert (body["audio_token_url"], body["audio_url"]) == (base + "audio-token/", base + "audio/")
    response = client.post(body["urls"]["accept"], {}, format="json")
    assert response.status_code == 200 and response.json()["status"] == "accepted"
    transcription.refresh_from_db()
    assert transcription.review_status == "accepted"
    assert not permissions.clip_grant_held(cleo, item.clip)
    [event] = events("review.accept")
    assert event.actor == cleo and event.role == "checker" and event.details == {"edited": False,
                                                                                  "words_changed": 0}
    # A retried accept answers the same decision and writes nothing more.
    assert client.post(f"/api/v1/reviews/{item.pk}/accept/", {}, format="json").status_code == 200
    assert len(events("review.accept")) == 1


def test_edit_and_accept_keeps_the_diff_for_the_transcriber(reviewed, ingest, alice, cleo):
    ingest(1)
    transcribe(alice, text="turn of the kitchen light")
    client = session_client(cleo)
    item = client.post("/api/v1/reviews/next/").json()
    response = client.post(f"/api/v1/reviews/{item['id']}/accept/",
                           {"text": "turn off the kitchen light please", "labels": LABELS}, format="json")
    assert response.json()["status"] == "edited"
    saved = Review.objects.get(pk=item["id"])
    assert saved.diff == [["equal", "turn"], ["delete", "of"], ["insert", "off"], ["equal", "the kitchen light"],
                          ["insert", "please"]]
    assert events("review.accept")[0].details == {"edited": True, "words_changed": 3}
    assert "kitchen" not in str(events("review.accept")[0].details)  # no transcript text in the trail
    feedback = session_client(alice).get("/api/v1/me/feedback/").json()["results"]
    assert feedback[0]["status"] == "edited" and feedback[0]["edited_text"] == "turn off the kitchen light please"
    assert feedback[0]["diff"] == saved.diff


def test_reject_requeues_the_clip_for_a_different_transcriber(reviewed, ingest, alice, bob, cleo):
    [clip] = ingest(1)
    transcribe(alice, text="turn on the lights")
    assert Clip.objects.get(pk=clip.pk).status == "done"
    client = session_client(cleo)
    item = client.post("/api/v1/reviews/next/").json()
    assert item["reject_reasons"] == reviewed.reject_reason_choices()
    bad = client.post(f"/api/v1/reviews/{item['id']}/reject/", {"reason": "Because"}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_reason"
    other = client.post(f"/api/v1/reviews/{item['id']}/reject/", {"reason": "Other"}, format="json")
    assert other.status_code == 400 and other.json()["code"] == "invalid_detail"
    response = client.post(f"/api/v1/reviews/{item['id']}/reject/",
                           {"reason": "Words missing or wrong", "detail": "The kitchen is named at the end."},
                           format="json")
    assert response.status_code == 200 and response.json()["status"] == "rejected"
    clip.refresh_from_db()
    assert (clip.status, clip.slots_taken, clip.transcriptions_done) == ("open", 0, 0)
    [event] = events("review.reject")
    assert event.details == {"reason": "Words missing or wrong", "with_detail": True}
    assert "kitchen" not in str(event.details)
    # alice already had this clip: the queue offers it to someone else.
    assert leases.assignment_next(reviewer=alice) is None
    again = leases.assignment_next(reviewer=bob)
    assert again.clip_id == clip.pk
    # The checker who rejected it does not get to transcribe it either (were they a reviewer).
    # alice reads the feedback: the reason, the text, what she wrote; no audio, no clip address.
    feedback = session_client(alice).get("/api/v1/me/feedback/")
    [entry] = feedback.json()["results"]
    assert entry["status"] == "rejected" and entry["reason"] == "Words missing or wrong"
    assert entry["detail"] == "The kitchen is named at the end." and entry["text"] == "turn on the lights"
    assert "audio" not in feedback.content.decode() and str(clip.pk) not in feedback.content.decode()
    page = session_client(alice).get("/workspace/feedback/")
    assert page.status_code == 200 and "The kitchen is named at the end." in page.content.decode()
    # bob sees none of it.
    assert session_client(bob).get("/api/v1/me/feedback/").json() == {"results": []}


def test_a_rejected_then_retranscribed_clip_goes_to_a_checker_again(reviewed, ingest, alice, bob, cleo):
    ingest(1)
    transcribe(alice)
    first = review.review_next(checker=cleo)
    review.review_reject(checker=cleo, review_id=first.pk, reason="Labels wrong")
    second_transcription = transcribe(bob)
    second = review.review_next(checker=cleo)
    assert second.transcription_id == second_transcription.pk


def test_review_next_carries_the_first_token_which_plays_once_for_this_checker(reviewed, ingest, alice, cleo):
    """As for reviewers (issue 15): next's answer carries the review's first one-play token, bound
    to the checker's session and the review, recorded on the lease's audit event."""
    ingest(1)
    transcribe(alice)
    client = session_client(cleo)
    item = client.post("/api/v1/reviews/next/").json()
    grant = item["audio_token"]
    assert grant["lease_expires_at"] == item["lease_expires_at"] and grant["expires_in"] > 10
    assert events("review.lease")[0].details == {"kind": "check", "audio_token": True}
    assert not events("audio.token")
    other_tab = session_client(cleo)
    assert other_tab.get(item["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code == 404
    assert session_client(alice).get(item["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code == 404
    assert [client.get(item["audio_url"], HTTP_X_AUDIO_TOKEN=grant["token"]).status_code for _ in range(2)] == [
        200, 404]
    assert [e.details["reason"] for e in events("access.denied")][-1] == "token_used"
    assert len(events("audio.play", outcome="allowed")) == 1
    assert client.get(item["urls"]["detail"]).json()["audio_token"] is None
    again = client.post("/api/v1/reviews/next/").json()
    assert again["id"] == item["id"] and again["audio_token"]["token"] != grant["token"]


def test_review_audio_plays_only_during_the_lease(reviewed, ingest, alice, cleo):
    ingest(1)
    transcribe(alice)
    client = session_client(cleo)
    item = client.post("/api/v1/reviews/next/").json()
    token = client.post(item["audio_token_url"]).json()["token"]
    response = client.get(item["audio_url"], HTTP_X_AUDIO_TOKEN=token)
    assert response.status_code == 200 and response["Cache-Control"].startswith("no-store")
    assert response["Content-Disposition"] == "inline"
    [play] = events("audio.play")
    assert play.object_type == "review" and play.role == "checker" and play.actor == cleo
    assert client.get(item["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 404  # single use
    client.post(f"/api/v1/reviews/{item['id']}/accept/", {}, format="json")
    before = len(events("access.denied"))
    assert client.post(item["audio_token_url"]).status_code == 409
    assert len(events("access.denied")) == before + 1
    # The transcriber never hears it again through the review either.
    alices = session_client(alice)
    assert alices.post(item["audio_token_url"]).status_code == 404


def test_plays_quota_applies_to_checkers(reviewed, ingest, alice, cleo):
    from reviews.models import ReviewerQuota

    ingest(1)
    transcribe(alice)
    ReviewerQuota.objects.create(reviewer=cleo, plays_per_clip=1)
    client = session_client(cleo)
    item = client.post("/api/v1/reviews/next/").json()
    for expected in (200, 429):
        token = client.post(item["audio_token_url"]).json()["token"]
        assert client.get(item["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == expected


def test_an_expired_review_goes_back_to_the_queue(reviewed, ingest, alice, cleo, bob):
    ingest(1)
    transcription = transcribe(alice)
    item = review.review_next(checker=cleo)
    with time_machine.travel(timezone.now() + timedelta(minutes=reviewed.lease_minutes + 1)):
        assert review.review_lease_sweep() == 1
        transcription.refresh_from_db()
        assert transcription.review_status == "pending"
        assert not permissions.clip_grant_held(cleo, item.clip)
        [event] = events("review.expire")
        assert event.object_id == str(item.pk)
        again = review.review_next(checker=cleo)
    assert again.pk != item.pk and again.transcription_id == transcription.pk


def test_a_flagged_clip_cannot_be_heard_by_its_checker(reviewed, ingest, alice, bob, cleo):
    reviewed.transcriptions_per_clip = 2
    reviewed.save()
    ingest(1)
    transcribe(alice)
    item = review.review_next(checker=cleo)
    assignment = leases.assignment_next(reviewer=bob)
    services.clip_flag(reviewer=bob, assignment_id=assignment.pk, reason="upsetting")
    client = session_client(cleo)
    assert client.post(f"/api/v1/reviews/{item.pk}/audio-token/").status_code == 409


def test_the_checker_page_and_home(reviewed, cleo, alice):
    client = session_client(cleo)
    assert client.get("/").url == "/review/"
    assert client.get("/review/").status_code == 200
    before = AuditEvent.objects.filter(action="access.denied").count()
    assert session_client(alice).get("/review/").status_code == 404
    assert client.get("/workspace/feedback/").status_code == 404
    assert AuditEvent.objects.filter(action="access.denied").count() == before + 2


def test_the_cron_sweep_expires_review_leases_too(reviewed, ingest, alice, cleo):
    from io import StringIO

    from django.core.management import call_command

    ingest(1)
    transcribe(alice)
    item = review.review_next(checker=cleo)
    out = StringIO()
    with time_machine.travel(timezone.now() + timedelta(minutes=reviewed.lease_minutes + 1)):
        call_command("expire_leases", stdout=out)
    assert "Expired 1 lease(s)" in out.getvalue()
    item.refresh_from_db()
    assert item.status == "expired" and len(events("review.expire")) == 1
