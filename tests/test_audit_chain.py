"""The audit trail cannot be rewritten: triggers, database roles, hash chain, checkpoints."""

import contextlib
import hashlib
import hmac
import importlib
import io
import json
import os
import subprocess
import sys
import threading
import uuid
from datetime import timedelta
from pathlib import Path

import psycopg2
import pytest
import time_machine
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from reviews.audit import ANCHOR_ACTION, GENESIS_HASH, audit_record, chain_key_id_current, chain_verify
from reviews.models import AuditEvent, AuditVerification

pytestmark = pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL triggers and roles")
MIGRATION_0010 = importlib.import_module("reviews.migrations.0010_audit_chain_key")


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


def forged_append(cursor, *, key_id: str = "", key: bytes | None = None) -> int:
    """Append a well-formed event the way someone with only the database could: right link,
    canonical content, sealed with plain SHA-256 or with an HMAC under a key of their choosing."""
    cursor.execute("SELECT hash FROM reviews_auditevent ORDER BY id DESC LIMIT 1")
    row = cursor.fetchone()
    fields = {
        "at": timezone.now().isoformat(), "actor_id": None, "actor_name": "sam", "role": "supervisor",
        "action": "escalation.resolve", "object_type": "escalation", "object_id": "1", "clip_id": None,
        "outcome": "allowed", "client_ip": None, "user_agent": "", "request_id": "", "details": {},
        "prev_hash": row[0] if row else GENESIS_HASH,
    }
    if key_id:
        fields["key_id"] = key_id
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()
    seal = hmac.new(key, canonical, hashlib.sha256).hexdigest() if key else hashlib.sha256(canonical).hexdigest()
    columns = [name for name in fields if name != "at"]
    cursor.execute(
        f"INSERT INTO reviews_auditevent (at, {', '.join(columns)}, hash) "
        f"VALUES (%s, {', '.join(['%s'] * len(columns))}, %s) RETURNING id",
        [fields["at"], *[json.dumps(v) if k == "details" else v for k, v in fields.items() if k != "at"], seal])
    return cursor.fetchone()[0]


@contextlib.contextmanager
def keyed_check_lifted():
    """As the table's owner (or a superuser), drop the check that every new event names a key:
    what writing an unkeyed event takes since 0010, and what the code before 0010 never needed."""
    with connection.cursor() as cursor:
        cursor.execute(MIGRATION_0010.CHECK_DROP)
    yield
    with connection.cursor() as cursor:
        cursor.execute(MIGRATION_0010.CHECK_ADD)


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
@pytest.mark.parametrize("in_transaction", [False, True], ids=["autocommit", "in-a-transaction"])
def test_twenty_concurrent_writers_never_fork_the_chain(in_transaction):
    """Both ways in: an append on its own, and one inside its action's transaction (every
    request's), where a busy lock sends the next append straight to waiting (_chain_busy)."""
    errors = []
    barrier = threading.Barrier(20)

    def writer(n):
        try:
            barrier.wait()
            for i in range(10):
                with transaction.atomic() if in_transaction else contextlib.nullcontext():
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
def test_after_a_busy_lock_an_append_waits_at_once_and_after_a_free_one_tries_first():
    from django.test.utils import CaptureQueriesContext

    from reviews import audit

    audit_record(actor=None, actor_name="first", action="draft.save")  # the chain has a head

    def append() -> list[str]:
        with CaptureQueriesContext(connection) as queries, transaction.atomic():
            audit_record(actor=None, actor_name="x", action="draft.save")
        return [q["sql"] for q in queries if q["sql"] not in ("BEGIN", "COMMIT")]

    audit._chain_busy["default"] = True  # as if the last append here had waited
    try:
        busy = append()  # the lock statement, then the append
        assert audit._chain_busy["default"] is False  # the lock was free: back to the one-statement try
        free = append()
    finally:
        audit._chain_busy.pop("default", None)
    assert (len(busy), len(free)) == (2, 1)
    assert chain_verify().ok


@pytest.mark.django_db
def test_the_audit_table_has_only_the_indexes_its_queries_use():
    """Every index is written by every append, under the chain's lock (migration 0019 dropped
    the LIKE-pattern twins of the two unique hash indexes and the actor_id index that
    audit_actor_idx covers). A new one should earn its place by a query that uses it."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = 'reviews_auditevent'")
        names = {row[0] for row in cursor.fetchall()}
    assert names == {
        "reviews_auditevent_pkey", "reviews_auditevent_hash_key", "reviews_auditevent_prev_hash_key",
        "reviews_auditevent_at_c7b30fb9", "audit_actor_idx", "audit_clip_idx", "audit_action_idx",
        "audit_fetch_idx", "audit_listened_idx", "audit_skip_idx", "audit_lease_idx",
    }


@pytest.fixture
def app_role():
    """A connection as the application's own database role, after audit_db_roles --apply."""
    suffix = uuid.uuid4().hex[:8]
    app_name, owner_name = f"annotator_app_{suffix}", f"annotator_owner_{suffix}"
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE ROLE {app_name} LOGIN")
        cursor.execute(f"GRANT ALL ON ALL TABLES IN SCHEMA public TO {app_name}")
        cursor.execute(f"GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO {app_name}")
    try:
        call_command("audit_db_roles", "--app-role", app_name, "--owner-role", owner_name, "--apply",
                     stdout=io.StringIO())
        settings_dict = connection.settings_dict
        app = psycopg2.connect(dbname=settings_dict["NAME"], user=app_name, host=settings_dict["HOST"],
                               port=settings_dict["PORT"])
        try:
            yield app
        finally:
            app.close()
    finally:
        user = connection.settings_dict["USER"]
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE reviews_auditevent OWNER TO {user}")
            cursor.execute(f"ALTER SEQUENCE reviews_auditevent_id_seq OWNER TO {user}")
            cursor.execute(f"REASSIGN OWNED BY {app_name}, {owner_name} TO {user}")
            cursor.execute(f"DROP OWNED BY {app_name}, {owner_name}")
            cursor.execute(f"DROP ROLE {app_name}")
            cursor.execute(f"DROP ROLE {owner_name}")


@pytest.mark.django_db(transaction=True)
def test_the_application_role_may_only_insert_and_read(app_role):
    with app_role, app_role.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM reviews_auditevent")
        cursor.execute(
            "INSERT INTO reviews_auditevent (at, actor_name, role, action, object_type, object_id, outcome, "
            "user_agent, request_id, details, prev_hash, hash, key_id) VALUES (now(), '', '', 'x', '', '', "
            "'allowed', '', '', '{}', %s, %s, 'x')", [uuid.uuid4().hex, uuid.uuid4().hex])
    for sql in ("UPDATE reviews_auditevent SET action = 'y'", "DELETE FROM reviews_auditevent",
                "TRUNCATE reviews_auditevent",
                "ALTER TABLE reviews_auditevent DISABLE TRIGGER reviews_auditevent_no_change",
                MIGRATION_0010.CHECK_DROP):
        with pytest.raises(psycopg2.Error) as refused:
            with app_role, app_role.cursor() as cursor:
                cursor.execute(sql)
        assert refused.value.pgcode in ("42501", "42P01") or "owner" in str(refused.value), sql

@pytest.mark.django_db
def test_a_plain_sha256_append_with_a_correct_link_is_named():
    fill(3)
    with keyed_check_lifted(), connection.cursor() as cursor:
        forged = forged_append(cursor)
    result = chain_verify()
    assert not result.ok and result.first_broken_id == forged and result.count == 3
    with pytest.raises(CommandError, match=f"event {forged} "):
        verify()
    assert AuditVerification.objects.get().first_broken_id == forged


WRONG_KEY = b"a-key-the-database-attacker-chose"


@pytest.mark.django_db
@pytest.mark.parametrize("key_id, key", [
    ("current", WRONG_KEY), ("made-up", WRONG_KEY), ("current", None),  # None: plain SHA-256, claiming the key
])
def test_an_append_sealed_without_the_chain_key_is_named(key_id, key):
    fill(3)
    with connection.cursor() as cursor:
        forged = forged_append(cursor, key_id=chain_key_id_current() if key_id == "current" else "0123456789abcdef",
                               key=key)
    fill(1)  # the application appends on top, unaware; the forged event stays the first broken one
    result = chain_verify()
    assert not result.ok and result.first_broken_id == forged and result.count == 3
    with pytest.raises(CommandError, match=f"event {forged} "):
        verify()
    assert AuditVerification.objects.get().first_broken_id == forged


@pytest.mark.django_db(transaction=True)
def test_the_application_role_cannot_append_an_event_that_verifies(app_role):
    fill(3)
    with pytest.raises(psycopg2.errors.CheckViolation):  # an unkeyed event is refused outright
        with app_role, app_role.cursor() as cursor:
            forged_append(cursor)
    with app_role, app_role.cursor() as cursor:
        forged = forged_append(cursor, key_id=chain_key_id_current(), key=WRONG_KEY)
    assert chain_verify().first_broken_id == forged
    with pytest.raises(CommandError, match=f"Audit trail BROKEN: event {forged} does not match its hash"):
        verify()


# --- The unkeyed segment from before migration 0010 --------------------------------------

def unkeyed_events(count: int) -> list[int]:
    """Events exactly as the code before 0010 wrote them: plain SHA-256, no key id."""
    with keyed_check_lifted(), connection.cursor() as cursor:
        return [forged_append(cursor) for _ in range(count)]


def migration_0010_anchor():
    """Run the 0010 migration's own data step, with the models as they were at 0010."""
    from django.db.migrations.loader import MigrationLoader

    apps = MigrationLoader(connection).project_state(("reviews", "0010_audit_chain_key")).apps
    with connection.schema_editor() as schema_editor:
        MIGRATION_0010.anchor(apps, schema_editor)


@pytest.mark.django_db
def test_unkeyed_events_stay_verifiable_up_to_the_keyed_anchor():
    old = unkeyed_events(4)
    migration_0010_anchor()
    migration_0010_anchor()  # a second run finds the chain keyed and adds nothing
    fill(2)
    trail = list(AuditEvent.objects.order_by("id"))
    anchor = trail[4]
    assert [e.key_id for e in trail[:4]] == [""] * 4 and all(e.key_id for e in trail[4:])
    assert anchor.action == ANCHOR_ACTION and anchor.prev_hash == trail[3].hash
    assert anchor.details == {"unkeyed_events": 4, "unkeyed_head_id": old[-1]}
    assert "Audit trail intact: 7 events" in verify()


@pytest.mark.django_db
def test_an_unkeyed_append_after_the_anchor_is_named():
    unkeyed_events(2)
    migration_0010_anchor()
    with keyed_check_lifted(), connection.cursor() as cursor:
        forged = forged_append(cursor)
    with pytest.raises(CommandError, match=f"event {forged} is unkeyed after the chain became keyed"):
        verify()


@pytest.mark.django_db
def test_rewriting_the_unkeyed_segment_breaks_at_the_anchor():
    from reviews.audit import event_fields, event_hash

    unkeyed_events(3)
    migration_0010_anchor()
    # A superuser rewrites the last unkeyed event and re-hashes it: plain SHA-256 needs no key...
    target = AuditEvent.objects.order_by("id")[2]
    target.action = "auth.login"
    with keyed_check_lifted():
        superuser_sql("UPDATE reviews_auditevent SET action = 'auth.login', hash = %s WHERE id = %s",
                      [event_hash(event_fields(target)), target.pk])
    anchor = AuditEvent.objects.get(action=ANCHOR_ACTION)
    # ...but the keyed anchor sealed the old head, and re-sealing the anchor needs the key.
    assert chain_verify().first_broken_id == anchor.pk


@pytest.mark.django_db
def test_unkeyed_events_without_an_anchor_are_named():
    # Into an empty trail (nothing for 0010 to anchor) someone with only the database appends
    # an unkeyed event; alone, and with the application's keyed events after it.
    first, second = unkeyed_events(2)
    with pytest.raises(CommandError, match=f"events {first} to {second} are unkeyed and no keyed anchor"):
        verify()
    fill(2)
    result = chain_verify()
    assert not result.ok and result.first_broken_id == first


@pytest.mark.django_db
def test_a_forged_anchor_is_named():
    unkeyed_events(2)
    with connection.cursor() as cursor:
        forged = forged_append(cursor, key_id=chain_key_id_current(), key=WRONG_KEY)
    assert chain_verify().first_broken_id == forged


# --- Key rotation -------------------------------------------------------------------------

OLD_KEY, NEW_KEY = "first-key-" + "a" * 32, "second-key-" + "b" * 32


@pytest.mark.django_db
def test_rotation_keeps_old_events_verifiable(settings):
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY]
    fill(2)
    old_key_id = chain_key_id_current()
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY, NEW_KEY]
    fill(2)
    key_ids = list(AuditEvent.objects.order_by("id").values_list("key_id", flat=True))
    assert key_ids[:2] == [old_key_id] * 2 and key_ids[2] == key_ids[3] != old_key_id
    assert "Audit trail intact: 4 events" in verify()


@pytest.mark.django_db
def test_servers_not_yet_restarted_may_seal_with_the_old_key_during_the_rollout(settings):
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY]
    fill(1)
    for keys in ([OLD_KEY, NEW_KEY], [OLD_KEY], [OLD_KEY, NEW_KEY], [OLD_KEY]):  # a rolling restart
        settings.AUDIT_CHAIN_KEYS = keys
        fill(1)
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY, NEW_KEY]
    assert "Audit trail intact: 5 events" in verify()


@pytest.mark.django_db
def test_a_leaked_retired_key_cannot_append_after_the_rollout(settings):
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY]
    fill(2)
    old_key_id = chain_key_id_current()
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY, NEW_KEY]
    fill(1)
    with time_machine.travel(timezone.now() + timedelta(hours=3)):
        fill(1)
        with connection.cursor() as cursor:
            forged = forged_append(cursor, key_id=old_key_id, key=OLD_KEY.encode())
    with pytest.raises(CommandError, match=f"event {forged} is sealed by key id {old_key_id}, retired since"):
        verify()
    # Backdating the forged event into the rollout window does not help either.
    assert chain_verify().first_broken_id == forged


@pytest.mark.django_db
def test_dropping_a_key_that_sealed_events_is_reported(settings):
    settings.AUDIT_CHAIN_KEYS = [OLD_KEY]
    fill(1)
    first = AuditEvent.objects.get()
    settings.AUDIT_CHAIN_KEYS = [NEW_KEY]
    with pytest.raises(CommandError, match=f"event {first.pk} names key id {first.key_id}, which no AUDIT_CHAIN_KEY"):
        verify()


def test_production_refuses_to_start_without_the_chain_key():
    root = Path(__file__).resolve().parent.parent
    env = {"ANNOTATOR_ENV": "production", "DJANGO_SECRET_KEY": "x" * 50, "PSEUDONYM_KEY": "y" * 32,
           "AUDIT_CHECKPOINT_KEY": "z" * 32, "ALLOWED_HOSTS": "annotator.example.org", "PATH": os.defpath}
    result = subprocess.run([sys.executable, "manage.py", "check", "--deploy"], cwd=root, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and "AUDIT_CHAIN_KEY must be set in production" in result.stderr
