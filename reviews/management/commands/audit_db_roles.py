"""Print (or apply) the PostgreSQL set-up where the application may only add and read audit events."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection

from reviews.models import AuditEvent


def role_sql(*, app_role: str, owner_role: str) -> list[str]:
    table = connection.ops.quote_name(AuditEvent._meta.db_table)
    app, owner = connection.ops.quote_name(app_role), connection.ops.quote_name(owner_role)
    return [
        # The owner role holds the table; nobody logs in as it in daily operation.
        f"DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = '{owner_role}') "
        f"THEN CREATE ROLE {owner} NOLOGIN; END IF; END $$",
        f"ALTER TABLE {table} OWNER TO {owner}",
        f"ALTER SEQUENCE {connection.ops.quote_name(AuditEvent._meta.db_table + '_id_seq')} OWNER TO {owner}",
        f"REVOKE ALL ON {table} FROM {app}",
        f"REVOKE ALL ON {table} FROM PUBLIC",
        f"GRANT SELECT, INSERT ON {table} TO {app}",
        f"GRANT USAGE ON SEQUENCE {connection.ops.quote_name(AuditEvent._meta.db_table + '_id_seq')} TO {app}",
    ]


class Command(BaseCommand):
    help = (
        "Print the SQL that hands the audit table to a separate owner role and leaves the application's role "
        "only INSERT and SELECT on it. --apply runs it (as a superuser or the table's current owner)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--app-role", required=True, help="the role the application connects as")
        parser.add_argument("--owner-role", default="annotator_audit_owner")
        parser.add_argument("--apply", action="store_true")

    def handle(self, *args, **options):
        if connection.vendor != "postgresql":
            raise CommandError("This set-up is for PostgreSQL.")
        for name in (options["app_role"], options["owner_role"]):
            if not name.replace("_", "").isalnum():
                raise CommandError(f"Role names are letters, digits and underscores: {name!r}")
        statements = role_sql(app_role=options["app_role"], owner_role=options["owner_role"])
        if not options["apply"]:
            self.stdout.write(";\n".join(statements) + ";")
            return
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        self.stdout.write(f"Audit table now owned by {options['owner_role']}; {options['app_role']} may only "
                          "INSERT and SELECT.")
