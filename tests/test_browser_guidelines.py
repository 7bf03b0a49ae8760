"""The guidelines panel (issue 12) in a real browser: by keyboard, inert, axe-clean; My feedback link."""

import pytest

from tests.helpers import sign_in, wait_js
from tests.test_browser_accessibility import new_page, violations

pytestmark = pytest.mark.browser

GUIDELINES = """# Numbers

Write numbers **as words**: "twenty one", not "21".

- Keep fillers like *um* as heard.
- See the [style guide](https://example.com/style).

<script>window.__pwned = true</script><img src="x" onerror="window.__pwned = true">
"""


def test_the_guidelines_open_by_keyboard_and_esc_closes_them(browser, live_server, project, ingest, alice):
    project.guidelines = GUIDELINES
    project.save()
    ingest(1)
    page = new_page(browser)
    sign_in(page, live_server, "alice")
    page.locator("#status").filter(has_text="Clip ready").wait_for()
    assert page.evaluate("document.activeElement.id") == "play"
    assert page.get_by_role("button", name="Guidelines").is_visible()
    assert page.get_by_role("link", name="My feedback").get_attribute("href") == "/workspace/feedback/"
    assert page.locator("#guidelines").is_hidden()

    page.keyboard.press("g")
    panel = page.get_by_role("region", name="Guidelines")
    panel.wait_for(state="visible")
    assert page.evaluate("document.activeElement.id") == "guidelines-title"
    assert page.get_by_role("button", name="Guidelines").get_attribute("aria-expanded") == "true"
    assert 'Write numbers as words: "twenty one", not "21".' in panel.inner_text()
    assert panel.get_by_role("heading", name="Numbers", level=3).is_visible()
    assert panel.get_by_role("link", name="style guide").get_attribute("href") == "https://example.com/style"
    assert "<script>window.__pwned = true</script>" in panel.inner_text()  # shown as text, never run
    assert page.evaluate("window.__pwned === undefined")
    assert panel.locator("script, img").count() == 0
    assert violations(page) == []

    page.keyboard.press("Tab")  # focus moves on inside the panel: the close button, then the link
    assert page.evaluate("document.activeElement.id") == "guidelines-close"
    page.keyboard.press("Escape")
    assert page.locator("#guidelines").is_hidden()
    assert page.evaluate("document.activeElement.id") == "play"  # back where the reviewer was
    assert page.get_by_role("button", name="Guidelines").get_attribute("aria-expanded") == "false"

    # The visible button toggles it too, and Esc returns focus to the button.
    page.get_by_role("button", name="Guidelines").click()
    panel.wait_for(state="visible")
    page.keyboard.press("Escape")
    assert page.locator("#guidelines").is_hidden()
    assert page.evaluate("document.activeElement.id") == "guidelines-open"

    # In the text box, g types a g.
    page.keyboard.press("t")
    page.keyboard.type("go")
    assert page.locator("#guidelines").is_hidden()
    assert page.get_by_label("Transcription").input_value() == "go"
    wait_js(page, "window.__pwned === undefined")
    assert page.errors == []
    page.context.close()


def test_without_guidelines_there_is_no_button(browser, live_server, project, ingest, alice):
    ingest(1)
    page = new_page(browser)
    sign_in(page, live_server, "alice")
    page.locator("#status").filter(has_text="Clip ready").wait_for()
    assert page.get_by_role("button", name="Guidelines").count() == 0
    page.keyboard.press("g")
    assert page.locator("#guidelines").is_hidden()
    assert page.get_by_role("link", name="My feedback").is_visible()
    assert page.errors == []
    page.context.close()
