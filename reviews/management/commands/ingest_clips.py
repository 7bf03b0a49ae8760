"""Ingest a folder of audio files or a CSV manifest through the same service as the API."""

import csv
from collections import Counter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews import services
from reviews.errors import DomainError

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".webm"}
MANIFEST_FIELDS = ["file", "project", "account_id", "first_name", "device_serial", "recorded_at", "locale"]


class Command(BaseCommand):
    help = (
        "Ingest clips from a CSV manifest (columns: " + ", ".join(MANIFEST_FIELDS) + ") or from a folder "
        "(uses the folder's manifest.csv if present, otherwise --project/--account-id/--recorded-at/--locale "
        "for every audio file)."
    )

    def add_arguments(self, parser):
        parser.add_argument("path")
        parser.add_argument("--project")
        parser.add_argument("--account-id")
        parser.add_argument("--recorded-at")
        parser.add_argument("--locale", default="en-US")
        parser.add_argument("--service-user", default="ingest",
                            help="The account the audit trail names as the ingesting actor.")

    def handle(self, *args, **options):
        rows = self._rows(Path(options["path"]), options)
        actor = get_user_model().objects.filter(username=options["service_user"]).first()
        if actor is None:
            raise CommandError(f"No user '{options['service_user']}' to ingest as (run seed_demo or create it).")
        ingested, refused = 0, Counter()
        total = len(rows)
        for number, row in enumerate(rows, start=1):
            path = row["path"]
            try:
                clip = services.clip_ingest(
                    actor=actor, audio=path.read_bytes(), project=row.get("project") or "",
                    account_id=row.get("account_id") or "", first_name=row.get("first_name") or "",
                    device_serial=row.get("device_serial") or "", recorded_at=row.get("recorded_at") or "",
                    locale=row.get("locale") or "",
                )
            except (DomainError, OSError) as exc:
                code = getattr(exc, "code", "unreadable_file")
                refused[code] += 1
                self.stdout.write(f"[{number}/{total}] {path.name}: refused ({code})")
                continue
            if clip is None:
                refused["not_sampled"] += 1
                self.stdout.write(f"[{number}/{total}] {path.name}: not sampled for review")
                continue
            ingested += 1
            self.stdout.write(f"[{number}/{total}] {path.name}: ingested ({clip.duration_ms / 1000:.1f} s)")
        reasons = ", ".join(f"{code}: {count}" for code, count in sorted(refused.items())) or "none"
        self.stdout.write(f"Summary: {ingested} ingested, {sum(refused.values())} refused ({reasons}).")

    def _rows(self, path: Path, options) -> list[dict]:
        if path.is_dir() and (path / "manifest.csv").exists():
            path = path / "manifest.csv"
        if path.is_file() and path.suffix.lower() == ".csv":
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                missing = set(MANIFEST_FIELDS) - set(reader.fieldnames or [])
                if missing - {"first_name", "device_serial"}:
                    raise CommandError(f"Manifest lacks columns: {', '.join(sorted(missing))}")
                return [dict(row, path=path.parent / row["file"]) for row in reader]
        if path.is_dir():
            if not (options["project"] and options["account_id"] and options["recorded_at"]):
                raise CommandError("A folder without manifest.csv needs --project, --account-id and --recorded-at.")
            return [
                {"path": f, "project": options["project"], "account_id": options["account_id"],
                 "recorded_at": options["recorded_at"], "locale": options["locale"]}
                for f in sorted(path.iterdir()) if f.suffix.lower() in AUDIO_SUFFIXES
            ]
        raise CommandError(f"{path} is neither a folder nor a CSV manifest.")
