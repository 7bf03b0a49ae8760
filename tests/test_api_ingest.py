"""POST /api/v1/clips/: the service token adds clips; bad input stores nothing."""


import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from reviews.models import AuditEvent, Clip
from tests.conftest import events, session_client, speech_bytes, tone_bytes

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
    payload = {"truncated": tone_bytes(2.0)[:20000], "long": tone_bytes(61.0, "flac"),
               "speech": speech_bytes()}.get(audio, audio) if isinstance(audio, str) else audio
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
    from reviews import services

    def broken(**kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(services, "audit_record", broken)
    response = post(ingest_client, speech_bytes())
    assert response.status_code == 500
    assert response.json() == {"code": "server_error", "detail": "Something went wrong on our side."}
    assert Clip.objects.count() == 0
    assert media_files(_isolated_media) == []
