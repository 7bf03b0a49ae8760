"""Every endpoint runs the same number of queries however many clips, assignments and events exist."""

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from reviews.audit import audit_record
from reviews.models import Assignment, Clip
from tests.helpers import make_user, session_client


def fake_clips(project, count, start=0):
    Clip.objects.bulk_create([
        Clip(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=1000,
             audio=f"clips/fake-{i}.mp3", peaks=[]) for i in range(start, start + count)])


def grow(project, ingest_user):
    """Add lots of everything the endpoints could accidentally scale with."""
    fake_clips(project, 300, start=1000)
    # Queued behind the real clips, so the measured rounds play real audio.
    from datetime import timedelta

    from django.utils import timezone
    Clip.objects.filter(audio__startswith="clips/fake-").update(ingested_at=timezone.now() + timedelta(days=1))
    others = [make_user(f"other{i}", "reviewer") for i in range(20)]
    project.members.add(*others)
    clips = list(Clip.objects.filter(status="open")[:20])
    Assignment.objects.bulk_create([
        Assignment(clip=clip, reviewer=other, status="submitted", leased_at="2026-11-20T10:00:00Z",
                   lease_expires_at="2026-11-20T10:10:00Z") for clip, other in zip(clips, others)])
    for i in range(300):
        audit_record(actor=others[i % 20], action="draft.save", object_type="assignment", object_id=str(i))


def one_round(client, assignment_id=None, before=None) -> dict:
    counts = {}

    def measure(name, call):
        if before:
            before()
        with CaptureQueriesContext(connection) as queries:
            response = call()
        assert response.status_code < 400, (name, response.status_code, response.content[:200])
        counts[name] = len(queries)
        return response

    assignment = measure("next", lambda: client.post("/api/v1/assignments/next/")).json()
    url = f"/api/v1/assignments/{assignment['id']}/"
    measure("detail", lambda: client.get(url))
    measure("progress", lambda: client.get("/api/v1/me/progress/"))
    token = measure("audio-token", lambda: client.post(url + "audio-token/")).json()["token"]
    measure("audio", lambda: client.get(url + "audio/", HTTP_X_AUDIO_TOKEN=token))
    measure("draft", lambda: client.put(url + "draft/", {"text": "a", "labels": {}, "version": 0}, format="json"))
    measure("submit", lambda: client.post(url + "submit/", {"text": "a", "labels": {"speaker": ["adult"]}},
                                          format="json"))
    second = client.post("/api/v1/assignments/next/").json()
    measure("skip", lambda: client.post(f"/api/v1/assignments/{second['id']}/skip/", {"reason": "r"},
                                        format="json"))
    third = client.post("/api/v1/assignments/next/").json()
    measure("flag", lambda: client.post(f"/api/v1/assignments/{third['id']}/flag/", {"reason": "r"},
                                        format="json"))
    return counts


def supervisor_round(client) -> dict:
    counts = {}
    for name, path in (("audit-events", "/api/v1/audit-events/?limit=20"), ("escalations", "/api/v1/escalations/")):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(path).status_code == 200
        counts[name] = len(queries)
    return counts


def test_query_counts_do_not_grow_with_the_data(project, ingest, alice, bob, sam, ingest_user):
    # A still clock: the lease sweep's interval must not make one round sweep and not the other.
    with time_machine.travel(timezone.now(), tick=False):
        ingest(6)
        one_round(session_client(alice))  # warm-up: first-use lookups (content types, permission ids)
        small = one_round(session_client(alice))
        small_supervisor = supervisor_round(session_client(sam))
        grow(project, ingest_user)
        ingest(3, account_id="ACCT-2")
        large = one_round(session_client(alice))
        large_supervisor = supervisor_round(session_client(sam))
    assert small == large, (small, large)
    assert small_supervisor == large_supervisor
    print("\nqueries per request:", {**large, **large_supervisor})


# Queries per request with no test transaction around the request, as production runs them,
# counted as Django captures them: the session and user lookups, and BEGIN and COMMIT, count
# too. Issue 15's budget: next <= 10, audio token <= 6, audio <= 6, draft <= 6, submit <= 10.
# Reached, and held here so that they do not grow back: next 8 and submit 6 (their rows are
# inserted by the statements that claim the clip and land the submission), and one less for
# every request, the session and its user read in one statement (sessions.py).
BUDGET = {"next": 8, "audio-token": 5, "audio": 5, "draft": 5, "submit": 6}


@pytest.mark.django_db(transaction=True)
def test_each_request_stays_within_its_query_budget(project, ingest, alice, ingest_user):
    from reviews.models import QuotaDefaults

    # Production always has the defaults row (migration 0006); a transactional test before
    # this one flushed it, and the fallback for a missing row costs a query more.
    if not QuotaDefaults.objects.exists():
        QuotaDefaults.objects.create()
    ingest(4)
    grow(project, ingest_user)
    # The clock stands still so that nothing paced by time (the session's once-a-minute touch,
    # its roles re-check, the lease sweep's interval) falls into the measured round by chance.
    with time_machine.travel(timezone.now(), tick=False):
        client = session_client(alice)
        one_round(client)  # first-use lookups, and the session learns its roles
        counts = one_round(client)
    print("\nqueries per request (no test transaction):", counts)
    over = {name: (counts[name], limit) for name, limit in BUDGET.items() if counts[name] > limit}
    assert not over, over


@pytest.mark.django_db(transaction=True)
def test_a_wrong_guess_of_the_audit_head_costs_one_query_more(project, ingest, alice, ingest_user):
    """The audit append's guess of the head (the seal the last append on this host left) misses
    when a worker on another host appended last, or an append was rolled back: the statement
    that refuses it tells the head, so a miss costs exactly one statement (audit._chain_append)."""
    from reviews import audit
    from reviews.models import QuotaDefaults

    if not QuotaDefaults.objects.exists():
        QuotaDefaults.objects.create()
    ingest(4)
    grow(project, ingest_user)
    with time_machine.travel(timezone.now(), tick=False):
        client = session_client(alice)
        one_round(client)
        counts = one_round(client, before=lambda: audit._head_remember("default", "0" * 64))
    print("\nqueries per request, a wrong guess of the audit head:", counts)
    assert {name: counts[name] for name in BUDGET} == {name: limit + 1 for name, limit in BUDGET.items()}
