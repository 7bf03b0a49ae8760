"""The audit trail cannot be rewritten: triggers, database roles, hash chain, checkpoints."""

import io
import json
import threading
import uuid

import psycopg2
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction

from reviews.audit import audit_record, chain_verify
from reviews.models import AuditEvent, AuditVerification

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL triggers and roles")


def fill(count: int, actor=None):
    for i in range(count):
        audit_record(actor=actor, actor_name="system", action="assignment.expire", object_type="assignment",
                     object_id=str(i))


def superuser_sql(sql: str, params=()):
    """Tamper as a superuser who switches the triggers off first."""
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        cursor.execute(sql, params)
        cursor.execute("SET session_replication_role = DEFAULT")


def verify(*args) -> str:
    out = io.StringIO()
    call_command("verify_audit", *args, stdout=out)
    return out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize("sql", [
    "UPDATE reviews_auditevent SET action = 'auth.login'",
    "DELETE FROM reviews_auditevent",
    "TRUNCATE reviews_auditevent",
])
def test_triggers_refuse_changes_for_every_role(sql):
    fill(2)
    with pytest.raises(DatabaseError, match="append-only"):
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(sql)
    assert AuditEvent.objects.count() == 2


@pytest.mark.django_db
def test_an_intact_trail_verifies_and_is_recorded():
    fill(5)
    assert "Audit trail intact: 5 events" in verify()
    record = AuditVerification.objects.get()
    assert record.ok and record.events_checked == 5


@pytest.mark.django_db
def test_an_edited_row_is_found():
    fill(5)
    target = AuditEvent.objects.order_by("id")[2]
    superuser_sql("UPDATE reviews_auditevent SET action = 'auth.login' WHERE id = %s", [target.pk])
    with pytest.raises(CommandError, match=f"event {target.pk} does not match its hash"):
        verify()
    record = AuditVerification.objects.get()
    assert not record.ok and record.first_broken_id == target.pk


@pytest.mark.django_db
def test_an_edited_row_with_a_recomputed_hash_breaks_the_next_link():
    from reviews.audit import event_fields, event_hash

    fill(5)
    target = AuditEvent.objects.order_by("id")[2]
    target.action = "auth.login"
    forged = event_hash(event_fields(target))
    superuser_sql("UPDATE reviews_auditevent SET action = 'auth.login', hash = %s WHERE id = %s", [forged, target.pk])
    following = AuditEvent.objects.order_by("id")[3]
    assert chain_verify().first_broken_id == following.pk


@pytest.mark.django_db
def test_a_row_deleted_in_the_middle_is_found():
    fill(5)
    events = list(AuditEvent.objects.order_by("id"))
    superuser_sql("DELETE FROM reviews_auditevent WHERE id = %s", [events[2].pk])
    result = chain_verify()
    assert not result.ok and result.first_broken_id == events[3].pk


@pytest.mark.django_db
def test_a_dropped_tail_is_caught_by_the_checkpoint(tmp_path):
    fill(5)
    checkpoint = tmp_path / "checkpoint.json"
    checkpoint.write_text(verify("--checkpoint").splitlines()[-1])
    assert json.loads(checkpoint.read_text())["count"] == 5
    fill(2)
    assert "intact" in verify("--against", str(checkpoint))  # growth is fine
    tail = list(AuditEvent.objects.order_by("-id").values_list("id", flat=True)[:3])
    superuser_sql("DELETE FROM reviews_auditevent WHERE id = ANY(%s)", [tail])
    assert chain_verify().ok  # the remaining chain alone looks fine...
    with pytest.raises(CommandError, match="the tail was cut"):
        verify("--against", str(checkpoint))  # ...but the checkpoint knows better


@pytest.mark.django_db
def test_a_forged_checkpoint_is_refused(tmp_path):
    fill(3)
    kept = json.loads(verify("--checkpoint").splitlines()[-1])
    kept["count"] = 2
    path = tmp_path / "forged.json"
    path.write_text(json.dumps(kept))
    with pytest.raises(CommandError, match="signature does not match"):
        verify("--against", str(path))


@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_writers_never_fork_the_chain():
    errors = []
    barrier = threading.Barrier(20)

    def writer(n):
        try:
            barrier.wait()
            for i in range(10):
                audit_record(actor=None, actor_name=f"writer{n}", action="draft.save", object_type="test",
                             object_id=f"{n}-{i}")
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(repr(exc))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert errors == []
    assert AuditEvent.objects.count() == 200
    assert AuditEvent.objects.values("prev_hash").distinct().count() == 200
    result = chain_verify()
    assert result.ok and result.count == 200


@pytest.mark.django_db(transaction=True)
def test_the_application_role_may_only_insert_and_read():
    suffix = uuid.uuid4().hex[:8]
    app_role, owner_role = f"annotator_app_{suffix}", f"annotator_owner_{suffix}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {app_role} LOGIN")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {app_role}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {app_role}")
    try:
        out = io.StringIO()
        call_command("audit_db_roles", "--app-role", app_role, "--owner-role", owner_role, "--apply", stdout=out)
        settings_dict = connection.settings_dict
        app = psycopg2.connect(dbname=settings_dict["NAME"], user=app_role, host=settings_dict["HOST"],
                               port=settings_dict["PORT"])
        try:
            with app, app.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM reviews_auditevent")
                cursor.execute(
                    "INSERT INTO reviews_auditevent (at, actor_name, role, action, object_type, object_id, outcome, "
                    "user_agent, request_id, details, prev_hash, hash) VALUES (now(), '', '', 'x', '', '', "
                    "'allowed', '', '', '{}', %s, %s)", [uuid.uuid4().hex, uuid.uuid4().hex])
            for sql in ("UPDATE reviews_auditevent SET action = 'y'", "DELETE FROM reviews_auditevent",
                        "TRUNCATE reviews_auditevent",
                        "ALTER TABLE reviews_auditevent DISABLE TRIGGER reviews_auditevent_no_change"):
                with pytest.raises(psycopg2.Error) as refused:
                    with app, app.cursor() as cursor:
                        cursor.execute(sql)
                assert refused.value.pgcode in ("42501", "42P01") or "owner" in str(refused.value), sql
        finally:
            app.close()
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE reviews_auditevent OWNER TO {connection.settings_dict['USER']}")
            cursor.execute(f"ALTER SEQUENCE reviews_auditevent_id_seq OWNER TO {connection.settings_dict['USER']}")
            cursor.execute(f"REASSIGN OWNED BY {app_role}, {owner_role} TO {connection.settings_dict['USER']}")
            cursor.execute(f"DROP OWNED BY {app_role}, {owner_role}")
            cursor.execute(f"DROP ROLE {app_role}")
            cursor.execute(f"DROP ROLE {owner_role}")
