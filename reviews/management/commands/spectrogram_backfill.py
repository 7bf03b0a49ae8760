from django.core.files.storage import default_storage
from django.core.management.base import BaseCommand

from reviews.audio import AudioRejected, clip_spectrogram_from_stored
from reviews.models import Clip


class Command(BaseCommand):
    help = ("Compute the workspace spectrogram (issue 12) of clips ingested before it existed, from their stored "
            "audio, which is the disguised copy (the original was never kept). Clips without audio (purged) are "
            "left alone. About a millisecond of CPU per clip plus its decode; safe to run again.")

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=None, help="at most this many clips in this run")

    def handle(self, *args, **options):
        pending = (Clip.objects.filter(spectrogram={}).exclude(audio="").exclude(status=Clip.Status.PURGED)
                   .order_by("ingested_at", "id").values_list("pk", "audio", "duration_ms"))
        if options["limit"] is not None:
            pending = pending[: options["limit"]]
        done = failed = 0
        for pk, name, duration_ms in pending.iterator():
            try:
                with default_storage.open(name, "rb") as handle:
                    picture = clip_spectrogram_from_stored(handle.read(), duration_ms=duration_ms)
            except (OSError, AudioRejected):
                failed += 1  # lost or unreadable: the page simply shows no spectrogram for it
                continue
            # Only if still without one and not purged meanwhile (retention may run at the same time).
            done += Clip.objects.filter(pk=pk, spectrogram={}).exclude(audio="").update(spectrogram=picture)
        self.stdout.write(f"Spectrograms computed for {done} clips; {failed} could not be read.")
