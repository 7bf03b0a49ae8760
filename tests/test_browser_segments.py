"""Issue 12 in a real browser: a transcript in segments with two speakers, made from the selected
part and by keyboard, saved and exported; the spectrogram toggle draws, follows the zoom and reads
in both themes; axe-core still finds nothing with both aids on screen."""

import json

import pytest

from reviews import lifecycle
from reviews.models import Clip, Transcription
from tests.helpers import DOCS, sign_in, wait_js
from tests.test_browser_accessibility import new_page, violations

pytestmark = pytest.mark.browser


@pytest.fixture
def segmented(project):
    project.label_schema.segment_speakers = "Agent\nCustomer"
    project.label_schema.save()
    return project


def wait_ready(page):
    page.locator("#status").filter(has_text="Clip ready").wait_for()


def drag(page, selector: str, start: float, end: float):
    box = page.locator(selector).bounding_box()
    page.mouse.move(box["x"] + box["width"] * start, box["y"] + 20)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] * end, box["y"] + 20, steps=5)
    page.mouse.up()


def test_a_segmented_transcript_with_two_speakers_is_saved_and_exported(page, live_server, segmented, ingest, alice,
                                                                        ada, tmp_path):
    ingest(1)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    duration_ms = Clip.objects.get().duration_ms
    assert page.locator("#segments").is_visible() and page.locator("#segment-list li").count() == 0

    # Segment 1 from a part dragged on the waveform: N, the speaker by keyboard, text, Enter.
    drag(page, "#waveform", 0.0, 0.5)
    page.keyboard.press("n")
    assert page.evaluate("document.activeElement.id") == "segment-speaker"
    assert page.locator("#segment-speaker").input_value() == "Agent"
    start, end = float(page.locator("#segment-start").input_value()), float(page.locator("#segment-end").input_value())
    assert start == 0 and abs(end - duration_ms / 2000) < 0.1
    page.keyboard.press("Tab")
    page.keyboard.type("shall I turn it on")
    page.keyboard.press("Enter")
    assert page.locator("#segment-list li").count() == 1

    # Segment 2 by keyboard only: times typed, the other speaker with the arrow key.
    page.keyboard.press("Escape")  # nothing to cancel: the editor is closed
    page.keyboard.press("n")
    page.keyboard.press("Home")
    page.keyboard.press("ArrowDown")
    assert page.locator("#segment-speaker").input_value() == "Customer"
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type(f"{duration_ms / 1000:.2f}")
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+a")
    page.keyboard.type(f"{duration_ms / 2000:.2f}")
    page.keyboard.press("Enter")  # no text: optional
    assert page.locator("#segment-list li").count() == 2, (page.locator("#segment-error").inner_text(),
                                                           page.locator("#segment-start").input_value(),
                                                           page.locator("#segment-end").input_value())

    # An impossible one is refused on the page, before any request; then made and deleted.
    page.keyboard.press("n")
    page.locator("#segment-end").fill(str(duration_ms / 1000 + 5))
    page.locator("#segment-end").press("Enter")
    assert "past the clip's end" in page.locator("#segment-error").inner_text()
    page.locator("#segment-end").fill("0.5")
    page.locator("#segment-start").fill("0.2")
    page.locator("#segment-start").press("Enter")
    assert page.locator("#segment-list li").count() == 3
    assert page.locator("#segment-list li").nth(1).inner_text().startswith("0.20–0.50 s")  # kept in time order
    page.get_by_role("button", name="Delete segment 2").click()
    assert page.locator("#segment-list li").count() == 2

    # Edit the second segment's text; play the first: it stops at its end.
    page.get_by_role("button", name="Edit segment 2").click()
    page.locator("#segment-text").fill("yes please")
    page.get_by_role("button", name="Save segment").click()
    page.get_by_role("button", name="Play segment 1").click()
    wait_js(page, "!document.getElementById('audio').paused")
    wait_js(page, "document.getElementById('audio').paused", timeout=duration_ms / 1000 + 5)
    position = page.evaluate("document.getElementById('audio').currentTime")
    assert duration_ms / 2000 - 0.05 <= position <= duration_ms / 2000 + 0.3

    page.keyboard.press("v")  # the spectrogram, for the screenshot
    page.keyboard.press("6")  # the required Speaker label: Adult
    page.keyboard.press("t")
    page.keyboard.type("shall I turn it on yes please")
    page.locator("#draft-state").filter(has_text="Draft saved").wait_for()
    page.screenshot(path=str(DOCS / "workspace-segments.png"))
    page.keyboard.press("Control+Enter")
    page.locator("#status").filter(has_text="No clips waiting").wait_for()

    expected = [
        {"start_ms": 0, "end_ms": duration_ms // 2, "speaker": "Agent", "text": "shall I turn it on"},
        {"start_ms": duration_ms // 2, "end_ms": duration_ms, "speaker": "Customer", "text": "yes please"},
    ]
    transcription = Transcription.objects.get()
    # Times as the page shows them (hundredths of a second) and as a mouse drag lands: within 15 ms.
    assert [(s["speaker"], s["text"]) for s in transcription.segments] == [(s["speaker"], s["text"]) for s in expected]
    for stored, wanted in zip(transcription.segments, expected):
        assert abs(stored["start_ms"] - wanted["start_ms"]) <= 15 and abs(stored["end_ms"] - wanted["end_ms"]) <= 15
    result = lifecycle.transcripts_export(admin=ada, project=segmented, out_dir=tmp_path)
    [row] = [json.loads(line) for line in result.data_path.read_text().splitlines()]
    assert row["transcriptions"][0]["segments"] == transcription.segments
    assert [s["speaker"] for s in row["final"]["segments"]] == ["Agent", "Customer"]
    assert page.console_errors == []


SPECTROGRAM_STATS = """() => {
  const canvas = document.getElementById('spectrogram');
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  const colours = new Set();
  let light = 0;
  for (let i = 0; i < data.length; i += 4) {
    colours.add(data[i] + ',' + data[i + 1] + ',' + data[i + 2]);
    light += (data[i] + data[i + 1] + data[i + 2]) / 3;
  }
  return {colours: colours.size, mean: light / (data.length / 4), drawn: Number(canvas.dataset.drawn || 0)};
}"""


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_spectrogram_toggle_draws_and_follows_the_zoom(browser, live_server, project, ingest, alice, scheme):
    ingest(2)
    page = new_page(browser, color_scheme=scheme)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    assert page.locator("#spectrogram-toggle").is_visible() and not page.locator("#spectrogram").is_visible()
    page.keyboard.press("v")
    assert page.locator("#spectrogram").is_visible()
    assert page.locator("#spectrogram-toggle").get_attribute("aria-pressed") == "true"
    whole = page.evaluate(SPECTROGRAM_STATS)
    assert whole["drawn"] >= 1 and whole["colours"] > 50  # a picture, not a blank box
    # Quiet cells are most of speech: the picture reads as the theme's background.
    assert (whole["mean"] > 150) if scheme == "light" else (whole["mean"] < 100)
    before = page.evaluate("document.getElementById('spectrogram').toDataURL()")
    page.keyboard.press("=")
    zoomed = page.evaluate(SPECTROGRAM_STATS)
    assert zoomed["drawn"] > whole["drawn"]
    assert page.evaluate("document.getElementById('spectrogram').toDataURL()") != before
    page.get_by_role("button", name="Spectrogram").click()
    assert not page.locator("#spectrogram").is_visible()
    page.keyboard.press("v")
    page.reload()  # the choice is kept for this reviewer
    wait_ready(page)
    assert page.locator("#spectrogram").is_visible()
    # A clip ingested before issue 12 has none: no button, no canvas, no error.
    Clip.objects.update(spectrogram={})
    page.reload()
    wait_ready(page)
    assert not page.locator("#spectrogram-toggle").is_visible() and not page.locator("#spectrogram").is_visible()
    page.keyboard.press("v")
    assert not page.locator("#spectrogram").is_visible()
    assert page.errors == []
    page.goto("about:blank")  # stops the page's timers and fetches before the database is flushed
    page.context.close()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_no_axe_violations_with_segments_and_the_spectrogram(browser, live_server, segmented, ingest, alice, scheme):
    ingest(1)
    page = new_page(browser, color_scheme=scheme)
    sign_in(page, live_server, "alice")
    wait_ready(page)
    page.keyboard.press("v")
    drag(page, "#waveform", 0.1, 0.4)
    page.keyboard.press("n")
    page.keyboard.press("Tab")
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    page.keyboard.press("n")  # the editor open, with a segment in the list
    assert violations(page) == []
    assert page.errors == []
    page.goto("about:blank")  # stops the page's timers and fetches before the database is flushed
    page.context.close()


def test_the_checker_sees_the_segments_read_only(page, live_server, segmented, ingest, alice):
    from reviews import leases, permissions, services
    from tests.helpers import make_user

    segmented.review_mode = "all"
    segmented.save()
    [clip] = ingest(1)
    assignment = leases.assignment_next(reviewer=alice)
    services.transcription_submit(
        reviewer=alice, assignment_id=assignment.pk, text="turn it on yes", labels={"speaker": ["adult"]},
        segments=[{"start_ms": 0, "end_ms": 600, "speaker": "Agent", "text": "turn it on"},
                  {"start_ms": 600, "end_ms": clip.duration_ms, "speaker": "Customer", "text": "yes"}])
    cleo = make_user("cleo", permissions.CHECKER)
    segmented.members.add(cleo)
    sign_in(page, live_server, "cleo")
    page.wait_for_url(f"{live_server.url}/review/")
    page.locator("#status").filter(has_text="Clip ready").wait_for()
    items = page.locator("#segment-list li")
    assert items.count() == 2
    assert items.nth(0).inner_text().split() == ["0.00–0.60", "s", "Agent", "turn", "it", "on"]
    assert "Customer" in items.nth(1).inner_text()
    assert page.locator("#segment-list button, #segment-list input").count() == 0  # read-only
    assert page.console_errors == []
