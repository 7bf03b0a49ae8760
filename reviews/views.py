"""Server-rendered pages: thin, the work happens in services and the page's JS via the API."""

import sys

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import RequestDataTooBig
from django.core.files.storage import default_storage
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.http import HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.templatetags.static import static
from django.urls import reverse
from django.utils.decorators import method_decorator
from django.utils.html import escape
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext, ngettext
from django.views.decorators.http import require_http_methods

from . import mfa, permissions
from .audit import audit_denied
from .errors import NotFoundDenied, json_error


def favicon(request):
    """Browsers ask for /favicon.ico on pages that name none (the admin's)."""
    return redirect(static("reviews/favicon.svg"), permanent=True)


@login_required
def home(request):
    if permissions.user_in_group(request.user, permissions.REVIEWER):
        return redirect("workspace")
    if permissions.user_in_group(request.user, permissions.SUPERVISOR):
        return redirect("console-home")
    if permissions.user_in_group(request.user, permissions.CHECKER):
        return redirect("review")
    if request.user.is_staff:
        return redirect("admin:index")
    return render(request, "reviews/home.html")


@login_required
def workspace(request):
    if not permissions.user_in_group(request.user, permissions.REVIEWER):
        raise NotFoundDenied(object_type="page", object_id="workspace", attempted="page.workspace",
                             reason="not_reviewer")
    return render(request, "reviews/workspace.html")


# Login and logout run in one transaction with their audit events (see signals.py).
@method_decorator(transaction.atomic, name="dispatch")
class LoginView(auth_views.LoginView):
    redirect_authenticated_user = True


@method_decorator(transaction.atomic, name="dispatch")
class LogoutView(auth_views.LogoutView):
    pass


@login_required
@require_http_methods(["GET", "POST"])
@transaction.atomic
def mfa_verify(request):
    """Ask for the authenticator code; enrol a first device if the user has none."""
    target = request.GET.get("next") or reverse("home")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = reverse("home")
    if request.user.is_verified():
        return redirect(target)
    enrolment = mfa.enrolment_for(request.user)
    error = None
    if request.method == "POST":
        if mfa.mfa_verify(request=request, token=request.POST.get("token", "")):
            return redirect(target)
        error = gettext("That code did not match. Check your authenticator app's clock and try the newest code.")
    return render(request, "registration/mfa.html", {"enrolment": enrolment, "error": error, "next": target})


def locked_out(request, original_response=None, credentials=None):
    """Answer a locked-out sign-in: JSON for the API, a page for people."""
    minutes = int(settings.AXES_COOLOFF_TIME.total_seconds() // 60)
    detail = ngettext("Too many failed sign-ins. Try again in %(count)d minute.",
                      "Too many failed sign-ins. Try again in %(count)d minutes.", minutes) % {"count": minutes}
    retry_after = int(settings.AXES_COOLOFF_TIME.total_seconds())
    if request.path.startswith("/api/"):
        return json_error("locked_out", detail=detail, retry_after=retry_after)
    response = render(request, "registration/locked_out.html", {"detail": detail}, status=429)
    response["Retry-After"] = str(retry_after)
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


# The collections under /api/v1/ whose unmatched paths (a bare collection, a typo'd
# sub-resource) are recorded like any other refused attempt on that kind of object.
API_OBJECT_TYPES = {"assignments": "assignment", "escalations": "escalation", "clips": "clip",
                    "subjects": "subject", "audit-events": "audit_event",
                    "reviews": "review"}


def not_found(request, exception=None):
    if _is_api(request):
        # Probing for URLs is an access attempt too: audit it as every other assignment URL
        # does. Only the collection's name is kept, never the path (it could carry anything).
        parts = request.path.split("/")
        collection = parts[3] if len(parts) > 3 and parts[2] == "v1" else ""
        audit_denied(actor=getattr(request, "user", None), attempted="api",
                     object_type=API_OBJECT_TYPES.get(collection, "api"), reason="no_such_endpoint")
        return json_error("not_found")
    return render(request, "404.html", status=404)


def bad_request(request, exception=None):
    too_big = isinstance(exception, RequestDataTooBig)
    if _is_api(request):
        return json_error("request_too_large" if too_big else "bad_request")
    return render(request, "error.html", {"error": {"detail": gettext("The request could not be understood.")}},
                  status=413 if too_big else 400)


def server_error(request):
    """Answer an unhandled error without details; a database outage is a 503, not a 500."""
    exception = sys.exc_info()[1]
    unavailable = isinstance(exception, (OperationalError, InterfaceError))
    if _is_api(request):
        return json_error("database_unavailable", retry_after=5) if unavailable else json_error("server_error")
    if not unavailable:
        return render(request, "500.html", status=500)
    # No template: rendering one may need the database that is down.
    title = escape(gettext("Briefly unavailable"))
    response = HttpResponse(f"<!doctype html><title>{title}</title><h1>{title}</h1>"
                            f"<p>{escape(gettext('Your saved work is safe. Please try again in a moment.'))}</p>",
                            status=503)
    response["Retry-After"] = "5"
    return response


def healthz(request):
    """For load balancers: 200 when the database and the audio storage answer. Not audited."""
    healthy = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        healthy = False
    try:
        default_storage.exists("healthz-probe")
    except Exception:  # noqa: BLE001 - any storage failure means unhealthy
        healthy = False
    response = JsonResponse({"status": "ok" if healthy else "unavailable"}, status=200 if healthy else 503)
    response["Cache-Control"] = "no-store"
    return response
