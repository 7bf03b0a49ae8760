"""The one writer of audit events: append-only, hash-chained, in the caller's transaction."""

import contextvars
import hashlib
import json
from dataclasses import dataclass

from django.db import connection, transaction
from django.utils import timezone

from .models import AuditEvent, ServiceToken

GENESIS_HASH = "0" * 64
# Arbitrary constant naming the PostgreSQL advisory lock that serializes chain appends.
CHAIN_LOCK_ID = 0x61756469  # "audi"


@dataclass(frozen=True)
class RequestContext:
    client_ip: str | None = None
    user_agent: str = ""
    request_id: str = ""


_request_context: contextvars.ContextVar[RequestContext] = contextvars.ContextVar(
    "audit_request_context", default=RequestContext()
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
    else:
        role = "service" if ServiceToken.objects.filter(user=user).exists() else "none"
    user._audit_role = role
    return role


def event_hash(fields: dict) -> str:
    """Hash the canonical JSON of an event's content, its previous hash included."""
    canonical = json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def event_fields(event: AuditEvent) -> dict:
    return {
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


def audit_record(*, actor, action: str, outcome: str = AuditEvent.Outcome.ALLOWED, object_type: str = "",
                 object_id: str = "", clip_id=None, details: dict | None = None,
                 actor_name: str | None = None) -> AuditEvent:
    """Append one event to the chain inside the current transaction (or a new one)."""
    context = _request_context.get()
    user = actor if actor is not None and getattr(actor, "is_authenticated", False) else None
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CHAIN_LOCK_ID])
        prev_hash = AuditEvent.objects.order_by("-id").values_list("hash", flat=True).first() or GENESIS_HASH
        event = AuditEvent(
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
            prev_hash=prev_hash,
        )
        event.hash = event_hash(event_fields(event))
        event.save()
    return event


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


def chain_verify() -> ChainResult:
    """Walk the whole chain in order; stop at the first event whose content or link is wrong."""
    previous, count, head_id = GENESIS_HASH, 0, None
    for event in AuditEvent.objects.order_by("id").iterator(chunk_size=5000):
        if event.prev_hash != previous:
            return ChainResult(False, count, head_id, previous, event.pk,
                               f"event {event.pk} does not follow the event before it (one was removed or altered)")
        if event_hash(event_fields(event)) != event.hash:
            return ChainResult(False, count, head_id, previous, event.pk,
                               f"event {event.pk} does not match its hash (its content was changed)")
        previous, head_id, count = event.hash, event.pk, count + 1
    return ChainResult(True, count, head_id, previous)
