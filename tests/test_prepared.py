"""Prepared queries (reviews/prepared.py): compiled once per connection, the same rows and
instances as the ORM gives for every value, and refused when a value would be frozen in."""

import threading

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from reviews import leases, prepared
from reviews.models import Assignment, Clip
from reviews.prepared import Prepared

SENTINEL = -2_000_000_001


def fake_clips(project, count):
    Clip.objects.bulk_create([
        Clip(project=project, recorded_on="2026-11-20", locale="en-US", duration_ms=1000 + i,
             audio=f"clips/fake-{i}.mp3", peaks=[i]) for i in range(count)])


def candidates(count=5):
    return Prepared(Clip, lambda reviewer_id: leases._lease_candidates(get_user_model()(pk=reviewer_id))[:count],
                    reviewer_id=SENTINEL)


def described(clips):
    return [(c.pk, c.duration_ms, c.project.slug, c.project.label_schema.name, c.gold_waiting,
             sorted(c.get_deferred_fields())) for c in clips]


def test_the_rows_and_instances_are_the_orms_for_each_reviewer(project, alice, bob):
    fake_clips(project, 8)
    first = Clip.objects.order_by("ingested_at", "id").first()
    Assignment.objects.create(clip=first, reviewer=alice, status="submitted", leased_at="2026-11-20T10:00:00Z",
                              lease_expires_at="2026-11-20T10:10:00Z")
    query = candidates()
    for reviewer in (alice, bob, alice):
        expected = list(leases._lease_candidates(reviewer)[:5])
        got = query.run(reviewer_id=reviewer.pk)
        assert described(got) == described(expected) and len(got) == 5
    assert first.pk not in [c.pk for c in query.run(reviewer_id=alice.pk)]  # alice's own exclusion applies
    assert first.pk in [c.pk for c in query.run(reviewer_id=bob.pk)]
    assert query.run(reviewer_id=987654) == []  # nobody's member


def test_it_is_compiled_once_per_connection(project, alice, monkeypatch):
    fake_clips(project, 2)
    query, compiled = candidates(), []
    real = Prepared._compile
    monkeypatch.setattr(Prepared, "_compile", lambda self, conn: compiled.append(conn) or real(self, conn))
    for _ in range(3):
        query.run(reviewer_id=alice.pk)
    assert len(compiled) == 1

    def elsewhere():  # another thread has its own connection, so its own compiled copy
        try:
            query.run(reviewer_id=alice.pk)
        finally:
            connection.close()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert len(compiled) == 2 and compiled[0] is not compiled[1]


def test_a_value_frozen_into_the_sql_is_refused(db, alice):
    # An inlined value (what Prepared must refuse), from a test constant: noqa S610.
    inlined = Prepared(Clip, lambda reviewer_id: Clip.objects.extra(where=[f"duration_ms <> {reviewer_id}"]),  # noqa: S610
                       reviewer_id=SENTINEL)
    with pytest.raises(ValueError, match="must be a query parameter"):
        inlined.run(reviewer_id=alice.pk)
    unused = Prepared(Clip, lambda reviewer_id: Clip.objects.all(), reviewer_id=SENTINEL)
    with pytest.raises(ValueError, match="must be a query parameter"):
        unused.run(reviewer_id=alice.pk)


def test_the_queue_locks_what_it_picks(project, alice):
    fake_clips(project, 1)
    with transaction.atomic():
        [clip] = leases._lease_candidate_first.run(reviewer_id=alice.pk)
        assert " FOR UPDATE OF " in leases._lease_candidate_first._compiled[prepared.connections["default"]].sql
    assert clip.project == project


def test_sessions_and_users_load_as_djangos_own_do(alice):
    from datetime import timedelta

    from django.contrib.auth import backends as django_backends
    from django.contrib.sessions.backends.db import SessionStore as DjangoStore
    from django.contrib.sessions.models import Session
    from django.utils import timezone

    from reviews import sessions

    store = sessions.SessionStore()
    store["x"] = 1
    store.save()
    key = store.session_key
    assert sessions.SessionStore(key).load() == DjangoStore(key).load() == {"x": 1}
    Session.objects.filter(session_key=key).update(expire_date=timezone.now() - timedelta(seconds=1))
    expired = sessions.SessionStore(key)
    assert expired.load() == DjangoStore(key).load() == {} and expired.session_key is None
    assert sessions.SessionStore("no-such-key-0123456789").load() == {}

    assert sessions.ModelBackend().get_user(str(alice.pk)) == alice
    assert sessions.ModelBackend().get_user("987654") is None
    alice.is_active = False
    alice.save()
    assert sessions.ModelBackend().get_user(str(alice.pk)) is None
    assert django_backends.ModelBackend().get_user(alice.pk) is None


def _server_statements():
    with connection.cursor() as cursor:
        cursor.cursor.execute("SELECT name FROM pg_prepared_statements WHERE name LIKE 'annotator_%%'")
        return {row[0] for row in cursor.cursor.fetchall()}


@pytest.mark.django_db(transaction=True)
def test_raw_sql_is_prepared_once_per_connection_and_again_after_a_reconnect():
    from reviews.prepared import _statement, run_sql

    sql = "SELECT %s::int + 1, 'x' LIKE '%%x', %s::text"
    name = _statement(sql)[0]
    for value in (1, 2):
        with connection.cursor() as cursor:
            run_sql(cursor, sql, [value, "it's"])
            assert cursor.fetchone() == (value + 1, True, "it's")
    assert name in _server_statements() and name in connection.prepared_names
    connection.close()  # a new connection has none: prepared again, transparently
    with connection.cursor() as cursor:
        run_sql(cursor, sql, [5, "a"])
        assert cursor.fetchone() == (6, True, "a")
    assert name in _server_statements()


def test_a_statement_that_cannot_be_prepared_fails_as_a_database_error_and_is_not_recorded(db):
    from django.db import DatabaseError

    from reviews.prepared import _statement, run_sql

    bad = "SELECT nothing_here FROM reviews_clip WHERE id = %s"
    with pytest.raises(DatabaseError), transaction.atomic(), connection.cursor() as cursor:
        run_sql(cursor, bad, [1])
    assert _statement(bad)[0] not in connection.prepared_names
    with connection.cursor() as cursor:  # the connection goes on
        run_sql(cursor, "SELECT %s::int", [3])
        assert cursor.fetchone() == (3,)


def test_an_insert_reports_its_rows_through_execute(db):
    from reviews.prepared import run_sql

    sql = "INSERT INTO reviews_audiotokenuse (nonce, used_at) VALUES (%s, now()) ON CONFLICT (nonce) DO NOTHING"
    counts = []
    for _ in range(2):
        with connection.cursor() as cursor:
            run_sql(cursor, sql, ["n-1"])
            counts.append(cursor.rowcount)
    assert counts == [1, 0]


@pytest.mark.django_db(transaction=True)
def test_prepared_statements_can_be_switched_off(settings):
    from reviews.prepared import run_sql

    settings.DB_PREPARED_STATEMENTS = False
    connection.close()
    try:
        assert connection.cursor() and connection.prepared_names is None
        with connection.cursor() as cursor:
            run_sql(cursor, "SELECT %s::int * 7", [6])
            assert cursor.fetchone() == (42,)
        assert _server_statements() == set()
    finally:
        connection.close()


def test_insert_parts_store_what_the_orms_insert_stores(project, alice):
    """A row inserted from insert_parts (inside another statement, as the claim and the submit do)
    reads back field for field as the ORM's own insert of the same instance: JSON, UUIDs, times,
    an auto key returned, a client-made UUID key kept."""
    from django.utils import timezone

    from reviews.models import Transcription

    fake_clips(project, 2)
    first, second = Clip.objects.order_by("duration_ms")
    now = timezone.now()

    def pair(clip):
        lease = Assignment(clip=clip, reviewer=alice, leased_at=now, lease_expires_at=now)
        words = Transcription(assignment=lease, clip=clip, reviewer=alice, text="ok é", submitted_at=now,
                              labels={"speaker": ["adult"]}, segments=[{"start_ms": 0, "end_ms": 5}], asr_wer=0.25)
        return lease, words

    def row(instance):
        fields = [f.attname for f in type(instance)._meta.concrete_fields if not f.primary_key]
        return type(instance).objects.filter(pk=instance.pk).values(*fields).get()

    orm_lease, orm_words = pair(first)
    orm_lease.save(force_insert=True)
    orm_words.save(force_insert=True)
    lease, words = pair(second)
    with connection.cursor() as cursor:
        into, values, params = prepared.insert_parts(lease)
        prepared.run_sql(cursor, f"WITH one AS (SELECT 1) INSERT INTO {into} SELECT {values} FROM one", params)
        prepared.saved(lease)
        into, values, params = prepared.insert_parts(words)
        prepared.run_sql(cursor, f"INSERT INTO {into} VALUES ({values}) RETURNING id", params)
        prepared.saved(words, cursor.fetchone()[0])

    assert not lease._state.adding and Assignment.objects.filter(pk=lease.pk).exists()
    assert words.pk == Transcription.objects.get(assignment=lease).pk != orm_words.pk
    for made, orms in ((lease, orm_lease), (words, orm_words)):
        assert {**row(made), "clip_id": None, "assignment_id": None} == {**row(orms), "clip_id": None,
                                                                         "assignment_id": None}


def test_the_session_brings_its_users_row_in_the_same_statement(alice, bob):
    """On PostgreSQL the session's row and its user's (through UserSession) come in one statement;
    get_user takes that user once, and only when it is the one asked for."""
    from django.conf import settings
    from django.test.utils import CaptureQueriesContext

    from reviews import sessions
    from tests.helpers import session_client

    key = session_client(alice).cookies[settings.SESSION_COOKIE_NAME].value  # sign-in registers the session
    with CaptureQueriesContext(connection) as queries:
        data = sessions.SessionStore(key).load()
        assert sessions.ModelBackend().get_user(data["_auth_user_id"]) == alice
    assert len(queries) == 1
    with CaptureQueriesContext(connection) as queries:  # taken once: asked again, it is read
        assert sessions.ModelBackend().get_user(str(alice.pk)) == alice
    assert len(queries) == 1

    sessions.SessionStore(key).load()
    assert sessions.ModelBackend().get_user(str(bob.pk)) == bob  # not the row that came: bob's is read
    assert sessions._session_user.get() is None

    anonymous = sessions.SessionStore()
    anonymous["x"] = 1
    anonymous.save()
    assert sessions.SessionStore(anonymous.session_key).load() == {"x": 1}
    assert sessions._session_user.get() is None  # no registration, no user

    # Deactivated behind the signals' back (they would end the session): refused all the same.
    get_user_model().objects.filter(pk=alice.pk).update(is_active=False)
    assert sessions.SessionStore(key).load()
    assert sessions._session_user.get() == alice
    assert sessions.ModelBackend().get_user(str(alice.pk)) is None
