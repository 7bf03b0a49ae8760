"""The workspace in a real browser: keyboard-only work, drafts across reloads and tabs, flags."""

import pytest

from reviews.models import Assignment, Clip, Escalation, Revision, Transcription
from tests.conftest import DOCS, PASSWORD, sign_in, wait_js

pytestmark = pytest.mark.browser
READY = "Clip ready"


def wait_ready(page):
    page.locator("#status").filter(has_text=READY).wait_for()


def test_a_whole_session_with_the_keyboard_only(page, live_server, project, ingest, alice):
    ingest(3)
    page.goto(f"{live_server.url}/accounts/login/")
    wait_js(page, "document.activeElement.id === 'id_username'")
    page.keyboard.type("alice")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(f"{live_server.url}/workspace/")
    wait_ready(page)
    assert page.evaluate("document.activeElement.id") == "play"

    page.keyboard.press("[")  # slower
    page.keyboard.press("k")  # play
    wait_js(page, "document.getElementById('audio').currentTime > 0.2")
    assert page.evaluate("document.getElementById('audio').playbackRate") == 0.75
    assert page.evaluate("document.getElementById('audio').preservesPitch") is True
    page.keyboard.press("k")  # pause
    assert page.evaluate("document.getElementById('audio').paused") is True
    page.keyboard.press("j")  # back 3 s
    assert page.evaluate("document.getElementById('audio').currentTime") == 0
    page.keyboard.press("3")  # background speech
    page.keyboard.press("6")  # adult
    page.keyboard.press("t")  # to the text box
    page.keyboard.type("turn off the lights ks")  # k and s must type, not play or skip
    assert page.evaluate("document.getElementById('audio').paused") is True
    page.keyboard.press("Alt+KeyK")  # play from inside the text box
    wait_js(page, "!document.getElementById('audio').paused")
    page.keyboard.press("Alt+KeyK")
    page.keyboard.press("?")  # types a question mark; help opens only outside the text box
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    assert page.locator("#help").is_visible()
    page.keyboard.press("Escape")
    assert not page.locator("#help").is_visible()
    page.keyboard.press("t")
    page.keyboard.press("End")
    page.keyboard.press("Control+Enter")
    wait_js(page, "window.__workspace.readyAt > window.__workspace.submittedAt")
    wait_ready(page)
    submit_to_ready_ms = page.evaluate("window.__workspace.readyAt - window.__workspace.submittedAt")
    print(f"\nsubmit -> next clip ready: {submit_to_ready_ms:.0f} ms")

    transcription = Transcription.objects.get()
    assert transcription.text == "turn off the lights ks?"
    assert transcription.labels == {"issues": ["background-speech"], "speaker": ["adult"]}
    assert page.locator("#text").input_value() == ""
    assert page.locator("#progress").inner_text() == "2 of 100 clips today"
    page.keyboard.press("?")
    page.screenshot(path=str(DOCS / "workspace-shortcuts.png"))
    page.keyboard.press("Escape")
    assert page.console_errors == []


def test_a_draft_survives_a_page_reload(page, live_server, project, ingest, alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    page.get_by_label("Transcription").fill("remind me to call")
    page.get_by_label("Child [7]").check()
    page.locator("#draft-state").filter(has_text="Draft saved").wait_for()
    page.reload()
    wait_ready(page)
    assert page.get_by_label("Transcription").input_value() == "remind me to call"
    assert page.get_by_label("Child [7]").is_checked()
    assert page.locator("#draft-state").inner_text() == "Draft restored"
    assert Revision.objects.filter(kind="draft").count() >= 1
    assert Assignment.objects.count() == 1
    assert page.console_errors == []


def test_a_stale_tab_gets_409_and_says_so(page, live_server, project, ingest, alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    other = page.context.new_page()
    other.goto(f"{live_server.url}/workspace/")
    wait_ready(other)
    page.get_by_label("Transcription").fill("first tab words")
    page.locator("#draft-state").filter(has_text="Draft saved").wait_for()

    other.get_by_label("Transcription").fill("second tab words")
    other.locator("#conflict").wait_for(state="visible")
    assert "changed in another tab" in other.locator("#conflict").inner_text()
    other.screenshot(path=str(DOCS / "workspace-conflict.png"))
    other.get_by_role("button", name="Load the newer version").click()
    other.locator("#draft-state").filter(has_text="Loaded the newer version").wait_for()
    assert other.get_by_label("Transcription").input_value() == "first tab words"
    assert Assignment.objects.get().draft.text == "first tab words"


def test_a_flag_takes_the_clip_from_another_reviewer(browser, page, live_server, project, ingest, alice, bob):
    project.transcriptions_per_clip = 2
    project.save()
    [clip] = ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    bob_context = browser.new_context()
    bobs = bob_context.new_page()
    sign_in(bobs, live_server, "bob")
    wait_ready(bobs)

    page.keyboard.press("f")
    page.get_by_label("What in this clip is distressing?").fill("a person in distress")
    page.get_by_role("button", name="Flag it").click()
    page.locator("#flagged").wait_for(state="visible")
    assert "supervisor" in page.locator("#flagged-detail").inner_text()
    page.screenshot(path=str(DOCS / "workspace-flagged.png"))

    bobs.get_by_role("button", name="Play").click()
    bobs.locator("#status").filter(has_text="withdrawn").wait_for()
    bobs.reload()
    bobs.locator("#empty").wait_for(state="visible")
    assert Clip.objects.get(pk=clip.pk).status == "flagged"
    assert Escalation.objects.get().reason == "a person in distress"
    assert set(Assignment.objects.values_list("status", flat=True)) == {"flagged", "revoked"}
    page.get_by_role("button", name="Take a break").click()
    assert page.locator("#break").is_visible()
    bob_context.close()


def test_empty_queue_and_quota_pages(page, live_server, project, ingest, alice):
    from reviews.models import ReviewerQuota

    sign_in(page, live_server, "alice")
    page.locator("#empty").wait_for(state="visible")
    page.screenshot(path=str(DOCS / "workspace-empty.png"))
    ingest(2)
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=0)
    page.get_by_role("button", name="Look again").click()
    page.locator("#quota").wait_for(state="visible")
    assert "today's number of clips" in page.locator("#quota-detail").inner_text()
    assert "continue from" in page.locator("#quota-reset").inner_text()
    page.screenshot(path=str(DOCS / "workspace-quota.png"))
