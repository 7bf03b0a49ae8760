"""Shared test helpers: people, sessions, real audio, the audit trail, races and the browser.
Fixtures live in conftest.py; everything here is a plain function or constant to import."""

import io
import shutil
from pathlib import Path

from django.contrib.auth import get_user_model
from pydub import AudioSegment
from pydub.generators import Sine, WhiteNoise
from rest_framework.test import APIClient

from reviews import permissions
from reviews.models import AuditEvent

FIXTURE_CLIPS = Path(__file__).resolve().parent.parent / "reviews" / "fixtures" / "demo_clips"
PASSWORD = "correct horse battery staple"
INGEST_TOKEN = "test-ingest-token"
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"


def speech_bytes(name: str = "clip01.flac") -> bytes:
    return (FIXTURE_CLIPS / name).read_bytes()


def export_bytes(segment: AudioSegment, fmt: str = "wav", **kwargs) -> bytes:
    buffer = io.BytesIO()
    segment.export(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def tone_bytes(seconds: float = 2.0, fmt: str = "wav") -> bytes:
    tone = Sine(220).to_audio_segment(duration=int(seconds * 1000), volume=-12)
    noise = WhiteNoise().to_audio_segment(duration=int(seconds * 1000), volume=-40)
    return export_bytes(tone.overlay(noise).set_frame_rate(16000).set_channels(1), fmt)


def make_user(username: str, role: str | None):
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role == "admin":
        user.is_staff = user.is_superuser = True
        user.save()
    elif role:
        user.groups.add(permissions.role_group(role))
    return user


def totp_device(user):
    from django_otp.plugins.otp_totp.models import TOTPDevice

    return TOTPDevice.objects.filter(user=user, confirmed=True).first() or TOTPDevice.objects.create(
        user=user, name="test", confirmed=True)


def totp_now(user) -> str:
    """The current code of the user's authenticator, as their phone would show it."""
    from django_otp.oath import totp

    device = totp_device(user)
    return f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"


def session_client(user, *, verified: bool = True) -> APIClient:
    """A signed-in browser session; ``verified`` adds a confirmed second factor to it."""
    from django_otp import DEVICE_ID_SESSION_KEY

    client = APIClient(enforce_csrf_checks=False)
    client.force_login(user)
    if verified and permissions.mfa_required(user):
        session = client.session
        session[DEVICE_ID_SESSION_KEY] = totp_device(user).persistent_id
        session.save()
    return client


def events(action: str | None = None, **filters):
    queryset = AuditEvent.objects.all()
    if action:
        queryset = queryset.filter(action=action)
    return list(queryset.filter(**filters))


def sign_in(page, live_server, username: str):
    page.goto(f"{live_server.url}/accounts/login/")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()


def wait_js(page, expression: str, timeout: float = 10.0):
    """Poll a JS expression until it is truthy. (Playwright's wait_for_function compiles
    its predicate with eval, which the app's Content-Security-Policy rightly forbids.)"""
    import time

    deadline = time.monotonic() + timeout
    while True:
        value = page.evaluate(expression)
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {expression}")
        page.wait_for_timeout(50)


def race(target, arguments: list[tuple]) -> list:
    """Run target(*args) for each tuple in its own thread, all released at once; return each
    result or the exception it raised. Every thread closes its own database connection."""
    import threading

    from django.db import connections

    results = [None] * len(arguments)
    barrier = threading.Barrier(len(arguments))

    def worker(index, args):
        try:
            barrier.wait()
            results[index] = target(*args)
        except Exception as exc:  # noqa: BLE001 - handed back to the test to assert on
            results[index] = exc
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(i, a)) for i, a in enumerate(arguments)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return results
