"""Admin in a real browser: ada edits alice's daily quota; alice sees it; the audit shows it."""

import pytest

from reviews.models import AuditEvent, Clip, ReviewerQuota
from tests.helpers import DOCS, sign_in, totp_device, totp_now

pytestmark = pytest.mark.browser


def test_ada_changes_alices_daily_quota(browser, page, live_server, project, ada, alice):
    for i in range(3):
        Clip.objects.create(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=1000,
                            audio=f"clips/fake-{i}.mp3", peaks=[1, 2, 3])
    ReviewerQuota.objects.create(reviewer=alice, clips_per_day=100)
    totp_device(ada)
    sign_in(page, live_server, "ada")
    page.wait_for_url("**/accounts/mfa/**")
    page.get_by_label("Authenticator code").fill(totp_now(ada))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{live_server.url}/admin/")
    page.get_by_role("link", name="Reviewer quotas").click()
    page.screenshot(path=str(DOCS / "admin-quotas.png"), full_page=True)
    page.locator("#result_list").get_by_role("link", name="alice").click()
    page.get_by_label("Clips per day").fill("7")
    page.screenshot(path=str(DOCS / "admin-quota-edit.png"), full_page=True)
    page.get_by_role("button", name="Save", exact=True).click()
    page.locator(".messagelist").wait_for()
    assert ReviewerQuota.objects.get(reviewer=alice).clips_per_day == 7

    alice_context = browser.new_context()
    alices = alice_context.new_page()
    sign_in(alices, live_server, "alice")
    alices.locator("#progress").filter(has_text="of 7 clips today").wait_for()
    alice_context.close()

    event = AuditEvent.objects.get(action="quota.change")
    assert event.actor_name == "ada" and event.details["fields"] == {"clips_per_day": ["100", "7"]}
    page.goto(f"{live_server.url}/admin/reviews/auditevent/?action=quota.change")
    assert "quota.change" in page.locator("#result_list").inner_text()
    page.screenshot(path=str(DOCS / "admin-audit.png"), full_page=True)
    assert page.console_errors == [], page.console_errors
