"""Shared people and things: alice and bob (reviewers), sam (supervisor), ada (admin),
the ingest service token, a demo project with its label schema, and real audio."""

import io
import os
import shutil
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from pydub import AudioSegment
from pydub.generators import Sine, WhiteNoise
from rest_framework.test import APIClient

from reviews import permissions
from reviews.management.commands.seed_demo import DEMO_SCHEMA
from reviews.models import AuditEvent, Label, LabelGroup, LabelSchema, Project

def _flush_past_the_audit_triggers():
    """Transactional tests end with TRUNCATE, which the audit table's trigger refuses (as it
    should). The test harness flushes as a superuser with triggers off, exactly the power a
    tamper test has; the application never does this."""
    from django.db.backends.postgresql.operations import DatabaseOperations

    original = DatabaseOperations.execute_sql_flush

    def execute_sql_flush(self, sql_list):
        with self.connection.cursor() as cursor:
            cursor.execute("SET session_replication_role = replica")
        try:
            original(self, sql_list)
        finally:
            with self.connection.cursor() as cursor:
                cursor.execute("SET session_replication_role = DEFAULT")

    DatabaseOperations.execute_sql_flush = execute_sql_flush


_flush_past_the_audit_triggers()
FIXTURE_CLIPS = Path(__file__).resolve().parent.parent / "reviews" / "fixtures" / "demo_clips"
PASSWORD = "correct horse battery staple"
INGEST_TOKEN = "test-ingest-token"


@pytest.fixture(autouse=True)
def _isolated_media(settings, tmp_path):
    """Each test stores audio in its own folder, so file scans see only its files."""
    media = tmp_path / "media"
    media.mkdir()
    settings.STORAGES = {
        **settings.STORAGES,
        "default": {"BACKEND": "django.core.files.storage.FileSystemStorage",
                    "OPTIONS": {"location": str(media), "base_url": None}},
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    settings.MEDIA_ROOT = str(media)
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return media


@pytest.fixture(autouse=True)
def _sweep_on_next_lease():
    """Each test starts as a fresh process would: its first "next" sweeps overdue leases."""
    from reviews import services

    services._last_sweep_at = None


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


@pytest.fixture
def schema(db):
    label_schema = LabelSchema.objects.create(name="Assistant requests")
    for position, (key, name, kind, required, labels) in enumerate(DEMO_SCHEMA):
        group = LabelGroup.objects.create(schema=label_schema, key=key, name=name, kind=kind, required=required,
                                          position=position)
        for label_position, (label_key, label_name) in enumerate(labels):
            Label.objects.create(group=group, key=label_key, name=label_name, position=label_position)
    return label_schema


@pytest.fixture
def alice(db):
    return make_user("alice", permissions.REVIEWER)


@pytest.fixture
def bob(db):
    return make_user("bob", permissions.REVIEWER)


@pytest.fixture
def sam(db):
    return make_user("sam", permissions.SUPERVISOR)


@pytest.fixture
def ada(db):
    return make_user("ada", "admin")


@pytest.fixture
def ingest_user(db):
    user = get_user_model().objects.create_user(username="ingest")
    user.set_unusable_password()
    user.save()
    permissions.service_token_create(user, INGEST_TOKEN)
    return user


@pytest.fixture
def project(schema, alice, bob):
    demo = Project.objects.create(slug="demo", name="Demo", label_schema=schema)
    demo.members.add(alice, bob)
    return demo


@pytest.fixture
def ingest_client(ingest_user):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {INGEST_TOKEN}")
    return client


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


@pytest.fixture
def ingest(project, ingest_user):
    """Ingest speech clips through the real service; returns a function making n clips."""
    from reviews.ingest import clip_ingest

    def make(count: int = 1, **overrides):
        clips = []
        names = sorted(p.name for p in FIXTURE_CLIPS.iterdir() if p.suffix in {".flac", ".ogg"})
        for i in range(count):
            fields = {
                "project": project.slug, "account_id": f"ACCT-{i}", "first_name": "Test",
                "device_serial": f"SN-{i}", "recorded_at": "2026-11-20T08:15:02Z", "locale": "en-US",
                **overrides,
            }
            clips.append(clip_ingest(actor=ingest_user, data={**fields,
                                                              "audio": speech_bytes(names[i % len(names)])}))
        return clips

    return make


def events(action: str | None = None, **filters):
    queryset = AuditEvent.objects.all()
    if action:
        queryset = queryset.filter(action=action)
    return list(queryset.filter(**filters))


# --- Real browser (headless Chromium from Debian, driven by Playwright) -------------------
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"
# Playwright's sync API runs an event loop in this thread; the ORM calls in these
# tests are plain synchronous test code, so Django's async guard is lifted here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                  "--autoplay-policy=no-user-gesture-required"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and page.console_errors.append(f"{r.status} {r.url}"))
    yield page
    context.close()




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
