import os
import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from reviews.errors import DomainError
from reviews.lifecycle import pseudonym_key_rotate


class Command(BaseCommand):
    help = ("Re-key every stored pseudonym under a new key layer (from $NEW_PSEUDONYM_KEY, or a fresh random "
            "one). Afterwards set PSEUDONYM_KEY to the printed value; the old key alone links nothing.")

    def handle(self, *args, **options):
        new_key = os.environ.get("NEW_PSEUDONYM_KEY") or secrets.token_urlsafe(48)
        if "," in new_key:
            raise CommandError("The new key may not contain a comma.")
        try:
            count = pseudonym_key_rotate(new_key=new_key)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"Re-keyed {count} pseudonyms. Set now, before anything else runs:")
        self.stdout.write("PSEUDONYM_KEY=" + ",".join([*settings.PSEUDONYM_KEYS, new_key]))
