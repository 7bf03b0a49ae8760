from django.core.management.base import BaseCommand

from reviews.leases import lease_sweep
from reviews.permissions import audio_token_uses_forget
from reviews.review import review_lease_sweep


class Command(BaseCommand):
    help = ("Expire overdue leases so their clips return to the queue, and forget spent audio-token "
            "nonces older than any token (run from cron every minute).")

    def handle(self, *args, **options):
        total = 0
        for sweep in (lease_sweep, review_lease_sweep):  # reviewers' leases, then checkers'
            while True:
                count = sweep()
                total += count
                if count == 0:
                    break
        forgotten = audio_token_uses_forget()
        self.stdout.write(f"Expired {total} lease(s); forgot {forgotten} spent audio token(s).")
