"""Accessibility and layout in a real browser: axe-core finds nothing on the workspace, the
console and the sign-in page (light and dark); a phone has no sideways scroll; at 200 %
zoom the text box is on the first screen.

axe-core is vendored for the tests only (tests/tools/axe.min.js, MPL-2.0, licence header kept;
tests/tools/axe.LICENSE). It is injected as an init script, which the page's
Content-Security-Policy does not apply to, so the policy stays as strict as in production."""

from pathlib import Path

import pytest

from tests.helpers import PASSWORD, sign_in, totp_device, totp_now, wait_js

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent / "tools" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map((n) => n.target.join(" "))}));
}"""


def new_page(browser, **options):
    context = browser.new_context(**{"viewport": {"width": 1100, "height": 800}, **options})
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    return page


def violations(page) -> list[dict]:
    return page.evaluate(RUN_AXE)


def wait_ready(page):
    page.locator("#status").filter(has_text="Clip ready").wait_for()


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_workspace_and_sign_in_have_no_axe_violations(browser, live_server, project, ingest, alice, scheme):
    ingest(2)
    page = new_page(browser, color_scheme=scheme)
    page.goto(f"{live_server.url}/accounts/login/")
    assert violations(page) == []
    sign_in(page, live_server, "alice")
    wait_ready(page)
    assert violations(page) == []
    page.get_by_label("Transcription").fill("turn it up")
    page.locator("#draft-state").filter(has_text="Draft saved").wait_for()
    page.keyboard.press("Escape")
    page.keyboard.press("s")
    page.locator("#skip-dialog").wait_for(state="visible")
    assert violations(page) == []
    page.keyboard.press("Escape")
    page.keyboard.press("?")
    assert violations(page) == []
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")  # the missing-label message and the marked group
    page.locator("#form-error").filter(has_text="Speaker").wait_for()
    assert violations(page) == []
    assert page.errors == []
    page.context.close()


def test_the_console_has_no_axe_violations(browser, live_server, project, ingest, alice, sam):
    from reviews import leases, services

    ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    services.clip_flag(reviewer=alice, assignment_id=assignment.pk, reason="a person in distress")
    totp_device(sam)
    page = new_page(browser)
    page.goto(f"{live_server.url}/console/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    assert violations(page) == []  # the second-factor page
    page.get_by_label("Authenticator code").fill(totp_now(sam))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{live_server.url}/console/")
    found = {}
    for path in ("/console/", "/console/audit/?reviewer=alice", "/console/anomalies/", "/console/escalations/",
                 "/console/reviewers/alice/"):
        page.goto(f"{live_server.url}{path}")
        found[path] = violations(page)
    assert found == {path: [] for path in found}
    page.context.close()


def test_a_phone_has_no_sideways_scroll(browser, live_server, project, ingest, alice):
    ingest(2)
    page = new_page(browser, viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                    device_scale_factor=3)
    page.goto(f"{live_server.url}/accounts/login/")
    assert no_sideways_scroll(page)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    assert no_sideways_scroll(page), page.evaluate("document.documentElement.scrollWidth")
    for name in ("Sign out", "Flag as distressing…", "Submit", "Faster", "In"):
        box = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    page.get_by_role("button", name="Shortcuts").click()
    assert no_sideways_scroll(page)
    page.keyboard.press("Escape")
    page.get_by_role("button", name="Skip…").click()
    page.locator("#skip-dialog").wait_for(state="visible")
    assert no_sideways_scroll(page)
    assert page.errors == []
    page.context.close()


def test_at_200_percent_zoom_the_text_box_is_on_the_first_screen(browser, live_server, project, ingest, alice):
    # A 1100 x 800 window at 200 % zoom lays out like a 550 x 400 one at twice the pixels.
    ingest(1)
    page = new_page(browser, viewport={"width": 550, "height": 400}, device_scale_factor=2)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    box = page.locator("#text").bounding_box()
    # At least two lines of it are visible without scrolling.
    assert box["y"] + 48 <= 400, box
    assert no_sideways_scroll(page)
    wait_js(page, "document.activeElement.id === 'play'")
    page.context.close()
