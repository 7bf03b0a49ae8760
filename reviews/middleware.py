"""Request context for the audit trail, and the pages' answer to a denied access."""

import ipaddress
import re
import time
import uuid
from urllib.parse import quote

from django.conf import settings
from django.contrib.auth import logout
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.functional import LazyObject

from . import audit, permissions
from .errors import DomainError, NotFoundDenied, json_error

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def client_ip(request) -> str | None:
    """Return the client address, trusting X-Forwarded-For only TRUSTED_PROXY_COUNT hops deep."""
    hops = settings.TRUSTED_PROXY_COUNT
    address = request.META.get("REMOTE_ADDR") or None
    if hops > 0:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            address = forwarded[-hops]
    try:
        # Canonical form, so the address reads back from the database exactly as hashed.
        return ipaddress.ip_address(address).compressed if address else None
    except ValueError:
        return None


class RequestContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        incoming = request.META.get("HTTP_X_REQUEST_ID", "")
        request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        token = audit.request_context_set(
            audit.RequestContext(
                client_ip=client_ip(request),
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:200],
                request_id=request_id,
            )
        )
        try:
            response = self.get_response(request)
        finally:
            audit.request_context_reset(token)
        response["X-Request-ID"] = request_id
        return response


class SessionLimitsMiddleware:
    """Idle and absolute session limits.

    The idle limit is the session's own expiry (SESSION_COOKIE_AGE), pushed forward by
    saving the session at most once a minute; the absolute limit counts from sign-in.
    """

    TOUCH_EVERY_SECONDS = 60

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.user.is_authenticated:
            now = time.time()
            signed_in_at = request.session.get("signed_in_at")
            if signed_in_at is None or now - signed_in_at > settings.SESSION_ABSOLUTE_SECONDS:
                logout(request)
            elif now - request.session.get("seen_at", 0) > self.TOUCH_EVERY_SECONDS:
                request.session["seen_at"] = now
        return self.get_response(request)


def user_concrete(user):
    """The user behind request.user's lazy wrappers (the session's, and django-otp's around it).

    Every attribute read through a SimpleLazyObject raises and catches an AttributeError inside
    Django's LazyObject, twice with two wrappers: the services read the caller's ``pk`` and
    roles dozens of times per request, which cost about a tenth of a reviewer loop's CPU
    (tests/bench/request_cpu.py). Evaluating it here is no extra work: this middleware reads
    ``is_authenticated`` on every request anyway."""
    while isinstance(user, LazyObject):
        user.__class__  # noqa: B018 - any read evaluates the wrapper
        user = user._wrapped
    return user


class AccessCacheMiddleware:
    """Keep a signed-in user's roles and second-factor need in their session; leave the
    concrete user on the request (user_concrete).

    Both take three queries to work out (groups, projects, devices) and change rarely, so
    they are worked out at most once every ACCESS_RECHECK_SECONDS per session. A change of
    roles cannot wait that long: it ends every session of the user (signals.py), and so
    does deactivation."""

    SESSION_KEY = "access_cache"

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        request.user = user = user_concrete(request.user)
        if user.is_authenticated:
            cached, now = request.session.get(self.SESSION_KEY), time.time()
            if cached and cached.get("user") == user.pk and 0 <= now - cached["at"] < settings.ACCESS_RECHECK_SECONDS:
                permissions.user_access_restore(user, groups=cached["groups"], mfa=cached["mfa"])
            else:
                request.session[self.SESSION_KEY] = {
                    "user": user.pk, "at": now, "groups": sorted(permissions.user_group_names(user)),
                    "mfa": permissions.mfa_required(user),
                }
        return self.get_response(request)


class MFARequiredMiddleware:
    """Whoever needs a second factor gets nothing else until they give it: pages
    redirect to the two-factor page, the API answers 403 ``mfa_required``."""

    # The language switch and the scripts' catalogue serve the second-factor page too.
    EXEMPT_ROUTES = ("mfa", "logout", "login", "api-login", "api-logout", "set_language", "javascript-catalog")

    def __init__(self, get_response):
        self.get_response = get_response
        self.exempt = (settings.STATIC_URL, *(reverse(name) for name in self.EXEMPT_ROUTES))

    def __call__(self, request):
        user = request.user
        if (user.is_authenticated and not user.is_verified() and not request.path.startswith(self.exempt)
                and permissions.mfa_required(user)):
            if request.path.startswith("/api/"):
                audit.audit_denied(actor=user, attempted="api", object_type="page", object_id=request.path[:64],
                                   reason="mfa_required")
                return json_error("mfa_required")
            return redirect(f"{reverse('mfa')}?next={quote(request.get_full_path())}")
        return self.get_response(request)


class AccessDeniedMiddleware:
    """Turn domain errors raised by page views into pages; audit every denial."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not isinstance(exception, DomainError):
            return None
        if exception.denied:
            audit.audit_denied(actor=request.user, **exception.denied)
        if isinstance(exception, NotFoundDenied):
            return render(request, "404.html", status=404)
        return render(request, "error.html", {"error": exception}, status=exception.status)
