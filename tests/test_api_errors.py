"""JSON errors everywhere under /api/, health checks, and the production delivery modes."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import OperationalError
from rest_framework.test import APIClient

from tests.helpers import events, session_client

ROOT = Path(__file__).resolve().parent.parent


def assert_error(response, status, code):
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == code and body["detail"] and "Traceback" not in response.content.decode()


def test_unknown_api_path_is_json_404(alice):
    assert_error(session_client(alice).get("/api/v1/no-such-thing/"), 404, "not_found")
    assert_error(APIClient().get("/api/v2/"), 404, "not_found")


def test_wrong_method_and_media_type(project, alice):
    client = session_client(alice)
    assert_error(client.get("/api/v1/assignments/next/"), 405, "method_not_allowed")
    assert_error(client.post("/api/v1/assignments/next/", "x=1", content_type="text/plain"), 415,
                 "unsupported_media_type")


def test_oversized_json_body_is_413(project, alice, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = session_client(alice).put(
        "/api/v1/assignments/00000000-0000-0000-0000-000000000000/draft/",
        json.dumps({"text": "x" * 5000, "version": 0}), content_type="application/json")
    assert response.status_code in (404, 413)  # ownership is checked before the body is read
    client = session_client(alice)
    assert_error(client.post("/api/v1/assignments/next/", json.dumps({"another": "x" * 5000}),
                             content_type="application/json"), 413, "request_too_large")


@pytest.mark.parametrize("shape", ["fields", "files"])
def test_more_form_fields_or_files_than_django_parses_is_a_400_not_a_500(project, ingest_client, shape):
    from django.core.files.uploadedfile import SimpleUploadedFile

    if shape == "fields":
        body = {f"field{i}": "x" for i in range(1200)}
    else:
        body = {f"file{i}": SimpleUploadedFile(f"{i}.wav", b"RIFF") for i in range(120)}
    assert_error(ingest_client.post("/api/v1/clips/", body, format="multipart"), 400, "bad_request")


def test_an_unexpected_error_is_a_bare_json_500(project, alice, monkeypatch):
    from reviews import leases

    monkeypatch.setattr(leases, "assignment_next", lambda **kw: 1 / 0)
    assert_error(session_client(alice).post("/api/v1/assignments/next/"), 500, "server_error")


def test_a_database_outage_is_a_json_503(project, alice, monkeypatch):
    from reviews import leases

    def down(**kwargs):
        raise OperationalError("connection refused")

    monkeypatch.setattr(leases, "assignment_next", down)
    response = session_client(alice).post("/api/v1/assignments/next/")
    assert_error(response, 503, "database_unavailable")
    assert response["Retry-After"] == "5"


def test_healthz_reports_database_and_storage_and_nothing_else(db, monkeypatch):
    response = APIClient().get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    def broken(self, name):
        raise OSError("disk gone")

    monkeypatch.setattr("django.core.files.storage.FileSystemStorage.exists", broken)
    response = APIClient().get("/healthz")
    assert response.status_code == 503 and response.json() == {"status": "unavailable"}
    assert events() == []  # not audited


def test_x_accel_mode_sends_no_audio_bytes(project, ingest, alice, settings):
    settings.AUDIO_DELIVERY = "x-accel"
    [clip] = ingest(1)
    client = session_client(alice)
    assignment = client.post("/api/v1/assignments/next/").json()
    token = client.post(assignment["audio_token_url"]).json()["token"]
    response = client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token)
    assert response.status_code == 200 and response.content == b""
    assert response["X-Accel-Redirect"] == "/internal-audio/" + clip.audio.name
    assert response["Cache-Control"] == "no-store, private" and response["Content-Disposition"] == "inline"
    # The internal location exists only inside the proxy: Django has no route for it.
    assert client.get(response["X-Accel-Redirect"]).status_code == 404
    # Without the token there is no redirect at all.
    assert "X-Accel-Redirect" not in client.get(assignment["audio_url"])
    assert len(events("audio.play")) == 1


def test_audio_in_s3_compatible_storage(project, ingest, alice, settings):
    boto3 = pytest.importorskip("boto3")
    moto = pytest.importorskip("moto")
    with moto.mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="clips")
        settings.STORAGES = {**settings.STORAGES, "default": {
            "BACKEND": "storages.backends.s3.S3Storage",
            "OPTIONS": {"bucket_name": "clips", "region_name": "us-east-1", "default_acl": "private",
                        "file_overwrite": False, "querystring_auth": True, "querystring_expire": 60}}}
        [clip] = ingest(1)
        [stored] = s3.list_objects_v2(Bucket="clips")["Contents"]
        assert stored["Key"] == clip.audio.name
        grants = s3.get_object_acl(Bucket="clips", Key=clip.audio.name)["Grants"]
        assert not [g for g in grants if "AllUsers" in str(g.get("Grantee"))]
        client = session_client(alice)
        assignment = client.post("/api/v1/assignments/next/").json()
        token = client.post(assignment["audio_token_url"]).json()["token"]
        response = client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token)
        assert response.status_code == 200 and response.content[:2] in (b"\xff\xf3", b"\xff\xfb", b"\xff\xf2")


def test_redis_is_the_shared_cache_when_configured():
    code = ("from django.core.cache import caches; import uuid; k = uuid.uuid4().hex; c = caches['default']; "
            "c.set(k, 'v', 5); print(type(c).__name__, c.get(k))")
    result = subprocess.run([sys.executable, "manage.py", "shell", "-c", code], cwd=ROOT, capture_output=True,
                            text=True, timeout=60, env={"REDIS_URL": "redis://127.0.0.1:6379/0", "PATH": "/usr/bin"})
    assert result.stdout.strip().splitlines()[-1] == "RedisCache v", result.stderr[-500:]


def test_json_endpoints_refuse_form_bodies(project, alice):
    """Found by schemathesis: a multipart body on "next" was read as an empty form and accepted."""
    client = session_client(alice)
    response = client.post("/api/v1/assignments/next/", {"another": "x"}, format="multipart")
    assert_error(response, 415, "unsupported_media_type")
    assert client.post("/api/v1/assignments/next/").status_code in (201, 204)  # no body at all is fine
