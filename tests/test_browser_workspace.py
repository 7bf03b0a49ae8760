"""The workspace in a real browser: keyboard-only work, drafts across reloads and tabs, flags."""

import pytest

from reviews.models import Assignment, AuditEvent, Clip, Escalation, Revision, Transcription
from tests.helpers import DOCS, PASSWORD, sign_in, wait_js

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
    assert page.locator("#progress").inner_text() == "1 of 100 clips today"  # submitted clips, not leases
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

    # bob's page holds the bytes for his lease; the next word to the server (an autosave
    # here, or the lease check) learns of the withdrawal and the bytes leave the page.
    bobs.get_by_label("Transcription").fill("some words")
    bobs.locator("#status").filter(has_text="withdrawn").wait_for()
    assert bobs.locator("#expired-title").inner_text() == "This clip was withdrawn"
    assert bobs.evaluate("document.getElementById('audio').getAttribute('src')") is None
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


# --- Listening within a lease is free; the transition between clips sends nothing -------------

def track_requests(page) -> list[tuple[str, str]]:
    seen = []
    page.on("request", lambda request: seen.append((request.method, request.url)))
    return seen


def audio_requests(seen, assignment_id=None) -> list[str]:
    return [url for _, url in seen if "/audio" in url and (assignment_id is None or assignment_id in url)]


def play_to_the_end(page):
    page.keyboard.press("k")
    wait_js(page, "!document.getElementById('audio').paused && document.getElementById('audio').currentTime > 0")
    page.evaluate("(a => { a.currentTime = a.duration - 0.15; })(document.getElementById('audio'))")
    wait_js(page, "document.getElementById('audio').ended")


def test_replaying_twenty_times_in_a_lease_fetches_the_audio_once(page, live_server, project, ingest, alice):
    from reviews import anomalies

    ingest(2)
    seen = track_requests(page)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    first = Assignment.objects.get()
    for i in range(20):
        play_to_the_end(page)  # each replay starts again after the clip ended: the old page refetched here
        if i % 5 == 0:
            page.keyboard.press("j")  # seeking after the end, and clicking the waveform, use memory too
            page.locator("#waveform").click(position={"x": 40, "y": 20})
    assert page.evaluate("document.getElementById('audio').src").startswith("blob:")
    # One fetch, with the token next's answer carried: no token request (issue 15).
    assert audio_requests(seen, str(first.pk)) == [f"{live_server.url}/api/v1/assignments/{first.pk}/audio/"]
    assert [url for url in audio_requests(seen) if url.endswith("/audio/")] == [
        f"{live_server.url}/api/v1/assignments/{first.pk}/audio/"]

    page.keyboard.press("6")
    page.keyboard.press("Control+Enter")
    wait_ready_after_submit(page)
    submit = AuditEvent.objects.get(action="transcription.submit")
    duration = first.clip.duration_ms
    # Every replay heard from its start to the jump, then the last 0.15 s: well over a second in all.
    assert 1000 < submit.details["listened_ms"] < 20 * duration
    assert AuditEvent.objects.filter(action="audio.play", object_id=str(first.pk)).count() == 1
    assert [a for a in anomalies.anomalies_find() if a.actor_name == "alice" and a.kind != "off_hours"] == []
    assert page.console_errors == []


def test_a_carried_token_too_close_to_its_expiry_is_replaced_by_a_fresh_one(page, live_server, project, ingest,
                                                                             alice, settings):
    """The page spends next's token only while it has over ten seconds left; otherwise it asks
    the audio-token route, so a stale token never reaches the server as a refused play."""
    settings.AUDIO_TOKEN_MAX_AGE = 10  # next's token is stale on arrival
    ingest(1)
    seen = track_requests(page)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    first = Assignment.objects.get()
    play_to_the_end(page)
    base = f"{live_server.url}/api/v1/assignments/{first.pk}"
    assert audio_requests(seen, str(first.pk)) == [f"{base}/audio-token/", f"{base}/audio/"]
    assert AuditEvent.objects.filter(action="audio.play", outcome="allowed").count() == 1
    assert not AuditEvent.objects.filter(action="access.denied").exists()
    assert page.console_errors == []


def wait_ready_after_submit(page):
    wait_js(page, "window.__workspace.readyAt > window.__workspace.submittedAt")
    wait_ready(page)


def then_next_clip(page, keys):
    """Press keys that end this clip, and wait until the next one is on the page."""
    before = page.evaluate("window.__workspace.readyAt")
    for key in keys:
        page.keyboard.press(key)
    wait_js(page, f"window.__workspace.readyAt > {before}")
    wait_ready(page)


def test_k_right_after_ctrl_enter_sends_nothing_for_the_old_clip(page, live_server, project, ingest, alice):
    ingest(3)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    first = str(Assignment.objects.get().pk)
    wait_js(page, f"document.getElementById('audio').dataset.for === '{first}'")  # fetched while shown
    seen = track_requests(page)
    before = AuditEvent.objects.count()
    page.keyboard.press("6")
    page.keyboard.press("Control+Enter")
    page.keyboard.press("k")  # a fast reviewer: play, meaning the next clip
    page.keyboard.press("Alt+KeyK")  # and once more from anywhere; the last press wins
    page.keyboard.press("j")
    wait_ready_after_submit(page)
    second = str(Assignment.objects.get(status="live").pk)
    wait_js(page, f"document.getElementById('audio').dataset.for === '{second}'")
    old = [(method, url) for method, url in seen if first in url]
    assert old == [("POST", f"{page.url.split('/workspace')[0]}/api/v1/assignments/{first}/submit/")]
    new_events = AuditEvent.objects.filter(pk__gt=0).order_by("id")[before:]
    assert [e.action for e in new_events if e.object_id == first] == ["transcription.submit"]
    assert not AuditEvent.objects.filter(action="access.denied").exists()
    # The queued play started the new clip once it was ready.
    wait_js(page, "!document.getElementById('audio').paused")
    page.keyboard.press("k")
    assert page.console_errors == []


# --- Friction ----------------------------------------------------------------------------

def test_skip_with_a_preset_reason_by_keys_and_enter_confirms(page, live_server, project, ingest, alice):
    ingest(3)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    page.keyboard.press("s")
    page.get_by_role("radio", name="Not speech [2]").wait_for()
    page.keyboard.press("Enter")  # nothing chosen yet: the dialog says so and stays
    assert page.locator("#skip-dialog .error").is_visible()
    then_next_clip(page, ["2", "Enter"])
    skipped = Assignment.objects.get(status="skipped")
    assert skipped.reason == "Not speech"
    assert "listened_ms" in AuditEvent.objects.get(action="assignment.skip").details

    # "Other" takes free text; Enter in it confirms (no newline).
    page.keyboard.press("s")
    page.keyboard.press("4")
    assert page.evaluate("document.activeElement.id") == "skip-other"
    page.keyboard.type("Two people talk at once")
    then_next_clip(page, ["Enter"])
    assert Assignment.objects.filter(status="skipped").order_by("ended_at").last().reason == "Two people talk at once"

    # The flag dialog: Shift+Enter is a new line, Enter confirms.
    page.keyboard.press("f")
    page.keyboard.type("shouting")
    page.keyboard.press("Shift+Enter")
    page.keyboard.type("and crying")
    page.keyboard.press("Enter")
    page.locator("#flagged").wait_for(state="visible")
    assert Escalation.objects.get().reason == "shouting\nand crying"
    assert page.console_errors == []


def test_a_missing_required_label_is_named_and_focused_without_a_request(page, live_server, project, ingest, alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    seen = track_requests(page)
    page.get_by_label("Transcription").fill("hello")
    page.keyboard.press("Control+Enter")
    error = page.locator("#form-error")
    assert error.inner_text() == "Choose a Speaker label (required)."
    assert page.evaluate("document.activeElement.id") == "label-speaker-adult"
    assert not [url for _, url in seen if url.endswith("/submit/")]
    assert Transcription.objects.count() == 0
    page.keyboard.press("Space")  # the focused radio: Adult
    page.keyboard.press("Control+Enter")
    page.locator("#empty").wait_for(state="visible")
    assert Transcription.objects.get().labels == {"speaker": ["adult"]}


def test_speed_and_zoom_are_kept_for_the_reviewer(page, live_server, project, ingest, alice, bob):
    ingest(2)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    page.keyboard.press("]")
    page.keyboard.press("]")
    page.keyboard.press("=")
    page.reload()
    wait_ready(page)
    assert page.locator("#speed").inner_text() == "1.5×"
    assert page.locator("#zoom").inner_text() == "2×"
    page.keyboard.press("k")
    wait_js(page, "!document.getElementById('audio').paused")
    assert page.evaluate("document.getElementById('audio').playbackRate") == 1.5
    # Another reviewer on the same browser keeps their own.
    page.context.clear_cookies()
    sign_in(page, live_server, "bob")
    wait_ready(page)
    assert page.locator("#speed").inner_text() == "1×"


def test_nothing_moves_when_the_draft_is_saved(page, live_server, project, ingest, alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    before = page.locator("#labels").bounding_box()
    page.get_by_label("Transcription").fill("remind me")
    page.locator("#draft-state").filter(has_text="Draft saved").wait_for()
    assert page.locator("#labels").bounding_box() == before


def test_the_transcript_takes_its_direction_from_its_text(page, live_server, project, ingest, alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    assert page.get_by_label("Transcription").get_attribute("dir") == "auto"
    page.get_by_label("Transcription").fill("شغل الأضواء")
    assert page.evaluate("document.getElementById('text').matches(':dir(rtl)')") is True


def test_a_region_loops_and_the_wheel_zooms(page, live_server, project, ingest, alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    box = page.locator("#waveform").bounding_box()
    page.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + 20, steps=5)
    page.mouse.up()
    assert page.locator("#clear-region").is_visible()
    page.keyboard.press("k")
    duration = Assignment.objects.get().clip.duration_ms / 1000
    end = duration * 0.3
    # It plays past the region's end a few times and always comes back to its start.
    page.wait_for_timeout(int((end - duration * 0.1) * 2500))
    position = page.evaluate("document.getElementById('audio').currentTime")
    assert duration * 0.1 - 0.05 <= position <= end + 0.3
    assert not page.evaluate("document.getElementById('audio').paused")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + 20)
    page.mouse.wheel(0, -100)
    assert page.locator("#zoom").inner_text() == "2×"
    page.mouse.wheel(0, 100)
    assert page.locator("#zoom").inner_text() == "1×"
    page.locator("#clear-region").click()
    assert not page.locator("#clear-region").is_visible()
    assert page.console_errors == []
