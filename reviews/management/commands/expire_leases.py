from django.core.management.base import BaseCommand

from reviews.permissions import audio_token_uses_forget
from reviews.services import lease_sweep


class Command(BaseCommand):
    help = ("Expire overdue leases so their clips return to the queue, and forget spent audio-token "
            "nonces older than any token (run from cron every minute).")

    def handle(self, *args, **options):
        total = 0
        while True:
            count = lease_sweep()
            total += count
            if count == 0:
                break
        forgotten = audio_token_uses_forget()
        self.stdout.write(f"Expired {total} lease(s); forgot {forgotten} spent audio token(s).")
