"""Audit events are sealed with HMAC-SHA256 under AUDIT_CHAIN_KEY from here on.

Events already in the trail keep their plain SHA-256 hashes (the append-only triggers
refuse UPDATE, and rewriting them would defeat the trail): the new ``key_id`` column is
empty for them. One keyed anchor event (``audit.chain_keyed``) is appended after them,
sealing the old head as its predecessor and counting the old events, so verify_audit
accepts unkeyed events only before the anchor. Set AUDIT_CHAIN_KEY before migrating.

On PostgreSQL a NOT VALID check then refuses any new row without a key id (existing rows
are not checked): an application server still running the old code fails its audited
actions instead of leaving an unkeyed event that would break the trail for good, and the
application's role cannot insert one either.
"""

from django.db import migrations, models

KEYED_CHECK = "reviews_auditevent_keyed"
CHECK_ADD = f"ALTER TABLE reviews_auditevent ADD CONSTRAINT {KEYED_CHECK} CHECK (key_id <> '') NOT VALID"
CHECK_DROP = f"ALTER TABLE reviews_auditevent DROP CONSTRAINT IF EXISTS {KEYED_CHECK}"


def anchor(apps, schema_editor):
    from reviews.audit import chain_anchor  # the one writer of audit events

    chain_anchor(model=apps.get_model("reviews", "AuditEvent"), using=schema_editor.connection.alias)


def refuse_if_keyed(apps, schema_editor):
    model = apps.get_model("reviews", "AuditEvent")
    if model.objects.using(schema_editor.connection.alias).exclude(key_id="").exists():
        # Keyed events cannot be deleted or unsealed, and the old code would report them as broken.
        raise RuntimeError("The audit trail already holds keyed events; 0010 cannot be reversed.")


def run(sql):
    def apply(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            schema_editor.execute(sql)

    return apply


class Migration(migrations.Migration):
    dependencies = [("reviews", "0009_clip_open_queue_index")]

    operations = [
        # A constant database default adds the column without rewriting a row (and without UPDATE,
        # which the append-only trigger would refuse).
        migrations.AddField(
            model_name="auditevent",
            name="key_id",
            field=models.CharField(blank=True, db_default="", default="", max_length=16),
        ),
        migrations.RunPython(anchor, refuse_if_keyed),
        migrations.RunPython(run(CHECK_ADD), run(CHECK_DROP)),
    ]
