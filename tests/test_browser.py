"""Real browser: alice signs in, plays a clip, transcribes, labels, submits, gets the next one."""

import pytest

from reviews.models import AuditEvent, Transcription
from tests.helpers import DOCS, sign_in, wait_js

pytestmark = pytest.mark.browser


def test_alice_reviews_a_clip_end_to_end(page, live_server, project, ingest, alice):
    ingest(2)
    sign_in(page, live_server, "alice")
    page.wait_for_url(f"{live_server.url}/workspace/")
    status = page.locator("#status")
    status.filter(has_text="Clip ready").wait_for()

    page.get_by_role("button", name="Play").click()
    wait_js(page, "document.getElementById('audio').currentTime > 0.3")
    assert page.evaluate("document.getElementById('audio').src").startswith("blob:")

    page.get_by_label("Transcription").fill("set a timer for ten minutes")
    page.get_by_label("Background speech [3]").check()
    page.get_by_label("Adult [6]").check()
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "workspace.png"))
    first_clip = page.evaluate("document.getElementById('text').value")
    page.get_by_role("button", name="Submit").click()
    wait_js(page, "document.getElementById('text').value === ''")
    status.filter(has_text="Clip ready").wait_for()

    transcription = Transcription.objects.get()
    assert transcription.text == first_clip == "set a timer for ten minutes"
    assert transcription.labels == {"issues": ["background-speech"], "speaker": ["adult"]}
    assert transcription.reviewer == alice
    # The first clip was fetched once (the second one's fetch may already have begun).
    plays = AuditEvent.objects.filter(action="audio.play", actor=alice, outcome="allowed",
                                      object_id=str(transcription.assignment_id)).count()
    assert plays == 1
    assert AuditEvent.objects.filter(action="assignment.lease", actor=alice).count() == 2
    assert page.console_errors == [], "\n".join(page.console_errors)
