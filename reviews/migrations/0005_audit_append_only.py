"""On PostgreSQL, the audit table refuses UPDATE, DELETE and TRUNCATE for every role.

A superuser can still switch triggers off (session_replication_role); the hash chain
and signed checkpoints (manage.py verify_audit) catch what such a person changes.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION reviews_audit_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit events are append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER reviews_auditevent_no_change BEFORE UPDATE OR DELETE ON reviews_auditevent
    FOR EACH ROW EXECUTE FUNCTION reviews_audit_append_only();
CREATE TRIGGER reviews_auditevent_no_truncate BEFORE TRUNCATE ON reviews_auditevent
    FOR EACH STATEMENT EXECUTE FUNCTION reviews_audit_append_only();
"""

BACKWARD = """
DROP TRIGGER IF EXISTS reviews_auditevent_no_change ON reviews_auditevent;
DROP TRIGGER IF EXISTS reviews_auditevent_no_truncate ON reviews_auditevent;
DROP FUNCTION IF EXISTS reviews_audit_append_only();
"""


def run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql, params=None)  # the SQL holds a literal %

    return apply


class Migration(migrations.Migration):
    dependencies = [("reviews", "0004_audit_verification")]

    operations = [migrations.RunPython(run(FORWARD), run(BACKWARD))]
