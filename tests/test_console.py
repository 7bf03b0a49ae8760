"""The supervisor console: who may see it, the audit search, clip histories, timelines,
anomalies, escalations and the chain status. Events come from the real services where
practical, otherwise from ``audit_record`` (the one writer)."""

import uuid
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from zoneinfo import ZoneInfo

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.test import APIClient

from reviews import anomalies, leases, services, supervision
from reviews.audit import audit_record
from reviews.models import AuditEvent, AuditVerification, Clip, Escalation
from tests.helpers import make_user, session_client

UTC = dt_timezone.utc
DAY = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)  # a Friday


def denials() -> int:
    return AuditEvent.objects.filter(action="access.denied").count()


def bare_clips(project, count: int) -> list[Clip]:
    """Clips without audio, for flows that never play them (leases and skips)."""
    return [Clip.objects.create(project=project, recorded_on=DAY.date(), locale="en-US", duration_ms=1500,
                                audio=f"clips/none-{uuid.uuid4().hex}.mp3") for _ in range(count)]


@pytest.fixture
def escalation(project, ingest, alice):
    """alice flags the clip she is hearing: a real escalation through the real services."""
    ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    return services.clip_flag(reviewer=alice, assignment_id=assignment.pk, reason="a person in distress")


@pytest.fixture
def clients(alice, bob, sam, ada):
    return {"alice": session_client(alice), "bob": session_client(bob), "sam": session_client(sam),
            "ada": session_client(ada), "anonymous": APIClient()}


# --- Who may use the console ------------------------------------------------------------

def page_urls(escalation_id: int) -> list[tuple[str, str]]:
    clip = uuid.uuid4()
    return [
        ("get", "/console/"), ("get", "/console/audit/?reviewer=alice"), ("get", f"/console/clips/{clip}/"),
        ("get", "/console/reviewers/alice/?day=2026-11-20"), ("get", "/console/anomalies/"),
        ("get", "/console/escalations/"), ("get", f"/console/escalations/{escalation_id}/"),
        ("post", f"/console/escalations/{escalation_id}/take/"),
        ("post", f"/console/escalations/{escalation_id}/close/"),
    ]


@pytest.mark.parametrize("actor", ["alice", "bob", "ada"])
def test_reviewers_and_admins_get_an_audited_404_on_every_console_page(clients, escalation, actor):
    for method, url in page_urls(escalation.pk):
        before = denials()
        response = getattr(clients[actor], method)(url)
        assert response.status_code == 404, (actor, method, url)
        assert "Not found" in response.content.decode()
        assert denials() == before + 1, (actor, url)
        event = AuditEvent.objects.filter(action="access.denied").latest("id")
        assert (event.actor_name, event.details["attempted"], event.details["reason"]) == (
            actor, "page.console", "not_supervisor")
    assert Escalation.objects.get().status == "open"


def test_anonymous_is_sent_to_sign_in_and_the_attempt_is_audited(clients, escalation):
    for method, url in page_urls(escalation.pk):
        before = denials()
        response = getattr(clients["anonymous"], method)(url)
        assert response.status_code == 302 and response["Location"].startswith("/accounts/login/?next="), url
        assert denials() == before + 1
        event = AuditEvent.objects.filter(action="access.denied").latest("id")
        assert (event.role, event.details["reason"]) == ("anonymous", "anonymous")


def test_sam_sees_every_console_page(clients, escalation):
    for method, url in page_urls(escalation.pk):
        if method == "get":
            assert clients["sam"].get(url).status_code == 200, url
    assert denials() == 0


def test_a_supervisor_without_a_verified_second_factor_is_sent_to_confirm_it(sam):
    client = session_client(sam, verified=False)
    response = client.get("/console/")
    assert response.status_code == 302 and response["Location"].startswith("/accounts/mfa/")
    response = client.get("/api/v1/audit-events/")
    assert response.status_code == 403 and response.json()["code"] == "mfa_required"


API_ENDPOINTS = [
    ("get", "/api/v1/audit-events/"), ("get", "/api/v1/escalations/"),
    ("post", "/api/v1/escalations/{id}/take/"), ("post", "/api/v1/escalations/{id}/close/"),
    ("post", "/api/v1/escalations/{id}/audio-token/"), ("get", "/api/v1/escalations/{id}/audio/"),
]


@pytest.mark.parametrize("actor, expected", [("alice", 404), ("bob", 404), ("ada", 404), ("anonymous", 401)])
def test_console_api_is_for_supervisors_only(clients, escalation, actor, expected):
    for _method, template in API_ENDPOINTS:
        url = template.format(id=escalation.pk)
        for method in ("get", "post", "put", "delete"):
            before = denials()
            response = getattr(clients[actor], method)(url, {}, format="json")
            assert response.status_code == expected, (actor, method, url, response.content)
            assert set(response.json()) == {"code", "detail"}
            assert denials() == before + 1, (actor, method, url)
    assert Escalation.objects.get().status == "open"
    assert not AuditEvent.objects.filter(action__in=["audio.token", "audio.play"], object_type="escalation")


def test_a_missing_escalation_answers_an_audited_404_to_sam_too(clients, escalation):
    for url in ("/api/v1/escalations/999999/take/", "/api/v1/escalations/nope/take/"):
        before = denials()
        response = clients["sam"].post(url, {}, format="json")
        assert response.status_code == 404 and response.json()["code"] == "not_found"
        assert denials() == before + 1


# --- Audit search ---------------------------------------------------------------------------

CLIP_A, CLIP_B = uuid.uuid4(), uuid.uuid4()


@pytest.fixture
def trail(alice, bob):
    """A small known trail over three days."""
    made = {}
    rows = [
        ("a1", DAY - timedelta(days=1), alice, "audio.play", "allowed", CLIP_A),
        ("a2", DAY, alice, "audio.play", "allowed", CLIP_A),
        ("a3", DAY + timedelta(hours=1), alice, "access.denied", "denied", CLIP_B),
        ("b1", DAY + timedelta(hours=2), bob, "audio.play", "allowed", CLIP_B),
        ("b2", DAY + timedelta(days=1), bob, "transcription.submit", "allowed", CLIP_B),
        ("s1", DAY + timedelta(hours=3), None, "assignment.expire", "allowed", CLIP_A),
    ]
    for name, at, actor, action, outcome, clip in rows:
        with time_machine.travel(at, tick=False):
            made[name] = audit_record(actor=actor, action=action, outcome=outcome, clip_id=clip,
                                      object_type="assignment", actor_name="system" if actor is None else None)
    return made


def search(client, **params):
    response = client.get("/api/v1/audit-events/", {"action": params.pop("action", ""), **params})
    assert response.status_code == 200, response.content
    return response.json()


def names(trail, body) -> list[str]:
    by_id = {event.pk: name for name, event in trail.items()}
    return [by_id[e["id"]] for e in body["results"] if e["id"] in by_id]


@pytest.mark.parametrize("params, expected", [
    ({}, ["b2", "s1", "b1", "a3", "a2", "a1"]),
    ({"reviewer": "alice"}, ["a3", "a2", "a1"]),
    ({"reviewer": "nobody"}, []),
    ({"clip": str(CLIP_B)}, ["b2", "b1", "a3"]),
    ({"action": "audio.play"}, ["b1", "a2", "a1"]),
    ({"outcome": "denied"}, ["a3"]),
    ({"since": "2026-11-20T10:30:00+00:00"}, ["b2", "s1", "b1", "a3"]),
    ({"until": "2026-11-20T11:00:00Z"}, ["a2", "a1"]),
    ({"since": "2026-11-20", "until": "2026-11-20"}, ["s1", "b1", "a3", "a2"]),
    ({"reviewer": "bob", "since": "2026-11-20", "until": "2026-11-20"}, ["b1"]),
    ({"reviewer": "alice", "clip": str(CLIP_A), "action": "audio.play", "outcome": "allowed"}, ["a2", "a1"]),
])
def test_each_search_filter(clients, trail, params, expected):
    assert names(trail, search(clients["sam"], **params)) == expected


def test_search_by_event_ids_and_the_search_is_audited(clients, trail):
    body = search(clients["sam"], ids=f"{trail['a1'].pk},{trail['b2'].pk}")
    assert names(trail, body) == ["b2", "a1"]
    event = AuditEvent.objects.filter(action="console.search").latest("id")
    assert event.actor_name == "sam" and event.details["ids"] == f"{trail['a1'].pk},{trail['b2'].pk}"


def test_a_bare_date_is_a_day_in_the_console_time_zone(clients, trail, settings):
    settings.QUOTA_TIME_ZONE = "Pacific/Auckland"  # UTC+13 in November
    body = search(clients["sam"], since="2026-11-21", until="2026-11-21")  # 2026-11-20 11:00 to 2026-11-21 11:00 UTC
    assert names(trail, body) == ["b2", "s1", "b1", "a3"]


@pytest.mark.parametrize("params, field", [
    ({"clip": "not-a-uuid"}, "clip"), ({"outcome": "maybe"}, "outcome"), ({"since": "yesterday"}, "since"),
    ({"action": "DROP TABLE"}, "action"), ({"ids": "1,x"}, "ids"), ({"cursor": "zz"}, "cursor"),
])
def test_bad_filters_are_refused_with_the_field_named(clients, trail, params, field):
    response = clients["sam"].get("/api/v1/audit-events/", params)
    assert response.status_code == 400 and field in response.json()["fields"]
    page = clients["sam"].get("/console/audit/", params)
    assert page.status_code == 400 and "not valid" in page.content.decode()


def test_keyset_pagination_walks_every_event_once_even_with_equal_times(clients, alice):
    with time_machine.travel(DAY, tick=False):  # every event has the same time: the id breaks ties
        made = [audit_record(actor=alice, action="audio.play", clip_id=CLIP_A).pk for _ in range(60)]
    with time_machine.travel(DAY + timedelta(minutes=1), tick=True):
        made += [audit_record(actor=alice, action="audio.play", clip_id=CLIP_A).pk for _ in range(60)]
    seen, url, pages = [], "/api/v1/audit-events/?action=audio.play&limit=50", 0
    with CaptureQueriesContext(connection) as queries:
        while url:
            body = clients["sam"].get(url).json()
            seen += [e["id"] for e in body["results"]]
            url, pages = body["next"], pages + 1
    assert pages == 3 and seen == sorted(made, reverse=True)
    searches = [q["sql"] for q in queries.captured_queries if 'FROM "reviews_auditevent"' in q["sql"]
                and "ORDER BY" in q["sql"] and "LIMIT 51" in q["sql"]]
    assert len(searches) == 3 and not any("OFFSET" in sql for sql in searches)


def test_the_search_page_pages_and_links_rows_to_timeline_and_clip(clients, alice):
    with time_machine.travel(DAY, tick=True):
        for _ in range(55):
            audit_record(actor=alice, action="audio.play", clip_id=CLIP_A)
    page = clients["sam"].get("/console/audit/", {"reviewer": "alice", "action": "audio.play"}).content.decode()
    assert page.count('class="who-link"') == 50
    assert 'href="/console/reviewers/alice/?day=2026-11-20"' in page
    assert f'href="/console/clips/{CLIP_A}/"' in page
    assert 'id="next-page"' in page
    href = page.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0]
    second = clients["sam"].get("/console/audit/" + href.replace("&amp;", "&")).content.decode()
    assert second.count('class="who-link"') == 5 and "End of the results." in second


# --- Clip history -----------------------------------------------------------------------------

def test_clip_history_lists_every_event_of_the_clip_in_order(clients, project, ingest, alice, bob):
    project.transcriptions_per_clip = 2
    project.save()
    [clip] = ingest(1)
    other = ingest(1)[0]
    first = leases.assignment_next(reviewer=alice)
    grant = services.audio_token_issue(reviewer=alice, assignment_id=first.pk, session_key="s-alice")
    services.audio_open(reviewer=alice, assignment_id=first.pk, token=grant.token, session_key="s-alice")
    services.draft_save(reviewer=alice, assignment_id=first.pk, text="lights", labels={}, version=0)
    services.transcription_submit(reviewer=alice, assignment_id=first.pk, text="lights off",
                                  labels={"speaker": ["adult"]})
    second = leases.assignment_next(reviewer=bob)
    assert second.clip_id == clip.pk
    services.clip_flag(reviewer=bob, assignment_id=second.pk, reason="shouting")

    body = clients["sam"].get(f"/console/clips/{clip.pk}/")
    assert body.status_code == 200
    expected = ["clip.ingest", "assignment.lease", "audio.token", "audio.play", "draft.save",
                "transcription.submit", "assignment.lease", "clip.flag"]
    history = supervision.clip_history(supervisor=None, clip_id=clip.pk)
    assert [e.action for e in history.events] == expected
    assert [e.actor_name for e in history.events][1:] == ["alice"] * 5 + ["bob"] * 2
    html = body.content.decode()
    positions = [html.index(f"<code>{action}</code>", html.index(f'id="event-{e.pk}"'))
                 for action, e in zip(expected, history.events)]
    assert positions == sorted(positions)
    assert str(other.pk) not in html
    viewed = AuditEvent.objects.filter(action="console.clip_history").latest("id")
    assert viewed.object_id == str(clip.pk) and viewed.clip_id is None


# --- Reviewer timeline ---------------------------------------------------------------------------

def test_timeline_counts_plays_per_clip_for_one_local_day(clients, project, ingest, alice, bob, settings):
    settings.QUOTA_TIME_ZONE = "America/New_York"
    clip_one, clip_two = ingest(2)
    day = datetime(2026, 11, 20, 14, 0, tzinfo=UTC)  # 09:00 in New York
    with time_machine.travel(day, tick=True):
        first = leases.assignment_next(reviewer=alice)
        for _ in range(3):
            grant = services.audio_token_issue(reviewer=alice, assignment_id=first.pk, session_key="s")
            services.audio_open(reviewer=alice, assignment_id=first.pk, token=grant.token, session_key="s")
        services.transcription_submit(reviewer=alice, assignment_id=first.pk, text="one",
                                      labels={"speaker": ["adult"]})
        second = leases.assignment_next(reviewer=alice)
        grant = services.audio_token_issue(reviewer=alice, assignment_id=second.pk, session_key="s")
        services.audio_open(reviewer=alice, assignment_id=second.pk, token=grant.token, session_key="s")
    # 03:00 UTC the next day is still the 20th in New York; 06:00 UTC is the 21st.
    with time_machine.travel(datetime(2026, 11, 21, 3, 0, tzinfo=UTC), tick=False):
        late = audit_record(actor=alice, action="audio.play", clip_id=second.clip_id, object_type="assignment")
        audit_record(actor=alice, action="access.denied", outcome="denied", clip_id=second.clip_id,
                     details={"attempted": "audio.play", "reason": "quota_plays_per_clip"})
    with time_machine.travel(datetime(2026, 11, 21, 6, 0, tzinfo=UTC), tick=False):
        next_day = audit_record(actor=alice, action="audio.play", clip_id=second.clip_id)
    with time_machine.travel(day, tick=True):
        audit_record(actor=bob, action="audio.play", clip_id=first.clip_id)

    timeline = supervision.reviewer_timeline(supervisor=None, username="alice", day=day.date())
    plays = {row.clip_id: (row.plays, row.denied) for row in timeline.plays}
    assert plays == {first.clip_id: (3, 0), second.clip_id: (2, 1)}
    ids = [e.pk for e in timeline.events]
    assert late.pk in ids and next_day.pk not in ids and ids == sorted(ids)
    assert {e.actor_name for e in timeline.events} == {"alice"}

    html = clients["sam"].get("/console/reviewers/alice/", {"day": "2026-11-20"}).content.decode()
    row = html.split(f'href="/console/clips/{first.clip_id}/"', 1)[1].split("</tr>")[0]
    assert '<td class="num">3</td>' in row
    assert "Previous day" in html and 'href="?day=2026-11-19"' in html
    assert {clip_one.pk, clip_two.pk} == {first.clip_id, second.clip_id}


def test_timeline_of_an_unknown_account_says_so(clients):
    html = clients["sam"].get("/console/reviewers/mallory/").content.decode()
    assert "There is no account named mallory" in html


def next_link(html: str) -> str | None:
    """The href of a page's "next page" link, unescaped, or None on the last page."""
    if 'id="next-page"' not in html:
        return None
    return html.split('id="next-page"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")


def test_the_timeline_pages_a_busy_day_by_keyset_without_duplicates_or_gaps(clients, alice, bob, monkeypatch):
    monkeypatch.setattr(supervision, "TIMELINE_PAGE_SIZE", 10)
    made = []
    # 25 events of alice's day; eight share one instant across the first page's end (ties go by id),
    # and bob's events of the same moments are not hers.
    for second, count in ((0, 6), (1, 8), (2, 11)):
        with time_machine.travel(DAY + timedelta(seconds=second), tick=False):
            for _ in range(count):
                made.append(audit_record(actor=alice, action="audio.play", clip_id=CLIP_A).pk)
                audit_record(actor=bob, action="audio.play", clip_id=CLIP_A)
    url, pages, seen = "/console/reviewers/alice/?day=2026-11-20", [], []
    while url:
        response = clients["sam"].get("/console/reviewers/alice/" + url if url.startswith("?") else url)
        assert response.status_code == 200
        html = response.content.decode()
        rows = [int(part.split('"', 1)[0]) for part in html.split('id="event-')[1:]]
        pages.append(html)
        seen += rows
        url = next_link(html)
    assert [len(html.split('id="event-')) - 1 for html in pages] == [10, 10, 5]
    assert seen == made  # in order, each once, none left out
    # The day's summaries are on its first page; later pages link back to it.
    assert 'id="plays-title"' in pages[0] and 'id="plays-title"' not in pages[1]
    assert 'id="first-page"' in pages[1] and 'href="?day=2026-11-20"' in pages[1]
    assert "End of the day." in pages[2]
    # Every page read is audited, as the first one always was.
    reads = list(AuditEvent.objects.filter(action="console.timeline", actor_name="sam").order_by("id"))
    assert [e.details for e in reads] == [{"day": "2026-11-20"}] + [{"day": "2026-11-20", "page": "next"}] * 2
    assert {e.object_id for e in reads} == {str(alice.pk)}


def test_the_timeline_shows_the_most_played_clips_first_when_a_day_has_many(clients, alice, monkeypatch):
    monkeypatch.setattr(supervision, "TIMELINE_PLAYS_SHOWN", 2)
    once, thrice, twice = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    with time_machine.travel(DAY, tick=True):
        for clip, times in ((once, 1), (thrice, 3), (twice, 2)):
            for _ in range(times):
                audit_record(actor=alice, action="audio.play", clip_id=clip, object_type="assignment")
    timeline = supervision.reviewer_timeline(supervisor=None, username="alice", day=DAY.date())
    assert [(row.clip_id, row.plays) for row in timeline.plays] == [(thrice, 3), (twice, 2)]
    assert timeline.plays_clips == 3
    html = clients["sam"].get("/console/reviewers/alice/", {"day": "2026-11-20"}).content.decode()
    assert "The 2 most played of 3 clips." in html and str(once) not in html.split('id="events-title"')[0]
    assert 'action=audio.play&amp;since=2026-11-20&amp;until=2026-11-20' in html


def test_a_broken_timeline_page_link_is_refused_and_not_read(clients, alice):
    response = clients["sam"].get("/console/reviewers/alice/", {"day": "2026-11-20", "after": "nonsense"})
    assert response.status_code == 400
    assert "This page link is not valid" in response.content.decode()
    assert not AuditEvent.objects.filter(action="console.timeline").exists()


# --- Anomalies -------------------------------------------------------------------------------------

def kinds(found, kind):
    return [a for a in found if a.kind == kind]


def test_a_clip_fetched_more_than_half_the_quota_is_an_anomaly(project, ingest, alice, bob, settings):
    settings.ANOMALY_FETCH_SHARE = 0.5  # of plays_per_clip, 6 by default: more than 3 fetches
    project.transcriptions_per_clip = 2
    project.save()
    ingest(1)
    plays = {}
    for reviewer, times in ((alice, 4), (bob, 3)):
        assignment = leases.assignment_next(reviewer=reviewer)
        for _ in range(times):
            grant = services.audio_token_issue(reviewer=reviewer, assignment_id=assignment.pk, session_key="s")
            services.audio_open(reviewer=reviewer, assignment_id=assignment.pk, token=grant.token, session_key="s")
        plays[reviewer.username] = assignment
    [found] = kinds(anomalies.anomalies_find(), "repeated_fetches")
    assert (found.actor_name, found.count, found.clip_id) == ("alice", 4, plays["alice"].clip_id)
    assert set(found.event_ids) == set(AuditEvent.objects.filter(action="audio.play", actor=alice)
                                       .values_list("id", flat=True))


def test_plays_after_the_lease_ended_are_anomalies(project, ingest, alice, bob):
    project.transcriptions_per_clip = 2
    project.save()
    ingest(1)
    alice_client, bob_client = session_client(alice), session_client(bob)
    mine = alice_client.post("/api/v1/assignments/next/").json()
    bobs = bob_client.post("/api/v1/assignments/next/").json()
    token = alice_client.post(f"/api/v1/assignments/{mine['id']}/audio-token/").json()["token"]
    # bob flags the clip: alice's lease is withdrawn, her token still looks fine.
    assert bob_client.post(f"/api/v1/assignments/{bobs['id']}/flag/", {"reason": "distress"},
                           format="json").status_code == 201
    response = alice_client.get(f"/api/v1/assignments/{mine['id']}/audio/", HTTP_X_AUDIO_TOKEN=token)
    assert response.status_code == 404
    # ... and pressing Play again asks for a new token, refused too.
    assert alice_client.post(f"/api/v1/assignments/{mine['id']}/audio-token/").status_code == 409
    [found] = kinds(anomalies.anomalies_find(), "play_after_lease")
    assert (found.actor_name, found.count, str(found.clip_id)) == ("alice", 2, mine["clip"]["id"])
    reasons = [(e.details["attempted"], e.details["reason"]) for e in AuditEvent.objects.filter(pk__in=found.event_ids)]
    assert reasons == [("audio.play", "lease_ended"), ("audio.token", "withdrawn")]


def test_a_lease_that_ran_out_makes_a_later_play_an_anomaly(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    mine = client.post("/api/v1/assignments/next/").json()
    with time_machine.travel(datetime.now(UTC) + timedelta(minutes=project.lease_minutes + 1)):
        assert client.post(f"/api/v1/assignments/{mine['id']}/audio-token/").status_code == 409
        [found] = kinds(anomalies.anomalies_find(), "play_after_lease")
    assert found.actor_name == "alice" and found.count == 1


def test_repeated_denied_attempts_are_an_anomaly(project, ingest, alice, bob, sam, settings):
    settings.ANOMALY_DENIED_ATTEMPTS = 3
    ingest(1)
    mine = session_client(alice).post("/api/v1/assignments/next/").json()
    bob_client, sam_client = session_client(bob), session_client(sam)
    for _ in range(3):
        assert bob_client.get(f"/api/v1/assignments/{mine['id']}/").status_code == 404
    for _ in range(2):
        assert sam_client.get(f"/api/v1/assignments/{mine['id']}/").status_code == 404
    [found] = kinds(anomalies.anomalies_find(), "denied_attempts")
    assert (found.actor_name, found.count) == ("bob", 3)
    assert {e.details["reason"] for e in AuditEvent.objects.filter(pk__in=found.event_ids)} == {"not_owner"}


def test_activity_outside_working_hours_is_an_anomaly(project, alice, bob, settings):
    settings.QUOTA_TIME_ZONE = "Europe/Berlin"
    settings.ANOMALY_WORK_START_HOUR, settings.ANOMALY_WORK_END_HOUR = 7, 20
    bare_clips(project, 2)
    local = ZoneInfo("Europe/Berlin")
    with time_machine.travel(datetime(2026, 11, 20, 5, 30, tzinfo=local), tick=False):  # before 07:00
        early = leases.assignment_next(reviewer=alice)
    with time_machine.travel(datetime(2026, 11, 20, 19, 55, tzinfo=local), tick=False):  # last minutes of the day
        bobs = leases.assignment_next(reviewer=bob)
    with time_machine.travel(datetime(2026, 11, 20, 19, 59, 59, tzinfo=local), tick=False):
        services.assignment_skip(reviewer=bob, assignment_id=bobs.pk, reason="noise")
    with time_machine.travel(datetime(2026, 11, 21, 9, 0, tzinfo=local), tick=False):
        [found] = kinds(anomalies.anomalies_find(), "off_hours")
    assert (found.actor_name, str(found.day)) == ("alice", "2026-11-20")
    lease = AuditEvent.objects.get(action="assignment.lease", object_id=str(early.pk))
    assert lease.pk in found.event_ids


def test_many_quick_skips_are_an_anomaly_and_slow_ones_are_not(project, alice, bob, settings):
    settings.ANOMALY_QUICK_SKIPS, settings.ANOMALY_QUICK_SKIP_SECONDS = 5, 10
    bare_clips(project, 5)
    # Mid-morning: the skips are grouped per day, so none may cross midnight.
    start = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
    for reviewer, gap in ((alice, 3), (bob, 30)):
        for i in range(5):
            moment = start + timedelta(minutes=10 * i)
            with time_machine.travel(moment, tick=False):
                assignment = leases.assignment_next(reviewer=reviewer)
            with time_machine.travel(moment + timedelta(seconds=gap), tick=False):
                services.assignment_skip(reviewer=reviewer, assignment_id=assignment.pk, reason="not english")
    [found] = kinds(anomalies.anomalies_find(now=start + timedelta(hours=2)), "quick_skips")
    assert (found.actor_name, found.count) == ("alice", 5)
    actions = sorted(AuditEvent.objects.filter(pk__in=found.event_ids).values_list("action", flat=True))
    assert actions == ["assignment.lease"] * 5 + ["assignment.skip"] * 5


def test_repeated_failed_sign_ins_are_an_anomaly(alice, bob, settings):
    settings.ANOMALY_FAILED_LOGINS = 5
    client = APIClient()
    for username, times in (("alice", 5), ("bob", 4), ("mallory", 5)):
        for _ in range(times):
            response = client.post("/api/v1/auth/login/", {"username": username, "password": "wrong"}, format="json")
            assert response.status_code in (401, 429)  # the fifth failure also locks the account out
    found = kinds(anomalies.anomalies_find(), "failed_logins")
    assert sorted((a.actor_name, a.count) for a in found) == [
        ("alice", 5), ("unknown account from 127.0.0.1", 5)]
    alice_found = next(a for a in found if a.actor_name == "alice")
    assert {e.action for e in AuditEvent.objects.filter(pk__in=alice_found.event_ids)} == {"auth.login_failed"}


def test_the_anomalies_page_links_to_the_events_behind_each(clients, project, ingest, alice, settings):
    settings.ANOMALY_FAILED_LOGINS = 2
    for _ in range(2):
        APIClient().post("/api/v1/auth/login/", {"username": "alice", "password": "x"}, format="json")
    ids = list(AuditEvent.objects.filter(action="auth.login_failed").order_by("id").values_list("id", flat=True))
    html = clients["sam"].get("/console/anomalies/").content.decode()
    assert f'href="/console/audit/?ids={ids[0]},{ids[1]}"' in html
    listed = clients["sam"].get("/console/audit/", {"ids": f"{ids[0]},{ids[1]}"}).content.decode()
    assert listed.count("<code>auth.login_failed</code>") == 2
    assert AuditEvent.objects.filter(action="console.anomalies", actor_name="sam").count() == 1


def test_the_anomalies_page_shows_the_first_of_each_kind_and_pages_through_one_kind(clients, settings, monkeypatch):
    settings.ANOMALY_FAILED_LOGINS = 1
    # Whenever the suite runs, the sign-ins of the clients fixture are within working hours.
    settings.ANOMALY_WORK_START_HOUR, settings.ANOMALY_WORK_END_HOUR = 0, 24
    monkeypatch.setattr(anomalies, "ANOMALIES_SHOWN", 3)
    monkeypatch.setattr(anomalies, "ANOMALY_PAGE_SIZE", 3)
    for n in range(7):
        audit_record(actor=None, action="auth.login_failed", outcome="denied", actor_name=f"account{n}")
    everything = {a.event_ids[0] for a in kinds(anomalies.anomalies_find(), "failed_logins")}
    assert len(everything) == 7
    linked = lambda html: [int(part.split('"', 1)[0]) for part in html.split('href="/console/audit/?ids=')[1:]]  # noqa: E731

    overview = clients["sam"].get("/console/anomalies/").content.decode()
    assert len(linked(overview)) == 3 and set(linked(overview)) < everything
    assert 'Repeated failed sign-ins <span class="count">(7)</span>' in overview
    assert 'Activity outside working hours <span class="count">(0)</span>' in overview
    assert 'href="?kind=failed_logins"' in overview and "All 7 of this kind" in overview
    url, pages, seen = "?kind=failed_logins", 0, []
    while url:
        html = clients["sam"].get("/console/anomalies/" + url).content.decode()
        assert "Many clips skipped" not in html  # one kind only
        seen += linked(html)
        pages, url = pages + 1, next_link(html)
    assert pages == 3 and len(seen) == 7 and set(seen) == everything
    assert seen[:3] == linked(overview)  # the overview shows the kind's first page
    reads = list(AuditEvent.objects.filter(action="console.anomalies", actor_name="sam").order_by("id"))
    assert [e.details for e in reads] == [{"found": 7}] + [
        {"found": 7, "kind": "failed_logins", "page": page} for page in (1, 2, 3)]


@pytest.mark.parametrize("query", [{"kind": "nonsense"}, {"kind": "off_hours", "page": "0"},
                                   {"kind": "off_hours", "page": "two"}])
def test_a_broken_anomalies_link_is_refused_and_not_computed(clients, query):
    response = clients["sam"].get("/console/anomalies/", query)
    assert response.status_code == 400 and "This anomalies link is not valid" in response.content.decode()
    assert not AuditEvent.objects.filter(action="console.anomalies").exists()


# --- Escalations ---------------------------------------------------------------------------------

def test_sam_takes_listens_to_and_closes_an_escalation(clients, escalation):
    sam = clients["sam"]
    queue = sam.get("/api/v1/escalations/").json()["results"]
    assert [(e["id"], e["status"], e["reason"]) for e in queue] == [(escalation.pk, "open", "a person in distress")]
    assert "Escalation #%d" % escalation.pk in sam.get("/console/").content.decode()

    assert sam.post(f"/api/v1/escalations/{escalation.pk}/audio-token/").status_code == 409  # take it first
    taken = sam.post(f"/api/v1/escalations/{escalation.pk}/take/").json()
    assert (taken["status"], taken["taken_by"]) == ("taken", "sam")
    base = f"/api/v1/escalations/{escalation.pk}/"
    assert taken["urls"] == {"take": base + "take/", "close": base + "close/", "audio_token": base + "audio-token/",
                             "audio": base + "audio/"}
    assert queue[0]["urls"] == taken["urls"] and queue[0]["taken_by"] is None
    token_response = sam.post(f"/api/v1/escalations/{escalation.pk}/audio-token/")
    assert token_response.status_code == 201
    audio = sam.get(f"/api/v1/escalations/{escalation.pk}/audio/", HTTP_X_AUDIO_TOKEN=token_response.json()["token"])
    assert audio.status_code == 200 and audio["Content-Type"] == "audio/mpeg"
    with escalation.clip.audio.open("rb") as stored:
        assert audio.content == stored.read()
    assert audio["Cache-Control"] == "no-store, private" and audio["Content-Disposition"] == "inline"
    assert sam.get(f"/api/v1/escalations/{escalation.pk}/audio/").status_code == 404  # no token

    assert sam.post(f"/api/v1/escalations/{escalation.pk}/close/", {}, format="json").status_code == 400
    closed = sam.post(f"/api/v1/escalations/{escalation.pk}/close/",
                      {"action_taken": "Referred to trust and safety."}, format="json").json()
    assert (closed["status"], closed["action_taken"]) == ("closed", "Referred to trust and safety.")
    assert sam.get("/api/v1/escalations/").json()["results"] == []
    assert sam.post(f"/api/v1/escalations/{escalation.pk}/take/").json()["code"] == "escalation_closed"

    trail = list(AuditEvent.objects.filter(object_type="escalation", object_id=str(escalation.pk))
                 .values_list("action", "outcome", "actor_name"))
    assert trail == [
        ("access.denied", "denied", "sam"),  # token before taking
        ("escalation.take", "allowed", "sam"),
        ("audio.token", "allowed", "sam"),
        ("audio.play", "allowed", "sam"),
        ("access.denied", "denied", "sam"),  # play without a token
        ("escalation.close", "allowed", "sam"),
        ("access.denied", "denied", "sam"),  # take after close
    ]
    assert all(e.clip_id == escalation.clip_id for e in AuditEvent.objects.filter(object_type="escalation"))
    assert "Referred" not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_another_supervisor_cannot_take_or_hear_what_sam_holds(clients, escalation):
    sue = session_client(make_user("sue", "supervisor"))
    clients["sam"].post(f"/api/v1/escalations/{escalation.pk}/take/")
    response = sue.post(f"/api/v1/escalations/{escalation.pk}/take/")
    assert response.status_code == 409 and response.json()["code"] == "escalation_taken"
    assert sue.post(f"/api/v1/escalations/{escalation.pk}/audio-token/").status_code == 409
    assert sue.post(f"/api/v1/escalations/{escalation.pk}/close/", {"action_taken": "x"},
                    format="json").status_code == 409
    assert Escalation.objects.get().taken_by.username == "sam"
    assert AuditEvent.objects.filter(action="access.denied", actor_name="sue").count() == 3


def test_a_token_only_plays_in_the_session_it_was_issued_to(clients, escalation, sam):
    clients["sam"].post(f"/api/v1/escalations/{escalation.pk}/take/")
    token = clients["sam"].post(f"/api/v1/escalations/{escalation.pk}/audio-token/").json()["token"]
    other_session = session_client(sam)
    response = other_session.get(f"/api/v1/escalations/{escalation.pk}/audio/", HTTP_X_AUDIO_TOKEN=token)
    assert response.status_code == 404
    assert AuditEvent.objects.filter(action="access.denied").latest("id").details["reason"] == "bad_token"
    assert not AuditEvent.objects.filter(action="audio.play", object_type="escalation").exists()


def test_a_reviewer_cannot_reach_escalation_audio_even_with_sams_token(clients, escalation):
    clients["sam"].post(f"/api/v1/escalations/{escalation.pk}/take/")
    token = clients["sam"].post(f"/api/v1/escalations/{escalation.pk}/audio-token/").json()["token"]
    before = denials()
    for actor in ("alice", "bob"):
        response = clients[actor].get(f"/api/v1/escalations/{escalation.pk}/audio/", HTTP_X_AUDIO_TOKEN=token)
        assert response.status_code == 404 and response["Content-Type"] == "application/json"
    assert denials() == before + 2
    assert not AuditEvent.objects.filter(action="audio.play", object_type="escalation").exists()


def test_the_escalation_pages_take_and_close(clients, escalation):
    sam = clients["sam"]
    page = sam.get(f"/console/escalations/{escalation.pk}/").content.decode()
    assert "Take this escalation" in page and "a person in distress" in page
    assert sam.post(f"/console/escalations/{escalation.pk}/take/").status_code == 302
    page = sam.get(f"/console/escalations/{escalation.pk}/").content.decode()
    assert 'id="listen-play"' in page and "Close the escalation" in page
    empty = sam.post(f"/console/escalations/{escalation.pk}/close/", {"action_taken": "  "})
    assert empty.status_code == 400 and "Say what was done" in empty.content.decode()
    assert sam.post(f"/console/escalations/{escalation.pk}/close/", {"action_taken": "Called the team."}
                    ).status_code == 302
    assert Escalation.objects.get().status == "closed"
    assert "Called the team." in sam.get(f"/console/escalations/{escalation.pk}/").content.decode()


def test_an_escalation_change_fails_with_its_audit_write(escalation, sam, monkeypatch):
    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(supervision, "audit_record", broken)
    with pytest.raises(RuntimeError):
        supervision.escalation_take(supervisor=sam, escalation_id=escalation.pk)
    assert Escalation.objects.get().status == "open" and Escalation.objects.get().taken_by is None


# --- Front page ---------------------------------------------------------------------------------

def test_front_page_shows_the_latest_chain_verification(clients):
    assert "Never verified." in clients["sam"].get("/console/").content.decode()
    AuditVerification.objects.create(verified_at=DAY - timedelta(days=1), ok=True, events_checked=10)
    AuditVerification.objects.create(verified_at=DAY, ok=False, events_checked=1234, first_broken_id=77,
                                     detail="hash mismatch")
    html = clients["sam"].get("/console/").content.decode()
    assert "Broken" in html and "1234" in html and 'href="/console/audit/?ids=77"' in html
    assert "Never verified." not in html


def test_escalation_list_refuses_an_empty_status(sam):
    """Found by schemathesis: ?status= was read as "not given" and answered 200."""
    from tests.helpers import session_client

    response = session_client(sam).get("/api/v1/escalations/?status=")
    assert response.status_code == 400 and response.json()["code"] == "invalid_filters"
