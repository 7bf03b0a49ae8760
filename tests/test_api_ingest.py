"""POST /api/v1/clips/: the service token adds clips; bad input stores nothing."""


import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reviews.models import AuditEvent, Clip
from tests.helpers import events, session_client, speech_bytes, tone_bytes

GOOD = {"project": "demo", "account_id": "ACCT-1", "first_name": "Ann", "device_serial": "SN-1",
        "recorded_at": "2026-11-20T08:15:02Z", "locale": "en-US"}


def post(client, audio: bytes | None = b"", **fields):
    data = {**GOOD, **fields}
    if audio is not None:
        data["audio"] = SimpleUploadedFile("upload.bin", audio, content_type="application/octet-stream")
    return client.post("/api/v1/clips/", data, format="multipart")


def media_files(media):
    return [p for p in media.rglob("*") if p.is_file()]


def test_ingest_service_adds_a_clip(ingest_client, project, _isolated_media):
    response = post(ingest_client, speech_bytes())
    assert response.status_code == 201, response.content
    body = response.json()
    assert set(body) == {"id", "duration_ms"}
    clip = Clip.objects.get()
    assert str(clip.pk) == body["id"] and clip.status == "open"
    assert clip.recorded_on.isoformat() == "2026-11-20" and clip.locale == "en-US"
    assert len(clip.subject_key) == 64
    [stored] = media_files(_isolated_media)
    assert stored.read_bytes()[:2] in (b"\xff\xf3", b"\xff\xfb", b"\xff\xf2")  # a bare MP3 frame, no tag
    [event] = events("clip.ingest")
    assert event.outcome == "allowed" and event.role == "service" and event.clip_id == clip.pk


def test_same_account_gets_the_same_pseudonym_and_another_gets_another(ingest_client, project):
    for account in ("ACCT-1", "ACCT-1", "ACCT-2"):
        assert post(ingest_client, speech_bytes(), account_id=account).status_code == 201
    keys = list(Clip.objects.order_by("ingested_at").values_list("subject_key", flat=True))
    assert keys[0] == keys[1] != keys[2]


@pytest.mark.parametrize(
    "audio, fields, status, code",
    [
        (b"not audio at all" * 10, {}, 415, "not_audio"),
        (None, {}, 400, "invalid_metadata"),
        (b"", {}, 400, "invalid_metadata"),
        ("truncated", {}, 422, "corrupt_audio"),
        ("long", {}, 422, "audio_too_long"),
        ("speech", {"account_id": ""}, 400, "invalid_metadata"),
        ("speech", {"recorded_at": "yesterday"}, 400, "invalid_metadata"),
        ("speech", {"recorded_at": "2026-11-20T08:15:02"}, 400, "invalid_metadata"),
        ("speech", {"locale": "english please"}, 400, "invalid_metadata"),
        ("speech", {"project": "nope"}, 400, "unknown_project"),
    ],
    ids=["not-audio", "no-file", "empty-file", "truncated", "too-long", "no-account", "bad-time", "naive-time",
         "bad-locale", "unknown-project"],
)
def test_bad_input_gets_a_clear_error_and_stores_nothing(ingest_client, project, _isolated_media, audio, fields,
                                                          status, code):
    # Only the case's own audio is made: a 61 s tone for every case cost seconds each.
    payload = {"truncated": lambda: tone_bytes(2.0)[:20000], "long": lambda: tone_bytes(61.0, "flac"),
               "speech": speech_bytes}[audio]() if isinstance(audio, str) else audio
    response = post(ingest_client, payload, **fields)
    assert response.status_code == status, response.content
    body = response.json()
    assert body["code"] == code and body["detail"]
    assert "ACCT-1" not in response.content.decode()
    assert Clip.objects.count() == 0
    assert media_files(_isolated_media) == []


def test_oversized_upload_is_refused_before_it_is_read(ingest_client, project, settings, _isolated_media):
    settings.INGEST_MAX_BYTES = 10_000
    response = post(ingest_client, tone_bytes(5.0))
    assert response.status_code == 413 and response.json()["code"] == "file_too_large"
    assert Clip.objects.count() == 0 and media_files(_isolated_media) == []


def test_refused_ingest_is_audited_without_the_identifiers(ingest_client, project):
    post(ingest_client, b"garbage" * 50)
    [event] = events("clip.ingest")
    assert event.outcome == "denied" and event.details == {"code": "not_audio"}


@pytest.mark.parametrize("who", ["anonymous", "alice", "sam", "ada", "bad-token"])
def test_only_the_ingest_service_may_add_clips(who, project, alice, sam, ada, ingest_user):
    from rest_framework.test import APIClient

    if who == "anonymous":
        client = APIClient()
    elif who == "bad-token":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token wrong-token")
    else:
        client = session_client({"alice": alice, "sam": sam, "ada": ada}[who])
    response = post(client, speech_bytes())
    assert response.status_code in (401, 404)
    assert response.status_code == (404 if who in ("alice", "sam", "ada") else 401)
    assert Clip.objects.count() == 0
    [event] = events("access.denied")
    assert event.outcome == AuditEvent.Outcome.DENIED and event.details["attempted"] == "clip.ingest"


def test_a_database_failure_after_encoding_leaves_no_file(ingest_client, project, _isolated_media, monkeypatch):
    from reviews import ingest

    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(ingest, "audit_record", broken)
    response = post(ingest_client, speech_bytes())
    assert response.status_code == 500
    assert response.json() == {"code": "server_error", "detail": "Something went wrong on our side."}
    assert Clip.objects.count() == 0
    assert media_files(_isolated_media) == []


# --- Impossible dates: a clear 400 on recorded_at, never a server error ----------------------

IMPOSSIBLE_DATES = {
    "month-13": "2026-13-01T08:15:02Z",
    "february-30": "2026-02-30T08:15:02Z",
    "hour-24": "2026-11-20T24:00:00Z",
    "offset-25h": "2026-11-20T08:15:02+25:00",
    "year-1-positive-offset": "0001-01-01T00:00:00+01:00",
}


@pytest.mark.parametrize("recorded_at", list(IMPOSSIBLE_DATES.values()), ids=list(IMPOSSIBLE_DATES))
def test_impossible_date_is_a_field_error_and_stores_nothing(ingest_client, project, _isolated_media, recorded_at):
    response = post(ingest_client, speech_bytes(), recorded_at=recorded_at)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_metadata" and body["detail"]
    assert set(body["fields"]) == {"recorded_at"}
    assert recorded_at not in response.content.decode()  # the submitted value is never echoed
    assert Clip.objects.count() == 0 and media_files(_isolated_media) == []
    [event] = events("clip.ingest")
    assert event.outcome == "denied" and event.details == {"code": "invalid_metadata", "fields": ["recorded_at"]}


@pytest.mark.parametrize(
    "recorded_at",
    ["1999-12-31T23:59:59Z", "2000-01-01T00:30:00+01:00", "2026-12-03T00:00:01Z", "9999-12-31T23:59:59-01:00",
     "2026-11-20T08:15:02", "2026-11-20", "", "   "],
    ids=["before-2000", "before-2000-in-utc", "two-days-ahead", "year-9999-negative-offset", "no-zone", "date-only",
         "empty", "blank"],
)
def test_recorded_at_must_be_a_plausible_moment_with_a_zone(ingest_client, project, _isolated_media, recorded_at,
                                                             time_machine):
    time_machine.move_to("2026-12-01T12:00:00Z", tick=False)
    response = post(ingest_client, speech_bytes(), recorded_at=recorded_at)
    assert response.status_code == 400, response.content
    assert response.json()["code"] == "invalid_metadata" and set(response.json()["fields"]) == {"recorded_at"}
    assert Clip.objects.count() == 0 and media_files(_isolated_media) == []


@pytest.mark.parametrize("recorded_at, day", [("2000-01-01T00:00:00Z", "2000-01-01"),
                                              ("2026-12-02T11:00:00Z", "2026-12-02"),
                                              ("2026-11-20T23:30:00-05:00", "2026-11-21")])
def test_recorded_at_at_the_edges_of_the_range_is_accepted(ingest_client, project, recorded_at, day, time_machine):
    time_machine.move_to("2026-12-01T12:00:00Z", tick=False)
    response = post(ingest_client, speech_bytes(), recorded_at=recorded_at)
    assert response.status_code == 201, response.content
    assert Clip.objects.get().recorded_on.isoformat() == day  # coarsened to the UTC day


# --- Audio only ------------------------------------------------------------------------------

def test_a_video_with_a_sound_track_is_refused(ingest_client, project, _isolated_media, tmp_path):
    from tests.test_audio import video_with_audio_bytes

    response = post(ingest_client, video_with_audio_bytes(tmp_path))
    assert response.status_code == 415, response.content
    assert response.json()["code"] == "not_audio"
    assert Clip.objects.count() == 0 and media_files(_isolated_media) == []
    [event] = events("clip.ingest")
    assert event.outcome == "denied" and event.details == {"code": "not_audio"}


# --- The shape of the multipart body --------------------------------------------------------

def post_parts(client, parts: list[tuple[str, object]]):
    """Post repeated or odd parts as they are: the test client sends a list as repeated parts."""
    data = {}
    for name, value in parts:
        data.setdefault(name, []).append(value)
    return client.post("/api/v1/clips/", data, format="multipart")


def upload(content: bytes, name: str = "a.flac"):
    return SimpleUploadedFile(name, content, content_type="application/octet-stream")


@pytest.mark.parametrize(
    "audio_parts",
    [[], [("audio", "")], [("audio", "not a file")], [("audio", "x"), ("audio", None)], [(None, None), (None, None)],
     [("Audio", None)]],
    ids=["missing", "empty-text", "text-field", "text-and-file", "two-files", "other-name"],
)
def test_the_audio_part_must_be_exactly_one_file(ingest_client, project, _isolated_media, audio_parts):
    parts = [(k, v) for k, v in GOOD.items()]
    for name, value in audio_parts:
        parts.append((name or "audio", upload(speech_bytes()) if value is None else value))
    response = post_parts(ingest_client, parts)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_metadata" and set(body["fields"]) == {"audio"}
    assert Clip.objects.count() == 0 and media_files(_isolated_media) == []
    [event] = events("clip.ingest")
    assert event.outcome == "denied" and event.details == {"code": "invalid_metadata", "fields": ["audio"]}


def test_an_empty_file_is_a_field_error(ingest_client, project):
    response = post(ingest_client, b"")
    assert response.status_code == 400 and response.json()["fields"] == {"audio": "The file is empty."}


def test_a_field_sent_twice_is_refused_not_guessed(ingest_client, project, _isolated_media):
    parts = [(k, v) for k, v in GOOD.items()] + [("account_id", "ACCT-2"), ("audio", upload(speech_bytes()))]
    response = post_parts(ingest_client, parts)
    assert response.status_code == 400, response.content
    assert response.json()["fields"] == {"account_id": "Send this field once."}
    assert Clip.objects.count() == 0


def test_unknown_fields_are_ignored_and_never_stored(ingest_client, project):
    response = post(ingest_client, speech_bytes(), subject_key="0" * 64, email="ann@example.org")
    assert response.status_code == 201, response.content
    assert Clip.objects.get().subject_key != "0" * 64


def test_every_field_error_is_reported_at_once_without_the_values(ingest_client, project):
    response = post(ingest_client, b"", project="nope", account_id="", locale="english please",
                    recorded_at="2026-02-30T08:15:02Z", first_name="Ann" * 40)
    assert response.status_code == 400
    body = response.json()
    # An unknown project among other errors is one more field error, not a different code.
    assert body["code"] == "invalid_metadata"
    assert set(body["fields"]) == {"audio", "project", "account_id", "locale", "recorded_at", "first_name"}
    for echoed in ("nope", "english please", "2026-02-30", "AnnAnn"):
        assert echoed not in response.content.decode()
    [event] = events("clip.ingest")
    assert event.details == {"code": "invalid_metadata", "fields": sorted(body["fields"])}


def test_unknown_project_alone_keeps_its_own_code(ingest_client, project):
    response = post(ingest_client, speech_bytes(), project="nope")
    assert response.status_code == 400
    assert response.json() == {"code": "unknown_project", "detail": "No such project.",
                               "fields": {"project": "Unknown project."}}


# --- Issue 11: the recognizer's hypothesis and gold references at ingest --------------------

def test_the_hypothesis_and_a_gold_reference_are_stored_and_never_audited(ingest_client, project):
    response = post(ingest_client, speech_bytes(), asr_text=" turn of the light ", asr_confidence="0.82",
                    is_gold="true", gold_text="Turn off the lights.", gold_labels='{"speaker": "adult"}')
    assert response.status_code == 201, response.content
    clip = Clip.objects.get()
    assert clip.asr_text == "turn of the light" and clip.asr_confidence == 0.82
    assert clip.is_gold and clip.gold_text == "Turn off the lights." and clip.gold_labels == {"speaker": ["adult"]}
    [event] = events("clip.ingest")
    assert event.details == {"project": "demo", "duration_ms": clip.duration_ms, "asr": True, "gold": True}
    assert "light" not in str(event.details)


def test_the_new_fields_are_optional(ingest_client, project):
    assert post(ingest_client, speech_bytes(), asr_text="", asr_confidence="", is_gold="",
                gold_text="", gold_labels="").status_code == 201
    clip = Clip.objects.get()
    assert (clip.asr_text, clip.asr_confidence, clip.is_gold, clip.gold_text, clip.gold_labels) == ("", None, False,
                                                                                                   "", {})


@pytest.mark.parametrize("fields, field", [
    ({"asr_text": "x", "asr_confidence": "1.5"}, "asr_confidence"),
    ({"asr_text": "x", "asr_confidence": "nan"}, "asr_confidence"),
    ({"asr_text": "x", "asr_confidence": "high"}, "asr_confidence"),
    ({"asr_confidence": "0.5"}, "asr_confidence"),
    ({"asr_text": "x" * 5001}, "asr_text"),
    ({"is_gold": "maybe"}, "is_gold"),
    ({"gold_text": "secret reference"}, "gold_text"),
    ({"gold_labels": '{"speaker": ["adult"]}'}, "gold_labels"),
    ({"is_gold": "true", "gold_labels": "{not json"}, "gold_labels"),
    ({"is_gold": "true", "gold_labels": '["adult"]'}, "gold_labels"),
    ({"is_gold": "true", "gold_labels": '{"speaker": ["robot"]}'}, "gold_labels"),
    ({"is_gold": "true", "gold_labels": '{"mood": ["happy"]}'}, "gold_labels"),
    ({"is_gold": "true", "gold_labels": "[" * 3000}, "gold_labels"),
])
def test_inconsistent_or_malformed_content_is_a_field_error(ingest_client, project, _isolated_media, fields, field):
    response = post(ingest_client, speech_bytes(), **fields)
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["code"] == "invalid_metadata" and set(body["fields"]) == {field}
    assert "secret reference" not in response.content.decode() and "robot" not in response.content.decode()
    assert Clip.objects.count() == 0 and media_files(_isolated_media) == []


def test_the_demo_manifest_brings_hypotheses_and_two_gold_clips(project, ingest_user):
    from django.core.management import call_command

    from tests.helpers import FIXTURE_CLIPS

    call_command("ingest_clips", str(FIXTURE_CLIPS / "manifest.csv"), stdout=__import__("io").StringIO())
    clips = Clip.objects.all()
    assert clips.count() == 10 and all(clip.asr_text and clip.asr_confidence for clip in clips)
    gold = clips.filter(is_gold=True)
    assert gold.count() == 2 and {c.gold_labels["speaker"][0] for c in gold} == {"adult"}
    assert clips.filter(asr_text="bradley the news headlines please").exists()  # realistic errors
