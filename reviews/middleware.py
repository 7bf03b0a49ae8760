"""Request context for the audit trail, and the pages' answer to a denied access."""

import re
import uuid

from django.conf import settings
from django.shortcuts import render

from . import audit
from .errors import DomainError, NotFoundDenied

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


def client_ip(request) -> str | None:
    """Return the client address, trusting X-Forwarded-For only TRUSTED_PROXY_COUNT hops deep."""
    hops = settings.TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [p.strip() for p in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if p.strip()]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR") or None


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
