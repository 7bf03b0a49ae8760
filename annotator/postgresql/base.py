"""Django's PostgreSQL backend with a health check that a busy connection skips, and a
record of the connection's prepared statements.

With CONN_HEALTH_CHECKS Django asks every reused connection ``SELECT 1`` before a request's
first query: one round trip per request, four in each reviewer loop. A connection whose
last transaction committed (or rolled back) within HEALTH_CHECK_BYPASS_SECONDS is taken as
alive without asking, as connection pools do (HikariCP skips its check for 500 ms). A
connection idle longer is checked as before. If the server dropped a busy connection in that
window, that request answers 503 (api.py, views.py) and Django closes the connection when
the request ends (its ``errors_occurred`` check), so the next request connects afresh.
"""

import time

from django.conf import settings
from django.db.backends.postgresql import base

HEALTH_CHECK_BYPASS_SECONDS = 1.0


class DatabaseWrapper(base.DatabaseWrapper):
    _answered_at = float("-inf")  # when the server last ended a transaction for us
    # The names of this connection's server-side prepared statements (reviews/prepared.py);
    # None where they are switched off (DB_PREPARED_STATEMENTS). A new connection has none.
    prepared_names: set[str] | None = None

    def get_new_connection(self, conn_params):
        connection = super().get_new_connection(conn_params)
        self.prepared_names = set() if getattr(settings, "DB_PREPARED_STATEMENTS", False) else None
        return connection

    def _commit(self):
        super()._commit()
        self._answered_at = time.monotonic()

    def _rollback(self):
        super()._rollback()
        self._answered_at = time.monotonic()

    def close(self):
        super().close()
        self._answered_at = float("-inf")

    def close_if_health_check_failed(self):
        if (self.connection is not None and self.health_check_enabled and not self.health_check_done
                and time.monotonic() - self._answered_at < HEALTH_CHECK_BYPASS_SECONDS):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
