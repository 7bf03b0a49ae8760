"""The PostgreSQL backend's health check (annotator/postgresql/base.py): skipped by a connection
that ended a transaction within the last second, done by one idle longer; a dropped connection
costs at most one failed request."""

import time
from contextlib import closing

import psycopg2
import pytest
from django.contrib.auth import get_user_model
from django.db import DatabaseError, connections, transaction

from annotator.postgresql import base as backend

pytestmark = pytest.mark.django_db(transaction=True)


class _Default:
    """The default connection itself (django.db.connection is a proxy to it)."""

    def __getattr__(self, name):
        return getattr(connections["default"], name)

    def __setattr__(self, name, value):
        setattr(connections["default"], name, value)


connection = _Default()


@pytest.fixture
def checks(monkeypatch):
    """The health checks the connection makes (each one a SELECT 1 round trip). The test starts
    on a fresh connection: one older than CONN_MAX_AGE (a long run's) would be closed as obsolete
    when a request starts, with no check to count."""
    connections["default"].close()
    asked = []
    real = type(connections["default"]).is_usable
    monkeypatch.setattr(type(connections["default"]), "is_usable", lambda self: asked.append(1) or real(self))
    return asked


def request_start():
    connection.close_if_unusable_or_obsolete()  # what Django does when a request starts or ends


def a_request():
    with transaction.atomic():
        return get_user_model().objects.count()


def idle_past_the_window():
    connection._answered_at -= backend.HEALTH_CHECK_BYPASS_SECONDS + 0.1


def terminate(pid: int) -> None:
    settings = connection.settings_dict
    other = psycopg2.connect(dbname=settings["NAME"], user=settings["USER"], host=settings["HOST"],
                             port=settings["PORT"])
    other.autocommit = True
    with closing(other), other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        for _ in range(100):  # the backend exits asynchronously
            cursor.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [pid])
            if cursor.fetchone()[0] == 0:
                return
            time.sleep(0.02)
    raise AssertionError("the backend did not exit")


def test_the_app_uses_this_backend_with_health_checks_on():
    assert type(connections["default"]).__module__ == "annotator.postgresql.base"
    assert connection.settings_dict["CONN_HEALTH_CHECKS"] and connection.health_check_enabled


def test_a_connection_busy_within_the_window_is_not_asked_and_an_idle_one_is(checks):
    a_request()
    request_start()
    a_request()
    assert checks == []  # committed a moment ago: no SELECT 1
    idle_past_the_window()
    request_start()
    a_request()
    assert checks == [1]  # idle longer: asked once, before the request's first query
    a_request()
    assert checks == [1]  # once per request, not per query


def test_a_connection_dropped_while_idle_is_replaced_before_the_request_uses_it(checks):
    a_request()
    old = connection.connection.get_backend_pid()
    terminate(old)
    idle_past_the_window()
    request_start()
    assert a_request() >= 0  # no error: the check found it dead and connected afresh
    assert checks == [1] and connection.connection.get_backend_pid() != old


def test_a_connection_dropped_while_busy_fails_one_request_and_the_next_connects_afresh(checks):
    a_request()
    old = connection.connection.get_backend_pid()
    terminate(old)
    request_start()
    with pytest.raises(DatabaseError):  # within the window: not asked, so this request fails (a 503)
        a_request()
    request_start()  # the request's end: errors occurred, the connection is checked and closed
    assert a_request() >= 0
    assert connection.connection.get_backend_pid() != old
