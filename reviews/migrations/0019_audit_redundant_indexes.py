"""Three indexes of the audit table that no query uses, dropped: every event wrote them.

- ``hash`` and ``prev_hash`` were ``unique=True`` CharFields, for which Django on PostgreSQL adds
  a second index with ``varchar_pattern_ops`` (for LIKE 'prefix%'), beside the unique one. Nothing
  searches a hash by pattern; the chain's lookups and its ON CONFLICT use the unique indexes,
  which stay, under the same names, now declared as the model's constraints.
- ``actor`` had Django's foreign-key index (actor_id), a prefix of ``audit_actor_idx`` (actor_id,
  at), which serves every lookup by actor.

Each costs a write per appended event (the append holds the chain's lock while it writes) and
space: built on a million 64-character hex hashes, each LIKE index took 96 MB and an actor_id
index 7 MB (pg_relation_size; indexes grown by random inserts are larger), so about 2 GB at 10
million events. The state changes
only in how Django describes the unique constraints; the database keeps them as they are.
Dropped CONCURRENTLY on PostgreSQL, so that a live trail's appends are not blocked meanwhile.
"""
import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

INDEXES = {  # name -> how it was made, for the way back
    "reviews_auditevent_hash_fe5f4022_like": "(hash varchar_pattern_ops)",
    "reviews_auditevent_prev_hash_d5c1b3d5_like": "(prev_hash varchar_pattern_ops)",
    "reviews_auditevent_actor_id_7cda4db1": "(actor_id)",
}


def forward(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for name in INDEXES:
        if postgres or name.endswith("_7cda4db1"):  # the LIKE indexes exist only on PostgreSQL
            schema_editor.execute(f"DROP INDEX {'CONCURRENTLY ' if postgres else ''}IF EXISTS {name}")


def backward(apps, schema_editor):
    postgres = schema_editor.connection.vendor == "postgresql"
    for name, columns in INDEXES.items():
        if postgres or name.endswith("_7cda4db1"):
            schema_editor.execute(f"CREATE INDEX {'CONCURRENTLY ' if postgres else ''}IF NOT EXISTS {name} "
                                  f"ON reviews_auditevent {columns}")


class Migration(migrations.Migration):
    atomic = False  # DROP INDEX CONCURRENTLY cannot run inside a transaction

    dependencies = [
        ("reviews", "0018_segments_spectrogram"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.SeparateDatabaseAndState(
            state_operations=[
                migrations.AlterField(
                    model_name="auditevent",
                    name="actor",
                    field=models.ForeignKey(blank=True, db_constraint=False, db_index=False, null=True,
                                            on_delete=django.db.models.deletion.DO_NOTHING, related_name="+",
                                            to=settings.AUTH_USER_MODEL),
                ),
                migrations.AlterField(model_name="auditevent", name="hash", field=models.CharField(max_length=64)),
                migrations.AlterField(model_name="auditevent", name="prev_hash",
                                      field=models.CharField(max_length=64)),
                migrations.AddConstraint(
                    model_name="auditevent",
                    constraint=models.UniqueConstraint(fields=("prev_hash",), name="reviews_auditevent_prev_hash_key"),
                ),
                migrations.AddConstraint(
                    model_name="auditevent",
                    constraint=models.UniqueConstraint(fields=("hash",), name="reviews_auditevent_hash_key"),
                ),
            ],
            database_operations=[migrations.RunPython(forward, backward)],
        ),
    ]
