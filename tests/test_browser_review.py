"""The second pass in a real browser: a checker listens, rejects with feedback, and the
transcriber reads it on "my feedback" (text only, no audio)."""

import pytest

from reviews import leases, permissions, services
from reviews.models import AuditEvent, Clip, Review
from tests.helpers import DOCS, make_user, sign_in, wait_js

pytestmark = pytest.mark.browser


def test_a_checker_rejects_with_feedback_and_the_transcriber_reads_it(browser, page, live_server, project, ingest,
                                                                        alice):
    project.review_mode = "all"
    project.save()
    [clip] = ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    services.transcription_submit(reviewer=alice, assignment_id=assignment.pk, text="turn on the lights",
                                  labels={"speaker": ["adult"]})
    cleo = make_user("cleo", permissions.CHECKER)
    project.members.add(cleo)

    sign_in(page, live_server, "cleo")
    page.wait_for_url(f"{live_server.url}/review/")
    page.locator("#status").filter(has_text="Clip ready").wait_for()
    assert page.locator("#original").text_content() == "turn on the lights"
    assert page.locator("body").text_content().count("alice") == 0  # judged blind
    page.get_by_role("button", name="Play").click()
    wait_js(page, "document.getElementById('audio').currentTime > 0.2")
    page.get_by_role("button", name="Pause").click()
    assert not page.get_by_role("button", name="Save as the final text").is_visible()
    page.get_by_role("button", name="Reject…").click()
    page.get_by_label("Words missing or wrong").check()
    page.get_by_label("Feedback for the transcriber").fill("The speaker says \"kitchen\" at the end.")
    page.screenshot(path=str(DOCS / "review.png"), full_page=True)
    page.get_by_role("button", name="Reject and send back").click()
    page.get_by_role("heading", name="Saved").wait_for()
    assert "different transcriber" in page.locator("#done-detail").text_content()
    assert Review.objects.get().status == "rejected"
    assert Clip.objects.get(pk=clip.pk).status == "open"
    plays = AuditEvent.objects.filter(action="audio.play", object_type="review", actor=cleo)
    assert plays.count() == 1  # fetched once, played from memory
    assert page.console_errors == []

    context = browser.new_context(viewport={"width": 1100, "height": 800})
    other = context.new_page()
    sign_in(other, live_server, "alice")
    other.wait_for_url(f"{live_server.url}/workspace/")
    other.goto(f"{live_server.url}/workspace/feedback/")
    item = other.locator(".feedback-item")
    assert item.count() == 1
    text = item.text_content()
    assert "Sent back" in text and "Words missing or wrong" in text
    assert "The speaker says \"kitchen\" at the end." in text and "turn on the lights" in text
    assert other.locator("audio").count() == 0
    other.screenshot(path=str(DOCS / "feedback.png"))
    context.close()
