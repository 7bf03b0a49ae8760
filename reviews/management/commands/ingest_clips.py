"""Ingest a folder of audio files or a CSV manifest through the same service and serializer as the API."""

import csv
from collections import Counter
from pathlib import Path

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews.errors import DomainError
from reviews.ingest import IngestSerializer, clip_ingest

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".webm"}
# The manifest's columns are the serializer's fields, so a field added to ingest is a column here too.
_INGEST_FIELDS = {name: field for name, field in IngestSerializer().fields.items() if name != "audio"}
MANIFEST_FIELDS = ["file", *_INGEST_FIELDS]
REQUIRED_COLUMNS = {"file", *(name for name, field in _INGEST_FIELDS.items() if field.required)}


class Command(BaseCommand):
    help = (
        "Ingest clips from a CSV manifest (columns: " + ", ".join(MANIFEST_FIELDS) + ") or from a folder "
        "(uses the folder's manifest.csv if present, otherwise --project/--account-id/--recorded-at/--locale "
        "for every audio file). Rows are validated exactly as the API validates a request."
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
        for number, (path, fields) in enumerate(rows, start=1):
            try:
                clip = clip_ingest(actor=actor, data={**fields, "audio": path.read_bytes()})
            except (DomainError, OSError) as exc:
                code = getattr(exc, "code", "unreadable_file")
                refused[code] += 1
                # Field names say what to fix in the manifest; the values are identifiers and stay out.
                where = f": {', '.join(sorted(exc.fields))}" if getattr(exc, "fields", None) else ""
                self.stdout.write(f"[{number}/{total}] {path.name}: refused ({code}{where})")
                continue
            if clip is None:
                refused["not_sampled"] += 1
                self.stdout.write(f"[{number}/{total}] {path.name}: not sampled for review")
                continue
            ingested += 1
            self.stdout.write(f"[{number}/{total}] {path.name}: ingested ({clip.duration_ms / 1000:.1f} s)")
        reasons = ", ".join(f"{code}: {count}" for code, count in sorted(refused.items())) or "none"
        self.stdout.write(f"Summary: {ingested} ingested, {sum(refused.values())} refused ({reasons}).")

    def _rows(self, path: Path, options) -> list[tuple[Path, dict]]:
        """Return (audio file, submitted fields) pairs; the fields are validated later, row by row."""
        if path.is_dir() and (path / "manifest.csv").exists():
            path = path / "manifest.csv"
        if path.is_file() and path.suffix.lower() == ".csv":
            with path.open(newline="") as handle:
                reader = csv.DictReader(handle)
                missing = REQUIRED_COLUMNS - set(reader.fieldnames or [])
                if missing:
                    raise CommandError(f"Manifest lacks columns: {', '.join(sorted(missing))}")
                # A short row leaves None in its last columns: that field was not given.
                return [(path.parent / (row["file"] or ""),
                         {name: row[name] for name in _INGEST_FIELDS if row.get(name) is not None})
                        for row in reader]
        if path.is_dir():
            if not (options["project"] and options["account_id"] and options["recorded_at"]):
                raise CommandError("A folder without manifest.csv needs --project, --account-id and --recorded-at.")
            fields = {"project": options["project"], "account_id": options["account_id"],
                      "recorded_at": options["recorded_at"], "locale": options["locale"]}
            return [(f, fields) for f in sorted(path.iterdir()) if f.suffix.lower() in AUDIO_SUFFIXES]
        raise CommandError(f"{path} is neither a folder nor a CSV manifest.")
