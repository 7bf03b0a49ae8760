"""Management commands: ingest_clips (folder and manifest) and the idempotent demo seed."""

import csv
import io
import re
import shutil

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import CommandError
from django_otp.plugins.otp_totp.models import TOTPDevice

from reviews.models import AuditEvent, Clip, Project, ServiceToken
from tests.helpers import FIXTURE_CLIPS, tone_bytes


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


def test_manifest_ingest_shows_progress_and_a_summary(project, ingest_user, tmp_path):
    shutil.copy(FIXTURE_CLIPS / "clip01.flac", tmp_path / "a.flac")
    (tmp_path / "b.wav").write_bytes(b"RIFF-not-really")
    (tmp_path / "long.flac").write_bytes(tone_bytes(61.0, "flac"))
    with (tmp_path / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "project", "account_id", "first_name", "device_serial", "recorded_at", "locale"])
        writer.writerow(["a.flac", "demo", "ACCT-SECRET-1", "Yolanda", "SN-SECRET", "2026-11-01T10:00:00Z", "en-US"])
        writer.writerow(["b.wav", "demo", "ACCT-SECRET-2", "Yolanda", "SN-SECRET", "2026-11-01T10:00:00Z", "en-US"])
        writer.writerow(["long.flac", "demo", "ACCT-SECRET-3", "", "", "2026-11-01T10:00:00Z", "en-US"])
        writer.writerow(["missing.flac", "demo", "ACCT-SECRET-4", "", "", "2026-11-01T10:00:00Z", "en-US"])
    output = run("ingest_clips", str(tmp_path))
    assert "[1/4] a.flac: ingested" in output
    assert "[2/4] b.wav: refused (not_audio)" in output
    assert "[3/4] long.flac: refused (audio_too_long)" in output
    assert "[4/4] missing.flac: refused (unreadable_file)" in output
    assert "Summary: 1 ingested, 3 refused (audio_too_long: 1, not_audio: 1, unreadable_file: 1)." in output
    assert "SECRET" not in output and "Yolanda" not in output
    assert Clip.objects.count() == 1


def test_manifest_rows_are_validated_like_api_requests(project, ingest_user, tmp_path):
    for name in ("a", "b", "c", "d", "e"):
        shutil.copy(FIXTURE_CLIPS / "clip01.flac", tmp_path / f"{name}.flac")
    with (tmp_path / "manifest.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "project", "account_id", "first_name", "device_serial", "recorded_at", "locale"])
        writer.writerow(["a.flac", "demo", "ACCT-SECRET-1", "", "", "2026-13-01T10:00:00Z", "en-US"])
        writer.writerow(["b.flac", "demo", "ACCT-SECRET-2", "", "", "0001-01-01T00:00:00+01:00", "en-US"])
        writer.writerow(["c.flac", "nope", "ACCT-SECRET-3", "", "", "2026-11-01T10:00:00Z", "en-US"])
        writer.writerow(["d.flac", "demo", "", "", "", "2026-11-01T10:00:00", "english"])
        writer.writerow(["e.flac", "demo", "ACCT-SECRET-5"])  # a short row: the missing columns are missing fields
    output = run("ingest_clips", str(tmp_path))
    assert "[1/5] a.flac: refused (invalid_metadata: recorded_at)" in output
    assert "[2/5] b.flac: refused (invalid_metadata: recorded_at)" in output
    assert "[3/5] c.flac: refused (unknown_project: project)" in output
    assert "[4/5] d.flac: refused (invalid_metadata: account_id, locale, recorded_at)" in output
    assert "[5/5] e.flac: refused (invalid_metadata: locale, recorded_at)" in output
    assert "Summary: 0 ingested, 5 refused (invalid_metadata: 4, unknown_project: 1)." in output
    assert "SECRET" not in output and "english" not in output
    assert Clip.objects.count() == 0
    denied = AuditEvent.objects.filter(action="clip.ingest", outcome="denied")
    assert [e.details["code"] for e in denied.order_by("id")] == ["invalid_metadata"] * 2 + ["unknown_project"] + [
        "invalid_metadata"] * 2


def test_a_manifest_without_a_required_column_is_an_error(project, ingest_user, tmp_path):
    (tmp_path / "manifest.csv").write_text("file,project,account_id,locale\n")
    with pytest.raises(CommandError, match="recorded_at"):
        run("ingest_clips", str(tmp_path))


def test_folder_ingest_uses_the_options(project, ingest_user, tmp_path):
    for name in ("clip01.flac", "clip03.ogg"):
        shutil.copy(FIXTURE_CLIPS / name, tmp_path / name)
    output = run("ingest_clips", str(tmp_path), "--project", "demo", "--account-id", "ACCT-9",
                 "--recorded-at", "2026-11-01T10:00:00Z")
    assert "Summary: 2 ingested, 0 refused (none)." in output
    assert Clip.objects.filter(locale="en-US").count() == 2


def test_parallel_ingest_keeps_file_order_and_reports_clips_per_second(project, ingest_user, tmp_path):
    names = ["clip01.flac", "clip02.flac", "clip03.ogg", "clip04.flac", "clip05.flac"]
    for name in names:
        shutil.copy(FIXTURE_CLIPS / name, tmp_path / name)
    (tmp_path / "clip06.wav").write_bytes(b"RIFF-not-really")
    output = run("ingest_clips", str(tmp_path), "--project", "demo", "--account-id", "ACCT-9",
                 "--recorded-at", "2026-11-01T10:00:00Z", "--workers", "2")
    lines = output.splitlines()
    assert [line.split(":")[0] for line in lines[:6]] == [f"[{n}/6] {name}" for n, name in
                                                          enumerate([*names, "clip06.wav"], start=1)]
    assert lines[5] == "[6/6] clip06.wav: refused (not_audio)"
    assert re.fullmatch(r"Summary: 5 ingested, 1 refused \(not_audio: 1\)\. \d+\.\d clips/s "
                        r"\(6 files in \d+\.\d s, 2 audio workers\)\.", lines[6])
    # Stored in file order by the main thread: the audit trail reads like the output.
    audited = AuditEvent.objects.filter(action="clip.ingest", outcome="allowed").order_by("id")
    durations = {clip.pk: f"{clip.duration_ms / 1000:.1f} s" for clip in Clip.objects.all()}
    assert [f"ingested ({durations[e.clip_id]})" for e in audited] == [line.split(": ", 1)[1] for line in lines[:5]]


def test_folder_without_manifest_or_options_is_an_error(project, ingest_user, tmp_path):
    with pytest.raises(CommandError):
        run("ingest_clips", str(tmp_path))


def test_seed_demo_is_idempotent(db):
    first = run("seed_demo")
    assert "Summary: 10 ingested, 0 refused (none)." in first
    assert "alice" in first and "demo-ingest-token-not-for-production" in first
    def counts_now():
        return (Clip.objects.count(), get_user_model().objects.count(), AuditEvent.objects.count(),
                ServiceToken.objects.count(), Project.objects.count(), TOTPDevice.objects.count())

    counts = counts_now()
    second = run("seed_demo")
    assert "ingested" not in second
    assert counts == counts_now()
    assert counts[5] == 2  # sam and ada have their demo authenticator
    assert run("demo_totp", "sam").strip().isdigit()
    assert counts[0] == 10
    alice = get_user_model().objects.get(username="alice")
    assert alice.check_password("alice-demo-pass") and alice.groups.filter(name="reviewer").exists()
    assert get_user_model().objects.get(username="ada").is_staff
    assert not get_user_model().objects.get(username="ingest").has_usable_password()
