"""The second language in a real browser (issue 12): a reviewer picks Arabic with the switch in
the header and works a clip in a mirrored, translated workspace on a phone; and an Arabic
transcript in the English workspace runs right to left."""

from pathlib import Path

import pytest

from reviews.models import Transcription
from tests.helpers import DOCS, PASSWORD, sign_in, wait_js

pytestmark = pytest.mark.browser
AXE = Path(__file__).resolve().parent / "tools" / "axe.min.js"
RUN_AXE = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({id: v.id, impact: v.impact, help: v.help,
                                        nodes: v.nodes.map((n) => n.target.join(" "))}));
}"""
ARABIC_TEXT = "أطفئ أنوار المطبخ"


def phone_page(browser):
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, locale="en-US")
    context.add_init_script(path=str(AXE))
    page = context.new_page()
    page.errors = []
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))
    page.on("console", lambda msg: msg.type == "error" and page.errors.append(msg.text))
    return page


def no_sideways_scroll(page) -> bool:
    return page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def direction(page, selector: str) -> str:
    return page.evaluate(f"getComputedStyle(document.querySelector({selector!r})).direction")


def test_a_reviewer_picks_arabic_and_works_a_clip_in_it(browser, live_server, project, ingest, alice):
    ingest(2)
    page = phone_page(browser)
    page.goto(f"{live_server.url}/accounts/login/")
    assert page.evaluate("document.documentElement.dir") == "ltr"
    page.get_by_role("button", name="العربيّة").click()  # the switch, in the header of every page
    page.wait_for_url(f"{live_server.url}/accounts/login/")
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
    assert page.get_by_role("heading", level=1).inner_text() == "تسجيل الدخول"
    page.get_by_label("اسم المستخدم").fill("alice")
    page.get_by_label("كلمة المرور").fill(PASSWORD)
    page.get_by_role("button", name="تسجيل الدخول").click()
    page.wait_for_url(f"{live_server.url}/workspace/")
    page.locator("#status").filter(has_text="المقطع جاهز").wait_for()  # the script speaks Arabic too

    # Mirrored and translated: the page runs right to left, its words are Arabic.
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["ar", "rtl"]
    assert direction(page, "#task") == "rtl"
    for name in ("تشغيل", "إرسال", "تخطٍّ…", "إبلاغ عن محتوى مزعج…", "تسجيل الخروج", "English"):
        box = page.get_by_role("button", name=name, exact=True).bounding_box()
        assert box["x"] >= 0 and box["x"] + box["width"] <= 390, name
    assert page.locator("label[for=text]").inner_text() == "التفريغ"
    assert page.locator("#labels legend").filter(has_text="(مطلوب)").count() == 1  # the required group
    assert page.locator("#progress").inner_text() == "0 من 100 مقطع اليوم"  # Arabic's plural for 100
    # The brand sits at the right edge, the way out at the left: the header mirrored.
    brand = page.locator(".brand").bounding_box()
    assert brand["x"] + brand["width"] > 300
    assert no_sideways_scroll(page), page.evaluate("document.documentElement.scrollWidth")
    assert page.evaluate(RUN_AXE) == []

    # The keyboard help, translated.
    page.keyboard.press("?")
    help_dialog = page.locator("#help")
    help_dialog.wait_for(state="visible")
    assert help_dialog.get_by_role("heading").inner_text() == "اختصارات لوحة المفاتيح"
    assert "تشغيل / إيقاف مؤقت" in help_dialog.inner_text() and "Play" not in help_dialog.inner_text()
    assert no_sideways_scroll(page)
    assert page.evaluate(RUN_AXE) == []
    page.keyboard.press("Escape")

    # Play, label, type Arabic, submit: the work is the same in either language.
    page.get_by_role("button", name="تشغيل", exact=True).click()
    wait_js(page, "document.getElementById('audio').currentTime > 0.2")
    assert page.locator("#play").inner_text() == "إيقاف مؤقت"
    page.locator("#play").click()
    page.keyboard.press("3")  # background speech
    page.keyboard.press("6")  # adult
    page.get_by_label("التفريغ").fill(ARABIC_TEXT)
    assert direction(page, "#text") == "rtl"
    page.locator("#draft-state").filter(has_text="حُفظت المسودة").wait_for()
    page.screenshot(path=str(DOCS / "workspace-arabic.png"))
    page.get_by_label("التفريغ").press("Control+Enter")
    wait_js(page, "window.__workspace.readyAt > window.__workspace.submittedAt")
    page.locator("#status").filter(has_text="المقطع جاهز").wait_for()
    assert Transcription.objects.get().text == ARABIC_TEXT
    assert page.locator("#progress").inner_text() == "1 من 100 مقطع اليوم"

    # The choice is kept across pages, and the switch leads back.
    page.goto(f"{live_server.url}/workspace/feedback/")
    assert page.evaluate("document.documentElement.dir") == "rtl"
    assert page.get_by_role("heading", level=1).inner_text() == "ملاحظاتي"
    page.get_by_role("button", name="English").click()
    page.wait_for_url(f"{live_server.url}/workspace/feedback/")
    assert page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == ["en", "ltr"]
    assert page.get_by_role("heading", level=1).inner_text() == "My feedback"
    assert page.errors == []
    page.context.close()


def test_an_arabic_transcript_runs_right_to_left_in_the_english_workspace(page, live_server, project, ingest,
                                                                          alice):
    ingest(1)
    sign_in(page, live_server, "alice")
    page.locator("#status").filter(has_text="Clip ready").wait_for()
    assert page.evaluate("document.documentElement.dir") == "ltr"
    box = page.get_by_label("Transcription")
    box.fill("turn on the lights")
    assert direction(page, "#text") == "ltr"
    box.fill(ARABIC_TEXT)
    # dir="auto" takes the direction from the first strong character: the text starts at the right.
    assert page.evaluate("document.getElementById('text').getAttribute('dir')") == "auto"
    assert direction(page, "#text") == "rtl"
    assert page.evaluate("getComputedStyle(document.getElementById('text')).textAlign") in ("start", "right")
    assert page.console_errors == []
