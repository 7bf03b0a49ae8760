from django.core.management.base import BaseCommand

from reviews.lifecycle import retention_apply


class Command(BaseCommand):
    help = ("Apply retention (run daily): remove the pseudonym link of clips older than RETENTION_UNLINK_DAYS "
            "and delete the audio of clips older than RETENTION_AUDIO_DAYS.")

    def handle(self, *args, **options):
        counts = retention_apply()
        self.stdout.write("Retention: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
