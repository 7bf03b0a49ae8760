from django.core.management.base import BaseCommand

from reviews.services import lease_sweep


class Command(BaseCommand):
    help = "Expire overdue leases so their clips return to the queue (run from cron every minute)."

    def handle(self, *args, **options):
        total = 0
        while True:
            count = lease_sweep()
            total += count
            if count == 0:
                break
        self.stdout.write(f"Expired {total} lease(s).")
