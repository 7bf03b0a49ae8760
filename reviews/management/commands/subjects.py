"""Opt a subject out or in, or erase them, by account id (read from standard input with '-')."""

import sys

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from reviews import lifecycle
from reviews.errors import DomainError

OPERATIONS = {"opt-out": lifecycle.subject_opt_out, "opt-in": lifecycle.subject_opt_in,
              "erase": lifecycle.subject_erase}


class Command(BaseCommand):
    help = ("opt-out | opt-in | erase ACCOUNT_ID (use '-' to read the id from standard input, which keeps it "
            "out of shell history). Audited under --operator.")

    def add_arguments(self, parser):
        parser.add_argument("operation", choices=sorted(OPERATIONS))
        parser.add_argument("account_id")
        parser.add_argument("--operator", required=True, help="the admin username the audit trail names")

    def handle(self, *args, **options):
        operator = get_user_model().objects.filter(username=options["operator"], is_staff=True,
                                                   is_active=True).first()
        if operator is None:
            raise CommandError("--operator must name an active admin.")
        account_id = sys.stdin.readline().strip() if options["account_id"] == "-" else options["account_id"]
        try:
            counts = OPERATIONS[options["operation"]](actor=operator, account_id=account_id)
        except DomainError as exc:
            raise CommandError(exc.detail) from exc
        self.stdout.write(f"{options['operation']}: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
