"""Ingest a folder of audio files or a CSV manifest through the same service and serializer as the API."""

import csv
import time
from collections import Counter, deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews.audio import ProcessedAudio, audio_workers_stop, clip_audio_process
from reviews.errors import DomainError
from reviews.ingest import IngestSerializer, clip_ingest
from reviews.models import Project

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
        parser.add_argument("--workers", type=int, default=None,
                            help="Audio worker processes (default: INGEST_WORKERS, one per core).")

    def handle(self, *args, **options):
        rows = self._rows(Path(options["path"]), options)
        actor = get_user_model().objects.filter(username=options["service_user"]).first()
        if actor is None:
            raise CommandError(f"No user '{options['service_user']}' to ingest as (run seed_demo or create it).")
        workers = max(1, options["workers"] or settings.INGEST_WORKERS)
        total = len(rows)
        started = time.monotonic()
        self._counts = [0, Counter()]  # ingested, refused by code
        # Each pool thread drives its own audio worker process (reviews.audio), so the audio
        # of up to ``workers`` files is processed at once on as many cores; the checks, the
        # storage, the database and the audit trail stay here, in file order.
        ahead: deque = deque()
        try:
            with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ingest-audio") as pool:
                try:
                    presets: dict[str, str | None] = {}
                    for number, (path, fields) in enumerate(rows, start=1):
                        ahead.append((number, path, fields, *self._audio_start(pool, presets, path, fields)))
                        # A few files ahead keeps every worker busy; more would only hold originals in memory.
                        if len(ahead) > 2 * workers:
                            self._finish(actor, total, *ahead.popleft())
                    while ahead:
                        self._finish(actor, total, *ahead.popleft())
                finally:
                    # Interrupted: the pool's exit must not first work through the files queued ahead.
                    for *_, future in ahead:
                        if future is not None:
                            future.cancel()
        finally:
            audio_workers_stop()
        ingested, refused = self._counts
        elapsed = max(time.monotonic() - started, 1e-6)
        reasons = ", ".join(f"{code}: {count}" for code, count in sorted(refused.items())) or "none"
        self.stdout.write(f"Summary: {ingested} ingested, {sum(refused.values())} refused ({reasons}). "
                          f"{total / elapsed:.1f} clips/s ({total} files in {elapsed:.1f} s, "
                          f"{workers} audio worker{'s' if workers != 1 else ''}).")

    def _audio_start(self, pool: ThreadPoolExecutor, presets: dict, path: Path, fields: dict):
        """Read a file and start its audio work; return (bytes or the read error, preset, future)."""
        try:
            audio = path.read_bytes()
        except OSError as exc:
            return exc, None, None
        slug = fields.get("project")
        slug = slug.strip() if isinstance(slug, str) else ""
        if slug not in presets:
            project = Project.objects.filter(slug=slug).only("disguise_preset").first()
            presets[slug] = (project.disguise_preset or None) if project else False
        if presets[slug] is False:
            return audio, None, None  # an unknown project: refused before any audio work
        return audio, presets[slug], pool.submit(clip_audio_process, audio, preset=presets[slug])

    def _finish(self, actor, total: int, number: int, path: Path, fields: dict, audio, preset,
                future: Future | None) -> None:
        """Ingest one file through clip_ingest (with its audio processed ahead) and print its line."""

        def audio_process(data: bytes, *, preset: str | None = None) -> ProcessedAudio:
            if future is None or preset != started_with:
                return clip_audio_process(data, preset=preset)
            return future.result()

        started_with = preset
        try:
            if isinstance(audio, OSError):
                raise audio
            clip = clip_ingest(actor=actor, data={**fields, "audio": audio}, audio_process=audio_process)
        except (DomainError, OSError) as exc:
            code = getattr(exc, "code", "unreadable_file")
            self._counts[1][code] += 1
            # Field names say what to fix in the manifest; the values are identifiers and stay out.
            where = f": {', '.join(sorted(exc.fields))}" if getattr(exc, "fields", None) else ""
            self.stdout.write(f"[{number}/{total}] {path.name}: refused ({code}{where})")
            return
        if clip is None:
            self._counts[1]["not_sampled"] += 1
            self.stdout.write(f"[{number}/{total}] {path.name}: not sampled for review")
            return
        self._counts[0] += 1
        self.stdout.write(f"[{number}/{total}] {path.name}: ingested ({clip.duration_ms / 1000:.1f} s)")

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
