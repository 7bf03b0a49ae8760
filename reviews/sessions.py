"""The session and the signed-in user, read on every request with prepared queries.

Django's own session store and ModelBackend build and compile the same one-row query on every
request (about 0.7 ms of CPU each, a fifth of a small request). These do the same lookups with
queries compiled once per connection (prepared.py); everything else is Django's.
On PostgreSQL one statement reads both: the session row and, through the UserSession row that
sign-in registers (permissions.user_session_register), its user's row. ModelBackend.get_user
takes that user only when it is the one the session names, once; otherwise it reads it.
SESSION_ENGINE = "reviews.sessions"; AUTHENTICATION_BACKENDS names ``reviews.sessions.ModelBackend``.
"""

import contextvars
import functools

from django.contrib.auth import backends, get_user_model
from django.contrib.sessions.backends import db
from django.contrib.sessions.models import Session
from django.db import connections, router
from django.utils import timezone

from .models import UserSession
from .prepared import Prepared, run_sql

_session = Prepared(Session, lambda session_key: Session.objects.filter(session_key=session_key)[:1],
                    session_key="\x00session-key-sentinel")

# The user whose row came with the session this context loaded last, until get_user takes it.
_session_user: contextvars.ContextVar = contextvars.ContextVar("session_user", default=None)


@functools.lru_cache(maxsize=4)
def _session_and_user_sql(alias: str) -> tuple[str, tuple[str, ...]]:
    db_ = connections[alias]
    user = get_user_model()
    fields = user._meta.concrete_fields
    quote = db_.ops.quote_name
    columns = ", ".join(f"u.{quote(field.column)}" for field in fields)
    return (f"SELECT s.session_data, s.expire_date, {columns} FROM {quote(Session._meta.db_table)} s "  # noqa: S608  # nosec B608
            f"LEFT JOIN {quote(UserSession._meta.db_table)} us ON us.session_key = s.session_key "
            f"LEFT JOIN {quote(user._meta.db_table)} u ON u.{quote(user._meta.pk.column)} = us.user_id "
            "WHERE s.session_key = %s", tuple(field.attname for field in fields))


def _session_and_user(session_key: str) -> tuple[Session | None, object]:
    alias = router.db_for_read(Session)
    sql, attnames = _session_and_user_sql(alias)
    with connections[alias].cursor() as cursor:
        run_sql(cursor, sql, [session_key])
        row = cursor.fetchone()
    if row is None:
        return None, None
    session = Session.from_db(alias, ["session_key", "session_data", "expire_date"], [session_key, *row[:2]])
    user = get_user_model().from_db(alias, attnames, row[2:]) if row[2] is not None else None
    return session, user


class SessionStore(db.SessionStore):
    def _get_session_from_db(self):
        session = user = None
        if self.session_key and connections[router.db_for_read(Session)].vendor == "postgresql":
            session, user = _session_and_user(self.session_key)
        elif self.session_key:
            found = _session.run(session_key=self.session_key)
            session = found[0] if found else None
        _session_user.set(user)
        if session is not None and session.expire_date > timezone.now():
            return session
        _session_user.set(None)
        self._session_key = None  # missing or expired, as Django's store answers
        return None


_user = None


def _user_query() -> Prepared:
    global _user
    if _user is None:
        model = get_user_model()
        _user = Prepared(model, lambda user_id: model._default_manager.filter(pk=user_id)[:1], user_id=-2_000_000_001)
    return _user


class ModelBackend(backends.ModelBackend):
    def get_user(self, user_id):
        came = _session_user.get()
        _session_user.set(None)  # taken once: a later call in this context reads the row afresh
        try:
            user_id = int(user_id)
            found = [came] if came is not None and came.pk == user_id else _user_query().run(user_id=user_id)
        except (TypeError, ValueError):
            return None
        return found[0] if found and self.user_can_authenticate(found[0]) else None
