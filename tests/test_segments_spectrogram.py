"""Issue 12, the two aids: segments with speakers (validated server-side, stored on the draft
and the transcription, shown to checkers, exported) and the spectrogram computed at ingest from
the disguised audio (in the payload, 404 for other people, cleared on purge)."""

import base64
import io
import json
from datetime import timedelta
from unittest import mock

import numpy as np
import pytest
import time_machine
from django.core.management import call_command
from django.utils import timezone

from reviews import audio, lifecycle, spectrogram
from reviews.models import Clip, Draft, Revision, Transcription
from tests.helpers import events, session_client

LABELS = {"speaker": ["adult"]}
SPEAKERS = ["Agent", "Customer"]


@pytest.fixture
def segmented(project):
    project.label_schema.segment_speakers = "\n".join(SPEAKERS)
    project.label_schema.save()
    return project


def lease(client) -> dict:
    response = client.post("/api/v1/assignments/next/")
    assert response.status_code == 201, response.content
    return response.json()


def two_speakers(duration_ms: int) -> list[dict]:
    half = duration_ms // 2
    # Deliberately out of order and with a float: the server sorts and rounds.
    return [{"start_ms": half, "end_ms": duration_ms, "speaker": "Customer", "text": "yes please"},
            {"start_ms": 0.4, "end_ms": half, "speaker": "Agent", "text": "shall I turn it on"}]


# --- Segments -------------------------------------------------------------------------------

def test_the_schema_offers_segments_only_when_it_names_speakers(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assert lease(client)["label_schema"]["segments"] is None
    project.label_schema.segment_speakers = "Agent\n\nCustomer\nAgent\n"
    project.label_schema.save()
    assert lease(client)["label_schema"]["segments"] == {"speakers": SPEAKERS}


def test_a_segmented_draft_and_submission_are_stored_sorted(segmented, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    duration = assignment["clip"]["duration_ms"]
    url = f"/api/v1/assignments/{assignment['id']}/"
    saved = client.put(url + "draft/", {"text": "", "labels": {}, "segments": two_speakers(duration), "version": 0},
                       format="json")
    assert saved.status_code == 200, saved.content
    expected = [{"start_ms": 0, "end_ms": duration // 2, "speaker": "Agent", "text": "shall I turn it on"},
                {"start_ms": duration // 2, "end_ms": duration, "speaker": "Customer", "text": "yes please"}]
    assert saved.json()["segments"] == expected
    assert Draft.objects.get().segments == expected
    assert client.get(url).json()["draft"]["segments"] == expected  # a reload gets them back
    submitted = client.post(url + "submit/", {"text": "shall I turn it on yes please", "labels": LABELS,
                                              "segments": two_speakers(duration)}, format="json")
    assert submitted.status_code == 201, submitted.content
    assert Transcription.objects.get().segments == expected
    assert [r.segments for r in Revision.objects.order_by("version")] == [expected, expected]
    # Segment text is content: the audit trail has none of it.
    trail = json.dumps([e.details for e in events()])
    assert "turn it on" not in trail and "yes please" not in trail


def test_segments_alone_are_a_transcription(segmented, ingest, alice):
    segmented.label_schema.groups.update(required=False)
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    url = f"/api/v1/assignments/{assignment['id']}/submit/"
    empty = client.post(url, {"text": "", "labels": {}, "segments": []}, format="json")
    assert empty.status_code == 400 and empty.json()["code"] == "empty_transcription"
    response = client.post(url, {"text": "", "labels": {}, "segments": two_speakers(assignment["clip"]["duration_ms"])},
                           format="json")
    assert response.status_code == 201, response.content
    assert len(Transcription.objects.get().segments) == 2


BAD = [
    ("not a list", {"a": 1}, "segments"),
    ("one is not an object", ["0-100"], "segments[0]"),
    ("no start", [{"end_ms": 100, "speaker": "Agent"}], "segments[0].start_ms"),
    ("no speaker", [{"start_ms": 0, "end_ms": 100}], "segments[0].speaker"),
    ("start is text", [{"start_ms": "0", "end_ms": 100, "speaker": "Agent"}], "segments[0].start_ms"),
    ("start is a boolean", [{"start_ms": True, "end_ms": 100, "speaker": "Agent"}], "segments[0].start_ms"),
    ("negative start", [{"start_ms": -5, "end_ms": 100, "speaker": "Agent"}], "segments[0].start_ms"),
    ("end before start", [{"start_ms": 500, "end_ms": 400, "speaker": "Agent"}], "segments[0].end_ms"),
    ("empty segment", [{"start_ms": 500, "end_ms": 500, "speaker": "Agent"}], "segments[0].end_ms"),
    ("past the clip", [{"start_ms": 0, "end_ms": 10 ** 7, "speaker": "Agent"}], "segments[0].end_ms"),
    ("unknown speaker", [{"start_ms": 0, "end_ms": 100, "speaker": "Narrator"}], "segments[0].speaker"),
    ("text not text", [{"start_ms": 0, "end_ms": 100, "speaker": "Agent", "text": 5}], "segments[0].text"),
    ("text too long", [{"start_ms": 0, "end_ms": 100, "speaker": "Agent", "text": "x" * 1001}], "segments[0].text"),
    ("unknown field", [{"start_ms": 0, "end_ms": 100, "speaker": "Agent", "voice": "deep"}], "segments[0].voice"),
    ("too many", [{"start_ms": 0, "end_ms": 100, "speaker": "Agent"}] * 201, "segments"),
    ("second one bad", [{"start_ms": 0, "end_ms": 100, "speaker": "Agent"},
                        {"start_ms": 0, "end_ms": 100, "speaker": "agent"}], "segments[1].speaker"),
]


@pytest.mark.parametrize("endpoint", ["draft", "submit"])
@pytest.mark.parametrize("case, segments, field", BAD, ids=[case for case, _, _ in BAD])
def test_each_bad_segment_answers_400_naming_the_field_and_stores_nothing(segmented, ingest, alice, endpoint,
                                                                         case, segments, field):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    before = len(events())
    url = f"/api/v1/assignments/{assignment['id']}/{endpoint}/"
    body = {"text": "words", "labels": LABELS, "segments": segments}
    response = client.put(url, {**body, "version": 0}, format="json") if endpoint == "draft" else client.post(
        url, body, format="json")
    assert response.status_code == 400, response.content
    answer = response.json()
    assert answer["code"] == "invalid_segments" and list(answer["fields"]) == [field]
    assert not Draft.objects.exists() and not Revision.objects.exists() and not Transcription.objects.exists()
    assert len(events()) == before  # no draft.save, no transcription.submit
    assert Clip.objects.get().status == "open" and assignment["status"] == "live"


def test_a_project_without_speakers_refuses_segments(project, ingest, alice):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    response = client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {
        "text": "words", "labels": LABELS, "segments": [{"start_ms": 0, "end_ms": 100, "speaker": "Agent"}]},
        format="json")
    assert response.status_code == 400 and response.json()["fields"] == {
        "segments": "This project does not use segments."}
    assert not Transcription.objects.exists() and not events("transcription.submit")


def test_bob_cannot_save_segments_on_alices_assignment(segmented, ingest, alice, bob):
    ingest(1)
    assignment = lease(session_client(alice))
    response = session_client(bob).put(f"/api/v1/assignments/{assignment['id']}/draft/", {
        "text": "", "labels": {}, "version": 0, "segments": [{"start_ms": 0, "end_ms": 100, "speaker": "Agent"}]},
        format="json")
    assert response.status_code == 404
    [denied] = events("access.denied")
    assert denied.actor_id == bob.pk and denied.details["reason"] == "not_owner"
    assert not Draft.objects.exists()


def test_the_export_carries_the_segments(segmented, ingest, alice, ada, tmp_path):
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    duration = assignment["clip"]["duration_ms"]
    client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {
        "text": "shall I turn it on yes please", "labels": LABELS, "segments": two_speakers(duration)}, format="json")
    result = lifecycle.transcripts_export(admin=ada, project=segmented, out_dir=tmp_path)
    [row] = [json.loads(line) for line in result.data_path.read_text().splitlines()]
    expected = [{"start_ms": 0, "end_ms": duration // 2, "speaker": "Agent", "text": "shall I turn it on"},
                {"start_ms": duration // 2, "end_ms": duration, "speaker": "Customer", "text": "yes please"}]
    assert row["transcriptions"][0]["segments"] == expected
    assert row["final"]["segments"] == expected and row["final"]["source"] == "single"
    # The audit event of the export names counts, never content.
    [event] = events("transcripts.export")
    assert "yes please" not in json.dumps(event.details)


def test_a_checker_sees_the_segments(segmented, ingest, alice, settings):
    from reviews import permissions
    from tests.helpers import make_user

    segmented.review_mode = "all"
    segmented.save()
    cleo = make_user("cleo", permissions.CHECKER)
    segmented.members.add(cleo)
    ingest(1)
    client = session_client(alice)
    assignment = lease(client)
    duration = assignment["clip"]["duration_ms"]
    client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {
        "text": "words", "labels": LABELS, "segments": two_speakers(duration)}, format="json")
    item = session_client(cleo).post("/api/v1/reviews/next/")
    assert item.status_code == 201, item.content
    body = item.json()
    assert [s["speaker"] for s in body["transcription"]["segments"]] == ["Agent", "Customer"]
    assert body["clip"]["spectrogram"]["bands"] == spectrogram.BANDS


# --- Spectrogram ----------------------------------------------------------------------------

def _cells(picture: dict) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(picture["data"]), dtype=np.uint8)
    return raw.reshape(picture["columns"], picture["bands"])


def test_the_spectrogram_is_a_coarse_log_mel_picture():
    rate = 16000
    t = np.arange(int(rate * 2.0)) / rate
    tone = 0.5 * np.sin(2 * np.pi * 1000 * t) * (t < 1.0)  # 1 kHz for a second, then silence
    picture = spectrogram.spectrogram_compute(tone.astype(np.float32), rate)
    cells = _cells(picture)
    assert picture["bands"] == 64 and picture["columns"] == 20  # 10 columns a second
    loud = cells[: picture["columns"] // 2 - 2]
    quiet = cells[picture["columns"] // 2 + 2:]
    assert loud.max() == 255 and quiet.max() == 0
    peak_band = int(np.bincount(loud.argmax(axis=1)).argmax())
    # 1 kHz on a 50-8000 Hz mel scale sits a little under half way up.
    assert 20 <= peak_band <= 32
    long = spectrogram.spectrogram_compute(np.zeros(rate * 60, dtype=np.float32) + 0.01, rate)
    assert long["columns"] == spectrogram.MAX_COLUMNS
    assert spectrogram.spectrogram_compute(np.zeros(0, dtype=np.float32), rate) == {}


def test_the_spectrogram_is_computed_at_ingest_from_the_disguised_audio(project, ingest):
    seen = []
    real = audio.clip_spectrogram

    def spy(segment):
        seen.append(segment.raw_data)
        return real(segment)

    # Spy on what the spectrogram is computed from, against what the disguise produced. The
    # worker process would hide a spy, so this runs the same work in this process.
    disguised = []
    real_normalize = audio.loudness_normalize

    def keep(segment):
        out = real_normalize(segment)
        disguised.append(out.raw_data)
        return out

    with mock.patch.object(audio, "_in_worker", lambda data, chosen, rng: audio._clip_audio_work(
            data, chosen, rng or audio.random.SystemRandom())), \
            mock.patch.object(audio, "clip_spectrogram", spy), mock.patch.object(audio, "loudness_normalize", keep):
        [clip] = ingest(1)
    assert seen == disguised and len(seen) == 1  # the disguised, normalized samples, nothing else
    clip.refresh_from_db()
    assert clip.spectrogram["bands"] == 64
    assert clip.spectrogram["columns"] == -(-clip.duration_ms * spectrogram.MAX_COLUMNS_PER_SECOND // 1000)
    assert _cells(clip.spectrogram).max() == 255


def test_the_worker_path_stores_it_and_the_page_gets_it(project, ingest, alice):
    [clip] = ingest(1)
    clip.refresh_from_db()
    assert clip.spectrogram["columns"] > 10
    payload = lease(session_client(alice))
    assert payload["clip"]["spectrogram"] == clip.spectrogram


def test_bob_gets_404_for_alices_assignment_and_its_spectrogram(project, ingest, alice, bob):
    ingest(1)
    assignment = lease(session_client(alice))
    response = session_client(bob).get(f"/api/v1/assignments/{assignment['id']}/")
    assert response.status_code == 404 and "spectrogram" not in response.content.decode()
    [denied] = events("access.denied")
    assert denied.actor_id == bob.pk and denied.details["reason"] == "not_owner"


def test_a_clip_ingested_before_has_no_spectrogram_until_the_backfill(project, ingest, alice):
    [clip] = ingest(1)
    computed = Clip.objects.get(pk=clip.pk).spectrogram
    Clip.objects.filter(pk=clip.pk).update(spectrogram={})
    assert lease(session_client(alice))["clip"]["spectrogram"] is None  # absent, no error
    out = io.StringIO()
    call_command("spectrogram_backfill", stdout=out)
    assert "computed for 1 clips" in out.getvalue()
    again = Clip.objects.get(pk=clip.pk).spectrogram
    # From the stored MP3 (the disguised copy) rather than the PCM ingest had: aligned, close, not equal.
    assert again["columns"] == computed["columns"]
    assert np.abs(_cells(again).astype(int) - _cells(computed).astype(int)).mean() < 8
    call_command("spectrogram_backfill", stdout=out)
    assert "computed for 0 clips" in out.getvalue()


def test_purge_clears_the_spectrogram_with_the_peaks(project, ingest, settings):
    settings.RETENTION_AUDIO_DAYS = 730
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=800)):
        [clip] = ingest(1, recorded_at="2024-09-01T10:00:00Z")
    assert Clip.objects.get(pk=clip.pk).spectrogram
    with time_machine.travel(now):
        lifecycle.retention_apply()
    clip.refresh_from_db()
    assert clip.status == "purged" and clip.peaks == [] and clip.spectrogram == {}
