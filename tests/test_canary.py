"""Planted identifiers must not survive ingest anywhere: tables, media, responses, pages, logs."""

import hashlib
import logging
import subprocess

from django.db import connection
from django.test import Client

from tests.helpers import PASSWORD, speech_bytes

CANARIES = {
    "account_id": "CANARY-ACCT-77310452",
    "first_name": "Zebedeeqx",
    "device_serial": "CANARY-SN-99812-XK",
    "recorded_at": "2026-11-20T08:15:02.123456+00:00",
}
# Parts of the exact time that must not survive coarsening to the day.
TIME_CANARIES = ["08:15:02", "081502", "15:02.123456"]


def tagged_upload() -> bytes:
    """Speech whose container tags carry the identifiers too, as a careless client might send."""
    return subprocess.run(
        ["ffmpeg", "-v", "error", "-i", "pipe:0", "-metadata", f"title={CANARIES['first_name']}",
         "-metadata", f"comment={CANARIES['account_id']}", "-metadata", f"artist={CANARIES['device_serial']}",
         "-f", "ogg", "-c:a", "libvorbis", "pipe:1"],
        input=speech_bytes(), capture_output=True, check=True,
    ).stdout


def database_text() -> str:
    chunks = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')  # noqa: S608 - table names from introspection
            chunks.extend(repr(row) for row in cursor.fetchall())
    return "\n".join(chunks)


def test_planted_identifiers_appear_nowhere(project, ingest_client, alice, _isolated_media, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="django")
    connection.force_debug_cursor = True  # log every SQL statement with its parameters
    try:
        responses = []
        from django.core.files.uploadedfile import SimpleUploadedFile

        ingested = ingest_client.post(
            "/api/v1/clips/",
            {"audio": SimpleUploadedFile(f"{CANARIES['first_name']}.ogg", tagged_upload()), "project": "demo",
             "locale": "en-GB", **CANARIES},
            format="multipart",
        )
        assert ingested.status_code == 201, ingested.content
        responses.append(ingested.content)

        browser = Client()
        login = browser.post("/accounts/login/", {"username": "alice", "password": PASSWORD})
        assert login.status_code == 302
        page = browser.get("/workspace/")
        assert page.status_code == 200
        responses.append(page.content)
        csrf = page.context["csrf_token"]
        headers = {"HTTP_X_CSRFTOKEN": csrf}
        leased = browser.post("/api/v1/assignments/next/", content_type="application/json", **headers)
        assert leased.status_code == 201
        responses.append(leased.content)
        assignment = leased.json()
        responses.append(browser.get(f"/api/v1/assignments/{assignment['id']}/").content)
        token = browser.post(assignment["audio_token_url"], content_type="application/json", **headers)
        responses.append(token.content)
        audio = browser.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token.json()["token"])
        assert audio.status_code == 200
        responses.append(audio.content)
        responses.append(str(dict(audio.headers)).encode())
        submitted = browser.post(f"/api/v1/assignments/{assignment['id']}/submit/",
                                 {"text": "play some jazz", "labels": {"speaker": ["adult"]}},
                                 content_type="application/json", **headers)
        assert submitted.status_code == 201
        responses.append(submitted.content)
    finally:
        connection.force_debug_cursor = False

    stored = database_text()
    media = b"".join(p.read_bytes() for p in _isolated_media.rglob("*") if p.is_file())
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "INSERT INTO" in logs  # the SQL log really was captured
    assert len(media) > 5000

    for field, canary in CANARIES.items():
        needles = [canary] if field != "recorded_at" else TIME_CANARIES
        for needle in needles:
            assert needle not in stored, f"{field} in the database"
            assert needle.encode() not in media, f"{field} in a media file"
            assert all(needle.encode() not in body for body in responses), f"{field} in a response"
            assert needle not in logs, f"{field} in the logs"
    # Only a keyed pseudonym remains: not the plain hash anyone could recompute.
    plain = hashlib.sha256(CANARIES["account_id"].encode()).hexdigest()
    assert plain not in stored
    assert "datetime.date(2026, 11, 20)" in stored  # the day survives, the time does not
