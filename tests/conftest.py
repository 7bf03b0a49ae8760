"""Fixtures: alice and bob (reviewers), sam (supervisor), ada (admin), the ingest service
token, a demo project with its label schema, real audio through the real ingest, and a
headless Chromium. Plain helpers are in tests/helpers.py."""

import hashlib
import os

import pytest
from django.contrib.auth import get_user_model
from rest_framework.test import APIClient

from reviews import permissions
from reviews.labels import label_schema_create
from reviews.management.commands.seed_demo import DEMO_SCHEMA
from reviews.models import Project
from tests.helpers import (  # noqa: F401 - re-exported: tests written before helpers.py import them from here
    CHROMIUM,
    DOCS,
    FIXTURE_CLIPS,
    INGEST_TOKEN,
    PASSWORD,
    events,
    export_bytes,
    make_user,
    race,
    session_client,
    sign_in,
    speech_bytes,
    tone_bytes,
    totp_device,
    totp_now,
    wait_js,
)


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


# --- What `make test-fast` leaves out (markers registered in pytest.ini) --------------------
# browser: marked in each tests/test_browser*.py. dsp: the audio pipeline and the disguise
# themselves. slow: races of many threads, subprocesses, the SQLite race; each proves
# something the inner loop does not touch. Every entry must match a test (checked below).
DSP = (
    "test_disguise.py", "test_audio.py",
    # ingest commands and the demo seed: dozens of clips through the real pipeline
    "test_commands.py::test_manifest_ingest_shows_progress_and_a_summary",
    "test_commands.py::test_folder_ingest_uses_the_options",
    "test_commands.py::test_parallel_ingest_keeps_file_order_and_reports_clips_per_second",
    "test_commands.py::test_seed_demo_is_idempotent",
    "test_api_ingest.py::test_the_demo_manifest_brings_hypotheses_and_two_gold_clips",
    "test_ingest_fuzz.py",
    # spies on the pipeline's own steps: the fast run's reused speech never reaches them
    "test_segments_spectrogram.py::test_the_spectrogram_is_computed_at_ingest_from_the_disguised_audio",
)
SLOW = (
    "test_queue_sqlite.py", "test_queue_concurrency.py",
    "test_api_errors.py::test_audio_in_s3_compatible_storage",
    "test_exfiltration.py::test_production_settings_pass_the_deploy_check",
    "test_api_errors.py::test_redis_is_the_shared_cache_when_configured",
    "test_review.py::test_twenty_checkers_race_for_ten_submissions",
    "test_audit_chain.py::test_twenty_concurrent_writers_never_fork_the_chain",
    "test_quotas.py::test_twenty_concurrent_leases_against_a_project_limit_of_five",
    "test_quotas.py::test_twenty_concurrent_leases_by_one_reviewer_against_a_day_of_five",
    "test_quotas.py::test_twenty_concurrent_submits_each_count_once",
    "test_quotas.py::test_twenty_concurrent_plays_against_a_limit_of_five",
)


def pytest_collection_modifyitems(config, items):
    matched = set()
    for item in items:
        module, _, name = item.nodeid.rpartition("/")[2].partition("::")
        test = f"{module}::{name.split('[')[0]}"
        for marker, entries in ((pytest.mark.dsp, DSP), (pytest.mark.slow, SLOW)):
            for entry in entries:
                if entry in (module, test):
                    item.add_marker(marker)
                    matched.add(entry)
    listed = set(DSP) | set(SLOW)
    whole_suite = {item.nodeid.split("::")[0].rpartition("/")[2] for item in items} >= {
        entry.split("::")[0] for entry in listed}
    if whole_suite and listed - matched:
        raise pytest.UsageError(f"conftest DSP or SLOW names no test: {sorted(listed - matched)}")


@pytest.fixture(scope="session")
def _processed_speech():
    """`make test-fast` (TEST_FAST_AUDIO=1): each demo speech file goes through the real
    pipeline once per run and its result is reused by every clip the ingest fixture makes
    from it. The whole suite processes every clip afresh."""
    return {} if os.environ.get("TEST_FAST_AUDIO") == "1" else None


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
    from reviews import leases

    leases._last_sweep_at = None


@pytest.fixture
def schema(db):
    return label_schema_create(name="Assistant requests", groups=DEMO_SCHEMA)


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


@pytest.fixture
def ingest(project, ingest_user, _processed_speech):
    """Ingest speech clips through the real service; returns a function making n clips."""
    from reviews.audio import clip_audio_process
    from reviews.ingest import clip_ingest

    def audio_process(data: bytes, *, preset=None):
        if _processed_speech is None:
            return clip_audio_process(data, preset=preset)
        key = (hashlib.sha256(data).digest(), preset)
        if key not in _processed_speech:
            _processed_speech[key] = clip_audio_process(data, preset=preset)
        return _processed_speech[key]

    def make(count: int = 1, **overrides):
        clips = []
        names = sorted(p.name for p in FIXTURE_CLIPS.iterdir() if p.suffix in {".flac", ".ogg"})
        for i in range(count):
            fields = {
                "project": project.slug, "account_id": f"ACCT-{i}", "first_name": "Test",
                "device_serial": f"SN-{i}", "recorded_at": "2026-11-20T08:15:02Z", "locale": "en-US",
                **overrides,
            }
            clips.append(clip_ingest(actor=ingest_user, audio_process=audio_process,
                                     data={**fields, "audio": speech_bytes(names[i % len(names)])}))
        return clips

    return make


# --- Real browser (headless Chromium from Debian, driven by Playwright) -------------------

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
def page(browser, transactional_db):
    """A fresh browser context. It depends on the test database so that it closes first: a
    request the page still has in flight must be finished before the database is flushed
    (a flush racing the live server's last request deadlocked and broke later tests)."""
    import threading
    import time

    threads_before = threading.active_count()
    context = browser.new_context(viewport={"width": 1100, "height": 800})
    page = context.new_page()
    page.console_errors = []
    page.on("console", lambda msg: msg.type == "error" and page.console_errors.append(msg.text))
    page.on("pageerror", lambda exc: page.console_errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and page.console_errors.append(f"{r.status} {r.url}"))
    yield page
    page.goto("about:blank")  # stops the page's own timers and fetches
    context.close()
    # The live server answers each request in a thread of its own: wait for them to end.
    deadline = time.monotonic() + 5
    while threading.active_count() > threads_before and time.monotonic() < deadline:
        time.sleep(0.02)


