"""The customer privacy lifecycle: opt-out/in, erasure, retention, key rotation, export."""

import io
import json
from datetime import timedelta

import pytest
import time_machine
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.utils import timezone

from reviews import lifecycle
from reviews.audit import chain_verify
from reviews.models import Assignment, Clip, Draft, Revision, SubjectOptOut, Transcription
from tests.helpers import events, session_client, speech_bytes

LABELS = {"speaker": ["adult"]}


def upload(client, account_id):
    return client.post("/api/v1/clips/", {
        "audio": SimpleUploadedFile("a.flac", speech_bytes()), "project": "demo", "account_id": account_id,
        "recorded_at": "2026-11-20T08:00:00Z", "locale": "en-US"}, format="multipart")


def test_opt_out_pulls_clips_stops_tokens_and_refuses_new_ones(project, ingest, ingest_client, alice, bob):
    ingest(2, account_id="ACCT-OPT")
    ingest(1, account_id="ACCT-OTHER")
    client = session_client(alice)
    held = client.post("/api/v1/assignments/next/").json()
    token = client.post(held["audio_token_url"]).json()["token"]
    response = ingest_client.post("/api/v1/subjects/opt-out/", {"account_id": "ACCT-OPT"}, format="json")
    assert response.status_code == 200 and response.json() == {"clips_withheld": 2, "leases_revoked": 1}
    assert "ACCT-OPT" not in response.content.decode()

    assert client.get(held["audio_url"], HTTP_X_AUDIO_TOKEN=token).status_code == 404
    other = session_client(bob).post("/api/v1/assignments/next/").json()
    assert Clip.objects.get(pk=other["clip"]["id"]).subject_key == lifecycle.subject_key_derive("ACCT-OTHER")
    refused = upload(ingest_client, "ACCT-OPT")
    assert refused.status_code == 422 and refused.json()["code"] == "subject_opted_out"
    assert Clip.objects.count() == 3
    [event] = events("subject.opt_out")
    assert event.details["subject_key"] == lifecycle.subject_key_derive("ACCT-OPT") and event.role == "service"

    back = ingest_client.post("/api/v1/subjects/opt-in/", {"account_id": "ACCT-OPT"}, format="json")
    assert back.json() == {"was_opted_out": True, "clips_released": 2}
    assert upload(ingest_client, "ACCT-OPT").status_code == 201
    assert len(events("subject.opt_in")) == 1


def test_only_the_service_may_opt_out(project, alice, ingest_user):
    response = session_client(alice).post("/api/v1/subjects/opt-out/", {"account_id": "A"}, format="json")
    assert response.status_code == 404 and not SubjectOptOut.objects.exists()


def test_erasure_removes_every_trace_but_the_pseudonym_in_the_trail(project, ingest, ingest_client, alice,
                                                                    _isolated_media,
                                                                    django_capture_on_commit_callbacks):
    mine = ingest(2, account_id="ACCT-ERASE")
    kept = ingest(1, account_id="ACCT-KEEP")
    client = session_client(alice)
    first = client.post("/api/v1/assignments/next/").json()
    client.put(f"/api/v1/assignments/{first['id']}/draft/", {"text": "draft", "labels": {}, "version": 0},
               format="json")
    client.post(f"/api/v1/assignments/{first['id']}/submit/", {"text": "done", "labels": LABELS}, format="json")
    second = client.post("/api/v1/assignments/next/").json()
    my_files = [clip.audio.name for clip in mine]
    assert all((_isolated_media / name).exists() for name in my_files)

    with django_capture_on_commit_callbacks(execute=True):  # files go once the deletion commits
        response = ingest_client.post("/api/v1/subjects/erase/", {"account_id": "ACCT-ERASE"}, format="json")
    assert response.status_code == 200
    counts = response.json()
    assert counts["clips"] == 2 and counts["audio_files"] == 2 and counts["transcriptions"] == 1
    assert counts["assignments"] == 2 and counts["drafts"] == 1 and counts["revisions"] == 2

    remaining_files = {p.name for p in _isolated_media.rglob("*") if p.is_file()}
    assert remaining_files == {kept[0].audio.name.split("/")[-1]}  # the file scan: none of theirs is left
    assert list(Clip.objects.values_list("pk", flat=True)) == [kept[0].pk]
    assert not Transcription.objects.exists() and not Draft.objects.exists() and not Revision.objects.exists()
    assert Assignment.objects.filter(pk=second["id"]).count() == 0
    [event] = events("subject.erase")
    assert event.details["subject_key"] == lifecycle.subject_key_derive("ACCT-ERASE")
    assert chain_verify().ok


def test_clip_erasure_is_subject_erasure_for_chosen_clips_with_one_event_each(
        project, ingest, alice, ada, _isolated_media, django_capture_on_commit_callbacks):
    first, second, kept = ingest(3)
    client = session_client(alice)
    held = client.post("/api/v1/assignments/next/").json()
    client.put(f"/api/v1/assignments/{held['id']}/draft/", {"text": "draft", "labels": {}, "version": 0},
               format="json")
    assert Assignment.objects.get(pk=held["id"]).clip_id == first.pk  # the oldest: a live lease on it

    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        counts = lifecycle.clip_erase(actor=ada, clip_ids=[first.pk, second.pk])
        assert (_isolated_media / first.audio.name).exists()  # until the deletion commits
    assert callbacks
    assert counts == {"clips": 2, "assignments": 1, "drafts": 1, "revisions": 1, "transcriptions": 0,
                      "audio_files": 2}
    remaining_files = {p.name for p in _isolated_media.rglob("*") if p.is_file()}
    assert remaining_files == {kept.audio.name.split("/")[-1]}
    assert list(Clip.objects.values_list("pk", flat=True)) == [kept.pk]
    assert client.get(f"/api/v1/assignments/{held['id']}/").status_code == 404  # alice's lease went with it
    erased = events("clip.erase")
    assert [e.clip_id for e in erased] == [first.pk, second.pk]
    assert erased[0].details == {"clips": 1, "assignments": 1, "drafts": 1, "revisions": 1, "transcriptions": 0,
                                 "audio_files": 1}
    assert all(e.actor_name == "ada" and "subject_key" not in e.details for e in erased)
    assert not events("subject.erase") and chain_verify().ok


def test_clip_erasure_of_nothing_writes_nothing(project, ada):
    assert lifecycle.clip_erase(actor=ada, clip_ids=[]) == {"clips": 0}
    assert not events("clip.erase")


def test_retention_unlinks_then_purges_audio(project, ingest, _isolated_media, settings,
                                            django_capture_on_commit_callbacks):
    settings.RETENTION_UNLINK_DAYS, settings.RETENTION_AUDIO_DAYS = 180, 730
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=800)):
        very_old = ingest(1, account_id="ACCT-OLD", recorded_at="2024-09-01T10:00:00Z")[0]
    with time_machine.travel(now - timedelta(days=200)):
        old = ingest(1, account_id="ACCT-MID", recorded_at="2026-05-01T10:00:00Z")[0]
    fresh = ingest(1, account_id="ACCT-NEW")[0]
    out = io.StringIO()
    with time_machine.travel(now), django_capture_on_commit_callbacks(execute=True):
        call_command("apply_retention", stdout=out)
    assert "unlinked 2, audio_purged 1, clips_deleted 0" in out.getvalue()
    very_old.refresh_from_db(), old.refresh_from_db(), fresh.refresh_from_db()
    assert very_old.subject_key is None and very_old.status == "purged" and not very_old.audio
    assert old.subject_key is None and old.audio
    assert fresh.subject_key == lifecycle.subject_key_derive("ACCT-NEW")
    assert {p.name for p in _isolated_media.rglob("*.mp3")} == {old.audio.name.split("/")[-1],
                                                               fresh.audio.name.split("/")[-1]}
    # An unlinked clip can no longer be found by account id.
    assert lifecycle.subject_erase(actor=None, account_id="ACCT-MID")["clips"] == 0


def test_retention_drops_transcripts_where_the_project_says_so(project, ingest, alice, settings):
    project.keep_transcripts_after_audio_purge = False
    project.save()
    now = timezone.now()
    with time_machine.travel(now - timedelta(days=800)):
        ingest(1, recorded_at="2024-09-01T10:00:00Z")
    with time_machine.travel(now):
        assert lifecycle.retention_apply()["clips_deleted"] == 1
    assert not Clip.objects.exists()


def test_key_rotation_leaves_the_old_key_linking_nothing(project, ingest, settings):
    [clip] = ingest(1, account_id="ACCT-ROT")
    old_keys = list(settings.PSEUDONYM_KEYS)
    assert Clip.objects.filter(subject_key=lifecycle.subject_key_derive("ACCT-ROT")).exists()
    out = io.StringIO()
    import os

    os.environ["NEW_PSEUDONYM_KEY"] = "n" * 16 + "ew-rotation-key-for-the-test-0123456789"
    try:
        call_command("rotate_pseudonym_key", stdout=out)
    finally:
        del os.environ["NEW_PSEUDONYM_KEY"]
    printed = out.getvalue().strip().splitlines()[-1]
    assert printed.startswith("PSEUDONYM_KEY=") and printed.count(",") == len(old_keys)
    settings.PSEUDONYM_KEYS = printed.split("=", 1)[1].split(",")
    assert not Clip.objects.filter(subject_key=lifecycle.subject_key_derive("ACCT-ROT", old_keys)).exists()
    assert Clip.objects.filter(subject_key=lifecycle.subject_key_derive("ACCT-ROT")).get() == clip
    assert len(events("subject.rekey")) == 1


def test_export_leaves_out_personal_information_and_writes_a_manifest(project, ingest, alice, ada, tmp_path):
    ingest(2)
    client = session_client(alice)
    for labels in ({"speaker": ["adult"]}, {"speaker": ["adult"], "issues": ["contains-personal-information"]}):
        assignment = client.post("/api/v1/assignments/next/").json()
        client.post(f"/api/v1/assignments/{assignment['id']}/submit/", {"text": "words", "labels": labels},
                    format="json")
    out = io.StringIO()
    call_command("export_transcripts", "--project", "demo", "--out", str(tmp_path), "--admin", "ada", stdout=out)
    [data] = tmp_path.glob("transcripts-*.jsonl")
    [manifest] = tmp_path.glob("manifest-*.json")
    rows = [json.loads(line) for line in data.read_text().splitlines()]
    listing = json.loads(manifest.read_text())
    assert len(rows) == 1 and rows[0]["transcriptions"][0]["labels"] == {"speaker": ["adult"]}
    assert listing["clips"] == 1 and listing["withheld_personal_information"] == 1
    assert listing["clip_ids"] == [rows[0]["clip"]] and listing["audio"] == "never exported"
    import hashlib

    assert listing["sha256"] == hashlib.sha256(data.read_bytes()).hexdigest()
    [event] = events("transcripts.export")
    assert event.actor_name == "ada" and event.details["clips"] == 1
    assert not list(tmp_path.glob("*.mp3"))

    call_command("export_transcripts", "--project", "demo", "--out", str(tmp_path / "all"), "--admin", "ada",
                 "--include-personal-information", stdout=io.StringIO())
    [data_all] = (tmp_path / "all").glob("transcripts-*.jsonl")
    assert len(data_all.read_text().splitlines()) == 2


def test_export_is_for_admins_only(project, alice, tmp_path):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError):
        call_command("export_transcripts", "--project", "demo", "--out", str(tmp_path / "out"), "--admin", "alice")
    assert not (tmp_path / "out").exists()
