"""Real browser: alice signs in, plays a clip, transcribes, labels, submits, gets the next one."""

import os
import shutil
from pathlib import Path

import pytest

from reviews.models import AuditEvent, Transcription
from tests.conftest import PASSWORD

pytestmark = pytest.mark.browser
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
DOCS = Path(__file__).resolve().parent.parent / "docs"
# Playwright's sync API runs an event loop in this thread; the ORM calls in these
# tests are plain synchronous test code, so Django's async guard is lifted here.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")


@pytest.fixture(scope="module")
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


def test_alice_reviews_a_clip_end_to_end(page, live_server, project, ingest, alice):
    ingest(2)
    sign_in(page, live_server, "alice")
    page.wait_for_url(f"{live_server.url}/workspace/")
    status = page.locator("#status")
    status.filter(has_text="Clip ready").wait_for()

    page.get_by_role("button", name="Play").click()
    page.wait_for_function("document.getElementById('audio').currentTime > 0.3", timeout=10000)
    assert page.evaluate("document.getElementById('audio').src").startswith("blob:")

    page.get_by_label("Transcription").fill("set a timer for ten minutes")
    page.get_by_label("Background speech [3]").check()
    page.get_by_label("Adult [6]").check()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "workspace.png"))
    first_clip = page.evaluate("document.getElementById('text').value")
    page.get_by_role("button", name="Submit").click()
    page.wait_for_function("document.getElementById('text').value === ''")
    status.filter(has_text="Clip ready").wait_for()

    transcription = Transcription.objects.get()
    assert transcription.text == first_clip == "set a timer for ten minutes"
    assert transcription.labels == {"issues": ["background-speech"], "speaker": ["adult"]}
    assert transcription.reviewer == alice
    plays = AuditEvent.objects.filter(action="audio.play", actor=alice, outcome="allowed").count()
    assert plays == 1
    assert AuditEvent.objects.filter(action="assignment.lease", actor=alice).count() == 2
    assert page.console_errors == [], "\n".join(page.console_errors)
