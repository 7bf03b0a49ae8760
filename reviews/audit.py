"""The one writer of audit events: append-only, chained by keyed seals, in the caller's transaction.

Each event's ``hash`` is HMAC-SHA256, under the AUDIT_CHAIN_KEY its ``key_id`` names, of its
canonical content including its predecessor's seal. The key lives only in the environment,
so a database role that may INSERT (or a stolen dump) cannot append an event that verifies.
Events written before migration 0010 are plain SHA-256 ("unkeyed"); that migration closes
them with one keyed anchor event, and verification refuses any unkeyed event after it.
"""

import contextvars
import functools
import hashlib
import hmac
import json
import os
import tempfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, connections, transaction
from django.utils import timezone

from .models import AuditEvent, ServiceToken
from .prepared import run_sql

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the PostgreSQL advisory lock that serializes chain appends.
CHAIN_LOCK_ID = 0x61756469  # "audi"
# The keyed event that closes the unkeyed (pre-0010) segment; its details count that segment.
ANCHOR_ACTION = "audit.chain_keyed"
KEY_ID_LABEL = b"annotator audit chain key id"
# While a new AUDIT_CHAIN_KEY rolls out, servers not yet restarted still seal with the old
# one, so old-key events may interleave with new-key ones for this long (by their sealed
# times). After that an old-key event is refused: a retired key that leaks cannot append.
KEY_ROLLOUT_GRACE = timedelta(hours=1)


class UnknownChainKey(LookupError):
    """An event names a key id that no configured AUDIT_CHAIN_KEY has."""


@functools.lru_cache(maxsize=8)
def _chain_keys(keys: tuple[str, ...]) -> dict[str, tuple[int, bytes]]:
    # Ids are derived from the keys (an HMAC of a fixed label), so an operator cannot pair an
    # id with the wrong key, and the id stored beside each event says nothing about the key.
    return {hmac.new(key.encode(), KEY_ID_LABEL, hashlib.sha256).hexdigest()[:16]: (rank, key.encode())
            for rank, key in enumerate(keys)}


def chain_keys() -> dict[str, tuple[int, bytes]]:
    """Map each configured key id to its place in the rotation order (oldest 0) and its key."""
    return _chain_keys(tuple(settings.AUDIT_CHAIN_KEYS))


def chain_key_id_current() -> str:
    """Name the key that seals new events: the last one in AUDIT_CHAIN_KEY."""
    keys = chain_keys()
    return max(keys, key=lambda key_id: keys[key_id][0])


@dataclass(frozen=True)
class RequestContext:
    client_ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


_request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "audit_request_context", default=RequestContext()  # noqa: B039 - a frozen dataclass, never mutated
)


def request_context_set(context: RequestContext) -> contextvars.Token:
    return _request_context.set(context)


def request_id_current() -> str:
    return _request_context.get().request_id


def request_context_reset(token: contextvars.Token) -> None:
    _request_context.reset(token)


def actor_role(user) -> str:
    """Name the role the actor acted in, for the trail."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "anonymous"
    cached = getattr(user, "_audit_role", None)
    if cached:
        return cached
    from .permissions import REVIEWER, SUPERVISOR, user_in_group  # permissions imports audit's neighbours

    if user.is_staff or user.is_superuser:
        role = "admin"
    elif user_in_group(user, SUPERVISOR):
        role = "supervisor"
    elif user_in_group(user, REVIEWER):
        role = "reviewer"
    elif user_in_group(user, "checker"):  # permissions.CHECKER
        role = "checker"
    else:
        role = "service" if ServiceToken.objects.filter(user=user).exists() else "none"
    user._audit_role = role
    return role


def event_hash(fields: dict) -> str:
    """Seal an event's canonical JSON (previous seal included) with the key its key_id names."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str).encode()
    key_id = fields.get("key_id")
    if not key_id:
        return hashlib.sha256(canonical).hexdigest()  # an unkeyed event from before migration 0010
    try:
        key = chain_keys()[key_id][1]
    except KeyError:
        raise UnknownChainKey(key_id) from None
    return hmac.new(key, canonical, hashlib.sha256).hexdigest()


def event_fields(event: AuditEvent) -> dict:
    """The sealed content of an event; an unkeyed event's stays exactly what it was sealed as."""
    fields = {
        "at": event.at.isoformat(),
        "actor_id": event.actor_id,
        "actor_name": event.actor_name,
        "role": event.role,
        "action": event.action,
        "object_type": event.object_type,
        "object_id": event.object_id,
        "clip_id": str(event.clip_id) if event.clip_id else None,
        "outcome": event.outcome,
        "client_ip": event.client_ip,
        "user_agent": event.user_agent,
        "request_id": event.request_id,
        "details": event.details,
        "prev_hash": event.prev_hash,
    }
    if event.key_id:
        fields["key_id"] = event.key_id  # sealed too, so an event cannot be moved to another key
    return fields


def _chain_lock(using: str) -> bool:
    """Serialize appends so that two events never read the same head (transaction-scoped).
    Returns whether the lock was busy (this statement waited for it)."""
    db = connections[using]
    if db.vendor != "postgresql":
        return False
    with db.cursor() as cursor:
        # CASE runs its branches in order: wait only when the lock is not free at once.
        run_sql(cursor, "SELECT CASE WHEN pg_try_advisory_xact_lock(%s) THEN false "
                        "ELSE pg_advisory_xact_lock(%s) IS NOT NULL END", [CHAIN_LOCK_ID, CHAIN_LOCK_ID])
        return cursor.fetchone()[0]


# The seal of the last event appended, per database: most often still the head, so an append
# can skip reading it. Kept by this process and, for the other workers on this host, in a
# small file written before the appending transaction commits (so whoever takes the chain
# lock next finds it there). Only a guess either way: the append checks it in the database,
# and a wrong one (a rolled-back append, a torn or foreign file) costs a statement, nothing more.
_chain_heads: dict[str, str] = {}
# Per database: this process's last append found the chain lock busy. Under load most appends
# do, and the one-statement attempt (which appends only if the lock is free) is then a wasted
# statement before the wait: the next append waits at once, until an append finds it free.
_chain_busy: dict[str, bool] = {}


def _head_file(db) -> Path:
    where = db.settings_dict
    return _head_path(f"{where.get('HOST')}:{where.get('PORT')}/{where.get('NAME')}")


@functools.lru_cache(maxsize=16)
def _head_path(database: str) -> Path:
    name = hashlib.sha256(database.encode()).hexdigest()
    return Path(tempfile.gettempdir()) / f"annotator-audit-head-{name[:16]}"


_head_files: dict[Path, int] = {}  # open descriptors, one per file and process


def _head_descriptor(using: str) -> int:
    path = _head_file(connections[using])
    descriptor = _head_files.get(path)
    if descriptor is None:
        descriptor = _head_files[path] = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    return descriptor


def _head_guess(using: str) -> str:
    try:
        guess = os.pread(_head_descriptor(using), 64, 0).decode()
    except (OSError, UnicodeError):
        guess = ""
    return guess if len(guess) == 64 else _chain_heads.get(using, "")


def _head_remember(using: str, seal: str) -> None:
    _chain_heads[using] = seal
    try:
        os.pwrite(_head_descriptor(using), seal.encode(), 0)  # one 64-byte write in place: no file created
    except OSError:
        pass  # only a guess: the next append reads the head instead


_COLUMNS = ("at", "actor", "actor_name", "role", "action", "object_type", "object_id", "clip_id", "outcome",
            "client_ip", "user_agent", "request_id", "details", "prev_hash", "key_id", "hash")


@functools.lru_cache(maxsize=8)
def _append_statement(model, using: str, wait: bool) -> tuple[str, list]:
    """_append_if_head's SQL and its columns, built once per model, database and lock mode."""
    db = connections[using]
    table = db.ops.quote_name(model._meta.db_table)
    fields = [model._meta.get_field(name) for name in _COLUMNS]
    columns = ", ".join(db.ops.quote_name(field.column) for field in fields)
    values = ", ".join(f"%s::{field.db_type(db)}" for field in fields)
    lock = "pg_advisory_xact_lock(%s) IS NOT NULL" if wait else "pg_try_advisory_xact_lock(%s)"
    sql = (f"WITH chain_lock AS MATERIALIZED (SELECT {lock} AS held), "  # noqa: S608  # nosec B608
           f"appended AS (INSERT INTO {table} ({columns}) SELECT {values} FROM chain_lock WHERE chain_lock.held "
           f"AND (EXISTS (SELECT 1 FROM {table} WHERE hash = %s) OR (%s = %s AND NOT EXISTS (SELECT 1 FROM {table}))) "
           f"ON CONFLICT (prev_hash) DO NOTHING RETURNING id) "
           f"SELECT (SELECT id FROM appended), (SELECT hash FROM {table} ORDER BY id DESC LIMIT 1), "
           f"(SELECT held FROM chain_lock)")
    return sql, fields


def _append_if_head(model, event, using: str, *, wait: bool):
    """Insert ``event`` in one statement if its ``prev_hash`` is the head; return its id (None if
    not appended), the head the statement saw and whether it holds the lock.

    The statement takes the chain lock (as the last lock of its transaction: the audit event is
    the last thing an action writes): waiting for it, or, with ``wait`` False, only if it is
    free (else it appends nothing). It inserts only if the predecessor exists and nothing
    follows it yet. Neither check needs the lock or a fresh snapshot: ``prev_hash`` is unique (a
    second successor conflicts, PostgreSQL waiting for an uncommitted one to settle), and a
    predecessor committed before the statement began is in its snapshot. An event that exists
    and has no successor is the head of a chain that cannot fork. The lock keeps appenders in
    line, so that a statement after the lock was granted sees the head exactly (one that waited
    for it sees it from a snapshot taken before)."""
    db = connections[using]
    sql, fields = _append_statement(model, using, wait)
    params = [CHAIN_LOCK_ID, *(field.get_db_prep_save(getattr(event, field.attname), db) for field in fields),
              event.prev_hash, event.prev_hash, GENESIS_HASH]
    with db.cursor() as cursor:
        run_sql(cursor, sql, params)
        event_id, head, held = cursor.fetchone()
    if event_id is not None:
        event.pk, event._state.adding, event._state.db = event_id, False, using
        _head_remember(using, event.hash)
    return event_id, head, held


def _chain_append(model, *, using: str = DEFAULT_DB_ALIAS, **content):
    """Seal and insert one event after the current head. No savepoint: an event is part of its
    action, so a failed append fails the whole transaction anyway."""
    key_id = chain_key_id_current()
    db = connections[using]

    def sealed(prev_hash: str):
        event = model(prev_hash=prev_hash, key_id=key_id, **content)
        event.hash = event_hash(event_fields(event))
        return event

    if db.vendor != "postgresql":
        with transaction.atomic(using=using, savepoint=False):
            prev_hash = model.objects.using(using).order_by("-id").values_list("hash", flat=True).first()
            event = sealed(prev_hash or GENESIS_HASH)
            event.save(using=using)
        return event
    # On PostgreSQL: with the chain lock free, one statement appends after the guessed head.
    # Otherwise wait for the lock in a statement of its own: once it is granted, the previous
    # holder has committed and left its seal in the guess, and the next statement sees the
    # head exactly (and tells it, when the guess was wrong, for one more statement at most).
    # After a busy lock (_chain_busy) the next append skips the one-statement attempt.
    event = sealed(_head_guess(using))
    tried = not db.in_atomic_block  # then the first attempt is a transaction of its own
    if tried:
        event_id, _, _ = _append_if_head(model, event, using, wait=False)
        if event_id is not None:
            return event
    with transaction.atomic(using=using, savepoint=False):
        held = False
        if not tried and not _chain_busy.get(using):
            event_id, head, held = _append_if_head(model, event, using, wait=False)
            if event_id is not None:
                return event
        if held:  # the lock was free: the head that statement saw is the head (but for a rare race)
            guess = head or GENESIS_HASH
        else:
            _chain_busy[using] = _chain_lock(using)
            guess = _head_guess(using)
        for _attempt in range(3):
            event = sealed(guess)
            event_id, head, _ = _append_if_head(model, event, using, wait=True)
            if event_id is not None:
                return event
            guess = head or GENESIS_HASH
    raise RuntimeError("audit chain: no append after three attempts under the chain lock")


def audit_record(*, actor, action: str, outcome: str = AuditEvent.Outcome.ALLOWED, object_type: str = "",
                 object_id: str = "", clip_id=None, details: dict | None = None,
                 actor_name: str | None = None) -> AuditEvent:
    """Append one event to the chain inside the current transaction (or a new one)."""
    context = _request_context.get()
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    return _chain_append(
        AuditEvent,
        at=timezone.now(),
        actor=user,
        actor_name=(user.get_username() if user else (actor_name or ""))[:150],
        role=actor_role(user),
        action=action,
        object_type=object_type,
        object_id=str(object_id)[:64],
        clip_id=clip_id,
        outcome=outcome,
        client_ip=context.client_ip,
        user_agent=context.user_agent[:200],
        request_id=context.request_id[:64],
        details=details or {},
    )


def chain_anchor(*, model=AuditEvent, using: str = DEFAULT_DB_ALIAS):
    """Close an unkeyed chain with a keyed anchor event; nothing when the chain is empty or keyed."""
    with transaction.atomic(using=using):
        _chain_lock(using)
        head = model.objects.using(using).order_by("-id").values("id", "key_id").first()
        if head is None or head["key_id"]:
            return None
        unkeyed = model.objects.using(using).count()
        # The anchor seals the unkeyed head as its predecessor: rewriting the old segment would
        # now need the key, and its count lets verification refuse a later "legacy" event.
        return _chain_append(
            model, using=using, at=timezone.now(), actor=None, actor_name="system", role="system",
            action=ANCHOR_ACTION, object_type="audit", object_id=str(head["id"]),
            outcome=AuditEvent.Outcome.ALLOWED, client_ip=None, user_agent="", request_id="",
            details={"unkeyed_events": unkeyed, "unkeyed_head_id": head["id"]},
        )


def audit_denied(*, actor, attempted: str, object_type: str = "", object_id: str = "", clip_id=None,
                 reason: str = "", actor_name: str | None = None) -> AuditEvent:
    """Record a refused attempt as ``access.denied``."""
    return audit_record(
        actor=actor, action="access.denied", outcome=AuditEvent.Outcome.DENIED, object_type=object_type,
        object_id=object_id, clip_id=clip_id, details={"attempted": attempted, "reason": reason},
        actor_name=actor_name,
    )


@dataclass(frozen=True)
class ChainResult:
    ok: bool
    count: int
    head_id: int | None
    head_hash: str
    first_broken_id: int | None = None
    detail: str = ""


def _anchors(event: AuditEvent, unkeyed: int) -> bool:
    return (event.action == ANCHOR_ACTION and isinstance(event.details, dict)
            and event.details.get("unkeyed_events") == unkeyed)


def chain_verify() -> ChainResult:
    """Walk the whole chain in order; stop at the first event whose link, seal or key is wrong."""
    keys = chain_keys()
    previous, count, head_id = GENESIS_HASH, 0, None
    unkeyed, first_unkeyed_id = 0, None
    key_rank = -1  # rotation place of the newest key seen; -1 while the chain is still unkeyed
    key_rank_since = latest_at = None  # when the newest key first sealed; the latest keyed time
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=5000):
        problem, broken_id = "", event.pk
        if event.prev_hash != previous:
            problem = f"event {event.pk} does not follow the event before it (one was removed or altered)"
        elif event.key_id and event.key_id not in keys:
            problem = (f"event {event.pk} names key id {event.key_id}, which no AUDIT_CHAIN_KEY has (forged, or "
                       "that key was dropped from the setting)")
        elif event_hash(event_fields(event)) != event.hash:
            problem = f"event {event.pk} does not match its hash (its content was changed)"
            if event.key_id:
                problem = (f"event {event.pk} does not match its hash (its content was changed, or it was sealed "
                           "without the audit chain key: forged)")
        elif not event.key_id and key_rank >= 0:
            problem = (f"event {event.pk} is unkeyed after the chain became keyed: it was appended without the "
                       "audit chain key (forged)")
        elif event.key_id and keys[event.key_id][0] < key_rank and not (
                latest_at - KEY_ROLLOUT_GRACE <= event.at <= key_rank_since + KEY_ROLLOUT_GRACE):
            problem = (f"event {event.pk} is sealed by key id {event.key_id}, retired since "
                       f"{key_rank_since:%Y-%m-%d %H:%M} UTC (forged with an old key)")
        elif event.key_id and key_rank < 0 and unkeyed and not _anchors(event, unkeyed):
            problem, broken_id = (f"events {first_unkeyed_id} to {head_id} are unkeyed and no keyed anchor closes "
                                  "them: they were appended without the audit chain key (forged)"), first_unkeyed_id
        if problem:
            return ChainResult(False, count, head_id, previous, broken_id, problem)
        if event.key_id:
            if keys[event.key_id][0] > key_rank:
                key_rank, key_rank_since = keys[event.key_id][0], event.at
            latest_at = event.at if latest_at is None else max(latest_at, event.at)
        else:
            unkeyed, first_unkeyed_id = unkeyed + 1, first_unkeyed_id or event.pk
        previous, head_id, count = event.hash, event.pk, count + 1
    if unkeyed and key_rank < 0:
        # Migration 0010 anchors the unkeyed events it finds, so a trail that ends unkeyed was not written here.
        return ChainResult(False, count, head_id, previous, first_unkeyed_id,
                           f"events {first_unkeyed_id} to {head_id} are unkeyed and no keyed anchor closes them: "
                           "they were appended without the audit chain key (forged)")
    return ChainResult(True, count, head_id, previous)
