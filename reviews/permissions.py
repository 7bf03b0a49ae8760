"""Every access decision: roles, service tokens, guardian grants, object lookups.

Reviewers never hold a model-wide permission on clips (that would open every clip);
they hold ``reviews.review_clip`` on one clip only while their assignment is live.
"""

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.contrib.auth.models import Group, Permission
from django.contrib.sessions.models import Session
from django.core import signing
from django.db import connection
from django.db.models import CharField, Exists, OuterRef
from django.db.models.functions import Cast
from django.utils import timezone
from django_otp import user_has_device
from guardian.models import UserObjectPermission
from rest_framework import authentication, exceptions, permissions

from .errors import NotFoundDenied
from .models import Assignment, AudioTokenUse, Clip, ServiceToken, UserSession
from .prepared import Prepared, run_sql

REVIEWER = "reviewer"
SUPERVISOR = "supervisor"
CLIP_PERMISSION = "reviews.review_clip"


def token_hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def service_token_create(user, key: str | None = None) -> str:
    """Give a service account a new token; return the key (shown once, stored hashed)."""
    key = key or secrets.token_urlsafe(32)
    ServiceToken.objects.update_or_create(user=user, defaults={"key_hash": token_hash(key), "revoked_at": None})
    return key


def user_group_names(user) -> set[str]:
    """The user's group names, looked up once per request (or restored from the session)."""
    cache = getattr(user, "_group_names", None)
    if cache is None:
        cache = user._group_names = set(user.groups.values_list("name", flat=True))
    return cache


def user_in_group(user, name: str) -> bool:
    if not user or not user.is_authenticated or not user.is_active:
        return False
    return name in user_group_names(user)


def user_access_restore(user, *, groups: list[str], mfa: bool) -> None:
    """Put roles and the second-factor need, as the session remembers them, back on the user."""
    user._group_names = set(groups)
    user._mfa_required = mfa


def role_group(name: str) -> Group:
    return Group.objects.get_or_create(name=name)[0]


def mfa_required(user) -> bool:
    """Supervisors and admins always need a second factor; reviewers when a project of
    theirs says so, or once they enrolled a device of their own."""
    if not user or not user.is_authenticated:
        return False
    cached = getattr(user, "_mfa_required", None)
    if cached is None:
        cached = (
            user.is_staff or user.is_superuser or user_in_group(user, SUPERVISOR)
            or (user_in_group(user, REVIEWER) and user.review_projects.filter(require_reviewer_mfa=True).exists())
            or user_has_device(user)
        )
        user._mfa_required = cached
    return cached


def user_session_register(user, session_key: str | None) -> None:
    if session_key:
        UserSession.objects.get_or_create(session_key=session_key, defaults={"user": user})


def user_sessions_end(user) -> int:
    """End every session of a user (and with them every audio token, which is bound to one)."""
    keys = list(UserSession.objects.filter(user=user).values_list("session_key", flat=True))
    Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(user=user).delete()
    return len(keys)


def user_access_end(user) -> None:
    """A deactivated account loses its sessions and its service token at once."""
    user_sessions_end(user)
    ServiceToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    """``Authorization: Token <key>`` for ingest services; the key is compared by hash."""

    keyword = "Token"

    def authenticate(self, request):
        header = authentication.get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Malformed token header.")
        try:
            key = header[1].decode()
        except UnicodeError as exc:
            raise exceptions.AuthenticationFailed("Malformed token header.") from exc
        token = (
            ServiceToken.objects.select_related("user")
            .filter(key_hash=token_hash(key), revoked_at__isnull=True, user__is_active=True)
            .first()
        )
        if token is None:
            raise exceptions.AuthenticationFailed("Invalid token.")
        token.user._audit_role = "service"
        return token.user, token

    def authenticate_header(self, request):
        return self.keyword


class IsIngestService(permissions.BasePermission):
    def has_permission(self, request, view):
        return isinstance(request.auth, ServiceToken)


class IsReviewer(permissions.BasePermission):
    """A signed-in reviewer using the browser session (never a service token)."""

    def has_permission(self, request, view):
        return request.auth is None and user_in_group(request.user, REVIEWER) and _second_factor_ok(request)


class IsSupervisor(permissions.BasePermission):
    """A signed-in supervisor with a verified second factor."""

    def has_permission(self, request, view):
        return request.auth is None and supervisor_verified(request.user)


def second_factor_ok(user) -> bool:
    return not mfa_required(user) or (hasattr(user, "is_verified") and user.is_verified())


def _second_factor_ok(request) -> bool:
    return second_factor_ok(request.user)


def supervisor_verified(user) -> bool:
    """The console is for the supervisor role with, as for every supervisor, a verified second factor."""
    return user_in_group(user, SUPERVISOR) and second_factor_ok(user)


@lru_cache(maxsize=1)
def _clip_permission() -> tuple[int, int]:
    """(permission id, content type id) of the per-clip grant, looked up once per process
    (and again after migrations or a test flush, see apps.py)."""
    permission = Permission.objects.select_related("content_type").get(
        content_type__app_label="reviews", content_type__model="clip", codename=CLIP_PERMISSION.split(".")[1])
    return permission.pk, permission.content_type_id


def clip_access_grant(user, clip: Clip) -> None:
    """Grant the guardian object permission on this one clip (one INSERT)."""
    permission_id, content_type_id = _clip_permission()
    # bulk_create, not create(): guardian's save() re-reads the permission, its content type
    # and the clip to check they match, three queries for facts fixed above.
    UserObjectPermission.objects.bulk_create([UserObjectPermission(
        user=user, permission_id=permission_id, content_type_id=content_type_id, object_pk=str(clip.pk))])


def clip_grant_sql(user_column: str, clip_column: str) -> tuple[str, list]:
    """The per-clip grant check as an SQL condition, for a statement that does more at once."""
    permission_id, _ = _clip_permission()
    return (f"EXISTS (SELECT 1 FROM guardian_userobjectpermission grant_row WHERE grant_row.user_id = {user_column} "  # noqa: S608  # nosec B608
            f"AND grant_row.permission_id = %s AND grant_row.object_pk = ({clip_column})::text)", [permission_id])


def clip_access_grant_sql(user_column: str, clip_column: str, source: str) -> tuple[str, list]:
    """The grant's INSERT as a statement of a WITH, for each row of ``source``."""
    permission_id, content_type_id = _clip_permission()
    return (f"INSERT INTO guardian_userobjectpermission (permission_id, content_type_id, object_pk, user_id) "  # noqa: S608  # nosec B608
            f"SELECT %s, %s, ({clip_column})::text, {user_column} FROM {source} RETURNING id",
            [permission_id, content_type_id])


def clip_access_revoke_sql(*, user_id: int, clip_id) -> tuple[str, list]:
    """The grant's DELETE as a statement of a WITH."""
    permission_id, _ = _clip_permission()
    return ("DELETE FROM guardian_userobjectpermission WHERE user_id = %s AND permission_id = %s AND object_pk = %s "
            "RETURNING id", [user_id, permission_id, str(clip_id)])


def clip_access_revoke(*, user_id: int, clip_id) -> None:
    permission_id, _ = _clip_permission()
    UserObjectPermission.objects.filter(user_id=user_id, permission_id=permission_id, object_pk=str(clip_id)).delete()


def clip_grant_held(user, clip: Clip) -> bool:
    """The guardian object permission, checked with one query (no model-wide or group grants count)."""
    permission_id, _ = _clip_permission()
    return UserObjectPermission.objects.filter(user=user, permission_id=permission_id,
                                               object_pk=str(clip.pk)).exists()


ASSIGNMENT_SENTINEL = uuid.UUID("00000000-0000-4000-8000-5e471e000001")  # never a real id (prepared.py)
USER_SENTINEL = -2_000_000_001


def assignment_query(annotate=None, *, for_update: bool = False) -> Prepared:
    """One assignment by id (``assignment_id``) with its clip, project and label schema, compiled
    once per connection; ``annotate(queryset)`` adds what rides along (its own sentinels)."""
    def build(assignment_id, **values):
        queryset = Assignment.objects.select_related("clip", "clip__project", "clip__project__label_schema")
        if annotate is not None:
            queryset = annotate(queryset, **values)
        if for_update:
            queryset = queryset.select_for_update(of=("self",))
        return queryset.filter(pk=assignment_id)[:1]
    sentinels = {"user_id": USER_SENTINEL, "permission_id": USER_SENTINEL - 1} if annotate is not None else {}
    return Prepared(Assignment, build, assignment_id=ASSIGNMENT_SENTINEL, **sentinels)


_assignment_plain = {for_update: assignment_query(for_update=for_update) for for_update in (False, True)}


def clip_grant_held_annotate(queryset, *, user_id, permission_id):
    """The grant check for assignment_query, as ``grant_held`` for clip_access_held
    (called with sentinels; assignment_for_reviewer(grant_held=True) gives the real values)."""
    return queryset.annotate(grant_held=Exists(UserObjectPermission.objects.filter(
        user_id=user_id, permission_id=permission_id, object_pk=Cast(OuterRef("clip_id"), CharField()))))


def assignment_for_reviewer(user, assignment_id, *, attempted: str, for_update: bool = False,
                            query: Prepared | None = None) -> Assignment:
    """Return the caller's own assignment, or raise the 404 that hides everyone else's.

    ``query``: an assignment_query whose annotations include the grant check (its
    ``user_id`` and ``permission_id``), to run instead of the plain lookup."""
    assignment = None
    if is_uuid(assignment_id):
        if query is None:
            found = _assignment_plain[for_update].run(assignment_id=assignment_id)
        else:
            found = query.run(assignment_id=assignment_id, user_id=user.pk, permission_id=_clip_permission()[0])
        assignment = found[0] if found else None
    if assignment is None or assignment.reviewer_id != user.pk:
        raise NotFoundDenied(
            object_type="assignment", object_id=assignment_id, attempted=attempted,
            reason="missing" if assignment is None else "not_owner",
            clip_id=assignment.clip_id if assignment else None,
        )
    return assignment


AUDIO_TOKEN_SALT = "reviews.audio-token"  # noqa: S105 - a signing namespace, not a secret


def _session_binding(session_key: str | None) -> str:
    return hashlib.sha256((session_key or "").encode()).hexdigest()[:32]


@dataclass(frozen=True)
class AudioGrant:
    """A signed one-play token and the lease it plays under (what the audio-token routes answer)."""

    token: str
    lease_expires_at: datetime


def audio_token_sign(*, user, session_key: str | None, subject: str) -> str:
    """Sign a one-play audio token bound to user, browser session and subject
    (``assignment:<id>`` or ``escalation:<id>``); valid for AUDIO_TOKEN_MAX_AGE seconds."""
    return signing.dumps(
        {"t": subject, "u": user.pk, "s": _session_binding(session_key), "n": uuid.uuid4().hex},
        salt=AUDIO_TOKEN_SALT,
    )


def lease_audio_grant(lease, *, user, session_key: str | None, subject: str) -> dict:
    """Give a lease (an assignment or a review) its first one-play token, handed out with it by
    next so that the first play needs no token request: ``lease.audio_grant``, None without a
    session (a token is bound to one). Returns the details that say so on the lease's audit event."""
    lease.audio_grant = AudioGrant(token=audio_token_sign(user=user, session_key=session_key, subject=subject),
                                   lease_expires_at=lease.lease_expires_at) if session_key else None
    return {"audio_token": True} if session_key else {}


def audio_token_nonce(token: str, *, user, session_key: str | None, subject: str) -> str | None:
    """The nonce of a good audio token for this caller, session and subject (None if it is not
    one). Spending it is the caller's: a unique row in AudioTokenUse, inside the play's transaction."""
    try:
        claims = signing.loads(token or "", salt=AUDIO_TOKEN_SALT, max_age=settings.AUDIO_TOKEN_MAX_AGE)
    except signing.BadSignature:
        return None
    if not (claims.get("t") == subject and claims.get("u") == user.pk
            and claims.get("s") == _session_binding(session_key) and bool(session_key)):
        return None
    return str(claims.get("n", ""))[:32]


def audio_token_consume(token: str, *, user, session_key: str | None, subject: str) -> str | None:
    """Check an audio token against the caller, their session and the subject asked for,
    and spend it. Returns None when it is good, else why not ("bad_token", "token_used").

    Must run inside the play's transaction: the spent nonce is a unique row, so if the
    play is refused later (quota, lease) the rollback gives the token back, and two
    requests racing with one token cannot both insert it (PostgreSQL makes the second
    wait for the first to commit, then finds the conflict)."""
    nonce = audio_token_nonce(token, user=user, session_key=session_key, subject=subject)
    if nonce is None:
        return "bad_token"
    with connection.cursor() as cursor:
        # One round trip, atomic on its own: the row exists afterwards either way, and
        # rowcount says whether this request was the one that put it there.
        run_sql(cursor,
            "INSERT INTO reviews_audiotokenuse (nonce, used_at) VALUES (%s, %s) ON CONFLICT (nonce) DO NOTHING",
            [nonce, timezone.now()],
        )
        spent = cursor.rowcount == 1
    return None if spent else "token_used"


def audio_token_uses_forget(*, now=None) -> int:
    """Drop spent nonces older than any token could be; an expired token fails on its own."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.AUDIO_TOKEN_MAX_AGE + 60)
    deleted, _ = AudioTokenUse.objects.filter(used_at__lt=cutoff).delete()
    return deleted


def assignment_owned(user, assignment_id, *, attempted: str) -> None:
    """Raise the hiding 404 unless the assignment exists and is the caller's."""
    owned = is_uuid(assignment_id) and Assignment.objects.filter(pk=assignment_id, reviewer=user).exists()
    if not owned:
        assignment_for_reviewer(user, assignment_id, attempted=attempted)  # raises, with the reason


def assignment_is_live(assignment: Assignment) -> bool:
    return assignment.status == Assignment.Status.LIVE and assignment.lease_expires_at > timezone.now()


def clip_access_held(user, assignment: Assignment) -> bool:
    """A reviewer may hear a clip only through their live lease and its object grant."""
    held = getattr(assignment, "grant_held", None)  # read with the assignment, when it was asked for
    return (assignment_is_live(assignment) and not assignment.clip.withheld
            and (held if held is not None else clip_grant_held(user, assignment.clip)))


def is_uuid(value) -> bool:
    import uuid

    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# --- Checkers (issue 11, part 2) -------------------------------------------------------
# A second pass on submitted work. A checker leases a transcription (or a clip to adjudicate)
# exactly as a reviewer leases a clip: the per-clip grant lives only as long as the lease.

CHECKER = "checker"


class IsChecker(permissions.BasePermission):
    """A signed-in checker using the browser session (never a service token)."""

    def has_permission(self, request, view):
        return request.auth is None and user_in_group(request.user, CHECKER) and _second_factor_ok(request)


def review_for_checker(user, review_id, *, attempted: str, for_update: bool = False):
    """Return the caller's own review lease, or raise the 404 that hides everyone else's."""
    from .models import Review

    queryset = Review.objects.select_related("clip", "clip__project", "clip__project__label_schema",
                                             "transcription")
    if for_update:
        queryset = queryset.select_for_update(of=("self",))
    review = queryset.filter(pk=review_id).first() if is_uuid(review_id) else None
    if review is None or review.checker_id != user.pk:
        raise NotFoundDenied(
            object_type="review", object_id=review_id, attempted=attempted,
            reason="missing" if review is None else "not_owner", clip_id=review.clip_id if review else None,
        )
    return review


def review_owned(user, review_id, *, attempted: str) -> None:
    """Raise the hiding 404 unless the review exists and is the caller's."""
    from .models import Review

    if not (is_uuid(review_id) and Review.objects.filter(pk=review_id, checker=user).exists()):
        review_for_checker(user, review_id, attempted=attempted)  # raises, with the reason


def review_access_held(user, review) -> bool:
    """A checker may hear a clip only through their live review lease and its object grant,
    and never a clip withdrawn meanwhile (flagged, opted out, purged)."""
    return (review.status == "live" and review.lease_expires_at > timezone.now() and not review.clip.withheld
            and review.clip.status not in (Clip.Status.FLAGGED, Clip.Status.PURGED)
            and clip_grant_held(user, review.clip))
