"""ORM queries compiled once per database connection, then run with new parameter values.

Django builds and compiles a queryset's SQL on every evaluation. For the queue's candidate
query (four subqueries, two joins) that is about 4 ms of CPU per lease, more than PostgreSQL
spends running it, while its SQL differs from one reviewer to the next only in parameter
values. A ``Prepared`` query is written once as an ORM queryset; on first use per connection
it is built with sentinel values and compiled, and each run puts the real values where the
sentinels are among the parameters and turns the rows into model instances the way Django's
own iterator does (``select_related`` objects, deferred fields and annotations included).

Only for querysets whose SQL does not depend on the values, and with no value read from the
database frozen into them: every value that varies must be a sentinel.
"""

import functools
import hashlib
import re
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass

from django.db import connections, router
from django.db.models import Model, QuerySet
from django.db.models.query import get_related_populators


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    params: tuple
    slots: dict[str, tuple[tuple[int, ...], Callable]]  # sentinel name -> (its positions, value -> parameter)
    compiler: object  # Django's compiler, kept for its select list and result converters
    converters: dict  # the compiler's result converters, worked out once (results_iter would, every run)
    init_list: list[str]
    fields: slice  # the model's own columns in a row
    populators: list
    annotations: dict[str, int]


class Prepared:
    """``build(**values)`` returns the queryset (ordered, sliced, locked as it should run);
    ``sentinels`` give each value a stand-in that no real parameter can equal."""

    def __init__(self, model: type[Model], build: Callable[..., QuerySet], **sentinels):
        self.model, self.build, self.sentinels = model, build, sentinels
        self._compiled: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()

    def _compile(self, connection) -> _Compiled:
        compiler = self.build(**self.sentinels).query.get_compiler(connection=connection)
        sql, params = compiler.as_sql()
        slots = {}
        for name, value in self.sentinels.items():
            positions, adapt = (), None
            for forms in _forms(value):
                positions = tuple(i for i, param in enumerate(params) if param == forms[0])
                if positions:
                    adapt = forms[1]
                    break
            if not positions or str(value) in sql:
                raise ValueError(f"Prepared query: the value of {name!r} must be a query parameter, never inlined")
            slots[name] = (positions, adapt)
        klass_info, select = compiler.klass_info, compiler.select
        first, last = klass_info["select_fields"][0], klass_info["select_fields"][-1] + 1
        compiled = _Compiled(
            sql=sql, params=tuple(params), slots=slots, compiler=compiler,
            converters=compiler.get_converters([column[0] for column in select[:compiler.col_count]]),
            init_list=[column[0].target.attname for column in select[first:last]], fields=slice(first, last),
            populators=get_related_populators(klass_info, select, connection.alias),
            annotations=dict(compiler.annotation_col_map or {}),
        )
        self._compiled[connection] = compiled
        return compiled

    def run(self, **values) -> list[Model]:
        """The query's rows as model instances, for these values."""
        connection = connections[router.db_for_write(self.model)]
        compiled = self._compiled.get(connection) or self._compile(connection)
        params = list(compiled.params)
        for name, (positions, adapt) in compiled.slots.items():
            param = adapt(values[name])
            for position in positions:
                params[position] = param
        with connection.cursor() as cursor:
            run_sql(cursor, compiled.sql, params)
            rows = cursor.fetchall()
        found = []
        if compiled.converters:
            rows = compiled.compiler.apply_converters(rows, compiled.converters)
        for row in rows:
            obj = self.model.from_db(connection.alias, compiled.init_list, row[compiled.fields])
            for populator in compiled.populators:
                populator.populate(row, obj)
            for name, position in compiled.annotations.items():
                setattr(obj, name, row[position])
            found.append(obj)
        return found


def _forms(sentinel) -> list[tuple[object, Callable]]:
    """How a value may appear among the parameters, each with the function that gives a real
    value that form: as it is, or (a UUID where the database has no UUID type: SQLite) as hex."""
    if isinstance(sentinel, uuid.UUID):
        return [(sentinel, lambda value: value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))),
                (sentinel.hex, lambda value: (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).hex)]
    return [(sentinel, lambda value: value)]


# --- Server-side prepared statements ------------------------------------------------------
# PostgreSQL parses and plans every statement psycopg2 sends, and for this app's statements
# (CTEs, the queue's four subqueries) planning was about a third of the database's CPU per
# reviewer loop (4.5 ms of planning in ~13 ms, pg_stat_statements with track_planning). A
# statement sent through ``run_sql`` is prepared once per connection (PREPARE, on the raw
# cursor, so it is connection setup rather than one of a request's queries) and then run with
# EXECUTE: parsed and planned once, executed many times. PREPARE is not undone by a rollback,
# and a new connection starts with none (annotator/postgresql/base.py).

_PLACEHOLDER = re.compile(r"%%|%s")
MAX_PREPARED = 200  # per connection; the app has about twenty statements worth preparing


@functools.lru_cache(maxsize=256)
def _statement(sql: str) -> tuple[str, str, int]:
    """The prepared statement's name, its body ($1, $2... for psycopg2's %s; %% is a %), and
    how many parameters it takes."""
    count = 0

    def number(match: re.Match) -> str:
        nonlocal count
        if match.group() == "%%":
            return "%"
        count += 1
        return f"${count}"

    body = _PLACEHOLDER.sub(number, sql)
    return f"annotator_{hashlib.sha256(sql.encode()).hexdigest()[:20]}", body, count


def run_sql(cursor, sql: str, params) -> None:
    """``cursor.execute(sql, params)``, as a prepared statement where the connection keeps them."""
    names = getattr(cursor.db, "prepared_names", None)
    if names is None:
        cursor.execute(sql, params)
        return
    name, body, count = _statement(sql)
    if name not in names and len(names) >= MAX_PREPARED:
        cursor.execute(sql, params)  # a statement whose text varies would fill the server's memory
        return
    if len(params) != count:
        raise ValueError(f"{count} placeholders, {len(params)} parameters")
    if name not in names:
        with cursor.db.wrap_database_errors:
            cursor.cursor.execute(f"PREPARE {name} AS {body}")
        names.add(name)
    cursor.execute(f"EXECUTE {name}({', '.join(['%s'] * count)})" if count else f"EXECUTE {name}", params)


@functools.lru_cache(maxsize=16)
def _insert_text(model: type[Model], vendor: str, alias: str) -> tuple[str, str, tuple]:
    db = connections[alias]
    fields = tuple(field for field in model._meta.concrete_fields
                   if not (field.primary_key and field.db_returning))  # an auto key is the database's
    columns = ", ".join(db.ops.quote_name(field.column) for field in fields)
    values = ", ".join(f"%s::{field.db_type(db)}" for field in fields)
    return columns, values, fields


def insert_parts(instance: Model, alias: str = "default") -> tuple[str, str, list]:
    """The table and column list, the cast placeholders and the parameters of an INSERT of
    ``instance`` (an auto primary key left to the database), for a statement that inserts it
    beside other work, e.g. ``INSERT INTO t (columns) SELECT values FROM claimed`` in a CTE: the
    SQL text is built once per model, so it stays one prepared statement (run_sql). The caller
    marks the instance saved (``saved``)."""
    db = connections[alias]
    columns, values, fields = _insert_text(type(instance), db.vendor, alias)
    table = db.ops.quote_name(instance._meta.db_table)
    params = [field.get_db_prep_save(field.pre_save(instance, add=True), db) for field in fields]
    return f"{table} ({columns})", values, params


def saved(instance: Model, pk=None, alias: str = "default") -> Model:
    """Mark an instance that a statement of insert_parts inserted as saved (with its new key)."""
    if pk is not None:
        instance.pk = pk
    instance._state.adding, instance._state.db = False, alias
    return instance
