"""Audio that cannot be kept or shared: tokens, headers, CSP, no media route, no export."""

import secrets
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
import time_machine
from django.test import Client
from django.urls import get_resolver
from django.utils import timezone

from tests.helpers import events, session_client

ROOT = Path(__file__).resolve().parent.parent


def lease(client):
    return client.post("/api/v1/assignments/next/").json()


def token_for(client, assignment):
    return client.post(assignment["audio_token_url"]).json()["token"]


def test_token_replay_by_another_user_fails(project, ingest, alice, bob):
    ingest(2)
    alices, bobs = session_client(alice), session_client(bob)
    alice_assignment, bob_assignment = lease(alices), lease(bobs)
    stolen = token_for(alices, alice_assignment)
    # On alice's assignment bob is not the owner; on his own, the token is not his.
    assert bobs.get(alice_assignment["audio_url"], HTTP_X_AUDIO_TOKEN=stolen).status_code == 404
    assert bobs.get(bob_assignment["audio_url"], HTTP_X_AUDIO_TOKEN=stolen).status_code == 404
    reasons = [e.details["reason"] for e in events("access.denied")]
    assert reasons == ["not_owner", "bad_token"]


def test_token_expires_after_its_max_age(project, ingest, alice, settings):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    token = token_for(client, assignment)
    with time_machine.travel(timezone.now() + timedelta(seconds=settings.AUDIO_TOKEN_MAX_AGE + 1)):
        assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 404
    assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 200


def test_token_max_age_is_capped_at_two_minutes(settings):
    assert settings.AUDIO_TOKEN_MAX_AGE <= 120


def test_token_fails_once_the_lease_ends(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    token = token_for(client, assignment)
    client.post(f"/api/v1/assignments/{assignment['id']}/skip/", {"reason": "noise"}, format="json")
    assert client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 404
    assert events("access.denied")[-1].details["reason"] == "lease_ended"


def test_plays_per_clip_are_limited_and_audited(project, ingest, alice):
    from reviews.models import ReviewerQuota

    ingest(1)
    ReviewerQuota.objects.create(reviewer=alice, plays_per_clip=2)
    client = session_client(alice)
    assignment = lease(client)
    statuses = [client.get(assignment["audio_url"], HTTP_X_AUDIO_TOKEN=token_for(client, assignment)).status_code
                for _ in range(3)]
    assert statuses == [200, 200, 429]
    assert len(events("audio.play")) == 2
    assert events("access.denied")[-1].details["reason"] == "quota_plays_per_clip"


@pytest.mark.parametrize("path", ["/accounts/login/", "/workspace/", "/api/v1/me/progress/", "/nope/",
                                  "/api/v1/assignments/next/"])
def test_every_response_carries_the_security_policy(project, alice, path):
    response = session_client(alice).get(path)
    policy = response["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy
    assert "media-src 'self' blob:" in policy
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"
    assert response["X-Frame-Options"] == "DENY"
    assert "Access-Control-Allow-Origin" not in response


def test_no_route_serves_media_or_exports():
    patterns = []

    def walk(resolver, prefix=""):
        for entry in resolver.url_patterns:
            if hasattr(entry, "url_patterns"):
                walk(entry, prefix + str(entry.pattern))
            else:
                patterns.append(prefix + str(entry.pattern))

    walk(get_resolver())
    assert not [p for p in patterns if "media" in p or "export" in p or "download" in p]
    assert Client().get("/media/clips/anything.mp3").status_code == 404


def test_pages_have_no_inline_script(project, alice):
    html = session_client(alice).get("/workspace/").content.decode()
    assert "<script>" not in html and " on" + "click=" not in html
    assert html.count("<script") == html.count('<script src="')


def test_production_settings_pass_the_deploy_check():
    env = {
        "ANNOTATOR_ENV": "production", "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "PSEUDONYM_KEY": secrets.token_urlsafe(32), "AUDIT_CHECKPOINT_KEY": secrets.token_urlsafe(32),
        "AUDIT_CHAIN_KEY": secrets.token_urlsafe(32), "ALLOWED_HOSTS": "annotator.example.org", "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"], cwd=ROOT, env=env,
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_the_demo_secrets():
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env={"ANNOTATOR_ENV": "production", "PATH": "/usr/bin"},
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode != 0 and "DJANGO_SECRET_KEY must be set in production" in result.stderr
