"""Issue 11, parts 1 and 4: the recognizer's draft and its WER; gold clips (served at the
project's rate, never used up, indistinguishable from other clips); reviewer quality figures
on a seeded set with known answers; pauses below the minimum gold accuracy."""

import json
import logging
import re
from datetime import datetime, timedelta
from datetime import timezone as dt_timezone
from decimal import Decimal

import jiwer
import pytest
import time_machine

from reviews import leases, quality, services
from reviews.models import Assignment, AuditEvent, Clip, ReviewerPause, Transcription
from tests.helpers import session_client

ASR = "turn of the light"
ADULT = {"speaker": ["adult"]}
GOLD_ONE = "Turn on the kitchen lights."
GOLD_TWO = "What time is it?"
SECRET_TEXTS = (ASR, GOLD_ONE, GOLD_TWO, "kitchen")


def gold(ingest, text=GOLD_ONE, labels=ADULT, **extra):
    return ingest(1, is_gold="true", gold_text=text, gold_labels=json.dumps(labels), **extra)[0]


def submit(client, assignment, text, labels=ADULT):
    response = client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {"text": text, "labels": labels},
                           format="json")
    assert response.status_code == 201, response.content
    return response


def no_text_in_the_trail():
    for event in AuditEvent.objects.all():
        details = json.dumps(event.details).lower()
        assert not any(text.lower() in details for text in SECRET_TEXTS), (event.action, event.details)


# --- Part 1: the recognizer's draft ------------------------------------------------------------

def test_the_asr_draft_is_offered_and_its_wer_against_the_submitted_text_stored(project, ingest, alice, caplog):
    caplog.set_level(logging.DEBUG)
    ingest(1, asr_text=ASR, asr_confidence="0.8")
    client = session_client(alice)
    payload = client.post("/api/v1/assignments/next/").json()
    assert payload["asr"] == {"text": ASR, "confidence": 0.8}
    assert payload["draft"] == {"text": "", "labels": {}, "segments": [], "version": 0}  # the page starts from asr.text
    submit(client, payload, "Turn off the lights.")
    transcription = Transcription.objects.get()
    assert transcription.text == "Turn off the lights."
    assert transcription.draft_source == "asr"
    # jiwer, after lower-casing and dropping punctuation: two substitutions in four words.
    assert transcription.asr_wer == pytest.approx(jiwer.wer("turn off the lights", ASR)) == pytest.approx(0.5)
    assert Clip.objects.get().asr_text == ASR  # both kept: the hypothesis with the clip, the text submitted
    no_text_in_the_trail()
    assert ASR not in caplog.text


def test_a_clip_without_a_hypothesis_has_the_same_shape_and_no_wer(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    payload = client.post("/api/v1/assignments/next/").json()
    assert payload["asr"] == {"text": "", "confidence": None}
    submit(client, payload, "call mum")
    transcription = Transcription.objects.get()
    assert transcription.draft_source == "blank" and transcription.asr_wer is None


def test_an_unchanged_draft_scores_zero(project, ingest, alice):
    ingest(1, asr_text=ASR)
    assignment = leases.assignment_next(reviewer=alice)
    services.transcription_submit(reviewer=alice, assignment_id=assignment.pk, text=ASR.upper() + "!", labels=ADULT)
    assert Transcription.objects.get().asr_wer == 0.0


@pytest.mark.parametrize("reference, hypothesis, expected", [
    ("", "", 0.0), ("", "something", 1.0), ("words here", "", 1.0), ("Don't stop!", "dont stop", 0.0),
    ("a b c d", "a x c d", 0.25), ("a b", "a b c d", 1.0),
    ("Set a timer for 10 minutes.", "set a timer for ten minutes", 0.0),  # numbers read as words
])
def test_wer_edges(reference, hypothesis, expected):
    assert quality.wer(reference, hypothesis) == pytest.approx(expected)


def test_retention_drops_the_hypothesis_with_the_audio(project, ingest, settings):
    from reviews import lifecycle

    clip = ingest(1, asr_text=ASR, asr_confidence="0.5")[0]
    lifecycle.retention_apply(now=clip.ingested_at + timedelta(days=settings.RETENTION_AUDIO_DAYS + 1))
    clip.refresh_from_db()
    assert clip.status == "purged" and clip.asr_text == "" and clip.asr_confidence is None


# --- Part 4: gold serving -----------------------------------------------------------------------

def shape(value):
    """Keys and value types, recursively: what a client could tell two payloads apart by."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in sorted(value.items())}
    if isinstance(value, list):
        return ["list", sorted({json.dumps(shape(item), sort_keys=True) for item in value})]
    return type(value).__name__


@pytest.mark.parametrize("with_asr", [True, False], ids=["with-asr", "without-asr"])
def test_a_gold_clip_looks_exactly_like_any_other(project, ingest, alice, bob, with_asr):
    extra = {"asr_text": ASR, "asr_confidence": "0.7"} if with_asr else {}
    ingest(1, **extra)
    gold(ingest, **extra)
    project.gold_rate = Decimal("1")
    project.save()
    alice_client, bob_client = session_client(alice), session_client(bob)
    gold_response = alice_client.post("/api/v1/assignments/next/")
    project.gold_rate = Decimal("0")
    project.save()
    plain_response = bob_client.post("/api/v1/assignments/next/")
    gold_payload, plain_payload = gold_response.json(), plain_response.json()
    assert Clip.objects.get(pk=gold_payload["clip"]["id"]).is_gold
    assert not Clip.objects.get(pk=plain_payload["clip"]["id"]).is_gold

    # Same status, same keys and shapes, same lease length, URLs of the same form, same headers.
    assert gold_response.status_code == plain_response.status_code == 201
    assert shape(gold_payload) == shape(plain_payload)
    assert set(gold_response.headers) == set(plain_response.headers)
    for payload in (gold_payload, plain_payload):
        assert payload["audio_url"] == f"/api/v1/assignments/{payload['id']}/audio/"
        assert payload["audio_token_url"] == f"/api/v1/assignments/{payload['id']}/audio-token/"
        assert "gold" not in json.dumps(payload).lower()
        assert GOLD_ONE.lower() not in json.dumps(payload).lower()
    leases = Assignment.objects.filter(pk__in=[gold_payload["id"], plain_payload["id"]])
    lengths = {a.lease_expires_at - a.leased_at for a in leases}
    assert len(lengths) == 1
    for key in ("asr", "draft", "label_schema", "skip_reasons", "status"):
        assert gold_payload[key] == plain_payload[key], key

    # The detail view, the audio token and the submit answer alike.
    def rest(client, payload):
        detail = client.get(f"/api/v1/assignments/{payload['id']}/")
        token = client.post(payload["audio_token_url"])
        audio = client.get(payload["audio_url"], HTTP_X_AUDIO_TOKEN=token.json()["token"])
        submitted = submit(client, payload, "turn off the lights")
        return detail, token, audio, submitted

    for gold_answer, plain_answer in zip(rest(alice_client, gold_payload), rest(bob_client, plain_payload)):
        assert gold_answer.status_code == plain_answer.status_code
        assert set(gold_answer.headers) == set(plain_answer.headers)
        if gold_answer["Content-Type"].startswith("application/json"):
            assert shape(gold_answer.json()) == shape(plain_answer.json())
            assert "gold" not in gold_answer.content.decode().lower()


def test_the_workspace_page_is_the_same_with_a_gold_clip(project, ingest, alice, bob):
    ingest(1)
    gold(ingest)
    project.gold_rate = Decimal("1")
    project.save()
    leases.assignment_next(reviewer=alice)
    project.gold_rate = Decimal("0")
    project.save()
    leases.assignment_next(reviewer=bob)
    assert Clip.objects.get(assignments__reviewer=alice).is_gold
    pages = []
    for user in (alice, bob):
        html = session_client(user).get("/workspace/").content.decode()
        html = re.sub(r"[A-Za-z0-9]{32,}", "TOKEN", html)  # CSRF token and CSP nonce
        pages.append(html.replace(user.username, "USER"))
    assert pages[0] == pages[1]
    assert "gold" not in pages[0].lower()


def test_gold_is_never_used_up_and_each_reviewer_gets_it_once(project, ingest, alice, bob):
    ingest(2)
    clip = gold(ingest)
    project.gold_rate = Decimal("1")
    project.save()
    first = leases.assignment_next(reviewer=alice)
    assert first.clip_id == clip.pk
    services.transcription_submit(reviewer=alice, assignment_id=first.pk, text="turn on the kitchen lights",
                                  labels=ADULT)
    second = leases.assignment_next(reviewer=alice)
    assert second.clip_id != clip.pk  # at most once per reviewer
    theirs = leases.assignment_next(reviewer=bob)
    assert theirs.clip_id == clip.pk  # the same gold clip, again
    services.transcription_submit(reviewer=bob, assignment_id=theirs.pk, text="turn on the lights", labels=ADULT)
    clip.refresh_from_db()
    assert clip.status == "open" and clip.transcriptions_done == 2  # never "done"
    assert sorted(Transcription.objects.filter(clip=clip).values_list("gold_wer", flat=True)) == [0.0, 0.2]


def test_a_skipped_gold_clip_is_not_offered_again(project, ingest, alice):
    ingest(2)
    clip = gold(ingest)
    project.gold_rate = Decimal("1")
    project.save()
    first = leases.assignment_next(reviewer=alice)
    services.assignment_skip(reviewer=alice, assignment_id=first.pk, reason="noise")
    assert leases.assignment_next(reviewer=alice).clip_id != clip.pk


def test_gold_is_not_served_from_an_empty_queue(project, ingest, alice):
    """No tell: a reviewer whose ordinary queue is empty hears nothing, gold or not."""
    gold(ingest)
    project.gold_rate = Decimal("1")
    project.save()
    assert leases.assignment_next(reviewer=alice) is None


def test_gold_rate_zero_never_serves_gold(project, ingest, alice):
    ingest(3)
    clip = gold(ingest)
    project.gold_rate = Decimal("0")
    project.save()
    for _ in range(3):
        assignment = leases.assignment_next(reviewer=alice)
        assert assignment.clip_id != clip.pk
        services.transcription_submit(reviewer=alice, assignment_id=assignment.pk, text="x", labels=ADULT)


def test_the_draw_follows_the_project_rate(project, monkeypatch):
    project.gold_rate = Decimal("0.05")
    assert sum(quality.gold_drawn(project) for _ in range(20000)) == pytest.approx(1000, rel=0.15)
    monkeypatch.setattr(quality._draw, "random", lambda: 0.049)
    assert quality.gold_drawn(project)
    monkeypatch.setattr(quality._draw, "random", lambda: 0.05)
    assert not quality.gold_drawn(project)


# --- Part 4: figures on a seeded set with known answers -----------------------------------------------

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=dt_timezone.utc)


def work(reviewer, text, labels, *, at, seconds):
    with time_machine.travel(at, tick=False):
        assignment = leases.assignment_next(reviewer=reviewer)
    with time_machine.travel(at + timedelta(seconds=seconds), tick=False):
        services.transcription_submit(reviewer=reviewer, assignment_id=assignment.pk, text=text, labels=labels)
    return assignment


@pytest.fixture
def seeded(project, ingest, alice, bob):
    """Known answers. Gold G1 "Turn on the kitchen lights." (adult), G2 "What time is it?"
    (child, background speech); ordinary clip N, transcribed by both.

    alice: G1 "turn on the kitchen light" (WER 1/5, labels right: accuracy 0.9),
           G2 "what time is it" (WER 0, both label groups wrong: accuracy 0.5), N "set a timer for ten minutes".
    bob:   G1 exact (accuracy 1.0), N "set a timer for two minutes" (1 word in 6 differs).
    """
    project.transcriptions_per_clip = 2
    project.gold_rate = Decimal("1")
    project.save()
    with time_machine.travel(T0 - timedelta(hours=3), tick=False):
        ingest(1, asr_text="set a timer for ten minutes")
    with time_machine.travel(T0 - timedelta(hours=2), tick=False):
        gold(ingest, GOLD_ONE, ADULT)  # served first: gold goes oldest first
    with time_machine.travel(T0 - timedelta(hours=1), tick=False):
        gold(ingest, GOLD_TWO, {"speaker": ["child"], "issues": ["background-speech"]})
    work(alice, "turn on the kitchen light", ADULT, at=T0, seconds=30)
    work(alice, "what time is it", ADULT, at=T0 + timedelta(minutes=1), seconds=60)
    work(alice, "set a timer for ten minutes", ADULT, at=T0 + timedelta(minutes=3), seconds=40)
    work(bob, "Turn on the kitchen lights", ADULT, at=T0, seconds=20)
    project.gold_rate = Decimal("0")
    project.save()
    work(bob, "set a timer for two minutes", ADULT, at=T0 + timedelta(minutes=2), seconds=50)
    # The checkers' verdicts (issue 11, part 2): alice's N accepted, her G1 rejected.
    Transcription.objects.filter(reviewer=alice, text__startswith="set").update(review_status="accepted")
    Transcription.objects.filter(reviewer=alice, text__startswith="turn").update(review_status="rejected")
    return project


def report(project, **params):
    query = quality.quality_query_parse({"end": "2026-11-20", "days": "1", "project": project.slug, **params},
                                        today=T0.date())
    return {(row.reviewer, row.day): row for row in quality.quality_report(query)}


def test_the_figures_match_the_known_answers(seeded):
    rows = report(seeded)
    alice, bob = rows[("alice", None)], rows[("bob", None)]
    assert alice.clips == 3 and alice.gold_count == 2
    assert alice.gold_wer == pytest.approx(0.1)  # (0.2 + 0) / 2
    assert alice.label_accuracy == pytest.approx(0.5)  # (1 + 0) / 2
    assert alice.gold_accuracy == pytest.approx(0.7)  # (0.9 + 0.5) / 2
    assert alice.peer_agreement == pytest.approx(5 / 6) and alice.peer_pairs == 1
    assert alice.acceptance_rate == pytest.approx(0.5)
    assert alice.median_seconds == pytest.approx(40)
    assert alice.working_minutes == pytest.approx(130 / 60)
    assert alice.throughput == pytest.approx(3 / (130 / 3600))
    assert alice.asr_drafts == 1 and alice.asr_unchanged == 1.0  # she kept the (right) draft of N
    assert bob.gold_count == 1 and bob.gold_wer == 0 and bob.gold_accuracy == pytest.approx(1.0)
    assert bob.peer_agreement == pytest.approx(5 / 6)
    assert bob.acceptance_rate is None  # nothing of bob's was checked: n/a, not 0
    assert bob.asr_unchanged == 0.0
    assert alice.spark_clips == [3] and alice.spark_gold == [pytest.approx(0.7)]


def test_rows_per_day_and_sorting(seeded):
    by_day = report(seeded, view="day", sort="gold_accuracy", order="desc")
    assert list(by_day) == [("bob", T0.date()), ("alice", T0.date())]
    query = quality.quality_query_parse({"end": "2026-11-20", "days": "7", "sort": "median_seconds"},
                                        today=T0.date())
    assert [row.reviewer for row in quality.quality_report(query)] == ["bob", "alice"]  # 35 s before 40 s
    query = quality.quality_query_parse({"end": "2026-11-20", "days": "7", "sort": "acceptance_rate",
                                         "order": "desc"}, today=T0.date())
    assert [row.reviewer for row in quality.quality_report(query)] == ["alice", "bob"]  # n/a last


@pytest.mark.parametrize("params", [{"days": "0"}, {"days": "x"}, {"end": "2026-13-01"}, {"view": "week"},
                                    {"sort": "password"}, {"order": "up"}, {"project": "nope"}])
def test_bad_parameters_are_refused(db, params):
    from reviews.errors import InvalidInput

    with pytest.raises(InvalidInput):
        quality.quality_query_parse(params, today=T0.date())


def test_supervisors_see_the_quality_page_sorted_and_audited_once(seeded, sam):
    client = session_client(sam)
    before = AuditEvent.objects.count()
    response = client.get("/console/quality/?project=demo&end=2026-11-20&days=7&sort=gold_accuracy&order=desc")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.index('data-reviewer="bob"') < html.index('data-reviewer="alice"')
    assert 'aria-sort="descending"' in html and "<svg" in html and "<polyline" in html
    assert "70%" in html and "n/a" in html
    assert not any(text.lower() in html.lower() for text in ("kitchen", "timer"))  # figures, never text
    assert list(AuditEvent.objects.filter(id__gt=AuditEvent.objects.order_by("id")[before - 1].id)
                .values_list("action", flat=True)) == ["console.quality"]
    assert client.get("/console/quality/?days=500").status_code == 400
    by_day = client.get("/console/quality/?view=day&end=2026-11-20").content.decode()
    assert "2026-11-20" in by_day


def test_the_quality_api_answers_json(seeded, sam):
    response = session_client(sam).get("/api/v1/quality/?project=demo&end=2026-11-20&days=1")
    assert response.status_code == 200
    body = response.json()
    assert body["project"] == "demo" and body["start"] == body["end"] == "2026-11-20"
    alice = next(row for row in body["results"] if row["reviewer"] == "alice")
    assert alice["gold_accuracy"] == 0.7 and alice["acceptance_rate"] == 0.5 and alice["clips_per_day"] == [3]
    assert session_client(sam).get("/api/v1/quality/?days=-1").json()["code"] == "invalid_filters"
    # The API leaves a parameter out for its default; sent empty, padded or loosely written it is refused.
    for bad in ("end=", "project=", "days=%205", "end=2026-1-5", "view="):
        assert session_client(sam).get(f"/api/v1/quality/?{bad}").status_code == 400, bad
    # The page's form sends its empty fields: those mean the defaults there.
    assert session_client(sam).get("/console/quality/?project=&days=&end=&view=reviewer").status_code == 200


# --- Part 4: pauses -------------------------------------------------------------------------------------

@pytest.fixture
def strict(project, ingest):
    project.gold_rate = Decimal("1")
    project.min_gold_accuracy = Decimal("0.8")
    project.min_gold_samples = 2
    project.save()
    ingest(4)
    return [gold(ingest, text) for text in (GOLD_ONE, GOLD_TWO, "call mum")]


def test_a_reviewer_below_the_minimum_is_paused_once_and_told_why(strict, alice, bob):
    client = session_client(alice)
    first = client.post("/api/v1/assignments/next/").json()
    submit(client, first, "nonsense words", {"speaker": ["child"]})
    assert not ReviewerPause.objects.exists()  # one gold result is not enough (min_gold_samples = 2)
    second = client.post("/api/v1/assignments/next/").json()
    submit(client, second, "more nonsense", {"speaker": ["child"]})
    pause = ReviewerPause.objects.get()
    assert pause.reviewer == alice and pause.lifted_at is None and pause.gold_count == 2
    [event] = AuditEvent.objects.filter(action="reviewer.pause")
    assert event.details["reviewer"] == "alice" and event.details["threshold"] == "0.8000"
    assert event.details["accuracy"] < 0.8 and event.object_id == str(alice.pk)

    refused = client.post("/api/v1/assignments/next/")
    assert refused.status_code == 429
    body = refused.json()
    assert body["code"] == "reviewer_paused" and "paused" in body["detail"] and "80%" in body["detail"]
    assert client.post("/api/v1/assignments/next/").status_code == 429
    assert AuditEvent.objects.filter(action="reviewer.pause").count() == 1  # audited when it happens, once
    assert session_client(bob).post("/api/v1/assignments/next/").status_code == 201  # only alice
    no_text_in_the_trail()


def test_an_admin_lifts_the_pause_and_the_reviewer_starts_afresh(strict, alice, ada):
    for text in ("nonsense", "nonsense"):
        assignment = leases.assignment_next(reviewer=alice)
        services.transcription_submit(reviewer=alice, assignment_id=assignment.pk, text=text, labels=ADULT)
    pause = ReviewerPause.objects.get()
    admin = session_client(ada)
    response = admin.post("/admin/reviews/reviewerpause/", {"action": "pauses_lift",
                                                            "_selected_action": [str(pause.pk)]})
    assert response.status_code == 302
    pause.refresh_from_db()
    assert pause.lifted_at is not None and pause.lifted_by == ada
    assert AuditEvent.objects.filter(action="reviewer.unpause").count() == 1
    third = leases.assignment_next(reviewer=alice)
    assert third.clip.is_gold  # leasing again (gold rate 1)
    services.transcription_submit(reviewer=alice, assignment_id=third.pk, text="call mum", labels=ADULT)
    assert ReviewerPause.objects.filter(lifted_at__isnull=True).count() == 0  # old results no longer count


def test_a_pause_ends_other_live_leases_on_the_project(strict, alice):
    from reviews.models import QuotaDefaults

    QuotaDefaults.objects.update(live_assignments=2)
    first = leases.assignment_next(reviewer=alice)
    services.transcription_submit(reviewer=alice, assignment_id=first.pk, text="nonsense", labels=ADULT)
    second = leases.assignment_next(reviewer=alice)
    held = leases.assignment_next(reviewer=alice, another=True)
    services.transcription_submit(reviewer=alice, assignment_id=second.pk, text="nonsense", labels=ADULT)
    held.refresh_from_db()
    assert ReviewerPause.objects.exists() and held.status == "revoked"


def test_no_minimum_means_no_pause(project, ingest, alice):
    project.gold_rate = Decimal("1")
    project.save()
    ingest(3)
    gold(ingest)
    gold(ingest, GOLD_TWO)
    for _ in range(2):
        assignment = leases.assignment_next(reviewer=alice)
        services.transcription_submit(reviewer=alice, assignment_id=assignment.pk, text="nonsense", labels=ADULT)
    assert not ReviewerPause.objects.exists()


# --- Part 4: admins mark gold ---------------------------------------------------------------------------

def test_admins_mark_gold_with_a_reference_audited_once_per_clip(project, ingest, ada):
    clips = ingest(2)
    admin = session_client(ada)
    selected = [str(clip.pk) for clip in clips]
    form = admin.post("/admin/reviews/clip/", {"action": "clips_gold", "_selected_action": selected})
    assert form.status_code == 200 and "Reference transcript" in form.content.decode()
    before = AuditEvent.objects.order_by("-id").first().id
    data = {"action": "clips_gold", "_selected_action": selected, "post": "yes",
            f"gold_{clips[0].pk}": "on", f"gold_text_{clips[0].pk}": GOLD_ONE,
            f"gold_label_{clips[0].pk}_speaker": "adult", f"gold_label_{clips[0].pk}_issues": ["background-speech"]}
    assert admin.post("/admin/reviews/clip/", data).status_code == 302
    marked, plain = (Clip.objects.get(pk=clip.pk) for clip in clips)
    assert marked.is_gold and marked.gold_text == GOLD_ONE
    assert marked.gold_labels == {"speaker": ["adult"], "issues": ["background-speech"]}
    assert not plain.is_gold
    new = list(AuditEvent.objects.filter(id__gt=before).order_by("id"))
    assert [(e.action, e.clip_id) for e in new] == [("clip.gold", marked.pk), ("clip.gold", plain.pk)]
    assert new[0].details == {"is_gold": True, "was_gold": False, "text_chars": len(GOLD_ONE), "label_groups": 2}
    no_text_in_the_trail()

    # A label the project does not have: nothing changes, the form says why.
    data[f"gold_label_{clips[0].pk}_speaker"] = "robot"
    refused = admin.post("/admin/reviews/clip/", data)
    assert refused.status_code == 400 and AuditEvent.objects.filter(action="clip.gold").count() == 2


def test_unmarking_a_gold_clip_makes_it_ordinary(project, ingest, ada, alice):
    project.gold_rate = Decimal("1")
    project.save()
    ingest(1)
    clip = gold(ingest)
    assignment = leases.assignment_next(reviewer=alice)
    services.transcription_submit(reviewer=alice, assignment_id=assignment.pk, text="x", labels=ADULT)
    quality.clip_gold_set(actor=ada, clip_id=clip.pk, is_gold=False)
    clip.refresh_from_db()
    assert not clip.is_gold and clip.gold_text == "" and clip.status == "done"  # it had its one transcription
