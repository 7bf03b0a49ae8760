"""What a fast keyboard reviewer feels, measured in the browser over 20 clips: submit to next
clip ready, and the first play of each clip (key press to sound), as median and p90.

It prints the figures (the README quotes them) and asserts only behaviour: timing asserts
would fail on a slow machine for no fault of the code."""

import platform
import statistics

import pytest

from reviews.models import AuditEvent, Transcription
from tests.helpers import sign_in, wait_js

pytestmark = pytest.mark.browser
CLIPS = 20


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, round(0.9 * len(ordered)) - 1)]


def test_twenty_clips_at_keyboard_speed(page, live_server, project, ingest, alice):
    ingest(CLIPS)
    sign_in(page, live_server, "alice")
    page.locator("#status").filter(has_text="Clip ready").wait_for()
    submit_to_ready, first_play = [], []
    for number in range(CLIPS):
        # Play as soon as the clip is on the page: the fetch started when it was shown, so
        # this is the worst case for the first play (the bytes may still be on their way).
        page.keyboard.press("k")
        wait_js(page, f"window.__workspace.firstPlayMs.length > {number}")
        page.keyboard.press("k")
        page.keyboard.press("6")
        before = page.evaluate("window.__workspace.readyAt")
        page.keyboard.press("Control+Enter")
        if number < CLIPS - 1:
            wait_js(page, f"window.__workspace.readyAt > {before}")
            submit_to_ready.append(page.evaluate("window.__workspace.readyAt - window.__workspace.submittedAt"))
        else:
            page.locator("#empty").wait_for(state="visible")
    first_play = page.evaluate("window.__workspace.firstPlayMs")

    assert Transcription.objects.count() == CLIPS
    assert AuditEvent.objects.filter(action="audio.play", actor=alice).count() == CLIPS  # one fetch per lease
    assert not AuditEvent.objects.filter(action="access.denied").exists()
    assert page.console_errors == []
    print(f"\nmachine: {platform.machine()}, "
          f"{__import__('os').cpu_count()} cores, {platform.python_implementation()} {platform.python_version()}")
    print(f"submit -> next clip ready over {len(submit_to_ready)} clips: median "
          f"{statistics.median(submit_to_ready):.0f} ms, p90 {p90(submit_to_ready):.0f} ms, "
          f"range {min(submit_to_ready):.0f}-{max(submit_to_ready):.0f} ms")
    print(f"first play (key to sound) over {len(first_play)} clips: median {statistics.median(first_play):.0f} ms, "
          f"p90 {p90(first_play):.0f} ms, range {min(first_play):.0f}-{max(first_play):.0f} ms")
