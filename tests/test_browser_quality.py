"""Issue 11 in a real browser: a transcriber corrects the recognizer's draft (a gold clip
and an ordinary one, which look the same), a paused reviewer is told why, and a supervisor
opens and sorts the quality page. The screenshots go to docs/."""

import json
from datetime import timedelta
from decimal import Decimal

import pytest
import time_machine
from django.utils import timezone

from reviews import leases, services
from reviews.models import Clip, ReviewerPause, Transcription
from tests.helpers import DOCS, PASSWORD, sign_in, totp_device, totp_now, wait_js

pytestmark = pytest.mark.browser
ASR = "turn of the light in the kitchen"
ADULT = {"speaker": ["adult"]}


def wait_ready(page):
    page.locator("#status").filter(has_text="Clip ready").wait_for()


def visible_task(page) -> str:
    """What the reviewer sees of the task, without the clock (clip lengths differ)."""
    return page.evaluate("""(() => {
        const task = document.getElementById('task').cloneNode(true);
        task.querySelector('#clock').remove();
        return task.innerText + '|' + document.getElementById('text').value + '|' +
               document.getElementById('asr-state').hidden;
    })()""")


def test_a_transcriber_corrects_the_asr_draft_and_submits(page, live_server, project, ingest, alice):
    ingest(1, asr_text=ASR, asr_confidence="0.64")
    ingest(1, asr_text=ASR, asr_confidence="0.64", is_gold="true", gold_text="Turn off the light in the kitchen.",
           gold_labels=json.dumps(ADULT))
    project.gold_rate = Decimal("1")  # the gold clip comes first
    project.save()
    sign_in(page, live_server, "alice")
    page.wait_for_url(f"{live_server.url}/workspace/")
    wait_ready(page)

    # The text box starts from the recognizer's guess, marked as such.
    assert page.locator("#text").input_value() == ASR
    marker = page.locator("#asr-state")
    assert marker.is_visible() and "From ASR" in marker.inner_text() and "64%" in marker.inner_text()
    assert "gold" not in page.locator("body").inner_text().lower()
    first_look = visible_task(page)
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "workspace-asr.png"))

    # Correct one word: the mark goes as soon as the text is the reviewer's own.
    page.locator("#text").click()
    page.keyboard.press("Control+End")
    for _ in range(len(" the light in the kitchen")):
        page.keyboard.press("ArrowLeft")
    page.keyboard.type("f")  # "of" -> "off"
    assert page.locator("#text").input_value() == "turn off the light in the kitchen"
    assert not marker.is_visible()
    page.keyboard.press("Escape")
    page.keyboard.press("6")  # Speaker: adult
    page.keyboard.press("Control+Enter")
    wait_js(page, "window.__workspace.readyAt > window.__workspace.submittedAt")
    wait_ready(page)

    first = Transcription.objects.get()
    assert first.clip.is_gold and first.text == "turn off the light in the kitchen"
    assert first.draft_source == "asr" and first.asr_wer == pytest.approx(1 / 7)
    assert first.gold_wer == 0.0 and first.gold_label_accuracy == 1.0

    # The ordinary clip that follows looks exactly like the gold one did.
    assert not Clip.objects.get(assignments__status="live").is_gold
    assert visible_task(page) == first_look
    assert page.console_errors == []


def test_a_paused_reviewer_is_told_why(page, live_server, project, ingest, bob):
    ingest(1)
    ReviewerPause.objects.create(
        reviewer=bob, project=project, paused_at=timezone.now(), accuracy=0.55, threshold=Decimal("0.8"),
        gold_count=5, reason="Your work on Demo is paused: your accuracy on reference clips was 55% over your last 5, "
                             "below the project's minimum of 80%. An admin will talk it through with you and lift "
                             "the pause.")
    sign_in(page, live_server, "bob")
    page.wait_for_url(f"{live_server.url}/workspace/")
    panel = page.locator("#quota")
    panel.wait_for()
    assert page.locator("#quota-title").inner_text() == "Your work is paused"
    assert "55%" in panel.inner_text() and "minimum of 80%" in panel.inner_text()
    page.screenshot(path=str(DOCS / "workspace-paused.png"))
    # The refusal (429) is the expected answer here, not a page error.
    assert [e for e in page.console_errors if "429" not in e] == []


def _days_of_work(project, ingest, alice, bob):
    """Three days: alice steady and accurate, bob faster but wrong on gold (and paused)."""
    project.transcriptions_per_clip = 2
    project.save()
    now = timezone.now().replace(hour=10, minute=0, second=0, microsecond=0)
    for day in (3, 2, 1):
        start = now - timedelta(days=day)
        with time_machine.travel(start - timedelta(hours=1), tick=False):
            ingest(2, asr_text="set a timer for ten minutes")
        with time_machine.travel(start - timedelta(minutes=30), tick=False):
            ingest(1, is_gold="true", gold_text=f"play some jazz number {day}", gold_labels=json.dumps(ADULT))
        for reviewer, seconds, gold_text, ordinary in (
                (alice, 45, f"play some jazz number {day}", "set a timer for ten minutes"),
                (bob, 20 + 5 * day, "play the news", "set a timer for two minutes")):
            for n in range(3):
                project.gold_rate = Decimal("1" if n == 0 else "0")
                project.save()
                at = start + timedelta(minutes=5 * n)
                with time_machine.travel(at, tick=False):
                    lease = leases.assignment_next(reviewer=reviewer)
                text = gold_text if lease.clip.is_gold else ordinary
                with time_machine.travel(at + timedelta(seconds=seconds * (n + 1)), tick=False):
                    services.transcription_submit(reviewer=reviewer, assignment_id=lease.pk, text=text, labels=ADULT)
    # Checkers' verdicts (issue 11, part 2) on some of the ordinary clips.
    ordinary = Transcription.objects.filter(gold_wer__isnull=True).order_by("submitted_at")
    for transcription in ordinary.filter(reviewer=alice)[:3]:
        Transcription.objects.filter(pk=transcription.pk).update(review_status="accepted")
    for status, transcription in zip(("accepted", "rejected", "edited"), ordinary.filter(reviewer=bob)[:3]):
        Transcription.objects.filter(pk=transcription.pk).update(review_status=status)
    ReviewerPause.objects.create(reviewer=bob, project=project, paused_at=timezone.now(), reason="Paused.",
                                 accuracy=0.4, threshold=Decimal("0.8"), gold_count=3)


def test_a_supervisor_opens_and_sorts_the_quality_page(browser, live_server, project, ingest, alice, bob, sam):
    _days_of_work(project, ingest, alice, bob)
    totp_device(sam)
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: msg.type == "error" and errors.append(msg.text))
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"{r.status} {r.url}"))

    page.goto(f"{live_server.url}/console/")
    page.get_by_label("Username").fill("sam")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("Authenticator code").fill(totp_now(sam))
    page.get_by_role("button", name="Confirm").click()
    page.wait_for_url(f"{live_server.url}/console/")
    page.get_by_role("link", name="Quality").click()
    page.get_by_role("heading", name="Reviewer quality").wait_for()

    rows = page.locator("#quality-table tbody tr")
    assert [rows.nth(i).get_attribute("data-reviewer") for i in range(rows.count())] == ["alice", "bob"]
    assert page.locator("#quality-table svg.spark polyline").count() >= 4  # two sparklines per reviewer
    bob_row = page.locator('#quality-table tr[data-reviewer="bob"]')
    assert "Paused" in bob_row.inner_text()

    # Sort by gold accuracy: best first; a second click reverses.
    page.locator('#quality-table a.sort[data-sort="gold_accuracy"]').click()
    page.wait_for_url("**sort=gold_accuracy**")
    assert rows.first.get_attribute("data-reviewer") == "alice"
    header = page.locator('#quality-table th:has(a[data-sort="gold_accuracy"])')
    assert header.get_attribute("aria-sort") == "descending"
    alice_cells = page.locator('#quality-table tr[data-reviewer="alice"] td').all_inner_texts()
    # clips, gold, gold accuracy, gold WER, gold labels, peer agreement (1 word in 6), accepted, ..., ASR kept
    assert alice_cells[:7] == ["9", "3", "100%", "0.00", "100%", "83%", "100%"] and alice_cells[9] == "100%"
    DOCS.mkdir(exist_ok=True)
    page.screenshot(path=str(DOCS / "console-quality.png"), full_page=True)
    page.locator('#quality-table a.sort[data-sort="gold_accuracy"]').click()
    page.wait_for_url("**order=asc**")
    assert rows.first.get_attribute("data-reviewer") == "bob"

    # One row per reviewer and day.
    page.get_by_role("link", name="One row per reviewer and day").click()
    page.get_by_role("heading", name="Reviewer quality").wait_for()
    assert page.locator("#quality-table caption").inner_text() == "Quality per reviewer and day"
    assert page.locator("#quality-table tbody tr").count() == 6
    assert errors == [], "\n".join(errors)
    context.close()
