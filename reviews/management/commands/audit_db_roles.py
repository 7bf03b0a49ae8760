"""Print (or apply) the PostgreSQL set-up where the application may only add and read audit events."""

from django.core.management.base import BaseCommand, CommandError
from django.db import connection
from psycopg2 import sql

from reviews.models import AuditEvent


def role_sql(*, app_role: str, owner_role: str) -> list[sql.Composed]:
    """The statements, composed with quoted identifiers (role names are never pasted in)."""
    table = sql.Identifier(AuditEvent._meta.db_table)
    sequence = sql.Identifier(AuditEvent._meta.db_table + "_id_seq")
    app, owner = sql.Identifier(app_role), sql.Identifier(owner_role)
    return [
        # The owner role holds the table; nobody logs in as it in daily operation.
        sql.SQL("ALTER TABLE {} OWNER TO {}").format(table, owner),
        sql.SQL("ALTER SEQUENCE {} OWNER TO {}").format(sequence, owner),
        sql.SQL("REVOKE ALL ON {} FROM {}").format(table, app),
        sql.SQL("REVOKE ALL ON {} FROM PUBLIC").format(table),
        sql.SQL("GRANT SELECT, INSERT ON {} TO {}").format(table, app),
        sql.SQL("GRANT USAGE ON SEQUENCE {} TO {}").format(sequence, app),
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
        owner_role = options["owner_role"]
        create_owner = sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(owner_role))
        statements = role_sql(app_role=options["app_role"], owner_role=owner_role)
        connection.ensure_connection()
        raw = connection.connection
        if not options["apply"]:
            self.stdout.write(";\n".join(s.as_string(raw) for s in [create_owner, *statements]) + ";")
            return
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [owner_role])
            if cursor.fetchone() is None:
                cursor.execute(create_owner.as_string(raw))
            for statement in statements:
                cursor.execute(statement.as_string(raw))
        self.stdout.write(f"Audit table now owned by {options['owner_role']}; {options['app_role']} may only "
                          "INSERT and SELECT.")
