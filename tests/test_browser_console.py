"""The supervisor console in a real browser: sign in with TOTP, see an open escalation,
follow the search to a clip history and a reviewer timeline, take, hear and close."""

import re

import pytest

from reviews import leases, services
from reviews.models import AuditEvent, Escalation
from tests.helpers import DOCS, PASSWORD, totp_device, totp_now, wait_js

pytestmark = pytest.mark.browser


@pytest.fixture
def day_of_work(project, ingest, alice):
    """alice hears one clip twice and submits it, then flags the next one."""
    ingest(2)
    first = leases.assignment_next(reviewer=alice)
    for _ in range(2):
        grant = services.audio_token_issue(reviewer=alice, assignment_id=first.pk, session_key="s")
        services.audio_open(reviewer=alice, assignment_id=first.pk, token=grant.token, session_key="s")
    services.transcription_submit(reviewer=alice, assignment_id=first.pk, text="call mum",
                                  labels={"speaker": ["adult"]})
    second = leases.assignment_next(reviewer=alice)
    return services.clip_flag(reviewer=alice, assignment_id=second.pk, reason="a person in distress")


def test_sam_works_through_the_console(browser, live_server, day_of_work, sam):
    escalation = day_of_work
    totp_device(sam)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))

    # Signed out, the console sends sam to sign in and then straight back.
    page.goto(f"{live_server.url}/console/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authenticator code").fill(totp_now(sam))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{live_server.url}/console/")
    open_list = page.locator("#open-escalations")
    assert "a person in distress" in open_list.inner_text()
    assert "Never verified." in page.locator("#chain").inner_text()

    # Search alice's events; the rows lead to the clip's history and to alice's day.
    page.get_by_label("Reviewer (username)").fill("alice")
    page.get_by_role("button", name="Search the audit trail").click()
    page.wait_for_url(re.compile(r".*/console/audit/\?reviewer=alice.*"))
    rows = page.locator("table.events tbody tr")
    assert rows.count() >= 8
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "console.png"))
    page.get_by_role("link", name=f"History of clip {escalation.clip_id}").first.click()
    page.get_by_role("heading", name="Clip history").wait_for()
    history = page.locator("table.events tbody tr")
    assert [history.nth(i).locator("code").inner_text() for i in range(history.count())] == [
        "clip.ingest", "assignment.lease", "clip.flag"]
    page.go_back()
    page.locator("a.who-link").first.click()
    page.get_by_role("heading", name="Plays per clip").wait_for()
    plays = page.locator("table.plays tbody tr")
    assert plays.count() == 1 and plays.first.locator("td").first.inner_text() == "2"

    # Take the escalation, hear the clip through a one-time token, close it.
    page.get_by_role("link", name="Console", exact=True).click()
    page.get_by_role("link", name=f"Escalation #{escalation.pk}").click()
    page.get_by_role("button", name="Take this escalation").click()
    page.get_by_role("button", name="Play the clip").click()
    wait_js(page, "window.__console.plays === 1 && document.getElementById('listen-audio').currentTime > 0.2")
    assert page.evaluate("document.getElementById('listen-audio').src").startswith("blob:")
    page.get_by_label("What was done").fill("Referred to the trust and safety team.")
    page.get_by_role("button", name="Close the escalation").click()
    page.locator("#action-taken").wait_for()
    assert page.locator("#escalation-status").inner_text() == "closed (sam)"

    assert Escalation.objects.get().status == "closed"
    assert list(AuditEvent.objects.filter(object_type="escalation").values_list("action", flat=True)) == [
        "escalation.take", "audio.token", "audio.play", "escalation.close"]
    page.get_by_role("link", name="Console", exact=True).click()
    assert "No open escalations." in page.locator("#open-escalations").inner_text()
    assert errors == [], "\n".join(errors)
    context.close()
