"""Subject transparency: the ingest service asks who heard a subject's recordings and gets counts
by role and day, never names; the question itself is audited (issue 14)."""

from datetime import datetime, timedelta
from datetime import timezone as dt_timezone

import time_machine

from reviews import leases, services, supervision
from tests.helpers import events, session_client

URL = "/api/v1/subjects/access-report/"


def play(reviewer, assignment):
    grant = services.audio_token_issue(reviewer=reviewer, assignment_id=assignment.pk, session_key="s")
    services.audio_open(reviewer=reviewer, assignment_id=assignment.pk, token=grant.token, session_key="s")


def test_a_subject_learns_how_often_and_by_whom_their_clips_were_heard(project, ingest, ingest_client, alice, bob,
                                                                         sam):
    day_one = datetime(2026, 11, 20, 9, 0, tzinfo=dt_timezone.utc)
    with time_machine.travel(day_one, tick=False):
        ingest(2, account_id="ACCT-7")  # two clips of one subject
        first = leases.assignment_next(reviewer=alice)
        play(alice, first)
        play(alice, first)
        services.transcription_submit(reviewer=alice, assignment_id=first.pk, text="turn on the lights",
                                      labels={"speaker": ["adult"]})
    with time_machine.travel(day_one + timedelta(days=1), tick=False):
        second = leases.assignment_next(reviewer=bob)
        play(bob, second)
        escalation = services.clip_flag(reviewer=bob, assignment_id=second.pk, reason="distress")
        supervision.escalation_take(supervisor=sam, escalation_id=escalation.pk)
        token = supervision.escalation_audio_token_issue(supervisor=sam, escalation_id=escalation.pk,
                                                         session_key="t")
        supervision.escalation_audio_open(supervisor=sam, escalation_id=escalation.pk, token=token,
                                          session_key="t")
        # Someone else's clip, heard too: not part of this subject's report.
        ingest(1, account_id="ACCT-other")
        play(alice, leases.assignment_next(reviewer=alice))

    response = ingest_client.post(URL, {"account_id": "ACCT-7"}, format="json")

    assert response.status_code == 200
    report = response.json()
    assert report == {
        "clips": 2, "clips_reviewed": 1, "plays": 4, "plays_by_role": {"reviewer": 3, "supervisor": 1},
        "play_days": [{"day": "2026-11-20", "role": "reviewer", "plays": 2},
                      {"day": "2026-11-21", "role": "reviewer", "plays": 1},
                      {"day": "2026-11-21", "role": "supervisor", "plays": 1}],
        "clips_escalated": 1, "opted_out": False,
    }
    body = response.content.decode()
    for secret in ("alice", "bob", "sam", "ACCT-7", "turn on the lights"):
        assert secret not in body
    [event] = events("subject.access_report")
    assert event.role == "service" and event.details["clips"] == 2 and event.details["plays"] == 4
    assert "ACCT-7" not in str(event.details)


def test_an_unknown_subject_gets_an_empty_report_and_the_question_is_audited(project, ingest_client):
    response = ingest_client.post(URL, {"account_id": "never-seen"}, format="json")
    assert response.status_code == 200
    assert response.json()["clips"] == 0 and response.json()["play_days"] == []
    assert len(events("subject.access_report")) == 1


def test_only_the_ingest_service_may_ask_and_a_bad_body_is_a_400(project, ingest_client, alice, sam):
    for client in (session_client(alice), session_client(sam)):
        assert client.post(URL, {"account_id": "ACCT-7"}, format="json").status_code == 404
    assert not events("subject.access_report")
    assert [e.details["attempted"] for e in events("access.denied")] == ["subject.access_report"] * 2
    bad = ingest_client.post(URL, {"account_id": ""}, format="json")
    assert bad.status_code == 400 and bad.json()["code"] == "invalid_account_id"
