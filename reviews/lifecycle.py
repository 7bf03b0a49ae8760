"""The customer privacy lifecycle: pseudonyms, opt-out and opt-in, erasure, retention,
key rotation and the admins' transcript export. Every operation is audited."""

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import timedelta
from datetime import timezone as dt_timezone
from pathlib import Path

from django.conf import settings
from django.contrib.contenttypes.models import ContentType
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import Count
from django.db.models.functions import TruncDate
from django.utils import timezone
from guardian.models import UserObjectPermission

from .audit import audit_record
from .errors import InvalidInput
from .models import Assignment, AuditEvent, Clip, Draft, Escalation, Revision, SubjectOptOut, Transcription
from .review import clip_final, project_label_alpha

PERSONAL_INFO_LABEL = "contains-personal-information"


def subject_key_derive(account_id: str, keys: list[str] | None = None) -> str:
    """Return the keyed pseudonym of an account id: HMAC-SHA256 under each key layer in turn."""
    value = account_id.strip()
    for key in keys or settings.PSEUDONYM_KEYS:
        value = hmac.new(key.encode(), value.encode(), hashlib.sha256).hexdigest()
    return value


def _subject(account_id: str) -> str:
    account_id = (account_id or "").strip()
    if not account_id or len(account_id) > 128:
        raise InvalidInput("An account id is required.", code="invalid_account_id",
                           fields={"account_id": "Required, at most 128 characters."})
    return subject_key_derive(account_id)


def subject_opted_out(subject_key: str) -> bool:
    return SubjectOptOut.objects.filter(subject_key=subject_key).exists()


def _end_live_leases(clips, now) -> int:
    from .leases import assignment_revoke  # the one place that closes a live lease

    live = Assignment.objects.select_for_update().select_related("clip", "reviewer").filter(
        clip__in=clips, status=Assignment.Status.LIVE)
    count = 0
    for assignment in live:
        assignment_revoke(assignment, now)
        count += 1
    return count


def subject_opt_out(*, actor, account_id: str) -> dict:
    """From now on the subject's clips are in no queue and cannot be heard; new ones are refused."""
    subject_key, now = _subject(account_id), timezone.now()
    with transaction.atomic():
        SubjectOptOut.objects.get_or_create(subject_key=subject_key, defaults={"opted_out_at": now})
        clips = Clip.objects.filter(subject_key=subject_key)
        withheld = clips.filter(withheld=False).update(withheld=True)
        revoked = _end_live_leases(clips, now)
        counts = {"clips_withheld": withheld, "leases_revoked": revoked}
        audit_record(actor=actor, action="subject.opt_out", object_type="subject", object_id=subject_key[:16],
                     details={"subject_key": subject_key, **counts})
    return counts


def subject_opt_in(*, actor, account_id: str) -> dict:
    """Undo an opt-out: the subject's clips may be reviewed again."""
    subject_key = _subject(account_id)
    with transaction.atomic():
        removed, _ = SubjectOptOut.objects.filter(subject_key=subject_key).delete()
        released = Clip.objects.filter(subject_key=subject_key, withheld=True).update(withheld=False)
        counts = {"was_opted_out": bool(removed), "clips_released": released}
        audit_record(actor=actor, action="subject.opt_in", object_type="subject", object_id=subject_key[:16],
                     details={"subject_key": subject_key, **counts})
    return counts


def _clips_delete(clips: list[Clip]) -> dict:
    """Delete clips with everything hanging off them; return what went. Files go after commit."""
    ids = [clip.pk for clip in clips]
    counts = {
        "clips": len(ids),
        "assignments": Assignment.objects.filter(clip_id__in=ids).count(),
        "drafts": Draft.objects.filter(assignment__clip_id__in=ids).count(),
        "revisions": Revision.objects.filter(assignment__clip_id__in=ids).count(),
        "transcriptions": Transcription.objects.filter(clip_id__in=ids).count(),
        "audio_files": sum(1 for clip in clips if clip.audio),
    }
    UserObjectPermission.objects.filter(content_type=ContentType.objects.get_for_model(Clip),
                                        object_pk__in=[str(i) for i in ids]).delete()
    Clip.objects.filter(pk__in=ids).delete()  # cascades to assignments, drafts, revisions, transcriptions
    names = [clip.audio.name for clip in clips if clip.audio]
    transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
    return counts


def _clips_erase(clips: list[Clip], now) -> dict:
    """End the clips' live leases, then delete them and their work; files go after commit."""
    _end_live_leases(clips, now)
    return _clips_delete(clips)


def subject_erase(*, actor, account_id: str) -> dict:
    """Delete every recording of a subject and all work on it; the trail keeps the pseudonym and counts."""
    subject_key, now = _subject(account_id), timezone.now()
    with transaction.atomic():
        clips = list(Clip.objects.select_for_update().filter(subject_key=subject_key))
        counts = _clips_erase(clips, now)
        audit_record(actor=actor, action="subject.erase", object_type="subject", object_id=subject_key[:16],
                     details={"subject_key": subject_key, **counts})
    return counts


def clip_erase(*, actor, clip_ids: list) -> dict:
    """Erase these clips exactly as subject erasure does; one ``clip.erase`` event per clip."""
    # One event per clip, carrying clip_id, so each clip's history in the console ends with
    # who erased it; the subject pseudonym stays out of it (admins are not to link clips).
    now, totals = timezone.now(), {}
    with transaction.atomic():
        clips = list(Clip.objects.select_for_update().filter(pk__in=list(clip_ids)).order_by("ingested_at", "id"))
        for clip in clips:
            counts = _clips_erase([clip], now)
            audit_record(actor=actor, action="clip.erase", object_type="clip", object_id=clip.pk, clip_id=clip.pk,
                         details=counts)
            for name, count in counts.items():
                totals[name] = totals.get(name, 0) + count
    return totals or {"clips": 0}


def retention_apply(*, actor=None, now=None) -> dict:
    """Unlink pseudonyms after RETENTION_UNLINK_DAYS; delete audio after RETENTION_AUDIO_DAYS,
    keeping transcripts only where the project says so."""
    now = now or timezone.now()
    unlink_before = now - timedelta(days=settings.RETENTION_UNLINK_DAYS)
    purge_before = now - timedelta(days=settings.RETENTION_AUDIO_DAYS)
    with transaction.atomic():
        unlinked = Clip.objects.filter(ingested_at__lt=unlink_before, subject_key__isnull=False).update(
            subject_key=None)
        due = list(Clip.objects.select_for_update().select_related("project")
                   .filter(ingested_at__lt=purge_before).exclude(status=Clip.Status.PURGED))
        _end_live_leases(due, now)
        dropped = [clip for clip in due if not clip.project.keep_transcripts_after_audio_purge]
        kept = [clip for clip in due if clip.project.keep_transcripts_after_audio_purge]
        deleted = _clips_delete(dropped) if dropped else {"clips": 0}
        names = [clip.audio.name for clip in kept if clip.audio]
        # The recognizer's hypothesis is content like the audio (issue 11): it goes with it, and
        # so do the pictures of the audio (peaks, spectrogram).
        Clip.objects.filter(pk__in=[clip.pk for clip in kept]).update(status=Clip.Status.PURGED, audio="", peaks=[],
                                                                      spectrogram={}, asr_text="",
                                                                      asr_confidence=None)
        transaction.on_commit(lambda: [default_storage.delete(name) for name in names])
        counts = {"unlinked": unlinked, "audio_purged": len(kept), "clips_deleted": deleted["clips"]}
        audit_record(actor=actor, actor_name="system", action="retention.apply", object_type="clip",
                     details=counts)
    return counts


def pseudonym_key_rotate(*, actor=None, new_key: str) -> int:
    """Re-key every stored pseudonym as HMAC(new_key, old); return how many changed."""
    if len(new_key) < 32:
        raise InvalidInput("The new key must be at least 32 characters.", code="weak_key")

    def rekey(value: str) -> str:
        return hmac.new(new_key.encode(), value.encode(), hashlib.sha256).hexdigest()

    with transaction.atomic():
        count = 0
        for model in (Clip, SubjectOptOut):
            rows = list(model.objects.select_for_update().exclude(subject_key=None).only("pk", "subject_key"))
            for row in rows:
                row.subject_key = rekey(row.subject_key)
            model.objects.bulk_update(rows, ["subject_key"], batch_size=1000)
            count += len(rows)
        audit_record(actor=actor, actor_name="system", action="subject.rekey", object_type="subject",
                     details={"pseudonyms_rekeyed": count, "layers": len(settings.PSEUDONYM_KEYS) + 1})
    return count


@dataclass(frozen=True)
class ExportResult:
    data_path: Path
    manifest_path: Path
    clips: int
    transcriptions: int
    withheld_personal_information: int


def transcripts_export(*, admin, project, out_dir: Path, include_personal_information: bool = False) -> ExportResult:
    """Write transcripts and labels (never audio) of finished clips, and a manifest of what left."""
    if not (admin.is_active and admin.is_staff):
        raise InvalidInput("Only an active admin may export.", code="not_admin")
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = timezone.now().strftime("%Y%m%dT%H%M%SZ")
    data_path = out_dir / f"transcripts-{project.slug}-{stamp}.jsonl"
    clips = Clip.objects.filter(project=project, status=Clip.Status.DONE, withheld=False).order_by("ingested_at")
    written, transcriptions, withheld, exported_ids, undecided = 0, 0, 0, [], 0
    with data_path.open("w") as handle:
        for clip in clips.prefetch_related("transcriptions"):
            items = list(clip.transcriptions.all())
            personal = any(PERSONAL_INFO_LABEL in keys for t in items for keys in t.labels.values())
            if personal and not include_personal_information:
                withheld += 1
                continue
            standing = [t for t in items if t.review_status != "rejected"]
            final = clip_final(clip, standing)
            if final and final["source"] in ("single", "reviewed"):
                final["segments"] = standing[0].segments  # issue 12: a checker's edit keeps the segments
            handle.write(json.dumps({
                "clip": str(clip.pk), "locale": clip.locale, "recorded_on": clip.recorded_on.isoformat(),
                "duration_ms": clip.duration_ms,
                # A transcription a checker rejected is not the project's data; "review" says how
                # the others fared ("" when not sampled for review).
                "transcriptions": [{"text": t.text, "labels": t.labels, "segments": t.segments,
                                    "reviewer": t.reviewer_id, "review": t.review_status} for t in standing],
                # The kept text (single, reviewed, consensus or adjudicated; null while a checker
                # must still decide) and, with several transcriptions, the agreement figures.
                "final": final, "agreement": clip.agreement or None,
            }, sort_keys=True) + "\n")
            undecided += final is None
            written += 1
            transcriptions += len(standing)
            exported_ids.append(str(clip.pk))
    manifest = {
        "exported_at": timezone.now().isoformat(), "by": admin.get_username(), "project": project.slug,
        "file": data_path.name, "sha256": hashlib.sha256(data_path.read_bytes()).hexdigest(), "clips": written,
        "transcriptions": transcriptions, "withheld_personal_information": withheld,
        "included_personal_information": include_personal_information, "audio": "never exported",
        "clip_ids": exported_ids, "awaiting_decision": undecided,
        # Krippendorff's alpha per label group over the project's multiply transcribed clips.
        "label_alpha": project_label_alpha(project=project),
    }
    manifest_path = out_dir / f"manifest-{project.slug}-{stamp}.json"
    try:
        with transaction.atomic():
            audit_record(actor=admin, action="transcripts.export", object_type="project", object_id=project.slug,
                         details={k: v for k, v in manifest.items() if k != "clip_ids"})
            manifest_path.write_text(json.dumps(manifest, indent=2))
    except BaseException:
        data_path.unlink(missing_ok=True)  # no audit, no export
        manifest_path.unlink(missing_ok=True)
        raise
    return ExportResult(data_path, manifest_path, written, transcriptions, withheld)


def subject_access_report(*, actor, account_id: str) -> dict:
    """Tell a subject who heard their recordings: counts by role and day, never names.

    Built from the audit trail, the one record of every play. Clips that were erased, or
    whose pseudonym link retention removed, can no longer be tied to the subject and are
    not counted (that is what erasure and unlinking mean)."""
    subject_key = _subject(account_id)
    with transaction.atomic():
        clip_ids = list(Clip.objects.filter(subject_key=subject_key).values_list("pk", flat=True))
        plays = (AuditEvent.objects.filter(action="audio.play", outcome=AuditEvent.Outcome.ALLOWED,
                                           clip_id__in=clip_ids)
                 .annotate(day=TruncDate("at", tzinfo=dt_timezone.utc))
                 .values("day", "role").annotate(plays=Count("id")).order_by("day", "role"))
        play_days = [{"day": row["day"].isoformat(), "role": row["role"], "plays": row["plays"]} for row in plays]
        by_role: dict[str, int] = {}
        for row in play_days:
            by_role[row["role"]] = by_role.get(row["role"], 0) + row["plays"]
        report = {
            "clips": len(clip_ids),
            "clips_reviewed": Transcription.objects.filter(clip_id__in=clip_ids).values("clip_id").distinct().count(),
            "plays": sum(by_role.values()),
            "plays_by_role": by_role,
            "play_days": play_days,
            "clips_escalated": Escalation.objects.filter(clip_id__in=clip_ids).values("clip_id").distinct().count(),
            "opted_out": subject_opted_out(subject_key),
        }
        audit_record(actor=actor, action="subject.access_report", object_type="subject", object_id=subject_key[:16],
                     details={"subject_key": subject_key, "clips": report["clips"], "plays": report["plays"]})
    return report
